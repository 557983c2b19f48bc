//! Kong's `POST /config?flatten_errors=1`: the errors of an invalid declarative configuration
//! gathered per entity of the document as it was sent, which decK prints one entity at a time.
//!
//! Each entity with errors becomes one entry: `entity_type` (Kong's singular: `service`,
//! `keyauth_credential`), `entity_name`, `entity_id` and `entity_tags` when they are a
//! non-empty string, a UUID and a list of strings, `entity` (as sent, without the entities
//! nested in it, and with `{id}` of the entity it is nested in when that one has an id), and
//! `errors`: `{type: "field", field, message}` with the field's path dotted and arrays counted
//! from 1 (`paths.1`), or `{type: "entity", message}`. Errors that belong to no entity (the
//! format version, a section that is not a list) stay in `fields` only.

use crate::config::model::is_uuid;
use crate::config::{ConfigError, ConfigErrors};
use crate::schema::Kind;
use serde_json::{json, Map, Value};

/// One step of an error's path: a field, or an index in a list.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

/// `services[0].routes[1].paths[0]` → fields and indexes; `None` if the path is not of that
/// form.
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !name.is_empty() {
            out.push(Step::Field(name));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            out.push(Step::Index(inner[..end].parse().ok()?));
            rest = &inner[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

fn entity_kind(collection: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.collection() == collection)
}

/// Where an error's entity is: the steps up to the innermost entity (a list of a known kind at
/// the top, or directly in another entity, and an index in it), with the kinds of the entities
/// on the way; the steps after it are the field.
fn split_at_entity<'p>(path: &'p [Step<'p>]) -> Option<(usize, Vec<Kind>)> {
    let mut at = 0;
    let mut kinds = Vec::new();
    while let [Step::Field(name), Step::Index(_), ..] = &path[at..] {
        let Some(kind) = entity_kind(name) else { break };
        kinds.push(kind);
        at += 2;
    }
    (!kinds.is_empty()).then_some((at, kinds))
}

fn get<'v>(value: &'v Value, steps: &[Step<'_>]) -> Option<&'v Value> {
    steps.iter().try_fold(value, |v, step| match step {
        Step::Field(name) => v.get(*name),
        Step::Index(i) => v.get(*i),
    })
}

/// The field's path as Kong writes it: dotted, list positions from 1.
fn kong_field(steps: &[Step<'_>]) -> String {
    let parts: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Field(name) => name.to_string(),
            Step::Index(i) => (i + 1).to_string(),
        })
        .collect();
    parts.join(".")
}

/// The entries, and the errors that belong to no entity.
pub fn flatten<'e>(errors: &'e ConfigErrors, input: &Value) -> (Vec<Value>, Vec<&'e ConfigError>) {
    // Entries by the entity's path, in the order their first error came.
    let mut entries: Vec<(String, Value)> = Vec::new();
    let mut left = Vec::new();
    for e in &errors.0 {
        let Some(path) = steps(&e.path) else {
            left.push(e);
            continue;
        };
        let Some((at, kinds)) = split_at_entity(&path) else {
            left.push(e);
            continue;
        };
        let Some(Value::Object(sent)) = get(input, &path[..at]) else {
            left.push(e);
            continue;
        };
        let key = e.path.split_at(entity_path_len(&e.path, at)).0.to_string();
        let error = if at == path.len() {
            json!({"type": "entity", "message": e.message})
        } else {
            json!({"type": "field", "field": kong_field(&path[at..]), "message": e.message})
        };
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, entry)) => {
                if let Some(list) = entry["errors"].as_array_mut() {
                    list.push(error);
                }
            }
            None => {
                let parent = (at >= 4)
                    .then(|| get(input, &path[..at - 2]))
                    .flatten()
                    .map(|p| (kinds[kinds.len() - 2], p));
                let kind = kinds[kinds.len() - 1];
                entries.push((key, entry(kind, sent, parent, error)));
            }
        }
    }
    (entries.into_iter().map(|(_, v)| v).collect(), left)
}

/// How many bytes of `path` name the entity `steps` takes `at` steps to reach.
fn entity_path_len(path: &str, at: usize) -> usize {
    // Every two steps (a list and an index) end at a `]`.
    let mut seen = 0;
    for (i, c) in path.char_indices() {
        if c == ']' {
            seen += 1;
            if seen == at / 2 {
                return i + 1;
            }
        }
    }
    path.len()
}

fn entry(
    kind: Kind,
    sent: &Map<String, Value>,
    parent: Option<(Kind, &Value)>,
    first_error: Value,
) -> Value {
    let mut entity = sent.clone();
    // Entities nested in it are entries of their own.
    entity.retain(|k, _| entity_kind(k).is_none());
    if let Some((parent_kind, parent)) = parent {
        let field = parent_kind.reference_field();
        if let Some(id) = parent
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_uuid(id))
        {
            entity
                .entry(field.to_string())
                .or_insert_with(|| json!({ "id": id }));
        }
    }
    let collection = kind.collection();
    let mut out = Map::new();
    out.insert(
        "entity_type".into(),
        json!(collection.strip_suffix('s').unwrap_or(collection)),
    );
    if let Some(name) = sent
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        out.insert("entity_name".into(), json!(name));
    }
    if let Some(id) = sent
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_uuid(id))
    {
        out.insert("entity_id".into(), json!(id));
    }
    if let Some(tags) = sent
        .get("tags")
        .and_then(Value::as_array)
        .filter(|t| t.iter().all(Value::is_string))
    {
        out.insert("entity_tags".into(), Value::Array(tags.clone()));
    }
    out.insert("entity".into(), Value::Object(entity));
    out.insert("errors".into(), json!([first_error]));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_fields_and_indexes() {
        assert_eq!(
            steps("services[0].routes[12].paths[3]"),
            Some(vec![
                Step::Field("services"),
                Step::Index(0),
                Step::Field("routes"),
                Step::Index(12),
                Step::Field("paths"),
                Step::Index(3)
            ])
        );
        assert_eq!(steps("config.a[x]"), None);
        let path = steps("services[0].routes[1].paths[0]").unwrap();
        assert_eq!(split_at_entity(&path).map(|(at, _)| at), Some(4));
        assert_eq!(kong_field(&path[4..]), "paths.1");
        assert_eq!(entity_path_len("services[0].routes[1].paths[0]", 4), 21);
        // A list named like an entity kind inside a plugin's config is a field.
        let path = steps("plugins[0].config.routes[0]").unwrap();
        assert_eq!(split_at_entity(&path).map(|(at, _)| at), Some(2));
    }
}
