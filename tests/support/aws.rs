//! Mock AWS credential endpoints on loopback: STS (`AssumeRole`, whose SigV4 signature is
//! checked with aws-sigv4, and `AssumeRoleWithWebIdentity`), the EC2 instance metadata service
//! (IMDSv2 tokens, or v1), the ECS container credentials endpoint, and an HTTP `CONNECT`
//! forward proxy. Credentials they issue are registered so the mock Lambda accepts them.

use super::Recorded;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// One set of credentials a mock issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Access key id (unique per issue).
    pub key: String,
    /// Secret.
    pub secret: String,
    /// Session token.
    pub token: String,
}

/// Access key → (secret, session token).
type Registry = Mutex<HashMap<String, (String, Option<String>)>>;

fn registry() -> &'static Registry {
    static ISSUED: OnceLock<Registry> = OnceLock::new();
    ISSUED.get_or_init(Default::default)
}

/// The secret and token of credentials a mock issued.
pub fn issued(key: &str) -> Option<(String, Option<String>)> {
    registry().lock().expect("lock").get(key).cloned()
}

/// New temporary credentials, known to the mock Lambda from now on.
pub fn issue(tag: &str) -> Issued {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let issued = Issued {
        key: format!("ASIA{}{n:06}", tag.to_ascii_uppercase()),
        secret: format!("{tag}/secret+{n}="),
        token: format!("{tag}-session-token-{n}/+="),
    };
    registry().lock().expect("lock").insert(
        issued.key.clone(),
        (issued.secret.clone(), Some(issued.token.clone())),
    );
    issued
}

/// `2026-11-29T23:04:29Z`.
pub fn iso8601(t: SystemTime) -> String {
    let d = lambda_gateway::aws::time::AmzDate::from_system_time(t);
    let s = d.timestamp_str();
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// What a mock answers.
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Answer {
    /// `status` with `body`, at once.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

type Handler = dyn Fn(&Recorded) -> Answer + Send + Sync;

/// A small HTTP/1.1 server on 127.0.0.1: one request per connection, answered by a handler;
/// every request is recorded.
pub struct MockServer {
    /// Its address.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        target,
        headers,
        body: buf[head_end..head_end + len].to_vec(),
    })
}

impl MockServer {
    /// Starts a server answering with `handler`.
    pub fn start(handler: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (recorded, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = conn else { continue };
                let (handler, recorded) = (handler.clone(), recorded.clone());
                std::thread::spawn(move || {
                    let Some(req) = read_request(&mut stream) else {
                        return;
                    };
                    recorded.lock().expect("lock").push(req.clone());
                    let answer = handler(&req);
                    std::thread::sleep(answer.delay);
                    let mut out = format!(
                        "HTTP/1.1 {} Mock\r\nContent-Length: {}\r\nConnection: close\r\n",
                        answer.status,
                        answer.body.len()
                    );
                    for (n, v) in &answer.headers {
                        out.push_str(&format!("{n}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let mut bytes = out.into_bytes();
                    bytes.extend_from_slice(&answer.body);
                    let _ = stream.write_all(&bytes);
                });
            }
        });
        MockServer {
            addr,
            requests,
            stop,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Decodes `a=b&c=d` (form encoding).
pub fn form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| super::percent_decode(&s.replace('+', " "));
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// How a credential mock behaves; shared with the test that drives it.
pub struct Behaviour {
    /// Lifetime of issued credentials.
    pub lifetime: Mutex<Duration>,
    /// Delay of every answer after the first successful one.
    pub later_delay: Mutex<Duration>,
    /// Credential requests still to fail (500).
    pub failures_left: AtomicUsize,
    /// Credentials issued so far.
    pub issued: Mutex<Vec<Issued>>,
}

impl Behaviour {
    fn new() -> Arc<Behaviour> {
        Arc::new(Behaviour {
            lifetime: Mutex::new(Duration::from_secs(3600)),
            later_delay: Mutex::new(Duration::ZERO),
            failures_left: AtomicUsize::new(0),
            issued: Mutex::new(Vec::new()),
        })
    }

    /// Issues credentials (or fails, or waits) as configured; `Err(answer)` for a failure.
    fn next(&self, tag: &str) -> Result<(Issued, SystemTime, Duration), Answer> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Answer::new(500, "mock failure"));
        }
        let mut all = self.issued.lock().expect("lock");
        let delay = if all.is_empty() {
            Duration::ZERO
        } else {
            *self.later_delay.lock().expect("lock")
        };
        let issued = issue(tag);
        all.push(issued.clone());
        let expires = SystemTime::now() + *self.lifetime.lock().expect("lock");
        Ok((issued, expires, delay))
    }

    /// How many credentials were issued.
    pub fn count(&self) -> usize {
        self.issued.lock().expect("lock").len()
    }

    /// The access keys issued, in order.
    pub fn keys(&self) -> Vec<String> {
        self.issued
            .lock()
            .expect("lock")
            .iter()
            .map(|i| i.key.clone())
            .collect()
    }
}

/// A mock STS.
pub struct MockSts {
    /// The server.
    pub server: MockServer,
    /// Its behaviour.
    pub behaviour: Arc<Behaviour>,
}

fn sts_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::new(
        status,
        format!("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>mock</RequestId></ErrorResponse>"),
    )
}

