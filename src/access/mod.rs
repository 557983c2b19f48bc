//! Access-phase plugins: each looks at a routed request before the function is invoked and
//! either lets it through or answers it itself, in Kong's plugin priority order (a request
//! one of them answers never reaches Lambda). Some also add headers to whatever answer the
//! request ends with (CORS): their response phase.
//!
//! A plugin is one file: its fields declared once ([`settings!`](crate::settings)), and a type
//! implementing [`Plugin`] with the phases it uses. The registry at the end of this file, one
//! line a plugin, makes the rest: the [`AccessPlugin`] a route's plan holds, its dispatch to the
//! phases, and [`SPECS`], what the configuration's validator knows of each.

pub mod cidr;
pub mod counters;
pub mod edits;
pub mod entries;
pub mod json_object;
pub mod redis_exact;
pub mod redis_link;
pub mod redis_sync;
pub mod template;
#[cfg(test)]
pub mod testing;

use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::Schema;
pub use edits::RequestEdits;
use serde_json::{Map, Value};
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

/// Which capture of the matched route's regex path: by name, or by number (1 is the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureKey<'k> {
    /// A named group.
    Name(&'k str),
    /// A group by its 1-based number.
    Number(usize),
}

/// Kong's `uri_captures`: a capture of the matched route's regex path (none for a route
/// matched by a prefix).
pub type UriCaptures<'a> = &'a dyn Fn(CaptureKey<'_>) -> Option<&'a [u8]>;

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
    /// The id of the matched route.
    pub route: Option<&'a str>,
    /// The claims of the token that identified the caller (jwt), for API Gateway events.
    pub jwt_claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The matched route's regex captures.
    pub uri_captures: UriCaptures<'a>,
    /// When the request arrived (its head read).
    pub arrived: std::time::Instant,
    /// When the access phase began, noted only on a route with `opentelemetry`.
    pub access_started: Option<std::time::Instant>,
    /// The request's trace, once `opentelemetry` began it (boxed: an async phase's state
    /// stays small for the requests without one).
    pub trace: Option<Box<crate::telemetry::ActiveTrace>>,
}

/// What a plugin decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to the next plugin, then the function.
    Continue,
    /// The plugin answered: `resp` holds its answer (a refusal, a preflight, a termination).
    Answered,
    /// The plugin could not decide (its Redis unreachable, its anonymous consumer missing):
    /// why. The proxy answers Kong's 500 and logs and counts it as the gateway's error.
    Failed(String),
}

/// A plugin that runs before the function: Kong's handler, with the phases it uses.
// A worker is one thread: no phase's future crosses threads, so none needs to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Plugin: std::fmt::Debug + Send + Sync + Sized + 'static {
    /// Kong's name (`key-auth`).
    const NAME: &'static str;
    /// Kong's `PRIORITY`: plugins run from the highest down.
    const PRIORITY: u32;

    /// Its config's fields (from its `settings!` declaration).
    fn schema() -> &'static Schema;

    /// The plugin, from its config `obj` (already checked against [`Plugin::schema`]); what
    /// the schema cannot say is checked here, errors to `c`. `id` is the plugin entity's: what
    /// the plugin keeps across requests (rate-limiting's counters) is its own.
    fn build(c: &mut Checker, obj: &Map<String, Value>, id: &str) -> Option<Self>;

    /// The access phase: let the request through, or answer it into `resp`.
    async fn access(
        &self,
        _req: &Request<'_>,
        _ctx: &mut AccessContext<'_, '_>,
        _resp: &mut Response,
    ) -> Verdict {
        Verdict::Continue
    }

    /// The response phase, once the request has an answer (the function's, or a plugin's):
    /// headers to add to it. `edits` are the changes the plugins made to the request.
    fn response(&self, _req: &Request<'_>, _edits: &RequestEdits, _resp: &mut Response) {}

    /// The body phase, after every plugin's response phase, on an answer held whole (a
    /// streamed answer's body is sent as it comes and passes untouched): may rewrite it, or
    /// keep it (with what the access phase kept in `edits`).
    fn response_body(&self, _edits: &mut RequestEdits, _resp: &mut Response) {}
}

