//! The default credential chain, in the AWS SDKs' order, for plugins without their own keys:
//!
//! 1. environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 2. shared files: the profile's keys, role (`role_arn` + `source_profile` or
//!    `credential_source`), web identity token file, or `credential_process`;
//! 3. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`);
//! 4. container: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `…_FULL_URI`, with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `…_TOKEN`;
//! 5. instance metadata, unless `AWS_EC2_METADATA_DISABLED=true`.
//!
//! The first step the environment configures is the chain's answer; deciding needs no network.

use super::{sts, Provider, StsEndpoint};
use crate::aws::credentials::{self, Secret};
use crate::aws::endpoint::{parse_endpoint_url, Endpoint};
use crate::aws::profile::{ProfileCredentials, RoleSource};
use crate::lambda::config::ImdsVersion;
use std::path::PathBuf;

/// The session name used when nothing names one (the SDKs make one up per process; a fixed
/// one keeps CloudTrail entries of the gateway recognisable).
pub const DEFAULT_SESSION_NAME: &str = "lambda-gateway";

/// A variable (or place) and what is wrong with it.
pub type ChainError = (&'static str, String);

/// The provider the environment configures, if any. `profile` is what the shared files say;
/// `region` is the region the environment or profile gives (for STS's regional endpoint).
pub fn resolve(
    get: &dyn Fn(&str) -> Option<String>,
    profile: Option<ProfileCredentials>,
    region: Option<&str>,
) -> Result<Option<Provider>, ChainError> {
    let set = |var: &str| get(var).filter(|v| !v.is_empty());
    if let Some(c) = credentials::from_env(get) {
        return Ok(Some(Provider::Static(c)));
    }
    if let Some(p) = profile {
        return from_profile(get, p, region).map(Some);
    }
    if let Some(token_file) = set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let role_arn = set("AWS_ROLE_ARN").ok_or((
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE is set, but not the role to assume with it".to_string(),
        ))?;
        return Ok(Some(Provider::WebIdentity {
            role_arn,
            session_name: set("AWS_ROLE_SESSION_NAME")
                .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
            token_file: PathBuf::from(token_file),
            sts: sts_endpoint(get, region)?,
        }));
    }
    if let Some(container) = container(get)? {
        return Ok(Some(container));
    }
    instance_metadata(get)
}

fn sts_endpoint(
    get: &dyn Fn(&str) -> Option<String>,
    region: Option<&str>,
) -> Result<StsEndpoint, ChainError> {
    sts::endpoint_for(get, region)
}

fn from_profile(
    get: &dyn Fn(&str) -> Option<String>,
    p: ProfileCredentials,
    region: Option<&str>,
) -> Result<Provider, ChainError> {
    Ok(match p {
        ProfileCredentials::Static(c) => Provider::Static(c),
        ProfileCredentials::Process(command) => Provider::Process { command },
        ProfileCredentials::WebIdentity {
            role_arn,
            token_file,
            session_name,
        } => Provider::WebIdentity {
            role_arn,
            session_name: session_name.unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
            token_file: PathBuf::from(token_file),
            sts: sts_endpoint(get, region)?,
        },
        ProfileCredentials::AssumeRole {
            role_arn,
            session_name,
            external_id,
            source,
        } => {
            let base = match source {
                RoleSource::Profile(p) => from_profile(get, *p, region)?,
                RoleSource::Environment => Provider::Static(credentials::from_env(get).ok_or((
                    "AWS shared config",
                    "the profile's credential_source is Environment, but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set".to_string(),
                ))?),
                RoleSource::EcsContainer => container(get)?.ok_or((
                    "AWS shared config",
                    "the profile's credential_source is EcsContainer, but neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI is set".to_string(),
                ))?,
                RoleSource::Ec2InstanceMetadata => instance_metadata(get)?.ok_or((
                    "AWS shared config",
                    "the profile's credential_source is Ec2InstanceMetadata, but AWS_EC2_METADATA_DISABLED is true".to_string(),
                ))?,
            };
            Provider::AssumeRole {
                base: Box::new(base),
                role_arn,
                session_name: session_name.unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
                external_id,
                sts: sts_endpoint(get, region)?,
            }
        }
    })
}

/// The container credentials provider, when its variables are set.
fn container(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Provider>, ChainError> {
    let set = |var: &str| get(var).filter(|v| !v.is_empty());
    let (endpoint, path) = if let Some(relative) = set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        if !relative.starts_with('/') {
            return Err((
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                format!("expected a path starting with '/', got {relative:?}"),
            ));
        }
        let agent = Endpoint {
            tls: false,
            host: "169.254.170.2".into(),
            port: 80,
            path_prefix: String::new(),
            proxy: None,
        };
        (agent, relative)
    } else if let Some(full) = set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        const VAR: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
        // The path is what follows the authority; the endpoint parser would take it as a prefix.
        let after_scheme = full.split_once("://").map_or(0, |(s, _)| s.len() + 3);
        let path_at = full[after_scheme..]
            .find('/')
            .map_or(full.len(), |i| i + after_scheme);
        let mut endpoint = parse_endpoint_url(&full[..path_at]).map_err(|why| (VAR, why))?;
        endpoint.path_prefix.clear();
        if !endpoint.tls && !super::metadata::plain_http_allowed(&endpoint.host) {
            return Err((
                VAR,
                format!(
                    "plain http is allowed only to loopback and the ECS/EKS agents (169.254.170.2, 169.254.170.23, fd00:ec2::23), not {}",
                    endpoint.host
                ),
            ));
        }
        let path = match &full[path_at..] {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        (endpoint, path)
    } else {
        return Ok(None);
    };
    Ok(Some(Provider::Container {
        endpoint,
        path,
        token: set("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Secret),
        token_file: set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from),
    }))
}

