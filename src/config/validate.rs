//! Walks a parsed declarative document, building the model and recording every problem with its
//! path. Each entity is checked against its kind's schema (`crate::schema`), then built from the
//! checked values; entity-level rules (a route needs something to match on …) follow.
//! References (a route's `service`, a plugin's `route` …) are resolved after all entities are
//! known, so their order in the file does not matter.

use super::model::{
    id_ref, new_uuid, raw_entity, AclGroup, Certificate, Config, Consumer, Entity, EntityList,
    JwtSecret, KeyAuthCredential, Plugin, PluginConfig, Route, Service, Sni,
};
use crate::schema::check::{describe, Checker, ConfigError, ConfigErrors};
use crate::schema::entities::{
    parse_service_url, AclFields, CertificateFields, ConsumerFields, JwtSecretFields,
    KeyAuthFields, PluginFields, RouteFields, ServiceFields, SniFields, UNROUTABLE, UNROUTABLE_WHY,
};
use crate::schema::{header_map, reference_target, Kind, Type};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const FORMAT_VERSIONS: &[&str] = &["1.1", "2.1", "3.0"];

/// A reference written in the file (name or id), with where it was written, resolved at the end.
struct PendingRef {
    path: String,
    target: String,
    /// The referring entity's kind and index, and the kind it refers to.
    from: (Kind, usize),
    to: Kind,
}

/// A plugin as read, its config `None` if it failed validation: it keeps its index (references
/// point at it) and the document fails as a whole.
struct PluginDraft {
    id: String,
    name: String,
    enabled: bool,
    service: Option<String>,
    route: Option<String>,
    consumer: Option<String>,
    config: Option<PluginConfig>,
    raw: Map<String, Value>,
}

impl PluginDraft {
    fn into_plugin(self) -> Option<Plugin> {
        Some(Plugin {
            config: self.config?,
            id: self.id,
            name: self.name,
            enabled: self.enabled,
            service: self.service,
            route: self.route,
            consumer: self.consumer,
            raw: self.raw,
        })
    }
}

/// A certificate as read, `key` `None` if its chain or key failed (the document fails).
struct CertificateDraft {
    id: String,
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    alt: Option<Arc<rustls::sign::CertifiedKey>>,
    raw: Map<String, Value>,
}

super::model::entity!(PluginDraft, Plugin, service: Service, route: Route, consumer: Consumer);
super::model::entity!(CertificateDraft, Certificate);

#[derive(Default)]
struct Builder {
    c: Checker,
    config: Config,
    plugins: Vec<PluginDraft>,
    certificates: Vec<CertificateDraft>,
    refs: Vec<PendingRef>,
    /// Where each entity is written, by kind, in the order they were read
    /// (`services[0].routes[1]`): messages name the place in the file, nested or not.
    written_at: HashMap<Kind, Vec<String>>,
}

/// Validates a whole document.
pub(super) fn config(doc: &Value) -> Result<Config, ConfigErrors> {
    let mut b = Builder::default();
    // An empty document is refused like any other without `_format_version`, as Kong does.
    if let Some(root) = b.c.object(doc) {
        b.root(root);
    }
    b.resolve_refs();
    b.check_unique();
    let mut config = b.config;
    // A draft without a config had its errors recorded when it failed.
    config.plugins = b
        .plugins
        .into_iter()
        .filter_map(PluginDraft::into_plugin)
        .collect();
    config.certificates = b
        .certificates
        .into_iter()
        .filter_map(|d| {
            Some(Certificate {
                key: d.key?,
                id: d.id,
                alt: d.alt,
                raw: d.raw,
            })
        })
        .collect();
    if b.c.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(b.c.errors))
    }
}

/// Where an entity sits: at the top level, or nested in one of another kind.
#[derive(Clone)]
enum Parent {
    None,
    Of(Kind, String),
}

impl Parent {
    fn id_of(&self, kind: Kind) -> Option<String> {
        match self {
            Parent::Of(k, id) if *k == kind => Some(id.clone()),
            _ => None,
        }
    }
}

