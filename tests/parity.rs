//! What a Kong user, an operator or a tool written for Kong would trip on, each checked from
//! outside against a real gateway process: the Admin API's order of checks (schema before
//! uniqueness), `GET /`'s plugin lists, `?tags=` on lists, vault references, decK's
//! `check_hash` and `flatten_errors`, refused requests in the log and the metrics, a wrong
//! `--config` path, and the command line's messages. Kong's behaviour is quoted where a test
//! asserts it.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

/// A gateway with its Admin API over `config` (written to a fresh directory).
fn admin_gateway(mock: &MockLambda, config: &str, driver: Driver) -> (Gateway, TempDir) {
    let dir = TempDir::new("parity");
    let gw = Gateway::start_admin_with(mock, config, driver, &dir);
    (gw, dir)
}

fn plugin_yaml(mock: &MockLambda, function: &str) -> String {
    format!(
        "{{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: {function}, host: localhost, port: {}}}}}",
        mock.addr.port()
    )
}

/// Kong validates an entity's schema before anything else: `DAO:insert` runs
/// `schema:validate_insert` and answers `400 schema violation`; only an entity that passes
/// reaches the database, whose unique index answers `409 unique constraint violation`.
#[test]
fn the_schema_is_checked_before_uniqueness() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let config = format!(
            "_format_version: \"3.0\"\nservices:\n- name: s\n  routes: [{{name: r, paths: [/r]}}]\n  plugins: [{}]\n",
            plugin_yaml(&mock, "echo")
        );
        let (gw, _dir) = admin_gateway(&mock, &config, driver);
        // A second aws-lambda plugin on the service with an invalid field.
        let r = gw.admin_form(
            "POST",
            "/services/s/plugins",
            "name=aws-lambda&config.function_name=f&config.invocation_type=Sometimes",
        );
        assert_eq!(r.status, 400, "{driver:?}: {}", r.text());
        let body = r.json();
        assert_eq!(body["name"], "schema violation");
        assert!(
            body["fields"]["config"]["invocation_type"].is_string(),
            "{body}"
        );
        // The same plugin, valid: now the clash.
        let r = gw.admin_form(
            "POST",
            "/services/s/plugins",
            "name=aws-lambda&config.function_name=f",
        );
        assert_eq!(r.status, 409, "{}", r.text());
        assert_eq!(r.json()["name"], "unique constraint violation");
        // A duplicate name with a bad field, created and replaced: the field.
        let r = gw.admin_json(
            "POST",
            "/services",
            json!({"name": "s", "url": "http://x", "colour": "blue"}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["fields"]["colour"], "unknown field");
        let r = gw.admin_form("POST", "/routes", "name=r2&paths[]=/r2");
        assert_eq!(r.status, 201, "{}", r.text());
        // By id: a PUT by name would take the URL's name (Kong's upsert by endpoint key).
        let r2 = format!("/routes/{}", r.json()["id"].as_str().expect("id"));
        for method in ["PATCH", "PUT"] {
            let r = gw.admin_json(
                method,
                &r2,
                json!({"name": "r", "paths": ["/r2"], "methods": ["get"]}),
            );
            assert_eq!(r.status, 400, "{method}: {}", r.text());
            assert!(r.json()["fields"]["methods"].is_array(), "{}", r.text());
            let r = gw.admin_json(method, &r2, json!({"name": "r", "paths": ["/r2"]}));
            assert_eq!(r.status, 409, "{method}: {}", r.text());
        }
        // POST /config: the entity with a schema error is told that, not the clash.
        let r = gw.admin_json(
            "POST",
            "/config",
            json!({"_format_version": "3.0", "services": [{"name": "a", "url": "http://a"}, {"name": "a", "url": "http://b", "colour": 1}]}),
        );
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json()["fields"],
            json!({"services": [null, {"colour": "unknown field"}]})
        );
    }
}

