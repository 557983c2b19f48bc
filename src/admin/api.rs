//! The Kong-compatible Admin API endpoints (SPEC §7) and Kong's response and error shapes.

use super::body::{self, BodyError};
use super::present;
use super::store::{ApplyError, Store};
use crate::config::model::{is_uuid, new_uuid, Config};
use crate::config::{plugins, ConfigErrors};
use crate::http::conn::{BufferPool, Handler};
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::metrics::Registry;
use crate::schema::{Kind, Schema};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::sync::Arc;

/// A failed Admin API call, as Kong answers it.
#[derive(Debug)]
pub enum AdminError {
    /// 404 `{"message":"Not found"}`.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 400 with a message.
    BadRequest(String),
    /// 415.
    UnsupportedMediaType,
    /// 400 schema violation with `fields`.
    Schema { message: String, fields: Value },
    /// 409 unique constraint violation.
    Unique { message: String, fields: Value },
    /// 400 for `POST /config`.
    Declarative { message: String, fields: Value },
    /// 500.
    Internal(String),
}

impl AdminError {
    fn status_and_body(&self) -> (u16, Value) {
        match self {
            AdminError::NotFound => (404, json!({"message": "Not found"})),
            AdminError::MethodNotAllowed => (405, json!({"message": "Method not allowed"})),
            AdminError::BadRequest(m) => (400, json!({"message": m})),
            AdminError::UnsupportedMediaType => {
                (415, json!({"message": "Unsupported Content-Type"}))
            }
            AdminError::Schema { message, fields } => (
                400,
                json!({"code": 2, "name": "schema violation", "message": message, "fields": fields}),
            ),
            AdminError::Unique { message, fields } => (
                409,
                json!({"code": 5, "name": "unique constraint violation", "message": message, "fields": fields}),
            ),
            AdminError::Declarative { message, fields } => (
                400,
                json!({"code": 14, "name": "invalid declarative configuration", "message": message, "fields": fields}),
            ),
            AdminError::Internal(m) => (500, json!({"message": m})),
        }
    }
}

type Answer = Result<(u16, Value), AdminError>;

/// The Admin API: a [`Handler`] over the shared [`Store`].
pub struct AdminApi {
    store: RefCell<Store>,
    token: Option<String>,
    metrics: Arc<Registry>,
    node_id: String,
    proxy_listen: String,
    admin_listen: String,
    buffers: BufferPool,
}

impl AdminApi {
    /// The Admin API over `store`; with `token`, every request must present it.
    pub fn new(
        store: Store,
        token: Option<String>,
        metrics: Arc<Registry>,
        proxy_listen: String,
        admin_listen: String,
    ) -> Self {
        AdminApi {
            store: RefCell::new(store),
            token,
            metrics,
            node_id: new_uuid(),
            proxy_listen,
            admin_listen,
            buffers: BufferPool::default(),
        }
    }

    /// Reloads the config file (SIGHUP).
    pub fn reload(&self) {
        self.store.borrow_mut().reload();
    }

