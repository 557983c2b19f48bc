//! Entities as Kong's Admin API shows them: every field of the kind's schema, set or defaulted,
//! references as `{id: …}`, secrets masked or redacted as the schema says.

use crate::config::model::{Config, Plugin, Service};
use crate::config::plugins;
use crate::schema::Kind;
use serde_json::{json, Map, Value};

fn reference(id: Option<&str>) -> Value {
    id.map_or(Value::Null, |id| json!({ "id": id }))
}

/// The entity of `kind` at `index`: the schema's fields, its id, its references as `{id: …}`,
/// and what Kong shows differently for a kind.
pub fn entity(c: &Config, kind: Kind, index: usize) -> Value {
    let (id, raw) = c.entity(kind, index);
    let mut out = kind.schema().present(raw);
    out.insert("id".into(), json!(id));
    for (field, to) in kind.references() {
        out.insert(field.into(), reference(c.scope(kind, index, to)));
    }
    match kind {
        Kind::Service => split_url(&c.services[index], &mut out),
        Kind::Plugin => plugin_config(&c.plugins[index], &mut out),
        Kind::Certificate => sni_names(c, index, &mut out),
        _ => {}
    }
    Value::Object(out)
}

/// A service's `url` shown split, as Kong stores it.
fn split_url(s: &Service, out: &mut Map<String, Value>) {
    out.remove("url");
    out.insert("protocol".into(), json!(s.protocol));
    out.insert("host".into(), json!(s.host));
    out.insert("port".into(), json!(s.port));
    out.insert("path".into(), json!(s.path));
}

/// A plugin's config shown by the plugin's schema.
fn plugin_config(p: &Plugin, out: &mut Map<String, Value>) {
    if let Some(spec) = plugins::find(&p.name) {
        let empty = Map::new();
        let raw = p
            .raw
            .get("config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        out.insert("config".into(), Value::Object(spec.schema.present(raw)));
    }
}

/// A certificate's SNIs by name, as Kong lists them.
fn sni_names(c: &Config, index: usize, out: &mut Map<String, Value>) {
    let id = &c.certificates[index].id;
    let names: Vec<&str> = c
        .snis
        .iter()
        .filter(|s| s.certificate.as_deref() == Some(id.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    out.insert("snis".into(), json!(names));
}

/// Every entity of `kind`, by id (`POST /config`'s answer).
pub fn by_id(c: &Config, kind: Kind) -> Value {
    Value::Object(
        (0..c.count(kind))
            .map(|i| (c.entity(kind, i).0.to_string(), entity(c, kind, i)))
            .collect(),
    )
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
