//! HTTP/2 from clients: h2c with prior knowledge on the plain listener, through the same
//! phases as HTTP/1.1, with the `h2` crate's defences configured. Real clients: curl, and
//! Python's `h2` driving a socket frame by frame. Both drivers.

mod support;

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use support::*;

/// curl with `flags`: the status and the protocol curl used, and the body.
fn curl(flags: &[&str], url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(flags)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.to_string())
}

/// curl over h2c with prior knowledge.
fn curl_h2(url: &str, extra: &[&str]) -> (String, String) {
    let flags: Vec<&str> = ["--http2-prior-knowledge"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    curl(&flags, url)
}

#[test]
fn curl_speaks_h2c_and_the_function_sees_the_request() {
    if !installed("curl", "curl") {
        return;
    }
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    let dir = TempDir::new("h2c-log");
    for driver in DRIVERS {
        let log = dir.path.join(format!("{driver:?}.log"));
        let log_arg = log.display().to_string();
        let gw = Gateway::start_args(&mock, &config, driver, &["--access-log", &log_arg]);
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
        // The access log tells the protocols apart (lines in the order workers wrote them).
        let lines = json_lines(&log, 4);
        let mut seen: Vec<(String, String)> = lines
            .iter()
            .map(|l| {
                let text = |v: &Value| v.as_str().unwrap_or("").to_string();
                (text(&l["request"]["url"]), text(&l["request"]["protocol"]))
            })
            .collect();
        seen.sort();
        let expected = [
            (format!("{base}/h"), "HTTP/2.0"),
            (format!("{base}/h"), "HTTP/2.0"),
            (format!("{base}/nothing"), "HTTP/2.0"),
            ("http://gateway.test/h".into(), "HTTP/1.1"),
        ]
        .map(|(u, p)| (u, p.to_string()));
        assert_eq!(seen, expected, "{driver:?}");
    }
}

/// A Python `h2` client: `scenario` is run against the gateway at `port`; it prints one JSON
/// object.
const CLIENT: &str = r#"
import json, socket, sys, time
import h2.connection, h2.config, h2.events, h2.errors, h2.settings
port, scenario = int(sys.argv[1]), sys.argv[2]
out = {"statuses": {}, "bodies": {}, "goaway": None, "resets": {}, "ended": []}
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
if len(sys.argv) > 3:
    # TLS with ALPN h2, trusting the CA file given.
    import ssl
    ctx = ssl.create_default_context(cafile=sys.argv[3]); ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(s, server_hostname="localhost")
    out["alpn"] = s.selected_alpn_protocol()
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
c.initiate_connection(); s.sendall(c.data_to_send())
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
elif scenario == "event":
    # One request with its cookies in two fields, for a route that sends API Gateway events.
    c.send_headers(1, [(":method", "GET"), (":path", "/ev?q=1"), (":scheme", "https"), (":authority", "gw.test"), ("cookie", "a=1"), ("cookie", "b=2")], end_stream=True)
    s.sendall(c.data_to_send())
    pump(lambda: 1 in out["ended"] or 1 in out["resets"])
elif scenario == "zero-window":
    # A client that never opens its window: the answer's HEADERS come, its DATA cannot. The
    # form's field comes back in a 40 KB answer: past one frame, so it waits for the window.
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.send_headers(1, [(":method", "POST"), (":path", "/h"), (":scheme", "http"), (":authority", "gw"), ("content-type", "application/x-www-form-urlencoded")])
    c.send_data(1, b"a=" + b"z" * 10000)
    for i in range(3):
        c.send_data(1, b"z" * 10000, end_stream=(i == 2))
    s.sendall(c.data_to_send())
    started = time.time()
    pump(lambda: 1 in out["resets"] or 1 in out["ended"])
    out["waited"] = time.time() - started
print(json.dumps(out))
"#;

/// A client writing raw frames (hyperframe and hpack, below Python's `h2`, which would refuse
/// to send most of them): `scenario` against the gateway at `port`; prints one JSON object
/// with the GOAWAY code, the streams reset (and their codes), the statuses answered, and
/// whether the gateway closed the connection or stopped reading.
const RAW: &str = r#"
import json, socket, sys, time
from hyperframe.frame import Frame, SettingsFrame, HeadersFrame, ContinuationFrame, DataFrame, PingFrame, GoAwayFrame, RstStreamFrame, WindowUpdateFrame
import hpack
port, scenario = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(5)
out = {"goaway": None, "resets": {}, "statuses": {}, "closed": False, "stalled": False, "sent": 0}
enc, dec, buf = hpack.Encoder(), hpack.Decoder(), bytearray()
dec.max_header_list_size = 1 << 30
def raw(data):
    try:
        s.settimeout(5); s.sendall(data); return True
    except socket.timeout:
        out["stalled"] = True; return False
    except OSError:
        out["closed"] = True; return False
def send(*frames):
    if raw(b"".join(f.serialize() for f in frames)):
        out["sent"] += len(frames); return True
    return False
def read_some(wait):
    global buf
    try:
        if wait:
            s.settimeout(wait); data = s.recv(65536)
        else:
            s.setblocking(False); data = s.recv(65536)
    except (BlockingIOError, socket.timeout):
        return False
    except OSError:
        out["closed"] = True; return False
    if not data:
        out["closed"] = True; return False
    buf += data
    while len(buf) >= 9:
        f, length = Frame.parse_frame_header(memoryview(bytes(buf[:9])))
        if len(buf) < 9 + length:
            break
        f.parse_body(memoryview(bytes(buf[9:9 + length]))); del buf[:9 + length]
        if "END_STREAM" in f.flags and isinstance(f, (HeadersFrame, DataFrame)):
            out.setdefault("ended", []).append(f.stream_id)
        if isinstance(f, GoAwayFrame):
            out["goaway"] = f.error_code
        elif isinstance(f, RstStreamFrame):
            out["resets"][str(f.stream_id)] = f.error_code
        elif isinstance(f, WindowUpdateFrame) and f.stream_id == 0:
            out["window"] = out.get("window", 65535) + f.window_increment
        elif isinstance(f, HeadersFrame):
            out["statuses"][str(f.stream_id)] = dict(dec.decode(bytes(f.data))).get(":status")
        elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            out["settings"] = True
            if scenario != "continuation-flood":
                send(SettingsFrame(0, flags=["ACK"]))
    return True
def pump(until, limit=15):
    end = time.time() + limit
    while not until() and not out["closed"] and time.time() < end:
        read_some(1)
def request(sid, path, end=True, extra=()):
    block = enc.encode([(":method", "GET" if end else "POST"), (":path", path), (":scheme", "http"), (":authority", "gw")] + list(extra))
    return HeadersFrame(sid, data=block, flags=["END_HEADERS"] + (["END_STREAM"] if end else []))
def headers(sid, block, end):
    # A header block in 16 KiB frames: HEADERS, then CONTINUATION.
    pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    last = len(pieces) - 1
    frames = [HeadersFrame(sid, data=pieces[0], flags=(["END_HEADERS"] if last == 0 else []) + (["END_STREAM"] if end else []))]
    frames += [ContinuationFrame(sid, data=p, flags=["END_HEADERS"] if i == last else []) for i, p in enumerate(pieces) if i > 0]
    return frames
def body(sid, data, end):
    pieces = [data[i:i + 16384] for i in range(0, len(data), 16384)]
    return [DataFrame(sid, data=p, flags=["END_STREAM"] if end and i == len(pieces) - 1 else []) for i, p in enumerate(pieces)]
def octets(sid, path):
    return request(sid, path, end=False, extra=[("content-type", "application/octet-stream")])
def int_prefix(value, bits, first):
    top = (1 << bits) - 1
    if value < top:
        return bytes([first | value])
    out_, value = bytearray([first | top]), value - top
    while value >= 128:
        out_.append((value & 127) | 128); value >>= 7
    out_.append(value)
    return bytes(out_)
if scenario == "bad-preface":
    raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
    pump(lambda: False, 5)
    print(json.dumps(out)); sys.exit()
raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); send(SettingsFrame(0))
pump(lambda: "settings" in out)
if scenario == "continuation-flood":
    # A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames
    # of 16 KiB each (CVE-2024-27316); the gateway's SETTINGS are not even acknowledged.
    send(HeadersFrame(1, data=enc.encode([(":method", "GET"), (":path", "/h"), (":scheme", "http"), (":authority", "gw")]), flags=["END_STREAM"]))
    # Fifteen whole fields per frame (literal, not indexed): each frame decodes on its own.
    field = b"\x00" + int_prefix(8, 7, 0) + b"x-flood0" + int_prefix(1000, 7, 0) + b"v" * 1000
    block = field * 15
    for i in range(2000):
        if not send(ContinuationFrame(1, data=block)):
            break
        read_some(0)
        if out["goaway"] is not None or out["closed"]:
            break
    pump(lambda: out["goaway"] is not None)
