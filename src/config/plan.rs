//! A route's plan: everything a request matched to it needs, decided once per configuration.
//! The aws-lambda plugin that answers (with its region, credentials and endpoint), the
//! access-phase plugins in priority order, which series the log phase counts it in, and what
//! differs for consumers with plugins of their own.

use super::environment::Environment;
use super::model::{Config, Plugin, Route};
use super::precedence::{Lambda, PluginScopes};
use crate::access::AccessPlugin;
use crate::aws::credentials::Credentials;
use crate::aws::endpoint;
use crate::credentials::{sts, Provider, StsEndpoint};
use crate::lambda::config::LambdaConfig;
use crate::metrics::MetricsPolicy;
use crate::upstream::target::InvokeTarget;
use std::collections::HashMap;
use std::sync::Arc;

/// What a request on one route goes through.
#[derive(Debug)]
pub struct RoutePlan {
    /// The route as logs name it: its name, else its id.
    pub label: String,
    /// The upstream phase: the function it invokes, or why it cannot.
    pub action: RouteAction,
    /// The access phase: the route's access plugins with their priorities, highest first.
    pub access: Vec<(u32, AccessPlugin)>,
    /// Its service's index in `config.services` (the access log's `service`).
    pub service: Option<usize>,
    /// Its label id in the metrics (its service's name or host, its own name or id: Kong's
    /// labels).
    pub metrics_label: u32,
    /// The log phase: which series its requests are counted in.
    pub metrics: MetricsPolicy,
    /// What differs for consumers with plugins of their own, by consumer id (empty for most
    /// routes: then nothing is looked up).
    pub for_consumers: HashMap<String, ConsumerRoute>,
    /// Its `opentelemetry` plugin, among `access`: found once here, not per request.
    pub tracer: Option<Arc<crate::access::opentelemetry::OpenTelemetry>>,
}

