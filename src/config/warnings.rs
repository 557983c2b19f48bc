//! Warnings about a configuration (a route that no aws-lambda plugin applies to, a plugin that
//! cannot invoke), logged once each: a configuration published again (an Admin API change, a
//! fleet revision, a reload) repeats only the warnings about a route that changed since.

use super::model::Config;
use std::collections::HashMap;
use std::sync::Mutex;

/// Each warning said for the process's current configuration, with the route it names as it
/// was then (empty when it names none).
static SAID: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// Logs the warnings of `config` not already said for the same state of their route, and
/// forgets those `config` no longer has (so they are said again if they come back).
pub fn log_new(config: &Config, warnings: &[String]) {
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    let before = said.take().unwrap_or_default();
    let mut now = HashMap::with_capacity(warnings.len());
    for warning in warnings {
        let route = route_state(config, warning);
        if before.get(warning) != Some(&route) {
            log::warn!("{warning}");
        }
        now.insert(warning.clone(), route);
    }
    *said = Some(now);
}

/// The route a warning is about (`route <name or id>: …`), as written in `config`.
fn route_state(config: &Config, warning: &str) -> String {
    let Some(label) = warning
        .strip_prefix("route ")
        .and_then(|rest| rest.split_once(": "))
        .map(|(label, _)| label)
    else {
        return String::new();
    };
    config
        .routes
        .iter()
        .find(|r| r.name.as_deref().unwrap_or(&r.id) == label)
        .and_then(|r| serde_json::to_string(&r.raw).ok())
        .unwrap_or_default()
}
