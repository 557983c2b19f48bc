//! Kong's `key-auth` (priority 1250): the key is looked for in each of `key_names`, in the
//! headers, then the query (then a form or JSON body with `key_in_body`); its consumer is
//! told to the function in `X-Consumer-ID`, `X-Consumer-Custom-ID`, `X-Consumer-Username`,
//! `X-Credential-Identifier` (and `X-Anonymous-Consumer: true` for the `anonymous` consumer).
//! Kong's answers: 401 `{"message":"No API key found in request"}` with
//! `WWW-Authenticate: Key realm="kong"`, 401 `{"message":"Invalid authentication
//! credentials"}`, 401 `{"message":"Duplicate API key found"}`.

use super::{AccessContext, ConsumerInfo, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The validated config.
#[derive(Debug)]
pub struct KeyAuthConfig {
    /// `key_names`, e.g. `apikey`.
    pub key_names: Vec<String>,
    /// `hide_credentials`: the function does not see the key.
    pub hide_credentials: bool,
    /// `anonymous`: the consumer (id or username) to use when authentication fails.
    pub anonymous: Option<String>,
    /// `key_in_header`.
    pub key_in_header: bool,
    /// `key_in_query`.
    pub key_in_query: bool,
    /// `key_in_body`.
    pub key_in_body: bool,
    /// `run_on_preflight`.
    pub run_on_preflight: bool,
    /// `realm` for `WWW-Authenticate`.
    pub realm: Option<String>,
}

/// The plugin's schema.
pub static SCHEMA: Schema = Schema {
    name: "key-auth",
    fields: &[
        Field::new("key_names", Type::Texts(Some(check_key_name)))
            .default(Default::Texts(&["apikey"])),
        Field::new("hide_credentials", Type::Boolean).default(Default::Bool(false)),
        Field::new("anonymous", Type::Text(None)),
        Field::new("key_in_header", Type::Boolean).default(Default::Bool(true)),
        Field::new("key_in_query", Type::Boolean).default(Default::Bool(true)),
        Field::new("key_in_body", Type::Boolean).default(Default::Bool(false)),
        Field::new("run_on_preflight", Type::Boolean).default(Default::Bool(true)),
        Field::new("realm", Type::Text(None)),
    ],
};

/// A key name must be a header name too.
pub(super) fn check_key_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(crate::http::encode::is_token) {
        Ok(())
    } else {
        Err(format!("bad header name {name:?}"))
    }
}

/// Validates a `config` object.
pub fn validate(c: &mut Checker, value: &Value) -> Option<KeyAuthConfig> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    (c.errors.len() == before).then(|| KeyAuthConfig {
        key_names: SCHEMA.texts(obj, "key_names"),
        hide_credentials: SCHEMA.boolean(obj, "hide_credentials"),
        anonymous: SCHEMA
            .text(obj, "anonymous")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        key_in_header: SCHEMA.boolean(obj, "key_in_header"),
        key_in_query: SCHEMA.boolean(obj, "key_in_query"),
        key_in_body: SCHEMA.boolean(obj, "key_in_body"),
        run_on_preflight: SCHEMA.boolean(obj, "run_on_preflight"),
        realm: SCHEMA.text(obj, "realm").map(str::to_string),
    })
}

/// Where a key was found.
enum Found<'r> {
    None,
    One(Cow<'r, [u8]>),
    Duplicate,
}

fn one_of<'r>(mut values: impl Iterator<Item = Cow<'r, [u8]>>) -> Found<'r> {
    match (values.next(), values.next()) {
        (None, _) => Found::None,
        (Some(v), None) => Found::One(v),
        (Some(_), Some(_)) => Found::Duplicate,
    }
}

/// The values of form argument `name` in `input` (a query or a form body).
fn form_values<'r>(input: &[u8], name: &str) -> Found<'r> {
    let values: Vec<_> = crate::http::form::decoded(input)
        .into_iter()
        .filter(|(k, _)| k == name)
        .filter_map(|(_, v)| v)
        .map(|v| Cow::Owned(v.into_bytes()))
        .collect();
    one_of(values.into_iter())
}

