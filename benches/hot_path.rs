//! The per-request hot path, each stage next to a baseline measured in the same run:
//!
//! - `parse`: our head parser (httparse + framing + Host/Connection rules) vs httparse alone;
//! - `encode`: the payload encoder (legacy and forward modes, 1 KiB and 64 KiB bodies) vs
//!   serde_json building the same JSON through a `Value`;
//! - `map`: response mapping, plain and proxy integration, vs decoding and re-encoding the
//!   output with serde_json (what Kong's lua-resty-aws path does).
//!
//! Run: `cargo bench --bench hot_path`

use lambda_gateway::http::encode::Response;
use lambda_gateway::http::head::{self, RequestHead};
use lambda_gateway::http::request::Request;
use lambda_gateway::http::Limits;
use lambda_gateway::lambda::config::LambdaConfig;
use lambda_gateway::lambda::payload::PayloadEncoder;
use lambda_gateway::lambda::response::{LambdaAnswer, ResponseMapper};
use serde_json::{Map, Value};
use std::sync::Arc;

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [1024, 64 * 1024];

fn request(body_len: usize) -> Vec<u8> {
    let mut body = br#"{"message":""#.to_vec();
    body.resize(body_len - 2, b'x');
    body.extend_from_slice(b"\"}");
    let mut raw = format!(
        "POST /lambda1?a=1&b=two&flag HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: wrk/4.1\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nContent-Type: application/json\r\nX-Request-Id: 42\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw
}

fn plugin(forward: bool, proxy: bool) -> Arc<LambdaConfig> {
    let mut c = LambdaConfig::with_defaults("f");
    c.forward_request_body = forward;
    c.forward_request_headers = forward;
    c.forward_request_method = forward;
    c.forward_request_uri = forward;
    c.is_proxy_integration = proxy;
    Arc::new(c)
}

mod parse {
    use super::*;

    #[divan::bench]
    fn gateway_head(bencher: divan::Bencher) {
        let raw = request(1024);
        let limits = Limits::default();
        let mut head = RequestHead::default();
        bencher.bench_local(|| {
            divan::black_box(head::parse(divan::black_box(&raw), &limits, &mut head))
        });
    }

    #[divan::bench]
    fn baseline_httparse_only(bencher: divan::Bencher) {
        let raw = request(1024);
        bencher.bench_local(|| {
            let mut slots = [httparse::EMPTY_HEADER; 100];
            let mut req = httparse::Request::new(&mut slots);
            divan::black_box(req.parse(divan::black_box(&raw)).is_ok())
        });
    }
}

mod encode {
    use super::*;

    fn encode_with(bencher: divan::Bencher, size: usize, forward: bool) {
        let raw = request(size);
        let mut head = RequestHead::default();
        let _ = head::parse(&raw, &Limits::default(), &mut head);
        let cfg = plugin(forward, false);
        let mut enc = PayloadEncoder::default();
        bencher.bench_local(|| {
            let req = Request {
                buf: &raw,
                head: &head,
                body: &raw[head.len..],
            };
            divan::black_box(enc.encode_unpaced(&cfg, &req).is_ok())
        });
    }

    #[divan::bench(args = SIZES)]
    fn gateway_legacy(bencher: divan::Bencher, size: usize) {
        encode_with(bencher, size, false);
    }

    #[divan::bench(args = SIZES)]
    fn gateway_forward(bencher: divan::Bencher, size: usize) {
        encode_with(bencher, size, true);
    }

    /// Query args as serde_json sees them: `true` for flags, arrays for repeats.
    fn query_map(q: &[u8]) -> Map<String, Value> {
        let mut m = Map::new();
        for part in q.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let text = String::from_utf8_lossy(part);
            let (k, v) = match text.split_once('=') {
                Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
                None => (text.to_string(), Value::Bool(true)),
            };
            m.insert(k, v);
        }
        m
    }

    #[divan::bench(args = SIZES)]
    fn baseline_serde_json_legacy(bencher: divan::Bencher, size: usize) {
        let raw = request(size);
        let mut head = RequestHead::default();
        let _ = head::parse(&raw, &Limits::default(), &mut head);
        let mut out = Vec::new();
        bencher.bench_local(|| {
            let req = Request {
                buf: &raw,
                head: &head,
                body: &raw[head.len..],
            };
            let mut m = query_map(req.query().unwrap_or_default());
            if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(req.body) {
                m.extend(body);
            }
            out.clear();
            let _ = serde_json::to_writer(&mut out, &m);
            divan::black_box(out.len())
        });
    }

    #[divan::bench(args = SIZES)]
    fn baseline_serde_json_forward(bencher: divan::Bencher, size: usize) {
        let raw = request(size);
        let mut head = RequestHead::default();
        let _ = head::parse(&raw, &Limits::default(), &mut head);
        let mut out = Vec::new();
        bencher.bench_local(|| {
            let req = Request {
                buf: &raw,
                head: &head,
                body: &raw[head.len..],
            };
            let mut m = Map::new();
            m.insert(
                "request_method".into(),
                Value::String(String::from_utf8_lossy(req.method()).into_owned()),
            );
            m.insert(
                "request_uri".into(),
                Value::String(String::from_utf8_lossy(req.path_with_query()).into_owned()),
            );
            m.insert(
                "request_uri_args".into(),
                Value::Object(query_map(req.query().unwrap_or_default())),
            );
            let headers: Map<String, Value> = req
                .headers()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).to_ascii_lowercase(),
                        Value::String(String::from_utf8_lossy(v).into_owned()),
                    )
                })
                .collect();
            m.insert("request_headers".into(), Value::Object(headers));
            m.insert(
                "request_body".into(),
                Value::String(String::from_utf8_lossy(req.body).into_owned()),
            );
            m.insert(
                "request_body_args".into(),
                serde_json::from_slice(req.body).unwrap_or(Value::Null),
            );
            out.clear();
            let _ = serde_json::to_writer(&mut out, &m);
            divan::black_box(out.len())
        });
    }
}

