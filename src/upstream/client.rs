//! The invoke client: takes a pooled connection (or opens one), signs at send time, writes the
//! request, reads and frames Lambda's response, and returns the connection to the pool only
//! when it is certainly clean (SPEC §4).

use super::pool::{IdleConn, Pool};
use super::retry::{retry_after, RetryBudget};
pub use super::stream::MAX_RESPONSE_BYTES;
use super::stream::{fill, BodyStart, ReadError, Stream};
use super::streaming::ResponseStream;
use super::target::InvokeTarget;
use crate::aws::credentials::Credentials;
use crate::aws::sigv4::InvokeSigner;
use crate::aws::time::AmzDate;
use crate::http::budget::{Budget, Reservation, SMALL_BYTES};
use crate::http::chunked::ChunkedDecoder;
use crate::http::client::{
    parse_head, Framing, HeadInfo, ResponseHead, UpstreamError, MAX_RESPONSE_HEAD,
};
use crate::lambda::config::InvokeMode;
use crate::metrics::WorkerMetrics;
use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The per-request buffers of one invoke, reused through a worker's free list.
#[derive(Default)]
pub struct InvokeBuffers {
    /// Request head + payload as written.
    pub write: Vec<u8>,
    /// Response bytes as read: head, then body (de-chunked in place).
    pub read: Vec<u8>,
    /// Scratch for de-chunking.
    pub chunked: Vec<u8>,
    /// `Authorization` value.
    pub authorization: Vec<u8>,
    /// The node's buffer budget, which a large answer reserves its bytes in before it is read
    /// (`None`: unbounded).
    pub budget: Option<Arc<Budget>>,
    /// The room reserved for the answer read last; the proxy keeps it until it has mapped the
    /// answer.
    pub answer_room: Option<Reservation>,
    /// What a traced invoke notes for its span, and the trace header it sends (boxed: these
    /// buffers are part of every request's future, which must stay small).
    pub trace: Box<InvokeTrace>,
}

/// Most retries a traced invoke's span tells one by one.
pub const TRACED_RETRIES: usize = 4;

/// What the `opentelemetry` plugin's invoke span tells of the invoke. Noted only when
/// `header` is set (the request is traced); cleared for each request, nothing allocated.
#[derive(Debug, Default)]
pub struct InvokeTrace {
    /// The `X-Amzn-Trace-Id` value sent with the invoke, so that the function's X-Ray segment
    /// joins the trace (empty: the request is not traced).
    pub header: Vec<u8>,
    /// The first retries: why (the error kind the metrics use) and when.
    pub retries: [Option<(&'static str, Instant)>; TRACED_RETRIES],
    /// Retries in all.
    pub retry_count: u32,
    /// Connections opened (TCP, and TLS when the endpoint is HTTPS) instead of taken from the
    /// pool, and when the last one began and how long it took.
    pub connections_opened: u32,
    /// See `connections_opened`.
    pub last_connect: Option<(Instant, Duration)>,
}

impl InvokeTrace {
    /// Forgets the previous request's notes (and its header: untraced until set again).
    pub fn clear(&mut self) {
        self.header.clear();
        self.retries = [None; TRACED_RETRIES];
        self.retry_count = 0;
        self.connections_opened = 0;
        self.last_connect = None;
    }

    /// Whether the invoke is traced.
    pub fn on(&self) -> bool {
        !self.header.is_empty()
    }

    fn retry(&mut self, cause: &'static str) {
        if let Some(slot) = self.retries.get_mut(self.retry_count as usize) {
            *slot = Some((cause, Instant::now()));
        }
        self.retry_count += 1;
    }

    fn connected(&mut self, began: Instant) {
        self.connections_opened += 1;
        self.last_connect = Some((began, began.elapsed()));
    }
}

/// A framed Lambda response; ranges index [`InvokeBuffers::read`].
pub type InvokeResponse = ResponseHead;

/// The worker's upstream side: its pool and TLS settings.
pub struct Upstream {
    /// Idle connections.
    pub pool: RefCell<Pool>,
    /// TLS client config, shared by every worker (its session cache is locked only when a
    /// connection is opened).
    pub tls: monoio_rustls::TlsConnector,
    /// Signing keys and scratch.
    pub signer: RefCell<InvokeSigner>,
    /// How many retries the worker may still make.
    pub retry_budget: RetryBudget,
    /// Where retries are counted.
    pub metrics: Arc<WorkerMetrics>,
}

/// Why one attempt failed, and whether it may be retried on a fresh connection.
struct AttemptError {
    error: UpstreamError,
    retryable: bool,
}

impl Upstream {
    /// A worker's upstream side.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Upstream {
            pool: RefCell::new(Pool::default()),
            tls: monoio_rustls::TlsConnector::from(tls),
            signer: RefCell::new(InvokeSigner::default()),
            retry_budget: RetryBudget::default(),
            metrics: Arc::default(),
        }
    }

