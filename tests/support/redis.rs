//! A real Redis server on loopback (Debian's `redis-server`), stopped and started at will,
//! optionally also serving TLS (Debian's build has it) with its own CA, and ACL users.

use super::pki::TlsFiles;
use super::{free_port, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) Redis server on a fixed loopback port.
pub struct RedisServer {
    /// Its plain TCP port (always served, for the tests' own inline commands).
    pub port: u16,
    /// Its TLS port and certificates, when started with [`RedisServer::start_tls`].
    pub tls: Option<(u16, TlsFiles)>,
    /// ACL `user` rules given at start.
    users: Vec<String>,
    child: Option<Child>,
    _dir: Option<TempDir>,
}

/// Why a start failed.
#[derive(Debug)]
enum StartFailure {
    /// The server exited (its port was taken).
    Exited,
    /// It ran but did not answer within 10 s.
    Silent,
}
use StartFailure::{Exited, Silent};

/// Whether redis-server is installed (`.ci/run` installs it); tests print why they skip.
pub fn available() -> bool {
    super::installed("redis-server", "redis-server")
}

impl RedisServer {
    /// Starts a server with no persistence on a free port.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            tls: None,
            users: Vec::new(),
            child: None,
            _dir: None,
        };
        server.first_start();
        server
    }

    /// Starts a server that also serves TLS (no client certificate asked) with a certificate
    /// for `server_names`, and has the ACL `users` (rules as in redis.conf's `user` lines).
    pub fn start_tls(server_names: &[&str], users: &[&str]) -> RedisServer {
        let dir = TempDir::new("redis");
        let files = TlsFiles::generate(&dir.path, "redis test CA", server_names);
        let mut server = RedisServer {
            port: free_port(),
            tls: Some((free_port(), files)),
            users: users.iter().map(|u| u.to_string()).collect(),
            child: None,
            _dir: Some(dir),
        };
        server.first_start();
        server
    }

    /// Starts it for the first time: a port another test took between `free_port` and the
    /// server's bind makes it exit at once; it is then tried again on fresh ports.
    fn first_start(&mut self) {
        for _ in 0..4 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(Exited) => {
                    self.port = free_port();
                    if let Some((tls_port, _)) = &mut self.tls {
                        *tls_port = free_port();
                    }
                }
                Err(Silent) => break,
            }
        }
        self.restart();
    }

    /// (Re)starts it on its ports and waits until it answers PING.
    pub fn restart(&mut self) {
        if let Err(why) = self.spawn_and_wait() {
            panic!("redis-server did not answer ({why:?})");
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        self.stop();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        if let Some((tls_port, files)) = &self.tls {
            command
                .args(["--tls-port", &tls_port.to_string()])
                .arg("--tls-cert-file")
                .arg(&files.server_cert)
                .arg("--tls-key-file")
                .arg(&files.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&files.ca)
                .args(["--tls-auth-clients", "no"]);
        }
        for user in &self.users {
            // One argument per word: redis-server joins them into the config line.
            command.arg("--user").args(user.split_whitespace());
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.command("PING").starts_with("+PONG") {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                self.child = None;
                return Err(Exited);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Silent)
    }

    /// One inline command; the raw answer (empty if none).
    pub fn command(&self, line: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(format!("{line}\r\n").as_bytes());
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Kills it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
