//! The request pipeline in-process (`proxy::testing`): the real proxy over an in-memory
//! Lambda, table by table: aws-lambda's answers (Kong's mapping, the SPEC's errors),
//! prometheus's series, and the access plugins as the proxy chains them, their exits and
//! failures going through the one error path (answered, counted, the function not invoked).

use lambda_gateway::http::fields::PseudoHeaders;
use lambda_gateway::proxy::testing::{Answer, Pipeline};
use lambda_gateway::upstream::invoker::{write_answer, InvokeCall};
use serde_json::Value;

const KEYS: &str = "aws_region: us-east-1, aws_key: AKIDEXAMPLE, aws_secret: SECRET";

/// One route `/r` whose aws-lambda plugin has `plugin` (flow-mapping entries) beside the keys,
/// and the route's other plugins `others` (flow mappings, comma-separated).
fn route(plugin: &str, others: &str) -> String {
    let plugin = if plugin.is_empty() {
        format!("{{function_name: f, {KEYS}}}")
    } else {
        format!("{{function_name: f, {KEYS}, {plugin}}}")
    };
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(", {others}")
    };
    format!(
        "_format_version: \"3.0\"\nroutes:\n- {{name: r, paths: [/r], plugins: [{{name: aws-lambda, config: {plugin}}}{others}]}}\n"
    )
}

