//! Request head parsing on httparse, keeping every part as a [`Span`] into the connection's
//! read buffer (no copies), plus the semantic checks httparse leaves to us: bare LF line
//! endings, Host rules, `Connection`, `Expect`, and the framing decision.

use super::framing::{self, BodyFraming, FramingError};
use super::limits::Limits;
use smallvec::SmallVec;

/// A byte range into the connection's read buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// The span of `part`, which must be a sub-slice of `buf`.
    pub fn within(buf: &[u8], part: &[u8]) -> Span {
        let (base, at) = (buf.as_ptr() as usize, part.as_ptr() as usize);
        if at < base || at + part.len() > base + buf.len() {
            return Span::default();
        }
        let start = at - base;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    /// The bytes this span covers in `buf`; empty if the span does not fit (never panics).
    #[inline]
    pub fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// Number of bytes covered.
    #[inline]
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// True when the span covers nothing.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

/// One header field as spans.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderSpan {
    /// Field name as sent (case preserved).
    pub name: Span,
    /// Field value, without surrounding whitespace.
    pub value: Span,
}

/// A parsed request head. Owned by the connection and reused for every request on it.
#[derive(Debug, Default)]
pub struct RequestHead {
    /// The method token.
    pub method: Span,
    /// The request-target exactly as sent.
    pub target: Span,
    /// The path part of the target (empty for an absolute-form target without a path: "/").
    pub path: Span,
    /// The query string after `?`, if there was a `?`.
    pub query: Option<Span>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 (and for HTTP/2, whose semantics are 1.1's).
    pub minor_version: u8,
    /// Made from an HTTP/2 stream's fields ([`super::fields`]), not parsed from HTTP/1 text.
    pub http2: bool,
    /// Every header field, in order.
    pub headers: Vec<HeaderSpan>,
    /// Length of the head in bytes, blank line included.
    pub len: usize,
    /// The authority the client addressed: the absolute-form target's, else the Host header.
    pub host: Option<Span>,
    /// The Content-Type header.
    pub content_type: Option<Span>,
    /// Whether the connection may stay open after this request.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// How the body is delimited.
    pub framing: BodyFraming,
}

/// Why a head was refused; each maps to one status in [`super::answers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Not valid HTTP/1.x (400, connection closed).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// Head larger than the limit (431).
    #[error("request head too large")]
    TooLarge,
    /// More header fields than the limit (431).
    #[error("too many header fields")]
    TooManyHeaders,
    /// Body framing refused (400, or 413 for an oversized declared length).
    #[error("{0}")]
    Framing(FramingError),
    /// An `Expect` other than `100-continue` (417).
    #[error("unsupported expectation")]
    Expectation,
}

