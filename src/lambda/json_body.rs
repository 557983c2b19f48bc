//! Walking the top level of a JSON request body one member (or element) at a time.
//!
//! serde_json checks every key and value (as a `RawValue` span, so nothing is copied); this
//! module only reads the punctuation between them (`{ , : }`, `[ , ]`, whitespace). Walking
//! item by item lets a caller pause between items, so a body of a million tiny members never
//! holds a worker for the time it takes to read all of them (see `crate::pacing`). Deep nesting
//! costs no stack: serde_json skips nested values with an explicit stack of its own.
//!
//! A body is accepted exactly when `serde_json::from_slice::<&RawValue>` accepts it and it is an
//! object or an array (the `body_args` fuzz target checks this equivalence).

use crate::pacing::Pacer;
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde_json::value::RawValue;
use std::ops::Range;

/// The body is not a JSON object or array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidJson;

/// One item of the top level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// An object member: the key as written (with quotes and escapes) and the value's span.
    Member {
        /// The key, quotes included.
        raw_key: &'a [u8],
        /// The value, a range of the body.
        value: Range<usize>,
    },
    /// An array element: the value's span.
    Element {
        /// The value, a range of the body.
        value: Range<usize>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the opening bracket.
    Start,
    /// Inside an object or array, before its first item or closing bracket.
    First { object: bool },
    /// After an item: a comma or the closing bracket.
    Next { object: bool },
    /// After the closing bracket: only whitespace may follow.
    Done,
}

/// A cursor over the top level of a JSON body.
#[derive(Clone, Debug)]
pub struct TopLevel<'a> {
    body: &'a [u8],
    pos: usize,
    state: State,
}

impl<'a> TopLevel<'a> {
    /// A cursor at the start of `body`.
    pub fn new(body: &'a [u8]) -> Self {
        TopLevel {
            body,
            pos: 0,
            state: State::Start,
        }
    }

    /// True when the body turned out to be an array (known after the first call to `next`).
    pub fn is_array(&self) -> bool {
        matches!(
            self.state,
            State::First { object: false } | State::Next { object: false }
        ) || (self.state == State::Done && self.first_non_ws() == Some(b'['))
    }

    fn first_non_ws(&self) -> Option<u8> {
        self.body.iter().copied().find(|b| !is_ws(*b))
    }

    /// The next item; `Ok(None)` once the whole body was read and is valid.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Item<'a>>, InvalidJson> {
        loop {
            match self.state {
                State::Start => {
                    self.skip_ws();
                    let object = match self.body.get(self.pos) {
                        Some(b'{') => true,
                        Some(b'[') => false,
                        _ => return Err(InvalidJson),
                    };
                    self.pos += 1;
                    self.state = State::First { object };
                }
                State::First { object } => {
                    self.skip_ws();
                    if self.body.get(self.pos) == Some(&closing(object)) {
                        self.pos += 1;
                        self.state = State::Done;
                        continue;
                    }
                    return self.item(object).map(Some);
                }
                State::Next { object } => {
                    self.skip_ws();
                    match self.body.get(self.pos) {
                        Some(b',') => {
                            self.pos += 1;
                            return self.item(object).map(Some);
                        }
                        Some(&b) if b == closing(object) => {
                            self.pos += 1;
                            self.state = State::Done;
                        }
                        _ => return Err(InvalidJson),
                    }
                }
                State::Done => {
                    self.skip_ws();
                    return if self.pos == self.body.len() {
                        Ok(None)
                    } else {
                        Err(InvalidJson)
                    };
                }
            }
        }
    }

    /// Reads one member (`"key": value`) or element at the cursor.
    fn item(&mut self, object: bool) -> Result<Item<'a>, InvalidJson> {
        self.state = State::Next { object };
        if !object {
            let value = self.value()?;
            return Ok(Item::Element { value });
        }
        let key = self.value()?;
        let raw_key = &self.body[key];
        if raw_key.first() != Some(&b'"') {
            return Err(InvalidJson);
        }
        self.skip_ws();
        if self.body.get(self.pos) != Some(&b':') {
            return Err(InvalidJson);
        }
        self.pos += 1;
        let value = self.value()?;
        Ok(Item::Member { raw_key, value })
    }

    /// One JSON value at the cursor (leading whitespace skipped), checked by serde_json.
    fn value(&mut self) -> Result<Range<usize>, InvalidJson> {
        let rest = &self.body[self.pos..];
        let mut de = serde_json::Deserializer::from_slice(rest);
        let raw: &RawValue = serde::Deserialize::deserialize(&mut de).map_err(|_| InvalidJson)?;
        let s = raw.get().as_bytes();
        let start = self.pos + (s.as_ptr() as usize - rest.as_ptr() as usize);
        self.pos = start + s.len();
        Ok(start..self.pos)
    }

    fn skip_ws(&mut self) {
        while self.body.get(self.pos).copied().is_some_and(is_ws) {
            self.pos += 1;
        }
    }
}

