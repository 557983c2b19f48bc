//! Matching a request to a route, with Kong-like priority.
//!
//! Each (route, path) pair becomes one entry; entries are sorted once when the snapshot is
//! built, so matching is a scan that stops at the first hit. The order follows Kong's
//! `traditional_compatible` router: more match categories first (hosts, methods, paths,
//! headers), then routes whose hosts are all exact, then more header rules, then higher
//! `regex_priority`, then longer paths, then document order.

use super::model::Route;
use regex::bytes::Regex;

/// Priority of an entry, compared descending: (match categories, all hosts exact, header
/// rules, regex_priority, path length).
type SortKey = (u8, u8, usize, i64, usize);

/// How one path of a route matches.
#[derive(Clone, Debug)]
enum PathRule {
    /// No paths: any path.
    Any,
    /// A plain prefix.
    Prefix(Vec<u8>),
    /// A `~` regex, anchored at the start.
    Regex(Regex),
}

/// A host rule.
#[derive(Clone, Debug)]
enum HostRule {
    Exact(String),
    /// `*.example.com`: the suffix `.example.com`.
    SuffixWildcard(String),
    /// `example.*`: the prefix `example.`.
    PrefixWildcard(String),
}

#[derive(Clone, Debug)]
struct Entry {
    route: usize,
    path: PathRule,
    /// The path as configured (a regex without its `~`), for API Gateway's `resource`.
    pattern: Option<String>,
    hosts: Vec<HostRule>,
    methods: Vec<String>,
    headers: Vec<(String, Vec<String>)>,
}

/// A built router over a config's routes.
#[derive(Clone, Debug, Default)]
pub struct Router {
    entries: Vec<Entry>,
}

/// The facts of a request the router looks at.
pub struct RouteQuery<'a> {
    /// Method token.
    pub method: &'a [u8],
    /// Host without port, as sent.
    pub host: Option<&'a [u8]>,
    /// Host with its port, as sent (matched by route hosts that name a port).
    pub authority: Option<&'a [u8]>,
    /// Path without query.
    pub path: &'a [u8],
    /// Request headers.
    pub headers: &'a dyn Fn(&str) -> Option<&'a [u8]>,
}

impl Router {
    /// Builds the router; routes whose regex fails to compile are skipped (validation has
    /// already refused them, so this only guards against a bypass).
    pub fn new(routes: &[Route], route_enabled: impl Fn(&Route) -> bool) -> Router {
        let mut keyed: Vec<(SortKey, usize, Entry)> = Vec::new();
        let mut order = 0usize;
        for (index, route) in routes.iter().enumerate() {
            if !route_enabled(route) {
                continue;
            }
            let hosts: Vec<HostRule> = route
                .hosts
                .iter()
                .map(|h| {
                    if let Some(s) = h.strip_prefix('*') {
                        HostRule::SuffixWildcard(s.to_string())
                    } else if let Some(p) = h.strip_suffix('*') {
                        HostRule::PrefixWildcard(p.to_string())
                    } else {
                        HostRule::Exact(h.clone())
                    }
                })
                .collect();
            let categories = u8::from(!route.hosts.is_empty())
                + u8::from(!route.methods.is_empty())
                + u8::from(!route.paths.is_empty())
                + u8::from(!route.headers.is_empty());
            let plain_hosts = u8::from(
                hosts.iter().all(|h| matches!(h, HostRule::Exact(_))) && !hosts.is_empty(),
            );
            let mut paths: Vec<(PathRule, usize, Option<String>)> = Vec::new();
            if route.paths.is_empty() {
                paths.push((PathRule::Any, 0, None));
            }
            for p in &route.paths {
                if let Some(re) = p.strip_prefix('~') {
                    if let Ok(r) = Regex::new(&format!("^(?:{re})")) {
                        paths.push((PathRule::Regex(r), re.len(), Some(re.to_string())));
                    }
                } else {
                    let prefix = PathRule::Prefix(p.as_bytes().to_vec());
                    paths.push((prefix, p.len(), Some(p.clone())));
                }
            }
            for (path, len, pattern) in paths {
                let key = (
                    categories,
                    plain_hosts,
                    route.headers.len(),
                    route.regex_priority,
                    len,
                );
                keyed.push((
                    key,
                    order,
                    Entry {
                        route: index,
                        path,
                        pattern,
                        hosts: hosts.clone(),
                        methods: route.methods.clone(),
                        headers: route.headers.clone(),
                    },
                ));
                order += 1;
            }
        }
        keyed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        Router {
            entries: keyed.into_iter().map(|(_, _, e)| e).collect(),
        }
    }

    /// The index (into the config's routes) of the best matching route.
    pub fn find(&self, q: &RouteQuery<'_>) -> Option<usize> {
        self.find_match(q).map(|m| m.route)
    }

    /// The best matching route, with the path rule that matched it.
    pub fn find_match(&self, q: &RouteQuery<'_>) -> Option<RouteMatch<'_>> {
        let entry = self.entries.iter().find(|e| e.matches(q))?;
        Some(RouteMatch {
            route: entry.route,
            entry,
        })
    }
}

/// A matched route: its index into the config's routes, and the path that matched it.
pub struct RouteMatch<'r> {
    /// The route's index.
    pub route: usize,
    entry: &'r Entry,
}

