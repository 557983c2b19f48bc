//! Changes the access plugins make to the request the function sees (Kong's
//! `kong.service.request.set_header` and friends): headers set or removed, query arguments
//! removed; and wholesale (request-transformer): the method, the path, the query, every
//! header, the body. Applied by writing a new head into a reused buffer and parsing it again, so the
//! payload encoders read the changed request like any other, and nothing is allocated once the
//! buffers have grown.

use crate::http::head::{self, RequestHead};
use crate::http::request::Request;
use crate::http::Limits;
use std::ops::Range;

/// The pending changes; cleared for every request, capacity kept.
#[derive(Default)]
pub struct RequestEdits {
    /// Names and values of set headers, back to back.
    text: Vec<u8>,
    /// Headers to set: (name, value) ranges of `text`. A set header replaces the client's.
    set: Vec<(Range<usize>, Range<usize>)>,
    /// Header names to remove: ranges of `text`.
    removed_headers: Vec<Range<usize>>,
    /// Query argument names to remove: ranges of `text`.
    removed_args: Vec<Range<usize>>,
    /// A new method, path, or query (without its `?`; empty: none): ranges of `text`.
    method: Option<Range<usize>>,
    path: Option<Range<usize>>,
    query: Option<Range<usize>>,
    /// Every header the request came with is dropped: the set ones are all it has.
    headers_replaced: bool,
    /// A new body, when `body_replaced`.
    body: Vec<u8>,
    body_replaced: bool,
    /// What plugins keep from their access phase for their response phases, by plugin name
    /// (proxy-cache's right to store the answer); dropped when the request ends.
    kept: Vec<(&'static str, Box<dyn std::any::Any>)>,
    /// Header lines for the client's answer (rate-limit counts), `Name: value\r\n` each.
    answer: Vec<u8>,
    /// The rewritten head.
    head_text: Vec<u8>,
    /// Its parse.
    head: RequestHead,
}

impl RequestEdits {
    /// Forgets the previous request's changes.
    pub fn clear(&mut self) {
        self.text.clear();
        self.set.clear();
        self.removed_headers.clear();
        self.removed_args.clear();
        self.answer.clear();
        self.method = None;
        self.path = None;
        self.query = None;
        self.headers_replaced = false;
        self.body.clear();
        self.body_replaced = false;
        self.kept.clear();
    }

    /// Keeps `state` for `plugin`'s response phases of this request.
    pub fn keep(&mut self, plugin: &'static str, state: Box<dyn std::any::Any>) {
        self.kept.push((plugin, state));
    }

    /// What `plugin` kept, if it kept a `T`.
    pub fn kept<T: 'static>(&self, plugin: &'static str) -> Option<&T> {
        self.kept
            .iter()
            .find(|(p, s)| *p == plugin && s.is::<T>())
            .and_then(|(_, s)| s.downcast_ref())
    }

