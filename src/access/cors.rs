//! Kong's `cors` (priority 2000). A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered here with 200 and the CORS headers, never
//! reaching the function (unless `preflight_continue`); other answers get
//! `Access-Control-Allow-Origin` (and `-Credentials`, `-Expose-Headers`, `Vary: Origin`) as
//! Kong's header filter sets them.
//!
//! Origins as Kong matches them: `*` (or none configured) allows all; one plain origin is
//! always sent as configured; otherwise the request's origin (normalised: scheme, host, and a
//! port only when not the scheme's default) is compared with each entry, an entry with
//! characters outside `[A-Za-z0-9.:/-]` being an anchored regex (against the host alone when
//! the entry has no `:`).

use super::{AccessContext, Plugin, RequestEdits, Verdict};
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use regex::Regex;
use serde_json::{Map, Value};

const ALL_METHODS: &[&str] = &[
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "cors" {
        /// `*`, origins, or anchored regexes.
        origins: Vec<String> = Field::of(Type::Texts(Some(check_origin))),
        /// `Access-Control-Allow-Headers` (else the request's own).
        headers: Vec<String> = Field::of(Type::Texts(None)),
        /// `Access-Control-Expose-Headers`.
        exposed_headers: Vec<String> = Field::of(Type::Texts(None)),
        /// `Access-Control-Allow-Methods`.
        methods: Vec<String> = Field::of(Type::TextsOneOf(ALL_METHODS))
            .default(Default::Texts(ALL_METHODS)),
        /// `Access-Control-Max-Age`, seconds.
        max_age: Option<i64> = Field::of(Type::Integer { min: 0, max: i32::MAX as i64 }),
        /// `Access-Control-Allow-Credentials`.
        credentials: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// `Access-Control-Allow-Private-Network` when asked.
        private_network: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Preflights go on to the function.
        preflight_continue: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Headers on answers to requests without `Origin` too.
        allow_origin_absent: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
    }
}

/// How one configured origin matches.
#[derive(Debug)]
enum Origin {
    /// `*`.
    Any,
    /// A normalised origin.
    Exact(String),
    /// An anchored regex, against the host or the whole origin.
    Pattern { regex: Regex, by_host: bool },
}

/// The plugin as configured.
#[derive(Debug)]
pub struct Cors {
    origins: Vec<Origin>,
    /// The one plain origin, sent as configured (Kong's shortcut).
    single: Option<String>,
    headers: Option<String>,
    exposed_headers: Option<String>,
    methods: String,
    max_age: Option<i64>,
    credentials: bool,
    private_network: bool,
    preflight_continue: bool,
    allow_origin_absent: bool,
}

fn plain(entry: &str) -> bool {
    entry
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".:/-".contains(&b))
}

fn pattern(entry: &str) -> Result<Regex, regex::Error> {
    let inner = entry.strip_prefix('^').unwrap_or(entry);
    let inner = inner.strip_suffix('$').unwrap_or(inner);
    regex::RegexBuilder::new(&format!("^(?:{inner})$"))
        .size_limit(1 << 20)
        .build()
}

fn check_origin(entry: &str) -> Result<(), String> {
    if entry == "*" || plain(entry) || pattern(entry).is_ok() {
        Ok(())
    } else {
        Err(format!("'{entry}' is not a valid regex"))
    }
}

/// `https://Example.com:443` → (`https://example.com`, `example.com`); no scheme: as given.
pub fn normalize(origin: &str) -> (String, String) {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return (origin.to_string(), origin.to_string());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let port =
        port.filter(|p| !((scheme == "http" && *p == "80") || (scheme == "https" && *p == "443")));
    let domain = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    (domain, host)
}

