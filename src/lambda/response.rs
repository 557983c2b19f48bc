//! Mapping Lambda's answer to the client's response (SPEC §5 and the Lambda rows of §6).

use crate::http::encode::Response;
use crate::http::failure::Failure;
use crate::lambda::config::{LambdaConfig, PayloadVersion};
use base64::Engine;
use simd_json::prelude::*;
use simd_json::tape::{Tape, Value as TapeValue};
use std::io::Write as _;

/// Lambda's answer as the upstream client read it.
pub struct LambdaAnswer<'a> {
    /// HTTP status from the Invoke API.
    pub status: u16,
    /// Response headers (name, value).
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// The body; parsed in place (strings unescaped into it) for proxy integration.
    pub body: &'a mut [u8],
}

impl LambdaAnswer<'_> {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }
}

/// What the mapping decided, for the log line and the metrics (the answer is in the response
/// either way).
#[derive(Debug)]
pub enum Outcome {
    /// The function ran and its answer was mapped.
    Ok,
    /// The function failed (`X-Amz-Function-Error`: its error passed on, or answered as
    /// configured), the Invoke API refused the call, or a proxy-integration answer could not
    /// be used.
    Failed(Failure),
}

/// Headers never passed on from Lambda: hop-by-hop, recomputed, or private (SPEC §5, §8).
pub(super) fn is_dropped(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"upgrade",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"content-length",
        b"x-amz-log-result",
        b"via",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

pub(super) const VIA: &[u8] = b"1.1 lambda-gateway";

/// Reusable state for mapping (the JSON tape of proxy-integration answers).
pub struct ResponseMapper {
    tape: Tape<'static>,
    buffers: simd_json::Buffers,
    decoded: Vec<u8>,
    scratch: Vec<u8>,
    /// The output as the function wrote it, kept for payload 2.0's inferred answers (parsing
    /// unescapes strings in place).
    original: Vec<u8>,
}

impl Default for ResponseMapper {
    fn default() -> Self {
        ResponseMapper {
            tape: Tape(Vec::new()),
            buffers: simd_json::Buffers::new(4096),
            decoded: Vec::new(),
            scratch: Vec::new(),
            original: Vec::new(),
        }
    }
}

impl ResponseMapper {
    /// Bytes of buffer capacity held between requests (the tape is counted by node).
    pub fn retained_bytes(&self) -> usize {
        self.decoded.capacity()
            + self.original.capacity()
            + self.tape.0.capacity() * std::mem::size_of::<simd_json::Node<'static>>()
    }

    /// Maps `answer` into `resp` under `cfg`.
    pub fn map(
        &mut self,
        cfg: &LambdaConfig,
        answer: LambdaAnswer<'_>,
        resp: &mut Response,
    ) -> Outcome {
        resp.clear();
        if !(200..300).contains(&answer.status) {
            return map_api_error(&answer, cfg.preserve_lambda_api_error_code, resp);
        }
        let function_error = answer
            .header("x-amz-function-error")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        if cfg.is_proxy_integration && answer.status == 200 {
            if let Some(kind) = function_error {
                // An error document is not an output: not read as a proxy response (nor, with
                // payload 2.0, taken whole as the body), never shown to the client.
                function_error_answer(kind.clone(), cfg.unhandled_status, resp);
                pass_headers_for_error(answer.headers, resp);
                return Outcome::Failed(Failure::FunctionError {
                    kind,
                    unhandled_status: cfg.unhandled_status,
                });
            }
            let v2 = cfg.awsgateway_compatible
                && cfg.awsgateway_compatible_payload_version == PayloadVersion::V2;
            return match self.map_proxy(answer.headers, answer.body, v2, resp) {
                Ok(()) => Outcome::Ok,
                Err(failure) => {
                    let failure = Failure::BadProxyResponse(failure.to_string());
                    failure.answer(resp);
                    pass_headers_for_error(answer.headers, resp);
                    Outcome::Failed(failure)
                }
            };
        }
        resp.status = match (&function_error, cfg.unhandled_status) {
            (Some(kind), Some(status)) if kind == "Unhandled" => status,
            _ => answer.status,
        };
        pass_headers(answer.headers, resp, None);
        resp.body.extend_from_slice(answer.body);
        function_error.map_or(Outcome::Ok, |kind| {
            Outcome::Failed(Failure::FunctionError {
                kind,
                unhandled_status: cfg.unhandled_status,
            })
        })
    }

    /// Parses `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}` (and, with
    /// payload 2.0, `cookies`; an output without `statusCode` is then the body of a 200).
    fn map_proxy(
        &mut self,
        lambda_headers: &[(&[u8], &[u8])],
        body: &mut [u8],
        v2: bool,
        resp: &mut Response,
    ) -> Result<(), ProxyFailure> {
        if v2 {
            self.original.clear();
            self.original.extend_from_slice(body);
        }
        let mut tape: Tape<'_> = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let result = if body.is_empty() {
            Err(ProxyFailure::invalid("proxy response must be json format"))
        } else {
            match simd_json::fill_tape(body, &mut self.buffers, &mut tape) {
                Ok(()) if v2 && !has_status_code(tape.as_value()) => {
                    infer_v2(lambda_headers, &self.original, resp);
                    Ok(())
                }
                Ok(()) => apply_proxy(
                    tape.as_value(),
                    lambda_headers,
                    v2,
                    resp,
                    &mut self.decoded,
                    &mut self.scratch,
                ),
                Err(_) => Err(ProxyFailure::invalid("proxy response must be json format")),
            }
        };
        self.tape = tape.reset();
        result
    }
}

