//! The Admin API (issue: "the seed's Step By Step guide works verbatim"): Kong's calls and
//! shapes, live changes under load, durability across SIGKILL, secrets and the token rule.
//! Each gateway runs against the mock Lambda, which verifies every signature.

mod support;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Percent-encodes a form value (the `--data-urlencode` of the guide's curl calls).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A gateway with an empty config (the file does not exist yet), its Lambda endpoint the mock.
fn empty_gateway(mock: &MockLambda, dir: &TempDir, driver: Driver, args: Vec<String>) -> Gateway {
    let env = vec![(
        "AWS_ENDPOINT_URL_LAMBDA",
        format!("https://localhost:{}", mock.addr.port()),
    )];
    Gateway::start_admin(
        mock,
        AdminOptions {
            config_path: dir.path.join("kong.yml"),
            driver,
            env,
            args,
        },
    )
}

/// The guide's three calls, verbatim (form bodies, `paths[1]=`, `config.x=` notation).
fn seed_guide(gw: &Gateway) {
    let r = gw.admin_form(
        "POST",
        "/services",
        "name=lambda1&url=http://localhost:8000",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = gw.admin_form("POST", "/services/lambda1/routes", "paths[1]=/lambda1");
    assert_eq!(r.status, 201, "{}", r.text());
    let body = format!(
        "name=aws-lambda&config.aws_key={}&config.aws_secret={}&config.aws_region=us-east-1&config.function_name=MyLambda",
        enc(SEED_ACCESS_KEY),
        enc(SEED_SECRET_KEY)
    );
    let r = gw.admin_form("POST", "/services/lambda1/plugins", &body);
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn the_seed_step_by_step_guide_works_verbatim() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("guide");
        let gw = empty_gateway(&mock, &dir, driver, vec![]);
        assert_eq!(gw.send(&get("/lambda1")).status, 404);
        seed_guide(&gw);
        let r = gw.send(&get("/lambda1"));
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.body, br#"{"response": "yes"}"#);
        let got = mock.last();
        assert!(got
            .header("authorization")
            .is_some_and(|a| a.contains(&format!("Credential={SEED_ACCESS_KEY}/"))));
        assert!(mock.assert_all_signatures_valid() >= 1);
        // The file is valid declarative config that `check` accepts.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
            .arg("check")
            .arg(&gw.config_path)
            .output()
            .expect("check");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn every_endpoint_and_error_shape() {
    let mock = MockLambda::start();
    let dir = TempDir::new("endpoints");
    let gw = empty_gateway(&mock, &dir, Driver::IoUring, vec![]);

    // GET / and /status.
    let root = gw.admin_get("/").json();
    assert_eq!(
        root["plugins"]["available_on_server"]["aws-lambda"]["priority"],
        750
    );
    assert!(root["version"].is_string() && root["node_id"].is_string());
    let status = gw.admin_get("/status").json();
    assert_eq!(status["database"]["reachable"], true);
    assert!(status["server"]["connections_accepted"].is_u64());

    // Create with form, JSON and multipart bodies; 201 with the whole entity.
    let s1 = gw.admin_form(
        "POST",
        "/services",
        "name=s1&url=https://example.com:8443/base&retries=3&tags[]=a",
    );
    assert_eq!(s1.status, 201, "{}", s1.text());
    let s1 = s1.json();
    assert_eq!(
        (
            s1["protocol"].clone(),
            s1["host"].clone(),
            s1["port"].clone(),
            s1["path"].clone()
        ),
        (
            json!("https"),
            json!("example.com"),
            json!(8443),
            json!("/base")
        )
    );
    assert_eq!(
        (
            s1["retries"].clone(),
            s1["tags"].clone(),
            s1["connect_timeout"].clone()
        ),
        (json!(3), json!(["a"]), json!(60000))
    );
    let s2 = gw.admin_json("POST", "/services", json!({"name": "s2"}));
    assert_eq!(s2.status, 201, "{}", s2.text());
    let mp = "--XX\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ns3\r\n--XX--\r\n";
    let s3 = gw.admin(
        "POST",
        "/services",
        "multipart/form-data; boundary=XX",
        mp,
        &[],
    );
    assert_eq!((s3.status, s3.json()["name"].clone()), (201, json!("s3")));

    // GET by name and by id; 404 shape.
    let id = s1["id"].as_str().expect("id").to_string();
    assert_eq!(gw.admin_get("/services/s1").json()["id"], id.as_str());
    assert_eq!(
        gw.admin_get(&format!("/services/{id}")).json()["name"],
        "s1"
    );
    let nf = gw.admin_get("/services/nope");
    assert_eq!(
        (nf.status, nf.json()),
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(gw.admin_get("/nothing-here").status, 404);
    assert_eq!(gw.admin("DELETE", "/status", "", "", &[]).status, 405);

    // Paging with `next`.
    let page = gw.admin_get("/services?size=2").json();
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    let next = page["next"].as_str().expect("next").to_string();
    let rest = gw.admin_get(&next).json();
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(1));
    assert!(rest["next"].is_null());

    // 409 on a duplicate name.
    let dup = gw.admin_form("POST", "/services", "name=s1");
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.json(),
        json!({"code": 5, "name": "unique constraint violation", "message": "UNIQUE violation detected on '{name=\"s1\"}'", "fields": {"name": "s1"}})
    );

    // 400 schema violations with fields, from the declarative validator's rules.
    let bad = gw.admin_form("POST", "/services/s1/routes", "paths[1]=nope&methods[]=get");
    assert_eq!(bad.status, 400);
    let b = bad.json();
    assert_eq!(
        (b["code"].clone(), b["name"].clone()),
        (json!(2), json!("schema violation"))
    );
    assert_eq!(
        b["fields"]["paths"][0],
        "should start with: / (fixed path) or ~/ (regex path), got \"nope\""
    );
    assert_eq!(
        b["fields"]["methods"][0],
        "expected an upper-case HTTP method like GET, got \"get\""
    );
    let bad = gw.admin_json(
        "POST",
        "/plugins",
        json!({"name": "aws-lambda", "config": {"function_name": "f", "aws_region": "??"}}),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["fields"]["config"]["aws_region"],
        "expected a region like us-east-1, got \"??\""
    );
    let bad = gw.admin_json("POST", "/plugins", json!({"name": "graphql-proxy-cache"}));
    // Every plugin of the registry, from the highest priority.
    let provided: Vec<String> = lambda_gateway::config::plugins::all()
        .iter()
        .map(|p| format!("'{}'", p.name))
        .collect();
    assert_eq!(
        bad.json()["fields"]["name"],
        format!(
            "plugin 'graphql-proxy-cache' not enabled; lambda-gateway provides only {}",
            provided.join(", ")
        )
    );
    assert!(provided.starts_with(&["'correlation-id'".into(), "'cors'".into()]));
    assert_eq!(
        gw.admin_json("POST", "/routes", json!({"paths": ["/x"], "bogus": 1}))
            .json()["fields"]["bogus"],
        "unknown field"
    );
    assert_eq!(
        gw.admin("POST", "/services", "text/plain", "x", &[]).status,
        415
    );
    assert_eq!(
        gw.admin("POST", "/services", "application/json", "{nope", &[])
            .status,
        400
    );

    // Nested forms.
    let r = gw.admin_form(
        "POST",
        "/services/s1/routes",
        "name=r1&paths[]=/one&methods=GET",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["service"]["id"], id.as_str());
    assert_eq!(
        gw.admin_get("/services/s1/routes").json()["data"][0]["name"],
        "r1"
    );
    assert_eq!(
        gw.admin_get("/services/s2/routes").json()["data"],
        json!([])
    );
    assert_eq!(gw.admin_get("/services/s1/routes/r1").json()["name"], "r1");
    assert_eq!(gw.admin_get("/services/s2/routes/r1").status, 404);
    let p = gw.admin_json("POST", "/routes/r1/plugins", json!({"name": "aws-lambda", "config": {"function_name": "echo", "aws_region": "us-east-1", "aws_key": ACCESS_KEY, "aws_secret": SECRET_KEY}}));
    assert_eq!(p.status, 201, "{}", p.text());
    let pid = p.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        gw.admin_get("/routes/r1/plugins").json()["data"][0]["id"],
        pid.as_str()
    );
    assert_eq!(
        gw.admin_get("/services/s1/plugins").json()["data"],
        json!([])
    );
    assert_eq!(
        gw.admin_get(&format!("/plugins/{pid}")).json()["config"]["function_name"],
        "echo"
    );
    assert_eq!(gw.send(&get("/one?x=1")).json(), json!({"x": "1"}));

    // PATCH merges (a plugin's config field by field), PUT replaces or creates.
    let patched = gw.admin_json(
        "PATCH",
        &format!("/plugins/{pid}"),
        json!({"config": {"forward_request_method": true}}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["config"]["function_name"], "echo");
    assert_eq!(
        gw.send(&get("/one")).json(),
        json!({"request_method": "GET"})
    );
    let patched = gw.admin_form("PATCH", "/services/s2", "url=http://other.test:81");
    assert_eq!(
        (
            patched.json()["host"].clone(),
            patched.json()["port"].clone()
        ),
        (json!("other.test"), json!(81))
    );
    let put = gw.admin_json("PUT", "/services/s4", json!({"url": "http://four.test"}));
    assert_eq!((put.status, put.json()["name"].clone()), (200, json!("s4")));
    let put = gw.admin_json("PUT", "/services/s4", json!({"host": "replaced.test"}));
    assert_eq!(
        (
            put.json()["name"].clone(),
            put.json()["host"].clone(),
            put.json()["port"].clone()
        ),
        (json!("s4"), json!("replaced.test"), json!(80))
    );
    // Every PUT by name takes the name from the URL, as Kong's upserts do: nested routes,
    // consumers, and a body naming something else.
    let s4_id = put.json()["id"].clone();
    for body in [
        json!({"paths": ["/put"]}),
        json!({"name": "other", "paths": ["/put2"]}),
    ] {
        let r = gw.admin_json("PUT", "/services/s4/routes/r-put", body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            (r.json()["name"].clone(), r.json()["service"]["id"].clone()),
            (json!("r-put"), s4_id.clone())
        );
    }
    assert_eq!(
        gw.admin_get("/services/s4/routes").json()["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let bob = gw.admin_json("PUT", "/consumers/bob", json!({"custom_id": "b1"}));
    assert_eq!(
        (bob.status, bob.json()["username"].clone()),
        (200, json!("bob"))
    );

    // Consumers and their plugins.
    let c = gw.admin_form("POST", "/consumers", "username=alice&custom_id=a1");
    assert_eq!(c.status, 201);
    assert_eq!(gw.admin_get("/consumers/alice").json()["custom_id"], "a1");
    assert_eq!(
        gw.admin_form("POST", "/consumers", "username=alice").status,
        409
    );
    let cp = gw.admin_json(
        "POST",
        "/consumers/alice/plugins",
        json!({"name": "aws-lambda", "config": {"function_name": "f", "aws_region": "us-east-1"}}),
    );
    assert_eq!(cp.status, 201, "{}", cp.text());
    assert_eq!(
        gw.admin_get("/consumers/alice/plugins").json()["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // DELETE: 204; a service with routes cannot go; deleting a consumer takes its plugins.
    assert_eq!(gw.admin("DELETE", "/services/s1", "", "", &[]).status, 400);
    assert_eq!(
        gw.admin("DELETE", "/consumers/alice", "", "", &[]).status,
        204
    );
    assert_eq!(
        gw.admin_get("/plugins").json()["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(gw.admin("DELETE", "/routes/r1", "", "", &[]).status, 204);
    assert_eq!(gw.admin_get("/plugins").json()["data"], json!([]));
    assert_eq!(gw.admin("DELETE", "/services/s1", "", "", &[]).status, 204);
    assert_eq!(gw.admin("DELETE", "/services/s1", "", "", &[]).status, 204);
    assert_eq!(gw.send(&get("/one")).status, 404);

    // GET /config and POST /config (JSON document, form `config=` text, and an invalid one).
    let doc = json!({"_format_version": "3.0", "services": [{"name": "whole", "routes": [{"name": "w", "paths": ["/whole"]}]}],
        "plugins": [{"name": "aws-lambda", "config": {"function_name": "echo", "aws_region": "us-east-1", "aws_key": ACCESS_KEY, "aws_secret": SECRET_KEY}}]});
    let posted = gw.admin_json("POST", "/config", doc);
    assert_eq!(posted.status, 201, "{}", posted.text());
    assert_eq!(
        posted.json()["services"].as_object().map(|m| m.len()),
        Some(1)
    );
    assert_eq!(gw.send(&get("/whole?y=2")).json(), json!({"y": "2"}));
    let yaml = "_format_version: \"3.0\"\nroutes:\n- {name: y, paths: [/yaml]}\n";
    let posted = gw.admin_form("POST", "/config", &format!("config={}", enc(yaml)));
    assert_eq!(posted.status, 201, "{}", posted.text());
    assert_eq!(gw.send(&get("/whole")).status, 404);
    let got = gw.admin_get("/config").json();
    assert!(got["config"].as_str().is_some_and(|c| c.contains("/yaml")));
    let invalid = gw.admin_form(
        "POST",
        "/config",
        &format!(
            "config={}",
            enc("_format_version: \"3.0\"\nroutes:\n- {paths: [nope]}\n")
        ),
    );
    assert_eq!(invalid.status, 400);
    let i = invalid.json();
    assert_eq!(
        (i["code"].clone(), i["name"].clone()),
        (json!(14), json!("invalid declarative configuration"))
    );
    assert!(i["fields"]["routes"][0]["paths"][0].is_string(), "{i}");
    assert_eq!(
        gw.send(&get("/yaml")).status,
        502,
        "an invalid POST /config changes nothing"
    );

    // GET /metrics in Prometheus text.
    let m = gw.admin_get("/metrics");
    assert_eq!(
        m.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        m.text()
            .contains("# TYPE lambda_gateway_http_responses_total counter"),
        "{}",
        m.text()
    );
    assert!(m
        .text()
        .contains("lambda_gateway_http_responses_total{class=\"2xx\"}"));
    mock.assert_all_signatures_valid();
}

#[test]
fn changes_under_keep_alive_load_fail_no_request() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("live");
        let gw = empty_gateway(&mock, &dir, driver, vec![]);
        seed_guide(&gw);
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let addr = gw.addr;
        let mut loaders = Vec::new();
        for _ in 0..3 {
            let (stop, ok) = (stop.clone(), ok.clone());
            loaders.push(std::thread::spawn(move || -> Result<(), String> {
                let mut c = Client::connect(addr);
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    c.send_raw(get("/lambda1").as_bytes());
                    let r = c.read_response().ok_or("connection dropped")?;
                    // The plugin's function changes between MyLambda and echo; both answer 200.
                    if r.status != 200 {
                        return Err(format!("status {}: {}", r.status, r.text()));
                    }
                    ok.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            }));
        }
        let plugin_id = gw.admin_get("/plugins").json()["data"][0]["id"]
            .as_str()
            .expect("plugin")
            .to_string();
        for i in 0..15 {
            let r = gw.admin_form(
                "POST",
                "/services/lambda1/routes",
                &format!("name=extra{i}&paths[]=/extra{i}"),
            );
            assert_eq!(r.status, 201);
            let function = if i % 2 == 0 { "echo" } else { "MyLambda" };
            let r = gw.admin_json(
                "PATCH",
                &format!("/plugins/{plugin_id}"),
                json!({"config": {"function_name": function}}),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let r = gw.admin_json("POST", &format!("/routes/extra{i}/plugins"), json!({"name": "aws-lambda", "config": {"function_name": "echo", "aws_region": "us-east-1", "aws_key": ACCESS_KEY, "aws_secret": SECRET_KEY}}));
            assert_eq!(r.status, 201, "{}", r.text());
            assert_eq!(
                gw.send(&get(&format!("/extra{i}?n={i}"))).json(),
                json!({"n": i.to_string()})
            );
            assert_eq!(
                gw.admin("DELETE", &format!("/routes/extra{i}"), "", "", &[])
                    .status,
                204
            );
            // Removed means removed: the change does what it says.
            assert_eq!(gw.send(&get(&format!("/extra{i}"))).status, 404);
        }
        stop.store(true, Ordering::SeqCst);
        for l in loaders {
            l.join()
                .expect("loader thread")
                .unwrap_or_else(|e| panic!("{driver:?}: a request failed during changes: {e}"));
        }
        assert!(
            ok.load(Ordering::SeqCst) > 30,
            "only {} requests ran",
            ok.load(Ordering::SeqCst)
        );
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn acknowledged_changes_survive_sigkill() {
    let mock = MockLambda::start();
    let dir = TempDir::new("durable");
    let mut gw = empty_gateway(&mock, &dir, Driver::IoUring, vec![]);
    seed_guide(&gw);
    let mut created = Vec::new();
    for i in 0..10 {
        let r = gw.admin_form(
            "POST",
            "/services/lambda1/routes",
            &format!("name=r{i}&paths[]=/r{i}"),
        );
        assert_eq!(r.status, 201);
        created.push(r.json()["id"].as_str().expect("id").to_string());
    }
    let last = gw.admin_json("PATCH", "/routes/r9", json!({"paths": ["/r9-changed"]}));
    assert_eq!(last.status, 200);
    // No shutdown, no flush: the process is gone right after the last acknowledgement.
    gw.kill9();
    let gw = empty_gateway(&mock, &dir, Driver::IoUring, vec![]);
    for (i, id) in created.iter().enumerate() {
        let r = gw.admin_get(&format!("/routes/{id}"));
        assert_eq!(r.status, 200, "route r{i} lost");
        assert_eq!(r.json()["name"], format!("r{i}").as_str());
    }
    assert_eq!(
        gw.admin_get("/routes/r9").json()["paths"],
        json!(["/r9-changed"])
    );
    assert_eq!(gw.send(&get("/lambda1")).body, br#"{"response": "yes"}"#);
    mock.assert_all_signatures_valid();
}

#[test]
fn secrets_never_leave_and_the_token_rule_holds() {
    let mock = MockLambda::start();
    let dir = TempDir::new("secrets");
    let gw = empty_gateway(&mock, &dir, Driver::IoUring, vec![]);
    seed_guide(&gw);
    let secret_forms = [
        SEED_SECRET_KEY.to_string(),
        enc(SEED_SECRET_KEY),
        SEED_ACCESS_KEY.to_string(),
        enc(SEED_ACCESS_KEY),
    ];
    let plugin_id = gw.admin_get("/plugins").json()["data"][0]["id"]
        .as_str()
        .expect("plugin")
        .to_string();
    let mut seen = Vec::new();
    for path in [
        "/plugins",
        &format!("/plugins/{plugin_id}"),
        "/services/lambda1/plugins",
        "/config",
        "/",
    ] {
        seen.push((path.to_string(), gw.admin_get(path).text()));
    }
    let one = gw.admin_get(&format!("/plugins/{plugin_id}")).json();
    assert_eq!(one["config"]["aws_secret"], "<redacted>");
    assert_eq!(one["config"]["aws_key"], "AKIA**********");
    // A GET → PUT round trip keeps the stored secret: invokes still sign correctly.
    let mut entity = one.clone();
    entity["config"]["timeout"] = json!(5000);
    let put = gw.admin_json("PUT", &format!("/plugins/{plugin_id}"), entity);
    assert_eq!(put.status, 200, "{}", put.text());
    seen.push(("PUT".into(), put.text()));
    assert_eq!(gw.send(&get("/lambda1")).status, 200);
    mock.assert_all_signatures_valid();
    // POST /config answers with the entities too.
    let doc = json!({"_format_version": "3.0", "plugins": [{"name": "aws-lambda", "config": {"function_name": "f", "aws_region": "us-east-1", "aws_key": SEED_ACCESS_KEY, "aws_secret": SEED_SECRET_KEY}}]});
    seen.push((
        "POST /config".into(),
        gw.admin_json("POST", "/config", doc).text(),
    ));
    std::thread::sleep(Duration::from_millis(200));
    seen.push(("logs".into(), gw.logs()));
    for (where_, text) in &seen {
        for s in &secret_forms {
            assert!(!text.contains(s.as_str()), "{where_} shows {s:?}:\n{text}");
        }
    }

    // Token: required when set, through either header.
    let dir2 = TempDir::new("token");
    let gw = empty_gateway(
        &mock,
        &dir2,
        Driver::IoUring,
        vec!["--admin-token".into(), "s3cret-token".into()],
    );
    let denied = gw.admin_get("/services");
    assert_eq!(
        (denied.status, denied.json()),
        (401, json!({"message": "Unauthorized"}))
    );
    assert_eq!(
        gw.admin("GET", "/services", "", "", &[("Kong-Admin-Token", "wrong")])
            .status,
        401
    );
    assert_eq!(
        gw.admin(
            "GET",
            "/services",
            "",
            "",
            &[("Kong-Admin-Token", "s3cret-token")]
        )
        .status,
        200
    );
    assert_eq!(
        gw.admin(
            "GET",
            "/",
            "",
            "",
            &[("Authorization", "Bearer s3cret-token")]
        )
        .status,
        200
    );
    let blocked = gw.admin_form("POST", "/services", "name=x");
    assert_eq!(blocked.status, 401);
    assert_eq!(
        gw.admin(
            "GET",
            "/services",
            "",
            "",
            &[("Kong-Admin-Token", "s3cret-token")]
        )
        .json()["data"],
        json!([])
    );

    // A non-loopback admin address without a token is refused at start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .args([
            "--config",
            "/nonexistent/kong.yml",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .env_remove("LAMBDA_GATEWAY_ADMIN_TOKEN")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-token"));
}

#[test]
fn the_file_stays_valid_json_when_it_is_json() {
    let mock = MockLambda::start();
    let dir = TempDir::new("json");
    let path = dir.path.join("kong.json");
    std::fs::write(
        &path,
        r#"{"_format_version": "3.0", "services": [{"name": "j"}]}"#,
    )
    .expect("write");
    let env = vec![(
        "AWS_ENDPOINT_URL_LAMBDA",
        format!("https://localhost:{}", mock.addr.port()),
    )];
    let gw = Gateway::start_admin(
        &mock,
        AdminOptions {
            config_path: path.clone(),
            driver: Driver::IoUring,
            env,
            args: vec![],
        },
    );
    assert_eq!(
        gw.admin_form("POST", "/services/j/routes", "paths[]=/j")
            .status,
        201
    );
    let written: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("still JSON");
    assert_eq!(written["routes"][0]["paths"], json!(["/j"]));
}
