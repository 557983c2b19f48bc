//! The Prometheus text exposition (format 0.0.4) of every worker's counters, with Kong's names
//! and labels.

use super::labels::{value_of, LABELS};
use super::{Histogram, Latencies, Registry, LATENCY_BUCKETS_MS, PROCESS};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// Escapes a label value for the text format.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One series of counter `name` per `(result, value)`.
fn by_result(out: &mut String, name: &str, series: &[(&str, u64)]) {
    for (result, value) in series {
        let _ = writeln!(out, "{name}{{result=\"{result}\"}} {value}");
    }
}

/// Which of a route's histograms a metric family shows.
type PickHistogram = fn(&Latencies) -> &Histogram;

impl Registry {
    /// The Prometheus text exposition (format 0.0.4).
    pub fn prometheus(&self, config_changes: u64, node_id: &str) -> String {
        let t = self.totals();
        let m = self.merged();
        let mut out = String::new();
        let route = |id: u32| {
            let v = value_of(&LABELS.routes, id);
            let (service, route) = v.split_once('\0').unwrap_or(("", ""));
            (escape(service), escape(route))
        };
        let consumer = |id: u32| escape(&value_of(&LABELS.consumers, id));

        family(
            &mut out,
            "kong_datastore_reachable",
            "gauge",
            "Datastore reachable from Kong, 0 is unreachable",
        );
        out.push_str("kong_datastore_reachable 1\n");
        family(
            &mut out,
            "kong_node_info",
            "gauge",
            "Kong Node metadata information",
        );
        let _ = writeln!(
            out,
            "kong_node_info{{node_id=\"{node_id}\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        family(
            &mut out,
            "kong_http_requests_total",
            "counter",
            "HTTP status codes per consumer/service/route in Kong",
        );
        let mut requests: Vec<_> = m.requests.iter().collect();
        requests.sort_by_key(|((r, c, code, s), _)| (*r, *c, *code, s.as_str()));
        for ((r, c, code, source), n) in requests {
            let (service, route_name) = route(*r);
            let _ = writeln!(
                out,
                "kong_http_requests_total{{service=\"{service}\",route=\"{route_name}\",code=\"{code}\",source=\"{}\",workspace=\"default\",consumer=\"{}\"}} {n}",
                source.as_str(),
                consumer(*c)
            );
        }

        let mut latency: Vec<_> = m.latency.iter().collect();
        latency.sort_by_key(|(r, _)| **r);
        let histograms: [(&str, &str, PickHistogram); 3] = [
            (
                "kong_request_latency_ms",
                "Total latency incurred during requests for each service/route in Kong",
                |l| &l.request,
            ),
            (
                "kong_upstream_latency_ms",
                "Latency added by upstream response for each service/route in Kong",
                |l| &l.upstream,
            ),
            (
                "kong_kong_latency_ms",
                "Latency added by Kong and enabled plugins for each service/route in Kong",
                |l| &l.kong,
            ),
        ];
        for (name, help, pick) in histograms {
            family(&mut out, name, "histogram", help);
            for (r, l) in &latency {
                let h = pick(l);
                if h.count == 0 {
                    continue;
                }
                let (service, route_name) = route(**r);
                let labels =
                    format!("service=\"{service}\",route=\"{route_name}\",workspace=\"default\"");
                let mut cumulative = 0;
                for (bound, n) in LATENCY_BUCKETS_MS.iter().zip(&h.buckets) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{labels},le=\"{:07.1}\"}} {cumulative}",
                        *bound as f64
                    );
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            }
        }

        family(
            &mut out,
            "kong_bandwidth_bytes",
            "counter",
            "Total bandwidth (ingress/egress) throughput in bytes",
        );
        let mut bandwidth: Vec<_> = m.bandwidth.iter().collect();
        bandwidth.sort_by_key(|(k, _)| **k);
        for ((r, c), [ingress, egress]) in bandwidth {
            let (service, route_name) = route(*r);
            let consumer = consumer(*c);
            for (direction, n) in [("egress", egress), ("ingress", ingress)] {
                let _ = writeln!(
                    out,
                    "kong_bandwidth_bytes{{service=\"{service}\",route=\"{route_name}\",direction=\"{direction}\",workspace=\"default\",consumer=\"{consumer}\"}} {n}"
                );
            }
        }

        // nginx's stub_status states, as Kong reports them: `writing` are requests being
        // handled, `waiting` idle keep-alive connections; a connection whose head is still
        // being read counts as waiting (the gateway does not tell the two apart).
        let total_requests: u64 = t.responses.iter().sum();
        let waiting = t.connections_active.saturating_sub(t.requests_in_flight);
        family(
            &mut out,
            "kong_nginx_connections_total",
            "gauge",
            "Number of connections by subsystem",
        );
        for (state, n) in [
            ("accepted", t.connections_accepted),
            ("active", t.connections_active),
            ("handled", t.connections_accepted),
            ("reading", 0),
            ("total", total_requests),
            ("waiting", waiting),
            ("writing", t.requests_in_flight),
        ] {
            let _ = writeln!(
                out,
                "kong_nginx_connections_total{{node_id=\"{node_id}\",subsystem=\"http\",state=\"{state}\"}} {n}"
            );
        }
        family(
            &mut out,
            "kong_nginx_requests_total",
            "gauge",
            "Number of requests total",
        );
        let _ = writeln!(out, "kong_nginx_requests_total{{node_id=\"{node_id}\",subsystem=\"http\"}} {total_requests}");

