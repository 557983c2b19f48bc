//! API Gateway proxy events (`awsgateway_compatible`): the REST API event (payload 1.0) and
//! the HTTP API / Function URL event (payload 2.0), written in one pass from the parsed request
//! into the payload buffer, as AWS sends them (API Gateway developer guide, "Lambda proxy
//! integrations"), so that functions written for API Gateway (Mangum, Powertools,
//! `lambda_http`, serverless-http …) run unchanged.
//!
//! Where Kong's event and AWS's differ, AWS's wins (docs/api-gateway-events.md lists each difference); fields
//! that have no meaning here get the stable placeholders below.

use super::args::{ArgValue, Args};
use crate::http::media::media_type;
use crate::http::request::Request;
use crate::json;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// `requestContext.accountId`: there is no AWS account behind the gateway.
pub const ACCOUNT_ID: &str = "000000000000";
/// `requestContext.apiId` (and v1's `resourceId`).
pub const API_ID: &str = "lambdagateway";
/// `stage` and v2's `routeKey`: the one default stage and route of an HTTP API.
pub const STAGE: &str = "$default";

/// What an event says about a request beyond the request itself.
#[derive(Clone, Copy, Debug)]
pub struct EventContext<'a> {
    /// The matched route's path as configured (`/users` or a regex without its `~`).
    pub resource: Option<&'a str>,
    /// Named captures of the route's regex path, in the regex's order.
    pub path_params: &'a [(&'a str, &'a [u8])],
    /// The client's address.
    pub source_ip: Option<IpAddr>,
    /// This request's id (`requestContext.requestId`).
    pub request_id: &'a str,
    /// When the request arrived.
    pub time: SystemTime,
    /// Who an auth plugin said is calling (`requestContext.authorizer`).
    pub caller: Option<&'a Caller<'a>>,
}

/// The consumer an auth plugin (key-auth, jwt) identified, as the event tells the function:
/// API Gateway's Lambda-authorizer context (`principalId` and string values), the JWT
/// authorizer's `claims` when a token identified them, and `identity.apiKeyId` for an API key.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// The consumer's id.
    pub consumer_id: &'a str,
    /// Its `username`.
    pub username: Option<&'a str>,
    /// Its `custom_id`.
    pub custom_id: Option<&'a str>,
    /// The credential that identified it (`None`: the `anonymous` consumer).
    pub credential: Option<&'a str>,
    /// The token's claims, when jwt identified it.
    pub jwt_claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl Caller<'_> {
    /// The Lambda-authorizer context: `principalId` (username, else id) and the consumer's
    /// fields, every value a string as API Gateway passes them.
    fn write_context(&self, out: &mut Vec<u8>) {
        let principal = self.username.unwrap_or(self.consumer_id);
        write_text_field(out, "principalId", principal.as_bytes());
        write_text_field(out, "consumerId", self.consumer_id.as_bytes());
        if let Some(u) = self.username {
            write_text_field(out, "consumerUsername", u.as_bytes());
        }
        if let Some(c) = self.custom_id {
            write_text_field(out, "consumerCustomId", c.as_bytes());
        }
        match self.credential {
            Some(c) => write_text_field(out, "credentialIdentifier", c.as_bytes()),
            None => write_text_field(out, "anonymous", b"true"),
        }
    }

    /// The token's claims as a JSON object.
    fn write_claims(out: &mut Vec<u8>, claims: &serde_json::Map<String, serde_json::Value>) {
        json::write_key(out, "claims");
        // A Map serialises infallibly.
        let _ = serde_json::to_writer(&mut *out, claims);
        out.push(b',');
    }

    /// Payload 1.0's `authorizer`: the context, plus `claims` as a Cognito authorizer has them.
    fn write_v1(&self, out: &mut Vec<u8>) {
        json::write_key(out, "authorizer");
        out.push(b'{');
        self.write_context(out);
        if let Some(claims) = self.jwt_claims {
            Self::write_claims(out, claims);
        }
        json::write_key(out, "integrationLatency");
        out.extend_from_slice(b"0},");
    }

    /// Payload 2.0's `authorizer`: `lambda` (the context) and, for a token, `jwt` with its
    /// `claims` and `scopes` (from `scope` or `scp`).
    fn write_v2(&self, out: &mut Vec<u8>) {
        json::write_key(out, "authorizer");
        out.push(b'{');
        if let Some(claims) = self.jwt_claims {
            json::write_key(out, "jwt");
            out.push(b'{');
            Self::write_claims(out, claims);
            json::write_key(out, "scopes");
            let scopes: Vec<&str> = match claims.get("scope").or_else(|| claims.get("scp")) {
                Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
                Some(serde_json::Value::Array(list)) => {
                    list.iter().filter_map(serde_json::Value::as_str).collect()
                }
                _ => Vec::new(),
            };
            if scopes.is_empty() {
                out.extend_from_slice(b"null");
            } else {
                let _ = serde_json::to_writer(&mut *out, &scopes);
            }
            out.extend_from_slice(b"},");
        }
        json::write_key(out, "lambda");
        out.push(b'{');
        self.write_context(out);
        json::trim_comma(out);
        out.extend_from_slice(b"}},");
    }
}

