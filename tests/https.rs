//! HTTPS for clients (`--tls-listen`, `--tls-cert`, `--tls-key`): real clients (curl, Python's
//! `ssl`, rustls) against certificates made at test time, TLS 1.2 and 1.3, ALPN, session
//! resumption, a certificate swapped by SIGHUP under an open connection, certificates refused
//! at start, and hostile handshakes (plain HTTP, garbage, stalled ClientHellos, a
//! renegotiation request). Every scenario on io_uring and on epoll.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// A CA and a server certificate for `localhost` and 127.0.0.1 it signed.
struct Pki {
    dir: TempDir,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("https");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lambda-gateway HTTPS test CA");
        let ca = params.self_signed(&key).expect("CA");
        std::fs::write(dir.path.join("ca.pem"), ca.pem()).expect("write");
        Pki {
            dir,
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path.join("ca.pem")
    }

    /// Writes a leaf (and its key) named `tag` with common name `cn`, valid from `from` to
    /// `until` (years), for `localhost` and 127.0.0.1; returns (cert file, key file, leaf DER).
    fn leaf(&self, tag: &str, cn: &str, from: i32, until: i32) -> (PathBuf, PathBuf, Vec<u8>) {
        self.leaf_for(tag, cn, &["localhost"], from, until)
    }

    /// [`Pki::leaf`] for other names (and 127.0.0.1).
    fn leaf_for(
        &self,
        tag: &str,
        cn: &str,
        names: &[&str],
        from: i32,
        until: i32,
    ) -> (PathBuf, PathBuf, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let leaf = params.signed_by(&key, &self.issuer).expect("leaf");
        let (cert, key_file) = (
            self.dir.path.join(format!("{tag}.pem")),
            self.dir.path.join(format!("{tag}.key")),
        );
        // The chain as servers are given it: leaf, then the CA.
        std::fs::write(&cert, format!("{}{}", leaf.pem(), self.ca_pem)).expect("write");
        std::fs::write(&key_file, key.serialize_pem()).expect("write");
        (cert, key_file, leaf.der().to_vec())
    }
}

fn https_gateway(
    mock: &MockLambda,
    pki: &Pki,
    driver: Driver,
    cert: &str,
) -> (Gateway, SocketAddr) {
    let cfg = config_for(mock, "/x", "echo", "");
    let gw = Gateway::start_with(
        mock,
        GatewayOptions {
            config: &cfg,
            driver,
            env: vec![],
            args: vec![
                "--tls-listen".into(),
                "127.0.0.1:0".into(),
                "--tls-cert".into(),
                pki.dir
                    .path
                    .join(format!("{cert}.pem"))
                    .display()
                    .to_string(),
                "--tls-key".into(),
                pki.dir
                    .path
                    .join(format!("{cert}.key"))
                    .display()
                    .to_string(),
                "--client-timeout".into(),
                "2s".into(),
            ],
        },
    );
    let addr = gw
        .logs()
        .lines()
        .find_map(|l| addr_after(l, "HTTPS listening on "))
        .unwrap_or_else(|| panic!("no HTTPS address in the log:\n{}", gw.logs()));
    (gw, addr)
}

/// A rustls client connection to `addr` trusting `ca_pem`, for `name`.
fn tls_client(
    addr: SocketAddr,
    ca_pem: &str,
    name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA")).expect("add");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::try_from(name.to_string()).expect("name"),
    )
    .expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    rustls::StreamOwned::new(conn, tcp)
}

/// Sends a GET for `target` and reads the response: (status, body).
fn exchange<S: Read + Write>(stream: &mut S, target: &str) -> (u16, String) {
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().expect("length"))
                })
                .expect("Content-Length");
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).expect("read");
                assert!(n > 0, "closed inside a body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head[9..12].parse().expect("status");
            return (
                status,
                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into(),
            );
        }
    }
}

