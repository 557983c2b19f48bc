//! The immutable runtime view of a config: the router, and for each route the aws-lambda plugin
//! that applies to it with everything needed to invoke (region, credentials, endpoint, the
//! fixed SigV4 parts). Built once per config change, shared by all workers through `ArcSwap`.

use super::model::{Config, Plugin, PluginConfig, Route};
use super::router::Router;
use super::{ConfigError, ConfigErrors};
use crate::aws::credentials::{self, Credentials};
use crate::aws::endpoint::{self, Endpoint};
use crate::lambda::config::is_region;
use crate::lambda::config::LambdaConfig;
use crate::upstream::target::InvokeTarget;
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
    /// A credential provider the environment asks for that this build does not have (web
    /// identity, container, instance), named in the "no credentials" warning.
    pub unsupported_provider: Option<&'static str>,
}

/// Variables of credential providers not built yet, with what to call them.
const UNSUPPORTED_PROVIDERS: [(&str, &str); 3] = [
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)",
    ),
];

impl Environment {
    /// Reads the environment through `get` (the process environment in production). A value
    /// that is set but cannot be used is an error named by its variable (`AWS_REGION: …`):
    /// `check` reports it and the gateway refuses to start, instead of failing every request.
    pub fn read(get: &dyn Fn(&str) -> Option<String>) -> (Environment, ConfigErrors) {
        let mut errors = Vec::new();
        let set = |var: &'static str| get(var).filter(|v| !v.is_empty()).map(|v| (var, v));
        let region_var = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"));
        let region_var_set = region_var.is_some();
        let region = match region_var {
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
        let mut endpoint = None;
        for var in ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"] {
            if let Some((_, url)) = set(var) {
                match endpoint::parse_endpoint_url(&url) {
                    Ok(e) => endpoint = endpoint.or(Some(e)),
                    Err(why) => errors.push(ConfigError::new(var, why)),
                }
            }
        }
        // Then the shared files, as the SDKs' chain reads them after the environment: for the
        // credentials and the region the environment did not give.
        let mut credentials = credentials::from_env(get);
        let mut region = region;
        if credentials.is_none() || !region_var_set {
            match crate::aws::profile::load(get) {
                Ok(profile) => {
                    credentials = credentials.or(profile.credentials);
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
                Err(why) => {
                    let var = if set("AWS_PROFILE").is_some() {
                        "AWS_PROFILE"
                    } else {
                        "AWS shared config"
                    };
                    errors.push(ConfigError::new(var, why));
                }
            }
        }
        let unsupported_provider = UNSUPPORTED_PROVIDERS
            .iter()
            .find(|(var, _)| set(var).is_some())
            .map(|(_, what)| *what);
        let env = Environment {
            credentials: credentials.map(Arc::new),
            region,
            endpoint,
            unsupported_provider,
        };
        (env, ConfigErrors(errors))
    }

    /// The process environment.
    pub fn from_process() -> (Environment, ConfigErrors) {
        Environment::read(&|k| std::env::var(k).ok())
    }
}

/// What a route does, decided once per configuration.
#[derive(Debug)]
pub enum RouteAction {
    /// Invoke a function.
    Invoke(Arc<InvokeTarget>),
    /// Its aws-lambda plugin cannot invoke (no region, no credentials): a 500, logged.
    Unusable {
        /// The route (name, else id).
        route_label: String,
        /// The function the plugin names.
        function: String,
        /// Why.
        why: String,
    },
    /// No enabled aws-lambda plugin applies: a 502, logged.
    NoPlugin {
        /// The route (name, else id).
        route_label: String,
    },
}

/// Entity names by id, to name plugins in warnings (made once, only when one is needed).
struct Names<'a>(HashMap<&'a str, &'a str>);

impl<'a> Names<'a> {
    fn new(config: &'a Config) -> Names<'a> {
        let services = config.services.iter().map(|s| (&s.id, &s.name));
        let routes = config.routes.iter().map(|r| (&r.id, &r.name));
        let consumers = config.consumers.iter().map(|c| (&c.id, &c.username));
        let names = services
            .chain(routes)
            .chain(consumers)
            .filter_map(|(id, name)| Some((id.as_str(), name.as_deref()?)))
            .collect();
        Names(names)
    }

    /// A plugin as a person finds it in the config: `aws-lambda plugin on service "lambda1"`,
    /// `global aws-lambda plugin` (entities by name where they have one, else by id).
    fn plugin(&self, plugin: &Plugin) -> String {
        let scope: Vec<String> = [
            ("service", &plugin.service),
            ("route", &plugin.route),
            ("consumer", &plugin.consumer),
        ]
        .into_iter()
        .filter_map(|(what, id)| {
            let id = id.as_deref()?;
            Some(format!(
                "{what} {:?}",
                self.0.get(id).copied().unwrap_or(id)
            ))
        })
        .collect();
        if scope.is_empty() {
            format!("global {} plugin", plugin.name)
        } else {
            format!("{} plugin on {}", plugin.name, scope.join(", "))
        }
    }
}

/// A published configuration.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The validated config.
    pub config: Config,
    /// The router over `config.routes`.
    pub router: Router,
    /// For each route (same index as `config.routes`), what it does.
    pub actions: Vec<RouteAction>,
}

impl Snapshot {
    /// Builds the snapshot. Returns it with warnings about routes that cannot invoke.
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
        // Targets already made for a (plugin, route label): a plugin on a service serves every
        // route of it, each with its own label.
        let mut made: HashMap<(&str, String), Arc<InvokeTarget>> = HashMap::new();
        let mut actions = Vec::with_capacity(config.routes.len());
        let mut names = None;
        for route in &config.routes {
            let route_label = route.name.clone().unwrap_or_else(|| route.id.clone());
            let Some((plugin, cfg)) = scopes.effective(route) else {
                warnings.push(format!(
                    "route {route_label}: no enabled aws-lambda plugin applies; requests to it get 502"
                ));
                actions.push(RouteAction::NoPlugin { route_label });
                continue;
            };
            let key = (plugin.id.as_str(), route_label);
            if let Some(target) = made.get(&key) {
                actions.push(RouteAction::Invoke(target.clone()));
                continue;
            }
            match target(plugin, cfg, key.1.clone(), env) {
                Ok(t) => {
                    let t = Arc::new(t);
                    made.insert(key, t.clone());
                    actions.push(RouteAction::Invoke(t));
                }
                Err(why) => {
                    warnings.push(format!(
                        "route {}: the {} (function {}) cannot invoke: {why}",
                        key.1,
                        names
                            .get_or_insert_with(|| Names::new(&config))
                            .plugin(plugin),
                        cfg.function_name
                    ));
                    actions.push(RouteAction::Unusable {
                        route_label: key.1,
                        function: cfg.function_name.clone(),
                        why,
                    });
                }
            }
        }
        (
            Snapshot {
                config,
                router,
                actions,
            },
            warnings,
        )
    }
}

