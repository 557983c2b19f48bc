//! Kong's `acl` (priority 950): the consumer an auth plugin identified must be in one of the
//! `allow` groups, or in none of the `deny` groups (its `acls`). Kong's answers: 401
//! `{"message":"Unauthorized"}` when nobody was identified, 403 `{"message":"You cannot
//! consume this service"}` when the groups say no. The function sees the consumer's groups in
//! `X-Consumer-Groups` unless `hide_groups_header`.

use super::{AccessContext, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};

/// The validated config.
#[derive(Debug)]
pub struct AclConfig {
    /// `allow`.
    pub allow: Vec<String>,
    /// `deny`.
    pub deny: Vec<String>,
    /// `hide_groups_header`.
    pub hide_groups_header: bool,
}

/// The plugin's schema.
pub static SCHEMA: Schema = Schema {
    name: "acl",
    fields: &[
        Field::new("allow", Type::Texts(None)),
        Field::new("deny", Type::Texts(None)),
        Field::new("hide_groups_header", Type::Boolean).default(Default::Bool(false)),
        Field::new("include_consumer_groups", Type::Boolean).default(Default::Bool(false)),
        Field::new("always_use_authenticated_groups", Type::Boolean).default(Default::Bool(false)),
    ],
};

/// Validates a `config` object.
pub fn validate(c: &mut Checker, value: &Value) -> Option<AclConfig> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    let (allow, deny) = (SCHEMA.texts(obj, "allow"), SCHEMA.texts(obj, "deny"));
    match (allow.is_empty(), deny.is_empty()) {
        (true, true) => {
            c.error("at least one of these fields must be non-empty: 'config.allow', 'config.deny'")
        }
        (false, false) => {
            c.error("only one of these fields must be non-empty: 'config.allow', 'config.deny'")
        }
        _ => {}
    }
    (c.errors.len() == before).then(|| AclConfig {
        allow,
        deny,
        hide_groups_header: SCHEMA.boolean(obj, "hide_groups_header"),
    })
}

/// Lets the identified consumer through, or answers.
pub fn access(c: &AclConfig, ctx: &mut AccessContext<'_, '_>, resp: &mut Response) -> Verdict {
    let Some(consumer) = ctx.consumer else {
        answers::message(resp, 401, "Unauthorized");
        return Verdict::Answered;
    };
    let groups = ctx.identities.groups(consumer);
    let member = |list: &[String]| list.iter().any(|g| groups.iter().any(|m| m == g));
    let blocked = if c.deny.is_empty() {
        !member(&c.allow)
    } else {
        member(&c.deny)
    };
    if blocked {
        answers::message(resp, 403, "You cannot consume this service");
        return Verdict::Answered;
    }
    if c.hide_groups_header {
        ctx.edits.remove_header("X-Consumer-Groups");
    } else {
        ctx.edits
            .set_joined_header("X-Consumer-Groups", groups, ", ");
    }
    Verdict::Continue
}
