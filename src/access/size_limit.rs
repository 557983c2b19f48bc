//! Kong's `request-size-limiting` (priority 951): a body over `allowed_payload_size` (in
//! `size_unit`s, megabytes by default: 2^20 bytes) is refused with 413 `{"message":"Request
//! size limit exceeded"}` (417 when the client asked to `Expect: 100-continue`); with
//! `require_content_length`, a request without a `Content-Length` gets 411.

use super::Verdict;
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};

/// The validated config.
#[derive(Debug)]
pub struct SizeLimitConfig {
    /// The limit in bytes.
    pub limit: u64,
    /// `require_content_length`.
    pub require_content_length: bool,
}

/// The plugin's schema.
pub static SCHEMA: Schema = Schema {
    name: "request-size-limiting",
    fields: &[
        Field::new(
            "allowed_payload_size",
            Type::Integer {
                min: 0,
                max: i32::MAX as i64,
            },
        )
        .default(Default::Int(128)),
        Field::new(
            "size_unit",
            Type::OneOf(&["megabytes", "kilobytes", "bytes"]),
        )
        .default(Default::Text("megabytes")),
        Field::new("require_content_length", Type::Boolean).default(Default::Bool(false)),
    ],
};

/// Validates a `config` object.
pub fn validate(c: &mut Checker, value: &Value) -> Option<SizeLimitConfig> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    let unit: u64 = match SCHEMA.text(obj, "size_unit") {
        Some("kilobytes") => 1 << 10,
        Some("bytes") => 1,
        _ => 1 << 20,
    };
    let size = SCHEMA
        .int(obj, "allowed_payload_size")
        .unwrap_or(128)
        .max(0) as u64;
    (c.errors.len() == before).then(|| SizeLimitConfig {
        limit: size.saturating_mul(unit),
        require_content_length: SCHEMA.boolean(obj, "require_content_length"),
    })
}

/// Refuses bodies over the limit. The body is already read (within the gateway's own limit),
/// so a chunked body is measured as it arrived.
pub fn access(c: &SizeLimitConfig, req: &Request<'_>, resp: &mut Response) -> Verdict {
    let declared = req
        .header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if c.require_content_length && declared.is_none() {
        answers::message(resp, 411, "A valid Content-Length header is required");
        return Verdict::Answered;
    }
    let size = declared.unwrap_or(req.body.len() as u64);
    if size > c.limit {
        let expects_continue = req
            .header("expect")
            .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"));
        let status = if expects_continue { 417 } else { 413 };
        answers::message(resp, status, "Request size limit exceeded");
        return Verdict::Answered;
    }
    Verdict::Continue
}
