//! Walks a parsed declarative document, building the model and recording every problem with its
//! path. References (a route's `service`, a plugin's `route` …) are resolved after all entities
//! are known, so their order in the file does not matter.

use super::check::{describe, Checker, ConfigErrors};
use super::model::{
    id_ref, is_uuid, new_uuid, raw_entity, Config, Consumer, Plugin, Route, Service,
};
use crate::lambda::config as lambda_config;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const FORMAT_VERSIONS: &[&str] = &["1.1", "2.1", "3.0"];

/// The kinds of entity a reference can point to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service,
    Route,
    Consumer,
}

/// A reference written in the file (name or id), with where it was written, resolved at the end.
struct PendingRef {
    path: String,
    kind: Kind,
    target: String,
    /// (entity list, index, which field) to fill in once resolved.
    slot: Slot,
}

#[derive(Clone, Copy)]
enum Slot {
    RouteService(usize),
    PluginService(usize),
    PluginRoute(usize),
    PluginConsumer(usize),
}

#[derive(Default)]
struct Builder {
    c: Checker,
    config: Config,
    refs: Vec<PendingRef>,
}

/// Validates a whole document.
pub(super) fn config(doc: &Value) -> Result<Config, ConfigErrors> {
    let mut b = Builder::default();
    if let Some(root) = b.c.object(doc) {
        if !root.is_empty() {
            b.root(root);
        }
    }
    b.resolve_refs();
    b.check_unique();
    if b.c.errors.is_empty() {
        Ok(b.config)
    } else {
        Err(ConfigErrors(b.c.errors))
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
        self.each(root, "services", |b, v| b.service(v));
        self.each(root, "routes", |b, v| b.route(v, None));
        self.each(root, "consumers", |b, v| b.consumer(v));
        self.each(root, "plugins", |b, v| b.plugin(v, Parent::None));
    }

    /// Calls `f` for each item of the array `obj[key]`, with the path set.
    fn each(&mut self, obj: &Map<String, Value>, key: &str, mut f: impl FnMut(&mut Self, &Value)) {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.push_path(key, i);
                    f(self, item);
                    self.pop_path();
                }
            }
            Some(other) => self
                .c
                .error_at(key, format!("expected an array, got {}", describe(other))),
        }
    }

    fn push_path(&mut self, key: &str, i: usize) {
        self.c.push_field(key);
        self.c.push_index(i);
    }

    fn pop_path(&mut self) {
        self.c.pop();
        self.c.pop();
    }

    fn id(&mut self, obj: &Map<String, Value>) -> String {
        match self.c.opt_string(obj, "id") {
            Some(id) if is_uuid(&id) => id.to_ascii_lowercase(),
            Some(id) => {
                self.c
                    .error_at("id", format!("expected a UUID, got {id:?}"));
                id
            }
            None => new_uuid(),
        }
    }

    fn name(&mut self, obj: &Map<String, Value>, key: &str) -> Option<String> {
        let name = self.c.opt_string(obj, key)?;
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_' | '~'));
        if !ok {
            self.c.error_at(
                key,
                format!("invalid name {name:?}: use letters, digits, '.', '-', '_' or '~'"),
            );
        }
        Some(name)
    }

    fn service(&mut self, value: &Value) {
        let Some(obj) = self.c.object(value) else {
            return;
        };
        self.c.unknown_fields(
            obj,
            &[
                "id",
                "name",
                "url",
                "protocol",
                "host",
                "port",
                "path",
                "retries",
                "connect_timeout",
                "write_timeout",
                "read_timeout",
                "tags",
                "enabled",
                "client_certificate",
                "tls_verify",
                "tls_verify_depth",
                "ca_certificates",
                "routes",
                "plugins",
                "created_at",
                "updated_at",
            ],
        );
        let id = self.id(obj);
        let name = self.name(obj, "name");
        let mut service = Service {
            id: id.clone(),
            name,
            protocol: "http".into(),
            host: None,
            port: 80,
            path: None,
            enabled: true,
            raw: raw_entity(obj, &id, &["routes", "plugins"]),
        };
        if let Some(url) = self.c.opt_string(obj, "url") {
            for key in ["protocol", "host", "port", "path"] {
                if obj.get(key).is_some_and(|v| !v.is_null()) {
                    self.c.error_at(key, "cannot be set together with url");
                }
            }
            match parse_url(&url) {
                Some((protocol, host, port, path)) => {
                    service.protocol = protocol;
                    service.host = Some(host);
                    service.port = port;
                    service.path = path;
                }
                None => self.c.error_at(
                    "url",
                    format!("expected a URL like http://example.com:8080/path, got {url:?}"),
                ),
            }
        } else {
            if let Some(protocol) = self.c.opt_string(obj, "protocol") {
                if !matches!(protocol.as_str(), "http" | "https" | "grpc" | "grpcs") {
                    self.c.error_at("protocol", format!("expected one of \"http\", \"https\", \"grpc\", \"grpcs\", got {protocol:?}"));
                }
                service.port = if protocol == "https" || protocol == "grpcs" {
                    443
                } else {
                    80
                };
                service.protocol = protocol;
            }
            service.host = self.c.opt_string(obj, "host");
            if let Some(port) = self.c.opt_int(obj, "port", 0, 65535) {
                service.port = port as u16;
            }
            service.path = self.c.opt_string(obj, "path");
        }
        if let Some(path) = &service.path {
            if !path.starts_with('/') {
                self.c
                    .error_at("path", format!("should start with '/', got {path:?}"));
            }
        }
        service.enabled = self.c.opt_bool(obj, "enabled").unwrap_or(true);
        self.c.opt_strings(obj, "tags");
        self.config.services.push(service);
        self.each(obj, "routes", |b, v| b.route(v, Some(id.clone())));
        self.each(obj, "plugins", |b, v| {
            b.plugin(v, Parent::Service(id.clone()))
        });
    }

    fn route(&mut self, value: &Value, parent_service: Option<String>) {
        let Some(obj) = self.c.object(value) else {
            return;
        };
        self.c.unknown_fields(
            obj,
            &[
                "id",
                "name",
                "service",
                "paths",
                "methods",
                "hosts",
                "headers",
                "strip_path",
                "preserve_host",
                "regex_priority",
                "protocols",
                "path_handling",
                "https_redirect_status_code",
                "request_buffering",
                "response_buffering",
                "tags",
                "plugins",
                "snis",
                "sources",
                "destinations",
                "created_at",
                "updated_at",
            ],
        );
        let id = self.id(obj);
        let name = self.name(obj, "name");
        let index = self.config.routes.len();
        let mut service = parent_service.clone();
        if let Some(reference) = obj.get("service").filter(|v| !v.is_null()) {
            if parent_service.is_some() {
                self.c.error_at(
                    "service",
                    "a nested route takes its service from its parent",
                );
            } else if let Some(target) = self.c.field("service", |c| reference_target(c, reference))
            {
                service = None;
                self.defer(Kind::Service, target, Slot::RouteService(index), "service");
            }
        }
        let paths = self.c.opt_strings(obj, "paths").unwrap_or_default();
        self.c.field("paths", |c| {
            for (i, p) in paths.iter().enumerate() {
                c.index(i, |c| check_path(c, p));
            }
        });
        let methods = self.c.opt_strings(obj, "methods").unwrap_or_default();
        self.c.field("methods", |c| {
            for (i, m) in methods.iter().enumerate() {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                    c.index(i, |c| {
                        c.error(format!(
                            "expected an upper-case HTTP method like GET, got {m:?}"
                        ))
                    });
                }
            }
        });
        let hosts: Vec<String> = self.c.opt_strings(obj, "hosts").unwrap_or_default();
        self.c.field("hosts", |c| {
            for (i, h) in hosts.iter().enumerate() {
                c.index(i, |c| check_host(c, h));
            }
        });
        let hosts = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        let headers = self
            .c
            .field("headers", |c| route_headers(c, obj.get("headers")));
        for key in ["snis", "sources", "destinations"] {
            if obj
                .get(key)
                .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()) || v.is_object())
            {
                self.c.error_at(key, "not supported: lambda-gateway routes HTTP requests by host, path, method and headers");
            }
        }
        let protocols = self
            .c
            .opt_strings(obj, "protocols")
            .unwrap_or_else(|| vec!["http".into(), "https".into()]);
        self.c.field("protocols", |c| {
            for (i, p) in protocols.iter().enumerate() {
                if p != "http" && p != "https" {
                    c.index(i, |c| {
                        c.error(format!("expected \"http\" or \"https\", got {p:?}"))
                    });
                }
            }
        });
        if let Some(handling) = self.c.opt_string(obj, "path_handling") {
            if handling != "v0" && handling != "v1" {
                self.c.error_at(
                    "path_handling",
                    format!("expected \"v0\" or \"v1\", got {handling:?}"),
                );
            }
        }
        if let Some(code) = self.c.opt_int(obj, "https_redirect_status_code", 0, 999) {
            if ![426, 301, 302, 307, 308].contains(&code) {
                self.c.error_at(
                    "https_redirect_status_code",
                    format!("expected one of 426, 301, 302, 307, 308, got {code}"),
                );
            }
        }
        self.c.opt_bool(obj, "request_buffering");
        self.c.opt_bool(obj, "response_buffering");
        self.c.opt_strings(obj, "tags");
        let route = Route {
            id: id.clone(),
            name,
            service,
            strip_path: self.c.opt_bool(obj, "strip_path").unwrap_or(true),
            preserve_host: self.c.opt_bool(obj, "preserve_host").unwrap_or(false),
            regex_priority: self
                .c
                .opt_int(
                    obj,
                    "regex_priority",
                    i64::from(i32::MIN),
                    i64::from(i32::MAX),
                )
                .unwrap_or(0),
            paths,
            methods,
            hosts,
            headers,
            protocols,
            raw: {
                let mut raw = raw_entity(obj, &id, &["plugins"]);
                if let Some(sid) = &parent_service {
                    raw.insert("service".into(), id_ref(sid));
                }
                raw
            },
        };
        if route.paths.is_empty()
            && route.methods.is_empty()
            && route.hosts.is_empty()
            && route.headers.is_empty()
        {
            self.c
                .error("must set one of 'methods', 'hosts', 'headers', 'paths'");
        }
        self.config.routes.push(route);
        self.each(obj, "plugins", |b, v| {
            b.plugin(v, Parent::Route(id.clone()))
        });
    }

    fn consumer(&mut self, value: &Value) {
        let Some(obj) = self.c.object(value) else {
            return;
        };
        self.c.unknown_fields(
            obj,
            &[
                "id",
                "username",
                "custom_id",
                "tags",
                "plugins",
                "created_at",
                "updated_at",
            ],
        );
        let id = self.id(obj);
        let username = self.c.opt_string(obj, "username");
        let custom_id = self.c.opt_string(obj, "custom_id");
        if username.as_deref().unwrap_or("").is_empty()
            && custom_id.as_deref().unwrap_or("").is_empty()
        {
            self.c
                .error("at least one of these fields must be non-empty: 'custom_id', 'username'");
        }
        self.c.opt_strings(obj, "tags");
        self.config.consumers.push(Consumer {
            id: id.clone(),
            username,
            custom_id,
            raw: raw_entity(obj, &id, &["plugins"]),
        });
        self.each(obj, "plugins", |b, v| {
            b.plugin(v, Parent::Consumer(id.clone()))
        });
    }

    fn plugin(&mut self, value: &Value, parent: Parent) {
        let Some(obj) = self.c.object(value) else {
            return;
        };
        self.c.unknown_fields(
            obj,
            &[
                "id",
                "name",
                "config",
                "enabled",
                "service",
                "route",
                "consumer",
                "protocols",
                "tags",
                "instance_name",
                "ordering",
                "created_at",
                "updated_at",
            ],
        );
        let id = self.id(obj);
        let name = match self.c.opt_string(obj, "name") {
            Some(n) if n == "aws-lambda" => n,
            Some(n) => {
                self.c.error_at(
                    "name",
                    format!("plugin '{n}' not enabled; lambda-gateway provides only 'aws-lambda'"),
                );
                n
            }
            None => {
                self.c.error_at("name", "required field missing");
                String::new()
            }
        };
        let index = self.config.plugins.len();
        let (mut service, mut route, mut consumer) = (None, None, None);
        match &parent {
            Parent::Service(id) => service = Some(id.clone()),
            Parent::Route(id) => route = Some(id.clone()),
            Parent::Consumer(id) => consumer = Some(id.clone()),
            Parent::None => {}
        }
        for (key, kind, slot, nested) in [
            (
                "service",
                Kind::Service,
                Slot::PluginService(index),
                matches!(parent, Parent::Service(_)),
            ),
            (
                "route",
                Kind::Route,
                Slot::PluginRoute(index),
                matches!(parent, Parent::Route(_)),
            ),
            (
                "consumer",
                Kind::Consumer,
                Slot::PluginConsumer(index),
                matches!(parent, Parent::Consumer(_)),
            ),
        ] {
            let Some(reference) = obj.get(key).filter(|v| !v.is_null()) else {
                continue;
            };
            if nested {
                self.c.error_at(
                    key,
                    format!("a nested plugin takes its {key} from its parent"),
                );
            } else if let Some(target) = self.c.field(key, |c| reference_target(c, reference)) {
                self.defer(kind, target, slot, key);
            }
        }
        let enabled = self.c.opt_bool(obj, "enabled").unwrap_or(true);
        if let Some(protocols) = self.c.opt_strings(obj, "protocols") {
            self.c.field("protocols", |c| {
                for (i, p) in protocols.iter().enumerate() {
                    if !matches!(p.as_str(), "http" | "https" | "grpc" | "grpcs") {
                        c.index(i, |c| c.error(format!("expected one of \"grpc\", \"grpcs\", \"http\", \"https\", got {p:?}")));
                    }
                }
            });
        }
        self.c.opt_strings(obj, "tags");
        self.c.opt_string(obj, "instance_name");
        let empty = Value::Object(Map::new());
        let config_value = obj.get("config").filter(|v| !v.is_null()).unwrap_or(&empty);
        let config = self
            .c
            .field("config", |c| lambda_config::validate(c, config_value));
        let mut raw = raw_entity(obj, &id, &[]);
        for (field, parent_id) in [
            ("service", &service),
            ("route", &route),
            ("consumer", &consumer),
        ] {
            if let Some(pid) = parent_id {
                raw.insert(field.into(), id_ref(pid));
            }
        }
        // A plugin that failed validation keeps its index (deferred references point at it);
        // the whole config fails anyway.
        let (enabled, config) = match (config, name == "aws-lambda") {
            (Some(config), true) => (enabled, config),
            _ => (false, lambda_config::LambdaConfig::placeholder()),
        };
        self.config.plugins.push(Plugin {
            id,
            name,
            enabled,
            service,
            route,
            consumer,
            config: Arc::new(config),
            raw,
        });
    }

    fn defer(&mut self, kind: Kind, target: String, slot: Slot, field: &str) {
        let path = self.c.field(field, |c| c.path());
        self.refs.push(PendingRef {
            path,
            kind,
            target,
            slot,
        });
    }

    fn resolve_refs(&mut self) {
        // One map per kind from every id and name to the id of the first entity carrying it,
        // so each reference is one lookup however large the config.
        fn index<'a>(
            keys: impl Iterator<Item = (&'a str, Vec<Option<&'a str>>)>,
        ) -> HashMap<&'a str, &'a str> {
            let mut map = HashMap::new();
            for (id, names) in keys {
                for key in std::iter::once(Some(id)).chain(names).flatten() {
                    map.entry(key).or_insert(id);
                }
            }
            map
        }
        let cfg = &self.config;
        let services = index(
            cfg.services
                .iter()
                .map(|s| (s.id.as_str(), vec![s.name.as_deref()])),
        );
        let routes = index(
            cfg.routes
                .iter()
                .map(|r| (r.id.as_str(), vec![r.name.as_deref()])),
        );
        let consumers = index(cfg.consumers.iter().map(|c| {
            (
                c.id.as_str(),
                vec![c.username.as_deref(), c.custom_id.as_deref()],
            )
        }));
        let mut resolved = Vec::new();
        for r in std::mem::take(&mut self.refs) {
            let map = match r.kind {
                Kind::Service => &services,
                Kind::Route => &routes,
                Kind::Consumer => &consumers,
            };
            let found = map.get(r.target.as_str()).map(|id| id.to_string());
            resolved.push((r, found));
        }
        for (r, found) in resolved {
            let Some(id) = found else {
                let what = match r.kind {
                    Kind::Service => "service",
                    Kind::Route => "route",
                    Kind::Consumer => "consumer",
                };
                self.c.errors.push(super::check::ConfigError {
                    path: r.path,
                    message: format!("no {what} named {:?}", r.target),
                });
                continue;
            };
            let reference = id_ref(&id);
            match r.slot {
                Slot::RouteService(i) => {
                    self.config.routes[i]
                        .raw
                        .insert("service".into(), reference);
                    self.config.routes[i].service = Some(id);
                }
                Slot::PluginService(i) => {
                    self.config.plugins[i]
                        .raw
                        .insert("service".into(), reference);
                    self.config.plugins[i].service = Some(id);
                }
                Slot::PluginRoute(i) => {
                    self.config.plugins[i].raw.insert("route".into(), reference);
                    self.config.plugins[i].route = Some(id);
                }
                Slot::PluginConsumer(i) => {
                    self.config.plugins[i]
                        .raw
                        .insert("consumer".into(), reference);
                    self.config.plugins[i].consumer = Some(id);
                }
            }
        }
    }

    fn check_unique(&mut self) {
        fn dups<'a>(
            c: &mut Checker,
            list: &str,
            field: &str,
            values: impl Iterator<Item = (usize, Option<&'a str>)>,
        ) {
            let mut seen = HashSet::new();
            for (i, v) in values {
                if let Some(v) = v {
                    if !seen.insert(v) {
                        c.errors.push(super::check::ConfigError {
                            path: format!("{list}[{i}].{field}"),
                            message: format!(
                                "UNIQUE violation: {v:?} is already used by another {}",
                                &list[..list.len() - 1]
                            ),
                        });
                    }
                }
            }
        }
        let cfg = &self.config;
        dups(
            &mut self.c,
            "services",
            "name",
            cfg.services
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.name.as_deref())),
        );
        dups(
            &mut self.c,
            "services",
            "id",
            cfg.services
                .iter()
                .enumerate()
                .map(|(i, s)| (i, Some(s.id.as_str()))),
        );
        dups(
            &mut self.c,
            "routes",
            "name",
            cfg.routes
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.name.as_deref())),
        );
        dups(
            &mut self.c,
            "routes",
            "id",
            cfg.routes
                .iter()
                .enumerate()
                .map(|(i, s)| (i, Some(s.id.as_str()))),
        );
        dups(
            &mut self.c,
            "consumers",
            "username",
            cfg.consumers
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.username.as_deref())),
        );
        dups(
            &mut self.c,
            "consumers",
            "custom_id",
            cfg.consumers
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.custom_id.as_deref())),
        );
        dups(
            &mut self.c,
            "consumers",
            "id",
            cfg.consumers
                .iter()
                .enumerate()
                .map(|(i, s)| (i, Some(s.id.as_str()))),
        );
        dups(
            &mut self.c,
            "plugins",
            "id",
            cfg.plugins
                .iter()
                .enumerate()
                .map(|(i, s)| (i, Some(s.id.as_str()))),
        );
        let scopes: Vec<String> = cfg
            .plugins
            .iter()
            .map(|p| {
                format!(
                    "{} on service {:?}, route {:?}, consumer {:?}",
                    p.name, p.service, p.route, p.consumer
                )
            })
            .collect();
        dups(
            &mut self.c,
            "plugins",
            "name",
            scopes
                .iter()
                .enumerate()
                .map(|(i, s)| (i, Some(s.as_str()))),
        );
    }
}

