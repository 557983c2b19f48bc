//! Steady state allocates nothing: the proxy's real request path (`Proxy::handle` on a
//! monoio runtime: route, access plugins, payload, SigV4 signing, the invoke's request and
//! response bytes, response mapping, metrics) over an in-memory Lambda, for a 1 KiB POST,
//! counted by a global allocator: in both payload modes, both API Gateway events, with a plain
//! and a proxy-integration answer, and with key-auth identifying the caller and rate-limiting
//! counting them; and a proxy-cache hit (a GET answered from the node's cache, its body shared,
//! not copied). The answer is also written as the connection writes it. With `opentelemetry`,
//! recording a sampled request's spans allocates nothing.

use lambda_gateway::config::environment::Environment;
use lambda_gateway::config::snapshot::Snapshot;
use lambda_gateway::http::encode::{write_response, Response};
use lambda_gateway::http::head::RequestHead;
use lambda_gateway::proxy::testing::Pipeline;
use lambda_gateway::upstream::invoker::{write_answer, InMemoryLambda};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the only addition is a
// thread-local counter update, which neither allocates nor touches the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count() {
    // try_with: the thread-local may be gone while a thread shuts down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts counting this thread's allocations from 0 (`true`), or stops and says how many
/// there were.
fn counting(on: bool) -> u64 {
    if on {
        ALLOCATIONS.with(|n| n.set(0));
    }
    COUNTING.with(|c| c.set(on));
    ALLOCATIONS.with(|n| n.get())
}

/// Allocations made by `f`, on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    counting(true);
    f();
    counting(false)
}

const CONFIG: &str = r#"
_format_version: "3.0"
routes:
- {name: legacy, paths: [/legacy], plugins: [{name: aws-lambda, config: {function_name: plain, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET}}]}
- {name: forward, paths: [/forward], plugins: [{name: aws-lambda, config: {function_name: "arn:aws:lambda:us-east-1:123456789012:function:proxy", aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET, is_proxy_integration: true,
    forward_request_method: true, forward_request_uri: true, forward_request_headers: true, forward_request_body: true}}]}
- {name: event-v1, paths: [/event-v1], plugins: [{name: aws-lambda, config: {function_name: proxy, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET, is_proxy_integration: true, awsgateway_compatible: true}}]}
- {name: event-v2, paths: [/event-v2], plugins: [{name: aws-lambda, config: {function_name: inferred, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET, is_proxy_integration: true, awsgateway_compatible: true, awsgateway_compatible_payload_version: "2.0"}}]}
- {name: key-auth, paths: [/key-auth], plugins: [{name: key-auth}, {name: rate-limiting, config: {minute: 1000000000, hour: 1000000000}}, {name: aws-lambda, config: {function_name: plain, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET,
    forward_request_method: true, forward_request_uri: true, forward_request_headers: true, forward_request_body: true}}]}
- {name: cached, paths: [/cached], plugins: [{name: proxy-cache, config: {strategy: memory}}, {name: aws-lambda, config: {function_name: plain, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET}}]}
- {name: sampled, paths: [/sampled], plugins: [{name: opentelemetry, config: {traces_endpoint: "http://127.0.0.1:9/v1/traces", sampling_rate: 1}}, {name: aws-lambda, config: {function_name: plain, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET}}]}
- {name: unsampled, paths: [/unsampled], plugins: [{name: opentelemetry, config: {traces_endpoint: "http://127.0.0.1:9/v1/traces", sampling_rate: 0}}, {name: aws-lambda, config: {function_name: plain, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET}}]}
consumers:
- {username: alice, keyauth_credentials: [{key: k-1}]}
"#;

