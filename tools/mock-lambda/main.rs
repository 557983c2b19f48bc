//! mock-lambda: the gateway's Lambda emulator (`lambda_gateway::emulator`, thread-per-core
//! monoio) as a fast stand-in Lambda for load tests, with TLS from a certificate generated at
//! start.
//!
//! Every request gets `200` with Lambda's headers and a JSON body of `--response-size` bytes,
//! after `--latency-ms`. The CA that signed its certificate (for `localhost` and 127.0.0.1) is
//! written to `--ca-out`, for the gateway's `AWS_CA_BUNDLE` and nginx's trusted certificate.
//!
//! Streaming invokes (`InvokeWithResponseStream`'s path) get the same body as event-stream
//! `PayloadChunk`s of `--stream-chunk` bytes, `--stream-gap-us` apart (a function producing
//! its output over time), then `InvokeComplete`; with a gap, buffered invokes wait as long as
//! the whole stream takes before their answer, so both modes model the same function. With
//! `--stream-burst N`, N events leave in each write (the gap is then between bursts): a
//! function producing small events faster than they are sent.
//!
//! With `--fault-every N`, every Nth request (per thread) gets a fault instead, in turn: the
//! connection closed without an answer, a 500 `ServiceException`, a truncated body, an answer
//! slower than a second, a 429 with `Retry-After`.
//!
//! `cargo run --release --example mock-lambda -- --listen 127.0.0.1:9443 --ca-out /tmp/ca.pem`

use lambda_gateway::aws::event_stream;
use lambda_gateway::emulator::{Emulator, Functions, Invoke, Options, Reply};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Command-line arguments.
struct Args {
    listen: SocketAddr,
    threads: usize,
    cpus: Vec<usize>,
    response_size: usize,
    latency: Duration,
    ca_out: Option<String>,
    plain: bool,
    fault_every: u64,
    stream_chunk: usize,
    stream_gap: Duration,
    stream_burst: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: mock-lambda [--listen ADDR] [--threads N] [--cpus 0,1] [--response-size BYTES] [--latency-ms MS] [--ca-out FILE] [--plain] [--fault-every N] [--stream-chunk BYTES] [--stream-gap-us US] [--stream-burst N]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut o = Args {
        listen: "127.0.0.1:9443".parse().unwrap_or_else(|_| usage()),
        threads: 1,
        cpus: vec![],
        response_size: 256,
        latency: Duration::ZERO,
        ca_out: None,
        plain: false,
        fault_every: 0,
        stream_chunk: 64 * 1024,
        stream_gap: Duration::ZERO,
        stream_burst: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--listen" => o.listen = value().parse().unwrap_or_else(|_| usage()),
            "--threads" => o.threads = value().parse().unwrap_or_else(|_| usage()),
            "--cpus" => o.cpus = value().split(',').filter_map(|c| c.parse().ok()).collect(),
            "--response-size" => o.response_size = value().parse().unwrap_or_else(|_| usage()),
            "--latency-ms" => {
                o.latency = Duration::from_millis(value().parse().unwrap_or_else(|_| usage()))
            }
            "--ca-out" => o.ca_out = Some(value()),
            "--plain" => o.plain = true,
            "--fault-every" => o.fault_every = value().parse().unwrap_or_else(|_| usage()),
            "--stream-chunk" => {
                o.stream_chunk = value().parse::<usize>().unwrap_or_else(|_| usage()).max(1)
            }
            "--stream-burst" => {
                o.stream_burst = value().parse::<usize>().unwrap_or_else(|_| usage()).max(1)
            }
            "--stream-gap-us" => {
                o.stream_gap = Duration::from_micros(value().parse().unwrap_or_else(|_| usage()))
            }
            _ => usage(),
        }
    }
    o
}

