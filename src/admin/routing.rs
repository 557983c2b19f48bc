//! Admin API routing: who may call (the token), which endpoint a method and path reach, and
//! the answer written back.

use super::api::AdminApi;
use super::errors::{AdminError, Answer};
use crate::http::conn::{BufferPool, Handler, Piece, StreamEnd};
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::random;
use crate::schema::{Kind, Type};
use serde_json::json;
use std::time::Duration;

/// How many times a change is tried against a fleet's newest configuration.
const FLEET_ATTEMPTS: u32 = 5;
/// The most a retry waits, times its attempt number (random below it, so that nodes racing
/// for the same revision spread out).
const FLEET_RETRY_PAUSE: Duration = Duration::from_millis(4);

impl Handler for AdminApi {
    /// The Admin API answers whole bodies only.
    type Stream = std::convert::Infallible;

    async fn handle(&self, req: Request<'_>, resp: &mut Response) -> Option<Self::Stream> {
        self.answer(req, resp);
        None
    }

    async fn next_piece(&self, stream: &mut Self::Stream, _: &mut Vec<u8>) -> Piece {
        match *stream {}
    }

    fn end_stream(&self, stream: Self::Stream, _: Request<'_>, _: StreamEnd, _: u64) {
        match stream {}
    }

    fn buffers(&self) -> &BufferPool {
        &self.buffers
    }
}

