//! HTTP/2 for clients, over the same handler as HTTP/1.1: each stream is one request, laid out
//! by [`head_from_fields`] as the phases read every request. Framing, HPACK, flow control and
//! the protocol's known attacks are the `h2` crate's; this module configures its limits,
//! adapts monoio's streams to it (their `poll-io` form speaks tokio's traits), and turns a
//! stream into a [`Request`] and a [`Response`] back into HEADERS and DATA.
//!
//! Two ways in: h2c with prior knowledge on the plain listener (a connection whose first bytes
//! are the HTTP/2 preface, [`serve_h2c`]), and ALPN `h2` on the HTTPS listener ([`serve`] over
//! the TLS stream). Answers are buffered or streamed piece by piece.

use crate::http::budget::SMALL_BYTES;
use crate::http::conn::{
    reserve_body_beyond, BodyPace, Handler, Piece, Refusal, Shared, StreamEnd,
};
use crate::http::encode::Response;
use crate::http::failure::Failure;
use crate::http::fields::{head_from_fields, PseudoHeaders};
use crate::http::framing::FramingError;
use crate::http::head::{HeadError, RequestHead};
use crate::http::request::Request;
use crate::http::shutdown::{Shutdown, Wait};
use bytes::Bytes;
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface (RFC 9113 §3.4) that opens an h2c connection.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams a client may reset before the gateway accepted them, before the connection is
/// closed with ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487).
const MAX_PENDING_RESETS: usize = 20;
/// The per-stream receive window: what a client may send before the gateway has read it.
const STREAM_WINDOW: u32 = 64 * 1024;
/// What a client may send across its streams before the gateway has read it: enough for
/// sixteen streams' full windows at once.
const CONNECTION_WINDOW: u32 = 16 * STREAM_WINDOW;
/// What a connection may have queued for sending, across its streams.
const MAX_SEND_BUFFER: usize = 256 * 1024;
/// The heads a connection's open streams may hold at once, in heads at the size limit: a
/// stream past it is refused (REFUSED_STREAM, which a client may retry). One hundred
/// streams of 2.6 KB heads fit; one hundred at the 32 KiB limit would hold 6.5 MiB.
const HEADS_PER_CONNECTION: usize = 8;
/// Bytes of bodies and buffered answers a connection's streams may hold outside the node's
/// budget, together: what one HTTP/1.1 connection may (one request at a time). Past it, a
/// stream's body and answer are counted in the budget from their first byte.
const UNBUDGETED_PER_CONNECTION: usize = SMALL_BYTES;

/// Bytes that tell the preface from an HTTP/1.1 request line: `PRI ` (no other method starts
/// so; WebDAV's `PROPFIND` parts at the third byte).
pub const DECIDES: usize = 4;

/// Whether `first` (a connection's first bytes, at least [`DECIDES`] of them) opens h2c.
pub fn is_preface(first: &[u8]) -> bool {
    let n = first.len().min(PREFACE.len());
    n >= DECIDES && first[..n] == PREFACE[..n]
}

/// The connection settings every HTTP/2 connection is served with: the gateway's limits.
pub fn builder(limits: &crate::http::Limits) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(limits.max_head_bytes as u32)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(MAX_SEND_BUFFER);
    builder
}

/// Lays out a stream's request head (`parts`, as h2 decoded it) in `buf` and `head` as the
/// phases read every request: pseudo-headers, fields (cookies joined), the body's length.
pub fn stream_head(
    parts: &http::request::Parts,
    body_len: u64,
    limits: &crate::http::Limits,
    buf: &mut Vec<u8>,
    head: &mut RequestHead,
) -> Result<(), HeadError> {
    let path = parts
        .uri
        .path_and_query()
        .map_or(&b"/"[..], |p| p.as_str().as_bytes());
    let pseudo = PseudoHeaders {
        method: parts.method.as_str().as_bytes(),
        path,
        authority: parts.uri.authority().map(|a| a.as_str().as_bytes()),
    };
    // Cookies may come as several fields (RFC 9113 §8.2.3): joined into one, as HTTP/1.1
    // sends them, for the plugins and the function.
    let cookies = joined_cookies(&parts.headers);
    let fields = parts
        .headers
        .iter()
        .filter(|(n, _)| cookies.is_none() || *n != http::header::COOKIE)
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
        .chain(cookies.as_deref().map(|c| (&b"cookie"[..], c)));
    head_from_fields(pseudo, fields, body_len, limits, buf, head)
}

