//! `GET /metrics` on the Admin API: Kong's metric names and labels (what Kong's Grafana
//! dashboard queries) and the gateway's own, counted for function answers, plugin answers and
//! gateway errors, read back through the Prometheus client's own text-format parser
//! (`prometheus_client.parser`, from tests/requirements.txt). Both drivers.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Stdio;
use support::*;

/// One parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses a scrape with Prometheus' Python client; panics if it does not parse.
fn parse(text: &str) -> Vec<Sample> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = python::python()
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parses");
    assert!(
        out.status.success(),
        "the scrape does not parse: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    samples
        .into_iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            (
                s[0].as_str().expect("name").to_string(),
                labels,
                s[2].as_f64().expect("value"),
            )
        })
        .collect()
}

/// The value of the sample called `name` with (at least) these labels.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

/// An aws-lambda plugin invoking the mock's `function`, as a YAML flow mapping.
fn lambda_plugin(mock: &MockLambda, function: &str) -> String {
    format!(
        "{{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: {function}, host: localhost, port: {}}}}}",
        mock.addr.port()
    )
}

fn config(mock: &MockLambda) -> String {
    let lambda = |function: &str| lambda_plugin(mock, function);
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials: [{{key: alice-key}}]
services:
- name: svc
  routes:
  - name: r
    paths: [/r]
    plugins: [{echo}]
  - name: auth
    paths: [/auth]
    plugins: [{echo}, {{name: key-auth}}]
  - name: unhandled
    paths: [/unhandled]
    plugins: [{unhandled}]
  - name: throttled
    paths: [/throttled]
    plugins: [{throttled}]
"#,
        echo = lambda("echo"),
        unhandled = lambda("unhandled"),
        throttled = lambda("throttled"),
    )
}

#[test]
fn a_scrape_has_kongs_series_and_parses() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("metrics");
        let gw = Gateway::start_admin_with(&mock, &config(&mock), driver, &dir);
        for _ in 0..3 {
            assert_eq!(gw.send(&get("/r")).status, 200);
        }
        assert_eq!(gw.send(&get("/auth")).status, 401);
        let r = gw.send("GET /auth HTTP/1.1\r\nHost: x\r\napikey: alice-key\r\n\r\n");
        assert_eq!(r.status, 200);
        let unhandled = gw.send(&get("/unhandled")).status;
        let throttled = gw.send(&get("/throttled")).status;
        assert_eq!(gw.send(&get("/nowhere")).status, 404);

        let scrape = gw.admin_get("/metrics");
        assert_eq!(scrape.status, 200);
        assert_eq!(
            scrape.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let s = parse(&scrape.text());
        let requests = |route: &str, code: &str, source: &str, consumer: &str| {
            value(
                &s,
                "kong_http_requests_total",
                &[
                    ("service", "svc"),
                    ("route", route),
                    ("code", code),
                    ("source", source),
                    ("workspace", "default"),
                    ("consumer", consumer),
                ],
            )
        };
        assert_eq!(requests("r", "200", "service", ""), Some(3.0));
        assert_eq!(requests("auth", "401", "exit", ""), Some(1.0));
        assert_eq!(requests("auth", "200", "service", "alice"), Some(1.0));
        assert_eq!(
            requests("unhandled", &unhandled.to_string(), "service", ""),
            Some(1.0),
            "a function error is still the function's answer"
        );
        assert_eq!(
            requests("throttled", &throttled.to_string(), "error", ""),
            Some(1.0)
        );
        let no_route = [
            ("service", ""),
            ("route", ""),
            ("code", "404"),
            ("source", "error"),
        ];
        assert_eq!(value(&s, "kong_http_requests_total", &no_route), Some(1.0));

        // Histograms with Kong's buckets: every request of a route in request latency; only
        // invoked ones in upstream latency; all in Kong's own latency.
        let r = [("service", "svc"), ("route", "r"), ("workspace", "default")];
        assert_eq!(value(&s, "kong_request_latency_ms_count", &r), Some(3.0));
        let inf = [("route", "r"), ("le", "+Inf")];
        assert_eq!(value(&s, "kong_request_latency_ms_bucket", &inf), Some(3.0));
        assert!(value(
            &s,
            "kong_request_latency_ms_bucket",
            &[("route", "r"), ("le", "60000.0")]
        )
        .is_some());
        let auth = [("service", "svc"), ("route", "auth")];
        assert_eq!(value(&s, "kong_request_latency_ms_count", &auth), Some(2.0));
        assert_eq!(
            value(&s, "kong_upstream_latency_ms_count", &auth),
            Some(1.0)
        );
        assert_eq!(value(&s, "kong_kong_latency_ms_count", &auth), Some(2.0));

        // On the wire the name is Kong's, `kong_bandwidth_bytes` (what its dashboard queries);
        // the Python parser names every counter sample `…_total`.
        assert!(scrape
            .text()
            .contains("\nkong_bandwidth_bytes{service=\"svc\",route=\"r\",direction=\"ingress\","));
        let bytes = |direction: &str| {
            value(
                &s,
                "kong_bandwidth_bytes_total",
                &[("route", "r"), ("direction", direction), ("consumer", "")],
            )
            .unwrap_or(0.0)
        };
        assert!(
            bytes("ingress") >= 3.0 * 39.0,
            "three GET heads of 39 bytes"
        );
        assert!(bytes("egress") >= 3.0 * 60.0, "three answers");

        let state = |st: &str| {
            value(
                &s,
                "kong_nginx_connections_total",
                &[("subsystem", "http"), ("state", st)],
            )
        };
        assert!(state("accepted").unwrap_or(0.0) >= 8.0);
        assert_eq!(state("total"), Some(8.0), "every answer counted once");
        assert_eq!(value(&s, "kong_datastore_reachable", &[]), Some(1.0));

        // The gateway's own.
        let errors = |t: &str| value(&s, "lambda_gateway_lambda_errors_total", &[("type", t)]);
        assert_eq!(errors("Unhandled"), Some(1.0));
        assert_eq!(errors("TooManyRequestsException"), Some(1.0));
        assert!(value(&s, "lambda_gateway_upstream_idle_connections", &[]).is_some());
        assert!(value(
            &s,
            "lambda_gateway_credential_refreshes_total",
            &[("result", "ok")]
        )
        .is_some());
        assert_eq!(
            value(
                &s,
                "lambda_gateway_http_responses_total",
                &[("class", "2xx")]
            ),
            Some(4.0 + f64::from(u8::from(unhandled / 100 == 2)))
        );
    }
}

