//! The per-connection loop: wait for a request, read its head and body, hand it to the handler,
//! write the response, repeat while keep-alive allows. Pipelined requests are served in order
//! from the same buffer. Every refusal gets its SPEC §6 answer; nothing here panics.
//!
//! An idle connection holds no buffer: it waits for readability, and only then takes a read
//! buffer (and everything else a request needs) from the worker's [`BufferPool`]. Memory thus
//! follows the requests in flight, not the connections open.

use super::answers;
use super::chunked::{ChunkedDecoder, ChunkedError};
use super::encode::{write_response, Response};
use super::framing::BodyFraming;
use super::head::{self, HeadError, RequestHead};
use super::limits::Limits;
use super::request::Request;
use crate::runtime::shutdown::Shutdown;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use std::time::{Duration, Instant};

/// Bytes asked for per read while a head arrives: most heads fit, bigger ones take more reads.
const HEAD_READ: usize = 4096;
/// Bytes asked for per read of a chunked body.
const READ_CHUNK: usize = 16 * 1024;

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

/// A client stream the loop can wait on without a read in flight.
pub trait Readiness {
    /// Completes when the stream has bytes (or EOF, or an error) to read.
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>>;
}

impl Readiness for monoio::net::TcpStream {
    async fn readable(&self) -> std::io::Result<()> {
        // Relaxed: a spurious wake-up only leads to a read that waits.
        monoio::net::TcpStream::readable(self, true).await
    }
}

/// Everything one request needs while it is served.
#[derive(Default)]
pub struct ConnBuffers {
    /// Bytes read from the client: the head, the body (or chunked framing), maybe the next
    /// pipelined request.
    pub read: Vec<u8>,
    /// The parsed head (spans into `read`).
    pub head: RequestHead,
    /// The response being built.
    pub response: Response,
    /// The encoded response.
    pub out: Vec<u8>,
    /// A de-chunked request body.
    pub body: Vec<u8>,
}

impl ConnBuffers {
    fn retained_bytes(&self) -> usize {
        self.read.capacity()
            + self.head.headers.capacity() * std::mem::size_of::<super::head::HeaderSpan>()
            + self.response.headers.capacity()
            + self.response.body.capacity()
            + self.out.capacity()
            + self.body.capacity()
    }
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
    pub fn give_back(&self, mut b: ConnBuffers) {
        if b.retained_bytes() > MAX_RETAINED_BYTES {
            return;
        }
        b.read.clear();
        let mut free = self.free.borrow_mut();
        if free.len() < MAX_FREE_BUFFERS {
            free.push(b);
        }
    }
}

/// What a bounded read produced.
enum Read {
    Data,
    Eof,
    TimedOut,
    Failed,
}

/// Why the loop stops after the current request.
enum Next {
    /// Serve the next request (its first bytes may already be buffered).
    KeepAlive,
    /// Close the connection.
    Close,
}