/// Serves an h2c connection whose first bytes, already read, are `first`.
pub async fn serve_h2c<H: Handler + 'static>(
    stream: monoio::net::TcpStream,
    first: Vec<u8>,
    peer: Option<std::net::IpAddr>,
    shared: Rc<Shared<H>>,
) {
    match stream.try_into_poll_io() {
        Ok(io) => {
            let io = Rewound {
                first,
                read: 0,
                inner: io,
            };
            serve(io, peer, shared).await
        }
        Err((e, _)) => log::debug!("an h2c connection could not be polled: {e}"),
    }
}

/// Serves an HTTP/2 connection from its preface on: each stream a request to the handler.
pub async fn serve<H, IO>(io: IO, peer: Option<std::net::IpAddr>, shared: Rc<Shared<H>>)
where
    H: Handler + 'static,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &shared.limits;
    // h2 borrows the stream: it is needed again to close it well after a connection error.
    let mut io = io;
    // Boxed with its timer: the codec being set up and the timer (monoio's is 640 bytes,
    // aligned to 128) are gone once it is done, instead of widening the connection's future
    // for its whole life.
    let handshake = Box::pin(monoio::time::timeout(
        limits.client_timeout,
        builder(limits).handshake(&mut io),
    ));
    let mut conn: h2::server::Connection<_, Bytes> = match handshake.await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            log::debug!("HTTP/2 handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    // Streams being served, what they hold, and when the last one ended: a connection with
    // none for the keep-alive timeout is closed.
    let activity = Rc::new(Activity {
        open: Cell::new(0),
        last: Cell::new(Instant::now()),
        heads: Cell::new(0),
        unbudgeted: Cell::new(0),
        connection: Cell::new(None),
    });
    let heads_allowed = HEADS_PER_CONNECTION * limits.max_head_bytes;
    let mut closing = false;
    loop {
        let next = if closing {
            // The streams in flight finish (each bounded by its own timeouts); a client that
            // no longer reads (its GOAWAY unsent) has the client timeout after them.
            let mut quiet = Box::pin(activity.idle_for(limits.client_timeout));
            monoio::select! {
                next = conn.accept() => Some(next),
                _ = &mut quiet => return,
            }
        } else {
            next_stream(
                &mut conn,
                &activity,
                &shared.shutdown,
                limits.keepalive_timeout,
            )
            .await
        };
        match next {
            // Stop signal or idle: GOAWAY, and the streams in flight finish.
            None => {
                closing = true;
                activity.last.set(Instant::now());
                conn.graceful_shutdown();
            }
            Some(Some(Ok((request, mut respond)))) => {
                let head = head_cost(&request);
                if activity.heads.get() + head > heads_allowed {
                    log::debug!(
                        "an HTTP/2 stream is refused: its connection's heads are at their bound"
                    );
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                    continue;
                }
                let mut holding = Holding::new(activity.clone(), head);
                let shared = shared.clone();
                monoio::spawn(async move {
                    serve_stream_caught(request, respond, peer, &shared, &mut holding).await;
                });
            }
            Some(Some(Err(e))) => {
                log::debug!("HTTP/2 connection error: {e}");
                drop(conn);
                Box::pin(linger(&mut io)).await;
                return;
            }
            Some(None) => return,
        }
    }
}

/// What [`h2::server::Connection::accept`] gives.
type Accepted = Option<
    Result<
        (
            http::Request<h2::RecvStream>,
            h2::server::SendResponse<Bytes>,
        ),
        h2::Error,
    >,
>;

