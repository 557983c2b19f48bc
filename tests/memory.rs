//! Bounded memory: large bodies reserve room in the node's buffer budget before they are
//! read; past it a request waits (unread), then gets 503 with `Retry-After`, while requests
//! already admitted complete and small ones are served; a body that trickles or stalls gets
//! 408 long before the client timeout; large Lambda answers reserve their room before they
//! are read and keep it while a slow client reads them. Both drivers.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

const BODY: usize = 6_000_000;

fn head(len: usize) -> String {
    format!("POST /r HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n")
}

/// A connection that sent a large request's head and `sent` bytes of its body.
fn open(gw: &Gateway, sent: usize) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(head(BODY).as_bytes()).expect("head");
    s.write_all(&vec![b'x'; sent]).expect("body");
    s
}

/// A gateway with one worker (every connection shares its timers) and a 32 MiB budget.
fn one_worker_32m(mock: &MockLambda, config: &str, driver: Driver) -> Gateway {
    Gateway::start_args(
        mock,
        config,
        driver,
        &["--workers", "1", "--max-buffered", "32M"],
    )
}

fn answer(s: &mut TcpStream) -> Option<Response> {
    Client::from_stream(s.try_clone().expect("clone")).read_response()
}

#[test]
fn large_bodies_wait_for_the_budget_then_get_503_while_small_requests_go_on() {
    let mock = MockLambda::start();
    let config = one_route_config(&mock);
    for driver in DRIVERS {
        let gw = one_worker_32m(&mock, &config, driver);
        let idle = rss_kb(gw.pid());
        // Two 6 MB bodies (and the payloads they may become, 14 MB each) fit in 32 MiB:
        // admitted, all but their last byte sent.
        let mut admitted = [open(&gw, BODY - 1), open(&gw, BODY - 1)];
        std::thread::sleep(Duration::from_millis(300));
        // Four more find no room: they wait, unread, then get 503.
        let started = Instant::now();
        let mut waiting: Vec<TcpStream> = (0..4).map(|_| open(&gw, 0)).collect();
        // Meanwhile small requests are answered at once.
        for _ in 0..5 {
            let asked = Instant::now();
            let r = gw.send("GET /r HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
            assert_eq!(r.status, 200, "{driver:?}");
            assert!(asked.elapsed() < Duration::from_secs(1), "{driver:?}");
        }
        for s in &mut waiting {
            let r = answer(s).expect("an answer");
            assert_eq!(r.status, 503, "{driver:?}: {}", r.text());
            assert_eq!(r.header("Retry-After"), Some("1"));
            assert_eq!(
                r.text(),
                r#"{"message":"The gateway is holding as much request and answer data as it may; retry shortly"}"#
            );
        }
        let waited = started.elapsed();
        assert!(
            (Duration::from_secs(4)..Duration::from_secs(9)).contains(&waited),
            "{driver:?}: {waited:?}"
        );
        // Held bodies took their room and no more.
        let peak = rss_kb(gw.pid());
        assert!(
            peak < idle + 32 * 1024 + 24 * 1024,
            "{driver:?}: RSS {peak} KiB, idle {idle} KiB"
        );
        // What was admitted completes.
        for s in &mut admitted {
            s.write_all(b"x").expect("last byte");
            let r = answer(s).expect("an answer");
            assert_eq!(r.status, 200, "{driver:?}: {}", r.text());
        }
        // And with the room given back, a large body is admitted again.
        let mut again = open(&gw, BODY);
        assert_eq!(
            answer(&mut again).map(|r| r.status),
            Some(200),
            "{driver:?}"
        );
    }
}

#[test]
fn a_trickling_or_stalled_body_gets_408_after_the_grace() {
    let mock = MockLambda::start();
    let config = one_route_config(&mock);
    for driver in DRIVERS {
        let gw = Gateway::start_args(&mock, &config, driver, &["--workers", "1"]);
        let started = Instant::now();
        // Stalled: a burst, then nothing.
        let mut stalled = TcpStream::connect(gw.addr).expect("connect");
        stalled.write_all(head(100_000).as_bytes()).expect("head");
        stalled.write_all(&[b'x'; 50_000]).expect("burst");
        // Trickling: 200 bytes a second, under the 1 KiB/s minimum.
        let addr = gw.addr;
        let trickler = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_millis(10))).ok();
            s.write_all(head(100_000).as_bytes()).expect("head");
            let mut answer = Vec::new();
            let until = Instant::now() + Duration::from_secs(25);
            while Instant::now() < until {
                if s.write_all(&[b'y'; 20]).is_err() {
                    break;
                }
                let mut buf = [0u8; 4096];
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (
                String::from_utf8_lossy(&answer).into_owned(),
                Instant::now(),
            )
        });
        stalled.set_read_timeout(Some(Duration::from_secs(25))).ok();
        let r = answer(&mut stalled).expect("an answer");
        let stalled_after = started.elapsed();
        assert_eq!(r.status, 408, "{driver:?}");
        assert!(
            (Duration::from_secs(9)..Duration::from_secs(15)).contains(&stalled_after),
            "{driver:?}: {stalled_after:?}"
        );
        let (text, at) = trickler.join().expect("trickler");
        assert!(text.starts_with("HTTP/1.1 408"), "{driver:?}: {text}");
        let trickled = at.duration_since(started);
        assert!(
            trickled < Duration::from_secs(15),
            "{driver:?}: {trickled:?} (the client timeout is 30 s)"
        );
    }
}