/// Kong's `GET /` lists every plugin the node can run, `{version, priority}` each
/// (`available_on_server`), and the distinct names of the plugins configured
/// (`enabled_in_cluster`); decK reads both.
#[test]
fn the_node_information_lists_every_plugin() {
    let mock = MockLambda::start();
    let config = format!(
        "_format_version: \"3.0\"\nroutes:\n- {{name: r, paths: [/r], plugins: [{{name: key-auth}}, {{name: cors, enabled: false}}]}}\nplugins: [{}, {{name: key-auth}}]\n",
        plugin_yaml(&mock, "echo")
    );
    let (gw, _dir) = admin_gateway(&mock, &config, Driver::IoUring);
    let node = gw.admin_get("/").json();
    let available = node["plugins"]["available_on_server"]
        .as_object()
        .expect("available_on_server");
    let expected = [
        ("correlation-id", 100001),
        ("cors", 2000),
        ("jwt", 1450),
        ("key-auth", 1250),
        ("ip-restriction", 990),
        ("request-size-limiting", 951),
        ("acl", 950),
        ("rate-limiting", 910),
        ("aws-lambda", 750),
        ("prometheus", 13),
        ("request-termination", 2),
    ];
    // Every plugin of the registry, with its priority; Kong's for these.
    let registry = lambda_gateway::config::plugins::all();
    assert_eq!(available.len(), registry.len(), "{available:?}");
    for spec in registry {
        assert_eq!(
            available[spec.name]["priority"], spec.priority,
            "{}",
            spec.name
        );
        assert!(available[spec.name]["version"].is_string(), "{}", spec.name);
    }
    for (name, priority) in expected {
        assert_eq!(available[name]["priority"], priority, "{name}");
    }
    let mut enabled: Vec<&str> = node["plugins"]["enabled_in_cluster"]
        .as_array()
        .expect("enabled_in_cluster")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    enabled.sort_unstable();
    assert_eq!(enabled, ["aws-lambda", "cors", "key-auth"]);
}

