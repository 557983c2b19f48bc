//! proxy-cache's Admin API, as Kong's: `DELETE /proxy-cache` (every entry),
//! `GET`/`DELETE /proxy-cache/{cache_key}`, and `GET`/`DELETE
//! /proxy-cache/{plugin_id}/caches/{cache_key}` (404 for a plugin that is not a proxy-cache
//! one). An entry is shown as Kong stores one: `status`, `headers`, `body`, `body_len`,
//! `timestamp`, `ttl`, `version`.

use super::api::AdminApi;
use super::errors::{AdminError, Answer};
use crate::cache::{parse_hex, Cache, Entry};
use crate::schema::Kind;
use serde_json::{json, Map, Value};

impl AdminApi {
    /// `DELETE /proxy-cache`.
    pub(super) fn flush_proxy_cache(&self) -> Answer {
        Cache::global().flush(None);
        Ok((204, Value::Null))
    }

    /// `GET` or `DELETE /proxy-cache/{cache_key}`, or under a plugin.
    pub(super) fn proxy_cache_entry(
        &self,
        method: &[u8],
        plugin: Option<&str>,
        key: &str,
    ) -> Answer {
        if let Some(plugin) = plugin {
            let store = self.store.borrow();
            let config = &store.config;
            let i = config
                .find(Kind::Plugin, plugin)
                .ok_or(AdminError::NotFound)?;
            let (_, raw) = config.entity(Kind::Plugin, i);
            if raw.get("name").and_then(Value::as_str) != Some("proxy-cache") {
                return Err(AdminError::NotFound);
            }
        }
        let key = parse_hex(key).ok_or(AdminError::NotFound)?;
        let cache = Cache::global();
        let entry = cache.get(&key).ok_or(AdminError::NotFound)?;
        match method {
            b"GET" => Ok((200, shown(&entry))),
            b"DELETE" => {
                cache.purge(&key);
                Ok((204, Value::Null))
            }
            _ => Err(AdminError::MethodNotAllowed),
        }
    }
}

fn shown(entry: &Entry) -> Value {
    let mut headers = Map::new();
    for line in entry.headers.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.to_string(), Value::String(value.trim().to_string()));
        }
    }
    json!({
        "status": entry.status,
        "headers": headers,
        "body": String::from_utf8_lossy(&entry.body),
        "body_len": entry.body.len(),
        "timestamp": entry.stored_at,
        "ttl": entry.ttl,
        "version": 1,
    })
}