enum Parent {
    None,
    Service(String),
    Route(String),
    Consumer(String),
}

/// A reference is a name or id string, or `{id: …}` / `{name: …}` / `{username: …}`.
fn reference_target(c: &mut Checker, value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(map) => {
            for key in ["id", "name", "username"] {
                if let Some(Value::String(s)) = map.get(key) {
                    return Some(s.clone());
                }
            }
            c.error("expected a reference like {id: …} or {name: …}");
            None
        }
        other => {
            c.error(format!(
                "expected a name, an id or {{id: …}}, got {}",
                describe(other)
            ));
            None
        }
    }
}

/// Kong's route path rules: `/prefix` or `~regex` (anchored at the start when matched).
fn check_path(c: &mut Checker, path: &str) {
    if let Some(re) = path.strip_prefix('~') {
        if let Err(e) = regex::Regex::new(&format!("^(?:{re})")) {
            c.error(format!("invalid regex {re:?}: {e}"));
        }
    } else if !path.starts_with('/') {
        c.error(format!(
            "should start with: / (fixed path) or ~/ (regex path), got {path:?}"
        ));
    } else if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        c.error(format!(
            "must not contain whitespace or control characters, got {path:?}"
        ));
    }
}

/// A host: a hostname with an optional port, or a wildcard `*.example.com` / `example.*`.
fn check_host(c: &mut Checker, host: &str) {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            c.error(format!("invalid port in host {host:?}"));
            return;
        }
    }
    let core = name
        .strip_prefix("*.")
        .or_else(|| name.strip_suffix(".*"))
        .unwrap_or(name);
    let valid = !core.is_empty()
        && core.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        c.error(format!("invalid hostname {host:?}"));
    }
}

