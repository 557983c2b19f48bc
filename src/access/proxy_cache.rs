//! Kong's `proxy-cache` (priority 100), `strategy: memory`: answers a request from the node's
//! cache ([`crate::cache`]) when it holds a fresh answer for the request's key, else lets it
//! through and stores the answer if it is cacheable. Beyond Kong, concurrent misses for one
//! key are coalesced (as nginx's `proxy_cache_lock`): one request invokes, the others wait
//! for its answer (at most [`COALESCE_WAIT`], then invoke themselves), on every worker.
//!
//! Kong's rules kept: the key is the SHA-256 (hex) of `prefix|method|uri|params|headers`, where
//! the prefix is `consumer_id:route_id`, the route id, or `default`; the uri is the request
//! line up to its `?` (the whole line when there is no query: nginx's `$request` with its
//! query cut off); params are every query argument, sorted by name (or `vary_query_params`,
//! in their order), `name=value` joined by `:` (several values sorted and joined by `,`, a
//! flag its name alone); headers the `vary_headers` the same way. `X-Cache-Status` is `Miss`,
//! `Hit`, `Refresh` (a stale entry) or `Bypass` (not cacheable); `X-Cache-Key` and `Age` on a
//! hit; each as `response_headers` says, or always when the request has `Kong-Debug`.
//! Cacheable: a `request_method`, and with `cache_control` neither `no-store` nor `no-cache`
//! nor `Authorization`; an answer whose status is a `response_code` and whose content type
//! matches a `content_type` exactly (type, subtype and parameters; `*` matches any type or
//! subtype), and with `cache_control` neither `private`, `no-store` nor `no-cache`, with
//! `s-maxage` or `max-age` (else the time until `Expires`) above 0. Freshness: `cache_ttl`, or with `cache_control` the
//! answer's max-age and the request's `max-age`, `max-stale`, `min-fresh`; `only-if-cached`
//! without an entry is a 504. A streamed answer is never stored (its body is not held): each
//! such request invokes.

use super::{AccessContext, Plugin, RequestEdits, Verdict};
use crate::cache::{self, hex, Cache, Entry, Key, Lookup, Ticket};
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::settings::Setting;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::time::Duration;

/// How long a miss waits for another request's invoke of the same key before invoking.
pub const COALESCE_WAIT: Duration = Duration::from_secs(5);

const METHODS: &[&str] = &["HEAD", "GET", "POST", "PATCH", "PUT"];

crate::settings! {
    /// `memory`.
    pub struct Memory, schema MEMORY = "memory" {
        /// Kong's shared dictionary name, accepted: this gateway has one node-wide cache
        /// (`--proxy-cache-memory`).
        dictionary_name: String = Field::of(Type::Text(None)).default(Default::Text("kong_db_cache")),
    }
}

/// `response_headers`: which diagnostic headers answers carry.
#[derive(Clone, Debug)]
pub struct DiagnosticHeaders {
    /// `age`.
    pub age: bool,
    /// `X-Cache-Status`.
    pub status: bool,
    /// `X-Cache-Key`.
    pub key: bool,
}

static DIAGNOSTIC_HEADERS: Schema = Schema {
    name: "response_headers",
    fields: &[
        Field::new("age", Type::Boolean).default(Default::Bool(true)),
        Field::new("X-Cache-Status", Type::Boolean).default(Default::Bool(true)),
        Field::new("X-Cache-Key", Type::Boolean).default(Default::Bool(true)),
    ],
};