elif scenario in ("hpack-bomb", "hpack-bomb-large"):
    # One 4,000-byte field put in the dynamic table, then referenced by its one-byte index
    # on fifty streams: 12 times per request (48 KB decoded from a few bytes), or 100 times
    # (400 KB).
    first = enc.encode([("x-bomb", "A" * 4000)])
    refs = 12 if scenario == "hpack-bomb" else 100
    for i in range(50):
        sid = 1 + 2 * i
        # Never indexed: the bomb stays entry 62 of the dynamic table.
        pseudo = enc.encode([(":method", "GET", True), (":path", "/h?bomb=%d" % i, True), (":scheme", "http", True), (":authority", "gw", True)])
        block = pseudo + (first if i == 0 else b"") + bytes([0x80 | 62]) * refs
        if not send(HeadersFrame(sid, data=block, flags=["END_HEADERS", "END_STREAM"])):
            break
        pump(lambda: str(sid) in out["statuses"] or str(sid) in out["resets"], 5)
        if out["goaway"] is not None:
            break
elif scenario == "table-size":
    # A dynamic table size update above the gateway's SETTINGS_HEADER_TABLE_SIZE (4,096).
    block = int_prefix(1 << 24, 5, 0x20) + enc.encode([(":method", "GET"), (":path", "/h"), (":scheme", "http"), (":authority", "gw")])
    send(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]))
    pump(lambda: out["goaway"] is not None)
