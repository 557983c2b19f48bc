//! The entity endpoints: list, read, create, PATCH / PUT, delete, for every kind and nested
//! under a parent (`/services/{id}/routes`). Each change is made to the whole declarative
//! document and applied through the validator, so the Admin API and a `kong.yml` accept the
//! same things.

use super::api::AdminApi;
use super::body::{self, BodyError};
use super::errors::{
    apply_error, entity_error, field_error, has_schema_errors, AdminError, Answer,
};
use super::paging;
use super::present;
use super::store::{OnDiskChange, Store};
use crate::config::model::{is_uuid, new_uuid};
use crate::config::{self, plugins, ConfigError};
use crate::http::request::Request;
use crate::schema::{Kind, Schema, Type};
use serde_json::{json, Map, Value};

/// An entity's parent in a nested path: its kind and id.
type Parent<'a> = Option<(Kind, &'a str)>;

impl AdminApi {
    /// The id of the entity `key` (an id, or a name / username / custom_id).
    pub(super) fn find_id(&self, kind: Kind, key: &str) -> Option<String> {
        let store = self.store.borrow();
        let c = &store.config;
        c.find(kind, key).map(|i| c.entity(kind, i).0.to_string())
    }

    pub(super) fn list(&self, kind: Kind, parent: Parent, query: &[(String, String)]) -> Answer {
        let tags = query
            .iter()
            .find(|(k, _)| k == "tags")
            .map(|(_, v)| TagFilter::parse(v))
            .transpose()?;
        let store = self.store.borrow();
        let c = &store.config;
        let all: Vec<Value> = (0..c.count(kind))
            .filter(|&i| parent.is_none_or(|(pk, pid)| c.scope(kind, i, pk) == Some(pid)))
            .filter(|&i| tags.as_ref().is_none_or(|t| t.matches(c.entity(kind, i).1)))
            .map(|i| present::entity(c, kind, i))
            .collect();
        let mut base = String::from("/");
        if let Some((pk, pid)) = parent {
            base.push_str(&format!("{}/{pid}/", pk.collection()));
        }
        base.push_str(kind.collection());
        paging::page(&all, &base, query)
    }

