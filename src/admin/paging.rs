//! Kong's paged lists: `?size=` (1 to 1000, default 100) and an opaque `offset` that the
//! previous page's `next` link carries.

use super::errors::{field_error, Answer};
use serde_json::{json, Value};

/// The page of `all` that `query` asks for, as Kong answers a list: `data`, `next` (the link
/// to the following page under `base`, or null) and, when there is one, `offset`.
pub fn page(all: &[Value], base: &str, query: &[(String, String)]) -> Answer {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let size = match param("size") {
        None => 100,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(field_error(
                    "size",
                    "size must be an integer between 1 and 1000",
                ))
            }
        },
    };
    let start = match param("offset") {
        None => 0,
        Some(o) => decode_offset(o).ok_or_else(|| field_error("offset", "invalid offset"))?,
    };
    let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let end = start + page.len();
    let mut body = json!({"data": page, "next": Value::Null});
    if end < all.len() {
        let offset = encode_offset(end);
        // A filter the list was asked with goes on to the next page (the tags were checked:
        // letters, digits and `.-_~,/`, nothing to escape).
        let tags = param("tags").map_or(String::new(), |t| format!("&tags={t}"));
        body["next"] = json!(format!("{base}?offset={offset}&size={size}{tags}"));
        body["offset"] = json!(offset);
    }
    Ok((200, body))
}

fn encode_offset(i: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("i{i}"))
}

fn decode_offset(o: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(o)
        .ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix('i')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_pages_link_on() {
        assert_eq!(decode_offset(&encode_offset(42)), Some(42));
        assert_eq!(decode_offset("garbage"), None);
        let all: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let (_, first) = page(&all, "/routes", &q(&[("size", "2")])).expect("page");
        assert_eq!(first["data"], json!([0, 1]));
        let offset = first["offset"].as_str().expect("offset").to_string();
        assert_eq!(
            first["next"],
            json!(format!("/routes?offset={offset}&size=2"))
        );
        let (_, last) =
            page(&all, "/routes", &q(&[("offset", &offset), ("size", "3")])).expect("page");
        assert_eq!(last["data"], json!([2, 3, 4]));
        assert_eq!(last["next"], Value::Null);
        assert!(last.get("offset").is_none());
        assert!(page(&all, "/routes", &q(&[("size", "0")])).is_err());
    }
}
