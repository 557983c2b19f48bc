//! Kong declarative configuration (`_format_version: "3.0"`, YAML or JSON): loading, validation
//! with a path in every message, the validated model, the router and the published snapshot.

pub mod model;
pub mod plugins;
pub mod router;
pub mod snapshot;
mod validate;

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
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::single("", format!("cannot read {}: {e}", path.display())))?;
    parse(&text)
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