/// The connection's next stream, or `None` when the server is stopping or the connection
/// has had no stream open for `keepalive`. The keep-alive deadline is one of the worker's
/// shared deadlines ([`Shutdown::wait_until`], as HTTP/1.1 connections wait), not a timer of
/// its own: an idle connection holds no timer.
async fn next_stream<IO: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut h2::server::Connection<IO, Bytes>,
    activity: &Activity,
    shutdown: &Shutdown,
    keepalive: Duration,
) -> Option<Accepted> {
    // The deadline waited for (none while streams are open), and its wait.
    let mut waiting: Option<(Option<Instant>, Wait<'_>)> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(next) = conn.poll_accept(cx) {
            return Poll::Ready(Some(next));
        }
        let deadline = (activity.open.get() == 0).then(|| activity.last.get() + keepalive);
        if waiting.as_ref().is_none_or(|(d, _)| *d != deadline) {
            let wait = match deadline {
                Some(at) => shutdown.wait_until(at),
                None => shutdown.wait(),
            };
            waiting = Some((deadline, wait));
        }
        // The last stream's end wakes this task, to start the keep-alive deadline.
        let known = activity
            .connection
            .take()
            .filter(|w| w.will_wake(cx.waker()));
        activity
            .connection
            .set(Some(known.unwrap_or_else(|| cx.waker().clone())));
        match waiting.as_mut() {
            Some((_, wait)) => Pin::new(wait).poll(cx).map(|_| None),
            None => Poll::Pending,
        }
    })
    .await
}

/// How long, and how many bytes, a connection closed for an error is read from and dropped.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 16 << 20;

/// Closes a connection after an error with the gateway's GOAWAY (already written) still
/// readable by the client: its write side is shut, then what the client is still sending is
/// read and dropped for a moment. Closing with unread bytes would make the kernel answer with
/// a reset, which can destroy the GOAWAY in the client's receive queue before it reads it.
async fn linger<IO: AsyncRead + AsyncWrite + Unpin>(io: &mut IO) {
    let drain = async {
        std::future::poll_fn(|cx| Pin::new(&mut *io).poll_shutdown(cx)).await?;
        let mut scratch = vec![0u8; 16 * 1024];
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            let mut buf = ReadBuf::new(&mut scratch);
            std::future::poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, &mut buf)).await?;
            match buf.filled().len() {
                0 => break,
                n => dropped += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = monoio::time::timeout(LINGER_TIME, drain).await;
}

/// A connection's streams in flight, what they hold, and when the last one ended.
struct Activity {
    open: Cell<usize>,
    last: Cell<Instant>,
    /// The open streams' heads, as [`head_cost`] counts them.
    heads: Cell<usize>,
    /// Bytes of bodies and answers the open streams hold outside the node's budget.
    unbudgeted: Cell<usize>,
    /// The connection's task, woken when its last open stream ends.
    connection: Cell<Option<std::task::Waker>>,
}

/// One stream's share of its connection's [`Activity`], given back when the stream ends.
struct Holding {
    activity: Rc<Activity>,
    head: usize,
    unbudgeted: usize,
}

impl Holding {
    fn new(activity: Rc<Activity>, head: usize) -> Holding {
        activity.open.set(activity.open.get() + 1);
        activity.heads.set(activity.heads.get() + head);
        Holding {
            activity,
            head,
            unbudgeted: 0,
        }
    }

    /// Holds `bytes` more outside the budget if the connection's allowance has room.
    fn take_unbudgeted(&mut self, bytes: usize) -> bool {
        let now = self.activity.unbudgeted.get();
        if now + bytes > UNBUDGETED_PER_CONNECTION {
            return false;
        }
        self.activity.unbudgeted.set(now + bytes);
        self.unbudgeted += bytes;
        true
    }

    /// Gives back what this stream holds outside the budget (now counted in it).
    fn give_back_unbudgeted(&mut self) {
        let a = &self.activity;
        a.unbudgeted.set(a.unbudgeted.get() - self.unbudgeted);
        self.unbudgeted = 0;
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.give_back_unbudgeted();
        let a = &self.activity;
        a.heads.set(a.heads.get() - self.head);
        a.open.set(a.open.get() - 1);
        a.last.set(Instant::now());
        if a.open.get() == 0 {
            if let Some(connection) = a.connection.take() {
                connection.wake();
            }
        }
    }
}

/// What a stream's head holds, counted as HPACK counts a header list (RFC 7541 §4.1: each
/// field's name and value and 32 bytes), the request line's parts included.
fn head_cost<B>(request: &http::Request<B>) -> usize {
    const PER_FIELD: usize = 32;
    let uri = request.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    let fields: usize = request
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + PER_FIELD)
        .sum();
    request.method().as_str().len() + target + 3 * PER_FIELD + fields
}