fn request(path: &str) -> Vec<u8> {
    let mut body = br#"{"message":""#.to_vec();
    body.resize(1024 - 2, b'x');
    body.extend_from_slice(b"\"}");
    let mut raw = format!(
        "POST {path}?a=1&b=two&flag HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nContent-Type: application/json\r\nX-Request-Id: 42\r\napikey: k-1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw
}

/// Lambda's answers, by function: made once, copied into the invoke's read buffer.
fn answers() -> [(&'static str, Vec<u8>); 3] {
    let headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", "a1b2c3d4-0000-4000-8000-000000000001"),
        ("X-Amzn-Trace-Id", "root=1-6543-abcdef;sampled=0"),
        ("X-Amz-Executed-Version", "$LATEST"),
    ];
    let mut output = br#"{"output":""#.to_vec();
    output.resize(1022, b'y');
    output.extend_from_slice(b"\"}");
    let proxy = br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Count":3},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"aGVsbG8gd29ybGQ=","isBase64Encoded":true}"#;
    let answer = |body: &[u8]| {
        let mut raw = Vec::new();
        write_answer(&mut raw, 200, &headers, body);
        raw
    };
    // An output without statusCode: payload 2.0 infers a 200 from it.
    [
        ("plain", answer(&output)),
        ("proxy", answer(proxy)),
        ("inferred", answer(&output)),
    ]
}

#[test]
fn the_request_path_allocates_nothing_in_steady_state() {
    let cfg = lambda_gateway::config::parse(CONFIG).expect("valid config");
    let (snapshot, warnings) = Snapshot::build(cfg, &Environment::default());
    assert!(warnings.is_empty(), "{warnings:?}");
    let answers = answers();
    let lambda = InMemoryLambda::new(move |call, out| {
        let name = call.function.rsplit(':').next().unwrap_or_default();
        let (_, raw) = answers
            .iter()
            .find(|(f, _)| *f == name)
            .expect("a known function");
        out.extend_from_slice(raw);
    });
    let pipeline = Pipeline::with_lambda(snapshot, lambda).expect("a runtime");
    let mut head = RequestHead::default();
    let mut resp = Response::default();
    let mut out = Vec::new();
    let hit =
        b"GET /cached?b=2&a=1 HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\n\r\n".to_vec();
    for (path, status) in [
        ("/legacy", 200),
        ("/forward", 201),
        ("/event-v1", 201),
        ("/event-v2", 200),
        ("/key-auth", 200),
        ("/cached", 200),
    ] {
        let raw = if path == "/cached" {
            hit.clone()
        } else {
            request(path)
        };
        // One task serves them all, as a connection's task serves its requests.
        let n = pipeline.block_on(async {
            let mut one = async || {
                resp.clear();
                pipeline.handle(&raw, &mut head, &mut resp).await;
                out.clear();
                write_response(&mut out, &resp, true, false);
            };
            // Warm up: buffers grow to their steady size, the signing key is derived and
            // cached, the request's metric series are made.
            for _ in 0..3 {
                one().await;
            }
            counting(true);
            for _ in 0..1000 {
                one().await;
            }
            counting(false)
        });
        assert_eq!(
            resp.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(n, 0, "{path}: {n} allocations in 1000 requests");
        if path == "/cached" {
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("X-Cache-Status: Hit"), "{text}");
            assert!(resp.shared.is_some(), "the body is the entry's, not a copy");
        }
    }
    // Tracing: a sampled request's three spans are recorded without allocating. The trace
    // context's headers (made as text for the function's request) are the same work sampled or
    // not, so the two routes allocate alike exactly when recording allocates nothing.
    let mut per_route = Vec::new();
    for path in ["/sampled", "/unsampled"] {
        let raw = request(path);
        let n = pipeline.block_on(async {
            let mut one = async || {
                resp.clear();
                pipeline.handle(&raw, &mut head, &mut resp).await;
            };
            for _ in 0..3 {
                one().await;
            }
            counting(true);
            for _ in 0..1000 {
                one().await;
            }
            counting(false)
        });
        assert_eq!(resp.status, 200, "{path}");
        per_route.push(n);
    }
    assert_eq!(
        per_route[0], per_route[1],
        "sampled vs unsampled allocations in 1000 requests"
    );
    eprintln!(
        "a traced request allocates {} times (propagation's headers), recording its spans 0",
        per_route[0] / 1000
    );
    // And the spans were recorded: the exporter took them and failed to send them (nothing
    // listens at their endpoint), dropping and counting the first batch of 200 (the rest wait,
    // up to `max_entries`, for the collector to answer).
    let dropped = || {
        lambda_gateway::metrics::PROCESS
            .trace_spans_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while dropped() < 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(dropped() >= 200, "{} spans dropped", dropped());
    // The counter works: an allocation is seen.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
}
