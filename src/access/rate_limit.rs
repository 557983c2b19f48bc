//! Kong's `rate-limiting` (priority 910) with the `local` policy: requests per second, minute,
//! hour, day, month and year, counted per `limit_by` key (consumer, credential, ip, service,
//! header, path); a request over any limit gets 429 `{"message":"API rate limit exceeded"}`
//! with `Retry-After`, and every answer gets Kong's `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` and `X-RateLimit-{Limit,Remaining}-{Second,Minute,…}` headers.
//!
//! One node-wide answer: every worker counts in the same table ([`Counters`]), a fixed array
//! of slots found by open addressing on a keyed hash of (plugin, key, period), each slot's
//! window and count packed in one `AtomicU64` and updated with compare-and-swap, so counting
//! takes no lock and allocates nothing. Sharding keys to workers would need a hop between
//! threads per request; sharing one table costs an atomic operation per limit instead. A
//! slot whose window has passed is taken over by the next key that probes it; when every
//! probed slot holds a live key (a table flooded with distinct keys), the request is let
//! through uncounted, as Kong's `fault_tolerant` lets requests through when counting fails.
//!
//! `policy: redis` counts the same way and exchanges the counts with the other gateways of a
//! tier through Redis in batches ([`super::redis_sync`]).

use super::redis_exact::{Counter, RedisExact};
use super::redis_link::{RedisTarget, RedisTls};
use super::redis_sync::RedisSync;
use super::{AccessContext, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Shown, Type};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The periods Kong limits, with their length in seconds and header names.
const PERIODS: [(&str, u64, &str); 6] = [
    ("second", 1, "Second"),
    ("minute", 60, "Minute"),
    ("hour", 3600, "Hour"),
    ("day", 86_400, "Day"),
    ("month", 2_592_000, "Month"),
    ("year", 31_536_000, "Year"),
];

/// What requests are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitBy {
    /// The identified consumer (else the client address).
    Consumer,
    /// The identified credential (else the client address).
    Credential,
    /// The client address.
    Ip,
    /// The route's service: everyone together.
    Service,
    /// A request header's value.
    Header,
    /// The request path, when it is `path`.
    Path,
}

/// The validated config.
#[derive(Debug)]
pub struct RateLimitConfig {
    /// This plugin's id: counters are its own.
    pub plugin_id: String,
    /// (period index in [`PERIODS`], limit).
    pub limits: Vec<(usize, u64)>,
    /// `limit_by`.
    pub limit_by: LimitBy,
    /// `header_name` for `limit_by: header`.
    pub header_name: Option<String>,
    /// `path` for `limit_by: path`.
    pub path: Option<String>,
    /// `hide_client_headers`.
    pub hide_client_headers: bool,
    /// `error_code`.
    pub error_code: u16,
    /// `error_message`.
    pub error_message: String,
    /// `policy: redis`: the tier's Redis.
    pub redis: Option<RedisTarget>,
    /// `fault_tolerant`: with Redis down, serve (counting on this node) rather than answer 500.
    pub fault_tolerant: bool,
    /// With `redis`: every request counted in Redis before it is let through (Kong's
    /// `sync_rate` absent or `-1`), rather than counts exchanged every `sync_rate` seconds.
    pub synchronous: bool,
    /// The batched exchange with `redis`, started by the first request.
    sync: OnceLock<Arc<RedisSync>>,
    /// The exact counting at `redis`, started by the first request.
    exact: OnceLock<Arc<RedisExact>>,
}

const LIMIT: Type = Type::Integer {
    min: 0,
    max: i64::MAX,
};

