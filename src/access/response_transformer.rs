//! Kong's `response-transformer` (priority 800): changes the answer the client gets, whoever
//! made it (the function, or a plugin that answered). Headers: `remove`, `rename`,
//! `replace`, `add`, `append`, in that order, each deciding on the headers as they were
//! before any change (Kong reads them once, then edits). A JSON body (`application/json` or a
//! `+json` type): top-level members, the same five operations, `json_types` casting the added
//! values. A streamed answer's body passes untouched (its headers are transformed): it is
//! sent as it arrives, never held whole.
//!
//! Kong's details kept: a `name:value` entry splits at the first colon and drops any colons
//! after it; an entry without a value does nothing (but `remove`); `add` sets a member that is
//! missing or `false` (Lua's falsy); `replace` only one that is neither; `append` to a string
//! makes an array of both, to an array pushes, to anything else replaces it with `[value]`; a
//! value is JSON-escaped as a string is, then its quotes and slashes unescaped; a body that
//! does not parse as a JSON object is left as it is (logged).

use super::{Plugin, RequestEdits};
use crate::http::encode::{header_values, Response};
use crate::http::request::Request;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use super::entries::{colon_pair, header_rename, split_pair};
use super::json_object::JsonObject;
use serde_json::{Map, Value};

const JSON_TYPES: &[&str] = &["boolean", "number", "string"];

crate::settings! {
    /// `remove`: names.
    pub struct Names, schema NAMES = "remove" {
        /// Top-level members of a JSON body.
        json: Vec<String> = Field::of(Type::Texts(None)).default(Default::Texts(&[])),
        /// Headers.
        headers: Vec<String> = Field::of(Type::Texts(None)).default(Default::Texts(&[])),
    }
}

crate::settings! {
    /// `rename`: `old:new` pairs.
    pub struct Renames, schema RENAMES = "rename" {
        /// Members of a JSON body.
        json: Vec<String> = Field::of(Type::Texts(Some(colon_pair))).default(Default::Texts(&[])),
        /// Headers (both names valid header names).
        headers: Vec<String> = Field::of(Type::Texts(Some(header_rename)))
            .default(Default::Texts(&[])),
    }
}

crate::settings! {
    /// `replace`, `add`, `append`: `name:value` pairs.
    pub struct Values, schema VALUES = "values" {
        /// Members of a JSON body.
        json: Vec<String> = Field::of(Type::Texts(Some(colon_pair))).default(Default::Texts(&[])),
        /// The type of each `json` value, by position: `boolean`, `number` or `string`.
        json_types: Vec<String> = Field::of(Type::TextsOneOf(JSON_TYPES))
            .default(Default::Texts(&[])),
        /// Headers.
        headers: Vec<String> = Field::of(Type::Texts(Some(colon_pair)))
            .default(Default::Texts(&[])),
    }
}

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "response-transformer" {
        /// Removed first.
        remove: Names = Field::of(Type::Record(&NAMES)),
        /// Then renamed.
        rename: Renames = Field::of(Type::Record(&RENAMES)),
        /// Then replaced where present.
        replace: Values = Field::of(Type::Record(&VALUES)),
        /// Then added where missing.
        add: Values = Field::of(Type::Record(&VALUES)),
        /// Then appended.
        append: Values = Field::of(Type::Record(&VALUES)),
    }
}

/// A JSON value to set: its text as Kong makes it, and the type to cast it to.
#[derive(Clone, Debug)]
struct JsonValue {
    name: String,
    value: Option<String>,
    cast: Option<String>,
}

/// `name:value` entries, split.
type Pairs = Vec<(String, Option<String>)>;

/// The plugin as configured.
#[derive(Debug)]
pub struct ResponseTransformer {
    remove_headers: Vec<String>,
    rename_headers: Pairs,
    replace_headers: Pairs,
    add_headers: Pairs,
    append_headers: Pairs,
    remove_json: Vec<String>,
    rename_json: Pairs,
    replace_json: Vec<JsonValue>,
    add_json: Vec<JsonValue>,
    append_json: Vec<JsonValue>,
}

fn pairs(entries: &[String]) -> Pairs {
    entries
        .iter()
        .map(|e| {
            let (name, value) = split_pair(e);
            (name.to_string(), value.map(str::to_string))
        })
        .collect()
}

fn json_values(v: &Values) -> Vec<JsonValue> {
    pairs(&v.json)
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| JsonValue {
            name,
            value,
            cast: v.json_types.get(i).cloned(),
        })
        .collect()
}

impl Plugin for ResponseTransformer {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 800;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(_: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let s = Settings::read(obj);
        Some(ResponseTransformer {
            remove_headers: s.remove.headers.clone(),
            rename_headers: pairs(&s.rename.headers),
            replace_headers: pairs(&s.replace.headers),
            add_headers: pairs(&s.add.headers),
            append_headers: pairs(&s.append.headers),
            remove_json: s.remove.json.clone(),
            rename_json: pairs(&s.rename.json),
            replace_json: json_values(&s.replace),
            add_json: json_values(&s.add),
            append_json: json_values(&s.append),
        })
    }

    fn response(&self, _: &Request<'_>, _: &RequestEdits, resp: &mut Response) {
        self.transform_headers(resp);
    }

