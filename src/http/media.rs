//! Request bodies by media type: the Content-Type values the gateway and the Admin API read.

/// How a body's content type is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`.
    Json,
    /// `multipart/form-data`.
    Multipart,
    /// Any other type: Kong's "unsupported content type".
    Unsupported,
    /// No Content-Type header: Kong's "missing content type".
    Missing,
}

/// The media type of a Content-Type value, lower-cased comparison, parameters ignored.
pub fn body_kind(content_type: Option<&[u8]>) -> BodyKind {
    let Some(ct) = content_type else {
        return BodyKind::Missing;
    };
    let media = media_type(ct);
    if media.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        BodyKind::Form
    } else if media.eq_ignore_ascii_case(b"application/json") {
        BodyKind::Json
    } else if media.eq_ignore_ascii_case(b"multipart/form-data") {
        BodyKind::Multipart
    } else {
        BodyKind::Unsupported
    }
}

/// The media type without parameters and surrounding whitespace.
pub fn media_type(content_type: &[u8]) -> &[u8] {
    let end = memchr::memchr(b';', content_type).unwrap_or(content_type.len());
    super::framing::trim_ows(&content_type[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            body_kind(Some(b"Application/JSON; charset=utf-8")),
            BodyKind::Json
        );
        assert_eq!(
            body_kind(Some(b"application/x-www-form-urlencoded")),
            BodyKind::Form
        );
        assert_eq!(
            body_kind(Some(b"multipart/form-data; boundary=x")),
            BodyKind::Multipart
        );
        assert_eq!(body_kind(Some(b"text/plain")), BodyKind::Unsupported);
        assert_eq!(body_kind(None), BodyKind::Missing);
    }
}
