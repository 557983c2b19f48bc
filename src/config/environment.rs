//! What the process environment contributes to a configuration: the default credential
//! chain, region, endpoints and `NO_PROXY`, read once at start-up and on reload.

use super::{ConfigError, ConfigErrors};
use crate::aws::endpoint::{self, Endpoint, NoProxy};
use crate::credentials::{chain, Hub, Provider};
use crate::lambda::config::is_region;
use std::sync::Arc;

/// What the process environment contributes (read once at start-up, and on reload).
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// The default credential chain's provider, for plugins without keys of their own.
    pub chain: Option<Provider>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's `region`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`.
    pub endpoint: Option<Endpoint>,
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`: where a plugin's AssumeRole goes
    /// unless its `aws_sts_endpoint_url` says.
    pub sts_endpoint: Option<Endpoint>,
    /// `NO_PROXY`: hosts a plugin's `proxy_url` is not used for.
    pub no_proxy: NoProxy,
    /// The refreshed credential providers in use.
    pub hub: Arc<Hub>,
}

impl Environment {
    /// Reads the environment through `get` (the process environment in production). A value
    /// that is set but cannot be used is an error named by its variable (`AWS_REGION: …`):
    /// `check` reports it and the gateway refuses to start, instead of failing every request.
    /// Nothing here reaches the network; the hub it returns never fetches (see
    /// [`Hub::fetching`]).
    pub fn read(get: &dyn Fn(&str) -> Option<String>) -> (Environment, ConfigErrors) {
        let mut errors = Vec::new();
        let set = |var: &'static str| get(var).filter(|v| !v.is_empty()).map(|v| (var, v));
        let region_var = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"));
        let region_var_set = region_var.is_some();
        let mut region = match region_var {
            Some((_, r)) if is_region(&r) => Some(r),
            Some((var, r)) => {
                errors.push(ConfigError::new(
                    var,
                    format!("expected a region like us-east-1, got {r:?}"),
                ));
                None
            }
            None => None,
        };
        let mut endpoint_var = |vars: [&'static str; 2]| {
            let mut found = None;
            for var in vars {
                if let Some((_, url)) = set(var) {
                    match endpoint::parse_endpoint_url(&url) {
                        Ok(e) => found = found.or(Some(e)),
                        Err(why) => errors.push(ConfigError::new(var, why)),
                    }
                }
            }
            found
        };
        let endpoint = endpoint_var(["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"]);
        let sts_endpoint = endpoint_var(["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]);
        // The shared files come after the environment in the chain, and give the region the
        // environment did not.
        let mut profile_credentials = None;
        match crate::aws::profile::load(get) {
            Ok(profile) => {
                profile_credentials = profile.credentials;
                if !region_var_set {
                    match profile.region {
                        Some(r) if is_region(&r) => region = Some(r),
                        Some(r) => errors.push(ConfigError::new(
                            "AWS profile region",
                            format!("expected a region like us-east-1, got {r:?}"),
                        )),
                        None => {}
                    }
                }
            }
            // A broken profile matters only when the chain would reach it.
            Err(why) if crate::aws::credentials::from_env(get).is_none() => {
                let var = if set("AWS_PROFILE").is_some() {
                    "AWS_PROFILE"
                } else {
                    "AWS shared config"
                };
                errors.push(ConfigError::new(var, why));
            }
            Err(_) => {}
        }
        let chain = match chain::resolve(get, profile_credentials, region.as_deref()) {
            Ok(chain) => chain,
            Err((var, why)) => {
                errors.push(ConfigError::new(var, why));
                None
            }
        };
        let no_proxy = NoProxy::parse(
            &get("NO_PROXY")
                .or_else(|| get("no_proxy"))
                .unwrap_or_default(),
        );
        let env = Environment {
            chain,
            region,
            endpoint,
            sts_endpoint,
            no_proxy,
            hub: Arc::default(),
        };
        (env, ConfigErrors(errors))
    }

    /// The process environment.
    pub fn from_process() -> (Environment, ConfigErrors) {
        Environment::read(&|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn unusable_environment_values_are_errors() {
        let read = |vars: &[(&str, &str)]| {
            let vars: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Environment::read(&|k| vars.get(k).cloned()).1.to_string()
        };
        assert_eq!(
            read(&[("AWS_REGION", "us east")]),
            "AWS_REGION: expected a region like us-east-1, got \"us east\""
        );
        assert_eq!(
            read(&[("AWS_DEFAULT_REGION", "Mars")]),
            "AWS_DEFAULT_REGION: expected a region like us-east-1, got \"Mars\""
        );
        assert!(read(&[("AWS_ENDPOINT_URL_LAMBDA", "ftp://x")])
            .starts_with("AWS_ENDPOINT_URL_LAMBDA: "));
        assert_eq!(
            read(&[
                ("AWS_REGION", "eu-west-3"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
            ]),
            ""
        );
        assert_eq!(read(&[("AWS_REGION", "")]), "");
    }
}
