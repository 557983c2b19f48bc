//! Response streaming (`invoke_mode: RESPONSE_STREAM`): the gateway calls
//! `InvokeWithResponseStream` and passes each chunk on as it arrives, chunked, with the status
//! and headers of the function's HTTP integration prelude; errors after the first byte cut the
//! body short; `timeout` bounds the first byte and each gap, not the stream; slow clients slow
//! the function's stream and memory stays bounded. The mock writes its event streams with the
//! AWS SDK's own codec.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::streams::produced;
use support::*;

/// Routes `/{function}` (streaming) each with extra plugin config `extra`.
fn config(mock: &MockLambda, routes: &[(&str, &str)]) -> String {
    let mut out = "_format_version: \"3.0\"\nroutes:\n".to_string();
    for (function, extra) in routes {
        let name = function.replace(':', "-");
        out.push_str(&format!(
            "- name: {name}\n  paths: [/{name}]\n  plugins: [{{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: {function}, host: localhost, port: {}, invoke_mode: RESPONSE_STREAM{extra}}}}}]\n",
            mock.addr.port()
        ));
    }
    out
}

/// A streamed response as a client reads it.
struct Streamed {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The last chunk arrived (a whole body), as opposed to the connection closing first.
    complete: bool,
    /// HTTP chunks the body came in (0 unless chunked).
    chunks: usize,
}

impl Streamed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `r`: a chunked body decoded (noting whether it ended properly),
/// a `Content-Length` body, or a body until close.
fn read_streamed(r: &mut BufReader<TcpStream>) -> Streamed {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let n = r.read_until(b'\n', &mut head).expect("read head");
        assert!(
            n > 0,
            "closed in the head: {:?}",
            String::from_utf8_lossy(&head)
        );
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    let complete;
    let mut chunks = 0;
    if find("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                complete = false;
                break;
            }
            let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
            let mut data = vec![0; size + 2];
            if r.read_exact(&mut data).is_err() {
                complete = false;
                break;
            }
            if size == 0 {
                complete = true;
                break;
            }
            body.extend_from_slice(&data[..size]);
            chunks += 1;
        }
    } else if let Some(len) = find("content-length") {
        body.resize(len.parse().unwrap(), 0);
        r.read_exact(&mut body).expect("body");
        complete = true;
    } else {
        r.read_to_end(&mut body).expect("body");
        complete = true;
    }
    Streamed {
        status,
        headers,
        body,
        complete,
        chunks,
    }
}

fn connect(gw: &Gateway) -> BufReader<TcpStream> {
    let s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    BufReader::new(s)
}

fn request(r: &mut BufReader<TcpStream>, raw: &str) -> Streamed {
    r.get_mut().write_all(raw.as_bytes()).expect("send");
    read_streamed(r)
}

fn fetch(gw: &Gateway, path: &str) -> Streamed {
    request(&mut connect(gw), &get(path))
}

#[test]
fn curl_prints_each_chunk_as_the_function_writes_it() {
    if !installed("curl", "curl") {
        return;
    }
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &config(&mock, &[("stream-ticks", "")]), driver);
        let started = Instant::now();
        let mut curl = std::process::Command::new("curl")
            .args(["-sS", "-N", &format!("http://{}/stream-ticks", gw.addr)])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("curl runs");
        let mut lines = Vec::new();
        for line in BufReader::new(curl.stdout.take().unwrap()).lines() {
            lines.push((started.elapsed(), line.expect("a line")));
        }
        assert!(
            curl.wait().unwrap().success(),
            "{driver:?}: curl saw a complete response"
        );
        let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            texts,
            ["tick 0", "tick 1", "tick 2", "tick 3", "tick 4"],
            "{driver:?}"
        );
        // The function runs 1.2 s (four 300 ms waits); its first line reaches curl long before
        // that, and every line about when it was written.
        let at: Vec<u128> = lines.iter().map(|(t, _)| t.as_millis()).collect();
        eprintln!("{driver:?}: lines at {at:?} ms");
        assert!(at[0] < 700, "{driver:?}: first byte after {} ms", at[0]);
        assert!(
            at[4] >= 1150,
            "{driver:?}: the last line came early ({at:?})"
        );
        for pair in at.windows(2) {
            assert!(
                pair[1] - pair[0] >= 200,
                "{driver:?}: lines arrived together: {at:?}"
            );
        }
        let invoke = mock.last();
        assert_eq!(
            invoke.target,
            "/2021-11-15/functions/stream-ticks/response-streaming-invocations"
        );
        assert!(mock.assert_all_signatures_valid() >= 1);
    }
}

