//! The request body framing decision: every rule that stops request smuggling lives in
//! [`decide`], so a reviewer reads one function to know how a body's length is determined.

use smallvec::SmallVec;

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (no Content-Length, no Transfer-Encoding).
    #[default]
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// A chunked body follows the head.
    Chunked,
}

/// Why a request's framing was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Both Content-Length and Transfer-Encoding: the classic smuggling vector.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    /// More than one Content-Length field, or a list in one field.
    #[error("repeated Content-Length")]
    RepeatedLength,
    /// A Content-Length that is not a plain decimal number.
    #[error("invalid Content-Length")]
    InvalidLength,
    /// A Transfer-Encoding other than exactly `chunked`.
    #[error("unsupported Transfer-Encoding")]
    UnsupportedCoding,
    /// Transfer-Encoding in an HTTP/1.0 request, whose framing is then unreliable.
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    CodingInHttp10,
    /// The declared body is larger than the server accepts (413, not 400).
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
}

/// Decides how the body of a request is framed, from every Content-Length and Transfer-Encoding
/// field value the head carries (in order), following RFC 9112 §6 strictly:
///
/// - §6.1: a server that receives Transfer-Encoding in HTTP/1.0 must treat the framing as faulty.
/// - §6.3 (3): Transfer-Encoding together with Content-Length "ought to be handled as an error";
///   SPEC §6 makes it a 400 rather than letting chunked win, so no front proxy can disagree.
/// - §6.3 (4): a request whose final coding is not chunked has no determinable length → 400.
///   We go further and accept only exactly `chunked` (no gzip etc.: we could not decode it).
/// - §6.3 (5): Content-Length must be a single valid number; SPEC §6 refuses even repeated
///   identical values, because intermediaries disagree on which one wins.
/// - §8.6: Content-Length is `1*DIGIT`: no sign, no spaces inside, no empty value.
pub fn decide(
    minor_version: u8,
    content_lengths: &[&[u8]],
    transfer_encodings: &[&[u8]],
    max_body: usize,
) -> Result<BodyFraming, FramingError> {
    if !transfer_encodings.is_empty() {
        if minor_version == 0 {
            return Err(FramingError::CodingInHttp10);
        }
        if !content_lengths.is_empty() {
            return Err(FramingError::LengthAndChunked);
        }
        // Every coding across every field, in order: exactly one, and it is `chunked`.
        let codings: SmallVec<[&[u8]; 2]> = transfer_encodings
            .iter()
            .flat_map(|v| v.split(|&b| b == b','))
            .map(trim_ows)
            .collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            _ => Err(FramingError::UnsupportedCoding),
        };
    }
    match content_lengths {
        [] => Ok(BodyFraming::None),
        [one] => {
            let len = parse_length(one).ok_or(FramingError::InvalidLength)?;
            if len > max_body as u64 {
                Err(FramingError::TooLarge(max_body))
            } else if len == 0 {
                Ok(BodyFraming::None)
            } else {
                Ok(BodyFraming::Length(len))
            }
        }
        _ => Err(FramingError::RepeatedLength),
    }
}

/// Parses `1*DIGIT` (after trimming optional whitespace around the field value); `None` for
/// anything else, including a comma list and values that overflow.
pub fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = trim_ows(value);
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Trims optional whitespace (SP / HTAB) from both ends.
pub fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use BodyFraming::*;
    use FramingError::*;

    const MAX: usize = 1000;

    fn d(cl: &[&str], te: &[&str]) -> Result<BodyFraming, FramingError> {
        let cl: Vec<&[u8]> = cl.iter().map(|s| s.as_bytes()).collect();
        let te: Vec<&[u8]> = te.iter().map(|s| s.as_bytes()).collect();
        decide(1, &cl, &te, MAX)
    }

    #[test]
    fn plain_lengths() {
        assert_eq!(d(&[], &[]), Ok(None));
        assert_eq!(d(&["0"], &[]), Ok(None));
        assert_eq!(d(&["12"], &[]), Ok(Length(12)));
        assert_eq!(d(&[" 12 "], &[]), Ok(Length(12)));
        assert_eq!(d(&["1000"], &[]), Ok(Length(1000)));
        assert_eq!(d(&["1001"], &[]), Err(TooLarge(MAX)));
    }

    #[test]
    fn invalid_or_repeated_lengths() {
        for bad in [
            "",
            "+1",
            "-1",
            "1 2",
            "0x10",
            "1,1",
            "99999999999999999999",
            "１",
        ] {
            assert_eq!(d(&[bad], &[]), Err(InvalidLength), "{bad:?}");
        }
        assert_eq!(d(&["5", "5"], &[]), Err(RepeatedLength));
        assert_eq!(d(&["5", "6"], &[]), Err(RepeatedLength));
    }

    #[test]
    fn chunked_rules() {
        assert_eq!(d(&[], &["chunked"]), Ok(Chunked));
        assert_eq!(d(&[], &["Chunked "]), Ok(Chunked));
        assert_eq!(d(&["5"], &["chunked"]), Err(LengthAndChunked));
        assert_eq!(d(&[], &["chunked", "chunked"]), Err(UnsupportedCoding));
        assert_eq!(d(&[], &["chunked, gzip"]), Err(UnsupportedCoding));
        assert_eq!(d(&[], &["gzip, chunked"]), Err(UnsupportedCoding));
        assert_eq!(d(&[], &["gzip"]), Err(UnsupportedCoding));
        assert_eq!(d(&[], &[""]), Err(UnsupportedCoding));
        assert_eq!(d(&[], &["xchunked"]), Err(UnsupportedCoding));
        assert_eq!(decide(0, &[], &[b"chunked"], MAX), Err(CodingInHttp10));
    }
}
