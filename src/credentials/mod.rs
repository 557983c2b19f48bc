//! Where the credentials that sign invokes come from, and how they stay fresh.
//!
//! A plugin's credentials are a [`Provider`]: its own static keys, or the default chain the AWS
//! SDKs follow (environment, shared files, web identity, container, instance metadata), possibly
//! wrapped in an STS `AssumeRole` (`aws_assume_role_arn`). Static keys are used as they are.
//! Every other provider is a [`Published`] value (defined beside the credentials in
//! `aws::credentials`, where the invoke client reads it): a control thread per provider fetches
//! credentials before first use and again ahead of expiry, and publishes them with an atomic
//! swap, as the config snapshot is published; workers only load them ([`CredentialSource`]).
//! Providers are shared by every plugin that resolves to the same one ([`Hub`]).

pub mod chain;
pub mod metadata;
pub mod process;
pub mod refresh;
pub mod sts;

use crate::aws::credentials::{Credentials, Secret};
use crate::aws::endpoint::Endpoint;
use crate::lambda::config::ImdsVersion;
use std::fmt;
use std::path::PathBuf;

pub use crate::aws::credentials::{CredentialSource, Published};

pub use refresh::Hub;

/// An STS endpoint and the region its requests are signed for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StsEndpoint {
    /// Where to send STS calls.
    pub endpoint: Endpoint,
    /// The signing region.
    pub region: String,
}

/// How to get one set of credentials.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Keys known up front: the plugin's, the environment's, a profile's.
    Static(Credentials),
    /// STS `AssumeRoleWithWebIdentity` with the token in a file (EKS IRSA and the like).
    WebIdentity {
        /// The role.
        role_arn: String,
        /// The session name.
        session_name: String,
        /// File holding the token, read on every fetch (it is rotated).
        token_file: PathBuf,
        /// Where to call.
        sts: StsEndpoint,
    },
    /// The ECS/EKS container credentials endpoint.
    Container {
        /// The endpoint (`http://169.254.170.2` for a relative URI).
        endpoint: Endpoint,
        /// Path and query.
        path: String,
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
        token: Option<Secret>,
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read on every fetch (wins over `token`).
        token_file: Option<PathBuf>,
    },
    /// The EC2 instance metadata service.
    InstanceMetadata {
        /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254`.
        endpoint: Endpoint,
        /// IMDSv2 (a session token first) or v1.
        version: ImdsVersion,
    },
    /// A profile's `credential_process`.
    Process {
        /// The command line, run by `sh -c`.
        command: String,
    },
    /// STS `AssumeRole`, signed with the credentials of `base`.
    AssumeRole {
        /// Where the calling credentials come from.
        base: Box<Provider>,
        /// The role.
        role_arn: String,
        /// The session name.
        session_name: String,
        /// The external id the role's trust policy may require.
        external_id: Option<String>,
        /// Where to call.
        sts: StsEndpoint,
    },
}

impl Provider {
    /// This provider with its instance-metadata step (if any) speaking `version`.
    pub fn with_imds_version(self, version: ImdsVersion) -> Provider {
        match self {
            Provider::InstanceMetadata { endpoint, .. } => {
                Provider::InstanceMetadata { endpoint, version }
            }
            Provider::AssumeRole {
                base,
                role_arn,
                session_name,
                external_id,
                sts,
            } => Provider::AssumeRole {
                base: Box::new(base.with_imds_version(version)),
                role_arn,
                session_name,
                external_id,
                sts,
            },
            other => other,
        }
    }
}

impl Provider {
    /// How the provider is named where it serves a plugin directly: instance metadata there is
    /// where the chain ended, so the name says what the chain looked for before it.
    pub fn describe_in_chain(&self) -> String {
        match self {
            Provider::InstanceMetadata { .. } => format!(
                "{self}, the end of the chain (nothing configured in the environment, the shared \
                 files, web identity or container credentials)"
            ),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provider::Static(c) => write!(f, "static keys ({})", c.access_key_id),
            Provider::WebIdentity {
                role_arn,
                token_file,
                ..
            } => write!(
                f,
                "web identity (role {role_arn}, token file {})",
                token_file.display()
            ),
            Provider::Container { endpoint, path, .. } => write!(
                f,
                "container credentials ({}://{}{path})",
                if endpoint.tls { "https" } else { "http" },
                endpoint.host_header()
            ),
            Provider::InstanceMetadata { endpoint, version } => write!(
                f,
                "instance metadata (IMDS{} at {})",
                match version {
                    ImdsVersion::V1 => "v1",
                    ImdsVersion::V2 => "v2",
                },
                endpoint.host_header()
            ),
            Provider::Process { .. } => f.write_str("credential_process"),
            Provider::AssumeRole {
                base,
                role_arn,
                session_name,
                ..
            } => write!(
                f,
                "AssumeRole {role_arn} (session {session_name}) with {base}"
            ),
        }
    }
}

pub use crate::aws::credentials::Fetched;
