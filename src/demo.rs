//! `lambda-gateway demo`: a local Lambda emulator on loopback plus the seed's example config
//! (`/lambda1` → `MyLambda`), so the gateway can be tried with no AWS account.
//!
//! The emulator speaks the Invoke API over plain HTTP on 127.0.0.1: `MyLambda` answers
//! `{"response": "yes"}` with Lambda's headers; other names get Lambda's 404
//! `ResourceNotFoundException`; an unsigned request gets 403.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// The demo's function output, byte for byte.
pub const MY_LAMBDA_OUTPUT: &str = r#"{"response": "yes"}"#;

/// Starts the emulator on an ephemeral loopback port; returns its address.
pub fn start_emulator() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("demo-lambda".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = std::thread::Builder::new()
                    .name("demo-lambda-conn".into())
                    .spawn(move || serve(conn));
            }
        })?;
    Ok(addr)
}

/// The seed's example config, pointed at the emulator.
pub fn config(emulator: SocketAddr) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: lambda1
  url: http://localhost:8000
  routes:
  - name: lambda1
    paths: [/lambda1]
  plugins:
  - name: aws-lambda
    config:
      aws_key: AKIDDEMO
      aws_secret: demo-secret
      aws_region: us-east-1
      function_name: MyLambda
      host: {}
      port: {}
      disable_https: true
"#,
        emulator.ip(),
        emulator.port()
    )
}

fn serve(mut conn: TcpStream) {
    let mut buf = Vec::with_capacity(8192);
    let mut counter = 0u64;
    loop {
        let (head_len, path, content_length, signed) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut slots);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let header = |name: &str| {
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| h.value)
                    };
                    let len = header("content-length")
                        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let signed = header("authorization")
                        .is_some_and(|a| a.starts_with(b"AWS4-HMAC-SHA256 "));
                    break (n, req.path.unwrap_or("").to_string(), len, signed);
                }
                Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => {}
                _ => return,
            }
            if !read_more(&mut conn, &mut buf) {
                return;
            }
        };
        if content_length > 7 * 1024 * 1024 {
            return;
        }
        while buf.len() < head_len + content_length {
            if !read_more(&mut conn, &mut buf) {
                return;
            }
        }
        counter += 1;
        let request_id = format!("{:08x}-demo-4000-8000-{:012x}", std::process::id(), counter);
        let (status, extra, body) = if !signed {
            (
                403,
                "x-amzn-ErrorType: MissingAuthenticationTokenException\r\n".to_string(),
                r#"{"message":"Missing Authentication Token"}"#.to_string(),
            )
        } else if path.starts_with("/2015-03-31/functions/MyLambda/invocations") {
            (
                200,
                "X-Amz-Executed-Version: $LATEST\r\n".to_string(),
                MY_LAMBDA_OUTPUT.to_string(),
            )
        } else {
            let name = path
                .trim_start_matches("/2015-03-31/functions/")
                .split('/')
                .next()
                .unwrap_or("")
                .to_string();
            (
                404,
                "x-amzn-ErrorType: ResourceNotFoundException\r\n".to_string(),
                format!(r#"{{"Message":"Function not found: {name}","Type":"User"}}"#),
            )
        };
        let reason = match status {
            200 => "OK",
            403 => "Forbidden",
            _ => "Not Found",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-amzn-RequestId: {request_id}\r\nX-Amzn-Trace-Id: root=1-{:08x}-{:024x};sampled=0\r\nx-amzn-Remapped-Content-Length: 0\r\n{extra}\r\n{body}",
            body.len(),
            counter,
            counter
        );
        if conn.write_all(response.as_bytes()).is_err() {
            return;
        }
        buf.drain(..head_len + content_length);
    }
}

fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        match conn.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
        }
    }
}
