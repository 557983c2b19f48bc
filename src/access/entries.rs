//! Kong's `name:value` config entries (the transformers' `add.headers` and friends) and its
//! header name rule, as Kong's schemas check them.

/// Kong's `^([^:]+):*(.-)$`: the name, and the value after the colons (none when empty).
pub fn split_pair(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once(':') {
        Some((name, rest)) => (
            name,
            Some(rest.trim_start_matches(':')).filter(|v| !v.is_empty()),
        ),
        None => (entry, None),
    }
}

/// A `name:value` entry (Kong's `^[^:]+:.*$`).
pub fn colon_pair(entry: &str) -> Result<(), String> {
    match entry.find(':') {
        Some(i) if i > 0 => Ok(()),
        _ => Err(format!("{entry:?} is not a name:value pair")),
    }
}

/// Kong's `validate_header_name` (`^[a-zA-Z0-9-_]+$`).
pub fn kong_header_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid header"))
    }
}

/// A header rename entry: `old:new`, both header names.
pub fn header_rename(entry: &str) -> Result<(), String> {
    colon_pair(entry)?;
    let (old, new) = split_pair(entry);
    kong_header_name(old)?;
    kong_header_name(new.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_as_kongs_pattern_does() {
        assert_eq!(split_pair("a:b"), ("a", Some("b")));
        assert_eq!(split_pair("a:::b:c"), ("a", Some("b:c")));
        assert_eq!(split_pair("a:"), ("a", None));
        assert_eq!(split_pair("a"), ("a", None));
        assert!(colon_pair(":a").is_err() && colon_pair("a").is_err());
        assert!(header_rename("x-a:x_b").is_ok() && header_rename("x-a:b c").is_err());
    }
}