    /// Invokes `plugin`'s function with `payload`, within the plugin's `timeout`. A large
    /// payload is lent to the socket write and given back (empty if the invoke was cut short).
    ///
    /// A streaming plugin (`invoke_mode: RESPONSE_STREAM`) whose invoke Lambda answered 200
    /// gets the open stream, its head read (into the stream, which `resp`'s ranges then
    /// index); any other answer is read whole into `bufs.read`, as for a buffered plugin.
    pub async fn invoke(
        &self,
        plugin: &InvokeTarget,
        creds: &Credentials,
        payload: &mut Vec<u8>,
        bufs: &mut InvokeBuffers,
        resp: &mut InvokeResponse,
    ) -> Result<Option<Box<ResponseStream>>, UpstreamError> {
        let timeout = plugin.config.timeout;
        match monoio::time::timeout(
            timeout,
            self.invoke_with_retries(plugin, creds, payload, bufs, resp),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Timeout(timeout)),
        }
    }

    /// Tries up to `1 + retries` times, trying again only when the function cannot have run
    /// (see [`super::retry`]), the budget allows, and the wait fits in the plugin's timeout.
    async fn invoke_with_retries(
        &self,
        plugin: &InvokeTarget,
        creds: &Credentials,
        payload: &mut Vec<u8>,
        bufs: &mut InvokeBuffers,
        resp: &mut InvokeResponse,
    ) -> Result<Option<Box<ResponseStream>>, UpstreamError> {
        let started = Instant::now();
        let retries = plugin.config.retries;
        if retries > 0 {
            self.retry_budget.count_request(started);
        }
        let mut attempt = 0;
        loop {
            let result = self.invoke_once(plugin, creds, payload, bufs, resp).await;
            if attempt >= retries {
                return result;
            }
            let (wait, cause) = match &result {
                Err(
                    e @ (UpstreamError::Connect { .. }
                    | UpstreamError::Tls { .. }
                    | UpstreamError::Proxy { .. }),
                ) => (self.retry_budget.backoff(attempt), e.kind()),
                Ok(None) if is_throttle(bufs, resp) => {
                    let asked = header(bufs, resp, b"retry-after").and_then(retry_after);
                    let wait = asked.unwrap_or_else(|| self.retry_budget.backoff(attempt));
                    (wait, "TooManyRequestsException")
                }
                _ => return result,
            };
            if started.elapsed() + wait >= plugin.config.timeout {
                return result;
            }
            if !self.retry_budget.try_retry(Instant::now()) {
                self.metrics
                    .retry_budget_exhausted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return result;
            }
            self.metrics
                .retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            log::debug!("retrying the invoke of {} in {wait:?}", plugin.route_label);
            if bufs.trace.on() {
                bufs.trace.retry(cause);
            }
            monoio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn invoke_once(
        &self,
        plugin: &InvokeTarget,
        creds: &Credentials,
        payload: &mut Vec<u8>,
        bufs: &mut InvokeBuffers,
        resp: &mut InvokeResponse,
    ) -> Result<Option<Box<ResponseStream>>, UpstreamError> {
        let pooled = self.pool.borrow_mut().take(&plugin.endpoint);
        let reused = pooled.is_some();
        let conn = match pooled {
            Some(c) => c,
            None => Box::pin(self.connect(plugin, &mut bufs.trace)).await?,
        };
        match self.attempt(plugin, creds, conn, payload, bufs, resp).await {
            Ok(opened) => Ok(opened),
            // A pooled connection the peer had closed: nothing of the response arrived, so the
            // request can be sent again on a new connection (pingora's rule).
            Err(e) if reused && e.retryable => {
                log::debug!(
                    "retrying on a new connection after a stale pooled one failed: {}",
                    e.error
                );
                let conn = Box::pin(self.connect(plugin, &mut bufs.trace)).await?;
                self.attempt(plugin, creds, conn, payload, bufs, resp)
                    .await
                    .map_err(|e| e.error)
            }
            Err(e) => Err(e.error),
        }
    }

    async fn connect(
        &self,
        plugin: &InvokeTarget,
        trace: &mut InvokeTrace,
    ) -> Result<IdleConn, UpstreamError> {
        let began = Instant::now();
        let (stream, fd) = super::connect::open(&plugin.endpoint, &self.tls).await?;
        if trace.on() {
            trace.connected(began);
        }
        Ok(IdleConn {
            stream,
            fd,
            since: Instant::now(),
            keepalive: plugin.config.keepalive,
        })
    }

    async fn attempt(
        &self,
        plugin: &InvokeTarget,
        creds: &Credentials,
        mut conn: IdleConn,
        payload: &mut Vec<u8>,
        bufs: &mut InvokeBuffers,
        resp: &mut InvokeResponse,
    ) -> Result<Option<Box<ResponseStream>>, AttemptError> {
        let label = || format!("{}:{}", plugin.endpoint.host, plugin.endpoint.port);
        // A large payload is written on its own after the head instead of being copied behind
        // it: a copy of the whole payload saved for one more write.
        let separate = payload.len() >= SEPARATE_PAYLOAD;
        let date = AmzDate::from_system_time(SystemTime::now());
        encode_head(
            &mut self.signer.borrow_mut(),
            plugin,
            creds,
            payload,
            &date,
            bufs,
        );
        if !separate {
            bufs.write.extend_from_slice(payload);
        }
        let (mut res, write) = conn.stream.write_all(std::mem::take(&mut bufs.write)).await;
        bufs.write = write;
        if separate && res.is_ok() {
            let (r, rest) = conn.stream.write_all(std::mem::take(payload)).await;
            *payload = rest;
            res = r;
        }
        if let Err(source) = res {
            return Err(AttemptError {
                error: UpstreamError::Io {
                    endpoint: label(),
                    source,
                },
                retryable: true,
            });
        }
        let failed = |(error, nothing_read): (ReadError, bool)| AttemptError {
            error: error.with_endpoint(label()),
            retryable: nothing_read,
        };
        let start = read_head(&mut conn.stream, &mut bufs.read, resp)
            .await
            .map_err(failed)?;
        if plugin.config.invoke_mode == InvokeMode::ResponseStream && resp.status == 200 {
            let head = std::mem::take(&mut bufs.read);
            let opened = ResponseStream::new(conn, &plugin.endpoint, head, start);
            return Ok(Some(Box::new(opened)));
        }
        let reusable = read_body(&mut conn.stream, bufs, resp, start)
            .await
            .map_err(failed)?;
        if reusable {
            conn.since = Instant::now();
            conn.keepalive = plugin.config.keepalive;
            self.pool.borrow_mut().put(&plugin.endpoint, conn);
        }
        Ok(None)
    }
}

/// The value of response header `name` (lower case).
fn header<'b>(bufs: &'b InvokeBuffers, resp: &InvokeResponse, name: &[u8]) -> Option<&'b [u8]> {
    resp.headers
        .iter()
        .find(|(n, _)| bufs.read[n.clone()].eq_ignore_ascii_case(name))
        .map(|(_, v)| &bufs.read[v.clone()])
}

