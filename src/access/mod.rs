//! Access-phase plugins: each looks at a routed request before the function is invoked and
//! either lets it through or answers it itself, in Kong's plugin priority order (a request
//! one of them answers never reaches Lambda). Some also add headers to whatever answer the
//! request ends with (CORS).

pub mod cidr;
pub mod cors;
pub mod ip_restriction;
pub mod size_limit;

use crate::http::encode::Response;
use crate::http::request::Request;
use std::sync::Arc;

/// What a plugin decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to the next plugin, then the function.
    Continue,
    /// The plugin answered: `resp` holds its answer.
    Answered,
}

/// One configured access-phase plugin.
#[derive(Clone, Debug)]
pub enum AccessPlugin {
    /// `cors`.
    Cors(Arc<cors::CorsConfig>),
    /// `ip-restriction`.
    IpRestriction(Arc<ip_restriction::IpRestrictionConfig>),
    /// `request-size-limiting`.
    RequestSizeLimiting(Arc<size_limit::SizeLimitConfig>),
}

impl AccessPlugin {
    /// Kong's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            AccessPlugin::Cors(_) => "cors",
            AccessPlugin::IpRestriction(_) => "ip-restriction",
            AccessPlugin::RequestSizeLimiting(_) => "request-size-limiting",
        }
    }

    /// Runs the plugin on `req`; an answer goes to `resp`.
    pub fn access(&self, req: &Request<'_>, resp: &mut Response) -> Verdict {
        match self {
            AccessPlugin::Cors(c) => cors::access(c, req, resp),
            AccessPlugin::IpRestriction(c) => ip_restriction::access(c, req, resp),
            AccessPlugin::RequestSizeLimiting(c) => size_limit::access(c, req, resp),
        }
    }

    /// Adds the plugin's headers to the answer the request ended with (not to one it made
    /// itself).
    pub fn finish(&self, req: &Request<'_>, resp: &mut Response) {
        if let AccessPlugin::Cors(c) = self {
            cors::finish(c, req, resp);
        }
    }
}
