//! Kong's `request-termination` (priority 2): answers the request itself, with `status_code`
//! (503) and `{"message": …}` (`message`, else Kong's words for the status), or a raw `body`
//! of `content_type`, or (`echo`) a copy of the request for debugging. With `trigger`, only
//! requests carrying that header or query argument are answered; the others go on.
//!
//! Kong runs aws-lambda (priority 750) before it, so a route that invokes a function never
//! reaches it there; here every access plugin runs before the function, so it can close a
//! route (maintenance, a retired API) in front of its function.

use super::{AccessContext, Plugin, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{json, Map, Value};

crate::settings! {
    /// Kong's fields, and so the plugin as configured.
    pub struct RequestTermination, schema SCHEMA = "request-termination" {
        /// The status answered.
        status_code: i64 = Field::of(Type::Integer { min: 100, max: 599 })
            .default(Default::Int(503)),
        /// The answer's `message` (else Kong's words for the status).
        message: Option<String> = Field::of(Type::Text(None)),
        /// The raw body's `Content-Type`.
        content_type: Option<String> = Field::of(Type::Text(None)),
        /// A raw body, instead of the message.
        body: Option<String> = Field::of(Type::Text(None)),
        /// Answer with a copy of the request (debugging).
        echo: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// Only requests with this header or query argument are answered.
        trigger: Option<String> = Field::of(Type::Text(Some(super::check_header_name))),
    }
}

/// Kong's words for a status without a `message`.
fn default_message(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "Unauthorized",
        404 => "Not found",
        405 => "Method not allowed",
        500 => answers::INTERNAL,
        502 => answers::BAD_GATEWAY,
        503 => "Service unavailable",
        _ => return None,
    })
}

fn present(text: &Option<String>) -> bool {
    text.as_deref().is_some_and(|t| !t.is_empty())
}

impl Plugin for RequestTermination {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 2;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    /// Kong's `custom_validator`, word for word.
    fn build(c: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let plugin = RequestTermination::read(obj);
        let (message, content_type, body) = (
            present(&plugin.message),
            present(&plugin.content_type),
            present(&plugin.body),
        );
        let why = if message && (content_type || body) {
            "message cannot be used with content_type or body"
        } else if content_type && !body {
            "content_type requires a body"
        } else if plugin.echo && (content_type || body) {
            "echo cannot be used with content_type and body"
        } else {
            return Some(plugin);
        };
        c.error(why);
        None
    }

    async fn access(
        &self,
        req: &Request<'_>,
        _: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        if let Some(trigger) = &self.trigger {
            let in_query = req.query().is_some_and(|q| {
                crate::http::form::decoded(q)
                    .iter()
                    .any(|(name, _)| name == trigger)
            });
            if req.header(trigger).is_none() && !in_query {
                return Verdict::Continue;
            }
        }
        let status = self.status_code as u16;
        let message = self.message.as_deref().or(default_message(status));
        if self.echo {
            self.echo(req, status, message, resp);
        } else if let Some(body) = &self.body {
            resp.clear();
            resp.status = status;
            if let Some(content_type) = &self.content_type {
                resp.header(b"Content-Type", content_type.as_bytes());
            }
            resp.body.extend_from_slice(body.as_bytes());
        } else if let Some(message) = message {
            answers::message(resp, status, message);
        } else {
            resp.clear();
            resp.status = status;
        }
        Verdict::Answered
    }
}

