//! A Lambda Invoke API emulator: the one used by `lambda-gateway demo`, by the tests' mock
//! Lambda and by tools/mock-lambda. It serves HTTP/1.1 (plain or TLS) on monoio threads and
//! asks a [`Functions`] implementation how to answer each invoke; what differs between its
//! users (the demo's one function, the tests' signature checks and misbehaviours, the load
//! test's fixed answer and injected faults) lives in their implementations.
//!
//! It reads requests with httparse directly, not with the gateway's own HTTP code, so the tests
//! do not check the gateway against a copy of itself.

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// One invoke as received.
pub struct Invoke<'a> {
    /// The method (`POST`).
    pub method: &'a str,
    /// The request target, e.g. `/2015-03-31/functions/MyLambda/invocations?Qualifier=live`.
    pub target: &'a str,
    /// The function name as written in the path (still percent-encoded).
    pub function: &'a str,
    /// The header fields, in order.
    pub headers: &'a [httparse::Header<'a>],
    /// The body.
    pub body: &'a [u8],
    /// How many requests this connection carried before this one.
    pub earlier_on_connection: usize,
}

impl Invoke<'_> {
    /// The first value of a header, by case-insensitive name, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    }
}

/// How to answer an invoke.
pub enum Reply {
    /// A response, framed by `Content-Length` (or chunked).
    Answer {
        /// The status.
        status: u16,
        /// Header fields (without framing headers).
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
        /// Send the body chunked (7-byte chunks).
        chunked: bool,
        /// Close the connection after it.
        close: bool,
    },
    /// These exact bytes (a whole response), the connection kept: for answers built once.
    Static(&'static [u8]),
    /// These exact bytes, then close (broken or hostile answers).
    RawThenClose(Vec<u8>),
    /// Close without answering.
    Close,
    /// Wait, then reply.
    After(Duration, Box<Reply>),
    /// A chunked response written piece by piece, each after its delay: what
    /// `InvokeWithResponseStream` answers (the pieces carry event-stream messages). Each piece
    /// is one HTTP chunk, asked of the iterator only once the one before is written, so a
    /// reader that stops reading stops the iterator.
    Stream {
        /// The status.
        status: u16,
        /// Header fields (without framing headers).
        headers: Vec<(String, String)>,
        /// The pieces, each with the wait before it.
        pieces: Box<dyn Iterator<Item = (Duration, Vec<u8>)> + Send>,
        /// Write the last chunk; `false` closes the connection after the pieces instead.
        complete: bool,
    },
}

/// Decides the answer to each invoke; shared by every thread of the emulator.
pub trait Functions: Send + Sync + 'static {
    /// The reply to `invoke`.
    fn invoke(&self, invoke: &Invoke<'_>) -> Reply;
}

/// Where and how the emulator listens.
pub struct Options {
    /// Address to listen on (port 0 for any free one).
    pub listen: SocketAddr,
    /// Threads (each a monoio runtime with its own `SO_REUSEPORT` listener).
    pub threads: usize,
    /// CPUs to pin the threads to, in turn (none: unpinned).
    pub cpus: Vec<usize>,
    /// TLS, or plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What the threads share: the open connections (to cut them on [`Emulator::restart`]).
#[derive(Default)]
struct Control {
    open: Mutex<Vec<RawFd>>,
    accepted: AtomicUsize,
}

/// A running emulator. Its threads serve until the process exits.
pub struct Emulator {
    /// The address it listens on.
    pub addr: SocketAddr,
    control: Arc<Control>,
}

impl Emulator {
    /// Starts serving; returns once every thread listens.
    pub fn start(opts: Options, functions: Arc<dyn Functions>) -> io::Result<Emulator> {
        let control = Arc::new(Control::default());
        let mut addr = opts.listen;
        for i in 0..opts.threads.max(1) {
            let (ready, listening) = mpsc::channel();
            let (tls, functions, control) = (opts.tls.clone(), functions.clone(), control.clone());
            let cpu = (!opts.cpus.is_empty()).then(|| opts.cpus[i % opts.cpus.len()]);
            std::thread::Builder::new()
                .name(format!("emulator-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        let _ = monoio::utils::bind_to_cpu_set([cpu]);
                    }
                    let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                        .enable_timer()
                        .build();
                    let mut rt = match rt {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    rt.block_on(accept_loop(addr, tls, functions, control, ready));
                })?;
            let bound = listening
                .recv()
                .map_err(|_| io::Error::other("emulator thread failed"))??;
            addr = bound;
        }
        Ok(Emulator { addr, control })
    }

