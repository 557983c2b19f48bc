//! The request phases, in order, for one routed request: route → plugin → payload → invoke →
//! response mapping. Errors become the SPEC §6 answers and exactly one log line.

use crate::access::{AccessContext, AccessPlugin, RequestEdits, Verdict};
use crate::access_log::{AccessLog, Entry, FLUSH_AT};
use crate::config::plan::{ConsumerRoute, RouteAction};
use crate::config::router::{RouteMatch, RouteQuery};
use crate::config::Snapshot;
use crate::http::client::UpstreamError;
use crate::http::conn::{BufferPool, Handler, Piece, Refusal, StreamEnd};
use crate::http::encode::Response;
use crate::http::failure::Failure;
use crate::http::request::Request;
use crate::lambda::event::{Caller, EventContext, RequestIds};
use crate::lambda::payload::{PayloadEncoder, PayloadError};
use crate::lambda::response::{LambdaAnswer, Outcome, ResponseMapper};
use crate::lambda::stream_answer::{
    completion, error_before_output, has_prelude, plain_head, prelude_head, Prelude,
};
use crate::metrics::{MetricsPolicy, RequestRecord, Source, WorkerMetrics};
use crate::pacing::TimeSlice;
use crate::upstream::client::{InvokeBuffers, InvokeResponse, Upstream};
use crate::upstream::streaming::{Frame, ResponseStream};
use crate::upstream::target::InvokeTarget;
use arc_swap::ArcSwap;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

/// Answers `failure` and writes its one log line.
fn fail(resp: &mut Response, failure: Failure, route: &str, function: &str) {
    failure.answer(resp);
    log::error!(
        "route={route} function={function} status={} cause=\"{failure}\" side={}",
        resp.status,
        failure.side().as_str()
    );
}

/// The invoke-side buffers of one request; reused through the proxy's free list.
#[derive(Default)]
struct InvokeScratch {
    payload: PayloadEncoder,
    mapper: ResponseMapper,
    invoke: InvokeBuffers,
    answer: InvokeResponse,
    header_refs: Vec<(usize, usize, usize, usize)>,
    /// The access plugins' changes to the request, and the rewritten head.
    edits: RequestEdits,
    /// Time spent on the invoke, when there was one.
    proxy_time: Option<std::time::Duration>,
}

/// What the access log and the metrics say of a request beyond the request and the answer.
struct Facts {
    snapshot: Option<Arc<Snapshot>>,
    route: Option<usize>,
    consumer: Option<usize>,
    /// The route's and consumer's metric label ids (0: none).
    route_label: u32,
    consumer_label: u32,
    /// Who answered.
    source: Source,
    /// The series the request is counted in (its `prometheus` plugin).
    metrics: MetricsPolicy,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            snapshot: None,
            route: None,
            consumer: None,
            route_label: 0,
            consumer_label: 0,
            source: Source::Error,
            metrics: MetricsPolicy::ALL,
        }
    }
}

impl InvokeScratch {
    /// Bytes of buffer capacity this set holds on to.
    fn retained_bytes(&self) -> usize {
        self.payload.retained_bytes()
            + self.mapper.retained_bytes()
            + self.invoke.write.capacity()
            + self.invoke.read.capacity()
            + self.invoke.chunked.capacity()
    }
}

/// A worker's proxy: everything here is worker-local except the snapshot.
pub struct Proxy {
    /// The published config.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Pool, TLS, signer.
    pub upstream: Upstream,
    /// Request counters, read by the Admin API.
    pub metrics: Arc<WorkerMetrics>,
    buffers: BufferPool,
    free: RefCell<Vec<InvokeScratch>>,
    request_ids: RequestIds,
    access_log: Option<Arc<AccessLog>>,
    log_lines: RefCell<Vec<u8>>,
}

/// How long a finished stream's answer waits for the end of Lambda's HTTP body (to pool the
/// connection) before it is closed instead.
const END_OF_BODY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Most invoke scratch sets kept for reuse per worker.
const MAX_FREE_SCRATCH: usize = 256;
/// A scratch set holding more than this is dropped rather than kept: one 6 MiB payload should
/// not pin its memory forever.
const MAX_RETAINED_BYTES: usize = 256 * 1024;

impl Handler for Proxy {
    type Stream = StreamedAnswer;