    fn response_body(&self, _: &mut RequestEdits, resp: &mut Response) {
        if !self.transforms_json() || resp.body.is_empty() {
            return;
        }
        if !resp.header_value(b"content-type").is_some_and(is_json) {
            return;
        }
        match self.transform_json(&resp.body) {
            Some(body) => resp.body = body,
            None => log::warn!("response-transformer: body transform failed: the answer is not a JSON object"),
        }
    }
}

/// Kong's `is_json_body`: one of the comma-separated media types is `application/json` or
/// `application/<anything>+json`.
fn is_json(content_type: &[u8]) -> bool {
    content_type.split(|&b| b == b',').any(|part| {
        let media = crate::http::media::media_type(part.trim_ascii());
        let Some(slash) = memchr::memchr(b'/', media) else {
            return false;
        };
        let (kind, subtype) = (&media[..slash], &media[slash + 1..]);
        kind.eq_ignore_ascii_case(b"application")
            && (subtype.eq_ignore_ascii_case(b"json")
                || (subtype.len() > 5
                    && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")))
    })
}

impl ResponseTransformer {
    fn transforms_json(&self) -> bool {
        !(self.remove_json.is_empty()
            && self.rename_json.is_empty()
            && self.replace_json.is_empty()
            && self.add_json.is_empty()
            && self.append_json.is_empty())
    }

    /// The five header operations, each deciding on the headers as they came.
    fn transform_headers(&self, resp: &mut Response) {
        let edits_need_the_original = !(self.rename_headers.is_empty()
            && self.replace_headers.is_empty()
            && self.add_headers.is_empty());
        let original = if edits_need_the_original {
            resp.headers.clone()
        } else {
            Vec::new()
        };
        let had = |name: &str| header_values(&original, name.as_bytes()).next().is_some();
        for name in &self.remove_headers {
            resp.remove_header(name.as_bytes());
        }
        for (old, new) in &self.rename_headers {
            let Some(new) = new.as_deref().filter(|_| had(old)) else {
                continue;
            };
            resp.remove_header(new.as_bytes());
            for value in header_values(&original, old.as_bytes()) {
                resp.header(new.as_bytes(), value);
            }
            resp.remove_header(old.as_bytes());
        }
        for (name, value) in &self.replace_headers {
            if let Some(value) = value.as_deref().filter(|_| had(name)) {
                resp.set_header(name.as_bytes(), value.as_bytes());
            }
        }
        for (name, value) in &self.add_headers {
            if let Some(value) = value.as_deref().filter(|_| !had(name)) {
                resp.set_header(name.as_bytes(), value.as_bytes());
            }
        }
        for (name, value) in &self.append_headers {
            if let Some(value) = value {
                resp.header(name.as_bytes(), value.as_bytes());
            }
        }
        // Kong clears Content-Length here when the JSON body may change; this gateway writes
        // it from the body it sends.
    }

    /// The body with the JSON operations done; `None` when it is not a JSON object. Members
    /// keep their order and untouched ones their bytes; new ones go at the end.
    fn transform_json(&self, body: &[u8]) -> Option<Vec<u8>> {
        let mut object = JsonObject::parse(body)?;
        for name in &self.remove_json {
            object.remove(name);
        }
        for (old, new) in &self.rename_json {
            match new {
                // Kong sets the new name, then clears the old: the same name is cleared.
                Some(new) if new == old => object.remove(old),
                Some(new) => {
                    object.rename(old, new);
                }
                None => {}
            }
        }
        for v in &self.replace_json {
            if let Some(value) = kong_json_value(v).filter(|_| object.is_truthy(&v.name)) {
                object.set(&v.name, value);
            }
        }
        for v in &self.add_json {
            if let Some(value) = kong_json_value(v).filter(|_| !object.is_truthy(&v.name)) {
                object.set(&v.name, value);
            }
        }
        for v in &self.append_json {
            if let Some(value) = kong_json_value(v) {
                object.append(&v.name, value);
            }
        }
        let mut out = Vec::with_capacity(body.len() + 64);
        object.write(&mut out);
        Some(out)
    }
}

/// Kong's `json_value`: the text JSON-escaped as cjson escapes a string, its escaped quotes
/// and slashes then unescaped; cast to a number (none when it is not one) or a boolean
/// (`true` only for `"true"`) when its type says so. No value: none.
fn kong_json_value(v: &JsonValue) -> Option<Value> {
    let text = v.value.as_deref()?;
    let mut escaped = Vec::with_capacity(text.len());
    crate::json::write_str_contents(&mut escaped, text.as_bytes());
    let inner = String::from_utf8_lossy(&escaped);
    let mut kept = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('"') | Some('/')) {
            kept.push(chars.next().unwrap_or('"'));
        } else {
            kept.push(c);
            if c == '\\' {
                if let Some(next) = chars.next() {
                    kept.push(next);
                }
            }
        }
    }
    match v.cast.as_deref() {
        Some("number") => lua_number(&kept),
        Some("boolean") => Some(Value::Bool(kept == "true")),
        _ => Some(Value::String(kept)),
    }
}

/// Lua's `tonumber` of a decimal text (surrounding spaces allowed; hexadecimal too).
fn lua_number(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::from(i));
    }
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"));
    if let Some(h) = hex {
        return i64::from_str_radix(h, 16).ok().map(Value::from);
    }
    let f: f64 = t.parse().ok()?;
    if !f.is_finite() || t.eq_ignore_ascii_case("nan") || t.to_ascii_lowercase().contains("inf") {
        return None;
    }
    serde_json::Number::from_f64(f).map(Value::Number)
}