fn find_key<'r>(c: &KeyAuthConfig, req: &Request<'r>) -> Found<'r> {
    for name in &c.key_names {
        if c.key_in_header {
            let values = req
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| Cow::Borrowed(v));
            match one_of(values) {
                Found::None => {}
                found => return found,
            }
        }
        if let Some(query) = req.query().filter(|_| c.key_in_query) {
            match form_values(query, name) {
                Found::None => {}
                found => return found,
            }
        }
        if c.key_in_body {
            let json: Option<Value> = serde_json::from_slice(req.body).ok();
            if let Some(Value::String(v)) = json.as_ref().and_then(|b| b.get(name.as_str())) {
                return Found::One(Cow::Owned(v.clone().into_bytes()));
            }
            match form_values(req.body, name) {
                Found::None => {}
                found => return found,
            }
        }
    }
    Found::None
}

/// Tells the function who is calling.
pub fn identify(
    ctx: &mut AccessContext<'_, '_>,
    consumer: &ConsumerInfo,
    credential: Option<&str>,
) {
    let e = &mut *ctx.edits;
    e.set_header("X-Consumer-ID", consumer.id.as_bytes());
    match &consumer.custom_id {
        Some(v) => e.set_header("X-Consumer-Custom-ID", v.as_bytes()),
        None => e.remove_header("X-Consumer-Custom-ID"),
    }
    match &consumer.username {
        Some(v) => e.set_header("X-Consumer-Username", v.as_bytes()),
        None => e.remove_header("X-Consumer-Username"),
    }
    match credential {
        Some(id) => {
            e.set_header("X-Credential-Identifier", id.as_bytes());
            e.remove_header("X-Anonymous-Consumer");
        }
        None => {
            e.remove_header("X-Credential-Identifier");
            e.set_header("X-Anonymous-Consumer", b"true");
        }
    }
}

/// Whether an auth plugin has to authenticate this request: not a preflight it skips, and not
/// already authenticated by another auth plugin when this one would fall back to `anonymous`
/// (the auth plugins are then alternatives: Kong's logical OR).
pub(super) fn needed(
    run_on_preflight: bool,
    has_anonymous: bool,
    req: &Request<'_>,
    ctx: &AccessContext<'_, '_>,
) -> bool {
    let skipped_preflight = !run_on_preflight && req.method() == b"OPTIONS";
    let already_authenticated = has_anonymous && ctx.authenticated;
    !(skipped_preflight || already_authenticated)
}

/// Makes the `anonymous` consumer the caller after an auth plugin's failure (a 500 when the
/// configuration names a consumer that does not exist).
pub(super) fn as_anonymous(
    plugin: &str,
    anonymous: &str,
    ctx: &mut AccessContext<'_, '_>,
    resp: &mut Response,
) -> Verdict {
    match ctx.identities.consumer(anonymous) {
        Some(consumer) => {
            ctx.consumer = Some(consumer);
            identify(ctx, consumer, None);
            Verdict::Continue
        }
        None => {
            log::error!(
                "{plugin}: the anonymous consumer {anonymous:?} is configured but does not exist"
            );
            answers::message(resp, 500, answers::INTERNAL);
            Verdict::Answered
        }
    }
}

/// Authenticates the request, or answers 401.
pub fn access<'a>(
    c: &KeyAuthConfig,
    req: &Request<'_>,
    ctx: &mut AccessContext<'a, '_>,
    resp: &mut Response,
) -> Verdict {
    if !needed(c.run_on_preflight, c.anonymous.is_some(), req, ctx) {
        return Verdict::Continue;
    }
    let failure = match find_key(c, req) {
        Found::Duplicate => (401, "Duplicate API key found", false),
        Found::None => (401, "No API key found in request", true),
        Found::One(key) if key.is_empty() => (401, "No API key found in request", true),
        Found::One(key) => match ctx.identities.key_auth(&key) {
            Some((credential, consumer)) => {
                ctx.consumer = Some(consumer);
                ctx.authenticated = true;
                ctx.credential = Some(credential);
                identify(ctx, consumer, Some(credential));
                if c.hide_credentials {
                    for name in &c.key_names {
                        ctx.edits.remove_header(name);
                        ctx.edits.remove_query_arg(name);
                    }
                }
                return Verdict::Continue;
            }
            None => (401, "Invalid authentication credentials", false),
        },
    };
    if let Some(anonymous) = &c.anonymous {
        return as_anonymous("key-auth", anonymous, ctx, resp);
    }
    let (status, message, challenge) = failure;
    answers::message(resp, status, message);
    if challenge {
        let realm = c.realm.as_deref().unwrap_or("kong");
        resp.header(
            b"WWW-Authenticate",
            format!("Key realm=\"{realm}\"").as_bytes(),
        );
    }
    Verdict::Answered
}
