//! Where a plugin's invokes go: the plugin's `host`/`port`/`disable_https`, else
//! `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`, else `lambda.<region>.amazonaws.com:443`;
//! and through which forward proxy (the plugin's `proxy_url`, unless `NO_PROXY` excludes the
//! host).

use std::fmt;

/// A resolved Lambda endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// TLS (true) or plain HTTP.
    pub tls: bool,
    /// Host name or IP to connect to, and the TLS server name.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path prefix from an endpoint URL (`""` normally).
    pub path_prefix: String,
    /// The forward proxy to tunnel through, if any. Part of the pool key: a tunnel through
    /// one proxy is not a connection through another.
    pub proxy: Option<ForwardProxy>,
}

/// An HTTP forward proxy reached with `CONNECT` (Kong's `proxy_url`, scheme `http`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ForwardProxy {
    /// Proxy host.
    pub host: String,
    /// Proxy port (default 80, as for any `http://` URL).
    pub port: u16,
    /// `Proxy-Authorization` value (`Basic …`) from `user:pass@` in the URL.
    pub authorization: Option<String>,
}

impl fmt::Debug for ForwardProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ForwardProxy({}:{}", self.host, self.port)?;
        if self.authorization.is_some() {
            f.write_str(", with credentials")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for ForwardProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses a `proxy_url`: `http://[user[:password]@]host[:port][/]`. User and password may be
/// percent-encoded, as in any URL.
pub fn parse_proxy_url(url: &str) -> Result<ForwardProxy, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("expected http://host:port, got {url:?}"))?;
    if !scheme.eq_ignore_ascii_case("http") {
        return Err("proxy_url scheme must be http".into());
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "expected http://host:port with no path, got {url:?}"
        ));
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let parsed = parse_endpoint_url(&format!("http://{hostport}"))?;
    let authorization = userinfo.map(|u| {
        use base64::Engine;
        let (user, password) = u.split_once(':').unwrap_or((u, ""));
        let plain = format!("{}:{}", percent_decode(user), percent_decode(password));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(plain)
        )
    });
    Ok(ForwardProxy {
        host: parsed.host,
        port: parsed.port,
        authorization,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Hosts reached directly even when a proxy is configured: `NO_PROXY` (else `no_proxy`), as
/// the AWS SDKs and curl read it. Comma-separated entries: `*` (everything), a host name that
/// also matches its subdomains (`example.com`, `.example.com`), an IP address, each with an
/// optional `:port`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<(String, Option<u16>)>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value.
    pub fn parse(value: &str) -> NoProxy {
        let entries = value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                let e = e.to_ascii_lowercase();
                // `[::1]:80`, `host:80`; a bare IPv6 address has more than one colon.
                if let Some(inner) = e.strip_prefix('[') {
                    let (host, rest) = inner.split_once(']').unwrap_or((inner, ""));
                    let port = rest.strip_prefix(':').and_then(|p| p.parse().ok());
                    return (host.to_string(), port);
                }
                match e.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') => match p.parse() {
                        Ok(port) => (h.to_string(), Some(port)),
                        Err(_) => (e.clone(), None),
                    },
                    _ => (e.clone(), None),
                }
            })
            .map(|(host, port)| (host.trim_start_matches('.').to_string(), port))
            .collect();
        NoProxy { entries }
    }

    /// True when `host:port` is to be reached directly.
    pub fn excludes(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|(entry, entry_port)| {
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            entry == "*"
                || host == *entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|prefix| prefix.ends_with('.'))
        })
    }
}

