//! The invocation payload encoder (SPEC §3): writes the JSON straight from the parsed request
//! into a reused buffer, in one of Kong's modes:
//!
//! - **forward** (any `forward_request_*` flag): `request_method`, `request_uri`,
//!   `request_uri_args`, `request_headers`, `request_body`, `request_body_args`,
//!   `request_body_base64`;
//! - **legacy** ("Sending parameters"): query and body arguments merged at the top level, the
//!   body winning on a clash, flags as `true`, repeated arguments as arrays.
//!
//! - **API Gateway events** (`awsgateway_compatible`), which come first: see
//!   [`super::event`].

use super::args::{ArgValue, Args};
use super::config::{LambdaConfig, PayloadVersion};
use super::event::{EventContext, EventScratch};
use crate::http::media::{body_kind, BodyKind};
use crate::http::request::Request;
use crate::json;
use crate::pacing::Pacer;

/// Why a payload could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The encoded payload exceeds Lambda's limit for the invocation type (413, nothing sent).
    /// Encoding stops as soon as that is certain, so `size` is a lower bound.
    #[error("encoded payload of at least {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Encoded size, or as much of it as was known when encoding stopped.
        size: usize,
        /// The limit that applied.
        limit: usize,
    },
}

/// A worker's payload encoder: the output buffer and argument scratch, reused per request.
#[derive(Debug, Default)]
pub struct PayloadEncoder {
    /// The encoded payload of the last call to [`PayloadEncoder::encode`].
    pub out: Vec<u8>,
    query: Args,
    body: Args,
    headers: Args,
    event: EventScratch,
}

impl PayloadEncoder {
    /// Bytes of buffer capacity held between requests.
    pub fn retained_bytes(&self) -> usize {
        self.out.capacity()
            + self.query.retained_bytes()
            + self.body.retained_bytes()
            + self.headers.retained_bytes()
            + self.event.retained_bytes()
    }

    /// Encodes the payload for `req` under `cfg` into [`PayloadEncoder::out`], pausing between
    /// body members when `pacer` says so. `ctx` is what an API Gateway event says beyond the
    /// request (the other modes do not read it).
    pub async fn encode(
        &mut self,
        cfg: &LambdaConfig,
        req: &Request<'_>,
        ctx: &EventContext<'_>,
        pacer: &mut impl Pacer,
    ) -> Result<(), PayloadError> {
        self.out.clear();
        let limit = cfg.invocation_type.max_payload();
        if cfg.awsgateway_compatible {
            // Escaping or base64 only makes a body longer: refuse before writing one that
            // cannot fit.
            check_size(&self.out, req.body.len(), limit)?;
            let (out, scratch, base64) = (&mut self.out, &mut self.event, cfg.base64_encode_body);
            match cfg.awsgateway_compatible_payload_version {
                PayloadVersion::V1 => super::event::write_v1(out, scratch, req, ctx, base64),
                PayloadVersion::V2 => super::event::write_v2(out, scratch, req, ctx, base64),
            }
        } else if cfg.forwards_anything() {
            self.encode_forward(cfg, req, limit, pacer).await?;
        } else {
            self.encode_legacy(req, limit, pacer).await?;
        }
        check_size(&self.out, 0, limit)
    }

    /// [`PayloadEncoder::encode`] without pauses, off the request path (benchmarks, tests,
    /// fuzzing).
    pub fn encode_unpaced(
        &mut self,
        cfg: &LambdaConfig,
        req: &Request<'_>,
        ctx: &EventContext<'_>,
    ) -> Result<(), PayloadError> {
        crate::pacing::run_unpaced(async |pacer| self.encode(cfg, req, ctx, pacer).await)
    }

    async fn encode_legacy(
        &mut self,
        req: &Request<'_>,
        limit: usize,
        pacer: &mut impl Pacer,
    ) -> Result<(), PayloadError> {
        self.query.clear();
        if let Some(q) = req.query() {
            self.query.parse_urlencoded(q);
        }
        let kind = self.parse_body_args(req, pacer).await;
        let body_ok = kind.is_some();
        if body_ok && self.body.json_array && self.query.list().is_empty() {
            // A JSON array body alone is sent as the array it is.
            self.out.extend_from_slice(trim_json_ws(req.body));
            return Ok(());
        }
        self.out.push(b'{');
        let overridden_by = body_ok.then_some(&self.body);
        let out = &mut self.out;
        write_members(out, &self.query, req.body, overridden_by, limit, pacer).await?;
        if body_ok {
            write_members(out, &self.body, req.body, None, limit, pacer).await?;
        }
        json::trim_comma(out);
        out.push(b'}');
        Ok(())
    }

