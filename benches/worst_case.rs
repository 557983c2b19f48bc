//! Every client-facing parser on the worst input shape found for it, next to a typical input of
//! the same size, at the size limit. A parser whose cost is linear in its input keeps the ratio
//! of the two a small constant; a super-linear one shows a ratio that grows with the size.
//!
//! - `json_legacy`: a 6 MiB JSON body of tiny distinct members (and of one key repeated, and
//!   of tiny array elements next to a query argument) vs one 6 MiB member; serde_json decoding
//!   the worst body into a `Value` is the baseline;
//! - `json_forward`: the same bodies in forward mode (checked, then sent as text);
//! - `multipart`: tiny parts, and false delimiters in a part, vs one part;
//! - `escape`: a forward-mode text body of control bytes (six output bytes each) vs letters;
//! - `head`: a 32 KiB head of 100 one-byte headers and a query of flags vs one long header;
//! - `chunked`: 6-byte chunks (as much framing as the decoder allows) vs one chunk;
//! - `proxy_response`: a 7 MiB proxy answer with the most header names accepted, and one of
//!   nothing but header names (refused), vs one body string;
//! - `admin_form`: a 1 MiB Admin API form of many keys vs one long value.
//!
//! Run: `cargo bench --bench worst_case`

use lambda_gateway::admin::body;
use lambda_gateway::http::chunked::ChunkedDecoder;
use lambda_gateway::http::encode::Response;
use lambda_gateway::http::head::{self, RequestHead};
use lambda_gateway::http::request::Request;
use lambda_gateway::http::Limits;
use lambda_gateway::lambda::config::LambdaConfig;
use lambda_gateway::lambda::payload::PayloadEncoder;
use lambda_gateway::lambda::response::{LambdaAnswer, ResponseMapper, MAX_PROXY_HEADER_NAMES};

fn main() {
    divan::main();
}

/// The body limit, less room for the JSON the encoder adds around a body.
const BODY: usize = 6 * 1024 * 1024 - 64 * 1024;

/// Appends `unit(i)` for i = 0.. while it fits in `size` bytes, between `open` and `close`.
fn repeated(
    open: &str,
    unit: impl Fn(usize) -> String,
    sep: &str,
    close: &str,
    size: usize,
) -> Vec<u8> {
    let mut out = open.as_bytes().to_vec();
    let mut i = 0;
    loop {
        let u = unit(i);
        if out.len() + u.len() + sep.len() + close.len() > size {
            break;
        }
        if i > 0 {
            out.extend_from_slice(sep.as_bytes());
        }
        out.extend_from_slice(u.as_bytes());
        i += 1;
    }
    out.extend_from_slice(close.as_bytes());
    out
}

/// A JSON object with one string member filling `size` bytes.
fn one_member(size: usize) -> Vec<u8> {
    let mut out = br#"{"k":""#.to_vec();
    out.resize(size - 2, b'a');
    out.extend_from_slice(b"\"}");
    out
}

fn tiny_members(size: usize) -> Vec<u8> {
    repeated("{", |i| format!("\"k{i:07}\":1"), ",", "}", size)
}

fn repeated_key(size: usize) -> Vec<u8> {
    repeated("{", |_| "\"k\":1".to_string(), ",", "}", size)
}

fn tiny_elements(size: usize) -> Vec<u8> {
    repeated("[", |_| "1".to_string(), ",", "]", size)
}