impl Endpoint {
    /// The `Host` header value: `host`, plus `:port` when not the scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses `https://host[:port][/prefix]` (or `http://`).
pub fn parse_endpoint_url(url: &str) -> Result<Endpoint, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a URL"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        other => return Err(format!("unsupported scheme {other:?} in {url:?}")),
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let host = &authority[1..=end];
        let port = match &authority[end + 2..] {
            "" => None,
            p => Some(p.strip_prefix(':').unwrap_or(p)),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port in {url:?}"))?,
        None => {
            if tls {
                443
            } else {
                80
            }
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok(Endpoint {
        tls,
        host: host.to_ascii_lowercase(),
        port,
        path_prefix: prefix.to_string(),
        proxy: None,
    })
}

/// The endpoint for a plugin: its own `host` (with `port` and TLS unless `disable_https`),
/// else the environment's endpoint URL, else Lambda's regional endpoint.
pub fn for_plugin(
    host: Option<&str>,
    port: u16,
    tls: bool,
    region: &str,
    env_override: Option<&Endpoint>,
) -> Endpoint {
    if let Some(host) = host {
        return Endpoint {
            tls,
            host: host.to_string(),
            port,
            path_prefix: String::new(),
            proxy: None,
        };
    }
    if let Some(e) = env_override {
        return e.clone();
    }
    Endpoint {
        tls,
        host: format!("lambda.{region}.amazonaws.com"),
        port,
        path_prefix: String::new(),
        proxy: None,
    }
}

impl Endpoint {
    /// This endpoint reached through `proxy`, unless `no_proxy` names its host.
    pub fn via(mut self, proxy: Option<&ForwardProxy>, no_proxy: &NoProxy) -> Endpoint {
        self.proxy = proxy
            .filter(|_| !no_proxy.excludes(&self.host, self.port))
            .cloned();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoint_urls() {
        let e = parse_endpoint_url("https://localhost:4566/").expect("valid");
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "localhost".into(),
                port: 4566,
                path_prefix: String::new(),
                proxy: None,
            }
        );
        assert_eq!(e.host_header(), "localhost:4566");
        let e = parse_endpoint_url("http://[::1]/lambda").expect("valid");
        assert_eq!(
            (e.host.as_str(), e.port, e.path_prefix.as_str(), e.tls),
            ("::1", 80, "/lambda", false)
        );
        assert_eq!(e.host_header(), "[::1]");
        assert!(parse_endpoint_url("ftp://x").is_err());
        assert!(parse_endpoint_url("https://x:99999").is_err());
    }

    #[test]
    fn plugin_host_beats_the_environment() {
        let env = parse_endpoint_url("https://env:1").ok();
        assert_eq!(
            for_plugin(None, 443, true, "us-east-1", env.as_ref()).host,
            "env"
        );
        assert_eq!(
            for_plugin(None, 443, true, "us-east-1", None).host_header(),
            "lambda.us-east-1.amazonaws.com"
        );
        assert_eq!(
            for_plugin(Some("custom"), 8443, true, "us-east-1", env.as_ref()).host_header(),
            "custom:8443"
        );
    }

    #[test]
    fn parses_proxy_urls_and_keeps_their_password_out_of_debug() {
        let p = parse_proxy_url("http://user:p%40ss@proxy.internal:3128/").expect("valid");
        assert_eq!((p.host.as_str(), p.port), ("proxy.internal", 3128));
        // base64("user:p@ss")
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        assert_eq!(
            format!("{p:?}"),
            "ForwardProxy(proxy.internal:3128, with credentials)"
        );
        let p = parse_proxy_url("http://[::1]").expect("valid");
        assert_eq!(
            (p.host.as_str(), p.port, p.authorization.as_deref()),
            ("::1", 80, None)
        );
        assert_eq!(p.to_string(), "[::1]:80");
        for bad in [
            "https://proxy:1",
            "proxy:3128",
            "http://proxy:1/path",
            "http://",
        ] {
            assert!(parse_proxy_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_proxy_matches_hosts_domains_and_ports() {
        let n = NoProxy::parse(" .internal, example.com:8443 ,10.0.0.1,[::1]:443");
        assert!(n.excludes("lambda.internal", 443));
        assert!(n.excludes("internal", 443));
        assert!(!n.excludes("notinternal", 443));
        assert!(n.excludes("api.example.com", 8443));
        assert!(!n.excludes("api.example.com", 443));
        assert!(n.excludes("10.0.0.1", 1));
        assert!(n.excludes("::1", 443));
        assert!(!n.excludes("::1", 80));
        assert!(!n.excludes("lambda.us-east-1.amazonaws.com", 443));
        assert!(NoProxy::parse("*").excludes("anything", 1));
        assert!(!NoProxy::default().excludes("anything", 1));
    }
}
