//! response-transformer through the in-process pipeline (the real proxy, an in-memory
//! Lambda): Kong's operations in Kong's order on the function's answer, byte for byte, with
//! Kong's quirks kept (decisions on the headers as they came, Lua truthiness, `json_value`'s
//! escaping, `json_types` casts). Then from outside: Kong's documented Admin API example run
//! with curl as written, and a streamed answer (headers transformed, body untouched), on both
//! drivers.

mod support;

use lambda_gateway::proxy::testing::{Answer, Pipeline};
use lambda_gateway::upstream::invoker::write_answer;
use support::*;

const KEYS: &str = "aws_region: us-east-1, aws_key: AKIDEXAMPLE, aws_secret: SECRET";

/// One route `/r`: aws-lambda in proxy-integration mode, and response-transformer with
/// `config` (a YAML flow mapping).
fn transformed(config: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/r]\n  plugins:\n  - {{name: aws-lambda, config: {{function_name: f, is_proxy_integration: true, {KEYS}}}}}\n  - {{name: response-transformer, config: {config}}}\n"
    )
}

/// The answer to `GET /r` when the function's output is `output`.
fn answer(config: &str, output: &'static str) -> Answer {
    let p = Pipeline::new(&transformed(config), move |_, out| {
        write_answer(out, 200, &[], output.as_bytes())
    })
    .unwrap_or_else(|e| panic!("{config}: {e}"));
    p.get("/r", &[])
}

