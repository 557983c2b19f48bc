//! proxy-cache: in-process (the real proxy over an in-memory Lambda, the node's cache) for
//! Kong's key, statuses and Cache-Control rules; from outside (both drivers, two workers) for
//! request coalescing, eviction under the size bound and the Admin API.

mod support;

use lambda_gateway::proxy::testing::{Answer, Pipeline};
use lambda_gateway::upstream::invoker::write_answer;
use std::cell::Cell;
use std::rc::Rc;
use support::*;

const KEYS: &str = "aws_region: us-east-1, aws_key: AKIDEXAMPLE, aws_secret: SECRET";

/// A pipeline with one route (`id`, path `/c`): aws-lambda in proxy-integration mode and
/// proxy-cache with `config` (flow-mapping entries after `strategy: memory`). The function
/// answers `status` with `headers` (JSON object members) and a body counting its invokes.
fn cached(id: &str, config: &str, status: u16, headers: &'static str) -> (Pipeline, Rc<Cell<u32>>) {
    let yaml = format!(
        "_format_version: \"3.0\"\nroutes:\n- id: {id}\n  name: r-{id}\n  paths: [/c]\n  plugins:\n  - {{name: aws-lambda, config: {{function_name: f, is_proxy_integration: true, {KEYS}}}}}\n  - {{name: proxy-cache, config: {{strategy: memory{config}}}}}\n"
    );
    let invokes = Rc::new(Cell::new(0u32));
    let counted = invokes.clone();
    let p = Pipeline::new(&yaml, move |_, out| {
        counted.set(counted.get() + 1);
        let body = format!(
            r#"{{"statusCode":{status},"headers":{{{headers}}},"body":"{{\"invoke\":{}}}"}}"#,
            counted.get()
        );
        write_answer(out, 200, &[], body.as_bytes())
    })
    .unwrap_or_else(|e| panic!("{config}: {e}"));
    (p, invokes)
}

const JSON: &str = r#""Content-Type":"application/json""#;

fn status(a: &Answer) -> &str {
    a.header("X-Cache-Status").unwrap_or("-")
}

