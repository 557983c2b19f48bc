//! What an operator meets outside the request path: a second instance on a taken port, the
//! config file edited by hand while the Admin API writes it, the demo.

mod support;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Waits up to `limit` for `child` to exit; kills it and fails if it does not.
fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("still running after {limit:?}");
}

fn driver_env(cmd: &mut Command, driver: Driver) {
    cmd.env_remove("MONOIO_FORCE_LEGACY_DRIVER");
    if driver == Driver::Epoll {
        cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
    }
}

#[test]
fn a_second_instance_on_a_taken_port_is_refused_unless_asked() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let config = config_for(&mock, "/x", "echo", "");
        let first = Gateway::start(&mock, &config, driver);
        let port = first.addr.to_string();

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
        cmd.arg("--config")
            .arg(&first.config_path)
            .args(["--listen", &port, "--admin-listen", "off", "--workers", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        driver_env(&mut cmd, driver);
        let mut second = cmd.spawn().expect("spawn");
        let status = exit_within(&mut second, Duration::from_secs(10));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "error: cannot serve on {port}: address already in use by another process \
                 (another lambda-gateway?): stop it, choose another --listen, or pass \
                 --reuse-port to share the port on purpose (a zero-downtime upgrade)"
            )),
            "{stderr}"
        );
        for _ in 0..5 {
            assert_eq!(first.send(&get("/x?n=1")).json(), json!({"n": "1"}));
        }

        // On purpose, the port is shared: both serve it.
        let second = Gateway::start_with(
            &mock,
            GatewayOptions {
                config: &config,
                driver,
                env: vec![],
                args: vec!["--listen".into(), port.clone(), "--reuse-port".into()],
            },
        );
        assert_eq!(second.addr, first.addr);
        for _ in 0..10 {
            assert_eq!(first.send(&get("/x?n=2")).json(), json!({"n": "2"}));
        }
    }
}

#[test]
fn an_admin_write_never_loses_a_hand_edit() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("hand-edit");
        let path = dir.path.join("kong.yml");
        let written = format!("# my comment\n{}", config_for(&mock, "/first", "echo", ""));
        std::fs::write(&path, &written).expect("write");
        let gw = Gateway::start_admin(
            &mock,
            AdminOptions {
                config_path: path.clone(),
                driver,
                env: vec![],
                args: vec![],
            },
        );
        let r = gw.admin_json("POST", "/routes", json!({"name": "a1", "paths": ["/a1"]}));
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(gw.logged("the Admin API rewrote"));
        assert!(gw.logged("admin: POST /routes status=201 id="));
        assert!(gw.logged("name=\"a1\" from 127.0.0.1 (no admin token configured)"));

        // A hand edit, then an Admin change before any SIGHUP: refused, the file untouched.
        let mut edited = std::fs::read_to_string(&path).expect("read");
        edited.push_str("# added by hand\n");
        edited = edited.replace(
            "routes:\n",
            "routes:\n- name: by-hand\n  paths: [/by-hand]\n",
        );
        assert!(edited.contains("by-hand"), "{edited}");
        std::fs::write(&path, &edited).expect("edit");
        let r = gw.admin_json("POST", "/routes", json!({"name": "a2", "paths": ["/a2"]}));
        assert_eq!(r.status, 409, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"message": format!(
                "{} was changed on disk since it was loaded; this change was not applied, so \
                 that the file's own change is not lost: send SIGHUP to load the file (or POST \
                 /config to replace it), then retry",
                path.display()
            )})
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read"), edited);
        assert_eq!(gw.admin_get("/routes/a2").status, 404);

        // Loaded, the hand edit is the base of the next change: both survive.
        gw.hup();
        assert!(gw.logged(&format!("reloaded {}", path.display())));
        let r = gw.admin_json("POST", "/routes", json!({"name": "a2", "paths": ["/a2"]}));
        assert_eq!(r.status, 201, "{}", r.text());
        let file = std::fs::read_to_string(&path).expect("read");
        for name in ["by-hand", "a1", "a2"] {
            assert!(file.contains(name), "{name} missing from:\n{file}");
            assert_eq!(gw.admin_get(&format!("/routes/{name}")).status, 200);
        }
    }
}

/// A gateway with its Admin API over a config file in `dir` (which need not exist).
fn admin_gateway(mock: &MockLambda, dir: &TempDir, file: &str, args: Vec<String>) -> Gateway {
    Gateway::start_admin(
        mock,
        AdminOptions {
            config_path: dir.path.join(file),
            driver: Driver::IoUring,
            env: vec![],
            args,
        },
    )
}

