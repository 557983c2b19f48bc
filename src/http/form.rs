//! `application/x-www-form-urlencoded`, as query strings and form bodies carry it: `a=1&b&c=%20`.

use super::percent::percent_decode_into;

/// The `&`-separated fields of `input`, empty ones skipped: each as its raw (still encoded)
/// name and, when it has an `=`, its raw value.
pub fn fields(input: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    input
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| match memchr::memchr(b'=', part) {
            Some(i) => (&part[..i], Some(&part[i + 1..])),
            None => (part, None),
        })
}

/// Appends `raw` decoded as a form field name or value (`+` is a space, `%XX` a byte).
pub fn decode_into(out: &mut Vec<u8>, raw: &[u8]) {
    percent_decode_into(out, raw, true);
}

/// The decoded fields of `input` as text (invalid UTF-8 replaced): for the Admin API, where
/// a query or form is small and owned strings are simplest.
pub fn decoded(input: &[u8]) -> Vec<(String, Option<String>)> {
    let text = |raw: &[u8]| {
        let mut out = Vec::with_capacity(raw.len());
        decode_into(&mut out, raw);
        // Valid UTF-8 (nearly always) becomes the string without a second copy.
        String::from_utf8(out)
            .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
    };
    fields(input)
        .map(|(name, value)| (text(name), value.map(text)))
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_decodes() {
        assert_eq!(
            decoded(b"a=1&flag&&b=x+y%21&=skipped&c="),
            [
                ("a".to_string(), Some("1".to_string())),
                ("flag".to_string(), None),
                ("b".to_string(), Some("x y!".to_string())),
                ("c".to_string(), Some(String::new())),
            ]
        );
    }
}