    /// Parses the body's arguments by content type; `Some(kind)` when they parsed.
    async fn parse_body_args(
        &mut self,
        req: &Request<'_>,
        pacer: &mut impl Pacer,
    ) -> Option<BodyKind> {
        self.body.clear();
        let kind = body_kind(req.content_type());
        let ok = match kind {
            BodyKind::Form => {
                self.body.parse_urlencoded(req.body);
                true
            }
            BodyKind::Json => {
                std::str::from_utf8(req.body).is_ok()
                    && self.body.parse_json_paced(req.body, pacer).await
            }
            BodyKind::Multipart => {
                let content_type = req.content_type().unwrap_or_default();
                self.body
                    .parse_multipart_paced(content_type, req.body, pacer)
                    .await
            }
            BodyKind::Unsupported | BodyKind::Missing => false,
        };
        ok.then_some(kind)
    }

    async fn encode_forward(
        &mut self,
        cfg: &LambdaConfig,
        req: &Request<'_>,
        limit: usize,
        pacer: &mut impl Pacer,
    ) -> Result<(), PayloadError> {
        let parsed = if cfg.forward_request_body {
            self.parse_forwarded_body(req, pacer).await
        } else {
            None
        };
        let out = &mut self.out;
        out.push(b'{');
        if cfg.forward_request_method {
            json::write_key(out, "request_method");
            json::write_str(out, req.method());
            out.push(b',');
        }
        if cfg.forward_request_uri {
            json::write_key(out, "request_uri");
            json::write_str(out, req.path_with_query());
            out.push(b',');
            self.query.clear();
            if let Some(q) = req.query() {
                self.query.parse_urlencoded(q);
            }
            json::write_key(out, "request_uri_args");
            out.push(b'{');
            write_members(out, &self.query, b"", None, limit, pacer).await?;
            json::trim_comma(out);
            out.extend_from_slice(b"},");
        }
        if cfg.forward_request_headers {
            self.headers.clear();
            for (name, value) in req.headers().take(crate::http::limits::MAX_HEADERS) {
                self.headers.push_text(name, true, value);
            }
            self.headers.finish(pacer).await;
            json::write_key(out, "request_headers");
            out.push(b'{');
            write_members(out, &self.headers, b"", None, limit, pacer).await?;
            json::trim_comma(out);
            out.extend_from_slice(b"},");
        }
        if cfg.forward_request_body {
            let kind = body_kind(req.content_type());
            let unsupported = matches!(kind, BodyKind::Unsupported | BodyKind::Missing);
            let base64 = unsupported
                && cfg.base64_encode_body
                && !super::args::is_raw_text_type(req.content_type());
            // Escaping or base64 only makes text longer: refuse before writing a body that
            // cannot fit.
            let least = if base64 {
                base64::encoded_len(req.body.len(), true).unwrap_or(usize::MAX)
            } else {
                req.body.len()
            };
            check_size(out, least, limit)?;
            if base64 {
                json::write_key(out, "request_body");
                out.push(b'"');
                crate::json::write_base64(out, req.body);
                out.extend_from_slice(b"\",");
                json::write_key(out, "request_body_base64");
                out.extend_from_slice(b"true,");
            } else if !req.body.is_empty() {
                json::write_key(out, "request_body");
                json::write_str(out, req.body);
                out.push(b',');
            }
            if unsupported {
                json::write_key(out, "request_body_args");
                out.extend_from_slice(b"{},");
            } else if let Some(kind) = parsed {
                json::write_key(out, "request_body_args");
                if kind == BodyKind::Json {
                    out.extend_from_slice(trim_json_ws(req.body));
                    out.push(b',');
                } else {
                    out.push(b'{');
                    write_members(out, &self.body, req.body, None, limit, pacer).await?;
                    json::trim_comma(out);
                    out.extend_from_slice(b"},");
                }
            }
        }
        json::trim_comma(&mut self.out);
        self.out.push(b'}');
        Ok(())
    }