impl Plugin for Cors {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 2000;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(_: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let s = Settings::read(obj);
        let origins = s
            .origins
            .iter()
            .filter_map(|e| {
                if e == "*" {
                    Some(Origin::Any)
                } else if plain(e) {
                    Some(Origin::Exact(normalize(e).0))
                } else {
                    pattern(e).ok().map(|regex| Origin::Pattern {
                        regex,
                        by_host: !e.contains(':'),
                    })
                }
            })
            .collect();
        let single = match s.origins.as_slice() {
            [one] if one != "*" && plain(one) => Some(one.clone()),
            _ => None,
        };
        let joined = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
        Some(Cors {
            origins,
            single,
            headers: joined(&s.headers),
            exposed_headers: joined(&s.exposed_headers),
            methods: joined(&s.methods).unwrap_or_else(|| ALL_METHODS.join(",")),
            max_age: s.max_age,
            credentials: s.credentials,
            private_network: s.private_network,
            preflight_continue: s.preflight_continue,
            allow_origin_absent: s.allow_origin_absent,
        })
    }

    /// Answers preflights.
    async fn access(
        &self,
        req: &Request<'_>,
        _: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        answer_preflight(self, req, resp)
    }

    /// Adds the CORS headers to an answer that was not a preflight's.
    fn response(&self, req: &Request<'_>, _: &RequestEdits, resp: &mut Response) {
        add_headers(self, req, resp)
    }
}

fn is_preflight(req: &Request<'_>) -> bool {
    req.method() == b"OPTIONS"
        && req.header("origin").is_some()
        && req.header("access-control-request-method").is_some()
}

/// Sets `Access-Control-Allow-Origin` for `origin`; true when every origin is allowed.
fn allow_origin(c: &Cors, origin: Option<&str>, resp: &mut Response) -> bool {
    let all = c.origins.is_empty() || matches!(c.origins.as_slice(), [Origin::Any]);
    if all {
        resp.set_header(b"Access-Control-Allow-Origin", b"*");
        return true;
    }
    resp.add_vary_origin();
    if let Some(one) = &c.single {
        resp.set_header(b"Access-Control-Allow-Origin", one.as_bytes());
        return false;
    }
    if let Some(origin) = origin {
        if c.origins.iter().any(|o| matches!(o, Origin::Any)) {
            resp.set_header(b"Access-Control-Allow-Origin", b"*");
            return true;
        }
        let (domain, host) = normalize(origin);
        let found = c.origins.iter().any(|o| match o {
            Origin::Any => true,
            Origin::Exact(d) => *d == domain,
            Origin::Pattern { regex, by_host } => {
                regex.is_match(if *by_host { &host } else { &domain })
            }
        });
        if found {
            resp.set_header(b"Access-Control-Allow-Origin", domain.as_bytes());
            return false;
        }
    }
    resp.remove_header(b"Access-Control-Allow-Origin");
    false
}

fn allow_credentials(c: &Cors, all: bool, origin: Option<&str>, resp: &mut Response) {
    if !c.credentials {
        return;
    }
    if !all {
        resp.set_header(b"Access-Control-Allow-Credentials", b"true");
        return;
    }
    // `*` cannot go with credentials: the request's origin is echoed instead.
    if let Some(origin) = origin {
        resp.add_vary_origin();
        resp.set_header(b"Access-Control-Allow-Origin", origin.as_bytes());
        resp.set_header(b"Access-Control-Allow-Credentials", b"true");
    }
}

fn answer_preflight(c: &Cors, req: &Request<'_>, resp: &mut Response) -> Verdict {
    if !is_preflight(req) || c.preflight_continue {
        return Verdict::Continue;
    }
    let origin = req
        .header("origin")
        .and_then(|o| std::str::from_utf8(o).ok());
    resp.clear();
    resp.status = 200;
    let all = allow_origin(c, origin, resp);
    allow_credentials(c, all, origin, resp);
    match (&c.headers, req.header("access-control-request-headers")) {
        (Some(h), _) => resp.set_header(b"Access-Control-Allow-Headers", h.as_bytes()),
        (None, Some(asked)) => resp.set_header(b"Access-Control-Allow-Headers", asked),
        (None, None) => {}
    }
    resp.set_header(b"Access-Control-Allow-Methods", c.methods.as_bytes());
    if let Some(age) = c.max_age {
        resp.set_header(b"Access-Control-Max-Age", age.to_string().as_bytes());
    }
    if c.private_network
        && req.header("access-control-request-private-network") == Some(&b"true"[..])
    {
        resp.set_header(b"Access-Control-Allow-Private-Network", b"true");
    }
    Verdict::Answered
}