/// A running `lambda-gateway demo` with its Admin API.
struct Demo {
    child: Child,
    proxy: SocketAddr,
    admin: SocketAddr,
}

impl Demo {
    fn start(driver: Driver) -> Demo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
        cmd.args(["demo", "--listen", "127.0.0.1:0", "--workers", "1"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        driver_env(&mut cmd, driver);
        let mut child = cmd.spawn().expect("spawn demo");
        // The log is read to its end (a closed pipe would fail the demo's log writes).
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let after = |marker: &str| addr_after(&line, marker);
                if let Some(a) = after("admin API listening on ") {
                    let _ = tx.send((true, a));
                } else if let Some(a) = after("] listening on ") {
                    let _ = tx.send((false, a));
                }
            }
        });
        let (mut proxy, mut admin) = (None, None);
        while proxy.is_none() || admin.is_none() {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok((true, a)) => admin = Some(a),
                Ok((false, a)) => proxy = Some(a),
                Err(_) => break,
            }
        }
        Demo {
            child,
            proxy: proxy.expect("demo listens"),
            admin: admin.expect("demo's Admin API listens"),
        }
    }

    fn set_invocation_type(&self, kind: &str) {
        let admin = |raw: String| Client::connect(self.admin).request(raw.as_bytes());
        let plugins = admin("GET /plugins HTTP/1.1\r\nHost: a\r\n\r\n".to_string());
        let id = plugins.json()["data"][0]["id"]
            .as_str()
            .expect("plugin id")
            .to_string();
        let body = json!({"config": {"invocation_type": kind}}).to_string();
        let r = admin(format!(
            "PATCH /plugins/{id} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_demo_answers_as_lambda_does() {
    for driver in DRIVERS {
        let demo = Demo::start(driver);
        // A fresh request id for every request, on one connection or many.
        let mut ids = std::collections::HashSet::new();
        let mut same = Client::connect(demo.proxy);
        for i in 0..6 {
            let r = if i % 2 == 0 {
                same.request(get("/lambda1").as_bytes())
            } else {
                Client::connect(demo.proxy).request(get("/lambda1").as_bytes())
            };
            assert_eq!(
                (r.status, r.body.as_slice()),
                (200, &br#"{"response": "yes"}"#[..])
            );
            ids.insert(
                r.header("x-amzn-RequestId")
                    .expect("request id")
                    .to_string(),
            );
        }
        assert_eq!(ids.len(), 6, "{ids:?}");

        demo.set_invocation_type("Event");
        let r = Client::connect(demo.proxy).request(get("/lambda1").as_bytes());
        assert_eq!((r.status, r.body.len()), (202, 0), "{}", r.text());
        demo.set_invocation_type("DryRun");
        let r = Client::connect(demo.proxy).request(get("/lambda1").as_bytes());
        assert_eq!((r.status, r.body.len()), (204, 0), "{}", r.text());
    }
}

/// `lambda-gateway` with `args` and `env` (the AWS variables cleared first).
fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
    cmd.args(args);
    clear_aws_env(&mut cmd);
    cmd.envs(env.iter().copied());
    cmd.output().expect("run")
}

#[test]
fn check_and_serve_refuse_an_unusable_environment() {
    let dir = TempDir::new("env");
    let file = dir.path.join("kong.yml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nservices:\n- name: s\n  routes:\n  - {name: r, paths: [/x]}\n  plugins:\n  - {name: aws-lambda, config: {function_name: f}}\n",
    )
    .expect("write");
    let file = file.to_str().expect("utf-8 path");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let out = run(&["check", file], &[("AWS_REGION", "us east")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "AWS_REGION: expected a region like us-east-1, got \"us east\"\n"
    );
    let out = run(
        &["check", file],
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_CA_BUNDLE", "/nonexistent/ca.pem"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("AWS_CA_BUNDLE: /nonexistent/ca.pem: "),
        "{}",
        text(&out.stdout)
    );
    let out = run(
        &["check", file],
        &[("AWS_ENDPOINT_URL_LAMBDA", "ftp://lambda.test")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("AWS_ENDPOINT_URL_LAMBDA: "));

    // A usable environment: OK, with the route that cannot invoke named plainly.
    let out = run(&["check", file], &[("AWS_REGION", "us-east-1")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stdout),
        format!(
            "warning: route r: the aws-lambda plugin on service \"s\" (function f) cannot invoke: \
             no credentials: set config.aws_key/aws_secret, or credentials the AWS SDKs' way (environment, profile, web identity, container; instance metadata is disabled)\n\
             {file}: OK (1 services, 1 routes, 1 plugins, 0 consumers)\n"
        )
    );

    // Serving refuses to start rather than failing every request.
    let out = run(
        &[
            "--config",
            file,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
        ],
        &[("AWS_REGION", "us east")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "error: the environment cannot be used:\nAWS_REGION: expected a region like us-east-1, got \"us east\""
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_second_plugin_in_one_scope_is_a_conflict() {
    let mock = MockLambda::start();
    let dir = TempDir::new("dup-plugin");
    std::fs::write(
        dir.path.join("kong.yml"),
        config_for(&mock, "/x", "echo", ""),
    )
    .expect("write");
    let gw = admin_gateway(&mock, &dir, "kong.yml", vec![]);
    let route = gw.admin_get("/routes").json()["data"][0].clone();
    let service_id = route["service"]["id"]
        .as_str()
        .expect("service id")
        .to_string();
    // The file's plugin sits on the service: a second aws-lambda plugin there clashes.
    let r = gw.admin_json(
        "POST",
        "/plugins",
        json!({"name": "aws-lambda", "service": {"id": service_id},
               "config": {"function_name": "again", "aws_region": "us-east-1"}}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "code": 5,
            "name": "unique constraint violation",
            "message": format!(
                "UNIQUE violation detected on '{{consumer=null,name=\"aws-lambda\",route=null,service={{id=\"{service_id}\"}}}}'"
            ),
            "fields": {"consumer": null, "name": "aws-lambda", "route": null, "service": {"id": service_id}},
        })
    );
    // The same shape as a duplicate name.
    let name = route["name"].as_str().expect("route name");
    let r = gw.admin_json("POST", "/routes", json!({"name": name, "paths": ["/y"]}));
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json(),
        json!({
            "code": 5,
            "name": "unique constraint violation",
            "message": format!("UNIQUE violation detected on '{{name=\"{name}\"}}'"),
            "fields": {"name": name},
        })
    );
}

#[test]
fn admin_changes_and_refused_tokens_are_logged_without_secrets() {
    let mock = MockLambda::start();
    let dir = TempDir::new("admin-log");
    let token_args = vec!["--admin-token".into(), "s3cret-token".into()];
    let gw = admin_gateway(&mock, &dir, "kong.yml", token_args);
    assert_eq!(gw.admin_get("/routes").status, 401);
    assert!(gw.logged("admin: refused GET /routes from 127.0.0.1: no token"));
    let wrong = gw.admin("GET", "/routes", "", "", &[("Kong-Admin-Token", "guess")]);
    assert_eq!(wrong.status, 401);
    assert!(gw.logged("admin: refused GET /routes from 127.0.0.1: wrong token"));
    let body = r#"{"name":"aws-lambda","config":{"function_name":"f","aws_region":"us-east-1","aws_key":"AKID","aws_secret":"plugin-secret"}}"#;
    let r = gw.admin(
        "POST",
        "/plugins",
        "application/json",
        body,
        &[("Kong-Admin-Token", "s3cret-token")],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert!(gw.logged(&format!(
        "admin: POST /plugins status=201 id=\"{id}\" name=\"aws-lambda\" from 127.0.0.1 (caller presented the admin token)"
    )));
    let logs = gw.logs();
    assert!(
        !logs.contains("plugin-secret")
            && !logs.contains("s3cret-token")
            && !logs.contains("guess")
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mock = MockLambda::start();
    let dir = TempDir::new("json-log");
    let file = dir.path.join("kong.yml");
    std::fs::write(&file, config_for(&mock, "/x", "echo", "")).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .arg("--config")
        .arg(&file)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--workers",
            "1",
        ])
        .args(["--log-format", "json"])
        .env("AWS_CA_BUNDLE", &mock.ca_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.map_while(Result::ok) {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let time = v["time"].as_str().expect("time");
        // 2026-11-29T20:47:54.123Z
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
        assert!(v["level"].is_string() && v["thread"].is_string(), "{line}");
        let listening = v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening on 127.0.0.1:"));
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.last().is_some_and(|l| l.contains("listening on")),
        "{seen:#?}"
    );
}

#[test]
fn kong_tools_can_read_schemas_plugins_and_tags() {
    let mock = MockLambda::start();
    let dir = TempDir::new("schemas");
    let gw = admin_gateway(&mock, &dir, "kong.yml", vec![]);
    let field = |fields: &serde_json::Value, name: &str| {
        fields
            .as_array()
            .and_then(|a| a.iter().find_map(|f| f.get(name).cloned()))
            .unwrap_or_else(|| panic!("no field {name} in {fields}"))
    };
    let schema = gw.admin_get("/schemas/plugins/aws-lambda");
    assert_eq!(schema.status, 200, "{}", schema.text());
    let config = field(&schema.json()["fields"], "config");
    assert_eq!(config["type"], "record");
    assert_eq!(
        field(&config["fields"], "function_name"),
        json!({"type": "string", "required": true})
    );
    assert_eq!(
        field(&config["fields"], "timeout"),
        json!({"type": "integer", "between": [1, 2147483647], "default": 60000})
    );
    assert_eq!(
        field(&config["fields"], "invocation_type"),
        json!({"type": "string", "one_of": ["RequestResponse", "Event", "DryRun"], "default": "RequestResponse"})
    );
    assert_eq!(
        field(&config["fields"], "aws_secret"),
        json!({"type": "string", "encrypted": true, "referenceable": true})
    );
    assert_eq!(
        field(&schema.json()["fields"], "service"),
        json!({"type": "foreign", "reference": "services"})
    );
    assert_eq!(
        gw.admin_get("/schemas/plugins/graphql-proxy-cache").status,
        404
    );
    let services = gw.admin_get("/schemas/services").json();
    assert_eq!(
        field(&services["fields"], "name"),
        json!({"type": "string", "unique": true})
    );
    let names: Vec<&str> = lambda_gateway::config::plugins::all()
        .iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        gw.admin_get("/plugins/enabled").json(),
        json!({ "enabled_plugins": names })
    );

    let ok = gw.admin_json(
        "POST",
        "/schemas/plugins/validate",
        json!({"name": "aws-lambda", "config": {"function_name": "f"}}),
    );
    assert_eq!(
        (ok.status, ok.json()),
        (200, json!({"message": "schema validation successful"}))
    );
    let bad = gw.admin_json(
        "POST",
        "/schemas/plugins/validate",
        json!({"name": "aws-lambda", "config": {"function_name": "f", "aws_region": "mars"}}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(
        bad.json()["fields"],
        json!({"config": {"aws_region": "expected a region like us-east-1, got \"mars\""}})
    );
    let route = gw.admin_json(
        "POST",
        "/schemas/routes/validate",
        json!({"paths": ["nope"]}),
    );
    assert_eq!(route.status, 400);
    assert!(gw.admin_get("/routes").json()["data"]
        .as_array()
        .is_some_and(Vec::is_empty));

    let s = gw.admin_json(
        "POST",
        "/services",
        json!({"name": "t", "host": "t.test", "tags": ["edge", "eu"]}),
    );
    assert_eq!(s.status, 201, "{}", s.text());
    let id = s.json()["id"].clone();
    assert_eq!(
        gw.admin_get("/tags").json()["data"],
        json!([
            {"entity_name": "services", "entity_id": id, "tag": "edge"},
            {"entity_name": "services", "entity_id": id, "tag": "eu"},
        ])
    );
    assert_eq!(
        gw.admin_get("/tags/eu").json()["data"],
        json!([{"entity_name": "services", "entity_id": id, "tag": "eu"}])
    );
}

#[test]
fn a_plugin_that_cannot_invoke_is_logged_like_every_failure() {
    let mock = MockLambda::start();
    let config = "_format_version: \"3.0\"\nservices:\n- name: s\n  routes:\n  - {name: r, paths: [/x]}\n  plugins:\n  - {name: aws-lambda, config: {function_name: f, aws_region: us-east-1}}\n";
    for driver in DRIVERS {
        let gw = Gateway::start(&mock, config, driver);
        assert!(gw.logged(
            "route r: the aws-lambda plugin on service \"s\" (function f) cannot invoke: no credentials"
        ));
        let r = gw.send(&get("/x"));
        assert_eq!(
            (r.status, r.json()),
            (500, json!({"message": "An unexpected error occurred"}))
        );
        assert!(
            gw.logged("route=r function=f status=500 cause=\"no credentials: set config.aws_key/aws_secret, or credentials the AWS SDKs' way (environment, profile, web identity, container; instance metadata is disabled)\" side=internal"),
            "{}",
            gw.logs()
        );
    }
}
