//! Kong's `rate-limiting` (priority 910) with the `local` policy: requests per second, minute,
//! hour, day, month and year, counted per `limit_by` key (consumer, credential, ip, service,
//! header, path); a request over any limit gets 429 `{"message":"API rate limit exceeded"}`
//! with `Retry-After`, and every answer gets Kong's `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` and `X-RateLimit-{Limit,Remaining}-{Second,Minute,…}` headers.
//!
//! One node-wide answer: every worker counts in the same lock-free table
//! ([`super::counters`]).
//!
//! `policy: redis` counts the same way and exchanges the counts with the other gateways of a
//! tier through Redis in batches ([`super::redis_sync`]).

use super::counters::Counters;
use super::redis_exact::{Counter, RedisExact};
use super::redis_link::{RedisTarget, RedisTls};
use super::redis_sync::RedisSync;
use super::{AccessContext, Plugin, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Shown, Type};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The periods Kong limits, with their length in seconds and header names; in the order of
/// [`Settings`]' first six fields (a test checks it).
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

/// The plugin as configured.
#[derive(Debug)]
pub struct RateLimiting {
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

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "rate-limiting" {
        /// Requests a second.
        second: Option<i64> = Field::of(LIMIT),
        /// Requests a minute.
        minute: Option<i64> = Field::of(LIMIT),
        /// Requests an hour.
        hour: Option<i64> = Field::of(LIMIT),
        /// Requests a day.
        day: Option<i64> = Field::of(LIMIT),
        /// Requests a month (30 days).
        month: Option<i64> = Field::of(LIMIT),
        /// Requests a year (365 days).
        year: Option<i64> = Field::of(LIMIT),
        /// What requests are counted by.
        limit_by: String = Field::of(Type::OneOf(&[
            "consumer", "credential", "ip", "service", "header", "path",
        ]))
        .default(Default::Text("consumer")),
        /// The header counted by, with `limit_by: header`.
        header_name: Option<String> = Field::of(Type::Text(None)),
        /// The path counted, with `limit_by: path`.
        path: Option<String> = Field::of(Type::Text(None)),
        /// `local` (this node), `redis` (a tier); Kong's `cluster` is refused.
        policy: String = Field::of(Type::OneOf(&["local", "cluster", "redis"]))
            .default(Default::Text("local")),
        /// With Redis failing: count on this node (else answer 500).
        fault_tolerant: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        /// No `RateLimit-*` headers on answers.
        hide_client_headers: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// The refusal's status.
        error_code: i64 = Field::of(Type::Integer { min: 100, max: 599 })
            .default(Default::Int(429)),
        /// The refusal's message.
        error_message: String = Field::of(Type::Text(None))
            .default(Default::Text("API rate limit exceeded")),
        /// Seconds between exchanges with Redis; -1 (Kong's default): every request.
        sync_rate: Option<Value> = Field::of(Type::Any),
        /// Kong 3's Redis settings in one object ([`RedisObject`]): they win over `redis_*`.
        redis: Option<Value> = Field::of(Type::Any).referenceable(),
        /// Redis' host.
        redis_host: Option<String> = Field::of(Type::Text(None)),
        /// Redis' port.
        redis_port: i64 = Field::of(Type::Integer { min: 0, max: 65535 })
            .default(Default::Int(6379)),
        /// A Redis 6 ACL user.
        redis_username: Option<String> = Field::of(Type::Text(None)).referenceable(),
        /// Its password.
        redis_password: Option<String> = Field::of(Type::Text(None))
            .shown(Shown::Redacted)
            .referenceable(),
        /// The database.
        redis_database: i64 = Field::of(Type::Integer { min: 0, max: 1_000_000 })
            .default(Default::Int(0)),
        /// TLS to Redis.
        redis_ssl: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Check Redis' certificate.
        redis_ssl_verify: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// The name sent as SNI and checked (else the host).
        redis_server_name: Option<String> = Field::of(Type::Text(None)),
        /// Milliseconds to connect, and for each round trip.
        redis_timeout: i64 = Field::of(Type::Integer { min: 0, max: i32::MAX as i64 })
            .default(Default::Int(2000)),
    }
}