        family(
            &mut out,
            "lambda_gateway_http_responses_total",
            "counter",
            "Responses sent to clients, by status class.",
        );
        for (i, n) in t.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "lambda_gateway_http_responses_total{{class=\"{}xx\"}} {n}",
                i + 1
            );
        }
        family(
            &mut out,
            "lambda_gateway_connections_accepted_total",
            "counter",
            "Client connections accepted.",
        );
        let _ = writeln!(
            out,
            "lambda_gateway_connections_accepted_total {}",
            t.connections_accepted
        );
        family(
            &mut out,
            "lambda_gateway_connections_active",
            "gauge",
            "Client connections open now.",
        );
        let _ = writeln!(
            out,
            "lambda_gateway_connections_active {}",
            t.connections_active
        );
        family(&mut out, "lambda_gateway_upstream_idle_connections", "gauge", "Idle TLS connections to Lambda kept for reuse, all workers (as of each worker's last pool sweep).");
        let _ = writeln!(
            out,
            "lambda_gateway_upstream_idle_connections {}",
            t.upstream_idle
        );
        family(
            &mut out,
            "lambda_gateway_tls_handshakes_total",
            "counter",
            "TLS handshakes with clients, by result.",
        );
        by_result(
            &mut out,
            "lambda_gateway_tls_handshakes_total",
            &[("ok", t.tls_handshakes[0]), ("failed", t.tls_handshakes[1])],
        );
        family(&mut out, "lambda_gateway_invoke_retries_total", "counter", "Invokes tried again because the function cannot have run (throttled, or no connection made); `budget_exhausted`: retries the worker's budget refused.");
        by_result(
            &mut out,
            "lambda_gateway_invoke_retries_total",
            &[
                ("retried", t.retries[0]),
                ("budget_exhausted", t.retries[1]),
            ],
        );
        family(&mut out, "lambda_gateway_lambda_errors_total", "counter", "Invokes that did not return the function's answer, by error type (Lambda's error type, the function's error, or the gateway's: timeout, connect, tls, bad_response ...).");
        let mut errors: Vec<_> = m
            .lambda_errors
            .iter()
            .map(|(k, v)| (value_of(&LABELS.errors, *k), *v))
            .collect();
        errors.sort();
        for (kind, n) in errors {
            let _ = writeln!(
                out,
                "lambda_gateway_lambda_errors_total{{type=\"{}\"}} {n}",
                escape(&kind)
            );
        }
        family(
            &mut out,
            "lambda_gateway_credential_refreshes_total",
            "counter",
            "AWS credential fetches by the refreshers, by result.",
        );
        by_result(
            &mut out,
            "lambda_gateway_credential_refreshes_total",
            &[
                ("ok", PROCESS.credential_refreshes.load(Relaxed)),
                ("failed", PROCESS.credential_refresh_failures.load(Relaxed)),
            ],
        );
        for (name, kind, help, value) in [
            (
                "lambda_gateway_buffered_bytes",
                "gauge",
                "Bytes of large request bodies, payloads and Lambda answers held now, in the buffer budget.",
                PROCESS.buffered_bytes.load(Relaxed),
            ),
            (
                "lambda_gateway_buffer_budget_bytes",
                "gauge",
                "The buffer budget (--max-buffered).",
                PROCESS.buffer_budget.load(Relaxed),
            ),
            (
                "lambda_gateway_buffer_budget_waits_total",
                "counter",
                "Requests that waited for room in the buffer budget.",
                PROCESS.budget_waits.load(Relaxed),
            ),
            (
                "lambda_gateway_buffer_budget_refused_total",
                "counter",
                "Requests answered 503 because the buffer budget had no room in time.",
                PROCESS.budget_refused.load(Relaxed),
            ),
            (
                "lambda_gateway_slow_bodies_total",
                "counter",
                "Request bodies answered 408 for arriving slower than --min-body-rate.",
                PROCESS.slow_bodies.load(Relaxed),
            ),
            (
                "lambda_gateway_proxy_cache_entries",
                "gauge",
                "Answers held in the node's proxy-cache.",
                PROCESS.proxy_cache_entries.load(Relaxed),
            ),
            (
                "lambda_gateway_proxy_cache_bytes",
                "gauge",
                "Bytes of answers held in the node's proxy-cache (bounded by --proxy-cache-memory).",
                PROCESS.proxy_cache_bytes.load(Relaxed),
            ),
            (
                "lambda_gateway_proxy_cache_evictions_total",
                "counter",
                "Answers evicted from the proxy-cache to make room.",
                PROCESS.proxy_cache_evictions.load(Relaxed),
            ),
            (
                "lambda_gateway_proxy_cache_coalesced_total",
                "counter",
                "Requests that waited for another request's invoke of the same key instead of invoking.",
                PROCESS.proxy_cache_coalesced.load(Relaxed),
            ),
            (
                "lambda_gateway_trace_spans_exported_total",
                "counter",
                "Spans the opentelemetry plugin sent to its collector.",
                PROCESS.trace_spans_exported.load(Relaxed),
            ),
            (
                "lambda_gateway_trace_spans_dropped_total",
                "counter",
                "Spans dropped rather than held: a bound was full or their export failed.",
                PROCESS.trace_spans_dropped.load(Relaxed),
            ),
            (
                "lambda_gateway_trace_export_failures_total",
                "counter",
                "Exports to the opentelemetry collector that failed.",
                PROCESS.trace_export_failures.load(Relaxed),
            ),
        ] {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            &mut out,
            "lambda_gateway_config_changes_total",
            "counter",
            "Configuration changes applied through the Admin API.",
        );
        let _ = writeln!(out, "lambda_gateway_config_changes_total {config_changes}");
        out
    }
}
