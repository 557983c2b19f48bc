//! End-to-end: a real gateway process against the mock Lambda over verified TLS, on both the
//! io_uring and the epoll driver. The mock verifies every signature with aws-sigv4's own
//! `sign()`; each test also asserts that all of them verified.

mod support;

use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};
use support::*;

fn on_both(f: impl Fn(Driver)) {
    for d in DRIVERS {
        f(d);
    }
}

#[test]
fn the_seed_example_from_a_config_file() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(
            &mock,
            &config_for(&mock, "/lambda1", "MyLambda", ""),
            driver,
        );
        let r = gw.send(&get("/lambda1"));
        assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        assert_eq!(r.body, br#"{"response": "yes"}"#);
        assert_eq!(
            r.header("x-amzn-RequestId"),
            Some("a1b2c3d4-0000-4000-8000-000000000001")
        );
        assert_eq!(
            r.header("X-Amzn-Trace-Id"),
            Some("root=1-6543-abcdef;sampled=0")
        );
        assert_eq!(r.header("x-amzn-Remapped-Content-Length"), Some("0"));
        assert_eq!(r.header("Via"), Some("1.1 lambda-gateway"));
        assert_eq!(r.header("Content-Length"), Some("19"));
        // Function logs stay with the gateway (SPEC §8): the tail Lambda returns for Kong's
        // default `log_type: Tail` is in the gateway's debug log, not in the answer.
        assert_eq!(r.header("X-Amz-Log-Result"), None);
        assert!(
            gw.logged(&format!(
                "route=route function=MyLambda log_result={LOG_TAIL}"
            )),
            "{}",
            gw.logs()
        );
        assert!(mock.assert_all_signatures_valid() >= 1);
    });
}

#[test]
fn the_invoke_request_has_the_spec_shape_and_no_client_headers() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let cfg = config_for(
            &mock,
            "/fn",
            "arn:aws:lambda:us-east-1:123456789012:function:echo",
            "qualifier: live, log_type: None",
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let r = gw.send(
            "GET /fn?a=1 HTTP/1.1\r\nHost: gw\r\nX-Secret: client-only\r\nCookie: c=1\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let got = mock.last();
        assert_eq!(got.method, "POST");
        assert_eq!(got.target, "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations?Qualifier=live");
        let mut names: Vec<&str> = got.headers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "authorization",
                "content-length",
                "content-type",
                "host",
                "x-amz-date",
                "x-amz-invocation-type",
                "x-amz-log-type"
            ]
        );
        assert_eq!(
            got.header("host"),
            Some(format!("localhost:{}", mock.addr.port()).as_str())
        );
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.header("x-amz-invocation-type"), Some("RequestResponse"));
        assert_eq!(got.header("x-amz-log-type"), Some("None"));
        assert_eq!(got.json(), json!({"a": "1"}));
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn credentials_and_endpoint_from_the_environment() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let cfg = r#"_format_version: "3.0"
routes:
- name: r
  paths: [/env]
plugins:
- name: aws-lambda
  config: {function_name: echo}
