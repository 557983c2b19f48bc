//! Request arguments as Kong's PDK sees them: query arguments (`kong.request.get_query()`) and
//! body arguments (`kong.request.get_body()`) for urlencoded, JSON and multipart bodies.
//!
//! Arguments are collected into an [`Args`] owned by the worker and reused: decoded keys and
//! values go into one scratch buffer, JSON values stay as spans of the raw body.

use crate::aws::uri::percent_decode_into;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;

/// Most arguments read from a query or a form, as nginx's `lua_max_uri_args` / `lua_max_post_args`.
pub const MAX_ARGS: usize = 100;

/// The value of one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgValue {
    /// A flag argument without `=` (`?debug`): JSON `true`.
    Flag,
    /// Decoded text, a range of [`Args::scratch`].
    Text(Range<usize>),
    /// A JSON value exactly as it appears in the body, a range of the body.
    Json(Range<usize>),
}

/// One argument: its decoded key (a range of the scratch) and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// Key bytes in [`Args::scratch`].
    pub key: Range<usize>,
    /// The value.
    pub value: ArgValue,
}

/// How a body's content type is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`.
    Json,
    /// `multipart/form-data`.
    Multipart,
    /// Any other type: Kong's "unsupported content type".
    Unsupported,
    /// No Content-Type header: Kong's "missing content type".
    Missing,
}

/// The media type of a Content-Type value, lower-cased comparison, parameters ignored.
pub fn body_kind(content_type: Option<&[u8]>) -> BodyKind {
    let Some(ct) = content_type else {
        return BodyKind::Missing;
    };
    let media = media_type(ct);
    if media.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        BodyKind::Form
    } else if media.eq_ignore_ascii_case(b"application/json") {
        BodyKind::Json
    } else if media.eq_ignore_ascii_case(b"multipart/form-data") {
        BodyKind::Multipart
    } else {
        BodyKind::Unsupported
    }
}

/// The media type without parameters and surrounding whitespace.
pub fn media_type(content_type: &[u8]) -> &[u8] {
    let end = memchr::memchr(b';', content_type).unwrap_or(content_type.len());
    crate::http::framing::trim_ows(&content_type[..end])
}

/// Types Kong sends as raw text in `request_body` (never base64), compared by media type
/// without parameters, case-insensitively (SPEC §8: Kong compares exact strings).
pub fn is_raw_text_type(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else { return false };
    let media = media_type(ct);
    [
        &b"text/plain"[..],
        b"text/html",
        b"application/xml",
        b"text/xml",
        b"application/soap+xml",
    ]
    .iter()
    .any(|t| media.eq_ignore_ascii_case(t))
}

/// A reusable list of arguments with their decoded bytes.
#[derive(Debug, Default)]
pub struct Args {
    /// Decoded keys and text values.
    pub scratch: Vec<u8>,
    /// The arguments, in the order they appeared.
    pub list: Vec<Arg>,
    /// Set when the body was a JSON array: its elements, as JSON spans (keys "1", "2", …).
    pub json_array: bool,
}

impl Args {
    /// Empties the list, keeping its allocations.
    pub fn clear(&mut self) {
        self.scratch.clear();
        self.list.clear();
        self.json_array = false;
    }

    /// The decoded key of `arg`.
    pub fn key(&self, arg: &Arg) -> &[u8] {
        &self.scratch[arg.key.clone()]
    }

    /// Parses `a=1&b&c=%20` (query strings and urlencoded bodies): `+` is a space, `%XX` is
    /// decoded, a key without `=` is a flag, an empty key is skipped, at most [`MAX_ARGS`].
    pub fn parse_urlencoded(&mut self, input: &[u8]) {
        self.parse_urlencoded_limited(input, MAX_ARGS);
    }

    /// Like [`Args::parse_urlencoded`] without the argument cap (Admin API bodies, bounded by
    /// the body size limit).
    pub fn parse_urlencoded_all(&mut self, input: &[u8]) {
        self.parse_urlencoded_limited(input, usize::MAX);
    }

    fn parse_urlencoded_limited(&mut self, input: &[u8], limit: usize) {
        for part in input.split(|&b| b == b'&') {
            if self.list.len() >= limit {
                break;
            }
            if part.is_empty() {
                continue;
            }
            let (raw_key, raw_value) = match memchr::memchr(b'=', part) {
                Some(i) => (&part[..i], Some(&part[i + 1..])),
                None => (part, None),
            };
            let key_start = self.scratch.len();
            percent_decode_into(&mut self.scratch, raw_key, true);
            if self.scratch.len() == key_start {
                continue;
            }
            let key = key_start..self.scratch.len();
            let value = match raw_value {
                None => ArgValue::Flag,
                Some(v) => {
                    let start = self.scratch.len();
                    percent_decode_into(&mut self.scratch, v, true);
                    ArgValue::Text(start..self.scratch.len())
                }
            };
            self.list.push(Arg { key, value });
        }
    }

    /// Parses a JSON body: an object's members become arguments with raw JSON values, an
    /// array's elements become arguments "1", "2", … (Lua's 1-based indexes). `false` when the
    /// body is not a JSON object or array (Kong: "invalid json body"), leaving no arguments.
    pub fn parse_json(&mut self, body: &[u8]) -> bool {
        let mut de = serde_json::Deserializer::from_slice(body);
        let start = self.list.len();
        let ok = de.deserialize_any(JsonArgs { args: self, body }).is_ok() && de.end().is_ok();
        if !ok {
            self.list.truncate(start);
            self.json_array = false;
        }
        ok
    }

