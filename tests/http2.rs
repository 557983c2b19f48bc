//! HTTP/2 from clients: h2c with prior knowledge on the plain listener, through the same
//! phases as HTTP/1.1, with the `h2` crate's defences configured. Real clients: curl, and
//! Python's `h2` driving a socket frame by frame. Both drivers.

mod support;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use support::*;

/// curl over h2c with prior knowledge: the status, the protocol curl used, the body.
fn curl_h2(url: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--http2-prior-knowledge"])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.to_string())
}

#[test]
fn curl_speaks_h2c_and_the_function_sees_the_request() {
    if !installed("curl", "curl") {
        return;
    }
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    for driver in DRIVERS {
        let gw = Gateway::start(&mock, &config, driver);
        let base = format!("http://{}", gw.addr);
        let (status, body) = curl_h2(&format!("{base}/h?a=1&b=two"), &[]);
        assert_eq!(status, "200 2", "{driver:?}: {body}");
        let got: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(got, json!({"a": "1", "b": "two"}), "{driver:?}");
        let (status, body) = curl_h2(
            &format!("{base}/h"),
            &[
                "-H",
                "content-type: application/x-www-form-urlencoded",
                "-d",
                "x=1&y=2",
            ],
        );
        assert_eq!(status, "200 2", "{driver:?}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json"),
            json!({"x": "1", "y": "2"})
        );
        let (status, body) = curl_h2(&format!("{base}/nothing"), &[]);
        assert_eq!(status, "404 2", "{driver:?}");
        assert_eq!(body, r#"{"message":"no Route matched with those values"}"#);
        // HTTP/1.1 on the same port is untouched.
        assert_eq!(gw.send(&get("/h?v=1")).json(), json!({"v": "1"}));
        mock.assert_all_signatures_valid();
    }
}

/// A Python `h2` client: `scenario` is run against the gateway at `port`; it prints one JSON
/// object.
const CLIENT: &str = r#"
import json, socket, sys, time
import h2.connection, h2.config, h2.events, h2.errors
port, scenario = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
c.initiate_connection(); s.sendall(c.data_to_send())
out = {"statuses": {}, "bodies": {}, "goaway": None, "resets": {}, "ended": []}
def pump(until):
    while not until():
        try:
            data = s.recv(65536)
        except socket.timeout:
            out["timeout"] = True; return
        if not data:
            out["closed"] = True; return
        for e in c.receive_data(data):
            if isinstance(e, h2.events.ResponseReceived):
                out["statuses"][e.stream_id] = dict(e.headers)[":status"]
            elif isinstance(e, h2.events.DataReceived):
                out["bodies"][e.stream_id] = out["bodies"].get(e.stream_id, "") + e.data.decode()
                c.acknowledge_received_data(len(e.data), e.stream_id)
            elif isinstance(e, h2.events.StreamEnded):
                out["ended"].append(e.stream_id)
            elif isinstance(e, h2.events.StreamReset):
                out["resets"][e.stream_id] = int(e.error_code)
            elif isinstance(e, h2.events.ConnectionTerminated):
                out["goaway"] = int(e.error_code); return
        try:
            s.sendall(c.data_to_send())
        except OSError:
            out["closed"] = True; return
def get(sid, path, end=True):
    c.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "gw")], end_stream=end)
if scenario == "many":
    # Twenty streams at once on one connection, each its own request.
    for i in range(20):
        get(1 + 2 * i, f"/h?n={i}")
    s.sendall(c.data_to_send())
    pump(lambda: len(out["ended"]) == 20)
elif scenario == "rapid-reset":
    # Streams opened and reset at once, over and over (CVE-2023-44487).
    for i in range(2000):
        sid = 1 + 2 * i
        get(sid, f"/h?reset={i}")
        c.reset_stream(sid)
        try:
            s.sendall(c.data_to_send())
        except OSError:
            out["closed"] = True; break
        if i % 50 == 0:
            s.setblocking(False)
            try:
                data = s.recv(65536)
                for e in c.receive_data(data):
                    if isinstance(e, h2.events.ConnectionTerminated):
                        out["goaway"] = int(e.error_code)
            except (BlockingIOError, OSError):
                pass
            s.setblocking(True); s.settimeout(10)
            if out["goaway"] is not None:
                out["sent"] = i + 1; break
    if out["goaway"] is None:
        pump(lambda: out["goaway"] is not None)
elif scenario == "too-large":
    c.send_headers(1, [(":method", "POST"), (":path", "/h"), (":scheme", "http"), (":authority", "gw"), ("content-type", "application/octet-stream")])
    chunk = b"x" * 16384
    sent = 0
    while sent <= 6 * 1024 * 1024 + 16384 and 1 not in out["statuses"]:
        window = c.local_flow_control_window(1)
        if window < len(chunk):
            pump(lambda: c.local_flow_control_window(1) >= len(chunk) or 1 in out["statuses"] or 1 in out["resets"])
            if 1 in out["statuses"] or 1 in out["resets"] or out.get("closed") or out.get("timeout"):
                break
            continue
        c.send_data(1, chunk); sent += len(chunk)
        s.sendall(c.data_to_send())
    pump(lambda: 1 in out["statuses"] or 1 in out["resets"])
print(json.dumps(out))
"#;

fn h2_client(port: u16, scenario: &str) -> Value {
    let out = python::python()
        .args(["-c", CLIENT, &port.to_string(), scenario])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn streams_are_requests_and_the_known_attacks_are_refused() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    for driver in DRIVERS {
        let gw = Gateway::start(&mock, &config, driver);
        let port = gw.addr.port();
        // Twenty concurrent streams: twenty answers, each its own request's.
        let many = h2_client(port, "many");
        for i in 0..20 {
            let sid = (1 + 2 * i).to_string();
            assert_eq!(many["statuses"][&sid], "200", "{driver:?}: {many}");
            let body: Value = serde_json::from_str(many["bodies"][&sid].as_str().unwrap_or(""))
                .unwrap_or_else(|e| panic!("{driver:?}: {e}: {many}"));
            assert_eq!(body, json!({"n": i.to_string()}), "{driver:?}");
        }
        // Rapid reset: the connection is closed with ENHANCE_YOUR_CALM (0xb) long before
        // 2,000 streams, and reset streams are not each an invoke.
        let invokes_before = mock.requests().len();
        let reset = h2_client(port, "rapid-reset");
        assert_eq!(reset["goaway"], 11, "{driver:?}: {reset}");
        let invoked = mock.requests().len() - invokes_before;
        assert!(
            invoked < 200,
            "{driver:?}: {invoked} invokes for reset streams"
        );
        // A body over the 6 MiB limit: 413, as over HTTP/1.1.
        let large = h2_client(port, "too-large");
        assert_eq!(large["statuses"]["1"], "413", "{driver:?}: {large}");
        // And the gateway serves on.
        assert_eq!(gw.send(&get("/h?after=1")).json(), json!({"after": "1"}));
    }
}
