//! Kong's `request-size-limiting` (priority 951): a body over `allowed_payload_size` (in
//! `size_unit`s, megabytes by default: 2^20 bytes) is refused with 413 `{"message":"Request
//! size limit exceeded"}` (417 when the client asked to `Expect: 100-continue`); with
//! `require_content_length`, a request without a `Content-Length` gets 411.

use super::{AccessContext, Plugin, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "request-size-limiting" {
        /// The limit, in `size_unit`s.
        allowed_payload_size: i64 = Field::of(Type::Integer { min: 0, max: i32::MAX as i64 })
            .default(Default::Int(128)),
        /// `megabytes` (2^20 bytes), `kilobytes` or `bytes`.
        size_unit: String = Field::of(Type::OneOf(&["megabytes", "kilobytes", "bytes"]))
            .default(Default::Text("megabytes")),
        /// Refuse a request without a `Content-Length`.
        require_content_length: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
    }
}

/// The plugin as configured.
#[derive(Debug)]
pub struct RequestSizeLimiting {
    /// The limit in bytes.
    pub limit: u64,
    /// `require_content_length`.
    pub require_content_length: bool,
}

impl Plugin for RequestSizeLimiting {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 951;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(_: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let s = Settings::read(obj);
        let unit: u64 = match s.size_unit.as_str() {
            "kilobytes" => 1 << 10,
            "bytes" => 1,
            _ => 1 << 20,
        };
        Some(RequestSizeLimiting {
            limit: (s.allowed_payload_size.max(0) as u64).saturating_mul(unit),
            require_content_length: s.require_content_length,
        })
    }

    /// Refuses bodies over the limit. The body is already read (within the gateway's own
    /// limit), so a chunked body is measured as it arrived.
    async fn access(
        &self,
        req: &Request<'_>,
        _: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        let declared = req
            .header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if self.require_content_length && declared.is_none() {
            answers::message(resp, 411, "A valid Content-Length header is required");
            return Verdict::Answered;
        }
        let size = declared.unwrap_or(req.body.len() as u64);
        if size > self.limit {
            let expects_continue = req
                .header("expect")
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"));
            let status = if expects_continue { 417 } else { 413 };
            answers::message(resp, status, "Request size limit exceeded");
            return Verdict::Answered;
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{configured, run, Known};
    use super::*;

    fn post(length: usize, extra: &str) -> String {
        format!(
            "POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: {length}\r\n{extra}\r\n{}",
            "a".repeat(length)
        )
    }

    /// Kong's spec (`spec/03-plugins/12-request-size-limiting`): units, 413, 417, 411.
    #[test]
    fn bodies_over_the_limit_are_refused() {
        let too_large = r#"{"message":"Request size limit exceeded"}"#;
        for (config, raw, status, body) in [
            (r#"{"allowed_payload_size":10,"size_unit":"bytes"}"#, post(10, ""), 200, "{}"),
            (r#"{"allowed_payload_size":10,"size_unit":"bytes"}"#, post(11, ""), 413, too_large),
            (r#"{"allowed_payload_size":1,"size_unit":"kilobytes"}"#, post(1025, ""), 413, too_large),
            (r#"{"allowed_payload_size":1,"size_unit":"kilobytes"}"#, post(1024, ""), 200, "{}"),
            (r#"{"allowed_payload_size":1,"size_unit":"bytes"}"#, post(2, "Expect: 100-continue\r\n"), 417, too_large),
            (r#"{"require_content_length":true}"#, "GET /r HTTP/1.1\r\nHost: h\r\n\r\n".to_string(), 411, r#"{"message":"A valid Content-Length header is required"}"#),
            ("{}", post(2048, ""), 200, "{}"),
        ] {
            let plugin: RequestSizeLimiting = configured(config).expect(config);
            let out = run(&plugin, &raw, &Known::default());
            assert_eq!((out.status(), out.body().as_str()), (status, body), "{config}");
        }
        let default: RequestSizeLimiting = configured("{}").expect("valid");
        assert_eq!(default.limit, 128 << 20);
    }
}
