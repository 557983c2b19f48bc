//! The per-connection loop: wait for a request, read its head and body, hand it to the handler,
//! write the response, repeat while keep-alive allows. Pipelined requests are served in order
//! from the same buffer. Every refusal gets its SPEC §6 answer; nothing here panics.
//!
//! Memory follows the requests in flight, not the connections open. An idle connection holds
//! its task (small: only the idle wait's state) and a 512-byte buffer that a read waits in,
//! so the next request's first bytes arrive with a single ring operation. Once they do, the
//! request is served in a *request slot*: boxed memory for the request-serving future, taken
//! from the worker's [`RequestSlots`] and given back afterwards, with buffers taken from the
//! worker's [`BufferPool`]. Both free lists are reused, so serving a request allocates nothing
//! in steady state.

use super::budget::{request_cost, Reservation, SMALL_BYTES};
use super::chunked::ChunkedDecoder;
use super::encode::{
    frame_chunk, write_response, write_stream_head, Response, CHUNK_SIZE_ROOM, LAST_CHUNK,
};
use super::failure::Failure;
use super::framing::BodyFraming;
use super::head::{self, HeadError, RequestHead};
use super::large_buffers::{LargeBuffers, LARGE_FROM};
use super::limits::{Limits, BODY_RATE_GRACE};
use super::request::Request;
use super::shutdown::Shutdown;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Bytes asked for per read while a head arrives: most heads fit, bigger ones take more reads.
const HEAD_READ: usize = 4096;
/// Bytes asked for per read of a chunked body.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes an idle connection's waiting read can take: a typical request head fits, a larger one
/// continues in the request's own buffer.
pub const FIRST_READ: usize = 512;

/// A request handler served by [`serve`]: the proxy, or the Admin API.
pub trait Handler {
    /// A response body the handler produces piece by piece (a streamed function output).
    type Stream;

    /// Handles one complete request, filling `resp` (cleared beforehand). `Some` when the body
    /// is not in `resp` but follows as a stream: the connection writes the head, then pulls
    /// pieces with [`Handler::next_piece`], writing each before asking for the next (so a
    /// slow client slows the producer), and ends with [`Handler::end_stream`].
    fn handle(
        &self,
        req: Request<'_>,
        resp: &mut Response,
    ) -> impl Future<Output = Option<Self::Stream>>;

    /// Appends the stream's next bytes to `out` (at least one byte when it says
    /// [`Piece::Data`]).
    fn next_piece(
        &self,
        stream: &mut Self::Stream,
        out: &mut Vec<u8>,
    ) -> impl Future<Output = Piece>;

    /// The stream is over (`end` says how; `body_bytes` were written of it): for the log and
    /// the metrics. `req` is the request it answered.
    fn end_stream(&self, stream: Self::Stream, req: Request<'_>, end: StreamEnd, body_bytes: u64);

    /// The free list the connection takes its per-request buffers from.
    fn buffers(&self) -> &BufferPool;

    /// A request refused before it could be handled (malformed, too large, too slow): its
    /// answer was written; for the log and the metrics. Nothing by default.
    fn refused(&self, _refusal: Refusal<'_>) {}
}

/// What is known of a request the connection refused itself.
pub struct Refusal<'a> {
    /// Why.
    pub failure: &'a Failure,
    /// The status answered.
    pub status: u16,
    /// Bytes of the answer (head and body).
    pub response_bytes: usize,
    /// Bytes of the request read.
    pub request_bytes: usize,
    /// The client's address.
    pub peer: Option<std::net::IpAddr>,
    /// Whether it came over HTTPS.
    pub secure: bool,
    /// Whether it was an HTTP/2 stream.
    pub http2: bool,
}

/// What [`Handler::next_piece`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes were appended.
    Data,
    /// The body is complete.
    End,
    /// The producer failed (and logged why): the body must end without its last chunk, so
    /// the client sees a truncated response rather than a complete one.
    Failed,
}

/// How a streamed response ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every byte was written, with the terminating chunk.
    Complete,
    /// The producer failed; the body was cut short.
    Failed,
    /// The client went away (or stopped reading for the client timeout), or never wanted a
    /// body (`HEAD`, a bodiless status): the producer was dropped.
    Abandoned,
}

