//! Running the gateway binary: its options, environment, logs, and stopping it.

use super::client::{Client, Response};
use super::lambda::MockLambda;
use super::TempDir;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which monoio driver the gateway runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// io_uring (the default where available).
    IoUring,
    /// epoll, forced with MONOIO_FORCE_LEGACY_DRIVER=1.
    Epoll,
}

/// Removes the AWS variables the gateway reads and points the shared config files nowhere, so
/// that a test sees only what it sets (not the machine's `~/.aws`).
pub fn clear_aws_env(cmd: &mut Command) {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_LAMBDA",
        "AWS_CA_BUNDLE",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "AWS_ENDPOINT_URL_STS",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    // The chain ends at the instance metadata service: never let a test reach for it.
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.env(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws/credentials",
    )
    .env("AWS_CONFIG_FILE", "/nonexistent/aws/config");
}

/// The address logged right after `marker` in a log line (`… listening on 127.0.0.1:8000 …`).
pub fn addr_after(line: &str, marker: &str) -> Option<SocketAddr> {
    line.split(marker)
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|a| a.parse::<SocketAddr>().ok())
}

/// Both drivers: every end-to-end behaviour runs on each.
pub const DRIVERS: [Driver; 2] = [Driver::IoUring, Driver::Epoll];

/// A running gateway process.
pub struct Gateway {
    /// Its proxy address.
    pub addr: SocketAddr,
    /// Its Admin API address, when started with one.
    pub admin: Option<SocketAddr>,
    /// The config file it serves.
    pub config_path: PathBuf,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: Option<TempDir>,
}

/// How to start a gateway.
pub struct GatewayOptions<'a> {
    /// The config file's contents.
    pub config: &'a str,
    /// Driver to force.
    pub driver: Driver,
    /// Extra environment variables.
    pub env: Vec<(&'a str, String)>,
    /// Extra arguments.
    pub args: Vec<String>,
}

/// How to start a gateway with its Admin API.
pub struct AdminOptions<'a> {
    /// Config file to serve (need not exist); it is not removed afterwards.
    pub config_path: PathBuf,
    /// Driver to force.
    pub driver: Driver,
    /// Extra environment variables.
    pub env: Vec<(&'a str, String)>,
    /// Extra arguments (e.g. `--admin-token`).
    pub args: Vec<String>,
}

impl Gateway {
    /// Starts `lambda-gateway --config <file>` trusting `mock`'s CA, and waits until it listens.
    pub fn start(mock: &MockLambda, config: &str, driver: Driver) -> Gateway {
        Gateway::start_args(mock, config, driver, &[])
    }

    /// Like [`Gateway::start`], with command-line arguments.
    pub fn start_args(mock: &MockLambda, config: &str, driver: Driver, args: &[&str]) -> Gateway {
        Gateway::start_with(
            mock,
            GatewayOptions {
                config,
                driver,
                env: vec![],
                args: args.iter().map(|a| a.to_string()).collect(),
            },
        )
    }

    /// Like [`Gateway::start`] with options.
    pub fn start_with(mock: &MockLambda, opts: GatewayOptions<'_>) -> Gateway {
        let dir = TempDir::new("gw");
        let config_path = dir.path.join("kong.yml");
        std::fs::write(&config_path, opts.config).expect("write config");
        let mut args = vec!["--admin-listen".to_string(), "off".to_string()];
        args.extend(opts.args);
        Gateway::launch(mock, config_path, opts.driver, opts.env, args, Some(dir))
    }

    /// Starts a gateway with its Admin API serving `config`, written to `dir/kong.yml`.
    pub fn start_admin_with(
        mock: &MockLambda,
        config: &str,
        driver: Driver,
        dir: &TempDir,
    ) -> Gateway {
        let path = dir.path.join("kong.yml");
        std::fs::write(&path, config).expect("write the config");
        Gateway::start_admin(
            mock,
            AdminOptions {
                config_path: path,
                driver,
                env: vec![],
                args: vec![],
            },
        )
    }

    /// Starts a gateway with its Admin API on an ephemeral loopback port.
    pub fn start_admin(mock: &MockLambda, opts: AdminOptions<'_>) -> Gateway {
        let mut args = vec!["--admin-listen".to_string(), "127.0.0.1:0".to_string()];
        args.extend(opts.args);
        Gateway::launch(mock, opts.config_path, opts.driver, opts.env, args, None)
    }

