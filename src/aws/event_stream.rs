//! AWS event-stream framing (`application/vnd.amazon.eventstream`), as Lambda's
//! `InvokeWithResponseStream` answers: a sequence of messages, each
//!
//! ```text
//! total length (u32) | headers length (u32) | prelude CRC32 (u32, of the 8 bytes before)
//! headers … | payload … | message CRC32 (u32, of everything before it)
//! ```
//!
//! all integers big-endian. A header is a name (u8 length, bytes), a type byte and a value
//! (booleans carry none; byte, short, int, long, timestamp and uuid have fixed sizes; bytes and
//! strings a u16 length). Lambda sends `PayloadChunk` events (the function's bytes),
//! `InvokeComplete` (with `ErrorCode`/`ErrorDetails` when the function failed), and exception
//! or error messages.
//!
//! [`decode`] reads one message from the front of the bytes received so far, without copying:
//! a caller appends what arrives and decodes until it needs more. The prelude's checksum and
//! the length limit are checked as soon as 12 bytes are in, so a corrupt or hostile length is
//! refused before anything is buffered for it.

use thiserror::Error;

/// Bytes of the prelude: two lengths and their CRC.
pub const PRELUDE_LEN: usize = 12;
/// The smallest message: a prelude and the message CRC.
pub const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + 4;
/// The largest message accepted: Lambda's chunks are far smaller; AWS's own limit for a
/// message is 16 MiB of payload plus 128 KiB of headers.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024 + 128 * 1024 + MIN_MESSAGE_LEN;

/// Why a stream cannot be read further.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The total length is below the minimum, above the limit, or too small for the headers.
    #[error("event-stream message length {total} (headers {headers}) is invalid")]
    BadLength {
        /// The prelude's total length.
        total: u32,
        /// The prelude's headers length.
        headers: u32,
    },
    /// The prelude's CRC does not match.
    #[error("event-stream prelude checksum mismatch")]
    PreludeChecksum,
    /// The message's CRC does not match.
    #[error("event-stream message checksum mismatch")]
    MessageChecksum,
    /// A header is cut short or has an unknown type.
    #[error("event-stream headers are malformed")]
    BadHeaders,
}

/// A header's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// Types 0 and 1.
    Bool(bool),
    /// Types 2 (byte), 3 (short), 4 (int), 5 (long) and 8 (timestamp, ms since the epoch).
    Int(i64),
    /// Type 6.
    Bytes(&'a [u8]),
    /// Type 7 (UTF-8 by the format's definition; kept as bytes).
    Str(&'a [u8]),
    /// Type 9.
    Uuid(&'a [u8; 16]),
}

/// One message, borrowing the caller's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    headers: &'a [u8],
    /// The payload.
    pub payload: &'a [u8],
}

/// What a message of Lambda's stream says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// `PayloadChunk`: the next bytes of the function's output.
    PayloadChunk(&'a [u8]),
    /// `InvokeComplete`: the end; its payload is JSON with `ErrorCode`, `ErrorDetails` and
    /// `LogResult` (the error fields set when the function failed).
    InvokeComplete(&'a [u8]),
    /// `:message-type exception`: its `:exception-type` and payload.
    Exception(&'a [u8], &'a [u8]),
    /// `:message-type error`: its `:error-code` and `:error-message`.
    Error(&'a [u8], &'a [u8]),
    /// Another event type, to be skipped.
    Other(&'a [u8]),
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads the message at the front of `buf`: `Ok(None)` when more bytes are needed, else the
/// message and how many bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Message<'_>, usize)>, FrameError> {
    if buf.len() < PRELUDE_LEN {
        return Ok(None);
    }
    let (total, headers_len) = (be32(&buf[0..4]), be32(&buf[4..8]));
    if crc32fast::hash(&buf[0..8]) != be32(&buf[8..12]) {
        return Err(FrameError::PreludeChecksum);
    }
    let (total_len, headers) = (total as usize, headers_len as usize);
    if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&total_len)
        || headers > total_len - MIN_MESSAGE_LEN
    {
        return Err(FrameError::BadLength {
            total,
            headers: headers_len,
        });
    }
    if buf.len() < total_len {
        return Ok(None);
    }
    let body_end = total_len - 4;
    if crc32fast::hash(&buf[..body_end]) != be32(&buf[body_end..total_len]) {
        return Err(FrameError::MessageChecksum);
    }
    let message = Message {
        headers: &buf[PRELUDE_LEN..PRELUDE_LEN + headers],
        payload: &buf[PRELUDE_LEN + headers..body_end],
    };
    // Every header is checked once here, so lookups later cannot fail.
    let mut headers = message.headers();
    while headers.next().is_some() {}
    if !headers.rest.is_empty() {
        return Err(FrameError::BadHeaders);
    }
    Ok(Some((message, total_len)))
}

/// The headers of a message, in order; stops at the first malformed one (leaving `rest`).
pub struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], HeaderValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (&name_len, rest) = self.rest.split_first()?;
        let name = rest.get(..name_len as usize)?;
        let rest = &rest[name_len as usize..];
        let (&kind, rest) = rest.split_first()?;
        let fixed = |n: usize| rest.get(..n).map(|v| (v, &rest[n..]));
        let int = |n: usize| {
            fixed(n).map(|(v, r)| {
                let mut x: i64 = if v[0] & 0x80 != 0 { -1 } else { 0 };
                for &b in v {
                    x = (x << 8) | i64::from(b);
                }
                (HeaderValue::Int(x), r)
            })
        };
        let sized = |wrap: fn(&'a [u8]) -> HeaderValue<'a>| {
            let len = rest
                .get(..2)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))?;
            let value = rest.get(2..2 + len)?;
            Some((wrap(value), &rest[2 + len..]))
        };
        let (value, rest) = match kind {
            0 => (HeaderValue::Bool(true), rest),
            1 => (HeaderValue::Bool(false), rest),
            2 => int(1)?,
            3 => int(2)?,
            4 => int(4)?,
            5 | 8 => int(8)?,
            6 => sized(HeaderValue::Bytes)?,
            7 => sized(HeaderValue::Str)?,
            9 => {
                let (v, r) = fixed(16)?;
                (HeaderValue::Uuid(v.try_into().ok()?), r)
            }
            _ => return None,
        };
        self.rest = rest;
        Some((name, value))
    }
}

