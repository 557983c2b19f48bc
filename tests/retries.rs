//! Safe retries (`retries`): only invokes the function cannot have run are tried again (Lambda
//! throttled them, or no connection could be made), each rule asserted by counting the invokes
//! the mock received; `Retry-After` is honoured within the plugin's timeout; and the worker's
//! retry budget caps the extra load of a throttle storm. Both drivers.

mod support;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Routes `/{function}` invoking `function` with `retries` (and `timeout` ms).
fn config(mock: &MockLambda, routes: &[(&str, u32, u64)]) -> String {
    let mut out = "_format_version: \"3.0\"\nroutes:\n".to_string();
    for (function, retries, timeout) in routes {
        out.push_str(&format!(
            "- name: {function}\n  paths: [/{function}]\n  plugins: [{{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: {function}, host: localhost, port: {}, retries: {retries}, timeout: {timeout}}}}}]\n",
            mock.addr.port()
        ));
    }
    out
}

fn invokes_of(mock: &MockLambda, function: &str) -> usize {
    let target = format!("/2015-03-31/functions/{function}/invocations");
    mock.requests()
        .iter()
        .filter(|r| r.target == target)
        .count()
}

#[test]
fn only_invokes_that_cannot_have_run_are_retried() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let cfg = config(
            &mock,
            &[
                ("throttled-twice", 2, 60_000),
                ("fails-once", 3, 60_000),
                ("slow", 3, 200),
            ],
        );
        let gw = one_worker(&mock, &cfg, driver);
        // Throttled twice, then run: three invokes, one 200.
        let r = gw.send(&get("/throttled-twice"));
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(invokes_of(&mock, "throttled-twice"), 3);
        // A 500 after the function may have run: never again.
        let r = gw.send(&get("/fails-once"));
        assert_ne!(r.status, 200);
        assert_eq!(invokes_of(&mock, "fails-once"), 1);
        // A timeout after the request was sent: never again.
        let r = gw.send(&get("/slow"));
        assert_eq!(r.status, 504);
        assert_eq!(invokes_of(&mock, "slow"), 1);
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn no_retries_unless_asked_and_never_more_than_asked() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let cfg = config(
            &mock,
            &[
                ("throttled-twice", 0, 60_000),
                ("always-throttled", 1, 60_000),
            ],
        );
        let gw = one_worker(&mock, &cfg, driver);
        assert_eq!(gw.send(&get("/throttled-twice")).status, 429);
        assert_eq!(invokes_of(&mock, "throttled-twice"), 1);
        assert_eq!(gw.send(&get("/always-throttled")).status, 429);
        assert_eq!(invokes_of(&mock, "always-throttled"), 2);
    }
}

#[test]
fn retry_after_is_honoured_within_the_timeout() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = one_worker(
            &mock,
            &config(&mock, &[("throttled-once-wait", 1, 60_000)]),
            driver,
        );
        let started = Instant::now();
        assert_eq!(gw.send(&get("/throttled-once-wait")).status, 200);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited as asked"
        );
        assert_eq!(invokes_of(&mock, "throttled-once-wait"), 2);

        // Asked to wait 1 s with a 500 ms timeout: the throttle is answered, not retried.
        let mock = MockLambda::start();
        let gw = one_worker(
            &mock,
            &config(&mock, &[("throttled-once-wait", 1, 500)]),
            driver,
        );
        let started = Instant::now();
        assert_eq!(gw.send(&get("/throttled-once-wait")).status, 429);
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(invokes_of(&mock, "throttled-once-wait"), 1);
    }
}

#[test]
fn a_failed_tls_handshake_is_retried_on_a_new_connection() {
    for driver in DRIVERS {
        // A listener that accepts and hangs up: every TLS handshake fails, nothing is sent.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        let mock = MockLambda::start();
        let cfg = format!(
            "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/r]\n  plugins: [{{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: f, host: localhost, port: {port}, retries: 2}}}}]\n"
        );
        let gw = one_worker(&mock, &cfg, driver);
        assert_eq!(gw.send(&get("/r")).status, 502);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "{driver:?}: the first try and two retries"
        );
    }
}

#[test]
fn the_retry_budget_caps_a_throttle_storm() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("retry-budget");
        let path = dir.path.join("kong.yml");
        std::fs::write(&path, config(&mock, &[("always-throttled", 5, 60_000)])).expect("write");
        let gw = Gateway::start_admin(
            &mock,
            AdminOptions {
                config_path: path,
                driver,
                env: vec![],
                args: vec!["--workers".into(), "1".into()],
            },
        );
        for _ in 0..40 {
            assert_eq!(gw.send(&get("/always-throttled")).status, 429);
        }
        // Without a budget: 40 × 6 invokes. With it: 40, plus 20% of them (8) as retries.
        assert_eq!(invokes_of(&mock, "always-throttled"), 48, "{driver:?}");
        let scrape = gw.admin_get("/metrics").text();
        assert!(
            scrape.contains("lambda_gateway_invoke_retries_total{result=\"retried\"} 8\n"),
            "{scrape}"
        );
        assert!(
            scrape
                .contains("lambda_gateway_invoke_retries_total{result=\"budget_exhausted\"} 40\n"),
            "{scrape}"
        );
    }
}