    fn authorized(&self, req: &Request<'_>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let presented = req.header("kong-admin-token").or_else(|| {
            req.header("authorization")
                .and_then(|a| a.strip_prefix(b"Bearer "))
                .map(crate::http::framing::trim_ows)
        });
        presented.is_some_and(|p| constant_time_eq(p, token.as_bytes()))
    }

    fn dispatch(&self, req: &Request<'_>) -> Answer {
        let path = String::from_utf8_lossy(req.path()).into_owned();
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode_segment)
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let query = parse_query(req.query().unwrap_or_default());
        let method = req.method();
        match (method, segs.as_slice()) {
            (b"GET", []) => Ok((200, self.node_info())),
            (_, []) => Err(AdminError::MethodNotAllowed),
            (b"GET", ["status"]) => Ok((200, self.status())),
            (b"GET", ["config"]) => self.get_config(),
            (b"POST", ["config"]) => self.post_config(req),
            (_, ["status" | "config" | "metrics"]) => Err(AdminError::MethodNotAllowed),
            (_, [collection]) => {
                let kind = Kind::from_collection(collection).ok_or(AdminError::NotFound)?;
                match method {
                    b"GET" => self.list(kind, None, &query),
                    b"POST" => self.create(kind, None, req),
                    _ => Err(AdminError::MethodNotAllowed),
                }
            }
            (_, [collection, key]) => {
                let kind = Kind::from_collection(collection).ok_or(AdminError::NotFound)?;
                self.one(kind, key, None, method, req)
            }
            (_, [parent, parent_key, child]) => {
                let (parent_kind, child_kind) = nested(parent, child)?;
                let parent_id = self
                    .find_id(parent_kind, parent_key)
                    .ok_or(AdminError::NotFound)?;
                match method {
                    b"GET" => self.list(child_kind, Some((parent_kind, &parent_id)), &query),
                    b"POST" => self.create(child_kind, Some((parent_kind, &parent_id)), req),
                    _ => Err(AdminError::MethodNotAllowed),
                }
            }
            (_, [parent, parent_key, child, key]) => {
                let (parent_kind, child_kind) = nested(parent, child)?;
                let parent_id = self
                    .find_id(parent_kind, parent_key)
                    .ok_or(AdminError::NotFound)?;
                self.one(
                    child_kind,
                    key,
                    Some((parent_kind, &parent_id)),
                    method,
                    req,
                )
            }
            _ => Err(AdminError::NotFound),
        }
    }

    fn node_info(&self) -> Value {
        let store = self.store.borrow();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let enabled: Vec<&str> = if store.config.plugins.is_empty() {
            vec![]
        } else {
            vec!["aws-lambda"]
        };
        json!({
            "version": "3.4.0",
            "lambda_gateway_version": env!("CARGO_PKG_VERSION"),
            "edition": "community",
            "tagline": "Welcome to lambda-gateway",
            "hostname": hostname,
            "node_id": self.node_id,
            "plugins": {
                "available_on_server": {"aws-lambda": {"version": env!("CARGO_PKG_VERSION"), "priority": 750}},
                "enabled_in_cluster": enabled,
            },
            "configuration": {
                "database": "off",
                "role": "traditional",
                "proxy_listen": [self.proxy_listen],
                "admin_listen": [self.admin_listen],
                "admin_token_required": self.token.is_some(),
            },
        })
    }

    fn status(&self) -> Value {
        let t = self.metrics.totals();
        let store = self.store.borrow();
        let doc = serde_json::to_vec(&store.document()).unwrap_or_default();
        let hash = crate::aws::sigv4::sha256_hex(&doc);
        json!({
            "database": {"reachable": true},
            "server": {
                "connections_accepted": t.connections_accepted,
                "connections_handled": t.connections_accepted,
                "connections_active": t.connections_active,
                "total_requests": t.responses.iter().sum::<u64>(),
            },
            "configuration_hash": String::from_utf8_lossy(&hash[..32]),
            "configuration_changes": store.changes,
        })
    }

    fn get_config(&self) -> Answer {
        let store = self.store.borrow();
        let doc = present::redacted_document(&store.config);
        let yaml =
            serde_norway::to_string(&doc).map_err(|e| AdminError::Internal(e.to_string()))?;
        Ok((200, json!({ "config": yaml })))
    }

    /// `POST /config`: replace the whole configuration.
    fn post_config(&self, req: &Request<'_>) -> Answer {
        let doc = match body::parse(req.content_type(), req.body) {
            Ok((mut map, _)) => match map.remove("config") {
                Some(Value::String(text)) => {
                    crate::config::parse_text(&text).map_err(|e| declarative_error(&e))?
                }
                Some(Value::Object(o)) => Value::Object(o),
                Some(_) => {
                    return Err(AdminError::BadRequest(
                        "'config' must be declarative config text or an object".into(),
                    ))
                }
                None => Value::Object(map),
            },
            Err(BodyError::UnsupportedType) => {
                // A raw YAML body (e.g. `curl --data-binary @kong.yml -H 'Content-Type: text/yaml'`).
                let text = std::str::from_utf8(req.body)
                    .map_err(|_| AdminError::BadRequest("body is not UTF-8".into()))?;
                crate::config::parse_text(text).map_err(|e| declarative_error(&e))?
            }
            Err(BodyError::Invalid(m)) => return Err(AdminError::BadRequest(m)),
        };
        let mut doc = doc;
        {
            let store = self.store.borrow();
            // Secrets sent back hidden keep the stored ones (matched by plugin id).
            if let Some(Value::Array(list)) = doc.get_mut("plugins") {
                for p in list.iter_mut() {
                    let id = p.get("id").and_then(Value::as_str).map(str::to_string);
                    let stored = id
                        .and_then(|id| store.config.plugins.iter().find(|x| x.id == id))
                        .and_then(|x| x.raw.get("config"))
                        .and_then(Value::as_object);
                    let spec = p
                        .get("name")
                        .and_then(Value::as_str)
                        .and_then(plugins::find);
                    if let (Some(spec), Some(Value::Object(cfg))) = (spec, p.get_mut("config")) {
                        spec.schema
                            .keep_hidden(cfg, stored)
                            .map_err(AdminError::BadRequest)?;
                    }
                }
            }
        }
        let mut store = self.store.borrow_mut();
        match store.apply(&doc) {
            Ok(()) => {}
            Err(ApplyError::Invalid(errors)) => return Err(declarative_error(&errors)),
            Err(ApplyError::Persist(m)) => return Err(AdminError::Internal(m)),
        }
        let c = &store.config;
        let by_id = |items: Vec<(String, Value)>| Value::Object(items.into_iter().collect());
        Ok((
            201,
            json!({
                "services": by_id(c.services.iter().map(|e| (e.id.clone(), present::service(e))).collect()),
                "routes": by_id(c.routes.iter().map(|e| (e.id.clone(), present::route(e))).collect()),
                "plugins": by_id(c.plugins.iter().map(|e| (e.id.clone(), present::plugin(e))).collect()),
                "consumers": by_id(c.consumers.iter().map(|e| (e.id.clone(), present::consumer(e))).collect()),
            }),
        ))
    }

    /// The id of the entity `key` (an id, or a name / username / custom_id).
    fn find_id(&self, kind: Kind, key: &str) -> Option<String> {
        let store = self.store.borrow();
        find_index(&store.config, kind, key).map(|i| entity_id(&store.config, kind, i))
    }

    fn list(&self, kind: Kind, parent: Option<(Kind, &str)>, query: &[(String, String)]) -> Answer {
        let store = self.store.borrow();
        let c = &store.config;
        let all: Vec<Value> = match kind {
            Kind::Service => c.services.iter().map(present::service).collect(),
            Kind::Route => c
                .routes
                .iter()
                .filter(|r| belongs(parent, r.service.as_deref(), None, None))
                .map(present::route)
                .collect(),
            Kind::Plugin => c
                .plugins
                .iter()
                .filter(|p| {
                    belongs(
                        parent,
                        p.service.as_deref(),
                        p.route.as_deref(),
                        p.consumer.as_deref(),
                    )
                })
                .map(present::plugin)
                .collect(),
            Kind::Consumer => c.consumers.iter().map(present::consumer).collect(),
        };
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let size = match param("size") {
            None => 100,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => return Err(schema("size", "size must be an integer between 1 and 1000")),
            },
        };
        let start = match param("offset") {
            None => 0,
            Some(o) => decode_offset(o).ok_or_else(|| schema("offset", "invalid offset"))?,
        };
        let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
        let end = start + page.len();
        let (next, offset) = if end < all.len() {
            let o = encode_offset(end);
            let mut base = String::from("/");
            if let Some((pk, pid)) = parent {
                base.push_str(&format!("{}/{pid}/", pk.collection()));
            }
            base.push_str(kind.collection());
            (json!(format!("{base}?offset={o}&size={size}")), json!(o))
        } else {
            (Value::Null, Value::Null)
        };
        let mut body = json!({"data": page, "next": next});
        if !offset.is_null() {
            body["offset"] = offset;
        }
        Ok((200, body))
    }

    fn one(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<(Kind, &str)>,
        method: &[u8],
        req: &Request<'_>,
    ) -> Answer {
        let index = {
            let store = self.store.borrow();
            find_index(&store.config, kind, key)
                .filter(|&i| parent.is_none_or(|p| entity_belongs(&store.config, kind, i, p)))
        };
        match method {
            b"GET" => {
                let i = index.ok_or(AdminError::NotFound)?;
                let store = self.store.borrow();
                Ok((200, present::entity(&store.config, kind, i)))
            }
            b"PATCH" => {
                let i = index.ok_or(AdminError::NotFound)?;
                let patch = self.read_body(kind, Some(key), req)?;
                self.update(kind, Some(i), patch, parent, false, key)
            }
            b"PUT" => {
                let patch = self.read_body(kind, Some(key), req)?;
                self.update(kind, index, patch, parent, true, key)
            }
            b"DELETE" => match index {
                Some(i) => self.delete(kind, i),
                // Deleting what does not exist succeeds, as in Kong.
                None => Ok((204, Value::Null)),
            },
            _ => Err(AdminError::MethodNotAllowed),
        }
    }

    /// The schema of the config of the plugin a body is for: the body's `name`, else the
    /// stored plugin's (a PATCH of a config field).
    fn plugin_schema(
        &self,
        body: &Map<String, Value>,
        key: Option<&str>,
    ) -> Option<&'static Schema> {
        let name = match body.get("name").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => {
                let store = self.store.borrow();
                let i = find_index(&store.config, Kind::Plugin, key?)?;
                store.config.plugins[i].name.clone()
            }
        };
        plugins::find(&name).map(|p| p.schema)
    }

    fn read_body(
        &self,
        kind: Kind,
        key: Option<&str>,
        req: &Request<'_>,
    ) -> Result<Map<String, Value>, AdminError> {
        let (mut map, is_form) =
            body::parse(req.content_type(), req.body).map_err(|e| match e {
                BodyError::Invalid(m) => AdminError::BadRequest(m),
                BodyError::UnsupportedType => AdminError::UnsupportedMediaType,
            })?;
        if is_form {
            let config_schema = match kind {
                Kind::Plugin => self.plugin_schema(&map, key),
                _ => None,
            };
            body::coerce(&mut map, kind.schema(), config_schema);
        }
        if kind == Kind::Service {
            split_url(&mut map)?;
        }
        Ok(map)
    }

    fn create(&self, kind: Kind, parent: Option<(Kind, &str)>, req: &Request<'_>) -> Answer {
        let mut entity = self.read_body(kind, None, req)?;
        let id = match entity.get("id").and_then(Value::as_str) {
            Some(id) if is_uuid(id) => id.to_ascii_lowercase(),
            Some(_) => return Err(schema("id", "expected a valid UUID")),
            None => new_uuid(),
        };
        entity.insert("id".into(), Value::String(id.clone()));
        if let Some((pk, pid)) = parent {
            entity.insert(pk.reference_field().into(), json!({ "id": pid }));
        }
        let now = Value::from(unix_now());
        entity.insert("created_at".into(), now.clone());
        entity.insert("updated_at".into(), now);
        self.unredact(kind, &mut entity, None)?;
        self.check_unique(kind, &entity, None)?;
        let mut store = self.store.borrow_mut();
        let mut doc = store.document();
        let list = doc_list(&mut doc, kind)?;
        let index = list.len();
        list.push(Value::Object(entity));
        apply(&mut store, &doc, kind, index)?;
        let i = find_index(&store.config, kind, &id)
            .ok_or_else(|| AdminError::Internal("created entity not found".into()))?;
        Ok((201, present::entity(&store.config, kind, i)))
    }

    /// PATCH (merge into an existing entity) or PUT (replace, or create with the key's id/name).
    fn update(
        &self,
        kind: Kind,
        index: Option<usize>,
        body: Map<String, Value>,
        parent: Option<(Kind, &str)>,
        replace: bool,
        key: &str,
    ) -> Answer {
        let existing = index.map(|i| raw_of(&self.store.borrow().config, kind, i));
        let mut entity = match (&existing, replace) {
            (Some(old), false) => {
                let mut merged = old.clone();
                if kind == Kind::Service && body.contains_key("protocol")
                    || body.contains_key("host")
                {
                    merged.remove("url");
                }
                for (k, v) in body {
                    match (k.as_str(), merged.get_mut(&k), v) {
                        // PATCHing a plugin's config changes only the fields given.
                        ("config", Some(Value::Object(old_cfg)), Value::Object(new_cfg)) => {
                            for (ck, cv) in new_cfg {
                                old_cfg.insert(ck, cv);
                            }
                        }
                        (_, _, v) => {
                            merged.insert(k, v);
                        }
                    }
                }
                merged
            }
            _ => body,
        };
        let id = match &existing {
            Some(old) => old
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            None if is_uuid(key) => key.to_ascii_lowercase(),
            None => {
                // PUT /services/my-name creates `my-name`.
                if let Some(name_field) = kind.schema().unique_fields().next() {
                    entity
                        .entry(name_field.name.to_string())
                        .or_insert_with(|| Value::String(key.to_string()));
                }
                new_uuid()
            }
        };
        entity.insert("id".into(), Value::String(id.clone()));
        if let Some((pk, pid)) = parent {
            entity.insert(pk.reference_field().into(), json!({ "id": pid }));
        }
        let now = Value::from(unix_now());
        let created_at = existing
            .as_ref()
            .and_then(|o| o.get("created_at").cloned())
            .unwrap_or(now.clone());
        entity.insert("created_at".into(), created_at);
        entity.insert("updated_at".into(), now);
        let stored_config = existing
            .as_ref()
            .and_then(|o| o.get("config"))
            .and_then(Value::as_object)
            .cloned();
        self.unredact(kind, &mut entity, stored_config.as_ref())?;
        self.check_unique(kind, &entity, Some(&id))?;
        let mut store = self.store.borrow_mut();
        let mut doc = store.document();
        let list = doc_list(&mut doc, kind)?;
        let position = match index {
            Some(i) => {
                list[i] = Value::Object(entity);
                i
            }
            None => {
                list.push(Value::Object(entity));
                list.len() - 1
            }
        };
        apply(&mut store, &doc, kind, position)?;
        let i = find_index(&store.config, kind, &id)
            .ok_or_else(|| AdminError::Internal("updated entity not found".into()))?;
        Ok((200, present::entity(&store.config, kind, i)))
    }

    fn delete(&self, kind: Kind, index: usize) -> Answer {
        let mut store = self.store.borrow_mut();
        let id = entity_id(&store.config, kind, index);
        if kind == Kind::Service
            && store
                .config
                .routes
                .iter()
                .any(|r| r.service.as_deref() == Some(id.as_str()))
        {
            return Err(AdminError::BadRequest(
                "an existing 'routes' entity references this 'services' entity".into(),
            ));
        }
        let mut doc = store.document();
        doc_list(&mut doc, kind)?.remove(index);
        // Plugins scoped to what is deleted go with it, as in Kong.
        if kind != Kind::Plugin {
            let field = kind.reference_field();
            doc_list(&mut doc, Kind::Plugin)?.retain(|p| {
                p.get(field)
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_str)
                    != Some(id.as_str())
            });
        }
        match store.apply(&doc) {
            Ok(()) => Ok((204, Value::Null)),
            Err(ApplyError::Invalid(e)) => Err(AdminError::BadRequest(e.to_string())),
            Err(ApplyError::Persist(m)) => Err(AdminError::Internal(m)),
        }
    }

    fn unredact(
        &self,
        kind: Kind,
        entity: &mut Map<String, Value>,
        stored: Option<&Map<String, Value>>,
    ) -> Result<(), AdminError> {
        if kind != Kind::Plugin {
            return Ok(());
        }
        let spec = entity
            .get("name")
            .and_then(Value::as_str)
            .and_then(plugins::find);
        match (spec, entity.get_mut("config")) {
            (Some(spec), Some(Value::Object(cfg))) => {
                spec.schema
                    .keep_hidden(cfg, stored)
                    .map_err(|m| AdminError::Schema {
                        message: format!("schema violation ({m})"),
                        fields: json!({"config": {"aws_secret": m}}),
                    })
            }
            _ => Ok(()),
        }
    }

    /// Kong answers a duplicate name with 409, before any other validation.
    fn check_unique(
        &self,
        kind: Kind,
        entity: &Map<String, Value>,
        own_id: Option<&str>,
    ) -> Result<(), AdminError> {
        let store = self.store.borrow();
        let doc = store.document();
        let list = doc
            .get(kind.collection())
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for field in kind.schema().unique_fields().map(|f| f.name).chain(["id"]) {
            let Some(value) = entity.get(field).filter(|v| !v.is_null()) else {
                continue;
            };
            // On create every match clashes; on update the entity itself does not.
            let clash = list.iter().any(|other| {
                other.get(field) == Some(value)
                    && (own_id.is_none() || other.get("id").and_then(Value::as_str) != own_id)
            });
            if clash {
                let shown = value
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string());
                return Err(AdminError::Unique {
                    message: format!("UNIQUE violation detected on '{{{field}=\"{shown}\"}}'"),
                    fields: json!({ field: shown }),
                });
            }
        }
        Ok(())
    }
}