/// Kong's key: SHA-256 (hex) of `prefix|method|uri|params|headers`.
fn kong_key(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn misses_then_hits_with_kongs_key_and_headers() {
    let (p, invokes) = cached("11111111-0000-4000-8000-000000000001", "", 200, JSON);
    let first = p.get("/c?b=2&a=1&a=0", &[]);
    assert_eq!(
        (first.status, status(&first)),
        (200, "Miss"),
        "{}",
        first.head
    );
    // Kong's key: the route id, the method, the request line up to `?`, the arguments sorted
    // (a name's values sorted, joined by `,`), no headers.
    let key = kong_key("11111111-0000-4000-8000-000000000001|GET|GET /c|a=0,1:b=2|");
    assert_eq!(first.header("X-Cache-Key"), Some(key.as_str()));
    let hit = p.get("/c?a=1&b=2&a=0", &[]);
    assert_eq!(status(&hit), "Hit", "{}", hit.head);
    assert_eq!(hit.header("X-Cache-Key"), Some(key.as_str()));
    assert_eq!(hit.header("Age"), Some("0"));
    assert_eq!(hit.header("Content-Type"), Some("application/json"));
    assert_eq!(hit.text(), first.text());
    assert_eq!(invokes.get(), 1, "the hit did not invoke");
    // Without a query, nginx's `$request` keeps its protocol: another key.
    let bare = p.get("/c", &[]);
    let bare_key = kong_key("11111111-0000-4000-8000-000000000001|GET|GET /c HTTP/1.1||");
    assert_eq!(bare.header("X-Cache-Key"), Some(bare_key.as_str()));
    assert_eq!(status(&bare), "Miss");
    // Not a cacheable method: Bypass, invoked.
    let post = p.send(b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status(&post), "Bypass");
    assert_eq!(invokes.get(), 3);
}

#[test]
fn answers_kong_would_not_store_are_bypassed() {
    for (id, config, code, headers) in [
        // A status not in response_code.
        ("22222222-0000-4000-8000-000000000001", "", 500, JSON),
        // A content type with parameters the config does not name (Kong matches exactly).
        (
            "22222222-0000-4000-8000-000000000002",
            "",
            200,
            r#""Content-Type":"application/json; charset=utf-8""#,
        ),
        // cache_control: private, no-store, no max-age.
        (
            "22222222-0000-4000-8000-000000000003",
            ", cache_control: true",
            200,
            r#""Content-Type":"application/json","Cache-Control":"private, max-age=60""#,
        ),
        (
            "22222222-0000-4000-8000-000000000004",
            ", cache_control: true",
            200,
            r#""Content-Type":"application/json""#,
        ),
    ] {
        let (p, invokes) = cached(id, config, code, headers);
        for _ in 0..2 {
            let a = p.get("/c?x=1", &[]);
            assert_eq!(status(&a), "Bypass", "{id}: {}", a.head);
        }
        assert_eq!(invokes.get(), 2, "{id}: each request invoked");
    }
    // The wildcard and the parameters named: stored.
    let (p, invokes) = cached(
        "22222222-0000-4000-8000-000000000005",
        ", content_type: [\"application/*; charset=utf-8\"]",
        200,
        r#""Content-Type":"application/json; charset=utf-8""#,
    );
    p.get("/c", &[]);
    assert_eq!(status(&p.get("/c", &[])), "Hit");
    assert_eq!(invokes.get(), 1);
}

#[test]
fn cache_control_rules_when_asked() {
    let id = "33333333-0000-4000-8000-000000000001";
    let (p, invokes) = cached(
        id,
        ", cache_control: true",
        200,
        r#""Content-Type":"application/json","Cache-Control":"public, s-maxage=60, max-age=5""#,
    );
    // only-if-cached without an entry: 504.
    let a = p.get("/c?k=1", &["Cache-Control: only-if-cached"]);
    assert_eq!(a.status, 504);
    assert_eq!(invokes.get(), 0);
    assert_eq!(status(&p.get("/c?k=1", &[])), "Miss");
    assert_eq!(status(&p.get("/c?k=1", &[])), "Hit");
    // The request's no-cache, no-store or Authorization: not looked up.
    for h in [
        "Cache-Control: no-cache",
        "Cache-Control: no-store",
        "Authorization: x",
    ] {
        assert_eq!(status(&p.get("/c?k=1", &[h])), "Bypass", "{h}");
    }
    assert_eq!(invokes.get(), 4);
    // The request's max-age: an entry older is refreshed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let a = p.get("/c?k=1", &["Cache-Control: max-age=0"]);
    assert_eq!(status(&a), "Refresh", "{}", a.head);
    assert_eq!(invokes.get(), 5);
    assert_eq!(
        status(&p.get("/c?k=1", &["Cache-Control: min-fresh=10"])),
        "Hit"
    );

    // No max-age: until `Expires`; one past is not stored.
    let now = std::time::SystemTime::now();
    let minute = std::time::Duration::from_secs(60);
    let dates = [
        (httpdate::fmt_http_date(now + minute), "Hit"),
        (httpdate::fmt_http_date(now - minute), "Bypass"),
    ];
    for (n, (expires, want)) in dates.into_iter().enumerate() {
        let headers = format!(r#""Content-Type":"application/json","Expires":"{expires}""#);
        let (p, _) = cached(
            &format!("33333333-0000-4000-8000-00000000001{n}"),
            ", cache_control: true",
            200,
            Box::leak(headers.into_boxed_str()),
        );
        p.get("/c", &[]);
        assert_eq!(status(&p.get("/c", &[])), want, "{expires}");
    }
}

#[test]
fn the_key_varies_as_configured_and_entries_go_stale_after_cache_ttl() {
    let id = "44444444-0000-4000-8000-000000000001";
    let (p, invokes) = cached(
        id,
        ", vary_query_params: [b, a], vary_headers: [X-Tenant], ignore_uri_case: true, cache_ttl: 1, storage_ttl: 60",
        200,
        JSON,
    );
    let a = p.get("/c?a=1&b=2&other=3", &["X-Tenant: t1"]);
    let key = kong_key(&format!("{id}|GET|get /c|b=2:a=1|X-Tenant=t1"));
    assert_eq!(a.header("X-Cache-Key"), Some(key.as_str()), "{}", a.head);
    // Another argument not varied on: the same entry.
    let b = p.get("/c?a=1&b=2&other=9", &["X-Tenant: t1"]);
    assert_eq!(status(&b), "Hit", "{}", b.head);
    // Another tenant: another key.
    assert_eq!(status(&p.get("/c?a=1&b=2", &["X-Tenant: t2"])), "Miss");
    assert_eq!(invokes.get(), 2);
    // Past cache_ttl but kept (storage_ttl): refreshed. (Kept only cache_ttl, as without
    // storage_ttl, it would be gone: a Miss, as in Kong.)
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(status(&p.get("/c?a=1&b=2", &["X-Tenant: t1"])), "Refresh");
    assert_eq!(status(&p.get("/c?a=1&b=2", &["X-Tenant: t1"])), "Hit");
    assert_eq!(invokes.get(), 3);
}

#[test]
fn diagnostic_headers_follow_response_headers_and_kong_debug() {
    let (p, _) = cached(
        "55555555-0000-4000-8000-000000000001",
        ", response_headers: {age: false, X-Cache-Status: false, X-Cache-Key: false}",
        200,
        JSON,
    );
    p.get("/c", &[]);
    let quiet = p.get("/c", &[]);
    assert!(quiet.header("X-Cache-Status").is_none() && quiet.header("Age").is_none());
    let debug = p.get("/c", &["Kong-Debug: 1"]);
    assert_eq!(status(&debug), "Hit");
    let miss = p.get("/c?other=1", &["Kong-Debug: 1"]);
    assert_eq!(status(&miss), "Miss", "{}", miss.head);
    assert!(debug.header("X-Cache-Key").is_some() && debug.header("Age").is_some());
}

/// A gateway with one route `/c` invoking `function` at `mock` behind proxy-cache (`config`:
/// flow-mapping entries after `strategy: memory`), with its Admin API; `args` added.
fn cache_gateway(
    mock: &MockLambda,
    function: &str,
    config: &str,
    driver: Driver,
    dir: &TempDir,
    args: &[&str],
) -> Gateway {
    let yaml = config_for(mock, "/c", function, "").replace(
        "  - name: aws-lambda\n",
        &format!("  - {{name: proxy-cache, config: {{strategy: memory{config}}}}}\n  - name: aws-lambda\n"),
    );
    let path = dir.path.join(format!("kong-{driver:?}.yml"));
    std::fs::write(&path, yaml).expect("config");
    Gateway::start_admin(
        mock,
        AdminOptions {
            config_path: path,
            driver,
            env: vec![],
            args: args.iter().map(|a| a.to_string()).collect(),
        },
    )
}

/// `GET target` on a connection of its own: the answer.
fn fetch(addr: std::net::SocketAddr, target: &str) -> Response {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .ok();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("send");
    Client::from_stream(s).read_response().expect("an answer")
}

fn metric(gw: &Gateway, name: &str) -> u64 {
    let text = gw.admin_get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn two_hundred_concurrent_misses_for_a_cold_key_invoke_once() {
    let mock = MockLambda::start();
    let dir = TempDir::new("proxy-cache-coalescing");
    for driver in DRIVERS {
        // Two workers: the requests land on both, and wait across them.
        let gw = cache_gateway(&mock, "slow", "", driver, &dir, &["--workers", "2"]);
        let target = format!("/c?cold={driver:?}");
        let before = mock.requests().len();
        let addr = gw.addr;
        let clients: Vec<_> = (0..200)
            .map(|_| {
                let target = target.clone();
                std::thread::spawn(move || fetch(addr, &target))
            })
            .collect();
        let answers: Vec<Response> = clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect();
        let invoked = mock.requests().len() - before;
        assert_eq!(invoked, 1, "{driver:?}: {invoked} invokes for one cold key");
        let body = answers[0].text();
        assert!(body.contains(&format!("{driver:?}")), "{driver:?}: {body}");
        for a in &answers {
            assert_eq!((a.status, a.text()), (200, body.clone()), "{driver:?}");
        }
        let statuses = |s: &str| {
            answers
                .iter()
                .filter(|a| a.header("X-Cache-Status") == Some(s))
                .count()
        };
        // One invoked (Miss); the others were answered from its entry (Hit).
        assert_eq!((statuses("Miss"), statuses("Hit")), (1, 199), "{driver:?}");
        assert!(metric(&gw, "lambda_gateway_proxy_cache_coalesced_total") >= 1);
    }
}

#[test]
fn the_size_bound_holds_by_evicting_what_is_not_read_again() {
    let mock = MockLambda::start();
    let dir = TempDir::new("proxy-cache-eviction");
    for driver in DRIVERS {
        // 1 MiB for the node: 16 shards of 64 KiB; answers of about 12 KB.
        let gw = cache_gateway(
            &mock,
            "echo",
            "",
            driver,
            &dir,
            &["--proxy-cache-memory", "1M"],
        );
        let pad = "p".repeat(12_000);
        let hot = format!("/c?hot=1&pad={pad}");
        assert_eq!(fetch(gw.addr, &hot).header("X-Cache-Status"), Some("Miss"));
        for i in 0..300 {
            fetch(gw.addr, &format!("/c?i={i}&pad={pad}"));
            // The hot key is read between the others: CLOCK keeps it.
            if i % 4 == 0 {
                assert_eq!(
                    fetch(gw.addr, &hot).header("X-Cache-Status"),
                    Some("Hit"),
                    "{driver:?}: the hot entry was evicted after {i}"
                );
            }
        }
        let bytes = metric(&gw, "lambda_gateway_proxy_cache_bytes");
        assert!(bytes <= 1024 * 1024, "{driver:?}: {bytes} bytes held");
        assert!(metric(&gw, "lambda_gateway_proxy_cache_evictions_total") > 200);
        // The first cold ones are gone.
        assert_eq!(
            fetch(gw.addr, &format!("/c?i=0&pad={pad}")).header("X-Cache-Status"),
            Some("Miss"),
            "{driver:?}"
        );
    }
}

#[test]
fn kongs_admin_api_for_the_cache() {
    if !installed("curl", "curl") {
        return;
    }
    let mock = MockLambda::start();
    let dir = TempDir::new("proxy-cache-admin");
    for driver in DRIVERS {
        let yaml =
            config_for(&mock, "/c", "echo", "").replace("name: svc", "name: example-service");
        let gw = Gateway::start_admin_with(&mock, &yaml, driver, &dir);
        let admin = gw.admin.expect("admin");
        let curl = |command: &str| run_documented(command, admin);
        // developer.konghq.com/plugins/proxy-cache/examples, "Cache responses to successful
        // GET requests", as written (the Admin API's address put in).
        let created = curl(
            r#"curl -i -X POST http://localhost:8001/plugins/ \
--header "Accept: application/json" \
--header "Content-Type: application/json" \
--data '
{
"name": "proxy-cache",
"config": {
"response_code": [
200
],
"request_method": [
"GET"
],
"content_type": [
"text/plain",
"application/json"
],
"cache_ttl": 300,
"strategy": "memory"
},
"tags": []
}
'"#,
        );
        assert!(created.starts_with("HTTP/1.1 201"), "{driver:?}: {created}");
        let plugin: serde_json::Value =
            serde_json::from_str(created.split("\r\n\r\n").nth(1).unwrap_or("")).expect("json");
        let plugin_id = plugin["id"].as_str().expect("id").to_string();
        assert_eq!(plugin["config"]["response_code"], serde_json::json!([200]));
        assert_eq!(plugin["config"]["response_headers"]["X-Cache-Status"], true);
        assert_eq!(
            plugin["config"]["memory"]["dictionary_name"],
            "kong_db_cache"
        );
        let miss = fetch(gw.addr, "/c?admin=1");
        let key = miss.header("X-Cache-Key").expect("a key").to_string();
        assert_eq!(
            fetch(gw.addr, "/c?admin=1").header("X-Cache-Status"),
            Some("Hit")
        );
        // Over HTTP/2 the hit's body is sent from the entry too.
        let h2 = curl(&format!(
            "curl -s -i --http2-prior-knowledge http://{}/c?admin=1",
            gw.addr
        ));
        assert!(h2.starts_with("HTTP/2 200"), "{driver:?}: {h2}");
        assert!(h2.contains("x-cache-status: Hit"), "{driver:?}: {h2}");
        assert!(h2.ends_with(&miss.text()), "{driver:?}: {h2}");
        // GET /proxy-cache/{key}, and under the plugin: the entry as Kong stores it.
        let shown = curl(&format!("curl -s http://localhost:8001/proxy-cache/{key}"));
        let entry: serde_json::Value = serde_json::from_str(&shown).expect("json");
        assert_eq!(entry["status"], 200, "{shown}");
        assert_eq!(entry["body"], miss.text(), "{shown}");
        assert_eq!(
            entry["headers"]["Content-Type"], "application/json",
            "{shown}"
        );
        let under = curl(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' http://localhost:8001/proxy-cache/{plugin_id}/caches/{key}"
        ));
        assert_eq!(under, "200");
        // DELETE one: 204, then 404, and the next request misses.
        let deleted = curl(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' -X DELETE http://localhost:8001/proxy-cache/{plugin_id}/caches/{key}"
        ));
        assert_eq!(deleted, "204");
        let again = curl(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' http://localhost:8001/proxy-cache/{key}"
        ));
        assert_eq!(again, "404");
        assert_eq!(
            fetch(gw.addr, "/c?admin=1").header("X-Cache-Status"),
            Some("Miss")
        );
        // DELETE /proxy-cache: everything.
        let flushed = curl(
            "curl -s -o /dev/null -w '%{http_code}' -X DELETE http://localhost:8001/proxy-cache",
        );
        assert_eq!(flushed, "204");
        assert_eq!(
            fetch(gw.addr, "/c?admin=1").header("X-Cache-Status"),
            Some("Miss")
        );
        // Not a proxy-cache plugin, or no such key: 404.
        let other = curl(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' http://localhost:8001/proxy-cache/{}/caches/{key}",
            "00000000-0000-4000-8000-000000000000"
        ));
        assert_eq!(other, "404");
    }
}

