//! Kong's `prometheus` plugin (priority 13): which per-request series the requests it applies
//! to are counted in. The series themselves are always served at the Admin API's `/metrics`
//! ([`crate::metrics`]).
//!
//! As in Kong, a request is counted only in the series its route's `prometheus` plugin (route,
//! service or global, or a consumer's own) turns on, each off by default; a request matched by
//! no route goes by the global one. A configuration with no `prometheus` plugin at all counts
//! every request in every series, with consumers: the gateway's default, kept for setups that
//! never had the plugin.

use crate::metrics::MetricsPolicy;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Type};
use serde_json::{Map, Value};

crate::settings! {
    /// Kong 3.x's fields.
    pub struct Settings, schema SCHEMA = "prometheus" {
        /// The consumer label filled.
        per_consumer: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// `kong_http_requests_total`.
        status_code_metrics: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// The three latency histograms.
        latency_metrics: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// `kong_bandwidth_bytes`.
        bandwidth_metrics: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Kong's upstream target health series: this gateway has no upstream targets, so
        /// there is nothing for it to turn on.
        upstream_health_metrics: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Kong's AI gateway series: no AI plugins here either.
        ai_metrics: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
    }
}

/// Validates a `config` object.
pub fn validate(c: &mut Checker, value: &Value) -> Option<MetricsPolicy> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    let s = Settings::read(obj);
    (c.errors.len() == before).then_some(MetricsPolicy {
        status_codes: s.status_code_metrics,
        latency: s.latency_metrics,
        bandwidth: s.bandwidth_metrics,
        per_consumer: s.per_consumer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<MetricsPolicy, Vec<String>> {
        let mut c = Checker::default();
        let v: Value = serde_json::from_str(json).expect("test JSON");
        validate(&mut c, &v).ok_or_else(|| c.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn every_field_is_off_unless_turned_on() {
        assert_eq!(check("{}"), Ok(MetricsPolicy::NONE));
        assert_eq!(
            check(
                r#"{"status_code_metrics":true,"per_consumer":true,"upstream_health_metrics":true}"#
            ),
            Ok(MetricsPolicy {
                status_codes: true,
                per_consumer: true,
                ..MetricsPolicy::NONE
            })
        );
        assert_eq!(
            check(
                r#"{"latency_metrics":true,"bandwidth_metrics":true,"status_code_metrics":true,"per_consumer":true}"#
            ),
            Ok(MetricsPolicy::ALL)
        );
        let errors = check(r#"{"latency_metrics":"yes"}"#).expect_err("refused");
        assert!(
            errors.iter().any(|e| e.contains("latency_metrics")),
            "{errors:?}"
        );
        let errors = check(r#"{"per_consumers":true}"#).expect_err("refused");
        assert!(
            errors.iter().any(|e| e.contains("per_consumers")),
            "{errors:?}"
        );
    }
}
