//! Writing HTTP/1.1 responses.

use crate::json;

/// A response being built: status, pre-encoded header lines, body. Owned by the connection and
/// reused for every request on it.
#[derive(Debug, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines, each `Name: value\r\n`, without Content-Length and Connection.
    pub headers: Vec<u8>,
    /// The body.
    pub body: Vec<u8>,
    /// A body held elsewhere and shared (a cached answer), written from where it is; `body`
    /// is then empty.
    pub shared: Option<bytes::Bytes>,
    /// True when the connection must close after this response (an error that leaves the
    /// request stream in an unknown state).
    pub close: bool,
}

impl Response {
    /// Resets for the next request, keeping the allocations.
    pub fn clear(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.body.clear();
        self.shared = None;
        self.close = false;
    }

    /// The body's length, held or shared.
    pub fn body_len(&self) -> usize {
        self.shared.as_ref().map_or(self.body.len(), |b| b.len())
    }

    /// Appends one header line. Bytes that would break the framing (CR, LF, NUL) are dropped
    /// from the value, so nothing coming from a Lambda can inject a header or split a response.
    pub fn header(&mut self, name: &[u8], value: &[u8]) {
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return;
        }
        self.headers.extend_from_slice(name);
        self.headers.extend_from_slice(b": ");
        if memchr::memchr3(b'\r', b'\n', 0, value).is_none() {
            self.headers.extend_from_slice(value);
        } else {
            self.headers.extend(
                value
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\r' && b != b'\n' && b != 0),
            );
        }
        self.headers.extend_from_slice(b"\r\n");
    }
}

impl Response {
    /// 1xx, 204 and 304 carry no body and no Content-Length (RFC 9110 §8.6).
    pub fn is_bodiless(&self) -> bool {
        self.status < 200 || self.status == 204 || self.status == 304
    }

    /// The first value of header `name` (any case).
    pub fn header_value(&self, name: &[u8]) -> Option<&[u8]> {
        header_lines(&self.headers)
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Removes every header line named `name` (any case), compacting the lines in place.
    pub fn remove_header(&mut self, name: &[u8]) {
        let h = &mut self.headers;
        let (mut read, mut write) = (0, 0);
        while read < h.len() {
            let end = memchr::memchr(b'\n', &h[read..]).map_or(h.len(), |i| read + i + 1);
            let line = &h[read..end];
            let named = line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name)
                && line[name.len()] == b':';
            if !named {
                h.copy_within(read..end, write);
                write += end - read;
            }
            read = end;
        }
        h.truncate(write);
    }

    /// Sets header `name` to `value`, replacing any line of that name.
    pub fn set_header(&mut self, name: &[u8], value: &[u8]) {
        self.remove_header(name);
        self.header(name, value);
    }

    /// Adds `Origin` to `Vary` (once).
    pub fn add_vary_origin(&mut self) {
        let has = self.headers.split(|&b| b == b'\n').any(|line| {
            line.len() > 5
                && line[..5].eq_ignore_ascii_case(b"vary:")
                && line[5..]
                    .split(|&b| b == b',')
                    .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"origin"))
        });
        if !has {
            self.header(b"Vary", b"Origin");
        }
    }
}

