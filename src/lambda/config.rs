//! The `aws-lambda` plugin's config: every field of Kong's schema with Kong's defaults,
//! validated into a type the rest of the gateway can trust.

use crate::aws::uri::encode_uri_component;
use crate::config::check::{describe, Checker};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// `X-Amz-Invocation-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationType {
    /// Synchronous (Lambda answers 200 with the function's output).
    RequestResponse,
    /// Asynchronous (Lambda answers 202).
    Event,
    /// Validation only (Lambda answers 204).
    DryRun,
}

impl InvocationType {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationType::RequestResponse => "RequestResponse",
            InvocationType::Event => "Event",
            InvocationType::DryRun => "DryRun",
        }
    }

    /// Largest payload Lambda accepts for this type (SPEC §4).
    pub fn max_payload(self) -> usize {
        match self {
            InvocationType::Event => 1024 * 1024,
            _ => 6 * 1024 * 1024,
        }
    }
}

/// `X-Amz-Log-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogType {
    /// Ask for the last 4 KB of the function's log (logged by the gateway, never sent to clients).
    Tail,
    /// No log.
    None,
}

impl LogType {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            LogType::Tail => "Tail",
            LogType::None => "None",
        }
    }
}

/// A secret string: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The validated config of one aws-lambda plugin instance.
#[derive(Clone, Debug)]
pub struct LambdaConfig {
    /// Static access key id (with `aws_secret`), else the environment's credentials.
    pub aws_key: Option<String>,
    /// Static secret access key.
    pub aws_secret: Option<Secret>,
    /// Region; falls back to `AWS_REGION` / `AWS_DEFAULT_REGION`.
    pub aws_region: Option<String>,
    /// Name, `name:alias`, or a full or partial ARN.
    pub function_name: String,
    /// Version or alias, sent as `?Qualifier=`.
    pub qualifier: Option<String>,
    /// See [`InvocationType`].
    pub invocation_type: InvocationType,
    /// See [`LogType`].
    pub log_type: LogType,
    /// Bound on the whole invoke (connect, send, wait, read).
    pub timeout: Duration,
    /// How long an idle upstream connection is kept.
    pub keepalive: Duration,
    /// Status to answer with when the function fails with `X-Amz-Function-Error: Unhandled`.
    pub unhandled_status: Option<u16>,
    /// Add `request_body`, `request_body_args` (and `request_body_base64`) to the payload.
    pub forward_request_body: bool,
    /// Add `request_headers`.
    pub forward_request_headers: bool,
    /// Add `request_method`.
    pub forward_request_method: bool,
    /// Add `request_uri` and `request_uri_args`.
    pub forward_request_uri: bool,
    /// Parse the function's output as an API Gateway proxy response.
    pub is_proxy_integration: bool,
    /// Custom endpoint host.
    pub host: Option<String>,
    /// Endpoint port (443).
    pub port: u16,
    /// Plain HTTP to the endpoint.
    pub disable_https: bool,
    /// Send an API Gateway proxy event.
    pub awsgateway_compatible: bool,
    /// `"1.0"` or `"2.0"`.
    pub awsgateway_compatible_payload_version: String,
    /// Base64 bodies of types that are not known to be text.
    pub base64_encode_body: bool,
    /// Accepted for compatibility: bodies are always held in memory up to the body limit.
    pub skip_large_bodies: bool,
    /// Accepted for compatibility: bodies pass through unchanged (SPEC §5).
    pub empty_arrays_mode: String,
    /// Accepted for compatibility.
    pub aws_imds_protocol_version: String,
    /// Accepted for compatibility (used with `aws_assume_role_arn`).
    pub aws_role_session_name: String,
    /// The invoke request's path and query, computed once: function name percent-encoded.
    pub invoke_path: String,
}

impl LambdaConfig {
    /// A config that is never served: stands in for one that failed validation.
    pub fn placeholder() -> Self {
        LambdaConfig {
            aws_key: None,
            aws_secret: None,
            aws_region: None,
            function_name: String::new(),
            qualifier: None,
            invocation_type: InvocationType::RequestResponse,
            log_type: LogType::Tail,
            timeout: Duration::from_millis(60_000),
            keepalive: Duration::from_millis(60_000),
            unhandled_status: None,
            forward_request_body: false,
            forward_request_headers: false,
            forward_request_method: false,
            forward_request_uri: false,
            is_proxy_integration: false,
            host: None,
            port: 443,
            disable_https: false,
            awsgateway_compatible: false,
            awsgateway_compatible_payload_version: "1.0".into(),
            base64_encode_body: true,
            skip_large_bodies: true,
            empty_arrays_mode: "legacy".into(),
            aws_imds_protocol_version: "v1".into(),
            aws_role_session_name: "kong".into(),
            invoke_path: String::new(),
        }
    }