    /// The forwarded body's arguments: a JSON body is only checked (it is sent as written),
    /// other kinds are parsed as in legacy mode. `Some(kind)` when the body parsed.
    async fn parse_forwarded_body(
        &mut self,
        req: &Request<'_>,
        pacer: &mut impl Pacer,
    ) -> Option<BodyKind> {
        if body_kind(req.content_type()) != BodyKind::Json {
            return self.parse_body_args(req, pacer).await;
        }
        self.body.clear();
        let valid = std::str::from_utf8(req.body).is_ok()
            && super::json_body::validate_paced(req.body, pacer).await;
        valid.then_some(BodyKind::Json)
    }
}

/// JSON insignificant whitespace trimmed from both ends.
fn trim_json_ws(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\n' | b'\r', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\n' | b'\r'] = v {
        v = rest;
    }
    v
}

/// Writes `"key":value,` for each distinct key of `args` (repeated keys as one array, in order),
/// skipping keys that `overridden_by` also has. `body` is what `ArgValue::Json` spans index.
/// Each argument is visited once and each skip is one hash lookup: linear in the arguments.
/// Stops as soon as the output is over `limit`.
async fn write_members(
    out: &mut Vec<u8>,
    args: &Args,
    body: &[u8],
    overridden_by: Option<&Args>,
    limit: usize,
    pacer: &mut impl Pacer,
) -> Result<(), PayloadError> {
    for arg in args.list().iter().filter(|a| a.is_first()) {
        let key = args.key(arg);
        if overridden_by.is_some_and(|other| other.contains(key)) {
            continue;
        }
        json::write_str(out, key);
        out.push(b':');
        if !arg.is_repeated() {
            write_value(out, args, body, &arg.value);
        } else {
            out.push(b'[');
            for a in args.group(arg) {
                write_value(out, args, body, &a.value);
                out.push(b',');
            }
            json::trim_comma(out);
            out.push(b']');
        }
        out.push(b',');
        check_size(out, 0, limit)?;
        pacer.pause_if_due().await;
    }
    Ok(())
}

/// `Err(TooLarge)` when `out` plus at least `more` bytes to come is over `limit`.
fn check_size(out: &[u8], more: usize, limit: usize) -> Result<(), PayloadError> {
    let size = out.len().saturating_add(more);
    if size > limit {
        return Err(PayloadError::TooLarge { size, limit });
    }
    Ok(())
}