crate::settings! {
    /// Kong 3's `redis` object: each field, when set, wins over its flat `redis_*` one.
    pub struct RedisObject, schema REDIS_OBJECT = "redis" {
        /// Redis' host.
        host: Option<String> = Field::of(Type::Text(None)),
        /// Redis' port.
        port: Option<i64> = Field::of(Type::Integer { min: 0, max: 65535 }),
        /// A Redis 6 ACL user.
        username: Option<String> = Field::of(Type::Text(None)),
        /// Its password.
        password: Option<String> = Field::of(Type::Text(None)),
        /// The database.
        database: Option<i64> = Field::of(Type::Integer { min: 0, max: 1_000_000 }),
        /// TLS to Redis.
        ssl: Option<bool> = Field::of(Type::Boolean),
        /// Check Redis' certificate.
        ssl_verify: Option<bool> = Field::of(Type::Boolean),
        /// The name sent as SNI and checked.
        server_name: Option<String> = Field::of(Type::Text(None)),
        /// Milliseconds to connect, and for each round trip.
        timeout: Option<i64> = Field::of(Type::Integer { min: 0, max: i32::MAX as i64 }),
    }
}

impl Plugin for RateLimiting {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 910;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(c: &mut Checker, obj: &Map<String, Value>, plugin_id: &str) -> Option<Self> {
        let s = Settings::read(obj);
        let before = c.errors.len();
        let limits: Vec<(usize, u64)> = [s.second, s.minute, s.hour, s.day, s.month, s.year]
            .into_iter()
            .enumerate()
            .filter_map(|(i, limit)| limit.map(|n| (i, n.max(0) as u64)))
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
        let limit_by = match s.limit_by.as_str() {
            "credential" => LimitBy::Credential,
            "ip" => LimitBy::Ip,
            "service" => LimitBy::Service,
            "header" => LimitBy::Header,
            "path" => LimitBy::Path,
            _ => LimitBy::Consumer,
        };
        if limit_by == LimitBy::Header && s.header_name.is_none() {
            c.error("No header name provided");
        }
        if limit_by == LimitBy::Path && s.path.is_none() {
            c.error("No path provided");
        }
        let redis = match s.policy.as_str() {
            "cluster" => {
                c.error_at(
                    "policy",
                    "`cluster` needs Kong's database; use `local` (one node) or `redis` (a tier)",
                );
                None
            }
            "redis" => redis_target(c, &s),
            _ => None,
        };
        // Kong's `sync_rate` (seconds): -1 (its default) counts every request in Redis; a
        // positive rate exchanges counts that often.
        let sync_rate = s.sync_rate.as_ref().and_then(Value::as_f64);
        (c.errors.len() == before).then(|| RateLimiting {
            plugin_id: plugin_id.to_string(),
            limits,
            limit_by,
            header_name: s.header_name,
            path: s.path,
            hide_client_headers: s.hide_client_headers,
            error_code: s.error_code as u16,
            error_message: s.error_message,
            redis,
            fault_tolerant: s.fault_tolerant,
            synchronous: sync_rate.is_none_or(|r| r <= 0.0),
            sync: OnceLock::new(),
            exact: OnceLock::new(),
        })
    }

    async fn access(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        count(self, req, ctx, resp).await
    }
}

