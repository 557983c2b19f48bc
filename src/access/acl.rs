//! Kong's `acl` (priority 950): the consumer an auth plugin identified must be in one of the
//! `allow` groups, or in none of the `deny` groups (its `acls`). Kong's answers: 401
//! `{"message":"Unauthorized"}` when nobody was identified, 403 `{"message":"You cannot
//! consume this service"}` when the groups say no. The function sees the consumer's groups in
//! `X-Consumer-Groups` unless `hide_groups_header`.

use super::{AccessContext, Plugin, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};

crate::settings! {
    /// Kong's fields, and so the plugin as configured.
    pub struct Acl, schema SCHEMA = "acl" {
        /// The groups let in (else `deny`).
        allow: Vec<String> = Field::of(Type::Texts(None)),
        /// The groups kept out.
        deny: Vec<String> = Field::of(Type::Texts(None)),
        /// Do not tell the function the consumer's groups.
        hide_groups_header: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Kong Enterprise's consumer groups: accepted, there are none here.
        include_consumer_groups: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Accepted; every group here is the authenticated consumer's.
        always_use_authenticated_groups: bool =
            Field::of(Type::Boolean).default(Default::Bool(false)),
    }
}

impl Plugin for Acl {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 950;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(c: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let acl = Acl::read(obj);
        match (acl.allow.is_empty(), acl.deny.is_empty()) {
            (true, true) => c.error(
                "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
            ),
            (false, false) => c.error(
                "only one of these fields must be non-empty: 'config.allow', 'config.deny'",
            ),
            _ => return Some(acl),
        }
        None
    }

    /// Lets the identified consumer through, or answers.
    async fn access(
        &self,
        _: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        let Some(consumer) = ctx.consumer else {
            answers::message(resp, 401, "Unauthorized");
            return Verdict::Answered;
        };
        let groups = ctx.identities.groups(consumer);
        let member = |list: &[String]| list.iter().any(|g| groups.iter().any(|m| m == g));
        let blocked = if self.deny.is_empty() {
            !member(&self.allow)
        } else {
            member(&self.deny)
        };
        if blocked {
            answers::message(resp, 403, "You cannot consume this service");
            return Verdict::Answered;
        }
        if self.hide_groups_header {
            ctx.edits.remove_header("X-Consumer-Groups");
        } else {
            ctx.edits
                .set_joined_header("X-Consumer-Groups", groups, ", ");
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{configured, run, run_chain, Known};
    use super::*;

    const GET: &str = "GET /r HTTP/1.1\r\nHost: h\r\napikey: k-alice\r\n\r\n";

    /// Kong's answers; the function sees the groups unless hidden. The consumer is the one
    /// key-auth would have identified (run first, as Kong orders them).
    #[test]
    fn groups_let_in_or_keep_out() {
        let known = Known::default()
            .consumer("alice", Some("k-alice"), &["admins", "staff"])
            .consumer("bob", Some("k-bob"), &[]);
        let key_auth: super::super::key_auth::KeyAuth = configured("{}").expect("key-auth");
        let cases = [
            (r#"{"allow":["admins"]}"#, "k-alice", 200, "{}"),
            (r#"{"allow":["admins"]}"#, "k-bob", 403, r#"{"message":"You cannot consume this service"}"#),
            (r#"{"deny":["staff"]}"#, "k-alice", 403, r#"{"message":"You cannot consume this service"}"#),
            (r#"{"deny":["staff"]}"#, "k-bob", 200, "{}"),
        ];
        for (config, key, status, body) in cases {
            let acl: Acl = configured(config).expect(config);
            let raw = GET.replace("k-alice", key);
            assert_eq!(run(&key_auth, &raw, &known).status(), 200);
            // The acl phase with the consumer key-auth found: both plugins' phases in order.
            let out = run_chain(&[&key_auth, &acl], &raw, &known);
            assert_eq!((out.status(), out.body().as_str()), (status, body), "{config} {key}");
            if status == 200 && key == "k-alice" {
                let forwarded = out.forwarded.expect("edited");
                assert!(forwarded.contains("X-Consumer-Groups: admins, staff"), "{forwarded}");
            }
        }
        // Nobody identified: 401.
        let acl: Acl = configured(r#"{"allow":["admins"]}"#).expect("valid");
        let out = run(&acl, "GET /r HTTP/1.1\r\nHost: h\r\n\r\n", &known);
        assert_eq!((out.status(), out.body().as_str()), (401, r#"{"message":"Unauthorized"}"#));
        // Hidden: the header the client sent is removed too.
        let hidden: Acl = configured(r#"{"allow":["admins"],"hide_groups_header":true}"#).expect("valid");
        let raw = "GET /r HTTP/1.1\r\nHost: h\r\napikey: k-alice\r\nX-Consumer-Groups: forged\r\n\r\n";
        let out = run_chain(&[&key_auth, &hidden], raw, &known);
        assert!(!out.forwarded.expect("edited").contains("X-Consumer-Groups"));
    }

    #[test]
    fn allow_or_deny_but_not_both() {
        for (config, why) in [
            ("{}", "at least one of these fields must be non-empty: 'config.allow', 'config.deny'"),
            (r#"{"allow":["a"],"deny":["b"]}"#, "only one of these fields must be non-empty: 'config.allow', 'config.deny'"),
        ] {
            assert_eq!(configured::<Acl>(config).expect_err(config), [why]);
        }
    }
}
