//! Credentials from the machine the gateway runs on: the EC2 instance metadata service (IMDS,
//! v2's session token flow or v1) and the ECS/EKS container credentials endpoint. Both answer
//! with the same JSON document.

use super::Fetched;
use crate::aws::credentials::{Credentials, Secret};
use crate::aws::endpoint::Endpoint;
use crate::aws::time::parse_iso8601;
use crate::lambda::config::ImdsVersion;
use crate::upstream::fetch::{fetch, FetchRequest, Fetched as Answer};
use std::path::Path;
use std::time::Duration;

/// How long one metadata call may take (the SDKs use 1 s for IMDS, more for containers).
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// See [`IMDS_TIMEOUT`].
pub const CONTAINER_TIMEOUT: Duration = Duration::from_secs(5);
/// Lifetime asked for an IMDSv2 session token (the SDKs' six hours).
const TOKEN_TTL: &str = "21600";
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// The JSON document both endpoints return.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

/// The credentials in an IMDS or container endpoint answer.
pub fn parse_document(body: &[u8]) -> Result<Fetched, String> {
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| format!("not a credentials document: {e}"))?;
    if let Some(code) = doc.code.as_deref().filter(|c| *c != "Success") {
        return Err(format!(
            "{code}: {}",
            doc.message.as_deref().unwrap_or("(no message)")
        ));
    }
    let (Some(key), Some(secret)) = (doc.access_key_id, doc.secret_access_key) else {
        return Err("no AccessKeyId/SecretAccessKey in the credentials document".into());
    };
    if key.is_empty() || secret.is_empty() {
        return Err("an empty AccessKeyId or SecretAccessKey in the credentials document".into());
    }
    let expires = match doc.expiration {
        Some(e) => Some(
            parse_iso8601(&e).ok_or_else(|| format!("Expiration {e:?} is not an ISO 8601 time"))?,
        ),
        None => None,
    };
    Ok(Fetched {
        credentials: Credentials {
            access_key_id: key,
            secret_access_key: Secret(secret),
            session_token: doc.token.map(Secret),
        },
        expires,
    })
}

async fn call(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    req: FetchRequest<'_>,
    limit: Duration,
) -> Result<Answer, String> {
    let answer = fetch(tls, endpoint, &req, limit)
        .await
        .map_err(|e| format!("{} {}: {e}", req.method, req.path))?;
    if answer.status != 200 {
        return Err(format!(
            "{} {} answered {}: {}",
            req.method,
            req.path,
            answer.status,
            answer.body_excerpt()
        ));
    }
    Ok(answer)
}

