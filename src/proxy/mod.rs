//! The request phases for one request, in order: route (the snapshot's router), access (the
//! route plan's plugins, highest priority first), upstream (aws-lambda: payload, invoke,
//! response mapping, in [`invoke`] and [`stream`]), response (the plugins' headers) and log
//! (metrics and the access log, in [`record`]). Every failure goes through [`error`]: one
//! answer, one count, one log line.

mod error;
mod invoke;
mod record;
mod scratch;
mod stream;
pub mod testing;
mod trace;

pub use error::ProxyError;
pub use stream::StreamedAnswer;

use crate::access::{AccessContext, AccessPlugin, Verdict};
use crate::access_log::AccessLog;
use crate::config::plan::ConsumerRoute;
use crate::config::router::RouteQuery;
use crate::config::Snapshot;
use crate::http::budget::Budget;
use crate::http::conn::{BufferPool, Handler, Piece, Refusal, StreamEnd};
use crate::http::encode::Response;
use crate::http::failure::Failure;
use crate::http::request::Request;
use crate::lambda::event::{Caller, RequestIds};
use crate::metrics::{Source, WorkerMetrics};
use crate::upstream::client::Upstream;
use crate::upstream::invoker::Invoker;
use arc_swap::ArcSwap;
use record::{Asked, Facts};
use scratch::InvokeScratch;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::sync::Arc;
use stream::StreamedOutput;

/// A worker's proxy: everything here is worker-local except the snapshot.
pub struct Proxy<I = Upstream> {
    /// The published config.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// How functions are invoked: the worker's pool of connections to Lambda (or, in tests,
    /// a Lambda in memory).
    pub invoker: I,
    /// Request counters, read by the Admin API.
    pub metrics: Arc<WorkerMetrics>,
    buffers: BufferPool,
    free: RefCell<Vec<InvokeScratch>>,
    request_ids: RequestIds,
    access_log: Option<Arc<AccessLog>>,
    log_lines: RefCell<Vec<u8>>,
    /// The node's budget for large payloads and answers (`None`: unbounded).
    budget: Option<Arc<Budget>>,
    /// The worker's spans for the exporter (`opentelemetry`).
    spans: Option<Arc<crate::telemetry::spans::WorkerSpans>>,
}

/// Most invoke scratch sets kept for reuse per worker.
const MAX_FREE_SCRATCH: usize = 256;
/// A scratch set holding more than this is dropped rather than kept: one 6 MiB payload should
/// not pin its memory forever.
const MAX_RETAINED_BYTES: usize = 256 * 1024;

impl<I: Invoker> Handler for Proxy<I> {
    type Stream = StreamedAnswer;

    async fn handle(&self, req: Request<'_>, resp: &mut Response) -> Option<StreamedAnswer> {
        let started = std::time::Instant::now();
        let mut scratch = self.free.borrow_mut().pop().unwrap_or_else(|| {
            let mut fresh = scratch::InvokeScratch::default();
            fresh.invoke.budget = self.budget.clone();
            fresh
        });
        scratch.proxy_time = None;
        let in_flight = &self.metrics.requests_in_flight;
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (facts, streamed) = self.serve(req, resp, &mut scratch, started).await;
        let proxy_time = scratch.proxy_time;
        let trace = if scratch.trace.is_some() {
            scratch.trace.take()
        } else {
            None
        };
        if scratch.retained_bytes() > MAX_RETAINED_BYTES {
            let large = &self.buffers.large;
            for buf in [
                &mut scratch.payload.out,
                &mut scratch.invoke.read,
                &mut scratch.invoke.chunked,
            ] {
                large.take_back_from(buf);
            }
        }
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
                trace,
                metrics: self.metrics.clone(),
            });
        }
        in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let size = resp.headers.len() + resp.body_len();
        let asked = Asked::of(&req);
        self.count_and_log(&asked, resp.status, size, &facts, started, proxy_time);
        if let Some(trace) = &trace {
            self.record_trace(&asked, resp.status, trace, None);
        }
        None
    }

    async fn next_piece(&self, answer: &mut StreamedAnswer, out: &mut Vec<u8>) -> Piece {
        self.stream_piece(answer, out).await
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
        let asked = Asked::of(&req);
        self.count_and_log(
            &asked,
            answer.status,
            size,
            &answer.facts,
            answer.started,
            proxy_time,
        );
        if let Some(trace) = &answer.trace {
            self.record_trace(&asked, answer.status, trace, Some(body));
        }
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
            protocol: if refusal.http2 { b"HTTP/2.0" } else { b"" },
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

impl Proxy {
    /// A worker's proxy, invoking through its pool of connections to Lambda.
    pub fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        upstream: Upstream,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        Proxy::with_invoker(snapshot, upstream, metrics)
    }
}

