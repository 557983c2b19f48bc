//! Metrics, served in Prometheus' text format on the Admin API's `GET /metrics`.
//!
//! Kong's names and labels, so Kong's Grafana dashboard works unchanged:
//! `kong_http_requests_total{service,route,code,source,workspace,consumer}`,
//! `kong_request_latency_ms`, `kong_upstream_latency_ms`, `kong_kong_latency_ms` (histograms
//! with Kong's buckets), `kong_bandwidth_bytes{service,route,direction,workspace,consumer}`,
//! `kong_nginx_connections_total{node_id,subsystem,state}`, `kong_nginx_requests_total`,
//! `kong_datastore_reachable`, `kong_node_info`; and the gateway's own (`lambda_gateway_*`):
//! idle upstream connections, client TLS handshakes, Lambda errors by type, credential
//! refreshes, Admin API changes.
//!
//! Each worker owns its counters. Plain counters are relaxed atomics on lines no other core
//! writes; labelled series live in a per-worker map behind a mutex only the admin thread ever
//! contends for (at a scrape), keyed by small label ids. Label values are interned once per
//! process ([`route_label`], [`consumer_label`], when a configuration is loaded), so a request
//! adds to its series without allocating once the series exists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};

mod exposition;
mod labels;

pub use labels::{consumer_label, route_label};
use labels::{intern, LABELS};

/// Kong's latency buckets, in milliseconds (its prometheus plugin's defaults).
pub const LATENCY_BUCKETS_MS: [u64; 20] = [
    1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 2000, 5000, 10_000, 30_000,
    60_000,
];

/// Who produced a response: Kong's `source` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The function answered.
    Service,
    /// A plugin answered (Kong's `kong.response.exit`).
    Exit,
    /// The gateway failed the request (no route, Lambda or network error …).
    Error,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Service => "service",
            Source::Exit => "exit",
            Source::Error => "error",
        }
    }
}

/// One histogram: counts per bucket (not cumulative), sum and count.
#[derive(Clone, Default)]
pub(crate) struct Histogram {
    pub buckets: [u64; LATENCY_BUCKETS_MS.len()],
    pub sum: u64,
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, ms: u64) {
        if let Some(i) = LATENCY_BUCKETS_MS.iter().position(|&b| ms <= b) {
            self.buckets[i] += 1;
        }
        self.sum += ms;
        self.count += 1;
    }

    fn add(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// The three latencies Kong charts for a route.
#[derive(Clone, Default)]
pub(crate) struct Latencies {
    pub request: Histogram,
    pub upstream: Histogram,
    pub kong: Histogram,
}

/// A worker's labelled series.
#[derive(Default)]
struct Series {
    /// (route, consumer, status, source) → requests.
    requests: HashMap<(u32, u32, u16, Source), u64>,
    /// (route, consumer) → [ingress, egress] bytes.
    bandwidth: HashMap<(u32, u32), [u64; 2]>,
    /// route → latencies.
    latency: HashMap<u32, Latencies>,
    /// Lambda error type id → count.
    lambda_errors: HashMap<u32, u64>,
}

/// Which per-request series a request is counted in: Kong's `prometheus` plugin fields for the
/// plugin that applies to its route. The Prometheus text has the series of every policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MetricsPolicy {
    /// `status_code_metrics`: `kong_http_requests_total`.
    pub status_codes: bool,
    /// `latency_metrics`: the three latency histograms.
    pub latency: bool,
    /// `bandwidth_metrics`: `kong_bandwidth_bytes`.
    pub bandwidth: bool,
    /// `per_consumer`: the consumer label filled in (else empty).
    pub per_consumer: bool,
}

impl MetricsPolicy {
    /// Every series, with consumers: requests of a configuration without any `prometheus`
    /// plugin (the gateway's default).
    pub const ALL: MetricsPolicy = MetricsPolicy {
        status_codes: true,
        latency: true,
        bandwidth: true,
        per_consumer: true,
    };
    /// None: requests no `prometheus` plugin applies to, in a configuration that has one.
    pub const NONE: MetricsPolicy = MetricsPolicy {
        status_codes: false,
        latency: false,
        bandwidth: false,
        per_consumer: false,
    };
}

impl Default for MetricsPolicy {
    /// [`MetricsPolicy::ALL`]: the gateway's default.
    fn default() -> Self {
        MetricsPolicy::ALL
    }
}

/// What one finished request adds to the metrics.
#[derive(Clone, Copy, Debug)]
pub struct RequestRecord {
    /// The route's label id ([`route_label`]; 0: no route matched).
    pub route: u32,
    /// The consumer's label id ([`consumer_label`]; 0: none).
    pub consumer: u32,
    /// The status sent.
    pub status: u16,
    /// Who answered.
    pub source: Source,
    /// Request bytes read (head and body).
    pub ingress: u64,
    /// Response bytes written (head and body).
    pub egress: u64,
    /// From the request's head to its answer, in ms.
    pub request_ms: u64,
    /// The Lambda invoke, in ms, when there was one.
    pub upstream_ms: Option<u64>,
    /// The series it is counted in (all of them have its status class).
    pub policy: MetricsPolicy,
}

