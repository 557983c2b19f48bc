//! Test support: a mock Lambda over TLS that verifies every signature independently (with
//! aws-sigv4's own full `sign()`), a gateway process runner, and a raw HTTP/1.1 client.
#![allow(dead_code)]

pub mod aws;
pub mod etcd;
pub mod pki;
pub mod python;
pub mod redis;
pub mod skip;
pub mod streams;

use lambda_gateway::emulator::{api_error, Emulator, Functions, Invoke, Options, Reply};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Credentials the mock knows (access key → secret).
pub const ACCESS_KEY: &str = "AKIDTESTEXAMPLE";
/// A secret with `+`, `/` and `=` in it, as real ones have.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE=KEY";
/// The Admin API guide's credentials: `+`, `/` and `=` in both, as the seed's curl calls have.
pub const SEED_ACCESS_KEY: &str = "AKIA+SEED/KEY=";
/// See [`SEED_ACCESS_KEY`].
pub const SEED_SECRET_KEY: &str = "seed+Secret/Key==";
/// Environment credentials used by some tests.
pub const ENV_ACCESS_KEY: &str = "ASIAENVEXAMPLE";
/// See [`ENV_ACCESS_KEY`].
pub const ENV_SECRET_KEY: &str = "envSecret/With+Symbols=";
/// See [`ENV_ACCESS_KEY`].
pub const ENV_SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLETOKEN==";

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Headers as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "payload is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct MockState {
    requests: Vec<Recorded>,
    signature_failures: Vec<String>,
    signatures_verified: usize,
}

/// A TLS Lambda emulator on 127.0.0.1 with a CA generated at test time: the gateway's own
/// emulator (`lambda_gateway::emulator`) answering as [`behave`] says, after checking every
/// signature with aws-sigv4.
pub struct MockLambda {
    /// Its address.
    pub addr: SocketAddr,
    /// PEM of the CA that signed its certificate (for AWS_CA_BUNDLE).
    pub ca_file: PathBuf,
    state: Arc<Mutex<MockState>>,
    emulator: Emulator,
    _dir: TempDir,
}

/// The mock's answers: verify, record, then behave by function name.
struct TestFunctions {
    state: Arc<Mutex<MockState>>,
}

impl Functions for TestFunctions {
    fn invoke(&self, invoke: &Invoke<'_>) -> Reply {
        let req = Recorded {
            method: invoke.method.to_string(),
            target: invoke.target.to_string(),
            headers: invoke
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            body: invoke.body.to_vec(),
        };
        let verified = verify_signature(&req);
        let invoked_before;
        {
            let mut s = self.state.lock().expect("lock");
            invoked_before = s.requests.iter().filter(|r| r.target == req.target).count();
            match &verified {
                Ok(()) => s.signatures_verified += 1,
                Err(why) => s
                    .signature_failures
                    .push(format!("{} {}: {why}", req.method, req.target)),
            }
            s.requests.push(req.clone());
        }
        if let Err(why) = verified {
            return Reply::Answer {
                status: 403,
                headers: vec![(
                    "x-amzn-ErrorType".into(),
                    "InvalidSignatureException".into(),
                )],
                body: format!(r#"{{"message":"{why}"}}"#).into_bytes(),
                chunked: false,
                close: false,
            };
        }
        behave(
            &percent_decode(invoke.function),
            &req,
            invoke.earlier_on_connection + 1,
            invoked_before,
        )
    }
}

impl MockLambda {
    /// Starts a mock whose certificate is valid for `localhost` only.
    pub fn start() -> MockLambda {
        let dir = TempDir::new("mock");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lambda-gateway test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf");
        let ca_file = dir.path.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("write CA");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("server config");
        let state = Arc::new(Mutex::new(MockState::default()));
        let emulator = Emulator::start(
            Options {
                listen: "127.0.0.1:0".parse().expect("addr"),
                // Several, so a slow signature check of a large body does not hold up others.
                threads: 4,
                cpus: vec![],
                tls: Some(Arc::new(server)),
            },
            Arc::new(TestFunctions {
                state: state.clone(),
            }),
        )
        .expect("the mock Lambda starts");
        MockLambda {
            addr: emulator.addr,
            ca_file,
            state,
            emulator,
            _dir: dir,
        }
    }

    /// Restarts like an endpoint behind a kept listening socket: every open connection is
    /// shut down at once (requests in flight on them get no answer); new ones are served.
    pub fn restart(&self) {
        self.emulator.restart();
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.emulator.connections()
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("lock").requests.clone()
    }

