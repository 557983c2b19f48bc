//! The plugins lambda-gateway provides: each a name, a schema for its `config`, and how a
//! checked config becomes the typed one the request path uses.

use super::model::PluginConfig;
use crate::schema::check::Checker;
use crate::schema::Schema;
use serde_json::Value;
use std::sync::Arc;

/// One plugin.
pub struct PluginSpec {
    /// Its name in configs (`aws-lambda`).
    pub name: &'static str,
    /// Its config's schema.
    pub schema: &'static Schema,
    /// Validates a config (errors go to the checker) into the typed config.
    pub validate: fn(&mut Checker, &Value) -> Option<PluginConfig>,
}

/// Every plugin, in Kong's priority order.
pub static PLUGINS: &[PluginSpec] = &[PluginSpec {
    name: "aws-lambda",
    schema: &crate::lambda::config::SCHEMA,
    validate: |c, v| {
        crate::lambda::config::validate(c, v).map(|cfg| PluginConfig::AwsLambda(Arc::new(cfg)))
    },
}];

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