/// One worker's counters.
#[derive(Default)]
pub struct WorkerMetrics {
    /// Responses by status class: 1xx … 5xx (index 0 … 4).
    pub responses: [AtomicU64; 5],
    /// Client connections accepted.
    pub connections_accepted: AtomicU64,
    /// Client connections closed.
    pub connections_closed: AtomicU64,
    /// Requests being handled now.
    pub requests_in_flight: AtomicU64,
    /// Idle upstream connections in the worker's pool (set at each pool sweep).
    pub upstream_idle: AtomicU64,
    /// Client TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// Client TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
    /// Invokes tried again (safe retries).
    pub retries: AtomicU64,
    /// Retries not made because the worker's retry budget was used up.
    pub retry_budget_exhausted: AtomicU64,
    series: Mutex<Series>,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").finish_non_exhaustive()
    }
}

impl WorkerMetrics {
    /// Counts one response by status class only (answers outside a route's handling).
    pub fn count_response(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    /// Counts a finished request in the series its policy names.
    pub fn record(&self, r: &RequestRecord) {
        self.count_response(r.status);
        let policy = r.policy;
        if policy == MetricsPolicy::NONE {
            return;
        }
        let consumer = if policy.per_consumer { r.consumer } else { 0 };
        let Ok(mut s) = self.series.lock() else {
            return;
        };
        if policy.status_codes {
            *s.requests
                .entry((r.route, consumer, r.status, r.source))
                .or_default() += 1;
        }
        if policy.bandwidth {
            let bytes = s.bandwidth.entry((r.route, consumer)).or_default();
            bytes[0] += r.ingress;
            bytes[1] += r.egress;
        }
        if policy.latency && r.route != 0 {
            let l = s.latency.entry(r.route).or_default();
            l.request.observe(r.request_ms);
            match r.upstream_ms {
                Some(up) => {
                    l.upstream.observe(up);
                    l.kong.observe(r.request_ms.saturating_sub(up));
                }
                None => l.kong.observe(r.request_ms),
            }
        }
    }

    /// Counts a Lambda error of `kind` (`Unhandled`, `TooManyRequestsException`, `timeout` …).
    pub fn lambda_error(&self, kind: &str) {
        let id = intern(&LABELS.errors, kind);
        if let Ok(mut s) = self.series.lock() {
            *s.lambda_errors.entry(id).or_default() += 1;
        }
    }
}

/// Process-wide counters kept outside the workers.
#[derive(Default)]
pub struct ProcessCounters {
    /// Credential sets fetched by the refreshers.
    pub credential_refreshes: AtomicU64,
    /// Credential fetches that failed.
    pub credential_refresh_failures: AtomicU64,
    /// Bytes reserved in the buffer budget now (`http::budget`).
    pub buffered_bytes: AtomicU64,
    /// The buffer budget's limit.
    pub buffer_budget: AtomicU64,
    /// Requests that waited for room in the buffer budget.
    pub budget_waits: AtomicU64,
    /// Requests refused (503) because the buffer budget had no room in time.
    pub budget_refused: AtomicU64,
    /// Request bodies refused for arriving slower than the minimum rate (408).
    pub slow_bodies: AtomicU64,
    /// Answers in the node's proxy-cache now, and their bytes.
    pub proxy_cache_entries: AtomicU64,
    /// See `proxy_cache_entries`.
    pub proxy_cache_bytes: AtomicU64,
    /// Entries evicted from the proxy-cache to make room.
    pub proxy_cache_evictions: AtomicU64,
    /// Requests that waited for another request's invoke of the same key (coalesced).
    pub proxy_cache_coalesced: AtomicU64,
    /// Spans sent to a collector (`opentelemetry`).
    pub trace_spans_exported: AtomicU64,
    /// Spans dropped: a worker's or a target's bound was full, or their export failed.
    pub trace_spans_dropped: AtomicU64,
    /// Exports that failed (unreachable collector, timeout, an answer other than 2xx).
    pub trace_export_failures: AtomicU64,
}

/// The process's counters that belong to no worker.
pub static PROCESS: LazyLock<ProcessCounters> = LazyLock::new(ProcessCounters::default);

/// Every worker's counters.
#[derive(Debug, Default)]
pub struct Registry {
    workers: Mutex<Vec<Arc<WorkerMetrics>>>,
}

/// Totals over all workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Responses by status class.
    pub responses: [u64; 5],
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_active: u64,
    /// Requests being handled now.
    pub requests_in_flight: u64,
    /// Idle upstream connections.
    pub upstream_idle: u64,
    /// TLS handshakes completed and failed.
    pub tls_handshakes: [u64; 2],
    /// Retries made, and refused by the budget.
    pub retries: [u64; 2],
}

