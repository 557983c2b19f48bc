//! Kong's `ip-restriction` (priority 990): a client in `deny` is refused; with `allow` set, a
//! client outside it is refused too. Kong's default answer is 403
//! `{"message":"Your IP address is not allowed"}`; `status` and `message` change it.

use super::cidr::Cidr;
use super::Verdict;
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Field, Schema, Type};
use serde_json::{Map, Value};

/// The validated config.
#[derive(Debug)]
pub struct IpRestrictionConfig {
    /// `allow`.
    pub allow: Vec<Cidr>,
    /// `deny`.
    pub deny: Vec<Cidr>,
    /// `status` (default 403).
    pub status: u16,
    /// `message` (default Kong's).
    pub message: String,
}

const DEFAULT_MESSAGE: &str = "Your IP address is not allowed";

/// The plugin's schema.
pub static SCHEMA: Schema = Schema {
    name: "ip-restriction",
    fields: &[
        Field::new("allow", Type::Texts(Some(check_cidr))),
        Field::new("deny", Type::Texts(Some(check_cidr))),
        Field::new("status", Type::Integer { min: 100, max: 599 }),
        Field::new("message", Type::Text(None)),
    ],
};

fn check_cidr(text: &str) -> Result<(), String> {
    Cidr::parse(text).map(|_| ())
}

/// Validates a `config` object.
pub fn validate(c: &mut Checker, value: &Value) -> Option<IpRestrictionConfig> {
    let obj: &Map<String, Value> = c.object(value)?;
    let before = c.errors.len();
    SCHEMA.check(c, obj);
    let list = |name: &str| -> Vec<Cidr> {
        SCHEMA
            .texts(obj, name)
            .iter()
            .filter_map(|s| Cidr::parse(s).ok())
            .collect()
    };
    let (allow, deny) = (list("allow"), list("deny"));
    let given = |name: &str| {
        obj.get(name)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if !given("allow") && !given("deny") {
        c.error("at least one of these fields must be non-empty: 'config.allow', 'config.deny'");
    }
    (c.errors.len() == before).then(|| IpRestrictionConfig {
        allow,
        deny,
        status: SCHEMA.int(obj, "status").unwrap_or(403) as u16,
        message: SCHEMA
            .text(obj, "message")
            .unwrap_or(DEFAULT_MESSAGE)
            .to_string(),
    })
}

/// Refuses clients the config does not let in.
pub fn access(c: &IpRestrictionConfig, req: &Request<'_>, resp: &mut Response) -> Verdict {
    let Some(ip) = req.peer else {
        answers::message(resp, 403, "Cannot identify the client IP address");
        return Verdict::Answered;
    };
    let denied = c.deny.iter().any(|b| b.contains(ip));
    let not_allowed = !c.allow.is_empty() && !c.allow.iter().any(|b| b.contains(ip));
    if denied || not_allowed {
        answers::message(resp, c.status, &c.message);
        return Verdict::Answered;
    }
    Verdict::Continue
}
