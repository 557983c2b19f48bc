//! Percent-encoding as AWS defines it (RFC 3986 unreserved characters stay, everything else is
//! `%XX` upper-case), used for the invoke path and for SigV4 canonicalization.

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `s` with every byte but the unreserved ones percent-encoded.
pub fn encode_uri_component(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[(b >> 4) as usize] as char);
            out.push(HEX_UPPER[(b & 0xf) as usize] as char);
        }
    }
}

/// Appends `bytes` percent-encoded like [`encode_uri_component`], but keeping `/` (for paths).
pub fn encode_path_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_bytes(out, bytes, true);
}

/// Appends `bytes` percent-encoded, `/` included (for query names and values).
pub fn encode_query_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_bytes(out, bytes, false);
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX_UPPER[(b >> 4) as usize],
                HEX_UPPER[(b & 0xf) as usize],
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let mut s = String::new();
        encode_uri_component(&mut s, "a:b/c d~");
        assert_eq!(s, "a%3Ab%2Fc%20d~");
        let mut v = Vec::new();
        encode_path_bytes(&mut v, b"/a%3Ab");
        assert_eq!(v, b"/a%253Ab");
    }
}