/// A header name a plugin's field names (a key's, a trigger's): a non-empty token.
pub fn check_header_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(crate::http::encode::is_token) {
        Ok(())
    } else {
        Err(format!("bad header name {name:?}"))
    }
}

/// A plugin from its `config` value: checked against the plugin's schema, then built (see
/// [`Plugin::build`]); `None`, with the errors in `c`, when anything is wrong.
pub fn configure<P: Plugin>(c: &mut Checker, value: &Value, id: &str) -> Option<P> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    P::schema().check(c, obj);
    let plugin = P::build(c, obj, id);
    plugin.filter(|_| c.errors.len() == before)
}

/// What the configuration's validator knows of an access plugin.
pub struct AccessSpec {
    /// Kong's name.
    pub name: &'static str,
    /// Kong's priority.
    pub priority: u32,
    /// Its config's fields.
    pub schema: fn() -> &'static Schema,
    /// The plugin from its `config` value (see [`configure`]); the plugin entity's id.
    pub configure: fn(&mut Checker, &Value, &str) -> Option<AccessPlugin>,
}

/// Declares the access plugins, one `module::Type` line each (the module is this folder's
/// file): their modules, the [`AccessPlugin`] enum, its dispatch and [`SPECS`].
macro_rules! access_plugins {
    ( $( $(#[$meta:meta])* $module:ident :: $plugin:ident ),* $(,)? ) => {
        $( $(#[$meta])* pub mod $module; )*

        /// One configured access plugin.
        #[derive(Clone, Debug)]
        pub enum AccessPlugin {
            $( #[doc = concat!("`", stringify!($module), "`.")] $plugin(Arc<$module::$plugin>), )*
        }

        impl AccessPlugin {
            /// Kong's name for it.
            pub fn name(&self) -> &'static str {
                match self {
                    $( AccessPlugin::$plugin(_) => <$module::$plugin as Plugin>::NAME, )*
                }
            }

            /// Runs its access phase on `req`; an answer goes to `resp`. Only rate-limiting's
            /// exact Redis counting waits (on another thread's answer, not on the worker).
            pub async fn access(
                &self,
                req: &Request<'_>,
                ctx: &mut AccessContext<'_, '_>,
                resp: &mut Response,
            ) -> Verdict {
                match self {
                    $( AccessPlugin::$plugin(p) => p.access(req, ctx, resp).await, )*
                }
            }

            /// Runs its response phase on the answer the request ended with (a CORS
            /// preflight's own answer excepted).
            pub fn finish(&self, req: &Request<'_>, edits: &RequestEdits, resp: &mut Response) {
                match self {
                    $( AccessPlugin::$plugin(p) => p.response(req, edits, resp), )*
                }
            }

            /// Runs its body phase on an answer held whole.
            pub fn finish_body(&self, edits: &mut RequestEdits, resp: &mut Response) {
                match self {
                    $( AccessPlugin::$plugin(p) => p.response_body(edits, resp), )*
                }
            }
        }

        /// Every access plugin, as listed.
        pub static SPECS: &[AccessSpec] = &[
            $( AccessSpec {
                name: <$module::$plugin as Plugin>::NAME,
                priority: <$module::$plugin as Plugin>::PRIORITY,
                schema: <$module::$plugin as Plugin>::schema,
                configure: |c, value, id| {
                    configure::<$module::$plugin>(c, value, id)
                        .map(|p| AccessPlugin::$plugin(Arc::new(p)))
                },
            }, )*
        ];
    };
}

access_plugins! {
    correlation_id::CorrelationId,
    cors::Cors,
    opentelemetry::OpenTelemetry,
    proxy_cache::ProxyCache,
    jwt::Jwt,
    key_auth::KeyAuth,
    ip_restriction::IpRestriction,
    request_size_limiting::RequestSizeLimiting,
    acl::Acl,
    rate_limit::RateLimiting,
    request_termination::RequestTermination,
    request_transformer::RequestTransformer,
    response_transformer::ResponseTransformer,
}