/// The plugin's schema.
pub static SCHEMA: Schema = Schema {
    name: "rate-limiting",
    fields: &[
        Field::new("second", LIMIT),
        Field::new("minute", LIMIT),
        Field::new("hour", LIMIT),
        Field::new("day", LIMIT),
        Field::new("month", LIMIT),
        Field::new("year", LIMIT),
        Field::new(
            "limit_by",
            Type::OneOf(&["consumer", "credential", "ip", "service", "header", "path"]),
        )
        .default(Default::Text("consumer")),
        Field::new("header_name", Type::Text(None)),
        Field::new("path", Type::Text(None)),
        Field::new("policy", Type::OneOf(&["local", "cluster", "redis"]))
            .default(Default::Text("local")),
        Field::new("fault_tolerant", Type::Boolean).default(Default::Bool(true)),
        Field::new("hide_client_headers", Type::Boolean).default(Default::Bool(false)),
        Field::new("error_code", Type::Integer { min: 100, max: 599 }).default(Default::Int(429)),
        Field::new("error_message", Type::Text(None))
            .default(Default::Text("API rate limit exceeded")),
        Field::new("sync_rate", Type::Any),
        Field::new("redis", Type::Any).referenceable(),
        Field::new("redis_host", Type::Text(None)),
        Field::new("redis_port", Type::Integer { min: 0, max: 65535 }).default(Default::Int(6379)),
        Field::new("redis_username", Type::Text(None)).referenceable(),
        Field::new("redis_password", Type::Text(None))
            .shown(Shown::Redacted)
            .referenceable(),
        Field::new(
            "redis_database",
            Type::Integer {
                min: 0,
                max: 1_000_000,
            },
        )
        .default(Default::Int(0)),
        Field::new("redis_ssl", Type::Boolean).default(Default::Bool(false)),
        Field::new("redis_ssl_verify", Type::Boolean).default(Default::Bool(false)),
        Field::new("redis_server_name", Type::Text(None)),
        Field::new(
            "redis_timeout",
            Type::Integer {
                min: 0,
                max: i32::MAX as i64,
            },
        )
        .default(Default::Int(2000)),
    ],
};

/// Validates a `config` object; `plugin_id` names the counters.
pub fn validate(c: &mut Checker, value: &Value, plugin_id: &str) -> Option<RateLimitConfig> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    let limits: Vec<(usize, u64)> = PERIODS
        .iter()
        .enumerate()
        .filter_map(|(i, (name, _, _))| SCHEMA.int(obj, name).map(|n| (i, n.max(0) as u64)))
        .collect();
    if limits.is_empty() {
        c.error("at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'");
    }
    // Kong's rule: each period's limit at least the shorter period's.
    for pair in limits.windows(2) {
        if pair[1].1 < pair[0].1 {
            c.error(format!(
                "the limit for {} must be greater than or equal to the limit for {}",
                PERIODS[pair[1].0].0, PERIODS[pair[0].0].0
            ));
        }
    }
    let limit_by = match SCHEMA.text(obj, "limit_by") {
        Some("credential") => LimitBy::Credential,
        Some("ip") => LimitBy::Ip,
        Some("service") => LimitBy::Service,
        Some("header") => LimitBy::Header,
        Some("path") => LimitBy::Path,
        _ => LimitBy::Consumer,
    };
    let header_name = SCHEMA.text(obj, "header_name").map(str::to_string);
    let path = SCHEMA.text(obj, "path").map(str::to_string);
    if limit_by == LimitBy::Header && header_name.is_none() {
        c.error("No header name provided");
    }
    if limit_by == LimitBy::Path && path.is_none() {
        c.error("No path provided");
    }
    let redis = match SCHEMA.text(obj, "policy") {
        Some("cluster") => {
            c.error_at(
                "policy",
                "`cluster` needs Kong's database; use `local` (one node) or `redis` (a tier)",
            );
            None
        }
        Some("redis") => redis_target(c, obj),
        _ => None,
    };
    // Kong's `sync_rate` (seconds): -1 (its default) counts every request in Redis; a positive
    // rate exchanges counts that often.
    let sync_rate = obj.get("sync_rate").and_then(Value::as_f64);
    let synchronous = sync_rate.is_none_or(|r| r <= 0.0);
    (c.errors.len() == before).then(|| RateLimitConfig {
        plugin_id: plugin_id.to_string(),
        limits,
        limit_by,
        header_name,
        path,
        hide_client_headers: SCHEMA.boolean(obj, "hide_client_headers"),
        error_code: SCHEMA.int(obj, "error_code").unwrap_or(429) as u16,
        error_message: SCHEMA
            .text(obj, "error_message")
            .unwrap_or("API rate limit exceeded")
            .to_string(),
        redis,
        fault_tolerant: SCHEMA.boolean(obj, "fault_tolerant"),
        synchronous,
        sync: OnceLock::new(),
        exact: OnceLock::new(),
    })
}

