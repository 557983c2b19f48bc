//! Where a plugin's invokes go: the plugin's `host`/`port`/`disable_https`, else
//! `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`, else `lambda.<region>.amazonaws.com:443`.

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
                path_prefix: String::new()
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
}
