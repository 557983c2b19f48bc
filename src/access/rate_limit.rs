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

use super::{AccessContext, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

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
        Field::new("redis", Type::Any),
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
    if SCHEMA.text(obj, "policy").is_some_and(|p| p != "local") {
        c.error_at(
            "policy",
            "only the `local` policy is available in this version of lambda-gateway (counters shared by every worker of the node)",
        );
    }
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

    /// Counts one more request in `window`.
    fn increment(&self, key: u64, window: u32) {
        let Some(slot) = self.slot(key, window) else {
            return;
        };
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let next = if (current >> 32) as u32 == window {
                // The count is the low 32 bits: it stops at their maximum rather than carry
                // into the window.
                if current & 0xffff_ffff == 0xffff_ffff {
                    return;
                }
                current + 1
            } else {
                (u64::from(window) << 32) | 1
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
pub fn access(
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
    let counters = Counters::global();
    let now = now_secs();
    // Each limit's counter key and window, hashed once for the check and the count.
    let mut slots: smallvec::SmallVec<[(u64, u32); 6]> = smallvec::SmallVec::new();
    // The most restrictive limit: the one with the fewest requests left.
    let mut tightest: Option<(u64, u64, u64)> = None; // (limit, remaining, reset)
    let mut exceeded = false;
    for &(period, limit) in &c.limits {
        let (_, secs, _) = PERIODS[period];
        let window = (now / secs) as u32;
        let key = counters.key(&[c.plugin_id.as_bytes(), identity], period);
        slots.push((key, window));
        let used = counters.count(key, window).unwrap_or(0);
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
    if !exceeded {
        for &(key, window) in &slots {
            counters.increment(key, window);
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
