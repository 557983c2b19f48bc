//! AWS credentials: one set of keys, and the value a worker signs with (fixed keys, or keys
//! a control thread keeps fresh and publishes with an atomic swap).

use arc_swap::ArcSwap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A secret string: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One set of credentials used to sign requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// Credentials and how long they last.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The keys.
    pub credentials: Credentials,
    /// When they stop working (`None`: never, as far as the provider says).
    pub expires: Option<SystemTime>,
}

/// What a refreshed provider has published.
#[derive(Debug, Default)]
pub struct State {
    /// The newest credentials obtained.
    pub credentials: Option<Arc<Credentials>>,
    /// When they expire.
    pub expires: Option<SystemTime>,
    /// Why the last fetch failed, until one succeeds.
    pub error: Option<String>,
    /// Successful fetches so far.
    pub fetches: u64,
}

/// A refreshed provider's current credentials, swapped in by its control thread.
#[derive(Debug)]
pub struct Published {
    /// What it fetches from, for messages (`AssumeRole arn:… with instance metadata …`).
    pub provider: String,
    state: ArcSwap<State>,
}

impl Published {
    /// Nothing fetched yet from `provider`.
    pub fn new(provider: String) -> Self {
        Published {
            provider,
            state: ArcSwap::from_pointee(State::default()),
        }
    }

    /// The current state.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// Publishes newly fetched credentials.
    pub fn publish(&self, fetched: Fetched) {
        let fetches = self.state.load().fetches + 1;
        self.state.store(Arc::new(State {
            credentials: Some(Arc::new(fetched.credentials)),
            expires: fetched.expires,
            error: None,
            fetches,
        }));
    }

    /// Records a failed fetch; credentials obtained earlier stay published.
    pub fn fail(&self, why: String) {
        let old = self.state.load();
        self.state.store(Arc::new(State {
            credentials: old.credentials.clone(),
            expires: old.expires,
            error: Some(why),
            fetches: old.fetches,
        }));
    }
}

/// The credentials a plugin signs with.
#[derive(Clone, Debug)]
pub enum CredentialSource {
    /// Fixed keys.
    Static(Arc<Credentials>),
    /// Keys a control thread keeps fresh.
    Refreshed(Arc<Published>),
}

/// Credentials ready to sign one request: borrowed when fixed, held when refreshed (a newer
/// set published meanwhile does not pull these from under the request).
pub enum Creds<'a> {
    /// Fixed keys.
    Borrowed(&'a Credentials),
    /// The refreshed provider's set at the time of the request.
    Held(Arc<Credentials>),
}

impl std::ops::Deref for Creds<'_> {
    type Target = Credentials;
    fn deref(&self) -> &Credentials {
        match self {
            Creds::Borrowed(c) => c,
            Creds::Held(c) => c,
        }
    }
}

/// How often a request waiting for a provider's first credentials looks again.
const FIRST_FETCH_POLL: Duration = Duration::from_millis(5);

impl CredentialSource {
    /// The credentials to sign with now; `Ok(None)` while a provider has not answered yet
    /// (nor failed); `Err` when it failed and nothing valid is left. Fixed keys cost no clock
    /// read.
    pub fn current(&self) -> Result<Option<Creds<'_>>, String> {
        let published = match self {
            CredentialSource::Static(c) => return Ok(Some(Creds::Borrowed(c))),
            CredentialSource::Refreshed(p) => p,
        };
        let state = published.state.load();
        let valid = state.expires.is_none_or(|e| e > SystemTime::now());
        match (&state.credentials, &state.error) {
            (Some(c), _) if valid => Ok(Some(Creds::Held(c.clone()))),
            (_, Some(why)) => Err(format!(
                "no valid credentials: {} failed: {why}",
                published.provider
            )),
            // Expired and a refresh under way (it started ahead of expiry): wait for it.
            _ => Ok(None),
        }
    }

    /// The credentials to sign with, waiting up to `limit` for a provider's first answer: the
    /// only time a request waits on a credential fetch.
    pub async fn ready(&self, limit: Duration) -> Result<Creds<'_>, String> {
        if let Some(creds) = self.current()? {
            return Ok(creds);
        }
        let started = std::time::Instant::now();
        loop {
            monoio::time::sleep(FIRST_FETCH_POLL).await;
            if let Some(creds) = self.current()? {
                return Ok(creds);
            }
            if started.elapsed() >= limit {
                let provider = match self {
                    CredentialSource::Refreshed(p) => p.provider.as_str(),
                    CredentialSource::Static(_) => "static keys",
                };
                return Err(format!(
                    "no credentials yet: {provider} did not answer within {limit:?}"
                ));
            }
        }
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
