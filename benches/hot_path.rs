//! The per-request hot path, each stage next to a baseline measured in the same run:
//!
//! - `parse`: our head parser (httparse + framing + Host/Connection rules) vs httparse alone;
//! - `encode`: the payload encoder (legacy and forward modes, 1 KiB and 64 KiB bodies) vs
//!   serde_json building the same JSON through a `Value`;
//! - `event`: API Gateway events (payload 1.0 and 2.0, 1 KiB body) vs serde_json building the
//!   same event through a `Value`;
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

/// A request parsed once, handed out to every iteration.
struct Parsed {
    raw: Vec<u8>,
    head: RequestHead,
}

impl Parsed {
    fn new(body_len: usize) -> Parsed {
        let raw = request(body_len);
        let mut head = RequestHead::default();
        let _ = head::parse(&raw, &Limits::default(), &mut head);
        Parsed { raw, head }
    }

    fn req(&self) -> Request<'_> {
        Request {
            peer: None,
            secure: false,
            buf: &self.raw,
            head: &self.head,
            body: &self.raw[self.head.len..],
        }
    }
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

mod event {
    use super::*;
    use lambda_gateway::lambda::config::PayloadVersion;
    use lambda_gateway::lambda::event::EventContext;
    use serde_json::json;

    fn context() -> EventContext<'static> {
        EventContext {
            resource: Some("/lambda1"),
            path_params: &[],
            source_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
            request_id: "c6af9ac6-7b61-11e6-9a41-93e812345678",
            time: std::time::SystemTime::now(),
            caller: None,
        }
    }

    fn gateway(bencher: divan::Bencher, version: PayloadVersion) {
        let parsed = Parsed::new(1024);
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.awsgateway_compatible = true;
        cfg.awsgateway_compatible_payload_version = version;
        let ctx = context();
        let mut enc = PayloadEncoder::default();
        bencher.bench_local(|| {
            let req = parsed.req();
            divan::black_box(enc.encode_unpaced(&cfg, &req, &ctx).is_ok())
        });
    }

    #[divan::bench]
    fn gateway_v1(bencher: divan::Bencher) {
        gateway(bencher, PayloadVersion::V1);
    }

    #[divan::bench]
    fn gateway_v2(bencher: divan::Bencher) {
        gateway(bencher, PayloadVersion::V2);
    }

    fn text(b: &[u8]) -> Value {
        Value::String(String::from_utf8_lossy(b).into_owned())
    }

    /// The same events through serde_json `Value`s, as a generic serializer builds them.
    fn baseline(bencher: divan::Bencher, v2: bool) {
        let parsed = Parsed::new(1024);
        let ctx = context();
        let mut out = Vec::new();
        bencher.bench_local(|| {
            let req = parsed.req();
            let mut headers = Map::new();
            let mut multi: Map<String, Value> = Map::new();
            for (n, v) in req.headers() {
                let name = if v2 {
                    String::from_utf8_lossy(n).to_ascii_lowercase()
                } else {
                    String::from_utf8_lossy(n).into_owned()
                };
                headers.insert(name.clone(), text(v));
                if let Value::Array(a) = multi.entry(name).or_insert(json!([])) {
                    a.push(text(v));
                }
            }
            let mut query = Map::new();
            let mut multi_query: Map<String, Value> = Map::new();
            for part in req.query().unwrap_or_default().split(|&b| b == b'&') {
                let t = String::from_utf8_lossy(part);
                let (k, v) = t.split_once('=').unwrap_or((&t, ""));
                query.insert(k.to_string(), json!(v));
                if let Value::Array(a) = multi_query.entry(k.to_string()).or_insert(json!([])) {
                    a.push(json!(v));
                }
            }
            let ip = ctx.source_ip.map(|ip| ip.to_string());
            let event = if v2 {
                json!({
                    "version": "2.0", "routeKey": "$default", "rawPath": text(req.path()),
                    "rawQueryString": text(req.query().unwrap_or_default()),
                    "headers": headers, "queryStringParameters": query,
                    "requestContext": {"accountId": "000000000000", "apiId": "lambdagateway",
                        "domainName": text(req.host().unwrap_or_default()), "domainPrefix": "api",
                        "http": {"method": text(req.method()), "path": text(req.path()),
                            "protocol": "HTTP/1.1", "sourceIp": ip, "userAgent": headers.get("user-agent")},
                        "requestId": ctx.request_id, "routeKey": "$default", "stage": "$default",
                        "time": "29/Nov/2026:20:47:54 +0000", "timeEpoch": 1_796_071_674_123u64},
                    "body": text(req.body), "isBase64Encoded": false,
                })
            } else {
                json!({
                    "version": "1.0", "resource": ctx.resource, "path": text(req.path()),
                    "httpMethod": text(req.method()), "headers": headers,
                    "multiValueHeaders": multi, "queryStringParameters": query,
                    "multiValueQueryStringParameters": multi_query, "pathParameters": null,
                    "stageVariables": null,
                    "requestContext": {"accountId": "000000000000", "apiId": "lambdagateway",
                        "resourceId": "lambdagateway", "resourcePath": ctx.resource,
                        "httpMethod": text(req.method()), "path": text(req.path()),
                        "protocol": "HTTP/1.1", "stage": "$default",
                        "domainName": text(req.host().unwrap_or_default()), "domainPrefix": "api",
                        "requestId": ctx.request_id, "extendedRequestId": ctx.request_id,
                        "requestTime": "29/Nov/2026:20:47:54 +0000",
                        "requestTimeEpoch": 1_796_071_674_123u64,
                        "identity": {"sourceIp": ip, "userAgent": headers.get("User-Agent")}},
                    "body": text(req.body), "isBase64Encoded": false,
                })
            };
            out.clear();
            let _ = serde_json::to_writer(&mut out, &event);
            divan::black_box(out.len())
        });
    }

    #[divan::bench]
    fn baseline_serde_json_v1(bencher: divan::Bencher) {
        baseline(bencher, false);
    }

    #[divan::bench]
    fn baseline_serde_json_v2(bencher: divan::Bencher) {
        baseline(bencher, true);
    }
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
        let parsed = Parsed::new(size);
        let cfg = plugin(forward, false);
        let mut enc = PayloadEncoder::default();
        bencher.bench_local(|| {
            let req = parsed.req();
            divan::black_box(enc.encode_unpaced(&cfg, &req, &Default::default()).is_ok())
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
        let parsed = Parsed::new(size);
        let mut out = Vec::new();
        bencher.bench_local(|| {
            let req = parsed.req();
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
        let parsed = Parsed::new(size);
        let mut out = Vec::new();
        bencher.bench_local(|| {
            let req = parsed.req();
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
