//! Worker threads: one pinned monoio runtime per core, each with its own SO_REUSEPORT listener,
//! upstream pool and signer; graceful stop when [`Signals`] says stop.

use crate::config::Snapshot;
use crate::http::conn::{self, Shared};
use crate::http::shutdown::Shutdown;
use crate::http::Limits;
use crate::http2;
use crate::https::Accepted;
use crate::proxy::Proxy;
use crate::reactor::build_runtime;
use crate::signals::{Event, Signals, Subscription};
use crate::upstream::client::Upstream;
use arc_swap::ArcSwap;
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long in-flight requests get to finish after a stop signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a worker sweeps its idle upstream pool and closes keep-alive connections idle
/// past their timeout.
const TICK: Duration = Duration::from_millis(100);

/// What the workers need to serve.
#[derive(Clone)]
pub struct ServeConfig {
    /// Proxy listen address.
    pub listen: SocketAddr,
    /// Number of worker threads.
    pub workers: usize,
    /// Client limits.
    pub limits: Limits,
    /// The published config.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Upstream TLS settings.
    pub tls: Arc<rustls::ClientConfig>,
    /// Where workers register their counters.
    pub metrics: Arc<crate::metrics::Registry>,
    /// HTTPS for clients, when `--tls-listen` is given.
    pub https: Option<HttpsServe>,
    /// The access log, unless off.
    pub access_log: Option<Arc<crate::access_log::AccessLog>>,
    /// HTTP/2 for clients (`--http2`): h2c on the plain listener; the HTTPS listener's ALPN
    /// is in its server config.
    pub http2: bool,
}

/// The HTTPS listener: its address and the server config every worker accepts with.
#[derive(Clone)]
pub struct HttpsServe {
    /// `--tls-listen`.
    pub listen: SocketAddr,
    /// Certificates, protocols, session resumption (see [`crate::https`]).
    pub config: Arc<rustls::ServerConfig>,
}

/// What a started worker reports: the addresses it listens on (plain, HTTPS).
type Bound = std::io::Result<(SocketAddr, Option<SocketAddr>)>;

/// Runs the workers until `signals` says stop and they drained. `bound` receives the actual
/// listen address once the first worker is listening (useful with port 0).
pub fn serve(
    cfg: ServeConfig,
    signals: &Signals,
    bound: Option<mpsc::Sender<SocketAddr>>,
) -> std::io::Result<()> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let forced_legacy = std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER").is_some();
    if forced_legacy || !monoio::utils::detect_uring() {
        log::warn!("io_uring unavailable or disabled: workers use the epoll driver");
    } else {
        log::info!("workers use io_uring");
    }
    let mut handles: Vec<std::thread::JoinHandle<()>> = Vec::with_capacity(cfg.workers);
    let mut addr = cfg.listen;
    let mut https_addr = cfg.https.as_ref().map(|h| h.listen);
    for index in 0..cfg.workers.max(1) {
        let (tx, rx) = mpsc::channel::<Bound>();
        let worker_cfg = cfg.clone();
        let events = signals.subscribe()?;
        let handle = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                if let Err(e) = monoio::utils::bind_to_cpu_set([index % cpus]) {
                    log::warn!(
                        "could not pin worker {index} to cpu {}: {e:?}",
                        index % cpus
                    );
                }
                let mut runtime = match build_runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                // A request's panic is caught with its connection (`http::conn`); one anywhere
                // else in the worker leaves it gone, and a gateway silently short of a worker
                // (or of its only one) is worse than one restarted by its service manager.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    runtime.block_on(worker_main(worker_cfg, addr, https_addr, events, tx))
                }));
                if ran.is_err() {
                    log::error!("worker {index} stopped by a panic: the gateway exits (status 70) to be restarted");
                    std::process::exit(70);
                }
            })?;
        match rx.recv() {
            Ok(Ok((bound_addr, bound_https))) => {
                if index == 0 {
                    // Every other worker binds the very port the first one got (port 0 → real port).
                    addr = bound_addr;
                    https_addr = bound_https;
                    if let Some(https) = bound_https {
                        log::info!("HTTPS listening on {https}");
                    }
                    log::info!(
                        "listening on {bound_addr} with {} workers",
                        cfg.workers.max(1)
                    );
                    if let Some(b) = &bound {
                        let _ = b.send(bound_addr);
                    }
                }
            }
            Ok(Err(e)) => {
                signals.stop();
                for h in handles {
                    let _ = h.join();
                }
                return Err(e);
            }
            Err(_) => return Err(std::io::Error::other("worker thread failed to start")),
        }
        handles.push(handle);
    }
    for h in handles {
        if h.join().is_err() {
            log::error!("a worker thread panicked");
        }
    }
    Ok(())
}