impl Handler for AdminApi {
    async fn handle(&self, req: Request<'_>, resp: &mut Response) {
        let answer = if self.authorized(&req) {
            if req.method() == b"GET" && req.path() == b"/metrics" {
                let text = self.metrics.prometheus(self.store.borrow().changes);
                resp.status = 200;
                resp.header(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8");
                resp.body.extend_from_slice(text.as_bytes());
                return;
            }
            self.dispatch(&req)
        } else {
            Ok((401, json!({"message": "Unauthorized"})))
        };
        let (status, body) = match answer {
            Ok(ok) => ok,
            Err(e) => {
                if matches!(e, AdminError::Internal(_)) {
                    log::error!(
                        "admin: {} {}: {e:?}",
                        String::from_utf8_lossy(req.method()),
                        String::from_utf8_lossy(req.path())
                    );
                }
                e.status_and_body()
            }
        };
        resp.status = status;
        if status != 204 {
            resp.header(b"Content-Type", b"application/json; charset=utf-8");
            if let Ok(bytes) = serde_json::to_vec(&body) {
                resp.body.extend_from_slice(&bytes);
            }
        }
    }

    fn buffers(&self) -> &BufferPool {
        &self.buffers
    }
}

/// Applies a changed document, attributing validation errors to the changed entity.
fn apply(store: &mut Store, doc: &Value, kind: Kind, index: usize) -> Result<(), AdminError> {
    match store.apply(doc) {
        Ok(()) => Ok(()),
        Err(ApplyError::Invalid(errors)) => Err(entity_error(&errors, kind, index)),
        Err(ApplyError::Persist(m)) => Err(AdminError::Internal(m)),
    }
}

/// Kong's schema violation for the entity at `kind[index]`: its errors as nested `fields`.
fn entity_error(errors: &ConfigErrors, kind: Kind, index: usize) -> AdminError {
    let prefix = format!("{}[{index}]", kind.collection());
    let mut fields = Value::Object(Map::new());
    let mut messages = Vec::new();
    for e in &errors.0 {
        let rest = e
            .path
            .strip_prefix(&prefix)
            .map(|r| r.trim_start_matches('.'));
        match rest {
            Some("") | None => {
                let text = if rest.is_none() {
                    e.to_string()
                } else {
                    e.message.clone()
                };
                insert_field(
                    &mut fields,
                    &["@entity".to_string()],
                    Value::String(text.clone()),
                );
                messages.push(text);
            }
            Some(path) => {
                insert_field(
                    &mut fields,
                    &split_path(path),
                    Value::String(e.message.clone()),
                );
                messages.push(format!("{path}: {}", e.message));
            }
        }
    }
    AdminError::Schema {
        message: format!("schema violation ({})", messages.join("; ")),
        fields,
    }
}

fn declarative_error(errors: &ConfigErrors) -> AdminError {
    let mut fields = Value::Object(Map::new());
    for e in &errors.0 {
        let path = if e.path.is_empty() {
            vec!["@entity".to_string()]
        } else {
            split_path(&e.path)
        };
        insert_field(&mut fields, &path, Value::String(e.message.clone()));
    }
    AdminError::Declarative {
        message: format!("declarative config is invalid: {errors}"),
        fields,
    }
}

fn schema(field: &str, message: &str) -> AdminError {
    AdminError::Schema {
        message: format!("schema violation ({field}: {message})"),
        fields: json!({ field: message }),
    }
}

/// `config.aws_region` → ["config", "aws_region"]; `paths[0]` → ["paths", "[0]"].
fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_string());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                out.push(rest[..=end].to_string());
                rest = &rest[end + 1..];
            }
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// Puts `value` at `path` in nested objects; `[n]` segments make arrays (nulls before n).
/// A list of messages accumulates when two land on the same place.
fn insert_field(node: &mut Value, path: &[String], value: Value) {
    let Some((head, rest)) = path.split_first() else {
        match node {
            Value::Null => *node = value,
            Value::Array(items) => items.push(value),
            other => {
                let first = other.take();
                *other = Value::Array(vec![first, value]);
            }
        }
        return;
    };
    if let Some(i) = head
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|n| n.parse::<usize>().ok())
    {
        if !node.is_array() {
            *node = Value::Array(Vec::new());
        }
        if let Value::Array(items) = node {
            if items.len() <= i && i < 10_000 {
                items.resize(i + 1, Value::Null);
            }
            if let Some(slot) = items.get_mut(i) {
                insert_field(slot, rest, value);
            }
        }
    } else {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        if let Value::Object(map) = node {
            insert_field(map.entry(head.clone()).or_insert(Value::Null), rest, value);
        }
    }
}

