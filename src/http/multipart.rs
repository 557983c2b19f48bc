//! A `multipart/form-data` reader for bodies already in memory (RFC 7578). Yields each part's
//! field name and content as slices of the body, one part per call; no copies, no allocation.
//!
//! Written here rather than taken from a crate: the maintained ones (multer) are streaming
//! parsers tied to an async runtime, while the body is complete in memory at this point and
//! all that is needed is the field names and values.

/// The `boundary` parameter of a `multipart/form-data` content type, unquoted.
pub fn boundary(content_type: &[u8]) -> Option<&[u8]> {
    for param in content_type.split(|&b| b == b';').skip(1) {
        let param = trim(param);
        let Some(eq) = memchr::memchr(b'=', param) else {
            continue;
        };
        if trim(&param[..eq]).eq_ignore_ascii_case(b"boundary") {
            let v = trim(&param[eq + 1..]);
            let v = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            // RFC 2046 §5.1.1: 1 to 70 characters.
            return (!v.is_empty() && v.len() <= 70).then_some(v);
        }
    }
    None
}

/// A body that is not valid multipart for its boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// One part: its field name and its content, slices of the body.
pub type Field<'a> = (&'a [u8], &'a [u8]);

/// A cursor over the parts of a multipart body, one part per call, so a caller can pause
/// between parts. Every search starts where the previous one ended, and a part's end is found
/// by one search for CRLF + delimiter, so a body full of near-delimiters costs no more than
/// any other body of its size.
pub struct Parts<'a> {
    body: &'a [u8],
    /// CRLF, `--` and the boundary (at most 70 bytes, RFC 2046).
    delimiter: [u8; 74],
    delimiter_len: usize,
    /// Where the next part's delimiter ends, or `None` once the close delimiter was read.
    pos: Option<usize>,
}

impl<'a> Parts<'a> {
    /// A cursor at the first delimiter (at the start, or after a preamble).
    pub fn new(body: &'a [u8], boundary: &[u8]) -> Result<Self, Malformed> {
        let mut delimiter = [0u8; 74];
        let delimiter_len = boundary.len() + 4;
        delimiter[..4].copy_from_slice(b"\r\n--");
        delimiter
            .get_mut(4..delimiter_len)
            .ok_or(Malformed)?
            .copy_from_slice(boundary);
        let mut parts = Parts {
            body,
            delimiter,
            delimiter_len,
            pos: None,
        };
        let first_end = if body.starts_with(parts.dash_boundary()) {
            delimiter_len - 2
        } else {
            parts.find(0).ok_or(Malformed)? + delimiter_len
        };
        parts.pos = Some(first_end);
        Ok(parts)
    }

    /// `--` and the boundary, without the CRLF before it.
    fn dash_boundary(&self) -> &[u8] {
        &self.delimiter[2..self.delimiter_len]
    }

    /// The next CRLF + delimiter at or after `from`.
    fn find(&self, from: usize) -> Option<usize> {
        let needle = &self.delimiter[..self.delimiter_len];
        memchr::memmem::find(self.body.get(from..)?, needle).map(|at| from + at)
    }

    /// The next part's field name and content; `Ok(None)` after the close delimiter.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Field<'a>>, Malformed> {
        let Some(pos) = self.pos else {
            return Ok(None);
        };
        let body = self.body;
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            self.pos = None;
            return Ok(None); // close delimiter; the epilogue is ignored
        }
        // Transport padding, then CRLF.
        let line_end = memchr::memmem::find(rest, b"\r\n").ok_or(Malformed)?;
        if !rest[..line_end].iter().all(|&b| b == b' ' || b == b'\t') {
            return Err(Malformed);
        }
        let part_start = pos + line_end + 2;
        let part = &body[part_start..];
        let head_end = memchr::memmem::find(part, b"\r\n\r\n").ok_or(Malformed)?;
        let headers = &part[..head_end];
        let content_start = part_start + head_end + 4;
        if body[content_start..].starts_with(self.dash_boundary()) {
            // A delimiter right after the headers, without its own CRLF: refused rather than
            // read as content.
            return Err(Malformed);
        }
        let content_end = self.find(content_start).ok_or(Malformed)?;
        let name = field_name(headers).ok_or(Malformed)?;
        self.pos = Some(content_end + self.delimiter_len);
        Ok(Some((name, &body[content_start..content_end])))
    }
}

/// The `name` parameter of the part's `Content-Disposition: form-data` header.
fn field_name(headers: &[u8]) -> Option<&[u8]> {
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        if !trim(&line[..colon]).eq_ignore_ascii_case(b"content-disposition") {
            continue;
        }
        for param in line[colon + 1..].split(|&b| b == b';').skip(1) {
            let param = trim(param);
            let Some(eq) = memchr::memchr(b'=', param) else {
                continue;
            };
            if trim(&param[..eq]).eq_ignore_ascii_case(b"name") {
                let v = trim(&param[eq + 1..]);
                return Some(
                    v.strip_prefix(b"\"")
                        .and_then(|v| v.strip_suffix(b"\""))
                        .unwrap_or(v),
                );
            }
        }
    }
    None
}

fn trim(v: &[u8]) -> &[u8] {
    crate::http::framing::trim_ows(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &[u8], b: &[u8]) -> Result<Vec<(String, String)>, Malformed> {
        let mut out = Vec::new();
        let mut parts = Parts::new(body, b)?;
        while let Some((n, v)) = parts.next()? {
            out.push((
                String::from_utf8_lossy(n).into(),
                String::from_utf8_lossy(v).into(),
            ));
        }
        Ok(out)
    }

    #[test]
    fn reads_fields_and_files() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\n--not\r\nline2\r\n--XyZ--\r\n";
        assert_eq!(
            fields(body, b"XyZ"),
            Ok(vec![
                ("a".into(), "1".into()),
                ("f".into(), "line1\r\n--not\r\nline2".into())
            ])
        );
    }

    #[test]
    fn near_delimiters_are_content() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx--B--B\n--B\r--B\r\n--B\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--B--";
        assert_eq!(
            fields(body, b"B"),
            Ok(vec![
                ("a".into(), "x--B--B\n--B\r--B".into()),
                ("e".into(), "".into())
            ])
        );
        // `--Bz` after CRLF is the delimiter followed by transport padding that is not
        // whitespace: malformed, as before.
        let body = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--Bz\r\n";
        assert!(fields(body, b"B").is_err());
        // A delimiter right after the headers (no CRLF of its own) is refused.
        let body = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--B--";
        assert!(fields(body, b"B").is_err());
    }

    #[test]
    fn refuses_broken_bodies() {
        assert!(fields(
            b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nno end",
            b"B"
        )
        .is_err());
        assert!(fields(b"--B\r\nX: y\r\n\r\nv\r\n--B--", b"B").is_err());
        assert!(fields(b"nothing", b"B").is_err());
    }

    #[test]
    fn finds_the_boundary() {
        assert_eq!(
            boundary(b"multipart/form-data; boundary=\"a b\""),
            Some(&b"a b"[..])
        );
        assert_eq!(
            boundary(b"multipart/form-data;charset=x; Boundary=zz"),
            Some(&b"zz"[..])
        );
        assert_eq!(boundary(b"multipart/form-data"), None);
    }
}