impl Builder {
    fn root(&mut self, root: &Map<String, Value>) {
        self.c.unknown_fields(
            root,
            &[
                "_format_version",
                "_transform",
                "_comment",
                "_workspace",
                "services",
                "routes",
                "plugins",
                "consumers",
                "certificates",
                "snis",
                "keyauth_credentials",
                "acls",
                "jwt_secrets",
            ],
        );
        match root.get("_format_version") {
            Some(Value::String(v)) if FORMAT_VERSIONS.contains(&v.as_str()) => {}
            Some(other) => self.c.error_at(
                "_format_version",
                format!(
                    "expected one of {FORMAT_VERSIONS:?}, got {}",
                    describe(other)
                ),
            ),
            None => self
                .c
                .error_at("_format_version", "required field missing (use \"3.0\")"),
        }
        if let Some(v) = root.get("_transform") {
            if !v.is_boolean() {
                self.c.error_at(
                    "_transform",
                    format!("expected a boolean, got {}", describe(v)),
                );
            }
        }
        for kind in Kind::ALL {
            self.each(root, kind, &Parent::None);
        }
    }

    /// Validates each entity of the array `obj[kind's collection]`, with the path set.
    fn each(&mut self, obj: &Map<String, Value>, kind: Kind, parent: &Parent) {
        let key = kind.collection();
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.c.push_field(key);
                    self.c.push_index(i);
                    match item {
                        // A certificate's `snis` may be written as bare names, as in Kong.
                        Value::String(name) if kind == Kind::Sni => {
                            let mut obj = Map::new();
                            obj.insert("name".into(), Value::String(name.clone()));
                            self.entity(kind, &Value::Object(obj), parent);
                        }
                        _ => self.entity(kind, item, parent),
                    }
                    self.c.pop();
                    self.c.pop();
                }
            }
            // The schema reports the type error where the field is.
            Some(_) if !matches!(parent, Parent::None) => {}
            Some(other) => self
                .c
                .error_at(key, format!("expected an array, got {}", describe(other))),
        }
    }

    fn entity(&mut self, kind: Kind, value: &Value, parent: &Parent) {
        let Some(written) = self.c.object(value) else {
            return;
        };
        let schema = kind.schema();
        // Vault references are checked and used as their values; the entity keeps them as
        // written (`raw`), so that the Admin API and the file show the reference.
        let resolved = super::vault::resolve_fields(&mut self.c, schema, written);
        let obj = resolved.as_ref().unwrap_or(written);
        schema.check(&mut self.c, obj);
        let id = match obj.get("id").and_then(Value::as_str) {
            Some(id) => id.to_ascii_lowercase(),
            None => new_uuid(),
        };
        let nested: Vec<&str> = schema
            .fields
            .iter()
            .filter(|f| matches!(f.ty, Type::Nested(_)))
            .map(|f| f.name)
            .collect();
        let mut raw = raw_entity(written, &id, &nested);
        let index = self.list(kind).count();
        let here = self.c.path();
        self.written_at.entry(kind).or_default().push(here);
        // References: from the parent when nested (and then not also written), else deferred.
        let mut parents: HashMap<Kind, String> = HashMap::new();
        for field in schema.fields {
            let Type::Reference(to) = field.ty else {
                continue;
            };
            if let Some(pid) = parent.id_of(to) {
                if obj.get(field.name).is_some_and(|v| !v.is_null()) {
                    let what = kind.reference_field();
                    self.c.error_at(
                        field.name,
                        format!("a nested {what} takes its {} from its parent", field.name),
                    );
                }
                raw.insert(field.name.into(), id_ref(&pid));
                parents.insert(to, pid);
            } else if let Some(reference) = obj.get(field.name).filter(|v| !v.is_null()) {
                let target = self.c.field(field.name, |c| reference_target(c, reference));
                if let Some(target) = target {
                    let path = self.c.field(field.name, |c| c.path());
                    self.refs.push(PendingRef {
                        path,
                        target,
                        from: (kind, index),
                        to,
                    });
                }
            } else if field.required {
                self.c.error_at(field.name, "required field missing");
            }
        }
        match kind {
            Kind::Service => self.service(obj, id.clone(), raw),
            Kind::Route => self.route(obj, id.clone(), raw, parents.remove(&Kind::Service)),
            Kind::Consumer => self.consumer(obj, id.clone(), raw),
            Kind::Plugin => self.plugin(obj, id.clone(), raw, parents),
            Kind::Certificate => self.certificate(obj, id.clone(), raw),
            Kind::Sni => self.sni(obj, id.clone(), raw, parents.remove(&Kind::Certificate)),
            Kind::KeyAuth => self.keyauth(obj, id.clone(), raw, parents.remove(&Kind::Consumer)),
            Kind::Acl => self.acl(obj, id.clone(), raw, parents.remove(&Kind::Consumer)),
            Kind::Jwt => self.jwt(obj, id.clone(), raw, parents.remove(&Kind::Consumer)),
        }
        for field in schema.fields {
            if let Type::Nested(child) = field.ty {
                self.each(obj, child, &Parent::Of(kind, id.clone()));
            }
        }
    }

    /// The entities of `kind` read so far (plugins and certificates still as drafts).
    fn list(&self, kind: Kind) -> &dyn EntityList {
        match kind {
            Kind::Plugin => &self.plugins,
            Kind::Certificate => &self.certificates,
            _ => self.config.list(kind),
        }
    }

    fn acl(
        &mut self,
        obj: &Map<String, Value>,
        id: String,
        raw: Map<String, Value>,
        parent: Option<String>,
    ) {
        self.config.acls.push(AclGroup {
            id,
            consumer: parent,
            group: AclFields::read(obj).group.unwrap_or_default(),
            raw,
        });
    }

    fn jwt(
        &mut self,
        obj: &Map<String, Value>,
        id: String,
        mut raw: Map<String, Value>,
        parent: Option<String>,
    ) {
        let fields = JwtSecretFields::read(obj);
        // Kong makes up the key and the secret when they are not given; both are kept.
        let mut generated = |field: &str, given: Option<String>| match given {
            Some(v) => v,
            None => {
                let v = new_uuid().replace('-', "");
                raw.insert(field.into(), Value::String(v.clone()));
                v
            }
        };
        let key = generated("key", fields.key);
        let secret = generated("secret", fields.secret);
        let public_key = fields.rsa_public_key.as_deref();
        let verifier =
            match crate::access::jwt::Verifier::new(&fields.algorithm, &secret, public_key) {
                Ok(verifier) => Some(Arc::new(verifier)),
                Err(e) => {
                    // A bad algorithm name was reported by the schema.
                    if let Some(("rsa_public_key", why)) = e.split_once(": ") {
                        self.c.error_at("rsa_public_key", why);
                    }
                    None
                }
            };
        // Kept even when invalid: references are resolved by position.
        self.config.jwt_secrets.push(JwtSecret {
            id,
            consumer: parent,
            key,
            verifier,
            raw,
        });
    }

    fn keyauth(
        &mut self,
        obj: &Map<String, Value>,
        id: String,
        mut raw: Map<String, Value>,
        parent: Option<String>,
    ) {
        // Kong makes up a key when none is given; it is kept with the entity.
        let key = match KeyAuthFields::read(obj).key {
            Some(k) => k,
            None => {
                let key = new_uuid().replace('-', "");
                raw.insert("key".into(), Value::String(key.clone()));
                key
            }
        };
        self.config.keyauth_credentials.push(KeyAuthCredential {
            id,
            consumer: parent,
            key,
            raw,
        });
    }

    fn certificate(&mut self, obj: &Map<String, Value>, id: String, raw: Map<String, Value>) {
        let fields = CertificateFields::read(obj);
        let now = rustls::pki_types::UnixTime::now();
        let mut pair = |cert: &str, c: &Option<String>, k: &Option<String>| {
            let (Some(c), Some(k)) = (c, k) else {
                return None;
            };
            match crate::certificate::from_pem(c.as_bytes(), k.as_bytes(), now) {
                Ok(certified) => Some(Arc::new(certified)),
                Err(why) => {
                    self.c.error_at(cert, why);
                    None
                }
            }
        };
        let key = pair("cert", &fields.cert, &fields.key);
        let alt = pair("cert_alt", &fields.cert_alt, &fields.key_alt);
        if fields.cert_alt.is_some() != fields.key_alt.is_some() {
            self.c
                .error("all or none of these fields must be set: 'cert_alt', 'key_alt'");
        }
        self.certificates
            .push(CertificateDraft { id, key, alt, raw });
    }

    fn sni(
        &mut self,
        obj: &Map<String, Value>,
        id: String,
        raw: Map<String, Value>,
        parent: Option<String>,
    ) {
        self.config.snis.push(Sni {
            id,
            name: SniFields::read(obj).name.unwrap_or_default(),
            certificate: parent,
            raw,
        });
    }

    fn service(&mut self, obj: &Map<String, Value>, id: String, raw: Map<String, Value>) {
        let fields = ServiceFields::read(obj);
        let mut service = Service {
            id,
            name: fields.name,
            protocol: "http".into(),
            host: None,
            port: 80,
            path: None,
            enabled: fields.enabled,
            raw,
        };
        if let Some(url) = &fields.url {
            for key in ["protocol", "host", "port", "path"] {
                if obj.get(key).is_some_and(|v| !v.is_null()) {
                    self.c.error_at(key, "cannot be set together with url");
                }
            }
            // The schema reported a URL that does not parse.
            if let Ok(u) = parse_service_url(url) {
                service.protocol = u.protocol;
                service.host = Some(u.host);
                service.port = u.port;
                service.path = u.path;
            }
        } else {
            if let Some(protocol) = obj.get("protocol").and_then(Value::as_str) {
                service.protocol = protocol.to_string();
                service.port = if matches!(protocol, "https" | "grpcs") {
                    443
                } else {
                    80
                };
            }
            service.host = fields.host;
            if obj.get("port").is_some_and(|v| !v.is_null()) {
                service.port = u16::try_from(fields.port).unwrap_or(service.port);
            }
            service.path = fields.path;
        }
        self.config.services.push(service);
    }

    fn route(
        &mut self,
        obj: &Map<String, Value>,
        id: String,
        raw: Map<String, Value>,
        service: Option<String>,
    ) {
        let fields = RouteFields::read(obj);
        for key in UNROUTABLE {
            if obj
                .get(key)
                .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()) || v.is_object())
            {
                self.c.error_at(key, UNROUTABLE_WHY);
            }
        }
        let route = Route {
            id,
            name: fields.name,
            service,
            strip_path: fields.strip_path,
            preserve_host: fields.preserve_host,
            regex_priority: fields.regex_priority,
            paths: fields.paths,
            methods: fields.methods,
            hosts: fields
                .hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            headers: header_map(fields.headers.as_ref()),
            protocols: fields.protocols,
            raw,
        };
        // Only when none is written at all: a field written wrong has its own error.
        let written = |key: &str| match obj.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        };
        if !["paths", "methods", "hosts", "headers"]
            .into_iter()
            .any(written)
        {
            self.c
                .error("must set one of 'methods', 'hosts', 'headers', 'paths'");
        }
        self.config.routes.push(route);
    }

    fn consumer(&mut self, obj: &Map<String, Value>, id: String, raw: Map<String, Value>) {
        let ConsumerFields {
            username,
            custom_id,
            ..
        } = ConsumerFields::read(obj);
        if username.as_deref().unwrap_or("").is_empty()
            && custom_id.as_deref().unwrap_or("").is_empty()
        {
            self.c
                .error("at least one of these fields must be non-empty: 'custom_id', 'username'");
        }
        self.config.consumers.push(Consumer {
            id,
            username,
            custom_id,
            raw,
        });
    }

    fn plugin(
        &mut self,
        obj: &Map<String, Value>,
        id: String,
        raw: Map<String, Value>,
        mut parents: HashMap<Kind, String>,
    ) {
        let fields = PluginFields::read(obj);
        let name = fields.name.unwrap_or_default();
        let empty = Value::Object(Map::new());
        let config_value = obj.get("config").filter(|v| !v.is_null()).unwrap_or(&empty);
        let config = match super::plugins::find(&name) {
            Some(spec) => self.c.field("config", |c| {
                let resolved = config_value
                    .as_object()
                    .and_then(|cfg| super::vault::resolve_fields(c, spec.schema, cfg))
                    .map(Value::Object);
                spec.validate(c, resolved.as_ref().unwrap_or(config_value), &id)
            }),
            None => {
                if !name.is_empty() {
                    self.c.error_at("name", super::plugins::unknown(&name));
                }
                None
            }
        };
        self.plugins.push(PluginDraft {
            id,
            name,
            enabled: fields.enabled,
            service: parents.remove(&Kind::Service),
            route: parents.remove(&Kind::Route),
            consumer: parents.remove(&Kind::Consumer),
            config,
            raw,
        });
    }

    fn resolve_refs(&mut self) {
        // One map per kind from every id and unique name to the id of the first entity
        // carrying it, so each reference is one lookup however large the config.
        let mut index: HashMap<Kind, HashMap<String, String>> = HashMap::new();
        let mut add = |kind: Kind, id: &str, names: &[Option<&str>]| {
            let map = index.entry(kind).or_default();
            for key in std::iter::once(Some(id))
                .chain(names.iter().copied())
                .flatten()
            {
                map.entry(key.to_string()).or_insert_with(|| id.to_string());
            }
        };
        for s in &self.config.services {
            add(Kind::Service, &s.id, &[s.name.as_deref()]);
        }
        for r in &self.config.routes {
            add(Kind::Route, &r.id, &[r.name.as_deref()]);
        }
        for c in &self.config.consumers {
            add(
                Kind::Consumer,
                &c.id,
                &[c.username.as_deref(), c.custom_id.as_deref()],
            );
        }
        for c in &self.certificates {
            add(Kind::Certificate, &c.id, &[]);
        }
        for r in std::mem::take(&mut self.refs) {
            let Some(id) = index.get(&r.to).and_then(|m| m.get(&r.target)).cloned() else {
                let message = format!("no {} named {:?}", r.to.reference_field(), r.target);
                self.c.errors.push(ConfigError::new(r.path, message));
                continue;
            };
            let field = r.to.reference_field();
            let (raw, slot) = match r.from {
                (Kind::Route, i) => {
                    let route = &mut self.config.routes[i];
                    (&mut route.raw, &mut route.service)
                }
                (Kind::Plugin, i) => {
                    let p = &mut self.plugins[i];
                    let slot = match r.to {
                        Kind::Service => &mut p.service,
                        Kind::Route => &mut p.route,
                        _ => &mut p.consumer,
                    };
                    (&mut p.raw, slot)
                }
                (Kind::Sni, i) => {
                    let sni = &mut self.config.snis[i];
                    (&mut sni.raw, &mut sni.certificate)
                }
                (Kind::KeyAuth, i) => {
                    let k = &mut self.config.keyauth_credentials[i];
                    (&mut k.raw, &mut k.consumer)
                }
                (Kind::Acl, i) => {
                    let a = &mut self.config.acls[i];
                    (&mut a.raw, &mut a.consumer)
                }
                (Kind::Jwt, i) => {
                    let j = &mut self.config.jwt_secrets[i];
                    (&mut j.raw, &mut j.consumer)
                }
                // Only routes, plugins and snis refer to other entities.
                _ => continue,
            };
            raw.insert(field.into(), id_ref(&id));
            *slot = Some(id);
        }
    }

    /// Kong's uniqueness rules: unique fields per kind, one plugin of a name per scope. Each
    /// clash is reported where the later entity is written, in Kong's words, with the clashing
    /// values (the Admin API answers them as a 409). As Kong checks an entity's schema before
    /// its uniqueness, an entity with errors of its own is not also reported as a clash.
    fn check_unique(&mut self) {
        let written_at = std::mem::take(&mut self.written_at);
        let place = |kind: Kind, i: usize| {
            written_at
                .get(&kind)
                .and_then(|paths| paths.get(i))
                .cloned()
                .unwrap_or_else(|| format!("{}[{i}]", kind.collection()))
        };
        let invalid = entities_with_errors(&written_at, &self.c.errors);
        let mut clashes = Vec::new();
        for kind in Kind::ALL {
            let schema = kind.schema();
            let list = self.list(kind);
            let mut seen = HashSet::new();
            for i in 0..list.count() {
                if invalid.contains(&place(kind, i)) {
                    continue;
                }
                for (field, value) in schema.unique_values(list.row(i).1) {
                    if !seen.insert((field, value)) {
                        clashes.push(ConfigError::unique(
                            format!("{}.{field}", place(kind, i)),
                            json!({ field: value }),
                        ));
                    }
                }
            }
        }
        self.c.errors.extend(clashes);
        let mut seen = HashSet::new();
        for (i, p) in self.plugins.iter().enumerate() {
            if invalid.contains(&place(Kind::Plugin, i)) {
                continue;
            }
            let scope = |id: &Option<String>| id.as_ref().map_or(Value::Null, |id| id_ref(id));
            let key = json!({
                "consumer": scope(&p.consumer),
                "name": p.name,
                "route": scope(&p.route),
                "service": scope(&p.service),
            });
            if !seen.insert(key.to_string()) {
                let path = format!("{}.name", place(Kind::Plugin, i));
                self.c.errors.push(ConfigError::unique(path, key));
            }
        }
    }
}

