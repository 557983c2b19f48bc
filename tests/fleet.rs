//! A fleet: two gateway processes on one configuration in a real three-member etcd cluster
//! (`--config etcd://…`). A change through either node's Admin API is served by the other;
//! concurrent conflicting changes end consistent with one 409; losing an etcd member changes
//! nothing, losing all of them leaves both nodes serving (and a restarted node starts from its
//! local copy), and changes flow again once etcd is back. Skipped, saying so, where etcd is not
//! installed (`.ci/run` installs it).

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::etcd::{self, EtcdCluster};
use support::*;

/// A node of the fleet at `prefix`, with its Admin API and its local copy at `cache`.
fn node(
    mock: &MockLambda,
    cluster: &EtcdCluster,
    prefix: &str,
    cache: &std::path::Path,
) -> Gateway {
    Gateway::start_admin(
        mock,
        AdminOptions {
            config_path: format!("etcd://{}{prefix}", cluster.endpoints()).into(),
            driver: Driver::IoUring,
            env: vec![],
            args: vec![
                "--config-cache".into(),
                cache.display().to_string(),
                "--workers".into(),
                "1".into(),
            ],
        },
    )
}

/// The fleet's starting document: route `/r` and a global plugin invoking `echo`.
fn base(mock: &MockLambda) -> serde_json::Value {
    json!({
        "_format_version": "3.0",
        "routes": [{"name": "r", "paths": ["/r"]}],
        "plugins": [{"name": "aws-lambda", "config": {
            "aws_key": ACCESS_KEY, "aws_secret": SECRET_KEY, "aws_region": "us-east-1",
            "function_name": "echo", "host": "localhost", "port": mock.addr.port()}}],
    })
}