impl MockSts {
    /// Starts it.
    pub fn start() -> MockSts {
        let behaviour = Behaviour::new();
        let b = behaviour.clone();
        let server = MockServer::start(move |req| {
            let params = form(&req.body);
            let action = params.get("Action").map(String::as_str).unwrap_or("");
            match action {
                "AssumeRole" => {
                    if let Err(why) = super::verify_sigv4(req, "sts") {
                        return sts_error(403, "SignatureDoesNotMatch", &why);
                    }
                }
                "AssumeRoleWithWebIdentity" => {
                    if params.get("WebIdentityToken").is_none_or(|t| t.is_empty()) {
                        return sts_error(400, "MissingParameter", "WebIdentityToken");
                    }
                }
                _ => return sts_error(400, "InvalidAction", action),
            }
            if !params.contains_key("RoleArn") || !params.contains_key("RoleSessionName") {
                return sts_error(400, "MissingParameter", "RoleArn/RoleSessionName");
            }
            let (issued, expires, delay) = match b.next("sts") {
                Ok(x) => x,
                Err(a) => return a,
            };
            let mut answer = Answer::new(
                200,
                format!(
                    "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials></{action}Result></{action}Response>",
                    issued.key,
                    issued.secret,
                    issued.token,
                    iso8601(expires)
                ),
            );
            answer.delay = delay;
            answer
        });
        MockSts { server, behaviour }
    }

    /// The form parameters of every call.
    pub fn calls(&self) -> Vec<HashMap<String, String>> {
        self.server
            .requests()
            .iter()
            .map(|r| form(&r.body))
            .collect()
    }
}

fn credentials_json(issued: &Issued, expires: SystemTime) -> String {
    format!(
        r#"{{"Code":"Success","LastUpdated":"{}","Type":"AWS-HMAC","AccessKeyId":"{}","SecretAccessKey":"{}","Token":"{}","Expiration":"{}"}}"#,
        iso8601(SystemTime::now()),
        issued.key,
        issued.secret,
        issued.token,
        iso8601(expires)
    )
}

/// A mock instance metadata service. IMDSv2 only unless `v1` is allowed: a request without a
/// valid session token is refused with 401, as on an instance that requires v2.
pub struct MockImds {
    /// The server.
    pub server: MockServer,
    /// Its behaviour.
    pub behaviour: Arc<Behaviour>,
}

