//! `lambda-gateway demo`: a local Lambda emulator on loopback plus the seed's example config
//! (`/lambda1` → `MyLambda`), so the gateway can be tried with no AWS account.
//!
//! The emulator speaks the Invoke API over plain HTTP on 127.0.0.1: `MyLambda` answers
//! `{"response": "yes"}` with Lambda's headers; other names get Lambda's 404
//! `ResourceNotFoundException`; an unsigned request gets 403.

use crate::emulator::{Emulator, Functions, Invoke, Options, Reply};
use std::net::SocketAddr;
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
        Arc::new(DemoFunctions),
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

/// `MyLambda` and nothing else, behind a check that requests are signed, answered as Lambda
/// answers: 200 with the output for `RequestResponse`, 202 with no body for `Event`, 204 for
/// `DryRun`, 400 for another invocation type; a fresh request id for every invoke.
struct DemoFunctions;

impl Functions for DemoFunctions {
    fn invoke(&self, invoke: &Invoke<'_>) -> Reply {
        let request_id = crate::config::model::new_uuid();
        // X-Ray's shape: 8 hex digits of time, 24 of randomness (here the id's own digits).
        let hex: String = request_id.chars().filter(|c| *c != '-').collect();
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("x-amzn-RequestId".to_string(), request_id.clone()),
            (
                "X-Amzn-Trace-Id".to_string(),
                format!("root=1-{}-{};sampled=0", &hex[..8], &hex[8..]),
            ),
            (
                "x-amzn-Remapped-Content-Length".to_string(),
                "0".to_string(),
            ),
        ];
        let signed = invoke
            .header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "));
        let mut error = |status: u16, error_type: &str, body: String| {
            headers.push(("x-amzn-ErrorType".into(), error_type.into()));
            (status, body)
        };
        let (status, body) = if !signed {
            error(
                403,
                "MissingAuthenticationTokenException",
                r#"{"message":"Missing Authentication Token"}"#.into(),
            )
        } else if invoke.function != "MyLambda" {
            let name = invoke.function;
            error(
                404,
                "ResourceNotFoundException",
                format!(
                    r#"{{"Message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}","Type":"User"}}"#
                ),
            )
        } else {
            match invoke
                .header("x-amz-invocation-type")
                .unwrap_or("RequestResponse")
            {
                "RequestResponse" => {
                    headers.push(("X-Amz-Executed-Version".into(), "$LATEST".into()));
                    (200, MY_LAMBDA_OUTPUT.to_string())
                }
                "Event" => (202, String::new()),
                "DryRun" => (204, String::new()),
                other => error(
                    400,
                    "InvalidParameterValueException",
                    format!(
                        r#"{{"Type":"User","message":"1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"}}"#
                    ),
                ),
            }
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
