//! One blocking connection to a Redis server, plain or TLS, for the exchange thread of
//! `policy: redis`.
//!
//! The redis crate encodes the commands and parses the replies; the socket is ours. Its own
//! TLS connection cannot send a server name other than the host it connects to (Kong's
//! `redis_server_name`) and trusts the system store, while this one uses the gateway's rustls
//! (ring) and its trust (webpki roots plus `AWS_CA_BUNDLE`, `crate::trust`), and leaves the
//! certificate unchecked when `redis_ssl_verify` is false, Kong's default.

use redis::{RedisError, RedisResult, Value};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A Redis server and how to log in, from the plugin's `redis_*` fields.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisTarget {
    /// `redis_host`.
    pub host: String,
    /// `redis_port`.
    pub port: u16,
    /// `redis_username` (Redis 6 ACLs).
    pub username: Option<String>,
    /// `redis_password`.
    pub password: Option<String>,
    /// `redis_database`.
    pub database: i64,
    /// `redis_timeout`: bound on connecting and on each round trip.
    pub timeout: Duration,
    /// How often counts are exchanged (`sync_rate`).
    pub interval: Duration,
    /// `redis_ssl` and how the server is checked; `None`: plain TCP.
    pub tls: Option<RedisTls>,
}

impl std::fmt::Debug for RedisTarget {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tls = if self.tls.is_some() { " (TLS)" } else { "" };
        write!(
            f,
            "Redis {}:{}{tls} db {}",
            self.host, self.port, self.database
        )
    }
}

/// `redis_ssl`: TLS to Redis, and how the server is checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RedisTls {
    /// `redis_ssl_verify`: check the certificate against the gateway's trust and the name.
    pub verify: bool,
    /// `redis_server_name`, else the host: sent as SNI, and the name the certificate must
    /// carry when verified. Checked to be a DNS name or an IP address when the config loads.
    pub server_name: String,
}

/// The rustls config for `tls`: built once per exchange thread.
pub fn tls_config(tls: &RedisTls) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if tls.verify {
        let roots = crate::trust::roots(crate::trust::ca_bundle_from_env().as_deref())?;
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::trust::AnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The rustls config for `target`'s TLS, if it asks for TLS; an error (only an unreadable
/// `AWS_CA_BUNDLE`, which the gateway refuses at start) is logged, and the exchanges then fail.
pub fn tls_for(target: &RedisTarget) -> Option<Arc<rustls::ClientConfig>> {
    match target.tls.as_ref().map(tls_config) {
        Some(Err(e)) => {
            log::error!("rate-limiting: TLS to {target:?} cannot be set up: {e}");
            None
        }
        Some(Ok(config)) => Some(config),
        None => None,
    }
}

/// The exchange `registry` keeps for `target`: made by `make` and run by `run` on a thread of
/// its own (`thread`) on first use, then shared: one per distinct server and login. False in
/// the pair when its thread could not start.
pub fn exchange_for<T: Send + Sync + 'static>(
    registry: &'static OnceLock<Mutex<HashMap<RedisTarget, Arc<T>>>>,
    target: &RedisTarget,
    thread: &str,
    make: impl FnOnce() -> T,
    run: fn(&T),
) -> (Arc<T>, bool) {
    let mut all = registry
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(exchange) = all.get(target) {
        return (exchange.clone(), true);
    }
    let exchange = Arc::new(make());
    let running = exchange.clone();
    let spawned = std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || run(&running));
    if let Err(e) = &spawned {
        log::error!("cannot start the Redis exchange thread: {e}; counting locally");
    }
    all.insert(target.clone(), exchange.clone());
    (exchange, spawned.is_ok())
}

/// The socket, with TLS or without.
enum Transport {
    Plain(TcpStream),
    // Boxed: rustls' connection state is large.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// A connection, logged in and on its database.
pub struct RedisLink {
    transport: Transport,
    /// Keeps bytes read past one reply for the next.
    parser: redis::Parser,
}

impl RedisLink {
    /// Connects (every address of the host in turn, each within `redis_timeout`), does the TLS
    /// handshake when `tls` is given, then `AUTH` and `SELECT` as the target asks.
    pub fn open(
        target: &RedisTarget,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> RedisResult<RedisLink> {
        let mut last = None;
        let mut socket = None;
        for addr in (target.host.as_str(), target.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, target.timeout) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let socket = socket.ok_or_else(|| {
            last.unwrap_or_else(|| std::io::Error::other("the host has no address"))
        })?;
        // Every read and write, the TLS handshake's included, is bounded by `redis_timeout`.
        socket.set_read_timeout(Some(target.timeout))?;
        socket.set_write_timeout(Some(target.timeout))?;
        socket.set_nodelay(true)?;
        let transport = match (&target.tls, tls) {
            (Some(options), Some(config)) => {
                let name = ServerName::try_from(options.server_name.clone())
                    .map_err(|e| std::io::Error::other(format!("redis_server_name: {e}")))?;
                let session = ClientConnection::new(config.clone(), name)
                    .map_err(|e| std::io::Error::other(format!("TLS: {e}")))?;
                let mut stream = StreamOwned::new(session, socket);
                // The handshake now, so that its failure is told as such; within one
                // `redis_timeout` in all, not one per read.
                let deadline = Instant::now() + target.timeout;
                while stream.conn.is_handshaking() {
                    if Instant::now() >= deadline {
                        return Err(std::io::Error::other("TLS handshake: timed out").into());
                    }
                    stream.conn.complete_io(&mut stream.sock).map_err(|e| {
                        std::io::Error::other(format!("TLS handshake: {}", explained(e)))
                    })?;
                }
                Transport::Tls(Box::new(stream))
            }
            (Some(_), None) => {
                return Err(std::io::Error::other("no TLS configuration for Redis").into())
            }
            (None, _) => Transport::Plain(socket),
        };
        let mut link = RedisLink {
            transport,
            parser: redis::Parser::new(),
        };
        let mut login = redis::pipe();
        if let Some(password) = &target.password {
            let auth = login.cmd("AUTH");
            if let Some(user) = &target.username {
                auth.arg(user);
            }
            auth.arg(password);
        }
        if target.database != 0 {
            login.cmd("SELECT").arg(target.database);
        }
        if !login.is_empty() {
            link.pipeline(&login)?;
        }
        Ok(link)
    }

    /// Sends every command of `pipe` in one write and reads one reply per command; the first
    /// error reply fails the whole call.
    pub fn pipeline(&mut self, pipe: &redis::Pipeline) -> RedisResult<Vec<Value>> {
        self.transport
            .write_all(&pipe.get_packed_pipeline())
            .map_err(explained)?;
        self.transport.flush().map_err(explained)?;
        let mut replies = Vec::with_capacity(pipe.len());
        let mut failed: Option<RedisError> = None;
        // Every reply is read even after an error, so none is left for the next call.
        for _ in 0..pipe.len() {
            let reply = self.parser.parse_value(&mut self.transport).map_err(|e| {
                if e.is_timeout() {
                    explained(std::io::ErrorKind::TimedOut.into()).into()
                } else {
                    e
                }
            })?;
            match reply.extract_error() {
                Ok(v) => replies.push(v),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(replies),
        }
    }
}

/// A socket timeout reads as EAGAIN ("Resource temporarily unavailable"): says what it means.
fn explained(e: std::io::Error) -> std::io::Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer within redis_timeout",
        ),
        _ => e,
    }
}
