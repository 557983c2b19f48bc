//! Keeping temporary credentials fresh, off the hot path: one control thread per provider in
//! use fetches before first use, publishes, sleeps until five minutes (less some jitter) before
//! expiry, and fetches again. A failed fetch is retried with exponential backoff (1 s doubling
//! to 60 s, jittered) while the previous credentials, if still valid, keep signing.

use super::{metadata, process, sts, CredentialSource, Fetched, Provider, Published};
use crate::random::jitter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

/// How long before expiry credentials are refreshed (the SDKs' window).
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// Longest random advance of a refresh, so that many gateways do not call STS at once.
const MAX_JITTER: Duration = Duration::from_secs(60);
/// Shortest wait between fetches of a provider.
const MIN_WAIT: Duration = Duration::from_secs(1);
/// Longest wait between attempts of a failing provider.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a sleeping refresher checks that its provider is still in use.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);

/// The providers in use, shared by every plugin that resolves to the same one: one refresher
/// each. A provider no snapshot uses any more loses its refresher within
/// [`LIVENESS_CHECK`].
pub struct Hub {
    /// TLS for STS and HTTPS container endpoints; `None` never fetches (tests of config
    /// building, where nothing may reach the network).
    tls: Option<Arc<rustls::ClientConfig>>,
    entries: Mutex<HashMap<Provider, Weak<Published>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("fetching", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    /// A hub that never fetches.
    fn default() -> Self {
        Hub {
            tls: None,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl Hub {
    /// A hub whose refreshers fetch over `tls`.
    pub fn fetching(tls: Arc<rustls::ClientConfig>) -> Self {
        Hub {
            tls: Some(tls),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The source of `provider`'s credentials: fixed keys as they are; any other provider's
    /// published value, starting its refresher the first time it is asked for.
    pub fn source(&self, provider: Provider) -> CredentialSource {
        if let Provider::Static(c) = provider {
            return CredentialSource::Static(Arc::new(c));
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, w| w.strong_count() > 0);
        if let Some(live) = entries.get(&provider).and_then(Weak::upgrade) {
            return CredentialSource::Refreshed(live);
        }
        let published = Arc::new(Published::new(provider.describe_in_chain()));
        entries.insert(provider.clone(), Arc::downgrade(&published));
        if let Some(tls) = &self.tls {
            let weak = Arc::downgrade(&published);
            let tls = tls.clone();
            let spawned = std::thread::Builder::new()
                .name("credentials".into())
                .spawn(move || refresher(weak, provider, tls));
            if let Err(e) = spawned {
                published.fail(format!("cannot start its refresher thread: {e}"));
            }
        }
        CredentialSource::Refreshed(published)
    }
}

/// Fetches once from `provider`.
pub async fn fetch_once(
    tls: &monoio_rustls::TlsConnector,
    provider: &Provider,
) -> Result<Fetched, String> {
    match provider {
        Provider::Static(c) => Ok(Fetched {
            credentials: c.clone(),
            expires: None,
        }),
        Provider::WebIdentity {
            role_arn,
            session_name,
            token_file,
            sts: endpoint,
        } => {
            let token = std::fs::read_to_string(token_file)
                .map_err(|e| format!("cannot read {}: {e}", token_file.display()))?;
            sts::assume_role_with_web_identity(tls, endpoint, role_arn, session_name, token.trim())
                .await
        }
        Provider::Container {
            endpoint,
            path,
            token,
            token_file,
        } => {
            metadata::container_credentials(
                tls,
                endpoint,
                path,
                token.as_ref(),
                token_file.as_deref(),
            )
            .await
        }
        Provider::InstanceMetadata { endpoint, version } => {
            metadata::instance_credentials(tls, endpoint, *version).await
        }
        Provider::Process { command } => process::run(command),
        Provider::AssumeRole {
            base,
            role_arn,
            session_name,
            external_id,
            sts: endpoint,
        } => {
            let base_creds = Box::pin(fetch_once(tls, base))
                .await
                .map_err(|e| format!("its source credentials ({base}): {e}"))?;
            sts::assume_role(
                tls,
                endpoint,
                &base_creds.credentials,
                role_arn,
                session_name,
                external_id.as_deref(),
            )
            .await
        }
    }
}

/// How long to wait before refreshing credentials that expire at `expires` (`None`: never).
pub fn refresh_after(expires: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    let left = expires?.duration_since(now).unwrap_or(Duration::ZERO);
    let wait = match left.checked_sub(REFRESH_AHEAD) {
        // Refresh ahead of the window, a little earlier at random.
        Some(before_window) if before_window > MIN_WAIT => {
            before_window - jitter(MAX_JITTER.min(before_window / 4))
        }
        Some(before_window) => before_window,
        // Already inside the window (short-lived credentials): half-way through what is left.
        None => left / 2,
    };
    Some(wait.max(MIN_WAIT))
}

/// The wait after the `failures`-th failure in a row: 1 s doubling to 60 s, less up to a
/// fifth at random.
pub fn backoff(failures: u32) -> Duration {
    let full = MIN_WAIT
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    (full - jitter(full / 5)).max(MIN_WAIT)
}

fn refresher(weak: Weak<Published>, provider: Provider, tls: Arc<rustls::ClientConfig>) {
    let mut runtime = match crate::reactor::build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            if let Some(p) = weak.upgrade() {
                p.fail(format!("cannot start its runtime: {e}"));
            }
            return;
        }
    };
    let connector = monoio_rustls::TlsConnector::from(tls);
    let mut failures = 0u32;
    loop {
        let result = runtime.block_on(fetch_once(&connector, &provider));
        let Some(published) = weak.upgrade() else {
            return;
        };
        let wait = match result {
            Ok(fetched) => {
                failures = 0;
                crate::metrics::PROCESS
                    .credential_refreshes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let wait = refresh_after(fetched.expires, SystemTime::now());
                log::info!(
                    "credentials from {provider}: access key {}{}",
                    fetched.credentials.access_key_id,
                    match fetched.expires {
                        Some(at) => format!(
                            ", expiring at {}, refreshed in {}s",
                            crate::aws::time::AmzDate::from_system_time(at).timestamp_str(),
                            wait.unwrap_or_default().as_secs()
                        ),
                        None => String::new(),
                    }
                );
                published.publish(fetched);
                match wait {
                    Some(w) => w,
                    None => return,
                }
            }
            Err(why) => {
                failures += 1;
                crate::metrics::PROCESS
                    .credential_refresh_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let wait = backoff(failures);
                let state = published.state();
                let still_valid = state.credentials.is_some()
                    && state.expires.is_none_or(|e| e > SystemTime::now());
                log::warn!(
                    "credentials from {} failed (attempt {failures}): {why}; {}; retrying in {}ms",
                    published.provider,
                    if still_valid {
                        "the previous credentials stay in use until they expire"
                    } else {
                        "requests that need them answer 500"
                    },
                    wait.as_millis()
                );
                published.fail(why);
                wait
            }
        };
        drop(published);
        let mut left = wait;
        while !left.is_zero() {
            let step = left.min(LIVENESS_CHECK);
            std::thread::sleep(step);
            left -= step;
            if weak.strong_count() == 0 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_ahead_of_expiry_with_bounded_jitter() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(refresh_after(None, now), None);
        for _ in 0..100 {
            // An hour's credentials: 55 minutes less up to a minute.
            let w = refresh_after(Some(now + Duration::from_secs(3600)), now).expect("some");
            assert!(
                w <= Duration::from_secs(3300) && w >= Duration::from_secs(3240),
                "{w:?}"
            );
            // Five minutes and ten seconds: ten seconds less up to a quarter of them.
            let w = refresh_after(Some(now + Duration::from_secs(310)), now).expect("some");
            assert!(
                w <= Duration::from_secs(10) && w >= Duration::from_millis(7500),
                "{w:?}"
            );
        }
        // Inside the window: half of what is left, at least a second.
        assert_eq!(
            refresh_after(Some(now + Duration::from_secs(120)), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            refresh_after(Some(now + Duration::from_secs(301)), now),
            Some(MIN_WAIT)
        );
        assert_eq!(refresh_after(Some(now), now), Some(MIN_WAIT));
        assert_eq!(
            refresh_after(Some(now - Duration::from_secs(5)), now),
            Some(MIN_WAIT)
        );
    }

    #[test]
    fn backs_off_exponentially_to_a_minute() {
        for _ in 0..50 {
            assert_eq!(backoff(1), MIN_WAIT);
            let b = backoff(3);
            assert!(
                b <= Duration::from_secs(4) && b >= Duration::from_millis(3200),
                "{b:?}"
            );
            let b = backoff(40);
            assert!(b <= MAX_BACKOFF && b >= Duration::from_secs(48), "{b:?}");
        }
    }

    #[test]
    fn one_published_value_per_provider_while_in_use() {
        let hub = Hub::default();
        let imds = Provider::InstanceMetadata {
            endpoint: crate::aws::endpoint::parse_endpoint_url("http://127.0.0.1:9").expect("url"),
            version: crate::lambda::config::ImdsVersion::V2,
        };
        let (CredentialSource::Refreshed(a), CredentialSource::Refreshed(b)) =
            (hub.source(imds.clone()), hub.source(imds.clone()))
        else {
            panic!("refreshed sources")
        };
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        let CredentialSource::Refreshed(c) = hub.source(imds) else {
            panic!("refreshed")
        };
        assert_eq!(
            Arc::strong_count(&c),
            1,
            "a new value once the old one was dropped"
        );
    }
}
