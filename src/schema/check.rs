//! Collecting validation errors with the path of the offending value, so a whole file's
//! problems are reported in one pass: `services[0].plugins[0].config.aws_region: expected …`.

use serde_json::{Map, Value};
use std::fmt;

/// One problem found in a config, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the value, e.g. `services[0].routes[1].paths[0]`; empty for the document.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// For a uniqueness violation, the values that clash (Kong's `fields` of its 409).
    pub conflict: Option<Value>,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
            conflict: None,
        }
    }

    /// A uniqueness violation at `path`: `fields` are the values another entity already has,
    /// the message is Kong's (`UNIQUE violation detected on '{name="s1"}'`).
    pub fn unique(path: impl Into<String>, fields: Value) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: format!("UNIQUE violation detected on '{}'", lua_table(&fields)),
            conflict: Some(fields),
        }
    }
}

/// A value written as Kong prints a Lua table: `{id="x",name=null}`, keys sorted.
fn lua_table(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}={}", lua_table(&m[k])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_table).collect();
            format!("{{{}}}", items.join(","))
        }
        other => other.to_string(),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config, in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A single error at `path`.
    pub fn single(path: &str, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError::new(path, message)])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A path segment.
#[derive(Clone, Debug)]
enum Seg {
    Field(String),
    Index(usize),
}

/// The validation walker's state: where it is, and what it found so far.
#[derive(Default)]
pub struct Checker {
    path: Vec<Seg>,
    /// Errors found so far.
    pub errors: Vec<ConfigError>,
}

impl Checker {
    /// Runs `f` with `field` appended to the current path.
    pub fn field<R>(&mut self, field: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(Seg::Field(field.to_string()));
        let r = f(self);
        self.path.pop();
        r
    }

    /// Runs `f` with `[index]` appended to the current path.
    pub fn index<R>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(Seg::Index(index));
        let r = f(self);
        self.path.pop();
        r
    }

    /// Appends a field segment to the current path (undo with [`Checker::pop`]).
    pub fn push_field(&mut self, field: &str) {
        self.path.push(Seg::Field(field.to_string()));
    }

    /// Appends an index segment to the current path (undo with [`Checker::pop`]).
    pub fn push_index(&mut self, index: usize) {
        self.path.push(Seg::Index(index));
    }

    /// Removes the last path segment.
    pub fn pop(&mut self) {
        self.path.pop();
    }

    /// The current path as text.
    pub fn path(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Field(name) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// Records an error at the current path.
    pub fn error(&mut self, message: impl Into<String>) {
        let path = self.path();
        self.errors.push(ConfigError::new(path, message));
    }

    /// Records an error at `field` below the current path.
    pub fn error_at(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        self.field(field, |c| c.error(message));
    }

    /// Reports every key of `obj` that is not in `known`.
    pub fn unknown_fields(&mut self, obj: &Map<String, Value>, known: &[&str]) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                self.error_at(key, "unknown field");
            }
        }
    }

    /// The value as an object, or an error naming what it is.
    pub fn object<'v>(&mut self, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.error(format!("expected an object, got {}", describe(other)));
                None
            }
        }
    }
}

/// A short description of a JSON value for error messages: `"??"`, `12`, `an object`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
