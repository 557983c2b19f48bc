//! mock-lambda: a fast Lambda Invoke emulator for load tests (thread-per-core monoio, TLS with
//! a certificate generated at start).
//!
//! Every request gets `200` with Lambda's headers and a JSON body of `--response-size` bytes,
//! after `--latency-ms`. The CA that signed its certificate (for `localhost` and 127.0.0.1) is
//! written to `--ca-out`, for the gateway's `AWS_CA_BUNDLE` and nginx's trusted certificate.
//!
//! With `--fault-every N`, every Nth request (per thread) gets a fault instead, in turn: the
//! connection closed without an answer, a 500 `ServiceException`, a truncated body, an answer
//! slower than a second, a 429 with `Retry-After`.
//!
//! `cargo run --release --example mock-lambda -- --listen 127.0.0.1:9443 --ca-out /tmp/ca.pem`

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

struct Options {
    listen: SocketAddr,
    threads: usize,
    cpus: Vec<usize>,
    response_size: usize,
    latency: Duration,
    ca_out: Option<String>,
    plain: bool,
    fault_every: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: mock-lambda [--listen ADDR] [--threads N] [--cpus 0,1] [--response-size BYTES] [--latency-ms MS] [--ca-out FILE] [--plain] [--fault-every N]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        listen: "127.0.0.1:9443".parse().unwrap_or_else(|_| usage()),
        threads: 1,
        cpus: vec![],
        response_size: 256,
        latency: Duration::ZERO,
        ca_out: None,
        plain: false,
        fault_every: 0,
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
    let o = options();
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
    let response: &'static [u8] = Box::leak(response.into_boxed_slice());
    let mut handles = Vec::new();
    for i in 0..o.threads.max(1) {
        let (tls, cpu, listen, latency, fault_every) = (
            tls.clone(),
            o.cpus.get(i % o.cpus.len().max(1)).copied(),
            o.listen,
            o.latency,
            o.fault_every,
        );
        handles.push(std::thread::spawn(move || {
            if let Some(cpu) = cpu {
                let _ = monoio::utils::bind_to_cpu_set([cpu]);
            }
            let mut rt = match monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("mock-lambda: runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match TcpListener::bind_with_config(
                    listen,
                    &ListenerOpts::new().reuse_port(true).backlog(4096),
                ) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("mock-lambda: bind {listen}: {e}");
                        return;
                    }
                };
                if i == 0 {
                    eprintln!(
                        "mock-lambda listening on {listen} ({})",
                        if tls.is_some() { "TLS" } else { "plain" }
                    );
                }
                let acceptor = tls.map(monoio_rustls::TlsAcceptor::from);
                let faults = std::rc::Rc::new(Faults {
                    every: fault_every,
                    count: std::cell::Cell::new(0),
                });
                while let Ok((tcp, _)) = listener.accept().await {
                    let _ = tcp.set_nodelay(true);
                    let (acceptor, faults) = (acceptor.clone(), faults.clone());
                    monoio::spawn(async move {
                        match acceptor {
                            Some(a) => {
                                if let Ok(tls) = a.accept(tcp).await {
                                    serve(tls, response, latency, &faults).await;
                                }
                            }
                            None => serve(tcp, response, latency, &faults).await,
                        }
                    });
                }
            });
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}

/// Which requests get a fault (worker-local).
struct Faults {
    every: u64,
    count: std::cell::Cell<u64>,
}

impl Faults {
    /// The fault for the next request, if it gets one: 0..5 in turn.
    fn next(&self) -> Option<u64> {
        if self.every == 0 {
            return None;
        }
        let n = self.count.get() + 1;
        self.count.set(n);
        n.is_multiple_of(self.every).then_some((n / self.every) % 5)
    }
}

const SERVICE_ERROR: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nx-amzn-ErrorType: ServiceException\r\nx-amzn-RequestId: fault\r\nContent-Length: 39\r\n\r\n{\"Type\":\"Service\",\"message\":\"injected\"}";
const TRUNCATED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"trunc";
const THROTTLED: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nx-amzn-ErrorType: TooManyRequestsException\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}";

/// Answers every request on the connection (Content-Length bodies) with `response`.
async fn serve<S: AsyncReadRent + monoio::io::AsyncWriteRent>(
    mut s: S,
    response: &'static [u8],
    latency: Duration,
    faults: &Faults,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        // Head.
        let (head_len, body_len) = loop {
            if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                let head = &buf[..end];
                let len = head
                    .split(|&b| b == b'\n')
                    .find_map(|line| {
                        let line = std::str::from_utf8(line).ok()?.trim();
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                break (end + 4, len);
            }
            if !read_more(&mut s, &mut buf).await {
                return;
            }
        };
        while buf.len() < head_len + body_len {
            if !read_more(&mut s, &mut buf).await {
                return;
            }
        }
        buf.drain(..head_len + body_len);
        let answer = match faults.next() {
            None => response,
            Some(0) => return, // closed without an answer
            Some(1) => SERVICE_ERROR,
            Some(2) => {
                let _ = s.write_all(TRUNCATED).await;
                return;
            }
            Some(3) => {
                monoio::time::sleep(Duration::from_millis(1500)).await;
                response
            }
            Some(_) => THROTTLED,
        };
        if !latency.is_zero() {
            monoio::time::sleep(latency).await;
        }
        let (res, _) = s.write_all(answer).await;
        if res.is_err() {
            return;
        }
    }
}

async fn read_more<S: AsyncReadRent>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    if buf.capacity() - buf.len() < 16 * 1024 {
        buf.reserve(64 * 1024);
    }
    let len = buf.len();
    let cap = buf.capacity();
    let (res, slice) = s
        .read(monoio::buf::IoBufMut::slice_mut(
            std::mem::take(buf),
            len..cap,
        ))
        .await;
    *buf = slice.into_inner();
    matches!(res, Ok(n) if n > 0)
}