/// What every connection of one server (a worker's proxy, the Admin API) shares.
pub struct Shared<H> {
    /// The request handler.
    pub handler: Rc<H>,
    /// Client limits.
    pub limits: Limits,
    /// The server's stop signal.
    pub shutdown: Rc<Shutdown>,
    /// Whether the listener is HTTPS (requests are marked `secure`).
    pub secure: bool,
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
    /// The connection's client address.
    pub peer: Option<std::net::IpAddr>,
    /// Whether the connection is TLS.
    pub secure: bool,
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

/// A worker-local free list of [`ConnBuffers`], and the worker's large buffers.
#[derive(Default)]
pub struct BufferPool {
    // Boxed: a set moves between the connection and its request's future as a pointer, and a
    // connection holding a pipelined request's bytes keeps 8 bytes, not the set's headers.
    #[allow(clippy::vec_box)]
    free: RefCell<Vec<Box<ConnBuffers>>>,
    /// Buffers too large for a set: bodies, payloads and answers over 256 KiB.
    pub large: LargeBuffers,
}

/// Most buffer sets kept per pool.
const MAX_FREE_BUFFERS: usize = 256;
/// A set holding more than this is dropped rather than kept.
const MAX_RETAINED_BYTES: usize = 256 * 1024;

impl BufferPool {
    /// A set for one request.
    pub fn take(&self) -> Box<ConnBuffers> {
        self.free.borrow_mut().pop().unwrap_or_default()
    }