/// The `(name, value)` pairs of pre-encoded header lines (`Name: value\r\n` each, as
/// [`Response::headers`] holds them), values without their surrounding whitespace.
pub fn header_lines(headers: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// The values of header `name` (any case) in pre-encoded header lines, in order.
pub fn header_values<'h>(headers: &'h [u8], name: &'h [u8]) -> impl Iterator<Item = &'h [u8]> + 'h {
    header_lines(headers)
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// RFC 9110 `tchar`.
pub fn is_token(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

/// Writes the status line, the headers, `Content-Length` and, when closing, `Connection:
/// close`, then the body unless `head_only` (a response to HEAD); a shared body is the
/// caller's to write after.
pub fn write_response(out: &mut Vec<u8>, resp: &Response, keep_alive: bool, head_only: bool) {
    write_status_and_headers(out, resp);
    let bodiless = resp.is_bodiless();
    if !bodiless {
        out.extend_from_slice(b"Content-Length: ");
        json::write_u64(out, resp.body_len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only && !bodiless {
        out.extend_from_slice(&resp.body);
    }
}

fn write_status_and_headers(out: &mut Vec<u8>, resp: &Response) {
    out.extend_from_slice(b"HTTP/1.1 ");
    json::write_u64(out, u64::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(reason(resp.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&resp.headers);
}

/// Writes the head of a response whose body follows as it is produced: chunked, or (for an
/// HTTP/1.0 client, which cannot read chunks) delimited by closing the connection. A
/// bodiless status gets neither.
pub fn write_stream_head(out: &mut Vec<u8>, resp: &Response, keep_alive: bool, chunked: bool) {
    write_status_and_headers(out, resp);
    if chunked && !resp.is_bodiless() {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Room kept in front of a chunk's data for its size line (16 hex digits and CRLF).
pub const CHUNK_SIZE_ROOM: usize = 18;

/// Frames `buf[CHUNK_SIZE_ROOM..]` as one chunk: writes its size line just before the data
/// and CRLF after it; returns where the chunk starts in `buf`.
pub fn frame_chunk(buf: &mut Vec<u8>) -> usize {
    let len = buf.len() - CHUNK_SIZE_ROOM;
    let mut size = [0u8; 16];
    let mut at = size.len();
    let mut n = len;
    loop {
        at -= 1;
        size[at] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    let digits = &size[at..];
    let start = CHUNK_SIZE_ROOM - digits.len() - 2;
    buf[start..start + digits.len()].copy_from_slice(digits);
    buf[CHUNK_SIZE_ROOM - 2..CHUNK_SIZE_ROOM].copy_from_slice(b"\r\n");
    buf.extend_from_slice(b"\r\n");
    start
}

/// The chunk that ends a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The reason phrase for a status code ("Unknown" for codes without one: it is informative only).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_removed_and_set_in_place() {
        let mut r = Response::default();
        r.header(b"Vary", b"Accept");
        r.header(b"Access-Control-Allow-Origin", b"a");
        r.header(b"X-Other", b"1");
        r.header(b"access-control-allow-origin", b"b");
        r.set_header(b"Access-Control-Allow-Origin", b"*");
        r.add_vary_origin();
        r.add_vary_origin();
        assert_eq!(
            r.headers,
            b"Vary: Accept\r\nX-Other: 1\r\nAccess-Control-Allow-Origin: *\r\nVary: Origin\r\n"
        );
        r.remove_header(b"X-Other");
        r.remove_header(b"Nothing");
        assert_eq!(
            r.headers,
            b"Vary: Accept\r\nAccess-Control-Allow-Origin: *\r\nVary: Origin\r\n"
        );
    }

    #[test]
    fn frames_chunks_in_place() {
        for (data, framed) in [
            (&b"hello"[..], &b"5\r\nhello\r\n"[..]),
            (
                &[b'x'; 26][..],
                &b"1a\r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"[..],
            ),
        ] {
            let mut buf = vec![0; CHUNK_SIZE_ROOM];
            buf.extend_from_slice(data);
            let start = frame_chunk(&mut buf);
            assert_eq!(&buf[start..], framed);
        }
        let mut big = vec![0; CHUNK_SIZE_ROOM + 0x10000];
        let start = frame_chunk(&mut big);
        assert_eq!(&big[start..start + 7], b"10000\r\n");
    }

    #[test]
    fn writes_a_stream_head() {
        let mut r = Response::default();
        r.clear();
        r.header(b"Content-Type", b"text/event-stream");
        let mut out = Vec::new();
        write_stream_head(&mut out, &r, true, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        out.clear();
        write_stream_head(&mut out, &r, false, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn writes_a_response() {
        let mut r = Response::default();
        r.clear();
        r.header(b"Content-Type", b"application/json");
        r.header(b"X-Evil", b"a\r\nSet-Cookie: x");
        r.header(b"Bad Name", b"v");
        r.body.extend_from_slice(b"{}");
        let mut out = Vec::new();
        write_response(&mut out, &r, false, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Evil: aSet-Cookie: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        out.clear();
        r.status = 204;
        write_response(&mut out, &r, true, false);
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\nX-Evil: aSet-Cookie: x\r\n\r\n");
    }
}