#[test]
fn slow_readers_of_large_answers_hold_the_budget_and_later_ones_get_503() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/six", "six-mb", "");
    for driver in DRIVERS {
        let gw = one_worker_32m(&mock, &config, driver);
        let idle = rss_kb(gw.pid());
        // Ten clients ask for a 6 MB answer and read nothing: five answers fill the budget
        // and are held while they are (not) read; the others wait for room, then get 503.
        let started = Instant::now();
        let mut readers: Vec<TcpStream> = (0..10)
            .map(|_| {
                let mut s = TcpStream::connect(gw.addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(20))).ok();
                s.write_all(b"GET /six HTTP/1.1\r\nHost: gw\r\n\r\n")
                    .expect("request");
                s
            })
            .collect();
        // Meanwhile small requests are answered at once.
        let mut slowest = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(7) {
            let asked = Instant::now();
            let r = gw.send("GET /nothing HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
            assert_eq!(r.status, 404, "{driver:?}");
            slowest = slowest.max(asked.elapsed());
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(slowest < Duration::from_secs(1), "{driver:?}: {slowest:?}");
        let peak = rss_kb(gw.pid());
        assert!(
            peak < idle + 32 * 1024 + 24 * 1024,
            "{driver:?}: RSS {peak} KiB, idle {idle} KiB"
        );
        // Every client gets its whole answer, or a 503 for want of room.
        let (mut whole, mut refused) = (0, 0);
        for s in &mut readers {
            let r = answer(s).expect("an answer");
            match r.status {
                200 => {
                    assert_eq!(r.body.len(), 6_000_000, "{driver:?}");
                    whole += 1;
                }
                503 => {
                    assert_eq!(r.header("Retry-After"), Some("1"));
                    refused += 1;
                }
                other => panic!("{driver:?}: {other} {}", r.text()),
            }
        }
        assert!(
            (1..=6).contains(&whole),
            "{driver:?}: {whole} whole answers"
        );
        assert_eq!(whole + refused, 10, "{driver:?}");
        // With the room given back, a large answer is served again.
        let r = gw.send("GET /six HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (200, 6_000_000), "{driver:?}");
    }
}

/// What one connection waiting for room may hold in the gateway beyond the budget: its buffer
/// set (the head and the first read of the body), its task and its request's future.
const PER_WAITING_CONNECTION_KIB: u64 = 24;

#[test]
fn two_thousand_held_bodies_stay_within_the_budget_and_small_requests_go_on() {
    raise_fd_limit();
    let mock = MockLambda::start();
    let config = one_route_config(&mock);
    const HELD: usize = 2000;
    for driver in DRIVERS {
        let gw = Gateway::start_args(&mock, &config, driver, &["--max-buffered", "32M"]);
        let idle = rss_kb(gw.pid());
        // Each sends the head of a 6 MB body and what the sockets take of 256 KiB of it, then
        // waits.
        let started = Instant::now();
        let prefix = vec![b'x'; 256 * 1024];
        let held: Vec<TcpStream> = (0..HELD)
            .map(|_| {
                let mut s = TcpStream::connect(gw.addr).expect("connect");
                s.write_all(head(BODY).as_bytes()).expect("head");
                s.set_nonblocking(true).expect("nonblocking");
                let _ = s.write(&prefix);
                s
            })
            .collect();
        // A normal client's small requests, and the gateway's memory, meanwhile.
        let (mut slowest, mut peak) = (Duration::ZERO, 0);
        while started.elapsed() < Duration::from_secs(8) {
            let asked = Instant::now();
            let r = gw.send("GET /r HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
            assert_eq!(r.status, 200, "{driver:?}");
            slowest = slowest.max(asked.elapsed());
            peak = peak.max(rss_kb(gw.pid()));
            std::thread::sleep(Duration::from_millis(100));
        }
        let bound = idle + 32 * 1024 + HELD as u64 * PER_WAITING_CONNECTION_KIB;
        eprintln!(
            "{driver:?}: {HELD} held bodies: RSS idle {idle} KiB, peak {peak} KiB (bound {bound}); slowest small request {slowest:?}"
        );
        assert!(peak < bound, "{driver:?}: RSS {peak} KiB over {bound} KiB");
        assert!(slowest < Duration::from_secs(1), "{driver:?}: {slowest:?}");
        // Each got 503 after its wait; the few admitted, 408 when their bodies stalled.
        let mut statuses = std::collections::BTreeMap::new();
        for s in held {
            s.set_nonblocking(false).expect("blocking");
            s.set_read_timeout(Some(Duration::from_secs(15))).ok();
            let status = Client::from_stream(s).read_response().map(|r| r.status);
            *statuses.entry(status).or_insert(0) += 1;
        }
        let refused = statuses.get(&Some(503)).copied().unwrap_or(0);
        let stalled = statuses.get(&Some(408)).copied().unwrap_or(0);
        assert!(refused >= HELD - 4, "{driver:?}: {statuses:?}");
        assert_eq!(refused + stalled, HELD, "{driver:?}: {statuses:?}");
    }
}

#[test]
fn after_a_burst_of_large_bodies_memory_goes_back() {
    const BURST: usize = 30;
    let mock = MockLambda::start();
    let config = one_route_config(&mock);
    for driver in DRIVERS {
        let gw = one_worker_32m(&mock, &config, driver);
        let idle = rss_kb(gw.pid());
        // Thirty 6 MB bodies at once: two at a time fit in the budget, the others wait in
        // line (on a slow machine the last may time out waiting: 503).
        let clients: Vec<_> = (0..BURST)
            .map(|_| {
                let addr = gw.addr;
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).expect("connect");
                    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    s.write_all(head(BODY).as_bytes()).expect("head");
                    s.write_all(&vec![b'x'; BODY]).expect("body");
                    answer(&mut s).map(|r| r.status)
                })
            })
            .collect();
        let statuses: Vec<_> = clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect();
        let served = statuses.iter().filter(|s| **s == Some(200)).count();
        assert!(
            served >= 10 && statuses.iter().all(|s| matches!(s, Some(200 | 503))),
            "{driver:?}: {statuses:?}"
        );
        // The large buffers kept for reuse are let go after 10 s without a large request,
        // and what they and the requests used goes back to the OS.
        std::thread::sleep(Duration::from_secs(14));
        let after = rss_kb(gw.pid());
        eprintln!("{driver:?}: RSS idle {idle} KiB, 14 s after the burst {after} KiB");
        assert!(
            after < idle + 16 * 1024,
            "{driver:?}: {after} KiB, idle {idle} KiB"
        );
    }
}
