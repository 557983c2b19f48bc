//! The plugins lambda-gateway provides: each a name, a schema for its `config`, and how a
//! checked config becomes the typed one the request path uses.

use super::model::PluginConfig;
use crate::access::{self, AccessPlugin};
use crate::schema::check::Checker;
use crate::schema::Schema;
use serde_json::Value;
use std::sync::Arc;

/// One plugin.
pub struct PluginSpec {
    /// Its name in configs (`aws-lambda`).
    pub name: &'static str,
    /// Kong's `PRIORITY` for it: plugins run from the highest to the lowest.
    pub priority: u32,
    /// Its config's schema.
    pub schema: &'static Schema,
    /// Validates a config (errors go to the checker) into the typed config; the plugin's id
    /// names what it keeps across requests (rate-limiting counters).
    pub validate: fn(&mut Checker, &Value, &str) -> Option<PluginConfig>,
}

/// Every plugin, in Kong's priority order (each handler's `PRIORITY` in Kong 3.x).
pub static PLUGINS: &[PluginSpec] = &[
    PluginSpec {
        name: "correlation-id",
        priority: 100_001,
        schema: &access::correlation_id::SCHEMA,
        validate: |c, v, _| {
            access::correlation_id::validate(c, v)
                .map(|cfg| PluginConfig::Access(AccessPlugin::CorrelationId(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "cors",
        priority: 2000,
        schema: &access::cors::SCHEMA,
        validate: |c, v, _| {
            access::cors::validate(c, v)
                .map(|cfg| PluginConfig::Access(AccessPlugin::Cors(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "jwt",
        priority: 1450,
        schema: &access::jwt::SCHEMA,
        validate: |c, v, _| {
            access::jwt::validate(c, v)
                .map(|cfg| PluginConfig::Access(AccessPlugin::Jwt(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "key-auth",
        priority: 1250,
        schema: &access::key_auth::SCHEMA,
        validate: |c, v, _| {
            access::key_auth::validate(c, v)
                .map(|cfg| PluginConfig::Access(AccessPlugin::KeyAuth(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "ip-restriction",
        priority: 990,
        schema: &access::ip_restriction::SCHEMA,
        validate: |c, v, _| {
            access::ip_restriction::validate(c, v)
                .map(|cfg| PluginConfig::Access(AccessPlugin::IpRestriction(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "request-size-limiting",
        priority: 951,
        schema: &access::size_limit::SCHEMA,
        validate: |c, v, _| {
            access::size_limit::validate(c, v)
                .map(|cfg| PluginConfig::Access(AccessPlugin::RequestSizeLimiting(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "acl",
        priority: 950,
        schema: &access::acl::SCHEMA,
        validate: |c, v, _| {
            access::acl::validate(c, v)
                .map(|cfg| PluginConfig::Access(AccessPlugin::Acl(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "rate-limiting",
        priority: 910,
        schema: &access::rate_limit::SCHEMA,
        validate: |c, v, id| {
            access::rate_limit::validate(c, v, id)
                .map(|cfg| PluginConfig::Access(AccessPlugin::RateLimiting(Arc::new(cfg))))
        },
    },
    PluginSpec {
        name: "aws-lambda",
        priority: 750,
        schema: &crate::lambda::config::SCHEMA,
        validate: |c, v, _| {
            crate::lambda::config::validate(c, v).map(|cfg| PluginConfig::AwsLambda(Arc::new(cfg)))
        },
    },
    PluginSpec {
        name: "prometheus",
        priority: 13,
        schema: &super::prometheus::SCHEMA,
        validate: |c, v, _| super::prometheus::validate(c, v).map(PluginConfig::Prometheus),
    },
];

/// The plugin called `name`.
pub fn find(name: &str) -> Option<&'static PluginSpec> {
    PLUGINS.iter().find(|p| p.name == name)
}

/// The error for a plugin name that is not provided.
pub fn unknown(name: &str) -> String {
    let provided: Vec<String> = PLUGINS.iter().map(|p| format!("'{}'", p.name)).collect();
    format!(
        "plugin '{name}' not enabled; lambda-gateway provides only {}",
        provided.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_are_listed_from_the_highest_priority() {
        assert!(PLUGINS.windows(2).all(|w| w[0].priority > w[1].priority));
        assert_eq!(find("aws-lambda").map(|p| p.priority), Some(750));
    }
}
