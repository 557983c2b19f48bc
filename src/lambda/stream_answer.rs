//! The client's answer to a streamed function output (`invoke_mode: RESPONSE_STREAM`).
//!
//! A function that streams through Lambda's HTTP integration (Node's
//! `awslambda.HttpResponseStream.from`, the Rust runtime's `run_with_streaming_response`, what
//! Function URLs read) marks its output `application/vnd.awslambda.http-integration-response`
//! and begins it with a *prelude*: a JSON object with `statusCode`, `headers` and `cookies`,
//! then eight NUL bytes, then the body. The prelude sets the client's status and headers.
//! Any other output is the body itself, a 200 with the function's content type.

use super::config::LambdaConfig;
use super::response::{function_error_answer, is_dropped, VIA};
use crate::http::client::MAX_RESPONSE_HEAD;
use crate::http::encode::Response;
use serde_json::Value;

/// The content type that announces a prelude.
pub const HTTP_INTEGRATION: &[u8] = b"application/vnd.awslambda.http-integration-response";
/// Largest prelude accepted, its separator excluded: the bound on a response head from Lambda.
pub const MAX_PRELUDE: usize = MAX_RESPONSE_HEAD;
/// What ends the prelude.
const SEPARATOR: [u8; 8] = [0; 8];
/// A streamed body without a content type of its own (Function URLs say the same).
const DEFAULT_CONTENT_TYPE: &[u8] = b"application/octet-stream";

/// Whether an output with this (Lambda `Content-Type`) header starts with a prelude.
pub fn has_prelude(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|t| {
        t.split(|&b| b == b';')
            .next()
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(HTTP_INTEGRATION))
    })
}

/// A prelude gathered across the chunks it may be split over.
#[derive(Default)]
pub struct Prelude {
    bytes: Vec<u8>,
}

impl Prelude {
    /// Adds the next chunk of output. `Ok(Some(at))` once the separator is in: the body
    /// starts at `chunk[at..]` and [`Prelude::json`] is complete. Holds at most
    /// [`MAX_PRELUDE`] bytes plus the separator; a longer prelude is an error.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<usize>, String> {
        let old = self.bytes.len();
        let room = (MAX_PRELUDE + SEPARATOR.len()).saturating_sub(old);
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        // The separator may straddle the previous chunk and this one.
        let from = old.saturating_sub(SEPARATOR.len() - 1);
        if let Some(i) = memchr::memmem::find(&self.bytes[from..], &SEPARATOR) {
            let end = from + i;
            self.bytes.truncate(end);
            return Ok(Some(end + SEPARATOR.len() - old));
        }
        if self.bytes.len() >= MAX_PRELUDE + SEPARATOR.len() {
            return Err(format!(
                "the streamed response's prelude has no end within {MAX_PRELUDE} bytes"
            ));
        }
        Ok(None)
    }

    /// The prelude's JSON (complete once [`Prelude::feed`] found the end).
    pub fn json(&self) -> &[u8] {
        &self.bytes
    }
}

/// Lambda's headers (the invoke response's) that reach the client: not hop-by-hop or
/// framing, not the stream's own content type, and not one the function set (`overridden`).
fn pass_lambda_headers(
    lambda_headers: &[(&[u8], &[u8])],
    resp: &mut Response,
    overridden: impl Fn(&[u8]) -> bool,
) {
    for (name, value) in lambda_headers {
        if !is_dropped(name) && !name.eq_ignore_ascii_case(b"content-type") && !overridden(name) {
            resp.header(name, value);
        }
    }
}

/// The answer's head for an output without a prelude: a 200 with the function's content type.
pub fn plain_head(lambda_headers: &[(&[u8], &[u8])], resp: &mut Response) {
    resp.clear();
    pass_lambda_headers(lambda_headers, resp, |_| false);
    let content_type = lambda_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-type"))
        .map(|(_, v)| *v)
        .filter(|v| !v.is_empty() && !v.starts_with(b"application/vnd.amazon.eventstream"));
    resp.header(
        b"Content-Type",
        content_type.unwrap_or(DEFAULT_CONTENT_TYPE),
    );
    resp.header(b"Via", VIA);
}

