//! What credential providers answer, arbitrary: STS's XML (credentials and errors), the
//! IMDS/container JSON document, `credential_process` output, expiration times. Never a panic;
//! accepted credentials have a key and a secret, and error text stays on one line.
#![no_main]

use lambda_gateway::aws::time::parse_iso8601;
use lambda_gateway::credentials::{metadata, process, sts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for parsed in [
        sts::parse_credentials(&text),
        metadata::parse_document(data),
        process::parse(data),
    ] {
        if let Ok(f) = parsed {
            assert!(!f.credentials.access_key_id.is_empty());
            assert!(!f.credentials.secret_access_key.0.is_empty());
        }
    }
    if let Some((code, message)) = sts::parse_error(&text) {
        assert!(!code.contains(['\r', '\n']) && !message.contains(['\r', '\n']));
    }
    let _ = parse_iso8601(&text);
});
