//! Kong's Admin API error shapes: the one error type, its status and body, and validation
//! errors turned into Kong's nested `fields`.

use super::store::ApplyError;
use crate::config::{ConfigError, ConfigErrors};
use crate::schema::Kind;
use serde_json::{json, Map, Value};

/// A failed Admin API call, as Kong answers it.
#[derive(Debug)]
pub enum AdminError {
    /// 404 `{"message":"Not found"}`.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 400 with a message.
    BadRequest(String),
    /// 415.
    UnsupportedMediaType,
    /// 400 schema violation with `fields`.
    Schema { message: String, fields: Value },
    /// 409 unique constraint violation.
    Unique { message: String, fields: Value },
    /// 409 with a message: the change conflicts with the config file's state.
    Conflict(String),
    /// Another fleet node changed the configuration first and the store now holds the newest:
    /// the request is made again on top of it ([`super::routing`]); a 409 with the message
    /// once the attempts are spent.
    Stale(String),
    /// 400 `invalid options`: a query option the list cannot take (Kong's code 11).
    InvalidOption {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        message: &'static str,
    },
    /// 400 for `POST /config`.
    Declarative {
        message: String,
        fields: Value,
        /// With `?flatten_errors=1`: the errors per entity ([`super::flatten`]).
        flattened: Option<Vec<Value>>,
    },
    /// 500.
    Internal(String),
    /// 503 with a message: the fleet's store cannot be reached.
    Unavailable(String),
}

impl AdminError {
    /// The status and JSON body Kong answers with.
    pub fn status_and_body(&self) -> (u16, Value) {
        match self {
            AdminError::NotFound => (404, json!({"message": "Not found"})),
            AdminError::MethodNotAllowed => (405, json!({"message": "Method not allowed"})),
            AdminError::BadRequest(m) => (400, json!({"message": m})),
            AdminError::UnsupportedMediaType => {
                (415, json!({"message": "Unsupported Content-Type"}))
            }
            AdminError::Schema { message, fields } => (
                400,
                json!({"code": 2, "name": "schema violation", "message": message, "fields": fields}),
            ),
            AdminError::Unique { message, fields } => (
                409,
                json!({"code": 5, "name": "unique constraint violation", "message": message, "fields": fields}),
            ),
            AdminError::Conflict(m) | AdminError::Stale(m) => (409, json!({"message": m})),
            AdminError::InvalidOption { field, message } => (
                400,
                json!({"code": 11, "name": "invalid options", "message": format!("invalid option ({field}: {message})"), "fields": {*field: message}}),
            ),
            AdminError::Declarative {
                message,
                fields,
                flattened,
            } => {
                let mut body = json!({"code": 14, "name": "invalid declarative configuration", "message": message, "fields": fields});
                if let Some(flattened) = flattened {
                    body["flattened_errors"] = Value::Array(flattened.clone());
                }
                (400, body)
            }
            AdminError::Internal(m) => (500, json!({"message": m})),
            AdminError::Unavailable(m) => (503, json!({"message": m})),
        }
    }
}

/// The answer to a change the store did not apply; `invalid` shapes validation errors (they
/// differ between entity endpoints and `POST /config`).
pub(super) fn apply_error(
    error: ApplyError,
    invalid: impl FnOnce(&ConfigErrors) -> AdminError,
) -> AdminError {
    match error {
        ApplyError::Invalid(errors) => invalid(&errors),
        ApplyError::ChangedOnDisk(m) => AdminError::Conflict(m),
        ApplyError::Persist(m) => AdminError::Internal(m),
        ApplyError::Conflict {
            message,
            rebased: true,
        } => AdminError::Stale(message),
        ApplyError::Conflict { message, .. } => AdminError::Conflict(message),
        ApplyError::Unavailable(m) => AdminError::Unavailable(m),
    }
}

/// An Admin API answer: status and JSON body, or Kong's error.
pub type Answer = Result<(u16, Value), AdminError>;