impl MockImds {
    /// Starts it with instance role `role`.
    pub fn start(role: &'static str, allow_v1: bool) -> MockImds {
        let behaviour = Behaviour::new();
        let b = behaviour.clone();
        let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
        let server = MockServer::start(move |req| {
            if req.method == "PUT" && req.target == "/latest/api/token" {
                let Some(ttl) = req.header("x-aws-ec2-metadata-token-ttl-seconds") else {
                    return Answer::new(400, "missing TTL");
                };
                let token = format!("imds-token-{}", tokens.lock().expect("lock").len());
                tokens.lock().expect("lock").push(token.clone());
                let mut a = Answer::new(200, token);
                a.headers
                    .push(("X-aws-ec2-metadata-token-ttl-seconds".into(), ttl.into()));
                return a;
            }
            let token_ok = req
                .header("x-aws-ec2-metadata-token")
                .is_some_and(|t| tokens.lock().expect("lock").iter().any(|k| k == t));
            if !token_ok && !allow_v1 {
                return Answer::new(401, "");
            }
            match req.target.as_str() {
                "/latest/meta-data/iam/security-credentials/" => Answer::new(200, role),
                "/latest/meta-data/placement/region" => Answer::new(200, "eu-central-1"),
                t if t == format!("/latest/meta-data/iam/security-credentials/{role}") => {
                    match b.next("imds") {
                        Ok((issued, expires, delay)) => {
                            let mut a = Answer::new(200, credentials_json(&issued, expires));
                            a.delay = delay;
                            a
                        }
                        Err(a) => a,
                    }
                }
                _ => Answer::new(404, "not found"),
            }
        });
        MockImds { server, behaviour }
    }
}

/// A mock ECS/EKS container credentials endpoint at `/creds`, requiring `Authorization: token`.
pub struct MockContainer {
    /// The server.
    pub server: MockServer,
    /// Its behaviour.
    pub behaviour: Arc<Behaviour>,
}

impl MockContainer {
    /// Starts it.
    pub fn start(token: &'static str) -> MockContainer {
        let behaviour = Behaviour::new();
        let b = behaviour.clone();
        let server = MockServer::start(move |req| {
            if req.header("authorization") != Some(token) {
                return Answer::new(401, r#"{"message":"bad token"}"#);
            }
            if req.target != "/creds" {
                return Answer::new(404, "not found");
            }
            match b.next("ecs") {
                Ok((issued, expires, _)) => Answer::new(200, credentials_json(&issued, expires)),
                Err(a) => a,
            }
        });
        MockContainer { server, behaviour }
    }
}

/// An HTTP forward proxy that opens `CONNECT` tunnels (to loopback only), checking
/// `Proxy-Authorization` when given one, and counting tunnels.
pub struct MockProxy {
    /// Its address.
    pub addr: SocketAddr,
    /// Tunnels opened.
    pub tunnels: Arc<AtomicUsize>,
    /// Requests refused for their credentials.
    pub refused: Arc<AtomicUsize>,
    /// The `CONNECT` targets, in order.
    pub targets: Arc<Mutex<Vec<String>>>,
}

impl MockProxy {
    /// Starts it; `auth` is the `Proxy-Authorization` value required, if any.
    pub fn start(auth: Option<&'static str>) -> MockProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tunnels = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let (t, r, tg) = (tunnels.clone(), refused.clone(), targets.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let (t, r, tg) = (t.clone(), r.clone(), tg.clone());
                std::thread::spawn(move || {
                    let Some(req) = read_request(&mut client) else {
                        return;
                    };
                    if req.method != "CONNECT" {
                        let _ = client.write_all(
                            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n",
                        );
                        return;
                    }
                    if let Some(want) = auth {
                        if req.header("proxy-authorization") != Some(want) {
                            r.fetch_add(1, Ordering::SeqCst);
                            let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"mock\"\r\nContent-Length: 0\r\n\r\n");
                            return;
                        }
                    }
                    tg.lock().expect("lock").push(req.target.clone());
                    let upstream = req
                        .target
                        .replace("localhost", "127.0.0.1")
                        .parse::<SocketAddr>()
                        .ok()
                        .filter(|a| a.ip().is_loopback())
                        .and_then(|a| TcpStream::connect(a).ok());
                    let Some(upstream) = upstream else {
                        let _ = client
                            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                        return;
                    };
                    t.fetch_add(1, Ordering::SeqCst);
                    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    let (mut c2, mut u2) = (
                        client.try_clone().expect("clone"),
                        upstream.try_clone().expect("clone"),
                    );
                    let (mut client, mut upstream) = (client, upstream);
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c2, &mut u2);
                        let _ = u2.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut upstream, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                });
            }
        });
        MockProxy {
            addr,
            tunnels,
            refused,
            targets,
        }
    }
}