    /// The last request received.
    pub fn last(&self) -> Recorded {
        self.requests().pop().expect("the mock received a request")
    }

    /// Panics if any signature failed verification; returns how many were verified.
    pub fn assert_all_signatures_valid(&self) -> usize {
        let s = self.state.lock().expect("lock");
        assert!(
            s.signature_failures.is_empty(),
            "signatures that did not verify: {:#?}",
            s.signature_failures
        );
        s.signatures_verified
    }
}

impl Drop for MockLambda {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let s = self.state.lock().expect("lock");
            assert!(
                s.signature_failures.is_empty(),
                "signatures that did not verify: {:#?}",
                s.signature_failures
            );
        }
    }
}

fn lambda_headers(req: &Recorded) -> Vec<(String, String)> {
    let mut h = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "x-amzn-RequestId".to_string(),
            "a1b2c3d4-0000-4000-8000-000000000001".to_string(),
        ),
        (
            "X-Amzn-Trace-Id".to_string(),
            "root=1-6543-abcdef;sampled=0".to_string(),
        ),
        (
            "x-amzn-Remapped-Content-Length".to_string(),
            "0".to_string(),
        ),
        ("X-Amz-Executed-Version".to_string(), "$LATEST".to_string()),
    ];
    if let Some(tail) = log_tail(req) {
        h.push(("X-Amz-Log-Result".to_string(), tail.to_string()));
    }
    h
}

/// The tail of the function's log the mock returns (base64 of "SECRET LOG LINE").
pub const LOG_TAIL: &str = "U0VDUkVUIExPRyBMSU5F";

/// [`LOG_TAIL`] when the invoke asked for it (`X-Amz-Log-Type: Tail`), as Lambda does.
pub fn log_tail(req: &Recorded) -> Option<&'static str> {
    (req.header("x-amz-log-type") == Some("Tail")).then_some(LOG_TAIL)
}

