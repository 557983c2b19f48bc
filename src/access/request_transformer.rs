//! Kong's `request-transformer` (priority 801): changes the request before the function sees
//! it, so every payload mode (Kong's, API Gateway events) reads the changed one. In Kong's
//! order: `replace.uri` (the path), `http_method` (to GET, HEAD or TRACE a form body's
//! arguments also go to the query), headers, body, query; each of `remove`, `rename`,
//! `replace`, `add`, `append` in that order within headers, body (a form or a JSON object)
//! and query. Values are templates ([`super::template`]) of the request as it came to this
//! plugin: `$(headers.x)`, `$(query_params["x"])`, `$(uri_captures[1])`.
//!
//! Kong's details kept: header names sent as Kong sends them (lowercase, but those `add` and
//! `append` name), `host` only changed by `replace`; `replace` and `rename` only act on a
//! member or argument that is truthy (a JSON `false` is not), `add` only where it is missing
//! (JSON: or `false`), `append` makes an array; body `remove`/`rename`/`replace` only on a
//! non-empty body, `add`/`append` also on an empty one; arguments and forms are decoded and
//! encoded again as ngx's `encode_args` does (`%20` for a space). Not kept: multipart bodies
//! are passed as they came (their members untouched), and members or arguments keep their
//! order (Kong's come out in Lua's table order).

use super::entries::{header_rename, kong_header_name, split_pair};
use super::json_object::JsonObject;
use super::template::{Key, Source, Template, Values};
use super::{AccessContext, CaptureKey, Plugin, Verdict};
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use serde_json::{Map, Value};

/// A body or query entry: `name:value` with a value, a template that parses.
fn valued_entry(entry: &str) -> Result<(), String> {
    match split_pair(entry) {
        (name, Some(value)) if !name.is_empty() => Template::parse(value).map(drop),
        (name, _) => Err(format!("key '{name}' has no value")),
    }
}

/// A `remove.headers` entry: a header name.
fn header_entry(entry: &str) -> Result<(), String> {
    kong_header_name(split_pair(entry).0)
}

/// An `add`/`append`/`replace` header entry: `name:value`, the value a template that parses.
fn header_value_entry(entry: &str) -> Result<(), String> {
    if !entry.contains(':') || entry.starts_with(':') {
        return Err(format!("{entry:?} is not a name:value pair"));
    }
    let (name, value) = split_pair(entry);
    kong_header_name(name)?;
    value.map_or(Ok(()), |v| Template::parse(v).map(drop))
}

/// `replace.uri`: a template.
fn uri_template(text: &str) -> Result<(), String> {
    Template::parse(text).map(drop)
}

/// Kong's `typedefs.http_method`: upper-case letters.
fn http_method(text: &str) -> Result<(), String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!("invalid value: {text}"))
    }
}

crate::settings! {
    /// `remove`: names.
    pub struct Names, schema NAMES = "remove" {
        /// Body members or fields.
        body: Vec<String> = Field::of(Type::Texts(None)).default(Default::Texts(&[])),
        /// Headers.
        headers: Vec<String> = Field::of(Type::Texts(Some(header_entry))).default(Default::Texts(&[])),
        /// Query arguments.
        querystring: Vec<String> = Field::of(Type::Texts(None)).default(Default::Texts(&[])),
    }
}

crate::settings! {
    /// `rename`: `old:new` pairs.
    pub struct Renames, schema RENAMES = "rename" {
        /// Body members or fields.
        body: Vec<String> = Field::of(Type::Texts(Some(valued_entry))).default(Default::Texts(&[])),
        /// Headers.
        headers: Vec<String> = Field::of(Type::Texts(Some(header_rename)))
            .default(Default::Texts(&[])),
        /// Query arguments.
        querystring: Vec<String> = Field::of(Type::Texts(Some(valued_entry)))
            .default(Default::Texts(&[])),
    }
}