    /// True when any `forward_request_*` flag is set (the "forward" payload mode).
    pub fn forwards_anything(&self) -> bool {
        self.forward_request_body
            || self.forward_request_headers
            || self.forward_request_method
            || self.forward_request_uri
    }
}

/// The JSON type of each config field, for form bodies (where every value is text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A string.
    Text,
    /// An integer.
    Integer,
    /// A boolean.
    Boolean,
}

/// Every field of the config with its type, in Kong's order.
pub const FIELD_TYPES: &[(&str, FieldType)] = &[
    ("timeout", FieldType::Integer),
    ("keepalive", FieldType::Integer),
    ("aws_key", FieldType::Text),
    ("aws_secret", FieldType::Text),
    ("aws_assume_role_arn", FieldType::Text),
    ("aws_role_session_name", FieldType::Text),
    ("aws_sts_endpoint_url", FieldType::Text),
    ("aws_region", FieldType::Text),
    ("function_name", FieldType::Text),
    ("qualifier", FieldType::Text),
    ("invocation_type", FieldType::Text),
    ("log_type", FieldType::Text),
    ("host", FieldType::Text),
    ("port", FieldType::Integer),
    ("disable_https", FieldType::Boolean),
    ("unhandled_status", FieldType::Integer),
    ("forward_request_method", FieldType::Boolean),
    ("forward_request_uri", FieldType::Boolean),
    ("forward_request_headers", FieldType::Boolean),
    ("forward_request_body", FieldType::Boolean),
    ("is_proxy_integration", FieldType::Boolean),
    ("awsgateway_compatible", FieldType::Boolean),
    ("awsgateway_compatible_payload_version", FieldType::Text),
    ("proxy_url", FieldType::Text),
    ("skip_large_bodies", FieldType::Boolean),
    ("base64_encode_body", FieldType::Boolean),
    ("aws_imds_protocol_version", FieldType::Text),
    ("empty_arrays_mode", FieldType::Text),
];

/// What a redacted secret reads as in the Admin API.
pub const REDACTED: &str = "<redacted>";

/// The access key id as the Admin API shows it: its first 4 characters, the rest masked.
pub fn mask_key(key: &str) -> String {
    let shown: String = key.chars().take(4).collect();
    format!(
        "{shown}{}",
        "*".repeat(key.chars().count().saturating_sub(4).max(4))
    )
}

impl LambdaConfig {
    /// The config as Kong's Admin API shows it: every field, defaults filled in, secrets
    /// redacted (`aws_secret` fully, `aws_key` masked).
    pub fn to_kong_json(&self) -> Value {
        use serde_json::json;
        let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()));
        json!({
            "timeout": self.timeout.as_millis() as u64,
            "keepalive": self.keepalive.as_millis() as u64,
            "aws_key": self.aws_key.as_deref().map_or(Value::Null, |k| Value::String(mask_key(k))),
            "aws_secret": self.aws_secret.as_ref().map_or(Value::Null, |_| Value::String(REDACTED.into())),
            "aws_assume_role_arn": Value::Null,
            "aws_role_session_name": self.aws_role_session_name,
            "aws_sts_endpoint_url": Value::Null,
            "aws_region": opt(&self.aws_region),
            "function_name": self.function_name,
            "qualifier": opt(&self.qualifier),
            "invocation_type": self.invocation_type.as_str(),
            "log_type": self.log_type.as_str(),
            "host": opt(&self.host),
            "port": self.port,
            "disable_https": self.disable_https,
            "unhandled_status": self.unhandled_status,
            "forward_request_method": self.forward_request_method,
            "forward_request_uri": self.forward_request_uri,
            "forward_request_headers": self.forward_request_headers,
            "forward_request_body": self.forward_request_body,
            "is_proxy_integration": self.is_proxy_integration,
            "awsgateway_compatible": self.awsgateway_compatible,
            "awsgateway_compatible_payload_version": self.awsgateway_compatible_payload_version,
            "proxy_url": Value::Null,
            "skip_large_bodies": self.skip_large_bodies,
            "base64_encode_body": self.base64_encode_body,
            "aws_imds_protocol_version": self.aws_imds_protocol_version,
            "empty_arrays_mode": self.empty_arrays_mode,
        })
    }
}

