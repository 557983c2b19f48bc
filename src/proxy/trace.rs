//! The tracing side of the phases, for routes with `opentelemetry`: the invoke's trace header
//! before it is sent, what the invoke span tells after it, and, in the log phase, the
//! request's three spans written into the worker's span batch (nothing allocated once the
//! batch has its room; see [`crate::telemetry`]).

use super::record::Asked;
use super::Proxy;
use crate::config::Snapshot;
use crate::telemetry::spans::{Batch, Event, Kind, SpanRecord, Value};
use crate::telemetry::ActiveTrace;
use crate::trace_context::{self, Format, Outgoing};
use crate::upstream::client::{InvokeTrace, TRACED_RETRIES};
use crate::upstream::invoker::Invoker;
use crate::upstream::target::InvokeTarget;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A short text kept inline (an error kind, a Lambda request id): no allocation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Label {
    bytes: [u8; 64],
    len: u8,
}

impl Default for Label {
    fn default() -> Label {
        Label {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl Label {
    /// `text`, cut at 64 bytes.
    pub fn of(text: &[u8]) -> Label {
        let mut label = Label::default();
        let n = text.len().min(64);
        label.bytes[..n].copy_from_slice(&text[..n]);
        label.len = n as u8;
        label
    }

    fn get(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| &self.bytes[..self.len as usize])
    }
}

/// What the invoke span tells.
#[derive(Clone, Debug)]
pub(super) struct InvokeFacts {
    pub target: Arc<InvokeTarget>,
    pub started: Instant,
    /// When the answer was read (a stream's head: its first byte).
    pub answered: Instant,
    /// Lambda's HTTP status (0: no answer).
    pub status: u16,
    /// `x-amzn-RequestId`.
    pub request_id: Label,
    /// Why it failed: the error kind the metrics use (a function's error type, Lambda's
    /// error type, `timeout`, `connect` …).
    pub error: Label,
    pub retries: [Option<(&'static str, Instant)>; TRACED_RETRIES],
    pub retry_count: u32,
    pub connections_opened: u32,
    pub last_connect: Option<(Instant, Duration)>,
    /// TLS to Lambda.
    pub tls: bool,
    /// The answer is a `RESPONSE_STREAM` stream.
    pub streamed: bool,
}

impl InvokeFacts {
    /// The invoke of `target` begun at `started`, as the upstream client noted it.
    pub fn of(target: &Arc<InvokeTarget>, started: Instant, noted: &InvokeTrace) -> InvokeFacts {
        InvokeFacts {
            target: target.clone(),
            started,
            answered: Instant::now(),
            status: 0,
            request_id: Label::default(),
            error: Label::default(),
            retries: noted.retries,
            retry_count: noted.retry_count,
            connections_opened: noted.connections_opened,
            last_connect: noted.last_connect,
            tls: target.endpoint.tls,
            streamed: false,
        }
    }

    /// Lambda's answer: its status, request id and error type, from its headers.
    pub fn answer<'h>(&mut self, status: u16, headers: impl Iterator<Item = (&'h [u8], &'h [u8])>) {
        self.status = status;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"x-amzn-requestid") {
                self.request_id = Label::of(value);
            } else if name.eq_ignore_ascii_case(b"x-amz-function-error")
                || (status >= 400 && name.eq_ignore_ascii_case(b"x-amzn-errortype"))
            {
                // `TooManyRequestsException:…`: the type, as the metrics count it.
                let kind = value.split(|&b| b == b':').next().unwrap_or(value);
                self.error = Label::of(kind);
            }
        }
    }
}

/// What the log phase needs to write a traced request's spans.
#[derive(Clone, Debug)]
pub(super) struct TraceFacts {
    pub trace: Box<ActiveTrace>,
    /// The snapshot the request was served on (route and service names).
    pub snapshot: Arc<Snapshot>,
    pub route: usize,
    pub invoke: Option<Box<InvokeFacts>>,
}

/// The invoke's `X-Amzn-Trace-Id`: the trace, the invoke span as the parent, the decision.
pub(super) fn invoke_header(trace: &ActiveTrace, out: &mut Vec<u8>) {
    out.clear();
    let outgoing = Outgoing {
        trace_id: trace.trace_id.to_vec(),
        span_id: trace.invoke_span,
        parent_id: None,
        sampled: trace.sampled,
        debug: false,
    };
    trace_context::inject(Format::Aws, &outgoing, &mut |_, value| {
        out.extend_from_slice(value.as_bytes())
    });
}

/// Spans of a request, at most.
const SPANS: usize = 3;
/// Text of a request's spans besides what [`text_needed`] counts: names, the client's address,
/// error kinds and Lambda's request id (each at most 64 bytes), the method.
const FIXED_TEXT: usize = 512;

/// The most text a request's spans write: each variable value as [`Batch::text`] cuts it.
fn text_needed(asked: &Asked<'_>, facts: &TraceFacts) -> usize {
    let cut = |n: usize| n.min(crate::telemetry::spans::MAX_VALUE);
    let route = facts.snapshot.config.routes.get(facts.route);
    let route_path = route.and_then(|r| r.paths.first()).map_or(0, |p| p.len());
    let route_label = route.map_or(0, |r| r.name.as_deref().unwrap_or(&r.id).len());
    let service_label = facts
        .snapshot
        .plans
        .get(facts.route)
        .and_then(|p| p.service)
        .and_then(|i| facts.snapshot.config.services.get(i))
        .map_or(0, |s| s.name.as_deref().unwrap_or(&s.id).len());
    let invoke = facts.invoke.as_ref().map_or(0, |i| {
        let config = &i.target.config;
        cut(config.function_name.len())
            + cut(i.target.template.region.len())
            + cut(config.qualifier.as_deref().map_or(0, str::len))
            + cut(i.target.endpoint.host.len())
    });
    FIXED_TEXT
        + cut(asked.method.len() + 1 + route_path)
        + cut(asked.method.len())
        + cut(asked.path.len())
        + cut(asked.authority.map_or(0, <[u8]>::len))
        + 2 * cut(route_path)
        + cut(route_label)
        + cut(service_label)
        + invoke
}

impl<I: Invoker> Proxy<I> {
    /// Writes a sampled request's spans: the request (server), its access phase and its
    /// invoke. `body` is the bytes of a streamed answer's body.
    pub(super) fn record_trace(
        &self,
        asked: &Asked<'_>,
        status: u16,
        facts: &TraceFacts,
        body: Option<u64>,
    ) {
        let trace = &facts.trace;
        if !trace.sampled {
            return;
        }
        let Some(spans) = &self.spans else {
            return;
        };
        crate::trace_export::start();
        let ended = Instant::now();
        spans.record(SPANS, text_needed(asked, facts), |b| {
            request_span(b, asked, status, facts, ended);
            if let (start, Some(end)) = trace.access {
                let name = b.text(b"kong.access");
                let mark = b.mark();
                push(
                    b,
                    facts,
                    trace.access_span,
                    name,
                    Kind::Internal,
                    (start, end),
                    None,
                    mark,
                    0,
                );
            }
            if let Some(invoke) = &facts.invoke {
                invoke_span(b, facts, invoke, body, ended);
            }
        });
    }
}

/// Adds the span whose attributes start at `mark` and whose events are the last `events`.
#[allow(clippy::too_many_arguments)]
fn push(
    b: &mut Batch,
    facts: &TraceFacts,
    span_id: [u8; 8],
    name: std::ops::Range<u32>,
    kind: Kind,
    (start, end): (Instant, Instant),
    error: Option<&[u8]>,
    mark: u32,
    events: usize,
) {
    let trace = &facts.trace;
    let attributes = b.since(mark);
    let error = error.map(|e| b.text(e));
    let events_end = b.events.len() as u32;
    let parent = if span_id == trace.request_span {
        trace.parent_id
    } else {
        Some(trace.request_span)
    };
    b.spans.push(SpanRecord {
        target: trace.target.clone(),
        trace_id: trace.trace_id,
        span_id,
        parent_id: parent,
        name,
        kind,
        start_ns: trace.unix_ns(start),
        end_ns: trace.unix_ns(end),
        error,
        attributes,
        events: events_end - events as u32..events_end,
    });
}

fn request_span(b: &mut Batch, asked: &Asked<'_>, status: u16, facts: &TraceFacts, ended: Instant) {
    let snapshot = &facts.snapshot;
    let route = snapshot.config.routes.get(facts.route);
    let route_path = route.and_then(|r| r.paths.first());
    let name = b.text_with(|t| {
        t.extend_from_slice(asked.method);
        if let Some(path) = route_path {
            t.push(b' ');
            t.extend_from_slice(path.as_bytes());
        }
    });
    let mark = b.mark();
    b.text_attribute("http.request.method", asked.method);
    let path = asked.path.split(|&c| c == b'?').next().unwrap_or_default();
    b.text_attribute("url.path", path);
    let scheme = if asked.secure { "https" } else { "http" };
    b.attribute("url.scheme", Value::Static(scheme));
    if let Some(authority) = asked.authority {
        b.text_attribute("server.address", authority);
    }
    let version = match asked.protocol {
        b"HTTP/2.0" => "2",
        b"HTTP/1.0" => "1.0",
        _ => "1.1",
    };
    b.attribute("network.protocol.version", Value::Static(version));
    if let Some(peer) = asked.peer {
        let address = b.text_with(|t| {
            let _ = write!(t, "{peer}");
        });
        b.attribute("client.address", Value::Text(address));
    }
    if let Some(path) = route_path {
        b.text_attribute("http.route", path.as_bytes());
    }
    b.attribute("http.response.status_code", Value::Int(status.into()));
    if let Some(route) = route {
        let label = route.name.as_deref().unwrap_or(route.id.as_str());
        b.text_attribute("kong.route", label.as_bytes());
    }
    let service = snapshot
        .plans
        .get(facts.route)
        .and_then(|p| p.service)
        .and_then(|i| snapshot.config.services.get(i));
    if let Some(service) = service {
        let label = service.name.as_deref().unwrap_or(service.id.as_str());
        b.text_attribute("kong.service", label.as_bytes());
    }
    // A server span is an error for a 5xx (OpenTelemetry's HTTP conventions): the invoke's
    // error kind when it has one.
    let mut kind = Label::default();
    if status >= 500 {
        kind = facts
            .invoke
            .as_ref()
            .map(|i| i.error)
            .filter(|e| e.len > 0)
            .unwrap_or_else(|| Label::of(b"server_error"));
        b.text_attribute("error.type", kind.get().unwrap_or_default());
    }
    let trace = &facts.trace;
    push(
        b,
        facts,
        trace.request_span,
        name,
        Kind::Server,
        (trace.started, ended),
        kind.get(),
        mark,
        0,
    );
}

fn invoke_span(
    b: &mut Batch,
    facts: &TraceFacts,
    invoke: &InvokeFacts,
    body: Option<u64>,
    ended: Instant,
) {
    let trace = &facts.trace;
    let target = &invoke.target;
    let config = &target.config;
    let name = b.text(b"Lambda.Invoke");
    // Events first, each with its attributes; then the span's own attributes.
    let mut events = 0;
    for (cause, at) in invoke.retries.iter().flatten() {
        let mark = b.mark();
        b.attribute("error.type", Value::Static(cause));
        let attributes = b.since(mark);
        b.events.push(Event {
            name: "retry",
            time_ns: trace.unix_ns(*at),
            attributes,
        });
        events += 1;
    }
    if let Some((began, took)) = invoke.last_connect {
        let mark = b.mark();
        b.attribute(
            "lambda_gateway.connect.duration_ms",
            Value::Double(took.as_secs_f64() * 1000.0),
        );
        b.attribute("lambda_gateway.connect.tls", Value::Bool(invoke.tls));
        let attributes = b.since(mark);
        b.events.push(Event {
            name: "connection opened",
            time_ns: trace.unix_ns(began),
            attributes,
        });
        events += 1;
    }
    let mark = b.mark();
    b.attribute("rpc.system", Value::Static("aws-api"));
    b.attribute("rpc.service", Value::Static("Lambda"));
    b.attribute("rpc.method", Value::Static("Invoke"));
    b.attribute("faas.invoked_provider", Value::Static("aws"));
    b.text_attribute("faas.invoked_name", config.function_name.as_bytes());
    b.text_attribute("faas.invoked_region", target.template.region.as_bytes());
    if let Some(qualifier) = &config.qualifier {
        b.text_attribute("aws.lambda.qualifier", qualifier.as_bytes());
    }
    b.text_attribute("server.address", target.endpoint.host.as_bytes());
    b.attribute("server.port", Value::Int(target.endpoint.port.into()));
    if let Some(id) = invoke.request_id.get() {
        b.text_attribute("aws.request_id", id);
    }
    if invoke.status > 0 {
        b.attribute(
            "http.response.status_code",
            Value::Int(invoke.status.into()),
        );
    }
    b.attribute(
        "lambda_gateway.invoke.retries",
        Value::Int(invoke.retry_count.into()),
    );
    b.attribute(
        "lambda_gateway.invoke.connection",
        Value::Static(if invoke.connections_opened > 0 {
            "opened"
        } else {
            "pooled"
        }),
    );
    let end = if invoke.streamed {
        let first = invoke.answered.saturating_duration_since(invoke.started);
        b.attribute(
            "lambda_gateway.stream.time_to_first_byte_ms",
            Value::Double(first.as_secs_f64() * 1000.0),
        );
        b.attribute(
            "lambda_gateway.stream.bytes",
            Value::Int(body.unwrap_or(0) as i64),
        );
        ended
    } else {
        invoke.answered
    };
    if let Some(kind) = invoke.error.get() {
        b.text_attribute("error.type", kind);
    }
    push(
        b,
        facts,
        trace.invoke_span,
        name,
        Kind::Client,
        (invoke.started, end),
        invoke.error.get(),
        mark,
        events,
    );
}
