//! The plugins lambda-gateway provides, from the highest priority down: each a name, Kong's
//! priority, a schema for its `config`, and how a checked config becomes the one the request
//! path uses. The access plugins come from their registry ([`access::SPECS`]); the plugin that
//! answers (aws-lambda) and the one that decides how a request is counted (prometheus) are the
//! two listed here.

use super::model::PluginConfig;
use crate::access;
use crate::schema::check::Checker;
use crate::schema::Schema;
use serde_json::Value;
use std::sync::{Arc, LazyLock};

/// How a plugin's checked config becomes the one the request path uses.
#[derive(Clone, Copy)]
enum Make {
    /// An access plugin ([`access::configure`]).
    Access(fn(&mut Checker, &Value, &str) -> Option<access::AccessPlugin>),
    /// aws-lambda or prometheus.
    Own(fn(&mut Checker, &Value) -> Option<PluginConfig>),
}

/// One plugin.
pub struct PluginSpec {
    /// Its name in configs (`aws-lambda`).
    pub name: &'static str,
    /// Kong's `PRIORITY` for it: plugins run from the highest to the lowest.
    pub priority: u32,
    /// Its config's schema.
    pub schema: &'static Schema,
    make: Make,
}

impl PluginSpec {
    /// Validates a config (errors go to the checker) into the typed config; the plugin's id
    /// names what it keeps across requests (rate-limiting's counters).
    pub fn validate(&self, c: &mut Checker, config: &Value, id: &str) -> Option<PluginConfig> {
        match self.make {
            Make::Access(configure) => configure(c, config, id).map(PluginConfig::Access),
            Make::Own(make) => make(c, config),
        }
    }
}

/// Every plugin, from Kong's highest priority (each handler's `PRIORITY` in Kong 3.x).
pub fn all() -> &'static [PluginSpec] {
    static ALL: LazyLock<Vec<PluginSpec>> = LazyLock::new(|| {
        let mut all: Vec<PluginSpec> = access::SPECS
            .iter()
            .map(|spec| PluginSpec {
                name: spec.name,
                priority: spec.priority,
                schema: (spec.schema)(),
                make: Make::Access(spec.configure),
            })
            .collect();
        all.push(PluginSpec {
            name: "aws-lambda",
            priority: 750,
            schema: &crate::lambda::config::SCHEMA,
            make: Make::Own(|c, v| {
                crate::lambda::config::validate(c, v)
                    .map(|cfg| PluginConfig::AwsLambda(Arc::new(cfg)))
            }),
        });
        all.push(PluginSpec {
            name: "prometheus",
            priority: 13,
            schema: &super::prometheus::SCHEMA,
            make: Make::Own(|c, v| super::prometheus::validate(c, v).map(PluginConfig::Prometheus)),
        });
        all.sort_by_key(|p| std::cmp::Reverse(p.priority));
        all
    });
    &ALL
}

/// The plugin called `name`.
pub fn find(name: &str) -> Option<&'static PluginSpec> {
    all().iter().find(|p| p.name == name)
}

/// The error for a plugin name that is not provided.
pub fn unknown(name: &str) -> String {
    let provided: Vec<String> = all().iter().map(|p| format!("'{}'", p.name)).collect();
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
        assert!(all().windows(2).all(|w| w[0].priority > w[1].priority));
        assert_eq!(find("aws-lambda").map(|p| p.priority), Some(750));
        // Each schema is its plugin's.
        assert!(all().iter().all(|p| p.schema.name == p.name));
    }
}