/// The answer's head from a prelude's JSON: `statusCode` (default 200), `headers` (a scalar
/// or an array of scalars per name), `cookies` (one `Set-Cookie` each).
pub fn prelude_head(
    json: &[u8],
    lambda_headers: &[(&[u8], &[u8])],
    resp: &mut Response,
) -> Result<(), String> {
    let invalid = |why: &str| format!("invalid streamed response prelude: {why}");
    let value: Value = serde_json::from_slice(json).map_err(|e| invalid(&e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("not a JSON object"))?;
    let status = match obj.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(v) => match v.as_u64() {
            Some(s @ 100..=599) => s as u16,
            _ => return Err(invalid("statusCode must be a number from 100 to 599")),
        },
    };
    let headers = match obj.get("headers") {
        None | Some(Value::Null) => None,
        Some(Value::Object(h)) => Some(h),
        Some(_) => return Err(invalid("headers must be an object")),
    };
    let cookies = match obj.get("cookies") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(c)) => c.as_slice(),
        Some(_) => return Err(invalid("cookies must be an array of strings")),
    };
    resp.clear();
    resp.status = status;
    let set_by_function = |name: &[u8]| {
        headers.is_some_and(|h| h.keys().any(|k| k.as_bytes().eq_ignore_ascii_case(name)))
    };
    pass_lambda_headers(lambda_headers, resp, set_by_function);
    let mut has_type = false;
    for (name, value) in headers.into_iter().flatten() {
        if is_dropped(name.as_bytes()) {
            continue;
        }
        has_type |= name.eq_ignore_ascii_case("content-type");
        let values = match value {
            Value::Array(items) => items.as_slice(),
            one => std::slice::from_ref(one),
        };
        for v in values {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(invalid(
                        "header values must be strings, numbers or booleans",
                    ))
                }
            };
            resp.header(name.as_bytes(), text.as_bytes());
        }
    }
    for cookie in cookies {
        let text = cookie
            .as_str()
            .ok_or_else(|| invalid("cookies must be an array of strings"))?;
        resp.header(b"Set-Cookie", text.as_bytes());
    }
    if resp.headers.len() > MAX_RESPONSE_HEAD {
        return Err(invalid(
            "its headers are larger than a response head may be",
        ));
    }
    if !has_type {
        resp.header(b"Content-Type", DEFAULT_CONTENT_TYPE);
    }
    resp.header(b"Via", VIA);
    Ok(())
}

/// What `InvokeComplete`'s JSON says of the invocation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// The function's error, if it failed: (`ErrorCode`, `ErrorDetails`).
    pub error: Option<(String, String)>,
    /// `LogResult`: the tail of the function's log, base64, when `log_type` is `Tail`.
    pub log_result: Option<String>,
}

/// Reads `InvokeComplete`'s JSON; anything unreadable says nothing (no error, no log).
pub fn completion(json: &[u8]) -> Completion {
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return Completion::default();
    };
    let text = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default();
    let code = text("ErrorCode");
    let details = text("ErrorDetails");
    let log_result = text("LogResult");
    Completion {
        error: (!code.is_empty() || !details.is_empty()).then(|| {
            let code = if code.is_empty() { "Unhandled" } else { code };
            (code.to_string(), details.to_string())
        }),
        log_result: (!log_result.is_empty()).then(|| log_result.to_string()),
    }
}

