//! A request head from decoded fields, for framings other than HTTP/1.1's text: an HTTP/2
//! stream's pseudo-headers (`:method`, `:path`, `:authority`) and fields, once HPACK has
//! decoded them. They are laid out in one buffer (reused per stream) and indexed by the same
//! [`RequestHead`] spans the h1 parser makes, so the phases see the same [`Request`] view
//! (method, path, query, headers, body, peer, TLS) whatever the request came over, and
//! HTTP/1.1 keeps its parse-in-place path untouched.
//!
//! [`Request`]: super::request::Request

use super::framing::{trim_ows, BodyFraming};
use super::head::{HeadError, HeaderSpan, RequestHead, Span};
use super::Limits;

/// The request line of a request that has none: its pseudo-headers.
#[derive(Clone, Copy, Debug)]
pub struct PseudoHeaders<'a> {
    /// `:method`.
    pub method: &'a [u8],
    /// `:path`: the path and query (`*` for a server-wide `OPTIONS`).
    pub path: &'a [u8],
    /// `:authority`, if sent (else the `host` field stands in for it).
    pub authority: Option<&'a [u8]>,
}

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2): they are HTTP/1.1's connection management.
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// Lays `pseudo` and `fields` out in `buf` and indexes them in `head`, for a body of
/// `body_len` bytes: a request the phases read as they read a parsed HTTP/1.1 one. Refuses
/// what RFC 9113 §8.2 makes malformed and what the h1 parser would refuse for its size.
pub fn head_from_fields<'f>(
    pseudo: PseudoHeaders<'_>,
    fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
    body_len: u64,
    limits: &Limits,
    buf: &mut Vec<u8>,
    head: &mut RequestHead,
) -> Result<(), HeadError> {
    let is_token = |s: &[u8]| !s.is_empty() && s.iter().all(|&b| super::encode::is_token(b));
    if !is_token(pseudo.method) {
        return Err(HeadError::Malformed("invalid :method"));
    }
    let server_wide = pseudo.path == b"*" && pseudo.method == b"OPTIONS";
    if pseudo.path.first() != Some(&b'/') && !server_wide {
        return Err(HeadError::Malformed("invalid :path"));
    }
    buf.clear();
    head.headers.clear();
    let put = |buf: &mut Vec<u8>, bytes: &[u8]| {
        let start = buf.len() as u32;
        buf.extend_from_slice(bytes);
        Span {
            start,
            end: buf.len() as u32,
        }
    };
    head.method = put(buf, pseudo.method);
    head.target = put(buf, pseudo.path);
    match memchr::memchr(b'?', pseudo.path) {
        Some(q) => {
            head.path = Span {
                start: head.target.start,
                end: head.target.start + q as u32,
            };
            head.query = Some(Span {
                start: head.target.start + q as u32 + 1,
                end: head.target.end,
            });
        }
        None => {
            head.path = head.target;
            head.query = None;
        }
    }
    head.host = pseudo.authority.map(|a| put(buf, a));
    head.content_type = None;
    // `:authority` becomes the Host field, as an HTTP/1.1 request carries it (RFC 9113
    // §8.3.1): the plugins, the function's headers and a rewrite see the same request.
    if let Some(authority) = head.host {
        let name = put(buf, b"host");
        head.headers.push(HeaderSpan {
            name,
            value: authority,
        });
    }
    for (name, value) in fields {
        // HPACK delivers names in lower case; anything else is malformed in HTTP/2.
        let lower = name.iter().all(|b| !b.is_ascii_uppercase());
        if !is_token(name) || !lower || CONNECTION_SPECIFIC.contains(&name) {
            return Err(HeadError::Malformed("invalid field name"));
        }
        if name == b"te" && value != b"trailers" {
            return Err(HeadError::Malformed("invalid te field"));
        }
        if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(HeadError::Malformed("invalid field value"));
        }
        if head.headers.len() >= limits.max_headers {
            return Err(HeadError::TooManyHeaders);
        }
        let name = put(buf, name);
        let value = put(buf, trim_ows(value));
        head.headers.push(HeaderSpan { name, value });
        if buf.len() > limits.max_head_bytes {
            return Err(HeadError::TooLarge);
        }
        let name = name.get(buf);
        if name == b"host" {
            match (head.host, pseudo.authority) {
                (None, _) => head.host = Some(value),
                // A second Host beside :authority must name the same (RFC 9113 §8.3.1).
                (Some(_), Some(authority)) if value.get(buf) != authority => {
                    return Err(HeadError::Malformed("host differs from :authority"))
                }
                _ => {}
            }
        } else if name == b"content-type" && head.content_type.is_none() {
            head.content_type = Some(value);
        }
    }
    head.minor_version = 1;
    head.http2 = true;
    head.len = buf.len();
    head.keep_alive = true;
    head.expect_continue = false;
    head.framing = match body_len {
        0 => BodyFraming::None,
        n => BodyFraming::Length(n),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head;
    use crate::http::request::Request;

    fn view(req: &Request<'_>) -> String {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let headers: Vec<String> = req
            .headers()
            .map(|(n, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(n).to_ascii_lowercase(),
                    String::from_utf8_lossy(v)
                )
            })
            .collect();
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            text(Some(req.method())),
            text(Some(req.path())),
            text(req.query()),
            text(Some(req.path_with_query())),
            text(req.host()),
            text(req.content_type()),
            text(req.header("X-Custom")),
            headers,
        )
    }

    #[test]
    fn fields_make_the_same_request_the_h1_parser_does() {
        let h1 = b"POST /a/b?x=1&y HTTP/1.1\r\nhost: api.test:8443\r\ncontent-type: application/json\r\nx-custom:  v \r\ncontent-length: 2\r\n\r\n{}";
        let mut parsed = RequestHead::default();
        assert_eq!(head::parse(h1, &Limits::default(), &mut parsed), Ok(true));
        let from_h1 = Request {
            buf: h1,
            head: &parsed,
            body: b"{}",
            peer: None,
            secure: true,
        };
        let (mut buf, mut built) = (Vec::new(), RequestHead::default());
        let fields: [(&[u8], &[u8]); 3] = [
            (b"content-type", b"application/json"),
            (b"x-custom", b"v"),
            (b"content-length", b"2"),
        ];
        let pseudo = PseudoHeaders {
            method: b"POST",
            path: b"/a/b?x=1&y",
            authority: Some(b"api.test:8443"),
        };
        head_from_fields(pseudo, fields, 2, &Limits::default(), &mut buf, &mut built)
            .expect("valid");
        let from_fields = Request {
            buf: &buf,
            head: &built,
            body: b"{}",
            peer: None,
            secure: true,
        };
        // :authority is listed as the Host field, where HTTP/1.1 sent it.
        assert_eq!(view(&from_fields), view(&from_h1));
        assert_eq!(from_h1.protocol(), b"HTTP/1.1");
        assert_eq!(from_fields.protocol(), b"HTTP/2.0");
        assert_eq!(built.framing, BodyFraming::Length(2));
    }

    #[test]
    fn what_http2_makes_malformed_is_refused() {
        let pseudo = |method: &'static [u8], path: &'static [u8]| PseudoHeaders {
            method,
            path,
            authority: Some(b"h"),
        };
        let build = |pseudo: PseudoHeaders<'_>, field: (&[u8], &[u8])| {
            let (mut buf, mut head) = (Vec::new(), RequestHead::default());
            head_from_fields(pseudo, [field], 0, &Limits::default(), &mut buf, &mut head)
        };
        let ok = (&b"accept"[..], &b"*/*"[..]);
        assert!(build(pseudo(b"GET", b"/"), ok).is_ok());
        assert!(build(pseudo(b"OPTIONS", b"*"), ok).is_ok());
        assert!(build(pseudo(b"GET", b"/"), (b"host", b"h")).is_ok());
        for (p, field) in [
            (pseudo(b"G T", b"/"), ok),
            (pseudo(b"GET", b"relative"), ok),
            (pseudo(b"GET", b"*"), ok),
            (pseudo(b"GET", b"/"), (&b"Accept"[..], &b"x"[..])),
            (pseudo(b"GET", b"/"), (&b"connection"[..], &b"close"[..])),
            (
                pseudo(b"GET", b"/"),
                (&b"transfer-encoding"[..], &b"chunked"[..]),
            ),
            (pseudo(b"GET", b"/"), (&b"te"[..], &b"gzip"[..])),
            (pseudo(b"GET", b"/"), (&b"x"[..], &b"a\r\nb"[..])),
            (pseudo(b"GET", b"/"), (&b"host"[..], &b"other"[..])),
        ] {
            assert!(
                matches!(build(p, field), Err(HeadError::Malformed(_))),
                "{p:?} {field:?}"
            );
        }
        let many = vec![(&b"x"[..], &b"y"[..]); Limits::default().max_headers + 1];
        let (mut buf, mut head) = (Vec::new(), RequestHead::default());
        assert_eq!(
            head_from_fields(
                pseudo(b"GET", b"/"),
                many,
                0,
                &Limits::default(),
                &mut buf,
                &mut head
            ),
            Err(HeadError::TooManyHeaders)
        );
    }
}