elif scenario in ("settings-flood", "ping-flood"):
    # Frames the gateway must acknowledge, sent without reading a single acknowledgement.
    frame = SettingsFrame(0) if scenario == "settings-flood" else PingFrame(0, opaque_data=b"12345678")
    batch = frame.serialize() * 1000
    for i in range(200):
        if not raw(batch):
            break
        out["sent"] += 1000
    out["flood_done"] = time.time()
    print(json.dumps(out), flush=True)
    # Then read what the gateway says, until it closes the connection.
    pump(lambda: False, 30)
elif scenario == "empty-data":
    # A stream kept open by 100,000 empty DATA frames, then ended (CVE-2019-9518).
    send(request(1, "/h", end=False, extra=[("content-type", "application/x-www-form-urlencoded")]))
    empty = DataFrame(1, data=b"").serialize() * 1000
    for i in range(100):
        if not raw(empty):
            break
        out["sent"] += 1000
        read_some(0)
        if out["goaway"] is not None:
            break
    send(DataFrame(1, data=b"e=1", flags=["END_STREAM"]))
    pump(lambda: "1" in out["statuses"] or out["goaway"] is not None)
elif scenario == "stream-reuse":
    send(request(1, "/h?first=1"))
    pump(lambda: "1" in out["statuses"])
    send(request(1, "/h?again=1"))
    pump(lambda: out["goaway"] is not None)
elif scenario == "stream-order":
    send(request(5, "/h?five=1"))
    send(request(3, "/h?three=1"))
    pump(lambda: out["goaway"] is not None)
elif scenario == "closed-stream-data":
    send(request(1, "/h?done=1"))
    pump(lambda: "1" in out["statuses"])
    time.sleep(0.2); read_some(0)
    send(DataFrame(1, data=b"late", flags=["END_STREAM"]))
    pump(lambda: out["goaway"] is not None or "1" in out["resets"])
elif scenario == "stopped":
    # A slow request in flight while the gateway is told to stop: GOAWAY, then its answer.
    send(request(1, "/slow?stop=1"))
    pump(lambda: 1 in out.get("ended", []) and out["goaway"] is not None, 20)
elif scenario == "keepalive":
    # A request that takes longer than the keep-alive timeout, then nothing: when its answer
    # comes, and when the GOAWAY after it.
    started = time.time()
    send(request(1, "/slow?keepalive=1"))
    pump(lambda: "1" in out["statuses"] or out["goaway"] is not None, 10)
    out["answered_at"], out["goaway_before_answer"] = time.time() - started, out["goaway"]
    pump(lambda: out["goaway"] is not None, 10)
    out["goaway_after_answer"] = time.time() - started - out["answered_at"]
elif scenario == "too-many-streams":
    # 110 slow requests at once on a connection allowed 100.
    send(*[request(1 + 2 * i, "/slow?n=%d" % i) for i in range(110)])
    pump(lambda: len(out["statuses"]) + len(out["resets"]) >= 110, 20)
elif scenario == "large-heads":
    # Twenty streams whose heads are each near the 32 KiB limit, their bodies not sent yet;
    # after a moment, the streams not refused send their bodies, and one more stream opens.
    for i in range(20):
        block = enc.encode([(":method", "POST", True), (":path", "/h?big=%d" % i, True), (":scheme", "http", True), (":authority", "gw", True), ("content-type", "application/x-www-form-urlencoded", True), ("x-big", "b" * 30000, True)])
        send(*headers(1 + 2 * i, block, False))
    pump(lambda: False, 2)
    kept = [1 + 2 * i for i in range(20) if str(1 + 2 * i) not in out["resets"]]
    for sid in kept:
        send(DataFrame(sid, data=b"k=%d" % sid, flags=["END_STREAM"]))
    pump(lambda: all(str(sid) in out["statuses"] for sid in kept))
    send(request(41, "/h?after=1"))
    pump(lambda: "41" in out["statuses"])