impl<'r> RouteMatch<'r> {
    /// The route path that matched, as configured (a regex without its `~`); `None` for a
    /// route without paths.
    pub fn resource(&self) -> Option<&'r str> {
        self.entry.pattern.as_deref()
    }

    /// Calls `each` with every named capture of a regex path that matched `path`, in the
    /// regex's order (numbered groups are skipped, as in Kong).
    pub fn path_params<'p>(&self, path: &'p [u8], mut each: impl FnMut(&'r str, &'p [u8])) {
        let PathRule::Regex(r) = &self.entry.path else {
            return;
        };
        if r.capture_names().all(|n| n.is_none()) {
            return;
        }
        if let Some(caps) = r.captures(path) {
            for name in r.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    each(name, m.as_bytes());
                }
            }
        }
    }
}

impl<'r> RouteMatch<'r> {
    /// The capture `key` of a regex path that matched `path` (Kong's `uri_captures`).
    pub fn capture<'p>(
        &self,
        path: &'p [u8],
        key: crate::access::CaptureKey<'_>,
    ) -> Option<&'p [u8]> {
        let PathRule::Regex(r) = &self.entry.path else {
            return None;
        };
        let caps = r.captures(path)?;
        let found = match key {
            crate::access::CaptureKey::Name(name) => caps.name(name),
            crate::access::CaptureKey::Number(n) => caps.get(n),
        };
        found.map(|m| m.as_bytes())
    }
}

impl Entry {
    fn matches(&self, q: &RouteQuery<'_>) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.as_bytes() == q.method) {
            return false;
        }
        if !self.hosts.is_empty() {
            let matched = self.hosts.iter().any(|h| match h {
                HostRule::Exact(name) if name.contains(':') => {
                    q.authority.is_some_and(|a| h.matches(a))
                }
                _ => q.host.is_some_and(|host| h.matches(host)),
            });
            if !matched {
                return false;
            }
        }
        for (name, values) in &self.headers {
            match (q.headers)(name) {
                Some(v)
                    if values
                        .iter()
                        .any(|want| want.as_bytes().eq_ignore_ascii_case(v)) => {}
                _ => return false,
            }
        }
        match &self.path {
            PathRule::Any => true,
            PathRule::Prefix(p) => q.path.starts_with(p),
            PathRule::Regex(r) => r.is_match(q.path),
        }
    }
}

impl HostRule {
    fn matches(&self, host: &[u8]) -> bool {
        match self {
            HostRule::Exact(h) => h.as_bytes().eq_ignore_ascii_case(host),
            HostRule::SuffixWildcard(s) => {
                host.len() > s.len()
                    && host[host.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            }
            HostRule::PrefixWildcard(p) => {
                host.len() > p.len() && host[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, paths: &[&str], hosts: &[&str], methods: &[&str]) -> Route {
        Route {
            id: name.into(),
            name: Some(name.into()),
            service: None,
            paths: paths.iter().map(|s| s.to_string()).collect(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            headers: vec![],
            strip_path: true,
            preserve_host: false,
            regex_priority: 0,
            protocols: vec![],
            raw: Default::default(),
        }
    }

    fn find(
        router: &Router,
        routes: &[Route],
        method: &str,
        host: &str,
        path: &str,
    ) -> Option<String> {
        let no_headers = |_: &str| None;
        let bare = host.split(':').next().unwrap_or(host);
        let q = RouteQuery {
            method: method.as_bytes(),
            host: Some(bare.as_bytes()),
            authority: Some(host.as_bytes()),
            path: path.as_bytes(),
            headers: &no_headers,
        };
        router.find(&q).and_then(|i| routes[i].name.clone())
    }

    #[test]
    fn priorities() {
        let mut regex = route("regex", &["~/api/v\\d+"], &[], &[]);
        regex.regex_priority = 0;
        let routes = vec![
            route("root", &["/"], &[], &[]),
            route("api", &["/api"], &[], &[]),
            route("api-long", &["/api/account"], &[], &[]),
            regex,
            route("host", &["/api"], &["example.com"], &[]),
            route("wild", &["/api"], &["*.example.com"], &[]),
            route("post", &["/api"], &[], &["POST"]),
            route("port", &["/api"], &["ported.test:8000"], &[]),
        ];
        let r = Router::new(&routes, |_| true);
        assert_eq!(
            find(&r, &routes, "GET", "x", "/other").as_deref(),
            Some("root")
        );
        assert_eq!(
            find(&r, &routes, "GET", "x", "/api/x").as_deref(),
            Some("api")
        );
        assert_eq!(
            find(&r, &routes, "GET", "x", "/api/account/1").as_deref(),
            Some("api-long")
        );
        assert_eq!(
            find(&r, &routes, "GET", "x", "/api/v2/z").as_deref(),
            Some("regex")
        );
        assert_eq!(
            find(&r, &routes, "GET", "example.com", "/api").as_deref(),
            Some("host")
        );
        assert_eq!(
            find(&r, &routes, "GET", "a.b.example.com", "/api").as_deref(),
            Some("wild")
        );
        assert_eq!(
            find(&r, &routes, "POST", "x", "/api").as_deref(),
            Some("post")
        );
        assert_eq!(
            find(&r, &routes, "GET", "x", "/nope/api").as_deref(),
            Some("root")
        );
        assert_eq!(
            find(&r, &routes, "GET", "ported.test:8000", "/api").as_deref(),
            Some("port")
        );
        assert_eq!(
            find(&r, &routes, "GET", "ported.test:9000", "/api").as_deref(),
            Some("api")
        );
        assert_eq!(
            find(&r, &routes, "GET", "example.com:1234", "/api").as_deref(),
            Some("host")
        );
    }

    #[test]
    fn no_match() {
        let routes = vec![route("a", &["/a"], &[], &["GET"])];
        let r = Router::new(&routes, |_| true);
        assert_eq!(find(&r, &routes, "GET", "x", "/b"), None);
        assert_eq!(find(&r, &routes, "PUT", "x", "/a"), None);
    }
}