/// Lambda refused to run the function for now: 429 `TooManyRequestsException`.
fn is_throttle(bufs: &InvokeBuffers, resp: &InvokeResponse) -> bool {
    resp.status == 429
        && header(bufs, resp, b"x-amzn-errortype")
            .is_some_and(|t| t.starts_with(b"TooManyRequestsException"))
}

/// Payloads from this size on are written after their head rather than copied behind it.
const SEPARATE_PAYLOAD: usize = 64 * 1024;

/// Writes the invoke request (head + payload) for `plugin`, signed with `creds` at `date`, into
/// `bufs.write`.
pub fn encode_request(
    signer: &mut InvokeSigner,
    plugin: &InvokeTarget,
    creds: &Credentials,
    payload: &[u8],
    date: &AmzDate,
    bufs: &mut InvokeBuffers,
) {
    encode_head(signer, plugin, creds, payload, date, bufs);
    bufs.write.extend_from_slice(payload);
}

/// Writes the signed head of the invoke request carrying `payload` into `bufs.write`.
fn encode_head(
    signer: &mut InvokeSigner,
    plugin: &InvokeTarget,
    creds: &Credentials,
    payload: &[u8],
    date: &AmzDate,
    bufs: &mut InvokeBuffers,
) {
    let w = &mut bufs.write;
    w.clear();
    signer.sign(
        &plugin.template,
        creds,
        date,
        payload,
        &mut bufs.authorization,
    );
    w.extend_from_slice(b"POST ");
    w.extend_from_slice(plugin.path.as_bytes());
    w.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    w.extend_from_slice(plugin.template.host.as_bytes());
    w.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    crate::json::write_u64(w, payload.len() as u64);
    w.extend_from_slice(b"\r\nX-Amz-Invocation-Type: ");
    w.extend_from_slice(plugin.template.invocation_type.as_bytes());
    w.extend_from_slice(b"\r\nX-Amz-Log-Type: ");
    w.extend_from_slice(plugin.template.log_type.as_bytes());
    w.extend_from_slice(b"\r\nX-Amz-Date: ");
    w.extend_from_slice(&date.timestamp);
    if let Some(token) = &creds.session_token {
        w.extend_from_slice(b"\r\nX-Amz-Security-Token: ");
        w.extend_from_slice(token.0.as_bytes());
    }
    if !bufs.trace.header.is_empty() {
        write_trace_header(w, &bufs.trace.header);
    }
    w.extend_from_slice(b"\r\nAuthorization: ");
    w.extend_from_slice(&bufs.authorization);
    w.extend_from_slice(b"\r\n\r\n");
}

