//! The validated configuration: Kong's entities, with references resolved to ids and the
//! aws-lambda plugin's config parsed into [`LambdaConfig`]. Nothing here can hold an invalid
//! state: the validator is the only way in.

use crate::lambda::config::LambdaConfig;
use crate::schema::Kind;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A Kong service. For a Lambda gateway it is a container for routes and plugins; its upstream
/// URL is optional and never called.
#[derive(Clone, Debug)]
pub struct Service {
    /// UUID (given or generated).
    pub id: String,
    /// Unique name, if any.
    pub name: Option<String>,
    /// Upstream protocol, host, port, path: kept for round-tripping, not used to proxy.
    pub protocol: String,
    /// See `protocol`.
    pub host: Option<String>,
    /// See `protocol`.
    pub port: u16,
    /// See `protocol`.
    pub path: Option<String>,
    /// Whether the service's routes are served.
    pub enabled: bool,
    /// The entity as written (nested entities removed, `id` filled in): what is persisted.
    pub raw: Map<String, Value>,
}

/// A Kong route.
#[derive(Clone, Debug)]
pub struct Route {
    /// UUID (given or generated).
    pub id: String,
    /// Unique name, if any.
    pub name: Option<String>,
    /// The service id this route belongs to.
    pub service: Option<String>,
    /// Prefix paths, and regex paths starting with `~`.
    pub paths: Vec<String>,
    /// Upper-case methods.
    pub methods: Vec<String>,
    /// Lower-case hosts, exact or with one leading or trailing `*` label.
    pub hosts: Vec<String>,
    /// Header name (lower-case) → accepted values (lower-case).
    pub headers: Vec<(String, Vec<String>)>,
    /// Kong's `strip_path` (default true): used by the API Gateway event's `path`.
    pub strip_path: bool,
    /// Kong's `preserve_host`: accepted; a Lambda invoke has no upstream Host to preserve.
    pub preserve_host: bool,
    /// Kong's `regex_priority`.
    pub regex_priority: i64,
    /// `http` and/or `https`.
    pub protocols: Vec<String>,
    /// The entity as written (`id` filled in, `service` as `{id: …}`): what is persisted.
    pub raw: Map<String, Value>,
}

/// A plugin's validated config, by plugin.
#[derive(Clone, Debug)]
pub enum PluginConfig {
    /// `aws-lambda`.
    AwsLambda(Arc<LambdaConfig>),
    /// A plugin that runs before the function (`cors`, `ip-restriction` …).
    Access(crate::access::AccessPlugin),
    /// `prometheus`: which series its requests are counted in.
    Prometheus(crate::metrics::MetricsPolicy),
}

/// A plugin instance.
#[derive(Clone, Debug)]
pub struct Plugin {
    /// UUID (given or generated).
    pub id: String,
    /// The plugin's name (`aws-lambda`).
    pub name: String,
    /// Disabled plugins are ignored.
    pub enabled: bool,
    /// Scoped to this service id.
    pub service: Option<String>,
    /// Scoped to this route id.
    pub route: Option<String>,
    /// Scoped to this consumer id.
    pub consumer: Option<String>,
    /// The validated plugin config.
    pub config: PluginConfig,
    /// The entity as written (`id` filled in, references as `{id: …}`): what is persisted.
    pub raw: Map<String, Value>,
}

/// A Kong consumer.
#[derive(Clone, Debug)]
pub struct Consumer {
    /// UUID (given or generated).
    pub id: String,
    /// Unique username, if any.
    pub username: Option<String>,
    /// Unique custom id, if any.
    pub custom_id: Option<String>,
    /// The entity as written (nested plugins removed, `id` filled in): what is persisted.
    pub raw: Map<String, Value>,
}

/// A server certificate for HTTPS clients.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// UUID (given or generated).
    pub id: String,
    /// The chain and key, checked.
    pub key: Arc<rustls::sign::CertifiedKey>,
    /// `cert_alt`/`key_alt`: a second chain (e.g. ECDSA beside RSA), checked.
    pub alt: Option<Arc<rustls::sign::CertifiedKey>>,
    /// The entity as written (nested snis removed, `id` filled in): what is persisted.
    pub raw: Map<String, Value>,
}

