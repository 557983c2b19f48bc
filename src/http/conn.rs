//! The per-connection loop: read a head, read its body, hand the request to the proxy, write
//! the response, repeat while keep-alive allows. Pipelined requests are served in order from
//! the same buffer. Every refusal gets its SPEC §6 answer; nothing here panics.

use super::answers;
use super::chunked::{ChunkedDecoder, ChunkedError};
use super::encode::{write_response, Response};
use super::framing::BodyFraming;
use super::head::{self, RequestHead};
use super::limits::Limits;
use super::request::Request;
use crate::runtime::shutdown::Shutdown;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use std::time::{Duration, Instant};

const INITIAL_BUFFER: usize = 4096;
/// An idle connection's read buffer above this is released between requests.
const KEEP_BUFFER: usize = 64 * 1024;

/// A request handler served by [`serve`]: the proxy, or the Admin API.
pub trait Handler {
    /// Handles one complete request, filling `resp` (cleared beforehand).
    fn handle(
        &self,
        req: Request<'_>,
        resp: &mut Response,
    ) -> impl std::future::Future<Output = ()>;

    /// The free list the connection takes its per-request buffers from.
    fn buffers(&self) -> &BufferPool;
}

/// The buffers one request needs while it is served; taken from a [`BufferPool`] so memory
/// follows the number of requests in flight, not the number of open connections.
#[derive(Default)]
pub struct ConnBuffers {
    /// The response being built.
    pub response: Response,
    /// The encoded response.
    pub out: Vec<u8>,
    /// A de-chunked request body.
    pub body: Vec<u8>,
}

/// A worker-local free list of [`ConnBuffers`].
#[derive(Default)]
pub struct BufferPool {
    free: std::cell::RefCell<Vec<ConnBuffers>>,
}

/// Most buffer sets kept per pool.
const MAX_FREE_BUFFERS: usize = 256;
/// A set holding more than this is dropped rather than kept.
const MAX_RETAINED_BYTES: usize = 256 * 1024;

impl BufferPool {
    /// A set for one request.
    pub fn take(&self) -> ConnBuffers {
        self.free.borrow_mut().pop().unwrap_or_default()
    }

    /// Returns a set after its response was written.
    pub fn give_back(&self, b: ConnBuffers) {
        let held = b.response.headers.capacity()
            + b.response.body.capacity()
            + b.out.capacity()
            + b.body.capacity();
        let mut free = self.free.borrow_mut();
        if held <= MAX_RETAINED_BYTES && free.len() < MAX_FREE_BUFFERS {
            free.push(b);
        }
    }
}

/// What a bounded read produced.
enum Read {
    Data,
    Eof,
    TimedOut,
    ShuttingDown,
    Failed,
}