    fn launch(
        mock: &MockLambda,
        config_path: PathBuf,
        driver: Driver,
        env: Vec<(&str, String)>,
        args: Vec<String>,
        dir: Option<TempDir>,
    ) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
        cmd.arg("--config").arg(&config_path);
        if !args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if !args.iter().any(|a| a == "--workers") {
            cmd.args(["--workers", "2"]);
        }
        cmd.args(&args);
        clear_aws_env(&mut cmd);
        for var in ["MONOIO_FORCE_LEGACY_DRIVER", "LAMBDA_GATEWAY_ADMIN_TOKEN"] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_CA_BUNDLE", &mock.ca_file)
            .env("LAMBDA_GATEWAY_LOG", "debug");
        if driver == Driver::Epoll {
            cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
        }
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn gateway");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (admin_tx, admin_rx) = std::sync::mpsc::channel();
        let l = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut admin_tx = Some(admin_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr_after = |marker: &str| addr_after(&line, marker);
                if let Some(a) = addr_after("admin API listening on ") {
                    if let Some(t) = admin_tx.take() {
                        let _ = t.send(a);
                    }
                } else if let Some(a) = addr_after("] listening on ") {
                    if let Some(t) = tx.take() {
                        let _ = t.send(a);
                    }
                }
                l.lock().expect("lock").push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gateway did not start; logs:\n{}",
                    logs.lock().expect("lock").join("\n")
                );
            }
        };
        let wants_admin = !args
            .windows(2)
            .any(|w| w[0] == "--admin-listen" && w[1] == "off");
        let admin = if wants_admin {
            admin_rx.recv_timeout(Duration::from_secs(5)).ok()
        } else {
            None
        };
        let gw = Gateway {
            addr,
            admin,
            config_path,
            child,
            logs,
            _dir: dir,
        };
        let want = match driver {
            Driver::IoUring => "workers use io_uring",
            Driver::Epoll => "workers use the epoll driver",
        };
        // Where the kernel has no io_uring, monoio falls back to epoll and says so; the io_uring
        // runs are then epoll runs too.
        if driver == Driver::Epoll || monoio::utils::detect_uring() {
            assert!(
                gw.logs().contains(want),
                "expected {want:?} in logs:\n{}",
                gw.logs()
            );
        }
        gw
    }

    /// Everything the gateway logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("lock").join("\n")
    }

    /// True once the log contains `needle` (waits up to 5 s: stderr is read by another thread).
    pub fn logged(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Sends SIGHUP (reload the config file).
    pub fn hup(&self) {
        let _ = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An Admin API request: `method path` with `body` of `content_type`, plus extra headers.
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let addr = self.admin.expect("started with the Admin API");
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        if !content_type.is_empty() {
            raw.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        Client::connect(addr).request(raw.as_bytes())
    }

    /// `POST`/`PATCH`/`PUT` with a form body.
    pub fn admin_form(&self, method: &str, path: &str, body: &str) -> Response {
        self.admin(method, path, "application/x-www-form-urlencoded", body, &[])
    }

    /// A request with a JSON body.
    pub fn admin_json(&self, method: &str, path: &str, body: serde_json::Value) -> Response {
        self.admin(method, path, "application/json", &body.to_string(), &[])
    }

    /// A GET on the Admin API.
    pub fn admin_get(&self, path: &str) -> Response {
        self.admin("GET", path, "", "", &[])
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for exit, up to `limit`; the exit status if it exited.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A new client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a fresh connection.
    pub fn send(&self, raw: &str) -> Response {
        self.connect().request(raw.as_bytes())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway with one worker serving `cfg`.
pub fn one_worker(mock: &MockLambda, cfg: &str, driver: Driver) -> Gateway {
    Gateway::start_with(
        mock,
        GatewayOptions {
            config: cfg,
            driver,
            env: vec![],
            args: vec!["--workers".into(), "1".into()],
        },
    )
}

/// What a documented shell command (curl against Kong's Admin API at `localhost:8001`)
/// prints when run against the Admin API at `admin`.
pub fn run_documented(command: &str, admin: SocketAddr) -> String {
    let command = command.replace("localhost:8001", &admin.to_string());
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("sh runs curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