/// Whether an output is an object with a `statusCode` (else payload 2.0 infers the answer).
fn has_status_code(v: TapeValue<'_, '_>) -> bool {
    v.as_object().is_some_and(|o| o.get("statusCode").is_some())
}

/// API Gateway's payload 2.0 rule for an output without `statusCode`: a 200
/// `application/json` whose body is the output itself.
fn infer_v2(lambda_headers: &[(&[u8], &[u8])], output: &[u8], resp: &mut Response) {
    resp.status = 200;
    let mut content_type = NameSet::with_expected(1);
    content_type.insert(b"content-type");
    pass_headers(lambda_headers, resp, Some(&content_type));
    resp.header(b"Content-Type", b"application/json");
    resp.header(b"Via", VIA);
    resp.body.extend_from_slice(output);
}

fn apply_proxy(
    v: TapeValue<'_, '_>,
    lambda_headers: &[(&[u8], &[u8])],
    v2: bool,
    resp: &mut Response,
    decoded: &mut Vec<u8>,
    scalar: &mut Vec<u8>,
) -> Result<(), ProxyFailure> {
    let obj = v.as_object().ok_or("proxy response must be json format")?;
    let status = obj.get("statusCode").and_then(|s| {
        if let Some(n) = s.as_u64() {
            Some(n)
        } else if let Some(f) = s.as_f64() {
            (f.fract() == 0.0 && f >= 0.0).then_some(f as u64)
        } else {
            s.as_str().and_then(|t| t.trim().parse::<u64>().ok())
        }
    });
    let status = match status {
        Some(s) if (100..=599).contains(&s) => s as u16,
        _ => return Err(ProxyFailure::invalid("statusCode validation failed")),
    };
    let headers = obj.get("headers").filter(|h| !h.is_null());
    if headers.is_some_and(|h| h.as_object().is_none()) {
        return Err(ProxyFailure::invalid("headers must be a table"));
    }
    let multi = obj.get("multiValueHeaders").filter(|h| !h.is_null());
    if multi.is_some_and(|h| h.as_object().is_none()) {
        return Err(ProxyFailure::invalid("multiValueHeaders must be a table"));
    }
    let body = obj.get("body").filter(|b| !b.is_null());
    if body.is_some_and(|b| b.as_str().is_none()) {
        return Err(ProxyFailure::invalid("body must be a string"));
    }
    let is_b64 = match obj.get("isBase64Encoded").filter(|b| !b.is_null()) {
        None => false,
        Some(b) => b.as_bool().ok_or("isBase64Encoded must be a boolean")?,
    };
    let body = match &body {
        Some(b) => b.as_str().unwrap_or(""),
        None => "",
    };
    decoded.clear();
    if is_b64 {
        base64::engine::general_purpose::STANDARD
            .decode_vec(body.trim().as_bytes(), decoded)
            .map_err(|_| {
                ProxyFailure::invalid("body is not valid base64 although isBase64Encoded is true")
            })?;
    } else {
        decoded.extend_from_slice(body.as_bytes());
    }

    resp.status = status;
    // The function's headers win over Lambda's own, and multiValueHeaders over headers.
    let multi = multi.and_then(|m| m.as_object());
    let headers = headers.and_then(|h| h.as_object());
    let multi_len = multi.as_ref().map_or(0, |m| m.len());
    if multi_len + headers.as_ref().map_or(0, |h| h.len()) > MAX_PROXY_HEADER_NAMES {
        return Err(ProxyFailure::HeadersTooLarge);
    }
    let mut in_multi = NameSet::with_expected(multi_len);
    let mut overridden =
        NameSet::with_expected(multi_len + headers.as_ref().map_or(0, |h| h.len()));
    for name in multi.iter().flat_map(|m| m.keys()) {
        in_multi.insert(name.as_bytes());
        overridden.insert(name.as_bytes());
    }
    for name in headers.iter().flat_map(|h| h.keys()) {
        overridden.insert(name.as_bytes());
    }
    pass_headers(lambda_headers, resp, Some(&overridden));
    for (name, value) in headers.iter().flat_map(|h| h.iter()) {
        if !in_multi.contains(name.as_bytes()) && !is_dropped(name.as_bytes()) {
            write_header_values(resp, name.as_bytes(), value, scalar)?;
        }
    }
    for (name, value) in multi.iter().flat_map(|m| m.iter()) {
        if !is_dropped(name.as_bytes()) {
            write_header_values(resp, name.as_bytes(), value, scalar)?;
        }
    }
    // Payload 2.0's `cookies`: one Set-Cookie each.
    if let Some(cookies) = obj.get("cookies").filter(|c| v2 && !c.is_null()) {
        let items = cookies
            .as_array()
            .ok_or("cookies must be an array of strings")?;
        for cookie in items.iter() {
            let text = cookie
                .as_str()
                .ok_or("cookies must be an array of strings")?;
            resp.header(b"Set-Cookie", text.as_bytes());
            if resp.headers.len() > MAX_PROXY_HEADER_BYTES {
                return Err(ProxyFailure::HeadersTooLarge);
            }
        }
    }
    resp.header(b"Via", VIA);
    resp.body.extend_from_slice(decoded);
    Ok(())
}

