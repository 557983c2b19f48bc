//! The Kong-compatible Admin API (SPEC §7): its state, and the endpoints about the node and
//! the whole configuration. Entity endpoints are in `entities`, routing in `routing`, Kong's
//! error shapes in `errors`.

use super::body::{self, BodyError};
use super::errors::{
    apply_error, declarative_error, declarative_error_flattened, AdminError, Answer,
};
use super::present;
use super::store::{OnDiskChange, Store};
use crate::config::model::new_uuid;
use crate::config::plugins;
use crate::http::conn::BufferPool;
use crate::http::request::Request;
use crate::metrics::Registry;
use crate::schema::Kind;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::sync::Arc;

/// The Admin API: a [`Handler`] over the shared [`Store`].
pub struct AdminApi {
    pub(super) store: RefCell<Store>,
    /// The token every request must present, if any.
    pub(super) token: Option<String>,
    pub(super) metrics: Arc<Registry>,
    pub(super) node_id: String,
    proxy_listen: String,
    admin_listen: String,
    pub(super) buffers: BufferPool,
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

    /// `GET /`: Kong's node information.
    pub(super) fn node_info(&self) -> Value {
        let store = self.store.borrow();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        // Kong's `GET /`: every plugin this node can run with its version and priority, and
        // the distinct names of the plugins configured (enabled or not), first seen first.
        let available: Map<String, Value> = plugins::all()
            .iter()
            .map(|p| {
                let about = json!({"version": env!("CARGO_PKG_VERSION"), "priority": p.priority});
                (p.name.to_string(), about)
            })
            .collect();
        let mut enabled: Vec<&str> = Vec::new();
        for plugin in &store.config.plugins {
            if !enabled.contains(&plugin.name.as_str()) {
                enabled.push(&plugin.name);
            }
        }
        json!({
            "version": "3.4.0",
            "lambda_gateway_version": env!("CARGO_PKG_VERSION"),
            "edition": "community",
            "tagline": "Welcome to lambda-gateway",
            "hostname": hostname,
            "node_id": self.node_id,
            "plugins": {
                "available_on_server": available,
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

    /// `GET /status`.
    pub(super) fn status(&self) -> Value {
        let t = self.metrics.totals();
        let store = self.store.borrow();
        let hash: String = store.config_hash[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (reachable, store_status) = match store.fleet() {
            None => (true, json!({"kind": "file"})),
            Some(fleet) => {
                let health = fleet.health();
                let since = health
                    .since
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs());
                let options = fleet.options();
                (
                    health.watching,
                    json!({
                        "kind": "etcd",
                        "location": options.location.to_string(),
                        "revision": store.revision,
                        "watch": if health.watching { "established" } else { "down" },
                        "watch_since": since,
                        "error": health.error,
                        "local_copy": options.cache.display().to_string(),
                    }),
                )
            }
        };
        json!({
            "database": {"reachable": reachable},
            "configuration_store": store_status,
            "server": {
                "connections_accepted": t.connections_accepted,
                "connections_handled": t.connections_accepted,
                "connections_active": t.connections_active,
                "connections_reading": 0,
                "connections_writing": t.requests_in_flight,
                "connections_waiting": t.connections_active.saturating_sub(t.requests_in_flight),
                "total_requests": t.responses.iter().sum::<u64>(),
            },
            "configuration_hash": hash,
            "configuration_changes": store.changes,
        })
    }

    /// `GET /config`: the document, secrets hidden.
    pub(super) fn get_config(&self) -> Answer {
        let store = self.store.borrow();
        let doc = present::redacted_document(&store.config);
        let yaml =
            serde_norway::to_string(&doc).map_err(|e| AdminError::Internal(e.to_string()))?;
        Ok((200, json!({ "config": yaml })))
    }

    /// `POST /config`: replace the whole configuration. Kong's options: `check_hash=1` answers
    /// 304 when the configuration sent is the one in force (decK skips no-op pushes with it),
    /// `flatten_errors=1` adds the errors per entity ([`super::flatten`]).
    pub(super) fn post_config(&self, req: &Request<'_>) -> Answer {
        let query = body::query_pairs(req.query().unwrap_or_default());
        let option = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .is_some_and(|(_, v)| matches!(v.as_str(), "1" | "true" | "yes" | "on"))
        };
        let (check_hash, flatten_errors) = (option("check_hash"), option("flatten_errors"));
        // What was sent as the configuration: the hash of these bytes is compared and kept.
        let mut sent_text: Option<String> = None;
        let doc = match body::parse(req.content_type(), req.body) {
            Ok((mut map, _)) => match map.remove("config") {
                Some(Value::String(text)) => {
                    let doc =
                        crate::config::parse_text(&text).map_err(|e| declarative_error(&e))?;
                    sent_text = Some(text);
                    doc
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
        let hash = crate::config::digest(match &sent_text {
            Some(text) => text.as_bytes(),
            None => req.body,
        });
        if check_hash && self.store.borrow().config_hash == hash {
            return Ok((304, Value::Null));
        }
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
        let sent = doc.clone();
        store.apply(&doc, OnDiskChange::Replace).map_err(|e| {
            apply_error(e, |errors| match flatten_errors {
                true => declarative_error_flattened(errors, &sent),
                false => declarative_error(errors),
            })
        })?;
        store.config_hash = hash;
        let c = &store.config;
        let answer: Map<String, Value> = [Kind::Service, Kind::Route, Kind::Plugin, Kind::Consumer]
            .into_iter()
            .map(|kind| (kind.collection().to_string(), present::by_id(c, kind)))
            .collect();
        Ok((201, Value::Object(answer)))
    }
}