#[test]
fn curl_and_python_speak_https_to_the_gateway() {
    let pki = Pki::new();
    pki.leaf("server", "server", 2020, 2090);
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let (gw, addr) = https_gateway(&mock, &pki, driver, "server");
        // curl offers h2 and http/1.1 (ALPN): the gateway chooses h2; asked for 1.1, 1.1.
        for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
            if !installed("curl", "curl") {
                break;
            }
            let out = std::process::Command::new("curl")
                .args(["-sS", flag, "--cacert"])
                .arg(pki.ca_file())
                .args(["-w", "\n%{http_code} %{http_version}"])
                .arg(format!("https://localhost:{}/x?via=curl", addr.port()))
                .output()
                .expect("curl");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{{\"via\":\"curl\"}}\n200 {version}"),
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                gw.logs()
            );
        }
        // Python's ssl, TLS 1.2 then 1.3, ALPN, and a resumed session.
        let script = format!(
            r#"
import socket, ssl, sys
def get(ctx, session=None):
    with socket.create_connection(("127.0.0.1", {port})) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(b"GET /x?via=python HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(s.version(), s.selected_alpn_protocol(), s.session_reused, data.split(b"\r\n")[0].decode(), data.split(b"\r\n\r\n", 1)[1].decode())
            return s.session
for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    ctx.minimum_version = ctx.maximum_version = v
    ctx.set_alpn_protocols(["http/1.1"])
    first = get(ctx)
    get(ctx, first)
"#,
            port = addr.port()
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .arg(pki.ca_file())
            .output()
            .expect("python3");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "TLSv1.2 http/1.1 False HTTP/1.1 200 OK {\"via\":\"python\"}\n\
             TLSv1.2 http/1.1 True HTTP/1.1 200 OK {\"via\":\"python\"}\n\
             TLSv1.3 http/1.1 False HTTP/1.1 200 OK {\"via\":\"python\"}\n\
             TLSv1.3 http/1.1 True HTTP/1.1 200 OK {\"via\":\"python\"}\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Plain HTTP keeps working next to it.
        assert_eq!(gw.send(&get("/x?via=plain")).status, 200);
    }
}