/// The instance metadata provider, unless disabled.
fn instance_metadata(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Provider>, ChainError> {
    let set = |var: &str| get(var).filter(|v| !v.is_empty());
    if set("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let endpoint = match set("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
        Some(url) => {
            let mut e = parse_endpoint_url(&url)
                .map_err(|why| ("AWS_EC2_METADATA_SERVICE_ENDPOINT", why))?;
            e.path_prefix.clear();
            e
        }
        None => {
            let ipv6 = set("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
                .is_some_and(|m| m.eq_ignore_ascii_case("ipv6"));
            Endpoint {
                tls: false,
                host: if ipv6 {
                    "fd00:ec2::254"
                } else {
                    "169.254.169.254"
                }
                .into(),
                port: 80,
                path_prefix: String::new(),
                proxy: None,
            }
        }
    };
    Ok(Some(Provider::InstanceMetadata {
        endpoint,
        version: ImdsVersion::V2,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn chain(vars: &[(&str, &str)]) -> Result<Option<Provider>, ChainError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(&|k| vars.get(k).cloned(), None, Some("eu-west-1"))
    }

    fn kind(p: &Provider) -> &'static str {
        match p {
            Provider::Static(_) => "static",
            Provider::WebIdentity { .. } => "web identity",
            Provider::Container { .. } => "container",
            Provider::InstanceMetadata { .. } => "imds",
            Provider::Process { .. } => "process",
            Provider::AssumeRole { .. } => "assume role",
        }
    }

    #[test]
    fn the_first_configured_step_wins_in_the_sdks_order() {
        let all = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
        ];
        let order = ["static", "web identity", "container", "imds"];
        for (skip, want) in [(0, order[0]), (2, order[1]), (4, order[2]), (5, order[3])] {
            let got = chain(&all[skip..]).expect("ok").expect("some");
            assert_eq!(kind(&got), want, "{got:?}");
        }
        assert_eq!(chain(&[("AWS_EC2_METADATA_DISABLED", "true")]), Ok(None));
    }

    #[test]
    fn reads_each_steps_variables() {
        let Some(Provider::WebIdentity {
            session_name, sts, ..
        }) = chain(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_ROLE_SESSION_NAME", "pod-1"),
        ])
        .expect("ok")
        else {
            panic!("web identity")
        };
        assert_eq!(session_name, "pod-1");
        assert_eq!(sts.endpoint.host, "sts.eu-west-1.amazonaws.com");
        assert!(chain(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")])
            .is_err_and(|(var, _)| var == "AWS_ROLE_ARN"));

        let Some(Provider::Container {
            endpoint,
            path,
            token,
            ..
        }) = chain(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:51679/creds?id=1",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic abc"),
        ])
        .expect("ok")
        else {
            panic!("container")
        };
        assert_eq!((endpoint.port, path.as_str()), (51679, "/creds?id=1"));
        assert_eq!(token, Some(Secret("Basic abc".into())));
        let Some(Provider::Container { endpoint, .. }) = chain(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )])
        .expect("ok") else {
            panic!("container")
        };
        assert_eq!(endpoint.host_header(), "169.254.170.2");
        assert!(chain(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://10.1.2.3/creds"
        )])
        .is_err_and(|(_, why)| why.contains("loopback")));
        assert!(chain(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "https://creds.internal/x"
        )])
        .is_ok_and(|p| p.is_some()));

        let Some(Provider::InstanceMetadata { endpoint, version }) = chain(&[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://127.0.0.1:1338/",
        )])
        .expect("ok") else {
            panic!("imds")
        };
        assert_eq!(
            (endpoint.host_header().as_str(), version),
            ("127.0.0.1:1338", ImdsVersion::V2)
        );
        let Some(Provider::InstanceMetadata { endpoint, .. }) =
            chain(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")]).expect("ok")
        else {
            panic!("imds")
        };
        assert_eq!(endpoint.host_header(), "[fd00:ec2::254]");
    }

    #[test]
    fn profile_roles_start_from_their_source() {
        let get = |k: &str| match k {
            "AWS_EC2_METADATA_DISABLED" => Some("true".to_string()),
            _ => None,
        };
        let role = |source| ProfileCredentials::AssumeRole {
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: None,
            external_id: Some("x".into()),
            source,
        };
        assert!(
            resolve(&get, Some(role(RoleSource::Ec2InstanceMetadata)), None)
                .is_err_and(|(_, why)| why.contains("AWS_EC2_METADATA_DISABLED"))
        );
        assert!(resolve(&get, Some(role(RoleSource::Environment)), None)
            .is_err_and(|(_, why)| why.contains("AWS_ACCESS_KEY_ID")));
        let keys = crate::aws::credentials::Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: Secret("s".into()),
            session_token: None,
        };
        let Ok(Some(Provider::AssumeRole {
            base,
            session_name,
            sts,
            ..
        })) = resolve(
            &get,
            Some(role(RoleSource::Profile(Box::new(
                ProfileCredentials::Static(keys.clone()),
            )))),
            None,
        )
        else {
            panic!("assume role")
        };
        assert_eq!(*base, Provider::Static(keys));
        assert_eq!(session_name, DEFAULT_SESSION_NAME);
        assert_eq!(sts.endpoint.host, "sts.amazonaws.com");
    }
}