/// Parses the head at the start of `buf`.
///
/// Returns `Ok(false)` when the head is not complete yet (read more and call again), `Ok(true)`
/// with `head` filled in, or the reason to refuse the request. `buf` is never modified.
pub fn parse(buf: &[u8], limits: &Limits, head: &mut RequestHead) -> Result<bool, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; super::limits::MAX_HEADERS];
    let slots = &mut slots[..limits.max_headers.min(super::limits::MAX_HEADERS)];
    let mut req = httparse::Request::new(slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= limits.max_head_bytes {
                Err(HeadError::TooLarge)
            } else {
                Ok(false)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => {
            return Err(HeadError::Malformed("unsupported HTTP version"))
        }
        Err(_) => return Err(HeadError::Malformed("invalid request head")),
    };
    if len > limits.max_head_bytes {
        return Err(HeadError::TooLarge);
    }
    // httparse accepts a bare LF as a line ending; a front proxy may not, so it is refused.
    let head_bytes = &buf[..len];
    for at in memchr::memchr_iter(b'\n', head_bytes) {
        if at == 0 || head_bytes[at - 1] != b'\r' {
            return Err(HeadError::Malformed("bare LF in request head"));
        }
    }

    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    head.method = Span::within(buf, method.as_bytes());
    head.target = Span::within(buf, target.as_bytes());
    head.minor_version = minor;
    head.http2 = false;
    head.len = len;
    head.headers.clear();
    head.host = None;
    head.content_type = None;
    head.expect_continue = false;

    let target_bytes = target.as_bytes();
    let origin = if target_bytes.first() == Some(&b'/') {
        target_bytes
    } else if let Some((authority, rest)) = split_absolute_form(target_bytes) {
        head.host = Some(Span::within(buf, authority));
        rest
    } else if target_bytes == b"*" && method == "OPTIONS" {
        target_bytes
    } else {
        return Err(HeadError::Malformed("unsupported request target"));
    };
    match memchr::memchr(b'?', origin) {
        Some(q) => {
            head.path = Span::within(buf, &origin[..q]);
            head.query = Some(Span::within(buf, &origin[q + 1..]));
        }
        None => {
            head.path = Span::within(buf, origin);
            head.query = None;
        }
    }

    let mut hosts = 0usize;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut content_lengths: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let mut transfer_encodings: SmallVec<[&[u8]; 2]> = SmallVec::new();
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = framing::trim_ows(h.value);
        head.headers.push(HeaderSpan {
            name: Span::within(buf, name),
            value: Span::within(buf, value),
        });
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            if head.host.is_none() {
                head.host = Some(Span::within(buf, value));
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            content_lengths.push(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encodings.push(value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            head.content_type = Some(Span::within(buf, value));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(framing::trim_ows) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                head.expect_continue = true;
            } else {
                return Err(HeadError::Expectation);
            }
        }
    }
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1; more than one is always an error.
    if hosts > 1 {
        return Err(HeadError::Malformed("repeated Host header"));
    }
    if hosts == 0 && minor == 1 && head.host.is_none() {
        return Err(HeadError::Malformed("missing Host header"));
    }
    head.keep_alive = if minor == 0 {
        keep_alive_token && !close
    } else {
        !close
    };
    head.framing = framing::decide(
        minor,
        &content_lengths,
        &transfer_encodings,
        limits.max_body_bytes,
    )
    .map_err(HeadError::Framing)?;
    // Expecting a continuation only makes sense with a body.
    if head.framing == BodyFraming::None {
        head.expect_continue = false;
    }
    Ok(true)
}

/// Splits `http://authority/path?q` into the authority and the rest (`/path?q`, possibly empty).
fn split_absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let after_scheme = if target.len() > 7 && target[..7].eq_ignore_ascii_case(b"http://") {
        &target[7..]
    } else if target.len() > 8 && target[..8].eq_ignore_ascii_case(b"https://") {
        &target[8..]
    } else {
        return None;
    };
    let end = after_scheme
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(end);
    if authority.is_empty() || authority.contains(&b'@') {
        return None;
    }
    Some((authority, rest))
}

/// How many bytes of empty lines (`\r\n`) start `buf`. RFC 9112 §2.2 lets a server ignore
/// them before a request line; the connection drops them as they arrive, so they are never
/// scanned twice. A bare LF there is refused like a bare LF anywhere in a head.
pub fn leading_empty_lines(buf: &[u8]) -> Result<usize, HeadError> {
    let mut at = 0;
    loop {
        match buf.get(at..at + 2) {
            Some(b"\r\n") => at += 2,
            _ if buf.get(at) == Some(&b'\n') => {
                return Err(HeadError::Malformed("bare LF in request head"))
            }
            _ => return Ok(at),
        }
    }
}