fn add_headers(c: &Cors, req: &Request<'_>, resp: &mut Response) {
    if is_preflight(req) {
        return;
    }
    let origin = req
        .header("origin")
        .and_then(|o| std::str::from_utf8(o).ok());
    if origin.is_none() && !c.allow_origin_absent {
        return;
    }
    let all = allow_origin(c, origin, resp);
    allow_credentials(c, all, origin, resp);
    if let Some(exposed) = &c.exposed_headers {
        resp.set_header(b"Access-Control-Expose-Headers", exposed.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{configured, run, Known};
    use super::*;

    fn preflight(origin: &str) -> String {
        format!("OPTIONS /r HTTP/1.1\r\nHost: h\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: X-Api\r\n\r\n")
    }

    fn get(origin: &str) -> String {
        format!("GET /r HTTP/1.1\r\nHost: h\r\nOrigin: {origin}\r\n\r\n")
    }

    /// Kong's spec (`spec/03-plugins/13-cors`): preflights answered here, headers on answers.
    #[test]
    fn preflights_and_answers_get_kongs_headers() {
        let known = Known::default();
        let all: Cors = configured("{}").expect("valid");
        let out = run(&all, &preflight("https://a.test"), &known);
        assert_eq!((out.verdict.clone(), out.status(), out.body().as_str()), (Verdict::Answered, 200, ""));
        assert_eq!(out.header("Access-Control-Allow-Origin").as_deref(), Some("*"));
        assert_eq!(
            out.header("Access-Control-Allow-Methods").as_deref(),
            Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")
        );
        assert_eq!(out.header("Access-Control-Allow-Headers").as_deref(), Some("X-Api"));
        let listed: Cors = configured(
            r#"{"origins":["https://a.test","^https://.*\\.b\\.test$"],"credentials":true,"max_age":600,"exposed_headers":["X-Id"],"methods":["GET","POST"]}"#,
        )
        .expect("valid");
        let out = run(&listed, &preflight("https://A.test:443"), &known);
        assert_eq!(out.header("Access-Control-Allow-Origin").as_deref(), Some("https://a.test"));
        assert_eq!(out.header("Access-Control-Allow-Credentials").as_deref(), Some("true"));
        assert_eq!(out.header("Access-Control-Max-Age").as_deref(), Some("600"));
        assert_eq!(out.header("Access-Control-Allow-Methods").as_deref(), Some("GET,POST"));
        assert_eq!(out.header("Vary").as_deref(), Some("Origin"));
        // The function's answer gets the headers too.
        let out = run(&listed, &get("https://x.b.test"), &known);
        assert_eq!((out.verdict.clone(), out.status()), (Verdict::Continue, 200));
        assert_eq!(out.header("Access-Control-Allow-Origin").as_deref(), Some("https://x.b.test"));
        assert_eq!(out.header("Access-Control-Expose-Headers").as_deref(), Some("X-Id"));
        // An origin not listed gets none.
        let out = run(&listed, &get("https://evil.test"), &known);
        assert!(out.header("Access-Control-Allow-Origin").is_none());
        // preflight_continue: the function answers it.
        let through: Cors = configured(r#"{"preflight_continue":true}"#).expect("valid");
        assert_eq!(run(&through, &preflight("https://a.test"), &known).verdict, Verdict::Continue);
    }

    #[test]
    fn origins_normalise_as_kong_does() {
        assert_eq!(
            normalize("HTTPS://Example.com:443"),
            ("https://example.com".into(), "example.com".into())
        );
        assert_eq!(
            normalize("http://a.test:8080/path"),
            ("http://a.test:8080".into(), "a.test".into())
        );
        assert!(check_origin("(.*)[").is_err());
        assert!(check_origin(r"https://.*\.example\.com").is_ok());
    }
}