impl<I: Invoker> Proxy<I> {
    /// A proxy invoking through `invoker`.
    pub fn with_invoker(
        snapshot: Arc<ArcSwap<Snapshot>>,
        mut invoker: I,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        invoker.count_in(metrics.clone());
        Proxy {
            snapshot,
            invoker,
            metrics,
            buffers: BufferPool::default(),
            free: RefCell::new(Vec::new()),
            request_ids: RequestIds::default(),
            access_log: None,
            log_lines: RefCell::new(Vec::new()),
            budget: None,
            spans: Some(crate::trace_export::worker_spans()),
        }
    }

    /// This proxy counting large payloads and answers in `budget`.
    pub fn with_budget(mut self, budget: Option<Arc<Budget>>) -> Self {
        self.budget = budget;
        self
    }

    /// This proxy writing an access log line per request to `log`.
    pub fn with_access_log(mut self, log: Option<Arc<AccessLog>>) -> Self {
        self.access_log = log;
        self
    }

    /// The request phases, in order: route, plugin, payload, invoke, response mapping.
    async fn serve(
        &self,
        req: Request<'_>,
        resp: &mut Response,
        s: &mut InvokeScratch,
        arrived: std::time::Instant,
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
            // Not an error of the gateway's: answered, counted, not logged as one.
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
        let path = req.path();
        let captures = |key: crate::access::CaptureKey<'_>| matched.capture(path, key);
        // Only a route with `opentelemetry` notes when its access phase began.
        let tracer = plan.tracer.as_ref();
        let access_started = tracer.map(|_| std::time::Instant::now());
        let mut ctx = AccessContext {
            identities: &snapshot.identities,
            consumer: None,
            authenticated: false,
            credential: None,
            edits: &mut edits,
            service: plan
                .service
                .map(|i| snapshot.config.services[i].id.as_str()),
            route: snapshot.config.routes.get(route).map(|r| r.id.as_str()),
            jwt_claims: None,
            uri_captures: &captures,
            arrived,
            access_started,
            trace: None,
        };
        let mut exit = None;
        let mut next = 0;
        while let Some((priority, plugin)) = steps.get(next) {
            ran.push(plugin);
            match plugin.access(&req, &mut ctx, resp).await {
                Verdict::Continue => {}
                Verdict::Answered => {
                    exit = Some(Source::Exit);
                    break;
                }
                Verdict::Failed(why) => {
                    let failure = Failure::Plugin {
                        plugin: plugin.name(),
                        why,
                    };
                    self.fail(resp, ProxyError::on(&plan.label, "-", failure));
                    exit = Some(Source::Error);
                    break;
                }
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
        let mut trace = ctx.trace.take();
        if let (None, Some(otel), Some(started)) = (&trace, tracer, access_started) {
            // A plugin before `opentelemetry` answered: the request is traced all the same.
            trace = Some(Box::new(otel.begin(&req, arrived, started).0));
        }
        if let Some(t) = &mut trace {
            t.access.1 = Some(std::time::Instant::now());
            s.invoke.trace.clear();
            trace::invoke_header(t, &mut s.invoke.trace.header);
        } else if s.invoke.trace.on() {
            s.invoke.trace.clear();
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
        let (source, streamed) = if let Some(source) = exit {
            (source, None)
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
                    // The plugins' headers made the head too large: the client's request.
                    Failure::Head(crate::http::head::HeadError::TooManyHeaders).answer(resp);
                    (Source::Error, None)
                }
            }
        };
        for p in &ran {
            p.finish(&req, &edits, resp);
        }
        if streamed.is_none() {
            for p in &ran {
                p.finish_body(&mut edits, resp);
            }
        }
        edits.drop_kept();
        edits.write_answer_headers(resp);
        s.edits = edits;
        if let Some(trace) = trace {
            s.invoke.trace.clear();
            s.trace = Some(Box::new(trace::TraceFacts {
                trace,
                snapshot: snapshot.clone(),
                route,
                invoke: s.traced_invoke.take(),
            }));
        }
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
}
