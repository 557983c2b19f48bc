//! The `aws-lambda` plugin's config: every field of Kong's schema with Kong's defaults,
//! validated into a type the rest of the gateway can trust.

use crate::aws::endpoint::{parse_endpoint_url, parse_proxy_url, Endpoint, ForwardProxy};
use crate::aws::uri::encode_uri_component;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Shown, Type};
use serde_json::{Map, Value};
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

/// How the function's output comes back (the name Function URLs use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvokeMode {
    /// `Invoke`: the whole output, then the answer (at most 6 MB).
    Buffered,
    /// `InvokeWithResponseStream`: the output is passed on to the client as it is written.
    ResponseStream,
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

pub use crate::aws::credentials::Secret;

/// Which API Gateway event an `awsgateway_compatible` plugin sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadVersion {
    /// `"1.0"`: the REST API event.
    V1,
    /// `"2.0"`: the HTTP API event.
    V2,
}

/// Kong's `empty_arrays_mode` (accepted; outputs pass through unchanged, SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyArraysMode {
    /// `legacy`.
    Legacy,
    /// `correct`.
    Correct,
}

/// Kong's `aws_imds_protocol_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImdsVersion {
    /// `v1`.
    V1,
    /// `v2`.
    V2,
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
    /// See [`InvokeMode`].
    pub invoke_mode: InvokeMode,
    /// The most bytes of a streamed output passed on; the stream is cut there.
    pub max_stream_bytes: u64,
    /// Bound on the whole invoke (connect, send, wait, read).
    pub timeout: Duration,
    /// How long an idle upstream connection is kept.
    pub keepalive: Duration,
    /// The most extra attempts for one request, made only when the function cannot have run
    /// (Lambda throttled it, or no connection could be made); 0: none.
    pub retries: u32,
    /// Status to answer with when the function fails with `X-Amz-Function-Error: Unhandled`.
    pub unhandled_status: Option<u16>,
    /// Answer an Invoke API error with Lambda's own 4xx/5xx status instead of SPEC §6's.
    pub preserve_lambda_api_error_code: bool,
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
    /// Which event.
    pub awsgateway_compatible_payload_version: PayloadVersion,
    /// Base64 bodies of types that are not known to be text.
    pub base64_encode_body: bool,
    /// Accepted for compatibility: bodies are always held in memory up to the body limit.
    pub skip_large_bodies: bool,
    /// Accepted for compatibility: bodies pass through unchanged (SPEC §5).
    pub empty_arrays_mode: EmptyArraysMode,
    /// IMDS version used when the credentials come from the instance metadata service.
    pub aws_imds_protocol_version: ImdsVersion,
    /// Role to assume (STS `AssumeRole`) with the plugin's or the environment's credentials.
    pub aws_assume_role_arn: Option<String>,
    /// Session name of the assumed role.
    pub aws_role_session_name: String,
    /// STS endpoint for `aws_assume_role_arn`, instead of the environment's or the regional one.
    pub aws_sts_endpoint_url: Option<Endpoint>,
    /// Forward proxy for invokes and AssumeRole calls.
    pub proxy_url: Option<ForwardProxy>,
}

const MILLIS: Type = Type::Integer {
    min: 0,
    max: i32::MAX as i64,
};