/// Compares without an early exit, so response timing does not reveal how much of a guessed
/// token was right (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn nested(parent: &str, child: &str) -> Result<(Kind, Kind), AdminError> {
    match (parent, child) {
        ("services", "routes") => Ok((Kind::Service, Kind::Route)),
        ("services", "plugins") => Ok((Kind::Service, Kind::Plugin)),
        ("routes", "plugins") => Ok((Kind::Route, Kind::Plugin)),
        ("consumers", "plugins") => Ok((Kind::Consumer, Kind::Plugin)),
        _ => Err(AdminError::NotFound),
    }
}

fn belongs(
    parent: Option<(Kind, &str)>,
    service: Option<&str>,
    route: Option<&str>,
    consumer: Option<&str>,
) -> bool {
    match parent {
        None => true,
        Some((Kind::Service, id)) => service == Some(id),
        Some((Kind::Route, id)) => route == Some(id),
        Some((Kind::Consumer, id)) => consumer == Some(id),
        Some((Kind::Plugin, _)) => false,
    }
}

fn entity_belongs(c: &Config, kind: Kind, i: usize, parent: (Kind, &str)) -> bool {
    match kind {
        Kind::Route => belongs(Some(parent), c.routes[i].service.as_deref(), None, None),
        Kind::Plugin => {
            let p = &c.plugins[i];
            belongs(
                Some(parent),
                p.service.as_deref(),
                p.route.as_deref(),
                p.consumer.as_deref(),
            )
        }
        _ => false,
    }
}