    async fn handle(&self, req: Request<'_>, resp: &mut Response) -> Option<StreamedAnswer> {
        let started = std::time::Instant::now();
        let mut scratch = self.free.borrow_mut().pop().unwrap_or_default();
        scratch.proxy_time = None;
        let in_flight = &self.metrics.requests_in_flight;
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (facts, streamed) = self.serve(req, resp, &mut scratch).await;
        let proxy_time = scratch.proxy_time;
        if scratch.retained_bytes() <= MAX_RETAINED_BYTES {
            let mut free = self.free.borrow_mut();
            if free.len() < MAX_FREE_SCRATCH {
                free.push(scratch);
            }
        }
        if let Some(output) = streamed {
            // Counted and logged when the stream ends.
            return Some(StreamedAnswer {
                output,
                facts,
                started,
                status: resp.status,
                head_bytes: resp.headers.len(),
                metrics: self.metrics.clone(),
            });
        }
        in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let size = resp.headers.len() + resp.body.len();
        self.count_and_log(
            &Asked::of(&req),
            resp.status,
            size,
            &facts,
            started,
            proxy_time,
        );
        None
    }

    async fn next_piece(&self, answer: &mut StreamedAnswer, out: &mut Vec<u8>) -> Piece {
        let output = &mut answer.output;
        let target = &output.target;
        let limit = target.config.max_stream_bytes;
        let failed = |why: String, passed: u64| {
            log::error!(
                "route={} function={} status={} cause=\"{why}\" side=upstream streamed_bytes={passed}",
                target.route_label,
                target.config.function_name,
                answer.status,
            );
            Piece::Failed
        };
        let over_cap = |passed: u64| {
            self.metrics.lambda_error("response_too_large");
            let why = format!("the streamed response is larger than max_stream_bytes ({limit})");
            failed(why, passed)
        };
        let timeout = target.config.timeout;
        loop {
            // Output read with the head first, then a frame held back by the last piece, then
            // the stream.
            let next = if let Some(first) = output.first.take() {
                Ok(Frame::Chunk(first))
            } else if let Some(held) = output.held.take() {
                held
            } else {
                match monoio::time::timeout(timeout, output.upstream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.metrics.lambda_error("timeout");
                        let why = format!("no more of the streamed response within {timeout:?}");
                        return failed(why, output.passed);
                    }
                }
            };
            let frame = match next {
                Ok(frame) => frame,
                Err(e) => {
                    self.metrics.lambda_error(e.kind());
                    return failed(e.to_string(), output.passed);
                }
            };
            match frame {
                Frame::Chunk(bytes) if bytes.is_empty() => continue,
                Frame::Chunk(bytes) => {
                    if !pass_output(out, &mut output.passed, limit, output.upstream.bytes(bytes)) {
                        return over_cap(output.passed);
                    }
                    // Chunks already received leave in this piece too: a token stream's small
                    // events would otherwise cost a write to the client each. Anything else
                    // (or a chunk past the cap) is held for the next piece, after this one is
                    // written.
                    while out.len() < COALESCE_BYTES {
                        match output.upstream.next_buffered() {
                            Ok(None) => break,
                            Ok(Some(Frame::Chunk(bytes)))
                                if output.passed + bytes.len() as u64 <= limit =>
                            {
                                pass_output(
                                    out,
                                    &mut output.passed,
                                    limit,
                                    output.upstream.bytes(bytes),
                                );
                            }
                            Ok(Some(frame)) => {
                                output.held = Some(Ok(frame));
                                break;
                            }
                            Err(e) => {
                                output.held = Some(Err(e));
                                break;
                            }
                        }
                    }
                    return Piece::Data;
                }
                Frame::Complete(json) => {
                    let done = completion(output.upstream.bytes(json));
                    if let Some(tail) = &done.log_result {
                        log_tail(
                            &target.route_label,
                            &target.config.function_name,
                            tail.as_bytes(),
                        );
                    }
                    if let Some((code, details)) = done.error {
                        self.metrics.lambda_error(&code);
                        let why = format!("function error after the first byte: {code}: {details}");
                        return failed(why, output.passed);
                    }
                    // The connection is reused once its body's end is read; Lambda sends it
                    // right after InvokeComplete, and the client's last chunk waits for it
                    // only briefly (else the connection is closed, not pooled).
                    let keepalive = target.config.keepalive;
                    let wait = timeout.min(END_OF_BODY_WAIT);
                    if let Ok(Ok(Frame::End)) =
                        monoio::time::timeout(wait, output.upstream.next()).await
                    {
                        output.upstream.release(&self.upstream.pool, keepalive);
                    }
                    return Piece::End;
                }
                Frame::End => {
                    self.metrics.lambda_error("stream");
                    let why = "the response stream ended without InvokeComplete".to_string();
                    return failed(why, output.passed);
                }
            }
        }
    }

    fn end_stream(&self, answer: StreamedAnswer, req: Request<'_>, end: StreamEnd, body: u64) {
        if end == StreamEnd::Abandoned && answer.output.passed > 0 {
            log::info!(
                "route={} function={} client gone after {body} streamed bytes: the connection to Lambda is closed",
                answer.output.target.route_label,
                answer.output.target.config.function_name,
            );
        }
        let proxy_time = Some(answer.started.elapsed());
        let size = answer.head_bytes + body as usize;
        self.count_and_log(
            &Asked::of(&req),
            answer.status,
            size,
            &answer.facts,
            answer.started,
            proxy_time,
        );
    }

    fn buffers(&self) -> &BufferPool {
        &self.buffers
    }

    /// A request the connection refused (malformed, too large, too slow) is one log line and
    /// one count like any other answer, with no route, no service and no method or path (the
    /// head did not parse, or was not read whole).
    fn refused(&self, refusal: Refusal<'_>) {
        let snapshot = self.snapshot.load_full();
        let facts = Facts {
            snapshot: self.access_log.as_ref().map(|_| snapshot.clone()),
            metrics: snapshot.unrouted_metrics,
            ..Facts::default()
        };
        let asked = Asked {
            method: b"",
            path: b"",
            authority: None,
            secure: refusal.secure,
            peer: refusal.peer,
            bytes: refusal.request_bytes,
        };
        let now = std::time::Instant::now();
        self.count_and_log(
            &asked,
            refusal.status,
            refusal.response_bytes,
            &facts,
            now,
            None,
        );
    }
}

