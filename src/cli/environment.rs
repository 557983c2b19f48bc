//! The process environment as the gateway uses it, and every problem with it.

use crate::config::{self, environment::Environment};
use std::sync::Arc;

/// The environment as the gateway would use it, and every problem with it (variables set to
/// something unusable, a CA bundle that cannot be read). Given the config, it also asks the
/// instance metadata service for the region when a plugin needs one and nothing else names it.
pub(super) fn environment(
    cfg: Option<&config::Config>,
) -> (
    Environment,
    Option<Arc<rustls::ClientConfig>>,
    config::ConfigErrors,
) {
    let (mut env, mut errors) = Environment::from_process();
    let tls =
        match crate::upstream::tls::client_config(crate::trust::ca_bundle_from_env().as_deref()) {
            Ok(tls) => Some(tls),
            Err(e) => {
                errors.0.push(config::ConfigError::new("AWS_CA_BUNDLE", e));
                None
            }
        };
    if let Some(tls) = &tls {
        env.hub = Arc::new(crate::credentials::Hub::fetching(tls.clone()));
        let needs_region = cfg.is_some_and(|cfg| {
            cfg.plugins.iter().any(|p| match &p.config {
                config::model::PluginConfig::AwsLambda(c) => c.aws_region.is_none(),
                _ => false,
            })
        });
        if env.region.is_none() && needs_region {
            // The last place the SDKs look for a region: the instance's placement.
            env.region =
                crate::credentials::metadata::region_of_instance(env.chain.as_ref(), tls.clone());
        }
    }
    (env, tls, errors)
}
