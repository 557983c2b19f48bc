//! Kong's `opentelemetry` plugin (priority 14), its Kong 3.x fields: traces of requests sent
//! as OTLP/HTTP protobuf to `traces_endpoint` (Kong 3.0–3.7's `endpoint` is its alias), the
//! trace context read from the client and written to the function in the `propagation`
//! formats (or by the older `header_type`), sampling by `sampling_rate`, the trace id on
//! the answer in `http_response_header_for_traceid`.
//!
//! What differs from Kong: Kong records spans only with `tracing_instrumentations` on in
//! kong.conf (otherwise the plugin only propagates); here a sampled request always has its
//! three spans (request, access phase, invoke; see [`crate::telemetry`]). An unset
//! `sampling_rate` is kong.conf's `tracing_sampling_rate` default, 0.01. The invoke also
//! carries `X-Amzn-Trace-Id` (`Parent` = the invoke span), so the function's X-Ray segment
//! joins the trace. `logs_endpoint` and the `gcp`, `datadog` and `instana` formats are
//! refused with a message (not built).

use super::{AccessContext, Plugin, Verdict};
use crate::aws::endpoint::parse_endpoint_url;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use crate::telemetry::{self, ActiveTrace, Target};
use crate::trace_context::{self, Format, Outgoing};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Formats Kong names; the last three are refused here.
const FORMATS: &[&str] = &[
    "w3c",
    "b3",
    "b3-single",
    "jaeger",
    "ot",
    "aws",
    "gcp",
    "datadog",
    "instana",
];
/// Kong's extractors: every format but `b3-single` (the `b3` extractor reads both).
const EXTRACTORS: &[&str] = &[
    "w3c", "b3", "jaeger", "ot", "aws", "gcp", "datadog", "instana",
];
/// Kong's injectors, and `preserve` (the format the context came in).
const INJECTORS: &[&str] = &[
    "preserve",
    "w3c",
    "b3",
    "b3-single",
    "jaeger",
    "ot",
    "aws",
    "gcp",
    "datadog",
    "instana",
];
/// What Kong's `header_type: preserve` extracts, in Kong's order (less the refused formats).
const EXTRACT_ALL: &[Format] = &[
    Format::B3,
    Format::W3c,
    Format::Jaeger,
    Format::Ot,
    Format::Aws,
];
/// kong.conf's `tracing_sampling_rate` default.
const DEFAULT_SAMPLING_RATE: f64 = 0.01;

fn check_url(url: &str) -> Result<(), String> {
    parse_endpoint_url(url).map(|_| ())
}

crate::settings! {
    /// `propagation`.
    pub struct Propagation, schema PROPAGATION = "propagation" {
        /// Formats read from the request, the first found wins.
        extract: Option<Vec<String>> = Field::of(Type::TextsOneOf(EXTRACTORS)),
        /// Headers removed from the request after extraction.
        clear: Option<Vec<String>> = Field::of(Type::Texts(Some(super::check_header_name))),
        /// Formats written to the request the function sees.
        inject: Option<Vec<String>> = Field::of(Type::TextsOneOf(INJECTORS)),
        /// The format `preserve` writes when nothing was extracted.
        default_format: String = Field::of(Type::OneOf(FORMATS))
            .default(Default::Text("w3c")),
    }
}

crate::settings! {
    /// `queue` (Kong's plugin queue; the exporter uses the batch size, the delay and the
    /// bound, and accepts the rest).
    pub struct Queue, schema QUEUE = "queue" {
        /// Most spans in one export.
        max_batch_size: i64 = Field::of(Type::Integer { min: 1, max: 1_000_000 })
            .default(Default::Int(200)),
        /// Seconds a span waits for its batch to fill.
        max_coalescing_delay: Option<f64> = Field::of(Type::Number { min: 0.0, max: 3600.0 })
            .default(Default::Int(1)),
        /// Most spans waiting; more are dropped (and counted).
        max_entries: i64 = Field::of(Type::Integer { min: 1, max: 1_000_000 })
            .default(Default::Int(10_000)),
        /// Accepted.
        max_bytes: Option<i64> = Field::of(Type::Integer { min: 0, max: i64::MAX }),
        /// Accepted (a failed export is dropped and counted, not retried).
        max_retry_time: Option<f64> = Field::of(Type::Number { min: 0.0, max: 1e9 })
            .default(Default::Int(60)),
        /// Accepted.
        initial_retry_delay: Option<f64> = Field::of(Type::Number { min: 0.001, max: 1e6 })
            .default(Default::Number(0.01)),
        /// Accepted.
        max_retry_delay: Option<f64> = Field::of(Type::Number { min: 0.001, max: 1e6 })
            .default(Default::Int(60)),
        /// Accepted: one exporter per node.
        concurrency_limit: i64 = Field::of(Type::OneOfInts(&[-1, 1])).default(Default::Int(1)),
    }
}