elif scenario == "slow-bodies":
    # Stream 1 sends 50 KB of its body at once, then nothing; stream 3 trickles 20 bytes
    # every 100 ms (200 B/s, under the 1 KiB/s minimum). When each is answered.
    started, out["at"] = time.time(), {}
    send(octets(1, "/h?stalled=1"), *body(1, b"x" * 50000, False), octets(3, "/h?trickle=1"))
    while time.time() < started + 25 and not out["closed"] and len(out["at"]) < 2:
        read_some(0.1)
        for sid in ("1", "3"):
            if sid in out["statuses"] and sid not in out["at"]:
                out["at"][sid] = time.time() - started
        if "3" not in out["statuses"]:
            send(DataFrame(3, data=b"y" * 20))
elif scenario == "held-bodies":
    # Ten streams send 30 KB of body each and wait: the test reads the gateway's metrics,
    # then says go (a line on stdin) and the bodies end. First the gateway's connection
    # window must have opened past the 65,535 bytes every connection starts with.
    pump(lambda: out.get("window", 65535) >= 10 * 30000)
    for i in range(10):
        send(octets(1 + 2 * i, "/h?held=%d" % i), *body(1 + 2 * i, b"z" * 30000, False))
    read_some(0.5)
    print(json.dumps({"held": True}), flush=True)
    sys.stdin.readline()
    send(*[DataFrame(1 + 2 * i, data=b"", flags=["END_STREAM"]) for i in range(10)])
    pump(lambda: len(out["statuses"]) >= 10)
print(json.dumps(out))
"#;

/// Eight connections, each sending 200 requests one after another (each read by the gateway
/// on its own), each request's `:path` a literal (no Huffman) that the gateway's HPACK table
/// is told to keep. Prints the statuses counted, then waits for a line on stdin before it
/// closes its connections.
const PINNER: &str = r#"
import json, socket, sys
from hyperframe.frame import Frame, SettingsFrame, HeadersFrame
import hpack
port = int(sys.argv[1])
conns = []
for _ in range(8):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize() + SettingsFrame(0, flags=["ACK"]).serialize())
    conns.append([s, hpack.Encoder(), bytearray()])
def answered(c, sid):
    s, _, buf = c
    while True:
        while len(buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(bytes(buf[:9])))
            if len(buf) < 9 + length:
                break
            del buf[:9 + length]
            if isinstance(f, HeadersFrame) and f.stream_id == sid:
                return True
        data = s.recv(65536)
        if not data:
            return False
        buf += data
