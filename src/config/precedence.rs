//! Which plugin of a name applies to a route, for a consumer or none: Kong's precedence over
//! the enabled plugins' scopes.

use super::model::{Plugin, PluginConfig, Route};
use crate::access::AccessPlugin;
use crate::lambda::config::LambdaConfig;
use crate::metrics::MetricsPolicy;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

/// The enabled plugins, indexed by name and scope (the first one in file order wins within a
/// scope), so finding a route's plugin of a name, for a consumer or none, takes at most eight
/// lookups.
pub struct PluginScopes<'a> {
    by_scope: HashMap<Scope<'a>, &'a Plugin>,
    any_prometheus: bool,
}

/// (plugin name, consumer, route, service).
type Scope<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// An aws-lambda plugin and its config.
pub type Lambda<'a> = (&'a Plugin, &'a Arc<LambdaConfig>);

impl<'a> PluginScopes<'a> {
    /// The enabled plugins of `plugins` by scope.
    pub fn new(plugins: &'a [Plugin]) -> Self {
        let mut by_scope = HashMap::new();
        for p in plugins.iter().filter(|p| p.enabled) {
            let scope = (
                p.name.as_str(),
                p.consumer.as_deref(),
                p.route.as_deref(),
                p.service.as_deref(),
            );
            by_scope.entry(scope).or_insert(p);
        }
        let any_prometheus = by_scope.keys().any(|(name, ..)| *name == "prometheus");
        PluginScopes {
            by_scope,
            any_prometheus,
        }
    }

    /// The plugin called `name` that applies to `route` (for `consumer`, once one is
    /// identified), with Kong's precedence: consumer+route+service, consumer+route,
    /// consumer+service, route+service, consumer, route, service, global.
    pub fn effective_named(
        &self,
        route: &'a Route,
        consumer: Option<&'a str>,
        name: &'a str,
    ) -> Option<&'a Plugin> {
        let r = Some(route.id.as_str());
        let s = route.service.as_deref();
        let mut order: SmallVec<[Scope<'a>; 8]> = SmallVec::new();
        if let Some(c) = consumer {
            if s.is_some() {
                order.push((name, Some(c), r, s));
            }
            order.push((name, Some(c), r, None));
            if s.is_some() {
                order.push((name, Some(c), None, s));
            }
        }
        if s.is_some() {
            order.push((name, None, r, s));
        }
        if let Some(c) = consumer {
            order.push((name, Some(c), None, None));
        }
        order.push((name, None, r, None));
        if s.is_some() {
            order.push((name, None, None, s));
        }
        order.push((name, None, None, None));
        order.iter().find_map(|k| self.by_scope.get(k)).copied()
    }

    /// The route's aws-lambda plugin.
    pub fn effective(&self, route: &'a Route, consumer: Option<&'a str>) -> Option<Lambda<'a>> {
        let p = self.effective_named(route, consumer, "aws-lambda")?;
        match &p.config {
            PluginConfig::AwsLambda(cfg) => Some((p, cfg)),
            _ => None,
        }
    }

    /// Which series a request on `route` (none: matched by no route), by `consumer`, is
    /// counted in: every one when no `prometheus` plugin is enabled anywhere, else what the
    /// plugin that applies says (none without one).
    pub fn metrics(&self, route: Option<&'a Route>, consumer: Option<&'a str>) -> MetricsPolicy {
        if !self.any_prometheus {
            return MetricsPolicy::ALL;
        }
        let plugin = match route {
            Some(route) => self.effective_named(route, consumer, "prometheus"),
            None => self
                .by_scope
                .get(&("prometheus", None, None, None))
                .copied(),
        };
        match plugin.map(|p| &p.config) {
            Some(PluginConfig::Prometheus(policy)) => *policy,
            _ => MetricsPolicy::NONE,
        }
    }

    /// The route's access-phase plugins with their priorities, highest first, and the ids of
    /// the plugin entities they come from.
    pub fn access(
        &self,
        route: &'a Route,
        consumer: Option<&'a str>,
    ) -> (Vec<(u32, AccessPlugin)>, Vec<&'a str>) {
        let mut steps = Vec::new();
        let mut ids = Vec::new();
        for spec in crate::config::plugins::all() {
            let Some(p) = self.effective_named(route, consumer, spec.name) else {
                continue;
            };
            if let PluginConfig::Access(a) = &p.config {
                steps.push((spec.priority, a.clone()));
                ids.push(p.id.as_str());
            }
        }
        (steps, ids)
    }
}