const MILLIS: Type = Type::Integer {
    min: 0,
    max: i32::MAX as i64,
};

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "opentelemetry" {
        /// The OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`).
        traces_endpoint: Option<String> = Field::of(Type::Text(Some(check_url))).referenceable(),
        /// Kong 3.0–3.7's name for `traces_endpoint`.
        endpoint: Option<String> = Field::of(Type::Text(Some(check_url))).referenceable(),
        /// Logs are not exported.
        logs_endpoint: Option<String> = Field::of(Type::Text(None))
            .refused("logs are not exported by this gateway (its access log is --access-log); set traces_endpoint"),
        /// Headers sent with every export (an APM's token).
        headers: Vec<(String, String)> = Field::of(Type::TextMap(Some(super::check_header_name)))
            .referenceable(),
        /// The resource's attributes (`service.name` overrides `kong`).
        resource_attributes: Vec<(String, String)> = Field::of(Type::TextMap(None)),
        /// Kong's queue settings.
        queue: Queue = Field::of(Type::Record(&QUEUE)),
        /// Deprecated: `queue.max_batch_size`.
        batch_span_count: Option<i64> = Field::of(Type::Integer { min: 1, max: 1_000_000 }),
        /// Deprecated: `queue.max_coalescing_delay`, whole seconds.
        batch_flush_delay: Option<i64> = Field::of(Type::Integer { min: 0, max: 3600 }),
        /// Milliseconds to connect to the collector.
        connect_timeout: i64 = Field::of(MILLIS).default(Default::Int(1000)),
        /// Milliseconds to send an export.
        send_timeout: i64 = Field::of(MILLIS).default(Default::Int(5000)),
        /// Milliseconds to read the collector's answer.
        read_timeout: i64 = Field::of(MILLIS).default(Default::Int(5000)),
        /// A header giving the client the trace id.
        http_response_header_for_traceid: Option<String> =
            Field::of(Type::Text(Some(super::check_header_name))),
        /// Deprecated: `propagation`.
        header_type: String = Field::of(Type::OneOf(&[
            "preserve", "ignore", "b3", "b3-single", "w3c", "jaeger", "ot", "aws", "gcp",
            "datadog", "instana",
        ]))
        .default(Default::Text("preserve")),
        /// The share of traces recorded, 0 to 1.
        sampling_rate: Option<f64> = Field::of(Type::Number { min: 0.0, max: 1.0 }),
        /// Which formats are read and written.
        propagation: Propagation = Field::of(Type::Record(&PROPAGATION)),
    }
}

/// What `inject` writes: the format the context came in, or a named one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inject {
    /// `preserve`.
    Preserve,
    /// A format.
    Format(Format),
}

/// The plugin as configured.
#[derive(Debug)]
pub struct OpenTelemetry {
    /// Where the spans go.
    pub target: Arc<Target>,
    /// Formats read, in order.
    pub extract: Vec<Format>,
    /// Formats written.
    pub inject: Vec<Inject>,
    /// What `preserve` writes when nothing was read.
    pub default_format: Format,
    /// Headers removed after extraction.
    pub clear: Vec<String>,
    /// The share of traces recorded.
    pub sampling_rate: f64,
    /// `http_response_header_for_traceid`.
    pub response_header: Option<String>,
}

/// A format by its name, or why it cannot be used here.
fn format(name: &str) -> Result<Format, String> {
    Format::from_name(name)
        .ok_or_else(|| format!("the {name} propagation format is not supported by this gateway"))
}