impl Default for EventContext<'_> {
    fn default() -> Self {
        EventContext {
            resource: None,
            path_params: &[],
            source_ip: None,
            request_id: "",
            time: UNIX_EPOCH,
            caller: None,
        }
    }
}

/// The scratch an event is built with, reused between requests.
#[derive(Debug, Default)]
pub struct EventScratch {
    headers: Args,
    query: Args,
}

impl EventScratch {
    /// Bytes of buffer capacity held between requests.
    pub fn retained_bytes(&self) -> usize {
        self.headers.retained_bytes() + self.query.retained_bytes()
    }
}

/// Media types API Gateway passes as text; anything else is binary and base64'd.
pub fn is_text_type(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let media = media_type(ct);
    let Some(slash) = media.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, sub) = (&media[..slash], &media[slash + 1..]);
    let is = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
    let ends =
        |suffix: &[u8]| sub.len() >= suffix.len() && is(&sub[sub.len() - suffix.len()..], suffix);
    is(kind, b"text")
        || (is(kind, b"application")
            && ([
                "json",
                "xml",
                "javascript",
                "x-www-form-urlencoded",
                "graphql",
            ]
            .iter()
            .any(|t| is(sub, t.as_bytes()))
                || ends(b"+json")
                || ends(b"+xml")))
}