/// A name a certificate is served for.
#[derive(Clone, Debug)]
pub struct Sni {
    /// UUID (given or generated).
    pub id: String,
    /// A host name or a wildcard (`*.example.com`, `example.*`).
    pub name: String,
    /// The certificate id.
    pub certificate: Option<String>,
    /// The entity as written (`id` filled in, `certificate` as `{id: …}`).
    pub raw: Map<String, Value>,
}

/// A consumer's API key.
#[derive(Clone, Debug)]
pub struct KeyAuthCredential {
    /// UUID (given or generated).
    pub id: String,
    /// The consumer id.
    pub consumer: Option<String>,
    /// The key.
    pub key: String,
    /// The entity as written (`id` and a generated `key` filled in, `consumer` as `{id: …}`).
    pub raw: Map<String, Value>,
}

/// A consumer's ACL group.
#[derive(Clone, Debug)]
pub struct AclGroup {
    /// UUID (given or generated).
    pub id: String,
    /// The consumer id.
    pub consumer: Option<String>,
    /// The group.
    pub group: String,
    /// The entity as written.
    pub raw: Map<String, Value>,
}

/// A consumer's JWT credential.
#[derive(Clone, Debug)]
pub struct JwtSecret {
    /// UUID (given or generated).
    pub id: String,
    /// The consumer id.
    pub consumer: Option<String>,
    /// The `key` tokens name (given or generated).
    pub key: String,
    /// The algorithm and key or secret, parsed at load (`None` only in a configuration
    /// with errors, which is never served).
    pub verifier: Option<std::sync::Arc<crate::access::jwt::Verifier>>,
    /// The entity as written (`id`, a generated `key` and `secret` filled in).
    pub raw: Map<String, Value>,
}

/// A whole validated configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// All services.
    pub services: Vec<Service>,
    /// All routes, nested ones included, in document order.
    pub routes: Vec<Route>,
    /// All plugins, nested ones included.
    pub plugins: Vec<Plugin>,
    /// All consumers.
    pub consumers: Vec<Consumer>,
    /// All certificates.
    pub certificates: Vec<Certificate>,
    /// All SNIs, nested ones included.
    pub snis: Vec<Sni>,
    /// All key-auth credentials, nested ones included.
    pub keyauth_credentials: Vec<KeyAuthCredential>,
    /// All ACL groups, nested ones included.
    pub acls: Vec<AclGroup>,
    /// All JWT credentials, nested ones included.
    pub jwt_secrets: Vec<JwtSecret>,
}

/// What every stored entity has: a kind, an id, its fields as written, and the ids of the
/// entities it refers to (a route's service, a plugin's service, route and consumer).
pub trait Entity {
    /// Its kind.
    const KIND: Kind;
    /// Its id.
    fn id(&self) -> &str;
    /// The entity as written and persisted.
    fn raw(&self) -> &Map<String, Value>;
    /// The id of the entity of kind `to` it refers to, if any.
    fn reference(&self, to: Kind) -> Option<&str> {
        let _ = to;
        None
    }
}

/// A list of one kind's entities, as the Admin API and the validator read any kind.
pub trait EntityList {
    /// How many.
    fn count(&self) -> usize;
    /// The id and stored fields of the `i`th.
    fn row(&self, i: usize) -> (&str, &Map<String, Value>);
    /// The id the `i`th refers to in kind `to`.
    fn reference(&self, i: usize, to: Kind) -> Option<&str>;
}

impl<E: Entity> EntityList for Vec<E> {
    fn count(&self) -> usize {
        self.len()
    }
    fn row(&self, i: usize) -> (&str, &Map<String, Value>) {
        (self[i].id(), self[i].raw())
    }
    fn reference(&self, i: usize, to: Kind) -> Option<&str> {
        self[i].reference(to)
    }
}