crate::settings! {
    /// Kong's fields, with Kong's defaults, in Kong's order.
    pub struct Settings, schema SCHEMA = "aws-lambda" {
        /// Milliseconds for the whole invoke.
        timeout: i64 = Field::of(Type::Integer { min: 1, max: i32::MAX as i64 })
            .default(Default::Int(60000)),
        /// Milliseconds an idle upstream connection is kept.
        keepalive: i64 = Field::of(MILLIS).default(Default::Int(60000)),
        /// Extra attempts when the function cannot have run.
        retries: i64 = Field::of(Type::Integer { min: 0, max: 10 }).default(Default::Int(0)),
        /// Static access key id.
        aws_key: Option<String> = Field::of(Type::Text(None))
            .shown(Shown::Masked)
            .referenceable(),
        /// Static secret access key.
        aws_secret: Option<String> = Field::of(Type::Text(None))
            .shown(Shown::Redacted)
            .referenceable(),
        /// A role to assume.
        aws_assume_role_arn: Option<String> =
            Field::of(Type::Text(Some(check_role_arn))).referenceable(),
        /// The assumed role's session name.
        aws_role_session_name: String = Field::of(Type::Text(Some(check_role_session_name)))
            .default(Default::Text("kong")),
        /// STS endpoint for the role.
        aws_sts_endpoint_url: Option<String> = Field::of(Type::Text(Some(check_sts_endpoint_url))),
        /// The region.
        aws_region: Option<String> = Field::of(Type::Text(Some(check_region))),
        /// The function.
        function_name: String = Field::of(Type::Text(Some(check_function_name))).required(),
        /// Its version or alias.
        qualifier: Option<String> = Field::of(Type::Text(Some(check_qualifier))),
        /// `RequestResponse`, `Event`, `DryRun`.
        invocation_type: String = Field::of(Type::OneOf(&["RequestResponse", "Event", "DryRun"]))
            .default(Default::Text("RequestResponse")),
        /// `Tail`, `None`.
        log_type: String = Field::of(Type::OneOf(&["Tail", "None"])).default(Default::Text("Tail")),
        /// `BUFFERED`, `RESPONSE_STREAM`.
        invoke_mode: String = Field::of(Type::OneOf(&["BUFFERED", "RESPONSE_STREAM"]))
            .default(Default::Text("BUFFERED")),
        /// The most bytes of a streamed output passed on (Lambda's own cap: 200 MiB).
        max_stream_bytes: i64 = Field::of(Type::Integer { min: 1, max: i64::MAX })
            .default(Default::Int(200 * 1024 * 1024)),
        /// A custom endpoint's host.
        host: Option<String> = Field::of(Type::Text(Some(check_host))),
        /// Its port.
        port: i64 = Field::of(Type::Integer { min: 0, max: 65535 }).default(Default::Int(443)),
        /// Plain HTTP to it.
        disable_https: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Status for an unhandled function error.
        unhandled_status: Option<i64> = Field::of(Type::Integer { min: 100, max: 999 }),
        /// Answer Invoke API errors with Lambda's own status.
        preserve_lambda_api_error_code: bool =
            Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Send `request_method`.
        forward_request_method: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Send `request_uri`, `request_uri_args`.
        forward_request_uri: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Send `request_headers`.
        forward_request_headers: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Send `request_body`, `request_body_args`.
        forward_request_body: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Read the output as an API Gateway proxy response.
        is_proxy_integration: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Send an API Gateway event.
        awsgateway_compatible: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// `1.0` (REST API) or `2.0` (HTTP API).
        awsgateway_compatible_payload_version: String = Field::of(Type::OneOf(&["1.0", "2.0"]))
            .default(Default::Text("1.0")),
        /// A forward proxy.
        proxy_url: Option<String> = Field::of(Type::Text(Some(check_proxy_url))),
        /// Accepted: bodies are always read.
        skip_large_bodies: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        /// Base64 bodies not known to be text.
        base64_encode_body: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        /// Kong defaults to v1; the AWS SDKs use v2, and so do we (the README says so).
        aws_imds_protocol_version: String = Field::of(Type::OneOf(&["v1", "v2"]))
            .default(Default::Text("v2")),
        /// Accepted: outputs pass through unchanged.
        empty_arrays_mode: String = Field::of(Type::OneOf(&["legacy", "correct"]))
            .default(Default::Text("legacy")),
    }
}

impl LambdaConfig {
    /// A config with Kong's defaults invoking `function_name`: what validating
    /// `{function_name: …}` gives. Tests and benchmarks build on it.
    pub fn with_defaults(function_name: &str) -> Self {
        let mut obj = Map::new();
        obj.insert("function_name".into(), Value::String(function_name.into()));
        from_checked(&obj)
    }

    /// True when any `forward_request_*` flag is set (the "forward" payload mode).
    pub fn forwards_anything(&self) -> bool {
        self.forward_request_body
            || self.forward_request_headers
            || self.forward_request_method
            || self.forward_request_uri
    }

    /// The invoke request's path and query: function name and qualifier percent-encoded;
    /// `InvokeWithResponseStream`'s for a streaming plugin.
    pub fn invoke_path(&self) -> String {
        let (version, action) = match self.invoke_mode {
            InvokeMode::Buffered => ("/2015-03-31/functions/", "/invocations"),
            InvokeMode::ResponseStream => {
                ("/2021-11-15/functions/", "/response-streaming-invocations")
            }
        };
        let mut path = String::from(version);
        encode_uri_component(&mut path, &self.function_name);
        path.push_str(action);
        if let Some(q) = &self.qualifier {
            path.push_str("?Qualifier=");
            encode_uri_component(&mut path, q);
        }
        path
    }
}