/// Writes the payload 1.0 (REST API) event for `req`.
pub fn write_v1(
    out: &mut Vec<u8>,
    scratch: &mut EventScratch,
    req: &Request<'_>,
    ctx: &EventContext<'_>,
    base64_body: bool,
) {
    let path = req.path();
    let resource = ctx.resource.unwrap_or("/{proxy+}");
    out.push(b'{');
    json::write_key(out, "version");
    out.extend_from_slice(b"\"1.0\",");
    json::write_key(out, "resource");
    json::write_str(out, resource.as_bytes());
    out.push(b',');
    json::write_key(out, "path");
    json::write_str(out, path);
    out.push(b',');
    json::write_key(out, "httpMethod");
    json::write_str(out, req.method());
    out.push(b',');

    // Header names as sent; `headers` has the last value of each, `multiValueHeaders` all.
    let headers = collect_headers(&mut scratch.headers, req, false);
    json::write_key(out, "headers");
    write_map(out, headers, Values::Last);
    json::write_key(out, "multiValueHeaders");
    write_map(out, headers, Values::All);

    let query = collect_query(&mut scratch.query, req);
    json::write_key(out, "queryStringParameters");
    write_map(out, query, Values::Last);
    json::write_key(out, "multiValueQueryStringParameters");
    write_map(out, query, Values::All);

    json::write_key(out, "pathParameters");
    write_path_params(out, ctx.path_params);
    json::write_key(out, "stageVariables");
    out.extend_from_slice(b"null,");

    json::write_key(out, "requestContext");
    out.push(b'{');
    write_text_field(out, "accountId", ACCOUNT_ID.as_bytes());
    write_text_field(out, "apiId", API_ID.as_bytes());
    write_text_field(out, "resourceId", API_ID.as_bytes());
    write_text_field(out, "resourcePath", resource.as_bytes());
    write_text_field(out, "httpMethod", req.method());
    write_text_field(out, "path", path);
    write_protocol(out, req);
    write_text_field(out, "stage", STAGE.as_bytes());
    write_domain(out, req);
    write_text_field(out, "requestId", ctx.request_id.as_bytes());
    write_text_field(out, "extendedRequestId", ctx.request_id.as_bytes());
    json::write_key(out, "requestTime");
    write_clf_time(out, ctx.time);
    out.push(b',');
    json::write_key(out, "requestTimeEpoch");
    json::write_u64(out, epoch_millis(ctx.time));
    out.push(b',');
    json::write_key(out, "identity");
    out.push(b'{');
    write_source_ip(out, ctx.source_ip);
    // An API key's id, where API Gateway puts the key of a usage plan.
    if let Some(Caller {
        credential: Some(id),
        jwt_claims: None,
        ..
    }) = ctx.caller
    {
        write_text_field(out, "apiKeyId", id.as_bytes());
    }
    json::write_key(out, "userAgent");
    write_opt_str(out, req.header("user-agent"));
    out.extend_from_slice(b"},");
    if let Some(caller) = ctx.caller {
        caller.write_v1(out);
    }
    json::trim_comma(out);
    out.extend_from_slice(b"},");

    write_body(out, req, base64_body, true);
    out.push(b'}');
}

/// Writes the payload 2.0 (HTTP API, Function URL) event for `req`.
pub fn write_v2(
    out: &mut Vec<u8>,
    scratch: &mut EventScratch,
    req: &Request<'_>,
    ctx: &EventContext<'_>,
    base64_body: bool,
) {
    out.push(b'{');
    json::write_key(out, "version");
    out.extend_from_slice(b"\"2.0\",");
    write_text_field(out, "routeKey", STAGE.as_bytes());
    write_text_field(out, "rawPath", req.path());
    write_text_field(out, "rawQueryString", req.query().unwrap_or_default());

    // The Cookie header becomes `cookies`; every other header is lower-cased, and repeated
    // ones are joined with commas.
    let mut cookies = req
        .headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, value)| value.split(|&b| b == b';'))
        .map(crate::http::framing::trim_ows)
        .filter(|c| !c.is_empty())
        .peekable();
    if cookies.peek().is_some() {
        json::write_key(out, "cookies");
        out.push(b'[');
        for c in cookies {
            json::write_str(out, c);
            out.push(b',');
        }
        json::trim_comma(out);
        out.extend_from_slice(b"],");
    }
    let headers = collect_headers(&mut scratch.headers, req, true);
    json::write_key(out, "headers");
    write_map(out, headers, Values::Joined);

    let query = collect_query(&mut scratch.query, req);
    if !query.list().is_empty() {
        json::write_key(out, "queryStringParameters");
        write_map(out, query, Values::Joined);
    }
    if !ctx.path_params.is_empty() {
        json::write_key(out, "pathParameters");
        write_path_params(out, ctx.path_params);
    }

    json::write_key(out, "requestContext");
    out.push(b'{');
    write_text_field(out, "accountId", ACCOUNT_ID.as_bytes());
    write_text_field(out, "apiId", API_ID.as_bytes());
    write_domain(out, req);
    json::write_key(out, "http");
    out.push(b'{');
    write_text_field(out, "method", req.method());
    write_text_field(out, "path", req.path());
    write_protocol(out, req);
    write_source_ip(out, ctx.source_ip);
    json::write_key(out, "userAgent");
    write_opt_str(out, req.header("user-agent"));
    out.extend_from_slice(b"},");
    if let Some(caller) = ctx.caller {
        caller.write_v2(out);
    }
    write_text_field(out, "requestId", ctx.request_id.as_bytes());
    write_text_field(out, "routeKey", STAGE.as_bytes());
    write_text_field(out, "stage", STAGE.as_bytes());
    json::write_key(out, "time");
    write_clf_time(out, ctx.time);
    out.push(b',');
    json::write_key(out, "timeEpoch");
    json::write_u64(out, epoch_millis(ctx.time));
    out.extend_from_slice(b"},");

    write_body(out, req, base64_body, false);
    out.push(b'}');
}

