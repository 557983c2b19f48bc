//! The access-phase plugins in front of the function: `cors`, `ip-restriction`,
//! `request-size-limiting`, each with Kong's fields, answers and headers, run in Kong's
//! priority order; a request one of them answers never reaches Lambda. Through the
//! declarative file and through the Admin API with Kong's documented form bodies, on both
//! drivers.

mod support;

use serde_json::json;
use support::*;

/// Routes `/{name}` (function `echo` at the mock), each with the plugins given as YAML flow
/// mappings.
fn config(mock: &MockLambda, routes: &[(&str, &[&str])]) -> String {
    let mut out = format!(
        "_format_version: \"3.0\"\nplugins:\n- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}}}\nroutes:\n",
        mock.addr.port()
    );
    for (name, plugins) in routes {
        out.push_str(&format!("- name: {name}\n  paths: [/{name}]\n  plugins: ["));
        out.push_str(&plugins.join(", "));
        out.push_str("]\n");
    }
    out
}

fn invokes(mock: &MockLambda) -> usize {
    mock.requests().len()
}

#[test]
fn ip_restriction_answers_before_the_function() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let cfg = config(
            &mock,
            &[
                ("allowed", &["{name: ip-restriction, config: {allow: [127.0.0.0/8, \"::1\"]}}"]),
                ("elsewhere", &["{name: ip-restriction, config: {allow: [10.0.0.0/8, \"2001:db8::/32\"]}}"]),
                ("denied", &["{name: ip-restriction, config: {deny: [127.0.0.1], status: 401, message: go away}}"]),
                ("both", &["{name: ip-restriction, config: {allow: [0.0.0.0/0], deny: [127.0.0.0/24]}}"]),
            ],
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let r = gw.send(&get("/allowed?a=1"));
        assert_eq!((r.status, r.json()), (200, json!({"a": "1"})));
        let r = gw.send(&get("/elsewhere"));
        assert_eq!(
            (r.status, r.text()),
            (
                403,
                r#"{"message":"Your IP address is not allowed"}"#.to_string()
            )
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        let r = gw.send(&get("/denied"));
        assert_eq!(
            (r.status, r.text()),
            (401, r#"{"message":"go away"}"#.to_string())
        );
        // Deny wins over allow.
        assert_eq!(gw.send(&get("/both")).status, 403);
        assert_eq!(invokes(&mock), 1, "refused requests never reach Lambda");
    }
}

#[test]
fn request_size_limiting_measures_every_body() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let cfg = config(
            &mock,
            &[
                ("kb", &["{name: request-size-limiting, config: {allowed_payload_size: 1, size_unit: kilobytes}}"]),
                ("needs-length", &["{name: request-size-limiting, config: {require_content_length: true}}"]),
            ],
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let post = |path: &str, body: &[u8], extra: &str| {
            let mut raw = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            raw.extend_from_slice(body);
            gw.connect().request(&raw)
        };
        assert_eq!(post("/kb", &[b'a'; 1024], "").status, 200);
        let r = post("/kb", &[b'a'; 1025], "");
        assert_eq!(
            (r.status, r.text()),
            (
                413,
                r#"{"message":"Request size limit exceeded"}"#.to_string()
            )
        );
        // A chunked body is measured as it arrived.
        let mut chunked =
            b"POST /kb HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked.extend_from_slice(&chunked_body(&[b'a'; 2000], 500));
        assert_eq!(gw.connect().request(&chunked).status, 413);
        let mut chunked =
            b"POST /needs-length HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        chunked.extend_from_slice(&chunked_body(b"small", 5));
        let r = gw.connect().request(&chunked);
        assert_eq!(
            (r.status, r.text()),
            (
                411,
                r#"{"message":"A valid Content-Length header is required"}"#.to_string()
            )
        );
        assert_eq!(post("/needs-length", b"small", "").status, 200);
        assert_eq!(invokes(&mock), 2);
    }
}

