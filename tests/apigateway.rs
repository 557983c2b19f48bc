//! API Gateway events (`awsgateway_compatible`, payload 1.0 and 2.0): every field of the event
//! as a function receives it (through the mock's `echo`), and a real adapter consuming it: a
//! Starlette app under Mangum (`tests/data/mangum_lambda.py`), whose answers show what it saw.
//! Its Python packages come from tests/requirements.txt (installed on first use,
//! tests/support/python.rs).

mod support;

use serde_json::{json, Value};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn event_config(mock: &MockLambda, version: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: events
  routes:
  - name: users
    paths: ['~/users/(?<id>\d+)/(?<section>[a-z]+)$']
  plugins:
  - name: aws-lambda
    config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: echo, host: localhost, port: {port}, awsgateway_compatible: true, awsgateway_compatible_payload_version: "{version}"}}
"#,
        port = mock.addr.port()
    )
}

const REQUEST: &str = "POST /users/42/orders?tag=a&tag=b&one=1 HTTP/1.1\r\nHost: api.test:8000\r\nUser-Agent: test-agent\r\nX-Custom: v1\r\nX-Custom: v2\r\nCookie: session=abc; theme=dark\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"n\":\"héllo\"}";

fn is_uuid_shaped(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[test]
fn payload_1_0_reaches_the_function_field_by_field() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &event_config(&mock, "1.0"), driver);
        let before = std::time::SystemTime::now();
        let r = gw.send(REQUEST);
        assert_eq!(r.status, 200, "{}", r.text());
        let e: Value = r.json();
        assert_eq!(e["version"], "1.0");
        assert_eq!(e["resource"], r"/users/(?<id>\d+)/(?<section>[a-z]+)$");
        assert_eq!(e["path"], "/users/42/orders");
        assert_eq!(e["httpMethod"], "POST");
        assert_eq!(e["headers"]["X-Custom"], "v2");
        assert_eq!(e["multiValueHeaders"]["X-Custom"], json!(["v1", "v2"]));
        assert_eq!(e["headers"]["Cookie"], "session=abc; theme=dark");
        assert_eq!(e["queryStringParameters"], json!({"tag": "b", "one": "1"}));
        assert_eq!(
            e["multiValueQueryStringParameters"],
            json!({"tag": ["a", "b"], "one": ["1"]})
        );
        assert_eq!(
            e["pathParameters"],
            json!({"id": "42", "section": "orders"})
        );
        assert_eq!(e["stageVariables"], json!(null));
        assert_eq!(e["body"], "{\"n\":\"héllo\"}");
        assert_eq!(e["isBase64Encoded"], false);
        let c = &e["requestContext"];
        assert_eq!(
            c["identity"],
            json!({"sourceIp": "127.0.0.1", "userAgent": "test-agent"})
        );
        assert_eq!(
            (
                &c["domainName"],
                &c["domainPrefix"],
                &c["protocol"],
                &c["stage"]
            ),
            (
                &json!("api.test"),
                &json!("api"),
                &json!("HTTP/1.1"),
                &json!("$default")
            )
        );
        assert_eq!(
            (&c["httpMethod"], &c["path"]),
            (&json!("POST"), &json!("/users/42/orders"))
        );
        assert_eq!(c["resourcePath"], e["resource"]);
        assert_eq!(
            (&c["accountId"], &c["apiId"]),
            (&json!("000000000000"), &json!("lambdagateway"))
        );
        assert!(is_uuid_shaped(c["requestId"].as_str().unwrap_or("")), "{c}");
        let epoch = c["requestTimeEpoch"].as_u64().expect("epoch");
        let now = before
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_millis() as u64;
        assert!(epoch >= now && epoch < now + 10_000, "{epoch} vs {now}");
        assert!(
            c["requestTime"]
                .as_str()
                .is_some_and(|t| t.ends_with(" +0000")),
            "{c}"
        );
        // Every request has its own id.
        let again: Value = gw.send(REQUEST).json();
        assert_ne!(again["requestContext"]["requestId"], c["requestId"]);
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn payload_2_0_reaches_the_function_field_by_field() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &event_config(&mock, "2.0"), driver);
        let e: Value = gw.send(REQUEST).json();
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "$default");
        assert_eq!(e["rawPath"], "/users/42/orders");
        assert_eq!(e["rawQueryString"], "tag=a&tag=b&one=1");
        assert_eq!(e["cookies"], json!(["session=abc", "theme=dark"]));
        assert_eq!(e["headers"]["x-custom"], "v1,v2");
        assert_eq!(e["headers"]["user-agent"], "test-agent");
        assert!(e["headers"].get("cookie").is_none(), "{}", e["headers"]);
        assert_eq!(
            e["queryStringParameters"],
            json!({"tag": "a,b", "one": "1"})
        );
        assert_eq!(
            e["pathParameters"],
            json!({"id": "42", "section": "orders"})
        );
        assert_eq!(e["body"], "{\"n\":\"héllo\"}");
        assert_eq!(e["isBase64Encoded"], false);
        let c = &e["requestContext"];
        assert_eq!(
            c["http"],
            json!({"method": "POST", "path": "/users/42/orders", "protocol": "HTTP/1.1",
                   "sourceIp": "127.0.0.1", "userAgent": "test-agent"})
        );
        assert_eq!(
            (&c["routeKey"], &c["stage"]),
            (&json!("$default"), &json!("$default"))
        );
        assert_eq!(
            (&c["domainName"], &c["domainPrefix"]),
            (&json!("api.test"), &json!("api"))
        );
        assert!(is_uuid_shaped(c["requestId"].as_str().unwrap_or("")));
        assert!(c["timeEpoch"].as_u64().is_some() && c["time"].is_string());
        assert_eq!(
            (&c["accountId"], &c["apiId"]),
            (&json!("000000000000"), &json!("lambdagateway"))
        );
        // A binary body is base64'd (base64_encode_body is on by default).
        let raw = "PUT /users/7/files HTTP/1.1\r\nHost: h\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\n";
        let mut bytes = raw.as_bytes().to_vec();
        bytes.extend_from_slice(&[0, 255, 65]);
        let r = gw.connect().request(&bytes);
        let e = r.json();
        assert_eq!(
            (&e["body"], &e["isBase64Encoded"]),
            (&json!("AP9B"), &json!(true))
        );
    }
}