impl<'a> Message<'a> {
    /// The message's headers.
    pub fn headers(&self) -> Headers<'a> {
        Headers { rest: self.headers }
    }

    /// The string or bytes value of header `name`.
    pub fn text(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find_map(|(n, v)| match v {
            HeaderValue::Str(s) | HeaderValue::Bytes(s) if n == name.as_bytes() => Some(s),
            _ => None,
        })
    }

    /// What the message means in Lambda's response stream.
    pub fn event(&self) -> Event<'a> {
        match self.text(":message-type").unwrap_or(b"event") {
            b"exception" => Event::Exception(
                self.text(":exception-type").unwrap_or_default(),
                self.payload,
            ),
            b"error" => Event::Error(
                self.text(":error-code").unwrap_or_default(),
                self.text(":error-message").unwrap_or_default(),
            ),
            _ => match self.text(":event-type").unwrap_or_default() {
                b"PayloadChunk" => Event::PayloadChunk(self.payload),
                b"InvokeComplete" => Event::InvokeComplete(self.payload),
                other => Event::Other(other),
            },
        }
    }
}

/// Writes one message with string headers: what Lambda sends, for mocks and tests.
pub fn encode(out: &mut Vec<u8>, headers: &[(&str, &str)], payload: &[u8]) {
    let start = out.len();
    let headers_len: usize = headers.iter().map(|(n, v)| 1 + n.len() + 3 + v.len()).sum();
    let total = PRELUDE_LEN + headers_len + payload.len() + 4;
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[start..start + 8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(7);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Lambda's `PayloadChunk` event carrying `bytes`.
pub fn payload_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    encode(
        out,
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        bytes,
    );
}

/// Lambda's `InvokeComplete` event with its JSON `body`.
pub fn invoke_complete(out: &mut Vec<u8>, body: &[u8]) {
    encode(
        out,
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        body,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of three messages: two chunks and the end.
    fn stream() -> Vec<u8> {
        let mut out = Vec::new();
        payload_chunk(&mut out, b"hello ");
        payload_chunk(&mut out, b"");
        payload_chunk(&mut out, b"world");
        invoke_complete(&mut out, br#"{"LogResult":""}"#);
        out
    }

    fn events(buf: &[u8]) -> Result<(Vec<String>, usize), FrameError> {
        let mut at = 0;
        let mut seen = Vec::new();
        while let Some((m, used)) = decode(&buf[at..])? {
            seen.push(match m.event() {
                Event::PayloadChunk(p) => format!("chunk:{}", String::from_utf8_lossy(p)),
                Event::InvokeComplete(p) => format!("complete:{}", String::from_utf8_lossy(p)),
                Event::Exception(t, p) => format!(
                    "exception:{}:{}",
                    String::from_utf8_lossy(t),
                    String::from_utf8_lossy(p)
                ),
                Event::Error(c, m) => format!(
                    "error:{}:{}",
                    String::from_utf8_lossy(c),
                    String::from_utf8_lossy(m)
                ),
                Event::Other(t) => format!("other:{}", String::from_utf8_lossy(t)),
            });
            at += used;
        }
        Ok((seen, at))
    }

    #[test]
    fn a_stream_decodes_whole_and_split_at_every_byte() {
        let s = stream();
        let want = vec![
            "chunk:hello ".to_string(),
            "chunk:".into(),
            "chunk:world".into(),
            r#"complete:{"LogResult":""}"#.into(),
        ];
        assert_eq!(events(&s), Ok((want.clone(), s.len())));
        // Fed one byte at a time, as a slow connection would: the same events, in order, each
        // as soon as its last byte is in.
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        for &b in &s {
            buf.push(b);
            let (mut got, used) = events(&buf).expect("valid so far");
            seen.append(&mut got);
            buf.drain(..used);
        }
        assert_eq!(seen, want);
        assert!(buf.is_empty());
    }

    #[test]
    fn headers_of_every_type_are_read() {
        // A message with one header of each type, written by hand.
        let mut h = Vec::new();
        let mut header = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        header("t", 0, &[]);
        header("f", 1, &[]);
        header("b", 2, &[0xff]);
        header("s", 3, &[0x01, 0x00]);
        header("i", 4, &[0, 0, 0, 7]);
        header("l", 5, &[0, 0, 0, 0, 0, 0, 1, 0]);
        header("x", 6, &[0, 2, 0xde, 0xad]);
        header("str", 7, &[0, 2, b'o', b'k']);
        header("ts", 8, &[0, 0, 0, 0, 0, 0, 0, 9]);
        header("u", 9, &[7; 16]);
        let total = PRELUDE_LEN + h.len() + 4;
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m.extend_from_slice(&h);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        let (msg, used) = decode(&m).expect("valid").expect("complete");
        assert_eq!(used, m.len());
        let values: Vec<_> = msg.headers().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [
                HeaderValue::Bool(true),
                HeaderValue::Bool(false),
                HeaderValue::Int(-1),
                HeaderValue::Int(256),
                HeaderValue::Int(7),
                HeaderValue::Int(256),
                HeaderValue::Bytes(&[0xde, 0xad]),
                HeaderValue::Str(b"ok"),
                HeaderValue::Int(9),
                HeaderValue::Uuid(&[7; 16]),
            ]
        );
        assert_eq!(msg.text("str"), Some(&b"ok"[..]));
        assert_eq!(msg.event(), Event::Other(b""));
    }

    #[test]
    fn errors_and_exceptions_are_told_apart() {
        let mut out = Vec::new();
        encode(
            &mut out,
            &[
                (":message-type", "exception"),
                (":exception-type", "ServiceException"),
            ],
            b"{\"message\":\"boom\"}",
        );
        encode(
            &mut out,
            &[
                (":message-type", "error"),
                (":error-code", "InternalFailure"),
                (":error-message", "x"),
            ],
            b"",
        );
        let (seen, _) = events(&out).expect("valid");
        assert_eq!(
            seen,
            [
                "exception:ServiceException:{\"message\":\"boom\"}",
                "error:InternalFailure:x"
            ]
        );
    }

    #[test]
    fn corrupt_frames_are_refused() {
        let good = stream();
        // A flipped bit in the prelude, its CRC, a header, the payload, the message CRC.
        for (at, want) in [
            (2, FrameError::PreludeChecksum),
            (9, FrameError::PreludeChecksum),
            (14, FrameError::MessageChecksum),
            (good.len() - 1, FrameError::MessageChecksum),
        ] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            let first_len = be32(&good[0..4]) as usize;
            let result = if at < first_len {
                decode(&bad).map(|_| ())
            } else {
                events(&bad).map(|_| ())
            };
            assert_eq!(result, Err(want), "bit flipped at {at}");
        }
        // Lengths that cannot be: below the minimum, past the limit, headers past the end.
        let prelude = |total: u32, headers: u32| {
            let mut p = Vec::new();
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&headers.to_be_bytes());
            let crc = crc32fast::hash(&p);
            p.extend_from_slice(&crc.to_be_bytes());
            p
        };
        for (total, headers) in [
            (15, 0),
            (u32::MAX, 0),
            (MAX_MESSAGE_LEN as u32 + 1, 0),
            (20, 5),
        ] {
            assert_eq!(
                decode(&prelude(total, headers)),
                Err(FrameError::BadLength { total, headers }),
                "{total}/{headers}"
            );
        }
        // A plausible length is waited for, not allocated: nothing is decided before it.
        assert_eq!(decode(&prelude(1 << 20, 0)), Ok(None));
        // A header whose value runs past the headers: malformed.
        let mut m = prelude(PRELUDE_LEN as u32 + 4 + 4, 4);
        m.truncate(12);
        m.extend_from_slice(&[1, b'a', 7, 0]);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(decode(&m), Err(FrameError::BadHeaders));
    }
}
