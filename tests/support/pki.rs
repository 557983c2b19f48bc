//! Certificates made at test time for servers the gateway reaches over TLS (etcd, Redis): a
//! CA, a server certificate for given names, and a client certificate, as PEM files.

use std::path::{Path, PathBuf};

/// The files, in the directory given to [`TlsFiles::generate`].
pub struct TlsFiles {
    /// The CA that signed both certificates.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    /// See `server_cert`.
    pub server_key: PathBuf,
    /// A client certificate (for servers that ask for one), and its key.
    pub client_cert: PathBuf,
    /// See `client_cert`.
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// A new CA (named `ca_name`), and a server certificate for `server_names` (DNS names or
    /// IP addresses), written to `dir`.
    pub fn generate(dir: &Path, ca_name: &str, server_names: &[&str]) -> TlsFiles {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(names)
                .expect("params")
                .signed_by(&key, &issuer)
                .expect("certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(server_names.iter().map(|n| n.to_string()).collect());
        let (client_cert, client_key) = leaf(vec!["gateway".into()]);
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        TlsFiles {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
        }
    }
}
