//! Access-phase plugins: each looks at a routed request before the function is invoked and
//! either lets it through or answers it itself, in Kong's plugin priority order (a request
//! one of them answers never reaches Lambda). Some also add headers to whatever answer the
//! request ends with (CORS).

pub mod acl;
pub mod cidr;
pub mod correlation_id;
pub mod cors;
pub mod edits;
pub mod ip_restriction;
pub mod jwt;
pub mod key_auth;
pub mod rate_limit;
pub mod redis_exact;
pub mod redis_link;
pub mod redis_sync;
pub mod size_limit;

use crate::http::encode::Response;
use crate::http::request::Request;
pub use edits::RequestEdits;
use std::sync::Arc;

/// A consumer as the auth plugins tell the function about it.
#[derive(Clone, Debug)]
pub struct ConsumerInfo {
    /// Its place in the configuration's consumers.
    pub index: usize,
    /// Its id.
    pub id: String,
    /// `username`.
    pub username: Option<String>,
    /// `custom_id`.
    pub custom_id: Option<String>,
}

/// Who the configuration knows: consumers and their credentials.
pub trait Identities {
    /// The key-auth credential with this key: its id and its consumer.
    fn key_auth(&self, key: &[u8]) -> Option<(&str, &ConsumerInfo)>;
    /// The jwt credential with this `key` and its consumer.
    fn jwt(&self, key: &str) -> Option<(&jwt::JwtCredential, &ConsumerInfo)>;
    /// The consumer with this id or username (`anonymous`).
    fn consumer(&self, id_or_username: &str) -> Option<&ConsumerInfo>;
    /// The consumer's ACL groups.
    fn groups(&self, consumer: &ConsumerInfo) -> &[String];
}

/// What the plugins of one request share: who is calling (once an auth plugin said), and
/// the changes to the request the function will see.
pub struct AccessContext<'a, 'e> {
    /// The configuration's consumers and credentials.
    pub identities: &'a dyn Identities,
    /// The consumer an auth plugin identified (or the anonymous one).
    pub consumer: Option<&'a ConsumerInfo>,
    /// Whether a credential (not `anonymous`) identified it.
    pub authenticated: bool,
    /// The id of that credential.
    pub credential: Option<&'a str>,
    /// Headers and query arguments to set or remove before invoking.
    pub edits: &'e mut RequestEdits,
    /// The id of the matched route's service, if it has one.
    pub service: Option<&'a str>,
    /// The claims of the token that identified the caller (jwt), for API Gateway events.
    pub jwt_claims: Option<serde_json::Map<String, serde_json::Value>>,
}

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
    /// `key-auth`.
    KeyAuth(Arc<key_auth::KeyAuthConfig>),
    /// `jwt`.
    Jwt(Arc<jwt::JwtConfig>),
    /// `correlation-id`.
    CorrelationId(Arc<correlation_id::CorrelationIdConfig>),
    /// `rate-limiting`.
    RateLimiting(Arc<rate_limit::RateLimitConfig>),
    /// `acl`.
    Acl(Arc<acl::AclConfig>),
}

impl AccessPlugin {
    /// Kong's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            AccessPlugin::Cors(_) => "cors",
            AccessPlugin::IpRestriction(_) => "ip-restriction",
            AccessPlugin::RequestSizeLimiting(_) => "request-size-limiting",
            AccessPlugin::KeyAuth(_) => "key-auth",
            AccessPlugin::Jwt(_) => "jwt",
            AccessPlugin::CorrelationId(_) => "correlation-id",
            AccessPlugin::RateLimiting(_) => "rate-limiting",
            AccessPlugin::Acl(_) => "acl",
        }
    }

    /// Runs the plugin on `req`; an answer goes to `resp`. Only rate-limiting's exact Redis
    /// counting waits (on another thread's answer, not on the worker).
    pub async fn access<'a>(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'a, '_>,
        resp: &mut Response,
    ) -> Verdict {
        match self {
            AccessPlugin::Cors(c) => cors::access(c, req, resp),
            AccessPlugin::IpRestriction(c) => ip_restriction::access(c, req, resp),
            AccessPlugin::RequestSizeLimiting(c) => size_limit::access(c, req, resp),
            AccessPlugin::KeyAuth(c) => key_auth::access(c, req, ctx, resp),
            AccessPlugin::Jwt(c) => jwt::access(c, req, ctx, resp),
            AccessPlugin::CorrelationId(c) => correlation_id::access(c, req, ctx),
            AccessPlugin::RateLimiting(c) => rate_limit::access(c, req, ctx, resp).await,
            AccessPlugin::Acl(c) => acl::access(c, ctx, resp),
        }
    }

    /// Adds the plugin's headers to the answer the request ended with (a CORS preflight's
    /// own answer excepted); `edits` are the changes the plugins made to the request.
    pub fn finish(&self, req: &Request<'_>, edits: &RequestEdits, resp: &mut Response) {
        match self {
            AccessPlugin::Cors(c) => cors::finish(c, req, resp),
            AccessPlugin::CorrelationId(c) => correlation_id::finish(c, req, edits, resp),
            _ => {}
        }
    }
}
