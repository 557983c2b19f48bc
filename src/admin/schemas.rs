//! What Kong's tools read to learn a node: the schemas of entities and plugins
//! (`GET /schemas/…`, generated from `crate::schema`), schema-only validation
//! (`POST /schemas/…/validate`), the enabled plugins and the tags in use.

use super::api::AdminApi;
use super::errors::{entity_error, AdminError, Answer};
use super::paging;
use crate::config::plugins;
use crate::config::ConfigErrors;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::Kind;
use serde_json::{json, Value};

impl AdminApi {
    /// `GET /schemas/{entity}`.
    pub(super) fn entity_schema(&self, kind: Kind) -> Answer {
        Ok((200, json!({"fields": kind.schema().to_kong_fields(None)})))
    }

    /// `GET /schemas/plugins/{name}`: the plugin entity with its `config` record.
    pub(super) fn plugin_schema_of(&self, name: &str) -> Answer {
        let spec = plugins::find(name).ok_or(AdminError::NotFound)?;
        let fields = Kind::Plugin.schema().to_kong_fields(Some(spec.schema));
        Ok((200, json!({ "fields": fields })))
    }

    /// `POST /schemas/{entity}/validate` and `POST /schemas/plugins/validate`: the body checked
    /// against its schema (and a plugin's config against the plugin's), nothing stored.
    /// References to other entities are not looked up, as in Kong.
    pub(super) fn validate_entity(&self, kind: Kind, req: &Request<'_>) -> Answer {
        let entity = self.read_body(kind, None, req)?;
        let mut c = Checker::default();
        c.push_field(kind.collection());
        c.push_index(0);
        kind.schema().check(&mut c, &entity);
        if kind == Kind::Plugin {
            let name = entity.get("name").and_then(Value::as_str).unwrap_or("");
            match plugins::find(name) {
                Some(spec) => {
                    let empty = json!({});
                    let config = entity
                        .get("config")
                        .filter(|v| !v.is_null())
                        .unwrap_or(&empty);
                    c.field("config", |c| spec.validate(c, config, ""));
                }
                None if !name.is_empty() => c.error_at("name", plugins::unknown(name)),
                None => {}
            }
        }
        if c.errors.is_empty() {
            Ok((200, json!({"message": "schema validation successful"})))
        } else {
            Err(entity_error(&ConfigErrors(c.errors), kind, 0))
        }
    }

    /// `GET /plugins/enabled`: the plugins this node runs.
    pub(super) fn enabled_plugins(&self) -> Answer {
        let names: Vec<&str> = plugins::all().iter().map(|p| p.name).collect();
        Ok((200, json!({ "enabled_plugins": names })))
    }

    /// `GET /tags` and `GET /tags/{tag}`: every tag on every entity, paged as Kong pages.
    pub(super) fn tags(&self, only: Option<&str>, query: &[(String, String)]) -> Answer {
        let store = self.store.borrow();
        let config = &store.config;
        let mut all = Vec::new();
        for kind in Kind::ALL {
            for i in 0..config.count(kind) {
                let (id, raw) = config.entity(kind, i);
                let tags = raw.get("tags").and_then(Value::as_array);
                for tag in tags.into_iter().flatten().filter_map(Value::as_str) {
                    if only.is_none_or(|t| t == tag) {
                        all.push(
                            json!({"entity_name": kind.collection(), "entity_id": id, "tag": tag}),
                        );
                    }
                }
            }
        }
        let base = match only {
            Some(tag) => format!("/tags/{tag}"),
            None => "/tags".to_string(),
        };
        paging::page(&all, &base, query)
    }
}
