//! The immutable runtime view of a config: the router, and for each route the aws-lambda plugin
//! that applies to it with everything needed to invoke (region, credentials, endpoint, the
//! fixed SigV4 parts). Built once per config change, shared by all workers through `ArcSwap`.

use super::model::{Config, Plugin, PluginConfig, Route};
use super::router::Router;
use super::{ConfigError, ConfigErrors};
use crate::access::jwt::JwtCredential;
use crate::access::{AccessPlugin, ConsumerInfo, Identities};
use crate::aws::credentials::Credentials;
use crate::aws::endpoint::{self, Endpoint, NoProxy};
use crate::certificate::{Served, SniIndex};
use crate::credentials::{chain, sts, Hub, Provider, StsEndpoint};
use crate::lambda::config::is_region;
use crate::lambda::config::LambdaConfig;
use crate::metrics::MetricsPolicy;
use crate::upstream::target::InvokeTarget;
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
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
    /// The certificates of `config.snis`, by name, for HTTPS handshakes.
    pub snis: SniIndex,
    /// For each route, its access-phase plugins with their priorities, highest first.
    pub access: Vec<Vec<(u32, AccessPlugin)>>,
    /// For each route, what differs for consumers with plugins of their own, by consumer id.
    pub for_consumers: Vec<HashMap<String, ConsumerRoute>>,
    /// Consumers and their credentials, for the auth plugins.
    pub identities: ConsumerIndex,
    /// For each route, its service's index in `config.services` (for the access log).
    pub route_services: Vec<Option<usize>>,
    /// For each route, its label id in the metrics (its service's name or host, its own name
    /// or id: Kong's labels).
    pub route_metrics: Vec<u32>,
    /// For each consumer, its label id in the metrics (username, else id).
    pub consumer_metrics: Vec<u32>,
    /// Which series requests are counted in (`super::prometheus`): per route, for requests
    /// matched by no route, and per (route, consumer) where a consumer's own plugin differs.
    metrics_policies: MetricsPolicies,
}

/// See [`Snapshot::metrics_policy`].
#[derive(Debug, Default)]
struct MetricsPolicies {
    routes: Vec<MetricsPolicy>,
    unrouted: MetricsPolicy,
    for_consumers: HashMap<(usize, usize), MetricsPolicy>,
}

/// What a route does for one consumer, where their own plugins change it.
#[derive(Debug)]
pub struct ConsumerRoute {
    /// Their aws-lambda plugin's action, when it is not the route's.
    pub action: Option<RouteAction>,
    /// Their access-phase plugins, when they are not the route's.
    pub steps: Option<Vec<(u32, AccessPlugin)>>,
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

/// Consumers by id and username, and key-auth keys, looked up once per authenticated request.
#[derive(Debug, Default)]
pub struct ConsumerIndex {
    consumers: Vec<ConsumerInfo>,
    groups: Vec<Vec<String>>,
    by_name: HashMap<String, usize>,
    by_key: HashMap<Vec<u8>, (String, usize)>,
    by_jwt_key: HashMap<String, (JwtCredential, usize)>,
}

impl ConsumerIndex {
    fn new(config: &Config) -> ConsumerIndex {
        let mut index = ConsumerIndex::default();
        for (i, c) in config.consumers.iter().enumerate() {
            index.consumers.push(ConsumerInfo {
                index: i,
                id: c.id.clone(),
                username: c.username.clone(),
                custom_id: c.custom_id.clone(),
            });
            index.by_name.insert(c.id.clone(), i);
            if let Some(u) = &c.username {
                index.by_name.entry(u.clone()).or_insert(i);
            }
        }
        index.groups = vec![Vec::new(); config.consumers.len()];
        for a in &config.acls {
            if let Some(&i) = a.consumer.as_ref().and_then(|c| index.by_name.get(c)) {
                index.groups[i].push(a.group.clone());
            }
        }
        for k in &config.keyauth_credentials {
            if let Some(&i) = k.consumer.as_ref().and_then(|c| index.by_name.get(c)) {
                index
                    .by_key
                    .insert(k.key.as_bytes().to_vec(), (k.id.clone(), i));
            }
        }
        for j in &config.jwt_secrets {
            let consumer = j.consumer.as_ref().and_then(|c| index.by_name.get(c));
            if let (Some(&i), Some(verifier)) = (consumer, &j.verifier) {
                let credential = JwtCredential {
                    id: j.id.clone(),
                    key: j.key.clone(),
                    verifier: verifier.clone(),
                };
                index.by_jwt_key.insert(j.key.clone(), (credential, i));
            }
        }
        index
    }
}

impl Identities for ConsumerIndex {
    fn jwt(&self, key: &str) -> Option<(&JwtCredential, &ConsumerInfo)> {
        let (credential, i) = self.by_jwt_key.get(key)?;
        Some((credential, &self.consumers[*i]))
    }

