//! A `multipart/form-data` reader for bodies already in memory (RFC 7578). Yields each part's
//! field name and content as slices of the body; no copies, no allocation.
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

/// Calls `field(name, content)` for every part, in order. `Err` for a body that is not valid
/// multipart with this boundary (missing delimiters, a part without a name, no closing delimiter).
pub fn for_each_field<'a>(
    body: &'a [u8],
    boundary: &[u8],
    mut field: impl FnMut(&'a [u8], &'a [u8]),
) -> Result<(), Malformed> {
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delimiter);
    // The first delimiter may follow a preamble.
    let first = finder.find(body).ok_or(Malformed)?;
    if first != 0 && !body[..first].ends_with(b"\r\n") {
        return Err(Malformed);
    }
    let mut pos = first + delimiter.len();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(()); // close delimiter; the epilogue is ignored
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
        // The part ends at CRLF + delimiter.
        let mut search = content_start;
        let content_end = loop {
            let at = search + finder.find(&body[search..]).ok_or(Malformed)?;
            if at >= content_start + 2 && &body[at - 2..at] == b"\r\n" {
                break at - 2;
            }
            if at == content_start {
                // An empty part directly followed by the delimiter is malformed (needs CRLF).
                return Err(Malformed);
            }
            search = at + 1;
        };
        let name = field_name(headers).ok_or(Malformed)?;
        field(name, &body[content_start..content_end]);
        pos = content_end + 2 + delimiter.len();
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
        for_each_field(body, b, |n, v| {
            out.push((
                String::from_utf8_lossy(n).into(),
                String::from_utf8_lossy(v).into(),
            ))
        })?;
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