crate::settings! {
    /// `add`, `append`: `name:value` pairs.
    pub struct Pairs, schema PAIRS = "values" {
        /// Body members or fields.
        body: Vec<String> = Field::of(Type::Texts(Some(valued_entry))).default(Default::Texts(&[])),
        /// Headers.
        headers: Vec<String> = Field::of(Type::Texts(Some(header_value_entry)))
            .default(Default::Texts(&[])),
        /// Query arguments.
        querystring: Vec<String> = Field::of(Type::Texts(Some(valued_entry)))
            .default(Default::Texts(&[])),
    }
}

crate::settings! {
    /// `replace`: `name:value` pairs, and the path.
    pub struct Replacements, schema REPLACEMENTS = "replace" {
        /// Body members or fields.
        body: Vec<String> = Field::of(Type::Texts(Some(valued_entry))).default(Default::Texts(&[])),
        /// Headers.
        headers: Vec<String> = Field::of(Type::Texts(Some(header_value_entry)))
            .default(Default::Texts(&[])),
        /// Query arguments.
        querystring: Vec<String> = Field::of(Type::Texts(Some(valued_entry)))
            .default(Default::Texts(&[])),
        /// The path the function sees.
        uri: Option<String> = Field::of(Type::Text(Some(uri_template))),
    }
}

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "request-transformer" {
        /// The method the function sees.
        http_method: Option<String> = Field::of(Type::Text(Some(http_method))),
        /// Removed first.
        remove: Names = Field::of(Type::Record(&NAMES)),
        /// Then renamed.
        rename: Renames = Field::of(Type::Record(&RENAMES)),
        /// Then replaced where present.
        replace: Replacements = Field::of(Type::Record(&REPLACEMENTS)),
        /// Then added where missing.
        add: Pairs = Field::of(Type::Record(&PAIRS)),
        /// Then appended.
        append: Pairs = Field::of(Type::Record(&PAIRS)),
    }
}

/// A `name:value` entry, its value a template (none: the entry has no value).
#[derive(Debug)]
struct Entry {
    name: String,
    value: Option<Template>,
}

fn entries(list: &[String]) -> Vec<Entry> {
    list.iter()
        .map(|e| {
            let (name, value) = split_pair(e);
            Entry {
                name: name.to_string(),
                // Checked by the schema: a value that does not parse never gets here.
                value: value.and_then(|v| Template::parse(v).ok()),
            }
        })
        .collect()
}

/// One kind of thing (headers, body, query): its five operations.
#[derive(Debug, Default)]
struct Operations {
    remove: Vec<String>,
    rename: Vec<Entry>,
    replace: Vec<Entry>,
    add: Vec<Entry>,
    append: Vec<Entry>,
}

impl Operations {
    fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }
}

/// The plugin as configured.
#[derive(Debug)]
pub struct RequestTransformer {
    http_method: Option<String>,
    uri: Option<Template>,
    headers: Operations,
    body: Operations,
    query: Operations,
}

impl Plugin for RequestTransformer {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 801;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(_: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let s = Settings::read(obj);
        let names = |list: &[String]| list.iter().map(|e| split_pair(e).0.to_string()).collect();
        Some(RequestTransformer {
            http_method: s.http_method,
            uri: s.replace.uri.as_deref().and_then(|u| Template::parse(u).ok()),
            headers: Operations {
                remove: names(&s.remove.headers),
                rename: entries(&s.rename.headers),
                replace: entries(&s.replace.headers),
                add: entries(&s.add.headers),
                append: entries(&s.append.headers),
            },
            body: Operations {
                remove: names(&s.remove.body),
                rename: entries(&s.rename.body),
                replace: entries(&s.replace.body),
                add: entries(&s.add.body),
                append: entries(&s.append.body),
            },
            query: Operations {
                remove: names(&s.remove.querystring),
                rename: entries(&s.rename.querystring),
                replace: entries(&s.replace.querystring),
                add: entries(&s.add.querystring),
                append: entries(&s.append.querystring),
            },
        })
    }

    async fn access(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        _: &mut Response,
    ) -> Verdict {
        self.transform(req, ctx)
    }
}

/// The request as the templates read it: taken once, before any change (Kong's docs: "a
/// non-mutable table of request headers, querystrings, and captured URIs").
struct Snapshot<'a> {
    /// Lowercase names.
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    query: Args,
    captures: super::UriCaptures<'a>,
}