"#;
        let env = vec![
            ("AWS_ACCESS_KEY_ID", ENV_ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", ENV_SECRET_KEY.to_string()),
            ("AWS_SESSION_TOKEN", ENV_SESSION_TOKEN.to_string()),
            ("AWS_DEFAULT_REGION", "eu-west-1".to_string()),
            ("AWS_ENDPOINT_URL", "https://unused.invalid:1".to_string()),
            (
                "AWS_ENDPOINT_URL_LAMBDA",
                format!("https://localhost:{}", mock.addr.port()),
            ),
        ];
        let gw = Gateway::start_with(
            &mock,
            GatewayOptions {
                config: cfg,
                driver,
                env,
                args: vec![],
            },
        );
        let r = gw.send(&get("/env?x=y"));
        assert_eq!(r.status, 200, "{}", r.text());
        let got = mock.last();
        assert_eq!(got.header("x-amz-security-token"), Some(ENV_SESSION_TOKEN));
        assert!(got
            .header("authorization")
            .is_some_and(|a| a.contains("/eu-west-1/lambda/aws4_request")));
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn legacy_payload_merges_query_and_body() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &config_for(&mock, "/legacy", "echo", ""), driver);
        let body = "key1=from_body&list=b";
        let raw = format!(
            "POST /legacy?key1=from_query&list=a&flag HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = gw.send(&raw);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"key1": "from_body", "list": "b", "flag": true})
        );
        let r = gw.send("POST /legacy HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[{},[]]");
        assert_eq!(r.body, b"[{},[]]");
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn forward_payload_carries_method_uri_headers_and_body() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let flags = "forward_request_method: true, forward_request_uri: true, forward_request_headers: true, forward_request_body: true";
        let gw = Gateway::start(&mock, &config_for(&mock, "/fwd", "echo", flags), driver);
        let raw = "PUT /fwd/x?a=1&a=2 HTTP/1.1\r\nHost: gw\r\nX-Multi: 1\r\nX-Multi: 2\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"key2\":\"some\"}";
        let v = gw.send(raw).json();
        assert_eq!(v["request_method"], "PUT");
        assert_eq!(v["request_uri"], "/fwd/x?a=1&a=2");
        assert_eq!(v["request_uri_args"], json!({"a": ["1", "2"]}));
        assert_eq!(v["request_headers"]["x-multi"], json!(["1", "2"]));
        assert_eq!(v["request_body"], "{\"key2\":\"some\"}");
        assert_eq!(v["request_body_args"], json!({"key2": "some"}));
        let v = gw.send("POST /fwd HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n01234").json();
        assert_eq!(
            (v["request_body"].clone(), v["request_body_base64"].clone()),
            (json!("MDEyMzQ="), json!(true))
        );
        // A chunked request body arrives whole.
        let v = gw
            .send("POST /fwd HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            .json();
        assert_eq!(v["request_body"], "hello world");
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn invocation_types_pass_lambdas_status() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(
            &mock,
            &config_for(&mock, "/ev", "echo", "invocation_type: Event"),
            driver,
        );
        let r = gw.send(&get("/ev"));
        assert_eq!((r.status, r.body.len()), (202, 0));
        drop(gw);
        let gw = Gateway::start(
            &mock,
            &config_for(&mock, "/dry", "echo", "invocation_type: DryRun"),
            driver,
        );
        assert_eq!(gw.send(&get("/dry")).status, 204);
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn unhandled_function_errors() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(
            &mock,
            &config_for(&mock, "/u", "unhandled", "unhandled_status: 412"),
            driver,
        );
        let r = gw.send(&get("/u"));
        assert_eq!(r.status, 412);
        assert_eq!(r.header("X-Amz-Function-Error"), Some("Unhandled"));
        assert_eq!(r.body, br#"{"errorMessage":"boom","errorType":"Error"}"#);
        drop(gw);
        let gw = Gateway::start(&mock, &config_for(&mock, "/u", "unhandled", ""), driver);
        assert_eq!(gw.send(&get("/u")).status, 200);
        assert!(
            gw.logged("function=unhandled status=200 cause=\"function error: Unhandled\""),
            "{}",
            gw.logs()
        );
    });
}