/// Fails when another socket already listens on `addr`. The workers' listeners use
/// SO_REUSEPORT, which would otherwise let a second gateway (or anything of the same user
/// with the option set) silently split the connections with us. A probe bound without
/// SO_REUSEPORT conflicts with any listener on the port; it is closed at once. Call it before
/// [`serve`], unless sharing the port is the point; `flag` (`--listen`, `--tls-listen`) is the
/// option the operator can change.
pub fn refuse_foreign_listener(addr: SocketAddr, flag: &str) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind(addr) {
        Ok(_probe) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            e.kind(),
            format!(
                "address already in use by another process (another lambda-gateway?): stop it, \
                 choose another {flag}, or pass --reuse-port to share the port on purpose \
                 (a zero-downtime upgrade)"
            ),
        )),
        Err(e) => Err(e),
    }
}

/// A worker's listener on `addr`, sharing the port with the other workers.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind_with_config(
        addr,
        &ListenerOpts::new()
            .reuse_port(true)
            .reuse_addr(true)
            .backlog(4096),
    )
}

async fn worker_main(
    cfg: ServeConfig,
    addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    events: Subscription,
    ready: mpsc::Sender<Bound>,
) {
    let mut events = match events.into_async() {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let listener = match bind(addr) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let https = match (https_addr, &cfg.https) {
        (Some(at), Some(h)) => match bind(at) {
            Ok(l) => Some((l, tokio_rustls::TlsAcceptor::from(h.config.clone()))),
            Err(e) => {
                let _ = ready.send(Err(std::io::Error::new(
                    e.kind(),
                    format!("HTTPS listener on {at}: {e}"),
                )));
                return;
            }
        },
        _ => None,
    };
    let local = listener.local_addr().unwrap_or(addr);
    let https_local = https
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok())
        .or(https_addr);
    let _ = ready.send(Ok((local, https_local)));
    let proxy = Rc::new(
        Proxy::new(
            cfg.snapshot.clone(),
            Upstream::new(cfg.tls.clone()),
            cfg.metrics.register(),
        )
        .with_access_log(cfg.access_log.clone())
        .with_budget(cfg.limits.budget.clone()),
    );
    let shutdown = Rc::new(Shutdown::default());
    let shared = Rc::new(Shared {
        secure: false,
        handler: proxy.clone(),
        limits: cfg.limits.clone(),
        shutdown: shutdown.clone(),
    });
    let slots = Rc::new(conn::request_slots::<TcpStream, Proxy>());
    let active = Rc::new(Cell::new(0usize));

    {
        let shutdown = shutdown.clone();
        monoio::spawn(async move {
            while events.next().await != Event::Stop {}
            shutdown.trigger();
        });
    }
    {
        let (shutdown, proxy) = (shutdown.clone(), proxy.clone());
        monoio::spawn(async move {
            while !shutdown.is_set() {
                monoio::time::sleep(TICK).await;
                let idle = {
                    let mut pool = proxy.invoker.pool.borrow_mut();
                    pool.sweep();
                    pool.idle_count()
                };
                proxy
                    .metrics
                    .upstream_idle
                    .store(idle as u64, Ordering::Relaxed);
                proxy.flush_access_log();
                let now = Instant::now();
                // A burst's large buffers go back once it is over.
                conn::Handler::buffers(&*proxy).large.release_if_idle(now);
                shutdown.expire(now);
            }
        });
    }

    if let Some((tls_listener, acceptor)) = https {
        let shared = Rc::new(Shared {
            handler: proxy.clone(),
            limits: cfg.limits.clone(),
            shutdown: shutdown.clone(),
            secure: true,
        });
        let (shutdown, active) = (shutdown.clone(), active.clone());
        monoio::spawn(async move {
            serve_https(tls_listener, acceptor, shared, shutdown, active).await;
        });
    }

    let h2c = cfg.http2;
    conn::accept_until_shutdown(&listener, &shutdown, |stream, peer| {
        let _ = stream.set_nodelay(true);
        let (shared, slots) = (shared.clone(), slots.clone());
        let open = OpenConnection::new(&shared, &active);
        monoio::spawn(async move {
            // An IPv4 client of a dual-stack listener is shown as IPv4, as API Gateway shows it.
            let peer = Some(peer.ip().to_canonical());
            if !h2c {
                return conn::serve(stream, None, peer, shared.clone(), &slots).await;
            }
            if let Some((stream, first)) = serve_plain(stream, peer, shared.clone(), &slots).await {
                spawn_http2(open, http2::serve_h2c(stream, first, peer, shared));
            }
        });
    })
    .await;
    drop(listener);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while active.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    if active.get() > 0 {
        log::warn!(
            "{} connections still open after the drain deadline; closing",
            active.get()
        );
    }
    proxy.flush_access_log();
}