#[test]
fn the_prelude_sets_status_headers_and_cookies_and_connections_are_reused() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = one_worker(
            &mock,
            &config(&mock, &[("stream-sse", ""), ("stream-ticks", "")]),
            driver,
        );
        let mut c = connect(&gw);
        for _ in 0..2 {
            let r = request(&mut c, &get("/stream-sse"));
            assert_eq!(r.status, 201, "{driver:?}");
            assert!(r.complete);
            assert_eq!(r.header("Content-Type"), Some("text/event-stream"));
            assert_eq!(r.header("X-Fn"), Some("yes"));
            assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
            assert_eq!(r.header("Content-Length"), None);
            assert_eq!(
                r.header("x-amzn-RequestId"),
                Some("5f2a0c4e-0000-4000-8000-00000000000a")
            );
            let cookies: Vec<&str> = r
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
            assert_eq!(r.text(), "data: 1\n\ndata: 2\n\ndata: 3\n\n");
        }
        // Without a prelude: a 200 with the function's content type.
        let r = request(&mut c, &get("/stream-ticks"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.text(), "tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n");
        // One client connection carried all three; one worker reused one Lambda connection.
        assert_eq!(
            mock.connections(),
            1,
            "{driver:?}: the Lambda connection was not pooled"
        );
        // HEAD gets the head only, and the connection goes on.
        c.get_mut()
            .write_all(b"HEAD /stream-ticks HTTP/1.1\r\nHost: g\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            c.read_until(b'\n', &mut head).unwrap();
        }
        assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let r = request(&mut c, &get("/stream-sse"));
        assert_eq!(r.status, 201);
    }
}

impl Streamed {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[test]
fn errors_after_the_first_byte_cut_the_body_and_before_it_are_whole_answers() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let routes = [
            ("stream-fails-midway", ""),
            ("stream-fails-first", ""),
            ("stream-fails-first:proxy", ", is_proxy_integration: true"),
            ("stream-exception", ""),
            ("stream-corrupt", ""),
            ("stream-corrupt-first", ""),
            ("stream-cut", ""),
            ("stream-empty", ""),
            ("stream-prelude-unended", ""),
            ("stream-prelude-bad", ""),
            ("stream-5mib", ", max_stream_bytes: 1048576"),
            ("stream-sse:capped", ", max_stream_bytes: 4"),
        ];
        let gw = Gateway::start(&mock, &config(&mock, &routes), driver);
        // After the first byte: the bytes so far, then the connection closes with no last
        // chunk; curl calls that a transfer closed with outstanding data (exit 18).
        for (path, sent) in [
            ("/stream-fails-midway", "partial output"),
            ("/stream-exception", "partial"),
            ("/stream-corrupt", "good bytes"),
            ("/stream-cut", "half"),
        ] {
            let r = fetch(&gw, path);
            assert_eq!(r.status, 200, "{driver:?} {path}");
            assert!(
                !r.complete,
                "{driver:?} {path}: a failed stream looked complete"
            );
            assert_eq!(r.text(), sent, "{driver:?} {path}");
            if !installed("curl", "curl") {
                continue;
            }
            let curl = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "-o",
                    "/dev/null",
                    &format!("http://{}{path}", gw.addr),
                ])
                .output()
                .unwrap();
            assert_eq!(
                curl.status.code(),
                Some(18),
                "{driver:?} {path}: curl saw {curl:?}"
            );
        }
        // The cap: cut at max_stream_bytes, never past it.
        let r = fetch(&gw, "/stream-5mib");
        assert!(!r.complete);
        assert!(
            r.body.len() <= 1024 * 1024 && r.body.len() >= 960 * 1024,
            "{}",
            r.body.len()
        );
        // A first chunk past the cap: the head (the prelude's), and no body byte.
        let r = fetch(&gw, "/stream-sse-capped");
        assert_eq!((r.status, r.body.len(), r.complete), (201, 0, false));
        // Before the first byte: whole answers, as a buffered function error is answered: in
        // Kong's pass-through the function's status and its error, with proxy integration a
        // 502 with nothing of the error.
        let r = fetch(&gw, "/stream-fails-first");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Amz-Function-Error"), Some("Unhandled"));
        let err: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(err["errorType"], "Runtime.ExitError");
        assert_eq!(err["errorMessage"], "exited before writing");
        let r = fetch(&gw, "/stream-fails-first-proxy");
        assert_eq!(r.status, 502);
        assert_eq!(
            r.text(),
            r#"{"message":"Bad Gateway","error":"the Lambda function failed"}"#
        );
        for path in [
            "/stream-corrupt-first",
            "/stream-prelude-unended",
            "/stream-prelude-bad",
        ] {
            let r = fetch(&gw, path);
            assert_eq!(r.status, 502, "{driver:?} {path}: {}", r.text());
            assert!(r.complete);
        }
        let r = fetch(&gw, "/stream-empty");
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(r.header("Content-Length"), Some("0"));
        std::thread::sleep(Duration::from_millis(100));
        let logs = gw.logs();
        for expected in [
            "cause=\"function error: Runtime.ExitError: exited with status 1\" side=upstream streamed_bytes=",
            "ServiceException exception",
            "event-stream message checksum mismatch",
            "the connection closed before the stream ended",
            "larger than max_stream_bytes (1048576)",
            "cause=\"function error: Runtime.ExitError",
            "the streamed response ended inside its prelude",
            "statusCode must be a number",
        ] {
            assert!(
                logs.contains(expected),
                "{driver:?}: no {expected:?} in\n{logs}"
            );
        }
    }
}