impl Activity {
    /// Resolves once no stream has been open for `timeout` (checked every second).
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let quiet_until = self.last.get() + timeout;
            let now = Instant::now();
            if self.open.get() == 0 && now >= quiet_until {
                return;
            }
            let pause = quiet_until.saturating_duration_since(now);
            monoio::time::sleep(pause.clamp(Duration::from_millis(100), Duration::from_secs(1)))
                .await;
        }
    }
}

/// [`serve_stream`] under a catch, as HTTP/1.1 requests are served: a bug that panics costs
/// its stream (dropped: the client sees it reset), not the worker and every connection on it.
async fn serve_stream_caught<H: Handler>(
    request: http::Request<h2::RecvStream>,
    respond: h2::server::SendResponse<Bytes>,
    peer: Option<std::net::IpAddr>,
    shared: &Shared<H>,
    holding: &mut Holding,
) {
    let mut stream = std::pin::pin!(serve_stream(request, respond, peer, shared, holding));
    let served = std::future::poll_fn(|cx| {
        // Unwind safety: a panicking stream's future is dropped, never polled again; what it
        // shares with other requests sits behind RefCells (released by unwinding) and atomics.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stream.as_mut().poll(cx)))
            .map_or_else(|_| Poll::Ready(false), |p| p.map(|()| true))
    })
    .await;
    if !served {
        log::error!("serving an HTTP/2 stream panicked: the stream is reset, the worker serves on");
    }
}

/// One stream: its request through the handler, its answer back.
async fn serve_stream<H: Handler>(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    peer: Option<std::net::IpAddr>,
    shared: &Shared<H>,
    holding: &mut Holding,
) {
    let limits = &shared.limits;
    let (parts, mut body_stream) = request.into_parts();
    // The body, read as the client's window allows, within the body limit and at the
    // minimum rate, as over HTTP/1.1. Held outside the budget while the connection's
    // allowance has room; past it, the body reserves its room in the budget as it grows
    // (the window stays shut while it waits: the client's back-pressure).
    let mut body = Vec::new();
    let mut reserved = None;
    let deadline = Instant::now() + limits.client_timeout;
    let mut pace = BodyPace::new(limits.min_body_rate);
    loop {
        let left = pace
            .deadline(deadline)
            .saturating_duration_since(Instant::now());
        let data = match monoio::time::timeout(left, body_stream.data()).await {
            Ok(Some(Ok(data))) => data,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                log::debug!("h2 stream body failed: {e}");
                return;
            }
            Err(_) => return refuse(&mut respond, shared, peer, pace.timed_out(deadline)),
        };
        let total = body.len() + data.len();
        if total > limits.max_body_bytes {
            let too_large = FramingError::TooLarge(limits.max_body_bytes);
            let failure = Failure::Head(HeadError::Framing(too_large));
            return refuse(&mut respond, shared, peer, failure);
        }
        if reserved.is_some() || !holding.take_unbudgeted(data.len()) {
            if let Err(failure) = reserve_body_beyond(limits, &mut reserved, total, 0).await {
                return refuse(&mut respond, shared, peer, failure);
            }
            holding.give_back_unbudgeted();
        }
        body.extend_from_slice(&data);
        let _ = body_stream.flow_control().release_capacity(data.len());
        if let Err(failure) = pace.received(body.len()) {
            return refuse(&mut respond, shared, peer, failure);
        }
    }
    let mut buf = Vec::new();
    let mut head = RequestHead::default();
    if let Err(e) = stream_head(&parts, body.len() as u64, limits, &mut buf, &mut head) {
        return refuse(&mut respond, shared, peer, Failure::Head(e));
    }
    // The phases see it while it is handled, the log once a streamed answer has ended.
    let request = || Request {
        buf: &buf,
        head: &head,
        body: &body,
        peer,
        secure: shared.secure,
    };
    let handler = &*shared.handler;
    let mut resp = Response::default();
    resp.clear();
    let streamed = handler.handle(request(), &mut resp).await;
    let is_head = parts.method == http::Method::HEAD;
    let wants_body = !is_head && !resp.is_bodiless();
    match streamed {
        None => {
            // The request's body is given back; a large answer is counted until the client
            // has taken it, and sent as its window allows.
            drop(reserved);
            let answer = match resp.shared.take() {
                Some(shared) => shared,
                None => Bytes::from(std::mem::take(&mut resp.body)),
            };
            let end = !wants_body || answer.is_empty();
            let Some(mut send) = send_head(&mut respond, &resp, Some(answer.len()), end) else {
                return;
            };
            if !end {
                let _writing = limits
                    .budget
                    .as_ref()
                    .filter(|_| !holding.take_unbudgeted(answer.len()))
                    .map(|b| b.force(answer.len()));
                if send_within_window(&mut send, answer, limits.client_timeout).await {
                    let _ = send.send_data(Bytes::new(), true);
                } else {
                    send.send_reset(h2::Reason::CANCEL);
                }
            }
        }
        Some(mut output) => {
            let req = request();
            let Some(mut send) = send_head(&mut respond, &resp, None, !wants_body) else {
                handler.end_stream(output, req, StreamEnd::Abandoned, 0);
                return;
            };
            if !wants_body {
                handler.end_stream(output, req, StreamEnd::Abandoned, 0);
                return;
            }
            let mut sent = 0u64;
            let end = loop {
                let mut piece = Vec::new();
                match handler.next_piece(&mut output, &mut piece).await {
                    Piece::Data => {
                        sent += piece.len() as u64;
                        if !send_within_window(&mut send, Bytes::from(piece), limits.client_timeout)
                            .await
                        {
                            break StreamEnd::Abandoned;
                        }
                    }
                    Piece::End => {
                        let _ = send.send_data(Bytes::new(), true);
                        break StreamEnd::Complete;
                    }
                    Piece::Failed => {
                        send.send_reset(h2::Reason::INTERNAL_ERROR);
                        break StreamEnd::Failed;
                    }
                }
            };
            handler.end_stream(output, req, end, sent);
        }
    }
}

