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