/// The places of the entities that errors were reported in: for each error, the innermost
/// entity whose place its path starts with (`services[0].routes[1]` for
/// `services[0].routes[1].paths[0]`).
fn entities_with_errors(
    written_at: &HashMap<Kind, Vec<String>>,
    errors: &[ConfigError],
) -> HashSet<String> {
    let entities: HashSet<&str> = written_at.values().flatten().map(String::as_str).collect();
    errors
        .iter()
        .filter_map(|e| {
            let path = e.path.as_str();
            std::iter::once(path)
                .chain(path.rmatch_indices('.').map(|(end, _)| &path[..end]))
                .find(|prefix| entities.contains(prefix))
                .map(str::to_string)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    fn errors(doc: &str) -> Vec<String> {
        match parse(doc) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn the_seed_config_loads() {
        let cfg = parse(
            r#"
_format_version: "3.0"
services:
- name: lambda1
  url: http://localhost:8000
  routes:
  - name: lambda1
    paths: [/lambda1]
  plugins:
  - name: aws-lambda
    config:
      aws_key: AKIDEXAMPLE
      aws_secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY="
      aws_region: us-east-1
      function_name: MyLambda
"#,
        )
        .expect("valid");
        assert_eq!(cfg.services.len(), 1);
        assert_eq!(
            cfg.routes[0].service.as_deref(),
            Some(cfg.services[0].id.as_str())
        );
        assert_eq!(
            cfg.plugins[0].service.as_deref(),
            Some(cfg.services[0].id.as_str())
        );
        let super::PluginConfig::AwsLambda(lambda) = &cfg.plugins[0].config else {
            panic!("an aws-lambda plugin")
        };
        assert_eq!(lambda.function_name, "MyLambda");
        assert!(cfg.routes[0].strip_path);
    }

    #[test]
    fn a_required_reference_comes_from_the_parent_or_is_written() {
        let errs = errors(
            r#"
_format_version: "3.0"
consumers:
- username: a
  keyauth_credentials: [{key: k1}]
  acls: [{group: g}]
keyauth_credentials:
- {key: k2}
- {key: k3, consumer: a}
acls:
- {group: h}
snis:
- {name: x.test}
"#,
        );
        assert_eq!(
            errs,
            [
                "snis[0].certificate: required field missing",
                "keyauth_credentials[0].consumer: required field missing",
                "acls[0].consumer: required field missing",
            ]
        );
    }

    #[test]
    fn every_error_is_reported_once_at_its_path_as_written() {
        let errs = errors(
            r#"
_format_version: "3.0"
services:
- name: s1
  routes:
  - paths: [nope]
    methods: [get]
  - name: r1
    paths: [/r1]
  - name: r1
    paths: [/r1b]
  plugins:
  - name: aws-lambda
    config: {aws_region: "??", function_name: f, bogus: 1}
  - name: aws-lambda
    config: {function_name: g}
  - name: aws-lambda
    config: {function_name: h}
- name: s1
  colour: blue
routes:
- service: missing
  paths: [/x]
plugins:
- name: graphql-proxy-cache
"#,
        );
        let service_id = {
            let dup = errs
                .iter()
                .find(|e| e.contains("plugins[2].name"))
                .expect("dup");
            dup.split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(
            errs,
            [
                "services[0].routes[0].methods[0]: expected an upper-case HTTP method like GET, got \"get\"",
                "services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path), got \"nope\"",
                "services[0].plugins[0].config.bogus: unknown field",
                "services[0].plugins[0].config.aws_region: expected a region like us-east-1, got \"??\"",
                "services[1].colour: unknown field",
                &format!("plugins[0].name: {}", super::super::plugins::unknown("graphql-proxy-cache")),
                "routes[0].service: no service named \"missing\"",
                // services[1] repeats s1's name, but has an error of its own: as Kong checks
                // the schema first, that is all it is told.
                "services[0].routes[2].name: UNIQUE violation detected on '{name=\"r1\"}'",
                // The second plugin clashes with the third; the first, invalid, with neither.
                &format!("services[0].plugins[2].name: UNIQUE violation detected on '{{consumer=null,name=\"aws-lambda\",route=null,service={{id=\"{service_id}\"}}}}'"),
            ]
        );
        assert_eq!(service_id.len(), 36);
    }

    #[test]
    fn document_level_errors() {
        assert_eq!(
            errors("services: []"),
            ["_format_version: required field missing (use \"3.0\")"]
        );
        assert!(errors("{not json")
            .iter()
            .any(|e| e.starts_with("invalid JSON")));
        assert!(errors("a: [").iter().any(|e| e.starts_with("invalid YAML")));
        assert_eq!(errors("[]"), ["expected an object, got an array"]);
        // An empty document is no exception, as in Kong.
        assert_eq!(
            errors(""),
            ["_format_version: required field missing (use \"3.0\")"]
        );
    }

    #[test]
    fn json_documents_and_top_level_references() {
        let cfg = parse(
            r#"{"_format_version":"3.0","services":[{"name":"s"}],
                "routes":[{"name":"r","service":{"name":"s"},"paths":["~/v\\d+/x"],"hosts":["*.example.com"]}],
                "plugins":[{"name":"aws-lambda","route":"r","config":{"function_name":"f","aws_region":"eu-west-1"}}]}"#,
        )
        .expect("valid");
        assert_eq!(
            cfg.routes[0].service.as_deref(),
            Some(cfg.services[0].id.as_str())
        );
        assert_eq!(
            cfg.plugins[0].route.as_deref(),
            Some(cfg.routes[0].id.as_str())
        );
    }

    #[test]
    fn the_document_round_trips_with_ids_and_flat_references() {
        let cfg = parse(
            r#"
_format_version: "3.0"
services:
- name: s
  url: http://example.com
  routes:
  - name: r
    paths: [/a]
    plugins:
    - {name: aws-lambda, config: {function_name: f, aws_region: us-east-1}}
consumers:
- username: u
"#,
        )
        .expect("valid");
        let doc = cfg.to_document();
        assert_eq!(
            doc["routes"][0]["service"]["id"],
            cfg.services[0].id.as_str()
        );
        assert_eq!(doc["plugins"][0]["route"]["id"], cfg.routes[0].id.as_str());
        assert!(doc["services"][0].get("routes").is_none());
        // Loading the document again gives the same entities and ids.
        let again = super::config(&doc).expect("the canonical document is valid");
        assert_eq!(again.routes[0].id, cfg.routes[0].id);
        assert_eq!(again.plugins[0].route, cfg.plugins[0].route);
        assert_eq!(again.to_document(), doc);
    }
}