/// A header value from JSON: a scalar gives one line, an array one line per element. Stops
/// once the header block is over [`MAX_PROXY_HEADER_BYTES`].
fn write_header_values(
    resp: &mut Response,
    name: &[u8],
    value: TapeValue<'_, '_>,
    scratch: &mut Vec<u8>,
) -> Result<(), ProxyFailure> {
    if let Some(items) = value.as_array() {
        for item in items.iter() {
            if scalar_text(item, scratch) {
                resp.header(name, scratch);
            }
            if resp.headers.len() > MAX_PROXY_HEADER_BYTES {
                return Err(ProxyFailure::HeadersTooLarge);
            }
        }
    } else if scalar_text(value, scratch) {
        resp.header(name, scratch);
    }
    if resp.headers.len() > MAX_PROXY_HEADER_BYTES {
        return Err(ProxyFailure::HeadersTooLarge);
    }
    Ok(())
}

/// A string, number or boolean as header text (Lua's `tostring`); `false` for other types.
fn scalar_text(v: TapeValue<'_, '_>, out: &mut Vec<u8>) -> bool {
    out.clear();
    if let Some(s) = v.as_str() {
        out.extend_from_slice(s.as_bytes());
    } else if let Some(b) = v.as_bool() {
        crate::json::write_bool(out, b);
    } else if let Some(n) = v.as_i64() {
        let _ = write!(out, "{n}");
    } else if let Some(f) = v.as_f64() {
        let _ = write!(out, "{f}");
    } else {
        return false;
    }
    true
}

/// Copies Lambda's headers (minus dropped ones and those in `skip`); adds `Via` unless the
/// caller writes more headers after these (`skip` is given).
fn pass_headers(headers: &[(&[u8], &[u8])], resp: &mut Response, skip: Option<&NameSet<'_>>) {
    for (name, value) in headers {
        if is_dropped(name) || skip.is_some_and(|s| s.contains(name)) {
            continue;
        }
        resp.header(name, value);
    }
    if skip.is_none() {
        resp.header(b"Via", VIA);
    }
}

/// Most header names a proxy response may set (`headers` and `multiValueHeaders` together).
pub const MAX_PROXY_HEADER_NAMES: usize = 1000;
/// Largest header block a proxy response may make, the same bound as the response head the
/// gateway reads from Lambda itself. Clients refuse far smaller heads (curl 100 KiB); nginx
/// answers 502 for an upstream head over its 4-8 KiB buffer.
pub const MAX_PROXY_HEADER_BYTES: usize = crate::http::client::MAX_RESPONSE_HEAD;