#[test]
fn cors_answers_preflights_at_the_edge_and_decorates_answers() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let cfg = config(
            &mock,
            &[
                ("listed", &["{name: cors, config: {origins: [\"http://a.test\", \"https://b.test:8443\"], exposed_headers: [X-Auth-Token], credentials: true, max_age: 3600}}"]),
                ("regex", &["{name: cors, config: {origins: ['.*\\.example\\.com'], methods: [GET, POST]}}"]),
                ("any", &["{name: cors}"]),
                ("continue", &["{name: cors, config: {preflight_continue: true}}"]),
            ],
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let preflight = |path: &str, origin: &str| {
            gw.send(&format!(
                "OPTIONS {path} HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: X-One, X-Two\r\n\r\n"
            ))
        };
        let r = preflight("/listed", "https://b.test:8443");
        assert_eq!((r.status, r.body.len()), (200, 0));
        let h = header_map(&r);
        assert_eq!(h["access-control-allow-origin"], "https://b.test:8443");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-allow-headers"], "X-One, X-Two");
        assert_eq!(
            h["access-control-allow-methods"],
            "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
        );
        assert_eq!(h["access-control-max-age"], "3600");
        assert_eq!(h["vary"], "Origin");
        // An origin not listed: answered, without an allowed origin.
        let r = preflight("/listed", "http://evil.test");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), None);
        let r = preflight("/regex", "https://api.example.com");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://api.example.com")
        );
        assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(
            preflight("/regex", "https://example.org").header("access-control-allow-origin"),
            None
        );
        assert_eq!(invokes(&mock), 0, "preflights never reach Lambda");

        // Other requests reach the function; its answer gets the CORS headers.
        let r = gw.send("GET /listed?x=1 HTTP/1.1\r\nHost: x\r\nOrigin: http://a.test\r\n\r\n");
        assert_eq!((r.status, r.json()), (200, json!({"x": "1"})));
        let h = header_map(&r);
        assert_eq!(h["access-control-allow-origin"], "http://a.test");
        assert_eq!(h["access-control-expose-headers"], "X-Auth-Token");
        assert_eq!(h["access-control-allow-credentials"], "true");
        let r = gw.send(&get("/any"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(invokes(&mock), 2);

        // preflight_continue: the preflight goes on to the function, which answers it.
        let r = preflight("/continue", "http://a.test");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("access-control-max-age"),
            None,
            "not answered at the edge"
        );
        assert_eq!(invokes(&mock), 3);
    }
}

#[test]
fn plugins_run_in_kongs_priority_order() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        // Written in the reverse of their order: cors (2000), ip-restriction (990),
        // request-size-limiting (951).
        let cfg = config(
            &mock,
            &[(
                "all",
                &[
                    "{name: request-size-limiting, config: {allowed_payload_size: 1, size_unit: bytes}}",
                    "{name: ip-restriction, config: {deny: [127.0.0.1]}}",
                    "{name: cors, config: {origins: [\"http://a.test\"]}}",
                ],
            )],
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        // The preflight is answered by cors before ip-restriction looks at the client.
        let r = gw.send("OPTIONS /all HTTP/1.1\r\nHost: x\r\nOrigin: http://a.test\r\nAccess-Control-Request-Method: GET\r\n\r\n");
        assert_eq!(r.status, 200);
        // A denied client with a too-large body: ip-restriction answers before the size
        // check, and cors still adds its header to that answer.
        let r = gw.send("POST /all HTTP/1.1\r\nHost: x\r\nOrigin: http://a.test\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(r.status, 403);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://a.test")
        );
        assert_eq!(invokes(&mock), 0);
    }
}

#[test]
fn kongs_admin_api_examples_configure_each_plugin() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("access-admin");
        let gw = Gateway::start_admin_with(&mock, &config(&mock, &[("r", &[])]), driver, &dir);
        let created = gw.admin_form(
            "POST",
            "/routes/r/plugins",
            "name=cors&config.origins=http://mockbin.com&config.methods=GET&config.methods=POST&config.headers=Accept&config.headers=Content-Type&config.exposed_headers=X-Auth-Token&config.credentials=true&config.max_age=3600",
        );
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(created.json()["config"]["methods"], json!(["GET", "POST"]));
        let r = gw.send("OPTIONS /r HTTP/1.1\r\nHost: x\r\nOrigin: http://mockbin.com\r\nAccess-Control-Request-Method: GET\r\n\r\n");
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("Accept,Content-Type")
        );
        let created = gw.admin_form(
            "POST",
            "/routes/r/plugins",
            "name=request-size-limiting&config.allowed_payload_size=128&config.require_content_length=false",
        );
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(created.json()["config"]["size_unit"], "megabytes");
        let created = gw.admin_form(
            "POST",
            "/routes/r/plugins",
            "name=ip-restriction&config.allow=54.13.21.1&config.allow=143.1.0.0/24",
        );
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(gw.send(&get("/r")).status, 403);
        let id = created.json()["id"].as_str().expect("id").to_string();
        let patched = gw.admin_form("PATCH", &format!("/plugins/{id}"), "config.allow=127.0.0.1");
        assert_eq!(patched.status, 200, "{}", patched.text());
        assert_eq!(gw.send(&get("/r?ok=1")).status, 200);
        let bad = gw.admin_form(
            "POST",
            "/plugins",
            "name=ip-restriction&config.deny=10.0.0.0/33",
        );
        assert_eq!(bad.status, 400);
        assert_eq!(
            bad.json()["fields"]["config"]["deny"][0],
            "expected an IP address or CIDR block, got \"10.0.0.0/33\""
        );
        let bad = gw.admin_form("POST", "/plugins", "name=ip-restriction");
        assert_eq!(bad.status, 400, "{}", bad.text());

        // correlation-id, Kong's example; then asked to echo the id to the client.
        let created = gw.admin_form(
            "POST",
            "/routes/r/plugins",
            "name=correlation-id&config.header_name=Kong-Request-ID&config.generator=uuid#counter&config.echo_downstream=false",
        );
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(created.json()["config"]["generator"], "uuid#counter");
        assert_eq!(gw.send(&get("/r")).header("kong-request-id"), None);
        let id = created.json()["id"].as_str().expect("id").to_string();
        let patched = gw.admin_form(
            "PATCH",
            &format!("/plugins/{id}"),
            "config.echo_downstream=true",
        );
        assert_eq!(patched.status, 200, "{}", patched.text());
        let echoed = gw.send(&get("/r"));
        assert!(echoed
            .header("kong-request-id")
            .is_some_and(|v| v.contains('#')));
    }
}

