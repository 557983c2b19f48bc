//! The command line's flags and commands (clap), and the checks clap cannot make.

use crate::logging::LogFormat;
use clap::parser::ValueSource;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
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
pub(super) struct Cli {
    /// Kong declarative config file (YAML or JSON) to serve, or a fleet's configuration in
    /// etcd: `etcd://[user:password@]host:port[,host:port…]/prefix` (watched; Admin API changes
    /// are written there).
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_CONFIG",
        value_name = "FILE|etcd://…"
    )]
    pub config: Option<PathBuf>,

    /// With --config etcd://: the CA bundle etcd's certificates are checked against (the
    /// connection is then TLS).
    #[arg(long, global = true, env = "ETCD_CACERT", value_name = "FILE")]
    pub etcd_cacert: Option<PathBuf>,

    /// With --config etcd://: a client certificate for etcd (with --etcd-key).
    #[arg(long, global = true, env = "ETCD_CERT", value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,

    /// The private key of --etcd-cert.
    #[arg(long, global = true, env = "ETCD_KEY", value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,

    /// With --config etcd://: the local last-known-good copy, served when etcd cannot be
    /// reached at start [default: $STATE_DIRECTORY/lambda-gateway.cache.yml, else
    /// ./lambda-gateway.cache.yml].
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_CONFIG_CACHE",
        value_name = "FILE"
    )]
    pub config_cache: Option<PathBuf>,

    /// Proxy listen address [default: 0.0.0.0:8000; for `demo`, 127.0.0.1:8000].
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_LISTEN",
        value_name = "ADDR",
        value_parser = listen_address
    )]
    pub listen: Option<SocketAddr>,

    /// Also serve HTTPS on this address (with --tls-cert and --tls-key).
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_TLS_LISTEN",
        value_name = "ADDR",
        value_parser = listen_address,
        requires_all = ["tls_cert", "tls_key"]
    )]
    pub tls_listen: Option<SocketAddr>,

    /// PEM certificate chain (leaf first) HTTPS clients are shown; reloaded on SIGHUP.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_listen"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert; reloaded with it.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_listen"
    )]
    pub tls_key: Option<PathBuf>,

    /// Access log: one JSON line per request to this file (appended; reopened on SIGUSR1),
    /// `-` for stdout, or `off`.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_ACCESS_LOG",
        default_value = "off",
        value_name = "PATH|-|off"
    )]
    pub access_log: String,

    /// Admin API listen address, or `off`.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_ADMIN_LISTEN",
        default_value = "127.0.0.1:8001",
        value_name = "ADDR|off"
    )]
    pub admin_listen: String,

    /// Token every Admin API request must present (`Kong-Admin-Token: <token>` or
    /// `Authorization: Bearer <token>`); required when --admin-listen is not a loopback address.
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// HTTP/2 for clients: ALPN `h2` on --tls-listen and h2c with prior knowledge on --listen
    /// (`off`: HTTP/1.1 only, an h2c preface is answered 400).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_HTTP2", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set, value_name = "on|off")]
    pub http2: bool,

    /// Time a client has to send a request head, and then its body (e.g. 30s, 500ms).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_CLIENT_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub client_timeout: Duration,

    /// How long an idle keep-alive client connection is kept open (e.g. 60s).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_KEEPALIVE_TIMEOUT", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub keepalive_timeout: Duration,

    /// Most bytes of large request bodies, payloads and Lambda answers held at once, node-wide
    /// (e.g. 512M, 2G); past it, requests wait (unread) for room, then get 503. Default: a
    /// quarter of the memory (the cgroup's limit, else the machine's).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_MAX_BUFFERED", value_parser = byte_size, value_name = "SIZE")]
    pub max_buffered: Option<usize>,

    /// The proxy-cache plugin's node-wide cache: most bytes of stored answers (headers and
    /// bodies) held at once, for every worker and every proxy-cache plugin (e.g. 64M, 1G);
    /// past it, the answers read least recently are evicted.
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_PROXY_CACHE_MEMORY", default_value = "64M", value_parser = byte_size, value_name = "SIZE")]
    pub proxy_cache_memory: usize,

    /// Slowest a request body may arrive, bytes per second averaged once 10 s have passed
    /// (and no 10 s without a byte); 0: only --client-timeout.
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_MIN_BODY_RATE", default_value_t = crate::http::limits::MIN_BODY_RATE, value_name = "BYTES")]
    pub min_body_rate: u64,

    /// Share the proxy port with listeners already on it (SO_REUSEPORT) instead of refusing
    /// to start: start the new binary with this flag, then stop the old one (a zero-downtime
    /// upgrade).
    #[arg(long, global = true)]
    pub reuse_port: bool,

    /// How log lines are written: `text`, or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "LAMBDA_GATEWAY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// Worker threads, at least 1 (default: one per core).
    #[arg(long, global = true, env = "LAMBDA_GATEWAY_WORKERS", value_name = "N", value_parser = worker_count)]
    pub workers: Option<usize>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
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

/// `on` or `off`.
fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("say `on` or `off`".into()),
    }
}

/// A listen address: `HOST:PORT`, the host an IP address or a name that resolves (its first
/// address is used: `localhost:8000`).
pub(super) fn listen_address(text: &str) -> Result<SocketAddr, String> {
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
pub(super) fn creatable(path: &std::path::Path) -> Result<(), String> {
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

/// `512M`, `2G`, `65536`, `64K`: bytes, with an optional binary unit.
fn byte_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (number, shift) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 10),
        Some((i, 'M' | 'm')) => (&t[..i], 20),
        Some((i, 'G' | 'g')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: usize = number
        .parse()
        .map_err(|_| format!("expected a size like 512M, 2G or 65536, got {s:?}"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n && *v >= 1 << 20)
        .ok_or_else(|| format!("{s:?} is out of range (at least 1M)"))
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

impl Cli {
    /// Where the proxy listens: `--listen`, else every interface for a real config and
    /// loopback for the demo (a demo is not for other hosts unless asked).
    pub fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| match self.command {
            Some(Command::Demo) => SocketAddr::from(([127, 0, 0, 1], 8000)),
            _ => SocketAddr::from(([0, 0, 0, 0], 8000)),
        })
    }
}

/// The command line's flags that the chosen command would ignore: an error, not a surprise.
pub(super) fn flags_that_do_not_apply(cli: &Cli, matches: &clap::ArgMatches) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

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
    fn sizes_take_binary_units() {
        assert_eq!(byte_size("512M"), Ok(512 << 20));
        assert_eq!(byte_size("2g"), Ok(2 << 30));
        assert_eq!(byte_size("1048576"), Ok(1 << 20));
        assert!(byte_size("64K").is_err());
        assert!(byte_size("lots").is_err());
        assert!(byte_size("99999999999999999999G").is_err());
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