fn raw_request(target: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {target} HTTP/1.1\r\nHost: h\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// Encodes `raw` once per iteration with a fresh encoder (as a request that cannot reuse a
/// pooled scratch set would), asserting it fits.
fn bench_encode(bencher: divan::Bencher, raw: Vec<u8>, cfg: LambdaConfig) {
    let mut head = RequestHead::default();
    assert_eq!(head::parse(&raw, &Limits::default(), &mut head), Ok(true));
    bencher.bench_local(|| {
        let req = Request {
            peer: None,
            secure: false,
            buf: &raw,
            head: &head,
            body: &raw[head.len..],
        };
        let mut enc = PayloadEncoder::default();
        let r = enc.encode_unpaced(&cfg, &req, &Default::default());
        assert!(r.is_ok(), "{r:?}");
        divan::black_box(enc.out.len())
    });
}

fn forward() -> LambdaConfig {
    let mut cfg = LambdaConfig::with_defaults("f");
    cfg.forward_request_body = true;
    cfg.forward_request_method = true;
    cfg.forward_request_uri = true;
    cfg.forward_request_headers = true;
    cfg
}

mod json_legacy {
    use super::*;

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn typical_one_member(b: divan::Bencher) {
        bench_encode(
            b,
            raw_request("/", "application/json", &one_member(BODY)),
            LambdaConfig::with_defaults("f"),
        );
    }

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_tiny_members(b: divan::Bencher) {
        bench_encode(
            b,
            raw_request("/", "application/json", &tiny_members(BODY)),
            LambdaConfig::with_defaults("f"),
        );
    }

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_one_key_repeated(b: divan::Bencher) {
        bench_encode(
            b,
            raw_request("/", "application/json", &repeated_key(BODY)),
            LambdaConfig::with_defaults("f"),
        );
    }

    /// With a query argument, elements become members `"1":…`, `"2":…`: a 0.85 MiB body of
    /// them grows to most of the payload limit.
    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_tiny_elements_with_query(b: divan::Bencher) {
        let body = tiny_elements(BODY / 7);
        let raw = raw_request("/?1=q&x=y", "application/json", &body);
        bench_encode(b, raw, LambdaConfig::with_defaults("f"));
    }

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_deep_nesting(b: divan::Bencher) {
        let depth = BODY / 2 - 1;
        let body = format!("[{}{}]", "[".repeat(depth - 1), "]".repeat(depth - 1));
        bench_encode(
            b,
            raw_request("/?q=1", "application/json", body.as_bytes()),
            LambdaConfig::with_defaults("f"),
        );
    }

    /// serde_json decoding the tiny-members body into a tree: what any JSON-reading gateway
    /// pays at the least.
    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn baseline_serde_json_value(b: divan::Bencher) {
        let body = tiny_members(BODY);
        b.bench_local(|| {
            divan::black_box(serde_json::from_slice::<serde_json::Value>(&body).is_ok())
        });
    }
}

mod json_forward {
    use super::*;

    /// Forward mode sends the body twice (as text and as arguments), escaping every `"` in
    /// the text: 2.4 MiB bodies fit the payload limit.
    const SIZE: usize = BODY * 2 / 5;

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn typical_one_member(b: divan::Bencher) {
        let body = one_member(SIZE);
        bench_encode(b, raw_request("/", "application/json", &body), forward());
    }

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_tiny_members(b: divan::Bencher) {
        let body = tiny_members(SIZE);
        bench_encode(b, raw_request("/", "application/json", &body), forward());
    }
}

mod multipart {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=B";

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn typical_one_part(b: divan::Bencher) {
        let mut body = b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n".to_vec();
        body.resize(BODY - 10, b'a');
        body.extend_from_slice(b"\r\n--B--\r\n");
        bench_encode(
            b,
            raw_request("/", CT, &body),
            LambdaConfig::with_defaults("f"),
        );
    }

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_tiny_parts(b: divan::Bencher) {
        let body = repeated(
            "",
            |i| format!("--B\r\nContent-Disposition: form-data; name=\"k{i}\"\r\n\r\nv\r\n"),
            "",
            "--B--\r\n",
            BODY,
        );
        bench_encode(
            b,
            raw_request("/", CT, &body),
            LambdaConfig::with_defaults("f"),
        );
    }

    /// A part full of `--B` not preceded by CRLF: each is a delimiter candidate to reject.
    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_false_delimiters(b: divan::Bencher) {
        let mut body = b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nx".to_vec();
        while body.len() < BODY - 20 {
            body.extend_from_slice(b"--B");
        }
        body.extend_from_slice(b"\r\n--B--\r\n");
        bench_encode(
            b,
            raw_request("/", CT, &body),
            LambdaConfig::with_defaults("f"),
        );
    }
}

mod escape {
    use super::*;

    /// 1 MiB: control bytes become `\u00XX`, six bytes each, which still fits the payload limit.
    const TEXT: usize = 1000 * 1024;

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn typical_letters(b: divan::Bencher) {
        bench_encode(
            b,
            raw_request("/", "text/plain", &vec![b'a'; TEXT]),
            forward(),
        );
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn worst_control_bytes(b: divan::Bencher) {
        bench_encode(
            b,
            raw_request("/", "text/plain", &vec![1u8; TEXT]),
            forward(),
        );
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn worst_invalid_utf8(b: divan::Bencher) {
        bench_encode(
            b,
            raw_request("/", "text/plain", &vec![0xffu8; TEXT]),
            forward(),
        );
    }
}

mod request_head {
    use super::*;

    const SIZE: usize = 32 * 1024 - 64;

    fn bench_parse(b: divan::Bencher, raw: Vec<u8>) {
        assert!(raw.len() <= 32 * 1024, "{}", raw.len());
        let mut h = RequestHead::default();
        let limits = Limits::default();
        assert_eq!(head::parse(&raw, &limits, &mut h), Ok(true));
        let cfg = forward();
        let mut enc = PayloadEncoder::default();
        b.bench_local(|| {
            let _ = head::parse(&raw, &limits, &mut h);
            let req = Request {
                peer: None,
                secure: false,
                buf: &raw,
                head: &h,
                body: &raw[h.len..],
            };
            divan::black_box(enc.encode_unpaced(&cfg, &req, &Default::default()).is_ok())
        });
    }

    #[divan::bench]
    fn typical_one_long_header(b: divan::Bencher) {
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: ".to_vec();
        raw.resize(SIZE, b'v');
        raw.extend_from_slice(b"\r\n\r\n");
        bench_parse(b, raw);
    }

    /// 99 repeated header names (one array in `request_headers`) and a query of flags.
    #[divan::bench]
    fn worst_many_headers_and_flags(b: divan::Bencher) {
        let mut raw = b"GET /?".to_vec();
        while raw.len() < SIZE - 99 * 8 - 64 {
            raw.extend_from_slice(b"a&");
        }
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n");
        for _ in 0..98 {
            raw.extend_from_slice(b"X: v\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        bench_parse(b, raw);
    }
}

mod chunked_body {
    use super::*;

    fn bench_decode(b: divan::Bencher, wire: Vec<u8>) {
        let mut out = Vec::new();
        b.bench_local(|| {
            out.clear();
            let mut d = ChunkedDecoder::new(6 * 1024 * 1024);
            let used = d.decode(&wire, &mut out);
            assert_eq!(used, Ok(wire.len()));
            divan::black_box(out.len())
        });
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn typical_one_chunk(b: divan::Bencher) {
        let mut wire = format!("{:x}\r\n", BODY).into_bytes();
        wire.resize(wire.len() + BODY, b'a');
        wire.extend_from_slice(b"\r\n0\r\n\r\n");
        bench_decode(b, wire);
    }

    /// 6-byte chunks: five framing bytes for six data bytes, about the most framing allowed.
    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn worst_tiny_chunks(b: divan::Bencher) {
        let mut wire = b"6\r\naaaaaa\r\n".repeat(BODY / 6);
        wire.extend_from_slice(b"0\r\n\r\n");
        bench_decode(b, wire);
    }
}

mod proxy_response {
    use super::*;

    const SIZE: usize = 7 * 1024 * 1024 - 1024;

    fn bench_map(b: divan::Bencher, output: Vec<u8>, status: u16) {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.is_proxy_integration = true;
        let mut mapper = ResponseMapper::default();
        let mut resp = Response::default();
        let mut buf = Vec::new();
        b.bench_local(|| {
            buf.clear();
            buf.extend_from_slice(&output);
            let answer = LambdaAnswer {
                status: 200,
                headers: &[(b"x-amzn-RequestId", b"r")],
                body: &mut buf,
            };
            let outcome = mapper.map(&cfg, answer, &mut resp);
            assert_eq!(resp.status, status, "{outcome:?}");
            divan::black_box(resp.headers.len() + resp.body.len())
        });
    }

    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn typical_one_body(b: divan::Bencher) {
        let mut out = br#"{"statusCode":200,"headers":{"X-A":"1"},"body":""#.to_vec();
        out.resize(SIZE - 2, b'a');
        out.extend_from_slice(b"\"}");
        bench_map(b, out, 200);
    }

    /// The most header names accepted (half in `headers`, half in `multiValueHeaders` in
    /// another case, so each is looked up in the other map), then a body filling the answer.
    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_most_header_names(b: divan::Bencher) {
        let half = MAX_PROXY_HEADER_NAMES / 2;
        let headers: Vec<String> = (0..half).map(|i| format!("\"x-h{i:03}\":\"v\"")).collect();
        let multi: Vec<String> = (0..half)
            .map(|i| format!("\"X-H{i:03}\":[\"w\"]"))
            .collect();
        let mut out = format!(
            r#"{{"statusCode":200,"headers":{{{}}},"multiValueHeaders":{{{}}},"body":""#,
            headers.join(","),
            multi.join(",")
        )
        .into_bytes();
        out.resize(SIZE - 2, b'a');
        out.extend_from_slice(b"\"}");
        bench_map(b, out, 200);
    }

    /// A whole answer of header names: refused (502) once counted.
    #[divan::bench(sample_count = 5, sample_size = 1)]
    fn worst_header_bomb(b: divan::Bencher) {
        let names = repeated("", |i| format!("\"x-h{i:07}\":\"v\""), ",", "", SIZE - 64);
        let mut out = br#"{"statusCode":200,"headers":{"#.to_vec();
        out.extend_from_slice(&names);
        out.extend_from_slice(b"}}");
        bench_map(b, out, 502);
    }
}

mod admin_form {
    use super::*;

    const SIZE: usize = 1024 * 1024;
    const FORM: &[u8] = b"application/x-www-form-urlencoded";

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn typical_one_value(b: divan::Bencher) {
        let mut form = b"name=".to_vec();
        form.resize(SIZE, b'a');
        b.bench_local(|| divan::black_box(body::parse(Some(FORM), &form).is_ok()));
    }

    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn worst_many_keys(b: divan::Bencher) {
        let form = repeated("", |i| format!("c.k{i}[2]=v"), "&", "", SIZE);
        b.bench_local(|| divan::black_box(body::parse(Some(FORM), &form).is_ok()));
    }
}
