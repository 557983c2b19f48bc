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
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};

/// The plugin's schema (Kong 3.x's fields).
pub static SCHEMA: Schema = Schema {
    name: "prometheus",
    fields: &[
        Field::new("per_consumer", Type::Boolean).default(Default::Bool(false)),
        Field::new("status_code_metrics", Type::Boolean).default(Default::Bool(false)),
        Field::new("latency_metrics", Type::Boolean).default(Default::Bool(false)),
        Field::new("bandwidth_metrics", Type::Boolean).default(Default::Bool(false)),
        // Kong's upstream target health and AI gateway series: this gateway has neither
        // upstream targets nor AI plugins, so there is nothing for them to turn on.
        Field::new("upstream_health_metrics", Type::Boolean).default(Default::Bool(false)),
        Field::new("ai_metrics", Type::Boolean).default(Default::Bool(false)),
    ],
};

/// Validates a `config` object.
pub fn validate(c: &mut Checker, value: &Value) -> Option<MetricsPolicy> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    (c.errors.len() == before).then(|| MetricsPolicy {
        status_codes: SCHEMA.boolean(obj, "status_code_metrics"),
        latency: SCHEMA.boolean(obj, "latency_metrics"),
        bandwidth: SCHEMA.boolean(obj, "bandwidth_metrics"),
        per_consumer: SCHEMA.boolean(obj, "per_consumer"),
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
