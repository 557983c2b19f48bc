//! Percent-decoding as URLs, query strings and form bodies use it.

/// Decodes `%XX` escapes (and, when `plus_as_space`, `+` as a space) into `out`. Malformed
/// escapes are kept literally, as browsers and nginx do.
pub fn percent_decode_into(out: &mut Vec<u8>, bytes: &[u8], plus_as_space: bool) {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(if plus_as_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
}

/// The value of one hex digit.
pub fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        let mut d = Vec::new();
        percent_decode_into(&mut d, b"a%20b+c%zz%4", true);
        assert_eq!(d, b"a b c%zz%4");
        assert_eq!((hex_value(b'f'), hex_value(b'G')), (Some(15), None));
    }
}