impl RoutePlan {
    /// The plan's overrides for the consumer `id`, if their own plugins change anything.
    pub fn for_consumer(&self, id: &str) -> Option<&ConsumerRoute> {
        if self.for_consumers.is_empty() {
            return None;
        }
        self.for_consumers.get(id)
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

/// What a route does for one consumer, where their own plugins change it.
#[derive(Debug)]
pub struct ConsumerRoute {
    /// Their aws-lambda plugin's action, when it is not the route's.
    pub action: Option<RouteAction>,
    /// Their access-phase plugins, when they are not the route's.
    pub steps: Option<Vec<(u32, AccessPlugin)>>,
    /// The series their requests are counted in, when not the route's.
    pub metrics: Option<MetricsPolicy>,
}

/// Plans every route of `config`, in order; says why a route cannot invoke in `warnings`.
pub fn plan_routes(
    config: &Config,
    env: &Environment,
    scopes: &PluginScopes<'_>,
    warnings: &mut Vec<String>,
) -> Vec<RoutePlan> {
    let mut maker = ActionMaker {
        env,
        config,
        made: HashMap::new(),
        names: None,
        warnings,
    };
    // Consumers with plugins of their own: each route gets what differs for them.
    let mut consumers: Vec<&str> = config
        .plugins
        .iter()
        .filter(|p| p.enabled)
        .filter_map(|p| p.consumer.as_deref())
        .collect();
    consumers.sort_unstable();
    consumers.dedup();
    let service_at: HashMap<&str, usize> = config
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut plans = Vec::with_capacity(config.routes.len());
    for route in &config.routes {
        let route_label = route.name.clone().unwrap_or_else(|| route.id.clone());
        let lambda = scopes.effective(route, None);
        let action = maker.action(lambda, &route_label);
        let (access, ids) = scopes.access(route, None);
        let metrics = scopes.metrics(Some(route), None);
        let mut for_consumers = HashMap::new();
        for &consumer in &consumers {
            let theirs = scopes.effective(route, Some(consumer));
            let action = (theirs.map(|l| &l.0.id) != lambda.map(|l| &l.0.id))
                .then(|| maker.action(theirs, &route_label));
            let (their_steps, their_ids) = scopes.access(route, Some(consumer));
            let steps = (their_ids != ids).then_some(their_steps);
            let their_metrics = scopes.metrics(Some(route), Some(consumer));
            let metrics = (their_metrics != metrics).then_some(their_metrics);
            if action.is_some() || steps.is_some() || metrics.is_some() {
                let differs = ConsumerRoute {
                    action,
                    steps,
                    metrics,
                };
                for_consumers.insert(consumer.to_string(), differs);
            }
        }
        let service = route
            .service
            .as_deref()
            .and_then(|id| service_at.get(id).copied());
        let tracer = access.iter().find_map(|(_, p)| match p {
            AccessPlugin::OpenTelemetry(otel) => Some(otel.clone()),
            _ => None,
        });
        plans.push(RoutePlan {
            tracer,
            label: route_label,
            action,
            access,
            service,
            metrics_label: metrics_label(config, route, service),
            metrics,
            for_consumers,
        });
    }
    plans
}

/// The route's label id in the metrics.
fn metrics_label(config: &Config, route: &Route, service: Option<usize>) -> u32 {
    let service = service
        .map(|i| &config.services[i])
        .and_then(|s| s.name.as_deref().or(s.host.as_deref()))
        .unwrap_or("");
    crate::metrics::route_label(service, route.name.as_deref().unwrap_or(&route.id))
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

/// Makes a route's action from its aws-lambda plugin, once per (plugin, route label): a plugin
/// on a service serves every route of it, each with its own label.
struct ActionMaker<'a, 'w> {
    env: &'a Environment,
    config: &'a Config,
    made: HashMap<(&'a str, String), Arc<InvokeTarget>>,
    names: Option<Names<'a>>,
    warnings: &'w mut Vec<String>,
}

impl<'a> ActionMaker<'a, '_> {
    fn action(&mut self, lambda: Option<Lambda<'a>>, route_label: &str) -> RouteAction {
        let Some((plugin, cfg)) = lambda else {
            self.warnings.push(format!(
                "route {route_label}: no enabled aws-lambda plugin applies; requests to it get 502"
            ));
            return RouteAction::NoPlugin {
                route_label: route_label.to_string(),
            };
        };
        let key = (plugin.id.as_str(), route_label.to_string());
        if let Some(target) = self.made.get(&key) {
            return RouteAction::Invoke(target.clone());
        }
        match target(plugin, cfg, key.1.clone(), self.env) {
            Ok(t) => {
                let t = Arc::new(t);
                self.made.insert(key, t.clone());
                RouteAction::Invoke(t)
            }
            Err(why) => {
                let config = self.config;
                self.warnings.push(format!(
                    "route {}: the {} (function {}) cannot invoke: {why}",
                    key.1,
                    self.names
                        .get_or_insert_with(|| Names::new(config))
                        .plugin(plugin),
                    cfg.function_name
                ));
                RouteAction::Unusable {
                    route_label: key.1,
                    function: cfg.function_name.clone(),
                    why,
                }
            }
        }
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
    let base = match (&cfg.aws_key, &cfg.aws_secret) {
        (Some(key), Some(secret)) => Provider::Static(Credentials {
            access_key_id: key.clone(),
            secret_access_key: secret.clone(),
            session_token: None,
        }),
        _ => env.chain.clone().ok_or(
            "no credentials: set config.aws_key/aws_secret, or credentials the AWS SDKs' way \
             (environment, profile, web identity, container; instance metadata is disabled)",
        )?,
    };
    let base = base.with_imds_version(cfg.aws_imds_protocol_version);
    let provider = match &cfg.aws_assume_role_arn {
        Some(role_arn) => {
            let sts = match cfg
                .aws_sts_endpoint_url
                .as_ref()
                .or(env.sts_endpoint.as_ref())
            {
                Some(endpoint) => StsEndpoint {
                    endpoint: endpoint.clone(),
                    region: region.clone(),
                },
                None => sts::regional(Some(&region)),
            };
            Provider::AssumeRole {
                base: Box::new(base),
                role_arn: role_arn.clone(),
                session_name: cfg.aws_role_session_name.clone(),
                external_id: None,
                sts: StsEndpoint {
                    endpoint: sts.endpoint.via(cfg.proxy_url.as_ref(), &env.no_proxy),
                    region: sts.region,
                },
            }
        }
        None => base,
    };
    let credentials = env.hub.source(provider);
    let endpoint = endpoint::for_plugin(
        cfg.host.as_deref(),
        cfg.port,
        !cfg.disable_https,
        &region,
        env.endpoint.as_ref(),
    )
    .via(cfg.proxy_url.as_ref(), &env.no_proxy);
    Ok(InvokeTarget::new(
        plugin.id.clone(),
        route_label,
        cfg.clone(),
        region,
        credentials,
        endpoint,
    ))
}
