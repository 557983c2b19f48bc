//! Tracing: what the `opentelemetry` plugin records of a request and how it leaves the node.
//!
//! A traced request carries an [`ActiveTrace`] (its ids, its sampling decision, when its
//! phases ran) from the access phase to the log phase, where the proxy writes its spans
//! into the worker's [`spans::WorkerSpans`]: the request (server), the access phase
//! (internal) and the invoke (client). The exporter thread (`trace_export`, a layer up: it
//! sends through the upstream client) takes every worker's spans a few times a second and
//! sends them as OTLP/HTTP protobuf ([`otlp`]) to the plugin's `traces_endpoint`. Nothing on a worker waits for the exporter or allocates for it; what
//! does not fit its bounds is dropped and counted (`lambda_gateway_trace_spans_dropped_total`).

pub mod otlp;
pub mod spans;

use crate::aws::endpoint::Endpoint;
use ring::rand::SecureRandom;
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

/// Where one `opentelemetry` plugin's spans go, and what describes the gateway there.
#[derive(Debug)]
pub struct Target {
    /// `traces_endpoint`, parsed.
    pub endpoint: Endpoint,
    /// `traces_endpoint` as configured (for log lines).
    pub url: String,
    /// `headers`: sent with every export.
    pub headers: Vec<(String, String)>,
    /// The resource's attributes: `service.name` (Kong's default `kong`), `service.version`,
    /// then `resource_attributes` (which may override both).
    pub resource: Vec<(String, String)>,
    /// Most spans in one export (`queue.max_batch_size`, or `batch_span_count`).
    pub batch_span_count: usize,
    /// Longest a span waits for its batch to fill (`queue.max_coalescing_delay`, or
    /// `batch_flush_delay`).
    pub flush_delay: Duration,
    /// Most spans waiting to be sent (`queue.max_entries`): more are dropped and counted.
    pub max_entries: usize,
    /// One export's bound: `connect_timeout` + `send_timeout` + `read_timeout`.
    pub timeout: Duration,
}

impl Target {
    /// A target for unit tests (nothing listens at it).
    #[cfg(test)]
    pub fn for_tests() -> Target {
        Target {
            endpoint: crate::aws::endpoint::parse_endpoint_url("http://127.0.0.1:9/v1/traces")
                .expect("url"),
            url: "http://127.0.0.1:9/v1/traces".into(),
            headers: Vec::new(),
            resource: vec![("service.name".into(), "kong".into())],
            batch_span_count: 200,
            flush_delay: Duration::from_secs(1),
            max_entries: 10_000,
            timeout: Duration::from_secs(1),
        }
    }
}

/// A request's trace, from the access phase to the log phase.
#[derive(Clone, Debug)]
pub struct ActiveTrace {
    /// Where its spans go.
    pub target: std::sync::Arc<Target>,
    /// The trace (the caller's, or a new one), as 16 bytes.
    pub trace_id: [u8; 16],
    /// The caller's span: the request span's parent (`None`: the trace starts here).
    pub parent_id: Option<[u8; 8]>,
    /// The request's span (server).
    pub request_span: [u8; 8],
    /// The access phase's span (internal, child of the request span).
    pub access_span: [u8; 8],
    /// The invoke's span (client, child of the request span): the parent the function sees.
    pub invoke_span: [u8; 8],
    /// Whether spans are recorded (the sampling decision, once per trace).
    pub sampled: bool,
    /// When the request began, on the wall clock and on the monotonic one.
    pub started_ns: u64,
    /// See `started_ns`.
    pub started: Instant,
    /// When the access phase began and ended.
    pub access: (Instant, Option<Instant>),
}

