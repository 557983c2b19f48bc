//! Worker threads: one pinned monoio runtime per core, each with its own SO_REUSEPORT listener,
//! upstream pool and signer; graceful stop on SIGTERM/SIGINT.

use crate::config::Snapshot;
use crate::http::conn::{self, Shared};
use crate::http::shutdown::Shutdown;
use crate::http::Limits;
use crate::proxy::Proxy;
use crate::upstream::client::Upstream;
use arc_swap::ArcSwap;
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long in-flight requests get to finish after a stop signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a worker looks at the process-wide stop flag, sweeps its idle pool, and closes
/// keep-alive connections idle past their timeout.
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
}

/// Runs the workers until `stop` is set and they drained. `bound` receives the actual listen
/// address once the first worker is listening (useful with port 0).
pub fn serve(
    cfg: ServeConfig,
    stop: Arc<AtomicBool>,
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
    for index in 0..cfg.workers.max(1) {
        let (tx, rx) = mpsc::channel::<std::io::Result<SocketAddr>>();
        let worker_cfg = cfg.clone();
        let worker_stop = stop.clone();
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
                runtime.block_on(worker_main(worker_cfg, addr, worker_stop, tx));
            })?;
        match rx.recv() {
            Ok(Ok(bound_addr)) => {
                if index == 0 {
                    // Every other worker binds the very port the first one got (port 0 → real port).
                    addr = bound_addr;
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
                stop.store(true, Ordering::SeqCst);
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

async fn worker_main(
    cfg: ServeConfig,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<std::io::Result<SocketAddr>>,
) {
    let listener = match TcpListener::bind_with_config(
        addr,
        &ListenerOpts::new()
            .reuse_port(true)
            .reuse_addr(true)
            .backlog(4096),
    ) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    let _ = ready.send(Ok(local));
    let proxy = Rc::new(Proxy::new(
        cfg.snapshot.clone(),
        Upstream::new(cfg.tls.clone()),
        cfg.metrics.register(),
    ));
    let shutdown = Rc::new(Shutdown::default());
    let shared = Rc::new(Shared {
        handler: proxy.clone(),
        limits: cfg.limits.clone(),
        shutdown: shutdown.clone(),
    });
    let slots = Rc::new(conn::request_slots::<TcpStream, Proxy>());
    let active = Rc::new(Cell::new(0usize));

    // Watches the process-wide flag and sweeps the pool.
    {
        let shutdown = shutdown.clone();
        let proxy = proxy.clone();
        monoio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                monoio::time::sleep(TICK).await;
                proxy.upstream.pool.borrow_mut().sweep();
                shutdown.expire(Instant::now());
            }
            shutdown.trigger();
        });
    }

    accept_until_shutdown(&listener, &shutdown, |stream| {
        let _ = stream.set_nodelay(true);
        let (shared, slots, active) = (shared.clone(), slots.clone(), active.clone());
        active.set(active.get() + 1);
        monoio::spawn(async move {
            let metrics = &shared.handler.metrics;
            metrics.connections_accepted.fetch_add(1, Ordering::Relaxed);
            conn::serve(stream, shared.clone(), &slots).await;
            metrics.connections_closed.fetch_add(1, Ordering::Relaxed);
            active.set(active.get() - 1);
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
}

/// A runtime for one thread: io_uring (epoll where unavailable), timers on, 1024 ring entries.
///
/// The ring is set up with `IORING_SETUP_COOP_TASKRUN` and `IORING_SETUP_TASKRUN_FLAG`. Without
/// them, each completion that network softirq work (often on the other core) queues for this
/// thread interrupts it with an IPI to run the ring's task work at once: 14% of a worker's time
/// went to `irqentry_exit_to_user_mode` under load. With them the task work waits for the
/// thread's next `io_uring_enter`, which monoio's loop makes on every turn, whether it submits
/// or waits. `DEFER_TASKRUN` would defer it further, to an enter that *waits* for events, but
/// monoio's submit-only path (taken while tasks are still ready, e.g. while a paced request
/// yields) does not ask for events, so completions would sit unreaped behind busy tasks.
pub fn build_runtime() -> std::io::Result<Runtime> {
    let mut ring = io_uring::IoUring::builder();
    ring.setup_coop_taskrun().setup_taskrun_flag();
    let tuned = runtime_builder().uring_builder(ring).build();
    match tuned {
        Ok(rt) => Ok(rt),
        Err(e) => {
            // Kernels before 5.19 refuse the flags: the default ring still beats epoll.
            log::warn!("io_uring with cooperative task work refused ({e}); using the default ring");
            runtime_builder().build()
        }
    }
}

/// A worker's runtime: io_uring with timers, or epoll with timers.
pub type Runtime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

fn runtime_builder() -> monoio::RuntimeBuilder<monoio::time::TimeDriver<monoio::FusionDriver>> {
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .with_entries(1024)
}

/// Accepts connections and hands each to `on_accept` until `shutdown` starts.
pub async fn accept_until_shutdown(
    listener: &TcpListener,
    shutdown: &Shutdown,
    mut on_accept: impl FnMut(monoio::net::TcpStream),
) {
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => Some(r),
            _ = shutdown.wait() => None,
        };
        match accepted {
            None => return,
            Some(Ok((stream, _peer))) => on_accept(stream),
            Some(Err(e)) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept on {:?} failed: {e}", listener.local_addr().ok());
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Sets `stop` on SIGTERM or SIGINT (from a dedicated thread).
pub fn stop_on_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    handle_signals(stop, Arc::new(AtomicBool::new(false)))
}

/// Sets `stop` on SIGTERM or SIGINT and `reload` on SIGHUP (from a dedicated thread); the
/// thread that owns the configuration store notices `reload` and reloads the file.
pub fn handle_signals(stop: Arc<AtomicBool>, reload: Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if sig == SIGHUP {
                log::info!("SIGHUP: reloading the config file");
                reload.store(true, Ordering::SeqCst);
                continue;
            }
            log::info!("signal {sig}: stopping (draining in-flight requests, at most {DRAIN_TIMEOUT:?})");
            stop.store(true, Ordering::SeqCst);
            break;
        }
    })?;
    Ok(())
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
                handler: std::rc::Rc::new(proxy),
                limits: crate::http::Limits::default(),
                shutdown: std::rc::Rc::new(crate::http::shutdown::Shutdown::default()),
            });
            let slots = conn::request_slots::<monoio::net::TcpStream, crate::proxy::Proxy>();
            let f = conn::serve(stream, shared, &slots);
            let (idle, request) = (size(&f), slots.request_size());
            eprintln!("connection future {idle} bytes, request future {request} bytes");
            assert!(idle <= 512, "a connection's future is {idle} bytes");
            assert!(request <= 8 * 1024, "a request's future is {request} bytes");
        });
    }
}
