//! Entities as Kong's Admin API shows them: every field, defaults filled in, secrets redacted.

use crate::config::model::{Config, Consumer, Plugin, Route, Service};
use crate::lambda::config::{mask_key, REDACTED};
use serde_json::{json, Map, Value};

fn field(raw: &Map<String, Value>, name: &str, default: Value) -> Value {
    match raw.get(name) {
        Some(v) if !v.is_null() => v.clone(),
        _ => default,
    }
}

fn reference(id: &Option<String>) -> Value {
    id.as_ref().map_or(Value::Null, |id| json!({ "id": id }))
}

/// A service.
pub fn service(s: &Service) -> Value {
    let r = &s.raw;
    json!({
        "id": s.id,
        "name": s.name,
        "protocol": s.protocol,
        "host": s.host,
        "port": s.port,
        "path": s.path,
        "retries": field(r, "retries", json!(5)),
        "connect_timeout": field(r, "connect_timeout", json!(60000)),
        "write_timeout": field(r, "write_timeout", json!(60000)),
        "read_timeout": field(r, "read_timeout", json!(60000)),
        "tags": field(r, "tags", Value::Null),
        "enabled": s.enabled,
        "client_certificate": field(r, "client_certificate", Value::Null),
        "tls_verify": field(r, "tls_verify", Value::Null),
        "tls_verify_depth": field(r, "tls_verify_depth", Value::Null),
        "ca_certificates": field(r, "ca_certificates", Value::Null),
        "created_at": field(r, "created_at", Value::Null),
        "updated_at": field(r, "updated_at", Value::Null),
    })
}

/// A route.
pub fn route(x: &Route) -> Value {
    let r = &x.raw;
    json!({
        "id": x.id,
        "name": x.name,
        "protocols": x.protocols,
        "methods": field(r, "methods", Value::Null),
        "hosts": field(r, "hosts", Value::Null),
        "paths": field(r, "paths", Value::Null),
        "headers": field(r, "headers", Value::Null),
        "https_redirect_status_code": field(r, "https_redirect_status_code", json!(426)),
        "regex_priority": x.regex_priority,
        "strip_path": x.strip_path,
        "path_handling": field(r, "path_handling", json!("v0")),
        "preserve_host": x.preserve_host,
        "request_buffering": field(r, "request_buffering", json!(true)),
        "response_buffering": field(r, "response_buffering", json!(true)),
        "tags": field(r, "tags", Value::Null),
        "service": reference(&x.service),
        "snis": field(r, "snis", Value::Null),
        "sources": field(r, "sources", Value::Null),
        "destinations": field(r, "destinations", Value::Null),
        "created_at": field(r, "created_at", Value::Null),
        "updated_at": field(r, "updated_at", Value::Null),
    })
}

/// A plugin, its secrets redacted.
pub fn plugin(p: &Plugin) -> Value {
    let r = &p.raw;
    json!({
        "id": p.id,
        "name": p.name,
        "config": p.config.to_kong_json(),
        "enabled": field(r, "enabled", json!(true)),
        "protocols": field(r, "protocols", json!(["grpc", "grpcs", "http", "https"])),
        "service": reference(&p.service),
        "route": reference(&p.route),
        "consumer": reference(&p.consumer),
        "tags": field(r, "tags", Value::Null),
        "instance_name": field(r, "instance_name", Value::Null),
        "ordering": field(r, "ordering", Value::Null),
        "created_at": field(r, "created_at", Value::Null),
        "updated_at": field(r, "updated_at", Value::Null),
    })
}

/// A consumer.
pub fn consumer(c: &Consumer) -> Value {
    let r = &c.raw;
    json!({
        "id": c.id,
        "username": c.username,
        "custom_id": c.custom_id,
        "tags": field(r, "tags", Value::Null),
        "created_at": field(r, "created_at", Value::Null),
        "updated_at": field(r, "updated_at", Value::Null),
    })
}

/// The whole document with every plugin's secrets redacted (`GET /config`).
pub fn redacted_document(config: &Config) -> Value {
    let mut doc = config.to_document();
    if let Some(Value::Array(plugins)) = doc.get_mut("plugins") {
        for p in plugins {
            if let Some(Value::Object(cfg)) = p.get_mut("config") {
                redact_config(cfg);
            }
        }
    }
    doc
}

/// Replaces `aws_secret` with the redaction marker and masks `aws_key`.
pub fn redact_config(cfg: &mut Map<String, Value>) {
    if let Some(Value::String(s)) = cfg.get_mut("aws_secret") {
        *s = REDACTED.to_string();
    }
    if let Some(Value::String(k)) = cfg.get_mut("aws_key") {
        *k = mask_key(k);
    }
}

/// A value given back as the redaction marker (or the masked key) keeps the stored secret, so
/// that a GET → edit → PUT round trip does not overwrite credentials with placeholders.
/// Returns an error naming the field when there is no stored secret to keep.
pub fn unredact_config(
    incoming: &mut Map<String, Value>,
    stored: Option<&Map<String, Value>>,
) -> Result<(), String> {
    for name in ["aws_secret", "aws_key"] {
        let Some(Value::String(given)) = incoming.get(name) else {
            continue;
        };
        let stored_value = stored.and_then(|s| s.get(name)).and_then(Value::as_str);
        let is_placeholder = match (name, stored_value) {
            ("aws_secret", _) => given == REDACTED,
            (_, Some(k)) => *given == mask_key(k),
            _ => false,
        };
        if !is_placeholder {
            continue;
        }
        match stored_value {
            Some(v) => {
                incoming.insert(name.to_string(), Value::String(v.to_string()));
            }
            None => {
                return Err(format!(
                    "config.{name}: {given:?} is a redaction placeholder, not a value"
                ))
            }
        }
    }
    Ok(())
}