/// Waits until `gw` answers `path` with `status`; how long that took.
fn until_served(gw: &Gateway, path: &str, status: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let r = gw.send(&get(path));
        if r.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{path} still answers {} after {limit:?}: {}\n{}",
            r.status,
            r.text(),
            gw.logs()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Repeats an Admin API change while it answers 503 (etcd unreachable), for up to 20 s.
fn retry_while_unavailable(change: impl Fn() -> Response) -> Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = change();
        if r.status != 503 || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn changes_on_either_node_reach_the_other_and_conflicts_lose_nothing() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let cluster = EtcdCluster::start(3);
    let dir = TempDir::new("fleet");
    let a = node(&mock, &cluster, "/lg", &dir.path.join("a.yml"));
    let b = node(&mock, &cluster, "/lg", &dir.path.join("b.yml"));
    assert_eq!(a.send(&get("/r")).status, 404);

    let r = a.admin_json("POST", "/config", base(&mock));
    assert_eq!(r.status, 201, "{}", r.text());
    until_served(&b, "/r", 200, Duration::from_secs(1));
    assert_eq!(a.send(&get("/r")).status, 200);
    // The document is in etcd, one key.
    assert!(cluster
        .ctl(&["get", "/lg/config", "--print-value-only"])
        .contains("\"echo\""));

    // Propagation: a route added on one node, served by the other; alternating nodes.
    let mut latencies = Vec::new();
    for i in 0..100 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        // Kong's paths are prefixes: `/p7/` does not match `/p72/`, `/p7` would.
        let body = json!({"name": format!("p{i}"), "paths": [format!("/p{i}/")]});
        let started = Instant::now();
        let r = writer.admin_json("POST", "/routes", body);
        assert_eq!(r.status, 201, "change {i}: {}", r.text());
        let acknowledged = started.elapsed();
        let served = until_served(reader, &format!("/p{i}/"), 200, Duration::from_secs(1));
        latencies.push(served);
        let _ = acknowledged;
    }
    latencies.sort();
    eprintln!(
        "propagation (acknowledged on one node → served by the other), 100 changes: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[99]
    );

    // Two nodes create the same route name at once: one wins, the other gets a 409 (a lost
    // compare-and-swap, or the name already taken once it caught up); both end the same.
    let (ra, rb) = std::thread::scope(|s| {
        let one = s.spawn(|| {
            a.admin_json(
                "POST",
                "/routes",
                json!({"name": "same", "paths": ["/from-a"]}),
            )
        });
        let two = s.spawn(|| {
            b.admin_json(
                "POST",
                "/routes",
                json!({"name": "same", "paths": ["/from-b"]}),
            )
        });
        (one.join().unwrap(), two.join().unwrap())
    });
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "a: {} b: {}", ra.text(), rb.text());
    let winner = if ra.status == 201 {
        "/from-a"
    } else {
        "/from-b"
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let on_a = a.admin_get("/routes/same").json()["paths"][0].clone();
        let on_b = b.admin_get("/routes/same").json()["paths"][0].clone();
        if on_a == winner && on_b == winner {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a: {on_a} b: {on_b}, winner {winner}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every acknowledged change is there, on both nodes.
    for gw in [&a, &b] {
        let routes = gw.admin_get("/routes?size=1000").json();
        assert_eq!(routes["data"].as_array().unwrap().len(), 102, "{routes}");
        let status = gw.admin_get("/status").json();
        assert_eq!(status["configuration_store"]["kind"], "etcd");
        assert_eq!(status["configuration_store"]["watch"], "established");
        assert_eq!(status["database"]["reachable"], true);
    }
}

/// Two operators (or decK and Terraform) changing different things on two nodes at the same
/// moment both succeed: a node that loses the compare-and-swap makes the same change again on
/// top of the configuration that won. Only a change that now conflicts in itself (the same
/// username) is refused, with Kong's unique-violation answer.
#[test]
fn simultaneous_distinct_changes_on_two_nodes_all_succeed() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let cluster = EtcdCluster::start(1);
    let dir = TempDir::new("fleet-race");
    let a = node(&mock, &cluster, "/race", &dir.path.join("a.yml"));
    let b = node(&mock, &cluster, "/race", &dir.path.join("b.yml"));
    let r = a.admin_json("POST", "/config", base(&mock));
    assert_eq!(r.status, 201, "{}", r.text());
    until_served(&b, "/r", 200, Duration::from_secs(2));
    for round in 0..20 {
        // Creates on both nodes at once, then updates of different entities at once.
        let (ra, rb) = std::thread::scope(|s| {
            let one = s.spawn(|| a.admin_form("POST", "/consumers", &format!("username=a{round}")));
            let two = s.spawn(|| b.admin_form("POST", "/consumers", &format!("username=b{round}")));
            (one.join().unwrap(), two.join().unwrap())
        });
        assert_eq!(
            (ra.status, rb.status),
            (201, 201),
            "round {round}: {} / {}",
            ra.text(),
            rb.text()
        );
        let (ua, ub) = std::thread::scope(|s| {
            let one = s.spawn(|| {
                a.admin_form(
                    "PATCH",
                    &format!("/consumers/b{round}"),
                    &format!("custom_id=b{round}-changed-on-a"),
                )
            });
            let two = s.spawn(|| {
                b.admin_form(
                    "PATCH",
                    &format!("/consumers/a{round}"),
                    &format!("custom_id=a{round}-changed-on-b"),
                )
            });
            (one.join().unwrap(), two.join().unwrap())
        });
        assert_eq!(
            (ua.status, ub.status),
            (200, 200),
            "round {round}: {} / {}",
            ua.text(),
            ub.text()
        );
    }
    // The document in etcd holds every change.
    let document: Value = serde_json::from_str(
        cluster
            .ctl(&["get", "/race/config", "--print-value-only"])
            .trim(),
    )
    .expect("the document");
    let consumers = document["consumers"].as_array().expect("consumers");
    assert_eq!(consumers.len(), 40, "{document}");
    for c in consumers {
        let username = c["username"].as_str().unwrap_or("");
        let by = if username.starts_with('a') { "b" } else { "a" };
        assert_eq!(c["custom_id"], format!("{username}-changed-on-{by}"), "{c}");
    }
    // The same username on both nodes at once: one is created, the other told it is taken.
    let (ra, rb) = std::thread::scope(|s| {
        let one = s.spawn(|| a.admin_form("POST", "/consumers", "username=twice"));
        let two = s.spawn(|| b.admin_form("POST", "/consumers", "username=twice"));
        (one.join().unwrap(), two.join().unwrap())
    });
    let mut statuses = [ra.status, rb.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", ra.text(), rb.text());
    let refused = if ra.status == 409 { &ra } else { &rb };
    let body = refused.json();
    // Kong's answer for the conflict itself, not a lost compare-and-swap.
    assert_eq!(body["name"], "unique constraint violation", "{body}");
}

#[test]
fn etcd_failures_leave_the_fleet_serving() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let mut cluster = EtcdCluster::start(3);
    let dir = TempDir::new("fleet");
    let (cache_a, cache_b) = (dir.path.join("a.yml"), dir.path.join("b.yml"));
    let mut a = node(&mock, &cluster, "/edge", &cache_a);
    let b = node(&mock, &cluster, "/edge", &cache_b);
    assert_eq!(a.admin_json("POST", "/config", base(&mock)).status, 201);
    until_served(&b, "/r", 200, Duration::from_secs(1));

    // One member of three lost: nothing changes for clients, and changes still flow.
    cluster.kill(0);
    for _ in 0..50 {
        assert_eq!(a.send(&get("/r")).status, 200);
        assert_eq!(b.send(&get("/r")).status, 200);
    }
    // A write may meet the election that follows the loss of a leader (503, not applied):
    // the operator retries, as with any refused change.
    let r = retry_while_unavailable(|| {
        b.admin_json(
            "POST",
            "/routes",
            json!({"name": "one-down", "paths": ["/one-down"]}),
        )
    });
    assert_eq!(r.status, 201, "{}", r.text());
    until_served(&a, "/one-down", 200, Duration::from_secs(5));

    // All lost: both keep serving what they have; changes are refused, not lost.
    for i in 1..cluster.len() {
        cluster.kill(i);
    }
    let r = a.admin_json(
        "POST",
        "/routes",
        json!({"name": "nowhere", "paths": ["/nowhere"]}),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    for gw in [&a, &b] {
        assert_eq!(gw.send(&get("/r")).status, 200);
        assert_eq!(gw.send(&get("/one-down")).status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.admin_get("/status").json()["database"]["reachable"] != false {
        assert!(Instant::now() < deadline, "the lost watch is not reported");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A node restarted meanwhile starts from its local copy.
    a.kill9();
    let a = node(&mock, &cluster, "/edge", &cache_a);
    assert_eq!(a.send(&get("/one-down")).status, 200, "{}", a.logs());
    assert!(a.logged("serving the local copy"), "{}", a.logs());

    // etcd back: the watch resumes and changes flow again, both ways.
    for i in 0..cluster.len() {
        cluster.restart(i);
    }
    cluster.wait_healthy();
    let r = retry_while_unavailable(|| {
        a.admin_json(
            "POST",
            "/routes",
            json!({"name": "back", "paths": ["/back"]}),
        )
    });
    assert_eq!(r.status, 201, "{}\n{}", r.text(), a.logs());
    until_served(&b, "/back", 200, Duration::from_secs(10));
    let r = b.admin_json(
        "POST",
        "/routes",
        json!({"name": "again", "paths": ["/again"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    until_served(&a, "/again", 200, Duration::from_secs(5));
    // Nothing acknowledged was lost: the refused change is absent, the others present.
    let names: Vec<String> = a.admin_get("/routes").json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect();
    for expected in ["r", "one-down", "back", "again"] {
        assert!(names.contains(&expected.to_string()), "{names:?}");
    }
    assert!(!names.contains(&"nowhere".to_string()));
}

#[test]
fn etcd_credentials_are_used_and_a_wrong_password_is_said() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let cluster = EtcdCluster::start(1);
    // etcd's role-based access: user `gw` may read and write under /secure only.
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["user", "add", "gw", "--new-user-password=p@ss:word"],
        &["role", "add", "gw"],
        &[
            "role",
            "grant-permission",
            "gw",
            "readwrite",
            "/secure",
            "--prefix=true",
        ],
        &["user", "grant-role", "gw", "gw"],
        &["auth", "enable"],
    ] {
        cluster.ctl(args);
    }
    let root = Some("root:rootpw");
    let document = base(&mock).to_string();
    assert!(cluster
        .ctl_as(root, &["put", "/secure/config", &document])
        .contains("OK"));
    let dir = TempDir::new("fleet");
    let start = |url: String, cache: &str| {
        Gateway::start_admin(
            &mock,
            AdminOptions {
                config_path: url.into(),
                driver: Driver::IoUring,
                env: vec![],
                args: vec![
                    "--config-cache".into(),
                    dir.path.join(cache).display().to_string(),
                ],
            },
        )
    };
    // The password percent-encoded in the URL.
    let gw = start(
        format!("etcd://gw:p%40ss%3Aword@{}/secure", cluster.endpoints()),
        "a.yml",
    );
    assert_eq!(gw.send(&get("/r")).status, 200, "{}", gw.logs());
    let r = gw.admin_json(
        "POST",
        "/routes",
        json!({"name": "by-gw", "paths": ["/by-gw"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(cluster
        .ctl_as(root, &["get", "/secure/config", "--print-value-only"])
        .contains("by-gw"));
    // The password never reaches the log.
    assert!(
        !gw.logs().contains("p@ss:word") && !gw.logs().contains("p%40ss"),
        "{}",
        gw.logs()
    );
    // A wrong password: the node says why and serves no configuration (it has no copy).
    let wrong = start(
        format!("etcd://gw:nope@{}/secure", cluster.endpoints()),
        "b.yml",
    );
    assert_eq!(wrong.send(&get("/r")).status, 404);
    assert!(wrong.logged("authentication failed"), "{}", wrong.logs());
    assert_eq!(
        wrong.admin_get("/status").json()["database"]["reachable"],
        false
    );
}

/// Two gateways (separate files, the same plugin `id`) limiting `/limited` to `minute`
/// requests per client address for the whole tier through `redis`.
/// Routes `limited` (`minute` per client) and `strict` (a high limit, `fault_tolerant: false`)
/// counted in `redis`; `extra` adds to `limited`'s config (e.g. `, sync_rate: 0.1`).
fn redis_config(
    mock: &MockLambda,
    redis: &support::redis::RedisServer,
    minute: u32,
    extra: &str,
) -> String {
    format!(
        "_format_version: \"3.0\"\nroutes:\n- name: limited\n  paths: [/limited]\n  plugins:\n  - {{id: 5b3a1c7e-0000-4000-8000-00000000d00d, name: rate-limiting, config: {{minute: {minute}, limit_by: ip, policy: redis, redis_host: 127.0.0.1, redis_port: {}, redis_timeout: 200{extra}}}}}\n- name: strict\n  paths: [/strict]\n  plugins:\n  - {{id: 5b3a1c7e-0000-4000-8000-00000000d00e, name: rate-limiting, config: {{minute: 1000, policy: redis, fault_tolerant: false, redis_host: 127.0.0.1, redis_port: {}, redis_timeout: 200}}}}\nplugins:\n- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}}}\n",
        redis.port,
        redis.port,
        mock.addr.port()
    )
}

/// Waits until the minute's window cannot turn within `seconds`.
fn clear_of_the_minute_turn(seconds: u64) {
    let second_of_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second_of_minute >= 59 - seconds {
        std::thread::sleep(Duration::from_secs(61 - second_of_minute));
    }
}

/// Sends `n` requests to `/limited`, alternating nodes, `gap` apart: how many were admitted.
fn admitted_of(a: &Gateway, b: &Gateway, n: usize, gap: Duration) -> usize {
    let mut admitted = 0;
    for i in 0..n {
        let gw = if i % 2 == 0 { a } else { b };
        match gw.send(&get("/limited")).status {
            200 => admitted += 1,
            429 => {}
            other => panic!("request {i}: {other}"),
        }
        std::thread::sleep(gap);
    }
    admitted
}

/// Kong's default `sync_rate` (-1) counts every request in Redis: two nodes limited to 10 a
/// minute admit 10 of 15 requests alternating between them, as Kong does (the batched
/// exchange, 0.1 s, would let through what the other node admitted meanwhile).
#[test]
fn a_redis_rate_limit_is_exact_by_default_and_batched_with_a_sync_rate() {
    if !support::redis::available() {
        return;
    }
    let mock = MockLambda::start();
    let redis = support::redis::RedisServer::start();
    let exact = redis_config(&mock, &redis, 10, "");
    let (a, b) = (
        one_worker(&mock, &exact, Driver::IoUring),
        one_worker(&mock, &exact, Driver::Epoll),
    );
    clear_of_the_minute_turn(3);
    let admitted = admitted_of(&a, &b, 15, Duration::ZERO);
    eprintln!("exact: limit 10/minute, 15 requests alternating two nodes: {admitted} admitted");
    assert_eq!(admitted, 10);
    // Refused requests are taken back: the count is the limit, not the requests sent.
    std::thread::sleep(Duration::from_millis(100));
    let keys = redis.command("KEYS ratelimit:*");
    let key = keys
        .lines()
        .find(|k| k.contains(":minute"))
        .expect("the minute's key");
    let count = redis.command(&format!("GET {key}"));
    assert!(count.ends_with("\r\n10\r\n"), "{count:?}");
    drop((a, b));

    // The same plugin (its id) with a sync rate: counts exchanged every 0.1 s. It would share
    // the count above (one tier, one counter): start from none.
    redis.command("FLUSHALL");
    let batched = redis_config(&mock, &redis, 20, ", sync_rate: 0.1");
    let a = one_worker(&mock, &batched, Driver::IoUring);
    let b = one_worker(&mock, &batched, Driver::Epoll);
    clear_of_the_minute_turn(3);
    let admitted = admitted_of(&a, &b, 40, Duration::from_millis(25));
    eprintln!("batched: limit 20/minute, 40 requests over 1 s on two nodes: {admitted} admitted");
    // The stated accuracy: at most what the other node admits in one 0.1 s sync interval
    // (here 2 requests) beyond the limit.
    assert!((20..=23).contains(&admitted), "{admitted} admitted");
}

#[test]
fn a_redis_rate_limit_holds_for_the_tier_and_redis_down_is_survived() {
    if !support::redis::available() {
        return;
    }
    let mock = MockLambda::start();
    let mut redis = support::redis::RedisServer::start();
    let cfg = redis_config(&mock, &redis, 20, "");
    let a = one_worker(&mock, &cfg, Driver::IoUring);
    let b = one_worker(&mock, &cfg, Driver::Epoll);
    clear_of_the_minute_turn(3);
    // 40 requests, alternating nodes: each node alone would admit 20.
    let admitted = admitted_of(&a, &b, 40, Duration::from_millis(5));
    assert_eq!(admitted, 20);
    let keys = redis.command("KEYS ratelimit:*");
    assert!(
        keys.contains("ratelimit:5b3a1c7e-0000-4000-8000-00000000d00d:127.0.0.1:"),
        "{keys}"
    );
    assert_eq!(a.send(&get("/strict")).status, 200);

    // Redis gone: requests are still served (counted on each node), the failure is logged;
    // with fault_tolerant false the plugin answers 500 instead.
    redis.stop();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(a.send(&get("/strict")).status, 500);
    let r = b.send(&get("/limited"));
    assert_eq!(r.status, 429, "the local count still holds the limit");
    assert!(a.logged("counting on this node only"), "{}", a.logs());
    // Back (connecting is tried again at most once a second): the tier counts again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.send(&get("/strict")).status != 200 {
        assert!(Instant::now() < deadline, "{}", a.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(a.logged("is back"), "{}", a.logs());
}

#[test]
fn redis_over_tls_checks_the_server_as_asked() {
    if !support::redis::available() {
        return;
    }
    let mock = MockLambda::start();
    let redis =
        support::redis::RedisServer::start_tls(&["redis.test"], &["gw on >gw-secret ~* &* +@all"]);
    let (tls_port, files) = redis.tls.as_ref().expect("TLS");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    // Every route's limit is never reached; `fault_tolerant: false` makes a failing exchange
    // visible as a 500.
    let route = |name: &str, id: u32, redis: String| {
        format!(
            "- name: {name}\n  paths: [/{name}]\n  plugins:\n  - {{id: 5b3a1c7e-0000-4000-8000-{id:012}, name: rate-limiting, config: {{minute: 1000, policy: redis, fault_tolerant: false, redis_host: 127.0.0.1, redis_timeout: 300, {redis}}}}}\n"
        )
    };
    let login = "redis_username: gw, redis_password: gw-secret";
    let routes = [
        route(
            "verified",
            1,
            format!("redis_port: {tls_port}, redis_ssl: true, redis_ssl_verify: true, redis_server_name: redis.test, {login}"),
        ),
        // Kong's default: TLS without checking the certificate (which is not for 127.0.0.1).
        route(
            "unverified",
            2,
            format!("redis_port: {tls_port}, redis_ssl: true, {login}"),
        ),
        route(
            "wrong-name",
            3,
            format!("redis_port: {tls_port}, redis_ssl: true, redis_ssl_verify: true, redis_server_name: other.test, {login}"),
        ),
        route(
            "wrong-password",
            4,
            format!("redis_port: {tls_port}, redis_ssl: true, redis_username: gw, redis_password: nope"),
        ),
        route("plain-to-tls", 5, format!("redis_port: {tls_port}, {login}")),
        // A server that takes the connection and never answers the handshake.
        route(
            "silent",
            7,
            format!("redis_port: {}, redis_ssl: true", silent.local_addr().unwrap().port()),
        ),
        // Kong 3's nested form.
        route(
            "nested",
            6,
            format!("redis: {{port: {tls_port}, ssl: true, ssl_verify: true, server_name: redis.test, username: gw, password: gw-secret}}"),
        ),
    ];
    let cfg = format!(
        "_format_version: \"3.0\"\nroutes:\n{}plugins:\n- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}}}\n",
        routes.concat(),
        mock.addr.port()
    );
    // The gateway trusts the mock Lambda's CA and the Redis CA: one bundle with both.
    let dir = TempDir::new("redis-tls");
    let bundle = dir.path.join("bundle.pem");
    let pem = |p: &std::path::Path| std::fs::read_to_string(p).expect("read a PEM file");
    std::fs::write(&bundle, pem(&mock.ca_file) + &pem(&files.ca)).expect("write the bundle");
    let start = |bundle: &std::path::Path| {
        Gateway::start_with(
            &mock,
            GatewayOptions {
                config: &cfg,
                driver: Driver::IoUring,
                env: vec![("AWS_CA_BUNDLE", bundle.display().to_string())],
                args: vec!["--workers".into(), "1".into()],
            },
        )
    };
    let gw = start(&bundle);
    for path in ["/wrong-name", "/wrong-password", "/plain-to-tls", "/silent"] {
        until_served(&gw, path, 500, Duration::from_secs(5));
    }
    for path in ["/verified", "/unverified", "/nested"] {
        until_served(&gw, path, 200, Duration::from_secs(5));
    }
    for cause in [
        "TLS handshake: invalid peer certificate: certificate not valid for name \"other.test\"",
        "WRONGPASS",
        "TLS handshake: no answer within redis_timeout",
        "counting on this node only",
    ] {
        assert!(gw.logged(cause), "{cause}: {}", gw.logs());
    }
    assert!(!gw.logs().contains("gw-secret"), "{}", gw.logs());

    // The verified route's counts reached Redis over TLS: 3 requests, 3 counted.
    until_served(&gw, "/verified", 200, Duration::from_secs(5));
    until_served(&gw, "/verified", 200, Duration::from_secs(5));
    let count = || {
        let keys = redis.command("KEYS ratelimit:5b3a1c7e-0000-4000-8000-000000000001:*");
        match keys.lines().find(|l| l.starts_with("ratelimit:")) {
            Some(key) => redis.command(&format!("GET {key}")),
            None => keys,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !count().ends_with("\r\n3\r\n") {
        assert!(Instant::now() < deadline, "in Redis: {:?}", count());
        std::thread::sleep(Duration::from_millis(50));
    }

    // A gateway that does not trust the Redis CA refuses the server when asked to check it
    // (counting exactly, the first request already needs the server).
    let untrusting = start(&mock.ca_file);
    until_served(&untrusting, "/verified", 500, Duration::from_secs(5));
    until_served(&untrusting, "/unverified", 200, Duration::from_secs(5));
    assert!(untrusting.logged("UnknownIssuer"), "{}", untrusting.logs());
}

#[test]
fn an_etcd_gone_back_in_time_is_followed() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let mut cluster = EtcdCluster::start(1);
    let dir = TempDir::new("fleet");
    let a = node(&mock, &cluster, "/lg", &dir.path.join("a.yml"));
    assert_eq!(a.admin_json("POST", "/config", base(&mock)).status, 201);
    for i in 0..5 {
        let r = a.admin_json(
            "POST",
            "/routes",
            json!({"name": format!("old{i}"), "paths": [format!("/old{i}/")]}),
        );
        assert_eq!(r.status, 201);
    }
    // A new cluster (revisions start again low) with a restored document.
    cluster.replace_with_empty();
    let mut restored = base(&mock);
    // Not under `/r` (the old route, a prefix of anything starting with it).
    restored["routes"][0] = json!({"name": "restored", "paths": ["/from-backup/"]});
    assert!(cluster
        .ctl(&["put", "/lg/config", &restored.to_string()])
        .contains("OK"));
    until_served(&a, "/from-backup/", 200, Duration::from_secs(15));
    assert_eq!(a.send(&get("/old0/")).status, 404);
    assert!(a.logged("etcd was restored or replaced"), "{}", a.logs());
    // Changes are made against the new history.
    let r = retry_while_unavailable(|| {
        a.admin_json(
            "POST",
            "/routes",
            json!({"name": "after", "paths": ["/after"]}),
        )
    });
    assert_eq!(r.status, 201, "{}", r.text());
    until_served(&a, "/after", 200, Duration::from_secs(2));
}

/// A node on `prefix` of `cluster` serving the base document (its local copy in `dir`).
fn serving_node(mock: &MockLambda, cluster: &EtcdCluster, prefix: &str, dir: &TempDir) -> Gateway {
    let gw = node(mock, cluster, prefix, &dir.path.join("a.yml"));
    let key = format!("{prefix}/config");
    assert!(cluster
        .ctl(&["put", &key, &base(mock).to_string()])
        .contains("OK"));
    until_served(&gw, "/r", 200, Duration::from_secs(5));
    gw
}

/// Sends `gw` a signal (`-STOP`, `-CONT`).
fn signal(gw: &Gateway, name: &str) {
    let ok = std::process::Command::new("kill")
        .args([name, &gw.pid().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {name}");
}

#[test]
fn a_watch_stalled_past_a_compaction_reloads_in_full() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let cluster = EtcdCluster::start(1);
    let dir = TempDir::new("fleet");
    let a = serving_node(&mock, &cluster, "/compact", &dir);
    // The node stops reading (SIGSTOP) while 600 revisions of 16 KiB are written: more than
    // the stream's flow control window (2 MiB) and etcd's buffer of events per watch (128)
    // hold, so etcd stops sending to the watch; then the history is compacted past them.
    signal(&a, "-STOP");
    let padding = format!("# {}\n", "x".repeat(16 * 1024));
    let revisions: Vec<String> = (0..600)
        .map(|i| {
            let mut doc = base(&mock);
            doc["routes"][0] = json!({"name": format!("v{i}"), "paths": [format!("/v{i}/")]});
            // A YAML comment (the document may be YAML) makes each revision large.
            format!("{padding}{doc}")
        })
        .collect();
    cluster.put_each("/compact/config", &revisions);
    let header = cluster.ctl(&["get", "/compact/config", "-w", "json"]);
    let revision = serde_json::from_str::<serde_json::Value>(&header).expect("etcdctl JSON")
        ["header"]["revision"]
        .as_i64()
        .expect("a revision");
    assert!(cluster
        .ctl(&["compact", &revision.to_string()])
        .contains("compacted"));
    signal(&a, "-CONT");
    // The newest document is served, whichever way the node learnt of it.
    until_served(&a, "/v599/", 200, Duration::from_secs(15));
    assert_eq!(a.send(&get("/r")).status, 404);
    // etcd cancelled the watch as compacted, and the node read the key again.
    assert!(a.logged("the watch was cancelled"), "{}", a.logs());
    assert!(
        a.logged(&format!("compacted at {revision}")),
        "{}",
        a.logs()
    );
    // And watches again from there: the next change arrives.
    let mut doc = base(&mock);
    doc["routes"][0] = json!({"name": "after", "paths": ["/after-compaction/"]});
    assert!(cluster
        .ctl(&["put", "/compact/config", &doc.to_string()])
        .contains("OK"));
    until_served(&a, "/after-compaction/", 200, Duration::from_secs(10));
    assert_eq!(
        a.admin_get("/status").json()["configuration_store"]["watch"],
        "established"
    );
}

#[test]
fn a_node_behind_builds_only_the_newest_valid_revision() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let cluster = EtcdCluster::start(1);
    let dir = TempDir::new("fleet");
    let a = serving_node(&mock, &cluster, "/burst", &dir);
    // While the node is stopped: 200 revisions, the newest of them not a valid document.
    signal(&a, "-STOP");
    let mut revisions: Vec<String> = (0..199)
        .map(|i| {
            let mut doc = base(&mock);
            doc["routes"][0] = json!({"name": format!("b{i}"), "paths": [format!("/b{i}/")]});
            doc.to_string()
        })
        .collect();
    revisions.push("routes: [not closed".to_string());
    cluster.put_each("/burst/config", &revisions);
    let applied_before = a.logs().matches("applied revision").count();
    signal(&a, "-CONT");
    until_served(&a, "/b198/", 200, Duration::from_secs(15));
    assert!(
        a.logged("is not a valid configuration, not applied"),
        "{}",
        a.logs()
    );
    // The invalid newest is skipped for the valid one just before it.
    let header = cluster.ctl(&["get", "/burst/config", "-w", "json"]);
    let newest = serde_json::from_str::<serde_json::Value>(&header).expect("etcdctl JSON")["kvs"]
        [0]["mod_revision"]
        .as_i64()
        .expect("a revision");
    assert!(
        a.logged(&format!(
            "revisions up to {newest} of etcd://{}/burst arrived together: revision {} built",
            cluster.endpoints(),
            newest - 1
        )),
        "{}",
        a.logs()
    );
    let applied = a.logs().matches("applied revision").count() - applied_before;
    eprintln!("200 revisions behind: {applied} snapshots built to catch up");
    assert!(applied < 20, "{applied} revisions applied one by one");
    assert_eq!(a.send(&get("/b197/")).status, 404);
    // Changes after the burst are applied as they come.
    let mut doc = base(&mock);
    doc["routes"][0] = json!({"name": "after", "paths": ["/after-burst/"]});
    assert!(cluster
        .ctl(&["put", "/burst/config", &doc.to_string()])
        .contains("OK"));
    until_served(&a, "/after-burst/", 200, Duration::from_secs(5));
}

#[test]
fn etcd_over_tls_with_a_client_certificate() {
    if !etcd::available() {
        return;
    }
    let mock = MockLambda::start();
    let cluster = EtcdCluster::start_tls(1);
    let tls = cluster.tls.as_ref().expect("TLS files");
    assert!(cluster
        .ctl(&["put", "/tls/config", &base(&mock).to_string()])
        .contains("OK"));
    let dir = TempDir::new("fleet");
    let start = |extra: Vec<String>, cache: &str| {
        let mut args = vec![
            "--config-cache".into(),
            dir.path.join(cache).display().to_string(),
        ];
        args.extend(extra);
        Gateway::start_admin(
            &mock,
            AdminOptions {
                config_path: format!("etcd://{}/tls", cluster.endpoints()).into(),
                driver: Driver::IoUring,
                env: vec![],
                args,
            },
        )
    };
    let path = |p: &std::path::Path| p.display().to_string();
    let gw = start(
        vec![
            "--etcd-cacert".into(),
            path(&tls.ca),
            "--etcd-cert".into(),
            path(&tls.client_cert),
            "--etcd-key".into(),
            path(&tls.client_key),
        ],
        "a.yml",
    );
    assert_eq!(gw.send(&get("/r")).status, 200, "{}", gw.logs());
    let r = gw.admin_json(
        "POST",
        "/routes",
        json!({"name": "over-tls", "paths": ["/over-tls"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(cluster
        .ctl(&["get", "/tls/config", "--print-value-only"])
        .contains("over-tls"));
    // Without the client certificate etcd refuses the connection: said, nothing served.
    let refused = start(vec!["--etcd-cacert".into(), path(&tls.ca)], "b.yml");
    assert_eq!(refused.send(&get("/r")).status, 404);
    assert!(refused.logged("cannot be used"), "{}", refused.logs());
}
