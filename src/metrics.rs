//! Per-worker counters, summed when the Admin API is asked (`GET /metrics`, `GET /status`).
//!
//! Each worker owns its counters; relaxed atomic adds on a cache line no other core writes cost
//! about as much as plain adds, and let the admin thread read them without locks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// One worker's counters.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// Responses by status class: 1xx … 5xx (index 0 … 4).
    pub responses: [AtomicU64; 5],
    /// Client connections accepted.
    pub connections_accepted: AtomicU64,
    /// Client connections closed.
    pub connections_closed: AtomicU64,
}

impl WorkerMetrics {
    /// Counts one response.
    pub fn count_response(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }
}

/// Every worker's counters, and the upstream pool figures they publish.
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

    /// Sums every worker's counters.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let Ok(workers) = self.workers.lock() else {
            return t;
        };
        for w in workers.iter() {
            for (i, c) in w.responses.iter().enumerate() {
                t.responses[i] += c.load(Relaxed);
            }
            let accepted = w.connections_accepted.load(Relaxed);
            t.connections_accepted += accepted;
            t.connections_active += accepted.saturating_sub(w.connections_closed.load(Relaxed));
        }
        t
    }

    /// The Prometheus text exposition of the totals.
    pub fn prometheus(&self, config_changes: u64) -> String {
        let t = self.totals();
        let mut out = String::new();
        out.push_str("# HELP lambda_gateway_http_responses_total Responses sent to clients, by status class.\n");
        out.push_str("# TYPE lambda_gateway_http_responses_total counter\n");
        for (i, n) in t.responses.iter().enumerate() {
            out.push_str(&format!(
                "lambda_gateway_http_responses_total{{class=\"{}xx\"}} {n}\n",
                i + 1
            ));
        }
        out.push_str(
            "# HELP lambda_gateway_connections_accepted_total Client connections accepted.\n",
        );
        out.push_str("# TYPE lambda_gateway_connections_accepted_total counter\n");
        out.push_str(&format!(
            "lambda_gateway_connections_accepted_total {}\n",
            t.connections_accepted
        ));
        out.push_str("# HELP lambda_gateway_connections_active Client connections open now.\n");
        out.push_str("# TYPE lambda_gateway_connections_active gauge\n");
        out.push_str(&format!(
            "lambda_gateway_connections_active {}\n",
            t.connections_active
        ));
        out.push_str("# HELP lambda_gateway_config_changes_total Configuration changes applied through the Admin API.\n");
        out.push_str("# TYPE lambda_gateway_config_changes_total counter\n");
        out.push_str(&format!(
            "lambda_gateway_config_changes_total {config_changes}\n"
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_workers() {
        let r = Registry::default();
        let a = r.register();
        let b = r.register();
        a.count_response(200);
        b.count_response(204);
        b.count_response(502);
        a.connections_accepted.fetch_add(3, Relaxed);
        a.connections_closed.fetch_add(1, Relaxed);
        let t = r.totals();
        assert_eq!(t.responses, [0, 2, 0, 0, 1]);
        assert_eq!((t.connections_accepted, t.connections_active), (3, 2));
        assert!(r
            .prometheus(4)
            .contains("lambda_gateway_http_responses_total{class=\"2xx\"} 2\n"));
    }
}
