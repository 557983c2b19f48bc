//! Lowercase hexadecimal, for SigV4's digests, proxy-cache's keys and trace ids. A loop of
//! its own rather than the `hex` crate's `encode_to_slice`: SigV4 writes two digests per
//! request, and the crate's indexed pairs cost about 100 instructions more each
//! (count-instructions).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The first 32 bytes of `bytes` (a SHA-256 digest or MAC) as 64 digits, on the stack.
pub fn hex32(bytes: &[u8]) -> [u8; 64] {
    let mut out = [b'0'; 64];
    for (i, &b) in bytes.iter().take(32).enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 0xf) as usize];
    }
    out
}

/// `bytes` as a string of digits.
pub fn to_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| [DIGITS[(b >> 4) as usize], DIGITS[(b & 0xf) as usize]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_lowercase_two_a_byte() {
        let bytes: Vec<u8> = (0..32).map(|i| i * 8 + 7).collect();
        let text = to_string(&bytes);
        assert_eq!(&text[..8], "070f171f");
        assert_eq!(text.as_bytes(), hex32(&bytes).as_slice());
        assert_eq!(to_string(&[0xab, 0xcd]), "abcd");
    }
}