ok = 0
for i in range(200):
    for c in conns:
        block = c[1].encode([(":method", "GET"), (":path", "/h?pin=%03d" % i), (":scheme", "http"), (":authority", "gw")], huffman=False)
        c[0].sendall(HeadersFrame(1 + 2 * i, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    ok += sum(answered(c, 1 + 2 * i) for c in conns)
print(json.dumps({"answered": ok}), flush=True)
sys.stdin.readline()
"#;

/// Starts `script` (CLIENT or RAW) on `scenario` against the gateway at `port`, with `extra`
/// arguments; its answer comes from [`answer_of`].
fn spawn_client(script: &str, port: u16, scenario: &str, extra: &[&std::path::Path]) -> Child {
    python::python()
        .args(["-c", script, &port.to_string(), scenario])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python")
}

/// The JSON object a client printed last (a flood prints one before it reads the answer).
fn answer_of(client: Child) -> Value {
    let out = client.wait_with_output().expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.trim().lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn raw_client(port: u16, scenario: &str) -> Value {
    answer_of(spawn_client(RAW, port, scenario, &[]))
}

fn h2_client(port: u16, scenario: &str) -> Value {
    h2_client_over(port, scenario, None)
}

/// [`h2_client`], over TLS trusting `ca` when given.
fn h2_client_over(port: u16, scenario: &str, ca: Option<&std::path::Path>) -> Value {
    let extra: Vec<&std::path::Path> = ca.into_iter().collect();
    answer_of(spawn_client(CLIENT, port, scenario, &extra))
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

/// [`raw_client`] with the gateway's resident memory sampled while it runs: (its answer, the
/// most the gateway held above what it held before, KiB).
fn raw_client_measured(gw: &Gateway, scenario: &str) -> (Value, u64) {
    let before = rss_kb(gw.pid());
    let mut child = spawn_client(RAW, gw.addr.port(), scenario, &[]);
    let mut peak = before;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(rss_kb(gw.pid()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let answer = answer_of(child);
    let held = peak.saturating_sub(before);
    eprintln!("{scenario}: the gateway held {held} KiB more at most");
    (answer, held)
}

/// Two routes: `/h` invokes `echo`, `/slow` a function that answers after 600 ms.
fn echo_and_slow(mock: &MockLambda) -> String {
    let slow = config_for(mock, "/slow", "slow", "")
        .replace("name: svc", "name: slow-svc")
        .replace("name: route", "name: slow");
    let (_, services) = slow.split_once("services:\n").expect("services");
    format!("{}{services}", config_for(mock, "/h", "echo", ""))
}

#[test]
fn a_connection_without_open_streams_is_let_go_at_the_keepalive_timeout() {
    let mock = MockLambda::start();
    let config = echo_and_slow(&mock);
    for driver in DRIVERS {
        let gw = Gateway::start_args(&mock, &config, driver, &["--keepalive-timeout", "300ms"]);
        // The keep-alive timeout runs while no stream is open: a 600 ms request outlives it
        // and is answered; the GOAWAY (NO_ERROR) comes once the connection has been quiet
        // for the timeout (the worker checks its deadlines every 100 ms).
        let kept = raw_client(gw.addr.port(), "keepalive");
        assert_eq!(kept["statuses"]["1"], "200", "{driver:?}: {kept}");
        assert_eq!(
            kept["goaway_before_answer"],
            Value::Null,
            "{driver:?}: {kept}"
        );
        assert_eq!(kept["goaway"], 0, "{driver:?}: {kept}");
        let after = kept["goaway_after_answer"].as_f64().expect("goaway time");
        assert!(
            (0.25..2.0).contains(&after),
            "{driver:?}: GOAWAY {after} s after the answer"
        );
    }
}

#[test]
fn the_hpack_table_keeps_no_buffer_it_was_decoded_from() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    for driver in DRIVERS {
        let gw = Gateway::start(&mock, &config, driver);
        // Warmed up first (the pool's connection to the function, the workers' buffers).
        let warm = h2_client(gw.addr.port(), "many");
        assert_eq!(warm["statuses"].as_object().map(|s| s.len()), Some(20));
        // Each request's :path goes into its connection's 4 KiB HPACK table (about 87 of
        // them fit). Were an entry a slice of the read buffer its request came in, the table
        // would keep a read buffer (8 KiB) per entry: 700 KiB per connection, 5.6 MiB for
        // the eight. The gateway's RSS once they are idle, against before.
        let before = rss_kb(gw.pid());
        let mut pinner = python::python()
            .args(["-c", PINNER, &gw.addr.port().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python");
        let mut line = String::new();
        let stdout = pinner.stdout.as_mut().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("answer");
        let held = rss_kb(gw.pid()).saturating_sub(before);
        drop(pinner.stdin.take());
        let _ = pinner.wait();
        assert_eq!(line.trim(), r#"{"answered": 1600}"#, "{driver:?}");
        eprintln!("{driver:?}: eight connections' tables: {held} KiB");
        assert!(held < 2048, "{driver:?}: the gateway holds {held} KiB more");
    }
}

#[test]
fn frames_from_a_hostile_client_cost_its_connection_only() {
    let mock = MockLambda::start();
    let config = echo_and_slow(&mock);
    for driver in DRIVERS {
        let gw = Gateway::start_args(
            &mock,
            &config,
            driver,
            &["--client-timeout", "2s", "--keepalive-timeout", "2s"],
        );
        let port = gw.addr.port();
        let invokes = || mock.requests().len();
        // What one connection may make the gateway hold, whatever it sends.
        let bound_kb = 16 * 1024;

        // Not the preface after `PRI `: the connection is closed, nothing answered.
        let bad = raw_client(port, "bad-preface");
        assert_eq!(bad["closed"], true, "{driver:?}: {bad}");
        assert_eq!(bad["statuses"], json!({}), "{driver:?}");

        // The connection is closed with GOAWAY ENHANCE_YOUR_CALM, nothing answered or
        // invoked, and the gateway held less than the bound meanwhile.
        let calmed = |scenario: &str| {
            let before = invokes();
            let (answer, held) = raw_client_measured(&gw, scenario);
            assert_eq!(answer["goaway"], 11, "{driver:?}: {scenario}: {answer}");
            assert_eq!(
                answer["statuses"],
                json!({}),
                "{driver:?}: {scenario}: {answer}"
            );
            assert!(held < bound_kb, "{driver:?}: {scenario}: {held} KiB held");
            assert_eq!(invokes(), before, "{driver:?}: {scenario}");
        };

        // CONTINUATION flood: closed after a few frames of the block.
        calmed("continuation-flood");

        // HPACK bomb: 48 KB decoded from each few-byte block, past the 32 KiB header limit:
        // 431 on every stream, and no invoke; 400 KB (over four times the limit, h2's abuse
        // bound): GOAWAY ENHANCE_YOUR_CALM on the first.
        let before = invokes();
        let (bomb, held) = raw_client_measured(&gw, "hpack-bomb");
        for i in 0..50 {
            let sid = (1 + 2 * i).to_string();
            assert_eq!(bomb["statuses"][&sid], "431", "{driver:?}: {sid}: {bomb}");
        }
        assert!(held < bound_kb, "{driver:?}: {held} KiB held");
        assert_eq!(invokes(), before, "{driver:?}");
        calmed("hpack-bomb-large");

        // A dynamic table larger than the gateway allows: a connection error. (RFC 9113 §4.3
        // names COMPRESSION_ERROR for a decoding error; h2 says PROTOCOL_ERROR.)
        let table = raw_client(port, "table-size");
        let code = table["goaway"].as_u64();
        assert!(matches!(code, Some(1 | 9)), "{driver:?}: {table}");
        assert_eq!(table["statuses"], json!({}), "{driver:?}: {table}");

        // 200,000 SETTINGS (or PINGs) sent without reading an acknowledgement: the gateway
        // stops reading once its acknowledgements cannot be sent, holds no more for it, and
        // closes the connection once it is idle.
        for flood in ["settings-flood", "ping-flood"] {
            let (answer, held) = raw_client_measured(&gw, flood);
            assert!(held < bound_kb, "{driver:?}: {flood}: {held} KiB held");
            assert_eq!(answer["closed"], true, "{driver:?}: {flood}: {answer}");
        }

        // 100,000 empty DATA frames on a stream (CVE-2019-9518): h2 counts them (100 at
        // most) and closes the connection.
        calmed("empty-data");

        // A stream id used twice, or going down, is a connection error.
        let reuse = raw_client(port, "stream-reuse");
        assert!(
            [1, 5].contains(&reuse["goaway"].as_u64().unwrap_or(0)),
            "{driver:?}: {reuse}"
        );
        let order = raw_client(port, "stream-order");
        assert_eq!(order["goaway"], 1, "{driver:?}: {order}");
        // DATA on a stream that has ended: STREAM_CLOSED.
        let late = raw_client(port, "closed-stream-data");
        let code = late["resets"]["1"].as_u64().or(late["goaway"].as_u64());
        assert_eq!(code, Some(5), "{driver:?}: {late}");

        // 110 streams at once on a connection allowed 100: the ten over are refused
        // (REFUSED_STREAM), the hundred answered.
        let many = raw_client(port, "too-many-streams");
        let statuses = many["statuses"].as_object().expect("statuses");
        let answered = statuses.values().filter(|s| *s == "200").count();
        let refused = many["resets"]
            .as_object()
            .expect("resets")
            .values()
            .filter(|c| **c == 7)
            .count();
        assert_eq!((answered, refused), (100, 10), "{driver:?}: {many}");

        // The gateway serves on.
        assert_eq!(gw.send(&get("/h?after=1")).json(), json!({"after": "1"}));
    }
}

/// The gateway's `lambda_gateway_buffered_bytes`: what its buffer budget counts now.
fn buffered_bytes(gw: &Gateway) -> u64 {
    let text = gw.admin_get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix("lambda_gateway_buffered_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no buffered bytes in {text}"))
}

#[test]
fn what_a_connection_holds_across_its_streams_is_bounded() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    let dir = TempDir::new("h2-held");
    for driver in DRIVERS {
        let gw = Gateway::start_admin_with(&mock, &config, driver, &dir);
        let port = gw.addr.port();

        // Twenty 30 KB heads at once: a connection's open streams may hold eight heads at the
        // 32 KiB limit (262,144 bytes, counted as HPACK counts a header list). Each of these
        // counts 30,224 bytes, so eight are served and twelve refused with REFUSED_STREAM
        // (which a client may retry); the connection serves on.
        // Both workers have served before the gateway's memory is sampled.
        for _ in 0..8 {
            assert_eq!(gw.send(&get("/h?warm=1")).status, 200);
        }
        let (heads, held) = raw_client_measured(&gw, "large-heads");
        assert!(held < 4 * 1024, "{driver:?}: {held} KiB held for heads");
        let refused: Vec<&String> = heads["resets"]
            .as_object()
            .expect("resets")
            .iter()
            .filter(|(_, code)| **code == 7)
            .map(|(sid, _)| sid)
            .collect();
        let served = heads["statuses"].as_object().expect("statuses");
        assert_eq!(refused.len(), 12, "{driver:?}: {heads}");
        assert_eq!(served.len(), 8 + 1, "{driver:?}: {heads}");
        assert!(served.values().all(|s| s == "200"), "{driver:?}: {heads}");
        assert!(
            refused.iter().all(|sid| !served.contains_key(*sid)),
            "{driver:?}: {heads}"
        );

        // Ten 30 KB bodies held at once on one connection: past the connection's 64 KiB
        // allowance (what one HTTP/1.1 connection may hold outside the budget) they are
        // counted in the node's budget, with the payload they will become.
        let mut client = python::python()
            .args(["-c", RAW, &port.to_string(), "held-bodies"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python");
        let mut lines = std::io::BufReader::new(client.stdout.take().expect("stdout"));
        let mut first = String::new();
        std::io::BufRead::read_line(&mut lines, &mut first).expect("held");
        assert!(first.contains("held"), "{driver:?}: {first}");
        let past_allowance = 10 * 30_000 - 64 * 1024;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut counted = buffered_bytes(&gw);
        while counted < past_allowance && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            counted = buffered_bytes(&gw);
        }
        assert!(
            counted >= past_allowance,
            "{driver:?}: {counted} bytes counted while 300,000 are held"
        );
        let stdin = client.stdin.as_mut().expect("stdin");
        std::io::Write::write_all(stdin, b"go\n").expect("go");
        client.stdout = Some(lines.into_inner());
        let held = answer_of(client);
        let statuses = held["statuses"].as_object().expect("statuses");
        assert_eq!(statuses.len(), 10, "{driver:?}: {held}");
        assert!(statuses.values().all(|s| s == "200"), "{driver:?}: {held}");
        assert_eq!(buffered_bytes(&gw), 0, "{driver:?}: all given back");
    }
}

#[test]
fn a_trickling_or_stalled_stream_body_gets_408_after_the_grace() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    let dir = TempDir::new("h2-slow");
    for driver in DRIVERS {
        let gw = Gateway::start_admin_with(&mock, &config, driver, &dir);
        // As over HTTP/1.1 (tests/memory.rs): once the 10 s grace has passed, a body must
        // have come at 1 KiB/s on average, and none may wait longer than the grace for a
        // byte; the client timeout (30 s) is not waited for.
        let slow = raw_client(gw.addr.port(), "slow-bodies");
        for sid in ["1", "3"] {
            assert_eq!(slow["statuses"][sid], "408", "{driver:?}: {slow}");
            let at = slow["at"][sid].as_f64().unwrap_or(0.0);
            assert!((9.0..15.0).contains(&at), "{driver:?}: {sid} at {at} s");
        }
        let scrape = gw.admin_get("/metrics").text();
        assert!(
            scrape.contains("lambda_gateway_slow_bodies_total 2"),
            "{driver:?}: {scrape}"
        );
    }
}

#[test]
fn a_client_that_never_opens_its_window_is_let_go_at_the_client_timeout() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    for driver in DRIVERS {
        let gw = Gateway::start_args(&mock, &config, driver, &["--client-timeout", "2s"]);
        let answer = h2_client(gw.addr.port(), "zero-window");
        // The answer's HEADERS went out (not flow-controlled); its DATA never could: the
        // stream is reset (CANCEL) once the client timeout has passed without room.
        assert_eq!(answer["statuses"]["1"], "200", "{driver:?}: {answer}");
        assert_eq!(answer["resets"]["1"], 8, "{driver:?}: {answer}");
        let waited = answer["waited"].as_f64().unwrap_or(0.0);
        assert!((1.5..6.0).contains(&waited), "{driver:?}: {waited} s");
        assert_eq!(gw.send(&get("/h?after=1")).json(), json!({"after": "1"}));
    }
}

/// A gateway serving `config` on h2c and on HTTPS (a certificate for `localhost` made now),
/// with `extra` arguments: (the gateway, its HTTPS address, the CA file clients trust).
fn tls_gateway(
    mock: &MockLambda,
    config: &str,
    driver: Driver,
    dir: &TempDir,
    extra: &[&str],
) -> (Gateway, std::net::SocketAddr, std::path::PathBuf) {
    let files = support::pki::TlsFiles::generate(&dir.path, "h2 test CA", &["localhost"]);
    let mut args: Vec<String> = vec![
        "--tls-listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        files.server_cert.display().to_string(),
        "--tls-key".into(),
        files.server_key.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let gw = Gateway::start_with(
        mock,
        GatewayOptions {
            config,
            driver,
            env: vec![],
            args,
        },
    );
    let addr = gw
        .logs()
        .lines()
        .find_map(|l| addr_after(l, "HTTPS listening on "))
        .unwrap_or_else(|| panic!("no HTTPS address in the log:\n{}", gw.logs()));
    (gw, addr, files.ca)
}

/// curl over HTTPS trusting `ca`, ALPN as `flag` asks.
fn curl_tls(url: &str, ca: &std::path::Path, flag: &str) -> (String, String) {
    curl(&[flag, "--cacert", &ca.display().to_string()], url)
}

#[test]
fn alpn_h2_on_https_and_the_function_sees_http2() {
    let mock = MockLambda::start();
    // API Gateway 1.0 events: the function sees the protocol and the cookies as sent.
    let config = config_for(&mock, "/ev", "echo", "awsgateway_compatible: true");
    let dir = TempDir::new("h2-tls");
    for driver in DRIVERS {
        let (gw, tls, ca) = tls_gateway(&mock, &config, driver, &dir, &[]);
        let event = |via: &str| {
            let answer = match via {
                "https" => h2_client_over(tls.port(), "event", Some(&ca)),
                _ => h2_client(gw.addr.port(), "event"),
            };
            assert_eq!(answer["statuses"]["1"], "200", "{driver:?} {via}: {answer}");
            if via == "https" {
                assert_eq!(answer["alpn"], "h2", "{driver:?}");
            }
            serde_json::from_slice::<Value>(&mock.last().body).expect("event")
        };
        for via in ["https", "h2c"] {
            let sent = event(via);
            assert_eq!(
                sent["requestContext"]["protocol"], "HTTP/2.0",
                "{via}: {sent}"
            );
            assert_eq!(sent["httpMethod"], "GET", "{via}");
            assert_eq!(sent["path"], "/ev", "{via}");
            assert_eq!(sent["queryStringParameters"], json!({"q": "1"}), "{via}");
            // Two cookie fields, one header as HTTP/1.1 would carry them (RFC 9113 §8.2.3).
            assert_eq!(sent["headers"]["cookie"], "a=1; b=2", "{via}: {sent}");
            assert_eq!(
                sent["headers"]["host"], "gw.test",
                "{via}: :authority is the host"
            );
        }
        if installed("curl", "curl") {
            let url = format!("https://localhost:{}/ev?via=curl", tls.port());
            let (status, _) = curl_tls(&url, &ca, "--http2");
            assert_eq!(status, "200 2", "{driver:?}");
            let sent: Value = serde_json::from_slice(&mock.last().body).expect("event");
            assert_eq!(sent["requestContext"]["protocol"], "HTTP/2.0");
            let (status, _) = curl_tls(&url, &ca, "--http1.1");
            assert_eq!(status, "200 1.1", "{driver:?}");
            let sent: Value = serde_json::from_slice(&mock.last().body).expect("event");
            assert_eq!(sent["requestContext"]["protocol"], "HTTP/1.1");
        }
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn http2_off_speaks_http1_only() {
    let mock = MockLambda::start();
    let config = config_for(&mock, "/h", "echo", "");
    let dir = TempDir::new("h2-off");
    for driver in DRIVERS {
        let (gw, tls, ca) = tls_gateway(&mock, &config, driver, &dir, &["--http2", "off"]);
        if installed("curl", "curl") {
            let url = format!("https://localhost:{}/h?a=1", tls.port());
            let (status, body) = curl_tls(&url, &ca, "--http2");
            assert_eq!(
                (status.as_str(), body.as_str()),
                ("200 1.1", r#"{"a":"1"}"#)
            );
        }
        // The h2c preface is a malformed HTTP/1.1 request again.
        let answer = gw.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(answer.status, 400, "{driver:?}");
    }
}

#[test]
fn a_stop_signal_sends_goaway_and_streams_in_flight_finish() {
    let mock = MockLambda::start();
    let config = echo_and_slow(&mock);
    for driver in DRIVERS {
        let gw = Gateway::start(&mock, &config, driver);
        let slow_calls = || {
            mock.requests()
                .iter()
                .filter(|r| r.target.contains("functions/slow"))
                .count()
        };
        let before = slow_calls();
        let client = spawn_client(RAW, gw.addr.port(), "stopped", &[]);
        // The request reaches the slow function (600 ms), then the stop signal comes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while slow_calls() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "the request never came"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        gw.terminate();
        let answer = answer_of(client);
        assert_eq!(answer["goaway"], 0, "{driver:?}: GOAWAY NO_ERROR: {answer}");
        assert_eq!(answer["statuses"]["1"], "200", "{driver:?}: {answer}");
        assert_eq!(answer["ended"], json!([1]), "{driver:?}: {answer}");
    }
}