impl ActiveTrace {
    /// A trace begun at `started` (the request's arrival) under the caller's `trace_id` and
    /// `parent_id` when it sent them, sampled as `sampled` decides.
    pub fn begin(
        target: std::sync::Arc<Target>,
        trace_id: Option<[u8; 16]>,
        parent_id: Option<[u8; 8]>,
        started: Instant,
    ) -> ActiveTrace {
        let now = Instant::now();
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(now.saturating_duration_since(started));
        ActiveTrace {
            target,
            trace_id: trace_id.unwrap_or_else(|| new_trace_id(wall.as_secs())),
            parent_id,
            request_span: span_id(),
            access_span: span_id(),
            invoke_span: span_id(),
            sampled: false,
            started_ns: wall.as_nanos() as u64,
            started,
            access: (now, None),
        }
    }

    /// `at` in nanoseconds since the Unix epoch.
    pub fn unix_ns(&self, at: Instant) -> u64 {
        self.started_ns + at.saturating_duration_since(self.started).as_nanos() as u64
    }
}

/// Kong's trace-id sampler: sampled when the trace id's first 8 bytes, read as the native
/// (little-endian) integer Kong reads, fall below `rate` × 2⁶⁴. The same trace id gets the
/// same answer on every node with the same rate.
pub fn sample(trace_id: &[u8], rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 || trace_id.len() < 8 {
        return false;
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&trace_id[..8]);
    (u64::from_le_bytes(first) as f64) < rate * 2f64.powi(64)
}

thread_local! {
    /// This thread's id generator state, seeded from the system's secure source.
    static STATE: Cell<u64> = Cell::new({
        let mut seed = [0u8; 8];
        let _ = ring::rand::SystemRandom::new().fill(&mut seed);
        u64::from_le_bytes(seed)
    });
}

/// A random 64-bit id (splitmix64 over a per-thread seed): ids need to be unique, not secret.
fn next_id() -> u64 {
    STATE.with(|s| {
        let mut z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A new trace id in X-Ray's form, as OpenTelemetry's X-Ray id generator makes them: the
/// start time in seconds (4 bytes, big-endian), then 12 random bytes. X-Ray refuses traces
/// whose ids do not start with a recent time; every other backend sees a random id (Kong's
/// sampler reads the first 8 bytes little-endian, so its decision rests on the random half).
fn new_trace_id(unix_secs: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&(unix_secs as u32).to_be_bytes());
    id[4..8].copy_from_slice(&next_id().to_be_bytes()[..4]);
    id[8..].copy_from_slice(&next_id().to_be_bytes());
    id
}

/// A new span id (never all zeros, which W3C calls invalid).
pub fn span_id() -> [u8; 8] {
    loop {
        let id = next_id();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_decided_by_the_trace_id_as_kong_decides() {
        let low = [0u8; 16];
        let high = [0xff; 16];
        assert!(sample(&low, 0.01));
        assert!(!sample(&high, 0.99));
        assert!(sample(&high, 1.0));
        assert!(!sample(&low, 0.0));
        // Little-endian, as Kong's FFI read on x86: the first byte is the least significant.
        let mut id = [0u8; 16];
        id[7] = 0x80; // 2^63: half way.
        assert!(!sample(&id, 0.5));
        assert!(sample(&id, 0.51));
        let sampled = (0..10_000)
            .filter(|_| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&next_id().to_be_bytes());
                sample(&id, 0.25)
            })
            .count();
        assert!((2_200..2_800).contains(&sampled), "{sampled}");
    }

    #[test]
    fn a_new_trace_starts_with_its_time_as_x_ray_wants() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let id = new_trace_id(now);
        assert_eq!(
            u64::from(u32::from_be_bytes([id[0], id[1], id[2], id[3]])),
            now & 0xffff_ffff
        );
        // Sampling still splits new traces as the rate says: it reads the random half.
        let sampled = (0..10_000)
            .filter(|_| sample(&new_trace_id(now), 0.25))
            .count();
        assert!((2_200..2_800).contains(&sampled), "{sampled}");
    }

    #[test]
    fn span_ids_differ() {
        let ids: std::collections::HashSet<[u8; 8]> = (0..1000).map(|_| span_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