/// An IMDSv2 session token (v2), or none (v1).
async fn imds_token(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    version: ImdsVersion,
) -> Result<Option<String>, String> {
    if version == ImdsVersion::V1 {
        return Ok(None);
    }
    let req = FetchRequest {
        method: "PUT",
        path: "/latest/api/token",
        headers: &[("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL)],
        body: b"",
    };
    let answer = call(tls, endpoint, req, IMDS_TIMEOUT).await?;
    let token = String::from_utf8_lossy(&answer.body).trim().to_string();
    if token.is_empty() {
        return Err("the IMDSv2 token answer is empty".into());
    }
    Ok(Some(token))
}

/// `GET path`, with one header when `header` is given.
async fn get(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    path: &str,
    header: Option<(&str, &str)>,
    limit: Duration,
) -> Result<Answer, String> {
    let one;
    let headers: &[(&str, &str)] = match header {
        Some(h) => {
            one = [h];
            &one
        }
        None => &[],
    };
    let req = FetchRequest {
        method: "GET",
        path,
        headers,
        body: b"",
    };
    call(tls, endpoint, req, limit).await
}

async fn imds_get(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    token: Option<&str>,
    path: &str,
) -> Result<Answer, String> {
    let header = token.map(|t| ("X-aws-ec2-metadata-token", t));
    get(tls, endpoint, path, header, IMDS_TIMEOUT).await
}

/// The instance profile's credentials: (token,) role name, then the role's credentials.
pub async fn instance_credentials(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    version: ImdsVersion,
) -> Result<Fetched, String> {
    let token = imds_token(tls, endpoint, version).await?;
    let roles = imds_get(tls, endpoint, token.as_deref(), CREDENTIALS_PATH).await?;
    let roles = String::from_utf8_lossy(&roles.body);
    let role = roles
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("the instance has no IAM role (instance profile)")?;
    if !role
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        return Err(format!("unexpected role name {role:?}"));
    }
    let path = format!("{CREDENTIALS_PATH}{role}");
    let doc = imds_get(tls, endpoint, token.as_deref(), &path).await?;
    parse_document(&doc.body)
}

/// The instance's region (`placement/region`), for when no other place names one.
pub async fn instance_region(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    version: ImdsVersion,
) -> Result<String, String> {
    let token = imds_token(tls, endpoint, version).await?;
    let answer = imds_get(
        tls,
        endpoint,
        token.as_deref(),
        "/latest/meta-data/placement/region",
    )
    .await?;
    Ok(String::from_utf8_lossy(&answer.body).trim().to_string())
}

/// The region of the instance, when the credential chain ends at the instance metadata
/// service and it answers within [`IMDS_TIMEOUT`]s. Blocks (start-up only).
pub fn region_of_instance(
    chain: Option<&super::Provider>,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Option<String> {
    let Some(super::Provider::InstanceMetadata { endpoint, version }) = chain else {
        return None;
    };
    let mut runtime = crate::reactor::build_runtime().ok()?;
    let connector = monoio_rustls::TlsConnector::from(tls);
    match runtime.block_on(instance_region(&connector, endpoint, *version)) {
        Ok(region) if crate::lambda::config::is_region(&region) => {
            log::info!("region {region} from the instance metadata service");
            Some(region)
        }
        Ok(other) => {
            log::warn!("the instance metadata service gave no usable region ({other:?})");
            None
        }
        Err(why) => {
            log::debug!("no region from the instance metadata service: {why}");
            None
        }
    }
}

/// The container's credentials, with its authorization token when one is configured.
pub async fn container_credentials(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    path: &str,
    token: Option<&Secret>,
    token_file: Option<&Path>,
) -> Result<Fetched, String> {
    let from_file;
    let token = match token_file {
        Some(file) => {
            from_file = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            Some(from_file.trim())
        }
        None => token.map(|t| t.0.as_str()),
    };
    if token.is_some_and(|t| t.contains(['\r', '\n'])) {
        return Err("the container authorization token has a line break inside".into());
    }
    let header = token.map(|t| ("Authorization", t));
    let answer = get(tls, endpoint, path, header, CONTAINER_TIMEOUT).await?;
    parse_document(&answer.body)
}

/// Whether a `AWS_CONTAINER_CREDENTIALS_FULL_URI` host may be reached over plain HTTP: the
/// SDKs allow it only for loopback and the ECS/EKS link-local agents.
pub fn plain_http_allowed(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => true,
        Ok(ip) => ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"]
            .iter()
            .any(|a| a.parse::<std::net::IpAddr>().ok() == Some(ip)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_credentials_document() {
        let ok = br#"{"Code":"Success","LastUpdated":"2026-11-29T20:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"s/e+c=","Token":"tok","Expiration":"2026-11-30T02:00:00Z"}"#;
        let f = parse_document(ok).expect("parsed");
        assert_eq!(f.credentials.access_key_id, "ASIAIMDS");
        assert_eq!(f.credentials.secret_access_key.0, "s/e+c=");
        assert_eq!(f.expires, parse_iso8601("2026-11-30T02:00:00Z"));
        // The container endpoint has no Code.
        let container = br#"{"RoleArn":"arn:aws:iam::1:role/task","AccessKeyId":"ASIAECS","SecretAccessKey":"x","Token":"t","Expiration":"2026-11-30T02:00:00Z"}"#;
        assert_eq!(
            parse_document(container)
                .expect("parsed")
                .credentials
                .access_key_id,
            "ASIAECS"
        );
        let failed =
            br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"EC2 cannot assume the role"}"#;
        assert_eq!(
            parse_document(failed).err().as_deref(),
            Some("AssumeRoleUnauthorizedAccess: EC2 cannot assume the role")
        );
        assert!(parse_document(b"<html>").is_err());
        assert!(parse_document(br#"{"AccessKeyId":"A"}"#).is_err());
        assert!(parse_document(br#"{"AccessKeyId":"","SecretAccessKey":"s"}"#).is_err());
    }

    #[test]
    fn plain_http_only_to_the_agents_and_loopback() {
        for ok in [
            "127.0.0.1",
            "::1",
            "localhost",
            "169.254.170.2",
            "169.254.170.23",
            "fd00:ec2::23",
        ] {
            assert!(plain_http_allowed(ok), "{ok}");
        }
        for no in ["10.0.0.1", "example.com", "169.254.169.254"] {
            assert!(!plain_http_allowed(no), "{no}");
        }
    }
}
