//! Request arguments as Kong's PDK sees them: query arguments (`kong.request.get_query()`) and
//! body arguments (`kong.request.get_body()`) for urlencoded, JSON and multipart bodies.
//!
//! Arguments are collected into an [`Args`] owned by the worker and reused: decoded keys and
//! values go into one scratch buffer, JSON values stay as spans of the raw body.
//!
//! Repeated keys are grouped as arguments arrive: by a scan of the few seen so far, then,
//! past [`SCAN_LIMIT`], through a hash index, so a body of many members costs time linear in
//! its size.

use super::arg::NONE;
pub use super::arg::{Arg, ArgValue, Repeat};
use super::json_body::{unescape_into, Item, TopLevel};
use super::key_groups::KeyGroups;
use crate::http::form;
use crate::http::media::media_type;
use crate::pacing::Pacer;
use std::ops::Range;

/// Most arguments read from a query or a form, as nginx's `lua_max_uri_args` / `lua_max_post_args`.
/// JSON and multipart bodies are not capped, as in Kong (cjson and the multipart library read
/// every member and part); their cost is linear and paced (see `crate::pacing`).
pub const MAX_ARGS: usize = 100;

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
    list: Vec<Arg>,
    /// Set when the body was a JSON array: its elements, as JSON spans (keys "1", "2", …).
    pub json_array: bool,
    /// What a repeated key does in this list.
    repeat: Repeat,
    /// Set once the list outgrew [`SCAN_LIMIT`]: arguments are then grouped by
    /// [`Args::finish`], in one pass, through `groups`.
    deferred: bool,
    groups: KeyGroups,
}

/// Arguments grouped by a plain scan as they arrive: most requests have a handful, for which
/// comparing keys beats hashing them. Past this, grouping waits for [`Args::finish`].
const SCAN_LIMIT: usize = 16;

impl Args {
    /// Empties the list, keeping its allocations.
    pub fn clear(&mut self) {
        self.scratch.clear();
        self.list.clear();
        self.groups.clear();
        self.deferred = false;
        self.json_array = false;
    }

    /// Bytes of capacity held between requests.
    pub fn retained_bytes(&self) -> usize {
        self.scratch.capacity()
            + self.list.capacity() * std::mem::size_of::<Arg>()
            + self.groups.retained_bytes()
    }

    /// The arguments, in the order they appeared. A repeated key's group is read from its first
    /// argument ([`Arg::is_first`], [`Args::group`]); a JSON member repeated later keeps its
    /// first place with the last value, and the later ones are [`Arg::is_dropped`].
    pub fn list(&self) -> &[Arg] {
        &self.list
    }

    /// The decoded key of `arg`.
    pub fn key(&self, arg: &Arg) -> &[u8] {
        &self.scratch[arg.key.clone()]
    }