/// What the mock does for each function name (`invoked_before`: earlier invokes of it).
fn behave(
    function: &str,
    req: &Recorded,
    served_on_this_connection: usize,
    invoked_before: usize,
) -> Reply {
    let answer =
        |status: u16, headers: Vec<(String, String)>, body: Vec<u8>, chunked: bool| Reply::Answer {
            status,
            headers,
            body,
            chunked,
            close: false,
        };
    let ok = |body: Vec<u8>| answer(200, lambda_headers(req), body, false);
    let error = |status: u16, kind: &str, extra: &[(&str, &str)]| {
        api_error(status, kind, "err-request-id", extra)
    };
    let invocation = req
        .header("x-amz-invocation-type")
        .unwrap_or("RequestResponse");
    if let Some(reply) = streams::reply(function, req, invoked_before) {
        return reply;
    }
    match function {
        _ if invocation == "Event" => answer(202, lambda_headers(req), Vec::new(), false),
        _ if invocation == "DryRun" => answer(204, lambda_headers(req), Vec::new(), false),
        "MyLambda" => ok(br#"{"response": "yes"}"#.to_vec()),
        "echo" | "arn:aws:lambda:us-east-1:123456789012:function:echo" | "echo:live" => ok(req.body.clone()),
        "empty-array" => ok(b"[]".to_vec()),
        "chunked" => answer(200, lambda_headers(req), req.body.clone(), true),
        "unhandled" => {
            let mut h = lambda_headers(req);
            h.push(("X-Amz-Function-Error".to_string(), "Unhandled".to_string()));
            answer(200, h, br#"{"errorMessage":"boom","errorType":"Error"}"#.to_vec(), false)
        }
        // A Python function that raised: Lambda's error document, stack trace included.
        "raised" => {
            let mut h = lambda_headers(req);
            h.push(("X-Amz-Function-Error".to_string(), "Unhandled".to_string()));
            let document = br#"{"errorMessage": "division by zero", "errorType": "ZeroDivisionError", "requestId": "c2f4", "stackTrace": ["  File \"/var/task/app.py\", line 3, in handler\n    return 1 / 0\n"]}"#;
            answer(200, h, document.to_vec(), false)
        }
        "proxy-ok" => ok(br#"{"statusCode":201,"headers":{"X-Fn":"yes","Content-Type":"text/plain"},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"aGVsbG8gd29ybGQ=","isBase64Encoded":true}"#.to_vec()),
        "proxy-bad" => ok(br#"{"statusCode":"hello"}"#.to_vec()),
        "slow" => Reply::After(Duration::from_millis(600), Box::new(ok(req.body.clone()))),
        "throttled" => error(429, "TooManyRequestsException", &[("Retry-After", "7")]),
        "always-throttled" => error(429, "TooManyRequestsException", &[]),
        // Throttled on the first two invokes, then runs.
        "throttled-twice" if invoked_before < 2 => error(429, "TooManyRequestsException", &[]),
        "throttled-twice" => ok(req.body.clone()),
        // Throttled once, asking for a one-second wait.
        "throttled-once-wait" if invoked_before < 1 => {
            error(429, "TooManyRequestsException", &[("Retry-After", "1")])
        }
        "throttled-once-wait" => ok(req.body.clone()),
        // Fails once after running (a 500), then would succeed: never to be retried.
        "fails-once" if invoked_before < 1 => error(500, "ServiceException", &[]),
        "fails-once" => ok(req.body.clone()),
        "too-large" => error(413, "RequestTooLargeException", &[]),
        "server-error" => error(500, "ServiceException", &[]),
        // Answers, then closes the connection without saying so: the pooled connection dies idle.
        "bye" => Reply::Answer {
            status: 200,
            headers: vec![],
            body: br#"{"bye":true}"#.to_vec(),
            chunked: false,
            close: true,
        },
        // Serves only the first request of a connection; later ones see the connection closed
        // before any response byte: the client must retry on a new connection.
        "first-only" if served_on_this_connection > 1 => Reply::Close,
        "first-only" => ok(br#"{"first":true}"#.to_vec()),
        "huge" => ok(vec![b'x'; 8 * 1024 * 1024]),
        "lying-length" => Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec()),
        "garbage" => Reply::RawThenClose(b"this is not HTTP\r\n\r\n".to_vec()),
        "half-head" => Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Type: applic".to_vec()),
        _ => error(404, "ResourceNotFoundException", &[]),
    }
}

/// Recomputes an invoke's signature with aws-sigv4's full `sign()` over exactly the headers
/// the request says it signed, and compares.
fn verify_signature(req: &Recorded) -> Result<(), String> {
    verify_sigv4(req, "lambda")
}

/// The secret (and the session token it must come with) of an access key the mocks know: the
/// fixed test keys, or keys a mock credential provider issued.
fn known_secret(key: &str) -> Option<(String, Option<String>)> {
    let fixed = match key {
        ACCESS_KEY => Some(SECRET_KEY),
        ENV_ACCESS_KEY => Some(ENV_SECRET_KEY),
        "AKIDDEMO" => Some("demo-secret"),
        SEED_ACCESS_KEY => Some(SEED_SECRET_KEY),
        _ => None,
    };
    match fixed {
        Some(secret) => {
            let token = (key == ENV_ACCESS_KEY).then(|| ENV_SESSION_TOKEN.to_string());
            Some((secret.to_string(), token))
        }
        None => aws::issued(key),
    }
}

/// Verifies a request signed for `service` (`lambda`, `sts`) with aws-sigv4.
pub fn verify_sigv4(req: &Recorded, service: &str) -> Result<(), String> {
    let auth = req
        .header("authorization")
        .ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (credential, signed, signature) = (
        credential.ok_or("no Credential")?,
        signed.ok_or("no SignedHeaders")?,
        signature.ok_or("no Signature")?,
    );
    // The access key is everything before the last four parts (the seed's test key has a '/').
    let scope: Vec<&str> = credential.rsplitn(5, '/').collect();
    if scope.len() != 5 || scope[1] != service || scope[0] != "aws4_request" {
        return Err(format!("bad credential scope {credential}"));
    }
    let (key, date_part, region) = (scope[4], scope[3], scope[2]);
    let (secret, expected_token) =
        known_secret(key).ok_or_else(|| format!("unknown access key {key}"))?;
    let token = req.header("x-amz-security-token").map(str::to_string);
    if expected_token.is_some() && token != expected_token {
        return Err("temporary credentials without their session token".into());
    }
    let date = req.header("x-amz-date").ok_or("no X-Amz-Date")?;
    if !date.starts_with(date_part) {
        return Err("X-Amz-Date does not match the credential scope".into());
    }
    let time = parse_amz_date(date).ok_or("bad X-Amz-Date")?;
    let signed_names: Vec<&str> = signed.split(';').collect();
    let required: &[&str] = if service == "lambda" {
        &["host", "x-amz-date", "content-type", "content-length"]
    } else {
        &["host", "x-amz-date"]
    };
    for &required in required {
        if !signed_names.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    // Every header sent (but Authorization) must be signed; for other services (STS), every
    // `x-amz-*` header and the body's type and length, as AWS requires of what it may change.
    for (name, _) in &req.headers {
        let must_sign = service == "lambda"
            || name.starts_with("x-amz-")
            || name == "content-type"
            || name == "content-length";
        if must_sign && name != "authorization" && !signed_names.contains(&name.as_str()) {
            return Err(format!("header {name} is sent but not signed"));
        }
    }
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| {
            signed_names.contains(&n.as_str()) && n != "x-amz-date" && n != "x-amz-security-token"
        })
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let creds = aws_credential_types::Credentials::new(key, secret, token, None, "test");
    let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
    let mut settings = aws_sigv4::http_request::SigningSettings::default();
    settings.excluded_headers = Some(vec![]);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        &req.method,
        req.target.clone(),
        headers.into_iter(),
        // The payload hash by ring (assembly even in debug builds, so a 6 MiB body costs
        // milliseconds); aws-sigv4 still builds and signs the canonical request itself.
        aws_sigv4::http_request::SignableBody::Precomputed(hex(ring::digest::digest(
            &ring::digest::SHA256,
            &req.body,
        )
        .as_ref())),
    )
    .map_err(|e| e.to_string())?;
    let out = aws_sigv4::http_request::sign(signable, &params).map_err(|e| e.to_string())?;
    if out.signature() != signature {
        return Err(format!(
            "signature {signature} but aws-sigv4 computes {}",
            out.signature()
        ));
    }
    Ok(())
}

fn parse_amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(9..11)?,
        n(11..13)?,
        n(13..15)?,
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(UNIX_EPOCH + Duration::from_secs((days * 86_400 + hh * 3600 + mm * 60 + ss) as u64))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A temporary directory removed on drop.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// A new empty directory.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "lambda-gateway-test-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Which monoio driver the gateway runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// io_uring (the default where available).
    IoUring,
    /// epoll, forced with MONOIO_FORCE_LEGACY_DRIVER=1.
    Epoll,
}

/// Removes the AWS variables the gateway reads and points the shared config files nowhere, so
/// that a test sees only what it sets (not the machine's `~/.aws`).
pub fn clear_aws_env(cmd: &mut Command) {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_LAMBDA",
        "AWS_CA_BUNDLE",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "AWS_ENDPOINT_URL_STS",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    // The chain ends at the instance metadata service: never let a test reach for it.
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.env(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws/credentials",
    )
    .env("AWS_CONFIG_FILE", "/nonexistent/aws/config");
}

/// The address logged right after `marker` in a log line (`… listening on 127.0.0.1:8000 …`).
pub fn addr_after(line: &str, marker: &str) -> Option<SocketAddr> {
    line.split(marker)
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|a| a.parse::<SocketAddr>().ok())
}

/// Both drivers: every end-to-end behaviour runs on each.
pub const DRIVERS: [Driver; 2] = [Driver::IoUring, Driver::Epoll];

/// A running gateway process.
pub struct Gateway {
    /// Its proxy address.
    pub addr: SocketAddr,
    /// Its Admin API address, when started with one.
    pub admin: Option<SocketAddr>,
    /// The config file it serves.
    pub config_path: PathBuf,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: Option<TempDir>,
}

/// How to start a gateway.
pub struct GatewayOptions<'a> {
    /// The config file's contents.
    pub config: &'a str,
    /// Driver to force.
    pub driver: Driver,
    /// Extra environment variables.
    pub env: Vec<(&'a str, String)>,
    /// Extra arguments.
    pub args: Vec<String>,
}

/// How to start a gateway with its Admin API.
pub struct AdminOptions<'a> {
    /// Config file to serve (need not exist); it is not removed afterwards.
    pub config_path: PathBuf,
    /// Driver to force.
    pub driver: Driver,
    /// Extra environment variables.
    pub env: Vec<(&'a str, String)>,
    /// Extra arguments (e.g. `--admin-token`).
    pub args: Vec<String>,
}

impl Gateway {
    /// Starts `lambda-gateway --config <file>` trusting `mock`'s CA, and waits until it listens.
    pub fn start(mock: &MockLambda, config: &str, driver: Driver) -> Gateway {
        Gateway::start_with(
            mock,
            GatewayOptions {
                config,
                driver,
                env: vec![],
                args: vec![],
            },
        )
    }

    /// Like [`Gateway::start`] with options.
    pub fn start_with(mock: &MockLambda, opts: GatewayOptions<'_>) -> Gateway {
        let dir = TempDir::new("gw");
        let config_path = dir.path.join("kong.yml");
        std::fs::write(&config_path, opts.config).expect("write config");
        let mut args = vec!["--admin-listen".to_string(), "off".to_string()];
        args.extend(opts.args);
        Gateway::launch(mock, config_path, opts.driver, opts.env, args, Some(dir))
    }

    /// Starts a gateway with its Admin API serving `config`, written to `dir/kong.yml`.
    pub fn start_admin_with(
        mock: &MockLambda,
        config: &str,
        driver: Driver,
        dir: &TempDir,
    ) -> Gateway {
        let path = dir.path.join("kong.yml");
        std::fs::write(&path, config).expect("write the config");
        Gateway::start_admin(
            mock,
            AdminOptions {
                config_path: path,
                driver,
                env: vec![],
                args: vec![],
            },
        )
    }

    /// Starts a gateway with its Admin API on an ephemeral loopback port.
    pub fn start_admin(mock: &MockLambda, opts: AdminOptions<'_>) -> Gateway {
        let mut args = vec!["--admin-listen".to_string(), "127.0.0.1:0".to_string()];
        args.extend(opts.args);
        Gateway::launch(mock, opts.config_path, opts.driver, opts.env, args, None)
    }

    fn launch(
        mock: &MockLambda,
        config_path: PathBuf,
        driver: Driver,
        env: Vec<(&str, String)>,
        args: Vec<String>,
        dir: Option<TempDir>,
    ) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
        cmd.arg("--config").arg(&config_path);
        if !args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if !args.iter().any(|a| a == "--workers") {
            cmd.args(["--workers", "2"]);
        }
        cmd.args(&args);
        clear_aws_env(&mut cmd);
        for var in ["MONOIO_FORCE_LEGACY_DRIVER", "LAMBDA_GATEWAY_ADMIN_TOKEN"] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_CA_BUNDLE", &mock.ca_file)
            .env("LAMBDA_GATEWAY_LOG", "debug");
        if driver == Driver::Epoll {
            cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
        }
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn gateway");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (admin_tx, admin_rx) = std::sync::mpsc::channel();
        let l = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut admin_tx = Some(admin_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr_after = |marker: &str| addr_after(&line, marker);
                if let Some(a) = addr_after("admin API listening on ") {
                    if let Some(t) = admin_tx.take() {
                        let _ = t.send(a);
                    }
                } else if let Some(a) = addr_after("] listening on ") {
                    if let Some(t) = tx.take() {
                        let _ = t.send(a);
                    }
                }
                l.lock().expect("lock").push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gateway did not start; logs:\n{}",
                    logs.lock().expect("lock").join("\n")
                );
            }
        };
        let wants_admin = !args
            .windows(2)
            .any(|w| w[0] == "--admin-listen" && w[1] == "off");
        let admin = if wants_admin {
            admin_rx.recv_timeout(Duration::from_secs(5)).ok()
        } else {
            None
        };
        let gw = Gateway {
            addr,
            admin,
            config_path,
            child,
            logs,
            _dir: dir,
        };
        let want = match driver {
            Driver::IoUring => "workers use io_uring",
            Driver::Epoll => "workers use the epoll driver",
        };
        // Where the kernel has no io_uring, monoio falls back to epoll and says so; the io_uring
        // runs are then epoll runs too.
        if driver == Driver::Epoll || monoio::utils::detect_uring() {
            assert!(
                gw.logs().contains(want),
                "expected {want:?} in logs:\n{}",
                gw.logs()
            );
        }
        gw
    }

    /// Everything the gateway logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("lock").join("\n")
    }

    /// True once the log contains `needle` (waits up to 5 s: stderr is read by another thread).
    pub fn logged(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Sends SIGHUP (reload the config file).
    pub fn hup(&self) {
        let _ = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An Admin API request: `method path` with `body` of `content_type`, plus extra headers.
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let addr = self.admin.expect("started with the Admin API");
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        if !content_type.is_empty() {
            raw.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        Client::connect(addr).request(raw.as_bytes())
    }

    /// `POST`/`PATCH`/`PUT` with a form body.
    pub fn admin_form(&self, method: &str, path: &str, body: &str) -> Response {
        self.admin(method, path, "application/x-www-form-urlencoded", body, &[])
    }

    /// A request with a JSON body.
    pub fn admin_json(&self, method: &str, path: &str, body: serde_json::Value) -> Response {
        self.admin(method, path, "application/json", &body.to_string(), &[])
    }

    /// A GET on the Admin API.
    pub fn admin_get(&self, path: &str) -> Response {
        self.admin("GET", path, "", "", &[])
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for exit, up to `limit`; the exit status if it exited.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A new client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a fresh connection.
    pub fn send(&self, raw: &str) -> Response {
        self.connect().request(raw.as_bytes())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status.
    pub status: u16,
    /// Headers as sent (name case preserved).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

/// A raw HTTP/1.1 client connection.
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to gateway");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// A client over an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write");
    }

    /// Sends a request and reads one response.
    pub fn request(&mut self, raw: &[u8]) -> Response {
        self.send_raw(raw);
        self.read_response().expect("a response")
    }

    /// Like [`Client::request`], showing the gateway's log if no response comes.
    pub fn request_or_logs(&mut self, raw: &[u8], gw: &Gateway) -> Response {
        self.send_raw(raw);
        match self.read_response() {
            Some(r) => r,
            None => {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "no response (got {:?}); gateway log:\n{}",
                    String::from_utf8_lossy(&self.buf),
                    gw.logs()
                )
            }
        }
    }

    /// Reads one response (Content-Length framed, or none for 1xx/204/304); `None` on EOF.
    pub fn read_response(&mut self) -> Option<Response> {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut slots);
            if let Ok(httparse::Status::Complete(head_len)) = r.parse(&self.buf) {
                let status = r.code.unwrap_or(0);
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < head_len + len {
                    if !fill(&mut self.stream, &mut self.buf) {
                        return None;
                    }
                }
                let body = self.buf[head_len..head_len + len].to_vec();
                self.buf.drain(..head_len + len);
                return Some(Response {
                    status,
                    headers,
                    body,
                });
            }
            if !fill(&mut self.stream, &mut self.buf) {
                return None;
            }
        }
    }

    /// True when the server closed the connection (EOF with nothing pending).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        loop {
            match self.stream.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return matches!(r, Ok(0) | Err(_)),
            }
        }
    }
}