    /// Cuts every open connection at once, as an endpoint restarted behind a kept listening
    /// socket would: requests in flight on them get no answer; new connections are served.
    pub fn restart(&self) {
        let open = std::mem::take(&mut *lock(&self.control.open));
        for fd in open {
            let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.control.accepted.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    functions: Arc<dyn Functions>,
    control: Arc<Control>,
    ready: mpsc::Sender<io::Result<SocketAddr>>,
) {
    let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
    let listener = match TcpListener::bind_with_config(addr, &opts) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(listener.local_addr().unwrap_or(addr)));
    let acceptor = tls.map(monoio_rustls::TlsAcceptor::from);
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        let fd = tcp.as_raw_fd();
        control.accepted.fetch_add(1, Ordering::SeqCst);
        lock(&control.open).push(fd);
        let (acceptor, functions, control) = (acceptor.clone(), functions.clone(), control.clone());
        monoio::spawn(async move {
            match acceptor {
                Some(a) => {
                    if let Ok(stream) = a.accept(tcp).await {
                        serve(stream, &*functions).await;
                    }
                }
                None => serve(tcp, &*functions).await,
            }
            lock(&control.open).retain(|&open| open != fd);
        });
    }
}

/// Answers every request on one connection until it closes.
async fn serve<S: AsyncReadRent + AsyncWriteRent>(mut s: S, functions: &dyn Functions) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut served = 0usize;
    loop {
        let (head_len, body_len) = loop {
            match head_and_length(&buf) {
                Ok(Some(found)) => break found,
                Ok(None) => {}
                Err(()) => return,
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
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut slots);
        if !matches!(
            req.parse(&buf[..head_len]),
            Ok(httparse::Status::Complete(_))
        ) {
            return;
        }
        let target = req.path.unwrap_or("/");
        let function = target
            .trim_start_matches("/2015-03-31/functions/")
            .trim_start_matches("/2021-11-15/functions/")
            .split(['/', '?'])
            .next()
            .unwrap_or("");
        let invoke = Invoke {
            method: req.method.unwrap_or(""),
            target,
            function,
            headers: req.headers,
            body: &buf[head_len..head_len + body_len],
            earlier_on_connection: served,
        };
        let mut reply = functions.invoke(&invoke);
        served += 1;
        buf.drain(..head_len + body_len);
        let reply = loop {
            match reply {
                Reply::After(delay, then) => {
                    monoio::time::sleep(delay).await;
                    reply = *then;
                }
                other => break other,
            }
        };
        let keep = match reply {
            Reply::Static(bytes) => s.write_all(bytes).await.0.is_ok(),
            Reply::Answer {
                status,
                headers,
                body,
                chunked,
                close,
            } => {
                let out = encode(status, &headers, &body, chunked);
                s.write_all(out).await.0.is_ok() && !close
            }
            Reply::RawThenClose(bytes) => {
                let _ = s.write_all(bytes).await;
                false
            }
            Reply::Stream {
                status,
                headers,
                pieces,
                complete,
            } => write_stream(&mut s, status, &headers, pieces, complete).await,
            Reply::Close | Reply::After(..) => false,
        };
        if !keep {
            let _ = s.shutdown().await;
            return;
        }
    }
}

/// Writes a chunked response piece by piece, and its last chunk when `complete`; false if
/// the connection is not to be used again.
async fn write_stream<S: AsyncWriteRent>(
    s: &mut S,
    status: u16,
    headers: &[(String, String)],
    pieces: Box<dyn Iterator<Item = (Duration, Vec<u8>)> + Send>,
    complete: bool,
) -> bool {
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    if s.write_all(head.into_bytes()).await.0.is_err() {
        return false;
    }
    for (delay, bytes) in pieces {
        if !delay.is_zero() {
            monoio::time::sleep(delay).await;
        }
        if bytes.is_empty() {
            continue;
        }
        let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
        chunk.extend_from_slice(&bytes);
        chunk.extend_from_slice(b"\r\n");
        if s.write_all(chunk).await.0.is_err() {
            return false;
        }
    }
    complete && s.write_all(&b"0\r\n\r\n"[..]).await.0.is_ok()
}

/// The head's length and the body's (`Content-Length`) once a whole head is buffered.
fn head_and_length(buf: &[u8]) -> Result<Option<(usize, usize)>, ()> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let body = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            Ok(Some((len, body)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(()),
    }
}

/// A response: status line, headers, framing, body.
pub fn encode(status: u16, headers: &[(String, String)], body: &[u8], chunked: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for piece in body.chunks(7) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
    }
    out
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

/// Lambda's answer headers for a successful invoke (request id, trace id, version).
pub fn lambda_headers(request_id: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("x-amzn-RequestId".into(), request_id.into()),
        (
            "X-Amzn-Trace-Id".into(),
            "root=1-00000001-000000000000000000000001;sampled=0".into(),
        ),
        ("x-amzn-Remapped-Content-Length".into(), "0".into()),
        ("X-Amz-Executed-Version".into(), "$LATEST".into()),
    ]
}

/// Lambda's answer to a failed API call: `status` with `x-amzn-ErrorType` (in the long form
/// Lambda sends), the request id, `extra` headers and a JSON body.
pub fn api_error(status: u16, error_type: &str, request_id: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![
        ("x-amzn-RequestId".to_string(), request_id.to_string()),
        (
            "x-amzn-ErrorType".to_string(),
            format!("{error_type}:http://internal.amazon.com/coral/com.amazonaws.awslambda/"),
        ),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Reply::Answer {
        status,
        headers,
        body: format!(r#"{{"Type":"User","message":"{error_type}"}}"#).into_bytes(),
        chunked: false,
        close: false,
    }
}