/// Validates a plugin's `config` object; errors go to `c`, with paths below the current one.
pub fn validate(c: &mut Checker, value: &Value) -> Option<LambdaConfig> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    let known: smallvec::SmallVec<[&str; 32]> = FIELD_TYPES.iter().map(|(name, _)| *name).collect();
    c.unknown_fields(obj, &known);
    let mut cfg = LambdaConfig::placeholder();

    if let Some(ms) = c.opt_int(obj, "timeout", 1, i64::from(i32::MAX)) {
        cfg.timeout = Duration::from_millis(ms as u64);
    }
    if let Some(ms) = c.opt_int(obj, "keepalive", 0, i64::from(i32::MAX)) {
        cfg.keepalive = Duration::from_millis(ms as u64);
    }
    cfg.aws_key = c.opt_string(obj, "aws_key");
    cfg.aws_secret = c.opt_string(obj, "aws_secret").map(Secret);
    if cfg.aws_key.is_some() != cfg.aws_secret.is_some() {
        c.error("all or none of these fields must be set: 'config.aws_key', 'config.aws_secret'");
    }
    if let Some(region) = c.opt_string(obj, "aws_region") {
        if is_region(&region) {
            cfg.aws_region = Some(region);
        } else {
            c.error_at(
                "aws_region",
                format!("expected a region like us-east-1, got {region:?}"),
            );
        }
    }
    match c.opt_string(obj, "function_name") {
        Some(name) if is_function_name(&name) => cfg.function_name = name,
        Some(name) => c.error_at(
            "function_name",
            format!("expected a function name, name:alias or ARN (letters, digits, '-', '_', '.', ':'), got {name:?}"),
        ),
        None => c.error_at("function_name", "required field missing"),
    }
    if let Some(q) = c.opt_string(obj, "qualifier") {
        if !q.is_empty()
            && q.len() <= 128
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"$_-.".contains(&b))
        {
            cfg.qualifier = Some(q);
        } else {
            c.error_at(
                "qualifier",
                format!("expected a version or alias, got {q:?}"),
            );
        }
    }
    if let Some(t) = one_of(
        c,
        obj,
        "invocation_type",
        &["RequestResponse", "Event", "DryRun"],
    ) {
        cfg.invocation_type = match t.as_str() {
            "Event" => InvocationType::Event,
            "DryRun" => InvocationType::DryRun,
            _ => InvocationType::RequestResponse,
        };
    }
    if let Some(t) = one_of(c, obj, "log_type", &["Tail", "None"]) {
        cfg.log_type = if t == "None" {
            LogType::None
        } else {
            LogType::Tail
        };
    }
    if let Some(host) = c.opt_string(obj, "host") {
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if ok {
            cfg.host = Some(host.to_ascii_lowercase());
        } else {
            c.error_at(
                "host",
                format!("expected a hostname or IP address, got {host:?}"),
            );
        }
    }
    if let Some(port) = c.opt_int(obj, "port", 0, 65535) {
        cfg.port = port as u16;
    }
    cfg.disable_https = c.opt_bool(obj, "disable_https").unwrap_or(false);
    cfg.unhandled_status = c
        .opt_int(obj, "unhandled_status", 100, 999)
        .map(|s| s as u16);
    cfg.forward_request_method = c.opt_bool(obj, "forward_request_method").unwrap_or(false);
    cfg.forward_request_uri = c.opt_bool(obj, "forward_request_uri").unwrap_or(false);
    cfg.forward_request_headers = c.opt_bool(obj, "forward_request_headers").unwrap_or(false);
    cfg.forward_request_body = c.opt_bool(obj, "forward_request_body").unwrap_or(false);
    cfg.is_proxy_integration = c.opt_bool(obj, "is_proxy_integration").unwrap_or(false);
    cfg.awsgateway_compatible = c.opt_bool(obj, "awsgateway_compatible").unwrap_or(false);
    if cfg.awsgateway_compatible {
        c.error_at(
            "awsgateway_compatible",
            "API Gateway proxy events are not supported by this version of lambda-gateway yet",
        );
    }
    if let Some(v) = one_of(
        c,
        obj,
        "awsgateway_compatible_payload_version",
        &["1.0", "2.0"],
    ) {
        cfg.awsgateway_compatible_payload_version = v;
    }
    if let Some(url) = c.opt_string(obj, "proxy_url") {
        if url
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme != "http")
        {
            c.error_at("proxy_url", "proxy_url scheme must be http");
        } else {
            c.error_at(
                "proxy_url",
                "forward proxies are not supported by this version of lambda-gateway yet",
            );
        }
    }
    cfg.skip_large_bodies = c.opt_bool(obj, "skip_large_bodies").unwrap_or(true);
    cfg.base64_encode_body = c.opt_bool(obj, "base64_encode_body").unwrap_or(true);
    if c.opt_string(obj, "aws_assume_role_arn").is_some() {
        c.error_at(
            "aws_assume_role_arn",
            "assuming a role through STS is not supported by this version of lambda-gateway yet",
        );
    }
    if let Some(name) = c.opt_string(obj, "aws_role_session_name") {
        cfg.aws_role_session_name = name;
    }
    c.opt_string(obj, "aws_sts_endpoint_url");
    if let Some(v) = one_of(c, obj, "aws_imds_protocol_version", &["v1", "v2"]) {
        cfg.aws_imds_protocol_version = v;
    }
    if let Some(v) = one_of(c, obj, "empty_arrays_mode", &["legacy", "correct"]) {
        cfg.empty_arrays_mode = v;
    }

    let mut path = String::from("/2015-03-31/functions/");
    encode_uri_component(&mut path, &cfg.function_name);
    path.push_str("/invocations");
    if let Some(q) = &cfg.qualifier {
        path.push_str("?Qualifier=");
        encode_uri_component(&mut path, q);
    }
    cfg.invoke_path = path;
    (c.errors.len() == before).then_some(cfg)
}