/// Serves one client connection until it closes, errs, idles out, or the worker shuts down.
pub async fn serve<S, H>(mut stream: S, handler: &H, limits: &Limits, shutdown: &Shutdown)
where
    S: AsyncReadRent + AsyncWriteRent + Readiness,
    H: Handler,
{
    // Some while bytes of a next (pipelined) request are already buffered.
    let mut held: Option<ConnBuffers> = None;
    loop {
        let s = match held.take() {
            Some(s) => s,
            None => {
                if !wait_idle(&stream, limits.keepalive_timeout, shutdown).await {
                    return;
                }
                handler.buffers().take()
            }
        };
        match serve_one(&mut stream, handler, limits, shutdown, s).await {
            (Next::KeepAlive, Some(s)) => held = Some(s),
            (Next::KeepAlive, None) => {}
            (Next::Close, s) => {
                if let Some(s) = s {
                    handler.buffers().give_back(s);
                }
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Waits, holding no buffer, until the client sends something; false on idle timeout,
/// shutdown, or error.
async fn wait_idle<S: Readiness>(stream: &S, timeout: Duration, shutdown: &Shutdown) -> bool {
    if shutdown.is_set() {
        return false;
    }
    let ready = monoio::time::timeout(timeout, stream.readable());
    monoio::select! {
        r = ready => matches!(r, Ok(Ok(()))),
        _ = shutdown.wait() => false,
    }
}

/// Serves one request from `s` (which may hold its first bytes). Returns what to do next, and
/// the buffers when they still hold bytes of the next request (otherwise they went back).
async fn serve_one<S, H>(
    stream: &mut S,
    handler: &H,
    limits: &Limits,
    shutdown: &Shutdown,
    mut s: ConnBuffers,
) -> (Next, Option<ConnBuffers>)
where
    S: AsyncReadRent + AsyncWriteRent,
    H: Handler,
{
    // Head: the client timeout runs from the first byte.
    let deadline = Instant::now() + limits.client_timeout;
    let mut scanned = 0usize;
    // Empty lines dropped before the request line; they count towards the head limit.
    let mut skipped = 0;
    loop {
        match head::leading_empty_lines(&s.read) {
            Ok(0) => {}
            Ok(n) => {
                s.read.drain(..n);
                skipped += n;
                scanned = scanned.saturating_sub(n);
                if skipped >= limits.max_head_bytes {
                    return refuse(stream, s, &HeadError::TooLarge).await;
                }
            }
            Err(e) => return refuse(stream, s, &e).await,
        }
        if !s.read.is_empty() && head::may_be_complete(&s.read, scanned) {
            match head::parse(&s.read, limits, &mut s.head) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return refuse(stream, s, &e).await,
            }
        } else if s.read.len() >= limits.max_head_bytes {
            return refuse(stream, s, &HeadError::TooLarge).await;
        }
        scanned = s.read.len();
        let room = limits
            .max_head_bytes
            .saturating_sub(s.read.len())
            .clamp(1, HEAD_READ);
        // A timed-out read takes the buffer with it: whether a head had begun is noted first.
        let head_begun = !s.read.is_empty();
        match read_some(stream, &mut s.read, room, deadline).await {
            Read::Data => {}
            Read::TimedOut if head_begun => return timed_out(stream, s).await,
            _ => return (Next::Close, Some(s)),
        }
    }

    // Body.
    s.response.clear();
    let deadline = Instant::now() + limits.client_timeout;
    let head_len = s.head.len;
    let consumed = match s.head.framing {
        BodyFraming::None => head_len,
        BodyFraming::Length(n) => {
            let end = head_len + n as usize;
            if s.head.expect_continue && s.read.len() < end && !continue_(stream).await {
                return (Next::Close, Some(s));
            }
            s.read.reserve(end.saturating_sub(s.read.len()));
            while s.read.len() < end {
                let want = end - s.read.len();
                match read_some(stream, &mut s.read, want, deadline).await {
                    Read::Data => {}
                    Read::TimedOut => return timed_out(stream, s).await,
                    _ => return (Next::Close, Some(s)),
                }
            }
            end
        }
        BodyFraming::Chunked => {
            if s.head.expect_continue && s.read.len() == head_len && !continue_(stream).await {
                return (Next::Close, Some(s));
            }
            let mut decoder = ChunkedDecoder::new(limits.max_body_bytes);
            s.body.clear();
            loop {
                // Decoded bytes leave the read buffer, so it holds the head plus at most one
                // read of raw chunk data.
                match decoder.decode(&s.read[head_len..], &mut s.body) {
                    Ok(used) => {
                        s.read.drain(head_len..head_len + used);
                    }
                    Err(e) => {
                        log::debug!("refused chunked body: {e}");
                        match e {
                            ChunkedError::TooLarge => {
                                answers::message(&mut s.response, 413, answers::PAYLOAD_TOO_LARGE)
                            }
                            ChunkedError::Invalid(_) => {
                                answers::message(&mut s.response, 400, answers::BAD_REQUEST)
                            }
                        }
                        return (Next::Close, Some(finish(stream, s, false).await));
                    }
                }
                if decoder.is_done() {
                    break;
                }
                match read_some(stream, &mut s.read, READ_CHUNK, deadline).await {
                    Read::Data => {}
                    Read::TimedOut => return timed_out(stream, s).await,
                    _ => return (Next::Close, Some(s)),
                }
            }
            head_len
        }
    };

    let is_head = s.head.method.get(&s.read) == b"HEAD";
    {
        let ConnBuffers {
            read,
            head,
            response,
            body,
            ..
        } = &mut s;
        let body_slice: &[u8] = match head.framing {
            BodyFraming::Chunked => body,
            _ => &read[head_len..consumed],
        };
        let req = Request {
            buf: read,
            head,
            body: body_slice,
        };
        handler.handle(req, response).await;
    }
    // Decided after handling: a stop signal that arrived meanwhile closes the connection.
    let keep_alive = s.head.keep_alive && !shutdown.is_set() && !s.response.close;
    s.out.clear();
    write_response(&mut s.out, &s.response, keep_alive, is_head);
    let out = std::mem::take(&mut s.out);
    let (written, out) = write_with_timeout(stream, out, limits.client_timeout).await;
    s.out = out;
    if !written || !keep_alive {
        return (Next::Close, Some(s));
    }
    // Keep what the client pipelined after this request.
    s.read.drain(..consumed);
    if s.read.is_empty() {
        handler.buffers().give_back(s);
        (Next::KeepAlive, None)
    } else {
        (Next::KeepAlive, Some(s))
    }
}

/// Answers a refused head and closes.
async fn refuse<S: AsyncWriteRent>(
    stream: &mut S,
    mut s: ConnBuffers,
    e: &HeadError,
) -> (Next, Option<ConnBuffers>) {
    log::debug!("refused request head: {e}");
    answers::for_head_error(&mut s.response, e);
    (Next::Close, Some(finish(stream, s, false).await))
}

/// Answers 408 and closes.
async fn timed_out<S: AsyncWriteRent>(
    stream: &mut S,
    mut s: ConnBuffers,
) -> (Next, Option<ConnBuffers>) {
    answers::message(&mut s.response, 408, answers::REQUEST_TIMEOUT);
    (Next::Close, Some(finish(stream, s, false).await))
}

/// Writes the response in `s` (a refusal) and hands the buffers back to the caller.
async fn finish<S: AsyncWriteRent>(
    stream: &mut S,
    mut s: ConnBuffers,
    keep_alive: bool,
) -> ConnBuffers {
    s.out.clear();
    write_response(&mut s.out, &s.response, keep_alive, false);
    let out = std::mem::take(&mut s.out);
    let (_, out) = write_with_timeout(stream, out, Duration::from_secs(5)).await;
    s.out = out;
    s
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

/// Reads up to `max` more bytes into `buf` before `deadline`.
async fn read_some<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Read {
    let len = buf.len();
    buf.reserve(max);
    let end = len + max.min(buf.capacity() - len);
    let slice = monoio::buf::IoBufMut::slice_mut(std::mem::take(buf), len..end);
    let remaining = deadline.saturating_duration_since(Instant::now());
    match monoio::time::timeout(remaining, stream.read(slice)).await {
        // The read was dropped (cancelled); its buffer is gone with it, and the connection
        // closes, so nothing more is read from it.
        Err(_) => Read::TimedOut,
        Ok((res, slice)) => {
            *buf = slice.into_inner();
            match res {
                Ok(0) => Read::Eof,
                Ok(_) => Read::Data,
                Err(_) => Read::Failed,
            }
        }
    }
}