/// Why a proxy-integration answer could not be used (a 502).
#[derive(Debug, thiserror::Error)]
enum ProxyFailure {
    /// Kong's validation messages.
    #[error("could not JSON decode Lambda function response: {0}")]
    Invalid(String),
    /// More headers than a client could take.
    #[error("Lambda function response sets more than {MAX_PROXY_HEADER_NAMES} header names or {MAX_PROXY_HEADER_BYTES} bytes of headers")]
    HeadersTooLarge,
}

impl ProxyFailure {
    fn invalid(why: &str) -> Self {
        ProxyFailure::Invalid(why.to_string())
    }
}

impl From<&str> for ProxyFailure {
    fn from(why: &str) -> Self {
        ProxyFailure::invalid(why)
    }
}

/// Header names compared case-insensitively: a scan while there are few (no allocation for
/// the usual handful), a hash set once there are many, so a proxy answer with a million
/// header names costs linear time.
struct NameSet<'a> {
    few: smallvec::SmallVec<[&'a [u8]; FEW_NAMES]>,
    /// Names with their hashes (so growing never hashes again), and the hasher.
    many: Option<(NameTable<'a>, std::hash::RandomState)>,
    /// How many names are coming, to size the table once.
    expected: usize,
}

/// Header names with their hashes.
type NameTable<'a> = hashbrown::HashTable<(u64, &'a [u8])>;

/// Names kept in a plain list before [`NameSet`] switches to hashing.
const FEW_NAMES: usize = 16;

impl<'a> NameSet<'a> {
    /// A set for about `expected` names.
    fn with_expected(expected: usize) -> Self {
        NameSet {
            few: smallvec::SmallVec::new(),
            many: None,
            expected,
        }
    }

    fn insert(&mut self, name: &'a [u8]) {
        if self.many.is_none() {
            if self.few.len() < FEW_NAMES {
                self.few.push(name);
                return;
            }
            let table = hashbrown::HashTable::with_capacity(self.expected.max(FEW_NAMES * 2));
            self.many = Some((table, std::hash::RandomState::new()));
            for n in std::mem::take(&mut self.few) {
                self.insert(n);
            }
        }
        if let Some((table, hasher)) = &mut self.many {
            let hash = hash_ignore_case(hasher, name);
            if table
                .find(hash, |(_, n)| n.eq_ignore_ascii_case(name))
                .is_none()
            {
                table.insert_unique(hash, (hash, name), |(h, _)| *h);
            }
        }
    }