/// A function that raised is not an answer where its output would be read as a proxy
/// response: in every payload mode, payload 2.0 included (whose "an output without statusCode
/// is the body" rule is for outputs, not errors), the client gets 502 in Kong's shape, or
/// `unhandled_status`, and nothing of the error document. Kong's handler.lua reaches a 502
/// here by failing `extract_proxy_response` on the document ("could not JSON decode Lambda
/// function response: statusCode validation failed") and never consults `unhandled_status`;
/// here the answer names what happened and `unhandled_status` applies (the README says so).
/// Without proxy integration, Kong's pass-through stands: the function's status (200) or
/// `unhandled_status`, and its output.
#[test]
fn a_function_error_is_never_shown_in_proxy_integration_modes() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let modes = [
            ("parameters", ""),
            (
                "forward",
                "forward_request_body: true, forward_request_method: true, ",
            ),
            ("event-1", "awsgateway_compatible: true, "),
            (
                "event-2",
                "awsgateway_compatible: true, awsgateway_compatible_payload_version: \"2.0\", ",
            ),
        ];
        let mut routes = String::new();
        for (mode, fields) in modes {
            for (suffix, status) in [("", ""), ("-412", "unhandled_status: 412, ")] {
                routes.push_str(&format!(
                    "- {{name: {mode}{suffix}, paths: [/{mode}{suffix}], plugins: [{{name: aws-lambda, config: {{{fields}{status}is_proxy_integration: true, function_name: raised, aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, host: localhost, port: {port}}}}}]}}\n",
                    port = mock.addr.port()
                ));
            }
        }
        routes.push_str(&format!(
            "- {{name: plain, paths: [/plain], plugins: [{{name: aws-lambda, config: {{function_name: raised, aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, host: localhost, port: {port}}}}}]}}\n",
            port = mock.addr.port()
        ));
        let gw = Gateway::start(
            &mock,
            &format!("_format_version: \"3.0\"\nroutes:\n{routes}"),
            driver,
        );
        for (mode, _) in modes {
            let r = gw.send(&get(&format!("/{mode}")));
            assert_eq!(r.status, 502, "{driver:?} {mode}: {}", r.text());
            assert_eq!(
                r.text(),
                r#"{"message":"Bad Gateway","error":"the Lambda function failed"}"#,
                "{driver:?} {mode}"
            );
            assert_eq!(r.header("X-Amz-Function-Error"), Some("Unhandled"));
            assert_eq!(
                r.header("Content-Type"),
                Some("application/json; charset=utf-8")
            );
            let r = gw.send(&get(&format!("/{mode}-412")));
            assert_eq!(r.status, 412, "{driver:?} {mode}: {}", r.text());
            assert!(
                !r.text().contains("stackTrace") && !r.text().contains("division"),
                "{driver:?} {mode}: {}",
                r.text()
            );
        }
        // Kong's legacy pass-through: the function's status and output.
        let r = gw.send(&get("/plain"));
        assert_eq!(r.status, 200);
        assert!(r.text().contains("ZeroDivisionError"), "{}", r.text());
        assert!(
            gw.logged("function=raised status=502 cause=\"function error: Unhandled\""),
            "{}",
            gw.logs()
        );
    });
}

#[test]
fn proxy_integration_responses() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let cfg = r#"_format_version: "3.0"
services:
- name: s
  routes:
  - {name: ok, paths: [/ok], plugins: [{name: aws-lambda, config: {function_name: proxy-ok, is_proxy_integration: true, aws_key: K, aws_secret: S, aws_region: us-east-1, host: localhost, port: PORT}}]}
  - {name: bad, paths: [/bad], plugins: [{name: aws-lambda, config: {function_name: proxy-bad, is_proxy_integration: true, aws_key: K, aws_secret: S, aws_region: us-east-1, host: localhost, port: PORT}}]}
  - {name: arr, paths: [/arr], plugins: [{name: aws-lambda, config: {function_name: empty-array, aws_key: K, aws_secret: S, aws_region: us-east-1, host: localhost, port: PORT}}]}
