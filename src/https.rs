//! HTTPS for clients: the server certificate given by `--tls-cert`/`--tls-key` (checked when
//! loaded: parseable, key matching, not expired), reloaded on `SIGHUP` and swapped in without
//! touching open connections, and the rustls server config every worker accepts with
//! (TLS 1.2 and 1.3, ALPN `http/1.1`, session tickets and a session cache shared by all).

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the certificate comes from.
#[derive(Clone, Debug)]
pub struct CertificateFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Sessions remembered for resumption by ID (TLS 1.2 clients without tickets).
const SESSION_CACHE_ENTRIES: usize = 4096;

/// The certificate the server presents, swappable while serving.
#[derive(Debug)]
pub struct ServerCertificate {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ServerCertificate {
    /// Loads and checks the files.
    pub fn load(files: &CertificateFiles) -> Result<ServerCertificate, String> {
        Ok(ServerCertificate {
            current: ArcSwap::from_pointee(load_certified_key(files)?),
        })
    }

    /// Loads the files again and, if they are usable, presents them to new handshakes from now
    /// on; connections already open keep theirs. On error the previous certificate stays.
    pub fn reload(&self, files: &CertificateFiles) -> Result<(), String> {
        self.current.store(Arc::new(load_certified_key(files)?));
        Ok(())
    }

    /// The leaf certificate presented now.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.current.load().cert.first().cloned()
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(chain)
}

/// The chain and key of `files`, checked: the key signs for the leaf, and the leaf is valid
/// now (an expired certificate is refused at load rather than by every client).
pub fn load_certified_key(files: &CertificateFiles) -> Result<CertifiedKey, String> {
    let chain = read_chain(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        format!(
            "{} does not belong to the certificate in {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    check_validity(&certified.cert, UnixTime::now())
        .map_err(|why| format!("{}: {why}", files.cert.display()))?;
    Ok(certified)
}

/// Refuses a leaf that is expired or not valid yet at `now`. webpki checks the leaf's validity
/// period before anything about its issuer, so a chain verified against its own last
/// certificate reports exactly these two errors when they apply; whether the chain is
/// trusted is for clients to decide, not checked here.
pub fn check_validity(chain: &[CertificateDer<'static>], now: UnixTime) -> Result<(), String> {
    let leaf = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| format!("not a usable X.509 certificate: {e}"))?;
    let last = chain.last().unwrap_or(&chain[0]);
    let anchor = match webpki::anchor_from_trusted_cert(last) {
        Ok(a) => a,
        Err(_) => return Ok(()),
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

/// The server config every worker accepts with.
pub fn server_config(
    certificate: Arc<ServerCertificate>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, params: rcgen::CertificateParams) -> CertificateFiles {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let files = CertificateFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write");
        std::fs::write(&files.key, key.serialize_pem()).expect("write");
        files
    }

    #[test]
    fn loads_checks_and_swaps_certificates() {
        let dir = std::env::temp_dir().join(format!("lg-https-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let params = || rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("p");
        let files = write_pair(&dir, params());
        let served = ServerCertificate::load(&files).expect("loads");
        let first = served.leaf();

        // Expired, and not yet valid: refused with the dates.
        let mut expired = params();
        expired.not_before = rcgen::date_time_ymd(2001, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let old = dir.join("old");
        std::fs::create_dir_all(&old).expect("dir");
        let expired_files = write_pair(&old, expired);
        let err = load_certified_key(&expired_files).expect_err("expired");
        assert!(
            err.contains("the certificate expired at 20020101T000000Z"),
            "{err}"
        );
        let mut future = params();
        future.not_before = rcgen::date_time_ymd(2099, 1, 1);
        future.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let later = write_pair(&old, future);
        assert!(load_certified_key(&later)
            .is_err_and(|e| e.contains("not valid before 20990101T000000Z")));

        // A key that is not the certificate's.
        let mismatched = CertificateFiles {
            cert: files.cert.clone(),
            key: later.key.clone(),
        };
        assert!(load_certified_key(&mismatched)
            .is_err_and(|e| e.contains("does not belong to the certificate")));
        // Not PEM at all.
        std::fs::write(old.join("junk.pem"), "junk").expect("write");
        let junk = CertificateFiles {
            cert: old.join("junk.pem"),
            key: files.key.clone(),
        };
        assert!(load_certified_key(&junk).is_err_and(|e| e.contains("no certificate found")));

        // A failed reload keeps the certificate; a good one swaps it.
        assert!(served.reload(&expired_files).is_err());
        assert_eq!(served.leaf(), first);
        let fresh = write_pair(&dir, params());
        served.reload(&fresh).expect("reloads");
        assert_ne!(served.leaf(), first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