/// A client connection, counted open (the worker's drain waits for it; the metrics count it
/// accepted, then closed) until this is dropped by whichever task serves it last.
struct OpenConnection {
    proxy: Rc<Proxy>,
    active: Rc<Cell<usize>>,
}

impl OpenConnection {
    fn new(shared: &Shared<Proxy>, active: &Rc<Cell<usize>>) -> OpenConnection {
        active.set(active.get() + 1);
        let proxy = shared.handler.clone();
        let accepted = &proxy.metrics.connections_accepted;
        accepted.fetch_add(1, Ordering::Relaxed);
        OpenConnection {
            proxy,
            active: active.clone(),
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let closed = &self.proxy.metrics.connections_closed;
        closed.fetch_add(1, Ordering::Relaxed);
        self.active.set(self.active.get() - 1);
    }
}

/// Serves an HTTP/2 connection in a task of its own, `open` until it ends: the task that
/// accepted it (sized for HTTP/1.1 or a TLS handshake) ends instead of staying alive to
/// await it, so an idle HTTP/2 connection holds only its own state.
fn spawn_http2<F: std::future::Future<Output = ()> + 'static>(open: OpenConnection, serve: F) {
    monoio::spawn(Counted { serve, _open: open });
}

pin_project_lite::pin_project! {
    /// A connection's future with its [`OpenConnection`], dropped together. (An `async move`
    /// block awaiting a future it captured would hold the future twice: as the captured
    /// value and as the value being awaited, 2.2 KiB each for HTTP/2.)
    struct Counted<F> {
        #[pin]
        serve: F,
        _open: OpenConnection,
    }
}

impl<F: std::future::Future<Output = ()>> std::future::Future for Counted<F> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.project().serve.poll(cx)
    }
}

/// Serves a plain-listener connection as HTTP/1.1 unless it opens with the h2c preface: then
/// it is handed back with the bytes read, for [`http2::serve_h2c`].
async fn serve_plain<F>(
    mut stream: TcpStream,
    peer: Option<std::net::IpAddr>,
    shared: Rc<Shared<Proxy>>,
    slots: &conn::RequestSlots<TcpStream, Proxy, F>,
) -> Option<(TcpStream, Vec<u8>)>
where
    F: std::future::Future<Output = conn::Served<TcpStream>>,
{
    let first = conn::first_bytes(&mut stream, &shared, http2::DECIDES).await?;
    if http2::is_preface(&first) {
        return Some((stream, first));
    }
    let held = conn::first_request(&shared, peer, &first);
    drop(first);
    conn::serve(stream, Some(held), peer, shared, slots).await;
    None
}