impl Values for Snapshot<'_> {
    fn lookup(&self, source: Source, key: &Key) -> Option<&[u8]> {
        match (source, key) {
            (Source::Headers, Key::Name(name)) => {
                // ngx's header table: any case, `_` for `-`.
                let wanted: Vec<u8> = name
                    .bytes()
                    .map(|b| if b == b'_' { b'-' } else { b.to_ascii_lowercase() })
                    .collect();
                let exact = name.to_ascii_lowercase();
                self.headers
                    .iter()
                    .find(|(n, _)| *n == wanted || *n == exact.as_bytes())
                    .map(|(_, v)| v.as_slice())
            }
            (Source::QueryParams, Key::Name(name)) => self.query.first(name.as_bytes()),
            (Source::UriCaptures, Key::Name(name)) => (self.captures)(CaptureKey::Name(name)),
            (Source::UriCaptures, Key::Number(n)) => (self.captures)(CaptureKey::Number(*n)),
            _ => None,
        }
    }
}

/// A rendered value.
fn render(template: &Template, values: &Snapshot<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    template.render(values, &mut out);
    out
}

impl RequestTransformer {
    fn transform(&self, req: &Request<'_>, ctx: &mut AccessContext<'_, '_>) -> Verdict {
        let headers: Vec<(Vec<u8>, Vec<u8>)> = ctx
            .edits
            .effective_headers(req)
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect();
        let snapshot = Snapshot {
            headers,
            query: Args::decode(req.query().unwrap_or_default()),
            captures: ctx.uri_captures,
        };
        let header = |name: &str| {
            snapshot
                .headers
                .iter()
                .find(|(n, _)| n == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };

        // The path.
        if let Some(uri) = &self.uri {
            let path = render(uri, &snapshot);
            if !path.starts_with(b"/") {
                return Verdict::Failed(format!(
                    "request-transformer: replace.uri rendered {:?}, which is not a path",
                    String::from_utf8_lossy(&path)
                ));
            }
            ctx.edits.set_path(&escape_path(&path));
        }

        // The method; to GET, HEAD or TRACE, a form body's arguments join the query.
        let mut query = snapshot.query.clone();
        let mut query_changed = false;
        if let Some(method) = &self.http_method {
            ctx.edits.set_method(method);
            let bodiless = matches!(method.as_str(), "GET" | "HEAD" | "TRACE");
            if bodiless && body_type(header("content-type")) == Some(BodyType::Form) {
                let form = Args::decode(req.body);
                if !form.0.is_empty() {
                    for (name, value) in form.0 {
                        query.append_value(name, value);
                    }
                    query_changed = true;
                }
            }
        }

        // Headers.
        let mut content_type = header("content-type").map(<[u8]>::to_vec);
        if !self.headers.is_empty() {
            let list = self.transform_headers(&snapshot);
            content_type = list
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .and_then(|(_, v)| v.first().cloned());
            ctx.edits.replace_headers();
            for (name, values) in &list {
                for v in values {
                    ctx.edits.add_header(name, v);
                }
            }
        }

        // Body.
        if !self.body.is_empty() {
            let body = match body_type(content_type.as_deref()) {
                Some(BodyType::Json) => self.transform_json(req.body, &snapshot),
                Some(BodyType::Form) => self.transform_form(req.body, &snapshot),
                _ => None,
            };
            if let Some(body) = body {
                let mut len = Vec::new();
                crate::json::write_u64(&mut len, body.len() as u64);
                ctx.edits.set_header("content-length", &len);
                ctx.edits.set_body(&body);
            }
        }

        // Query.
        if !self.query.is_empty() {
            let ops = &self.query;
            for name in &ops.remove {
                query.remove(name.as_bytes());
            }
            for e in &ops.rename {
                if let Some(new) = &e.value {
                    query.rename(e.name.as_bytes(), &render(new, &snapshot));
                }
            }
            for e in &ops.replace {
                if let Some(v) = &e.value {
                    if query.has(e.name.as_bytes()) {
                        query.set(e.name.as_bytes(), ArgValue::Values(vec![render(v, &snapshot)]));
                    }
                }
            }
            for e in &ops.add {
                if let Some(v) = &e.value {
                    if !query.has(e.name.as_bytes()) {
                        query.set(e.name.as_bytes(), ArgValue::Values(vec![render(v, &snapshot)]));
                    }
                }
            }
            for e in &ops.append {
                if let Some(v) = &e.value {
                    query.append_value(e.name.as_bytes().to_vec(), ArgValue::Values(vec![render(v, &snapshot)]));
                }
            }
            query_changed = true;
        }
        if query_changed {
            ctx.edits.set_query(&query.encode());
        }
        Verdict::Continue
    }

    /// Kong's `transform_headers`: the header table (lowercase names, `host` apart), the five
    /// operations on it, then every header set from it; `host` kept unless replaced.
    fn transform_headers(&self, snapshot: &Snapshot<'_>) -> Vec<(String, Vec<Vec<u8>>)> {
        let mut host: Vec<Vec<u8>> = Vec::new();
        let mut table: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        for (name, value) in &snapshot.headers {
            let name = String::from_utf8_lossy(name).into_owned();
            if name == "host" {
                host.push(value.clone());
                continue;
            }
            match table.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value.clone()),
                None => table.push((name, vec![value.clone()])),
            }
        }
        let find = |table: &[(String, Vec<Vec<u8>>)], name: &str| {
            table.iter().position(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let ops = &self.headers;
        for name in &ops.remove {
            if let Some(at) = find(&table, name) {
                table.remove(at);
            }
        }
        for e in &ops.rename {
            let Some(new) = e.value.as_ref().map(|t| render(t, snapshot)) else {
                continue;
            };
            let new = String::from_utf8_lossy(&new).into_owned();
            // A new name is sent lowercase, as Kong sets it; a change of case only keeps it.
            let new = if new.eq_ignore_ascii_case(&e.name) {
                new
            } else {
                new.to_ascii_lowercase()
            };
            if let Some(at) = find(&table, &e.name) {
                let (_, values) = table.remove(at);
                match find(&table, &new) {
                    Some(existing) => table[existing].1 = values,
                    None => table.push((new, values)),
                }
            }
        }
        for e in &ops.replace {
            let Some(value) = e.value.as_ref().map(|t| render(t, snapshot)) else {
                continue;
            };
            if e.name.eq_ignore_ascii_case("host") {
                host = vec![value];
            } else if let Some(at) = find(&table, &e.name) {
                table[at].1 = vec![value];
            }
        }
        for e in &ops.add {
            let Some(value) = e.value.as_ref().map(|t| render(t, snapshot)) else {
                continue;
            };
            if !e.name.eq_ignore_ascii_case("host") && find(&table, &e.name).is_none() {
                table.push((e.name.clone(), vec![value]));
            }
        }
        for e in &ops.append {
            let Some(value) = e.value.as_ref().map(|t| render(t, snapshot)) else {
                continue;
            };
            match find(&table, &e.name) {
                // The name as configured, the values kept.
                Some(at) => {
                    table[at].0 = e.name.clone();
                    table[at].1.push(value);
                }
                None => table.push((e.name.clone(), vec![value])),
            }
        }
        let mut list = Vec::with_capacity(table.len() + 1);
        if !host.is_empty() {
            list.push(("host".to_string(), host));
        }
        list.extend(table);
        list
    }

    /// Kong's `transform_json_body`: `None` when nothing changed or the body is not a JSON
    /// object (an empty body counts as `{}`).
    fn transform_json(&self, body: &[u8], snapshot: &Snapshot<'_>) -> Option<Vec<u8>> {
        let mut object = if body.is_empty() {
            JsonObject::default()
        } else {
            JsonObject::parse(body)?
        };
        let ops = &self.body;
        let value = |t: &Template| Value::String(String::from_utf8_lossy(&render(t, snapshot)).into_owned());
        let mut changed = false;
        if !body.is_empty() {
            for name in &ops.remove {
                object.remove(name);
                changed = true;
            }
            for e in &ops.rename {
                let Some(new) = e.value.as_ref().map(|t| render(t, snapshot)) else {
                    continue;
                };
                let new = String::from_utf8_lossy(&new).into_owned();
                if new != e.name && object.is_truthy(&e.name) {
                    changed |= object.rename(&e.name, &new);
                }
            }
            for e in &ops.replace {
                if let Some(t) = e.value.as_ref().filter(|_| object.is_truthy(&e.name)) {
                    object.set(&e.name, value(t));
                    changed = true;
                }
            }
        }
        for e in &ops.add {
            if let Some(t) = e.value.as_ref().filter(|_| !object.is_truthy(&e.name)) {
                object.set(&e.name, value(t));
                changed = true;
            }
        }
        for e in &ops.append {
            if let Some(t) = &e.value {
                object.append(&e.name, value(t));
                changed = true;
            }
        }
        changed.then(|| {
            let mut out = Vec::with_capacity(body.len() + 64);
            object.write(&mut out);
            out
        })
    }

    /// Kong's `transform_url_encoded_body`.
    fn transform_form(&self, body: &[u8], snapshot: &Snapshot<'_>) -> Option<Vec<u8>> {
        let mut form = Args::decode(body);
        let ops = &self.body;
        let mut changed = false;
        if !body.is_empty() {
            for name in &ops.remove {
                form.remove(name.as_bytes());
                changed = true;
            }
            for e in &ops.rename {
                if let Some(new) = &e.value {
                    changed |= form.rename(e.name.as_bytes(), &render(new, snapshot));
                }
            }
            for e in &ops.replace {
                if let Some(v) = e.value.as_ref().filter(|_| form.has(e.name.as_bytes())) {
                    form.set(e.name.as_bytes(), ArgValue::Values(vec![render(v, snapshot)]));
                    changed = true;
                }
            }
        }
        for e in &ops.add {
            if let Some(v) = e.value.as_ref().filter(|_| !form.has(e.name.as_bytes())) {
                form.set(e.name.as_bytes(), ArgValue::Values(vec![render(v, snapshot)]));
                changed = true;
            }
        }
        for e in &ops.append {
            if let Some(v) = &e.value {
                form.append_value(e.name.as_bytes().to_vec(), ArgValue::Values(vec![render(v, snapshot)]));
                changed = true;
            }
        }
        changed.then(|| form.encode())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyType {
    Json,
    Form,
}

/// Kong's `get_content_type`: a substring test, JSON first.
fn body_type(content_type: Option<&[u8]>) -> Option<BodyType> {
    let ct = content_type?.to_ascii_lowercase();
    let has = |needle: &[u8]| memchr::memmem::find(&ct, needle).is_some();
    if has(b"application/json") {
        Some(BodyType::Json)
    } else if has(b"multipart/form-data") {
        None
    } else if has(b"application/x-www-form-urlencoded") {
        Some(BodyType::Form)
    } else {
        None
    }
}

/// An argument's value as ngx decodes one: a flag (`?a`, Lua's `true`) or its values.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ArgValue {
    Flag,
    Values(Vec<Vec<u8>>),
}

/// Decoded arguments (a query or a form), grouped by name in the order names first came.
#[derive(Clone, Debug, Default)]
struct Args(Vec<(Vec<u8>, ArgValue)>);

impl Args {
    /// ngx's `decode_args`: `+` and `%XX` decoded, a repeated name collecting its values.
    fn decode(raw: &[u8]) -> Args {
        let mut args = Args::default();
        // Where each name is, so that many repeated names stay linear.
        let mut at = std::collections::HashMap::<Vec<u8>, usize>::new();
        for (name, value) in crate::http::form::fields(raw) {
            let mut n = Vec::new();
            crate::http::form::decode_into(&mut n, name);
            if n.is_empty() {
                continue;
            }
            let value = value.map(|v| {
                let mut out = Vec::new();
                crate::http::form::decode_into(&mut out, v);
                out
            });
            match (at.get(&n), value) {
                (Some(&i), Some(v)) => match &mut args.0[i].1 {
                    ArgValue::Values(values) => values.push(v),
                    flag => *flag = ArgValue::Values(vec![v]),
                },
                (Some(_), None) => {}
                (None, value) => {
                    at.insert(n.clone(), args.0.len());
                    let value = value.map_or(ArgValue::Flag, |v| ArgValue::Values(vec![v]));
                    args.0.push((n, value));
                }
            }
        }
        args
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        self.0.iter().position(|(n, _)| n == name)
    }

    fn has(&self, name: &[u8]) -> bool {
        self.find(name).is_some()
    }

    /// The first value of `name` (a flag: the empty value).
    fn first(&self, name: &[u8]) -> Option<&[u8]> {
        self.find(name).map(|at| match &self.0[at].1 {
            ArgValue::Values(values) => values.first().map_or(&b""[..], Vec::as_slice),
            ArgValue::Flag => &b""[..],
        })
    }

    fn remove(&mut self, name: &[u8]) {
        self.0.retain(|(n, _)| n != name);
    }

    /// Kong's `rename`: `false` when `old` is missing or the names are the same.
    fn rename(&mut self, old: &[u8], new: &[u8]) -> bool {
        if old == new {
            return false;
        }
        let Some(at) = self.find(old) else {
            return false;
        };
        let (_, value) = self.0.remove(at);
        self.set(new, value);
        true
    }

    fn set(&mut self, name: &[u8], value: ArgValue) {
        match self.find(name) {
            Some(at) => self.0[at].1 = value,
            None => self.0.push((name.to_vec(), value)),
        }
    }

    /// Kong's `append_value` (and the method change's join): the values gathered.
    fn append_value(&mut self, name: Vec<u8>, value: ArgValue) {
        let ArgValue::Values(more) = value else {
            return;
        };
        match self.find(&name) {
            Some(at) => match &mut self.0[at].1 {
                ArgValue::Values(values) => values.extend(more),
                flag => *flag = ArgValue::Values(more),
            },
            None => self.0.push((name, ArgValue::Values(more))),
        }
    }

    /// ngx's `encode_args`: each value `name=value` (a flag just `name`), both escaped as a
    /// URI component (RFC 3986's unreserved bytes kept, as AWS's encoding does).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.0 {
            let mut pair = |v: Option<&[u8]>| {
                if !out.is_empty() {
                    out.push(b'&');
                }
                crate::aws::uri::encode_query_bytes(&mut out, name);
                if let Some(v) = v {
                    out.push(b'=');
                    crate::aws::uri::encode_query_bytes(&mut out, v);
                }
            };
            match value {
                ArgValue::Flag => pair(None),
                ArgValue::Values(values) => {
                    for v in values {
                        pair(Some(v));
                    }
                }
            }
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A rendered path made a valid request-target path: bytes a path cannot hold as they are
/// (spaces, controls, `?`, `#`, non-ASCII) as `%XX`; the rest, `%` included, as given.
fn escape_path(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b);
        if keep {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_decode_and_encode_as_ngx_does() {
        let args = Args::decode(b"a=1&flag&a=x+y&b=%2F&&=skip");
        assert_eq!(args.encode(), b"a=1&a=x%20y&flag&b=%2F");
        assert_eq!(args.first(b"a"), Some(&b"1"[..]));
        assert_eq!(args.first(b"flag"), Some(&b""[..]));
    }

    #[test]
    fn content_types_are_found_as_kong_finds_them() {
        assert_eq!(body_type(Some(b"Application/JSON; charset=utf-8")), Some(BodyType::Json));
        assert_eq!(body_type(Some(b"application/x-www-form-urlencoded")), Some(BodyType::Form));
        assert_eq!(body_type(Some(b"multipart/form-data; boundary=x")), None);
        assert_eq!(body_type(None), None);
    }

    #[test]
    fn a_rendered_path_stays_a_path() {
        assert_eq!(escape_path(b"/a b/%41?x#y/\xc3\xa9"), b"/a%20b/%41%3Fx%23y/%C3%A9");
    }
}
