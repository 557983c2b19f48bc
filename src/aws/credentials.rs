//! AWS credentials: from the plugin config, else from the environment as the SDKs read it.

use std::fmt;
use std::sync::Arc;

/// A secret string: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One set of credentials used to sign requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id (`AKIA…`/`ASIA…`).
    pub access_key_id: String,
    /// Secret access key (never logged: `Debug` redacts it).
    pub secret_access_key: Secret,
    /// Session token of temporary credentials, sent as `X-Amz-Security-Token`.
    pub session_token: Option<Secret>,
}

/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, read through `get_env`
/// (the process environment in production, a map in tests).
pub fn from_env(get_env: &dyn Fn(&str) -> Option<String>) -> Option<Credentials> {
    let key = get_env("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty())?;
    let secret = get_env("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty())?;
    let token = get_env("AWS_SESSION_TOKEN").filter(|v| !v.is_empty());
    Some(Credentials {
        access_key_id: key,
        secret_access_key: Secret(secret),
        session_token: token.map(Secret),
    })
}

/// The credentials a plugin signs with: its own key and secret, else the environment's.
pub fn for_plugin(
    key: Option<&String>,
    secret: Option<&Secret>,
    env: Option<&Arc<Credentials>>,
) -> Option<Arc<Credentials>> {
    match (key, secret) {
        (Some(key), Some(secret)) => Some(Arc::new(Credentials {
            access_key_id: key.clone(),
            secret_access_key: secret.clone(),
            session_token: None,
        })),
        _ => env.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment_and_redacts_secrets() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("s3cr3t".to_string()),
            "AWS_SESSION_TOKEN" => Some("tok".to_string()),
            _ => None,
        };
        let c = from_env(&env).expect("present");
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!(c.session_token, Some(Secret("tok".into())));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(from_env(&|_| None).is_none());
    }
}
