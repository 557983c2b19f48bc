//! The Kong-style Lua peer of the load test (tools/kong-lua: nginx + lua-nginx-module doing the
//! aws-lambda plugin's work) against the tests' mock Lambda, which checks every signature with
//! aws-sigv4: the peer must sign correctly and send the same payloads as the gateway, or its
//! load-test figures mean nothing.
//!
//! Needs Debian's nginx-light, libnginx-mod-http-lua, lua-cjson and lua-luaossl, which `.ci/run`
//! installs; skipped (and said so) without them.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Whether nginx and the Lua modules tools/kong-lua/run loads are installed.
fn lua_peer_installed() -> bool {
    let lua_libraries = "/usr/lib/x86_64-linux-gnu/lua/5.1";
    let present = skip::runs("nginx", "-v")
        && std::path::Path::new("/usr/lib/nginx/modules/ngx_http_lua_module.so").exists()
        && std::path::Path::new(&format!("{lua_libraries}/cjson.so")).exists()
        && std::path::Path::new(&format!("{lua_libraries}/_openssl.so")).exists();
    skip::may_run(
        "nginx with Lua",
        present,
        "nginx-light libnginx-mod-http-lua lua-cjson lua-luaossl",
    )
}

#[test]
fn the_lua_peer_signs_correctly_and_sends_what_the_gateway_sends() {
    if !lua_peer_installed() {
        return;
    }
    let mock = MockLambda::start();
    let work = TempDir::new("kong-lua");
    let port = free_port();
    let mut peer = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/kong-lua/run"))
        .args([
            port.to_string(),
            mock.addr.port().to_string(),
            mock.ca_file.display().to_string(),
            ACCESS_KEY.to_string(),
            SECRET_KEY.to_string(),
            "1".to_string(),
            work.path.display().to_string(),
            "echo".to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tools/kong-lua/run");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the Lua peer did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gw = Gateway::start(
        &mock,
        &config_for(&mock, "/lambda1", "echo", ""),
        Driver::IoUring,
    );
    let requests = [
        get("/lambda1"),
        get("/lambda1?key1=a&key2=b"),
        "POST /lambda1?q=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"a\":{\"n\":[1,2]},\"b\":\"x y\"}".to_string(),
        "POST /lambda1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 13\r\n\r\nkey1=v&key2=w".to_string(),
    ];
    let mut lua = Client::connect(addr);
    for raw in &requests {
        // Twice on one connection: the second reuses the pooled TLS connection.
        for _ in 0..2 {
            let from_lua = lua.request(raw.as_bytes());
            let from_gateway = gw.send(raw);
            assert_eq!(from_lua.status, 200, "{raw:?}: {}", from_lua.text());
            assert_eq!(from_lua.json(), from_gateway.json(), "{raw:?}");
        }
    }
    let verified = mock.assert_all_signatures_valid();
    assert_eq!(
        verified,
        requests.len() * 4,
        "every request reached the mock"
    );
    // SIGTERM: nginx's master stops its workers (a SIGKILL would orphan them).
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(peer.id().to_string())
        .status();
    let _ = peer.wait();
}