/// Accepts HTTPS clients until shutdown: each connection's handshake (bounded by the client
/// timeout, so a stalled or garbage handshake costs a task and a socket for that long at most),
/// then the same HTTP/1.1 serving as plain connections, or HTTP/2 when ALPN chose it.
async fn serve_https(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Rc<Shared<Proxy>>,
    shutdown: Rc<Shutdown>,
    active: Rc<Cell<usize>>,
) {
    let slots = Rc::new(conn::request_slots::<
        monoio_rustls::ServerTlsStream<TcpStream>,
        Proxy,
    >());
    conn::accept_until_shutdown(&listener, &shutdown, |stream, peer| {
        let _ = stream.set_nodelay(true);
        let (shared, slots, acceptor) = (shared.clone(), slots.clone(), acceptor.clone());
        let open = OpenConnection::new(&shared, &active);
        monoio::spawn(async move {
            let metrics = &shared.handler.metrics;
            let limit = shared.limits.client_timeout;
            match monoio::time::timeout(limit, crate::https::accept(stream, &acceptor)).await {
                Ok(Ok(accepted)) => {
                    metrics.tls_handshakes.fetch_add(1, Ordering::Relaxed);
                    let peer = Some(peer.ip().to_canonical());
                    match accepted {
                        Accepted::Http1(tls) => {
                            conn::serve(tls, None, peer, shared.clone(), &slots).await
                        }
                        Accepted::Http2(tls) => {
                            let serve = http2::serve(tls, peer, shared.clone());
                            return spawn_http2(open, serve);
                        }
                    }
                }
                Ok(Err(e)) => {
                    metrics
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    log::debug!("TLS handshake with {peer} failed: {e}")
                }
                Err(_) => {
                    metrics
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    log::debug!("TLS handshake with {peer} not done within {limit:?}")
                }
            }
            drop(open);
        });
    })
    .await;
}

#[cfg(test)]
mod tests {
    /// Every open client connection keeps its task's future; an idle one also keeps its
    /// 512-byte first-read buffer, and nothing of the request it last served (that lives in a
    /// request slot). This bounds what an idle keep-alive connection costs; the load test
    /// measures the whole.
    #[test]
    fn an_idle_connection_task_stays_small() {
        use crate::http::conn::{self, Shared};
        fn size<F: std::future::Future>(_: &F) -> usize {
            std::mem::size_of::<F>()
        }
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let s = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let stream = monoio::net::TcpStream::from_std(s).expect("stream");
            let snapshot = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(
                crate::config::Snapshot::default(),
            ));
            let tls = crate::upstream::tls::client_config(None).expect("tls");
            let proxy = crate::proxy::Proxy::new(
                snapshot,
                crate::upstream::client::Upstream::new(tls),
                std::sync::Arc::default(),
            );
            let shared = std::rc::Rc::new(Shared {
                secure: false,
                handler: std::rc::Rc::new(proxy),
                limits: crate::http::Limits::default(),
                shutdown: std::rc::Rc::new(crate::http::shutdown::Shutdown::default()),
            });
            let slots = conn::request_slots::<monoio::net::TcpStream, crate::proxy::Proxy>();
            let s2 = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let plain = conn::serve(
                monoio::net::TcpStream::from_std(s2).expect("s"),
                None,
                None,
                shared.clone(),
                &slots,
            );
            // The HTTP/1.1 loop alone, as HTTPS connections run it.
            let loop_only = size(&plain);
            drop(plain);
            assert!(
                loop_only <= 528,
                "the HTTP/1.1 loop's future is {loop_only} bytes"
            );
            // An h2c connection's task: its own future once, and the count of open connections.
            let s3 = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let h2c = super::Counted {
                serve: crate::http2::serve_h2c(
                    monoio::net::TcpStream::from_std(s3).expect("s"),
                    Vec::new(),
                    None,
                    shared.clone(),
                ),
                _open: super::OpenConnection::new(&shared, &std::rc::Rc::default()),
            };
            let h2c_size = size(&h2c);
            eprintln!("h2c connection task's future {h2c_size} bytes");
            assert!(
                h2c_size <= 2304,
                "an h2c connection's future is {h2c_size} bytes"
            );
            drop(h2c);
            let f = super::serve_plain(stream, None, shared, &slots);
            let (idle, request) = (size(&f), slots.request_size());
            eprintln!("connection future {idle} bytes, request future {request} bytes");
            // The HTTP/1.1 loop (520 bytes) and, before it, the h2c decision, whose arguments
            // stay in the task's state for its whole life (rustc keeps an async fn's
            // arguments): 776 bytes here.
            assert!(idle <= 800, "a connection's future is {idle} bytes");
            assert!(request <= 8 * 1024, "a request's future is {request} bytes");
        });
    }
}
