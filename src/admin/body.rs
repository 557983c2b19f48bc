//! Admin API request bodies: `application/x-www-form-urlencoded` and `multipart/form-data` with
//! Kong's key notation (`config.aws_key=`, `paths[1]=`, `paths[]=`, a repeated key as an array),
//! and `application/json`. Form values are text; [`coerce`] gives them the entity's types.

use crate::http::media::{body_kind, BodyKind};
use crate::http::{form, multipart};
use crate::schema::{Schema, Shape, Type};
use serde_json::{Map, Value};

/// Why a body was refused (400, or 415 for an unsupported type).
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not parseable as its content type says.
    Invalid(String),
    /// A content type the Admin API does not read.
    UnsupportedType,
}

/// Parses a request body into a JSON object; `true` when it was a form (its values are text
/// to be given their types by [`coerce`]).
pub fn parse(
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<(Map<String, Value>, bool), BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Map::new(), false));
    }
    match body_kind(content_type) {
        BodyKind::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok((map, false)),
            Ok(_) => Err(BodyError::Invalid("expected a JSON object".into())),
            Err(e) => Err(BodyError::Invalid(format!("Cannot parse JSON body: {e}"))),
        },
        BodyKind::Form => Ok((from_pairs(form::decoded(body))?, true)),
        BodyKind::Multipart => {
            let invalid = || BodyError::Invalid("Cannot parse multipart body".into());
            let boundary = content_type
                .and_then(multipart::boundary)
                .ok_or_else(invalid)?;
            let mut parts = multipart::Parts::new(body, boundary).map_err(|_| invalid())?;
            let mut pairs = Vec::new();
            while let Some((name, value)) = parts.next().map_err(|_| invalid())? {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                pairs.push((text(name), Some(text(value))));
            }
            Ok((from_pairs(pairs)?, true))
        }
        BodyKind::Missing | BodyKind::Unsupported => Err(BodyError::UnsupportedType),
    }
}

/// A service's `url` stored as Kong stores it: `protocol`, `host`, `port`, `path` (a null
/// `url` is dropped). `Err` with the message for the `url` field.
pub fn expand_service_url(entity: &mut Map<String, Value>) -> Result<(), String> {
    let Some(url) = entity.remove("url") else {
        return Ok(());
    };
    let text = match url {
        Value::Null => return Ok(()),
        Value::String(text) => text,
        _ => return Err("expected a string".into()),
    };
    let u = crate::schema::entities::parse_service_url(&text)?;
    entity.insert("protocol".into(), Value::String(u.protocol));
    entity.insert("host".into(), Value::String(u.host));
    entity.insert("port".into(), Value::from(u.port));
    entity.insert("path".into(), u.path.map_or(Value::Null, Value::String));
    Ok(())
}

/// One step of a form key: `a.b[1][]` is Field(a), Field(b), Index(1), Append.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
    Append,
}

/// Deepest form key accepted (`a.b[1].c` is 4 steps): Kong's entities nest a handful of levels;
/// the limit keeps the recursive insert's stack bounded.
const MAX_KEY_STEPS: usize = 32;

/// Array slots a form body may leave empty (`paths[500]=/a` leaves 499) beyond one per field,
/// so memory stays linear in the body.
const HOLE_ALLOWANCE: usize = 1024;

fn parse_key(key: &str) -> Result<Vec<Step>, BodyError> {
    let mut steps = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(BodyError::Invalid(format!("invalid key {key:?}")));
        }
        steps.push(Step::Field(name.to_string()));
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped
                .find(']')
                .ok_or_else(|| BodyError::Invalid(format!("invalid key {key:?}")))?;
            let inner = &stripped[..end];
            steps.push(if inner.is_empty() {
                Step::Append
            } else if let Ok(i) = inner.parse::<usize>() {
                // Kong's indexes start at 1; `[0]` is accepted as the first too.
                Step::Index(i.saturating_sub(1))
            } else {
                Step::Field(inner.to_string())
            });
            rest = &stripped[end + 1..];
            if steps.len() > MAX_KEY_STEPS {
                break;
            }
        }
        if steps.len() > MAX_KEY_STEPS {
            return Err(BodyError::Invalid(format!(
                "key nested more than {MAX_KEY_STEPS} levels deep"
            )));
        }
        if !rest.is_empty() {
            return Err(BodyError::Invalid(format!("invalid key {key:?}")));
        }
    }
    Ok(steps)
}

