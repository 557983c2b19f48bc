//! The mock Lambda: the gateway's own emulator over TLS with a CA made at test time, checking
//! every invoke's signature (see [`super::sigv4`]) and answering by function name.

use super::sigv4::percent_decode;
use super::sigv4::verify_signature;
use super::{streams, TempDir, ACCESS_KEY, SECRET_KEY};

use lambda_gateway::emulator::{api_error, Emulator, Functions, Invoke, Options, Reply};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        // A 6 MB answer (Lambda's limit for a buffered one): a JSON string.
        "six-mb" => {
            let mut body = vec![b'x'; 6_000_000];
            (body[0], body[5_999_999]) = (b'"', b'"');
            ok(body)
        }
        "lying-length" => Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec()),
        "garbage" => Reply::RawThenClose(b"this is not HTTP\r\n\r\n".to_vec()),
        "half-head" => Reply::RawThenClose(b"HTTP/1.1 200 OK\r\nContent-Type: applic".to_vec()),
        _ => error(404, "ResourceNotFoundException", &[]),
    }
}

/// A config with one service, one route on `path`, and one aws-lambda plugin on it with
/// `plugin_config` (YAML flow mapping entries) added to the connection settings for `mock`.
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

/// A configuration with one route `r` (`/r`) and a global aws-lambda plugin invoking `echo` at
/// the mock: what the Admin API examples start from.
pub fn one_route_config(mock: &MockLambda) -> String {
    format!(
        "_format_version: \"3.0\"\nroutes:\n- {{name: r, paths: [/r]}}\nplugins:\n- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}}}\n",
        mock.addr.port()
    )
}
