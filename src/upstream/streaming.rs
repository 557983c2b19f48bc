//! Reading `InvokeWithResponseStream`'s answer as it arrives: the HTTP body is de-framed
//! (chunked, by length, or until close) and cut into AWS event-stream messages, one at a time,
//! reading from the connection only when no whole message is buffered. Nothing is read ahead
//! of the caller: a caller that waits (for a slow client) stops the reads, and TCP then slows
//! Lambda. Memory is one read plus one message.

use super::pool::{IdleConn, Pool};
use super::stream::{fill, BodyStart};
use crate::aws::endpoint::Endpoint;
use crate::aws::event_stream::{self, Event};
use crate::http::chunked::ChunkedDecoder;
use crate::http::client::{Framing, UpstreamError};
use std::cell::RefCell;
use std::ops::Range;
use std::time::Instant;

/// How the HTTP body carrying the event stream is delimited.
enum BodyFrames {
    Chunked(ChunkedDecoder),
    /// Bytes still to come.
    Length(usize),
    UntilClose,
}

/// One message of the stream, as far as the gateway cares. Ranges index
/// [`ResponseStream::bytes`] and stay valid until the next call that reads the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `PayloadChunk`: the next bytes of the function's output.
    Chunk(Range<usize>),
    /// `InvokeComplete`: its JSON (`ErrorCode`, `ErrorDetails`, `LogResult`).
    Complete(Range<usize>),
    /// The HTTP body ended (after `InvokeComplete`, if the stream was whole).
    End,
}

/// An open `InvokeWithResponseStream` answer: its connection, and what was read of it.
pub struct ResponseStream {
    /// `None` once released.
    conn: Option<IdleConn>,
    endpoint: Endpoint,
    /// The response head as read (Lambda's headers index it).
    head: Vec<u8>,
    /// Bytes read and not yet de-framed.
    raw: Vec<u8>,
    body: BodyFrames,
    /// De-framed event-stream bytes; `consumed..` are not decoded yet.
    events: Vec<u8>,
    consumed: usize,
    /// Length of the message returned last, dropped from `events` at the next call.
    last: usize,
    body_done: bool,
    /// The connection cannot carry another request (the server closes it, or sent too much).
    unusable: bool,
}

/// Bytes asked for per read: a streamed output is often large.
const STREAM_READ: usize = 64 * 1024;

impl ResponseStream {
    /// The stream whose head (and maybe first body bytes) `buf` holds.
    pub(super) fn new(
        conn: IdleConn,
        endpoint: &Endpoint,
        mut buf: Vec<u8>,
        start: BodyStart,
    ) -> Self {
        let raw = buf.split_off(start.head_len);
        let body = match start.framing {
            Framing::Chunked => BodyFrames::Chunked(ChunkedDecoder::new(usize::MAX)),
            Framing::Length(n) => BodyFrames::Length(n),
            Framing::UntilClose => BodyFrames::UntilClose,
            Framing::Empty => BodyFrames::Length(0),
        };
        let mut stream = ResponseStream {
            conn: Some(conn),
            endpoint: endpoint.clone(),
            head: buf,
            raw,
            body,
            events: Vec::new(),
            consumed: 0,
            last: 0,
            body_done: false,
            unusable: start.server_close,
        };
        stream.body_done = matches!(stream.body, BodyFrames::Length(0));
        stream
    }