fn route_headers(c: &mut Checker, value: Option<&Value>) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                c.field(name, |c| {
                    if name.eq_ignore_ascii_case("host") {
                        c.error("use 'hosts' to match the Host header");
                        return;
                    }
                    let list: Vec<String> = match values {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(items) => items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                        other => {
                            c.error(format!(
                                "expected a list of strings, got {}",
                                describe(other)
                            ));
                            return;
                        }
                    };
                    if list.iter().any(|v| v.starts_with("~*")) {
                        c.error("regex header values (~*) are not supported");
                        return;
                    }
                    out.push((
                        name.to_ascii_lowercase(),
                        list.into_iter().map(|v| v.to_ascii_lowercase()).collect(),
                    ));
                });
            }
        }
        Some(other) => c.error(format!(
            "expected an object of header names to values, got {}",
            describe(other)
        )),
    }
    out
}

/// `scheme://host[:port][/path]` → (scheme, host, port, path).
fn parse_url(url: &str) -> Option<(String, String, u16, Option<String>)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "grpc" => 80,
        "https" | "grpcs" => 443,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    let (host, port) = if let Some(v6_end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let host = &authority[..v6_end + 2];
        match &authority[v6_end + 2..] {
            "" => (host, default_port),
            p => (host, p.strip_prefix(':')?.parse().ok()?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || host.contains(['@', ' ', '?', '#']) {
        return None;
    }
    Some((scheme, host.to_string(), port, path))
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
        assert_eq!(cfg.plugins[0].config.function_name, "MyLambda");
        assert!(cfg.routes[0].strip_path);
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let errs = errors(
            r#"
_format_version: "3.0"
services:
- name: s1
  routes:
  - paths: [nope]
    methods: [get]
  plugins:
  - name: aws-lambda
    config: {aws_region: "??", function_name: f, bogus: 1}
- name: s1
  colour: blue
routes:
- service: missing
  paths: [/x]
plugins:
- name: rate-limiting
"#,
        );
        let want = [
            "services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path), got \"nope\"",
            "services[0].routes[0].methods[0]: expected an upper-case HTTP method like GET, got \"get\"",
            "services[0].plugins[0].config.bogus: unknown field",
            "services[0].plugins[0].config.aws_region: expected a region like us-east-1, got \"??\"",
            "services[1].colour: unknown field",
            "plugins[0].name: plugin 'rate-limiting' not enabled; lambda-gateway provides only 'aws-lambda'",
            "routes[0].service: no service named \"missing\"",
            "services[1].name: UNIQUE violation: \"s1\" is already used by another service",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e == w), "missing {w:?} in {errs:#?}");
        }
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
        assert!(errors("").is_empty());
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

    #[test]
    fn urls() {
        assert_eq!(
            super::parse_url("http://localhost:8000"),
            Some(("http".into(), "localhost".into(), 8000, None))
        );
        assert_eq!(
            super::parse_url("https://h/p"),
            Some(("https".into(), "h".into(), 443, Some("/p".into())))
        );
        assert_eq!(super::parse_url("ftp://h"), None);
        assert_eq!(super::parse_url("http://h:x"), None);
    }
}