impl Setting for DiagnosticHeaders {
    fn read(value: Option<&Value>, _: Default) -> DiagnosticHeaders {
        let on = |name: &str| {
            value
                .and_then(|v| v.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(true)
        };
        DiagnosticHeaders {
            age: on("age"),
            status: on("X-Cache-Status"),
            key: on("X-Cache-Key"),
        }
    }
}

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "proxy-cache" {
        /// Statuses stored.
        response_code: Vec<i64> = Field::of(Type::Integers { min: 100, max: 900 })
            .default(Default::Ints(&[200, 301, 404])),
        /// Methods looked up and stored.
        request_method: Vec<String> = Field::of(Type::TextsOneOf(METHODS))
            .default(Default::Texts(&["GET", "HEAD"])),
        /// Content types stored (matched exactly).
        content_type: Vec<String> = Field::of(Type::Texts(None))
            .default(Default::Texts(&["text/plain", "application/json"])),
        /// Seconds an entry is fresh.
        cache_ttl: i64 = Field::of(Type::Integer { min: 1, max: i32::MAX as i64 })
            .default(Default::Int(300)),
        /// `memory` (the node's cache).
        strategy: String = Field::of(Type::OneOf(&["memory"])).required(),
        /// Follow Cache-Control (RFC 7234).
        cache_control: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Lowercase the uri in the key.
        ignore_uri_case: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Seconds an entry is kept, fresh or not.
        storage_ttl: Option<i64> = Field::of(Type::Integer { min: 0, max: i32::MAX as i64 }),
        /// The memory strategy's settings.
        memory: Memory = Field::of(Type::Record(&MEMORY)),
        /// Query arguments in the key (all when unset).
        vary_query_params: Option<Vec<String>> = Field::of(Type::Texts(None)),
        /// Headers in the key (none when unset).
        vary_headers: Option<Vec<String>> = Field::of(Type::Texts(None)),
        /// The diagnostic headers.
        response_headers: DiagnosticHeaders = Field::of(Type::Record(&DIAGNOSTIC_HEADERS)),
    }
}

/// A media type as Kong's `parse_mime_type` gives it: type, subtype, parameters.
#[derive(Debug, PartialEq, Eq)]
struct MediaType {
    kind: String,
    subtype: String,
    params: Vec<(String, String)>,
}

fn parse_media_type(text: &str) -> Option<MediaType> {
    let mut parts = text.split(';');
    let (kind, subtype) = parts.next()?.trim().split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.is_empty() || subtype.is_empty() {
        return None;
    }
    let mut params: Vec<(String, String)> = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect();
    params.sort();
    Some(MediaType {
        kind: kind.to_ascii_lowercase(),
        subtype: subtype.to_ascii_lowercase(),
        params,
    })
}

impl MediaType {
    /// Kong's match: `*` or the same type and subtype, and the same parameters.
    fn admits(&self, other: &MediaType) -> bool {
        (self.kind == "*" || self.kind == other.kind)
            && (self.subtype == "*" || self.subtype == other.subtype)
            && self.params == other.params
    }
}

/// The plugin as configured.
#[derive(Debug)]
pub struct ProxyCache {
    id: String,
    response_code: Vec<u16>,
    request_method: Vec<String>,
    content_type: Vec<MediaType>,
    cache_ttl: u64,
    cache_control: bool,
    ignore_uri_case: bool,
    storage_ttl: Option<u64>,
    vary_query_params: Vec<String>,
    vary_headers: Vec<String>,
    headers: DiagnosticHeaders,
}

/// What a request left for its answer.
enum Pending {
    /// Not cacheable.
    Bypass,
    /// A miss (or a stale entry, `Refresh`): the answer is stored if cacheable.
    Store {
        key: Key,
        status: &'static str,
        /// The right to answer for the key (the others wait on it); none when this request
        /// waited for another's invoke that did not leave an entry.
        ticket: Option<Ticket>,
    },
}

/// A decoded query argument: its name's and (when it has one) its value's ranges in the
/// decoded bytes.
type ArgSpan = (usize, usize, Option<(usize, usize)>);

