//! Robustness: hostile clients, failing Lambda endpoints, reloads. Every case gets its SPEC §6
//! answer, the gateway survives, its memory comes back, and a fresh connection still works.

mod support;

use serde_json::json;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Closes with a TCP reset (SO_LINGER 0) instead of a FIN.
fn reset(stream: std::net::TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(
        stream.as_raw_fd(),
        nix::sys::socket::sockopt::Linger,
        &linger,
    );
    drop(stream);
}

#[test]
fn sighup_reloads_the_file_and_an_invalid_one_keeps_the_old_config() {
    for admin in [false, true] {
        let mock = MockLambda::start();
        let dir = TempDir::new("reload");
        let path = dir.path.join("kong.yml");
        std::fs::write(&path, config_for(&mock, "/a", "echo", "")).expect("write");
        let opts = AdminOptions {
            config_path: path.clone(),
            driver: Driver::IoUring,
            env: vec![],
            args: vec![],
        };
        let gw = if admin {
            Gateway::start_admin(&mock, opts)
        } else {
            Gateway::start_with(
                &mock,
                GatewayOptions {
                    config: &std::fs::read_to_string(&path).expect("read"),
                    driver: Driver::IoUring,
                    env: vec![],
                    args: vec![],
                },
            )
        };
        let path = gw.config_path.clone();
        assert_eq!(gw.send(&get("/a?x=1")).json(), json!({"x": "1"}));
        std::fs::write(&path, config_for(&mock, "/b", "echo", "")).expect("write");
        gw.hup();
        let deadline = Instant::now() + Duration::from_secs(5);
        while gw.send(&get("/b")).status != 200 {
            assert!(
                Instant::now() < deadline,
                "admin={admin}: reload not applied:\n{}",
                gw.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(gw.send(&get("/a")).status, 404);
        std::fs::write(
            &path,
            "_format_version: \"3.0\"\nroutes:\n- {paths: [nope]}\n",
        )
        .expect("write");
        gw.hup();
        assert!(
            gw.logged("failed, keeping the current config"),
            "admin={admin}:\n{}",
            gw.logs()
        );
        assert!(gw.logged("should start with: / (fixed path) or ~/ (regex path)"));
        assert_eq!(gw.send(&get("/b?y=2")).json(), json!({"y": "2"}));
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn a_pipelining_flood_is_answered_in_order() {
    let mock = MockLambda::start();
    let gw = Gateway::start(&mock, &config_for(&mock, "/p", "echo", ""), Driver::IoUring);
    let mut c = gw.connect();
    let mut flood = String::new();
    for i in 0..500 {
        flood.push_str(&get(&format!("/p?i={i}")));
    }
    let writer = {
        let mut s = c.stream.try_clone().expect("clone");
        std::thread::spawn(move || s.write_all(flood.as_bytes()))
    };
    for i in 0..500 {
        let r = c
            .read_response()
            .unwrap_or_else(|| panic!("response {i} missing"));
        assert_eq!(r.json(), json!({"i": i.to_string()}));
    }
    writer.join().expect("writer").expect("write");
    mock.assert_all_signatures_valid();
}

/// Opens `n` connections, sends a request on each, reads every answer, closes them all.
fn wave(gw: &Gateway, n: usize) -> usize {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        match std::net::TcpStream::connect(gw.addr) {
            Ok(s) => clients.push(s),
            Err(e) => panic!("connection {i}: {e}"),
        }
    }
    // Every connection sends a request (no route: answered by the gateway itself).
    for s in clients.iter_mut() {
        s.write_all(get("/nowhere").as_bytes()).expect("write");
    }
    let mut answered = 0;
    for s in clients {
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        if Client::from_stream(s)
            .read_response()
            .is_some_and(|r| r.status == 404)
        {
            answered += 1;
        }
    }
    answered
}

#[test]
fn ten_thousand_concurrent_connections() {
    raise_fd_limit();
    let mock = MockLambda::start();
    let gw = Gateway::start(&mock, &config_for(&mock, "/x", "echo", ""), Driver::IoUring);
    let pid = gw.pid();
    let idle = rss_kb(pid);
    // Waves of 10,000. Freed memory stays with the allocator, and how much a wave leaves
    // behind varies with scheduling: beside other tests, a debug build's RSS wandered from 38
    // to 86 MiB over eight waves without any leak. So this catches a leak of a connection's
    // buffers (2 KiB or more per connection: ~20 MiB a wave, measured 134 MiB from the second
    // wave to the last) by allowing 64 MiB of growth from the smallest of waves two to four;
    // small leaks are `tools/soak`'s to find (a release build, ten minutes, RSS sampled).
    let mut after = Vec::new();
    for _ in 0..8 {
        assert_eq!(wave(&gw, 10_000), 10_000);
        std::thread::sleep(Duration::from_millis(300));
        after.push(rss_kb(pid));
    }
    eprintln!("RSS: idle {idle} KiB, after each wave of 10,000 connections: {after:?} KiB");
    let early = after[1..4].iter().copied().min().unwrap_or(0);
    assert!(
        after[7] <= early + 64 * 1024,
        "RSS kept growing: {after:?} KiB"
    );
    assert_eq!(gw.send(&get("/x?ok=1")).json(), json!({"ok": "1"}));
}

#[test]
fn client_resets_mid_request_and_mid_response() {
    let mock = MockLambda::start();
    let gw = Gateway::start(
        &mock,
        &config_for(&mock, "/slow", "slow", ""),
        Driver::IoUring,
    );
    for _ in 0..20 {
        // Mid-request: half a head, then a reset.
        let mut s = std::net::TcpStream::connect(gw.addr).expect("connect");
        s.write_all(b"POST /slow HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nabc")
            .expect("write");
        reset(s);
    }
    for _ in 0..5 {
        // Mid-response: the invoke is under way (the function takes 600 ms) when the client resets.
        let mut s = std::net::TcpStream::connect(gw.addr).expect("connect");
        s.write_all(get("/slow").as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(100));
        reset(s);
    }
    std::thread::sleep(Duration::from_millis(800));
    let r = gw.send(&get("/slow?after=resets"));
    assert_eq!(r.json(), json!({"after": "resets"}));
    mock.assert_all_signatures_valid();
}

#[test]
fn oversize_chunk_sizes_and_extensions_are_refused() {
    let mock = MockLambda::start();
    let gw = Gateway::start(
        &mock,
        &config_for(&mock, "/c", "echo", "forward_request_body: true"),
        Driver::IoUring,
    );
    let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(5000));
    for body in [
        "fffffffffffffffff\r\n",
        "7fffffffffffffff\r\n",
        long_ext.as_str(),
    ] {
        let raw =
            format!("POST /c HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
        let r = gw.send(&raw);
        assert!(
            r.status == 400 || r.status == 413,
            "{} for {:?}",
            r.status,
            &body[..20.min(body.len())]
        );
    }
    assert_eq!(gw.send(&get("/c")).status, 200);
}

/// Framing shapes that cost work without carrying a request: empty lines before a request
/// line are skipped (RFC 9112 §2.2) but count towards the head limit, a bare LF there is
/// refused, and chunk framing may not outgrow the data it carries.
#[test]
fn empty_lines_and_framing_without_data_are_bounded() {
    let mock = MockLambda::start();
    let gw = Gateway::start(
        &mock,
        &config_for(&mock, "/c", "echo", "forward_request_body: true"),
        Driver::IoUring,
    );
    // A few empty lines, then a request: answered.
    let r = gw.send(&format!("\r\n\r\n{}", get("/c?x=1")));
    assert_eq!(r.status, 200, "{}", r.text());
    // Empty lines sent one packet at a time, more than a head may hold: 431.
    let mut c = gw.connect();
    for _ in 0..200 {
        // The gateway answers and closes once the limit is passed: later writes may fail.
        if c.stream.write_all(&b"\r\n".repeat(100)).is_err() {
            break;
        }
    }
    let r = c.read_response().expect("an answer");
    assert_eq!(r.status, 431);
    let r = gw.send(&format!("\r\n\n{}", get("/c")));
    assert_eq!(r.status, 400);
    // 1-byte chunks: five framing bytes per data byte, refused once past the allowance.
    let tiny = chunked_body(&vec![b'a'; 100_000], 1);
    let mut raw = b"POST /c HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(&tiny);
    let r = gw.connect().request(&raw);
    assert_eq!(r.status, 400);
    // 64-byte chunks are fine.
    let body = vec![b'b'; 100_000];
    let mut raw = b"POST /c HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(&chunked_body(&body, 64));
    let r = gw.connect().request(&raw);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["request_body"].as_str().map(str::len),
        Some(100_000)
    );
    assert_eq!(gw.send(&get("/c")).status, 200);
}

#[test]
fn a_lambda_endpoint_restarted_under_load_fails_only_requests_in_flight() {
    let mock = MockLambda::start();
    let gw = Gateway::start(
        &mock,
        &config_for(&mock, "/r", "echo", "timeout: 3000"),
        Driver::IoUring,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let addr = gw.addr;
    let loaders: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match c.request(get("/r?n=1").as_bytes()).status {
                        200 => ok.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    mock.restart();
    let failed_at_restart = failed.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, Ordering::SeqCst);
    for l in loaders {
        l.join().expect("loader");
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    // At most one request per loader was in flight when the endpoint went away.
    assert!(
        failed <= 4,
        "{failed} failed ({failed_at_restart} around the restart), {ok} succeeded"
    );
    assert!(ok > 20, "{ok} succeeded");
    mock.assert_all_signatures_valid();
}

#[test]
fn broken_lambda_heads_are_502_and_the_pool_recovers() {
    let mock = MockLambda::start();
    for f in ["half-head", "garbage", "lying-length"] {
        let gw = Gateway::start(&mock, &config_for(&mock, "/h", f, ""), Driver::IoUring);
        let mut c = gw.connect();
        for _ in 0..3 {
            assert_eq!(
                c.request_or_logs(get("/h").as_bytes(), &gw).status,
                502,
                "{f}"
            );
        }
    }
    let gw = Gateway::start(
        &mock,
        &config_for(&mock, "/ok", "echo", ""),
        Driver::IoUring,
    );
    assert_eq!(gw.send(&get("/ok?a=b")).json(), json!({"a": "b"}));
}

/// Bodies at the body limit in the worst shapes found for each parser (see
/// benches/worst_case.rs), as (route, content type, body, chunked).
fn worst_case_bodies() -> Vec<(&'static str, &'static str, Vec<u8>, bool)> {
    const LIMIT: usize = 6 * 1024 * 1024;
    let fill = |open: &str, unit: &dyn Fn(usize) -> String, close: &str, size: usize| {
        let mut out = open.as_bytes().to_vec();
        for i in 0.. {
            let u = unit(i);
            if out.len() + u.len() + close.len() > size {
                break;
            }
            out.extend_from_slice(u.as_bytes());
        }
        out.extend_from_slice(close.as_bytes());
        out
    };
    let size = LIMIT - 64 * 1024;
    vec![
        // The issue's body: many distinct tiny members.
        (
            "/legacy",
            "application/json",
            fill("{", &|i| format!("\"k{i:07}\":1,"), "\"z\":1}", size),
            false,
        ),
        (
            "/legacy",
            "application/json",
            fill("{", &|_| "\"k\":1,".into(), "\"z\":1}", size),
            false,
        ),
        // Elements become members "1", "2", … next to a query argument: refused as too large
        // once encoded, after paced work.
        (
            "/legacy?q=1",
            "application/json",
            fill("[", &|_| "1,".into(), "1]", size),
            false,
        ),
        (
            "/legacy",
            "multipart/form-data; boundary=B",
            fill(
                "",
                &|i| format!("--B\r\nContent-Disposition: form-data; name=\"k{i}\"\r\n\r\nv\r\n"),
                "--B--\r\n",
                size,
            ),
            false,
        ),
        (
            "/legacy",
            "application/x-www-form-urlencoded",
            fill("", &|i| format!("k{i}=v&"), "z=1", size),
            false,
        ),
        (
            "/forward",
            "application/json",
            fill(
                "{",
                &|i| format!("\"k{i:07}\":1,"),
                "\"z\":1}",
                size * 2 / 5,
            ),
            false,
        ),
        ("/forward", "text/plain", vec![1u8; 1000 * 1024], false),
        (
            "/legacy",
            "application/json",
            fill("{", &|i| format!("\"k{i:07}\":1,"), "\"z\":1}", size),
            true,
        ),
    ]
}

/// While one connection sends the worst-case body of each kind at the body limit, another
/// connection's requests on the same (single) worker keep being answered quickly, and each big
/// request gets a clear answer.
#[test]
fn worst_case_bodies_do_not_stall_the_worker() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let port = mock.addr.port();
        let plugin = |extra: &str| {
            format!("{{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: MyLambda, host: localhost, port: {port}{extra}}}")
        };
        let config = format!(
            "_format_version: \"3.0\"\nservices:\n- name: legacy\n  routes: [{{name: legacy, paths: [/legacy]}}]\n  plugins: [{{name: aws-lambda, config: {}}}]\n- name: forward\n  routes: [{{name: forward, paths: [/forward]}}]\n  plugins: [{{name: aws-lambda, config: {}}}]\n",
            plugin(""),
            plugin(", forward_request_body: true, forward_request_headers: true, forward_request_uri: true")
        );
        let gw = Gateway::start_args(&mock, &config, driver, &["--workers", "1"]);
        let done = Arc::new(AtomicBool::new(false));
        let hostile = {
            let (addr, done) = (gw.addr, done.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for (target, content_type, body, chunked) in worst_case_bodies() {
                    let mut c = Client::connect(addr);
                    let mut raw = format!(
                        "POST {target} HTTP/1.1\r\nHost: h\r\nContent-Type: {content_type}\r\n"
                    )
                    .into_bytes();
                    if chunked {
                        raw.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                        raw.extend_from_slice(&chunked_body(&body, 8));
                    } else {
                        raw.extend_from_slice(
                            format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                        );
                        raw.extend_from_slice(&body);
                    }
                    let started = Instant::now();
                    let status = c.request(&raw).status;
                    statuses.push((target, content_type, status, started.elapsed()));
                }
                done.store(true, Ordering::SeqCst);
                statuses
            })
        };
        let mut probe = gw.connect();
        let mut slowest = Duration::ZERO;
        let mut answered = 0;
        while !done.load(Ordering::SeqCst) {
            let started = Instant::now();
            let r = probe.request(get("/legacy?probe=1").as_bytes());
            assert_eq!(r.status, 200, "{}", r.text());
            slowest = slowest.max(started.elapsed());
            answered += 1;
        }
        let statuses = hostile.join().expect("hostile client");
        for (target, content_type, status, took) in &statuses {
            eprintln!("{driver:?} {target} {content_type}: {status} in {took:?}");
        }
        let expected = [200, 200, 413, 200, 200, 200, 200, 200];
        let got: Vec<u16> = statuses.iter().map(|s| s.2).collect();
        assert_eq!(got, expected, "{driver:?}");
        eprintln!("{driver:?}: {answered} probe requests, slowest {slowest:?}");
        // Unpaced sections left (hashing, escaping, copying a 6 MiB body) take milliseconds in
        // a release build and tens of them in this unoptimised one; a stall like the one this
        // guards against took minutes.
        assert!(
            slowest < Duration::from_millis(750),
            "{driver:?}: a probe waited {slowest:?}"
        );
        assert!(answered > 20, "{driver:?}: only {answered} probe requests");
    }
}
