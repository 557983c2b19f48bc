//! What the gateway trusts when it is the TLS client (Lambda, STS, credential endpoints, Redis):
//! the webpki roots plus the PEM file named by `AWS_CA_BUNDLE`, as the AWS SDKs take it.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `AWS_CA_BUNDLE`, when set and not empty.
pub fn ca_bundle_from_env() -> Option<PathBuf> {
    std::env::var_os("AWS_CA_BUNDLE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The webpki roots, plus every certificate of `ca_bundle`; an unreadable bundle, or one
/// without a certificate, is an error naming the file.
pub fn roots(ca_bundle: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_bundle {
        let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| failed(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(&e))?;
        if certs.is_empty() {
            return Err(failed(&"no certificates found"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| failed(&e))?;
        }
    }
    Ok(roots)
}

/// Takes any server certificate, where checking is off by the user's choice (Redis with
/// `redis_ssl_verify: false`, Kong's default). The handshake's signatures are still checked
/// with the provider's algorithms, so the server holds the key of the certificate it sent.
#[derive(Debug)]
pub struct AnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_adds_to_the_webpki_roots_and_a_bad_one_is_named() {
        let base = roots(None).expect("webpki roots").len();
        assert!(base > 100);
        let dir = std::env::temp_dir().join(format!("lg-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, ca.pem()).unwrap();
        assert_eq!(roots(Some(&good)).unwrap().len(), base + 1);
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = roots(Some(&empty)).unwrap_err();
        assert!(e.contains("empty.pem: no certificates found"), "{e}");
        let e = roots(Some(&dir.join("absent.pem"))).unwrap_err();
        assert!(e.contains("absent.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
