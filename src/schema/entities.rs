//! The schemas of Kong's entities, the subset a Lambda gateway serves plus the fields Kong
//! users' files carry (accepted and kept, so files and Admin API clients round-trip).

use super::{Default, Field, Kind, Type};

/// Integers that are timestamps (seconds) or counts.
const ANY_INT: Type = Type::Integer {
    min: 0,
    max: i64::MAX,
};
const PORT: Type = Type::Integer { min: 0, max: 65535 };
/// Timeouts in milliseconds.
const TIMEOUT_MS: Type = Type::Integer {
    min: 1,
    max: i32::MAX as i64,
};
const I32: Type = Type::Integer {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
const PLUGIN_PROTOCOLS: &[&str] = &["grpc", "grpcs", "http", "https"];

crate::settings! {
    /// `services`.
    pub struct ServiceFields, schema SERVICE = "services" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        name: Option<String> = Field::of(Type::Text(Some(check_name))).unique(),
        url: Option<String> = Field::of(Type::Text(Some(check_service_url))),
        protocol: String = Field::of(Type::Text(Some(check_service_protocol)))
            .default(Default::Text("http")),
        host: Option<String> = Field::of(Type::Text(None)),
        port: i64 = Field::of(PORT).default(Default::Int(80)),
        path: Option<String> = Field::of(Type::Text(Some(check_service_path))),
        retries: i64 = Field::of(Type::Integer { min: 0, max: 32767 }).default(Default::Int(5)),
        connect_timeout: i64 = Field::of(TIMEOUT_MS).default(Default::Int(60000)),
        write_timeout: i64 = Field::of(TIMEOUT_MS).default(Default::Int(60000)),
        read_timeout: i64 = Field::of(TIMEOUT_MS).default(Default::Int(60000)),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        enabled: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        client_certificate: Option<serde_json::Value> = Field::of(Type::Any),
        tls_verify: Option<bool> = Field::of(Type::Boolean),
        tls_verify_depth: Option<i64> = Field::of(Type::Integer { min: 0, max: 64 }),
        ca_certificates: Vec<String> = Field::of(Type::Texts(None)),
        routes: Option<serde_json::Value> = Field::of(Type::Nested(Kind::Route)),
        plugins: Option<serde_json::Value> = Field::of(Type::Nested(Kind::Plugin)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

const NOT_ROUTED_BY: &str =
    "not supported: lambda-gateway routes HTTP requests by host, path, method and headers";

crate::settings! {
    /// `routes`.
    pub struct RouteFields, schema ROUTE = "routes" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        name: Option<String> = Field::of(Type::Text(Some(check_name))).unique(),
        protocols: Vec<String> = Field::of(Type::Texts(Some(check_route_protocol)))
            .default(Default::Texts(&["http", "https"])),
        methods: Vec<String> = Field::of(Type::Texts(Some(check_method))),
        hosts: Vec<String> = Field::of(Type::Texts(Some(check_host))),
        paths: Vec<String> = Field::of(Type::Texts(Some(check_path))),
        headers: Option<serde_json::Value> = Field::of(Type::HeaderMap),
        https_redirect_status_code: i64 = Field::of(Type::OneOfInts(&[426, 301, 302, 307, 308]))
            .default(Default::Int(426)),
        regex_priority: i64 = Field::of(I32).default(Default::Int(0)),
        strip_path: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        path_handling: String = Field::of(Type::Text(Some(check_path_handling)))
            .default(Default::Text("v0")),
        preserve_host: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        request_buffering: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        response_buffering: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        service: Option<serde_json::Value> = Field::of(Type::Reference(Kind::Service)),
        snis: Option<serde_json::Value> = Field::of(Type::Any),
        sources: Option<serde_json::Value> = Field::of(Type::Any),
        destinations: Option<serde_json::Value> = Field::of(Type::Any),
        plugins: Option<serde_json::Value> = Field::of(Type::Nested(Kind::Plugin)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

/// Route fields whose content lambda-gateway cannot route on: refused unless empty.
pub const UNROUTABLE: [&str; 3] = ["snis", "sources", "destinations"];

/// The message for [`UNROUTABLE`] fields.
pub const UNROUTABLE_WHY: &str = NOT_ROUTED_BY;

crate::settings! {
    /// `consumers`.
    pub struct ConsumerFields, schema CONSUMER = "consumers" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        username: Option<String> = Field::of(Type::Text(None)).unique(),
        custom_id: Option<String> = Field::of(Type::Text(None)).unique(),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        plugins: Option<serde_json::Value> = Field::of(Type::Nested(Kind::Plugin)),
        keyauth_credentials: Option<serde_json::Value> = Field::of(Type::Nested(Kind::KeyAuth)),
        acls: Option<serde_json::Value> = Field::of(Type::Nested(Kind::Acl)),
        jwt_secrets: Option<serde_json::Value> = Field::of(Type::Nested(Kind::Jwt)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

crate::settings! {
    /// `keyauth_credentials`: an API key of a consumer (generated when not given).
    pub struct KeyAuthFields, schema KEYAUTH_CREDENTIAL = "keyauth_credentials" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        consumer: Option<serde_json::Value> =
            Field::of(Type::Reference(Kind::Consumer)).required(),
        key: Option<String> = Field::of(Type::Text(Some(check_api_key)))
            .unique()
            .referenceable(),
        ttl: Option<i64> = Field::of(ANY_INT),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

crate::settings! {
    /// `acls`: a group a consumer belongs to.
    pub struct AclFields, schema ACL = "acls" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        consumer: Option<serde_json::Value> =
            Field::of(Type::Reference(Kind::Consumer)).required(),
        group: Option<String> = Field::of(Type::Text(None)).required(),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

/// The algorithms a `jwt_secrets` credential may name: Kong's list but `ES512`, which the
/// signature crate (jsonwebtoken) does not provide.
pub const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384",
    "PS512", "EdDSA",
];

crate::settings! {
    /// `jwt_secrets`: a consumer's JWT credential: the `key` tokens name, and the HMAC `secret`
    /// (both generated when not given) or the PEM public key that checks their signatures.
    pub struct JwtSecretFields, schema JWT_SECRET = "jwt_secrets" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        consumer: Option<serde_json::Value> =
            Field::of(Type::Reference(Kind::Consumer)).required(),
        key: Option<String> = Field::of(Type::Text(Some(check_api_key))).unique(),
        secret: Option<String> = Field::of(Type::Text(None)).referenceable(),
        rsa_public_key: Option<String> = Field::of(Type::Text(None)),
        algorithm: String =
            Field::of(Type::OneOf(JWT_ALGORITHMS)).default(Default::Text("HS256")),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

fn check_api_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.bytes().any(|b| b.is_ascii_control()) {
        Err("expected a non-empty key without control characters".into())
    } else {
        Ok(())
    }
}

crate::settings! {
    /// `certificates`: a PEM chain and key served to HTTPS clients for the names of its `snis`.
    pub struct CertificateFields, schema CERTIFICATE = "certificates" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        cert: Option<String> = Field::of(Type::Text(Some(check_pem_certificate))).required(),
        key: Option<String> = Field::of(Type::Text(Some(check_pem_key))).required(),
        cert_alt: Option<String> = Field::of(Type::Text(Some(check_pem_certificate))),
        key_alt: Option<String> = Field::of(Type::Text(Some(check_pem_key))),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        snis: Option<serde_json::Value> = Field::of(Type::Nested(Kind::Sni)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

crate::settings! {
    /// `snis`: a name (or wildcard) and the certificate served for it.
    pub struct SniFields, schema SNI = "snis" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        name: Option<String> = Field::of(Type::Text(Some(check_sni)))
            .required()
            .unique(),
        certificate: Option<serde_json::Value> =
            Field::of(Type::Reference(Kind::Certificate)).required(),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

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

crate::settings! {
    /// `plugins` (the entity; each plugin's `config` has the plugin's own schema).
    pub struct PluginFields, schema PLUGIN = "plugins" {
        id: Option<String> = Field::of(Type::Text(Some(check_uuid))),
        name: Option<String> = Field::of(Type::Text(None)).required(),
        config: Option<serde_json::Value> = Field::of(Type::PluginConfig),
        enabled: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        protocols: Vec<String> = Field::of(Type::TextsOneOf(PLUGIN_PROTOCOLS))
            .default(Default::Texts(PLUGIN_PROTOCOLS)),
        service: Option<serde_json::Value> = Field::of(Type::Reference(Kind::Service)),
        route: Option<serde_json::Value> = Field::of(Type::Reference(Kind::Route)),
        consumer: Option<serde_json::Value> = Field::of(Type::Reference(Kind::Consumer)),
        tags: Vec<String> = Field::of(Type::Texts(None)),
        instance_name: Option<String> = Field::of(Type::Text(None)),
        ordering: Option<serde_json::Value> = Field::of(Type::Any),
        created_at: Option<i64> = Field::of(ANY_INT),
        updated_at: Option<i64> = Field::of(ANY_INT),
    }
}

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