/// The request's headers grouped by name: as sent (1.0), or lower-cased without the Cookie
/// header, which 2.0 sends as `cookies` (`for_v2`).
fn collect_headers<'a>(headers: &'a mut Args, req: &Request<'_>, for_v2: bool) -> &'a Args {
    headers.clear();
    for (name, value) in req.headers().take(crate::http::limits::MAX_HEADERS) {
        if !(for_v2 && name.eq_ignore_ascii_case(b"cookie")) {
            headers.push_text(name, for_v2, value);
        }
    }
    headers.finish_unpaced();
    headers
}

/// The request's query arguments, decoded and grouped by name.
fn collect_query<'a>(query: &'a mut Args, req: &Request<'_>) -> &'a Args {
    query.clear();
    if let Some(q) = req.query() {
        query.parse_urlencoded(q);
    }
    query
}

/// Which values of a repeated name a map gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Values {
    /// The last one, as a string (v1 `headers`, `queryStringParameters`).
    Last,
    /// All of them, as an array (v1 `multiValue*`).
    All,
    /// All of them joined with commas (v2).
    Joined,
}

/// `{name: value,…},` for the arguments of `args`, or `null,` when there are none. A flag
/// argument (`?debug`) is the empty string, as API Gateway gives it.
fn write_map(out: &mut Vec<u8>, args: &Args, values: Values) {
    if args.list().is_empty() {
        out.extend_from_slice(b"null,");
        return;
    }
    let text = |a: &super::args::Arg| match &a.value {
        ArgValue::Text(r) => &args.scratch[r.clone()],
        ArgValue::Flag | ArgValue::Json(_) => &[][..],
    };
    out.push(b'{');
    for first in args.list().iter().filter(|a| a.is_first()) {
        json::write_str(out, args.key(first));
        out.push(b':');
        match values {
            Values::Last => {
                let last = args.group(first).last().unwrap_or(first);
                json::write_str(out, text(last));
            }
            Values::All => {
                out.push(b'[');
                for a in args.group(first) {
                    json::write_str(out, text(a));
                    out.push(b',');
                }
                json::trim_comma(out);
                out.push(b']');
            }
            Values::Joined => {
                out.push(b'"');
                for (i, a) in args.group(first).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::write_str_contents(out, text(a));
                }
                out.push(b'"');
            }
        }
        out.push(b',');
    }
    json::trim_comma(out);
    out.extend_from_slice(b"},");
}

fn write_path_params(out: &mut Vec<u8>, params: &[(&str, &[u8])]) {
    if params.is_empty() {
        out.extend_from_slice(b"null,");
        return;
    }
    out.push(b'{');
    for (name, value) in params {
        json::write_str(out, name.as_bytes());
        out.push(b':');
        json::write_str(out, value);
        out.push(b',');
    }
    json::trim_comma(out);
    out.extend_from_slice(b"},");
}

fn write_text_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    json::write_key(out, key);
    json::write_str(out, value);
    out.push(b',');
}

