//! The `lambda-gateway` command line: serve a config, check a config, or run the demo.

use arc_swap::ArcSwap;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use lambda_gateway::admin::{self, api::AdminApi, store::Store};
use lambda_gateway::config::environment::Environment;
use lambda_gateway::config::{self, snapshot, Snapshot};
use lambda_gateway::http::Limits;
use lambda_gateway::https::{CertificateFiles, ServerCertificate};
use lambda_gateway::logging::LogFormat;
use lambda_gateway::runtime::{self, HttpsServe, ServeConfig};
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
#[command(
    name = "lambda-gateway",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("LAMBDA_GATEWAY_REVISION"), ")")
)]
struct Cli {
    /// Kong declarative config file (YAML or JSON) to serve, or a fleet's configuration in
    /// etcd: `etcd://[user:password@]host:port[,host:port…]/prefix` (watched; Admin API changes
    /// are written there).
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_CONFIG",
        value_name = "FILE|etcd://…"
    )]
    config: Option<PathBuf>,

    /// With --config etcd://: the CA bundle etcd's certificates are checked against (the
    /// connection is then TLS).
    #[arg(long, global = true, env = "ETCD_CACERT", value_name = "FILE")]
    etcd_cacert: Option<PathBuf>,

    /// With --config etcd://: a client certificate for etcd (with --etcd-key).
    #[arg(long, global = true, env = "ETCD_CERT", value_name = "FILE")]
    etcd_cert: Option<PathBuf>,

    /// The private key of --etcd-cert.
    #[arg(long, global = true, env = "ETCD_KEY", value_name = "FILE")]
    etcd_key: Option<PathBuf>,

    /// With --config etcd://: the local last-known-good copy, served when etcd cannot be
    /// reached at start [default: $STATE_DIRECTORY/lambda-gateway.cache.yml, else
    /// ./lambda-gateway.cache.yml].
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_CONFIG_CACHE",
        value_name = "FILE"
    )]
    config_cache: Option<PathBuf>,

    /// Proxy listen address [default: 0.0.0.0:8000; for `demo`, 127.0.0.1:8000].
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_LISTEN",
        value_name = "ADDR",
        value_parser = listen_address
    )]
    listen: Option<SocketAddr>,

    /// Also serve HTTPS on this address (with --tls-cert and --tls-key).
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_TLS_LISTEN",
        value_name = "ADDR",
        value_parser = listen_address,
        requires_all = ["tls_cert", "tls_key"]
    )]
    tls_listen: Option<SocketAddr>,

    /// PEM certificate chain (leaf first) HTTPS clients are shown; reloaded on SIGHUP.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_listen"
    )]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert; reloaded with it.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_listen"
    )]
    tls_key: Option<PathBuf>,

    /// Access log: one JSON line per request to this file (appended; reopened on SIGUSR1),
    /// `-` for stdout, or `off`.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_ACCESS_LOG",
        default_value = "off",
        value_name = "PATH|-|off"
    )]
    access_log: String,

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

    /// Share the proxy port with listeners already on it (SO_REUSEPORT) instead of refusing
    /// to start: start the new binary with this flag, then stop the old one (a zero-downtime
    /// upgrade).
    #[arg(long, global = true)]
    reuse_port: bool,

    /// How log lines are written: `text`, or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,

    /// Worker threads, at least 1 (default: one per core).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_WORKERS", value_name = "N", value_parser = worker_count)]
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
    /// Print a completion script for SHELL (e.g. `lambda-gateway completions bash >
    /// /etc/bash_completion.d/lambda-gateway`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `lambda-gateway manpage > lambda-gateway.1`.
    Manpage,
}

/// `500ms`, `30s`, `2m`, or a bare number of seconds.
/// A listen address: `HOST:PORT`, the host an IP address or a name that resolves (its first
/// address is used: `localhost:8000`).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let form =
        "expected HOST:PORT, e.g. 0.0.0.0:8000 (every interface), 127.0.0.1:8000 or localhost:8000";
    if text.parse::<u16>().is_ok() {
        return Err(format!("{form}; got a port alone ({text})"));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text:?} resolves to no address")),
        Err(e) => Err(format!("{form}; {text:?}: {e}")),
    }
}

