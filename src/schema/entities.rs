//! The schemas of Kong's entities, the subset a Lambda gateway serves plus the fields Kong
//! users' files carry (accepted and kept, so files and Admin API clients round-trip).

use super::{Default, Field, Kind, Schema, Type};

/// Integers that are timestamps (seconds) or counts.
const ANY_INT: Type = Type::Integer {
    min: 0,
    max: i64::MAX,
};
const PORT: Type = Type::Integer { min: 0, max: 65535 };

/// `services`.
pub static SERVICE: Schema = Schema {
    name: "services",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("name", Type::Text(Some(check_name))).unique(),
        Field::new("url", Type::Text(Some(check_service_url))),
        Field::new("protocol", Type::Text(Some(check_service_protocol)))
            .default(Default::Text("http")),
        Field::new("host", Type::Text(None)),
        Field::new("port", PORT).default(Default::Int(80)),
        Field::new("path", Type::Text(Some(check_service_path))),
        Field::new("retries", Type::Integer { min: 0, max: 32767 }).default(Default::Int(5)),
        Field::new(
            "connect_timeout",
            Type::Integer {
                min: 1,
                max: i32::MAX as i64,
            },
        )
        .default(Default::Int(60000)),
        Field::new(
            "write_timeout",
            Type::Integer {
                min: 1,
                max: i32::MAX as i64,
            },
        )
        .default(Default::Int(60000)),
        Field::new(
            "read_timeout",
            Type::Integer {
                min: 1,
                max: i32::MAX as i64,
            },
        )
        .default(Default::Int(60000)),
        Field::new("tags", Type::Texts(None)),
        Field::new("enabled", Type::Boolean).default(Default::Bool(true)),
        Field::new("client_certificate", Type::Any),
        Field::new("tls_verify", Type::Boolean),
        Field::new("tls_verify_depth", Type::Integer { min: 0, max: 64 }),
        Field::new("ca_certificates", Type::Texts(None)),
        Field::new("routes", Type::Nested(Kind::Route)),
        Field::new("plugins", Type::Nested(Kind::Plugin)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

const NOT_ROUTED_BY: &str =
    "not supported: lambda-gateway routes HTTP requests by host, path, method and headers";

/// `routes`.
pub static ROUTE: Schema = Schema {
    name: "routes",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("name", Type::Text(Some(check_name))).unique(),
        Field::new("protocols", Type::Texts(Some(check_route_protocol)))
            .default(Default::Texts(&["http", "https"])),
        Field::new("methods", Type::Texts(Some(check_method))),
        Field::new("hosts", Type::Texts(Some(check_host))),
        Field::new("paths", Type::Texts(Some(check_path))),
        Field::new("headers", Type::HeaderMap),
        Field::new(
            "https_redirect_status_code",
            Type::OneOfInts(&[426, 301, 302, 307, 308]),
        )
        .default(Default::Int(426)),
        Field::new(
            "regex_priority",
            Type::Integer {
                min: i32::MIN as i64,
                max: i32::MAX as i64,
            },
        )
        .default(Default::Int(0)),
        Field::new("strip_path", Type::Boolean).default(Default::Bool(true)),
        Field::new("path_handling", Type::Text(Some(check_path_handling)))
            .default(Default::Text("v0")),
        Field::new("preserve_host", Type::Boolean).default(Default::Bool(false)),
        Field::new("request_buffering", Type::Boolean).default(Default::Bool(true)),
        Field::new("response_buffering", Type::Boolean).default(Default::Bool(true)),
        Field::new("tags", Type::Texts(None)),
        Field::new("service", Type::Reference(Kind::Service)),
        Field::new("snis", Type::Any),
        Field::new("sources", Type::Any),
        Field::new("destinations", Type::Any),
        Field::new("plugins", Type::Nested(Kind::Plugin)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

/// Route fields whose content lambda-gateway cannot route on: refused unless empty.
pub const UNROUTABLE: [&str; 3] = ["snis", "sources", "destinations"];

/// The message for [`UNROUTABLE`] fields.
pub const UNROUTABLE_WHY: &str = NOT_ROUTED_BY;

/// `consumers`.
pub static CONSUMER: Schema = Schema {
    name: "consumers",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("username", Type::Text(None)).unique(),
        Field::new("custom_id", Type::Text(None)).unique(),
        Field::new("tags", Type::Texts(None)),
        Field::new("plugins", Type::Nested(Kind::Plugin)),
        Field::new("keyauth_credentials", Type::Nested(Kind::KeyAuth)),
        Field::new("acls", Type::Nested(Kind::Acl)),
        Field::new("jwt_secrets", Type::Nested(Kind::Jwt)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

/// `keyauth_credentials`: an API key of a consumer (generated when not given).
pub static KEYAUTH_CREDENTIAL: Schema = Schema {
    name: "keyauth_credentials",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("consumer", Type::Reference(Kind::Consumer)),
        Field::new("key", Type::Text(Some(check_api_key)))
            .unique()
            .referenceable(),
        Field::new("ttl", ANY_INT),
        Field::new("tags", Type::Texts(None)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

/// `acls`: a group a consumer belongs to.
pub static ACL: Schema = Schema {
    name: "acls",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("consumer", Type::Reference(Kind::Consumer)),
        Field::new("group", Type::Text(None)).required(),
        Field::new("tags", Type::Texts(None)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

/// The algorithms a `jwt_secrets` credential may name: Kong's list but `ES512`, which the
/// signature crate (jsonwebtoken) does not provide.
pub const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384",
    "PS512", "EdDSA",
];

/// `jwt_secrets`: a consumer's JWT credential: the `key` tokens name, and the HMAC `secret`
/// (both generated when not given) or the PEM public key that checks their signatures.
pub static JWT_SECRET: Schema = Schema {
    name: "jwt_secrets",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("consumer", Type::Reference(Kind::Consumer)),
        Field::new("key", Type::Text(Some(check_api_key))).unique(),
        Field::new("secret", Type::Text(None)).referenceable(),
        Field::new("rsa_public_key", Type::Text(None)),
        Field::new("algorithm", Type::OneOf(JWT_ALGORITHMS)).default(Default::Text("HS256")),
        Field::new("tags", Type::Texts(None)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

fn check_api_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.bytes().any(|b| b.is_ascii_control()) {
        Err("expected a non-empty key without control characters".into())
    } else {
        Ok(())
    }
}

/// `certificates`: a PEM chain and key served to HTTPS clients for the names of its `snis`.
pub static CERTIFICATE: Schema = Schema {
    name: "certificates",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("cert", Type::Text(Some(check_pem_certificate))).required(),
        Field::new("key", Type::Text(Some(check_pem_key))).required(),
        Field::new("cert_alt", Type::Text(Some(check_pem_certificate))),
        Field::new("key_alt", Type::Text(Some(check_pem_key))),
        Field::new("tags", Type::Texts(None)),
        Field::new("snis", Type::Nested(Kind::Sni)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

/// `snis`: a name (or wildcard) and the certificate served for it.
pub static SNI: Schema = Schema {
    name: "snis",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("name", Type::Text(Some(check_sni)))
            .required()
            .unique(),
        Field::new("certificate", Type::Reference(Kind::Certificate)),
        Field::new("tags", Type::Texts(None)),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

fn check_pem_certificate(pem: &str) -> Result<(), String> {
    if pem.contains("-----BEGIN CERTIFICATE-----") {
        Ok(())
    } else {
        Err("expected a PEM certificate (-----BEGIN CERTIFICATE-----)".into())
    }
}

fn check_pem_key(pem: &str) -> Result<(), String> {
    if pem.contains("-----BEGIN") && pem.contains("PRIVATE KEY-----") {
        Ok(())
    } else {
        Err("expected a PEM private key (-----BEGIN PRIVATE KEY-----)".into())
    }
}

/// Whether `name` is an SNI as Kong takes it: a host name, lower case, or a wildcard with one
/// `*` as the whole first or last label.
pub fn is_sni(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    if name.is_empty() || name.len() > 253 || labels.len() < 2 {
        return false;
    }
    let plain = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    let last = labels.len() - 1;
    labels.iter().enumerate().all(|(i, l)| {
        plain(l) || (*l == "*" && (i == 0 || i == last) && name.matches('*').count() == 1)
    })
}

fn check_sni(name: &str) -> Result<(), String> {
    if is_sni(name) {
        Ok(())
    } else {
        Err(format!(
            "expected a lower-case host name, or a wildcard with `*` as its first or last label, got {name:?}"
        ))
    }
}

/// `plugins` (the entity; each plugin's `config` has the plugin's own schema).
pub static PLUGIN: Schema = Schema {
    name: "plugins",
    fields: &[
        Field::new("id", Type::Text(Some(check_uuid))),
        Field::new("name", Type::Text(None)).required(),
        Field::new("config", Type::PluginConfig),
        Field::new("enabled", Type::Boolean).default(Default::Bool(true)),
        Field::new(
            "protocols",
            Type::TextsOneOf(&["grpc", "grpcs", "http", "https"]),
        )
        .default(Default::Texts(&["grpc", "grpcs", "http", "https"])),
        Field::new("service", Type::Reference(Kind::Service)),
        Field::new("route", Type::Reference(Kind::Route)),
        Field::new("consumer", Type::Reference(Kind::Consumer)),
        Field::new("tags", Type::Texts(None)),
        Field::new("instance_name", Type::Text(None)),
        Field::new("ordering", Type::Any),
        Field::new("created_at", ANY_INT),
        Field::new("updated_at", ANY_INT),
    ],
};

/// Entity ids are UUIDs.
fn check_uuid(id: &str) -> Result<(), String> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(format!("expected a UUID, got {id:?}"))
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits in either case.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Kong's entity names: letters, digits, `.`, `-`, `_`, `~`.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_' | '~'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: use letters, digits, '.', '-', '_' or '~'"
        ))
    }
}

/// A service's `url`, split as Kong stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceUrl {
    /// `http`, `https`, `grpc` or `grpcs` (lower-case).
    pub protocol: String,
    /// The host (an IPv6 address keeps its brackets).
    pub host: String,
    /// The port, the protocol's default when not given.
    pub port: u16,
    /// The path, if any.
    pub path: Option<String>,
}

/// `scheme://host[:port][/path]`, or the message to report.
pub fn parse_service_url(url: &str) -> Result<ServiceUrl, String> {
    split_url(url)
        .ok_or_else(|| format!("expected a URL like http://example.com:8080/path, got {url:?}"))
}

fn split_url(url: &str) -> Option<ServiceUrl> {
    let (scheme, rest) = url.split_once("://")?;
    let protocol = scheme.to_ascii_lowercase();
    let default_port = match protocol.as_str() {
        "http" | "grpc" => 80,
        "https" | "grpcs" => 443,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    let (host, port) = if let Some(v6_end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let host = &authority[..v6_end + 2];
        match &authority[v6_end + 2..] {
            "" => (host, default_port),
            p => (host, p.strip_prefix(':')?.parse().ok()?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || host.contains(['@', ' ', '?', '#']) {
        return None;
    }
    Some(ServiceUrl {
        protocol,
        host: host.to_string(),
        port,
        path,
    })
}

fn check_service_url(url: &str) -> Result<(), String> {
    parse_service_url(url).map(|_| ())
}

fn check_service_protocol(p: &str) -> Result<(), String> {
    if matches!(p, "http" | "https" | "grpc" | "grpcs") {
        Ok(())
    } else {
        Err(format!(
            "expected one of \"http\", \"https\", \"grpc\", \"grpcs\", got {p:?}"
        ))
    }
}

fn check_service_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(format!("should start with '/', got {path:?}"))
    }
}

fn check_route_protocol(p: &str) -> Result<(), String> {
    if p == "http" || p == "https" {
        Ok(())
    } else {
        Err(format!("expected \"http\" or \"https\", got {p:?}"))
    }
}

fn check_method(m: &str) -> Result<(), String> {
    if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "expected an upper-case HTTP method like GET, got {m:?}"
        ))
    }
}

fn check_path_handling(h: &str) -> Result<(), String> {
    if h == "v0" || h == "v1" {
        Ok(())
    } else {
        Err(format!("expected \"v0\" or \"v1\", got {h:?}"))
    }
}

/// Kong's route path rules: `/prefix` or `~regex` (anchored at the start when matched).
fn check_path(path: &str) -> Result<(), String> {
    if let Some(re) = path.strip_prefix('~') {
        if let Err(e) = regex::Regex::new(&format!("^(?:{re})")) {
            return Err(format!("invalid regex {re:?}: {e}"));
        }
    } else if !path.starts_with('/') {
        return Err(format!(
            "should start with: / (fixed path) or ~/ (regex path), got {path:?}"
        ));
    } else if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "must not contain whitespace or control characters, got {path:?}"
        ));
    }
    Ok(())
}

/// A host: a hostname with an optional port, or a wildcard `*.example.com` / `example.*`.
fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(format!("invalid port in host {host:?}"));
        }
    }
    let core = name
        .strip_prefix("*.")
        .or_else(|| name.strip_suffix(".*"))
        .unwrap_or(name);
    let valid = !core.is_empty()
        && core.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("invalid hostname {host:?}"))
    }
}

/// A new random (version 4) UUID, from the system's secure random source.
pub fn new_uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The system RNG failing is not recoverable in any useful way; fall back to the clock so an
    // id is still produced rather than panicking.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = nanos.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls() {
        let url = |protocol: &str, host: &str, port: u16, path: Option<&str>| ServiceUrl {
            protocol: protocol.into(),
            host: host.into(),
            port,
            path: path.map(str::to_string),
        };
        assert_eq!(
            parse_service_url("http://localhost:8000"),
            Ok(url("http", "localhost", 8000, None))
        );
        assert_eq!(
            parse_service_url("https://h/p"),
            Ok(url("https", "h", 443, Some("/p")))
        );
        assert_eq!(
            parse_service_url("http://[::1]:81"),
            Ok(url("http", "[::1]", 81, None))
        );
        assert!(parse_service_url("ftp://h").is_err());
        assert!(parse_service_url("http://h:x").is_err());
    }
}
