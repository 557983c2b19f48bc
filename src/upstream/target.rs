//! What one route invokes: made once per configuration from a validated plugin, holding only
//! what a usable invoke needs (so there is nothing left to check per request).

use crate::aws::credentials::CredentialSource;
use crate::aws::endpoint::Endpoint;
use crate::aws::sigv4::InvokeTemplate;
use crate::lambda::config::LambdaConfig;
use std::sync::Arc;

/// A function to invoke, ready: its endpoint, credentials, request path and the fixed parts
/// of its signature.
#[derive(Debug)]
pub struct InvokeTarget {
    /// The plugin entity's id.
    pub plugin_id: String,
    /// The route it serves (name, else id), for logs.
    pub route_label: String,
    /// The validated plugin config.
    pub config: Arc<LambdaConfig>,
    /// Credentials to sign with.
    pub credentials: CredentialSource,
    /// Where to send invokes.
    pub endpoint: Endpoint,
    /// Path and query of the invoke request, endpoint prefix included.
    pub path: String,
    /// The fixed parts of the signature (derived from `path`, the endpoint and the region).
    pub template: InvokeTemplate,
}

impl InvokeTarget {
    /// The target for `config` with `region` and `credentials`, at `endpoint`.
    pub fn new(
        plugin_id: String,
        route_label: String,
        config: Arc<LambdaConfig>,
        region: String,
        credentials: CredentialSource,
        endpoint: Endpoint,
    ) -> Self {
        let path = format!("{}{}", endpoint.path_prefix, config.invoke_path());
        let template = InvokeTemplate::new(
            &path,
            endpoint.host_header(),
            region,
            config.invocation_type.as_str(),
            config.log_type.as_str(),
        );
        InvokeTarget {
            plugin_id,
            route_label,
            config,
            credentials,
            endpoint,
            path,
            template,
        }
    }
}