fn find_index(c: &Config, kind: Kind, key: &str) -> Option<usize> {
    let key_id = key.to_ascii_lowercase();
    match kind {
        Kind::Service => c
            .services
            .iter()
            .position(|e| e.id == key_id || e.name.as_deref() == Some(key)),
        Kind::Route => c
            .routes
            .iter()
            .position(|e| e.id == key_id || e.name.as_deref() == Some(key)),
        Kind::Plugin => c.plugins.iter().position(|e| e.id == key_id),
        Kind::Consumer => c.consumers.iter().position(|e| {
            e.id == key_id
                || e.username.as_deref() == Some(key)
                || e.custom_id.as_deref() == Some(key)
        }),
    }
}

fn entity_id(c: &Config, kind: Kind, i: usize) -> String {
    match kind {
        Kind::Service => c.services[i].id.clone(),
        Kind::Route => c.routes[i].id.clone(),
        Kind::Plugin => c.plugins[i].id.clone(),
        Kind::Consumer => c.consumers[i].id.clone(),
    }
}

fn raw_of(c: &Config, kind: Kind, i: usize) -> Map<String, Value> {
    match kind {
        Kind::Service => c.services[i].raw.clone(),
        Kind::Route => c.routes[i].raw.clone(),
        Kind::Plugin => c.plugins[i].raw.clone(),
        Kind::Consumer => c.consumers[i].raw.clone(),
    }
}

