//! Running a plugin's phases in-process, for the plugins' table tests: a plugin configured
//! from JSON, a request from its raw bytes, consumers and credentials held in memory, and what
//! the phases made of it (the verdict, the answer with its headers, the changes to the
//! request the function would see).

use super::jwt::JwtCredential;
use super::{configure, AccessContext, ConsumerInfo, Identities, Plugin, RequestEdits, Verdict};
use crate::http::encode::Response;
use crate::http::head::{self, RequestHead};
use crate::http::request::Request;
use crate::http::Limits;
use crate::schema::check::Checker;
use serde_json::Value;
use std::future::Future;

/// A plugin configured from `config` (JSON), or the errors it was refused with.
pub fn configured<P: Plugin>(config: &str) -> Result<P, Vec<String>> {
    let value: Value = serde_json::from_str(config).expect("test JSON");
    let mut c = Checker::default();
    configure::<P>(&mut c, &value, "00000000-0000-4000-8000-000000000001")
        .ok_or_else(|| c.errors.iter().map(|e| e.to_string()).collect())
}

/// Consumers, credentials and groups, in memory.
#[derive(Default)]
pub struct Known {
    /// The consumers.
    pub consumers: Vec<ConsumerInfo>,
    /// (key, credential id, consumer index).
    pub keys: Vec<(String, String, usize)>,
    /// (credential, consumer index).
    pub jwts: Vec<(JwtCredential, usize)>,
    /// Groups by consumer index.
    pub groups: Vec<Vec<String>>,
}

impl Known {
    /// With a consumer `username` (id `c-<username>`) in `groups`, holding API key `key`.
    pub fn consumer(mut self, username: &str, key: Option<&str>, groups: &[&str]) -> Known {
        let index = self.consumers.len();
        self.consumers.push(ConsumerInfo {
            index,
            id: format!("c-{username}"),
            username: Some(username.to_string()),
            custom_id: None,
        });
        if let Some(key) = key {
            self.keys
                .push((key.to_string(), format!("k-{username}"), index));
        }
        self.groups
            .push(groups.iter().map(|g| g.to_string()).collect());
        self
    }
}

impl Identities for Known {
    fn key_auth(&self, key: &[u8]) -> Option<(&str, &ConsumerInfo)> {
        self.keys
            .iter()
            .find(|(k, _, _)| k.as_bytes() == key)
            .map(|(_, id, i)| (id.as_str(), &self.consumers[*i]))
    }

    fn jwt(&self, key: &str) -> Option<(&JwtCredential, &ConsumerInfo)> {
        self.jwts
            .iter()
            .find(|(c, _)| c.key == key)
            .map(|(c, i)| (c, &self.consumers[*i]))
    }

    fn consumer(&self, id_or_username: &str) -> Option<&ConsumerInfo> {
        self.consumers
            .iter()
            .find(|c| c.id == id_or_username || c.username.as_deref() == Some(id_or_username))
    }

    fn groups(&self, consumer: &ConsumerInfo) -> &[String] {
        &self.groups[consumer.index]
    }
}

/// What a plugin's phases made of a request.
pub struct Outcome {
    /// The access phase's verdict.
    pub verdict: Verdict,
    /// The answer, as the plugin left it (after its response phase), with the headers it set
    /// for the answer (`RateLimit-*` …).
    pub resp: Response,
    /// The consumer it identified (username).
    pub consumer: Option<String>,
    /// The request as the function would see it (its head), when the plugin changed it.
    pub forwarded: Option<String>,
    /// The trace `opentelemetry` began.
    pub trace: Option<Box<crate::telemetry::ActiveTrace>>,
}

impl Outcome {
    /// The answer's status.
    pub fn status(&self) -> u16 {
        self.resp.status
    }

    /// The answer's body as text.
    pub fn body(&self) -> String {
        String::from_utf8_lossy(&self.resp.body).into_owned()
    }

    /// A header of the answer.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.resp.headers).into_owned();
        text.split("\r\n").find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    }
}

/// A plugin's phases, callable through `&dyn` so that plugins of different types run in
/// one chain.
pub trait Phases {
    /// The access phase, run to its verdict.
    fn access_now(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict;
    /// The response phase.
    fn respond(&self, req: &Request<'_>, edits: &RequestEdits, resp: &mut Response);
}

impl<P: Plugin> Phases for P {
    fn access_now(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        // Every plugin decides in one poll but rate-limiting counting exactly in Redis, which
        // these tests do not configure.
        let decided = std::pin::pin!(self.access(req, ctx, resp))
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        match decided {
            std::task::Poll::Ready(verdict) => verdict,
            std::task::Poll::Pending => panic!("the access phase waited"),
        }
    }

    fn respond(&self, req: &Request<'_>, edits: &RequestEdits, resp: &mut Response) {
        self.response(req, edits, resp);
    }
}

/// Runs `plugin`'s phases on the raw request `raw` (see [`run_chain`]).
pub fn run(plugin: &dyn Phases, raw: &str, known: &Known) -> Outcome {
    run_chain(&[plugin], raw, known)
}

/// Runs `plugins`' phases on the raw request `raw` (from 127.0.0.1) as the proxy does: their
/// access phases in order until one answers; else the function's answer (`200 {}`); then the
/// response phases of those that ran.
pub fn run_chain(plugins: &[&dyn Phases], raw: &str, known: &Known) -> Outcome {
    let mut head = RequestHead::default();
    let raw = raw.as_bytes();
    assert_eq!(
        head::parse(raw, &Limits::default(), &mut head),
        Ok(true),
        "a complete head"
    );
    let req = Request {
        buf: raw,
        head: &head,
        body: &raw[head.len..],
        peer: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        secure: false,
    };
    let mut edits = RequestEdits::default();
    let mut resp = Response::default();
    let mut ctx = AccessContext {
        identities: known,
        consumer: None,
        authenticated: false,
        credential: None,
        edits: &mut edits,
        service: Some("s-1"),
        route: Some("r-1"),
        jwt_claims: None,
        uri_captures: &|_| None,
        arrived: std::time::Instant::now(),
        access_started: None,
        trace: None,
    };
    let mut verdict = Verdict::Continue;
    let mut ran = 0;
    for plugin in plugins {
        ran += 1;
        verdict = plugin.access_now(&req, &mut ctx, &mut resp);
        if verdict != Verdict::Continue {
            break;
        }
    }
    let consumer = ctx.consumer.and_then(|c| c.username.clone());
    let trace = ctx.trace.take();
    if verdict == Verdict::Continue {
        resp.status = 200;
        resp.body.extend_from_slice(b"{}");
    }
    for plugin in &plugins[..ran] {
        plugin.respond(&req, &edits, &mut resp);
    }
    edits.write_answer_headers(&mut resp);
    let forwarded = (!edits.is_empty())
        .then(|| edits.apply(&req))
        .flatten()
        .map(|changed| String::from_utf8_lossy(&changed.buf[..changed.head.len]).into_owned());
    Outcome {
        verdict,
        resp,
        consumer,
        forwarded,
        trace,
    }
}
