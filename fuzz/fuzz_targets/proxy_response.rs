//! Mapping arbitrary Lambda output, as a proxy-integration answer and as a plain one: never a
//! panic; a mapped answer has a valid status and only safe header bytes.
#![no_main]

use lambda_gateway::http::encode::Response;
use lambda_gateway::lambda::config::LambdaConfig;
use lambda_gateway::lambda::response::{LambdaAnswer, ResponseMapper};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let headers: [(&[u8], &[u8]); 2] = [
        (b"Content-Type", b"application/json"),
        (b"x-amzn-RequestId", b"r"),
    ];
    let mut mapper = ResponseMapper::default();
    let mut resp = Response::default();
    for proxy in [true, false] {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.is_proxy_integration = proxy;
        cfg.unhandled_status = Some(599);
        let mut body = data.to_vec();
        mapper.map(
            &cfg,
            LambdaAnswer {
                status: 200,
                headers: &headers,
                body: &mut body,
            },
            &mut resp,
        );
        assert!((100..=599).contains(&resp.status), "status {}", resp.status);
        // Header lines never carry CR/LF/NUL inside a value: no response splitting.
        for line in resp
            .headers
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let line = line
                .strip_suffix(b"\r")
                .expect("CRLF-terminated header line");
            assert!(
                !line.contains(&b'\r') && !line.contains(&0),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
});