thread_local! {
    /// The key's text before hashing, reused.
    static KEY_TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Decoded query arguments: the bytes, and (name, value) ranges into them.
    static ARGS: RefCell<(Vec<u8>, Vec<ArgSpan>)> =
        const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Plugin for ProxyCache {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 100;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(c: &mut Checker, obj: &Map<String, Value>, id: &str) -> Option<Self> {
        let s = Settings::read(obj);
        let mut content_type = Vec::new();
        for (i, text) in s.content_type.iter().enumerate() {
            match parse_media_type(text) {
                Some(t) => content_type.push(t),
                None => c.error_at(
                    &format!("content_type[{i}]"),
                    format!("{text:?} is not a media type"),
                ),
            }
        }
        Some(ProxyCache {
            id: id.to_string(),
            response_code: s.response_code.iter().map(|&c| c as u16).collect(),
            request_method: s.request_method,
            content_type,
            cache_ttl: s.cache_ttl as u64,
            cache_control: s.cache_control,
            ignore_uri_case: s.ignore_uri_case,
            storage_ttl: s.storage_ttl.map(|t| t as u64),
            vary_query_params: s.vary_query_params.unwrap_or_default(),
            vary_headers: s.vary_headers.unwrap_or_default(),
            headers: s.response_headers,
        })
    }

    async fn access(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        let cc = Directives::of(req.header("cache-control"));
        if !self.cacheable_request(req, &cc) {
            ctx.edits.keep(Self::NAME, Box::new(Pending::Bypass));
            return Verdict::Continue;
        }
        let key = self.key(req, ctx.consumer.map(|c| c.id.as_str()), ctx.route);
        let cache = Cache::global();
        let mut waited = false;
        loop {
            let mut stale = false;
            let found = cache.lookup(&key, |entry| {
                let fresh = self.fresh(entry, &cc);
                stale |= !fresh;
                fresh
            });
            match found {
                Lookup::Hit(entry) => return self.serve_hit(req, &entry, &key, resp),
                Lookup::Wait(flight) if !waited => {
                    cache.count_coalesced();
                    flight.wait(COALESCE_WAIT).await;
                    waited = true;
                }
                found => {
                    if self.cache_control && cc.has("only-if-cached") && !stale {
                        resp.clear();
                        resp.status = 504;
                        return Verdict::Answered;
                    }
                    let ticket = match found {
                        Lookup::Lead(ticket) => Some(ticket),
                        _ => None,
                    };
                    let status = if stale { "Refresh" } else { "Miss" };
                    let pending = Pending::Store {
                        key,
                        status,
                        ticket,
                    };
                    ctx.edits.keep(Self::NAME, Box::new(pending));
                    return Verdict::Continue;
                }
            }
        }
    }

    /// Every answer but a hit: `Bypass` until the body phase decides (a streamed answer's
    /// body phase never comes).
    fn response(&self, req: &Request<'_>, edits: &RequestEdits, resp: &mut Response) {
        let Some(pending) = edits.kept::<Pending>(Self::NAME) else {
            return;
        };
        self.diagnostic(req, resp, "Bypass", pending);
    }

    fn response_body(&self, edits: &mut RequestEdits, resp: &mut Response) {
        let Some(pending) = edits.take_kept::<Pending>(Self::NAME) else {
            return;
        };
        let Pending::Store {
            key,
            status,
            ticket,
        } = *pending
        else {
            return;
        };
        let cc = Directives::of(resp.header_value(b"cache-control"));
        let Some(ttl) = self.cacheable_answer(resp, &cc) else {
            // Stays `Bypass`; the waiting requests go on (the ticket is dropped).
            return;
        };
        // Shown (by the response phase) when configured or asked with `Kong-Debug`.
        if resp.header_value(b"x-cache-status").is_some() {
            resp.set_header(b"X-Cache-Status", status.as_bytes());
        }
        let now = cache::now();
        let storage = self.storage_ttl.unwrap_or(ttl);
        let entry = Entry {
            plugin: self.id.clone(),
            status: resp.status,
            headers: stored_headers(&resp.headers),
            body: bytes::Bytes::copy_from_slice(&resp.body),
            stored_at: now,
            ttl,
            expires_at: now.saturating_add(storage),
        };
        match ticket {
            Some(ticket) => ticket.store(entry),
            None => Cache::global().insert(key, entry),
        }
    }
}

/// The answer's headers as stored: without those Kong does not serve from the cache
/// (hop-by-hop, `Content-Length`, `*ratelimit-remaining*`) and without its own.
fn stored_headers(headers: &[u8]) -> Vec<u8> {
    const DROPPED: &[&[u8]] = &[
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"age",
        b"x-cache-status",
        b"x-cache-key",
    ];
    let mut out = Vec::with_capacity(headers.len());
    for line in headers.split_inclusive(|&b| b == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line[..colon].to_ascii_lowercase();
        let rate_limit = memchr::memmem::find(&name, b"ratelimit-remaining").is_some();
        if !rate_limit && !DROPPED.contains(&name.as_slice()) {
            out.extend_from_slice(line);
        }
    }
    out
}

impl ProxyCache {
    fn cacheable_request(&self, req: &Request<'_>, cc: &Directives<'_>) -> bool {
        let method = req.method();
        if !self.request_method.iter().any(|m| m.as_bytes() == method) {
            return false;
        }
        !(self.cache_control
            && (cc.has("no-store") || cc.has("no-cache") || req.header("authorization").is_some()))
    }

    /// Whether `entry` may answer a request with directives `cc`.
    fn fresh(&self, entry: &Entry, cc: &Directives<'_>) -> bool {
        let age = cache::now().saturating_sub(entry.stored_at);
        if !self.cache_control {
            return age <= self.cache_ttl;
        }
        let over = |name: &str, limit: u64| cc.number(name).is_some_and(|n| limit > n);
        !(over("max-age", age)
            || over("max-stale", age.saturating_sub(entry.ttl))
            || cc
                .number("min-fresh")
                .is_some_and(|n| entry.ttl.saturating_sub(age) < n))
    }

    /// The freshness (seconds) of a cacheable answer; `None` when it is not one.
    fn cacheable_answer(&self, resp: &Response, cc: &Directives<'_>) -> Option<u64> {
        if !self.response_code.contains(&resp.status) {
            return None;
        }
        let content_type = resp.header_value(b"content-type")?;
        let content_type = parse_media_type(std::str::from_utf8(content_type).ok()?)?;
        if !self.content_type.iter().any(|t| t.admits(&content_type)) {
            return None;
        }
        if !self.cache_control {
            return Some(self.cache_ttl);
        }
        if cc.has("private") || cc.has("no-store") || cc.has("no-cache") {
            return None;
        }
        // Kong's `calculate_resource_ttl`: s-maxage, max-age, else until `Expires`.
        cc.number("s-maxage")
            .or_else(|| cc.number("max-age"))
            .or_else(|| {
                let expires = resp.header_value(b"expires")?;
                let at = httpdate::parse_http_date(std::str::from_utf8(expires).ok()?).ok()?;
                Some(at.duration_since(std::time::SystemTime::now()).map_or(0, |d| d.as_secs()))
            })
            .filter(|&ttl| ttl > 0)
    }

    /// The request's key (Kong's `build_cache_key`).
    fn key(&self, req: &Request<'_>, consumer: Option<&str>, route: Option<&str>) -> Key {
        KEY_TEXT.with(|text| {
            let mut text = text.borrow_mut();
            text.clear();
            match (consumer, route) {
                (Some(c), Some(r)) => {
                    text.extend_from_slice(c.as_bytes());
                    text.push(b':');
                    text.extend_from_slice(r.as_bytes());
                }
                (_, Some(r)) => text.extend_from_slice(r.as_bytes()),
                _ => text.extend_from_slice(b"default"),
            }
            text.push(b'|');
            text.extend_from_slice(req.method());
            text.push(b'|');
            let uri_start = text.len();
            // nginx's `$request` with `\?.*` cut: the line up to its query, or all of it.
            text.extend_from_slice(req.method());
            text.push(b' ');
            text.extend_from_slice(req.path());
            if req.query().is_none() {
                text.extend_from_slice(if req.head.http2 {
                    b" HTTP/2.0"
                } else if req.head.minor_version == 0 {
                    b" HTTP/1.0"
                } else {
                    b" HTTP/1.1"
                });
            }
            if self.ignore_uri_case {
                text[uri_start..].make_ascii_lowercase();
            }
            text.push(b'|');
            self.params_key(req.query().unwrap_or_default(), &mut text);
            text.push(b'|');
            self.headers_key(req, &mut text);
            let digest = ring::digest::digest(&ring::digest::SHA256, &text);
            let mut key = [0u8; 32];
            key.copy_from_slice(digest.as_ref());
            key
        })
    }

    /// Kong's `params_key`: `name=value` pairs joined by `:`.
    fn params_key(&self, query: &[u8], out: &mut Vec<u8>) {
        ARGS.with(|args| {
            let (bytes, ranges) = &mut *args.borrow_mut();
            bytes.clear();
            ranges.clear();
            for (name, value) in crate::http::form::fields(query) {
                let start = bytes.len();
                crate::http::form::decode_into(bytes, name);
                let name_end = bytes.len();
                if name_end == start {
                    continue;
                }
                let value = value.map(|v| {
                    let v_start = bytes.len();
                    crate::http::form::decode_into(bytes, v);
                    (v_start, bytes.len())
                });
                ranges.push((start, name_end, value));
            }
            // By name, then value: a name's values come together, sorted (Kong sorts them).
            let text = |r: (usize, usize)| &bytes[r.0..r.1];
            ranges.sort_unstable_by(|a, b| {
                text((a.0, a.1))
                    .cmp(text((b.0, b.1)))
                    .then_with(|| a.2.map(text).cmp(&b.2.map(text)))
            });
            let mut first = true;
            let mut write = |name: &[u8], group: &[ArgSpan]| {
                if !first {
                    out.push(b':');
                }
                first = false;
                out.extend_from_slice(name);
                let mut values = group.iter().filter_map(|r| r.2).peekable();
                if values.peek().is_some() {
                    out.push(b'=');
                    for (i, v) in values.enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(text(v));
                    }
                }
            };
            let group_of = |at: usize| {
                let name = text((ranges[at].0, ranges[at].1));
                let len = ranges[at..]
                    .iter()
                    .take_while(|r| text((r.0, r.1)) == name)
                    .count();
                (name, &ranges[at..at + len])
            };
            if self.vary_query_params.is_empty() {
                let mut at = 0;
                while at < ranges.len() {
                    let (name, group) = group_of(at);
                    write(name, group);
                    at += group.len();
                }
            } else {
                for wanted in &self.vary_query_params {
                    let wanted = wanted.as_bytes();
                    let at = ranges.partition_point(|r| text((r.0, r.1)) < wanted);
                    if at < ranges.len() && text((ranges[at].0, ranges[at].1)) == wanted {
                        let (name, group) = group_of(at);
                        write(name, group);
                    }
                }
            }
        });
    }

    /// Kong's `headers_key`: the `vary_headers` the request has, `name=value` joined by `:`.
    fn headers_key(&self, req: &Request<'_>, out: &mut Vec<u8>) {
        let mut first = true;
        for wanted in &self.vary_headers {
            let mut values = req
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case(wanted.as_bytes()))
                .map(|(_, v)| v);
            let Some(one) = values.next() else {
                continue;
            };
            if !first {
                out.push(b':');
            }
            first = false;
            out.extend_from_slice(wanted.as_bytes());
            out.push(b'=');
            match values.next() {
                None => out.extend_from_slice(one),
                Some(two) => {
                    // Several: sorted, joined by `,` (rare: allocates).
                    let mut all: Vec<&[u8]> = vec![one, two];
                    all.extend(values);
                    all.sort_unstable();
                    out.extend_from_slice(&all.join(&b","[..]));
                }
            }
        }
    }

    /// The answer from `entry`: its status, headers and body (shared, not copied), with
    /// `Age`, `X-Cache-Status: Hit` and `X-Cache-Key`.
    fn serve_hit(&self, req: &Request<'_>, entry: &Entry, key: &Key, resp: &mut Response) -> Verdict {
        resp.clear();
        resp.status = entry.status;
        resp.headers.extend_from_slice(&entry.headers);
        resp.shared = Some(entry.body.clone());
        let debug = req.header("kong-debug").is_some();
        if self.headers.age || debug {
            resp.headers.extend_from_slice(b"Age: ");
            crate::json::write_u64(&mut resp.headers, cache::now().saturating_sub(entry.stored_at));
            resp.headers.extend_from_slice(b"\r\n");
        }
        if self.headers.status || debug {
            resp.header(b"X-Cache-Status", b"Hit");
        }
        if self.headers.key || debug {
            resp.header(b"X-Cache-Key", &hex(key));
        }
        Verdict::Answered
    }

    /// `X-Cache-Status: status` and, for a request with a key, `X-Cache-Key`.
    fn diagnostic(&self, req: &Request<'_>, resp: &mut Response, status: &str, pending: &Pending) {
        let debug = req.header("kong-debug").is_some();
        if self.headers.status || debug {
            resp.set_header(b"X-Cache-Status", status.as_bytes());
        }
        if let Pending::Store { key, .. } = pending {
            if self.headers.key || debug {
                resp.set_header(b"X-Cache-Key", &hex(key));
            }
        }
    }
}

