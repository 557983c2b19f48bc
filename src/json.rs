//! The JSON writer shared by the payload encoder and the canned answers.
//!
//! Everything here appends to a caller-owned `Vec<u8>` so the hot path reuses one buffer per
//! worker. Strings are escaped per RFC 8259 for every byte sequence: invalid UTF-8 becomes
//! U+FFFD (as `String::from_utf8_lossy` would), so the output is always valid JSON.

/// What each ASCII byte needs when it appears inside a JSON string: 0 = copy as is,
/// `b'u'` = `\u00XX`, anything else = a two-character escape `\<that byte>`.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";
const REPLACEMENT: &str = "\u{FFFD}";

/// Appends `bytes` as a quoted JSON string.
pub fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    write_str_contents(out, bytes);
    out.push(b'"');
}

/// Appends the escaped contents of a JSON string, without the quotes.
pub fn write_str_contents(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                escape_valid(out, valid.as_bytes());
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                escape_valid(out, valid);
                out.extend_from_slice(REPLACEMENT.as_bytes());
                match e.error_len() {
                    Some(skip) => rest = &after[skip..],
                    // A truncated sequence at the very end: one replacement for all of it.
                    None => return,
                }
            }
        }
    }
}

/// Escapes bytes already known to be valid UTF-8: only ASCII needs escaping.
fn escape_valid(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `"key":` for a key known at compile time to need no escaping.
#[inline]
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends an unsigned integer in decimal.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends a boolean literal.
#[inline]
pub fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// Removes a trailing comma left by a loop that writes `value,` for each member.
#[inline]
pub fn trim_comma(out: &mut Vec<u8>) {
    if out.last() == Some(&b',') {
        out.pop();
    }
}

/// Appends `bytes` in standard base64, straight into `out`.
pub fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    let start = out.len();
    let encoded_len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + encoded_len, 0);
    let written = engine.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(b: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, b);
        String::from_utf8(out).expect("encoder output is UTF-8")
    }

    #[test]
    fn escapes_quotes_backslash_and_controls() {
        assert_eq!(enc(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(enc(b"\n\r\t\x08\x0c"), r#""\n\r\t\b\f""#);
        assert_eq!(enc(b"\x00\x1f\x7f"), "\"\\u0000\\u001f\x7f\"");
    }

    #[test]
    fn keeps_valid_utf8_and_replaces_invalid() {
        assert_eq!(enc("héllo ✓".as_bytes()), "\"héllo ✓\"");
        assert_eq!(enc(b"a\xffb"), "\"a\u{FFFD}b\"");
        assert_eq!(enc(b"a\xe2\x82"), "\"a\u{FFFD}\"");
        assert_eq!(enc(b"\xc0\x80"), "\"\u{FFFD}\u{FFFD}\"");
    }

    #[test]
    fn output_always_parses_back_to_the_lossy_string() {
        let samples: [&[u8]; 5] = [
            b"",
            b"plain",
            b"\xf0\x9f\x92\xa9\"\x01",
            b"\xed\xa0\x80x",
            b"\\\\\xfe",
        ];
        for s in samples {
            let parsed: String = serde_json::from_str(&enc(s)).expect("valid JSON");
            assert_eq!(parsed, String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn writes_integers() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, b"0 18446744073709551615");
    }
}