/// Finds whether a complete head may be in `buf`, looking only at bytes from `from` on (minus
/// an overlap of 3): an end-of-head marker is `\n\r\n` or `\n\n`. Used to avoid re-parsing a
/// head that a slow client sends a byte at a time.
pub fn may_be_complete(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(3);
    memchr::memchr_iter(b'\n', &buf[start..]).any(|i| {
        let at = start + i;
        matches!(buf.get(at + 1), Some(b'\n'))
            || matches!(
                (buf.get(at + 1), buf.get(at + 2)),
                (Some(b'\r'), Some(b'\n'))
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(raw: &str) -> (RequestHead, Vec<u8>) {
        let buf = raw.as_bytes().to_vec();
        let mut head = RequestHead::default();
        assert_eq!(
            parse(&buf, &Limits::default(), &mut head),
            Ok(true),
            "{raw:?}"
        );
        (head, buf)
    }

    fn parse_err(raw: &[u8]) -> HeadError {
        let mut head = RequestHead::default();
        match parse(raw, &Limits::default(), &mut head) {
            Err(e) => e,
            other => panic!(
                "expected an error for {:?}, got {other:?}",
                String::from_utf8_lossy(raw)
            ),
        }
    }

    #[test]
    fn parses_a_simple_get() {
        let (h, buf) =
            parse_ok("GET /lambda1?a=1&b HTTP/1.1\r\nHost: example.com\r\nX-A:  v \r\n\r\n");
        assert_eq!(h.method.get(&buf), b"GET");
        assert_eq!(h.target.get(&buf), b"/lambda1?a=1&b");
        assert_eq!(h.path.get(&buf), b"/lambda1");
        assert_eq!(h.query.map(|q| q.get(&buf)), Some(&b"a=1&b"[..]));
        assert_eq!(h.host.map(|s| s.get(&buf)), Some(&b"example.com"[..]));
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers[1].value.get(&buf), b"v");
        assert!(h.keep_alive);
        assert_eq!(h.framing, BodyFraming::None);
        assert_eq!(h.len, buf.len());
    }

    #[test]
    fn partial_heads_ask_for_more_every_split() {
        let raw = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        for cut in 0..raw.len() - 3 {
            let mut head = RequestHead::default();
            let got = parse(&raw[..cut], &Limits::default(), &mut head);
            assert_eq!(got, Ok(false), "cut at {cut}");
        }
        let (h, _) = parse_ok(std::str::from_utf8(raw).unwrap_or_default());
        assert_eq!(h.framing, BodyFraming::Length(3));
        assert_eq!(h.len, raw.len() - 3);
    }

    #[test]
    fn connection_semantics() {
        assert!(
            !parse_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(!parse_ok("GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            parse_ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            parse_ok(
                "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
            )
            .0
            .expect_continue
        );
        assert_eq!(
            parse_err(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: dance\r\n\r\n"),
            HeadError::Expectation
        );
    }

    #[test]
    fn absolute_form_sets_the_host() {
        let (h, buf) =
            parse_ok("GET http://api.example.com:8000/a?b=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(
            h.host.map(|s| s.get(&buf)),
            Some(&b"api.example.com:8000"[..])
        );
        assert_eq!(h.path.get(&buf), b"/a");
    }

    #[test]
    fn refuses_malformed_and_smuggling_heads() {
        use HeadError::*;
        let cases: &[(&[u8], HeadError)] = &[
            (b"GET / HTTP/1.1\nHost: h\n\n", Malformed("bare LF in request head")),
            (b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", Malformed("bare LF in request head")),
            (b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", Malformed("invalid request head")),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", Malformed("invalid request head")),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", Malformed("invalid request head")),
            (b"GET / HTTP/1.1\r\n\r\n", Malformed("missing Host header")),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Malformed("repeated Host header")),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", Malformed("unsupported HTTP version")),
            (b"GET foo HTTP/1.1\r\nHost: h\r\n\r\n", Malformed("unsupported request target")),
            (b"G T / HTTP/1.1\r\nHost: h\r\n\r\n", Malformed("unsupported HTTP version")),
            (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", Framing(FramingError::LengthAndChunked)),
            (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Framing(FramingError::RepeatedLength)),
            (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", Framing(FramingError::InvalidLength)),
            (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Framing(FramingError::UnsupportedCoding)),
            (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Framing(FramingError::UnsupportedCoding)),
            (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n", Framing(FramingError::TooLarge(super::super::limits::MAX_BODY_BYTES))),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_err(raw), *want, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn enforces_head_limits() {
        let mut big = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        big.resize(40 * 1024, b'a');
        assert_eq!(parse_err(&big), HeadError::TooLarge);
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_err(&big), HeadError::TooLarge);
        let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_err(&many), HeadError::TooManyHeaders);
    }

    #[test]
    fn leading_empty_lines_are_counted_and_bare_lf_refused() {
        assert_eq!(leading_empty_lines(b"GET / HTTP/1.1\r\n"), Ok(0));
        assert_eq!(leading_empty_lines(b"\r\n\r\nGET /"), Ok(4));
        assert_eq!(leading_empty_lines(b"\r\n\r"), Ok(2));
        assert_eq!(leading_empty_lines(b""), Ok(0));
        assert_eq!(
            leading_empty_lines(b"\r\n\nGET /"),
            Err(HeadError::Malformed("bare LF in request head"))
        );
    }

    #[test]
    fn end_of_head_detection() {
        assert!(!may_be_complete(b"GET / HTTP/1.1\r\nHost: h\r\n", 0));
        assert!(may_be_complete(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 20));
        assert!(may_be_complete(b"GET / HTTP/1.1\nHost: h\n\n", 23));
    }
}