/// The request's cookie fields joined with `; `, when there are several.
fn joined_cookies(headers: &http::HeaderMap) -> Option<Vec<u8>> {
    let mut cookies = headers.get_all(http::header::COOKIE).iter();
    let first = cookies.next()?;
    let mut rest = cookies.peekable();
    rest.peek()?;
    let mut joined = first.as_bytes().to_vec();
    for cookie in rest {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(cookie.as_bytes());
    }
    Some(joined)
}

/// Sends `piece` once the client's window has room for it, within `limit`: a client that
/// stops reading holds the producer, not a growing buffer.
async fn send_within_window(
    send: &mut h2::SendStream<Bytes>,
    mut data: Bytes,
    limit: Duration,
) -> bool {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let capacity = std::future::poll_fn(|cx| send.poll_capacity(cx));
        let granted = match monoio::time::timeout(limit, capacity).await {
            Ok(Some(Ok(n))) if n > 0 => n,
            Ok(Some(Ok(_))) => continue,
            _ => return false,
        };
        let now = data.split_to(granted.min(data.len()));
        if send.send_data(now, false).is_err() {
            return false;
        }
    }
    true
}

/// The answer's HEADERS frame: its status and fields, without HTTP/1.1's connection-specific
/// ones (RFC 9113 §8.2.2). `None` when the stream is gone.
fn send_head(
    respond: &mut h2::server::SendResponse<Bytes>,
    resp: &Response,
    body_len: Option<usize>,
    end_of_stream: bool,
) -> Option<h2::SendStream<Bytes>> {
    let mut answer = http::Response::builder().status(resp.status);
    for (name, value) in crate::http::encode::header_lines(&resp.headers) {
        let connection_specific = [
            &b"connection"[..],
            b"keep-alive",
            b"proxy-connection",
            b"transfer-encoding",
            b"upgrade",
        ]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c));
        if !connection_specific {
            answer = answer.header(name, value);
        }
    }
    if let Some(len) = body_len.filter(|_| !resp.is_bodiless()) {
        answer = answer.header("content-length", len);
    }
    let answer = answer.body(()).ok()?;
    respond.send_response(answer, end_of_stream).ok()
}

/// Answers a stream the gateway refused before handling it (the same answers as HTTP/1.1).
fn refuse<H: Handler>(
    respond: &mut h2::server::SendResponse<Bytes>,
    shared: &Shared<H>,
    peer: Option<std::net::IpAddr>,
    failure: Failure,
) {
    let mut resp = Response::default();
    resp.clear();
    failure.answer(&mut resp);
    let body = std::mem::take(&mut resp.body);
    let response_bytes = resp.headers.len() + body.len();
    if let Some(mut send) = send_head(respond, &resp, Some(body.len()), body.is_empty()) {
        if !body.is_empty() {
            let _ = send.send_data(Bytes::from(body), true);
        }
    }
    shared.handler.refused(Refusal {
        failure: &failure,
        status: resp.status,
        response_bytes,
        request_bytes: 0,
        peer,
        secure: shared.secure,
        http2: true,
    });
}

