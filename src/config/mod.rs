//! Kong declarative configuration (`_format_version: "3.0"`, YAML or JSON): loading, validation
//! with a path in every message, the validated model, the router and the published snapshot.

pub mod consumers;
pub mod environment;
pub mod model;
pub mod persist;
pub mod plan;
pub mod plugins;
pub mod precedence;
pub mod prometheus;
pub mod router;
pub mod snapshot;
pub mod snis;
mod validate;
pub mod vault;
pub mod warnings;

pub use crate::schema::check::{ConfigError, ConfigErrors};
pub use model::Config;
pub use snapshot::Snapshot;

use std::path::Path;

/// Parses and validates a config document (YAML or JSON text); every problem is reported at once.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let value = parse_document(text)?;
    validate::config(&value)
}

/// Validates an already parsed document (the Admin API's path).
pub fn from_document(doc: &serde_json::Value) -> Result<Config, ConfigErrors> {
    validate::config(doc)
}

/// Parses config text (YAML or JSON) into a document without validating it.
pub fn parse_text(text: &str) -> Result<serde_json::Value, ConfigErrors> {
    parse_document(text)
}

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_with_digest(path).map(|(config, _)| config)
}

/// The SHA-256 of a config file's bytes: whether the file changed since it was read.
pub type FileDigest = [u8; 32];

/// Reads and validates a config file; also gives the digest of the very bytes it validated.
pub fn load_file_with_digest(path: &Path) -> Result<(Config, FileDigest), ConfigErrors> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigErrors::single("", format!("cannot read {}: {e}", path.display())))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ConfigErrors::single("", format!("{} is not UTF-8 text: {e}", path.display()))
    })?;
    Ok((parse(text)?, digest(&bytes)))
}

/// The digest of the file at `path` now; `None` when there is no such file.
pub fn file_digest(path: &Path) -> std::io::Result<Option<FileDigest>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(digest(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The digest of `bytes` as [`file_digest`] would give it for a file holding them.
pub fn digest(bytes: &[u8]) -> FileDigest {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Text → a generic JSON value. JSON is tried first when the document looks like JSON, so its
/// error messages point at JSON syntax; everything else goes through the YAML parser.
fn parse_document(text: &str) -> Result<serde_json::Value, ConfigErrors> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed)
            .map_err(|e| ConfigErrors::single("", format!("invalid JSON: {e}")));
    }
    if trimmed.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_norway::from_str::<serde_json::Value>(trimmed)
        .map_err(|e| ConfigErrors::single("", format!("invalid YAML: {e}")))
}