/// Cache-Control directives (Kong's `parse_directive_header`): comma-separated, names any
/// case, values numbers or text.
pub struct Directives<'h>(Option<&'h [u8]>);

impl<'h> Directives<'h> {
    /// The directives of a `Cache-Control` value.
    pub fn of(value: Option<&'h [u8]>) -> Directives<'h> {
        Directives(value)
    }

    fn find(&self, name: &str) -> Option<Option<&'h [u8]>> {
        let value = self.0?;
        value.split(|&b| b == b',').find_map(|part| {
            let part = part.trim_ascii();
            let (n, v) = match memchr::memchr(b'=', part) {
                Some(i) => (part[..i].trim_ascii(), Some(part[i + 1..].trim_ascii())),
                None => (part, None),
            };
            n.eq_ignore_ascii_case(name.as_bytes()).then_some(v)
        })
    }

    /// Whether directive `name` is there.
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Directive `name`'s value as a number of seconds (quotes allowed).
    pub fn number(&self, name: &str) -> Option<u64> {
        let v = self.find(name)??;
        let v = v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(v);
        std::str::from_utf8(v).ok()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_read_as_kong_reads_them() {
        let cc = Directives::of(Some(b"public, Max-Age=60, s-maxage=\"30\", no-cache"));
        assert!(cc.has("no-cache") && cc.has("public") && !cc.has("private"));
        assert_eq!(cc.number("max-age"), Some(60));
        assert_eq!(cc.number("s-maxage"), Some(30));
        assert_eq!(cc.number("public"), None);
        assert!(!Directives::of(None).has("no-store"));
    }

    #[test]
    fn media_types_match_exactly() {
        let json = parse_media_type("application/json").expect("type");
        let with_charset = parse_media_type("Application/JSON; charset=utf-8").expect("type");
        assert!(json.admits(&parse_media_type("application/json").expect("type")));
        assert!(!json.admits(&with_charset), "parameters must match too");
        let any = parse_media_type("*/*; charset=utf-8").expect("type");
        assert!(any.admits(&with_charset));
        assert!(parse_media_type("nonsense").is_none());
    }

}