/// A config with one service, one route on `path`, and one aws-lambda plugin on it with
/// `plugin_config` (YAML flow mapping entries) added to the connection settings for `mock`.
/// Reads what the stream has into `buf`: false at EOF or on an error.
fn fill<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            // A signal delivered to the test process (the gateway children exiting) interrupts
            // a blocking read; that is no EOF.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
        }
    }
}

pub fn config_for(mock: &MockLambda, path: &str, function: &str, plugin_config: &str) -> String {
    let extra = if plugin_config.is_empty() {
        String::new()
    } else {
        format!(", {plugin_config}")
    };
    format!(
        r#"_format_version: "3.0"
services:
- name: svc
  routes:
  - name: route
    paths: ["{path}"]
  plugins:
  - name: aws-lambda
    config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: "{function}", host: localhost, port: {port}{extra}}}
"#,
        port = mock.addr.port()
    )
}

/// `body` in chunked framing, `piece` bytes per chunk, with the last chunk.
pub fn chunked_body(body: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 2);
    for chunk in body.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A configuration with one route `r` (`/r`) and a global aws-lambda plugin invoking `echo` at
/// the mock: what the Admin API examples start from.
pub fn one_route_config(mock: &MockLambda) -> String {
    format!(
        "_format_version: \"3.0\"\nroutes:\n- {{name: r, paths: [/r]}}\nplugins:\n- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}}}\n",
        mock.addr.port()
    )
}

/// A gateway with one worker serving `cfg`.
pub fn one_worker(mock: &MockLambda, cfg: &str, driver: Driver) -> Gateway {
    Gateway::start_with(
        mock,
        GatewayOptions {
            config: cfg,
            driver,
            env: vec![],
            args: vec!["--workers".into(), "1".into()],
        },
    )
}

/// A loopback port nothing listens on now (for servers a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A process's resident memory (`VmRSS`), KiB; 0 if it cannot be read.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether `program --version` runs; if not, the test is skipped, visibly (see [`skip`]).
pub fn installed(program: &str, debian_packages: &str) -> bool {
    skip::may_run(program, skip::runs(program, "--version"), debian_packages)
}

/// The JSON lines of a file another process writes (an access log): waits up to 5 s for `n`
/// of them, then gives what is there.
pub fn json_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if parsed.len() >= n || Instant::now() > deadline {
            return parsed;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Shorthand: a GET for `target`.
pub fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
}

/// All entries of a map, for quick lookups.
pub fn header_map(r: &Response) -> HashMap<String, String> {
    r.headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect()
}
