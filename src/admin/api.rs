//! The Kong-compatible Admin API (SPEC §7): its state, and the endpoints about the node and
//! the whole configuration. Entity endpoints are in `entities`, routing in `routing`, Kong's
//! error shapes in `errors`.

use super::body::{self, BodyError};
use super::errors::{apply_error, declarative_error, AdminError, Answer};
use super::present;
use super::store::{OnDiskChange, Store};
use crate::config::model::new_uuid;
use crate::config::plugins;
use crate::http::conn::BufferPool;
use crate::http::request::Request;
use crate::metrics::Registry;
use serde_json::{json, Value};
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

    /// `GET /status`.
    pub(super) fn status(&self) -> Value {
        let t = self.metrics.totals();
        let store = self.store.borrow();
        let doc = serde_json::to_vec(&store.document()).unwrap_or_default();
        let hash = crate::aws::sigv4::sha256_hex(&doc);
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
            "configuration_hash": String::from_utf8_lossy(&hash[..32]),
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

    /// `POST /config`: replace the whole configuration.
    pub(super) fn post_config(&self, req: &Request<'_>) -> Answer {
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
        store
            .apply(&doc, OnDiskChange::Replace)
            .map_err(|e| apply_error(e, declarative_error))?;
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
}
