//! The `lambda-gateway` command line: serve a config, check a config, or run the demo.

use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use lambda_gateway::admin::{self, api::AdminApi, store::Store};
use lambda_gateway::config::snapshot::Environment;
use lambda_gateway::config::{self, Snapshot};
use lambda_gateway::http::Limits;
use lambda_gateway::runtime::{self, ServeConfig};
use lambda_gateway::signals::{Event, Signals};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP gateway that turns requests into AWS Lambda Invoke calls, configured like Kong's
/// aws-lambda plugin (declarative kong.yml).
///
/// AWS settings come from the environment as the AWS SDKs read them: AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION,
/// AWS_ENDPOINT_URL_LAMBDA (then AWS_ENDPOINT_URL), AWS_CA_BUNDLE. Log level: LAMBDA_GATEWAY_LOG
/// (error, warn, info, debug; default info).
#[derive(Parser, Debug)]
#[command(name = "lambda-gateway", version)]
struct Cli {
    /// Kong declarative config file (YAML or JSON) to serve.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// Proxy listen address.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_LISTEN",
        default_value = "0.0.0.0:8000",
        value_name = "ADDR"
    )]
    listen: SocketAddr,

    /// Admin API listen address, or `off`.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_ADMIN_LISTEN",
        default_value = "127.0.0.1:8001",
        value_name = "ADDR|off"
    )]
    admin_listen: String,

    /// Token every Admin API request must present (`Kong-Admin-Token: <token>` or
    /// `Authorization: Bearer <token>`); required when --admin-listen is not a loopback address.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,

    /// Time a client has to send a request head, and then its body (e.g. 30s, 500ms).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_CLIENT_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    client_timeout: Duration,

    /// How long an idle keep-alive client connection is kept open (e.g. 60s).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_KEEPALIVE_TIMEOUT", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    keepalive_timeout: Duration,

    /// Worker threads (default: one per core).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_WORKERS", value_name = "N")]
    workers: Option<usize>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a config file: print every error with its path, exit 1 on error.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Serve the seed example (/lambda1 → MyLambda) against a built-in local Lambda emulator.
    Demo,
}

/// `500ms`, `30s`, `2m`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 30s or 500ms, got {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use ms, s or m)")),
    };
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range (1ms to 24h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    lambda_gateway::logging::init();
    let cli = Cli::parse();
    let admin_addr = match cli.admin_listen.as_str() {
        "off" => None,
        text => match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                eprintln!("error: --admin-listen: expected an address like 127.0.0.1:8001 or `off`, got {text:?}");
                return ExitCode::from(2);
            }
        },
    };
    let token = cli.admin_token.clone().filter(|t| !t.is_empty());
    if let Some(addr) = admin_addr {
        if !addr.ip().is_loopback() && token.is_none() {
            eprintln!("error: the Admin API on {addr} is reachable from other hosts: set --admin-token (or LAMBDA_GATEWAY_ADMIN_TOKEN), or listen on a loopback address");
            return ExitCode::from(2);
        }
    }
    match &cli.command {
        Some(Command::Check { file }) => check(file),
        Some(Command::Demo) => demo(&cli, admin_addr, token),
        None => match &cli.config {
            Some(path) if !path.exists() && admin_addr.is_some() => {
                log::info!("{} does not exist: starting with an empty config; the Admin API creates it on the first change", path.display());
                serve(
                    &cli,
                    config::Config::default(),
                    Some(path.clone()),
                    admin_addr,
                    token,
                )
            }
            Some(path) => match config::load_file(path) {
                Ok(cfg) => serve(&cli, cfg, Some(path.clone()), admin_addr, token),
                Err(errors) => {
                    eprintln!("{}: invalid config:\n{errors}", path.display());
                    ExitCode::FAILURE
                }
            },
            None => {
                eprintln!("error: give --config FILE to serve a config, or run `lambda-gateway demo` (see --help)");
                ExitCode::from(2)
            }
        },
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match config::load_file(file) {
        Ok(cfg) => {
            let (env, env_warnings) = Environment::from_process();
            let (_, warnings) = Snapshot::build(cfg.clone(), &env);
            for w in env_warnings.iter().chain(&warnings) {
                println!("warning: {w}");
            }
            println!(
                "{}: OK ({} services, {} routes, {} plugins, {} consumers)",
                file.display(),
                cfg.services.len(),
                cfg.routes.len(),
                cfg.plugins.len(),
                cfg.consumers.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

fn demo(cli: &Cli, admin_addr: Option<SocketAddr>, token: Option<String>) -> ExitCode {
    let emulator = match lambda_gateway::demo::start_emulator() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot start the demo Lambda emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = lambda_gateway::demo::config(emulator);
    let cfg = match config::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: demo config: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "demo: Lambda emulator on {emulator}; try: curl -i http://127.0.0.1:{}/lambda1",
        cli.listen.port()
    );
    serve(cli, cfg, None, admin_addr, token)
}

fn serve(
    cli: &Cli,
    cfg: config::Config,
    config_path: Option<PathBuf>,
    admin_addr: Option<SocketAddr>,
    token: Option<String>,
) -> ExitCode {
    let (env, env_warnings) = Environment::from_process();
    let (snapshot, warnings) = Snapshot::build(cfg.clone(), &env);
    for w in env_warnings.iter().chain(&warnings) {
        log::warn!("{w}");
    }
    let ca_bundle = std::env::var_os("AWS_CA_BUNDLE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let tls = match lambda_gateway::upstream::tls::client_config(ca_bundle.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    let limits = Limits {
        client_timeout: cli.client_timeout,
        keepalive_timeout: cli.keepalive_timeout,
        ..Limits::default()
    };
    let published = Arc::new(ArcSwap::from_pointee(snapshot));
    let metrics = Arc::new(lambda_gateway::metrics::Registry::default());
    let _admin = match admin_addr {
        None => {
            // No Admin API: a small thread owns the store, for SIGHUP reloads.
            let mut store = Store::new(cfg, config_path, published.clone(), env);
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
            if config_path.is_none() {
                log::warn!(
                    "Admin API changes are kept in memory only: no --config file to write them to"
                );
            }
            let (published, metrics, proxy_listen) =
                (published.clone(), metrics.clone(), cli.listen.to_string());
            let make_api = move || {
                let store = Store::new(cfg, config_path, published, env);
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
    let serve_cfg = ServeConfig {
        listen: cli.listen,
        workers,
        limits,
        snapshot: published,
        tls,
        metrics,
    };
    match runtime::serve(serve_cfg, &signals, None) {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot serve on {}: {e}", cli.listen);
            ExitCode::FAILURE
        }
    }
}
