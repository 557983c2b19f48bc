//! The `opentelemetry` plugin's exporter: one thread for the node, started when the first span is recorded. Every
//! [`TICK`] it swaps each worker's batch for an empty one, files the spans under their
//! plugin's [`Target`], and sends a target's spans as one OTLP/HTTP request when
//! `batch_span_count` of them wait or the oldest has waited `flush_delay`. A target holds at
//! most `max_entries` spans; a send that fails drops its spans (counted) and is said once per
//! outage, then once when the collector answers again. Sends block only this thread, each
//! within the plugin's timeouts; workers never wait for it.

use crate::metrics::PROCESS;
use crate::telemetry::otlp;
use crate::telemetry::spans::{Batch, WorkerSpans};
use crate::telemetry::Target;
use crate::upstream::fetch::{fetch, FetchRequest};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, LazyLock, Mutex, Once, Weak};
use std::time::{Duration, Instant};

/// How often the exporter takes the workers' spans.
pub const TICK: Duration = Duration::from_millis(100);

/// The node's exporter: the workers' span buffers.
pub struct Exporter {
    workers: Mutex<Vec<Weak<WorkerSpans>>>,
    started: Once,
}

static EXPORTER: LazyLock<Exporter> = LazyLock::new(|| Exporter {
    workers: Mutex::new(Vec::new()),
    started: Once::new(),
});

/// A worker's span buffer, known to the exporter.
pub fn worker_spans() -> Arc<WorkerSpans> {
    let spans = Arc::new(WorkerSpans::default());
    if let Ok(mut workers) = EXPORTER.workers.lock() {
        workers.retain(|w| w.strong_count() > 0);
        workers.push(Arc::downgrade(&spans));
    }
    spans
}

/// Starts the exporter thread, once.
pub fn start() {
    EXPORTER.started.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("trace-export".into())
            .spawn(run);
        if let Err(e) = spawned {
            log::error!("opentelemetry: cannot start the exporter thread ({e}): spans are dropped");
        }
    });
}

/// A target's spans waiting to be sent.
struct Pending {
    target: Arc<Target>,
    spans: Vec<otlp::Span>,
    /// When the oldest waiting span arrived.
    since: Instant,
    /// Sends failed in a row (the outage is said once).
    failures: u64,
    /// No send before this, after a failure.
    retry_at: Instant,
}

fn run() {
    let mut runtime = match crate::reactor::build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            log::error!(
                "opentelemetry: the exporter cannot start its runtime ({e}): spans are dropped"
            );
            return;
        }
    };
    let tls = match crate::upstream::tls::client_config(None) {
        Ok(config) => monoio_rustls::TlsConnector::from(config),
        Err(e) => {
            log::error!("opentelemetry: the exporter has no TLS settings ({e}): spans are dropped");
            return;
        }
    };
    let mut pending: Vec<Pending> = Vec::new();
    let mut spare = Batch::with_room();
    loop {
        std::thread::sleep(TICK);
        let workers: Vec<Arc<WorkerSpans>> = match EXPORTER.workers.lock() {
            Ok(w) => w.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => return,
        };
        for worker in workers {
            let mut full = worker.take(std::mem::take(&mut spare));
            file(&mut pending, &full);
            full.clear();
            spare = full;
        }
        let now = Instant::now();
        for p in pending.iter_mut() {
            let due = p.spans.len() >= p.target.batch_span_count
                || (!p.spans.is_empty() && now.duration_since(p.since) >= p.target.flush_delay);
            if due && now >= p.retry_at {
                runtime.block_on(send(&tls, p));
            }
        }
        // A target no plugin uses any more, with nothing left to send, is forgotten.
        pending.retain(|p| !p.spans.is_empty() || Arc::strong_count(&p.target) > 1);
    }
}

/// Files `batch`'s spans under their targets, within each target's `max_entries`.
fn file(pending: &mut Vec<Pending>, batch: &Batch) {
    let mut groups: Vec<(Arc<Target>, Vec<usize>)> = Vec::new();
    for (i, span) in batch.spans.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(t, _)| Arc::ptr_eq(t, &span.target))
        {
            Some((_, indexes)) => indexes.push(i),
            None => groups.push((span.target.clone(), vec![i])),
        }
    }
    for (target, indexes) in groups {
        let at = match pending.iter().position(|p| Arc::ptr_eq(&p.target, &target)) {
            Some(at) => at,
            None => {
                pending.push(Pending {
                    target,
                    spans: Vec::new(),
                    since: Instant::now(),
                    failures: 0,
                    retry_at: Instant::now(),
                });
                pending.len() - 1
            }
        };
        let p = &mut pending[at];
        if p.spans.is_empty() {
            p.since = Instant::now();
        }
        let room = p.target.max_entries.saturating_sub(p.spans.len());
        let dropped = indexes.len().saturating_sub(room);
        if dropped > 0 {
            PROCESS
                .trace_spans_dropped
                .fetch_add(dropped as u64, Relaxed);
        }
        p.spans
            .extend(otlp::spans_of(batch, indexes.into_iter().take(room)));
    }
}

/// Sends `p`'s waiting spans, `batch_span_count` at a time.
async fn send(tls: &monoio_rustls::TlsConnector, p: &mut Pending) {
    let target = p.target.clone();
    let path = if target.endpoint.path_prefix.is_empty() {
        "/"
    } else {
        ""
    };
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/x-protobuf")];
    headers.extend(target.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    while !p.spans.is_empty() {
        let count = p.spans.len().min(target.batch_span_count.max(1));
        let chunk: Vec<otlp::Span> = p.spans.drain(..count).collect();
        let body = otlp::encode(&target, chunk);
        let request = FetchRequest {
            method: "POST",
            path,
            headers: &headers,
            body: &body,
        };
        let outcome = match fetch(tls, &target.endpoint, &request, target.timeout).await {
            Ok(answer) if (200..300).contains(&answer.status) => Ok(()),
            Ok(answer) => Err(format!(
                "answered {}: {}",
                answer.status,
                answer.body_excerpt()
            )),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                PROCESS
                    .trace_spans_exported
                    .fetch_add(count as u64, Relaxed);
                if p.failures > 0 {
                    log::info!(
                        "opentelemetry: {} answers again after {} failed exports",
                        target.url,
                        p.failures
                    );
                    p.failures = 0;
                }
            }
            Err(why) => {
                PROCESS.trace_export_failures.fetch_add(1, Relaxed);
                PROCESS.trace_spans_dropped.fetch_add(count as u64, Relaxed);
                if p.failures == 0 {
                    log::error!(
                        "opentelemetry: cannot export spans to {}: {why}; spans are dropped (and counted) until it answers",
                        target.url
                    );
                }
                p.failures += 1;
                // Tried again at the next flush, at most once a second.
                p.retry_at = Instant::now() + Duration::from_secs(1);
                return;
            }
        }
    }
}