/// Whether a missing config file can be created where it is named: its directory exists, is a
/// directory, and takes a new file (tried with a probe file, removed at once).
fn creatable(path: &std::path::Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(e) => {
            return Err(format!(
                "the file does not exist, nor does its directory {} ({e})",
                dir.display()
            ))
        }
        Ok(m) if !m.is_dir() => {
            return Err(format!(
                "the file does not exist, and {} is not a directory",
                dir.display()
            ))
        }
        Ok(_) => {}
    }
    let probe = dir.join(format!(".lambda-gateway-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "the file does not exist, and the Admin API could not create it in {} ({e})",
            dir.display()
        )),
    }
}

/// `--workers`: a count of threads, at least one.
fn worker_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("at least 1 worker is needed (leave --workers out for one per core)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a number of threads, got {text:?}")),
    }
}

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

impl Cli {
    /// Where the proxy listens: `--listen`, else every interface for a real config and
    /// loopback for the demo (a demo is not for other hosts unless asked).
    fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| match self.command {
            Some(Command::Demo) => SocketAddr::from(([127, 0, 0, 1], 8000)),
            _ => SocketAddr::from(([0, 0, 0, 0], 8000)),
        })
    }
}

/// The command line's flags that the chosen command would ignore: an error, not a surprise.
fn flags_that_do_not_apply(cli: &Cli, matches: &clap::ArgMatches) -> Option<String> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    match &cli.command {
        Some(Command::Demo) if given("config") => Some(
            "--config does not apply to `demo`, which serves its own example; to serve the \
             file, run without `demo`"
                .into(),
        ),
        Some(Command::Check { .. }) if given("config") => {
            Some("--config does not apply to `check`: name the file to check after `check`".into())
        }
        Some(Command::Check { .. } | Command::Completions { .. } | Command::Manpage)
            if given("tls_listen") =>
        {
            Some("--tls-listen, --tls-cert and --tls-key apply to serving only".into())
        }
        _ => None,
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    lambda_gateway::logging::init(cli.log_format);
    if let Some(problem) = flags_that_do_not_apply(&cli, &matches) {
        eprintln!("error: {problem}");
        return ExitCode::from(2);
    }
    let admin_addr = match cli.admin_listen.as_str() {
        "off" => None,
        text => match listen_address(text) {
            Ok(a) => Some(a),
            Err(why) => {
                eprintln!("error: --admin-listen: {why}, or `off`");
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
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "lambda-gateway",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Manpage) => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // `lambda-gateway manpage | head` closed the pipe: nothing went wrong.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => match &cli.config {
            Some(url) if lambda_gateway::fleet::url::is_etcd(&url.to_string_lossy()) => {
                serve_fleet(&cli, &url.to_string_lossy(), admin_addr, token)
            }
            Some(path) if !path.exists() && admin_addr.is_some() => {
                // Only a file the first Admin API change can create: a wrong path must not start a
                // gateway that serves nothing and fails every change.
                if let Err(why) = creatable(path) {
                    eprintln!("error: --config {}: {why}", path.display());
                    return ExitCode::FAILURE;
                }
                log::info!("{} does not exist: starting with an empty config; the Admin API creates it on the first change", path.display());
                let file = ConfigFile {
                    path: path.clone(),
                    on_disk: None,
                };
                serve(
                    &cli,
                    config::Config::default(),
                    Some(file),
                    admin_addr,
                    token,
                    None,
                )
            }
            Some(path) => match config::load_file_with_digest(path) {
                Ok((cfg, digest)) => {
                    let file = ConfigFile {
                        path: path.clone(),
                        on_disk: Some(digest),
                    };
                    serve(&cli, cfg, Some(file), admin_addr, token, None)
                }
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

/// The environment as the gateway would use it, and every problem with it (variables set to
/// something unusable, a CA bundle that cannot be read). Given the config, it also asks the
/// instance metadata service for the region when a plugin needs one and nothing else names it.
fn environment(
    cfg: Option<&config::Config>,
) -> (
    Environment,
    Option<Arc<rustls::ClientConfig>>,
    config::ConfigErrors,
) {
    let (mut env, mut errors) = Environment::from_process();
    let tls = match lambda_gateway::upstream::tls::client_config(
        lambda_gateway::trust::ca_bundle_from_env().as_deref(),
    ) {
        Ok(tls) => Some(tls),
        Err(e) => {
            errors.0.push(config::ConfigError::new("AWS_CA_BUNDLE", e));
            None
        }
    };
    if let Some(tls) = &tls {
        env.hub = Arc::new(lambda_gateway::credentials::Hub::fetching(tls.clone()));
        let needs_region = cfg.is_some_and(|cfg| {
            cfg.plugins.iter().any(|p| match &p.config {
                config::model::PluginConfig::AwsLambda(c) => c.aws_region.is_none(),
                _ => false,
            })
        });
        if env.region.is_none() && needs_region {
            // The last place the SDKs look for a region: the instance's placement.
            env.region = lambda_gateway::credentials::metadata::region_of_instance(
                env.chain.as_ref(),
                tls.clone(),
            );
        }
    }
    (env, tls, errors)
}

/// How long `check` waits for each credential provider's first answer (STS's own timeout
/// and a little more).
const CHECK_CREDENTIALS_WITHIN: Duration = Duration::from_secs(12);

fn check(file: &std::path::Path) -> ExitCode {
    // The report below is the output: what the threads it starts would log (a credential
    // provider failing, retried) it says itself, once.
    log::set_max_level(log::LevelFilter::Error);
    let loaded = config::load_file(file);
    let (env, _, env_errors) = environment(loaded.as_ref().ok());
    let mut errors = match loaded {
        Ok(cfg) if env_errors.0.is_empty() => {
            let (snapshot, warnings) = Snapshot::build(cfg.clone(), &env);
            for w in &warnings {
                println!("warning: {w}");
            }
            for w in snapshot.unobtainable_credentials(CHECK_CREDENTIALS_WITHIN) {
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
            return ExitCode::SUCCESS;
        }
        Ok(_) => Vec::new(),
        Err(errors) => errors.0,
    };
    errors.extend(env_errors.0);
    for e in &errors {
        println!("{e}");
    }
    eprintln!("{}: {} error(s)", file.display(), errors.len());
    ExitCode::FAILURE
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
struct ConfigFile {
    path: PathBuf,
    on_disk: Option<config::FileDigest>,
}

/// A fleet's configuration: the started etcd thread and the revision served first.
struct FleetStart {
    starter: lambda_gateway::fleet::etcd::Starter,
    revision: i64,
}

/// Serves the configuration in etcd at `url`.
fn serve_fleet(
    cli: &Cli,
    url: &str,
    admin_addr: Option<SocketAddr>,
    token: Option<String>,
) -> ExitCode {
    use lambda_gateway::fleet::etcd::{self, EtcdOptions, EtcdTls};
    let location = match lambda_gateway::fleet::url::EtcdLocation::parse(url) {
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

fn serve(
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
    let limits = Limits {
        client_timeout: cli.client_timeout,
        keepalive_timeout: cli.keepalive_timeout,
        ..Limits::default()
    };
    let published = Arc::new(ArcSwap::from_pointee(snapshot));
    let https = match certificate {
        Some((files, certificate)) => {
            let config = match lambda_gateway::https::server_config(
                certificate.clone(),
                published.clone(),
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
    let metrics = Arc::new(lambda_gateway::metrics::Registry::default());
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
    let access_log = match lambda_gateway::access_log::AccessLog::open(&cli.access_log) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> (Cli, clap::ArgMatches) {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .expect("valid command line");
        (Cli::from_arg_matches(&matches).expect("cli"), matches)
    }

    #[test]
    fn the_demo_listens_on_loopback_unless_told() {
        let listen = |args: &[&str]| parsed(args).0.listen().to_string();
        assert_eq!(listen(&["lambda-gateway", "demo"]), "127.0.0.1:8000");
        assert_eq!(
            listen(&["lambda-gateway", "--config", "k.yml"]),
            "0.0.0.0:8000"
        );
        assert_eq!(
            listen(&["lambda-gateway", "demo", "--listen", "0.0.0.0:9000"]),
            "0.0.0.0:9000"
        );
    }

    #[test]
    fn flags_a_command_would_ignore_are_refused() {
        let problem = |args: &[&str]| {
            let (cli, matches) = parsed(args);
            flags_that_do_not_apply(&cli, &matches)
        };
        assert_eq!(
            problem(&["lambda-gateway", "demo", "--config", "x.yml"]).as_deref(),
            Some(
                "--config does not apply to `demo`, which serves its own example; to serve the \
                 file, run without `demo`"
            )
        );
        assert!(problem(&["lambda-gateway", "check", "x.yml", "--config", "y.yml"]).is_some());
        assert_eq!(problem(&["lambda-gateway", "demo", "--workers", "1"]), None);
        assert_eq!(problem(&["lambda-gateway", "--config", "x.yml"]), None);
    }
}
