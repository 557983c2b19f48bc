//! Hostile *shapes* at the size limits, for slowness rather than crashes: a small input
//! describes a prefix, a unit and a suffix; the unit is repeated to fill a large input (each
//! `#` in it becomes a running counter, so repeats can be distinct keys), which one of the
//! client-facing parsers then reads. A parser that is super-linear in some shape takes seconds
//! here instead of milliseconds, which libFuzzer's `-timeout` reports (tools/fuzz-smoke sets
//! it). Input: `[selector] prefix 0xff unit 0xff suffix`.
#![no_main]

use lambda_gateway::admin::body;
use lambda_gateway::http::chunked::ChunkedDecoder;
use lambda_gateway::http::encode::Response;
use lambda_gateway::http::head::{self, RequestHead};
use lambda_gateway::http::request::Request;
use lambda_gateway::http::Limits;
use lambda_gateway::lambda::config::LambdaConfig;
use lambda_gateway::lambda::payload::PayloadEncoder;
use lambda_gateway::lambda::response::{LambdaAnswer, ResponseMapper};
use libfuzzer_sys::fuzz_target;

/// Size of the expanded input for body parsers (the head limit caps the head parser's).
const BODY_SIZE: usize = 1024 * 1024;

/// `prefix`, then `unit` repeated (its `#` bytes replaced by a counter) while the whole stays
/// within `size`, then `suffix`.
fn expand(prefix: &[u8], unit: &[u8], suffix: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(prefix);
    if !unit.is_empty() {
        let mut i = 0u64;
        loop {
            let start = out.len();
            for &b in unit {
                if b == b'#' {
                    out.extend_from_slice(i.to_string().as_bytes());
                } else {
                    out.push(b);
                }
            }
            if out.len() + suffix.len() > size {
                out.truncate(start);
                break;
            }
            i += 1;
        }
    }
    out.extend_from_slice(suffix);
    out
}

fn request(target: &[u8], content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = b"POST /".to_vec();
    raw.extend(target.iter().copied().filter(|&b| b > b' ' && b < 0x7f));
    raw.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: h\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    raw.extend_from_slice(body);
    raw
}

fn encode(raw: &[u8], forward: bool) {
    let mut h = RequestHead::default();
    if head::parse(raw, &Limits::default(), &mut h) != Ok(true) {
        return;
    }
    let req = Request {
        peer: None,
        secure: false,
        buf: raw,
        head: &h,
        body: &raw[h.len..],
    };
    let mut cfg = LambdaConfig::with_defaults("f");
    cfg.forward_request_body = forward;
    cfg.forward_request_headers = forward;
    cfg.forward_request_uri = forward;
    let _ = PayloadEncoder::default().encode_unpaced(&cfg, &req, &Default::default());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == 0xff);
    let (prefix, unit, suffix) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let body = || expand(prefix, unit, suffix, BODY_SIZE);
    match sel % 10 {
        0 => encode(&request(b"?a=1", "application/json", &body()), false),
        1 => encode(
            &request(b"", "application/x-www-form-urlencoded", &body()),
            false,
        ),
        2 => encode(
            &request(b"", "multipart/form-data; boundary=B", &body()),
            false,
        ),
        3 => encode(&request(b"", "application/json", &body()), true),
        4 => encode(&request(b"", "text/plain", &body()), true),
        5 => {
            // A whole head (request line, query, headers) at the head limit.
            let raw = expand(prefix, unit, suffix, 32 * 1024);
            encode(&raw, true);
            let mut h = RequestHead::default();
            let _ = head::leading_empty_lines(&raw);
            let _ = head::parse(&raw, &Limits::default(), &mut h);
        }
        6 => {
            let wire = body();
            let mut out = Vec::new();
            let _ = ChunkedDecoder::new(6 * 1024 * 1024).decode(&wire, &mut out);
        }
        7 => {
            let mut cfg = LambdaConfig::with_defaults("f");
            cfg.is_proxy_integration = true;
            let mut output = body();
            let answer = LambdaAnswer {
                status: 200,
                headers: &[(b"x-amzn-RequestId", b"r")],
                body: &mut output,
            };
            ResponseMapper::default().map(&cfg, answer, &mut Response::default());
        }
        8 => {
            let _ = body::parse(Some(b"application/x-www-form-urlencoded"), &body());
        }
        _ => {
            let _ = body::parse(Some(b"application/json"), &body());
        }
    }
});
