//! The client side of HTTP/1: a response head parsed as spans, its body framing decided by the
//! same rules the server side applies to requests (one place for both directions' framing), and
//! how an exchange with an upstream can fail.

use super::framing::parse_length;
use std::ops::Range;

/// Largest response head accepted from an upstream (Lambda).
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// A parsed response head; ranges index the buffer it was parsed from.
#[derive(Debug, Default)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Header (name, value) ranges.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// Length of the head; the body starts here.
    pub head_len: usize,
    /// Body range (set once the body is read).
    pub body: Range<usize>,
}

/// An exchange with an upstream that failed before a complete response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect failed (refused, unreachable, DNS).
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// `host:port`.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS handshake failed (certificate not trusted, wrong name, protocol error).
    #[error("TLS handshake with {endpoint} failed: {source}")]
    Tls {
        /// `host:port`.
        endpoint: String,
        /// What rustls said.
        source: std::io::Error,
    },
    /// The forward proxy refused the tunnel (`CONNECT` answered other than 2xx, e.g. 407 when
    /// its credentials are wrong) or did not answer it.
    #[error("forward proxy {proxy} refused the tunnel to {endpoint}: {why}")]
    Proxy {
        /// The proxy, `host:port`.
        proxy: String,
        /// `host:port` of the endpoint.
        endpoint: String,
        /// Its status line, or what went wrong.
        why: String,
    },
    /// The connection broke while sending or reading.
    #[error("connection to {endpoint} broken: {source}")]
    Io {
        /// `host:port`.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The response could not be framed (garbage head, truncated body, lying length).
    #[error("invalid response from {endpoint}: {why}")]
    BadResponse {
        /// `host:port`.
        endpoint: String,
        /// What was wrong.
        why: &'static str,
    },
    /// The response exceeded the cap (SPEC §4: 7 MiB).
    #[error("response from {endpoint} larger than {limit} bytes")]
    ResponseTooLarge {
        /// `host:port`.
        endpoint: String,
        /// The cap.
        limit: usize,
    },
    /// A large answer found no room in the node's buffer budget in time: it was left unread.
    #[error("an answer of {wanted} bytes from {endpoint} found no room in the buffer budget ({limit} bytes)")]
    OverBudget {
        /// `host:port`.
        endpoint: String,
        /// The answer's size.
        wanted: usize,
        /// The budget.
        limit: usize,
    },
    /// A response stream (`InvokeWithResponseStream`) broke: a corrupt frame, an exception
    /// event, or the body ending before `InvokeComplete`.
    #[error("response stream from {endpoint} failed: {why}")]
    Stream {
        /// `host:port`.
        endpoint: String,
        /// What went wrong.
        why: String,
    },
    /// The exchange did not complete in time.
    #[error("no complete response within {0:?}")]
    Timeout(std::time::Duration),
}

impl UpstreamError {
    /// A short name for the kind of failure (the `type` label of the Lambda errors metric).
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Tls { .. } => "tls",
            UpstreamError::Proxy { .. } => "proxy",
            UpstreamError::Io { .. } => "connection_broken",
            UpstreamError::BadResponse { .. } => "bad_response",
            UpstreamError::ResponseTooLarge { .. } => "response_too_large",
            UpstreamError::OverBudget { .. } => "buffer_budget",
            UpstreamError::Stream { .. } => "stream",
            UpstreamError::Timeout(_) => "timeout",
        }
    }
}

/// How a response's body is delimited (RFC 9112 §6.3, for a response to a request that is
/// not `HEAD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` bytes.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
    /// No body (204, 304, or `Content-Length: 0`).
    Empty,
}

/// A parsed response head: its length, the body's framing, whether the server will close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadInfo {
    /// Bytes of the head, blank line included.
    pub len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// `Connection: close`, or HTTP/1.0.
    pub close: bool,
}

/// Parses the response head at the start of `buf` into `resp`; `Ok(None)` if incomplete.
/// Refuses what could desynchronise a pooled connection: conflicting or invalid lengths, a
/// transfer coding other than chunked, both a length and chunked, informational answers.
pub fn parse_head(buf: &[u8], resp: &mut ResponseHead) -> Result<Option<HeadInfo>, &'static str> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut slots);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("too many response headers"),
        Err(_) => return Err("invalid response head"),
    };
    let status = r.code.ok_or("invalid response head")?;
    resp.status = status;
    resp.headers.clear();
    let base = buf.as_ptr() as usize;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = r.version == Some(0);
    for h in r.headers.iter() {
        let name = h.name.as_bytes();
        let value = crate::http::framing::trim_ows(h.value);
        let n = name.as_ptr() as usize - base;
        let v = value.as_ptr() as usize - base;
        resp.headers.push((n..n + name.len(), v..v + value.len()));
        if name.eq_ignore_ascii_case(b"content-length") {
            let l = parse_length(value).ok_or("invalid Content-Length in response")? as usize;
            if length.is_some_and(|prev| prev != l) {
                return Err("conflicting Content-Length in response");
            }
            length = Some(l);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err("unsupported Transfer-Encoding in response");
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= value
                .split(|&b| b == b',')
                .any(|t| crate::http::framing::trim_ows(t).eq_ignore_ascii_case(b"close"));
        }
    }
    if status < 200 {
        return Err("unexpected informational response");
    }
    let framing = if status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        if length.is_some() {
            return Err("both Content-Length and Transfer-Encoding in response");
        }
        Framing::Chunked
    } else if let Some(l) = length {
        if l == 0 {
            Framing::Empty
        } else {
            Framing::Length(l)
        }
    } else {
        Framing::UntilClose
    };
    Ok(Some(HeadInfo {
        len,
        framing,
        close,
    }))
}
