//! Steady state allocates nothing: parse → access plugins → encode → sign → map of a 1 KiB
//! request, counted by a global allocator, in both payload modes, with a plain and a
//! proxy-integration answer, and with key-auth identifying the caller and rate-limiting
//! counting them; each request also counted in its metric series.

use lambda_gateway::access::{AccessContext, RequestEdits, Verdict};
use lambda_gateway::aws::sigv4::InvokeSigner;
use lambda_gateway::aws::time::AmzDate;
use lambda_gateway::config::environment::Environment;
use lambda_gateway::config::plan::RouteAction;
use lambda_gateway::config::snapshot::Snapshot;
use lambda_gateway::http::encode::{write_response, Response};
use lambda_gateway::http::head::{self, RequestHead};
use lambda_gateway::http::request::Request;
use lambda_gateway::http::Limits;
use lambda_gateway::lambda::event::EventContext;
use lambda_gateway::lambda::payload::PayloadEncoder;
use lambda_gateway::lambda::response::{LambdaAnswer, ResponseMapper};
use lambda_gateway::metrics::{RequestRecord, Source, WorkerMetrics};
use lambda_gateway::upstream::client::{encode_request, InvokeBuffers};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;

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

/// Allocations made by `f`, on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

const CONFIG: &str = r#"
_format_version: "3.0"
routes:
- {name: legacy, paths: [/legacy], plugins: [{name: aws-lambda, config: {function_name: f, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET}}]}
- {name: forward, paths: [/forward], plugins: [{name: aws-lambda, config: {function_name: "arn:aws:lambda:us-east-1:123456789012:function:f", aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET, is_proxy_integration: true,
    forward_request_method: true, forward_request_uri: true, forward_request_headers: true, forward_request_body: true}}]}
- {name: event-v1, paths: [/event-v1], plugins: [{name: aws-lambda, config: {function_name: f, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET, is_proxy_integration: true, awsgateway_compatible: true}}]}
- {name: event-v2, paths: [/event-v2], plugins: [{name: aws-lambda, config: {function_name: f, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET, is_proxy_integration: true, awsgateway_compatible: true, awsgateway_compatible_payload_version: "2.0"}}]}
- {name: key-auth, paths: [/key-auth], plugins: [{name: key-auth}, {name: rate-limiting, config: {minute: 1000000000, hour: 1000000000}}, {name: aws-lambda, config: {function_name: f, aws_region: us-east-1, aws_key: AKID, aws_secret: SECRET,
    forward_request_method: true, forward_request_uri: true, forward_request_headers: true, forward_request_body: true}}]}
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

#[test]
fn the_request_path_allocates_nothing_in_steady_state() {
    let cfg = lambda_gateway::config::parse(CONFIG).expect("valid config");
    let (snapshot, _) = Snapshot::build(cfg, &Environment::default());
    let limits = Limits::default();
    let lambda_headers: Vec<(&[u8], &[u8])> = vec![
        (b"Content-Type", b"application/json"),
        (b"x-amzn-RequestId", b"a1b2c3d4-0000-4000-8000-000000000001"),
        (b"X-Amzn-Trace-Id", b"root=1-6543-abcdef;sampled=0"),
        (b"X-Amz-Executed-Version", b"$LATEST"),
        (b"Content-Length", b"1024"),
    ];
    let mut plain_answer = br#"{"output":""#.to_vec();
    plain_answer.resize(1022, b'y');
    plain_answer.extend_from_slice(b"\"}");
    let proxy_answer = br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Count":3},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"aGVsbG8gd29ybGQ=","isBase64Encoded":true}"#.to_vec();

    let mut head = RequestHead::default();
    let mut encoder = PayloadEncoder::default();
    let mut signer = InvokeSigner::default();
    let mut bufs = InvokeBuffers::default();
    let mut mapper = ResponseMapper::default();
    let mut resp = Response::default();
    let mut out = Vec::new();
    let mut answer_buf = Vec::new();
    let mut edits = RequestEdits::default();
    let date = AmzDate::from_unix(1_732_406_400);

    // An output without statusCode: payload 2.0 infers a 200 from it.
    let inferred_answer = plain_answer.clone();
    let params: [(&str, &[u8]); 1] = [("id", b"42")];
    let event = EventContext {
        resource: Some("/event"),
        path_params: &params,
        source_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        request_id: "c6af9ac6-7b61-11e6-9a41-93e812345678",
        time: std::time::SystemTime::now(),
        caller: None,
    };
    let metrics = WorkerMetrics::default();
    // key-auth's route identifies alice; the others nobody.
    let ctx_consumer =
        |s: &Snapshot, route: usize| if route == 4 { s.consumer_metrics[0] } else { 0 };
    for (path, route_index, answer) in [
        ("/legacy", 0usize, &plain_answer),
        ("/forward", 1, &proxy_answer),
        ("/event-v1", 2, &proxy_answer),
        ("/event-v2", 3, &inferred_answer),
        ("/key-auth", 4, &plain_answer),
    ] {
        let raw = request(path);
        let plan = &snapshot.plans[route_index];
        let RouteAction::Invoke(plugin) = &plan.action else {
            panic!("route {route_index} invokes nothing");
        };
        let steps = &plan.access;
        let mut one = || {
            assert_eq!(head::parse(&raw, &limits, &mut head), Ok(true));
            let req = Request {
                peer: None,
                secure: false,
                buf: &raw,
                head: &head,
                body: &raw[head.len..],
            };
            // The access plugins (key-auth on its route), and the request they change.
            edits.clear();
            let mut ctx = AccessContext {
                identities: &snapshot.identities,
                consumer: None,
                authenticated: false,
                credential: None,
                edits: &mut edits,
                service: None,
                jwt_claims: None,
            };
            for p in steps.iter() {
                // These plugins decide in one poll (only exact Redis counting waits).
                let decided = std::pin::pin!(p.1.access(&req, &mut ctx, &mut resp))
                    .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
                assert_eq!(decided, std::task::Poll::Ready(Verdict::Continue));
            }
            let req = if edits.is_empty() {
                req
            } else {
                edits.apply(&req).expect("rewritten")
            };
            encoder
                .encode_unpaced(&plugin.config, &req, &event)
                .expect("fits");
            // Loading fixed credentials borrows them: nothing allocated.
            let creds = plugin
                .credentials
                .current()
                .expect("usable")
                .expect("ready");
            encode_request(&mut signer, plugin, &creds, &encoder.out, &date, &mut bufs);
            answer_buf.clear();
            answer_buf.extend_from_slice(answer);
            resp.clear();
            mapper.map(
                &plugin.config,
                LambdaAnswer {
                    status: 200,
                    headers: &lambda_headers,
                    body: &mut answer_buf,
                },
                &mut resp,
            );
            out.clear();
            write_response(&mut out, &resp, true, false);
            // The metrics: the request adds to its series once they exist.
            metrics.record(&RequestRecord {
                route: plan.metrics_label,
                consumer: ctx_consumer(&snapshot, route_index),
                status: resp.status,
                source: Source::Service,
                ingress: raw.len() as u64,
                egress: out.len() as u64,
                request_ms: 1,
                upstream_ms: Some(1),
                policy: plan.metrics,
            });
        };
        // Warm up: buffers grow to their steady size, the signing key is derived and cached.
        for _ in 0..3 {
            one();
        }
        let n = allocations_in(|| {
            for _ in 0..1000 {
                one();
            }
        });
        assert_eq!(n, 0, "{path}: {n} allocations in 1000 requests");
        assert!(resp.status == 200 || resp.status == 201);
    }
    // The counter works: an allocation is seen.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
}