    /// Returns a set after its response was written.
    pub fn give_back(&self, mut b: Box<ConnBuffers>) {
        if b.retained_bytes() > MAX_RETAINED_BYTES {
            for buf in [&mut b.read, &mut b.body, &mut b.out, &mut b.response.body] {
                self.large.take_back_from(buf);
            }
            if b.retained_bytes() > MAX_RETAINED_BYTES {
                return;
            }
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
pub enum Next {
    /// Serve the next request (its first bytes may already be buffered).
    KeepAlive,
    /// Close the connection.
    Close,
}

/// What serving one request hands back to its connection.
pub struct Served<S> {
    stream: S,
    next: Next,
    /// The buffers, when they still hold bytes of the next request (otherwise they went back).
    held: Option<Box<ConnBuffers>>,
}

/// A request-serving future's type, as made by [`request_slots`].
type StartRequest<S, H, F> = fn(S, Rc<Shared<H>>, Box<ConnBuffers>) -> F;

/// A worker's free list of request slots: boxed memory that request-serving futures (`F`, a
/// few KiB each) are placed in while a request is in flight and that is reused afterwards.
pub struct RequestSlots<S, H, F> {
    start: StartRequest<S, H, F>,
    free: RefCell<Vec<Pin<Box<Option<F>>>>>,
}

/// Most request slots kept for reuse per worker.
const MAX_FREE_SLOTS: usize = 256;

/// The request slots of a server over streams `S` with handler `H`.
pub fn request_slots<S, H>() -> RequestSlots<S, H, impl Future<Output = Served<S>>>
where
    S: AsyncReadRent + AsyncWriteRent + 'static,
    H: Handler + 'static,
{
    RequestSlots {
        start: serve_one::<S, H> as StartRequest<S, H, _>,
        free: RefCell::new(Vec::new()),
    }
}

impl<S, H, F: Future<Output = Served<S>>> RequestSlots<S, H, F> {
    /// Serves one request in a slot: a free one, or a new one when all are in use. `None` when
    /// serving it panicked: the panic is caught here and logged, the request's future (and
    /// with it the connection's stream) dropped. monoio does not catch a task's panic, so
    /// without this one request's bug would end the worker thread and every connection on it.
    async fn serve(
        &self,
        stream: S,
        shared: Rc<Shared<H>>,
        s: Box<ConnBuffers>,
    ) -> Option<Served<S>> {
        let mut slot = self
            .free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Box::pin(None));
        slot.set(Some((self.start)(stream, shared, s)));
        let served = std::future::poll_fn(|cx| match slot.as_mut().as_pin_mut() {
            Some(request) => {
                // Unwind safety: a panicking request's future is dropped below, never polled
                // again; what it shares with other requests sits behind RefCells, whose
                // borrows unwinding releases, and atomics.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| request.poll(cx)))
                    .map_or_else(|panic| std::task::Poll::Ready(Err(panic)), |p| p.map(Ok))
            }
            // Not reached: the slot was filled just above and is emptied only below.
            None => std::task::Poll::Pending,
        })
        .await;
        slot.set(None);
        match served {
            Ok(served) => {
                let mut free = self.free.borrow_mut();
                if free.len() < MAX_FREE_SLOTS {
                    free.push(slot);
                }
                Some(served)
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("a panic");
                log::error!(
                    "serving a request panicked ({what}): its connection is closed, the worker serves on"
                );
                None
            }
        }
    }

    /// Bytes of one slot's request-serving future.
    pub fn request_size(&self) -> usize {
        std::mem::size_of::<F>()
    }
}

/// A new connection's first bytes (at least `at_least` of them, unless the client stops
/// sending): `None` when it closed, idled out or the server is stopping first.
pub async fn first_bytes<S: AsyncReadRent, H>(
    stream: &mut S,
    shared: &Shared<H>,
    at_least: usize,
) -> Option<Vec<u8>> {
    let mut read = Vec::with_capacity(FIRST_READ);
    loop {
        let buf = Vec::with_capacity(FIRST_READ);
        let (arrived, buf) = wait_first(
            stream,
            buf,
            shared.limits.keepalive_timeout,
            &shared.shutdown,
        )
        .await;
        if !arrived {
            return None;
        }
        read.extend_from_slice(&buf);
        if read.len() >= at_least || read.len() >= FIRST_READ {
            return Some(read);
        }
    }
}

/// A buffer set holding a connection's first bytes, already read: for [`serve`].
pub fn first_request<H: Handler>(
    shared: &Shared<H>,
    peer: Option<std::net::IpAddr>,
    read: &[u8],
) -> Box<ConnBuffers> {
    let mut s = shared.handler.buffers().take();
    s.peer = peer;
    s.secure = shared.secure;
    s.read.extend_from_slice(read);
    s
}

/// Serves one client connection (from `peer`) until it closes, errs, idles out, or the server
/// shuts down. `held`: its first request's bytes, when they were read already
/// ([`first_request`]).
pub async fn serve<S, H, F>(
    mut stream: S,
    mut held: Option<Box<ConnBuffers>>,
    peer: Option<std::net::IpAddr>,
    shared: Rc<Shared<H>>,
    slots: &RequestSlots<S, H, F>,
) where
    S: AsyncReadRent + AsyncWriteRent,
    H: Handler,
    F: Future<Output = Served<S>>,
{
    let mut first: Vec<u8> = Vec::with_capacity(FIRST_READ);
    loop {
        let s = match held.take() {
            Some(s) => s,
            None => {
                let limits = &shared.limits;
                let (arrived, buf) = wait_first(
                    &mut stream,
                    first,
                    limits.keepalive_timeout,
                    &shared.shutdown,
                )
                .await;
                first = buf;
                if !arrived {
                    return;
                }
                let mut s = shared.handler.buffers().take();
                s.peer = peer;
                s.secure = shared.secure;
                s.read.extend_from_slice(&first);
                first.clear();
                s
            }
        };
        let Some(served) = slots.serve(stream, shared.clone(), s).await else {
            return;
        };
        stream = served.stream;
        match (served.next, served.held) {
            (Next::KeepAlive, held_bytes) => held = held_bytes,
            (Next::Close, s) => {
                if let Some(s) = s {
                    shared.handler.buffers().give_back(s);
                }
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Waits for a request's first bytes with a read into `buf` (an idle connection's only
/// buffer). True when bytes arrived; false on EOF, error, idle timeout or shutdown (the
/// connection then closes, so a read dropped in flight loses nothing). The idle timeout is
/// the server's tick-driven one (see [`Shutdown::wait_until`]), not a timer of its own.
async fn wait_first<S: AsyncReadRent>(
    stream: &mut S,
    buf: Vec<u8>,
    timeout: Duration,
    shutdown: &Shutdown,
) -> (bool, Vec<u8>) {
    if shutdown.is_set() {
        return (false, buf);
    }
    let read = stream.read(buf);
    monoio::select! {
        r = read => match r {
            (Ok(n), buf) if n > 0 => (true, buf),
            (_, buf) => (false, buf),
        },
        _ = shutdown.wait_until(Instant::now() + timeout) => (false, Vec::new()),
    }
}

/// Serves one request from `s` (which may hold its first bytes). Returns what to do next, and
/// the buffers when they still hold bytes of the next request (otherwise they went back).
async fn serve_one<S, H>(mut stream: S, shared: Rc<Shared<H>>, s: Box<ConnBuffers>) -> Served<S>
where
    S: AsyncReadRent + AsyncWriteRent,
    H: Handler,
{
    let handler = &*shared.handler;
    let (next, held) =
        serve_request(&mut stream, handler, &shared.limits, &shared.shutdown, s).await;
    Served { stream, next, held }
}

/// The request at the start of `s.read` (read further as needed), answered.
async fn serve_request<S, H>(
    stream: &mut S,
    handler: &H,
    limits: &Limits,
    shutdown: &Shutdown,
    mut s: Box<ConnBuffers>,
) -> (Next, Option<Box<ConnBuffers>>)
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
                    return refuse(stream, handler, s, Failure::Head(HeadError::TooLarge)).await;
                }
            }
            Err(e) => return refuse(stream, handler, s, Failure::Head(e)).await,
        }
        if !s.read.is_empty() && head::may_be_complete(&s.read, scanned) {
            match head::parse(&s.read, limits, &mut s.head) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return refuse(stream, handler, s, Failure::Head(e)).await,
            }
        } else if s.read.len() >= limits.max_head_bytes {
            return refuse(stream, handler, s, Failure::Head(HeadError::TooLarge)).await;
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
            Read::TimedOut if head_begun => {
                return refuse(stream, handler, s, Failure::ClientTimeout).await
            }
            _ => return (Next::Close, Some(s)),
        }
    }

