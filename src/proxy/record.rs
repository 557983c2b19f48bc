//! The log phase: each request, whatever answered it, adds to its metric series (what its
//! route's prometheus plugin asks for) and writes one access log line.

use super::Proxy;
use crate::access_log::{Entry, FLUSH_AT};
use crate::config::Snapshot;
use crate::http::request::Request;
use crate::metrics::{MetricsPolicy, RequestRecord, Source};
use crate::upstream::invoker::Invoker;
use std::sync::Arc;

/// What the access log and the metrics say of a request beyond the request and the answer.
pub(super) struct Facts {
    /// The snapshot the request was served on, kept only for the access log (its names).
    pub snapshot: Option<Arc<Snapshot>>,
    /// The matched route's index.
    pub route: Option<usize>,
    /// The identified consumer's index.
    pub consumer: Option<usize>,
    /// The route's metric label id (0: none).
    pub route_label: u32,
    /// The consumer's metric label id (0: none).
    pub consumer_label: u32,
    /// Who answered.
    pub source: Source,
    /// The series the request is counted in (its `prometheus` plugin).
    pub metrics: MetricsPolicy,
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

/// What the log line and the metrics say of the request itself.
pub(super) struct Asked<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
    /// The authority the client addressed, with its port if it gave one.
    pub authority: Option<&'a [u8]>,
    /// `HTTP/1.1`, `HTTP/2.0`…; empty when the request was refused before its head was read.
    pub protocol: &'static [u8],
    pub secure: bool,
    pub peer: Option<std::net::IpAddr>,
    /// Bytes received: head and body.
    pub bytes: usize,
}

impl<'a> Asked<'a> {
    pub fn of(req: &Request<'a>) -> Asked<'a> {
        Asked {
            method: req.method(),
            path: req.path(),
            authority: req.authority(),
            protocol: req.protocol(),
            secure: req.secure,
            peer: req.peer,
            bytes: req.head.len + req.body.len(),
        }
    }
}

/// Logs the tail of the function's log Lambda returned (`log_type: Tail`): the
/// `X-Amz-Log-Result` header of a buffered answer, `LogResult` of a stream's `InvokeComplete`.
pub(super) fn log_tail(route: &str, function: &str, tail: &[u8]) {
    log::debug!(
        "route={route} function={function} log_result={}",
        String::from_utf8_lossy(tail)
    );
}

impl<I: Invoker> Proxy<I> {
    /// Adds the request to the metrics and appends its access log line (written out past
    /// [`FLUSH_AT`]).
    pub(super) fn count_and_log(
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
            protocol: req.protocol,
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
}