impl RequestTermination {
    /// Kong's echo: the message, and the request as the gateway read it.
    fn echo(&self, req: &Request<'_>, status: u16, message: Option<&str>, resp: &mut Response) {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let mut headers = Map::new();
        for (name, value) in req.headers() {
            headers.insert(text(name).to_ascii_lowercase(), json!(text(value)));
        }
        let query: Map<String, Value> = req
            .query()
            .map(crate::http::form::decoded)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name, value.map_or(json!(true), Value::String)))
            .collect();
        let authority = req.authority().map(text).unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                (host.to_string(), port.parse::<u16>().ok())
            }
            _ => (authority.clone(), None),
        };
        let scheme = if req.secure { "https" } else { "http" };
        let echoed = json!({
            "message": message,
            "kong": {"worker_pid": std::process::id()},
            "request": {
                "scheme": scheme,
                "host": host,
                "port": port.unwrap_or(if req.secure { 443 } else { 80 }),
                "headers": headers,
                "query": query,
                "raw_body": text(req.body),
                "method": text(req.method()),
                "path": text(req.path()),
            },
        });
        resp.clear();
        resp.status = status;
        resp.header(b"Content-Type", b"application/json; charset=utf-8");
        if let Ok(bytes) = serde_json::to_vec(&echoed) {
            resp.body.extend_from_slice(&bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{configured, run, Known};
    use super::*;

    const GET: &str = "GET /r?x=1 HTTP/1.1\r\nHost: api.test:8000\r\nX-Debug: 1\r\n\r\n";

    /// Kong's spec (`spec/03-plugins/14-request-termination`): the answers and the validator.
    #[test]
    fn answers_as_kong_does() {
        let known = Known::default();
        let cases: &[(&str, &str, u16, &str, Option<&str>)] = &[
            // (config, request, status, body, Content-Type)
            ("{}", GET, 503, r#"{"message":"Service unavailable"}"#, Some("application/json; charset=utf-8")),
            (r#"{"status_code":404}"#, GET, 404, r#"{"message":"Not found"}"#, Some("application/json; charset=utf-8")),
            (r#"{"status_code":406,"message":"Invalid"}"#, GET, 406, r#"{"message":"Invalid"}"#, Some("application/json; charset=utf-8")),
            (r#"{"status_code":418}"#, GET, 418, "", None),
            (r#"{"status_code":451,"content_type":"text/html","body":"<h1>gone</h1>"}"#, GET, 451, "<h1>gone</h1>", Some("text/html")),
            (r#"{"status_code":200,"body":"plain"}"#, GET, 200, "plain", None),
        ];
        for (config, raw, status, body, content_type) in cases {
            let plugin: RequestTermination = configured(config).expect(config);
            let out = run(&plugin, raw, &known);
            assert_eq!(out.verdict, Verdict::Answered, "{config}");
            assert_eq!((out.status(), out.body().as_str()), (*status, *body), "{config}");
            assert_eq!(out.header("Content-Type").as_deref(), *content_type, "{config}");
        }
    }

    #[test]
    fn a_trigger_answers_only_requests_carrying_it() {
        let known = Known::default();
        let plugin: RequestTermination = configured(r#"{"trigger":"X-Debug"}"#).expect("valid");
        assert_eq!(run(&plugin, GET, &known).status(), 503);
        let plain = "GET /r HTTP/1.1\r\nHost: h\r\n\r\n";
        let out = run(&plugin, plain, &known);
        assert_eq!((out.verdict.clone(), out.status()), (Verdict::Continue, 200));
        let in_query = "GET /r?X-Debug HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(run(&plugin, in_query, &known).status(), 503);
    }

    #[test]
    fn echo_gives_the_request_back() {
        let plugin: RequestTermination =
            configured(r#"{"echo":true,"status_code":200,"trigger":"x-debug"}"#).expect("valid");
        let out = run(&plugin, GET, &Known::default());
        assert_eq!(out.status(), 200);
        let echoed: Value = serde_json::from_str(&out.body()).expect("JSON");
        assert_eq!(echoed["message"], Value::Null);
        let request = &echoed["request"];
        assert_eq!(
            (&request["method"], &request["path"], &request["host"], &request["port"]),
            (&json!("GET"), &json!("/r"), &json!("api.test"), &json!(8000))
        );
        assert_eq!(request["headers"]["x-debug"], "1");
        assert_eq!(request["query"]["x"], "1");
        assert_eq!(request["scheme"], "http");
    }

    #[test]
    fn kongs_validator_refuses_what_cannot_go_together() {
        for (config, why) in [
            (r#"{"message":"m","body":"b"}"#, "message cannot be used with content_type or body"),
            (r#"{"message":"m","content_type":"text/plain"}"#, "message cannot be used with content_type or body"),
            (r#"{"content_type":"text/plain"}"#, "content_type requires a body"),
            (r#"{"echo":true,"body":"b"}"#, "echo cannot be used with content_type and body"),
            (r#"{"status_code":99}"#, "status_code: value should be between 100 and 599, got 99"),
            (r#"{"trigger":"bad header"}"#, "trigger: bad header name \"bad header\""),
            (r#"{"statuscode":404}"#, "statuscode: unknown field"),
        ] {
            let errors = configured::<RequestTermination>(config).expect_err(config);
            assert_eq!(errors, [why], "{config}");
        }
    }
}