fn closing(object: bool) -> u8 {
    if object {
        b'}'
    } else {
        b']'
    }
}

/// RFC 8259 insignificant whitespace.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// True when `body` is a JSON object or array, pausing between items when `pacer` says so.
pub async fn validate_paced(body: &[u8], pacer: &mut impl Pacer) -> bool {
    let mut walk = TopLevel::new(body);
    loop {
        match walk.next() {
            Ok(Some(_)) => pacer.pause_if_due().await,
            Ok(None) => return true,
            Err(InvalidJson) => return false,
        }
    }
}

/// Appends the text of a JSON string (`raw`, quotes included, already checked by serde_json)
/// to `out`, unescaped. A key without escapes is copied as is. A lone surrogate escape
/// (`"\ud800"`, which JSON's grammar allows) becomes its WTF-8 bytes, which the JSON writer
/// later turns into U+FFFD like any other invalid UTF-8.
pub fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default();
    if memchr::memchr(b'\\', inner).is_none() {
        out.extend_from_slice(inner);
        return;
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    // Cannot fail: serde_json already accepted this exact string.
    let _ = StrInto(out).deserialize(&mut de);
}

/// Deserializes a JSON string's bytes straight into a buffer, without allocating.
struct StrInto<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for StrInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_bytes(self)
    }
}

impl Visitor<'_> for StrInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.0.extend_from_slice(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(body: &str) -> Result<Vec<(String, String)>, InvalidJson> {
        let mut t = TopLevel::new(body.as_bytes());
        let mut out = Vec::new();
        while let Some(item) = t.next()? {
            out.push(match item {
                Item::Member { raw_key, value } => {
                    let mut k = Vec::new();
                    unescape_into(raw_key, &mut k);
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        body[value].to_string(),
                    )
                }
                Item::Element { value } => ("#".into(), body[value].to_string()),
            });
        }
        Ok(out)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn objects_and_arrays() {
        assert_eq!(
            walk(" {\"a\" : 1 ,\"b\\u0041\":{\"x\":[1,2]}, \"\":null}\n"),
            Ok(pairs(&[("a", "1"), ("bA", "{\"x\":[1,2]}"), ("", "null")]))
        );
        assert_eq!(
            walk("[ \"s\" ,[] ,{}]"),
            Ok(pairs(&[("#", "\"s\""), ("#", "[]"), ("#", "{}")]))
        );
        assert_eq!(walk("{}"), Ok(vec![]));
        assert_eq!(walk("[ ]"), Ok(vec![]));
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for bad in [
            "",
            " ",
            "1",
            "\"s\"",
            "null",
            "{",
            "[",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "{1:1}",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "[1]x",
            "[1][2]",
            "[01]",
            "[1.]",
            "{\"a\":1}}",
            "[\"\\x\"]",
            "[tru]",
        ] {
            assert_eq!(walk(bad), Err(InvalidJson), "{bad:?}");
            let serde_ok = serde_json::from_str::<&RawValue>(bad)
                .is_ok_and(|v| v.get().starts_with(['{', '[']));
            assert!(!serde_ok, "{bad:?} is valid for serde_json");
        }
    }

    #[test]
    fn lone_surrogates_are_valid_json_and_unescape_to_wtf8() {
        assert_eq!(
            walk(r#"{"\ud800A":1}"#),
            Ok(pairs(&[("\u{FFFD}\u{FFFD}\u{FFFD}A", "1")]))
        );
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let depth = 1_000_000;
        let body = format!("[{}{}]", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(walk(&body).map(|v| v.len()), Ok(1));
    }

    #[test]
    fn knows_the_shape() {
        let mut t = TopLevel::new(b"[]");
        assert_eq!(t.next(), Ok(None));
        assert!(t.is_array());
        let mut t = TopLevel::new(b" [1]");
        assert!(t.next().is_ok());
        assert!(t.is_array());
        let mut t = TopLevel::new(b"{}");
        assert_eq!(t.next(), Ok(None));
        assert!(!t.is_array());
    }
}