impl Plugin for OpenTelemetry {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 14;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(c: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let s = Settings::read(obj);
        let Some(url) = s.traces_endpoint.or(s.endpoint) else {
            c.error("at least one of these fields must be non-empty: 'config.traces_endpoint', 'config.logs_endpoint'");
            return None;
        };
        let endpoint = match parse_endpoint_url(&url) {
            Ok(e) => e,
            Err(why) => {
                c.field("traces_endpoint", |c| c.error(why));
                return None;
            }
        };
        if !matches!(s.header_type.as_str(), "preserve" | "ignore") {
            if let Err(why) = format(&s.header_type) {
                c.field("header_type", |c| c.error(why));
                return None;
            }
        }
        // Kong's `get_plugin_params`: `propagation` when any of its lists is set, otherwise
        // what the deprecated `header_type` says.
        let p = &s.propagation;
        let (extract, inject): (Vec<String>, Vec<String>) =
            if p.extract.is_some() || p.inject.is_some() || p.clear.is_some() {
                (
                    p.extract.clone().unwrap_or_default(),
                    p.inject.clone().unwrap_or_default(),
                )
            } else {
                let all = || EXTRACT_ALL.iter().map(|f| name_of(*f).to_string()).collect();
                match s.header_type.as_str() {
                    "preserve" => (all(), vec!["preserve".into()]),
                    "ignore" => (Vec::new(), vec![p.default_format.clone()]),
                    other => (all(), vec!["preserve".into(), other.to_string()]),
                }
            };
        let mut failed = false;
        let mut read = |field: &str, name: &str, c: &mut Checker| match format(name) {
            Ok(f) => Some(f),
            Err(why) => {
                c.field("propagation", |c| c.field(field, |c| c.error(why)));
                failed = true;
                None
            }
        };
        let extract: Vec<Format> = extract
            .iter()
            .filter_map(|n| read("extract", n, c))
            .collect();
        let inject: Vec<Inject> = inject
            .iter()
            .filter_map(|n| match n.as_str() {
                "preserve" => Some(Inject::Preserve),
                n => read("inject", n, c).map(Inject::Format),
            })
            .collect();
        let default_format = read("default_format", &p.default_format, c);
        let (false, Some(default_format)) = (failed, default_format) else {
            return None;
        };
        let millis = |ms: i64| Duration::from_millis(ms.max(0) as u64);
        let mut resource = vec![
            ("service.name".to_string(), "kong".to_string()),
            (
                "service.version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ];
        for (k, v) in &s.resource_attributes {
            resource.retain(|(have, _)| have != k);
            resource.push((k.clone(), v.clone()));
        }
        let flush_delay = match s.batch_flush_delay {
            Some(secs) => Duration::from_secs(secs.max(0) as u64),
            None => Duration::from_secs_f64(s.queue.max_coalescing_delay.unwrap_or(1.0)),
        };
        let target = Target {
            endpoint,
            url,
            headers: s.headers,
            resource,
            batch_span_count: s.batch_span_count.unwrap_or(s.queue.max_batch_size).max(1) as usize,
            flush_delay,
            max_entries: s.queue.max_entries.max(1) as usize,
            timeout: millis(s.connect_timeout) + millis(s.send_timeout) + millis(s.read_timeout),
        };
        Some(OpenTelemetry {
            target: Arc::new(target),
            extract,
            inject,
            default_format,
            clear: p.clear.clone().unwrap_or_default(),
            sampling_rate: s.sampling_rate.unwrap_or(DEFAULT_SAMPLING_RATE),
            response_header: s.http_response_header_for_traceid,
        })
    }

    /// Begins the request's trace, then writes its context into the request the function
    /// sees, as `propagation` says.
    async fn access(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        _resp: &mut Response,
    ) -> Verdict {
        let started = ctx.access_started.unwrap_or_else(Instant::now);
        let (trace, read) = self.begin(req, ctx.arrived, started);
        for name in &self.clear {
            ctx.edits.remove_header(name);
        }
        let out = Outgoing {
            trace_id: read
                .as_ref()
                .and_then(|r| r.context.trace_id.clone())
                .unwrap_or_else(|| trace.trace_id.to_vec()),
            span_id: trace.invoke_span,
            parent_id: Some(trace.request_span),
            sampled: trace.sampled,
            debug: read.as_ref().is_some_and(|r| r.context.debug),
        };
        for inject in &self.inject {
            let format = match inject {
                Inject::Format(f) => *f,
                Inject::Preserve => match &read {
                    Some(r) if r.format == Format::B3 && req.header("x-b3-traceid").is_none() => {
                        Format::B3Single
                    }
                    Some(r) => r.format,
                    None => self.default_format,
                },
            };
            trace_context::inject(format, &out, &mut |name, value| {
                ctx.edits.set_header(name, value.as_bytes())
            });
        }
        if let Some(header) = &self.response_header {
            let id = read
                .as_ref()
                .and_then(|r| r.context.trace_id.as_deref())
                .unwrap_or(&trace.trace_id);
            ctx.edits
                .answer_text(header, trace_context::hex(id).as_bytes());
        }
        ctx.trace = Some(Box::new(trace));
        Verdict::Continue
    }
}

/// A context read from the request, and the format it came in.
pub struct Read {
    /// The format.
    pub format: Format,
    /// What it said.
    pub context: trace_context::Context,
}

fn name_of(format: Format) -> &'static str {
    Format::ALL
        .iter()
        .find(|(_, f)| *f == format)
        .map_or("w3c", |(n, _)| n)
}

impl OpenTelemetry {
    /// The request's trace: the caller's trace id and span (the first `extract` format found)
    /// or a new trace, sampled as Kong decides (a caller's "not sampled" wins; otherwise the
    /// trace id against `sampling_rate`). `arrived` is when the request arrived, `started`
    /// when the access phase began.
    pub fn begin(
        &self,
        req: &Request<'_>,
        arrived: Instant,
        started: Instant,
    ) -> (ActiveTrace, Option<Read>) {
        let header = |name: &str| req.header(name).and_then(|v| std::str::from_utf8(v).ok());
        let read = self.extract.iter().find_map(|f| {
            trace_context::extract(*f, &header).map(|context| Read {
                format: *f,
                context,
            })
        });
        let context = read.as_ref().map(|r| &r.context);
        let raw_id = context.and_then(|c| c.trace_id.as_deref());
        let mut trace = ActiveTrace::begin(
            self.target.clone(),
            raw_id.map(trace_context::trace_id_16),
            context.and_then(|c| c.span_id.or(c.parent_id)),
            arrived,
        );
        trace.access.0 = started;
        let id: &[u8] = raw_id.unwrap_or(&trace.trace_id);
        trace.sampled = context.and_then(|c| c.sampled) != Some(false)
            && telemetry::sample(id, self.sampling_rate);
        (trace, read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::testing::{configured, run, Known, Outcome};

    fn plugin(config: Value) -> OpenTelemetry {
        configured::<OpenTelemetry>(&config.to_string()).expect("valid")
    }

    fn errors(config: Value) -> String {
        configured::<OpenTelemetry>(&config.to_string())
            .err()
            .unwrap_or_default()
            .join("; ")
    }

    fn forwarded(outcome: &Outcome, name: &str) -> Option<String> {
        outcome.forwarded.as_deref()?.split("\r\n").find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    }

    #[test]
    fn kong_fields_and_their_defaults() {
        let p = plugin(serde_json::json!({"traces_endpoint": "http://127.0.0.1:4318/v1/traces"}));
        assert_eq!(p.target.batch_span_count, 200);
        assert_eq!(p.target.flush_delay, Duration::from_secs(1));
        assert_eq!(p.target.timeout, Duration::from_millis(11_000));
        assert_eq!(p.sampling_rate, 0.01);
        assert_eq!(p.extract, EXTRACT_ALL);
        assert_eq!(p.inject, [Inject::Preserve]);
        assert_eq!(p.target.resource[0], ("service.name".into(), "kong".into()));
        // Kong 3.0–3.7's `endpoint`, and the deprecated batch fields.
        let p = plugin(serde_json::json!({
            "endpoint": "http://c:4318/v1/traces", "batch_span_count": 5, "batch_flush_delay": 3,
            "resource_attributes": {"service.name": "edge"}, "header_type": "ignore",
        }));
        assert_eq!(p.target.url, "http://c:4318/v1/traces");
        assert_eq!(p.target.batch_span_count, 5);
        assert_eq!(p.target.flush_delay, Duration::from_secs(3));
        assert_eq!(p.target.resource.last().map(|r| r.1.as_str()), Some("edge"));
        assert_eq!(p.target.resource.len(), 2, "service.name replaced, not repeated");
        assert!(p.extract.is_empty());
        assert_eq!(p.inject, [Inject::Format(Format::W3c)]);
    }

    #[test]
    fn what_cannot_be_done_is_refused_with_the_field() {
        for (config, says) in [
            (serde_json::json!({}), "at least one of these fields"),
            (
                serde_json::json!({"traces_endpoint": "ftp://x"}),
                "unsupported scheme",
            ),
            (
                serde_json::json!({"traces_endpoint": "http://x", "propagation": {"extract": ["datadog"]}}),
                "datadog propagation format is not supported",
            ),
            (
                serde_json::json!({"traces_endpoint": "http://x", "logs_endpoint": "http://x"}),
                "logs are not exported",
            ),
            (
                serde_json::json!({"traces_endpoint": "http://x", "sampling_rate": 2}),
                "between 0 and 1",
            ),
            (
                serde_json::json!({"traces_endpoint": "http://x", "headers": {"bad name": "v"}}),
                "bad header name",
            ),
            (
                serde_json::json!({"traces_endpoint": "http://x", "header_type": "gcp"}),
                "header_type: the gcp propagation format is not supported",
            ),
        ] {
            let errors = errors(config.clone());
            assert!(errors.contains(says), "{config}: {errors}");
        }
    }

    #[test]
    fn a_callers_context_is_kept_and_written_in_the_formats_asked() {
        let p = plugin(serde_json::json!({
            "traces_endpoint": "http://127.0.0.1:9/v1/traces",
            "sampling_rate": 1,
            "http_response_header_for_traceid": "X-Trace",
            "propagation": {"extract": ["w3c"], "inject": ["preserve", "b3", "aws"], "clear": ["x-drop"]},
        }));
        let head = "GET / HTTP/1.1\r\nHost: h\r\nx-drop: 1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
        let out = run(&p, head, &Known::default());
        assert_eq!(out.verdict, Verdict::Continue);
        let trace = out.trace.clone().expect("a trace");
        assert_eq!(
            trace_context::hex(&trace.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(
            trace.parent_id.map(|p| trace_context::hex(&p)).as_deref(),
            Some("b7ad6b7169203331")
        );
        assert!(trace.sampled);
        let invoke = trace_context::hex(&trace.invoke_span);
        let request = trace_context::hex(&trace.request_span);
        assert_eq!(
            forwarded(&out, "traceparent"),
            Some(format!("00-0af7651916cd43dd8448eb211c80319c-{invoke}-01"))
        );
        assert_eq!(
            forwarded(&out, "x-b3-traceid").as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(forwarded(&out, "x-b3-spanid"), Some(invoke.clone()));
        assert_eq!(forwarded(&out, "x-b3-parentspanid"), Some(request));
        assert_eq!(
            forwarded(&out, "x-amzn-trace-id"),
            Some(format!(
                "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent={invoke};Sampled=1"
            ))
        );
        assert_eq!(forwarded(&out, "x-drop"), None);
        assert_eq!(
            out.header("X-Trace").as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
    }

    #[test]
    fn preserve_answers_in_the_format_asked_and_b3_single_stays_single() {
        let p = plugin(serde_json::json!({"traces_endpoint": "http://x", "sampling_rate": 1}));
        let head = "GET / HTTP/1.1\r\nHost: h\r\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90\r\n\r\n";
        let out = run(&p, head, &Known::default());
        let b3 = forwarded(&out, "b3").expect("b3 written back");
        assert!(b3.starts_with("80f198ee56343ba864fe8b2a57d3eff7-"), "{b3}");
        assert_eq!(forwarded(&out, "traceparent"), None);
        let trace = out.trace.expect("trace");
        assert_eq!(
            trace.parent_id.map(|p| trace_context::hex(&p)).as_deref(),
            Some("e457b5a2e4d86bd1")
        );
        // A 64-bit trace id stays 64-bit in its own format, and is padded in the spans.
        let head = "GET / HTTP/1.1\r\nHost: h\r\nuber-trace-id: 00000000000000aa:00000000000000bb:0:1\r\n\r\n";
        let out = run(&p, head, &Known::default());
        let jaeger = forwarded(&out, "uber-trace-id").expect("jaeger written back");
        assert!(jaeger.starts_with("00000000000000aa:"), "{jaeger}");
        assert_eq!(
            trace_context::hex(&out.trace.expect("trace").trace_id),
            "000000000000000000000000000000aa"
        );
    }

    #[test]
    fn a_caller_that_did_not_sample_is_not_sampled_and_a_new_trace_follows_the_rate() {
        let p = plugin(serde_json::json!({"traces_endpoint": "http://x", "sampling_rate": 1}));
        let head = "GET / HTTP/1.1\r\nHost: h\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\r\n\r\n";
        let out = run(&p, head, &Known::default());
        assert!(!out.trace.clone().expect("trace").sampled);
        assert!(forwarded(&out, "traceparent").is_some_and(|v| v.ends_with("-00")));
        // Nothing from the caller: a new trace, in the default format.
        let out = run(&p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Known::default());
        let trace = out.trace.clone().expect("trace");
        assert!(trace.sampled && trace.parent_id.is_none());
        assert!(forwarded(&out, "traceparent").is_some());
        let p = plugin(serde_json::json!({"traces_endpoint": "http://x", "sampling_rate": 0}));
        let out = run(&p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Known::default());
        assert!(!out.trace.expect("trace").sampled);
    }
}
