//! Kong's `key-auth` (priority 1250): the key is looked for in each of `key_names`, in the
//! headers, then the query (then a form or JSON body with `key_in_body`); its consumer is
//! told to the function in `X-Consumer-ID`, `X-Consumer-Custom-ID`, `X-Consumer-Username`,
//! `X-Credential-Identifier` (and `X-Anonymous-Consumer: true` for the `anonymous` consumer).
//! Kong's answers: 401 `{"message":"No API key found in request"}` with
//! `WWW-Authenticate: Key realm="kong"`, 401 `{"message":"Invalid authentication
//! credentials"}`, 401 `{"message":"Duplicate API key found"}`.

use super::{AccessContext, ConsumerInfo, Plugin, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};
use std::borrow::Cow;

crate::settings! {
    /// Kong's fields, and so the plugin as configured.
    pub struct KeyAuth, schema SCHEMA = "key-auth" {
        /// Where the key is looked for: header, query argument or body field names.
        key_names: Vec<String> = Field::of(Type::Texts(Some(super::check_header_name)))
            .default(Default::Texts(&["apikey"])),
        /// The function does not see the key.
        hide_credentials: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// The consumer (id or username) to use when authentication fails.
        anonymous: Option<String> = Field::of(Type::Text(None)),
        /// Look in the headers.
        key_in_header: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        /// Look in the query.
        key_in_query: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        /// Look in a form or JSON body.
        key_in_body: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Authenticate CORS preflights too.
        run_on_preflight: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        /// `realm` of the `WWW-Authenticate` challenge (`kong`).
        realm: Option<String> = Field::of(Type::Text(None)),
    }
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

fn find_key<'r>(c: &KeyAuth, req: &Request<'r>) -> Found<'r> {
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

/// Makes the `anonymous` consumer the caller after an auth plugin's failure (a failure, Kong's
/// 500, when the configuration names a consumer that does not exist).
pub(super) fn as_anonymous(anonymous: &str, ctx: &mut AccessContext<'_, '_>) -> Verdict {
    match ctx.identities.consumer(anonymous) {
        Some(consumer) => {
            ctx.consumer = Some(consumer);
            identify(ctx, consumer, None);
            Verdict::Continue
        }
        None => Verdict::Failed(format!(
            "the anonymous consumer {anonymous:?} is configured but does not exist"
        )),
    }
}

impl Plugin for KeyAuth {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 1250;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(_: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let mut plugin = KeyAuth::read(obj);
        plugin.anonymous = plugin.anonymous.filter(|a| !a.is_empty());
        Some(plugin)
    }

    /// Authenticates the request, or answers 401.
    async fn access(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        authenticate(self, req, ctx, resp)
    }
}

fn authenticate(
    c: &KeyAuth,
    req: &Request<'_>,
    ctx: &mut AccessContext<'_, '_>,
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
        return as_anonymous(anonymous, ctx);
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

#[cfg(test)]
mod tests {
    use super::super::testing::{configured, run, Known};
    use super::*;

    fn known() -> Known {
        Known::default()
            .consumer("alice", Some("alice-key"), &[])
            .consumer("anonymous", None, &[])
    }

    /// Kong's spec (`spec/03-plugins/09-key-auth`): where keys are found, its 401s, what the
    /// function is told.
    #[test]
    fn keys_identify_consumers_with_kongs_answers() {
        let plugin: KeyAuth = configured("{}").expect("valid");
        let no_key = r#"{"message":"No API key found in request"}"#;
        for (raw, status, body) in [
            ("GET /r HTTP/1.1\r\nHost: h\r\napikey: alice-key\r\n\r\n", 200, "{}"),
            ("GET /r?apikey=alice-key HTTP/1.1\r\nHost: h\r\n\r\n", 200, "{}"),
            ("GET /r HTTP/1.1\r\nHost: h\r\n\r\n", 401, no_key),
            ("GET /r HTTP/1.1\r\nHost: h\r\napikey: \r\n\r\n", 401, no_key),
            ("GET /r HTTP/1.1\r\nHost: h\r\napikey: wrong\r\n\r\n", 401, r#"{"message":"Invalid authentication credentials"}"#),
            ("GET /r HTTP/1.1\r\nHost: h\r\napikey: a\r\napikey: b\r\n\r\n", 401, r#"{"message":"Duplicate API key found"}"#),
        ] {
            let out = run(&plugin, raw, &known());
            assert_eq!((out.status(), out.body().as_str()), (status, body), "{raw:?}");
            if body == no_key {
                assert_eq!(out.header("WWW-Authenticate").as_deref(), Some("Key realm=\"kong\""));
            }
        }
        let out = run(&plugin, "GET /r HTTP/1.1\r\nHost: h\r\napikey: alice-key\r\nX-Consumer-Username: forged\r\n\r\n", &known());
        assert_eq!(out.consumer.as_deref(), Some("alice"));
        let forwarded = out.forwarded.expect("identified");
        for line in ["X-Consumer-ID: c-alice", "X-Consumer-Username: alice", "X-Credential-Identifier: k-alice"] {
            assert!(forwarded.contains(line), "{line} in {forwarded}");
        }
        assert!(!forwarded.contains("forged"), "{forwarded}");
    }

    #[test]
    fn hidden_keys_anonymous_and_bodies() {
        let hide: KeyAuth = configured(r#"{"hide_credentials":true}"#).expect("valid");
        let out = run(&hide, "GET /r?apikey=alice-key&x=1 HTTP/1.1\r\nHost: h\r\n\r\n", &known());
        let forwarded = out.forwarded.expect("edited");
        assert!(!forwarded.contains("alice-key"), "{forwarded}");
        let anonymous: KeyAuth = configured(r#"{"anonymous":"anonymous"}"#).expect("valid");
        let out = run(&anonymous, "GET /r HTTP/1.1\r\nHost: h\r\n\r\n", &known());
        assert_eq!((out.status(), out.consumer.as_deref()), (200, Some("anonymous")));
        assert!(out.forwarded.expect("told").contains("X-Anonymous-Consumer: true"));
        let body: KeyAuth = configured(r#"{"key_in_body":true,"key_in_header":false}"#).expect("valid");
        let raw = "POST /r HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"apikey\":\"alice-key\"}";
        assert_eq!(run(&body, raw, &known()).consumer.as_deref(), Some("alice"));
        let bad = configured::<KeyAuth>(r#"{"key_names":["bad name"]}"#).expect_err("refused");
        assert_eq!(bad, ["key_names[0]: bad header name \"bad name\""]);
    }
}