/// Builds an object from form pairs; a key given twice without brackets becomes an array.
fn from_pairs(pairs: Vec<(String, Option<String>)>) -> Result<Map<String, Value>, BodyError> {
    let mut root = Value::Object(Map::new());
    let mut holes = HOLE_ALLOWANCE + pairs.len();
    for (key, value) in pairs {
        let value = Value::String(value.unwrap_or_default());
        insert(&mut root, &parse_key(&key)?, value, &mut holes)?;
    }
    match root {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// Puts `value` at `steps` under `node`; `holes` is how many more empty array slots the body
/// may create.
fn insert(
    node: &mut Value,
    steps: &[Step],
    value: Value,
    holes: &mut usize,
) -> Result<(), BodyError> {
    let Some((step, rest)) = steps.split_first() else {
        return Ok(());
    };
    let conflict = || BodyError::Invalid("conflicting keys in form body".into());
    match step {
        Step::Field(name) => {
            if node.is_null() {
                *node = Value::Object(Map::new());
            }
            let map = node.as_object_mut().ok_or_else(conflict)?;
            if rest.is_empty() {
                match map.get_mut(name) {
                    // A plain key repeated: an array of its values.
                    Some(Value::Array(items)) => items.push(value),
                    Some(Value::Object(_)) => return Err(conflict()),
                    Some(existing) => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, value]);
                    }
                    None => {
                        map.insert(name.clone(), value);
                    }
                }
                Ok(())
            } else {
                insert(
                    map.entry(name.clone()).or_insert(Value::Null),
                    rest,
                    value,
                    holes,
                )
            }
        }
        Step::Index(_) | Step::Append => {
            if node.is_null() {
                *node = Value::Array(Vec::new());
            }
            let items = node.as_array_mut().ok_or_else(conflict)?;
            let i = match step {
                Step::Index(i) => *i,
                _ => items.len(),
            };
            if items.len() <= i {
                let empty = i - items.len();
                *holes = holes
                    .checked_sub(empty)
                    .ok_or_else(|| BodyError::Invalid("array index too large".into()))?;
                items.resize(i + 1, Value::Null);
            }
            if rest.is_empty() {
                items[i] = value;
                Ok(())
            } else {
                insert(&mut items[i], rest, value, holes)
            }
        }
    }
}

/// Gives form values the types of `schema`'s fields; a plugin's `config` takes the types of
/// `config_schema`. An empty value of a non-text field becomes null, as in Kong.
pub fn coerce(map: &mut Map<String, Value>, schema: &Schema, config_schema: Option<&Schema>) {
    for (field, value) in map.iter_mut() {
        if field == "config" {
            if let (Value::Object(config), Some(cs)) = (&mut *value, config_schema) {
                coerce(config, cs, None);
            }
            continue;
        }
        match (schema.field(field).map(|f| f.ty), &mut *value) {
            (Some(Type::Record(inner)), Value::Object(record)) => coerce(record, inner, None),
            (Some(ty), _) => coerce_value(value, ty.form_shape()),
            (None, _) => {}
        }
    }
}

fn coerce_value(value: &mut Value, shape: Shape) {
    let text = value.as_str().map(str::to_string);
    match (shape, text) {
        (Shape::Text, _) => {}
        (
            Shape::Integer
            | Shape::Number
            | Shape::Boolean
            | Shape::TextArray
            | Shape::IntegerArray
            | Shape::HeaderMap,
            Some(t),
        ) if t.is_empty() => *value = Value::Null,
        (Shape::Integer, Some(t)) => {
            if let Ok(n) = t.trim().parse::<i64>() {
                *value = Value::from(n);
            }
        }
        (Shape::Number, Some(t)) => {
            if let Some(n) = t
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                *value = Value::Number(n);
            }
        }
        (Shape::Boolean, Some(t)) => match t.as_str() {
            "true" => *value = Value::Bool(true),
            "false" => *value = Value::Bool(false),
            _ => {}
        },
        (Shape::TextArray, Some(t)) => *value = Value::Array(vec![Value::String(t)]),
        (Shape::IntegerArray, _) => {
            if let Value::String(_) = value {
                *value = Value::Array(vec![value.take()]);
            }
            if let Value::Array(items) = value {
                items.retain(|v| !v.is_null());
                for item in items.iter_mut() {
                    coerce_value(item, Shape::Integer);
                }
            }
        }
        (Shape::HeaderMap, _) => {
            if let Value::Object(headers) = value {
                for v in headers.values_mut() {
                    if let Value::String(s) = v {
                        *v = Value::Array(vec![Value::String(std::mem::take(s))]);
                    }
                }
            }
        }
        (Shape::TextArray, None) => {
            // `paths[1]=…&paths[3]=…` leaves holes: drop them.
            if let Value::Array(items) = value {
                items.retain(|v| !v.is_null());
            }
        }
        _ => {}
    }
}

