//! The rustls client config for Lambda endpoints: the gateway's trust (`crate::trust`), HTTP/1.1
//! ALPN, the ring provider. Verification is always on (SPEC §8).

use std::sync::Arc;

/// Builds the client config. `ca_bundle` is a PEM file of extra trusted CAs.
pub fn client_config(
    ca_bundle: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = crate::trust::roots(ca_bundle)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