    // Body. A large one reserves its bytes in the node's budget before it is read (waiting
    // for room, its connection unread), and keeps them until its request has its answer.
    s.response.clear();
    let head_len = s.head.len;
    let mut reserved: Option<Reservation> = None;
    let consumed = match s.head.framing {
        BodyFraming::None => head_len,
        BodyFraming::Length(n) => {
            let end = head_len + n as usize;
            if let Err(f) = reserve_body(limits, &mut reserved, n as usize).await {
                return refuse(stream, handler, s, f).await;
            }
            if s.head.expect_continue && s.read.len() < end && !continue_(stream).await {
                return (Next::Close, Some(s));
            }
            let deadline = Instant::now() + limits.client_timeout;
            let mut pace = BodyPace::new(limits.min_body_rate);
            if s.read.capacity() < end {
                if end >= LARGE_FROM {
                    // The head read so far moves into a large buffer (a kept one if any).
                    let mut large = handler.buffers().large.take(end);
                    large.extend_from_slice(&s.read);
                    s.read = large;
                } else {
                    s.read.reserve(end - s.read.len());
                }
            }
            while s.read.len() < end {
                let want = end - s.read.len();
                match read_some(stream, &mut s.read, want, pace.deadline(deadline)).await {
                    Read::Data => {}
                    Read::TimedOut => {
                        return refuse(stream, handler, s, pace.timed_out(deadline)).await
                    }
                    _ => return (Next::Close, Some(s)),
                }
                if let Err(f) = pace.received(s.read.len() - head_len) {
                    return refuse(stream, handler, s, f).await;
                }
            }
            end
        }
        BodyFraming::Chunked => {
            if s.head.expect_continue && s.read.len() == head_len && !continue_(stream).await {
                return (Next::Close, Some(s));
            }
            let deadline = Instant::now() + limits.client_timeout;
            let mut pace = BodyPace::new(limits.min_body_rate);
            let mut received = s.read.len() - head_len;
            let mut decoder = ChunkedDecoder::new(limits.max_body_bytes);
            s.body.clear();
            loop {
                // Decoded bytes leave the read buffer, so it holds the head plus at most one
                // read of raw chunk data.
                match decoder.decode(&s.read[head_len..], &mut s.body) {
                    Ok(used) => {
                        s.read.drain(head_len..head_len + used);
                    }
                    Err(e) => return refuse(stream, handler, s, Failure::Chunked(e)).await,
                }
                if decoder.is_done() {
                    break;
                }
                // The body's size is learnt as it comes: the reservation grows ahead of it.
                let ahead = s.body.len() + READ_CHUNK;
                if let Err(f) = reserve_body(limits, &mut reserved, ahead).await {
                    return refuse(stream, handler, s, f).await;
                }
                let before = s.read.len();
                match read_some(stream, &mut s.read, READ_CHUNK, pace.deadline(deadline)).await {
                    Read::Data => {}
                    Read::TimedOut => {
                        return refuse(stream, handler, s, pace.timed_out(deadline)).await
                    }
                    _ => return (Next::Close, Some(s)),
                }
                received += s.read.len() - before;
                if let Err(f) = pace.received(received) {
                    return refuse(stream, handler, s, f).await;
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
            peer,
            secure,
            ..
        } = &mut *s;
        let body_slice: &[u8] = match head.framing {
            BodyFraming::Chunked => body,
            _ => &read[head_len..consumed],
        };
        let req = Request {
            buf: read,
            head,
            body: body_slice,
            peer: *peer,
            secure: *secure,
        };
        if let Some(body) = handler.handle(req, response).await {
            // Boxed: a streamed answer is rare, and its state would otherwise grow every
            // request's future.
            let streamed = stream_response(
                stream, handler, limits, shutdown, s, body, is_head, consumed,
            );
            return Box::pin(streamed).await;
        }
    }
    // Decided after handling: a stop signal that arrived meanwhile closes the connection.
    let keep_alive = s.head.keep_alive && !shutdown.is_set() && !s.response.close;
    // A large body is not needed once its request has its answer: its buffer goes back before
    // the answer is written (to a slow reader, perhaps), keeping only what was pipelined.
    let consumed = release_large_body(handler, &mut s, consumed);
    // A large answer is written from where it was built, after its head, rather than copied
    // behind the head first.
    let body_apart = !is_head && !s.response.is_bodiless() && s.response.body.len() > SMALL_BYTES;
    s.out.clear();
    write_response(&mut s.out, &s.response, keep_alive, is_head || body_apart);
    let shared = s
        .response
        .shared
        .take()
        .filter(|_| !is_head && !s.response.is_bodiless());
    // A large answer is held until the client has read it: counted, so that a slow reader's
    // answer makes new large requests wait rather than adding to memory. The body is given
    // back first: nothing needs it but the request that ended.
    drop(reserved);
    let _writing = limits
        .budget
        .as_ref()
        .filter(|_| body_apart)
        .map(|b| b.force(s.response.body.len()));
    let deadline = Instant::now() + limits.client_timeout;
    let out = std::mem::take(&mut s.out);
    let (mut written, out) = write_with_timeout(stream, out, limits.client_timeout).await;
    s.out = out;
    if written && body_apart {
        let body = std::mem::take(&mut s.response.body);
        let left = deadline.saturating_duration_since(Instant::now());
        let (ok, body) = write_with_timeout(stream, body, left).await;
        s.response.body = body;
        written = ok;
    }
    if let Some(body) = shared.filter(|_| written) {
        // A shared body (a cached answer) is written from where it is stored.
        let left = deadline.saturating_duration_since(Instant::now());
        written = write_with_timeout(stream, body, left).await.0;
    }
    next_request(handler, s, consumed, written && keep_alive)
}

/// Gives a large request body's buffer back to the worker's large buffers, keeping the bytes
/// pipelined after the request (which ended at `consumed`) in a small one. Returns where the
/// request now ends in `s.read`. The head's spans are stale afterwards.
fn release_large_body<H: Handler>(handler: &H, s: &mut ConnBuffers, consumed: usize) -> usize {
    let large = &handler.buffers().large;
    large.take_back_from(&mut s.body);
    if s.read.capacity() < LARGE_FROM {
        return consumed;
    }
    let pipelined = s.read[consumed..].to_vec();
    large.keep(std::mem::replace(&mut s.read, pipelined));
    0
}

/// After a response: close, or keep the connection with what the client pipelined after the
/// request that ended at `consumed`.
fn next_request<H: Handler>(
    handler: &H,
    mut s: Box<ConnBuffers>,
    consumed: usize,
    keep_alive: bool,
) -> (Next, Option<Box<ConnBuffers>>) {
    if !keep_alive {
        return (Next::Close, Some(s));
    }
    s.read.drain(..consumed);
    if s.read.is_empty() {
        handler.buffers().give_back(s);
        (Next::KeepAlive, None)
    } else {
        (Next::KeepAlive, Some(s))
    }
}

/// Writes a streamed response: its head, then each piece as one chunk as soon as it is
/// produced. The next piece is asked for only once the last one is written, so the producer
/// never runs ahead of the client by more than one piece.
#[allow(clippy::too_many_arguments)]
async fn stream_response<S, H>(
    stream: &mut S,
    handler: &H,
    limits: &Limits,
    shutdown: &Shutdown,
    mut s: Box<ConnBuffers>,
    mut body: H::Stream,
    is_head: bool,
    consumed: usize,
) -> (Next, Option<Box<ConnBuffers>>)
where
    S: AsyncReadRent + AsyncWriteRent,
    H: Handler,
{
    // An HTTP/1.0 client cannot read chunks: its body ends when the connection closes.
    let chunked = s.head.minor_version >= 1;
    let mut keep_alive = chunked && s.head.keep_alive && !shutdown.is_set() && !s.response.close;
    let wants_body = !is_head && !s.response.is_bodiless();
    s.out.clear();
    write_stream_head(&mut s.out, &s.response, keep_alive, chunked);
    let out = std::mem::take(&mut s.out);
    let (mut written, out) = write_with_timeout(stream, out, limits.client_timeout).await;
    s.out = out;
    let mut sent = 0u64;
    let end = if !written || !wants_body {
        StreamEnd::Abandoned
    } else {
        loop {
            s.out.clear();
            let room = if chunked { CHUNK_SIZE_ROOM } else { 0 };
            s.out.resize(room, 0);
            match handler.next_piece(&mut body, &mut s.out).await {
                // An empty chunk would end the body: nothing to write.
                Piece::Data if s.out.len() == room => {}
                Piece::Data => {
                    sent += (s.out.len() - room) as u64;
                    let start = if chunked { frame_chunk(&mut s.out) } else { 0 };
                    let out = std::mem::take(&mut s.out);
                    let (ok, out) = write_from(stream, out, start, limits.client_timeout).await;
                    s.out = out;
                    if !ok {
                        written = false;
                        break StreamEnd::Abandoned;
                    }
                }
                Piece::End => {
                    if chunked {
                        s.out.clear();
                        s.out.extend_from_slice(LAST_CHUNK);
                        let out = std::mem::take(&mut s.out);
                        let (ok, out) =
                            write_with_timeout(stream, out, limits.client_timeout).await;
                        s.out = out;
                        written = ok;
                    }
                    break StreamEnd::Complete;
                }
                Piece::Failed => {
                    written = false;
                    break StreamEnd::Failed;
                }
            }
        }
    };
    {
        let req = request_in(&s, consumed);
        handler.end_stream(body, req, end, sent);
    }
    // A body cut short leaves the connection unusable; one never wanted (HEAD, 204) does not.
    keep_alive &= written && (end == StreamEnd::Complete || !wants_body);
    next_request(handler, s, consumed, keep_alive)
}

/// The request whose head and body `s` holds (`consumed`: where its bytes end in `s.read`).
fn request_in(s: &ConnBuffers, consumed: usize) -> Request<'_> {
    let body: &[u8] = match s.head.framing {
        BodyFraming::Chunked => &s.body,
        _ => &s.read[s.head.len..consumed],
    };
    Request {
        buf: &s.read,
        head: &s.head,
        body,
        peer: s.peer,
        secure: s.secure,
    }
}

/// Writes `out[start..]`, within `limit`.
async fn write_from<S: AsyncWriteRent>(
    stream: &mut S,
    out: Vec<u8>,
    start: usize,
    limit: Duration,
) -> (bool, Vec<u8>) {
    let slice = monoio::buf::IoBuf::slice(out, start..);
    match monoio::time::timeout(limit, stream.write_all(slice)).await {
        Ok((res, slice)) => {
            if let Err(e) = &res {
                log::debug!("writing a streamed response failed: {e}");
            }
            (res.is_ok(), slice.into_inner())
        }
        Err(_) => {
            log::debug!("writing a streamed response timed out after {limit:?}");
            (false, Vec::new())
        }
    }
}

/// Answers a refused head and closes.
async fn refuse<S: AsyncWriteRent, H: Handler>(
    stream: &mut S,
    handler: &H,
    mut s: Box<ConnBuffers>,
    failure: Failure,
) -> (Next, Option<Box<ConnBuffers>>) {
    log::debug!("refused request: {failure}");
    failure.answer(&mut s.response);
    let s = finish(stream, s, false).await;
    handler.refused(Refusal {
        failure: &failure,
        status: s.response.status,
        response_bytes: s.response.headers.len() + s.response.body_len(),
        request_bytes: s.read.len(),
        peer: s.peer,
        secure: s.secure,
        http2: false,
    });
    (Next::Close, Some(s))
}

/// Writes the response in `s` (a refusal) and hands the buffers back to the caller.
async fn finish<S: AsyncWriteRent>(
    stream: &mut S,
    mut s: Box<ConnBuffers>,
    keep_alive: bool,
) -> Box<ConnBuffers> {
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

async fn write_with_timeout<S: AsyncWriteRent, B: monoio::buf::IoBuf + Default>(
    stream: &mut S,
    out: B,
    limit: Duration,
) -> (bool, B) {
    match monoio::time::timeout(limit, stream.write_all(out)).await {
        Ok((Ok(_), out)) => (true, out),
        Ok((Err(e), out)) => {
            log::debug!("writing a response failed: {e}");
            (false, out)
        }
        Err(_) => {
            log::debug!("writing a response timed out after {limit:?}");
            (false, B::default())
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

/// Makes `reserved` cover a request with `body` bytes of body in the budget (see
/// [`request_cost`]), waiting for room; a body up to [`SMALL_BYTES`] needs none.
pub async fn reserve_body(
    limits: &Limits,
    reserved: &mut Option<Reservation>,
    body: usize,
) -> Result<(), Failure> {
    reserve_body_beyond(limits, reserved, body, SMALL_BYTES).await
}

/// [`reserve_body`] for a body that needs no room up to `free` bytes (0: every body does;
/// HTTP/2 streams beyond their connection's allowance).
pub async fn reserve_body_beyond(
    limits: &Limits,
    reserved: &mut Option<Reservation>,
    body: usize,
    free: usize,
) -> Result<(), Failure> {
    let Some(budget) = &limits.budget else {
        return Ok(());
    };
    let held = reserved.as_ref().map_or(0, Reservation::bytes);
    let bytes = request_cost(body);
    if body <= free || bytes <= held {
        return Ok(());
    }
    if let Some(r) = reserved.as_mut() {
        if r.grow_to(bytes) {
            return Ok(());
        }
    }
    match budget.reserve(bytes - held).await {
        Some(more) => {
            match reserved {
                Some(r) => r.absorb(more),
                None => *reserved = Some(more),
            }
            Ok(())
        }
        None => Err(Failure::Overloaded {
            wanted: bytes,
            limit: budget.limit(),
        }),
    }
}

/// Slow senders: once [`BODY_RATE_GRACE`] has passed, a body must have come at
/// `min_body_rate` on average, and no read waits longer than the grace for a byte.
pub(crate) struct BodyPace {
    min_rate: u64,
    started: Instant,
    last_byte: Instant,
}

impl BodyPace {
    pub(crate) fn new(min_rate: u64) -> BodyPace {
        let now = Instant::now();
        BodyPace {
            min_rate,
            started: now,
            last_byte: now,
        }
    }

    /// When the next read gives up: the client deadline, or the grace after the last byte.
    pub(crate) fn deadline(&self, client_deadline: Instant) -> Instant {
        if self.min_rate == 0 {
            client_deadline
        } else {
            client_deadline.min(self.last_byte + BODY_RATE_GRACE)
        }
    }

    /// Why a read that gave up at [`BodyPace::deadline`] did.
    pub(crate) fn timed_out(&self, client_deadline: Instant) -> Failure {
        if self.deadline(client_deadline) < client_deadline {
            self.too_slow()
        } else {
            Failure::ClientTimeout
        }
    }

    /// `total` bytes of the body have come.
    pub(crate) fn received(&mut self, total: usize) -> Result<(), Failure> {
        let now = Instant::now();
        self.last_byte = now;
        let elapsed = now.duration_since(self.started);
        if self.min_rate == 0 || elapsed < BODY_RATE_GRACE {
            return Ok(());
        }
        if (total as f64) < self.min_rate as f64 * elapsed.as_secs_f64() {
            return Err(self.too_slow());
        }
        Ok(())
    }

    fn too_slow(&self) -> Failure {
        crate::metrics::PROCESS
            .slow_bodies
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Failure::SlowBody {
            min_rate: self.min_rate,
        }
    }
}

/// Accepts connections and hands each to `on_accept` until `shutdown` starts.
pub async fn accept_until_shutdown(
    listener: &monoio::net::TcpListener,
    shutdown: &Shutdown,
    mut on_accept: impl FnMut(monoio::net::TcpStream, std::net::SocketAddr),
) {
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => Some(r),
            _ = shutdown.wait() => None,
        };
        match accepted {
            None => return,
            Some(Ok((stream, peer))) => on_accept(stream, peer),
            Some(Err(e)) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept on {:?} failed: {e}", listener.local_addr().ok());
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A handler with a bug, for the tests of every protocol's catch.
#[cfg(test)]
pub(crate) mod buggy {
    use super::*;

    /// Answers `ok`, except that a request for `/panic` hits a bug.
    #[derive(Default)]
    pub(crate) struct BuggyHandler {
        buffers: BufferPool,
    }

    impl Handler for BuggyHandler {
        type Stream = std::convert::Infallible;

        async fn handle(&self, req: Request<'_>, resp: &mut Response) -> Option<Self::Stream> {
            assert!(req.path() != b"/panic", "a bug in the handler");
            resp.status = 200;
            resp.body.extend_from_slice(b"ok");
            None
        }

        async fn next_piece(&self, stream: &mut Self::Stream, _: &mut Vec<u8>) -> Piece {
            match *stream {}
        }

        fn end_stream(&self, stream: Self::Stream, _: Request<'_>, _: StreamEnd, _: u64) {
            match stream {}
        }

        fn buffers(&self) -> &BufferPool {
            &self.buffers
        }
    }
}

#[cfg(test)]
mod tests {
    use super::buggy::BuggyHandler;
    use super::*;
    use std::io::{Read, Write};

    fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
        let mut c = std::net::TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    }

    #[test]
    fn a_panicking_request_closes_its_connection_and_the_worker_serves_on() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // One worker thread: the connection after the panic is served by the same runtime.
        let worker = std::thread::spawn(move || {
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = monoio::net::TcpListener::from_std(listener).expect("listener");
                let shared = Rc::new(Shared {
                    handler: Rc::new(BuggyHandler::default()),
                    limits: Limits::default(),
                    shutdown: Rc::new(Shutdown::default()),
                    secure: false,
                });
                let slots = Rc::new(request_slots::<monoio::net::TcpStream, BuggyHandler>());
                for _ in 0..3 {
                    let (stream, _) = listener.accept().await.expect("accept");
                    let (shared, slots) = (shared.clone(), slots.clone());
                    monoio::spawn(async move { serve(stream, None, None, shared, &slots).await })
                        .await;
                }
            });
        });
        let ok = "GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        assert!(exchange(addr, ok).ends_with("\r\n\r\nok"));
        // Cut off without an answer: nothing is known of what the bug left half done.
        assert_eq!(exchange(addr, "GET /panic HTTP/1.1\r\nHost: t\r\n\r\n"), "");
        let after = exchange(addr, ok);
        assert!(after.starts_with("HTTP/1.1 200"), "{after:?}");
        worker.join().expect("the worker thread did not panic");
    }
}
