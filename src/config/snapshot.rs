//! The immutable runtime view of a configuration, what workers serve: the router, one
//! [`RoutePlan`] per route, the consumer index and the SNI index. Built once per change by
//! [`publish`] (the one path for the file, the Admin API, SIGHUP and etcd) and shared by all
//! workers through `ArcSwap`.

use super::consumers::ConsumerIndex;
use super::environment::Environment;
use super::model::{Config, Route};
use super::plan::{plan_routes, RouteAction, RoutePlan};
use super::precedence::PluginScopes;
use super::router::Router;
use crate::certificate::SniIndex;
use crate::metrics::MetricsPolicy;
use std::collections::HashSet;
use std::sync::Arc;

/// A published configuration.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The validated config.
    pub config: Config,
    /// The router over `config.routes`.
    pub router: Router,
    /// For each route (same index as `config.routes`), what a request on it goes through.
    pub plans: Vec<RoutePlan>,
    /// The certificates of `config.snis`, by name, for HTTPS handshakes.
    pub snis: SniIndex,
    /// Consumers and their credentials, for the auth plugins.
    pub identities: ConsumerIndex,
    /// For each consumer, its label id in the metrics (username, else id).
    pub consumer_metrics: Vec<u32>,
    /// Which series a request matched by no route is counted in.
    pub unrouted_metrics: MetricsPolicy,
}

/// Builds the snapshot of `config`, logs its warnings (those not logged for the configuration
/// before), hands it to `to` (which stores it where workers load it) and returns the warnings.
pub fn publish(config: &Config, env: &Environment, to: impl FnOnce(Snapshot)) -> Vec<String> {
    let (snapshot, warnings) = Snapshot::build(config.clone(), env);
    super::warnings::log_new(config, &warnings);
    to(snapshot);
    warnings
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
        for plan in &self.plans {
            let RouteAction::Invoke(target) = &plan.action else {
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
        let plans = plan_routes(&config, env, &scopes, &mut warnings);
        let unrouted_metrics = scopes.metrics(None, None);
        drop(scopes);
        let consumer_metrics = config
            .consumers
            .iter()
            .map(|c| crate::metrics::consumer_label(c.username.as_deref().unwrap_or(&c.id)))
            .collect();
        let snapshot = Snapshot {
            snis: super::snis::index(&config),
            identities: ConsumerIndex::new(&config),
            router,
            plans,
            consumer_metrics,
            unrouted_metrics,
            config,
        };
        (snapshot, warnings)
    }

    /// The series a request is counted in: on `route` (none: no route matched), by the
    /// consumer `consumer` (its id) once identified.
    pub fn metrics_policy(&self, route: Option<usize>, consumer: Option<&str>) -> MetricsPolicy {
        let Some(plan) = route.and_then(|r| self.plans.get(r)) else {
            return self.unrouted_metrics;
        };
        consumer
            .and_then(|c| plan.for_consumer(c))
            .and_then(|c| c.metrics)
            .unwrap_or(plan.metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
            .plans
            .iter()
            .map(|p| match &p.action {
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
        let (alice, bob) = (&snap.config.consumers[0].id, &snap.config.consumers[1].id);
        assert_eq!(snap.metrics_policy(Some(0), Some(alice)), alice_only);
        assert_eq!(snap.metrics_policy(Some(1), Some(alice)), alice_only);
        assert_eq!(snap.metrics_policy(Some(0), Some(bob)), codes);
        // Only a disabled one: as if there were none.
        let off = policy(
            "_format_version: \"3.0\"\nroutes:\n- {name: r, paths: [/r]}\nplugins:\n- {name: prometheus, enabled: false}\n",
        );
        assert_eq!(off.metrics_policy(Some(0), None), MetricsPolicy::ALL);
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
            .plans
            .iter()
            .map(|p| match &p.action {
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