/// Serves one client connection until it closes, errs, idles out, or the worker shuts down.
pub async fn serve<S: AsyncReadRent + AsyncWriteRent, H: Handler>(
    mut stream: S,
    handler: &H,
    limits: &Limits,
    shutdown: &Shutdown,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(INITIAL_BUFFER);
    let mut head = RequestHead::default();
    loop {
        // Head: wait up to the keep-alive timeout for its first byte, then the client timeout.
        let mut scanned = 0;
        let mut head_deadline = (!buf.is_empty()).then(|| Instant::now() + limits.client_timeout);
        loop {
            if !buf.is_empty() && head::may_be_complete(&buf, scanned) {
                match head::parse(&buf, limits, &mut head) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        log::debug!("refused request head: {e}");
                        let mut s = handler.buffers().take();
                        answers::for_head_error(&mut s.response, &e);
                        finish(&mut stream, handler.buffers(), s, false).await;
                        return;
                    }
                }
            } else if buf.len() >= limits.max_head_bytes {
                let mut s = handler.buffers().take();
                answers::for_head_error(&mut s.response, &head::HeadError::TooLarge);
                finish(&mut stream, handler.buffers(), s, false).await;
                return;
            }
            scanned = buf.len();
            let idle = buf.is_empty();
            let deadline = match head_deadline {
                Some(d) => d,
                None => Instant::now() + limits.keepalive_timeout,
            };
            let cap = limits
                .max_head_bytes
                .saturating_sub(buf.len())
                .clamp(1, INITIAL_BUFFER * 4);
            match read_some(
                &mut stream,
                &mut buf,
                cap,
                deadline,
                idle.then_some(shutdown),
            )
            .await
            {
                Read::Data => {
                    if head_deadline.is_none() {
                        head_deadline = Some(Instant::now() + limits.client_timeout);
                    }
                }
                Read::TimedOut if !idle => {
                    let mut s = handler.buffers().take();
                    answers::message(&mut s.response, 408, answers::REQUEST_TIMEOUT);
                    finish(&mut stream, handler.buffers(), s, false).await;
                    return;
                }
                Read::Eof | Read::TimedOut | Read::ShuttingDown | Read::Failed => return,
            }
        }

        let mut s = handler.buffers().take();
        s.response.clear();
        // Body.
        let body_deadline = Instant::now() + limits.client_timeout;
        let consumed = match head.framing {
            BodyFraming::None => head.len,
            BodyFraming::Length(n) => {
                let end = head.len + n as usize;
                if head.expect_continue && buf.len() < end && !continue_(&mut stream).await {
                    handler.buffers().give_back(s);
                    return;
                }
                buf.reserve(end.saturating_sub(buf.len()));
                while buf.len() < end {
                    let want = end - buf.len();
                    match read_some(&mut stream, &mut buf, want.max(1), body_deadline, None).await {
                        Read::Data => {}
                        Read::TimedOut => {
                            answers::message(&mut s.response, 408, answers::REQUEST_TIMEOUT);
                            finish(&mut stream, handler.buffers(), s, false).await;
                            return;
                        }
                        _ => {
                            handler.buffers().give_back(s);
                            return;
                        }
                    }
                }
                end
            }
            BodyFraming::Chunked => {
                if head.expect_continue && buf.len() == head.len && !continue_(&mut stream).await {
                    handler.buffers().give_back(s);
                    return;
                }
                let mut decoder = ChunkedDecoder::new(limits.max_body_bytes);
                s.body.clear();
                loop {
                    // Decoded bytes are drained from the read buffer so it holds the head plus
                    // at most one read of raw chunk data.
                    let result = decoder.decode(&buf[head.len..], &mut s.body);
                    let used = match result {
                        Ok(used) => used,
                        Err(e) => {
                            log::debug!("refused chunked body: {e}");
                            match e {
                                ChunkedError::TooLarge => answers::message(
                                    &mut s.response,
                                    413,
                                    answers::PAYLOAD_TOO_LARGE,
                                ),
                                ChunkedError::Invalid(_) => {
                                    answers::message(&mut s.response, 400, answers::BAD_REQUEST)
                                }
                            }
                            finish(&mut stream, handler.buffers(), s, false).await;
                            return;
                        }
                    };
                    buf.drain(head.len..head.len + used);
                    if decoder.is_done() {
                        break;
                    }
                    match read_some(
                        &mut stream,
                        &mut buf,
                        INITIAL_BUFFER * 4,
                        body_deadline,
                        None,
                    )
                    .await
                    {
                        Read::Data => {}
                        Read::TimedOut => {
                            answers::message(&mut s.response, 408, answers::REQUEST_TIMEOUT);
                            finish(&mut stream, handler.buffers(), s, false).await;
                            return;
                        }
                        _ => {
                            handler.buffers().give_back(s);
                            return;
                        }
                    }
                }
                head.len
            }
        };

        let is_head = head.method.get(&buf) == b"HEAD";
        {
            let mut body = std::mem::take(&mut s.body);
            let body_slice: &[u8] = match head.framing {
                BodyFraming::Chunked => &body,
                _ => &buf[head.len..consumed],
            };
            let req = Request {
                buf: &buf,
                head: &head,
                body: body_slice,
            };
            handler.handle(req, &mut s.response).await;
            body.clear();
            s.body = body;
        }
        // Decided after handling: a stop signal that arrived meanwhile closes the connection.
        let keep_alive = head.keep_alive && !shutdown.is_set() && !s.response.close;
        s.out.clear();
        write_response(&mut s.out, &s.response, keep_alive, is_head);
        let out = std::mem::take(&mut s.out);
        let (res, out) = write_with_timeout(&mut stream, out, limits.client_timeout).await;
        s.out = out;
        handler.buffers().give_back(s);
        if !res || !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
        // Keep what the client pipelined after this request.
        buf.drain(..consumed);
        if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
            buf = Vec::with_capacity(INITIAL_BUFFER);
        }
    }
}

/// Writes a refusal and closes.
async fn finish<S: AsyncWriteRent>(
    stream: &mut S,
    pool: &BufferPool,
    mut s: ConnBuffers,
    keep_alive: bool,
) {
    s.out.clear();
    write_response(&mut s.out, &s.response, keep_alive, false);
    let out = std::mem::take(&mut s.out);
    let (_, out) = write_with_timeout(stream, out, Duration::from_secs(5)).await;
    s.out = out;
    pool.give_back(s);
    let _ = stream.shutdown().await;
}

async fn continue_<S: AsyncWriteRent>(stream: &mut S) -> bool {
    let (res, _) = stream
        .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
        .await;
    res.is_ok()
}

async fn write_with_timeout<S: AsyncWriteRent>(
    stream: &mut S,
    out: Vec<u8>,
    limit: Duration,
) -> (bool, Vec<u8>) {
    match monoio::time::timeout(limit, stream.write_all(out)).await {
        Ok((Ok(_), out)) => (true, out),
        Ok((Err(e), out)) => {
            log::debug!("writing a response failed: {e}");
            (false, out)
        }
        Err(_) => {
            log::debug!("writing a response timed out after {limit:?}");
            (false, Vec::new())
        }
    }
}

/// Reads up to `max` more bytes into `buf` before `deadline`; while idle, also returns when the
/// worker starts shutting down.
async fn read_some<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
    shutdown: Option<&Shutdown>,
) -> Read {
    let len = buf.len();
    buf.reserve(max);
    let end = len + max.min(buf.capacity() - len);
    let slice = monoio::buf::IoBufMut::slice_mut(std::mem::take(buf), len..end);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let read = monoio::time::timeout(remaining, stream.read(slice));
    let outcome = match shutdown {
        Some(sd) => {
            monoio::select! {
                r = read => Some(r),
                _ = sd.wait() => None,
            }
        }
        None => Some(read.await),
    };
    match outcome {
        None => Read::ShuttingDown,
        Some(Err(_)) => Read::TimedOut,
        Some(Ok((res, slice))) => {
            *buf = slice.into_inner();
            match res {
                Ok(0) => Read::Eof,
                Ok(_) => Read::Data,
                Err(_) => Read::Failed,
            }
        }
    }
}