impl AdminApi {
    /// Answers one request, whole.
    fn answer(&self, req: Request<'_>, resp: &mut Response) {
        // Other fleet nodes' changes first: reads see what the watch delivered, writes are
        // made against what etcd holds now (below, once the client is authorized).
        self.store.borrow_mut().catch_up();
        let authorized = self.authorized(&req);
        if !authorized {
            let why = if self.presented_token(&req).is_some() {
                "wrong token"
            } else {
                "no token"
            };
            log::warn!(
                "admin: refused {} {} from {}: {why}",
                String::from_utf8_lossy(req.method()),
                String::from_utf8_lossy(req.path()),
                peer_text(&req)
            );
        }
        let answer = if authorized {
            if req.method() == b"GET" && req.path() == b"/metrics" {
                let text = self
                    .metrics
                    .prometheus(self.store.borrow().changes, &self.node_id);
                resp.status = 200;
                resp.header(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8");
                resp.body.extend_from_slice(text.as_bytes());
                return;
            }
            if !matches!(req.method(), b"GET" | b"HEAD") {
                self.store.borrow_mut().catch_up_with_etcd();
            }
            // A bug in one request's handling answers 500 and leaves the Admin API serving
            // (the store is only replaced once a new configuration is complete).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dispatch_again(&req)))
                .unwrap_or_else(|_| {
                    Err(AdminError::Internal(
                        "the Admin API failed on this request; see the log".into(),
                    ))
                })
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
        // Validation (`POST /schemas/…/validate`) changes nothing.
        let changes =
            !matches!(req.method(), b"GET" | b"HEAD") && !req.path().starts_with(b"/schemas/");
        if changes && status < 300 {
            self.log_change(&req, status, &body);
        }
        resp.status = status;
        if status != 204 && status != 304 {
            resp.header(b"Content-Type", b"application/json; charset=utf-8");
            if let Ok(bytes) = serde_json::to_vec(&body) {
                resp.body.extend_from_slice(&bytes);
            }
        }
    }

    /// Dispatches `req`; a change that lost a fleet's compare-and-swap to another node's is
    /// made again on top of the configuration that won (the store took it), after a short
    /// random pause, up to [`FLEET_ATTEMPTS`] times: two operators changing different things
    /// both succeed, and a change that now truly conflicts (the same name, a deleted parent)
    /// gets that conflict's own answer.
    fn dispatch_again(&self, req: &Request<'_>) -> Answer {
        let mut attempt = 1;
        loop {
            match self.dispatch(req) {
                Err(AdminError::Stale(why)) if attempt < FLEET_ATTEMPTS => {
                    log::debug!("admin: made again on the newest configuration: {why}");
                    std::thread::sleep(random::jitter(FLEET_RETRY_PAUSE * attempt));
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    fn presented_token<'a>(&self, req: &Request<'a>) -> Option<&'a [u8]> {
        req.header("kong-admin-token").or_else(|| {
            req.header("authorization")
                .and_then(|a| a.strip_prefix(b"Bearer "))
                .map(crate::http::framing::trim_ows)
        })
    }

    fn authorized(&self, req: &Request<'_>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        self.presented_token(req)
            .is_some_and(|p| constant_time_eq(p, token.as_bytes()))
    }

    /// One line per applied change: what was done to which entity, by which client address,
    /// and how it was admitted. Only the method, path, status and the entity's id and name are
    /// written: never a body, a query or a secret.
    fn log_change(&self, req: &Request<'_>, status: u16, body: &serde_json::Value) {
        let caller = if self.token.is_some() {
            "caller presented the admin token"
        } else {
            "no admin token configured"
        };
        let mut entity = String::new();
        for field in ["id", "name", "username"] {
            if let Some(v) = body.get(field).and_then(serde_json::Value::as_str) {
                // Quoted and escaped: a name cannot start a forged log line.
                entity.push_str(&format!(" {field}={v:?}"));
            }
        }
        log::info!(
            "admin: {} {} status={status}{entity} from {} ({caller})",
            String::from_utf8_lossy(req.method()),
            String::from_utf8_lossy(req.path()),
            peer_text(req)
        );
    }

    fn dispatch(&self, req: &Request<'_>) -> Answer {
        let path = String::from_utf8_lossy(req.path()).into_owned();
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode_segment)
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let query = super::body::query_pairs(req.query().unwrap_or_default());
        let method = req.method();
        match (method, segs.as_slice()) {
            (b"GET", []) => Ok((200, self.node_info())),
            (_, []) => Err(AdminError::MethodNotAllowed),
            (b"GET", ["status"]) => Ok((200, self.status())),
            (b"GET", ["config"]) => self.get_config(),
            (b"POST", ["config"]) => self.post_config(req),
            (_, ["status" | "config" | "metrics"]) => Err(AdminError::MethodNotAllowed),
            (b"GET", ["plugins", "enabled"]) => self.enabled_plugins(),
            (b"DELETE", ["proxy-cache"]) => self.flush_proxy_cache(),
            (b"GET" | b"DELETE", ["proxy-cache", key]) => self.proxy_cache_entry(method, None, key),
            (b"GET" | b"DELETE", ["proxy-cache", plugin, "caches", key]) => {
                self.proxy_cache_entry(method, Some(plugin), key)
            }
            (_, ["proxy-cache", ..]) => Err(AdminError::MethodNotAllowed),
            (b"GET", ["tags"]) => self.tags(None, &query),
            (b"GET", ["tags", tag]) => self.tags(Some(tag), &query),
            (b"GET", ["schemas", "plugins", name]) => self.plugin_schema_of(name),
            (b"POST", ["schemas", collection, "validate"]) => {
                let kind = Kind::from_collection(collection).ok_or(AdminError::NotFound)?;
                self.validate_entity(kind, req)
            }
            (b"GET", ["schemas", collection]) => {
                let kind = Kind::from_collection(collection).ok_or(AdminError::NotFound)?;
                self.entity_schema(kind)
            }
            (_, ["schemas" | "tags", ..]) => Err(AdminError::MethodNotAllowed),
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
}

/// `/services/{id}/routes` and the like: a child collection under a parent entity, where the
/// child's schema refers to the parent's kind.
fn nested(parent: &str, child: &str) -> Result<(Kind, Kind), AdminError> {
    let parent = Kind::from_collection(parent).ok_or(AdminError::NotFound)?;
    let child = Kind::from_collection(child).ok_or(AdminError::NotFound)?;
    let refers = child
        .schema()
        .fields
        .iter()
        .any(|f| matches!(f.ty, Type::Reference(k) if k == parent));
    if refers {
        Ok((parent, child))
    } else {
        Err(AdminError::NotFound)
    }
}

/// The client's address for the log, `-` when unknown.
fn peer_text(req: &Request<'_>) -> String {
    req.peer
        .map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

/// Compares without an early exit, so response timing does not reveal how much of a guessed
/// token was right (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_segment(s: &str) -> String {
    let mut out = Vec::new();
    crate::http::percent::percent_decode_into(&mut out, s.as_bytes(), false);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_collections_follow_the_schemas_references() {
        let ok = |p: &str, c: &str| nested(p, c).ok();
        assert_eq!(ok("services", "routes"), Some((Kind::Service, Kind::Route)));
        assert_eq!(
            ok("services", "plugins"),
            Some((Kind::Service, Kind::Plugin))
        );
        assert_eq!(ok("routes", "plugins"), Some((Kind::Route, Kind::Plugin)));
        assert_eq!(
            ok("consumers", "plugins"),
            Some((Kind::Consumer, Kind::Plugin))
        );
        assert_eq!(ok("routes", "services"), None);
        assert_eq!(ok("consumers", "routes"), None);
        assert_eq!(ok("plugins", "plugins"), None);
    }
}