    /// The response head as read from Lambda.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The bytes a [`Frame`]'s range indexes.
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.events[range]
    }

    fn label(&self) -> String {
        format!("{}:{}", self.endpoint.host, self.endpoint.port)
    }

    fn failed(&self, why: impl Into<String>) -> UpstreamError {
        UpstreamError::Stream {
            endpoint: self.label(),
            why: why.into(),
        }
    }

    /// The next message already received, if a whole one is: never reads.
    pub fn next_buffered(&mut self) -> Result<Option<Frame>, UpstreamError> {
        self.consumed += std::mem::take(&mut self.last);
        loop {
            let rest = &self.events[self.consumed..];
            let decoded = event_stream::decode(rest).map_err(|e| self.failed(e.to_string()))?;
            let Some((message, used)) = decoded else {
                if !self.body_done {
                    return Ok(None);
                }
                if rest.is_empty() {
                    return Ok(Some(Frame::End));
                }
                return Err(self.failed("the body ended inside an event-stream message"));
            };
            let at = |part: &[u8]| {
                let start = self.consumed + (part.as_ptr() as usize - rest.as_ptr() as usize);
                start..start + part.len()
            };
            let frame = match message.event() {
                Event::PayloadChunk(bytes) => Frame::Chunk(at(bytes)),
                Event::InvokeComplete(json) => Frame::Complete(at(json)),
                Event::Exception(kind, payload) => {
                    return Err(self.failed(format!(
                        "{} exception: {}",
                        String::from_utf8_lossy(kind),
                        String::from_utf8_lossy(payload)
                    )))
                }
                Event::Error(code, message) => {
                    return Err(self.failed(format!(
                        "{} error: {}",
                        String::from_utf8_lossy(code),
                        String::from_utf8_lossy(message)
                    )))
                }
                // Events this gateway does not know are skipped, as the SDKs do.
                Event::Other(_) => {
                    self.consumed += used;
                    continue;
                }
            };
            self.last = used;
            return Ok(Some(frame));
        }
    }

    /// The next message, reading as needed. The caller bounds the wait.
    pub async fn next(&mut self) -> Result<Frame, UpstreamError> {
        loop {
            if let Some(frame) = self.next_buffered()? {
                return Ok(frame);
            }
            self.read_more().await?;
        }
    }

    /// Reads once and de-frames what came into `events`.
    async fn read_more(&mut self) -> Result<(), UpstreamError> {
        // Decoded messages leave the buffer before it grows.
        if self.consumed > 0 {
            self.events.drain(..self.consumed);
            self.consumed = 0;
        }
        if self.raw.is_empty() {
            if self.raw.capacity() < STREAM_READ {
                self.raw.reserve(STREAM_READ);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Err(self.failed("the connection was released"));
            };
            let n = fill(&mut conn.stream, &mut self.raw)
                .await
                .map_err(|e| e.with_endpoint(self.label()))?;
            if n == 0 {
                if matches!(self.body, BodyFrames::UntilClose) {
                    self.body_done = true;
                    self.unusable = true;
                    return Ok(());
                }
                return Err(self.failed("the connection closed before the stream ended"));
            }
        }
        let used = match &mut self.body {
            BodyFrames::Chunked(decoder) => {
                let used = decoder.decode(&self.raw, &mut self.events).map_err(|e| {
                    UpstreamError::Stream {
                        endpoint: format!("{}:{}", self.endpoint.host, self.endpoint.port),
                        why: e.to_string(),
                    }
                })?;
                self.body_done = decoder.is_done();
                used
            }
            BodyFrames::Length(left) => {
                let take = (*left).min(self.raw.len());
                self.events.extend_from_slice(&self.raw[..take]);
                *left -= take;
                self.body_done = *left == 0;
                take
            }
            BodyFrames::UntilClose => {
                self.events.extend_from_slice(&self.raw);
                self.raw.len()
            }
        };
        self.raw.drain(..used);
        // Bytes past the body: the connection is out of step with its requests.
        if self.body_done && !self.raw.is_empty() {
            self.unusable = true;
        }
        Ok(())
    }

    /// Gives the connection back to the pool when the stream was read to its end and nothing
    /// is left over; otherwise it is closed. Either way the stream reads no more.
    pub fn release(&mut self, pool: &RefCell<Pool>, keepalive: std::time::Duration) {
        let whole =
            self.body_done && self.raw.is_empty() && self.consumed + self.last == self.events.len();
        if let Some(mut conn) = self.conn.take() {
            if whole && !self.unusable {
                conn.since = Instant::now();
                conn.keepalive = keepalive;
                pool.borrow_mut().put(&self.endpoint, conn);
            }
        }
    }
}