/// What the log line and the metrics say of the request itself.
struct Asked<'a> {
    method: &'a [u8],
    path: &'a [u8],
    /// The authority the client addressed, with its port if it gave one.
    authority: Option<&'a [u8]>,
    secure: bool,
    peer: Option<std::net::IpAddr>,
    /// Bytes received: head and body.
    bytes: usize,
}

impl<'a> Asked<'a> {
    fn of(req: &Request<'a>) -> Asked<'a> {
        Asked {
            method: req.method(),
            path: req.path(),
            authority: req.authority(),
            secure: req.secure,
            peer: req.peer,
            bytes: req.head.len + req.body.len(),
        }
    }
}

/// Logs the tail of the function's log Lambda returned (`log_type: Tail`): the
/// `X-Amz-Log-Result` header of a buffered answer, `LogResult` of a stream's `InvokeComplete`.
fn log_tail(route: &str, function: &str, tail: &[u8]) {
    log::debug!(
        "route={route} function={function} log_result={}",
        String::from_utf8_lossy(tail)
    );
}

/// A function's output being streamed to the client, and what the log and the metrics will
/// say of its request once it ends.
pub struct StreamedAnswer {
    output: StreamedOutput,
    facts: Facts,
    started: std::time::Instant,
    status: u16,
    head_bytes: usize,
    /// Where the request stays counted in flight until the answer is dropped (ended, or
    /// its connection dropped at shutdown).
    metrics: Arc<WorkerMetrics>,
}

impl Drop for StreamedAnswer {
    fn drop(&mut self) {
        self.metrics
            .requests_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The upstream half of a streamed answer.
struct StreamedOutput {
    upstream: Box<ResponseStream>,
    target: Arc<InvokeTarget>,
    /// Output read before the answer's head was written (after the prelude, if any).
    first: Option<Range<usize>>,
    /// Output bytes passed on so far.
    passed: u64,
    /// A frame (or failure) read while gathering a piece, for the next piece.
    held: Option<Result<Frame, UpstreamError>>,
}

/// Most output gathered into one piece (one chunk to the client) from events already received.
const COALESCE_BYTES: usize = 64 * 1024;

/// Appends `bytes` of the output to `out`, counting them in `passed`, unless the output would
/// then exceed `limit` (`max_stream_bytes`): false, and nothing appended.
fn pass_output(out: &mut Vec<u8>, passed: &mut u64, limit: u64, bytes: &[u8]) -> bool {
    let total = *passed + bytes.len() as u64;
    if total > limit {
        return false;
    }
    *passed = total;
    out.extend_from_slice(bytes);
    true
}

impl Proxy {
    /// A worker's proxy state.
    pub fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        mut upstream: Upstream,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        upstream.metrics = metrics.clone();
        Proxy {
            snapshot,
            upstream,
            metrics,
            buffers: BufferPool::default(),
            free: RefCell::new(Vec::new()),
            request_ids: RequestIds::default(),
            access_log: None,
            log_lines: RefCell::new(Vec::new()),
        }
    }

    /// This proxy writing an access log line per request to `log`.
    pub fn with_access_log(mut self, log: Option<Arc<AccessLog>>) -> Self {
        self.access_log = log;
        self
    }

    /// Adds the request to the metrics and appends its access log line (written out past
    /// [`FLUSH_AT`]).
    fn count_and_log(
        &self,
        req: &Asked<'_>,
        status: u16,
        response_size: usize,
        facts: &Facts,
        started: std::time::Instant,
        proxy_time: Option<std::time::Duration>,
    ) {
        self.metrics.record(&RequestRecord {
            route: facts.route_label,
            consumer: facts.consumer_label,
            status,
            source: facts.source,
            ingress: req.bytes as u64,
            egress: response_size as u64,
            request_ms: started.elapsed().as_millis() as u64,
            upstream_ms: proxy_time.map(|t| t.as_millis() as u64),
            policy: facts.metrics,
        });
        let Some(log) = &self.access_log else {
            return;
        };
        let proxy = proxy_time.unwrap_or_default();
        let snapshot = facts.snapshot.as_deref();
        let route = facts
            .route
            .and_then(|i| snapshot.and_then(|s| s.config.routes.get(i)));
        let service = facts.route.and_then(|i| {
            let s = snapshot?;
            s.config.services.get(s.plans.get(i)?.service?)
        });
        let consumer = facts
            .consumer
            .and_then(|i| snapshot.and_then(|s| s.config.consumers.get(i)));
        let started_at = std::time::SystemTime::now()
            .checked_sub(started.elapsed())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let entry = Entry {
            method: req.method,
            path: req.path,
            host: req.authority,
            scheme: if req.secure { "https" } else { "http" },
            request_size: req.bytes,
            status,
            response_size,
            route: route.map(|r| (r.id.as_str(), r.name.as_deref())),
            service: service.map(|s| (s.id.as_str(), s.name.as_deref())),
            consumer: consumer.map(|c| (c.id.as_str(), c.username.as_deref())),
            request_ms: started.elapsed().as_millis() as u64,
            proxy_ms: proxy.as_millis() as u64,
            client_ip: req.peer,
            started_at,
        };
        let mut lines = self.log_lines.borrow_mut();
        entry.write(&mut lines);
        if lines.len() >= FLUSH_AT {
            log.write(&lines);
            lines.clear();
        }
    }

    /// Writes out the buffered access log lines, and reopens the log if `SIGUSR1` asked:
    /// called on the worker's tick and when it stops.
    pub fn flush_access_log(&self) {
        let Some(log) = &self.access_log else {
            return;
        };
        let mut lines = self.log_lines.borrow_mut();
        log.write(&lines);
        lines.clear();
        log.reopen_if_asked();
    }

    /// The request phases, in order: route, plugin, payload, invoke, response mapping.
    async fn serve(
        &self,
        req: Request<'_>,
        resp: &mut Response,
        s: &mut InvokeScratch,
    ) -> (Facts, Option<StreamedOutput>) {
        let snapshot = self.snapshot.load_full();
        let headers = |name: &str| req.header(name);
        let query = RouteQuery {
            method: req.method(),
            host: req.host(),
            authority: req.authority(),
            path: req.path(),
            headers: &headers,
        };
        let Some(matched) = snapshot.router.find_match(&query) else {
            Failure::NoRoute.answer(resp);
            let facts = Facts {
                snapshot: self.access_log.as_ref().map(|_| snapshot.clone()),
                metrics: snapshot.unrouted_metrics,
                ..Facts::default()
            };
            return (facts, None);
        };
        // The route's access-phase plugins, in priority order: the first that answers ends
        // the request before the function; each that ran then adds its headers to the answer.
        // Once an auth plugin identified a consumer with plugins of their own, the rest of the
        // chain and the function are theirs (Kong's precedence).
        let route = matched.route;
        let plan = &snapshot.plans[route];
        let mut steps: &[(u32, AccessPlugin)] = &plan.access;
        let mut theirs: Option<&ConsumerRoute> = None;
        let mut ran: SmallVec<[&AccessPlugin; 8]> = SmallVec::new();
        let mut edits = std::mem::take(&mut s.edits);
        edits.clear();
        let mut ctx = AccessContext {
            identities: &snapshot.identities,
            consumer: None,
            authenticated: false,
            credential: None,
            edits: &mut edits,
            service: plan
                .service
                .map(|i| snapshot.config.services[i].id.as_str()),
            jwt_claims: None,
        };
        let mut answered = false;
        let mut next = 0;
        while let Some((priority, plugin)) = steps.get(next) {
            ran.push(plugin);
            if plugin.access(&req, &mut ctx, resp).await == Verdict::Answered {
                answered = true;
                break;
            }
            next += 1;
            if theirs.is_none() && !plan.for_consumers.is_empty() {
                if let Some(c) = ctx.consumer.and_then(|c| plan.for_consumer(&c.id)) {
                    theirs = Some(c);
                    if let Some(own) = &c.steps {
                        steps = own;
                        next = own
                            .iter()
                            .position(|(p, _)| p < priority)
                            .unwrap_or(own.len());
                    }
                }
            }
        }
        let ctx_consumer = ctx.consumer.map(|c| c.index);
        // The consumer's own series, even when the plugin that identified them answered.
        let metrics = ctx
            .consumer
            .and_then(|c| plan.for_consumer(&c.id))
            .and_then(|c| c.metrics)
            .unwrap_or(plan.metrics);
        let claims = ctx.jwt_claims.take();
        let caller = ctx.consumer.map(|c| Caller {
            consumer_id: &c.id,
            username: c.username.as_deref(),
            custom_id: c.custom_id.as_deref(),
            credential: ctx.credential,
            jwt_claims: claims.as_ref(),
        });
        let action = theirs
            .and_then(|c| c.action.as_ref())
            .unwrap_or(&plan.action);
        let (source, streamed) = if answered {
            (Source::Exit, None)
        } else if edits.is_empty() {
            self.invoke(action, &matched, &req, caller.as_ref(), resp, s)
                .await
        } else {
            // The function sees the request as the plugins changed it.
            match edits.apply(&req) {
                Some(changed) => {
                    self.invoke(action, &matched, &changed, caller.as_ref(), resp, s)
                        .await
                }
                None => {
                    Failure::Head(crate::http::head::HeadError::TooManyHeaders).answer(resp);
                    (Source::Error, None)
                }
            }
        };
        for p in ran {
            p.finish(&req, &edits, resp);
        }
        edits.write_answer_headers(resp);
        s.edits = edits;
        let facts = Facts {
            // Kept only for the access log: an Arc clone is an atomic write shared by workers.
            snapshot: self.access_log.as_ref().map(|_| snapshot.clone()),
            route: Some(route),
            consumer: ctx_consumer,
            route_label: plan.metrics_label,
            consumer_label: ctx_consumer.map_or(0, |i| snapshot.consumer_metrics[i]),
            source,
            metrics,
        };
        (facts, streamed)
    }

    /// Invokes the route's function and maps its answer; says who answered.
    async fn invoke(
        &self,
        action: &RouteAction,
        matched: &RouteMatch<'_>,
        req: &Request<'_>,
        caller: Option<&Caller<'_>>,
        resp: &mut Response,
        s: &mut InvokeScratch,
    ) -> (Source, Option<StreamedOutput>) {
        let plugin = match action {
            RouteAction::Invoke(target) => target,
            RouteAction::NoPlugin { route_label } => {
                fail(resp, Failure::NoPlugin, route_label, "-");
                return (Source::Error, None);
            }
            RouteAction::Unusable {
                route_label,
                function,
                why,
            } => {
                fail(resp, Failure::Unusable(why.clone()), route_label, function);
                return (Source::Error, None);
            }
        };
        let function = plugin.config.function_name.as_str();
        let mut pacer = TimeSlice::default();
        // What an API Gateway event says beyond the request, gathered only for one.
        let mut id = [0u8; 36];
        let mut path_params: SmallVec<[(&str, &[u8]); 4]> = SmallVec::new();
        let ctx = if plugin.config.awsgateway_compatible {
            matched.path_params(req.path(), |name, value| path_params.push((name, value)));
            EventContext {
                resource: matched.resource(),
                path_params: &path_params,
                source_ip: req.peer,
                request_id: self.request_ids.next(&mut id),
                time: std::time::SystemTime::now(),
                caller,
            }
        } else {
            EventContext::default()
        };
        let encoded = s
            .payload
            .encode(&plugin.config, req, &ctx, &mut pacer)
            .await;
        if let Err(PayloadError::TooLarge { size, limit }) = encoded {
            let failure = Failure::PayloadTooLarge { size, limit };
            fail(resp, failure, &plugin.route_label, function);
            return (Source::Error, None);
        }
        // Credentials are loaded, never fetched, here; only before a provider's very first
        // answer does a request wait for it (within the plugin's timeout).
        let creds = match plugin.credentials.ready(plugin.config.timeout).await {
            Ok(creds) => creds,
            Err(why) => {
                fail(resp, Failure::Unusable(why), &plugin.route_label, function);
                return (Source::Error, None);
            }
        };
        let invoked = std::time::Instant::now();
        let result = self
            .upstream
            .invoke(
                plugin,
                &creds,
                &mut s.payload.out,
                &mut s.invoke,
                &mut s.answer,
            )
            .await;
        s.proxy_time = Some(invoked.elapsed());
        let opened = match result {
            Ok(opened) => opened,
            Err(e) => {
                self.metrics.lambda_error(e.kind());
                fail(resp, Failure::Upstream(e), &plugin.route_label, function);
                return (Source::Error, None);
            }
        };
        if let Some(upstream) = opened {
            let deadline = invoked + plugin.config.timeout;
            // Boxed: only streaming requests pay for its state.
            let started = Box::pin(self.start_stream(plugin, upstream, deadline, resp, s));
            return match started.await {
                Ok(streamed) => (Source::Service, streamed),
                Err(failure) => {
                    if let Failure::Upstream(e) = &failure {
                        self.metrics.lambda_error(e.kind());
                    } else {
                        self.metrics.lambda_error("bad_proxy_response");
                    }
                    fail(resp, failure, &plugin.route_label, function);
                    (Source::Error, None)
                }
            };
        }
        // Split the read buffer: headers are read-only, the body is parsed in place.
        let (head, body) = s.invoke.read.split_at_mut(s.answer.head_len);
        let body_range =
            (s.answer.body.start - s.answer.head_len)..(s.answer.body.end - s.answer.head_len);
        s.header_refs.clear();
        s.header_refs.extend(
            s.answer
                .headers
                .iter()
                .map(|(n, v)| (n.start, n.end, v.start, v.end)),
        );
        let header_pairs: smallvec::SmallVec<[(&[u8], &[u8]); 16]> = s
            .header_refs
            .iter()
            .map(|&(ns, ne, vs, ve)| (&head[ns..ne], &head[vs..ve]))
            .collect();
        if let Some((_, tail)) = header_pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"x-amz-log-result"))
        {
            log_tail(&plugin.route_label, function, tail);
        }
        let answer = LambdaAnswer {
            status: s.answer.status,
            headers: &header_pairs,
            body: &mut body[body_range],
        };
        let outcome = s.mapper.map(&plugin.config, answer, resp);
        let source = match outcome {
            Outcome::Ok => Source::Service,
            Outcome::FunctionError(kind) => {
                self.metrics.lambda_error(&kind);
                log::warn!(
                    "route={} function={} status={} cause=\"function error: {kind}\"",
                    plugin.route_label,
                    function,
                    resp.status
                );
                Source::Service
            }
            Outcome::ApiError(ref kind) | Outcome::BadProxyResponse(ref kind) => {
                let error_type = match outcome {
                    Outcome::ApiError(_) => kind.as_str(),
                    _ => "bad_proxy_response",
                };
                self.metrics.lambda_error(error_type);
                log::error!(
                    "route={} function={} status={} cause=\"{kind}\" side=upstream",
                    plugin.route_label,
                    function,
                    resp.status
                );
                Source::Error
            }
        };
        (source, None)
    }

