//! Kong's `ip-restriction` (priority 990): a client in `deny` is refused; with `allow` set, a
//! client outside it is refused too. Kong's default answer is 403
//! `{"message":"Your IP address is not allowed"}`; `status` and `message` change it.

use super::cidr::Cidr;
use super::{AccessContext, Plugin, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "ip-restriction" {
        /// Addresses or CIDR blocks let in (all others refused).
        allow: Vec<String> = Field::of(Type::Texts(Some(check_cidr))),
        /// Addresses or CIDR blocks refused.
        deny: Vec<String> = Field::of(Type::Texts(Some(check_cidr))),
        /// The refusal's status.
        status: i64 = Field::of(Type::Integer { min: 100, max: 599 }).default(Default::Int(403)),
        /// The refusal's message.
        message: String = Field::of(Type::Text(None))
            .default(Default::Text("Your IP address is not allowed")),
    }
}

/// The plugin as configured.
#[derive(Debug)]
pub struct IpRestriction {
    /// `allow`.
    pub allow: Vec<Cidr>,
    /// `deny`.
    pub deny: Vec<Cidr>,
    /// `status`.
    pub status: u16,
    /// `message`.
    pub message: String,
}

fn check_cidr(text: &str) -> Result<(), String> {
    Cidr::parse(text).map(|_| ())
}

impl Plugin for IpRestriction {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 990;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(c: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let s = Settings::read(obj);
        if s.allow.is_empty() && s.deny.is_empty() {
            c.error("at least one of these fields must be non-empty: 'config.allow', 'config.deny'");
            return None;
        }
        let blocks = |list: &[String]| list.iter().filter_map(|t| Cidr::parse(t).ok()).collect();
        Some(IpRestriction {
            allow: blocks(&s.allow),
            deny: blocks(&s.deny),
            status: s.status as u16,
            message: s.message,
        })
    }

    /// Refuses clients the config does not let in.
    async fn access(
        &self,
        req: &Request<'_>,
        _: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        let Some(ip) = req.peer else {
            answers::message(resp, 403, "Cannot identify the client IP address");
            return Verdict::Answered;
        };
        let denied = self.deny.iter().any(|b| b.contains(ip));
        let not_allowed = !self.allow.is_empty() && !self.allow.iter().any(|b| b.contains(ip));
        if denied || not_allowed {
            answers::message(resp, self.status, &self.message);
            return Verdict::Answered;
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{configured, run, Known};
    use super::*;

    const GET: &str = "GET /r HTTP/1.1\r\nHost: h\r\n\r\n";

    /// The test client is 127.0.0.1: Kong's answers for each way of listing it.
    #[test]
    fn clients_are_let_in_or_refused_as_kong_does() {
        let refused = r#"{"message":"Your IP address is not allowed"}"#;
        for (config, status, body) in [
            (r#"{"allow":["127.0.0.0/8"]}"#, 200, "{}"),
            (r#"{"allow":["10.0.0.0/8"]}"#, 403, refused),
            (r#"{"deny":["127.0.0.1"]}"#, 403, refused),
            (r#"{"deny":["::1"]}"#, 200, "{}"),
            (r#"{"allow":["127.0.0.1"],"deny":["127.0.0.1"]}"#, 403, refused),
            (r#"{"deny":["127.0.0.0/24"],"status":401,"message":"go away"}"#, 401, r#"{"message":"go away"}"#),
        ] {
            let plugin: IpRestriction = configured(config).expect(config);
            let out = run(&plugin, GET, &Known::default());
            assert_eq!((out.status(), out.body().as_str()), (status, body), "{config}");
        }
    }

    #[test]
    fn bad_blocks_and_empty_lists_are_refused() {
        let errors = configured::<IpRestriction>(r#"{"allow":["300.1.1.1"]}"#).expect_err("bad");
        assert!(errors[0].starts_with("allow[0]: "), "{errors:?}");
        assert_eq!(
            configured::<IpRestriction>("{}").expect_err("empty"),
            ["at least one of these fields must be non-empty: 'config.allow', 'config.deny'"]
        );
    }
}
