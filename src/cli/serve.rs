//! Serving: a config file, a fleet's configuration in etcd, or the demo; the workers, the
//! Admin API and the signals that reload what they serve.

use super::args::Cli;
use super::environment::environment;
use crate::admin::{self, api::AdminApi, store::Store};
use crate::config::{self, snapshot, Snapshot};
use crate::http::budget::{self, Budget};
use crate::http::Limits;
use crate::https::{CertificateFiles, ServerCertificate};
use crate::runtime::{self, HttpsServe, ServeConfig};
use crate::signals::{Event, Signals};
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

pub(super) fn demo(cli: &Cli, admin_addr: Option<SocketAddr>, token: Option<String>) -> ExitCode {
    let emulator = match crate::demo::start_emulator() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot start the demo Lambda emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = crate::demo::config(emulator);
    let cfg = match config::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: demo config: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "demo: Lambda emulator on {emulator}; try: curl -i http://127.0.0.1:{}/lambda1",
        cli.listen().port()
    );
    serve(cli, cfg, None, admin_addr, token, None)
}

/// The HTTPS certificate of `--tls-cert`/`--tls-key`, loaded and checked, when `--tls-listen`
/// is given; its port is probed like the proxy's.
fn https_certificate(
    cli: &Cli,
) -> Result<Option<(CertificateFiles, Arc<ServerCertificate>)>, String> {
    let (Some(listen), Some(cert), Some(key)) = (cli.tls_listen, &cli.tls_cert, &cli.tls_key)
    else {
        return Ok(None);
    };
    if !cli.reuse_port {
        runtime::refuse_foreign_listener(listen, "--tls-listen")
            .map_err(|e| format!("cannot serve HTTPS on {listen}: {e}"))?;
    }
    let files = CertificateFiles {
        cert: cert.clone(),
        key: key.clone(),
    };
    let certificate = ServerCertificate::load(&files).map_err(|e| format!("--tls-cert: {e}"))?;
    Ok(Some((files, Arc::new(certificate))))
}

/// A thread that loads the certificate files again on every SIGHUP: new handshakes get the new
/// certificate, open connections keep theirs; a file that cannot be used keeps the old one.
fn reload_certificate_on_hup(
    signals: &Signals,
    files: CertificateFiles,
    certificate: Arc<ServerCertificate>,
) -> std::io::Result<()> {
    let mut events = signals.subscribe()?;
    std::thread::Builder::new()
        .name("certificate".into())
        .spawn(move || {
            while events.next_blocking() == Event::Reload {
                match certificate.reload(&files) {
                    Ok(()) => {
                        log::info!("HTTPS certificate reloaded from {}", files.cert.display())
                    }
                    Err(e) => {
                        log::error!("HTTPS certificate not reloaded, the previous one stays: {e}")
                    }
                }
            }
        })?;
    Ok(())
}

/// The config file served: where it is, and the digest of what was loaded from it.
pub(super) struct ConfigFile {
    pub path: PathBuf,
    pub on_disk: Option<config::FileDigest>,
}

/// A fleet's configuration: the started etcd thread and the revision served first.
pub(super) struct FleetStart {
    starter: crate::fleet::etcd::Starter,
    revision: i64,
}