/// The Redis of `policy: redis`: Kong's `redis_*` fields, or its newer `redis` object, whose
/// fields win.
fn redis_target(c: &mut Checker, s: &Settings) -> Option<RedisTarget> {
    let nested = match &s.redis {
        Some(Value::Object(o)) => RedisObject::read(o),
        _ => RedisObject::read(&Map::new()),
    };
    let text = |nested: &Option<String>, flat: &Option<String>| {
        nested
            .as_ref()
            .or(flat.as_ref())
            .filter(|t| !t.is_empty())
            .cloned()
    };
    let Some(host) = text(&nested.host, &s.redis_host) else {
        c.error("No redis config provided");
        return None;
    };
    let tls = if nested.ssl.unwrap_or(s.redis_ssl) {
        let server_name = text(&nested.server_name, &s.redis_server_name)
            .unwrap_or_else(|| host.clone());
        if rustls::pki_types::ServerName::try_from(server_name.as_str()).is_err() {
            c.error_at(
                "redis_server_name",
                format!("{server_name:?} is neither a DNS name nor an IP address"),
            );
            return None;
        }
        Some(RedisTls {
            verify: nested.ssl_verify.unwrap_or(s.redis_ssl_verify),
            server_name,
        })
    } else {
        None
    };
    let port = nested.port.unwrap_or(s.redis_port);
    if !(1..=65535).contains(&port) {
        c.error_at("redis_port", "value should be between 1 and 65535");
        return None;
    }
    // With a positive `sync_rate`, how often counts are exchanged (else unused: see
    // `synchronous`).
    let interval = s
        .sync_rate
        .as_ref()
        .and_then(Value::as_f64)
        .filter(|r| *r > 0.0 && *r <= 3600.0)
        .map_or(Duration::from_millis(100), Duration::from_secs_f64);
    let timeout = nested.timeout.unwrap_or(s.redis_timeout);
    Some(RedisTarget {
        host,
        port: port as u16,
        username: text(&nested.username, &s.redis_username),
        password: text(&nested.password, &s.redis_password),
        database: nested.database.unwrap_or(s.redis_database),
        timeout: Duration::from_millis(timeout.clamp(1, 60_000) as u64),
        interval,
        tls,
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Counts the request, or answers 429 when a limit is used up.
async fn count(
    c: &RateLimiting,
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
            failed if !c.fault_tolerant => {
                return Verdict::Failed(match failed {
                    Err(_) => format!("Redis did not count within {:?}", target.timeout),
                    Ok(Ok(Err(why))) => format!("Redis did not count: {why}"),
                    Ok(Ok(Ok(_))) => "Redis answered another number of counts".into(),
                    Ok(Err(_)) => "the Redis exchange stopped".into(),
                });
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
                return Verdict::Failed("Redis is unreachable: counts cannot be shared".into());
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

    fn check(json: &str) -> Result<RateLimiting, Vec<String>> {
        let mut c = Checker::default();
        let v: Value = serde_json::from_str(json).expect("test JSON");
        super::super::configure(&mut c, &v, "p1")
            .ok_or_else(|| c.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn periods_are_in_the_order_of_the_fields() {
        for (i, (name, _, _)) in PERIODS.iter().enumerate() {
            assert_eq!(SCHEMA.fields[i].name, *name);
        }
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

    /// The local policy through the plugin's phases: Kong's headers on each answer, 429 with
    /// `Retry-After` past the limit, counted by the header `limit_by` names.
    #[test]
    fn limits_hold_with_kongs_headers() {
        use super::super::testing::{configured, run, Known};
        let plugin: RateLimiting =
            configured(r#"{"minute":2,"hour":1000,"limit_by":"header","header_name":"X-Who"}"#)
                .expect("valid");
        let who = format!("limits-{}", std::process::id());
        let raw = format!("GET /r HTTP/1.1\r\nHost: h\r\nX-Who: {who}\r\n\r\n");
        let known = Known::default();
        let first = run(&plugin, &raw, &known);
        assert_eq!(first.status(), 200);
        assert_eq!(first.header("RateLimit-Limit").as_deref(), Some("2"));
        assert_eq!(first.header("RateLimit-Remaining").as_deref(), Some("1"));
        assert_eq!(first.header("X-RateLimit-Limit-Minute").as_deref(), Some("2"));
        assert_eq!(first.header("X-RateLimit-Remaining-Hour").as_deref(), Some("999"));
        assert_eq!(run(&plugin, &raw, &known).header("RateLimit-Remaining").as_deref(), Some("0"));
        let refused = run(&plugin, &raw, &known);
        assert_eq!(
            (refused.status(), refused.body().as_str()),
            (429, r#"{"message":"API rate limit exceeded"}"#)
        );
        assert!(refused.header("Retry-After").is_some());
        // Another identity has its own count.
        let other = raw.replace(&who, &format!("{who}-other"));
        assert_eq!(run(&plugin, &other, &known).status(), 200);
        let hidden: RateLimiting = configured(
            r#"{"minute":5,"limit_by":"header","header_name":"X-Who","hide_client_headers":true}"#,
        )
        .expect("valid");
        assert!(run(&hidden, &other, &known).header("RateLimit-Limit").is_none());
    }
}