    pub(super) fn one(
        &self,
        kind: Kind,
        key: &str,
        parent: Parent,
        method: &[u8],
        req: &Request<'_>,
    ) -> Answer {
        let index = {
            let store = self.store.borrow();
            let c = &store.config;
            c.find(kind, key)
                .filter(|&i| parent.is_none_or(|(pk, pid)| c.scope(kind, i, pk) == Some(pid)))
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
                let i = store.config.find(Kind::Plugin, key?)?;
                store.config.plugins[i].name.clone()
            }
        };
        plugins::find(&name).map(|p| p.schema)
    }

    /// The request's entity: parsed, form values given their schema types, a service's `url`
    /// split into its parts.
    pub(super) fn read_body(
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
            body::expand_service_url(&mut map).map_err(|m| field_error("url", &m))?;
        }
        Ok(map)
    }

    pub(super) fn create(&self, kind: Kind, parent: Parent, req: &Request<'_>) -> Answer {
        let mut entity = self.read_body(kind, None, req)?;
        let id = match entity.get("id").and_then(Value::as_str) {
            Some(id) if is_uuid(id) => id.to_ascii_lowercase(),
            Some(_) => return Err(field_error("id", "expected a valid UUID")),
            None => new_uuid(),
        };
        entity.insert("id".into(), Value::String(id.clone()));
        if let Some((pk, pid)) = parent {
            entity.insert(pk.reference_field().into(), json!({ "id": pid }));
        }
        let now = Value::from(unix_now());
        entity.insert("created_at".into(), now.clone());
        entity.insert("updated_at".into(), now);
        unredact(kind, &mut entity, None)?;
        let clash = self.check_unique(kind, &entity, None);
        let mut store = self.store.borrow_mut();
        let mut doc = store.document();
        let list = doc_list(&mut doc, kind)?;
        let index = list.len();
        list.push(Value::Object(entity));
        apply(&mut store, &doc, kind, index, clash)?;
        let i = store
            .config
            .find(kind, &id)
            .ok_or_else(|| AdminError::Internal("created entity not found".into()))?;
        Ok((201, present::entity(&store.config, kind, i)))
    }

    /// PATCH (merge into an existing entity) or PUT (replace, or create with the key's id/name).
    fn update(
        &self,
        kind: Kind,
        index: Option<usize>,
        body: Map<String, Value>,
        parent: Parent,
        replace: bool,
        key: &str,
    ) -> Answer {
        let existing = index.map(|i| self.store.borrow().config.entity(kind, i).1.clone());
        let mut entity = match (&existing, replace) {
            (Some(old), false) => merge(kind, old.clone(), body),
            _ => body,
        };
        // A PUT by name is an upsert of that name, as Kong's `upsert_by_<endpoint key>`: the
        // name in the URL is the entity's, whatever the body says.
        if replace && !is_uuid(key) {
            if let Some(name_field) = kind.schema().unique_fields().next() {
                entity.insert(name_field.name.to_string(), Value::String(key.to_string()));
            }
        }
        let id = match &existing {
            Some(old) => old
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            None if is_uuid(key) => key.to_ascii_lowercase(),
            None => new_uuid(),
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
            .and_then(Value::as_object);
        unredact(kind, &mut entity, stored_config)?;
        let clash = self.check_unique(kind, &entity, Some(&id));
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
        apply(&mut store, &doc, kind, position, clash)?;
        let i = store
            .config
            .find(kind, &id)
            .ok_or_else(|| AdminError::Internal("updated entity not found".into()))?;
        Ok((200, present::entity(&store.config, kind, i)))
    }

    fn delete(&self, kind: Kind, index: usize) -> Answer {
        let mut store = self.store.borrow_mut();
        let id = store.config.entity(kind, index).0.to_string();
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
        // What refers to the deleted entity goes with it, as in Kong: plugins scoped to it,
        // a certificate's SNIs. (Routes of a service were refused above.)
        let field = kind.reference_field();
        for other in Kind::ALL {
            let refers = other
                .schema()
                .fields
                .iter()
                .any(|f| matches!(f.ty, Type::Reference(k) if k == kind));
            if !refers || other == kind {
                continue;
            }
            doc_list(&mut doc, other)?.retain(|e| {
                e.get(field)
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_str)
                    != Some(id.as_str())
            });
        }
        store
            .apply(&doc, OnDiskChange::Refuse)
            .map_err(|e| apply_error(e, |e| AdminError::BadRequest(e.to_string())))?;
        Ok((204, Value::Null))
    }

    /// A duplicate name among the stored entities (Kong's 409), found before the change is
    /// made so that it is blamed on the entity sent, whichever of the two comes first in the
    /// document; answered only if the entity is otherwise valid (see [`apply`]).
    fn check_unique(
        &self,
        kind: Kind,
        entity: &Map<String, Value>,
        own_id: Option<&str>,
    ) -> Result<(), AdminError> {
        let store = self.store.borrow();
        let c = &store.config;
        let schema = kind.schema();
        for (field, value) in schema.unique_values(entity) {
            // On create every match clashes; on update the entity itself does not.
            let clash = (0..c.count(kind)).any(|i| {
                let (other_id, other) = c.entity(kind, i);
                other.get(field).and_then(Value::as_str) == Some(value)
                    && own_id.is_none_or(|own| other_id != own)
            });
            if clash {
                let e = ConfigError::unique("", json!({ field: value }));
                return Err(AdminError::Unique {
                    message: e.message,
                    fields: e.conflict.unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

/// Kong's `?tags=` on a list: `a,b` lists the entities tagged with all of them, `a/b` with any
/// of them; one tag either way. Tags are letters, digits, `.`, `-`, `_` and `~`.
enum TagFilter {
    All(Vec<String>),
    Any(Vec<String>),
}

impl TagFilter {
    fn parse(text: &str) -> Result<TagFilter, AdminError> {
        let invalid = || AdminError::InvalidOption {
            field: "tags",
            message: "invalid filter syntax",
        };
        let (all, any) = (text.contains(','), text.contains('/'));
        if all && any {
            return Err(invalid());
        }
        let tags: Vec<String> = text
            .split([',', '/'])
            .map(|tag| {
                let valid = !tag.is_empty()
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-~".contains(&b));
                valid.then(|| tag.to_string()).ok_or_else(invalid)
            })
            .collect::<Result<_, _>>()?;
        Ok(if any {
            TagFilter::Any(tags)
        } else {
            TagFilter::All(tags)
        })
    }

    fn matches(&self, entity: &Map<String, Value>) -> bool {
        let has = |tag: &String| {
            entity
                .get("tags")
                .and_then(Value::as_array)
                .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag)))
        };
        match self {
            TagFilter::All(tags) => tags.iter().all(has),
            TagFilter::Any(tags) => tags.iter().any(has),
        }
    }
}

/// A PATCH: `body`'s fields over `old`'s; a plugin's `config` merged field by field; a new
/// `protocol` or `host` drops a stored `url`.
fn merge(kind: Kind, mut old: Map<String, Value>, body: Map<String, Value>) -> Map<String, Value> {
    if kind == Kind::Service && (body.contains_key("protocol") || body.contains_key("host")) {
        old.remove("url");
    }
    for (k, v) in body {
        match (k.as_str(), old.get_mut(&k), v) {
            // PATCHing a plugin's config changes only the fields given.
            ("config", Some(Value::Object(old_cfg)), Value::Object(new_cfg)) => {
                for (ck, cv) in new_cfg {
                    old_cfg.insert(ck, cv);
                }
            }
            (_, _, v) => {
                old.insert(k, v);
            }
        }
    }
    old
}

/// A plugin's secrets sent back hidden keep the stored values (see [`Schema::keep_hidden`]).
fn unredact(
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

/// Applies a changed document, attributing validation errors to the changed entity. A `clash`
/// found before is answered unless the entity has schema errors: Kong validates an entity's
/// schema first, and only a valid entity reaches the uniqueness check.
fn apply(
    store: &mut Store,
    doc: &Value,
    kind: Kind,
    index: usize,
    clash: Result<(), AdminError>,
) -> Result<(), AdminError> {
    if let Err(clash) = clash {
        return Err(match config::from_document(doc) {
            Err(errors) if has_schema_errors(&errors, kind, index) => {
                entity_error(&errors, kind, index)
            }
            _ => clash,
        });
    }
    store
        .apply(doc, OnDiskChange::Refuse)
        .map_err(|e| apply_error(e, |errors| entity_error(errors, kind, index)))
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
