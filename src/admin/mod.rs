//! The Kong-compatible Admin API (SPEC §7) on its own thread and monoio runtime: changes are
//! validated by the declarative config's own rules, written to the config file atomically, and
//! published to every worker by an atomic snapshot swap.

pub mod api;
pub mod body;
mod entities;
pub mod errors;
mod flatten;
mod paging;
pub mod present;
mod proxy_cache;
mod routing;
mod schemas;
pub mod store;

use crate::http::conn::{self, Shared};
use crate::http::shutdown::Shutdown;
use crate::http::Limits;
use crate::signals::{Event, Subscription};
use api::AdminApi;
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often idle keep-alive Admin API connections past their timeout are closed.
const TICK: Duration = Duration::from_millis(100);

/// Largest Admin API request body (a whole `POST /config`).
pub const MAX_ADMIN_BODY: usize = 16 * 1024 * 1024;

/// Starts the Admin API thread on `addr`; returns the bound address. `make_api` runs on the
/// admin thread (the API's state is not shared with any other thread). `events` stops it and
/// reloads the config file.
pub fn spawn(
    addr: SocketAddr,
    limits: Limits,
    events: Subscription,
    make_api: impl FnOnce() -> AdminApi + Send + 'static,
) -> std::io::Result<(std::thread::JoinHandle<()>, SocketAddr)> {
    let (tx, rx) = mpsc::channel::<std::io::Result<SocketAddr>>();
    let handle = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            let mut runtime = match crate::reactor::build_runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let mut events = match events.into_async() {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let listener = match TcpListener::bind_with_config(
                    addr,
                    &ListenerOpts::new().reuse_port(false).reuse_addr(true),
                ) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(listener.local_addr().unwrap_or(addr)));
                let api = Rc::new(make_api());
                let shutdown = Rc::new(Shutdown::default());
                let shared = Rc::new(Shared {
                    secure: false,
                    handler: api.clone(),
                    limits: Limits {
                        max_body_bytes: MAX_ADMIN_BODY,
                        ..limits
                    },
                    shutdown: shutdown.clone(),
                });
                let slots = Rc::new(conn::request_slots::<TcpStream, AdminApi>());
                {
                    let (shutdown, api) = (shutdown.clone(), api.clone());
                    monoio::spawn(async move {
                        while events.next().await == Event::Reload {
                            api.reload();
                        }
                        shutdown.trigger();
                    });
                }
                {
                    let shutdown = shutdown.clone();
                    monoio::spawn(async move {
                        while !shutdown.is_set() {
                            monoio::time::sleep(TICK).await;
                            shutdown.expire(Instant::now());
                        }
                    });
                }
                conn::accept_until_shutdown(&listener, &shutdown, |stream, peer| {
                    let (shared, slots) = (shared.clone(), slots.clone());
                    monoio::spawn(async move {
                        conn::serve(stream, None, Some(peer.ip().to_canonical()), shared, &slots)
                            .await;
                    });
                })
                .await;
            });
        })?;
    match rx.recv() {
        Ok(Ok(bound)) => Ok((handle, bound)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::Error::other("admin thread failed to start")),
    }
}