/// Implements [`Entity`] for a struct with `id` and `raw` fields, and the reference fields
/// named (each `Option<String>`, named as the kind's `reference_field`).
macro_rules! entity {
    ($ty:ty, $kind:ident $(, $field:ident: $to:ident)*) => {
        impl Entity for $ty {
            const KIND: Kind = Kind::$kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn raw(&self) -> &Map<String, Value> {
                &self.raw
            }
            fn reference(&self, to: Kind) -> Option<&str> {
                match to {
                    $( Kind::$to => self.$field.as_deref(), )*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use entity;

entity!(Service, Service);
entity!(Route, Route, service: Service);
entity!(Consumer, Consumer);
entity!(Plugin, Plugin, service: Service, route: Route, consumer: Consumer);
entity!(Certificate, Certificate);
entity!(Sni, Sni, certificate: Certificate);
entity!(KeyAuthCredential, KeyAuth, consumer: Consumer);
entity!(AclGroup, Acl, consumer: Consumer);
entity!(JwtSecret, Jwt, consumer: Consumer);

impl Config {
    /// The entities of `kind`.
    pub fn list(&self, kind: Kind) -> &dyn EntityList {
        match kind {
            Kind::Service => &self.services,
            Kind::Route => &self.routes,
            Kind::Consumer => &self.consumers,
            Kind::Plugin => &self.plugins,
            Kind::Certificate => &self.certificates,
            Kind::Sni => &self.snis,
            Kind::KeyAuth => &self.keyauth_credentials,
            Kind::Acl => &self.acls,
            Kind::Jwt => &self.jwt_secrets,
        }
    }

    /// How many entities of `kind` there are.
    pub fn count(&self, kind: Kind) -> usize {
        self.list(kind).count()
    }

    /// The id and stored fields of entity `kind[i]` (`i` below [`Config::count`]).
    pub fn entity(&self, kind: Kind, i: usize) -> (&str, &Map<String, Value>) {
        self.list(kind).row(i)
    }

    /// The index of the entity of `kind` that `key` names: its id (in any case), or the value
    /// of one of its unique fields (a service's name, a consumer's username or custom_id …).
    pub fn find(&self, kind: Kind, key: &str) -> Option<usize> {
        let id = key.to_ascii_lowercase();
        (0..self.count(kind)).find(|&i| {
            let (entity_id, raw) = self.entity(kind, i);
            entity_id == id
                || kind
                    .schema()
                    .unique_fields()
                    .any(|f| raw.get(f.name).and_then(Value::as_str) == Some(key))
        })
    }

    /// The id of the `parent` entity that `kind[i]` is scoped to: a route's service, a
    /// plugin's service, route or consumer.
    pub fn scope(&self, kind: Kind, i: usize, parent: Kind) -> Option<&str> {
        self.list(kind).reference(i, parent)
    }

    /// The canonical declarative document: flat entity lists, every entity with its id,
    /// references as `{id: …}`. This is what the Admin API persists.
    pub fn to_document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("_format_version".into(), Value::String("3.0".into()));
        for kind in Kind::ALL {
            let list = (0..self.count(kind))
                .map(|i| Value::Object(self.entity(kind, i).1.clone()))
                .collect();
            doc.insert(kind.collection().into(), Value::Array(list));
        }
        Value::Object(doc)
    }
}

/// The entity `obj` as it is persisted: without the nested lists in `nested`, with `id` set.
pub fn raw_entity(obj: &Map<String, Value>, id: &str, nested: &[&str]) -> Map<String, Value> {
    let mut raw: Map<String, Value> = Map::new();
    raw.insert("id".into(), Value::String(id.to_string()));
    for (k, v) in obj {
        if k != "id" && !nested.contains(&k.as_str()) {
            raw.insert(k.clone(), v.clone());
        }
    }
    raw
}

/// `{"id": id}`, a reference as Kong writes it.
pub fn id_ref(id: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(id.to_string()));
    Value::Object(m)
}

pub use crate::schema::entities::{is_uuid, new_uuid};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = new_uuid();
        let b = new_uuid();
        assert!(is_uuid(&a) && is_uuid(&b));
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
        assert!(!is_uuid("not-a-uuid"));
    }
}
