//! The immutable runtime view of a config: the router, and for each route the aws-lambda plugin
//! that applies to it with everything needed to invoke (region, credentials, endpoint, the
//! fixed SigV4 parts). Built once per config change, shared by all workers through `ArcSwap`.

use super::model::{Config, Plugin, Route};
use super::router::Router;
use crate::aws::credentials::{self, Credentials};
use crate::aws::endpoint::{self, Endpoint};
use crate::aws::sigv4::InvokeTemplate;
use crate::lambda::config::LambdaConfig;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the process environment contributes (read once at start-up, and on reload).
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `AWS_ACCESS_KEY_ID` & co.
    pub credentials: Option<Arc<Credentials>>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`.
    pub endpoint: Option<Endpoint>,
}

impl Environment {
    /// Reads the environment through `get` (the process environment in production).
    /// Returns the environment and a warning for each variable that could not be used.
    pub fn read(get: &dyn Fn(&str) -> Option<String>) -> (Environment, Vec<String>) {
        let mut warnings = Vec::new();
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .filter(|r| !r.is_empty());
        let mut endpoint = None;
        for var in ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"] {
            if let Some(url) = get(var).filter(|u| !u.is_empty()) {
                match endpoint::parse_endpoint_url(&url) {
                    Ok(e) => {
                        endpoint = Some(e);
                        break;
                    }
                    Err(why) => warnings.push(format!("{var} ignored: {why}")),
                }
            }
        }
        let env = Environment {
            credentials: credentials::from_env(get).map(Arc::new),
            region,
            endpoint,
        };
        (env, warnings)
    }

    /// The process environment.
    pub fn from_process() -> (Environment, Vec<String>) {
        Environment::read(&|k| std::env::var(k).ok())
    }
}

/// One aws-lambda plugin, ready to invoke.
#[derive(Debug)]
pub struct ResolvedPlugin {
    /// The plugin entity's id.
    pub plugin_id: String,
    /// The route it serves (name, else id), for logs.
    pub route_label: String,
    /// The validated config.
    pub config: Arc<LambdaConfig>,
    /// Why this plugin cannot invoke (no region, no credentials), answered as a 500 and logged.
    pub unusable: Option<String>,
    /// Credentials to sign with.
    pub credentials: Option<Arc<Credentials>>,
    /// Where to send invokes.
    pub endpoint: Endpoint,
    /// Path (and query) of the invoke request, endpoint prefix included.
    pub invoke_path: String,
    /// The fixed parts of the signature.
    pub template: InvokeTemplate,
}

/// A published configuration.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The validated config.
    pub config: Config,
    /// The router over `config.routes`.
    pub router: Router,
    /// For each route (same index as `config.routes`), the plugin that applies, if any.
    pub route_plugins: Vec<Option<Arc<ResolvedPlugin>>>,
}

impl Snapshot {
    /// Builds the snapshot. Returns it with warnings about plugins that cannot invoke.
    pub fn build(config: Config, env: &Environment) -> (Snapshot, Vec<String>) {
        let mut warnings = Vec::new();
        let disabled_services: HashSet<&str> = config
            .services
            .iter()
            .filter(|s| !s.enabled)
            .map(|s| s.id.as_str())
            .collect();
        let service_enabled = |r: &Route| {
            r.service
                .as_deref()
                .is_none_or(|sid| !disabled_services.contains(sid))
        };
        let router = Router::new(&config.routes, service_enabled);
        let scopes = PluginScopes::new(&config.plugins);
        // Plugins already resolved for a route label (a plugin on a service serves every route).
        let mut resolved: HashMap<(&str, String), Arc<ResolvedPlugin>> = HashMap::new();
        let mut route_plugins = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let Some(plugin) = scopes.effective(route) else {
                route_plugins.push(None);
                continue;
            };
            let label = route.name.clone().unwrap_or_else(|| route.id.clone());
            let key = (plugin.id.as_str(), label);
            if let Some(r) = resolved.get(&key) {
                route_plugins.push(Some(r.clone()));
                continue;
            }
            let r = Arc::new(resolve(plugin, key.1.clone(), env));
            if let Some(why) = &r.unusable {
                warnings.push(format!(
                    "route {}: aws-lambda plugin {}: {why}",
                    key.1, plugin.id
                ));
            }
            resolved.insert(key, r.clone());
            route_plugins.push(Some(r));
        }
        for route in config
            .routes
            .iter()
            .zip(&route_plugins)
            .filter(|(_, p)| p.is_none())
            .map(|(r, _)| r)
        {
            let label = route.name.clone().unwrap_or_else(|| route.id.clone());
            warnings.push(format!(
                "route {label}: no enabled aws-lambda plugin applies; requests to it get 502"
            ));
        }
        (
            Snapshot {
                config,
                router,
                route_plugins,
            },
            warnings,
        )
    }
}

/// The enabled plugins that are not consumer-scoped, indexed by scope (the first one in file
/// order wins within a scope), so finding a route's plugin takes four lookups.
struct PluginScopes<'a> {
    route_and_service: HashMap<(&'a str, &'a str), &'a Plugin>,
    route: HashMap<&'a str, &'a Plugin>,
    service: HashMap<&'a str, &'a Plugin>,
    global: Option<&'a Plugin>,
}

impl<'a> PluginScopes<'a> {
    fn new(plugins: &'a [Plugin]) -> Self {
        let mut scopes = PluginScopes {
            route_and_service: HashMap::new(),
            route: HashMap::new(),
            service: HashMap::new(),
            global: None,
        };
        // No authentication plugin runs here, so consumer-scoped plugins never apply.
        for p in plugins.iter().filter(|p| p.enabled && p.consumer.is_none()) {
            match (p.route.as_deref(), p.service.as_deref()) {
                (Some(r), Some(s)) => {
                    scopes.route_and_service.entry((r, s)).or_insert(p);
                }
                (Some(r), None) => {
                    scopes.route.entry(r).or_insert(p);
                }
                (None, Some(s)) => {
                    scopes.service.entry(s).or_insert(p);
                }
                (None, None) => {
                    scopes.global.get_or_insert(p);
                }
            }
        }
        scopes
    }

    /// Kong's precedence: route+service, then route, then service, then global.
    fn effective(&self, route: &Route) -> Option<&'a Plugin> {
        let service = route.service.as_deref();
        service
            .and_then(|s| self.route_and_service.get(&(route.id.as_str(), s)))
            .or_else(|| self.route.get(route.id.as_str()))
            .or_else(|| service.and_then(|s| self.service.get(s)))
            .copied()
            .or(self.global)
    }
}

fn resolve(plugin: &Plugin, route_label: String, env: &Environment) -> ResolvedPlugin {
    let cfg = plugin.config.clone();
    let region = cfg.aws_region.clone().or_else(|| env.region.clone());
    let credentials = credentials::for_plugin(&cfg, env.credentials.as_ref());
    let unusable = match (&region, &credentials) {
        (None, _) => Some("no region: set config.aws_region, AWS_REGION or AWS_DEFAULT_REGION".to_string()),
        (_, None) => Some("no credentials: set config.aws_key/aws_secret or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".to_string()),
        _ => None,
    };
    let region = region.unwrap_or_default();
    let endpoint = endpoint::for_plugin(&cfg, &region, env.endpoint.as_ref());
    let invoke_path = format!("{}{}", endpoint.path_prefix, cfg.invoke_path);
    let template = InvokeTemplate::new(
        &invoke_path,
        endpoint.host_header(),
        region,
        cfg.invocation_type.as_str(),
        cfg.log_type.as_str(),
    );
    ResolvedPlugin {
        plugin_id: plugin.id.clone(),
        route_label,
        config: cfg,
        unusable,
        credentials,
        endpoint,
        invoke_path,
        template,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_precedence_route_over_service_over_global() {
        let cfg = crate::config::parse(
            r#"
_format_version: "3.0"
services:
- name: s
  routes:
  - {name: r1, paths: [/a]}
  - {name: r2, paths: [/b]}
  - {name: r3, paths: [/c]}
  plugins:
  - {name: aws-lambda, config: {function_name: service-fn, aws_region: us-east-1}}
- name: t
  routes:
  - {name: r4, paths: [/d]}
routes:
- {name: r5, paths: [/e]}
plugins:
- {name: aws-lambda, route: r1, config: {function_name: route-fn, aws_region: us-east-1}}
- {name: aws-lambda, route: r3, enabled: false, config: {function_name: off-fn, aws_region: us-east-1}}
- {name: aws-lambda, config: {function_name: global-fn, aws_region: us-east-1}}
"#,
        )
        .expect("valid");
        let env = Environment {
            credentials: None,
            region: None,
            endpoint: None,
        };
        let (snap, warnings) = Snapshot::build(cfg, &env);
        let names: Vec<&str> = snap
            .route_plugins
            .iter()
            .map(|p| p.as_ref().map_or("-", |p| p.config.function_name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                "route-fn",
                "service-fn",
                "service-fn",
                "global-fn",
                "global-fn"
            ]
        );
        assert!(
            warnings.iter().all(|w| w.contains("no credentials")),
            "{warnings:?}"
        );
    }
}