#[test]
fn correlation_id_tags_the_request_for_the_function_and_the_client() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let cfg = config(
            &mock,
            &[
                (
                    "echoed",
                    &["{name: correlation-id, config: {echo_downstream: true}}"],
                ),
                (
                    "plain",
                    &["{name: correlation-id, config: {header_name: X-Trace, generator: uuid}}"],
                ),
            ],
        )
        .replace("port: ", "forward_request_headers: true, port: ");
        let gw = Gateway::start(&mock, &cfg, driver);
        let mut client = gw.connect();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let r = client.request(get("/echoed").as_bytes());
            assert_eq!(r.status, 200, "{}", r.text());
            let seen = r.json()["request_headers"]["kong-request-id"]
                .as_str()
                .expect("the function sees the id")
                .to_string();
            assert_eq!(r.header("kong-request-id"), Some(seen.as_str()));
            let (uuid, n) = seen.split_once('#').expect("uuid#counter");
            assert_eq!(uuid.len(), 36);
            ids.push((uuid.to_string(), n.parse::<u64>().expect("counter")));
        }
        // One worker served both: the same UUID, the counter moving on.
        assert_eq!(ids[0].0, ids[1].0);
        assert_eq!(ids[1].1, ids[0].1 + 1);
        // A client's own id is kept.
        let r = gw.send("GET /echoed HTTP/1.1\r\nHost: x\r\nKong-Request-ID: mine-1\r\n\r\n");
        assert_eq!(r.json()["request_headers"]["kong-request-id"], "mine-1");
        assert_eq!(r.header("kong-request-id"), Some("mine-1"));
        let r = gw.send(&get("/plain"));
        let id = r.json()["request_headers"]["x-trace"].clone();
        assert_eq!(id.as_str().map(str::len), Some(36));
        assert_eq!(r.header("x-trace"), None, "not echoed unless asked");
    }
}

/// Waits out the last seconds of an hour, so that a test's counts stay in one window.
fn away_from_an_hour_boundary() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    if now % 3600 > 3590 {
        std::thread::sleep(std::time::Duration::from_secs(3600 - now % 3600 + 1));
    }
}