/// Validates a plugin's `config` object; errors go to `c`, with paths below the current one.
pub fn validate(c: &mut Checker, value: &Value) -> Option<LambdaConfig> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    let s = Settings::read(obj);
    if s.invoke_mode == "RESPONSE_STREAM" && s.invocation_type == "Event" {
        c.error("invoke_mode RESPONSE_STREAM needs invocation_type RequestResponse or DryRun: Lambda streams only synchronous invokes");
    }
    if s.aws_key.is_some() != s.aws_secret.is_some() {
        c.error("all or none of these fields must be set: 'config.aws_key', 'config.aws_secret'");
    }
    (c.errors.len() == before).then(|| from_checked(obj))
}

/// The config of an object the schema accepted.
fn from_checked(obj: &Map<String, Value>) -> LambdaConfig {
    let s = Settings::read(obj);
    let millis = |ms: i64| Duration::from_millis(ms.max(0) as u64);
    LambdaConfig {
        aws_key: s.aws_key,
        aws_secret: s.aws_secret.map(Secret),
        aws_region: s.aws_region,
        function_name: s.function_name,
        qualifier: s.qualifier,
        invocation_type: match s.invocation_type.as_str() {
            "Event" => InvocationType::Event,
            "DryRun" => InvocationType::DryRun,
            _ => InvocationType::RequestResponse,
        },
        log_type: match s.log_type.as_str() {
            "None" => LogType::None,
            _ => LogType::Tail,
        },
        invoke_mode: match s.invoke_mode.as_str() {
            "RESPONSE_STREAM" => InvokeMode::ResponseStream,
            _ => InvokeMode::Buffered,
        },
        max_stream_bytes: s.max_stream_bytes.max(1) as u64,
        timeout: millis(s.timeout),
        keepalive: millis(s.keepalive),
        retries: s.retries.clamp(0, 10) as u32,
        unhandled_status: s.unhandled_status.map(|status| status as u16),
        preserve_lambda_api_error_code: s.preserve_lambda_api_error_code,
        forward_request_body: s.forward_request_body,
        forward_request_headers: s.forward_request_headers,
        forward_request_method: s.forward_request_method,
        forward_request_uri: s.forward_request_uri,
        is_proxy_integration: s.is_proxy_integration,
        host: s.host.map(|h| h.to_ascii_lowercase()),
        port: s.port as u16,
        disable_https: s.disable_https,
        awsgateway_compatible: s.awsgateway_compatible,
        awsgateway_compatible_payload_version: match s
            .awsgateway_compatible_payload_version
            .as_str()
        {
            "2.0" => PayloadVersion::V2,
            _ => PayloadVersion::V1,
        },
        base64_encode_body: s.base64_encode_body,
        skip_large_bodies: s.skip_large_bodies,
        empty_arrays_mode: match s.empty_arrays_mode.as_str() {
            "correct" => EmptyArraysMode::Correct,
            _ => EmptyArraysMode::Legacy,
        },
        aws_imds_protocol_version: match s.aws_imds_protocol_version.as_str() {
            "v1" => ImdsVersion::V1,
            _ => ImdsVersion::V2,
        },
        aws_assume_role_arn: s.aws_assume_role_arn,
        aws_role_session_name: s.aws_role_session_name,
        aws_sts_endpoint_url: s
            .aws_sts_endpoint_url
            .and_then(|u| parse_endpoint_url(&u).ok()),
        proxy_url: s.proxy_url.and_then(|u| parse_proxy_url(&u).ok()),
    }
}

fn check_region(region: &str) -> Result<(), String> {
    if is_region(region) {
        Ok(())
    } else {
        Err(format!("expected a region like us-east-1, got {region:?}"))
    }
}

fn check_function_name(name: &str) -> Result<(), String> {
    if is_function_name(name) {
        Ok(())
    } else {
        Err(format!("expected a function name, name:alias or ARN (letters, digits, '-', '_', '.', ':'), got {name:?}"))
    }
}

fn check_qualifier(q: &str) -> Result<(), String> {
    let ok = !q.is_empty()
        && q.len() <= 128
        && q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"$_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("expected a version or alias, got {q:?}"))
    }
}

fn check_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("expected a hostname or IP address, got {host:?}"))
    }
}

fn check_proxy_url(url: &str) -> Result<(), String> {
    parse_proxy_url(url).map(|_| ())
}

fn check_sts_endpoint_url(url: &str) -> Result<(), String> {
    parse_endpoint_url(url).map(|_| ())
}

/// `arn:<partition>:iam::<account>:role/<path/name>`.
fn check_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty())
        && arn.len() <= 2048
        && !arn.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a role ARN like arn:aws:iam::123456789012:role/name, got {arn:?}"
        ))
    }
}