/// The Redis of `policy: redis`: Kong's `redis_*` fields, or its newer `redis` object
/// (`host`, `port`, `username`, `password`, `database`, `ssl`, `timeout`), which wins.
fn redis_target(c: &mut Checker, obj: &Map<String, Value>) -> Option<RedisTarget> {
    let nested = obj.get("redis").and_then(Value::as_object);
    let text = |name: &str| {
        nested
            .and_then(|n| n.get(name))
            .and_then(Value::as_str)
            .or_else(|| SCHEMA.text(obj, &format!("redis_{name}")))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let int = |name: &str, default: i64| {
        nested
            .and_then(|n| n.get(name))
            .and_then(Value::as_i64)
            .or_else(|| SCHEMA.int(obj, &format!("redis_{name}")))
            .unwrap_or(default)
    };
    let boolean = |name: &str| {
        nested
            .and_then(|n| n.get(name))
            .and_then(Value::as_bool)
            .unwrap_or_else(|| SCHEMA.boolean(obj, &format!("redis_{name}")))
    };
    let Some(host) = text("host") else {
        c.error("No redis config provided");
        return None;
    };
    let tls = if boolean("ssl") {
        let server_name = text("server_name").unwrap_or_else(|| host.clone());
        if rustls::pki_types::ServerName::try_from(server_name.as_str()).is_err() {
            c.error_at(
                "redis_server_name",
                format!("{server_name:?} is neither a DNS name nor an IP address"),
            );
            return None;
        }
        Some(RedisTls {
            verify: boolean("ssl_verify"),
            server_name,
        })
    } else {
        None
    };
    let port = int("port", 6379);
    if !(1..=65535).contains(&port) {
        c.error_at("redis_port", "value should be between 1 and 65535");
        return None;
    }
    // With a positive `sync_rate`, how often counts are exchanged (else unused: see
    // `synchronous`).
    let interval = obj
        .get("sync_rate")
        .and_then(Value::as_f64)
        .filter(|r| *r > 0.0 && *r <= 3600.0)
        .map_or(Duration::from_millis(100), Duration::from_secs_f64);
    Some(RedisTarget {
        host,
        port: port as u16,
        username: text("username"),
        password: text("password"),
        database: int("database", 0),
        timeout: Duration::from_millis(int("timeout", 2000).clamp(1, 60_000) as u64),
        interval,
        tls,
    })
}

/// Slots in the node's table (16 bytes each: 4 MiB).
const SLOTS: usize = 1 << 18;
/// Slots probed for a key before giving up.
const PROBES: usize = 16;

/// The node's counters (see the module docs).
pub struct Counters {
    /// Each slot: the key's hash (0: free), and (window << 32 | count).
    slots: Box<[(AtomicU64, AtomicU64)]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            slots: (0..SLOTS)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The node-wide table.
    pub fn global() -> &'static Counters {
        static TABLE: OnceLock<Counters> = OnceLock::new();
        TABLE.get_or_init(Counters::new)
    }

    fn key(&self, parts: &[&[u8]], period: usize) -> u64 {
        let mut h = self.hasher.build_hasher();
        for p in parts {
            p.hash(&mut h);
        }
        period.hash(&mut h);
        h.finish().max(1)
    }

    /// The count of `key` in `window` so far, and whether a slot holds it.
    fn slot(&self, key: u64, window: u32) -> Option<&AtomicU64> {
        let start = key as usize % SLOTS;
        for probe in 0..PROBES {
            let (tag, value) = &self.slots[(start + probe) % SLOTS];
            let current = tag.load(Ordering::Acquire);
            if current == key {
                return Some(value);
            }
            let stale = (value.load(Ordering::Acquire) >> 32) as u32 != window;
            if current == 0 || stale {
                // A free slot, or one whose key's window has passed: take it.
                if tag
                    .compare_exchange(current, key, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Some(value);
                }
                if tag.load(Ordering::Acquire) == key {
                    return Some(value);
                }
            }
        }
        None
    }

    /// The count in `window` before this request.
    fn count(&self, key: u64, window: u32) -> Option<u64> {
        let value = self.slot(key, window)?.load(Ordering::Acquire);
        Some(if (value >> 32) as u32 == window {
            value & 0xffff_ffff
        } else {
            0
        })
    }

    /// Makes the count in `window` at least `total` (a count learned elsewhere).
    fn raise(&self, key: u64, window: u32, total: u64) {
        let before = self.count(key, window).unwrap_or(0);
        if total > before {
            self.add(key, window, total - before);
        }
    }

    /// Counts `n` more requests in `window`.
    pub(super) fn add(&self, key: u64, window: u32, n: u64) {
        let Some(slot) = self.slot(key, window) else {
            return;
        };
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let next = if (current >> 32) as u32 == window {
                // The count is the low 32 bits: it stops at their maximum rather than carry
                // into the window.
                let count = (current & 0xffff_ffff).saturating_add(n).min(0xffff_ffff);
                if count == current & 0xffff_ffff {
                    return;
                }
                (current & !0xffff_ffff) | count
            } else {
                (u64::from(window) << 32) | n.min(0xffff_ffff)
            };
            match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Counts the request, or answers 429 when a limit is used up.
pub async fn access(
    c: &RateLimitConfig,
    req: &Request<'_>,
    ctx: &mut AccessContext<'_, '_>,
    resp: &mut Response,
) -> Verdict {
    let mut ip_text = [0u8; 39];
    let ip = match req.peer {
        Some(ip) => {
            use std::io::Write;
            let mut w = &mut ip_text[..];
            let _ = write!(w, "{ip}");
            let len = 39 - w.len();
            &ip_text[..len]
        }
        None => &b""[..],
    };
    let identity: &[u8] = match c.limit_by {
        LimitBy::Consumer => ctx.consumer.map_or(ip, |consumer| consumer.id.as_bytes()),
        LimitBy::Credential => ctx.credential.map_or(ip, str::as_bytes),
        LimitBy::Ip => ip,
        // One count per service (a global plugin keeps one for each), as Kong; a route without
        // a service counts by client address, Kong's fallback.
        LimitBy::Service => ctx.service.map_or(ip, str::as_bytes),
        LimitBy::Header => c
            .header_name
            .as_deref()
            .and_then(|h| req.header(h))
            .unwrap_or(ip),
        LimitBy::Path if c.path.as_deref().map(str::as_bytes) == Some(req.path()) => req.path(),
        LimitBy::Path => ip,
    };
    let now = now_secs();
    // Kong's counter key, with the plugin for the route and service.
    let redis_key = |period: usize, window: u32| {
        let (name, secs, _) = PERIODS[period];
        format!(
            "ratelimit:{}:{}:{}:{name}",
            c.plugin_id,
            String::from_utf8_lossy(identity),
            u64::from(window) * secs * 1000
        )
    };
    // Requests counted before this one, per limit: from Redis when counting is exact and
    // Redis answered, else from the node's table.
    let mut used: SmallVec<[u64; 6]> = SmallVec::new();
    let mut exact: Option<(&RedisExact, Vec<Counter>, Vec<u64>)> = None;
    if let (Some(target), true) = (&c.redis, c.synchronous) {
        let redis = &**c.exact.get_or_init(|| RedisExact::for_target(target));
        let counters: Vec<Counter> = c
            .limits
            .iter()
            .map(|&(period, _)| Counter {
                name: redis_key(period, (now / PERIODS[period].1) as u32),
                ttl: PERIODS[period].1,
            })
            .collect();
        let asked = redis.count(counters.clone());
        match monoio::time::timeout(target.timeout, asked).await {
            Ok(Ok(Ok(counts))) if counts.len() == c.limits.len() => {
                used.extend(counts.iter().map(|n| n.saturating_sub(1)));
                exact = Some((redis, counters, counts));
            }
            // Kong's `fault_tolerant: false`: no answer without the tier's count.
            _ if !c.fault_tolerant => {
                answers::message(resp, 500, "An unexpected error occurred");
                return Verdict::Answered;
            }
            // Counted on this node meanwhile (the failure is logged by the exchange).
            _ => {}
        }
    }
    let counters = Counters::global();
    // Each limit's counter key and window in the node's table.
    let mut slots: SmallVec<[(u64, u32); 6]> = SmallVec::new();
    for &(period, _) in &c.limits {
        let (_, secs, _) = PERIODS[period];
        let window = (now / secs) as u32;
        let key = counters.key(&[c.plugin_id.as_bytes(), identity], period);
        slots.push((key, window));
        if exact.is_none() {
            used.push(counters.count(key, window).unwrap_or(0));
        }
    }
    // The most restrictive limit: the one with the fewest requests left.
    let mut tightest: Option<(u64, u64, u64)> = None; // (limit, remaining, reset)
    let mut exceeded = false;
    for (&(period, limit), &used) in c.limits.iter().zip(&used) {
        let (_, secs, _) = PERIODS[period];
        let remaining = limit.saturating_sub(used);
        if remaining == 0 {
            exceeded = true;
        }
        let reset = secs - now % secs;
        ctx.edits
            .answer_header_value(PERIODS[period].2, limit, remaining.saturating_sub(1));
        if tightest.is_none_or(|(_, r, _)| remaining < r) {
            tightest = Some((limit, remaining, reset));
        }
    }
    match exact {
        // Redis counted it: a refused request is taken back. The node's table learns the
        // tier's count, so that it holds the limit should Redis fail.
        Some((redis, asked, counts)) => {
            if exceeded {
                redis.take_back(asked);
            }
            for (&(key, window), &tier) in slots.iter().zip(&counts) {
                let kept = if exceeded {
                    tier.saturating_sub(1)
                } else {
                    tier
                };
                counters.raise(key, window, kept);
            }
        }
        None => {
            let sync = match (&c.redis, c.synchronous) {
                (Some(target), false) => {
                    Some(&**c.sync.get_or_init(|| RedisSync::for_target(target)))
                }
                _ => None,
            };
            // Kong's `fault_tolerant: false`: no answer from an uncounted tier.
            if sync.is_some_and(|s| !c.fault_tolerant && !s.healthy()) {
                answers::message(resp, 500, "An unexpected error occurred");
                return Verdict::Answered;
            }
            if !exceeded {
                for (&(key, window), &(period, _)) in slots.iter().zip(&c.limits) {
                    counters.add(key, window, 1);
                    if let Some(sync) = sync {
                        sync.note(key, window, PERIODS[period].1, || redis_key(period, window));
                    }
                }
            }
        }
    }
    let Some((limit, remaining, reset)) = tightest else {
        return Verdict::Continue;
    };
    if c.hide_client_headers {
        ctx.edits.clear_answer_headers();
    } else {
        let left = if exceeded { 0 } else { remaining - 1 };
        ctx.edits.answer_number("RateLimit-Limit", limit);
        ctx.edits.answer_number("RateLimit-Remaining", left);
        ctx.edits.answer_number("RateLimit-Reset", reset);
    }
    if exceeded {
        answers::message(resp, c.error_code, &c.error_message);
        ctx.edits.answer_number("Retry-After", reset);
        return Verdict::Answered;
    }
    Verdict::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<RateLimitConfig, Vec<String>> {
        let mut c = Checker::default();
        let v: Value = serde_json::from_str(json).expect("test JSON");
        validate(&mut c, &v, "p1").ok_or_else(|| c.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn the_redis_policy_takes_kongs_fields_flat_or_nested() {
        let flat = check(r#"{"minute":5,"policy":"redis","redis_host":"10.0.0.7","redis_port":6380,"redis_password":"pw","redis_database":2,"redis_timeout":300,"sync_rate":0.5}"#)
            .expect("valid");
        let t = flat.redis.expect("a target");
        assert_eq!((t.host.as_str(), t.port, t.database), ("10.0.0.7", 6380, 2));
        assert_eq!(t.password.as_deref(), Some("pw"));
        assert_eq!(t.timeout, Duration::from_millis(300));
        assert_eq!(t.interval, Duration::from_millis(500));
        assert!(!format!("{t:?}").contains("pw"));
        let nested = check(r#"{"minute":5,"policy":"redis","redis":{"host":"r.local","username":"gw"},"sync_rate":-1}"#)
            .expect("valid")
            .redis
            .expect("a target");
        assert_eq!((nested.host.as_str(), nested.port), ("r.local", 6379));
        assert_eq!(nested.username.as_deref(), Some("gw"));
        assert_eq!(nested.interval, Duration::from_millis(100));
        assert!(nested.tls.is_none());
        assert!(check(r#"{"minute":5}"#).expect("valid").redis.is_none());
        // TLS: the server name defaults to the host; verification is off unless asked (Kong).
        let tls = |json: &str| check(json).expect("valid").redis.expect("a target").tls;
        assert_eq!(
            tls(r#"{"minute":5,"policy":"redis","redis_host":"10.0.0.7","redis_ssl":true}"#),
            Some(RedisTls {
                verify: false,
                server_name: "10.0.0.7".into()
            })
        );
        assert_eq!(
            tls(
                r#"{"minute":5,"policy":"redis","redis_host":"10.0.0.7","redis_ssl":true,"redis_ssl_verify":true,"redis_server_name":"redis.internal"}"#
            ),
            Some(RedisTls {
                verify: true,
                server_name: "redis.internal".into()
            })
        );
        assert_eq!(
            tls(
                r#"{"minute":5,"policy":"redis","redis":{"host":"r.local","ssl":true,"ssl_verify":true}}"#
            ),
            Some(RedisTls {
                verify: true,
                server_name: "r.local".into()
            })
        );
        for (bad, why) in [
            (
                r#"{"minute":5,"policy":"redis"}"#,
                "No redis config provided",
            ),
            (
                r#"{"minute":5,"policy":"redis","redis_host":"h","redis_ssl":true,"redis_server_name":"a b"}"#,
                "neither a DNS name nor an IP address",
            ),
            (
                r#"{"minute":5,"policy":"cluster"}"#,
                "needs Kong's database",
            ),
        ] {
            let errors = check(bad).expect_err("refused");
            assert!(errors.iter().any(|e| e.contains(why)), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn adding_counts_stops_at_the_cap_and_restarts_with_the_window() {
        let counters = Counters::new();
        let key = counters.key(&[b"p", b"k"], 1);
        counters.add(key, 7, 3);
        counters.add(key, 7, 2);
        assert_eq!(counters.count(key, 7), Some(5));
        counters.add(key, 7, u64::MAX);
        assert_eq!(counters.count(key, 7), Some(0xffff_ffff));
        counters.add(key, 8, 1);
        assert_eq!(counters.count(key, 8), Some(1));
        assert_eq!(counters.count(key, 7), Some(0));
    }
}
