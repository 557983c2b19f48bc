//! `lambda-gateway demo`: a local Lambda emulator on loopback plus the seed's example config
//! (`/lambda1` → `MyLambda`), so the gateway can be tried with no AWS account.
//!
//! The emulator speaks the Invoke API over plain HTTP on 127.0.0.1: `MyLambda` answers
//! `{"response": "yes"}` with Lambda's headers; other names get Lambda's 404
//! `ResourceNotFoundException`; an unsigned request gets 403.

use crate::emulator::{Emulator, Functions, Invoke, Options, Reply};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The demo's function output, byte for byte.
pub const MY_LAMBDA_OUTPUT: &str = r#"{"response": "yes"}"#;

/// Starts the emulator on an ephemeral loopback port; returns its address.
pub fn start_emulator() -> std::io::Result<SocketAddr> {
    let emulator = Emulator::start(
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: 1,
            cpus: vec![],
            tls: None,
        },
        Arc::new(DemoFunctions::default()),
    )?;
    Ok(emulator.addr)
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

/// `MyLambda` and nothing else, behind a check that requests are signed.
#[derive(Default)]
struct DemoFunctions {
    served: AtomicU64,
}

impl Functions for DemoFunctions {
    fn invoke(&self, invoke: &Invoke<'_>) -> Reply {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let signed = invoke
            .header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "));
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            (
                "x-amzn-RequestId".to_string(),
                format!("{:08x}-demo-4000-8000-{n:012x}", std::process::id()),
            ),
            (
                "X-Amzn-Trace-Id".to_string(),
                format!("root=1-{n:08x}-{n:024x};sampled=0"),
            ),
            (
                "x-amzn-Remapped-Content-Length".to_string(),
                "0".to_string(),
            ),
        ];
        let (status, body) = if !signed {
            headers.push((
                "x-amzn-ErrorType".into(),
                "MissingAuthenticationTokenException".into(),
            ));
            (
                403,
                r#"{"message":"Missing Authentication Token"}"#.to_string(),
            )
        } else if invoke.function == "MyLambda" {
            headers.push(("X-Amz-Executed-Version".into(), "$LATEST".into()));
            (200, MY_LAMBDA_OUTPUT.to_string())
        } else {
            headers.push((
                "x-amzn-ErrorType".into(),
                "ResourceNotFoundException".into(),
            ));
            let name = invoke.function;
            (
                404,
                format!(r#"{{"Message":"Function not found: {name}","Type":"User"}}"#),
            )
        };
        Reply::Answer {
            status,
            headers,
            body: body.into_bytes(),
            chunked: false,
            close: false,
        }
    }
}
