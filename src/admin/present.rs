//! Entities as Kong's Admin API shows them: every field of the kind's schema, set or defaulted,
//! references as `{id: …}`, secrets masked or redacted as the schema says.

use crate::config::model::{Config, Consumer, Plugin, Route, Service, Sni};
use crate::config::plugins;
use crate::schema::Kind;
use serde_json::{json, Map, Value};

fn reference(id: &Option<String>) -> Value {
    id.as_ref().map_or(Value::Null, |id| json!({ "id": id }))
}

/// A service (its `url` shown split, as Kong stores it).
pub fn service(s: &Service) -> Value {
    let mut out = Kind::Service.schema().present(&s.raw);
    out.remove("url");
    out.insert("id".into(), json!(s.id));
    out.insert("protocol".into(), json!(s.protocol));
    out.insert("host".into(), json!(s.host));
    out.insert("port".into(), json!(s.port));
    out.insert("path".into(), json!(s.path));
    out.insert("enabled".into(), json!(s.enabled));
    Value::Object(out)
}

/// A route.
pub fn route(r: &Route) -> Value {
    let mut out = Kind::Route.schema().present(&r.raw);
    out.insert("id".into(), json!(r.id));
    out.insert("service".into(), reference(&r.service));
    Value::Object(out)
}

/// A plugin, its config shown by the plugin's schema.
pub fn plugin(p: &Plugin) -> Value {
    let mut out = Kind::Plugin.schema().present(&p.raw);
    out.insert("id".into(), json!(p.id));
    out.insert("service".into(), reference(&p.service));
    out.insert("route".into(), reference(&p.route));
    out.insert("consumer".into(), reference(&p.consumer));
    if let Some(spec) = plugins::find(&p.name) {
        let empty = Map::new();
        let raw = p
            .raw
            .get("config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        out.insert("config".into(), Value::Object(spec.schema.present(raw)));
    }
    Value::Object(out)
}

/// A consumer.
pub fn consumer(c: &Consumer) -> Value {
    let mut out = Kind::Consumer.schema().present(&c.raw);
    out.insert("id".into(), json!(c.id));
    Value::Object(out)
}

/// A certificate, with the names of its SNIs as Kong lists them.
pub fn certificate(c: &Config, index: usize) -> Value {
    let cert = &c.certificates[index];
    let mut out = Kind::Certificate.schema().present(&cert.raw);
    out.insert("id".into(), json!(cert.id));
    let names: Vec<&str> = c
        .snis
        .iter()
        .filter(|s| s.certificate.as_deref() == Some(cert.id.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    out.insert("snis".into(), json!(names));
    Value::Object(out)
}

/// An SNI.
pub fn sni(s: &Sni) -> Value {
    let mut out = Kind::Sni.schema().present(&s.raw);
    out.insert("id".into(), json!(s.id));
    out.insert("certificate".into(), reference(&s.certificate));
    Value::Object(out)
}

/// The entity of `kind` at `index`.
pub fn entity(c: &Config, kind: Kind, index: usize) -> Value {
    match kind {
        Kind::Service => service(&c.services[index]),
        Kind::Route => route(&c.routes[index]),
        Kind::Plugin => plugin(&c.plugins[index]),
        Kind::Consumer => consumer(&c.consumers[index]),
        Kind::Certificate => certificate(c, index),
        Kind::Sni => sni(&c.snis[index]),
        Kind::KeyAuth | Kind::Acl | Kind::Jwt => {
            let (id, raw) = c.entity(kind, index);
            let mut out = kind.schema().present(raw);
            out.insert("id".into(), json!(id));
            let consumer = c.scope(kind, index, Kind::Consumer).map(str::to_string);
            out.insert("consumer".into(), reference(&consumer));
            Value::Object(out)
        }
    }
}

/// The whole document with every plugin's secrets hidden (`GET /config`).
pub fn redacted_document(config: &Config) -> Value {
    let mut doc = config.to_document();
    if let Some(Value::Array(list)) = doc.get_mut("plugins") {
        for p in list {
            let spec = p
                .get("name")
                .and_then(Value::as_str)
                .and_then(plugins::find);
            if let (Some(spec), Some(Value::Object(cfg))) = (spec, p.get_mut("config")) {
                spec.schema.hide_secrets(cfg);
            }
        }
    }
    doc
}
