//! Values against their field types: the checks a schema runs on each set field, and the
//! readers of the compound types (header maps, references, form shapes).

use super::check::{describe, Checker};
use super::Type;
use serde_json::Value;

/// An integer, or an integral float such as Kong's `60000.0`.
pub fn as_integer(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// Checks one set value against its type, reporting at the current path.
pub(super) fn check_value(c: &mut Checker, ty: Type, value: &Value) {
    match ty {
        Type::Text(check) => match value {
            Value::String(s) => {
                if let Some(Err(why)) = check.map(|f| f(s)) {
                    c.error(why);
                }
            }
            other => c.error(format!("expected a string, got {}", describe(other))),
        },
        Type::Integer { min, max } => match value {
            Value::Number(n) => match as_integer(value) {
                Some(i) if (min..=max).contains(&i) => {}
                Some(i) if n.is_i64() || n.is_u64() => {
                    c.error(format!("value should be between {min} and {max}, got {i}"))
                }
                _ => c.error(format!(
                    "expected an integer between {min} and {max}, got {n}"
                )),
            },
            other => c.error(format!("expected an integer, got {}", describe(other))),
        },
        Type::Number { min, max } => match value.as_f64() {
            Some(n) if (min..=max).contains(&n) => {}
            Some(n) => c.error(format!("value should be between {min} and {max}, got {n}")),
            None => c.error(format!("expected a number, got {}", describe(value))),
        },
        Type::Boolean => {
            if !value.is_boolean() {
                c.error(format!("expected a boolean, got {}", describe(value)));
            }
        }
        Type::OneOf(allowed) => {
            if !value.as_str().is_some_and(|s| allowed.contains(&s)) {
                let list = allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                c.error(format!("expected one of: {list}, got {}", describe(value)));
            }
        }
        Type::OneOfInts(allowed) => {
            if !as_integer(value).is_some_and(|i| allowed.contains(&i)) {
                let list = allowed
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                c.error(format!("expected one of {list}, got {}", describe(value)));
            }
        }
        Type::Texts(check) => check_texts(c, value, |c, s| {
            if let Some(Err(why)) = check.map(|f| f(s)) {
                c.error(why);
            }
        }),
        Type::TextsOneOf(allowed) => check_texts(c, value, |c, s| {
            if !allowed.contains(&s) {
                let list = allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                c.error(format!("expected one of {list}, got {s:?}"));
            }
        }),
        Type::Integers { min, max } => match value {
            Value::Array(items) if items.is_empty() => c.error("length must be at least 1"),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    c.index(i, |c| check_value(c, Type::Integer { min, max }, item));
                }
            }
            other => c.error(format!(
                "expected an array of integers, got {}",
                describe(other)
            )),
        },
        Type::HeaderMap => check_header_map(c, value),
        Type::TextMap(check) => check_text_map(c, value, check),
        Type::Reference(_) => {
            reference_target(c, value);
        }
        Type::Nested(_) => {
            if !value.is_array() {
                c.error(format!("expected an array, got {}", describe(value)));
            }
        }
        Type::PluginConfig => {
            if !value.is_object() {
                c.error(format!("expected an object, got {}", describe(value)));
            }
        }
        Type::Any => {}
        Type::Record(schema) => match value {
            Value::Object(obj) => schema.check(c, obj),
            other => c.error(format!("expected an object, got {}", describe(other))),
        },
    }
}

fn check_texts(c: &mut Checker, value: &Value, mut each: impl FnMut(&mut Checker, &str)) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                c.index(i, |c| match item {
                    Value::String(s) => each(c, s),
                    other => c.error(format!("expected a string, got {}", describe(other))),
                });
            }
        }
        other => c.error(format!(
            "expected an array of strings, got {}",
            describe(other)
        )),
    }
}

/// A map of strings: an object whose members are non-empty strings, names checked by `check`.
fn check_text_map(c: &mut Checker, value: &Value, check: Option<super::TextCheck>) {
    let Value::Object(map) = value else {
        c.error(format!(
            "expected an object of names to strings, got {}",
            describe(value)
        ));
        return;
    };
    for (name, member) in map {
        c.field(name, |c| {
            if let Some(Err(why)) = check.map(|f| f(name)) {
                c.error(why);
            }
            match member {
                Value::String(s) if s.is_empty() => c.error("length must be at least 1"),
                Value::String(_) => {}
                other => c.error(format!("expected a string, got {}", describe(other))),
            }
        });
    }
}

/// Route `headers`: an object of header names to a value or a list of values.
fn check_header_map(c: &mut Checker, value: &Value) {
    let Value::Object(map) = value else {
        c.error(format!(
            "expected an object of header names to values, got {}",
            describe(value)
        ));
        return;
    };
    for (name, values) in map {
        c.field(name, |c| {
            if name.eq_ignore_ascii_case("host") {
                c.error("use 'hosts' to match the Host header");
                return;
            }
            let strings: Vec<&str> = match values {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                other => {
                    c.error(format!(
                        "expected a list of strings, got {}",
                        describe(other)
                    ));
                    return;
                }
            };
            if strings.iter().any(|v| v.starts_with("~*")) {
                c.error("regex header values (~*) are not supported");
            }
        });
    }
}

/// The values of a header map, lower-cased: (name, values) in the order written.
pub fn header_map(value: Option<&Value>) -> Vec<(String, Vec<String>)> {
    let Some(Value::Object(map)) = value else {
        return Vec::new();
    };
    map.iter()
        .map(|(name, values)| {
            let list: Vec<String> = match values {
                Value::String(s) => vec![s.to_ascii_lowercase()],
                Value::Array(items) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                    .collect(),
                _ => Vec::new(),
            };
            (name.to_ascii_lowercase(), list)
        })
        .collect()
}

/// A reference is a name or id string, or `{id: …}` / `{name: …}` / `{username: …}`: the name
/// or id it names, or an error at the current path.
pub fn reference_target(c: &mut Checker, value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(map) => {
            for key in ["id", "name", "username"] {
                if let Some(Value::String(s)) = map.get(key) {
                    return Some(s.clone());
                }
            }
            c.error("expected a reference like {id: …} or {name: …}");
            None
        }
        other => {
            c.error(format!(
                "expected a name, an id or {{id: …}}, got {}",
                describe(other)
            ));
            None
        }
    }
}

/// The type a form value (text) takes from a field's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Text stays text.
    Text,
    /// `"8000"` → 8000.
    Integer,
    /// `"0.25"` → 0.25.
    Number,
    /// `"true"` → true.
    Boolean,
    /// `"/a"` → `["/a"]`; an array of text stays.
    TextArray,
    /// `"200"` → `[200]`; each text of an array becomes a number.
    IntegerArray,
    /// `{name: "v"}` → `{name: ["v"]}` (route `headers`).
    HeaderMap,
}

impl Type {
    /// The shape of a form value for a field of this type.
    pub fn form_shape(self) -> Shape {
        match self {
            Type::Integer { .. } | Type::OneOfInts(_) => Shape::Integer,
            Type::Number { .. } => Shape::Number,
            Type::Boolean => Shape::Boolean,
            Type::Texts(_) | Type::TextsOneOf(_) => Shape::TextArray,
            Type::Integers { .. } => Shape::IntegerArray,
            Type::HeaderMap => Shape::HeaderMap,
            _ => Shape::Text,
        }
    }
}