/// The answer when the function failed before its first byte, as a buffered function error is
/// answered: with `is_proxy_integration`, `unhandled_status` or 502 and nothing of the error
/// ([`function_error_answer`]); otherwise (Kong's pass-through) `unhandled_status` or 200 with
/// Lambda's error document and `X-Amz-Function-Error: Unhandled`.
pub fn error_before_output(code: &str, details: &str, cfg: &LambdaConfig, resp: &mut Response) {
    if cfg.is_proxy_integration {
        function_error_answer(code.to_string(), cfg.unhandled_status, resp);
        return;
    }
    resp.clear();
    resp.status = cfg.unhandled_status.unwrap_or(200);
    resp.header(b"Content-Type", b"application/json");
    resp.header(b"X-Amz-Function-Error", b"Unhandled");
    let body = serde_json::json!({"errorType": code, "errorMessage": details});
    if let Ok(bytes) = serde_json::to_vec(&body) {
        resp.body.extend_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_prelude_end_split_anywhere() {
        let output = b"{\"statusCode\":201}\0\0\0\0\0\0\0\0body bytes";
        for cut in 0..=output.len() {
            for second_cut in cut..=output.len() {
                let mut p = Prelude::default();
                let parts = [
                    &output[..cut],
                    &output[cut..second_cut],
                    &output[second_cut..],
                ];
                let mut body = Vec::new();
                let mut done = false;
                for part in parts {
                    if done {
                        body.extend_from_slice(part);
                        continue;
                    }
                    if let Some(at) = p.feed(part).unwrap() {
                        done = true;
                        body.extend_from_slice(&part[at..]);
                    }
                }
                assert!(done, "cut at {cut}/{second_cut}");
                assert_eq!(p.json(), b"{\"statusCode\":201}");
                assert_eq!(body, b"body bytes");
            }
        }
    }

    #[test]
    fn a_prelude_without_end_is_refused_at_the_cap() {
        let mut p = Prelude::default();
        let chunk = vec![b' '; 4096];
        let mut fed = 0;
        let err = loop {
            match p.feed(&chunk) {
                Ok(None) => fed += chunk.len(),
                Ok(Some(_)) => panic!("no separator was sent"),
                Err(e) => break e,
            }
            assert!(fed <= MAX_PRELUDE + 4096);
        };
        assert!(err.contains("no end"), "{err}");
        assert!(p.json().len() <= MAX_PRELUDE + 8);
    }

    #[test]
    fn prelude_sets_status_headers_and_cookies() {
        let lambda: &[(&[u8], &[u8])] = &[
            (b"Content-Type", HTTP_INTEGRATION),
            (b"x-amzn-RequestId", b"r1"),
            (b"X-Custom", b"from-lambda"),
            (b"Transfer-Encoding", b"chunked"),
        ];
        let mut r = Response::default();
        prelude_head(
            br#"{"statusCode":418,"headers":{"Content-Type":"text/event-stream","X-Custom":"fn","X-N":3,"X-Multi":["a","b"]},"cookies":["a=1; Path=/","b=2"]}"#,
            lambda,
            &mut r,
        )
        .unwrap();
        assert_eq!(r.status, 418);
        assert_eq!(
            String::from_utf8_lossy(&r.headers),
            "x-amzn-RequestId: r1\r\nContent-Type: text/event-stream\r\nX-Custom: fn\r\nX-Multi: a\r\nX-Multi: b\r\nX-N: 3\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nVia: 1.1 lambda-gateway\r\n"
        );
        prelude_head(b"{}", lambda, &mut r).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&r.headers),
            "x-amzn-RequestId: r1\r\nX-Custom: from-lambda\r\nContent-Type: application/octet-stream\r\nVia: 1.1 lambda-gateway\r\n"
        );
        for bad in [
            &br#"{"statusCode":"x"}"#[..],
            br#"{"statusCode":700}"#,
            br#"{"headers":[1]}"#,
            br#"{"cookies":"a=1"}"#,
            br#"{"cookies":[1]}"#,
            br#"{"headers":{"a":{"b":1}}}"#,
            b"[]",
            b"{",
        ] {
            assert!(
                prelude_head(bad, lambda, &mut r).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn plain_output_keeps_the_function_content_type() {
        let mut r = Response::default();
        plain_head(
            &[
                (b"Content-Type", b"text/plain"),
                (b"X-Amz-Executed-Version", b"$LATEST"),
            ],
            &mut r,
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&r.headers),
            "X-Amz-Executed-Version: $LATEST\r\nContent-Type: text/plain\r\nVia: 1.1 lambda-gateway\r\n"
        );
        plain_head(
            &[(b"Content-Type", b"application/vnd.amazon.eventstream")],
            &mut r,
        );
        assert!(
            String::from_utf8_lossy(&r.headers).contains("Content-Type: application/octet-stream")
        );
        assert!(has_prelude(Some(
            b"application/vnd.awslambda.http-integration-response"
        )));
        assert!(has_prelude(Some(
            b"Application/Vnd.Awslambda.Http-Integration-Response; x=1"
        )));
        assert!(!has_prelude(Some(b"text/plain")));
        assert!(!has_prelude(None));
    }

    #[test]
    fn completion_errors() {
        assert_eq!(
            completion(br#"{"ErrorCode":"","ErrorDetails":"","LogResult":""}"#),
            Completion::default()
        );
        assert_eq!(completion(b"{}"), Completion::default());
        assert_eq!(completion(b"not json"), Completion::default());
        assert_eq!(
            completion(
                br#"{"ErrorCode":"Runtime.ExitError","ErrorDetails":"exit status 1","LogResult":"U1RBUlQ="}"#
            ),
            Completion {
                error: Some(("Runtime.ExitError".into(), "exit status 1".into())),
                log_result: Some("U1RBUlQ=".into()),
            }
        );
        assert_eq!(
            completion(br#"{"ErrorDetails":"boom"}"#).error,
            Some(("Unhandled".into(), "boom".into()))
        );
        let config = |json: &str| {
            let mut c = crate::schema::check::Checker::default();
            let v: serde_json::Value = serde_json::from_str(json).expect("test JSON");
            crate::lambda::config::validate(&mut c, &v).expect("valid config")
        };
        // Kong's pass-through: the function's status (200), or unhandled_status, and its error.
        let mut r = Response::default();
        error_before_output(
            "E",
            "went \"wrong\"",
            &config(r#"{"function_name":"f"}"#),
            &mut r,
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            br#"{"errorMessage":"went \"wrong\"","errorType":"E"}"#
        );
        let legacy = config(r#"{"function_name":"f","unhandled_status":503}"#);
        error_before_output("E", "x", &legacy, &mut r);
        assert_eq!(r.status, 503);
        // Proxy integration: no answer of the function's, nothing of its error.
        let proxy = config(r#"{"function_name":"f","is_proxy_integration":true}"#);
        error_before_output("E", "secret detail", &proxy, &mut r);
        assert_eq!(r.status, 502);
        assert_eq!(
            r.body,
            br#"{"message":"Bad Gateway","error":"the Lambda function failed"}"#
        );
    }
}