fn one_of(
    c: &mut Checker,
    obj: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Some(s.clone()),
        Some(other) => {
            let list = allowed
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ");
            c.error_at(
                key,
                format!("expected one of: {list}, got {}", describe(other)),
            );
            None
        }
    }
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-isoe-west-1` …
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Lambda's FunctionName: 1–256 of letters, digits, `-`, `_`, `.`, `:` (ARNs), `$` (`$LATEST`).
fn is_function_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:$".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<LambdaConfig, Vec<String>> {
        let mut c = Checker::default();
        let v: Value = serde_json::from_str(json).expect("test JSON");
        validate(&mut c, &v).ok_or_else(|| c.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn defaults_are_kongs() {
        let cfg = check(r#"{"function_name":"MyLambda"}"#).expect("valid");
        assert_eq!(cfg.timeout, Duration::from_millis(60000));
        assert_eq!(cfg.keepalive, Duration::from_millis(60000));
        assert_eq!(cfg.invocation_type, InvocationType::RequestResponse);
        assert_eq!(cfg.log_type, LogType::Tail);
        assert_eq!(cfg.port, 443);
        assert!(cfg.base64_encode_body && cfg.skip_large_bodies && !cfg.disable_https);
        assert_eq!(
            cfg.invoke_path,
            "/2015-03-31/functions/MyLambda/invocations"
        );
    }

    #[test]
    fn arns_and_qualifiers_are_encoded_in_the_path() {
        let cfg = check(r#"{"function_name":"arn:aws:lambda:us-east-1:123456789012:function:f","qualifier":"$LATEST"}"#)
            .expect("valid");
        assert_eq!(
            cfg.invoke_path,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations?Qualifier=%24LATEST"
        );
    }

    #[test]
    fn refuses_bad_values() {
        let errs = check(r#"{"function_name":"a b","aws_key":"k","invocation_type":"Sync","unhandled_status":99,"timeout":"x"}"#)
            .expect_err("invalid");
        for want in [
            "function_name: expected a function name, name:alias or ARN (letters, digits, '-', '_', '.', ':'), got \"a b\"",
            "all or none of these fields must be set: 'config.aws_key', 'config.aws_secret'",
            "invocation_type: expected one of: \"RequestResponse\", \"Event\", \"DryRun\", got \"Sync\"",
            "unhandled_status: value should be between 100 and 999, got 99",
            "timeout: expected an integer, got \"x\"",
        ] {
            assert!(errs.iter().any(|e| e == want), "missing {want:?} in {errs:#?}");
        }
        assert!(check(r#"{}"#).is_err());
    }

    #[test]
    fn regions() {
        for ok in ["us-east-1", "us-gov-west-1", "cn-north-1", "ap-southeast-4"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["??", "us-east", "US-EAST-1", "useast1", "us--1"] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