/// Kong (`spec/02-integration/04-admin_api/14-tags_spec.lua`): `?tags=a,b` lists what has all
/// of them, `?tags=a/b` what has any; a mix, or a tag with another character, is
/// `400 invalid option (tags: invalid filter syntax)`; `next` keeps the filter.
#[test]
fn lists_are_filtered_by_tags() {
    let mock = MockLambda::start();
    let config = "_format_version: \"3.0\"\nservices:\n- {name: a, url: \"http://a\", tags: [team-a, prod]}\n- {name: b, url: \"http://b\", tags: [team-a]}\n- {name: c, url: \"http://c\", tags: [team-b]}\n- {name: d, url: \"http://d\"}\n";
    let (gw, _dir) = admin_gateway(&mock, config, Driver::IoUring);
    let names = |query: &str| -> Vec<String> {
        let r = gw.admin_get(&format!("/services{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let mut names: Vec<String> = r.json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(""), ["a", "b", "c", "d"]);
    assert_eq!(names("?tags=team-a"), ["a", "b"]);
    assert_eq!(names("?tags=team-a,prod"), ["a"]);
    assert_eq!(names("?tags=team-a%2Cprod"), ["a"]);
    assert_eq!(names("?tags=prod/team-b"), ["a", "c"]);
    assert!(names("?tags=nobody").is_empty());
    for bad in ["a,b/c", "a/b,c", "foo%20bar", "foo@bar", "a,,b"] {
        let r = gw.admin_get(&format!("/services?tags={bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(
            r.json()["message"],
            "invalid option (tags: invalid filter syntax)"
        );
    }
    let page = gw.admin_get("/services?tags=team-a&size=1").json();
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let next = page["next"].as_str().expect("next");
    assert!(next.contains("tags=team-a"), "{next}");
    let second = gw.admin_get(next).json();
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    assert!(second["next"].is_null());
}

/// Kong's `env` vault (`kong/vaults/env`): `{vault://env/name}` is variable `NAME` (`-` read
/// as `_`), `{vault://env/name/key}` a key of the JSON it holds. The secret is used, the
/// reference is what the Admin API shows and the file keeps.
#[test]
fn vault_references_are_resolved_and_never_shown() {
    let mock = MockLambda::start();
    let config = format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials: [{{key: "{{vault://env/alice-key}}"}}]
routes:
- name: r
  paths: [/r]
  plugins: [{{name: key-auth}}]
plugins:
- name: aws-lambda
  config: {{aws_key: "{{vault://env/lambda-creds/key}}", aws_secret: "{{vault://env/lambda-creds/secret}}", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}
"#,
        mock.addr.port()
    );
    let dir = TempDir::new("vault");
    let path = dir.path.join("kong.yml");
    std::fs::write(&path, &config).expect("write");
    let creds = json!({"key": ACCESS_KEY, "secret": SECRET_KEY}).to_string();
    let gw = Gateway::start_admin(
        &mock,
        AdminOptions {
            config_path: path.clone(),
            driver: Driver::IoUring,
            env: vec![
                ("LAMBDA_CREDS", creds),
                ("ALICE_KEY", "alice-secret-key".into()),
                ("RELAY_SECRET", "relay-secret-value".into()),
            ],
            args: vec![],
        },
    );
    // The resolved key lets alice in; the resolved AWS keys sign (the mock checks them).
    let r = gw.send("GET /r HTTP/1.1\r\nHost: h\r\napikey: alice-secret-key\r\n\r\n");
    assert_eq!(r.status, 200, "{}", gw.logs());
    mock.assert_all_signatures_valid();
    let plugin = gw.admin_get("/plugins").json()["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|p| p["name"] == "aws-lambda")
        .cloned()
        .expect("aws-lambda");
    assert_eq!(
        plugin["config"]["aws_key"],
        "{vault://env/lambda-creds/key}"
    );
    assert_eq!(
        plugin["config"]["aws_secret"],
        "{vault://env/lambda-creds/secret}"
    );
    let keys = gw.admin_get("/consumers/alice/key-auth").json();
    assert_eq!(keys["data"][0]["key"], "{vault://env/alice-key}");
    // Through the Admin API, and written to the file as the reference.
    let r = gw.admin_form(
        "POST",
        "/consumers/alice/jwt",
        "key=relay&secret=%7Bvault%3A%2F%2Fenv%2Frelay-secret%7D",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["secret"], "{vault://env/relay-secret}");
    let file = std::fs::read_to_string(&path).expect("read");
    assert!(file.contains("{vault://env/relay-secret}"), "{file}");
    for secret in ["relay-secret-value", "alice-secret-key", SECRET_KEY] {
        assert!(!file.contains(secret), "{secret} in {file}");
        assert!(!gw.logs().contains(secret), "{secret} logged");
    }
    // A reference to a variable that is not set: refused, naming the field.
    let r = gw.admin_form(
        "PATCH",
        &format!("/plugins/{}", plugin["id"].as_str().expect("id")),
        "config.aws_assume_role_arn=%7Bvault%3A%2F%2Fenv%2Fno-such-role%7D",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"]["aws_assume_role_arn"],
        "{vault://env/no-such-role} refers to environment variable NO_SUCH_ROLE, which is not set"
    );
    // And `check` says the same of a file.
    let bad = dir.path.join("bad.yml");
    std::fs::write(
        &bad,
        "_format_version: \"3.0\"\nplugins:\n- {name: aws-lambda, config: {function_name: f, aws_region: us-east-1, aws_assume_role_arn: \"{vault://env/unset-role}\"}}\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .arg("check")
        .arg(&bad)
        .env_remove("UNSET_ROLE")
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "plugins[0].config.aws_assume_role_arn: {vault://env/unset-role} refers to environment variable UNSET_ROLE, which is not set\n"
    );
}

/// decK's database-less sync (`POST /config?check_hash=1`): Kong answers 304 when the
/// configuration sent hashes as the one in force (`kong/api/routes/config.lua`), so decK
/// skips no-op pushes.
#[test]
fn check_hash_skips_the_configuration_in_force() {
    let mock = MockLambda::start();
    let config = one_route_config(&mock);
    let (gw, _dir) = admin_gateway(&mock, &config, Driver::IoUring);
    let post = |query: &str, text: &str| {
        let body = json!({ "config": text }).to_string();
        gw.admin(
            "POST",
            &format!("/config{query}"),
            "application/json",
            &body,
            &[],
        )
    };
    // The file the gateway started from, sent back: nothing to do.
    let r = post("?check_hash=1", &config);
    assert_eq!(r.status, 304, "{}", r.text());
    assert!(r.body.is_empty());
    assert!(!gw.logged("POST /config"), "{}", gw.logs());
    let changed = config.replace("paths: [/r]", "paths: [/r, /r2]");
    assert_eq!(post("?check_hash=1", &changed).status, 201);
    assert_eq!(post("?check_hash=1", &changed).status, 304);
    // Without the option, or after another change, it loads.
    assert_eq!(post("", &changed).status, 201);
    let r = gw.admin_form("POST", "/routes", "name=other&paths[]=/o");
    assert_eq!(r.status, 201);
    assert_eq!(post("?check_hash=1", &changed).status, 201);
    assert_eq!(gw.send(&get("/o")).status, 404);
    // `GET /status` shows the hash of what is in force.
    let hash = gw.admin_get("/status").json()["configuration_hash"]
        .as_str()
        .map(str::to_string)
        .expect("hash");
    assert_eq!(hash.len(), 32);
    assert_eq!(post("?check_hash=1", &changed).status, 304);
    assert_eq!(gw.admin_get("/status").json()["configuration_hash"], hash);
}

/// `POST /config?flatten_errors=1`: Kong's `flattened_errors`, one entry per failing entity
/// of the document as sent, with the shape of Kong's own spec
/// (`spec/02-integration/04-admin_api/15-off_spec.lua`, "sanity"): `entity_type` singular,
/// `entity_name`/`entity_id`/`entity_tags` only when valid, the entity without its nested
/// entities, `errors` of `type` `field` (dotted path, lists from 1) or `entity`.
#[test]
fn flatten_errors_lists_each_failing_entity() {
    let mock = MockLambda::start();
    let (gw, _dir) = admin_gateway(&mock, &one_route_config(&mock), Driver::IoUring);
    let service_id = "0a4a6ac2-5b5f-4a3b-9d37-4f1b1c2d3e4f";
    let input = json!({
        "_format_version": "3.0",
        "consumers": [
            {"username": "valid_user", "tags": ["consumer-01"]},
            {"username": "bobby_in_json_body", "not_allowed": true, "tags": ["consumer-02"]},
        ],
        "services": [{
            "id": service_id,
            "name": "nope",
            "url": "http://localhost:1234",
            "tags": ["service-01"],
            "routes": [
                {"name": "valid.route", "paths": ["/ok"], "tags": ["route_service-01", "service-01"]},
                {"name": "nope.route", "paths": ["nope"], "tags": ["route_service-02", "service-01"]},
            ],
        }, {
            "name": "",
            "url": "https://localhost:1234",
            "tags": ["service-02", "invalid_service_name-01"],
        }],
        "plugins": [{"name": "aws-lambda", "config": {"function_name": "f", "timeout": "soon"}, "tags": ["global_plugin-01"]}],
    });
    let r = gw.admin_json("POST", "/config?flatten_errors=1", input.clone());
    assert_eq!(r.status, 400, "{}", r.text());
    let body = r.json();
    assert_eq!(body["code"], 14);
    assert_eq!(body["name"], "invalid declarative configuration");
    let mut flattened = body["flattened_errors"]
        .as_array()
        .expect("flattened_errors")
        .clone();
    flattened.sort_by_key(|e| e["entity_tags"][0].as_str().unwrap_or("").to_string());
    assert_eq!(
        flattened,
        [
            json!({
                "entity_type": "consumer",
                "entity_tags": ["consumer-02"],
                "entity": {"username": "bobby_in_json_body", "not_allowed": true, "tags": ["consumer-02"]},
                "errors": [{"type": "field", "field": "not_allowed", "message": "unknown field"}],
            }),
            json!({
                "entity_type": "plugin",
                "entity_name": "aws-lambda",
                "entity_tags": ["global_plugin-01"],
                "entity": {"name": "aws-lambda", "config": {"function_name": "f", "timeout": "soon"}, "tags": ["global_plugin-01"]},
                "errors": [{"type": "field", "field": "config.timeout", "message": "expected an integer, got \"soon\""}],
            }),
            json!({
                "entity_type": "route",
                "entity_name": "nope.route",
                "entity_tags": ["route_service-02", "service-01"],
                "entity": {"name": "nope.route", "paths": ["nope"], "tags": ["route_service-02", "service-01"], "service": {"id": service_id}},
                "errors": [{"type": "field", "field": "paths.1", "message": "should start with: / (fixed path) or ~/ (regex path), got \"nope\""}],
            }),
            json!({
                "entity_type": "service",
                "entity_tags": ["service-02", "invalid_service_name-01"],
                "entity": {"name": "", "url": "https://localhost:1234", "tags": ["service-02", "invalid_service_name-01"]},
                "errors": [{"type": "field", "field": "name", "message": "invalid name \"\": use letters, digits, '.', '-', '_' or '~'"}],
            }),
        ]
    );
    // Every error went into an entry: nothing is left at the top.
    assert_eq!(body["fields"], json!({}));
    // Without the option, Kong's nested `fields` only.
    let r = gw.admin_json("POST", "/config", input);
    assert!(r.json().get("flattened_errors").is_none());
    assert!(r.json()["fields"]["consumers"].is_array());
}

/// Every answer is one access-log line and one count, as nginx logs every request Kong
/// answers, the ones refused before routing included (route and service empty).
#[test]
fn refused_requests_are_logged_and_counted() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("refused");
        let log = dir.path.join("access.log");
        let config_path = dir.path.join("kong.yml");
        std::fs::write(&config_path, one_route_config(&mock)).expect("write");
        let gw = Gateway::start_admin(
            &mock,
            AdminOptions {
                config_path,
                driver,
                env: vec![],
                args: vec!["--access-log".into(), log.display().to_string()],
            },
        );
        assert_eq!(gw.send("GARBAGE\r\n\r\n").status, 400);
        assert_eq!(
            gw.send(
                "GET /r HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"
            )
            .status,
            400,
            "two lengths"
        );
        let big = format!(
            "GET /r HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
            "a".repeat(40_000)
        );
        assert_eq!(gw.send(&big).status, 431);
        assert_eq!(gw.send(&get("/r?ok=1")).status, 200);
        let seen = json_lines(&log, 4);
        // Two workers write their own lines: in any order.
        let mut statuses: Vec<u64> = seen
            .iter()
            .filter_map(|l| l["response"]["status"].as_u64())
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400, 400, 431], "{driver:?}: {seen:?}");
        for line in seen.iter().filter(|l| l["response"]["status"] != 200) {
            assert!(line.get("route").is_none() && line.get("service").is_none());
            assert_eq!(line["client_ip"], "127.0.0.1");
        }
        let scrape = gw.admin_get("/metrics").text();
        for series in [
            r#"kong_http_requests_total{service="",route="",code="400",source="error",workspace="default",consumer=""} 2"#,
            r#"kong_http_requests_total{service="",route="",code="431",source="error",workspace="default",consumer=""} 1"#,
            r#"lambda_gateway_http_responses_total{class="4xx"} 3"#,
        ] {
            assert!(scrape.contains(series), "{driver:?}: {series} in\n{scrape}");
        }
    }
}

/// The access log's `url` keeps the port the client addressed (Kong's log serializer writes
/// `scheme://host:port/uri`).
#[test]
fn the_access_log_url_keeps_the_port() {
    let mock = MockLambda::start();
    let dir = TempDir::new("url-port");
    let log = dir.path.join("access.log");
    let gw = Gateway::start_with(
        &mock,
        GatewayOptions {
            config: &one_route_config(&mock),
            driver: Driver::IoUring,
            env: vec![],
            args: vec!["--access-log".into(), log.display().to_string()],
        },
    );
    let r = gw.send("GET /r?x=1 HTTP/1.1\r\nHost: api.test:8443\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(
        json_lines(&log, 1)[0]["request"]["url"],
        "http://api.test:8443/r"
    );
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .args(args)
        .env("LAMBDA_GATEWAY_LOG", "warn")
        .output()
        .expect("run")
}

/// Kong refuses to start on a declarative file that is missing; here a missing file is fine
/// where the Admin API can create it, and a path it cannot create is refused with the reason.
#[test]
fn a_config_path_that_cannot_be_created_is_refused() {
    let out = run(&[
        "--config",
        "/nonexistent/dir/kong.yml",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "error: --config /nonexistent/dir/kong.yml: the file does not exist, nor does its directory /nonexistent/dir"
        ),
        "{stderr}"
    );
    let dir = TempDir::new("not-a-dir");
    let file = dir.path.join("plain");
    std::fs::write(&file, "x").expect("write");
    let inside = file.join("kong.yml");
    let out = run(&[
        "--config",
        inside.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
}

#[test]
fn listen_addresses_and_worker_counts_are_checked_with_a_clear_message() {
    let out = run(&["--listen", "8000", "check", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expected HOST:PORT, e.g. 0.0.0.0:8000 (every interface), 127.0.0.1:8000 or localhost:8000; got a port alone (8000)"),
        "{stderr}"
    );
    let out = run(&["--workers", "0", "check", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("at least 1 worker is needed (leave --workers out for one per core)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A host name that resolves is taken.
    let mock = MockLambda::start();
    let port = free_port();
    let gw = Gateway::start_with(
        &mock,
        GatewayOptions {
            config: &one_route_config(&mock),
            driver: Driver::IoUring,
            env: vec![],
            args: vec!["--listen".into(), format!("localhost:{port}")],
        },
    );
    assert_eq!(gw.addr.port(), port);
    assert_eq!(gw.send(&get("/r")).status, 200);
}

/// A port another process listens on is refused naming the flag to change: `--tls-listen`
/// for the HTTPS one.
#[test]
fn a_taken_https_port_names_tls_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = TempDir::new("tls-taken");
    let tls = pki::TlsFiles::generate(&dir.path, "parity CA", &["localhost"]);
    let (cert, key) = (tls.server_cert, tls.server_key);
    let config = dir.path.join("kong.yml");
    std::fs::write(&config, "_format_version: \"3.0\"\n").expect("write");
    let out = run(&[
        "--config",
        config.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "off",
        "--tls-listen",
        &addr,
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        key.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("choose another --tls-listen"), "{stderr}");
    assert!(!stderr.contains("choose another --listen,"), "{stderr}");
}

/// "route r: no enabled aws-lambda plugin applies" is said once per state of the route, not
/// again at every Admin API change elsewhere.
#[test]
fn a_route_warning_is_said_once_per_change_of_the_route() {
    let mock = MockLambda::start();
    let config = "_format_version: \"3.0\"\nroutes:\n- {name: bare, paths: [/bare]}\n";
    let (gw, _dir) = admin_gateway(&mock, config, Driver::IoUring);
    let warning = "route bare: no enabled aws-lambda plugin applies; requests to it get 502";
    let count = || gw.logs().matches(warning).count();
    assert!(gw.logged(warning));
    for i in 0..3 {
        let r = gw.admin_form("POST", "/consumers", &format!("username=u{i}"));
        assert_eq!(r.status, 201);
    }
    assert!(gw.logged("POST /consumers"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(), 1, "{}", gw.logs());
    // The route itself changes: said again, once.
    let r = gw.admin_form("PATCH", "/routes/bare", "paths[]=/bare2");
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(5);
    while count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count(), 2, "{}", gw.logs());
}