/// `X-Amzn-Trace-Id` (a traced request's), out of line: most requests are not traced. Not
/// signed: Lambda reads it whatever the signature covers, as the AWS SDKs send it.
#[cold]
#[inline(never)]
fn write_trace_header(w: &mut Vec<u8>, value: &[u8]) {
    w.extend_from_slice(b"\r\nX-Amzn-Trace-Id: ");
    w.extend_from_slice(value);
}

/// Reads and frames one response. `Ok(reusable)`; on error, whether nothing at all was read.
pub(super) async fn read_response(
    stream: &mut Stream,
    bufs: &mut InvokeBuffers,
    resp: &mut InvokeResponse,
) -> Result<bool, (ReadError, bool)> {
    let head = read_head(stream, &mut bufs.read, resp).await?;
    read_body(stream, bufs, resp, head).await
}

/// Reads a response head into `buf` (cleared first) and parses it into `resp`. On error,
/// whether nothing at all was read.
pub(super) async fn read_head(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    resp: &mut InvokeResponse,
) -> Result<BodyStart, (ReadError, bool)> {
    buf.clear();
    // Head. It is parsed again only when a read brought an end-of-head marker, so a head
    // trickling in byte by byte costs linear time.
    let (head_len, framing, server_close) = loop {
        let scanned = buf.len();
        let n = fill(stream, buf).await.map_err(|e| (e, buf.is_empty()))?;
        if n == 0 {
            let nothing = buf.is_empty();
            return Err((
                if nothing {
                    ReadError::Io(io::ErrorKind::UnexpectedEof.into())
                } else {
                    ReadError::Bad("truncated response head")
                },
                nothing,
            ));
        }
        if matches!(buf.first(), Some(b'\r' | b'\n')) {
            return Err((ReadError::Bad("invalid response head"), false));
        }
        if !crate::http::head::may_be_complete(buf, scanned) {
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err((ReadError::Bad("response head too large"), false));
            }
            continue;
        }
        match parse_head(buf, resp) {
            Ok(Some(HeadInfo {
                len,
                framing,
                close,
            })) => break (len, framing, close),
            Ok(None) if buf.len() > MAX_RESPONSE_HEAD => {
                return Err((ReadError::Bad("response head too large"), false))
            }
            Ok(None) => continue,
            Err(why) => return Err((ReadError::Bad(why), false)),
        }
    };
    resp.head_len = head_len;
    Ok(BodyStart {
        head_len,
        framing,
        server_close,
    })
}

