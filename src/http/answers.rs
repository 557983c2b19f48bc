//! Canned answers: every response the gateway produces itself, with Kong's message texts
//! where Kong has one and SPEC §6's where it sets one.

use super::encode::Response;
use crate::json;

/// `{"message":"Bad request"}`, connection closed (SPEC §6).
pub const BAD_REQUEST: &str = "Bad request";
/// `{"message":"no Route matched with those values"}` (Kong's text, SPEC §6).
pub const NO_ROUTE: &str = "no Route matched with those values";
/// Kong's 408 text.
pub const REQUEST_TIMEOUT: &str = "Request timeout";
/// The buffer budget had no room in time (503, with `Retry-After`).
pub const OVERLOADED: &str =
    "The gateway is holding as much request and answer data as it may; retry shortly";
/// Kong's 413 text.
pub const PAYLOAD_TOO_LARGE: &str = "Payload too large";
/// Kong's 417 text.
pub const EXPECTATION_FAILED: &str = "Expectation failed";
/// 431 text.
pub const HEADERS_TOO_LARGE: &str = "Request header or cookie too large";
/// SPEC §6's 502 text.
pub const BAD_GATEWAY: &str = "Bad Gateway";
/// SPEC §6's 504 text.
pub const GATEWAY_TIMEOUT: &str = "Gateway Timeout";
/// 429 text.
pub const TOO_MANY_REQUESTS: &str = "Too Many Requests";
/// 500 text (Kong's).
pub const INTERNAL: &str = "An unexpected error occurred";

/// Fills `resp` with `{"message":"<message>"}` and `status`.
pub fn message(resp: &mut Response, status: u16, message: &str) {
    with_error(resp, status, message, None);
}

/// Fills `resp` with `{"message":"<message>","error":"<error>"}` (the error omitted if `None`).
pub fn with_error(resp: &mut Response, status: u16, message: &str, error: Option<&[u8]>) {
    resp.clear();
    resp.status = status;
    resp.header(b"Content-Type", b"application/json; charset=utf-8");
    resp.body.extend_from_slice(b"{\"message\":");
    json::write_str(&mut resp.body, message.as_bytes());
    if let Some(error) = error {
        resp.body.extend_from_slice(b",\"error\":");
        json::write_str(&mut resp.body, error);
    }
    resp.body.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_exact() {
        let mut r = Response::default();
        message(&mut r, 404, NO_ROUTE);
        assert_eq!(
            r.body,
            br#"{"message":"no Route matched with those values"}"#
        );
        with_error(&mut r, 502, BAD_GATEWAY, Some(b"ResourceNotFoundException"));
        assert_eq!(
            r.body,
            br#"{"message":"Bad Gateway","error":"ResourceNotFoundException"}"#
        );
        assert_eq!(r.status, 502);
    }
}