    /// Parses a multipart body's fields (values are raw bytes). `false` when it is not valid
    /// multipart for the boundary in `content_type`.
    pub fn parse_multipart(&mut self, content_type: &[u8], body: &[u8]) -> bool {
        let Some(boundary) = super::multipart::boundary(content_type) else {
            return false;
        };
        let start = self.list.len();
        let scratch = &mut self.scratch;
        let list = &mut self.list;
        let ok = super::multipart::for_each_field(body, boundary, |name, value| {
            if list.len() >= MAX_ARGS {
                return;
            }
            let k = scratch.len();
            scratch.extend_from_slice(name);
            let v = scratch.len();
            scratch.extend_from_slice(value);
            list.push(Arg {
                key: k..v,
                value: ArgValue::Text(v..scratch.len()),
            });
        })
        .is_ok();
        if !ok {
            self.list.truncate(start);
        }
        ok
    }
}

/// A JSON object key, borrowed from the body unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Visits the top level of a JSON body, recording members without building a tree.
struct JsonArgs<'a, 'de> {
    args: &'a mut Args,
    body: &'de [u8],
}

impl JsonArgs<'_, '_> {
    fn span(&self, raw: &RawValue) -> Range<usize> {
        let s = raw.get().as_bytes();
        let start = s.as_ptr() as usize - self.body.as_ptr() as usize;
        start..start + s.len()
    }
}

impl<'de> Visitor<'de> for JsonArgs<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            let value = self.span(raw);
            let k = self.args.scratch.len();
            self.args.scratch.extend_from_slice(key.as_bytes());
            let key = k..self.args.scratch.len();
            // A repeated key: the last one wins, as in a decoded Lua table.
            let scratch = &self.args.scratch;
            if let Some(existing) = self
                .args
                .list
                .iter_mut()
                .find(|a| scratch[a.key.clone()] == scratch[key.clone()])
            {
                existing.value = ArgValue::Json(value);
            } else {
                self.args.list.push(Arg {
                    key,
                    value: ArgValue::Json(value),
                });
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 1u64;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let value = self.span(raw);
            let k = self.args.scratch.len();
            crate::json::write_u64(&mut self.args.scratch, index);
            let key = k..self.args.scratch.len();
            self.args.list.push(Arg {
                key,
                value: ArgValue::Json(value),
            });
            index += 1;
        }
        self.args.json_array = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(args: &Args, body: &[u8]) -> Vec<(String, String)> {
        args.list
            .iter()
            .map(|a| {
                let v = match &a.value {
                    ArgValue::Flag => "<true>".to_string(),
                    ArgValue::Text(r) => String::from_utf8_lossy(&args.scratch[r.clone()]).into(),
                    ArgValue::Json(r) => {
                        format!("json:{}", String::from_utf8_lossy(&body[r.clone()]))
                    }
                };
                (String::from_utf8_lossy(args.key(a)).into(), v)
            })
            .collect()
    }

    #[test]
    fn urlencoded() {
        let mut a = Args::default();
        a.parse_urlencoded(b"a=1&flag&a=2&b=x+y%21&=skipped&&c=");
        let got = show(&a, b"");
        let want = [
            ("a", "1"),
            ("flag", "<true>"),
            ("a", "2"),
            ("b", "x y!"),
            ("c", ""),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn caps_the_number_of_args() {
        let mut a = Args::default();
        let q: Vec<String> = (0..150).map(|i| format!("k{i}=v")).collect();
        a.parse_urlencoded(q.join("&").as_bytes());
        assert_eq!(a.list.len(), MAX_ARGS);
    }

    #[test]
    fn json_objects_arrays_and_invalid() {
        let mut a = Args::default();
        let body = br#" {"key1":"v","n":[1, {}],"k\"q":null,"key1":2} "#;
        assert!(a.parse_json(body));
        assert_eq!(
            show(&a, body),
            [
                ("key1".into(), "json:2".into()),
                ("n".into(), "json:[1, {}]".into()),
                ("k\"q".into(), "json:null".into())
            ]
        );
        a.clear();
        let body = b"[{}, []]";
        assert!(a.parse_json(body));
        assert!(a.json_array);
        assert_eq!(
            show(&a, body),
            [
                ("1".into(), "json:{}".into()),
                ("2".into(), "json:[]".into())
            ]
        );
        for bad in [&b"\"str\""[..], b"5", b"{", b"{} x", b"", b"{\"a\":\xff}"] {
            a.clear();
            assert!(!a.parse_json(bad), "{:?}", String::from_utf8_lossy(bad));
            assert!(a.list.is_empty());
        }
    }

    /// Found by fuzzing: a number beyond f64 is valid JSON and is kept as written.
    #[test]
    fn huge_numbers_are_valid_json() {
        let mut a = Args::default();
        let body = b"[33333e01220843840]";
        assert!(a.parse_json(body));
        assert_eq!(
            show(&a, body),
            [("1".into(), "json:33333e01220843840".into())]
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            body_kind(Some(b"Application/JSON; charset=utf-8")),
            BodyKind::Json
        );
        assert_eq!(
            body_kind(Some(b"application/x-www-form-urlencoded")),
            BodyKind::Form
        );
        assert_eq!(
            body_kind(Some(b"multipart/form-data; boundary=x")),
            BodyKind::Multipart
        );
        assert_eq!(body_kind(Some(b"text/plain")), BodyKind::Unsupported);
        assert_eq!(body_kind(None), BodyKind::Missing);
        assert!(is_raw_text_type(Some(b"text/plain; charset=utf-8")));
        assert!(!is_raw_text_type(Some(b"application/octet-stream")));
    }
}