/// Kong's `prometheus` plugin: once a configuration has one, a request is counted only in the
/// series its plugin turns on; every field is off by default; `per_consumer` fills the consumer
/// label; requests matched by no route go by the global plugin.
#[test]
fn the_prometheus_plugin_chooses_the_series_as_in_kong() {
    let mock = MockLambda::start();
    let lambda = lambda_plugin(&mock, "echo");
    let cfg = format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials: [{{key: alice-key}}]
services:
- name: svc
  plugins:
  - {{name: prometheus, config: {{status_code_metrics: true}}}}
  routes:
  - name: codes
    paths: [/codes]
    plugins: [{lambda}, {{name: key-auth}}]
  - name: everything
    paths: [/everything]
    plugins:
    - {lambda}
    - {{name: key-auth}}
    - {{name: prometheus, config: {{status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, per_consumer: true}}}}
- name: quiet
  routes:
  - name: defaults
    paths: [/defaults]
    plugins: [{lambda}, {{name: prometheus}}]
  - name: uncovered
    paths: [/uncovered]
    plugins: [{lambda}]
"#
    );
    for driver in DRIVERS {
        let dir = TempDir::new("metrics");
        let gw = Gateway::start_admin_with(&mock, &cfg, driver, &dir);
        let as_alice = |path: &str| {
            gw.send(&format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\napikey: alice-key\r\n\r\n"
            ))
            .status
        };
        assert_eq!(as_alice("/codes"), 200);
        assert_eq!(as_alice("/everything"), 200);
        assert_eq!(as_alice("/everything"), 200);
        assert_eq!(gw.send(&get("/defaults")).status, 200);
        assert_eq!(gw.send(&get("/uncovered")).status, 200);
        assert_eq!(gw.send(&get("/nowhere")).status, 404);
        let text = gw.admin_get("/metrics").text();
        let s = parse(&text);
        let requests = |route: &str, consumer: &str| {
            value(
                &s,
                "kong_http_requests_total",
                &[("route", route), ("code", "200"), ("consumer", consumer)],
            )
        };
        let histogram =
            |route: &str| value(&s, "kong_request_latency_ms_count", &[("route", route)]);
        let bandwidth = |route: &str| {
            value(
                &s,
                "kong_bandwidth_bytes_total",
                &[("route", route), ("direction", "egress")],
            )
        };
        // The service's plugin: status codes only, consumer label left empty.
        assert_eq!(requests("codes", ""), Some(1.0), "{driver:?}");
        assert_eq!(requests("codes", "alice"), None);
        assert_eq!(histogram("codes"), None);
        assert_eq!(bandwidth("codes"), None);
        // The route's own plugin wins over the service's: everything, with the consumer.
        assert_eq!(requests("everything", "alice"), Some(2.0));
        assert_eq!(histogram("everything"), Some(2.0));
        assert!(bandwidth("everything").unwrap_or(0.0) > 0.0);
        // A plugin with Kong's defaults, and a route no plugin covers: nothing per request.
        for route in ["defaults", "uncovered"] {
            assert_eq!(
                value(&s, "kong_http_requests_total", &[("route", route)]),
                None
            );
            assert_eq!(histogram(route), None);
            assert_eq!(bandwidth(route), None);
        }
        // No global plugin: the unrouted 404 is not in the per-request series either.
        assert_eq!(
            value(&s, "kong_http_requests_total", &[("code", "404")]),
            None
        );
        // Node-level series are always there, every answer counted.
        assert_eq!(
            value(
                &s,
                "kong_nginx_connections_total",
                &[("subsystem", "http"), ("state", "total")]
            ),
            Some(6.0)
        );
        // The plugin's schema is served like the others'.
        let schema = gw.admin_get("/schemas/plugins/prometheus");
        assert_eq!(schema.status, 200, "{}", schema.text());
        assert!(schema.text().contains("status_code_metrics"));
    }
}