/// Whether `error` was reported in the entity at `prefix` (`plugins[2]`) or one of its fields.
fn reported_in(error: &ConfigError, prefix: &str) -> bool {
    error
        .path
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Whether the entity at `kind[index]` has errors other than clashes with other entities.
pub(super) fn has_schema_errors(errors: &ConfigErrors, kind: Kind, index: usize) -> bool {
    let prefix = format!("{}[{index}]", kind.collection());
    errors
        .0
        .iter()
        .any(|e| e.conflict.is_none() && reported_in(e, &prefix))
}

/// Kong's answer for the entity at `kind[index]`: a schema violation with its errors as nested
/// `fields` when it has any (Kong checks the schema first), else a 409 when it clashes with
/// another entity (a unique name, or a second plugin of a name in one scope).
pub(super) fn entity_error(errors: &ConfigErrors, kind: Kind, index: usize) -> AdminError {
    let prefix = format!("{}[{index}]", kind.collection());
    let clash = errors
        .0
        .iter()
        .find(|e| e.conflict.is_some() && reported_in(e, &prefix));
    if let Some(e) = clash.filter(|_| !has_schema_errors(errors, kind, index)) {
        return AdminError::Unique {
            message: e.message.clone(),
            fields: e.conflict.clone().unwrap_or_default(),
        };
    }
    let mut fields = Value::Object(Map::new());
    let mut messages = Vec::new();
    for e in &errors.0 {
        let rest = e
            .path
            .strip_prefix(&prefix)
            .map(|r| r.trim_start_matches('.'));
        match rest {
            Some("") | None => {
                let text = if rest.is_none() {
                    e.to_string()
                } else {
                    e.message.clone()
                };
                insert_field(
                    &mut fields,
                    &["@entity".to_string()],
                    Value::String(text.clone()),
                );
                messages.push(text);
            }
            Some(path) => {
                insert_field(
                    &mut fields,
                    &split_path(path),
                    Value::String(e.message.clone()),
                );
                messages.push(format!("{path}: {}", e.message));
            }
        }
    }
    AdminError::Schema {
        message: format!("schema violation ({})", messages.join("; ")),
        fields,
    }
}

/// Kong's invalid declarative configuration (`POST /config`): every error at its path.
pub(super) fn declarative_error(errors: &ConfigErrors) -> AdminError {
    AdminError::Declarative {
        message: format!("declarative config is invalid: {errors}"),
        fields: nested_fields(errors.0.iter()),
        flattened: None,
    }
}

/// The same with `?flatten_errors=1` (Kong's `declarative_config_flattened`): the errors of
/// the entities of `input` (the document as sent) in `flattened_errors`, the others in
/// `fields` and the message.
pub(super) fn declarative_error_flattened(errors: &ConfigErrors, input: &Value) -> AdminError {
    let (flattened, left) = super::flatten::flatten(errors, input);
    let rest = ConfigErrors(left.iter().map(|e| (*e).clone()).collect());
    AdminError::Declarative {
        message: format!("declarative config is invalid: {rest}"),
        fields: nested_fields(left.into_iter()),
        flattened: Some(flattened),
    }
}

/// Errors as Kong's nested `fields` object.
fn nested_fields<'e>(errors: impl Iterator<Item = &'e ConfigError>) -> Value {
    let mut fields = Value::Object(Map::new());
    for e in errors {
        let path = if e.path.is_empty() {
            vec!["@entity".to_string()]
        } else {
            split_path(&e.path)
        };
        insert_field(&mut fields, &path, Value::String(e.message.clone()));
    }
    fields
}

/// A schema violation of one field.
pub(super) fn field_error(field: &str, message: &str) -> AdminError {
    AdminError::Schema {
        message: format!("schema violation ({field}: {message})"),
        fields: json!({ field: message }),
    }
}

/// `config.aws_region` → ["config", "aws_region"]; `paths[0]` → ["paths", "[0]"].
fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_string());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                out.push(rest[..=end].to_string());
                rest = &rest[end + 1..];
            }
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// Puts `value` at `path` in nested objects; `[n]` segments make arrays (nulls before n).
/// A list of messages accumulates when two land on the same place.
fn insert_field(node: &mut Value, path: &[String], value: Value) {
    let Some((head, rest)) = path.split_first() else {
        match node {
            Value::Null => *node = value,
            Value::Array(items) => items.push(value),
            other => {
                let first = other.take();
                *other = Value::Array(vec![first, value]);
            }
        }
        return;
    };
    if let Some(i) = head
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|n| n.parse::<usize>().ok())
    {
        if !node.is_array() {
            *node = Value::Array(Vec::new());
        }
        if let Value::Array(items) = node {
            if items.len() <= i && i < 10_000 {
                items.resize(i + 1, Value::Null);
            }
            if let Some(slot) = items.get_mut(i) {
                insert_field(slot, rest, value);
            }
        }
    } else {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        if let Value::Object(map) = node {
            insert_field(map.entry(head.clone()).or_insert(Value::Null), rest, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_paths_become_nested_fields() {
        let mut f = Value::Object(Map::new());
        insert_field(&mut f, &split_path("config.aws_region"), json!("bad"));
        insert_field(&mut f, &split_path("paths[1]"), json!("no"));
        assert_eq!(
            f,
            json!({"config": {"aws_region": "bad"}, "paths": [null, "no"]})
        );
    }
}