/// Serves the configuration in etcd at `url`.
pub(super) fn serve_fleet(
    cli: &Cli,
    url: &str,
    admin_addr: Option<SocketAddr>,
    token: Option<String>,
) -> ExitCode {
    use crate::fleet::etcd::{self, EtcdOptions, EtcdTls};
    let location = match crate::fleet::url::EtcdLocation::parse(url) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --config: {e}");
            return ExitCode::from(2);
        }
    };
    let cache = cli.config_cache.clone().unwrap_or_else(|| {
        std::env::var_os("STATE_DIRECTORY")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join("lambda-gateway.cache.yml")
    });
    let options = EtcdOptions {
        location,
        tls: EtcdTls {
            ca: cli.etcd_cacert.clone(),
            cert: cli.etcd_cert.clone(),
            key: cli.etcd_key.clone(),
        },
        cache,
    };
    match etcd::start(options) {
        Ok((initial, starter)) => {
            let fleet = FleetStart {
                starter,
                revision: initial.revision,
            };
            serve(cli, initial.config, None, admin_addr, token, Some(fleet))
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(super) fn serve(
    cli: &Cli,
    cfg: config::Config,
    file: Option<ConfigFile>,
    admin_addr: Option<SocketAddr>,
    token: Option<String>,
    fleet: Option<FleetStart>,
) -> ExitCode {
    if !cli.reuse_port {
        if let Err(e) = runtime::refuse_foreign_listener(cli.listen(), "--listen") {
            eprintln!("error: cannot serve on {}: {e}", cli.listen());
            return ExitCode::FAILURE;
        }
    }
    let (config_path, on_disk) = match file {
        Some(f) => (Some(f.path), f.on_disk),
        None => (None, None),
    };
    let (env, tls, env_errors) = environment(Some(&cfg));
    let tls = match tls {
        Some(tls) if env_errors.0.is_empty() => tls,
        _ => {
            eprintln!("error: the environment cannot be used:\n{env_errors}");
            return ExitCode::FAILURE;
        }
    };
    let certificate = match https_certificate(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut snapshot = Snapshot::default();
    snapshot::publish(&cfg, &env, |s| snapshot = s);
    let workers = cli
        .workers
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let signals = Signals::default();
    if let Err(e) = signals.install() {
        eprintln!("error: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let events = match signals.subscribe() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot subscribe to signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let budget = Budget::new(
        cli.max_buffered.unwrap_or_else(budget::default_limit),
        budget::DEFAULT_WAIT,
    );
    crate::cache::Cache::global().set_capacity(cli.proxy_cache_memory);
    crate::metrics::PROCESS
        .buffer_budget
        .store(budget.limit() as u64, std::sync::atomic::Ordering::Relaxed);
    log::info!(
        "buffer budget {} MiB for large bodies and answers",
        budget.limit() >> 20
    );
    let limits = Limits {
        client_timeout: cli.client_timeout,
        keepalive_timeout: cli.keepalive_timeout,
        min_body_rate: cli.min_body_rate,
        budget: Some(budget),
        ..Limits::default()
    };
    let published = Arc::new(ArcSwap::from_pointee(snapshot));
    let https = match certificate {
        Some((files, certificate)) => {
            let config = match crate::https::server_config(
                certificate.clone(),
                published.clone(),
                cli.http2,
            ) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: HTTPS: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = reload_certificate_on_hup(&signals, files, certificate) {
                eprintln!("error: cannot start the certificate reload thread: {e}");
                return ExitCode::FAILURE;
            }
            cli.tls_listen.map(|listen| HttpsServe { listen, config })
        }
        None => None,
    };
    let metrics = Arc::new(crate::metrics::Registry::default());
    let _admin = match admin_addr {
        None => {
            // No Admin API: a small thread owns the store, for SIGHUP reloads.
            let mut store = Store::new(cfg, config_path, on_disk, published.clone(), env.clone());
            if let Some(f) = fleet {
                let watched = f.starter.watch(env, published.clone(), f.revision);
                store = store.with_fleet(watched, f.revision);
            }
            let mut events = events;
            let spawned = std::thread::Builder::new()
                .name("reload".into())
                .spawn(move || {
                    while events.next_blocking() == Event::Reload {
                        store.reload();
                    }
                });
            if let Err(e) = spawned {
                eprintln!("error: cannot start the reload thread: {e}");
                return ExitCode::FAILURE;
            }
            None
        }
        Some(addr) => {
            if config_path.is_none() && fleet.is_none() {
                log::warn!(
                    "Admin API changes are kept in memory only: no --config file to write them to"
                );
            }
            let (published, metrics, proxy_listen) =
                (published.clone(), metrics.clone(), cli.listen().to_string());
            let make_api = move || {
                let mut store =
                    Store::new(cfg, config_path, on_disk, published.clone(), env.clone());
                if let Some(f) = fleet {
                    let watched = f.starter.watch(env, published, f.revision);
                    store = store.with_fleet(watched, f.revision);
                }
                AdminApi::new(store, token, metrics, proxy_listen, addr.to_string())
            };
            match admin::spawn(addr, limits.clone(), events, make_api) {
                Ok((handle, bound)) => {
                    log::info!("admin API listening on {bound}");
                    Some(handle)
                }
                Err(e) => {
                    eprintln!("error: cannot serve the Admin API on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let access_log = match crate::access_log::AccessLog::open(&cli.access_log) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: --access-log {}: {e}", cli.access_log);
            return ExitCode::FAILURE;
        }
    };
    let serve_cfg = ServeConfig {
        listen: cli.listen(),
        workers,
        limits,
        snapshot: published,
        tls,
        metrics,
        https,
        access_log,
        http2: cli.http2,
    };
    match runtime::serve(serve_cfg, &signals, None) {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot serve on {}: {e}", cli.listen());
            ExitCode::FAILURE
        }
    }
}