fn write_opt_str(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => json::write_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_protocol(out: &mut Vec<u8>, req: &Request<'_>) {
    json::write_key(out, "protocol");
    out.push(b'"');
    out.extend_from_slice(req.protocol());
    out.extend_from_slice(b"\",");
}

/// `domainName` (the Host without its port) and `domainPrefix` (its first label).
fn write_domain(out: &mut Vec<u8>, req: &Request<'_>) {
    let host = req.host().unwrap_or_default();
    let prefix = host.split(|&b| b == b'.').next().unwrap_or_default();
    write_text_field(out, "domainName", host);
    write_text_field(out, "domainPrefix", prefix);
}

fn write_source_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    json::write_key(out, "sourceIp");
    match ip {
        Some(ip) => {
            out.push(b'"');
            // An address's text is at most 45 bytes: written without an allocation.
            let mut buf = [0u8; 64];
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{ip}"));
            let n = cursor.position() as usize;
            out.extend_from_slice(&buf[..n]);
            out.extend_from_slice(b"\",");
        }
        None => out.extend_from_slice(b"null,"),
    }
}

/// `body` and `isBase64Encoded`. A body of a binary type (see [`is_text_type`]), or one that
/// is not UTF-8, is base64'd when `base64_body`; no body is `null` in v1 and absent in v2.
fn write_body(out: &mut Vec<u8>, req: &Request<'_>, base64_body: bool, null_when_empty: bool) {
    let body = req.body;
    if body.is_empty() {
        if null_when_empty {
            out.extend_from_slice(b"\"body\":null,");
        }
        out.extend_from_slice(b"\"isBase64Encoded\":false");
        return;
    }
    let binary = !is_text_type(req.content_type()) || std::str::from_utf8(body).is_err();
    json::write_key(out, "body");
    if base64_body && binary {
        out.push(b'"');
        crate::json::write_base64(out, body);
        out.extend_from_slice(b"\",\"isBase64Encoded\":true");
    } else {
        json::write_str(out, body);
        out.extend_from_slice(b",\"isBase64Encoded\":false");
    }
}

fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `"29/Nov/2026:20:47:54 +0000"`: the common log format API Gateway uses, in UTC.
fn write_clf_time(out: &mut Vec<u8>, t: SystemTime) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = crate::aws::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let two = |out: &mut Vec<u8>, v: u64| {
        out.push(b'0' + (v / 10 % 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    out.push(b'"');
    two(out, u64::from(d));
    out.push(b'/');
    out.extend_from_slice(MONTHS[(m as usize).clamp(1, 12) - 1]);
    out.push(b'/');
    json::write_u64(out, y.max(0) as u64);
    out.push(b':');
    two(out, rem / 3600);
    out.push(b':');
    two(out, rem / 60 % 60);
    out.push(b':');
    two(out, rem % 60);
    out.extend_from_slice(b" +0000\"");
}

/// Request ids for events, UUID-shaped and unique per worker: a random 64-bit prefix drawn
/// when the worker starts, then a counter. Written into a stack buffer: no allocation.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    next: std::cell::Cell<u64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // std's per-process random keys, mixed with the time: no dependency for 64 bits.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        RequestIds {
            prefix: h.finish(),
            next: std::cell::Cell::new(1),
        }
    }
}