#[test]
fn a_consumers_answers_are_theirs() {
    let route = "66666666-0000-4000-8000-000000000001";
    let (alice, bob) = (
        "66666666-0000-4000-8000-0000000000a1",
        "66666666-0000-4000-8000-0000000000b0",
    );
    let yaml = format!(
        "_format_version: \"3.0\"\nconsumers:\n- {{id: {alice}, username: alice, keyauth_credentials: [{{key: k-alice}}]}}\n- {{id: {bob}, username: bob, keyauth_credentials: [{{key: k-bob}}]}}\nroutes:\n- id: {route}\n  name: r-consumers\n  paths: [/c]\n  plugins:\n  - {{name: key-auth}}\n  - {{name: aws-lambda, config: {{function_name: f, is_proxy_integration: true, {KEYS}}}}}\n  - {{name: proxy-cache, config: {{strategy: memory}}}}\n"
    );
    let invokes = Rc::new(Cell::new(0u32));
    let counted = invokes.clone();
    let p = Pipeline::new(&yaml, move |_, out| {
        counted.set(counted.get() + 1);
        let body = format!(
            r#"{{"statusCode":200,"headers":{{{JSON}}},"body":"{}"}}"#,
            counted.get()
        );
        write_answer(out, 200, &[], body.as_bytes())
    })
    .expect("valid");
    // Kong's prefix for an identified consumer: `consumer_id:route_id`.
    let a = p.get("/c?q=1", &["apikey: k-alice"]);
    let key = kong_key(&format!("{alice}:{route}|GET|GET /c|q=1|"));
    assert_eq!(
        (status(&a), a.header("X-Cache-Key")),
        ("Miss", Some(key.as_str()))
    );
    let b = p.get("/c?q=1", &["apikey: k-bob"]);
    assert_eq!(status(&b), "Miss", "bob does not get alice's answer");
    assert_ne!(a.text(), b.text());
    let again = p.get("/c?q=1", &["apikey: k-alice"]);
    assert_eq!((status(&again), again.text()), ("Hit", a.text()));
    assert_eq!(invokes.get(), 2);
}

#[test]
fn a_streamed_answer_is_never_stored() {
    if !installed("curl", "curl") {
        return;
    }
    let mock = MockLambda::start();
    let dir = TempDir::new("proxy-cache-stream");
    for driver in DRIVERS {
        let gw = {
            let yaml = config_for(&mock, "/c", "stream-sse", "invoke_mode: RESPONSE_STREAM")
                .replace(
                    "  - name: aws-lambda\n",
                    "  - {name: proxy-cache, config: {strategy: memory, content_type: [text/event-stream]}}\n  - name: aws-lambda\n",
                );
            Gateway::start_admin_with(&mock, &yaml, driver, &dir)
        };
        let before = mock.requests().len();
        for _ in 0..2 {
            let out = std::process::Command::new("curl")
                .args(["-sS", "-i", &format!("http://{}/c", gw.addr)])
                .output()
                .expect("curl");
            let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
            assert!(
                text.contains("x-cache-status: bypass"),
                "{driver:?}: {text}"
            );
            assert!(text.ends_with("data: 3\n\n"), "{driver:?}: {text}");
        }
        assert_eq!(
            mock.requests().len() - before,
            2,
            "{driver:?}: each invoked"
        );
    }
}