fn tls_config(ca_out: Option<&str>) -> Arc<rustls::ServerConfig> {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("mock-lambda: {what}: {e}");
        std::process::exit(1)
    };
    let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail("key", &e));
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail("params", &e));
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mock-lambda CA");
    let ca = ca_params
        .self_signed(&ca_key)
        .unwrap_or_else(|e| fail("CA", &e));
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail("key", &e));
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap_or_else(|e| fail("params", &e))
            .signed_by(&key, &issuer)
            .unwrap_or_else(|e| fail("certificate", &e));
    if let Some(path) = ca_out {
        std::fs::write(path, ca.pem()).unwrap_or_else(|e| fail("writing the CA", &e));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail("TLS versions", &e))
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap_or_else(|e| fail("TLS config", &e));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn main() {
    let o = args();
    let tls = (!o.plain).then(|| tls_config(o.ca_out.as_deref()));
    let mut body = br#"{"data":""#.to_vec();
    body.resize(o.response_size.max(12) - 2, b'x');
    body.extend_from_slice(b"\"}");
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-amzn-RequestId: 6c7e5e2c-0000-4000-8000-000000000000\r\nX-Amzn-Trace-Id: root=1-67430000-000000000000000000000000;sampled=0\r\nx-amzn-Remapped-Content-Length: 0\r\nX-Amz-Executed-Version: $LATEST\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let mut stream_pieces = Vec::new();
    for burst in body.chunks(o.stream_chunk * o.stream_burst) {
        let mut framed = Vec::new();
        for piece in burst.chunks(o.stream_chunk) {
            event_stream::payload_chunk(&mut framed, piece);
        }
        stream_pieces.push(framed);
    }
    let mut end = Vec::new();
    event_stream::invoke_complete(
        &mut end,
        br#"{"ErrorCode":"","ErrorDetails":"","LogResult":""}"#,
    );
    stream_pieces.push(end);
    let stream_time = o.stream_gap * (stream_pieces.len() as u32 - 1);
    let functions = LoadFunctions {
        response: Box::leak(response.into_boxed_slice()),
        stream_pieces: Arc::new(stream_pieces),
        stream_gap: o.stream_gap,
        stream_time,
        latency: o.latency,
        fault_every: o.fault_every,
        count: AtomicU64::new(0),
    };
    let plain = tls.is_none();
    let emulator = Emulator::start(
        Options {
            listen: o.listen,
            threads: o.threads,
            cpus: o.cpus,
            tls,
        },
        Arc::new(functions),
    )
    .unwrap_or_else(|e| {
        eprintln!("mock-lambda: {e}");
        std::process::exit(1)
    });
    eprintln!(
        "mock-lambda listening on {} ({})",
        emulator.addr,
        if plain { "plain" } else { "TLS" }
    );
    loop {
        std::thread::park();
    }
}

/// Every invoke gets the one prepared answer, after the latency; every `fault_every`th gets a
/// fault instead, in turn.
struct LoadFunctions {
    response: &'static [u8],
    /// The body as event-stream messages, `InvokeComplete` last.
    stream_pieces: Arc<Vec<Vec<u8>>>,
    stream_gap: Duration,
    /// How long a whole stream takes (a buffered answer waits as long).
    stream_time: Duration,
    latency: Duration,
    fault_every: u64,
    count: AtomicU64,
}

const SERVICE_ERROR: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nx-amzn-ErrorType: ServiceException\r\nx-amzn-RequestId: fault\r\nContent-Length: 39\r\n\r\n{\"Type\":\"Service\",\"message\":\"injected\"}";
const TRUNCATED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"trunc";
const THROTTLED: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nx-amzn-ErrorType: TooManyRequestsException\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}";

impl Functions for LoadFunctions {
    fn invoke(&self, invoke: &Invoke<'_>) -> Reply {
        if invoke.target.contains("/response-streaming-invocations") {
            let (pieces, gap) = (self.stream_pieces.clone(), self.stream_gap);
            let reply = Reply::Stream {
                status: 200,
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("X-Amz-Executed-Version".into(), "$LATEST".into()),
                ],
                // Piece i is due `i × gap` after the first, however late the timer wakes:
                // rounding does not add up over a long stream.
                pieces: Box::new((0..pieces.len()).scan(None, move |start, i| {
                    let now = std::time::Instant::now();
                    let first = *start.get_or_insert(now);
                    let wait = (first + gap * i as u32).saturating_duration_since(now);
                    Some((wait, pieces[i].clone()))
                })),
                complete: true,
            };
            return if self.latency.is_zero() {
                reply
            } else {
                Reply::After(self.latency, Box::new(reply))
            };
        }
        let fault = (self.fault_every > 0)
            .then(|| self.count.fetch_add(1, Ordering::Relaxed) + 1)
            .filter(|n| n.is_multiple_of(self.fault_every))
            .map(|n| (n / self.fault_every) % 5);
        let reply = match fault {
            None => Reply::Static(self.response),
            // Closed without an answer.
            Some(0) => Reply::Close,
            Some(1) => Reply::Static(SERVICE_ERROR),
            Some(2) => Reply::RawThenClose(TRUNCATED.to_vec()),
            Some(3) => Reply::After(
                Duration::from_millis(1500),
                Box::new(Reply::Static(self.response)),
            ),
            Some(_) => Reply::Static(THROTTLED),
        };
        let wait = self.latency + self.stream_time;
        if wait.is_zero() {
            reply
        } else {
            Reply::After(wait, Box::new(reply))
        }
    }
}