impl RequestIds {
    /// The next id, written into `buf`.
    pub fn next<'b>(&self, buf: &'b mut [u8; 36]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        let bits = (u128::from(self.prefix) << 64) | u128::from(n);
        let mut nibble = 32;
        for (i, slot) in buf.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                *slot = b'-';
            } else {
                nibble -= 1;
                *slot = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
            }
        }
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{self, RequestHead};
    use crate::http::Limits;
    use serde_json::{json, Value};
    use std::time::Duration;

    fn event(v2: bool, raw: &[u8], ctx: &EventContext<'_>, base64: bool) -> Value {
        let mut h = RequestHead::default();
        assert_eq!(head::parse(raw, &Limits::default(), &mut h), Ok(true));
        let req = Request {
            buf: raw,
            head: &h,
            body: &raw[h.len..],
            peer: Some("192.0.2.7".parse().expect("ip")),
            secure: false,
        };
        let mut out = Vec::new();
        let mut scratch = EventScratch::default();
        if v2 {
            write_v2(&mut out, &mut scratch, &req, ctx, base64);
        } else {
            write_v1(&mut out, &mut scratch, &req, ctx, base64);
        }
        serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out));
        })
    }

    const RAW: &[u8] = b"POST /users/42/orders?tag=a&tag=b+c&flag&q=%2Fx HTTP/1.1\r\nHost: api.example.com:8000\r\nUser-Agent: curl/8\r\nX-Multi: 1\r\nx-multi: 2\r\nCookie: s=1; theme=dark\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\":\"b\"}";

    fn ctx() -> EventContext<'static> {
        EventContext {
            resource: Some("/users/(?<id>\\d+)/orders"),
            path_params: &[("id", b"42")],
            source_ip: Some("192.0.2.7".parse().expect("ip")),
            request_id: "c6af9ac6-7b61-11e6-9a41-93e812345678",
            time: UNIX_EPOCH + Duration::from_millis(1_796_071_674_123),
            caller: None,
        }
    }

    #[test]
    fn payload_1_0_is_the_rest_api_event() {
        let e = event(false, RAW, &ctx(), true);
        assert_eq!(
            e,
            json!({
                "version": "1.0",
                "resource": "/users/(?<id>\\d+)/orders",
                "path": "/users/42/orders",
                "httpMethod": "POST",
                "headers": {"Host": "api.example.com:8000", "User-Agent": "curl/8", "X-Multi": "1",
                    "x-multi": "2", "Cookie": "s=1; theme=dark", "Content-Type": "application/json",
                    "Content-Length": "9"},
                "multiValueHeaders": {"Host": ["api.example.com:8000"], "User-Agent": ["curl/8"],
                    "X-Multi": ["1"], "x-multi": ["2"], "Cookie": ["s=1; theme=dark"],
                    "Content-Type": ["application/json"], "Content-Length": ["9"]},
                "queryStringParameters": {"tag": "b c", "flag": "", "q": "/x"},
                "multiValueQueryStringParameters": {"tag": ["a", "b c"], "flag": [""], "q": ["/x"]},
                "pathParameters": {"id": "42"},
                "stageVariables": null,
                "requestContext": {
                    "accountId": ACCOUNT_ID, "apiId": API_ID, "resourceId": API_ID,
                    "resourcePath": "/users/(?<id>\\d+)/orders", "httpMethod": "POST",
                    "path": "/users/42/orders", "protocol": "HTTP/1.1", "stage": "$default",
                    "domainName": "api.example.com", "domainPrefix": "api",
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
                    "extendedRequestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
                    "requestTime": "30/Nov/2026:20:47:54 +0000", "requestTimeEpoch": 1_796_071_674_123u64,
                    "identity": {"sourceIp": "192.0.2.7", "userAgent": "curl/8"},
                },
                "body": "{\"a\":\"b\"}",
                "isBase64Encoded": false,
            })
        );
    }

    #[test]
    fn payload_2_0_is_the_http_api_event() {
        let e = event(true, RAW, &ctx(), true);
        assert_eq!(
            e,
            json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": "/users/42/orders",
                "rawQueryString": "tag=a&tag=b+c&flag&q=%2Fx",
                "cookies": ["s=1", "theme=dark"],
                "headers": {"host": "api.example.com:8000", "user-agent": "curl/8", "x-multi": "1,2",
                    "content-type": "application/json", "content-length": "9"},
                "queryStringParameters": {"tag": "a,b c", "flag": "", "q": "/x"},
                "pathParameters": {"id": "42"},
                "requestContext": {
                    "accountId": ACCOUNT_ID, "apiId": API_ID,
                    "domainName": "api.example.com", "domainPrefix": "api",
                    "http": {"method": "POST", "path": "/users/42/orders", "protocol": "HTTP/1.1",
                        "sourceIp": "192.0.2.7", "userAgent": "curl/8"},
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
                    "routeKey": "$default", "stage": "$default",
                    "time": "30/Nov/2026:20:47:54 +0000", "timeEpoch": 1_796_071_674_123u64,
                },
                "body": "{\"a\":\"b\"}",
                "isBase64Encoded": false,
            })
        );
    }

    #[test]
    fn bodies_absent_binary_and_text() {
        let get = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let plain = EventContext::default();
        let v1 = event(false, get, &plain, true);
        assert_eq!(
            (
                &v1["body"],
                &v1["isBase64Encoded"],
                &v1["queryStringParameters"],
                &v1["pathParameters"]
            ),
            (&json!(null), &json!(false), &json!(null), &json!(null))
        );
        assert_eq!(v1["resource"], "/{proxy+}");
        let v2 = event(true, get, &plain, true);
        assert!(v2.get("body").is_none() && v2.get("queryStringParameters").is_none());
        assert!(v2.get("cookies").is_none() && v2.get("pathParameters").is_none());
        assert_eq!(v2["isBase64Encoded"], false);

        let binary = b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n\x00\xff\x01A";
        for v2 in [false, true] {
            let e = event(v2, binary, &plain, true);
            assert_eq!(
                (&e["body"], &e["isBase64Encoded"]),
                (&json!("AP8BQQ=="), &json!(true))
            );
            // Without base64_encode_body, bytes that are not UTF-8 become U+FFFD.
            let e = event(v2, binary, &plain, false);
            assert_eq!(
                (&e["body"], &e["isBase64Encoded"]),
                (&json!("\u{0}\u{fffd}\u{1}A"), &json!(false))
            );
        }
        let text = b"POST /t HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nh\xc3\xa9!!";
        let e = event(true, text, &plain, true);
        assert_eq!(
            (&e["body"], &e["isBase64Encoded"]),
            (&json!("hé!!"), &json!(false))
        );
    }

    #[test]
    fn text_types_and_request_ids() {
        for t in [
            "text/html",
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "application/soap+xml",
            "application/x-www-form-urlencoded",
        ] {
            assert!(is_text_type(Some(t.as_bytes())), "{t}");
        }
        for t in [
            "application/octet-stream",
            "image/png",
            "multipart/form-data; boundary=x",
            "jsonish",
        ] {
            assert!(!is_text_type(Some(t.as_bytes())), "{t}");
        }
        assert!(!is_text_type(None));
        let ids = RequestIds::default();
        let (mut a, mut b) = ([0u8; 36], [0u8; 36]);
        let (a, b) = (ids.next(&mut a).to_string(), ids.next(&mut b).to_string());
        assert_ne!(a, b);
        assert_eq!((a.len(), &a[8..9], &a[23..24]), (36, "-", "-"));
        assert_eq!(a[..23], b[..23]);
    }

    /// Kong's `05-aws-serializer_spec.lua` cases, request for request. Where AWS's event
    /// differs from Kong's, AWS's is asserted, with Kong's value named.
    #[test]
    fn kongs_serializer_cases() {
        let kong_time = UNIX_EPOCH + Duration::from_secs(1_662_436_514);
        let regex = EventContext {
            resource: Some("/(?<version>\\d+)/strip"),
            path_params: &[("version", b"123")],
            source_ip: Some("123.123.123.123".parse().expect("ip")),
            request_id: "1234567890",
            time: kong_time,
            caller: None,
        };
        let raw = b"GET /123/strip/more?boolean&multi-query=first&single-query=hello%20world&multi-query=second HTTP/1.1\r\nHost: abc.myhost.com\r\nsingle-header: hello world\r\nmulti-header: first\r\nmulti-header: second\r\nuser-agent: curl/7.54.0\r\nContent-Length: 4\r\n\r\ntext";
        let e = event(false, raw, &regex, true);
        assert_eq!(
            (&e["httpMethod"], &e["path"]),
            (&json!("GET"), &json!("/123/strip/more"))
        );
        assert_eq!(e["resource"], "/(?<version>\\d+)/strip");
        assert_eq!(e["pathParameters"], json!({"version": "123"}));
        // No content type: binary, base64'd (as Kong).
        assert_eq!(
            (&e["body"], &e["isBase64Encoded"]),
            (&json!("dGV4dA=="), &json!(true))
        );
        // Kong: `headers` has the first value; AWS: the last.
        assert_eq!(e["headers"]["multi-header"], "second");
        assert_eq!(
            e["multiValueHeaders"]["multi-header"],
            json!(["first", "second"])
        );
        // Kong: a flag argument is `true`; AWS: the empty string.
        assert_eq!(
            e["multiValueQueryStringParameters"],
            json!({"boolean": [""], "multi-query": ["first", "second"], "single-query": ["hello world"]})
        );
        assert_eq!(e["queryStringParameters"]["multi-query"], "second");
        let c = &e["requestContext"];
        assert_eq!(
            (
                &c["path"],
                &c["protocol"],
                &c["httpMethod"],
                &c["domainName"],
                &c["domainPrefix"]
            ),
            (
                &json!("/123/strip/more"),
                &json!("HTTP/1.1"),
                &json!("GET"),
                &json!("abc.myhost.com"),
                &json!("abc")
            )
        );
        assert_eq!(
            c["identity"],
            json!({"sourceIp": "123.123.123.123", "userAgent": "curl/7.54.0"})
        );
        assert_eq!(c["requestId"], "1234567890");
        assert_eq!(c["requestTime"], "06/Sep/2022:03:55:14 +0000");
        assert_eq!(c["requestTimeEpoch"], 1_662_436_514_000u64);
        // Kong: the request path; AWS: the resource.
        assert_eq!(c["resourcePath"], "/(?<version>\\d+)/strip");

        // No regex: no path parameters (Kong: `{}`; AWS: null), HTTP/1.0.
        let plain = EventContext {
            resource: Some("/plain/strip"),
            path_params: &[],
            ..regex
        };
        let raw = b"GET /plain/strip/more HTTP/1.0\r\nHost: def.myhost.com\r\n\r\n";
        let e = event(false, raw, &plain, true);
        assert_eq!(
            (&e["pathParameters"], &e["requestContext"]["protocol"]),
            (&json!(null), &json!("HTTP/1.0"))
        );
        assert_eq!(e["requestContext"]["domainPrefix"], "def");

        // Body types: none and unknown are base64'd as in Kong; JSON is text for AWS (Kong
        // base64s it too).
        for (ct, body, base64) in [
            (None, "text", true),
            (Some("some-unknown-type-description"), "text", true),
            (
                Some("application/json"),
                r#"{ "text": "some text" }"#,
                false,
            ),
        ] {
            let ct_line = ct
                .map(|c| format!("Content-Type: {c}\r\n"))
                .unwrap_or_default();
            let raw = format!(
                "GET /plain/strip/more HTTP/1.0\r\nHost: def.myhost.com\r\n{ct_line}Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let e = event(false, raw.as_bytes(), &plain, true);
            let want = if base64 {
                use base64::Engine;
                json!(base64::engine::general_purpose::STANDARD.encode(body))
            } else {
                json!(body)
            };
            assert_eq!(
                (&e["body"], &e["isBase64Encoded"]),
                (&want, &json!(base64)),
                "{ct:?}"
            );
        }
    }
}