    /// True when some argument has this key.
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.json_array {
            // Elements are keyed "1" to "n", written without leading zeros.
            return key.first().is_some_and(|&d| d != b'0')
                && key.len() <= 10
                && key.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(key)
                    .ok()
                    .and_then(|k| k.parse::<usize>().ok())
                    .is_some_and(|i| i <= self.list.len());
        }
        if self.deferred {
            return self.groups.contains(&self.list, &self.scratch, key);
        }
        self.find(key).is_some()
    }

    /// Every argument with the same key as `first`, in order, starting with it.
    pub fn group<'a>(&'a self, first: &'a Arg) -> impl Iterator<Item = &'a Arg> + 'a {
        let mut at = Some(first);
        std::iter::from_fn(move || {
            let arg = at?;
            at = self.list.get(arg.next as usize);
            Some(arg)
        })
    }

    /// The first argument with `key`, by a scan (short lists only).
    fn find(&self, key: &[u8]) -> Option<usize> {
        let (list, scratch) = (&self.list, &self.scratch);
        list.iter()
            .position(|a| a.first && scratch[a.key.clone()] == *key)
    }

    /// Records an argument whose key bytes were just appended to the scratch at `key`.
    fn push(&mut self, key: Range<usize>, value: ArgValue, repeat: Repeat) {
        self.repeat = repeat;
        let at = self.list.len() as u32;
        if self.list.len() >= SCAN_LIMIT {
            self.deferred = true;
        }
        let first = if self.deferred {
            None
        } else {
            self.find(&self.scratch[key.clone()])
        };
        let Some(first) = first else {
            self.list.push(Arg {
                key,
                value,
                first: true,
                next: NONE,
                last: at,
                dropped: false,
            });
            return;
        };
        match repeat {
            Repeat::Replace => {
                // The key's bytes are already in the scratch once.
                self.scratch.truncate(key.start);
                self.list[first].value = value;
            }
            Repeat::Group => {
                let last = self.list[first].last as usize;
                self.list[last].next = at;
                self.list[first].last = at;
                self.list.push(Arg {
                    key,
                    value,
                    first: false,
                    next: NONE,
                    last: NONE,
                    dropped: false,
                });
            }
        }
    }

    /// Completes the grouping of repeated keys after the last push; a long list is grouped
    /// here in one pass (see [`KeyGroups`]), pausing when `pacer` says so. The parsers call it;
    /// a caller pushing arguments itself calls it before reading them.
    pub async fn finish(&mut self, pacer: &mut impl Pacer) {
        if self.deferred {
            let repeat = self.repeat;
            self.groups
                .group(&mut self.list, &self.scratch, repeat, pacer)
                .await;
        }
    }

    /// [`Args::finish`] without pauses.
    pub fn finish_unpaced(&mut self) {
        crate::pacing::run_unpaced(async |pacer| self.finish(pacer).await)
    }

    /// Adds a text argument: `key` lower-cased when asked (header names), repeats grouped.
    pub fn push_text(&mut self, key: &[u8], lowercase_key: bool, value: &[u8]) {
        let k = self.scratch.len();
        if lowercase_key {
            self.scratch.extend(key.iter().map(u8::to_ascii_lowercase));
        } else {
            self.scratch.extend_from_slice(key);
        }
        let v = self.scratch.len();
        self.scratch.extend_from_slice(value);
        let end = self.scratch.len();
        self.push(k..v, ArgValue::Text(v..end), Repeat::Group);
    }

    /// Parses `a=1&b&c=%20` (query strings and urlencoded bodies): `+` is a space, `%XX` is
    /// decoded, a key without `=` is a flag, an empty key is skipped, at most [`MAX_ARGS`].
    pub fn parse_urlencoded(&mut self, input: &[u8]) {
        for (raw_key, raw_value) in form::fields(input) {
            if self.list.len() >= MAX_ARGS {
                break;
            }
            let key_start = self.scratch.len();
            form::decode_into(&mut self.scratch, raw_key);
            if self.scratch.len() == key_start {
                continue;
            }
            let key = key_start..self.scratch.len();
            let value = match raw_value {
                None => ArgValue::Flag,
                Some(v) => {
                    let start = self.scratch.len();
                    form::decode_into(&mut self.scratch, v);
                    ArgValue::Text(start..self.scratch.len())
                }
            };
            self.push(key, value, Repeat::Group);
        }
        self.finish_unpaced();
    }

    /// Parses a JSON body: an object's members become arguments with raw JSON values, an
    /// array's elements become arguments "1", "2", … (Lua's 1-based indexes). `false` when the
    /// body is not a JSON object or array (Kong: "invalid json body"); the list is then empty.
    pub fn parse_json(&mut self, body: &[u8]) -> bool {
        crate::pacing::run_unpaced(async |pacer| self.parse_json_paced(body, pacer).await)
    }

    /// [`Args::parse_json`], pausing between items when `pacer` says so.
    pub async fn parse_json_paced(&mut self, body: &[u8], pacer: &mut impl Pacer) -> bool {
        let mut walk = TopLevel::new(body);
        loop {
            match walk.next() {
                Ok(Some(item)) => self.push_json(item),
                Ok(None) => {
                    self.finish(pacer).await;
                    return true;
                }
                Err(_) => {
                    self.clear();
                    return false;
                }
            }
            pacer.pause_if_due().await;
        }
    }

    /// Records one item of a JSON body's top level (see [`TopLevel`]): a member's key is
    /// unescaped, a repeated key's last value wins; an element gets the next index as its key.
    pub fn push_json(&mut self, item: Item<'_>) {
        let k = self.scratch.len();
        match item {
            Item::Member { raw_key, value } => {
                unescape_into(raw_key, &mut self.scratch);
                let key = k..self.scratch.len();
                self.push(key, ArgValue::Json(value), Repeat::Replace);
            }
            Item::Element { value } => {
                // Keys "1", "2", … are distinct by construction: no index needed (see
                // `contains`).
                self.json_array = true;
                let at = self.list.len() as u32;
                crate::json::write_u64(&mut self.scratch, u64::from(at) + 1);
                self.list.push(Arg {
                    key: k..self.scratch.len(),
                    value: ArgValue::Json(value),
                    first: true,
                    next: NONE,
                    last: at,
                    dropped: false,
                });
            }
        }
    }

    /// Parses a multipart body's fields (values are raw bytes). `false` when it is not valid
    /// multipart for the boundary in `content_type`; the list is then empty.
    pub fn parse_multipart(&mut self, content_type: &[u8], body: &[u8]) -> bool {
        crate::pacing::run_unpaced(async |pacer| {
            self.parse_multipart_paced(content_type, body, pacer).await
        })
    }

    /// [`Args::parse_multipart`], pausing between parts when `pacer` says so. Every field is
    /// kept, repeated names grouped (Kong's `get_all_with_arrays`).
    pub async fn parse_multipart_paced(
        &mut self,
        content_type: &[u8],
        body: &[u8],
        pacer: &mut impl Pacer,
    ) -> bool {
        let parts = crate::http::multipart::boundary(content_type)
            .and_then(|b| crate::http::multipart::Parts::new(body, b).ok());
        let Some(mut parts) = parts else {
            return false;
        };
        loop {
            match parts.next() {
                Ok(Some((name, value))) => self.push_text(name, false, value),
                Ok(None) => {
                    self.finish(pacer).await;
                    return true;
                }
                Err(_) => {
                    self.clear();
                    return false;
                }
            }
            pacer.pause_if_due().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(args: &Args, body: &[u8]) -> Vec<(String, String)> {
        args.list
            .iter()
            .filter(|a| !a.is_dropped())
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

    /// Grouping is the same whether keys are found by the scan or, past [`SCAN_LIMIT`], by
    /// the hash index: compared with a plain model over lists of every length up to 60.
    #[test]
    fn grouping_matches_a_plain_model_across_the_scan_limit() {
        for len in 0..60usize {
            // Keys from a small set, so repeats are many and start both before and after
            // the switch to the index.
            let keys: Vec<String> = (0..len)
                .map(|i| format!("k{}", (i * 7 + i / 3) % 23))
                .collect();
            // Form arguments: repeats join their first occurrence's group, in order.
            let form: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k}={i}"))
                .collect();
            let mut a = Args::default();
            a.parse_urlencoded(form.join("&").as_bytes());
            let mut want: Vec<(String, Vec<String>)> = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                match want.iter_mut().find(|(w, _)| w == k) {
                    Some((_, vs)) => vs.push(i.to_string()),
                    None => want.push((k.clone(), vec![i.to_string()])),
                }
            }
            let got: Vec<(String, Vec<String>)> = a
                .list()
                .iter()
                .filter(|x| x.is_first())
                .map(|first| {
                    let values = a
                        .group(first)
                        .map(|x| match &x.value {
                            ArgValue::Text(r) => {
                                String::from_utf8_lossy(&a.scratch[r.clone()]).into_owned()
                            }
                            other => format!("{other:?}"),
                        })
                        .collect();
                    (String::from_utf8_lossy(a.key(first)).into_owned(), values)
                })
                .collect();
            assert_eq!(got, want, "form of {len}");
            for (k, _) in &want {
                assert!(a.contains(k.as_bytes()));
            }
            assert!(!a.contains(b"absent"));
            // JSON members: a repeat replaces the value and keeps the first place.
            let members: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("\"{k}\":{i}"))
                .collect();
            let body = format!("{{{}}}", members.join(","));
            let mut j = Args::default();
            assert!(j.parse_json(body.as_bytes()));
            let got: Vec<(String, String)> = show(&j, body.as_bytes());
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, vs)| (k.clone(), format!("json:{}", vs[vs.len() - 1])))
                .collect();
            assert_eq!(got, want, "json of {len}");
        }
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
    fn raw_text_types() {
        assert!(is_raw_text_type(Some(b"text/plain; charset=utf-8")));
        assert!(!is_raw_text_type(Some(b"application/octet-stream")));
    }
}