/// A query string's arguments, decoded; a flag (`?x`) has the empty value.
pub fn query_pairs(q: &[u8]) -> Vec<(String, String)> {
    crate::http::form::decoded(q)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(body: &str) -> Value {
        let (m, _) =
            parse(Some(b"application/x-www-form-urlencoded"), body.as_bytes()).expect("valid");
        Value::Object(m)
    }

    #[test]
    fn kong_form_notation() {
        assert_eq!(
            form("name=lambda1&url=http%3A%2F%2Flocalhost%3A8000"),
            json!({"name": "lambda1", "url": "http://localhost:8000"})
        );
        assert_eq!(
            form("paths[1]=/a&paths[2]=/b"),
            json!({"paths": ["/a", "/b"]})
        );
        assert_eq!(
            form("paths[]=/a&paths[]=/b"),
            json!({"paths": ["/a", "/b"]})
        );
        assert_eq!(form("paths=/a&paths=/b"), json!({"paths": ["/a", "/b"]}));
        assert_eq!(
            form("name=aws-lambda&config.aws_key=AK%2B%2F%3D&config.aws_secret=a%2Bb%2Fc%3D&config.timeout=100"),
            json!({"name": "aws-lambda", "config": {"aws_key": "AK+/=", "aws_secret": "a+b/c=", "timeout": "100"}})
        );
        assert_eq!(
            form("service.id=abc&headers.x-a[]=1"),
            json!({"service": {"id": "abc"}, "headers": {"x-a": ["1"]}})
        );
        assert!(parse(Some(b"application/x-www-form-urlencoded"), b"a.b=1&a=2").is_err());
        assert!(parse(Some(b"application/x-www-form-urlencoded"), b"a[=1").is_err());
    }

    /// Hostile shapes: memory stays linear in the body, the stack stays shallow.
    #[test]
    fn deep_keys_and_far_indexes_are_refused() {
        let form = Some(&b"application/x-www-form-urlencoded"[..]);
        assert!(parse(form, b"paths[500]=/a").is_ok());
        for deep in [
            format!("{}=1", vec!["a"; 100_000].join(".")),
            format!("a{}=1", "[1]".repeat(100_000)),
        ] {
            assert!(matches!(
                parse(form, deep.as_bytes()),
                Err(BodyError::Invalid(m)) if m.contains("nested")
            ));
        }
        // Each field may open a few empty slots, not ten thousand.
        let far: Vec<String> = (0..2000).map(|i| format!("k{i}[9999]=v")).collect();
        assert_eq!(
            parse(form, far.join("&").as_bytes()),
            Err(BodyError::Invalid("array index too large".into()))
        );
        let near: Vec<String> = (0..2000).map(|i| format!("k{i}[2]=v")).collect();
        assert!(parse(form, near.join("&").as_bytes()).is_ok());
    }

    #[test]
    fn json_and_multipart_and_types() {
        let (m, is_form) =
            parse(Some(b"application/json"), br#"{"name":"x","paths":["/a"]}"#).expect("valid");
        assert_eq!(
            (Value::Object(m), is_form),
            (json!({"name": "x", "paths": ["/a"]}), false)
        );
        assert!(matches!(
            parse(Some(b"application/json"), b"[1]"),
            Err(BodyError::Invalid(_))
        ));
        assert_eq!(
            parse(Some(b"text/plain"), b"x"),
            Err(BodyError::UnsupportedType)
        );
        let mp = b"--B\r\nContent-Disposition: form-data; name=\"paths[1]\"\r\n\r\n/m\r\n--B--\r\n";
        let (m, _) = parse(Some(b"multipart/form-data; boundary=B"), mp).expect("valid");
        assert_eq!(Value::Object(m), json!({"paths": ["/m"]}));
    }

    #[test]
    fn coercion() {
        let Value::Object(mut m) = form(
            "port=8000&enabled=false&tags=a&retries=&config.timeout=5&config.disable_https=true",
        ) else {
            panic!("object")
        };
        coerce(
            &mut m,
            crate::schema::Kind::Service.schema(),
            Some(&crate::lambda::config::SCHEMA),
        );
        assert_eq!(
            Value::Object(m),
            json!({"port": 8000, "enabled": false, "tags": ["a"], "retries": null, "config": {"timeout": 5, "disable_https": true}})
        );
    }
}