"#
        .replace("PORT", &mock.addr.port().to_string())
        .replace("aws_key: K", &format!("aws_key: {ACCESS_KEY}"))
        .replace("aws_secret: S", &format!("aws_secret: \"{SECRET_KEY}\""));
        let gw = Gateway::start(&mock, &cfg, driver);
        let r = gw.send(&get("/ok"));
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"hello world");
        assert_eq!(r.header("X-Fn"), Some("yes"));
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.headers_named("Set-Cookie"), ["a=1", "b=2"]);
        assert_eq!(
            r.header("x-amzn-RequestId"),
            Some("a1b2c3d4-0000-4000-8000-000000000001")
        );
        let r = gw.send(&get("/bad"));
        assert_eq!(r.status, 502);
        assert_eq!(
            r.text(),
            r#"{"message":"Bad Gateway","error":"could not JSON decode Lambda function response: statusCode validation failed"}"#
        );
        // Output that is not parsed passes through byte for byte: [] stays [].
        assert_eq!(gw.send(&get("/arr")).body, b"[]");
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn lambda_api_errors_map_to_spec_statuses() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let cfg = |f: &str| config_for(&mock, "/e", f, "");
        let gw = Gateway::start(&mock, &cfg("throttled"), driver);
        let r = gw.send(&get("/e"));
        assert_eq!((r.status, r.header("Retry-After")), (429, Some("7")));
        drop(gw);
        let gw = Gateway::start(&mock, &cfg("no-such-function"), driver);
        let r = gw.send(&get("/e"));
        assert_eq!(r.status, 502);
        assert_eq!(
            r.text(),
            r#"{"message":"Bad Gateway","error":"ResourceNotFoundException"}"#
        );
        assert_eq!(r.header("x-amzn-RequestId"), Some("err-request-id"));
        assert!(gw.logged("route=route function=no-such-function status=502 cause=\"ResourceNotFoundException\""), "{}", gw.logs());
        drop(gw);
        let gw = Gateway::start(&mock, &cfg("too-large"), driver);
        assert_eq!(gw.send(&get("/e")).status, 413);
        drop(gw);
        let gw = Gateway::start(&mock, &cfg("server-error"), driver);
        assert_eq!(
            gw.send(&get("/e")).text(),
            r#"{"message":"Bad Gateway","error":"ServiceException"}"#
        );
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn preserved_lambda_api_error_codes_reach_the_client() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let cfg = config_for(
            &mock,
            "/e",
            "no-such-function",
            "preserve_lambda_api_error_code: true",
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let r = gw.send(&get("/e"));
        assert_eq!(r.status, 404);
        assert_eq!(
            r.text(),
            r#"{"message":"Not Found","error":"ResourceNotFoundException"}"#
        );
        assert_eq!(r.header("x-amzn-RequestId"), Some("err-request-id"));
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn upstream_failures_are_502_or_504() {
    on_both(|driver| {
        let mock = MockLambda::start();
        // Timeout: the function takes 600 ms, the plugin allows 150 ms.
        let gw = Gateway::start(
            &mock,
            &config_for(&mock, "/t", "slow", "timeout: 150"),
            driver,
        );
        let started = Instant::now();
        let r = gw.send(&get("/t"));
        assert_eq!(r.status, 504);
        assert_eq!(r.text(), r#"{"message":"Gateway Timeout"}"#);
        assert!(
            started.elapsed() < Duration::from_millis(550),
            "took {:?}",
            started.elapsed()
        );
        drop(gw);
        // Refused: nothing listens on the port.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let cfg = config_for(&mock, "/r", "echo", "").replace(
            &format!("port: {}", mock.addr.port()),
            &format!("port: {port}"),
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let r = gw.send(&get("/r"));
        assert_eq!(
            (r.status, r.text().as_str()),
            (502, r#"{"message":"Bad Gateway"}"#)
        );
        drop(gw);
        // A certificate for another name is refused.
        let cfg = config_for(&mock, "/n", "echo", "").replace("host: localhost", "host: 127.0.0.1");
        let gw = Gateway::start(&mock, &cfg, driver);
        assert_eq!(gw.send(&get("/n")).status, 502);
        assert!(gw.logged("TLS handshake"), "{}", gw.logs());
        drop(gw);
        // A lying Content-Length, garbage, and an oversized response.
        for f in ["lying-length", "garbage", "huge"] {
            let gw = Gateway::start(&mock, &config_for(&mock, "/x", f, ""), driver);
            let r = gw.send(&get("/x"));
            assert_eq!(r.status, 502, "{f}");
        }
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn one_upstream_connection_per_worker_for_sequential_requests() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &config_for(&mock, "/p", "echo", ""), driver);
        for i in 0..200 {
            // New client connections: the kernel spreads them over both workers.
            let r = gw.send(&get(&format!("/p?i={i}")));
            assert_eq!(r.status, 200);
        }
        let opened = mock.connections();
        assert!(opened <= 2, "{opened} upstream connections for 2 workers");
        assert_eq!(mock.assert_all_signatures_valid(), 200);
    });
}

#[test]
fn closed_pooled_connections_are_replaced_without_failing() {
    on_both(|driver| {
        let mock = MockLambda::start();
        // The peer closes after each response: the idle check finds it dead.
        let gw = Gateway::start(&mock, &config_for(&mock, "/bye", "bye", ""), driver);
        let mut c = gw.connect();
        for _ in 0..5 {
            let r = c.request(get("/bye").as_bytes());
            assert_eq!(r.status, 200, "{}", r.text());
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(gw);
        // The peer closes only when the next request arrives: resent on a new connection.
        let gw = Gateway::start(&mock, &config_for(&mock, "/f", "first-only", ""), driver);
        let mut c = gw.connect();
        for _ in 0..5 {
            let r = c.request(get("/f").as_bytes());
            assert_eq!(r.status, 200, "{}", r.text());
        }
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn chunked_lambda_responses_are_decoded() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &config_for(&mock, "/c", "chunked", ""), driver);
        let r = gw
            .connect()
            .request_or_logs(get("/c?some=value&more=values").as_bytes(), &gw);
        assert_eq!(r.json(), json!({"some": "value", "more": "values"}));
        assert_eq!(r.header("Transfer-Encoding"), None);
    });
}

#[test]
fn client_protocol_errors_get_spec_answers() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(
            &mock,
            &config_for(
                &mock,
                "/h",
                "echo",
                "invocation_type: Event, forward_request_body: true",
            ),
            driver,
        );
        let bad_request = r#"{"message":"Bad request"}"#;
        let cases: &[(&str, &[u8], u16)] = &[
            ("garbage", b"HELLO\r\n\r\n", 400),
            ("bare LF", b"GET /h HTTP/1.1\nHost: gw\n\n", 400),
            ("CL and TE", b"POST /h HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("repeated CL", b"POST /h HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", 400),
            ("invalid CL", b"POST /h HTTP/1.1\r\nHost: gw\r\nContent-Length: 1x\r\n\r\nab", 400),
            ("chunked not last", b"POST /h HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
            ("obs-fold", b"GET /h HTTP/1.1\r\nHost: gw\r\nX: a\r\n b\r\n\r\n", 400),
            ("NUL", b"GET /h HTTP/1.1\r\nHost: gw\r\nX: a\x00b\r\n\r\n", 400),
            ("bad chunk size", b"POST /h HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("no Host", b"GET /h HTTP/1.1\r\n\r\n", 400),
        ];
        for (what, raw, status) in cases {
            let mut c = gw.connect();
            c.send_raw(raw);
            let r = c
                .read_response()
                .unwrap_or_else(|| panic!("{what}: no answer"));
            assert_eq!(r.status, *status, "{what}");
            assert_eq!(r.text(), bad_request, "{what}");
            assert_eq!(r.header("Connection"), Some("close"), "{what}");
            assert!(c.is_closed(), "{what}: connection left open");
        }
        // Limits.
        let big_head = format!(
            "GET /h HTTP/1.1\r\nHost: gw\r\nX: {}\r\n\r\n",
            "a".repeat(33 * 1024)
        );
        assert_eq!(gw.send(&big_head).status, 431);
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            gw.send(&format!("GET /h HTTP/1.1\r\nHost: gw\r\n{many}\r\n"))
                .status,
            431
        );
        let r = gw.send("POST /h HTTP/1.1\r\nHost: gw\r\nContent-Length: 7000000\r\n\r\n");
        assert_eq!(r.status, 413);
        // An encoded payload over the Event limit (1 MiB) is refused before sending.
        let before = mock.requests().len();
        let body = "a".repeat(1_100_000);
        let r = gw.send(&format!("POST /h HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
        assert_eq!(r.status, 413);
        assert_eq!(
            mock.requests().len(),
            before,
            "nothing is sent for an oversized payload"
        );
        // No route.
        let r = gw.send(&get("/nowhere"));
        assert_eq!(
            (r.status, r.text().as_str()),
            (404, r#"{"message":"no Route matched with those values"}"#)
        );
        // After all that, a fresh connection works.
        assert_eq!(gw.send(&get("/h")).status, 202);
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn keep_alive_pipelining_and_expect_continue() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &config_for(&mock, "/k", "echo", ""), driver);
        let mut c = gw.connect();
        for i in 0..20 {
            let r = c.request(get(&format!("/k?n={i}")).as_bytes());
            assert_eq!(r.json(), json!({"n": i.to_string()}));
        }
        // Three pipelined requests in one write come back in order.
        let mut pipelined = String::new();
        for i in 0..3 {
            pipelined.push_str(&get(&format!("/k?p={i}")));
        }
        c.send_raw(pipelined.as_bytes());
        for i in 0..3 {
            let r = c.read_response().expect("pipelined response");
            assert_eq!(r.json(), json!({"p": i.to_string()}));
        }
        // A large body (its buffer given back before the answer is written) and, in the same
        // write, a request after it: both answered, in order, the large one whole.
        let value = "v".repeat(400 * 1024);
        let form = format!("big={value}");
        let mut two = format!("POST /k HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}", form.len());
        two.push_str(&get("/k?after=big"));
        c.send_raw(two.as_bytes());
        let r = c.read_response().expect("the large request's answer");
        assert_eq!(r.json(), json!({"big": value}));
        let r = c.read_response().expect("the pipelined answer");
        assert_eq!(r.json(), json!({"after": "big"}));
        // Expect: 100-continue gets the interim answer before the body is sent.
        c.send_raw(b"POST /k HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\n");
        let interim = c.read_response().expect("100 Continue");
        assert_eq!(interim.status, 100);
        let r = c.request(b"a=b");
        assert_eq!(r.json(), json!({"a": "b"}));
        // HTTP/1.0 without keep-alive closes after the response.
        let mut c = gw.connect();
        let r = c.request(b"GET /k?v=10 HTTP/1.0\r\n\r\n");
        assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
        assert!(c.is_closed());
        // HEAD gets the headers, no body.
        let mut c = gw.connect();
        c.send_raw(b"HEAD /k HTTP/1.1\r\nHost: gw\r\n\r\n");
        let mut buf = Vec::new();
        std::thread::sleep(Duration::from_millis(300));
        c.stream.set_nonblocking(true).expect("nonblocking");
        let _ = std::io::Read::read_to_end(&mut c.stream, &mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n"),
            "{text:?}"
        );
        mock.assert_all_signatures_valid();
    });
}

#[test]
fn slow_clients_get_408() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let opts = GatewayOptions {
            config: &config_for(&mock, "/s", "echo", ""),
            driver,
            env: vec![],
            args: vec![
                "--client-timeout".into(),
                "300ms".into(),
                "--keepalive-timeout".into(),
                "400ms".into(),
            ],
        };
        let gw = Gateway::start_with(&mock, opts);
        // A head that never ends.
        let mut c = gw.connect();
        c.send_raw(b"GET /s HTTP/1.1\r\nHost: gw\r\n");
        let r = c.read_response().expect("408");
        assert_eq!(
            (r.status, r.text().as_str()),
            (408, r#"{"message":"Request timeout"}"#)
        );
        assert!(c.is_closed());
        // A body that never arrives.
        let mut c = gw.connect();
        c.send_raw(b"POST /s HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc");
        assert_eq!(c.read_response().expect("408").status, 408);
        // An idle keep-alive connection is closed quietly.
        let mut c = gw.connect();
        assert_eq!(c.request(get("/s").as_bytes()).status, 200);
        let started = Instant::now();
        assert!(c.is_closed());
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn sigterm_drains_in_flight_requests() {
    on_both(|driver| {
        let mock = MockLambda::start();
        let mut gw = Gateway::start(&mock, &config_for(&mock, "/slow", "slow", ""), driver);
        let mut c = gw.connect();
        c.send_raw(get("/slow").as_bytes());
        std::thread::sleep(Duration::from_millis(150));
        gw.terminate();
        let r = c.read_response().expect("the in-flight request completes");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Connection"), Some("close"));
        let status = gw
            .wait_exit(Duration::from_secs(10))
            .expect("exits after draining");
        assert!(status.success(), "{status:?}");
        assert!(
            std::net::TcpStream::connect(gw.addr).is_err(),
            "no longer accepting"
        );
    });
}

#[test]
fn check_command_reports_every_error_with_its_path() {
    let dir = TempDir::new("check");
    let bad = dir.path.join("bad.yml");
    let mut f = std::fs::File::create(&bad).expect("create");
    f.write_all(
        br#"_format_version: "3.0"
services:
- name: s
  routes:
  - paths: [/ok]
  plugins:
  - name: aws-lambda
    config: {aws_region: "??", function_name: f, aws_key: only-key}
"#,
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .arg("check")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#"services[0].plugins[0].config.aws_region: expected a region like us-east-1, got "??""#), "{stdout}");
    assert!(stdout.contains("services[0].plugins[0].config: all or none of these fields must be set: 'config.aws_key', 'config.aws_secret'"), "{stdout}");
    let good = dir.path.join("good.yml");
    std::fs::write(&good, "_format_version: \"3.0\"\nroutes:\n- {paths: [/x]}\nplugins:\n- {name: aws-lambda, config: {function_name: f, aws_region: us-east-1}}\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .arg("check")
        .arg(&good)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn demo_serves_the_seed_example() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--admin-listen",
            "off",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let stderr = child.stderr.take().expect("stderr");
    let addr = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        });
    let addr = addr.expect("demo listens");
    let r = Client::connect(addr).request(get("/lambda1").as_bytes());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"response": "yes"}"#);
    assert!(r.header("x-amzn-RequestId").is_some() && r.header("X-Amzn-Trace-Id").is_some());
    assert_eq!(r.header("x-amzn-Remapped-Content-Length"), Some("0"));
}