#[test]
fn payload_2_0_answers_without_status_code_are_inferred() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let config = event_config(&mock, "2.0").replace(
            "awsgateway_compatible: true,",
            "awsgateway_compatible: true, is_proxy_integration: true,",
        );
        let gw = Gateway::start(&mock, &config, driver);
        // `echo` answers with the event itself, which has no statusCode: a 200 whose body is
        // the output byte for byte, as API Gateway's HTTP API infers it.
        let r = gw.send(REQUEST);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, mock.last().body);
        assert_eq!(r.json()["rawPath"], "/users/42/orders");
    }
}

/// The Mangum function's Invoke API, on a free loopback port.
struct MangumLambda {
    child: Child,
    port: u16,
}

impl MangumLambda {
    fn start() -> MangumLambda {
        let dir = TempDir::new("mangum");
        let port_file = dir.path.join("port");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mangum_lambda.py");
        let child = python::python()
            .arg(script)
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python");
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                return MangumLambda { child, port };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the Mangum function exited ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "the Mangum function did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MangumLambda {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mangum_config(port: u16, version: &str) -> String {
    let plugin = format!(
        "{{aws_key: AKIDMANGUM, aws_secret: s3cret, aws_region: us-east-1, function_name: mangum-app, host: 127.0.0.1, port: {port}, disable_https: true, is_proxy_integration: true, awsgateway_compatible: true, awsgateway_compatible_payload_version: \"{version}\"}}"
    );
    format!(
        r#"_format_version: "3.0"
routes:
- name: items
  paths: ['~/items/(?<item_id>\d+)$']
- name: binary
  paths: [/binary]
plugins:
- {{name: aws-lambda, config: {plugin}}}
"#
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&lambda_gateway::aws::sigv4::sha256_hex(bytes)).into_owned()
}

#[test]
fn a_mangum_app_sees_the_request_as_sent() {
    let function = MangumLambda::start();
    let mock = MockLambda::start();
    for (version, driver) in [
        ("1.0", Driver::IoUring),
        ("2.0", Driver::Epoll),
        ("2.0", Driver::IoUring),
        ("1.0", Driver::Epoll),
    ] {
        let gw = Gateway::start(&mock, &mangum_config(function.port, version), driver);
        let why =
            |r: &Response| format!("payload {version}, {driver:?}: {} {}", r.status, r.text());

        let r = gw.send("GET /items/7?one=1&many=a&many=b%20c HTTP/1.1\r\nHost: h\r\nX-Trace: t-1\r\nCookie: c1=v1; c2=v2\r\n\r\n");
        assert_eq!(r.status, 200, "{}", why(&r));
        let seen = r.json();
        assert_eq!(seen["event_version"], version, "{}", why(&r));
        assert_eq!(
            (&seen["method"], &seen["path"]),
            (&json!("GET"), &json!("/items/7"))
        );
        assert_eq!(seen["route_param"], "7");
        assert_eq!(seen["event_path_parameters"], json!({"item_id": "7"}));
        assert_eq!(
            seen["query"],
            json!({"one": ["1"], "many": ["a", "b c"]}),
            "{}",
            why(&r)
        );
        assert_eq!(seen["headers"]["x-trace"], "t-1");
        assert_eq!(seen["cookies"], json!({"c1": "v1", "c2": "v2"}));
        let set_cookies = r.headers_named("Set-Cookie");
        assert_eq!(set_cookies.len(), 2, "{}", why(&r));
        assert!(
            set_cookies[0].starts_with("served=yes")
                && set_cookies[1].starts_with("flavour=mangum")
        );
        assert_eq!(r.header("content-type"), Some("application/json"));

        let text = "héllo wörld ✓";
        let r = gw.send(&format!(
            "POST /items/9 HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        ));
        assert_eq!(r.status, 201, "{}", why(&r));
        let seen = r.json();
        assert_eq!(
            (&seen["method"], &seen["body_text"]),
            (&json!("POST"), &json!(text))
        );
        assert_eq!(seen["body_sha256"], sha256_hex(text.as_bytes()));

        let binary: Vec<u8> = (0..=255u8).rev().collect();
        let mut raw = format!(
            "PUT /items/5 HTTP/1.1\r\nHost: h\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            binary.len()
        )
        .into_bytes();
        raw.extend_from_slice(&binary);
        let r = gw.connect().request(&raw);
        assert_eq!(r.status, 200, "{}", why(&r));
        let seen = r.json();
        assert_eq!(
            (&seen["body_len"], &seen["body_sha256"]),
            (&json!(256), &json!(sha256_hex(&binary)))
        );

        // A binary answer (isBase64Encoded from Mangum) reaches the client byte for byte.
        let r = gw.send("GET /binary HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.status, 200, "{}", why(&r));
        assert_eq!(r.body, (0..=255u8).collect::<Vec<u8>>());
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    }
}

/// curl over h2c with prior knowledge: the status, the answer's header lines (lower-case
/// names), and the body.
fn curl_h2c(url: &str, args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "--http2-prior-knowledge",
            "-D",
            "-",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = out.stdout;
    let end = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {}", String::from_utf8_lossy(&text)));
    let head = String::from_utf8_lossy(&text[..end]).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    assert!(status_line.starts_with("HTTP/2 "), "{status_line}");
    let status = status_line[7..10].parse().expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, text[end + 4..].to_vec())
}

#[test]
fn a_mangum_app_sees_an_http2_request_as_sent() {
    if !installed("curl", "curl") {
        return;
    }
    let function = MangumLambda::start();
    let mock = MockLambda::start();
    let dir = TempDir::new("mangum-h2");
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    let binary_file = dir.path.join("binary");
    std::fs::write(&binary_file, &binary).expect("write");
    for (version, driver) in [("1.0", Driver::IoUring), ("2.0", Driver::Epoll)] {
        let gw = Gateway::start(&mock, &mangum_config(function.port, version), driver);
        let base = format!("http://{}", gw.addr);
        let (status, headers, body) = curl_h2c(
            &format!("{base}/items/7?one=1&many=a&many=b%20c"),
            &["-H", "X-Trace: t-2", "-H", "Cookie: c1=v1; c2=v2"],
        );
        let why = format!(
            "payload {version}, {driver:?}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(status, 200, "{why}");
        let seen: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(seen["event_version"], version, "{why}");
        assert_eq!(
            (&seen["method"], &seen["path"]),
            (&json!("GET"), &json!("/items/7"))
        );
        assert_eq!(seen["event_path_parameters"], json!({"item_id": "7"}));
        assert_eq!(seen["query"], json!({"one": ["1"], "many": ["a", "b c"]}));
        assert_eq!(seen["headers"]["x-trace"], "t-2");
        assert_eq!(seen["cookies"], json!({"c1": "v1", "c2": "v2"}), "{why}");
        // Both cookies the app set, as two fields; nothing connection-specific.
        let set_cookies: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(set_cookies.len(), 2, "{why}: {headers:?}");
        assert!(set_cookies[0].starts_with("served=yes"), "{set_cookies:?}");
        assert!(
            set_cookies[1].starts_with("flavour=mangum"),
            "{set_cookies:?}"
        );
        for (name, _) in &headers {
            assert!(
                !["connection", "keep-alive", "transfer-encoding"].contains(&name.as_str()),
                "{name}"
            );
        }

        // A binary body as DATA frames reaches the app byte for byte, and a binary answer the
        // client.
        let file_arg = format!("@{}", binary_file.display());
        let (status, _, body) = curl_h2c(
            &format!("{base}/items/5"),
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &file_arg,
            ],
        );
        assert_eq!(status, 200, "{version} {driver:?}");
        let seen: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            (&seen["body_len"], &seen["body_sha256"]),
            (&json!(256), &json!(sha256_hex(&binary)))
        );
        let (status, headers, body) = curl_h2c(&format!("{base}/binary"), &[]);
        assert_eq!(status, 200);
        assert_eq!(body, (0..=255u8).collect::<Vec<u8>>());
        assert!(headers.contains(&("content-type".into(), "application/octet-stream".into())));
    }
}