#[test]
fn events_received_together_leave_together_up_to_the_cap() {
    let mock = MockLambda::start();
    let routes = [
        ("stream-tokens", ""),
        ("stream-tokens:capped", ", max_stream_bytes: 5005"),
    ];
    let expected: String = (0..1000).map(|i| format!("token{i:04}\n")).collect();
    for driver in DRIVERS {
        let gw = Gateway::start(&mock, &config(&mock, &routes), driver);
        // 1,000 small events in one burst: a handful of chunks to the client, not one each.
        let r = fetch(&gw, "/stream-tokens");
        assert!(r.complete);
        assert_eq!(r.text(), expected);
        eprintln!(
            "{driver:?}: 1,000 events of 10 bytes reached the client in {} chunks",
            r.chunks
        );
        assert!(r.chunks <= 50, "{driver:?}: {} chunks", r.chunks);
        // The cap falls inside a gathered piece: every event under it arrives, then the cut.
        let r = fetch(&gw, "/stream-tokens-capped");
        assert!(!r.complete);
        assert_eq!(r.text(), expected[..5000]);
        assert!(gw.logged("larger than max_stream_bytes (5005)"));
    }
}

#[test]
fn timeout_bounds_the_first_byte_and_each_gap_not_the_stream() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let t = ", timeout: 1000";
        let routes = [
            ("stream-slow-start", t),
            ("stream-stall", t),
            ("stream-long", t),
            ("stream-slow-end", ""),
        ];
        let gw = Gateway::start(&mock, &config(&mock, &routes), driver);
        let started = Instant::now();
        let r = fetch(&gw, "/stream-slow-start");
        assert_eq!(r.status, 504, "{driver:?}");
        assert!(started.elapsed() < Duration::from_millis(1450));
        let r = fetch(&gw, "/stream-stall");
        assert_eq!(
            (r.status, r.text().as_str(), r.complete),
            (200, "first", false)
        );
        // The answer ends with InvokeComplete, not with Lambda's HTTP body 2 s later.
        let started = Instant::now();
        let r = fetch(&gw, "/stream-slow-end");
        assert_eq!((r.text().as_str(), r.complete), ("all of it", true));
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{driver:?}"
        );
        // 1.2 s in all, never 1 s without a chunk: whole.
        let r = fetch(&gw, "/stream-long");
        assert!(r.complete, "{driver:?}");
        assert_eq!(r.text(), "0,1,2,3,4,5,6,7,8,9,10,11,");
    }
}

#[test]
fn every_payload_mode_streams_and_throttles_are_retried() {
    let mock = MockLambda::start();
    let routes = [
        ("stream-echo", ""),
        (
            "stream-echo:fwd",
            ", forward_request_method: true, forward_request_uri: true, forward_request_body: true",
        ),
        ("stream-echo:apigw", ", awsgateway_compatible: true"),
        (
            "stream-echo:apigw2",
            ", awsgateway_compatible: true, awsgateway_compatible_payload_version: \"2.0\"",
        ),
        ("stream-throttled-once", ", retries: 1"),
        ("stream-echo:quiet", ", log_type: None"),
    ];
    let gw = Gateway::start(&mock, &config(&mock, &routes), Driver::IoUring);
    let post = |path: &str| {
        let raw = format!(
            "POST {path}?q=1 HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{{\"k\":\"v\"}}"
        );
        let r = request(&mut connect(&gw), &raw);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.complete);
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    assert_eq!(post("/stream-echo")["k"], "v");
    // The tail of the function's log (Kong's default `log_type: Tail`) comes in InvokeComplete
    // and goes to the gateway's debug log, as a buffered answer's does; not asked, none.
    assert!(
        gw.logged(&format!(
            "route=stream-echo function=stream-echo log_result={LOG_TAIL}"
        )),
        "{}",
        gw.logs()
    );
    assert_eq!(post("/stream-echo-quiet")["k"], "v");
    assert!(!gw
        .logs()
        .contains("route=stream-echo-quiet function=stream-echo:quiet log_result"));
    let fwd = post("/stream-echo-fwd");
    assert_eq!(fwd["request_method"], "POST");
    assert_eq!(fwd["request_uri_args"]["q"], "1");
    let v1 = post("/stream-echo-apigw");
    assert_eq!(v1["httpMethod"], "POST");
    assert_eq!(v1["path"], "/stream-echo-apigw");
    let v2 = post("/stream-echo-apigw2");
    assert_eq!(v2["version"], "2.0");
    assert_eq!(v2["requestContext"]["http"]["method"], "POST");
    // Throttled once, then run: the retry happens before any byte, so it is safe.
    let r = fetch(&gw, "/stream-throttled-once");
    assert_eq!((r.status, r.text().as_str()), (200, "ran once"));
    let target = "/2021-11-15/functions/stream-throttled-once/response-streaming-invocations";
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.target == target)
            .count(),
        2
    );
    // An HTTP/1.0 client cannot read chunks: the body ends with the connection.
    let mut c = connect(&gw);
    c.get_mut()
        .write_all(b"GET /stream-echo HTTP/1.0\r\nHost: g\r\n\r\n")
        .unwrap();
    let r = read_streamed(&mut c);
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.status, 200);
}

