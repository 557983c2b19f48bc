//! The edge's small parsers on arbitrary text: CIDR blocks (ip-restriction), SNI names,
//! PEM certificate and key pairs, CORS origins, the proxy URL and NO_PROXY lists. Never a
//! panic; what is accepted behaves.
#![no_main]

use lambda_gateway::access::cidr::Cidr;
use lambda_gateway::access::cors::normalize;
use lambda_gateway::aws::endpoint::{parse_proxy_url, NoProxy};
use lambda_gateway::certificate::from_pem;
use lambda_gateway::schema::entities::is_sni;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(block) = Cidr::parse(&text) {
        // A block holds its own address.
        let addr = text.split('/').next().unwrap_or_default();
        if let Ok(ip) = addr.parse() {
            assert!(block.contains(ip), "{text}");
        }
    }
    if is_sni(&text) {
        assert!(text.matches('*').count() <= 1);
    }
    let (domain, host) = normalize(&text);
    assert!(domain.len() <= text.len() + 8 && host.len() <= text.len());
    let _ = parse_proxy_url(&text);
    let no_proxy = NoProxy::parse(&text);
    let _ = no_proxy.excludes("lambda.us-east-1.amazonaws.com", 443);
    let (cert, key) = data.split_at(data.len() / 2);
    let _ = from_pem(cert, key, rustls_pki_types::UnixTime::now());
});