/// The answer's header lines after the status line, as `name: value`.
fn lines(a: &Answer) -> Vec<String> {
    a.head
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A proxy-integration output: `headers` (a JSON object's members) and `body` (a JSON
/// string's contents).
macro_rules! output {
    ($headers:literal, $body:literal) => {
        concat!(
            r#"{"statusCode":200,"headers":{"#,
            $headers,
            r#"},"body":""#,
            $body,
            r#""}"#
        )
    };
}

#[test]
fn kongs_documented_example_in_kongs_order() {
    // Kong's README example: remove two headers and two members, add two headers and two
    // members, append to two headers.
    let config = r#"{remove: {headers: [x-toremove, x-another-one], json: [json-key-toremove, another-json-key]}, add: {headers: ["x-new-header:value", "x-another-header:something"], json: ["new-json-key:some_value", "another-json-key:some_value"]}, append: {headers: ["x-existing-header:some_value", "x-another-header:some_value"]}}"#;
    let a = answer(
        config,
        output!(
            r#""Content-Type":"application/json","x-toremove":"a","X-Another-One":"b","x-existing-header":"e""#,
            r#"{\"json-key-toremove\":1,\"keep\":[1,{\"a\":null}],\"another-json-key\":2}"#
        ),
    );
    assert_eq!(a.status, 200);
    assert_eq!(
        lines(&a),
        [
            "Content-Type: application/json",
            "x-existing-header: e",
            "Via: 1.1 lambda-gateway",
            "x-new-header: value",
            "x-another-header: something",
            "x-existing-header: some_value",
            "x-another-header: some_value",
            "Content-Length: 83",
        ]
    );
    // Removed members go, the untouched one keeps its bytes; `another-json-key` is added
    // again (add looks at the body as the removals left it).
    assert_eq!(
        a.text(),
        r#"{"keep":[1,{"a":null}],"new-json-key":"some_value","another-json-key":"some_value"}"#
    );
}

#[test]
fn header_operations_decide_on_the_headers_as_they_came() {
    let cases: &[(&str, &str, &[&str])] = &[
        // Removed, then `add` skips it: it was there when the plugin read the headers.
        (
            r#"{remove: {headers: [x-a]}, add: {headers: ["x-a:new"]}}"#,
            r#""x-a":"old""#,
            &[],
        ),
        // Renamed with every value, replacing what the new name had.
        (
            r#"{rename: {headers: ["x-old:x-new"]}}"#,
            r#""x-new":"gone""#,
            &[],
        ),
        // Replace only what is there; add only what is not.
        (
            r#"{replace: {headers: ["x-a:replaced", "x-missing:no"]}, add: {headers: ["x-a:no", "x-b:added"]}}"#,
            r#""x-a":"old""#,
            &["x-a: replaced", "x-b: added"],
        ),
        // Colons after the first are dropped; an entry without a value does nothing.
        (
            r#"{add: {headers: ["x-c:::v:w", "x-d:"]}, append: {headers: ["x-e:"]}}"#,
            "",
            &["x-c: v:w"],
        ),
    ];
    for (config, headers, want) in cases {
        let p = Pipeline::new(&transformed(config), move |_, out| {
            let body = format!(
                r#"{{"statusCode":200,"headers":{{{headers}}},"multiValueHeaders":{{"x-old":["1","2"]}},"body":"x"}}"#
            );
            write_answer(out, 200, &[], body.as_bytes())
        })
        .expect("valid");
        let a = p.get("/r", &[]);
        let got: Vec<String> = lines(&a)
            .into_iter()
            .filter(|l| {
                !["Content-Length", "x-old", "Via"]
                    .iter()
                    .any(|n| l.starts_with(n))
            })
            .collect();
        if config.contains("rename") {
            assert_eq!(got, ["x-new: 1", "x-new: 2"], "{config}");
        } else {
            assert_eq!(got, *want, "{config}");
        }
    }
}

#[test]
fn json_operations_keep_kongs_rules() {
    let cases: &[(&str, &str, &str)] = &[
        // add sets a missing member or a false one (Lua's falsy), replace only a truthy one;
        // null is truthy (cjson's null).
        (
            r#"{add: {json: ["f:added", "n:added", "new:v"]}, replace: {json: ["t:replaced", "f2:no", "missing:no"]}}"#,
            r#"{\"f\":false,\"n\":null,\"t\":0,\"f2\":false}"#,
            r#"{"f":"added","n":null,"t":"replaced","f2":false,"new":"v"}"#,
        ),
        // json_types by position: numbers (none when not one: nothing set), booleans.
        (
            r#"{add: {json: ["i:42", "x:3.5", "bad:4x", "b:true", "nb:yes", "s:7"], json_types: [number, number, number, boolean, boolean, string]}}"#,
            r#"{}"#,
            r#"{"i":42,"x":3.5,"b":true,"nb":false,"s":"7"}"#,
        ),
        // append: to a string makes an array, to an array pushes, to a number replaces it,
        // to nothing makes one.
        (
            r#"{append: {json: ["s:b", "a:c", "n:d", "m:e"]}}"#,
            r#"{\"s\":\"a\",\"a\":[1],\"n\":5}"#,
            r#"{"s":["a","b"],"a":[1,"c"],"n":["d"],"m":["e"]}"#,
        ),
        // rename moves the value under the new name, replacing a member of that name.
        (
            r#"{rename: {json: ["a:b", "missing:c"]}}"#,
            r#"{\"a\":{\"deep\":[1]},\"b\":2,\"z\":3}"#,
            r#"{"b":{"deep":[1]},"z":3}"#,
        ),
        // json_value: escaped as a JSON string, then its quotes and slashes unescaped, so a
        // backslash comes out doubled (as Kong's does).
        (
            r#"{add: {json: ['q:say "hi"/bye', 'p:a\b']}}"#,
            r#"{}"#,
            r#"{"q":"say \"hi\"/bye","p":"a\\\\b"}"#,
        ),
        // A repeated member: the last value, at the first one's place.
        (
            r#"{remove: {json: [x]}}"#,
            r#"{\"d\":1,\"x\":0,\"d\":2}"#,
            r#"{"d":2}"#,
        ),
    ];
    for (config, body, want) in cases {
        let output = format!(
            r#"{{"statusCode":200,"headers":{{"Content-Type":"application/json"}},"body":"{body}"}}"#
        );
        let output: &'static str = Box::leak(output.into_boxed_str());
        let a = answer(config, output);
        assert_eq!(a.text(), *want, "{config}");
        assert_eq!(
            a.header("Content-Length"),
            Some(want.len().to_string().as_str()),
            "{config}"
        );
    }
}

#[test]
fn bodies_that_are_not_json_objects_pass_untouched() {
    let config = r#"{add: {json: ["k:v"]}}"#;
    for (content_type, body, transformed_body) in [
        ("application/json", r#"[1,2]"#, None),
        ("application/json", r#"{\"cut"#, None),
        ("text/plain", r#"{}"#, None),
        (
            "application/problem+json; charset=utf-8",
            r#"{}"#,
            Some(r#"{"k":"v"}"#),
        ),
        ("text/html, application/json", r#"{}"#, Some(r#"{"k":"v"}"#)),
    ] {
        let output = format!(
            r#"{{"statusCode":200,"headers":{{"Content-Type":"{content_type}"}},"body":"{body}"}}"#
        );
        let a = answer(config, Box::leak(output.into_boxed_str()));
        let sent = body.replace("\\\"", "\"");
        assert_eq!(
            a.text(),
            transformed_body.unwrap_or(&sent),
            "{content_type} {body}"
        );
    }
}

#[test]
fn a_bad_entry_is_a_schema_violation_naming_it() {
    for (config, field) in [
        (r#"{add: {headers: ["no-colon"]}}"#, "config.add.headers[0]"),
        (
            r#"{rename: {headers: ["x-a:bad name"]}}"#,
            "config.rename.headers[0]",
        ),
        (
            r#"{append: {json_types: [integer]}}"#,
            "config.append.json_types[0]",
        ),
        (r#"{add: {nope: []}}"#, "config.add.nope"),
        (r#"{add: [x]}"#, "config.add"),
    ] {
        let err = Pipeline::new(&transformed(config), |_, _| {})
            .err()
            .unwrap_or_else(|| panic!("{config} accepted"));
        assert!(err.contains(field), "{config}: {err}");
    }
}

#[test]
fn kongs_documented_admin_api_example_runs_as_written() {
    if !installed("curl", "curl") {
        return;
    }
    let mock = MockLambda::start();
    let dir = TempDir::new("response-transformer");
    for driver in DRIVERS {
        let gw = Gateway::start_admin_with(&mock, &one_route_config(&mock), driver, &dir);
        let admin = gw.admin.expect("admin API");
        // developer.konghq.com/plugins/response-transformer/examples ("Add a new header"), the
        // Admin API's address put in.
        let example = r#"curl -i -X POST http://localhost:8001/plugins/ \
--header "Accept: application/json" \
--header "Content-Type: application/json" \
--data '
{
"name": "response-transformer",
"config": {
"add": {
"headers": [
"New-Header:Header Value"
]
}
},
"tags": []
}
'"#;
        let printed = run_documented(example, admin);
        assert!(printed.starts_with("HTTP/1.1 201"), "{driver:?}: {printed}");
        assert!(
            printed.contains(r#""name":"response-transformer""#),
            "{printed}"
        );
        // The records not given are shown with their fields' defaults, as Kong shows them.
        assert!(
            printed.contains(r#""remove":{"headers":[],"json":[]}"#),
            "{printed}"
        );
        let r = gw.send(&get("/r?x=1"));
        assert_eq!(r.status, 200, "{driver:?}");
        assert_eq!(r.header("New-Header"), Some("Header Value"), "{driver:?}");
    }
}

#[test]
fn a_streamed_answer_gets_its_headers_transformed_and_its_body_as_sent() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/s", "stream-sse", "invoke_mode: RESPONSE_STREAM").replace(
        "  - name: aws-lambda\n",
        "  - {name: response-transformer, config: {remove: {headers: [X-Fn]}, add: {headers: [\"x-t:1\"], json: [\"k:v\"]}}}\n  - name: aws-lambda\n",
    );
    if !installed("curl", "curl") {
        return;
    }
    for driver in DRIVERS {
        let gw = Gateway::start(&mock, &config, driver);
        let out = std::process::Command::new("curl")
            .args(["-sS", "-i", &format!("http://{}/s", gw.addr)])
            .output()
            .expect("curl runs");
        let printed = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        let (head, body) = printed.split_once("\n\n").expect("a head");
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 201"), "{driver:?}: {head}");
        assert!(head.contains("\nx-t: 1\n"), "{driver:?}: {head}");
        assert!(!head.contains("x-fn"), "{driver:?}: {head}");
        assert!(
            head.contains("transfer-encoding: chunked"),
            "{driver:?}: {head}"
        );
        assert_eq!(body, "data: 1\n\ndata: 2\n\ndata: 3\n\n", "{driver:?}");
    }
}

/// One regex route `/users/<id>`: aws-lambda forwarding everything Kong's payload can carry
/// (or, with `event`, an API Gateway 2.0 event), and request-transformer with `config`.
fn request_transformed(config: &str, event: bool) -> Pipeline {
    let mode = if event {
        "awsgateway_compatible: true, awsgateway_compatible_payload_version: \"2.0\""
    } else {
        "forward_request_method: true, forward_request_uri: true, forward_request_headers: true, forward_request_body: true"
    };
    let yaml = format!(
        "_format_version: \"3.0\"\nroutes:\n- name: users\n  paths: [\"~/users/(?<id>\\\\d+)$\"]\n  plugins:\n  - {{name: aws-lambda, config: {{function_name: f, {mode}, {KEYS}}}}}\n  - {{name: request-transformer, config: {config}}}\n"
    );
    Pipeline::new(&yaml, |_, out| write_answer(out, 200, &[], b"{}"))
        .unwrap_or_else(|e| panic!("{config}: {e}"))
}

/// What the function was sent for the raw request `raw`.
fn sent(p: &Pipeline, raw: &str) -> serde_json::Value {
    let a = p.send(raw.as_bytes());
    assert_eq!(a.status, 200, "{raw}: {}", a.text());
    let invokes = p.invokes.borrow();
    let (_, payload) = invokes.last().expect("an invoke");
    serde_json::from_slice(payload).expect("JSON payload")
}

#[test]
fn request_transformer_changes_what_the_function_sees() {
    // Headers, in Kong's order, templates reading the request as it came.
    let p = request_transformed(
        r#"{remove: {headers: [x-remove]}, rename: {headers: ["x-old:x-new"]}, replace: {headers: ["x-keep:$(headers.x_old)-r", "host:new.host"]}, add: {headers: ["x-added:$(query_params.q)", "x-keep:no"]}, append: {headers: ["x-keep:more"]}}"#,
        false,
    );
    let got = sent(
        &p,
        "GET /users/42?q=1 HTTP/1.1\r\nHost: gw.test\r\nX-Remove: 1\r\nX-Old: o\r\nX-Keep: k\r\n\r\n",
    );
    let headers = &got["request_headers"];
    assert_eq!(headers["x-new"], "o", "{got}");
    assert_eq!(
        headers["x-keep"],
        serde_json::json!(["o-r", "more"]),
        "{got}"
    );
    assert_eq!(headers["x-added"], "1", "{got}");
    assert_eq!(headers["host"], "new.host", "{got}");
    assert!(
        headers.get("x-remove").is_none() && headers.get("x-old").is_none(),
        "{got}"
    );

    // The query, the path and the method; the route's captures in templates.
    let p = request_transformed(
        r#"{http_method: PUT, replace: {uri: "/v2/$(uri_captures.id)/$(uri_captures[1])", querystring: ["r:$(uri_captures.id)"]}, remove: {querystring: [drop]}, rename: {querystring: ["old:new"]}, add: {querystring: ["a:1 2", "r:no"]}, append: {querystring: ["r:2"]}}"#,
        false,
    );
    let got = sent(
        &p,
        "GET /users/42?drop=1&old=v&r=x&q=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n",
    );
    assert_eq!(got["request_method"], "PUT", "{got}");
    assert_eq!(
        got["request_uri"], "/v2/42/42?r=42&r=2&q=1&new=v&a=1%202",
        "{got}"
    );
    assert_eq!(got["request_uri_args"]["a"], "1 2", "{got}");

    // A JSON body: members kept in order, `false` counted as missing by add.
    let p = request_transformed(
        r#"{remove: {body: [rm]}, rename: {body: ["mv:moved", "f:nope"]}, replace: {body: ["keep:$(headers.x_v)"]}, add: {body: ["f:was-false", "new:n"]}, append: {body: ["keep:more"]}}"#,
        false,
    );
    let body = r#"{"keep":1,"f":false,"rm":2,"mv":{"a":[1]}}"#;
    let got = sent(
        &p,
        &format!("POST /users/1 HTTP/1.1\r\nHost: gw.test\r\nX-V: v\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
    );
    let want = r#"{"keep":["v","more"],"f":"was-false","moved":{"a":[1]},"new":"n"}"#;
    assert_eq!(got["request_body"], want, "{got}");
    assert_eq!(
        got["request_headers"]["content-length"],
        want.len().to_string(),
        "{got}"
    );

    // A form body, and to GET: its arguments join the query too.
    let p = request_transformed(
        r#"{http_method: GET, add: {body: ["c:3"]}, rename: {body: ["a:z"]}}"#,
        false,
    );
    let got = sent(
        &p,
        "POST /users/1?q=0 HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\na=1&b=two",
    );
    assert_eq!(got["request_method"], "GET", "{got}");
    assert_eq!(got["request_uri"], "/users/1?q=0&a=1&b=two", "{got}");
    assert_eq!(got["request_body"], "b=two&z=1&c=3", "{got}");
}

#[test]
fn request_transformer_feeds_api_gateway_events_and_fails_clearly() {
    let p = request_transformed(
        r#"{replace: {uri: "/v2/$(uri_captures.id)"}, add: {querystring: ["k:v"], headers: ["x-t:$(headers.host)"]}}"#,
        true,
    );
    let event = sent(&p, "GET /users/7?a=b HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    assert_eq!(event["rawPath"], "/v2/7", "{event}");
    assert_eq!(event["rawQueryString"], "a=b&k=v", "{event}");
    assert_eq!(event["headers"]["x-t"], "gw.test", "{event}");
    // An absolute-form target without a Host line: its authority is still the host sent.
    let event = sent(&p, "GET http://abs.test/users/8 HTTP/1.1\r\n\r\n");
    assert_eq!(event["headers"]["host"], "abs.test", "{event}");
    assert_eq!(event["rawPath"], "/v2/8", "{event}");

    // A path that renders to nothing is the gateway's 500, the function not invoked.
    let p = request_transformed(r#"{replace: {uri: "$(headers.nope)"}}"#, false);
    let a = p.send(b"GET /users/7 HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    assert_eq!(a.status, 500, "{}", a.text());
    assert_eq!(p.invoke_count(), 0);

    // What Lua would run is refused with the configuration.
    let err = Pipeline::new(
        "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/r]\n  plugins:\n  - {name: request-transformer, config: {add: {headers: [\"x:$(os.exit())\"]}}}\n",
        |_, _| {},
    )
    .err()
    .expect("refused");
    assert!(
        err.contains("config.add.headers[0]") && err.contains("not in supported format"),
        "{err}"
    );
}

#[test]
fn kongs_documented_request_transformer_example_runs_as_written() {
    if !installed("curl", "curl") {
        return;
    }
    let mock = MockLambda::start();
    let config = config_for(&mock, "/r", "echo", "forward_request_headers: true")
        .replace("name: svc", "name: example-service");
    let dir = TempDir::new("request-transformer");
    for driver in DRIVERS {
        let gw = Gateway::start_admin_with(&mock, &config, driver, &dir);
        let admin = gw.admin.expect("admin API");
        // Kong's plugin documentation, "add multiple headers by passing each header:value
        // pair separately" (form keys with 1-based indexes), the Admin API's address put in.
        let example = r#"curl -X POST http://localhost:8001/services/example-service/plugins \
  --data "name=request-transformer" \
  --data "config.add.headers[1]=h1:v1" \
  --data "config.add.headers[2]=h2:v1""#;
        let printed = run_documented(example, admin);
        assert!(
            printed.contains(r#""headers":["h1:v1","h2:v1"]"#),
            "{driver:?}: {printed}"
        );
        // Kong's table: incoming `h1: v1` gives upstream `h1: v1` and `h2: v1`.
        let r = gw.send("GET /r HTTP/1.1\r\nHost: gw\r\nh1: v1\r\n\r\n");
        assert_eq!(r.status, 200, "{driver:?}");
        let payload = r.json();
        assert_eq!(
            payload["request_headers"]["h1"], "v1",
            "{driver:?}: {payload}"
        );
        assert_eq!(
            payload["request_headers"]["h2"], "v1",
            "{driver:?}: {payload}"
        );
    }
}