/// A function answering with Lambda API `status`, `headers` and `body`, whatever it is sent.
fn answering(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> impl Fn(&InvokeCall<'_>, &mut Vec<u8>) {
    move |_, out| write_answer(out, status, headers, body.as_bytes())
}

/// The function's payload as JSON (the last invoke's).
fn payload(p: &Pipeline) -> Value {
    let invokes = p.invokes.borrow();
    let (_, payload) = invokes.last().expect("an invoke");
    serde_json::from_slice(payload).expect("JSON payload")
}

fn headers_of(a: &Answer) -> Vec<(String, String)> {
    a.head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// (plugin settings, Lambda's status, headers, body) -> (status, headers, body).
type Mapping<'a> = (
    &'a str,
    u16,
    &'static [(&'static str, &'static str)],
    &'static str,
    u16,
    &'a [(&'a str, &'a str)],
    &'a str,
);

#[test]
fn aws_lambda_maps_lambdas_answers_as_kong_does() {
    const ID: (&str, &str) = ("x-amzn-RequestId", "r-1");
    const JSON: (&str, &str) = ("Content-Type", "application/json");
    let cases: &[Mapping] = &[
        // The output, byte for byte, with Lambda's headers but the private ones.
        (
            "",
            200,
            &[ID, JSON, ("X-Amz-Log-Result", "c2VjcmV0")],
            r#"{"ok":1}"#,
            200,
            &[
                ("x-amzn-RequestId", "r-1"),
                ("Content-Type", "application/json"),
                ("Via", "1.1 lambda-gateway"),
                ("Content-Length", "8"),
            ],
            r#"{"ok":1}"#,
        ),
        // A function error is passed on; unhandled_status replaces the status.
        (
            "unhandled_status: 412",
            200,
            &[("X-Amz-Function-Error", "Unhandled")],
            r#"{"errorMessage":"boom"}"#,
            412,
            &[("X-Amz-Function-Error", "Unhandled")],
            r#"{"errorMessage":"boom"}"#,
        ),
        // Proxy integration: the output is the answer.
        (
            "is_proxy_integration: true",
            200,
            &[ID],
            r#"{"statusCode":201,"headers":{"X-A":"b"},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"aGk=","isBase64Encoded":true}"#,
            201,
            &[("X-A", "b"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
            "hi",
        ),
        // ... and a function error there is a 502 with nothing of the error.
        (
            "is_proxy_integration: true",
            200,
            &[ID, ("X-Amz-Function-Error", "Unhandled")],
            r#"{"errorMessage":"secret stack"}"#,
            502,
            &[
                ("X-Amz-Function-Error", "Unhandled"),
                ("x-amzn-RequestId", "r-1"),
            ],
            r#"{"message":"Bad Gateway","error":"the Lambda function failed"}"#,
        ),
        (
            "is_proxy_integration: true",
            200,
            &[],
            r#"{"statusCode":"hello"}"#,
            502,
            &[],
            r#"{"message":"Bad Gateway","error":"could not JSON decode Lambda function response: statusCode validation failed"}"#,
        ),
        // The Invoke API refusing: throttling keeps its status and Retry-After; the rest 502.
        (
            "",
            429,
            &[
                ("x-amzn-ErrorType", "TooManyRequestsException"),
                ("Retry-After", "3"),
            ],
            "{}",
            429,
            &[("Retry-After", "3")],
            r#"{"message":"Too Many Requests","error":"TooManyRequestsException"}"#,
        ),
        (
            "",
            404,
            &[("x-amzn-ErrorType", "ResourceNotFoundException")],
            "{}",
            502,
            &[],
            r#"{"message":"Bad Gateway","error":"ResourceNotFoundException"}"#,
        ),
        (
            "preserve_lambda_api_error_code: true",
            404,
            &[("x-amzn-ErrorType", "ResourceNotFoundException")],
            "{}",
            404,
            &[],
            r#"{"message":"Not Found","error":"ResourceNotFoundException"}"#,
        ),
    ];
    for (plugin, status, headers, body, want_status, want_headers, want_body) in cases {
        let p = Pipeline::new(&route(plugin, ""), answering(*status, headers, body))
            .expect("valid config");
        let a = p.get("/r", &[]);
        let case = format!("{plugin} {status} {body}");
        assert_eq!(a.status, *want_status, "{case}: {}", a.head);
        assert_eq!(a.text(), *want_body, "{case}");
        let got = headers_of(&a);
        for (name, value) in *want_headers {
            assert!(
                got.iter().any(|(n, v)| n == name && v == value),
                "{case}: {name}: {value} missing in\n{}",
                a.head
            );
        }
        assert!(
            !a.head.contains("X-Amz-Log-Result"),
            "{case}: private header passed on"
        );
        assert_eq!(p.invoke_count(), 1, "{case}");
    }
}

#[test]
fn aws_lambda_sends_kongs_payloads_and_api_gateway_events() {
    let echo = answering(200, &[], "{}");
    let p = Pipeline::new(
        &route(
            "forward_request_method: true, forward_request_uri: true, forward_request_headers: true, forward_request_body: true",
            "",
        ),
        echo,
    )
    .expect("valid");
    let raw = b"POST /r/x?a=1&b=two HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nX-Custom: v\r\nContent-Length: 7\r\n\r\n{\"k\":1}";
    assert_eq!(p.send(raw).status, 200);
    let sent = payload(&p);
    assert_eq!(sent["request_method"], "POST");
    assert_eq!(sent["request_uri"], "/r/x?a=1&b=two");
    assert_eq!(sent["request_uri_args"]["b"], "two");
    assert_eq!(sent["request_headers"]["x-custom"], "v");
    assert_eq!(sent["request_body_args"]["k"], 1);
    assert_eq!(p.invokes.borrow()[0].0, "f");

    let p = Pipeline::new(
        &route(
            "awsgateway_compatible: true, awsgateway_compatible_payload_version: \"2.0\"",
            "",
        ),
        answering(200, &[], r#"{"statusCode":204}"#),
    )
    .expect("valid");
    let a = p.get("/r/deep?q=1", &["Cookie: a=1"]);
    assert_eq!(a.status, 200);
    let event = payload(&p);
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/r/deep");
    assert_eq!(event["rawQueryString"], "q=1");
    assert_eq!(event["cookies"][0], "a=1");
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
}

#[test]
fn the_gateways_own_answers_go_through_the_one_error_path() {
    let p = Pipeline::new(
        "_format_version: \"3.0\"\nroutes:\n- {name: bare, paths: [/bare]}\n",
        answering(200, &[], "{}"),
    )
    .expect("valid");
    let a = p.get("/nowhere", &[]);
    assert_eq!(
        (a.status, a.text().as_str()),
        (404, r#"{"message":"no Route matched with those values"}"#)
    );
    let a = p.get("/bare", &[]);
    assert_eq!(
        (a.status, a.text().as_str()),
        (
            502,
            r#"{"message":"Bad Gateway","error":"no aws-lambda plugin on this route"}"#
        )
    );
    assert_eq!(p.invoke_count(), 0);
    let metrics = p.metrics();
    for line in [
        r#"kong_http_requests_total{service="",route="",code="404",source="error",workspace="default",consumer=""} 1"#,
        r#"kong_http_requests_total{service="",route="bare",code="502",source="error",workspace="default",consumer=""} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    // A payload over Lambda's limit (1 MiB for an asynchronous invoke) is the client's 413,
    // never sent.
    let p = Pipeline::new(
        &route("forward_request_body: true, invocation_type: Event", ""),
        answering(202, &[], ""),
    )
    .expect("valid");
    let body = vec![b'x'; 2 * 1024 * 1024];
    let mut raw = format!(
        "POST /r HTTP/1.1\r\nHost: gw.test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let a = p.send(&raw);
    assert_eq!(
        (a.status, a.text().as_str()),
        (413, r#"{"message":"Payload too large"}"#)
    );
    assert_eq!(p.invoke_count(), 0);
}

#[test]
fn lambdas_errors_are_counted_by_kind() {
    let p = Pipeline::new(
        &route("", ""),
        |call: &InvokeCall<'_>, out: &mut Vec<u8>| {
            if call.payload.windows(5).any(|w| w == b"throt") {
                write_answer(
                    out,
                    429,
                    &[("x-amzn-ErrorType", "TooManyRequestsException")],
                    b"{}",
                );
            } else {
                write_answer(out, 200, &[("X-Amz-Function-Error", "Unhandled")], b"{}");
            }
        },
    )
    .expect("valid");
    p.get("/r?throt=1", &[]);
    p.get("/r", &[]);
    p.get("/r", &[]);
    let metrics = p.metrics();
    for line in [
        r#"lambda_gateway_lambda_errors_total{type="TooManyRequestsException"} 1"#,
        r#"lambda_gateway_lambda_errors_total{type="Unhandled"} 2"#,
        // A function error is still the function's answer; a refused invoke is an error.
        r#"kong_http_requests_total{service="",route="r",code="200",source="service",workspace="default",consumer=""} 2"#,
        r#"kong_http_requests_total{service="",route="r",code="429",source="error",workspace="default",consumer=""} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
}

#[test]
fn prometheus_plugins_choose_the_series_requests_are_counted_in() {
    let config = format!(
        "_format_version: \"3.0\"\nplugins:\n- {{name: aws-lambda, config: {{function_name: f, {KEYS}}}}}\n- {{name: prometheus, config: {{status_code_metrics: true}}}}\nroutes:\n- {{name: codes, paths: [/codes]}}\n- {{name: timed, paths: [/timed], plugins: [{{name: prometheus, config: {{latency_metrics: true, bandwidth_metrics: true}}}}]}}\n"
    );
    let p = Pipeline::new(&config, answering(200, &[], "{}")).expect("valid");
    assert_eq!(p.get("/codes", &[]).status, 200);
    assert_eq!(p.get("/timed", &[]).status, 200);
    let metrics = p.metrics();
    // (series, present) per route.
    for (line, present) in [
        (
            r#"kong_http_requests_total{service="",route="codes",code="200""#,
            true,
        ),
        (
            r#"kong_request_latency_ms_count{service="",route="codes""#,
            false,
        ),
        (r#"kong_bandwidth_bytes{service="",route="codes""#, false),
        (
            r#"kong_http_requests_total{service="",route="timed",code="200""#,
            false,
        ),
        (
            r#"kong_request_latency_ms_count{service="",route="timed""#,
            true,
        ),
        (r#"kong_bandwidth_bytes{service="",route="timed""#, true),
    ] {
        assert_eq!(metrics.contains(line), present, "{line}:\n{metrics}");
    }
}

/// A route `/r` with `plugins` before aws-lambda; consumers alice (key `k-alice`, group
/// `staff`) and bob (key `k-bob`).
fn chain(plugins: &str) -> Pipeline {
    let config = format!(
        "_format_version: \"3.0\"\nconsumers:\n- {{username: alice, keyauth_credentials: [{{key: k-alice}}], acls: [{{group: staff}}]}}\n- {{username: bob, keyauth_credentials: [{{key: k-bob}}]}}\nroutes:\n- {{name: r, paths: [/r], plugins: [{{name: aws-lambda, config: {{function_name: f, {KEYS}, forward_request_headers: true}}}}, {plugins}]}}\n"
    );
    Pipeline::new(&config, answering(200, &[], r#"{"ok":true}"#)).expect("valid config")
}

#[test]
fn access_plugins_answer_in_priority_order_before_the_function() {
    // (plugins, request headers, target) -> (status, body, a header of the answer, invoked)
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        &'a str,
        u16,
        &'a str,
        Option<(&'a str, &'a str)>,
        bool,
    );
    let cases: &[Case] = &[
        (
            "{name: key-auth}",
            &[],
            "/r",
            401,
            r#"{"message":"No API key found in request"}"#,
            Some(("WWW-Authenticate", "Key realm=\"kong\"")),
            false,
        ),
        (
            "{name: key-auth}, {name: acl, config: {allow: [staff]}}",
            &["apikey: k-bob"],
            "/r",
            403,
            r#"{"message":"You cannot consume this service"}"#,
            None,
            false,
        ),
        (
            "{name: key-auth}, {name: acl, config: {allow: [staff]}}",
            &["apikey: k-alice"],
            "/r",
            200,
            r#"{"ok":true}"#,
            None,
            true,
        ),
        // request-termination (priority 2) runs after key-auth (1250): a caller without a
        // key is refused by key-auth, one with a key gets the termination.
        (
            "{name: request-termination, config: {status_code: 503, message: down}}, {name: key-auth}",
            &[],
            "/r",
            401,
            r#"{"message":"No API key found in request"}"#,
            None,
            false,
        ),
        (
            "{name: request-termination, config: {status_code: 503, message: down}}, {name: key-auth}",
            &["apikey: k-alice"],
            "/r",
            503,
            r#"{"message":"down"}"#,
            None,
            false,
        ),
        (
            "{name: request-termination, config: {trigger: x-stop}}",
            &[],
            "/r",
            200,
            r#"{"ok":true}"#,
            None,
            true,
        ),
        (
            "{name: ip-restriction, config: {deny: [127.0.0.1]}}",
            &[],
            "/r",
            403,
            r#"{"message":"Your IP address is not allowed"}"#,
            None,
            false,
        ),
        (
            "{name: request-size-limiting, config: {allowed_payload_size: 1, size_unit: bytes, require_content_length: true}}",
            &[],
            "/r",
            411,
            r#"{"message":"A valid Content-Length header is required"}"#,
            None,
            false,
        ),
        (
            "{name: cors, config: {origins: [\"https://app.test\"]}}",
            &[
                "Origin: https://app.test",
                "Access-Control-Request-Method: POST",
            ],
            "/r",
            200,
            "",
            Some(("Access-Control-Allow-Origin", "https://app.test")),
            false,
        ),
        (
            "{name: correlation-id, config: {header_name: X-Trace, generator: tracker, echo_downstream: true}}",
            &[],
            "/r",
            200,
            r#"{"ok":true}"#,
            Some(("X-Trace", "")),
            true,
        ),
        (
            "{name: jwt}",
            &[],
            "/r",
            401,
            r#"{"message":"Unauthorized"}"#,
            None,
            false,
        ),
        (
            "{name: rate-limiting, config: {minute: 1}}",
            &[],
            "/r",
            200,
            r#"{"ok":true}"#,
            Some(("X-RateLimit-Limit-Minute", "1")),
            true,
        ),
    ];
    for (plugins, headers, target, status, body, header, invoked) in cases {
        let p = chain(plugins);
        let method_is_options = headers
            .iter()
            .any(|h| h.starts_with("Access-Control-Request-Method"));
        let a = if method_is_options {
            let raw = format!(
                "OPTIONS {target} HTTP/1.1\r\nHost: gw.test\r\n{}\r\n\r\n",
                headers.join("\r\n")
            );
            p.send(raw.as_bytes())
        } else {
            p.get(target, headers)
        };
        let case = format!("{plugins} {headers:?}");
        assert_eq!(
            (a.status, a.text().as_str()),
            (*status, *body),
            "{case}\n{}",
            a.head
        );
        if let Some((name, value)) = header {
            let got = a.header(name);
            assert!(got.is_some(), "{case}: no {name} in\n{}", a.head);
            if !value.is_empty() {
                assert_eq!(got, Some(*value), "{case}");
            }
        }
        assert_eq!(p.invoke_count(), usize::from(*invoked), "{case}");
    }
}

#[test]
fn rate_limiting_refuses_past_the_limit_and_counts_the_exit() {
    let p = chain("{name: rate-limiting, config: {minute: 2, limit_by: ip}}");
    assert_eq!(p.get("/r", &[]).status, 200);
    let second = p.get("/r", &[]);
    assert_eq!(second.header("RateLimit-Remaining"), Some("0"));
    let refused = p.get("/r", &[]);
    assert_eq!(
        (refused.status, refused.text().as_str()),
        (429, r#"{"message":"API rate limit exceeded"}"#)
    );
    assert_eq!(refused.header("X-RateLimit-Remaining-Minute"), Some("0"));
    assert_eq!(p.invoke_count(), 2);
    let metrics = p.metrics();
    let line = r#"kong_http_requests_total{service="",route="r",code="429",source="exit",workspace="default",consumer=""} 1"#;
    assert!(metrics.contains(line), "{metrics}");
}

#[test]
fn a_plugin_that_cannot_decide_is_the_gateways_500_counted_as_an_error() {
    // Redis is not there and `fault_tolerant: false`: no answer without the count.
    let p = chain(
        "{name: rate-limiting, config: {minute: 5, policy: redis, redis_host: 127.0.0.1, redis_port: 1, redis_timeout: 200, fault_tolerant: false}}",
    );
    let a = p.get("/r", &[]);
    assert_eq!(
        (a.status, a.text().as_str()),
        (500, r#"{"message":"An unexpected error occurred"}"#)
    );
    // key-auth's anonymous consumer that does not exist.
    let p2 = chain("{name: key-auth, config: {anonymous: nobody}}");
    let b = p2.get("/r", &[]);
    assert_eq!(
        (b.status, b.text().as_str()),
        (500, r#"{"message":"An unexpected error occurred"}"#)
    );
    for p in [&p, &p2] {
        assert_eq!(p.invoke_count(), 0);
        let metrics = p.metrics();
        let line = r#"kong_http_requests_total{service="",route="r",code="500",source="error",workspace="default",consumer=""} 1"#;
        assert!(metrics.contains(line), "{metrics}");
    }
}

#[test]
fn a_consumers_own_plugins_take_over_once_they_are_identified() {
    let config = format!(
        "_format_version: \"3.0\"\nconsumers:\n- username: alice\n  keyauth_credentials: [{{key: k-alice}}]\n  plugins: [{{name: aws-lambda, config: {{function_name: alices, {KEYS}}}}}, {{name: request-termination, config: {{status_code: 418, message: teapot}}}}]\n- username: bob\n  keyauth_credentials: [{{key: k-bob}}]\n  plugins: [{{name: aws-lambda, config: {{function_name: bobs, {KEYS}}}}}]\nroutes:\n- {{name: r, paths: [/r], plugins: [{{name: key-auth}}, {{name: aws-lambda, config: {{function_name: routes, {KEYS}}}}}]}}\n"
    );
    let p = Pipeline::new(&config, answering(200, &[], "{}")).expect("valid");
    assert_eq!(p.get("/r", &["apikey: k-alice"]).status, 418);
    assert_eq!(p.get("/r", &["apikey: k-bob"]).status, 200);
    assert_eq!(
        p.invokes.borrow().last().map(|i| i.0.as_str()),
        Some("bobs")
    );
    assert_eq!(p.invoke_count(), 1);
}

#[test]
fn a_request_made_of_http2_fields_goes_through_the_same_phases() {
    let config = route(
        "awsgateway_compatible: true, awsgateway_compatible_payload_version: \"2.0\", is_proxy_integration: true",
        "{name: key-auth}",
    )
    .replace(
        "routes:",
        "consumers:\n- {username: alice, keyauth_credentials: [{key: k-alice}]}\nroutes:",
    );
    let p = Pipeline::new(
        &config,
        answering(200, &[], r#"{"statusCode":202,"body":"ok"}"#),
    )
    .expect("valid");
    let pseudo = PseudoHeaders {
        method: b"POST",
        path: b"/r/x?q=1",
        authority: Some(b"gw.test"),
    };
    // Refused by key-auth as an h1 request would be.
    let refused = p.send_fields(pseudo, &[(b"content-type", b"text/plain")], b"hi");
    assert_eq!(
        (refused.status, refused.text().as_str()),
        (401, r#"{"message":"No API key found in request"}"#)
    );
    let a = p.send_fields(
        pseudo,
        &[(b"apikey", b"k-alice"), (b"content-type", b"text/plain")],
        b"hi",
    );
    assert_eq!((a.status, a.text().as_str()), (202, "ok"));
    let event = payload(&p);
    assert_eq!(event["requestContext"]["http"]["protocol"], "HTTP/2.0");
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["rawPath"], "/r/x");
    assert_eq!(event["rawQueryString"], "q=1");
    assert_eq!(event["headers"]["host"], "gw.test");
    assert_eq!(
        event["requestContext"]["authorizer"]["lambda"]["consumerUsername"],
        "alice"
    );
    assert_eq!(
        (&event["body"], &event["isBase64Encoded"]),
        (&"hi".into(), &false.into())
    );
}
