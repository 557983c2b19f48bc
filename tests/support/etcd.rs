//! A real etcd cluster on loopback for the fleet tests: three members of Debian's
//! `etcd-server`, each killed and restarted at will (its data kept, so it rejoins).

use super::pki::TlsFiles;
use super::{free_port, TempDir};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A running cluster.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: TempDir,
    initial_cluster: String,
    /// With TLS to clients (and client certificates required).
    pub tls: Option<TlsFiles>,
}

/// Whether etcd is installed (`.ci/run` installs it); tests print why they skip otherwise.
pub fn available() -> bool {
    super::installed("etcd", "etcd-server etcd-client")
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster answers.
    pub fn start(n: usize) -> EtcdCluster {
        EtcdCluster::start_with(n, false)
    }

    /// Starts `n` members serving clients over TLS only, with client certificates required.
    pub fn start_tls(n: usize) -> EtcdCluster {
        EtcdCluster::start_with(n, true)
    }

    fn start_with(n: usize, tls: bool) -> EtcdCluster {
        let dir = TempDir::new("etcd");
        let tls =
            tls.then(|| TlsFiles::generate(&dir.path, "etcd test CA", &["127.0.0.1", "localhost"]));
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            dir,
            initial_cluster,
            tls,
        };
        for i in 0..n {
            cluster.start_member(i);
        }
        cluster.wait_healthy();
        cluster
    }

    fn start_member(&mut self, i: usize) {
        let m = &self.members[i];
        let data = self.dir.path.join(&m.name);
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let log =
            std::fs::File::create(self.dir.path.join(format!("{}.log", m.name))).expect("log file");
        let mut command = Command::new("etcd");
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(["--name", &m.name, "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "lg-test",
            ])
            // Quick elections on loopback: the member-loss tests wait less.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.members[i].child = Some(child);
    }

    /// `host:port` of every member, comma-separated (an `etcd://` URL's authority).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `etcdctl` against the cluster; its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.ctl_as(None, args)
    }

    /// `etcdctl --user <user>` against the cluster (once auth is enabled); its stdout.
    pub fn ctl_as(&self, user: Option<&str>, args: &[&str]) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoints = self
            .members
            .iter()
            .map(|m| format!("{scheme}://127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut command = Command::new("etcdctl");
        if let Some(tls) = &self.tls {
            command
                .arg("--cacert")
                .arg(&tls.ca)
                .arg("--cert")
                .arg(&tls.client_cert)
                .arg("--key")
                .arg(&tls.client_key);
        }
        let out = command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .args(["--command-timeout=3s"])
            .args(user.map(|u| format!("--user={u}")))
            .args(args)
            .output()
            .expect("etcdctl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until a write through the cluster succeeds (a leader is elected).
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ctl(&["put", "/lg-health", "ok"]).contains("OK") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the etcd cluster did not become healthy");
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts member `i` on its data (it rejoins).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.start_member(i);
    }

    /// Replaces the cluster by a new, empty one on the same ports: every member killed, its
    /// data deleted, started again (revisions begin anew, as after restoring a backup into a
    /// new cluster).
    pub fn replace_with_empty(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
            let _ = std::fs::remove_dir_all(self.dir.path.join(&self.members[i].name));
        }
        for i in 0..self.members.len() {
            self.start_member(i);
        }
        self.wait_healthy();
    }

    /// Writes each of `values` to `key` in turn (a revision each) through etcd's JSON gateway
    /// (`POST /v3/kv/put`) on one connection to the first member: far quicker than an etcdctl
    /// process per write. Plain TCP clusters only.
    pub fn put_each(&self, key: &str, values: &[String]) {
        use base64::Engine;
        let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let member = ([127, 0, 0, 1], self.members[0].client_port).into();
        let mut client = super::Client::connect(member);
        for value in values {
            let body = serde_json::json!({"key": encode(key.as_bytes()), "value": encode(value.as_bytes())})
                .to_string();
            let r = client.request(
                format!(
                    "POST /v3/kv/put HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