#[test]
fn rate_limiting_holds_for_the_whole_node() {
    for driver in DRIVERS {
        away_from_an_hour_boundary();
        let mock = MockLambda::start();
        let cfg = config(
            &mock,
            &[
                ("rl", &["{name: rate-limiting, config: {hour: 3, day: 5, limit_by: ip}}"]),
                ("tenant", &["{name: rate-limiting, config: {hour: 2, limit_by: header, header_name: X-Tenant, hide_client_headers: true, error_code: 503, error_message: slow down}}"]),
            ],
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        // A new connection per request: both workers serve them, one limit holds.
        let answers: Vec<Response> = (0..6).map(|_| gw.send(&get("/rl"))).collect();
        let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "{driver:?}");
        let h = header_map(&answers[0]);
        assert_eq!(h["ratelimit-limit"], "3");
        assert_eq!(h["ratelimit-remaining"], "2");
        assert_eq!(h["x-ratelimit-limit-hour"], "3");
        assert_eq!(h["x-ratelimit-remaining-hour"], "2");
        assert_eq!(h["x-ratelimit-limit-day"], "5");
        assert_eq!(h["x-ratelimit-remaining-day"], "4");
        let reset: u64 = h["ratelimit-reset"].parse().expect("seconds");
        assert!((1..=3600).contains(&reset), "{reset}");
        assert_eq!(header_map(&answers[2])["ratelimit-remaining"], "0");
        let refused = &answers[3];
        assert_eq!(refused.text(), r#"{"message":"API rate limit exceeded"}"#);
        assert_eq!(header_map(refused)["ratelimit-remaining"], "0");
        assert!(refused.header("retry-after").is_some());
        assert_eq!(
            mock.requests().len(),
            3,
            "refused requests never reach Lambda"
        );

        // By header value, each tenant on its own; headers hidden; Kong's custom answer.
        let tenant = |t: &str| {
            gw.send(&format!(
                "GET /tenant HTTP/1.1\r\nHost: x\r\nX-Tenant: {t}\r\n\r\n"
            ))
        };
        assert_eq!(tenant("a").status, 200);
        assert_eq!(tenant("a").status, 200);
        let r = tenant("a");
        assert_eq!(
            (r.status, r.text()),
            (503, r#"{"message":"slow down"}"#.to_string())
        );
        assert_eq!(r.header("ratelimit-limit"), None);
        assert_eq!(tenant("b").status, 200);
    }
}

#[test]
fn rate_limiting_counts_each_consumer_and_takes_kongs_admin_example() {
    for driver in DRIVERS {
        away_from_an_hour_boundary();
        let mock = MockLambda::start();
        let dir = TempDir::new("rl-admin");
        let cfg = config(&mock, &[("r", &["{name: key-auth}"])]).replace(
            "routes:",
            "consumers:\n- {username: alice, keyauth_credentials: [{key: ka}]}\n- {username: bob, keyauth_credentials: [{key: kb}]}\nroutes:",
        );
        let gw = Gateway::start_admin_with(&mock, &cfg, driver, &dir);
        let created = gw.admin_form(
            "POST",
            "/routes/r/plugins",
            "name=rate-limiting&config.second=5&config.hour=2&config.policy=local",
        );
        assert_eq!(created.status, 400, "{}", created.text());
        let created = gw.admin_form(
            "POST",
            "/routes/r/plugins",
            "name=rate-limiting&config.second=5&config.hour=10000&config.policy=local",
        );
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().expect("id").to_string();
        let patched = gw.admin_json(
            "PATCH",
            &format!("/plugins/{id}"),
            json!({"config": {"second": null, "hour": 2}}),
        );
        assert_eq!(patched.status, 200, "{}", patched.text());
        let as_key = |k: &str| {
            gw.send(&format!(
                "GET /r HTTP/1.1\r\nHost: x\r\napikey: {k}\r\n\r\n"
            ))
            .status
        };
        // limit_by consumer (Kong's default): alice and bob each get two.
        assert_eq!([as_key("ka"), as_key("ka"), as_key("ka")], [200, 200, 429]);
        assert_eq!([as_key("kb"), as_key("kb"), as_key("kb")], [200, 200, 429]);
        // Unidentified requests never reach the limiter: key-auth (1250) runs first.
        assert_eq!(gw.send(&get("/r")).status, 401);
        // `redis` needs a server; `cluster` needs Kong's database.
        let bad = gw.admin_form(
            "POST",
            "/plugins",
            "name=rate-limiting&config.minute=1&config.policy=redis",
        );
        assert_eq!(bad.status, 400);
        assert!(
            bad.text().contains("No redis config provided"),
            "{}",
            bad.text()
        );
        let bad = gw.admin_form(
            "POST",
            "/plugins",
            "name=rate-limiting&config.minute=1&config.policy=cluster",
        );
        assert_eq!(bad.status, 400);
        assert!(
            bad.text().contains("needs Kong's database"),
            "{}",
            bad.text()
        );
        // Kong's Admin API form for the redis policy; the password never comes back.
        let good = gw.admin_form(
            "POST",
            "/plugins",
            "name=rate-limiting&config.minute=100&config.policy=redis&config.redis_host=127.0.0.1&config.redis_password=s3cret",
        );
        assert_eq!(good.status, 201, "{}", good.text());
        assert!(!good.text().contains("s3cret"), "{}", good.text());
    }
}

#[test]
fn a_global_rate_limit_by_service_counts_each_service_apart() {
    for driver in DRIVERS {
        away_from_an_hour_boundary();
        let mock = MockLambda::start();
        let cfg = format!(
            "_format_version: \"3.0\"\nplugins:\n- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}}}\n- {{name: rate-limiting, config: {{hour: 2, limit_by: service}}}}\nservices:\n- name: a\n  routes: [{{name: a1, paths: [/a1]}}, {{name: a2, paths: [/a2]}}]\n- name: b\n  routes: [{{name: b1, paths: [/b1]}}]\n",
            mock.addr.port()
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let statuses = |paths: &[&str]| -> Vec<u16> {
            paths.iter().map(|p| gw.send(&get(p)).status).collect()
        };
        // Service a's two routes share one count; service b has its own.
        assert_eq!(
            statuses(&["/a1", "/a2", "/a1"]),
            [200, 200, 429],
            "{driver:?}"
        );
        assert_eq!(
            statuses(&["/b1", "/b1", "/b1"]),
            [200, 200, 429],
            "{driver:?}"
        );
    }
}