/// The labelled series of all workers, summed.
#[derive(Default)]
pub(crate) struct Merged {
    pub requests: HashMap<(u32, u32, u16, Source), u64>,
    pub bandwidth: HashMap<(u32, u32), [u64; 2]>,
    pub latency: HashMap<u32, Latencies>,
    pub lambda_errors: HashMap<u32, u64>,
}

impl Registry {
    /// Registers a worker's counters.
    pub fn register(&self) -> Arc<WorkerMetrics> {
        let m = Arc::new(WorkerMetrics::default());
        if let Ok(mut w) = self.workers.lock() {
            w.push(m.clone());
        }
        m
    }

    fn workers(&self) -> Vec<Arc<WorkerMetrics>> {
        self.workers.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Sums every worker's counters.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for w in self.workers() {
            for (i, c) in w.responses.iter().enumerate() {
                t.responses[i] += c.load(Relaxed);
            }
            let accepted = w.connections_accepted.load(Relaxed);
            t.connections_accepted += accepted;
            t.connections_active += accepted.saturating_sub(w.connections_closed.load(Relaxed));
            t.requests_in_flight += w.requests_in_flight.load(Relaxed);
            t.upstream_idle += w.upstream_idle.load(Relaxed);
            t.tls_handshakes[0] += w.tls_handshakes.load(Relaxed);
            t.tls_handshakes[1] += w.tls_handshake_failures.load(Relaxed);
            t.retries[0] += w.retries.load(Relaxed);
            t.retries[1] += w.retry_budget_exhausted.load(Relaxed);
        }
        t
    }

    pub(super) fn merged(&self) -> Merged {
        let mut m = Merged::default();
        for w in self.workers() {
            // Copied out under the lock, merged after: a worker waits for a copy at most.
            let Some(copy) = w.series.lock().ok().map(|s| {
                (
                    s.requests.clone(),
                    s.bandwidth.clone(),
                    s.latency.clone(),
                    s.lambda_errors.clone(),
                )
            }) else {
                continue;
            };
            let (requests, bandwidth, latency, errors) = copy;
            for (k, v) in requests {
                *m.requests.entry(k).or_default() += v;
            }
            for (k, [i, e]) in bandwidth {
                let b = m.bandwidth.entry(k).or_default();
                b[0] += i;
                b[1] += e;
            }
            for (k, l) in latency {
                let into = m.latency.entry(k).or_default();
                into.request.add(&l.request);
                into.upstream.add(&l.upstream);
                into.kong.add(&l.kong);
            }
            for (k, v) in errors {
                *m.lambda_errors.entry(k).or_default() += v;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_sum_into_kongs_series() {
        let r = Registry::default();
        let a = r.register();
        let b = r.register();
        let route = route_label("svc", "rt\"1");
        let alice = consumer_label("alice");
        let record = |status, source, upstream_ms| RequestRecord {
            route,
            consumer: alice,
            status,
            source,
            ingress: 100,
            egress: 50,
            request_ms: 12,
            upstream_ms,
            policy: MetricsPolicy::ALL,
        };
        a.record(&record(200, Source::Service, Some(10)));
        b.record(&record(200, Source::Service, Some(3)));
        b.record(&record(401, Source::Exit, None));
        a.connections_accepted.fetch_add(3, Relaxed);
        a.connections_closed.fetch_add(1, Relaxed);
        a.lambda_error("Unhandled");
        let t = r.totals();
        assert_eq!(t.responses, [0, 2, 0, 1, 0]);
        assert_eq!((t.connections_accepted, t.connections_active), (3, 2));
        let text = r.prometheus(4, "n");
        let labels = r#"service="svc",route="rt\"1""#;
        for line in [
            format!(
                r#"kong_http_requests_total{{{labels},code="200",source="service",workspace="default",consumer="alice"}} 2"#
            ),
            format!(
                r#"kong_http_requests_total{{{labels},code="401",source="exit",workspace="default",consumer="alice"}} 1"#
            ),
            format!(
                r#"kong_request_latency_ms_bucket{{{labels},workspace="default",le="00010.0"}} 0"#
            ),
            format!(
                r#"kong_request_latency_ms_bucket{{{labels},workspace="default",le="00015.0"}} 3"#
            ),
            format!(
                r#"kong_upstream_latency_ms_bucket{{{labels},workspace="default",le="00005.0"}} 1"#
            ),
            format!(r#"kong_upstream_latency_ms_count{{{labels},workspace="default"}} 2"#),
            format!(r#"kong_kong_latency_ms_sum{{{labels},workspace="default"}} 23"#),
            format!(
                r#"kong_bandwidth_bytes{{{labels},direction="ingress",workspace="default",consumer="alice"}} 300"#
            ),
            r#"kong_nginx_connections_total{node_id="n",subsystem="http",state="active"} 2"#
                .to_string(),
            r#"lambda_gateway_lambda_errors_total{type="Unhandled"} 1"#.to_string(),
            "lambda_gateway_http_responses_total{class=\"2xx\"} 2".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\nnot in\n{text}");
        }
    }
}