/// STS's rule for `RoleSessionName`: 2 to 64 of `[\w+=,.@-]`.
fn check_role_session_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected 2 to 64 letters, digits or _+=,.@- (STS's rule for a session name), got {name:?}"
        ))
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
            cfg.invoke_path(),
            "/2015-03-31/functions/MyLambda/invocations"
        );
    }

    #[test]
    fn streaming_uses_its_own_call_and_only_synchronously() {
        let cfg = check(r#"{"function_name":"f"}"#).expect("valid");
        assert_eq!(cfg.invoke_mode, InvokeMode::Buffered);
        assert_eq!(cfg.max_stream_bytes, 200 * 1024 * 1024);
        let cfg = check(
            r#"{"function_name":"f:live","invoke_mode":"RESPONSE_STREAM","qualifier":"7","max_stream_bytes":1024}"#,
        )
        .expect("valid");
        assert_eq!(cfg.invoke_mode, InvokeMode::ResponseStream);
        assert_eq!(cfg.max_stream_bytes, 1024);
        assert_eq!(
            cfg.invoke_path(),
            "/2021-11-15/functions/f%3Alive/response-streaming-invocations?Qualifier=7"
        );
        let errs = check(
            r#"{"function_name":"f","invoke_mode":"RESPONSE_STREAM","invocation_type":"Event"}"#,
        )
        .expect_err("refused");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains(
                "invoke_mode RESPONSE_STREAM needs invocation_type RequestResponse or DryRun"
            ),
            "{errs:?}"
        );
        for bad in [
            r#"{"function_name":"f","invoke_mode":"STREAM"}"#,
            r#"{"function_name":"f","max_stream_bytes":0}"#,
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_error_codes_are_mapped_unless_preserved() {
        let cfg = check(r#"{"function_name":"f"}"#).expect("valid");
        assert!(!cfg.preserve_lambda_api_error_code);
        let cfg =
            check(r#"{"function_name":"f","preserve_lambda_api_error_code":true}"#).expect("valid");
        assert!(cfg.preserve_lambda_api_error_code);
        let errs = check(r#"{"function_name":"f","preserve_lambda_api_error_code":"yes"}"#)
            .expect_err("refused");
        assert_eq!(
            errs,
            ["preserve_lambda_api_error_code: expected a boolean, got \"yes\""]
        );
    }

    #[test]
    fn arns_and_qualifiers_are_encoded_in_the_path() {
        let cfg = check(r#"{"function_name":"arn:aws:lambda:us-east-1:123456789012:function:f","qualifier":"$LATEST"}"#)
            .expect("valid");
        assert_eq!(
            cfg.invoke_path(),
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

    #[test]
    fn roles_sts_endpoints_and_proxies() {
        let cfg = check(r#"{"function_name":"f","aws_assume_role_arn":"arn:aws:iam::123456789012:role/path/invoker","aws_role_session_name":"edge-1","aws_sts_endpoint_url":"https://sts.internal:8443","proxy_url":"http://u:p@proxy:3128"}"#)
            .expect("valid");
        assert_eq!(
            cfg.aws_assume_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/path/invoker")
        );
        assert_eq!(cfg.aws_role_session_name, "edge-1");
        assert_eq!(
            cfg.aws_sts_endpoint_url.map(|e| e.host_header()).as_deref(),
            Some("sts.internal:8443")
        );
        assert_eq!(
            cfg.proxy_url.map(|p| p.to_string()).as_deref(),
            Some("proxy:3128")
        );
        let defaults = check(r#"{"function_name":"f"}"#).expect("valid");
        assert_eq!(defaults.aws_role_session_name, "kong");
        assert_eq!(defaults.aws_imds_protocol_version, ImdsVersion::V2);
        let errs = check(r#"{"function_name":"f","aws_assume_role_arn":"arn:aws:iam::1:user/x","aws_role_session_name":"a b","aws_sts_endpoint_url":"sts","proxy_url":"https://proxy:1"}"#)
            .expect_err("refused");
        assert_eq!(
            errs,
            [
                "aws_assume_role_arn: expected a role ARN like arn:aws:iam::123456789012:role/name, got \"arn:aws:iam::1:user/x\"",
                "aws_role_session_name: expected 2 to 64 letters, digits or _+=,.@- (STS's rule for a session name), got \"a b\"",
                "aws_sts_endpoint_url: \"sts\" is not a URL",
                "proxy_url: proxy_url scheme must be http",
            ]
        );
    }
}