/// The enabled aws-lambda plugins that are not consumer-scoped, indexed by scope (the first one
/// in file order wins within a scope), so finding a route's plugin takes four lookups.
struct PluginScopes<'a> {
    route_and_service: HashMap<(&'a str, &'a str), Lambda<'a>>,
    route: HashMap<&'a str, Lambda<'a>>,
    service: HashMap<&'a str, Lambda<'a>>,
    global: Option<Lambda<'a>>,
}

/// An aws-lambda plugin and its config.
type Lambda<'a> = (&'a Plugin, &'a Arc<LambdaConfig>);

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
            let PluginConfig::AwsLambda(cfg) = &p.config;
            let lambda = (p, cfg);
            match (p.route.as_deref(), p.service.as_deref()) {
                (Some(r), Some(s)) => {
                    scopes.route_and_service.entry((r, s)).or_insert(lambda);
                }
                (Some(r), None) => {
                    scopes.route.entry(r).or_insert(lambda);
                }
                (None, Some(s)) => {
                    scopes.service.entry(s).or_insert(lambda);
                }
                (None, None) => {
                    scopes.global.get_or_insert(lambda);
                }
            }
        }
        scopes
    }

    /// Kong's precedence: route+service, then route, then service, then global.
    fn effective(&self, route: &Route) -> Option<Lambda<'a>> {
        let service = route.service.as_deref();
        service
            .and_then(|s| self.route_and_service.get(&(route.id.as_str(), s)))
            .or_else(|| self.route.get(route.id.as_str()))
            .or_else(|| service.and_then(|s| self.service.get(s)))
            .copied()
            .or(self.global)
    }
}

