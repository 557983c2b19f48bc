//! The payload encoder on arbitrary requests: the output is always valid JSON, and it carries
//! the request's values (method, URI, body) unchanged, in forward, legacy and API Gateway
//! (payload 1.0 and 2.0) modes.
#![no_main]

use base64::Engine;
use lambda_gateway::http::head::{self, RequestHead};
use lambda_gateway::http::request::Request;
use lambda_gateway::http::Limits;
use lambda_gateway::lambda::config::{LambdaConfig, PayloadVersion};
use lambda_gateway::lambda::event::EventContext;
use lambda_gateway::lambda::payload::PayloadEncoder;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use std::collections::HashMap;

const TYPES: [&str; 6] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=B",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "",
];

fuzz_target!(|data: &[u8]| {
    // data = [selector][target bytes] 0xff [header value bytes] 0xff [body bytes]
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == 0xff);
    let (target, hval, body) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let ctype = TYPES[(sel as usize) % TYPES.len()];
    let mut raw = b"POST /".to_vec();
    raw.extend(target.iter().copied().filter(|&b| b > b' ' && b < 0x7f));
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\nX-Fuzz: ");
    raw.extend(hval.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
    raw.extend_from_slice(b"\r\n");
    if !ctype.is_empty() {
        raw.extend_from_slice(format!("Content-Type: {ctype}\r\n").as_bytes());
    }
    raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    raw.extend_from_slice(body);
    let mut h = RequestHead::default();
    if head::parse(&raw, &Limits::default(), &mut h) != Ok(true) {
        return;
    }
    let req = Request {
        peer: None,
        secure: false,
        buf: &raw,
        head: &h,
        body: &raw[h.len..],
    };
    let mut enc = PayloadEncoder::default();

    let mut forward = LambdaConfig::with_defaults("f");
    forward.forward_request_body = true;
    forward.forward_request_headers = true;
    forward.forward_request_method = true;
    forward.forward_request_uri = true;
    forward.base64_encode_body = sel & 0x80 == 0;
    if enc
        .encode_unpaced(&forward, &req, &Default::default())
        .is_ok()
    {
        // Valid JSON by RFC 8259 (numbers of any size pass through as sent), read member by
        // member so a huge number in the body does not trip the checker.
        let top: HashMap<String, &RawValue> =
            serde_json::from_slice(&enc.out).expect("forward payload is valid JSON");
        let text = |k: &str| {
            top.get(k)
                .map(|r| serde_json::from_str::<String>(r.get()).expect("a JSON string"))
        };
        assert_eq!(text("request_method").as_deref(), Some("POST"));
        assert_eq!(
            text("request_uri").as_deref().map(str::as_bytes),
            Some(req.path_with_query())
        );
        let base64 = top
            .get("request_body_base64")
            .map(|r| r.get() == "true")
            .unwrap_or(false);
        match text("request_body") {
            Some(s) if base64 => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .expect("valid base64");
                assert_eq!(decoded, req.body);
            }
            Some(s) => assert_eq!(s, String::from_utf8_lossy(req.body)),
            None => assert!(req.body.is_empty()),
        }
        let headers: HashMap<String, &RawValue> =
            serde_json::from_str(top.get("request_headers").expect("headers").get())
                .expect("an object");
        if let Some(Ok(h)) = headers
            .get("x-fuzz")
            .map(|r| serde_json::from_str::<String>(r.get()))
        {
            assert_eq!(
                h,
                String::from_utf8_lossy(req.header("x-fuzz").unwrap_or_default())
            );
        }
        if let Some(args) = top.get("request_body_args") {
            assert!(args.get().starts_with('{') || args.get().starts_with('['));
        }
    }
    // API Gateway events, both versions, with a path parameter taken from the target.
    let params: [(&str, &[u8]); 1] = [("p", target)];
    let ctx = EventContext {
        resource: Some("/{proxy+}"),
        path_params: &params,
        source_ip: Some(std::net::Ipv6Addr::LOCALHOST.into()),
        request_id: "id",
        time: std::time::SystemTime::now(),
        caller: None,
    };
    for version in [PayloadVersion::V1, PayloadVersion::V2] {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.awsgateway_compatible = true;
        cfg.awsgateway_compatible_payload_version = version;
        cfg.base64_encode_body = sel & 0x40 == 0;
        if enc.encode_unpaced(&cfg, &req, &ctx).is_err() {
            continue;
        }
        let event: serde_json::Value =
            serde_json::from_slice(&enc.out).expect("an event is valid JSON");
        let method = if version == PayloadVersion::V1 {
            &event["httpMethod"]
        } else {
            &event["requestContext"]["http"]["method"]
        };
        assert_eq!(method, "POST");
        assert_eq!(
            event["pathParameters"]["p"],
            serde_json::Value::String(String::from_utf8_lossy(target).into_owned())
        );
        match (&event["body"], &event["isBase64Encoded"]) {
            (serde_json::Value::String(s), serde_json::Value::Bool(true)) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .expect("valid base64");
                assert_eq!(decoded, req.body);
            }
            (serde_json::Value::String(s), _) => {
                assert_eq!(*s, String::from_utf8_lossy(req.body))
            }
            (_, _) => assert!(req.body.is_empty()),
        }
    }
    if enc
        .encode_unpaced(&LambdaConfig::with_defaults("f"), &req, &Default::default())
        .is_ok()
    {
        let v: &RawValue = serde_json::from_slice(&enc.out).expect("legacy payload is valid JSON");
        assert!(v.get().starts_with('{') || v.get().starts_with('['));
    }
});