mod map {
    use super::*;

    const HEADERS: [(&[u8], &[u8]); 5] = [
        (b"Content-Type", b"application/json"),
        (b"x-amzn-RequestId", b"a1b2c3d4-0000-4000-8000-000000000001"),
        (b"X-Amzn-Trace-Id", b"root=1-6543-abcdef;sampled=0"),
        (b"X-Amz-Executed-Version", b"$LATEST"),
        (b"Content-Length", b"1024"),
    ];

    fn plain_output() -> Vec<u8> {
        let mut out = br#"{"items":[{"id":1,"name":"a"}],"text":""#.to_vec();
        out.resize(1022, b'y');
        out.extend_from_slice(b"\"}");
        out
    }

    fn proxy_output() -> Vec<u8> {
        let mut body = String::from(r#"{\"items\":[1,2,3],\"text\":\""#);
        while body.len() < 1000 {
            body.push('z');
        }
        body.push_str(r#"\"}"#);
        format!(r#"{{"statusCode":200,"headers":{{"Content-Type":"application/json","X-Custom":"1"}},"multiValueHeaders":{{"Set-Cookie":["a=1","b=2"]}},"body":"{body}","isBase64Encoded":false}}"#).into_bytes()
    }

    fn gateway(bencher: divan::Bencher, proxy: bool) {
        let cfg = plugin(false, proxy);
        let output = if proxy {
            proxy_output()
        } else {
            plain_output()
        };
        let mut mapper = ResponseMapper::default();
        let mut resp = Response::default();
        let mut buf = Vec::new();
        bencher.bench_local(|| {
            buf.clear();
            buf.extend_from_slice(&output);
            let a = LambdaAnswer {
                status: 200,
                headers: &HEADERS,
                body: &mut buf,
            };
            divan::black_box(mapper.map(&cfg, a, &mut resp))
        });
    }

    #[divan::bench]
    fn gateway_plain(bencher: divan::Bencher) {
        gateway(bencher, false);
    }

    #[divan::bench]
    fn gateway_proxy_integration(bencher: divan::Bencher) {
        gateway(bencher, true);
    }

    /// What a decode-and-re-encode gateway does with the same output (Kong via lua-resty-aws).
    fn baseline(bencher: divan::Bencher, proxy: bool) {
        let output = if proxy {
            proxy_output()
        } else {
            plain_output()
        };
        let mut resp = Response::default();
        bencher.bench_local(|| {
            resp.clear();
            for (n, v) in HEADERS
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(b"content-length"))
            {
                resp.header(n, v);
            }
            let Ok(v) = serde_json::from_slice::<Value>(divan::black_box(&output)) else {
                return;
            };
            if proxy {
                if let Some(Value::Object(h)) = v.get("headers") {
                    for (n, val) in h {
                        resp.header(n.as_bytes(), val.as_str().unwrap_or_default().as_bytes());
                    }
                }
                resp.body.extend_from_slice(
                    v.get("body")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .as_bytes(),
                );
            } else {
                let _ = serde_json::to_writer(&mut resp.body, &v);
            }
            divan::black_box(resp.body.len());
        });
    }

    #[divan::bench]
    fn baseline_serde_json_plain(bencher: divan::Bencher) {
        baseline(bencher, false);
    }

    #[divan::bench]
    fn baseline_serde_json_proxy_integration(bencher: divan::Bencher) {
        baseline(bencher, true);
    }
}