fn write_value(out: &mut Vec<u8>, args: &Args, body: &[u8], value: &ArgValue) {
    match value {
        ArgValue::Flag => out.extend_from_slice(b"true"),
        ArgValue::Text(r) => json::write_str(out, &args.scratch[r.clone()]),
        ArgValue::Json(r) => out.extend_from_slice(body.get(r.clone()).unwrap_or(b"null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{self, RequestHead};
    use crate::http::Limits;
    use serde_json::{json, Value};

    fn encode_with(cfg: &LambdaConfig, raw: &[u8]) -> Result<Value, PayloadError> {
        let mut h = RequestHead::default();
        assert_eq!(head::parse(raw, &Limits::default(), &mut h), Ok(true));
        let req = Request {
            peer: None,
            secure: false,
            buf: raw,
            head: &h,
            body: &raw[h.len..],
        };
        let mut enc = PayloadEncoder::default();
        enc.encode_unpaced(cfg, &req, &EventContext::default())?;
        Ok(serde_json::from_slice(&enc.out)
            .unwrap_or_else(|e| panic!("invalid JSON {e}: {}", String::from_utf8_lossy(&enc.out))))
    }

    fn legacy(raw: &str) -> Value {
        encode_with(&LambdaConfig::with_defaults("f"), raw.as_bytes()).expect("fits")
    }

    fn forward(raw: &[u8]) -> Value {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.forward_request_body = true;
        cfg.forward_request_headers = true;
        cfg.forward_request_method = true;
        cfg.forward_request_uri = true;
        encode_with(&cfg, raw).expect("fits")
    }

    #[test]
    fn legacy_merges_query_and_body() {
        assert_eq!(
            legacy("GET /get?key1=a&key2=b HTTP/1.1\r\nHost: h\r\n\r\n"),
            json!({"key1":"a","key2":"b"})
        );
        assert_eq!(legacy("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"), json!({}));
        assert_eq!(
            legacy("GET /x?f&a=1&a=2&a HTTP/1.1\r\nHost: h\r\n\r\n"),
            json!({"f":true,"a":["1","2",true]})
        );
        let form = "POST /x?key1=from_querystring&q=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 19\r\n\r\nkey1=from_body&b=%7";
        assert_eq!(legacy(form), json!({"key1":"from_body","q":"1","b":"%7"}));
        let j = "POST /x?a=q HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{\"a\":{\"n\":[1]},\"b\":null}";
        assert_eq!(legacy(j), json!({"a":{"n":[1]},"b":null}));
        let arr = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[{},[]]";
        assert_eq!(legacy(arr), json!([{}, []]));
        let bad = "POST /x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{bad}";
        assert_eq!(legacy(bad), json!({"a":"1"}));
    }

    #[test]
    fn forward_mode_fields() {
        let v = forward(b"POST /p/a?x=1&x=2 HTTP/1.1\r\nHost: h\r\nX-Multi: 1\r\nx-multi: 2\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"key2\":\"some\"}");
        assert_eq!(v["request_method"], "POST");
        assert_eq!(v["request_uri"], "/p/a?x=1&x=2");
        assert_eq!(v["request_uri_args"], json!({"x":["1","2"]}));
        assert_eq!(v["request_headers"]["x-multi"], json!(["1", "2"]));
        assert_eq!(v["request_headers"]["host"], "h");
        assert_eq!(v["request_body"], "{\"key2\":\"some\"}");
        assert_eq!(v["request_body_args"], json!({"key2":"some"}));
        assert!(v.get("request_body_base64").is_none());
    }

    #[test]
    fn forward_mode_body_types() {
        let xml = forward(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/xml\r\nContent-Length: 6\r\n\r\n<xml/>");
        assert_eq!(
            (
                xml["request_body"].clone(),
                xml["request_body_args"].clone()
            ),
            (json!("<xml/>"), json!({}))
        );
        assert!(xml.get("request_body_base64").is_none());
        let text = forward(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\na\xffb");
        assert_eq!(text["request_body"], "a\u{FFFD}b");
        let bin = forward(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n01234");
        assert_eq!(
            (
                bin["request_body"].clone(),
                bin["request_body_base64"].clone()
            ),
            (json!("MDEyMzQ="), json!(true))
        );
        let none = forward(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            (
                none["request_body"].clone(),
                none["request_body_base64"].clone()
            ),
            (json!(""), json!(true))
        );
        let mp = forward(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 52\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n--B--");
        assert_eq!(mp["request_body_args"], json!({"k":"v"}));
    }

    #[test]
    fn forward_uri_off_omits_uri_fields() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.forward_request_method = true;
        let v = encode_with(&cfg, b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n").expect("fits");
        assert_eq!(v, json!({"request_method":"GET"}));
    }

    /// Found by fuzzing: numbers beyond f64 are valid JSON and pass through exactly as sent.
    #[test]
    fn huge_numbers_pass_through_unchanged() {
        let raw = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"n\":[5,7777777777e+400]}";
        let mut h = RequestHead::default();
        assert_eq!(head::parse(raw, &Limits::default(), &mut h), Ok(true));
        let req = Request {
            peer: None,
            secure: false,
            buf: raw,
            head: &h,
            body: &raw[h.len..],
        };
        let mut enc = PayloadEncoder::default();
        enc.encode_unpaced(
            &LambdaConfig::with_defaults("f"),
            &req,
            &EventContext::default(),
        )
        .expect("fits");
        assert_eq!(enc.out, br#"{"n":[5,7777777777e+400]}"#);
        let mut forward = LambdaConfig::with_defaults("f");
        forward.forward_request_body = true;
        enc.encode_unpaced(&forward, &req, &EventContext::default())
            .expect("fits");
        let top: std::collections::HashMap<String, &serde_json::value::RawValue> =
            serde_json::from_slice(&enc.out).expect("valid JSON");
        assert_eq!(
            top["request_body_args"].get(),
            r#"{"n":[5,7777777777e+400]}"#
        );
    }

    #[test]
    fn enforces_payload_limits_after_encoding() {
        let mut cfg = LambdaConfig::with_defaults("f");
        cfg.invocation_type = crate::lambda::config::InvocationType::Event;
        cfg.forward_request_body = true;
        // 800 KiB of binary becomes ~1.07 MiB of base64: over Event's 1 MiB limit.
        let mut raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/octet-stream\r\nContent-Length: 819200\r\n\r\n".to_vec();
        raw.resize(raw.len() + 819_200, b'x');
        assert!(matches!(
            encode_with(&cfg, &raw),
            Err(PayloadError::TooLarge {
                limit: 1_048_576,
                ..
            })
        ));
    }
}