    /// Reads a streamed output up to its first byte (past the prelude, if it has one) within
    /// the invoke's deadline, and writes the answer's head into `resp`. `None` when the
    /// output was answered whole instead: empty, or a function error before any byte.
    async fn start_stream(
        &self,
        plugin: &Arc<InvokeTarget>,
        mut upstream: Box<ResponseStream>,
        deadline: std::time::Instant,
        resp: &mut Response,
        s: &InvokeScratch,
    ) -> Result<Option<StreamedOutput>, Failure> {
        let timed_out = || Failure::Upstream(UpstreamError::Timeout(plugin.config.timeout));
        let with_prelude = has_prelude(lambda_header(&upstream, &s.answer, b"content-type"));
        let mut prelude = Prelude::default();
        let first = loop {
            let frame = monoio::time::timeout_at(deadline.into(), upstream.next())
                .await
                .map_err(|_| timed_out())?
                .map_err(Failure::Upstream)?;
            match frame {
                Frame::Chunk(bytes) if with_prelude => {
                    let chunk = upstream.bytes(bytes.clone());
                    if let Some(at) = prelude.feed(chunk).map_err(Failure::BadProxyResponse)? {
                        let headers = lambda_headers(&upstream, &s.answer);
                        prelude_head(prelude.json(), &headers, resp)
                            .map_err(Failure::BadProxyResponse)?;
                        break bytes.start + at..bytes.end;
                    }
                }
                Frame::Chunk(bytes) if bytes.is_empty() => {}
                Frame::Chunk(bytes) => {
                    plain_head(&lambda_headers(&upstream, &s.answer), resp);
                    break bytes;
                }
                Frame::Complete(json) => {
                    let done = completion(upstream.bytes(json));
                    if let Some(tail) = &done.log_result {
                        log_tail(
                            &plugin.route_label,
                            &plugin.config.function_name,
                            tail.as_bytes(),
                        );
                    }
                    if let Some((code, details)) = done.error {
                        self.metrics.lambda_error(&code);
                        log::warn!(
                            "route={} function={} cause=\"function error before the first byte: {code}: {details}\"",
                            plugin.route_label,
                            plugin.config.function_name,
                        );
                        error_before_output(&code, &details, &plugin.config, resp);
                        return Ok(None);
                    }
                    if with_prelude && !prelude.json().is_empty() {
                        let why = "the streamed response ended inside its prelude".to_string();
                        return Err(Failure::BadProxyResponse(why));
                    }
                    // An empty output: a whole (empty) answer.
                    plain_head(&lambda_headers(&upstream, &s.answer), resp);
                    let wait = plugin.config.timeout.min(END_OF_BODY_WAIT);
                    if let Ok(Ok(Frame::End)) = monoio::time::timeout(wait, upstream.next()).await {
                        upstream.release(&self.upstream.pool, plugin.config.keepalive);
                    }
                    return Ok(None);
                }
                Frame::End => {
                    return Err(Failure::Upstream(UpstreamError::Stream {
                        endpoint: format!("{}:{}", plugin.endpoint.host, plugin.endpoint.port),
                        why: "the response stream ended without InvokeComplete".into(),
                    }))
                }
            }
        };
        Ok(Some(StreamedOutput {
            upstream,
            target: plugin.clone(),
            first: Some(first),
            passed: 0,
            held: None,
        }))
    }
}

/// Lambda's response headers, read from a stream's head.
fn lambda_headers<'a>(
    upstream: &'a ResponseStream,
    answer: &InvokeResponse,
) -> SmallVec<[(&'a [u8], &'a [u8]); 16]> {
    let head = upstream.head();
    answer
        .headers
        .iter()
        .map(|(n, v)| (&head[n.clone()], &head[v.clone()]))
        .collect()
}

/// One of Lambda's response headers (`name` in lower case), read from a stream's head.
fn lambda_header<'a>(
    upstream: &'a ResponseStream,
    answer: &InvokeResponse,
    name: &[u8],
) -> Option<&'a [u8]> {
    let head = upstream.head();
    answer
        .headers
        .iter()
        .find(|(n, _)| head[n.clone()].eq_ignore_ascii_case(name))
        .map(|(_, v)| &head[v.clone()])
}
