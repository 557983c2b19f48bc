//! Test support, by concern: [`lambda`] (a mock Lambda over TLS that verifies every signature
//! independently with [`sigv4`], aws-sigv4's own full `sign()`), [`gateway`] (the process
//! runner), [`client`] (a raw HTTP/1.1 client), and the counterparts the tests start (`aws`,
//! `etcd`, `redis`, `python`), with `skip` for what cannot run here.
#![allow(dead_code)]

pub mod aws;
pub mod client;
pub mod etcd;
pub mod gateway;
pub mod lambda;
pub mod pki;
pub mod python;
pub mod redis;
pub mod sigv4;
pub mod skip;
pub mod streams;

pub use client::*;
pub use gateway::*;
pub use lambda::*;
pub use sigv4::{percent_decode, verify_sigv4};

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Credentials the mock knows (access key → secret).
pub const ACCESS_KEY: &str = "AKIDTESTEXAMPLE";
/// A secret with `+`, `/` and `=` in it, as real ones have.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE=KEY";
/// The Admin API guide's credentials: `+`, `/` and `=` in both, as the seed's curl calls have.
pub const SEED_ACCESS_KEY: &str = "AKIA+SEED/KEY=";
/// See [`SEED_ACCESS_KEY`].
pub const SEED_SECRET_KEY: &str = "seed+Secret/Key==";
/// Environment credentials used by some tests.
pub const ENV_ACCESS_KEY: &str = "ASIAENVEXAMPLE";
/// See [`ENV_ACCESS_KEY`].
pub const ENV_SECRET_KEY: &str = "envSecret/With+Symbols=";
/// See [`ENV_ACCESS_KEY`].
pub const ENV_SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLETOKEN==";

/// A temporary directory removed on drop.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// A new empty directory.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "lambda-gateway-test-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port nothing listens on now (for servers a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Raises this process's open-file limit to its hard limit (a gateway started after inherits
/// it): for tests holding thousands of connections.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
}

/// A process's resident memory (`VmRSS`), KiB; 0 if it cannot be read.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether `program --version` runs; if not, the test is skipped, visibly (see [`skip`]).
pub fn installed(program: &str, debian_packages: &str) -> bool {
    skip::may_run(program, skip::runs(program, "--version"), debian_packages)
}

/// The JSON lines of a file another process writes (an access log): waits up to 5 s for `n`
/// of them, then gives what is there.
pub fn json_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if parsed.len() >= n || Instant::now() > deadline {
            return parsed;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
