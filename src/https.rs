//! HTTPS for clients: the default certificate given by `--tls-cert`/`--tls-key` (checked when
//! loaded: parseable, key matching, not expired), reloaded on `SIGHUP` and swapped in without
//! touching open connections; the configuration's `certificates` chosen by SNI; and the rustls
//! server config every worker accepts with (TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`, session
//! tickets and a session cache shared by all); and the handshake, after which a connection is
//! served by the protocol ALPN chose.

use crate::config::Snapshot;
use arc_swap::ArcSwap;
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use monoio::net::TcpStream;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
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

/// What a handshake is shown: the certificate of the configuration's SNI that matches the
/// name the client asked for, else the `--tls-cert` one.
#[derive(Debug)]
struct Resolver {
    default: Arc<ServerCertificate>,
    snapshot: Arc<ArcSwap<Snapshot>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            if let Some(served) = self.snapshot.load().snis.find(name) {
                return Some(served.choose(hello.signature_schemes()));
            }
        }
        Some(self.default.current.load_full())
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

/// The chain and key of `files`, checked (see [`crate::certificate::from_pem`]).
pub fn load_certified_key(files: &CertificateFiles) -> Result<CertifiedKey, String> {
    let cert = std::fs::read(&files.cert).map_err(|e| format!("{}: {e}", files.cert.display()))?;
    let key = std::fs::read(&files.key).map_err(|e| format!("{}: {e}", files.key.display()))?;
    crate::certificate::from_pem(&cert, &key, UnixTime::now())
        .map_err(|e| format!("{} with {}: {e}", files.cert.display(), files.key.display()))
}

/// The server config every worker accepts with: certificates by SNI from the published
/// configuration (so a reload or an Admin API change applies to the next handshake), else
/// `default`.
pub fn server_config(
    default: Arc<ServerCertificate>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    http2: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver { default, snapshot }));
    config.alpn_protocols = if http2 {
        vec![H2.to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// HTTP/2's ALPN protocol id (RFC 9113 §3.2).
const H2: &[u8] = b"h2";

/// A client connection after its TLS handshake, in the form its protocol is served on.
pub enum Accepted {
    /// HTTP/1.1 (chosen by ALPN, or no ALPN): monoio's completion-based stream, as before.
    Http1(monoio_rustls::ServerTlsStream<TcpStream>),
    /// HTTP/2: the readiness-based stream the `h2` crate reads through tokio's traits.
    Http2(tokio_rustls::server::TlsStream<TcpStreamPoll>),
}

/// The handshake with a client, then the connection in the form its protocol needs.
///
/// The handshake runs on the readiness-based form of the socket (tokio-rustls), because an
/// `h2` connection must stay there; an HTTP/1.1 one goes back to the completion-based form
/// with the same TLS session. tokio-rustls keeps no bytes of its own beside the session
/// (what arrived with the client's Finished is in the session, read first), so the switch
/// loses nothing; monoio-rustls, which reads ahead into its own buffer, could not give its
/// session up that way.
pub async fn accept(
    stream: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> std::io::Result<Accepted> {
    let poll = stream.try_into_poll_io().map_err(|(e, _)| e)?;
    let tls = acceptor.accept(poll).await?;
    if tls.get_ref().1.alpn_protocol() == Some(H2) {
        return Ok(Accepted::Http2(tls));
    }
    let (poll, session) = tls.into_inner();
    let stream = poll.try_into_comp_io().map_err(|(e, _)| e)?;
    Ok(Accepted::Http1(monoio_rustls::ServerTlsStream::new(
        stream, session,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        assert!(
            err.starts_with(&format!("{}", expired_files.cert.display())),
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