#[test]
fn sighup_swaps_the_certificate_under_an_open_connection() {
    let pki = Pki::new();
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let (cert, _, first_der) = pki.leaf("server", "first", 2020, 2090);
        let (gw, addr) = https_gateway(&mock, &pki, driver, "server");
        let tls12_13 = rustls::DEFAULT_VERSIONS;
        let mut open = tls_client(addr, &pki.ca_pem, "localhost", tls12_13);
        assert_eq!(exchange(&mut open, "/x?n=1"), (200, r#"{"n":"1"}"#.into()));
        let leaf = |s: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>| {
            s.conn.peer_certificates().expect("certs")[0].to_vec()
        };
        assert_eq!(leaf(&open), first_der);
        let (_, _, second_der) = pki.leaf("server", "second", 2020, 2090);
        gw.hup();
        assert!(
            gw.logged("HTTPS certificate reloaded from"),
            "{}",
            gw.logs()
        );
        // The open connection goes on; a new one is shown the new certificate.
        assert_eq!(exchange(&mut open, "/x?n=2"), (200, r#"{"n":"2"}"#.into()));
        let mut fresh = tls_client(addr, &pki.ca_pem, "localhost", tls12_13);
        assert_eq!(exchange(&mut fresh, "/x?n=3"), (200, r#"{"n":"3"}"#.into()));
        assert_eq!(leaf(&fresh), second_der);
        // A broken file on the next SIGHUP: logged, the certificate stays.
        std::fs::write(&cert, "not a certificate").expect("write");
        gw.hup();
        assert!(gw.logged("HTTPS certificate not reloaded, the previous one stays"));
        let mut after = tls_client(addr, &pki.ca_pem, "localhost", tls12_13);
        assert_eq!(exchange(&mut after, "/x?n=4").0, 200);
        assert_eq!(leaf(&after), second_der);
        assert_eq!(exchange(&mut open, "/x?n=5").0, 200);
    }
}

#[test]
fn unusable_certificates_are_refused_at_start() {
    let pki = Pki::new();
    pki.leaf("expired", "expired", 2001, 2002);
    pki.leaf("good", "good", 2020, 2090);
    let run = |cert: &str, key: &str| {
        let file = pki.dir.path.join("kong.yml");
        std::fs::write(&file, "_format_version: \"3.0\"\n").expect("write");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
        cmd.args([
            "--admin-listen",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&file)
        .arg("--tls-cert")
        .arg(pki.dir.path.join(cert))
        .arg("--tls-key")
        .arg(pki.dir.path.join(key));
        clear_aws_env(&mut cmd);
        let out = cmd.output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run("expired.pem", "expired.key");
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "error: --tls-cert: {} with {}: the certificate expired at 20020101T000000Z",
            pki.dir.path.join("expired.pem").display(),
            pki.dir.path.join("expired.key").display()
        )),
        "{err}"
    );
    let (code, err) = run("good.pem", "expired.key");
    assert_eq!(code, Some(1));
    assert!(err.contains("does not belong to the certificate"), "{err}");
    let (code, err) = run("missing.pem", "good.key");
    assert_eq!(code, Some(1));
    assert!(err.contains("missing.pem"), "{err}");
    // Flags that need each other.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"))
        .args(["--tls-listen", "127.0.0.1:0", "demo"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
}

#[test]
fn hostile_handshakes_cost_their_own_connection_only() {
    let pki = Pki::new();
    pki.leaf("server", "server", 2020, 2090);
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let (gw, addr) = https_gateway(&mock, &pki, driver, "server");
        // Plain HTTP to the HTTPS port: the connection is closed, nothing else happens.
        let mut plain = TcpStream::connect(addr).expect("connect");
        plain
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        plain
            .write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .expect("write");
        let mut rest = Vec::new();
        let _ = plain.read_to_end(&mut rest);
        assert!(!String::from_utf8_lossy(&rest).contains("200"), "{rest:?}");
        // A flood: 300 connections stalled inside a handshake (half a ClientHello each) and
        // 100 that send garbage; a real client is served at once meanwhile.
        let hello_start = [
            0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        let mut stalled: Vec<TcpStream> = (0..300)
            .map(|_| {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.write_all(&hello_start).expect("write");
                s
            })
            .collect();
        for _ in 0..100 {
            let mut s = TcpStream::connect(addr).expect("connect");
            let _ = s.write_all(&[0xffu8; 512]);
        }
        let started = Instant::now();
        let mut client = tls_client(addr, &pki.ca_pem, "localhost", rustls::DEFAULT_VERSIONS);
        assert_eq!(exchange(&mut client, "/x?q=ok").0, 200);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{driver:?}: served after {took:?}"
        );
        // The stalled handshakes are closed after the client timeout (2 s here).
        std::thread::sleep(Duration::from_millis(2500));
        let s = &mut stalled[0];
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        assert!(
            matches!(s.read(&mut byte), Ok(0) | Err(_)),
            "{driver:?}: a stalled handshake was still open"
        );
        stalled.clear();
        assert_eq!(gw.send(&get("/x")).status, 200);

        // A TLS 1.2 client asking to renegotiate (openssl's `R`) is told no; others are served.
        let have_openssl = skip::runs("openssl", "version");
        if skip::may_run("openssl", have_openssl, "openssl") {
            let mut reneg = std::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-tls1_2",
                    "-servername",
                    "localhost",
                    "-connect",
                ])
                .arg(addr.to_string())
                .arg("-CAfile")
                .arg(pki.ca_file())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("openssl");
            std::thread::sleep(Duration::from_millis(500));
            reneg
                .stdin
                .as_mut()
                .expect("stdin")
                .write_all(b"R\n")
                .expect("write");
            assert!(
                gw.logged("Sending warning alert NoRenegotiation"),
                "{driver:?}: {}",
                gw.logs()
            );
            let _ = reneg.kill();
            let _ = reneg.wait();
        }
        let mut client = tls_client(addr, &pki.ca_pem, "localhost", rustls::DEFAULT_VERSIONS);
        assert_eq!(exchange(&mut client, "/x?after=reneg").0, 200);
    }
}

/// The leaf certificate a handshake asking for `name` is shown, and whether a request over it
/// is served.
fn shown_for(addr: SocketAddr, name: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(lambda_gateway::trust::AnyCertificate(provider)))
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::try_from(name.to_string()).expect("name"),
    )
    .expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    assert_eq!(exchange(&mut stream, "/x?sni=1").0, 200);
    stream.conn.peer_certificates().expect("certs")[0].to_vec()
}

#[test]
fn certificates_are_chosen_by_sni_from_the_file_and_the_admin_api() {
    let pki = Pki::new();
    pki.leaf("server", "default", 2020, 2090);
    let (a_cert, a_key, a_der) = pki.leaf_for("a", "a", &["a.example.test"], 2020, 2090);
    let (w_cert, w_key, w_der) = pki.leaf_for("wild", "wild", &["*.wild.test"], 2020, 2090);
    let (b_cert, b_key, b_der) = pki.leaf_for("b", "b", &["b.example.test"], 2020, 2090);
    let read = |p: &PathBuf| std::fs::read_to_string(p).expect("read");
    let default_der = {
        let pem = read(&pki.dir.path.join("server.pem"));
        rustls::pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes())
            .next()
            .map(|c: Result<rustls::pki_types::CertificateDer<'static>, _>| {
                c.expect("pem").to_vec()
            })
            .expect("leaf")
    };
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("sni");
        let config_path = dir.path.join("kong.json");
        let doc = serde_json::json!({
            "_format_version": "3.0",
            "routes": [{"name": "r", "paths": ["/x"]}],
            "plugins": [{"name": "aws-lambda", "config": {
                "aws_key": ACCESS_KEY, "aws_secret": SECRET_KEY, "aws_region": "us-east-1",
                "function_name": "echo", "host": "localhost", "port": mock.addr.port()}}],
            "certificates": [
                {"cert": read(&a_cert), "key": read(&a_key), "snis": ["a.example.test"]},
                {"cert": read(&w_cert), "key": read(&w_key), "snis": [{"name": "*.wild.test"}]},
            ],
        });
        std::fs::write(&config_path, doc.to_string()).expect("write");
        let gw = Gateway::start_admin(
            &mock,
            AdminOptions {
                config_path: config_path.clone(),
                driver,
                env: vec![],
                args: vec![
                    "--tls-listen".into(),
                    "127.0.0.1:0".into(),
                    "--tls-cert".into(),
                    pki.dir.path.join("server.pem").display().to_string(),
                    "--tls-key".into(),
                    pki.dir.path.join("server.key").display().to_string(),
                ],
            },
        );
        let addr = gw
            .logs()
            .lines()
            .find_map(|l| addr_after(l, "HTTPS listening on "))
            .expect("HTTPS address");
        assert_eq!(shown_for(addr, "a.example.test"), a_der);
        assert_eq!(shown_for(addr, "x.wild.test"), w_der);
        assert_eq!(shown_for(addr, "localhost"), default_der);
        assert_eq!(shown_for(addr, "b.example.test"), default_der);
        // curl verifies the chosen certificate for the name it asked.
        let curl_ran = installed("curl", "curl");
        if curl_ran {
            let out = std::process::Command::new("curl")
                .args(["-sS", "--cacert"])
                .arg(pki.ca_file())
                .arg("--resolve")
                .arg(format!("a.example.test:{}:127.0.0.1", addr.port()))
                .arg(format!("https://a.example.test:{}/x?via=sni", addr.port()))
                .output()
                .expect("curl");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                r#"{"via":"sni"}"#,
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Completed handshakes are counted in the metrics.
        let scrape = gw.admin_get("/metrics").text();
        let handshakes: u64 = scrape
            .lines()
            .find_map(|l| l.strip_prefix("lambda_gateway_tls_handshakes_total{result=\"ok\"} "))
            .and_then(|n| n.parse().ok())
            .expect("handshake counter");
        assert!(
            handshakes >= 4 + u64::from(curl_ran),
            "{handshakes}: four shown certificates and curl's"
        );

        // A certificate and its SNI added through the Admin API: the next handshake has it.
        let created = gw.admin_json(
            "POST",
            "/certificates",
            serde_json::json!({"cert": read(&b_cert), "key": read(&b_key), "snis": ["b.example.test"]}),
        );
        assert_eq!(created.status, 201, "{}", created.text());
        let body = created.json();
        assert_eq!(body["snis"], serde_json::json!(["b.example.test"]));
        let id = body["id"].as_str().expect("id").to_string();
        assert_eq!(shown_for(addr, "b.example.test"), b_der);
        let sni = gw.admin_json(
            "POST",
            &format!("/certificates/{id}/snis"),
            serde_json::json!({"name": "*.b.example.test"}),
        );
        assert_eq!(sni.status, 201, "{}", sni.text());
        assert_eq!(sni.json()["certificate"]["id"], serde_json::json!(id));
        assert_eq!(shown_for(addr, "deep.b.example.test"), b_der);
        let clash = gw.admin_json(
            "POST",
            "/snis",
            serde_json::json!({"name": "a.example.test", "certificate": {"id": id}}),
        );
        assert_eq!(clash.status, 409, "{}", clash.text());
        // An expired certificate is refused with the reason.
        let (old_cert, old_key, _) = pki.leaf_for("old", "old", &["old.test"], 2001, 2002);
        let refused = gw.admin_json(
            "POST",
            "/certificates",
            serde_json::json!({"cert": read(&old_cert), "key": read(&old_key)}),
        );
        assert_eq!(refused.status, 400, "{}", refused.text());
        assert!(refused
            .text()
            .contains("the certificate expired at 20020101T000000Z"));
        // Deleting the certificate takes its SNIs with it.
        assert_eq!(
            gw.admin("DELETE", &format!("/certificates/{id}"), "", "", &[])
                .status,
            204
        );
        assert_eq!(shown_for(addr, "b.example.test"), default_der);
        let snis = gw.admin_get("/snis").json();
        let names: Vec<&str> = snis["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert_eq!(names.len(), 2, "{snis}");
        // The file holds what the Admin API did, SNIs flat with their certificate.
        let saved: serde_json::Value =
            serde_yaml_or_json(&std::fs::read_to_string(&config_path).expect("read"));
        assert_eq!(saved["snis"].as_array().map(Vec::len), Some(2), "{saved}");
    }
}

/// The saved config, JSON or YAML.
fn serde_yaml_or_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_norway::from_str(text).expect("YAML"))
}