/// A connection's stream with the bytes already read from it put back in front.
struct Rewound<T> {
    first: Vec<u8>,
    read: usize,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewound<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read < self.first.len() {
            let n = buf.remaining().min(self.first.len() - self.read);
            let start = self.read;
            buf.put_slice(&self.first[start..start + n]);
            self.read += n;
            if self.read == self.first.len() {
                self.first = Vec::new();
                self.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewound<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::conn::buggy::BuggyHandler;
    use crate::http::shutdown::Shutdown;
    use crate::http::Limits;

    #[test]
    fn a_panicking_stream_is_reset_and_the_connection_serves_on() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = monoio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            monoio::spawn(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                let shared = Rc::new(Shared {
                    handler: Rc::new(BuggyHandler::default()),
                    limits: Limits::default(),
                    shutdown: Rc::new(Shutdown::default()),
                    secure: false,
                });
                serve_h2c(stream, Vec::new(), None, shared).await;
            });
            let tcp = monoio::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let io = tcp.try_into_poll_io().map_err(|(e, _)| e).expect("poll io");
            let (client, connection) = h2::client::handshake(io).await.expect("handshake");
            monoio::spawn(async move {
                let _ = connection.await;
            });
            let mut client = client.ready().await.expect("ready");
            let ask = |path: &str| {
                http::Request::get(format!("http://gw{path}"))
                    .body(())
                    .expect("request")
            };
            let (answer, _) = client.send_request(ask("/panic"), true).expect("send");
            assert!(answer.await.is_err(), "the buggy stream is reset");
            let mut client = client.ready().await.expect("the connection lives on");
            let (answer, _) = client.send_request(ask("/ok"), true).expect("send");
            let answer = answer.await.expect("answer");
            assert_eq!(answer.status(), 200);
            let mut body = answer.into_body();
            let data = body.data().await.expect("data").expect("bytes");
            assert_eq!(&data[..], b"ok");
        });
    }

    /// A connection's future lives as long as the connection (boxed): the handshake's state
    /// is boxed apart, so what stays is h2's connection (1.2 KiB) and the loop around it.
    #[test]
    fn a_connection_future_stays_small() {
        let shared = Rc::new(Shared {
            handler: Rc::new(BuggyHandler::default()),
            limits: Limits::default(),
            shutdown: Rc::new(Shutdown::default()),
            secure: false,
        });
        let io = Rewound {
            first: Vec::new(),
            read: 0,
            inner: tokio::io::empty(),
        };
        let serving = serve(io, None, shared);
        let size = std::mem::size_of_val(&serving);
        eprintln!("an HTTP/2 connection's future: {size} bytes");
        // h2's connection (1.2 KiB) and the stream, little more: no timer inline (monoio's is
        // 640 bytes and would align the whole future to 128).
        assert!(
            size <= 2048,
            "an HTTP/2 connection's future is {size} bytes"
        );
        assert!(
            std::mem::align_of_val(&serving) <= 16,
            "an HTTP/2 connection's future is aligned to {}",
            std::mem::align_of_val(&serving)
        );
    }

    #[test]
    fn several_cookie_fields_are_joined() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(joined_cookies(&headers), None);
        headers.append(http::header::COOKIE, "a=1".parse().expect("value"));
        assert_eq!(joined_cookies(&headers), None, "one field stays as it is");
        headers.append(http::header::COOKIE, "b=2".parse().expect("value"));
        headers.append(http::header::COOKIE, "c=3".parse().expect("value"));
        assert_eq!(
            joined_cookies(&headers).as_deref(),
            Some(&b"a=1; b=2; c=3"[..])
        );
    }

    #[test]
    fn only_the_preface_opens_h2c() {
        assert!(is_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(is_preface(b"PRI * HTTP/2"));
        assert!(!is_preface(b"GET / HTTP/1.1\r\n"));
        assert!(!is_preface(b"PROPFIND / HTTP/1.1\r\n"));
        assert!(!is_preface(b"PRIX"));
        assert!(!is_preface(b"PRI"));
        assert!(!is_preface(b""));
    }
}