/// The invoke target of a plugin on a route, or why there is none.
fn target(
    plugin: &Plugin,
    cfg: &Arc<LambdaConfig>,
    route_label: String,
    env: &Environment,
) -> Result<InvokeTarget, String> {
    let region = cfg
        .aws_region
        .clone()
        .or_else(|| env.region.clone())
        .ok_or("no region: set config.aws_region, AWS_REGION or AWS_DEFAULT_REGION")?;
    let credentials = credentials::for_plugin(
        cfg.aws_key.as_ref(),
        cfg.aws_secret.as_ref(),
        env.credentials.as_ref(),
    )
    .ok_or_else(|| {
        let mut why = "no credentials: set config.aws_key/aws_secret or \
                       AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            .to_string();
        if let Some(what) = env.unsupported_provider {
            why.push_str(&format!(
                " ({what} is set, but this version of lambda-gateway cannot use it yet)"
            ));
        }
        why
    })?;
    let endpoint = endpoint::for_plugin(
        cfg.host.as_deref(),
        cfg.port,
        !cfg.disable_https,
        &region,
        env.endpoint.as_ref(),
    );
    Ok(InvokeTarget::new(
        plugin.id.clone(),
        route_label,
        cfg.clone(),
        region,
        credentials,
        endpoint,
    ))
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
        let env = Environment::default();
        let (snap, warnings) = Snapshot::build(cfg, &env);
        let names: Vec<&str> = snap
            .actions
            .iter()
            .map(|a| match a {
                RouteAction::Invoke(t) => t.config.function_name.as_str(),
                RouteAction::Unusable { function, .. } => function.as_str(),
                RouteAction::NoPlugin { .. } => "-",
            })
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
        let no_credentials = "cannot invoke: no credentials: set config.aws_key/aws_secret or \
                              AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
        assert_eq!(
            warnings,
            [
                format!("route r1: the aws-lambda plugin on route \"r1\" (function route-fn) {no_credentials}"),
                format!("route r2: the aws-lambda plugin on service \"s\" (function service-fn) {no_credentials}"),
                format!("route r3: the aws-lambda plugin on service \"s\" (function service-fn) {no_credentials}"),
                format!("route r4: the global aws-lambda plugin (function global-fn) {no_credentials}"),
                format!("route r5: the global aws-lambda plugin (function global-fn) {no_credentials}"),
            ]
        );
    }

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

    #[test]
    fn a_provider_not_built_yet_is_named_in_the_warning() {
        let vars: HashMap<String, String> = [(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".to_string(),
            "/v2/creds".to_string(),
        )]
        .into_iter()
        .collect();
        let (env, errors) = Environment::read(&|k| vars.get(k).cloned());
        assert!(errors.0.is_empty());
        let cfg = crate::config::parse(
            "_format_version: \"3.0\"\nroutes:\n- {name: r, paths: [/r]}\nplugins:\n- {name: aws-lambda, config: {function_name: f, aws_region: us-east-1}}\n",
        )
        .expect("valid");
        let (_, warnings) = Snapshot::build(cfg, &env);
        assert_eq!(
            warnings,
            ["route r: the global aws-lambda plugin (function f) cannot invoke: no credentials: set config.aws_key/aws_secret or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) is set, but this version of lambda-gateway cannot use it yet)"]
        );
    }
}