/// The document's list of `kind` entities (created empty if absent).
fn doc_list(doc: &mut Value, kind: Kind) -> Result<&mut Vec<Value>, AdminError> {
    let map = doc
        .as_object_mut()
        .ok_or_else(|| AdminError::Internal("the config document is not an object".into()))?;
    let list = map
        .entry(kind.collection())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    list.as_array_mut()
        .ok_or_else(|| AdminError::Internal("entity list".into()))
}

/// A service's `url` stored as Kong stores it: protocol, host, port, path.
fn split_url(entity: &mut Map<String, Value>) -> Result<(), AdminError> {
    let Some(url) = entity.get("url") else {
        return Ok(());
    };
    if url.is_null() {
        entity.remove("url");
        return Ok(());
    }
    let text = url
        .as_str()
        .ok_or_else(|| schema("url", "expected a string"))?
        .to_string();
    let probe = json!({"_format_version": "3.0", "services": [{"url": text}]});
    let cfg = crate::config::from_document(&probe).map_err(|e| {
        schema(
            "url",
            &e.0.first().map(|x| x.message.clone()).unwrap_or_default(),
        )
    })?;
    let s = &cfg.services[0];
    entity.remove("url");
    entity.insert("protocol".into(), json!(s.protocol));
    entity.insert("host".into(), json!(s.host));
    entity.insert("port".into(), json!(s.port));
    entity.insert("path".into(), json!(s.path));
    Ok(())
}

fn decode_segment(s: &str) -> String {
    let mut out = Vec::new();
    crate::http::percent::percent_decode_into(&mut out, s.as_bytes(), false);
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &[u8]) -> Vec<(String, String)> {
    crate::http::form::decoded(q)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

fn encode_offset(i: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("i{i}"))
}

fn decode_offset(o: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(o)
        .ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix('i')?
        .parse()
        .ok()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_paths_become_nested_fields() {
        let mut f = Value::Object(Map::new());
        insert_field(&mut f, &split_path("config.aws_region"), json!("bad"));
        insert_field(&mut f, &split_path("paths[1]"), json!("no"));
        assert_eq!(
            f,
            json!({"config": {"aws_region": "bad"}, "paths": [null, "no"]})
        );
        assert_eq!(decode_offset(&encode_offset(42)), Some(42));
        assert_eq!(decode_offset("garbage"), None);
    }
}