/// Reads the body of the response whose head [`read_head`] read. `Ok(reusable)`.
async fn read_body(
    stream: &mut Stream,
    bufs: &mut InvokeBuffers,
    resp: &mut InvokeResponse,
    start: BodyStart,
) -> Result<bool, (ReadError, bool)> {
    let BodyStart {
        head_len,
        framing,
        server_close,
    } = start;
    let buf = &mut bufs.read;
    let fail = |e| (e, false);
    let reusable = match framing {
        Framing::Length(len) => {
            if len > MAX_RESPONSE_BYTES {
                return Err(fail(ReadError::TooLarge));
            }
            // A large answer waits, unread, for room in the budget: Lambda's connection is
            // the one held back, and a request finding none is answered 503.
            bufs.answer_room = None;
            if let Some(budget) = bufs.budget.as_ref().filter(|_| len > SMALL_BYTES) {
                match budget.reserve(len).await {
                    Some(room) => bufs.answer_room = Some(room),
                    None => return Err(fail(ReadError::OverBudget(len, budget.limit()))),
                }
            }
            let want = head_len + len;
            buf.reserve(want.saturating_sub(buf.len()));
            while buf.len() < want {
                if fill(stream, buf).await.map_err(fail)? == 0 {
                    return Err(fail(ReadError::Bad("truncated response body")));
                }
            }
            resp.body = head_len..want;
            // Bytes beyond the response we asked for: the connection is out of sync.
            buf.len() == want && !server_close
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::new(MAX_RESPONSE_BYTES);
            let decoded = &mut bufs.chunked;
            decoded.clear();
            let mut pos = head_len;
            loop {
                let used = decoder.decode(&buf[pos..], decoded).map_err(|e| match e {
                    crate::http::chunked::ChunkedError::TooLarge => fail(ReadError::TooLarge),
                    crate::http::chunked::ChunkedError::Invalid(why) => fail(ReadError::Bad(why)),
                })?;
                pos += used;
                if decoder.is_done() {
                    break;
                }
                if fill(stream, buf).await.map_err(fail)? == 0 {
                    return Err(fail(ReadError::Bad("truncated chunked response body")));
                }
            }
            let clean = pos == buf.len() && !server_close;
            buf.truncate(head_len);
            buf.extend_from_slice(decoded);
            resp.body = head_len..buf.len();
            clean
        }
        Framing::UntilClose => {
            loop {
                if buf.len() - head_len > MAX_RESPONSE_BYTES {
                    return Err(fail(ReadError::TooLarge));
                }
                if fill(stream, buf).await.map_err(fail)? == 0 {
                    break;
                }
            }
            resp.body = head_len..buf.len();
            false
        }
        Framing::Empty => {
            resp.body = head_len..head_len;
            buf.len() == head_len && !server_close
        }
    };
    Ok(reusable)
}