#[test]
fn fifty_mib_stream_through_bounded_memory() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = one_worker(&mock, &config(&mock, &[("stream-50mib", "")]), driver);
        // Warm up (buffers, TLS), then measure.
        let _ = fetch(&gw, "/stream-sse");
        let before = rss_kb(gw.pid());
        let mut c = connect(&gw);
        c.get_mut()
            .write_all(get("/stream-50mib").as_bytes())
            .unwrap();
        let sampler = {
            let pid = gw.pid();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = stop.clone();
            let t = std::thread::spawn(move || {
                let mut peak = 0;
                while !s.load(std::sync::atomic::Ordering::SeqCst) {
                    peak = peak.max(rss_kb(pid));
                    std::thread::sleep(Duration::from_millis(5));
                }
                peak
            });
            (stop, t)
        };
        let r = read_streamed(&mut c);
        sampler.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let peak = sampler.1.join().unwrap();
        assert!(r.complete, "{driver:?}");
        assert_eq!(r.body.len(), 50 * 1024 * 1024);
        assert!(r.body.iter().all(|&b| b == b'x'));
        eprintln!(
            "{driver:?}: gateway RSS {before} KiB before, peak {peak} KiB while streaming 50 MiB"
        );
        assert!(
            peak < before + 16 * 1024,
            "{driver:?}: RSS grew from {before} to {peak} KiB"
        );
    }
}

#[test]
fn a_slow_reader_slows_the_function_and_a_gone_one_stops_it() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let routes = [("stream-50mib-slow", ""), ("stream-50mib-gone", "")];
        let gw = one_worker(&mock, &config(&mock, &routes), driver);
        let mut c = connect(&gw);
        c.get_mut()
            .write_all(get("/stream-50mib-slow").as_bytes())
            .unwrap();
        let mut got = vec![0u8; 1024 * 1024];
        c.read_exact(&mut got).unwrap();
        // The client stops reading: the function's writes stop once the buffers between
        // (sockets on both sides, one chunk in the gateway) are full.
        std::thread::sleep(Duration::from_millis(1500));
        let stalled = produced("stream-50mib-slow");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            produced("stream-50mib-slow"),
            stalled,
            "{driver:?}: still producing"
        );
        eprintln!(
            "{driver:?}: the function stopped after {} KiB while the client had read 1 MiB",
            stalled / 1024
        );
        assert!(
            stalled < 30 * 1024 * 1024,
            "{driver:?}: {stalled} bytes produced"
        );
        // Reading on gets every byte.
        let mut rest = Vec::new();
        let mut tail = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(30);
        while !rest.ends_with(b"0\r\n\r\n") && Instant::now() < deadline {
            let n = c.read(&mut tail).unwrap();
            assert!(n > 0);
            rest.extend_from_slice(&tail[..n]);
        }
        assert!(
            rest.ends_with(b"\r\n0\r\n\r\n"),
            "{driver:?}: no last chunk"
        );
        assert_eq!(produced("stream-50mib-slow"), 50 * 1024 * 1024);

        // A client that goes away mid-stream: the gateway closes its Lambda connection, so
        // the function's writes stop.
        let mut c = connect(&gw);
        c.get_mut()
            .write_all(get("/stream-50mib-gone").as_bytes())
            .unwrap();
        c.read_exact(&mut got).unwrap();
        drop(c);
        std::thread::sleep(Duration::from_millis(1500));
        let at_stop = produced("stream-50mib-gone");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(produced("stream-50mib-gone"), at_stop, "{driver:?}");
        assert!(at_stop < 30 * 1024 * 1024, "{driver:?}: {at_stop}");
        let logs = gw.logs();
        assert!(logs.contains("client gone after"), "{driver:?}: {logs}");
        // The worker serves on.
        assert_eq!(
            fetch(&gw, "/stream-50mib-slow").body.len(),
            50 * 1024 * 1024
        );
    }
}
