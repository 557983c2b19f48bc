//! Server certificates: a PEM chain and key turned into what rustls presents, checked on the
//! way (the key belongs to the leaf, the leaf is valid now), and the index that picks one by
//! the name a client asks for (SNI), as Kong's `snis` do: an exact name first, then a
//! wildcard (`*.example.com`, `example.*`).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

/// A chain and key from PEM text (`what` names them in errors), checked.
pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], now: UnixTime) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate found (expected PEM: -----BEGIN CERTIFICATE-----)".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the key is not a PEM private key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("the key cannot be used: {e}"))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| format!("the key does not belong to the certificate: {e}"))?;
    check_validity(&certified.cert, now)?;
    Ok(certified)
}

/// Refuses a leaf that is expired or not valid yet at `now`. webpki checks the leaf's validity
/// period before anything about its issuer, so a chain verified against its own last
/// certificate reports exactly these two errors when they apply; whether the chain is
/// trusted is for clients to decide, and not checked here.
pub fn check_validity(chain: &[CertificateDer<'static>], now: UnixTime) -> Result<(), String> {
    let Some(first) = chain.first() else {
        return Err("no certificate".into());
    };
    let leaf = webpki::EndEntityCert::try_from(first)
        .map_err(|e| format!("not a usable X.509 certificate: {e}"))?;
    let last = chain.last().unwrap_or(first);
    let Ok(anchor) = webpki::anchor_from_trusted_cert(last) else {
        return Ok(());
    };
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let anchors = [anchor];
    let verified = leaf.verify_for_usage(
        algorithms,
        &anchors,
        &chain[1..],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    let when = |t: UnixTime| {
        crate::aws::time::AmzDate::from_unix(t.as_secs())
            .timestamp_str()
            .to_string()
    };
    match verified {
        Err(webpki::Error::CertExpired { not_after, .. }) => Err(format!(
            "the certificate expired at {} (it is now {})",
            when(not_after),
            when(now)
        )),
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => Err(format!(
            "the certificate is not valid before {} (it is now {})",
            when(not_before),
            when(now)
        )),
        _ => Ok(()),
    }
}

/// A certificate entity's chains: the main one and, optionally, an alternative with another
/// key type (`cert_alt`: e.g. ECDSA beside RSA).
#[derive(Clone, Debug)]
pub struct Served {
    /// `cert`/`key`.
    pub main: Arc<CertifiedKey>,
    /// `cert_alt`/`key_alt`.
    pub alt: Option<Arc<CertifiedKey>>,
}

impl Served {
    /// The chain whose key can sign with one of the client's `schemes` (the main one first).
    pub fn choose(&self, schemes: &[rustls::SignatureScheme]) -> Arc<CertifiedKey> {
        match &self.alt {
            Some(alt) if self.main.key.choose_scheme(schemes).is_none() => alt.clone(),
            _ => self.main.clone(),
        }
    }
}

/// Certificates by the names they serve.
#[derive(Debug, Default)]
pub struct SniIndex {
    exact: HashMap<String, Served>,
    /// `*.example.com` as `.example.com`.
    leading: Vec<(String, Served)>,
    /// `example.*` as `example.`.
    trailing: Vec<(String, Served)>,
}

impl SniIndex {
    /// Serves `cert` for `name` (an SNI as the `snis` schema accepts it).
    pub fn insert(&mut self, name: &str, cert: Served) {
        if let Some(rest) = name.strip_prefix('*') {
            self.leading.push((rest.to_string(), cert));
        } else if let Some(rest) = name.strip_suffix('*') {
            self.trailing.push((rest.to_string(), cert));
        } else {
            self.exact.insert(name.to_string(), cert);
        }
    }

    /// The certificate for what a client asked for: an exact name, else the longest matching
    /// wildcard.
    pub fn find(&self, server_name: &str) -> Option<&Served> {
        let name = server_name.to_ascii_lowercase();
        if let Some(c) = self.exact.get(&name) {
            return Some(c);
        }
        let leading = self
            .leading
            .iter()
            .filter(|(suffix, _)| name.ends_with(suffix.as_str()) && name.len() > suffix.len())
            .max_by_key(|(suffix, _)| suffix.len());
        let trailing = self
            .trailing
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix.as_str()) && name.len() > prefix.len())
            .max_by_key(|(prefix, _)| prefix.len());
        leading.or(trailing).map(|(_, c)| c)
    }

    /// No names at all.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.leading.is_empty() && self.trailing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(params: rcgen::CertificateParams) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn params() -> rcgen::CertificateParams {
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params")
    }

    #[test]
    fn checks_chain_key_and_dates() {
        let now = UnixTime::now();
        let (cert, key) = pair(params());
        assert!(from_pem(cert.as_bytes(), key.as_bytes(), now).is_ok());
        let mut expired = params();
        expired.not_before = rcgen::date_time_ymd(2001, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let (old_cert, old_key) = pair(expired);
        let err = from_pem(old_cert.as_bytes(), old_key.as_bytes(), now).expect_err("expired");
        assert!(
            err.starts_with("the certificate expired at 20020101T000000Z"),
            "{err}"
        );
        let mut future = params();
        future.not_before = rcgen::date_time_ymd(2099, 1, 1);
        future.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let (f_cert, f_key) = pair(future);
        assert!(from_pem(f_cert.as_bytes(), f_key.as_bytes(), now)
            .is_err_and(|e| e.contains("not valid before 20990101T000000Z")));
        assert!(from_pem(cert.as_bytes(), old_key.as_bytes(), now)
            .is_err_and(|e| e.contains("does not belong")));
        assert!(from_pem(b"junk", key.as_bytes(), now).is_err_and(|e| e.contains("no certificate")));
        assert!(from_pem(cert.as_bytes(), b"junk", now).is_err_and(|e| e.contains("key")));
    }

    #[test]
    fn picks_exact_names_before_wildcards() {
        use crate::schema::entities::is_sni;
        for ok in [
            "example.com",
            "*.example.com",
            "example.*",
            "a-b.c_d.example",
        ] {
            assert!(is_sni(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "*.*.com",
            "a.*.com",
            "Example.com",
            "*example.com",
            "a..b",
        ] {
            assert!(!is_sni(bad), "{bad}");
        }
        let (cert, key) = pair(params());
        let make = || Served {
            main: Arc::new(from_pem(cert.as_bytes(), key.as_bytes(), UnixTime::now()).expect("c")),
            alt: None,
        };
        let (exact, wild, deeper, trailing) = (make(), make(), make(), make());
        let mut index = SniIndex::default();
        index.insert("api.example.com", exact.clone());
        index.insert("*.example.com", wild.clone());
        index.insert("*.eu.example.com", deeper.clone());
        index.insert("example.*", trailing.clone());
        let is = |name: &str, want: &Served| {
            index
                .find(name)
                .is_some_and(|c| Arc::ptr_eq(&c.main, &want.main))
        };
        assert!(is("API.example.com", &exact));
        assert!(is("www.example.com", &wild));
        assert!(is("x.eu.example.com", &deeper));
        assert!(is("example.org", &trailing));
        assert!(is("example.com", &trailing));
        assert!(index.find("other.org").is_none());
    }
}