    fn contains(&self, name: &[u8]) -> bool {
        match &self.many {
            Some((table, hasher)) => table
                .find(hash_ignore_case(hasher, name), |(_, n)| {
                    n.eq_ignore_ascii_case(name)
                })
                .is_some(),
            None => self.few.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

fn hash_ignore_case(hasher: &std::hash::RandomState, name: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = hasher.build_hasher();
    let mut lower = [0u8; 64];
    for chunk in name.chunks(lower.len()) {
        let lower = &mut lower[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        h.write(lower);
    }
    h.finish()
}

/// On an error answer the gateway makes, Lambda's request id still reaches the client.
/// A function error where a proxy response was expected: `unhandled_status` or 502, Kong's
/// error shape, and `X-Amz-Function-Error` saying what kind.
pub fn function_error_answer(kind: String, unhandled_status: Option<u16>, resp: &mut Response) {
    resp.clear();
    let header = kind.clone();
    Failure::FunctionError {
        kind,
        unhandled_status,
    }
    .answer(resp);
    resp.header(b"X-Amz-Function-Error", header.as_bytes());
}

fn pass_headers_for_error(headers: &[(&[u8], &[u8])], resp: &mut Response) {
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"x-amzn-requestid") {
            resp.header(name, value);
        }
    }
    resp.header(b"Via", VIA);
}

/// The Invoke API refused the call: 429 (with Retry-After), 413, or 502 with the error type;
/// with `preserve`, Lambda's own status.
fn map_api_error(answer: &LambdaAnswer<'_>, preserve: bool, resp: &mut Response) -> Outcome {
    let failure = Failure::LambdaApi {
        status: answer.status,
        error_type: error_type(answer),
        preserve,
    };
    failure.answer(resp);
    if answer.status == 429 {
        if let Some(retry) = answer.header("retry-after") {
            resp.header(b"Retry-After", retry);
        }
    }
    pass_headers_for_error(answer.headers, resp);
    Outcome::Failed(failure)
}

/// `x-amzn-ErrorType: Code[:namespace]`, else the body's `__type`/`Type`, else the status.
fn error_type(answer: &LambdaAnswer<'_>) -> String {
    if let Some(v) = answer.header("x-amzn-errortype") {
        let code = v.split(|&b| b == b':' || b == b'#').next().unwrap_or(v);
        if !code.is_empty() {
            return String::from_utf8_lossy(code).into_owned();
        }
    }
    if let Ok(serde_json::Value::Object(map)) =
        serde_json::from_slice::<serde_json::Value>(answer.body)
    {
        for key in ["__type", "code", "Code"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.rsplit('#').next().unwrap_or(s).to_string();
            }
        }
    }
    format!("HTTP {}", answer.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(
        cfg: &LambdaConfig,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (Response, Option<String>) {
        let hs: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let mut body = body.as_bytes().to_vec();
        let mut resp = Response::default();
        let outcome = ResponseMapper::default().map(
            cfg,
            LambdaAnswer {
                status,
                headers: &hs,
                body: &mut body,
            },
            &mut resp,
        );
        // What the log line says of it.
        let said = match outcome {
            Outcome::Ok => None,
            Outcome::Failed(failure) => Some(failure.to_string()),
        };
        (resp, said)
    }

    fn header_text(r: &Response) -> String {
        String::from_utf8_lossy(&r.headers).into_owned()
    }

    #[test]
    fn passes_the_body_byte_for_byte_with_headers() {
        let cfg = LambdaConfig::with_defaults("f");
        let (r, o) = map(
            &cfg,
            200,
            &[
                ("x-amzn-RequestId", "r1"),
                ("Content-Length", "2"),
                ("Connection", "keep-alive"),
                ("X-Amz-Log-Result", "c2VjcmV0"),
                ("Content-Type", "application/json"),
            ],
            "[]",
        );
        assert_eq!((r.status, r.body.as_slice(), o), (200, &b"[]"[..], None));
        assert_eq!(
            header_text(&r),
            "x-amzn-RequestId: r1\r\nContent-Type: application/json\r\nVia: 1.1 lambda-gateway\r\n"
        );
    }

    #[test]
    fn unhandled_status() {
        let mut cfg = LambdaConfig::with_defaults("f");
        let err = [("X-Amz-Function-Error", "Unhandled")];
        assert_eq!(map(&cfg, 200, &err, "{}").0.status, 200);
        cfg.unhandled_status = Some(412);
        let (r, o) = map(&cfg, 200, &err, "{}");
        assert_eq!(
            (r.status, o),
            (412, Some("function error: Unhandled".into()))
        );
        assert_eq!(
            map(&cfg, 200, &[("X-Amz-Function-Error", "Handled")], "{}")
                .0
                .status,
            200
        );
    }

    #[test]
    fn proxy_integration() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.is_proxy_integration = true;
        let (r, o) = map(
            &cfg,
            200,
            &[("x-amzn-RequestId", "r1"), ("X-Custom", "lambda")],
            r#"{"statusCode":"201","headers":{"X-Custom":"fn","X-N":5,"Content-Length":"999"},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"aGk=","isBase64Encoded":true}"#,
        );
        assert_eq!((r.status, r.body.as_slice(), o), (201, &b"hi"[..], None));
        assert_eq!(
            header_text(&r),
            "x-amzn-RequestId: r1\r\nX-Custom: fn\r\nX-N: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVia: 1.1 lambda-gateway\r\n"
        );
        let (r, _) = map(
            &cfg,
            200,
            &[],
            r#"{"statusCode":200,"body":"{\"a\":\"\\u00e9\"}"}"#,
        );
        assert_eq!(r.body, "{\"a\":\"\\u00e9\"}".as_bytes());
        let (r, _) = map(
            &cfg,
            200,
            &[],
            r#"{"statusCode":204,"multiValueHeaders":null}"#,
        );
        assert_eq!((r.status, r.body.len()), (204, 0));
        // Without headers of the function's own, Lambda's pass and `Via` is there once.
        let (r, _) = map(
            &cfg,
            200,
            &[("x-amzn-RequestId", "r2")],
            r#"{"statusCode":200}"#,
        );
        assert_eq!(
            header_text(&r),
            "x-amzn-RequestId: r2\r\nVia: 1.1 lambda-gateway\r\n"
        );
    }

    /// A proxy answer may not make a header block no client would take.
    #[test]
    fn header_bombs_are_502() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.is_proxy_integration = true;
        let many: Vec<String> = (0..=MAX_PROXY_HEADER_NAMES)
            .map(|i| format!("\"x-{i}\":\"v\""))
            .collect();
        let values = vec!["\"v\""; 20_000].join(",");
        for output in [
            format!(r#"{{"statusCode":200,"headers":{{{}}}}}"#, many.join(",")),
            format!(r#"{{"statusCode":200,"multiValueHeaders":{{"x-a":[{values}]}}}}"#),
        ] {
            let (r, o) = map(&cfg, 200, &[("x-amzn-RequestId", "r")], &output);
            assert_eq!(r.status, 502);
            assert!(
                matches!(o, Some(ref why) if why.contains("header")),
                "{o:?}"
            );
            assert!(
                String::from_utf8_lossy(&r.body).contains("more than 1000 header names"),
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(
                header_text(&r),
                "Content-Type: application/json; charset=utf-8\r\nx-amzn-RequestId: r\r\nVia: 1.1 lambda-gateway\r\n"
            );
        }
        // The most names allowed pass.
        let most = &many[..MAX_PROXY_HEADER_NAMES];
        let output = format!(r#"{{"statusCode":200,"headers":{{{}}}}}"#, most.join(","));
        let (r, o) = map(&cfg, 200, &[], &output);
        assert_eq!((r.status, o), (200, None));
    }

    /// Past the few names kept in a list, overrides go through the hash set; the result is
    /// the same as with few names.
    #[test]
    fn many_header_names_override_as_few_do() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.is_proxy_integration = true;
        let names: Vec<String> = (0..40).map(|i| format!("X-H{i}")).collect();
        let headers: Vec<String> = names.iter().map(|n| format!("\"{n}\":\"h\"")).collect();
        // Every other name is also in multiValueHeaders, in another case: multi wins.
        let multi: Vec<String> = names
            .iter()
            .step_by(2)
            .map(|n| format!("\"{}\":[\"m\"]", n.to_lowercase()))
            .collect();
        let output = format!(
            r#"{{"statusCode":200,"headers":{{{}}},"multiValueHeaders":{{{}}}}}"#,
            headers.join(","),
            multi.join(",")
        );
        let (r, o) = map(&cfg, 200, &[("X-H1", "lambda"), ("X-Other", "l")], &output);
        assert_eq!(o, None);
        let text = header_text(&r);
        assert!(text.starts_with("X-Other: l\r\nX-H1: h\r\n"), "{text}");
        assert_eq!(text.matches(": h\r\n").count(), 20, "{text}");
        assert_eq!(text.matches(": m\r\n").count(), 20, "{text}");
        assert_eq!(text.matches("lambda-gateway").count(), 1, "{text}");
        assert!(!text.contains("lambda\r\n"), "{text}");
    }

    #[test]
    fn malformed_proxy_answers_are_502_with_kongs_messages() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.is_proxy_integration = true;
        for (body, why) in [
            ("not json", "proxy response must be json format"),
            ("", "proxy response must be json format"),
            ("[1]", "proxy response must be json format"),
            (r#"{"statusCode":"hello"}"#, "statusCode validation failed"),
            (r#"{"body":"x"}"#, "statusCode validation failed"),
            (r#"{"statusCode":700}"#, "statusCode validation failed"),
            (
                r#"{"statusCode":200,"headers":"hello"}"#,
                "headers must be a table",
            ),
            (r#"{"statusCode":200,"body":5}"#, "body must be a string"),
            (
                r#"{"statusCode":200,"isBase64Encoded":"abc"}"#,
                "isBase64Encoded must be a boolean",
            ),
        ] {
            let (r, o) = map(&cfg, 200, &[], body);
            assert_eq!(r.status, 502, "{body}");
            let want = format!("{{\"message\":\"Bad Gateway\",\"error\":\"could not JSON decode Lambda function response: {why}\"}}");
            assert_eq!(String::from_utf8_lossy(&r.body), want, "{body}");
            let said = format!("could not JSON decode Lambda function response: {why}");
            assert_eq!(o, Some(said));
        }
    }

    #[test]
    fn api_errors() {
        let cfg = LambdaConfig::with_defaults("f");
        let (r, o) = map(
            &cfg,
            404,
            &[
                (
                    "x-amzn-ErrorType",
                    "ResourceNotFoundException:http://internal.amazon.com/",
                ),
                ("x-amzn-RequestId", "r9"),
            ],
            "{}",
        );
        assert_eq!(r.status, 502);
        assert_eq!(
            r.body,
            br#"{"message":"Bad Gateway","error":"ResourceNotFoundException"}"#
        );
        assert!(header_text(&r).contains("x-amzn-RequestId: r9\r\n"));
        assert_eq!(o, Some("ResourceNotFoundException".into()));
        let (r, _) = map(
            &cfg,
            429,
            &[
                ("x-amzn-ErrorType", "TooManyRequestsException"),
                ("Retry-After", "3"),
            ],
            "{}",
        );
        assert_eq!(r.status, 429);
        assert!(header_text(&r).contains("Retry-After: 3\r\n"));
        let (r, _) = map(&cfg, 413, &[], r#"{"__type":"RequestTooLargeException"}"#);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (
                413,
                &br#"{"message":"Payload too large","error":"RequestTooLargeException"}"#[..]
            )
        );
    }

    #[test]
    fn preserved_api_error_codes() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.preserve_lambda_api_error_code = true;
        let not_found = [
            ("x-amzn-ErrorType", "ResourceNotFoundException"),
            ("x-amzn-RequestId", "r9"),
        ];
        let (r, o) = map(&cfg, 404, &not_found, "{}");
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body,
            br#"{"message":"Not Found","error":"ResourceNotFoundException"}"#
        );
        assert!(header_text(&r).contains("x-amzn-RequestId: r9\r\n"));
        assert_eq!(o, Some("ResourceNotFoundException".into()));
        let (r, _) = map(
            &cfg,
            502,
            &[("x-amzn-ErrorType", "EC2ThrottledException")],
            "{}",
        );
        assert_eq!(r.status, 502);
        // Throttling keeps its Retry-After either way.
        let (r, _) = map(&cfg, 429, &[("Retry-After", "3")], "{}");
        assert_eq!(r.status, 429);
        assert!(header_text(&r).contains("Retry-After: 3\r\n"));
    }

    #[test]
    fn payload_2_0_infers_answers_and_sets_cookies() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.is_proxy_integration = true;
        cfg.awsgateway_compatible = true;
        cfg.awsgateway_compatible_payload_version = PayloadVersion::V2;
        let lambda = [("Content-Type", "text/plain"), ("x-amzn-RequestId", "r1")];
        // No statusCode: a 200 application/json whose body is the output, byte for byte.
        for output in [
            r#"{"hello": "w\u00f6rld"}"#,
            r#""just a string""#,
            "[1,2]",
            "42",
        ] {
            let (r, o) = map(&cfg, 200, &lambda, output);
            assert_eq!(
                (r.status, r.body.as_slice(), o),
                (200, output.as_bytes(), None)
            );
            let h = header_text(&r);
            assert!(
                h.contains("Content-Type: application/json\r\n") && !h.contains("text/plain"),
                "{h}"
            );
            assert!(h.contains("x-amzn-RequestId: r1\r\n"), "{h}");
        }
        // With statusCode: cookies become Set-Cookie lines.
        let (r, _) = map(
            &cfg,
            200,
            &lambda,
            r#"{"statusCode":201,"cookies":["a=1; Path=/","b=2"],"headers":{"X":"y"},"body":"ok"}"#,
        );
        assert_eq!((r.status, r.body.as_slice()), (201, &b"ok"[..]));
        let h = header_text(&r);
        assert!(
            h.contains("Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"),
            "{h}"
        );
        let (r, _) = map(&cfg, 200, &lambda, r#"{"statusCode":200,"cookies":"a=1"}"#);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (502, &br#"{"message":"Bad Gateway","error":"could not JSON decode Lambda function response: cookies must be an array of strings"}"#[..])
        );
        // Payload 1.0 keeps Kong's rule: no statusCode is a malformed answer.
        cfg.awsgateway_compatible_payload_version = PayloadVersion::V1;
        let (r, _) = map(&cfg, 200, &lambda, r#"{"hello":"world"}"#);
        assert_eq!(r.status, 502);
    }
}
