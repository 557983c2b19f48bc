//! A profile's `credential_process`: a command that prints credentials as JSON
//! (`{"Version": 1, "AccessKeyId": …, "SecretAccessKey": …, "SessionToken": …,
//! "Expiration": …}`), run through `sh -c` as the SDKs run it on Unix.

use super::Fetched;
use crate::aws::credentials::{Credentials, Secret};
use crate::aws::time::parse_iso8601;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the command may run.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Most output read from it.
const MAX_OUTPUT: u64 = 64 * 1024;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
}

/// Runs `command` and reads its credentials. Blocks: called on a control thread only.
pub fn run(command: &str) -> Result<Fetched, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run credential_process: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_OUTPUT).read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < PROCESS_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "credential_process did not finish within {PROCESS_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("credential_process: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("credential_process exited with {status}"));
    }
    parse(&out)
}

/// The credentials a `credential_process` printed.
pub fn parse(out: &[u8]) -> Result<Fetched, String> {
    let o: Output = serde_json::from_slice(out)
        .map_err(|e| format!("credential_process printed no credentials JSON: {e}"))?;
    if o.access_key_id.is_empty() || o.secret_access_key.is_empty() {
        return Err("credential_process printed an empty AccessKeyId or SecretAccessKey".into());
    }
    if o.version != 1 {
        return Err(format!(
            "credential_process printed Version {}, expected 1",
            o.version
        ));
    }
    let expires = match o.expiration {
        Some(e) => Some(
            parse_iso8601(&e)
                .ok_or_else(|| format!("credential_process Expiration {e:?} is not ISO 8601"))?,
        ),
        None => None,
    };
    Ok(Fetched {
        credentials: Credentials {
            access_key_id: o.access_key_id,
            secret_access_key: Secret(o.secret_access_key),
            session_token: o.session_token.map(Secret),
        },
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_command_and_reads_its_json() {
        let f = run(r#"printf '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "2030-01-01T00:00:00Z"}'"#)
            .expect("ran");
        assert_eq!(f.credentials.access_key_id, "AKIDPROC");
        assert_eq!(f.expires, parse_iso8601("2030-01-01T00:00:00Z"));
        assert!(run("exit 3").is_err_and(|e| e.contains("exit status: 3")));
        assert!(run("echo not json").is_err_and(|e| e.contains("no credentials JSON")));
        assert!(
            run(r#"echo '{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "s"}'"#)
                .is_err_and(|e| e.contains("Version 2"))
        );
    }
}