    /// Takes back what `plugin` kept, if it kept a `T`.
    pub fn take_kept<T: 'static>(&mut self, plugin: &'static str) -> Option<Box<T>> {
        let at = self
            .kept
            .iter()
            .position(|(p, s)| *p == plugin && s.is::<T>())?;
        self.kept.swap_remove(at).1.downcast().ok()
    }

    /// Drops what the plugins kept: the request has ended.
    pub fn drop_kept(&mut self) {
        self.kept.clear();
    }

    /// Adds `name: n` to the client's answer.
    pub fn answer_number(&mut self, name: &str, n: u64) {
        self.answer.extend_from_slice(name.as_bytes());
        self.answer.extend_from_slice(b": ");
        crate::json::write_u64(&mut self.answer, n);
        self.answer.extend_from_slice(b"\r\n");
    }

    /// Adds `name: value` to the client's answer.
    pub fn answer_text(&mut self, name: &str, value: &[u8]) {
        self.answer.extend_from_slice(name.as_bytes());
        self.answer.extend_from_slice(b": ");
        self.answer.extend_from_slice(value);
        self.answer.extend_from_slice(b"\r\n");
    }

    /// Adds `X-RateLimit-Limit-{period}` and `X-RateLimit-Remaining-{period}`.
    pub fn answer_header_value(&mut self, period: &str, limit: u64, remaining: u64) {
        for (what, n) in [("Limit", limit), ("Remaining", remaining)] {
            self.answer.extend_from_slice(b"X-RateLimit-");
            self.answer.extend_from_slice(what.as_bytes());
            self.answer.push(b'-');
            self.answer.extend_from_slice(period.as_bytes());
            self.answer.extend_from_slice(b": ");
            crate::json::write_u64(&mut self.answer, n);
            self.answer.extend_from_slice(b"\r\n");
        }
    }

    /// Drops the answer headers added so far.
    pub fn clear_answer_headers(&mut self) {
        self.answer.clear();
    }

    /// Appends the answer headers to `resp`.
    pub fn write_answer_headers(&self, resp: &mut crate::http::encode::Response) {
        resp.headers.extend_from_slice(&self.answer);
    }

    /// Whether anything is to change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.removed_headers.is_empty()
            && self.removed_args.is_empty()
            && self.method.is_none()
            && self.path.is_none()
            && self.query.is_none()
            && !self.headers_replaced
            && !self.body_replaced
    }

    /// The request's headers as the function would see them now: the client's, less those
    /// removed, then those set.
    pub fn effective_headers<'r>(
        &'r self,
        req: &Request<'r>,
    ) -> impl Iterator<Item = (&'r [u8], &'r [u8])> + 'r {
        let client = req
            .headers()
            .filter(move |(name, _)| !self.headers_replaced && !self.header_removed(name));
        let set = self
            .set
            .iter()
            .map(|(n, v)| (&self.text[n.clone()], &self.text[v.clone()]));
        client.chain(set)
    }

    /// Sends `method` instead of the client's.
    pub fn set_method(&mut self, method: &str) {
        self.method = Some(self.push(method.as_bytes()));
    }

    /// Sends `path` (already a valid request-target path) instead of the client's.
    pub fn set_path(&mut self, path: &[u8]) {
        self.path = Some(self.push(path));
    }

    /// Sends `query` (encoded, without `?`; empty: no query) instead of the client's.
    pub fn set_query(&mut self, query: &[u8]) {
        self.removed_args.clear();
        self.query = Some(self.push(query));
    }

    /// Drops every header, the client's and those set so far: the ones set from now on are
    /// all the request has (read [`RequestEdits::effective_headers`] first).
    pub fn replace_headers(&mut self) {
        self.headers_replaced = true;
        self.set.clear();
        self.removed_headers.clear();
    }

    /// Sets header `name` to `value` (CR, LF and NUL dropped) without removing a value
    /// already set for it (a header sent several times).
    pub fn add_header(&mut self, name: &str, value: &[u8]) {
        let n = self.push(name.as_bytes());
        let start = self.text.len();
        self.text.extend(
            value
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\r' | b'\n' | 0)),
        );
        self.set.push((n, start..self.text.len()));
    }

    /// Sends `body` instead of the client's.
    pub fn set_body(&mut self, body: &[u8]) {
        self.body.clear();
        self.body.extend_from_slice(body);
        self.body_replaced = true;
    }

    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.text.len();
        self.text.extend_from_slice(bytes);
        start..self.text.len()
    }

    /// Sets header `name` to `value` (CR, LF and NUL dropped from the value).
    pub fn set_header(&mut self, name: &str, value: &[u8]) {
        self.remove_header(name);
        self.add_header(name, value);
    }

    /// Sets header `name` to `values` joined by `separator`.
    pub fn set_joined_header(&mut self, name: &str, values: &[String], separator: &str) {
        self.remove_header(name);
        let n = self.push(name.as_bytes());
        let start = self.text.len();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.text.extend_from_slice(separator.as_bytes());
            }
            self.text
                .extend(v.bytes().filter(|b| !matches!(b, b'\r' | b'\n' | 0)));
        }
        self.set.push((n, start..self.text.len()));
    }

    /// The value set for header `name`, if one was.
    pub fn header_set(&self, name: &str) -> Option<&[u8]> {
        self.set
            .iter()
            .find(|(n, _)| self.text[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.text[v.clone()])
    }

    /// Removes header `name` (the client's, and one set before).
    pub fn remove_header(&mut self, name: &str) {
        let text = &self.text;
        self.set
            .retain(|(n, _)| !text[n.clone()].eq_ignore_ascii_case(name.as_bytes()));
        let r = self.push(name.as_bytes());
        self.removed_headers.push(r);
    }

    /// Removes every query argument called `name`.
    pub fn remove_query_arg(&mut self, name: &str) {
        let r = self.push(name.as_bytes());
        self.removed_args.push(r);
    }

    fn header_removed(&self, name: &[u8]) -> bool {
        self.removed_headers
            .iter()
            .any(|r| self.text[r.clone()].eq_ignore_ascii_case(name))
    }

    fn arg_removed(&self, pair: &[u8]) -> bool {
        let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
        self.removed_args
            .iter()
            .any(|r| self.text[r.clone()] == *name)
    }

    /// `req` with the changes applied: a new head in this value's buffers, the same body.
    /// `None` when the rewritten head does not parse (it always should: it is built from a
    /// head that did, and values are cleaned).
    pub fn apply<'s>(&'s mut self, req: &Request<'s>) -> Option<Request<'s>> {
        let mut out = std::mem::take(&mut self.head_text);
        out.clear();
        let edited = |r: &Option<Range<usize>>| r.clone().map(|r| &self.text[r]);
        out.extend_from_slice(edited(&self.method).unwrap_or(req.method()));
        out.push(b' ');
        out.extend_from_slice(edited(&self.path).unwrap_or(req.path()));
        if let Some(query) = edited(&self.query) {
            if !query.is_empty() {
                out.push(b'?');
                out.extend_from_slice(query);
            }
        } else if let Some(query) = req.query() {
            let mut first = true;
            for pair in query.split(|&b| b == b'&') {
                if pair.is_empty() || self.arg_removed(pair) {
                    continue;
                }
                out.push(if first { b'?' } else { b'&' });
                out.extend_from_slice(pair);
                first = false;
            }
        }
        out.extend_from_slice(if req.head.minor_version == 0 {
            b" HTTP/1.0\r\n"
        } else {
            b" HTTP/1.1\r\n"
        });
        for (name, value) in req.headers() {
            if self.headers_replaced || self.header_removed(name) {
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        // An absolute-form target's authority, when no Host line came (or was set), becomes
        // the Host line HTTP/1.1 text needs (an HTTP/2 request's `:authority` is already its
        // Host field).
        let host_kept = !self.headers_replaced && req.header("host").is_some();
        let host_set = self
            .set
            .iter()
            .any(|(n, _)| self.text[n.clone()].eq_ignore_ascii_case(b"host"));
        if !host_kept && !host_set {
            if let Some(authority) = req.authority() {
                out.extend_from_slice(b"host: ");
                out.extend_from_slice(authority);
                out.extend_from_slice(b"\r\n");
            }
        }
        for (n, v) in &self.set {
            out.extend_from_slice(&self.text[n.clone()]);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&self.text[v.clone()]);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.head_text = out;
        let limits = Limits {
            max_head_bytes: usize::MAX,
            ..Limits::default()
        };
        let parsed = head::parse(&self.head_text, &limits, &mut self.head);
        // Rewritten as HTTP/1.1 text, it is still the request that came in.
        self.head.http2 = req.head.http2;
        match parsed {
            Ok(true) => Some(Request {
                buf: &self.head_text,
                head: &self.head,
                body: if self.body_replaced {
                    &self.body
                } else {
                    req.body
                },
                peer: req.peer,
                secure: req.secure,
            }),
            _ => None,
        }
    }
}
