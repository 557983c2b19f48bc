//! A borrowed view of one request, what every phase reads: the head's spans resolved against
//! the buffer they index (the connection's read buffer for HTTP/1.1, a stream's decoded
//! fields for HTTP/2: see [`super::fields`]).

use super::head::RequestHead;

/// One request as the proxy sees it: nothing here is copied out of the connection's buffers.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The connection's read buffer the head spans point into.
    pub buf: &'a [u8],
    /// The parsed head.
    pub head: &'a RequestHead,
    /// The whole body (de-chunked if it was chunked).
    pub body: &'a [u8],
    /// The client's address, where the server knows it.
    pub peer: Option<std::net::IpAddr>,
    /// Whether it came over TLS (the HTTPS listener).
    pub secure: bool,
}

impl<'a> Request<'a> {
    /// The protocol as a request line names it: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`.
    pub fn protocol(&self) -> &'static [u8] {
        match (self.head.http2, self.head.minor_version) {
            (true, _) => b"HTTP/2.0",
            (false, 0) => b"HTTP/1.0",
            _ => b"HTTP/1.1",
        }
    }

    /// The method token, e.g. `GET`.
    pub fn method(&self) -> &'a [u8] {
        self.head.method.get(self.buf)
    }

    /// The path, without the query; `/` for an absolute-form target with no path.
    pub fn path(&self) -> &'a [u8] {
        let p = self.head.path.get(self.buf);
        if p.is_empty() {
            b"/"
        } else {
            p
        }
    }

    /// The raw query string (after `?`), if any.
    pub fn query(&self) -> Option<&'a [u8]> {
        self.head.query.map(|q| q.get(self.buf))
    }

    /// Path and query exactly as the client sent them (Kong's `request_uri`).
    pub fn path_with_query(&self) -> &'a [u8] {
        let target = self.head.target.get(self.buf);
        if target.first() == Some(&b'/') || target == b"*" {
            target
        } else {
            // Absolute form: from the path on.
            let start = self.head.path.start.min(
                self.head
                    .query
                    .map_or(u32::MAX, |q| q.start.saturating_sub(1)),
            );
            let end = self.head.target.end;
            if start >= end {
                b"/"
            } else {
                self.buf.get(start as usize..end as usize).unwrap_or(b"/")
            }
        }
    }

    /// The authority the client addressed (Host header or absolute-form target), without port.
    pub fn host(&self) -> Option<&'a [u8]> {
        let host = self.head.host?.get(self.buf);
        Some(strip_port(host))
    }

    /// The authority the client addressed, port included.
    pub fn authority(&self) -> Option<&'a [u8]> {
        self.head.host.map(|h| h.get(self.buf))
    }

    /// The Content-Type header value.
    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.head.content_type.map(|s| s.get(self.buf))
    }

    /// Every header as (name, value), in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let buf = self.buf;
        self.head
            .headers
            .iter()
            .map(move |h| (h.name.get(buf), h.value.get(buf)))
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// `host:port` → `host`; `[v6]:port` → `[v6]`.
fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match memchr::memchr(b']', host) {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match memchr::memrchr(b':', host) {
        Some(colon) if host[colon + 1..].iter().all(u8::is_ascii_digit) => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port(b"example.com:8000"), b"example.com");
        assert_eq!(strip_port(b"example.com"), b"example.com");
        assert_eq!(strip_port(b"[::1]:80"), b"[::1]");
    }
}