    fn key_auth(&self, key: &[u8]) -> Option<(&str, &ConsumerInfo)> {
        let (credential, i) = self.by_key.get(key)?;
        Some((credential.as_str(), &self.consumers[*i]))
    }

    fn groups(&self, consumer: &ConsumerInfo) -> &[String] {
        self.groups
            .get(consumer.index)
            .map_or(&[][..], Vec::as_slice)
    }

    fn consumer(&self, id_or_username: &str) -> Option<&ConsumerInfo> {
        let i = self
            .by_name
            .get(id_or_username)
            .or_else(|| self.by_name.get(&id_or_username.to_ascii_lowercase()))?;
        Some(&self.consumers[*i])
    }
}

impl Snapshot {
    /// Waits (up to `limit` in all) for the first answer of every refreshed credential provider
    /// the routes use, and describes each that failed: `check`'s "credentials cannot be
    /// resolved at start" warnings.
    pub fn unobtainable_credentials(&self, limit: std::time::Duration) -> Vec<String> {
        use crate::aws::credentials::CredentialSource;
        let deadline = std::time::Instant::now() + limit;
        let mut seen: Vec<*const crate::aws::credentials::Published> = Vec::new();
        let mut out = Vec::new();
        for action in &self.actions {
            let RouteAction::Invoke(target) = action else {
                continue;
            };
            let CredentialSource::Refreshed(published) = &target.credentials else {
                continue;
            };
            if seen.contains(&Arc::as_ptr(published)) {
                continue;
            }
            seen.push(Arc::as_ptr(published));
            loop {
                let state = published.state();
                if state.credentials.is_some() {
                    break;
                }
                if let Some(why) = &state.error {
                    out.push(format!(
                        "route {}: credentials from {} cannot be obtained: {why}",
                        target.route_label, published.provider
                    ));
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    out.push(format!(
                        "route {}: credentials from {} did not arrive within {limit:?}",
                        target.route_label, published.provider
                    ));
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        out
    }

    /// The series a request is counted in: on `route` (none: no route matched), by
    /// `consumer` once identified.
    pub fn metrics_policy(&self, route: Option<usize>, consumer: Option<usize>) -> MetricsPolicy {
        let policies = &self.metrics_policies;
        let Some(route) = route else {
            return policies.unrouted;
        };
        consumer
            .filter(|_| !policies.for_consumers.is_empty())
            .and_then(|c| policies.for_consumers.get(&(route, c)))
            .or_else(|| policies.routes.get(route))
            .copied()
            .unwrap_or(MetricsPolicy::ALL)
    }

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
        let mut actions = Vec::with_capacity(config.routes.len());
        let mut access = Vec::with_capacity(config.routes.len());
        let mut for_consumers = Vec::with_capacity(config.routes.len());
        let mut maker = ActionMaker {
            env,
            config: &config,
            made: HashMap::new(),
            names: None,
            warnings: &mut warnings,
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
        for route in &config.routes {
            let route_label = route.name.clone().unwrap_or_else(|| route.id.clone());
            let lambda = scopes.effective(route, None);
            actions.push(maker.action(lambda, &route_label));
            let (steps, ids) = scopes.access(route, None);
            let mut overrides = HashMap::new();
            for &consumer in &consumers {
                let theirs = scopes.effective(route, Some(consumer));
                let action = (theirs.map(|l| &l.0.id) != lambda.map(|l| &l.0.id))
                    .then(|| maker.action(theirs, &route_label));
                let (their_steps, their_ids) = scopes.access(route, Some(consumer));
                let steps = (their_ids != ids).then_some(their_steps);
                if action.is_some() || steps.is_some() {
                    overrides.insert(consumer.to_string(), ConsumerRoute { action, steps });
                }
            }
            access.push(steps);
            for_consumers.push(overrides);
        }
        let snis = sni_index(&config);
        let identities = ConsumerIndex::new(&config);
        let service_at: HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let route_services = config
            .routes
            .iter()
            .map(|r| {
                r.service
                    .as_deref()
                    .and_then(|id| service_at.get(id).copied())
            })
            .collect::<Vec<_>>();
        drop(service_at);
        let route_metrics = config
            .routes
            .iter()
            .zip(&route_services)
            .map(|(r, s)| {
                let service = s.map(|i| &config.services[i]);
                let service = service
                    .and_then(|s| s.name.as_deref().or(s.host.as_deref()))
                    .unwrap_or("");
                crate::metrics::route_label(service, r.name.as_deref().unwrap_or(&r.id))
            })
            .collect();
        let consumer_metrics = config
            .consumers
            .iter()
            .map(|c| crate::metrics::consumer_label(c.username.as_deref().unwrap_or(&c.id)))
            .collect();
        let metrics_policies = scopes.metrics_policies(&config);
        (
            Snapshot {
                config,
                router,
                actions,
                snis,
                access,
                for_consumers,
                identities,
                route_services,
                route_metrics,
                consumer_metrics,
                metrics_policies,
            },
            warnings,
        )
    }
}

/// Every SNI's certificate by the SNI's name.
fn sni_index(config: &Config) -> SniIndex {
    let by_id: HashMap<&str, Served> = config
        .certificates
        .iter()
        .map(|c| {
            let served = Served {
                main: c.key.clone(),
                alt: c.alt.clone(),
            };
            (c.id.as_str(), served)
        })
        .collect();
    let mut index = SniIndex::default();
    for sni in &config.snis {
        if let Some(served) = sni.certificate.as_deref().and_then(|id| by_id.get(id)) {
            index.insert(&sni.name, served.clone());
        }
    }
    index
}

/// The enabled plugins, indexed by name and scope (the first one in file order wins within a
/// scope), so finding a route's plugin of a name, for a consumer or none, takes at most eight
/// lookups.
struct PluginScopes<'a> {
    by_scope: HashMap<Scope<'a>, &'a Plugin>,
}

/// (plugin name, consumer, route, service).
type Scope<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// An aws-lambda plugin and its config.
type Lambda<'a> = (&'a Plugin, &'a Arc<LambdaConfig>);

impl<'a> PluginScopes<'a> {
    fn new(plugins: &'a [Plugin]) -> Self {
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
        PluginScopes { by_scope }
    }

    /// The plugin called `name` that applies to `route` (for `consumer`, once one is
    /// identified), with Kong's precedence: consumer+route+service, consumer+route,
    /// consumer+service, route+service, consumer, route, service, global.
    fn effective_named(
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
    fn effective(&self, route: &'a Route, consumer: Option<&'a str>) -> Option<Lambda<'a>> {
        let p = self.effective_named(route, consumer, "aws-lambda")?;
        match &p.config {
            PluginConfig::AwsLambda(cfg) => Some((p, cfg)),
            _ => None,
        }
    }

    /// Which series requests are counted in: every one when no `prometheus` plugin is
    /// enabled anywhere, else what the plugin that applies says (none without one).
    fn metrics_policies(&self, config: &'a Config) -> MetricsPolicies {
        let policy = |p: Option<&Plugin>| match p.map(|p| &p.config) {
            Some(PluginConfig::Prometheus(policy)) => *policy,
            _ => MetricsPolicy::NONE,
        };
        if !self.by_scope.keys().any(|(name, ..)| *name == "prometheus") {
            return MetricsPolicies {
                routes: vec![MetricsPolicy::ALL; config.routes.len()],
                unrouted: MetricsPolicy::ALL,
                for_consumers: HashMap::new(),
            };
        }
        // Only consumers with a prometheus plugin of their own can count differently.
        let mut consumers: Vec<&str> = self
            .by_scope
            .keys()
            .filter(|(name, consumer, ..)| *name == "prometheus" && consumer.is_some())
            .filter_map(|(_, consumer, ..)| *consumer)
            .collect();
        consumers.sort_unstable();
        consumers.dedup();
        let consumer_at: HashMap<&str, usize> = config
            .consumers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect();
        let mut for_consumers = HashMap::new();
        let mut routes = Vec::with_capacity(config.routes.len());
        for (at, route) in config.routes.iter().enumerate() {
            let own = policy(self.effective_named(route, None, "prometheus"));
            for &consumer in &consumers {
                let theirs = policy(self.effective_named(route, Some(consumer), "prometheus"));
                if theirs == own {
                    continue;
                }
                if let Some(&c) = consumer_at.get(consumer) {
                    for_consumers.insert((at, c), theirs);
                }
            }
            routes.push(own);
        }
        MetricsPolicies {
            routes,
            unrouted: policy(
                self.by_scope
                    .get(&("prometheus", None, None, None))
                    .copied(),
            ),
            for_consumers,
        }
    }

    /// The route's access-phase plugins with their priorities, highest first, and the ids of
    /// the plugin entities they come from.
    fn access(
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
        let no_credentials = "cannot invoke: no credentials: set config.aws_key/aws_secret, \
            or credentials the AWS SDKs' way (environment, profile, web identity, container; \
            instance metadata is disabled)";
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
    fn prometheus_plugins_choose_series_with_kongs_precedence() {
        let policy = |yaml: &str| {
            let cfg = crate::config::parse(yaml).expect("valid");
            Snapshot::build(cfg, &Environment::default()).0
        };
        let codes = MetricsPolicy {
            status_codes: true,
            ..MetricsPolicy::NONE
        };
        let latency = MetricsPolicy {
            latency: true,
            ..MetricsPolicy::NONE
        };
        // No prometheus plugin: everything, for every request.
        let none = policy("_format_version: \"3.0\"\nroutes:\n- {name: r, paths: [/r]}\n");
        assert_eq!(none.metrics_policy(Some(0), None), MetricsPolicy::ALL);
        assert_eq!(none.metrics_policy(None, None), MetricsPolicy::ALL);
        // A global one, a route's own, a consumer's own; a disabled one counts for nothing.
        let snap = policy(
            r#"
_format_version: "3.0"
consumers:
- username: alice
- username: bob
routes:
- {name: r1, paths: [/a]}
- {name: r2, paths: [/b]}
plugins:
- {name: prometheus, config: {status_code_metrics: true}}
- {name: prometheus, route: r2, config: {latency_metrics: true}}
- {name: prometheus, consumer: alice, config: {per_consumer: true}}
- {name: prometheus, consumer: bob, enabled: false, config: {bandwidth_metrics: true}}
"#,
        );
        assert_eq!(snap.metrics_policy(None, None), codes);
        assert_eq!(snap.metrics_policy(Some(0), None), codes);
        assert_eq!(snap.metrics_policy(Some(1), None), latency);
        let alice_only = MetricsPolicy {
            per_consumer: true,
            ..MetricsPolicy::NONE
        };
        assert_eq!(snap.metrics_policy(Some(0), Some(0)), alice_only);
        assert_eq!(snap.metrics_policy(Some(1), Some(0)), alice_only);
        assert_eq!(snap.metrics_policy(Some(0), Some(1)), codes);
        // Only a disabled one: as if there were none.
        let off = policy(
            "_format_version: \"3.0\"\nroutes:\n- {name: r, paths: [/r]}\nplugins:\n- {name: prometheus, enabled: false}\n",
        );
        assert_eq!(off.metrics_policy(Some(0), None), MetricsPolicy::ALL);
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
    fn plugins_share_a_provider_and_each_role_gets_its_own() {
        use crate::aws::credentials::CredentialSource;
        let vars: HashMap<String, String> = [
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (env, errors) = Environment::read(&|k| vars.get(k).cloned());
        assert!(errors.0.is_empty(), "{errors}");
        let cfg = crate::config::parse(
            r#"_format_version: "3.0"
routes:
- {name: a, paths: [/a], plugins: [{name: aws-lambda, config: {function_name: f, aws_region: us-east-1}}]}
- {name: b, paths: [/b], plugins: [{name: aws-lambda, config: {function_name: g, aws_region: us-east-1}}]}
- {name: c, paths: [/c], plugins: [{name: aws-lambda, config: {function_name: f, aws_region: us-east-1, aws_assume_role_arn: "arn:aws:iam::123456789012:role/x"}}]}
- {name: d, paths: [/d], plugins: [{name: aws-lambda, config: {function_name: g, aws_region: us-east-1, aws_assume_role_arn: "arn:aws:iam::123456789012:role/x"}}]}
- {name: e, paths: [/e], plugins: [{name: aws-lambda, config: {function_name: g, aws_region: us-east-1, aws_assume_role_arn: "arn:aws:iam::123456789012:role/x", aws_role_session_name: other}}]}
"#,
        )
        .expect("valid");
        let (snap, warnings) = Snapshot::build(cfg, &env);
        assert!(warnings.is_empty(), "{warnings:?}");
        let published: Vec<_> = snap
            .actions
            .iter()
            .map(|a| match a {
                RouteAction::Invoke(t) => match &t.credentials {
                    CredentialSource::Refreshed(p) => p.clone(),
                    CredentialSource::Static(_) => panic!("refreshed credentials expected"),
                },
                _ => panic!("every route invokes"),
            })
            .collect();
        assert!(Arc::ptr_eq(&published[0], &published[1]));
        assert!(Arc::ptr_eq(&published[2], &published[3]));
        assert!(!Arc::ptr_eq(&published[0], &published[2]));
        assert!(!Arc::ptr_eq(&published[3], &published[4]));
        assert_eq!(
            published[4].provider,
            "AssumeRole arn:aws:iam::123456789012:role/x (session other) with container credentials (http://169.254.170.2/v2/creds)"
        );
    }
}
