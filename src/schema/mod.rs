//! Schemas: one table of fields per entity kind and per plugin, read by everything that needs
//! to know an entity's fields: the declarative validator (and so `check` and the Admin API's
//! validation), the Admin API's form coercion and presentation, uniqueness and references.
//! Adding a field is one entry here plus the code that uses its value.

pub mod check;
pub mod entities;

use check::{describe, Checker};
use serde_json::{Map, Value};

/// A check of a text value: `Err` with the message to report.
pub type TextCheck = fn(&str) -> Result<(), String>;

/// The entity kinds a configuration holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `services`.
    Service,
    /// `routes`.
    Route,
    /// `consumers`.
    Consumer,
    /// `plugins`.
    Plugin,
}

impl Kind {
    /// Every kind, in the order of a declarative document.
    pub const ALL: [Kind; 4] = [Kind::Service, Kind::Route, Kind::Consumer, Kind::Plugin];

    /// The collection name (`services` …).
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Route => "routes",
            Kind::Consumer => "consumers",
            Kind::Plugin => "plugins",
        }
    }

    /// The kind of a collection name.
    pub fn from_collection(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.collection() == s)
    }

    /// The field name an entity uses to refer to one of this kind (`service` …).
    pub fn reference_field(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Route => "route",
            Kind::Consumer => "consumer",
            Kind::Plugin => "plugin",
        }
    }

    /// The kind's schema.
    pub fn schema(self) -> &'static Schema {
        match self {
            Kind::Service => &entities::SERVICE,
            Kind::Route => &entities::ROUTE,
            Kind::Consumer => &entities::CONSUMER,
            Kind::Plugin => &entities::PLUGIN,
        }
    }
}

/// What a field holds.
#[derive(Clone, Copy, Debug)]
pub enum Type {
    /// A string, checked by the function when given.
    Text(Option<TextCheck>),
    /// An integer within the bounds (integral floats such as `60000.0` count).
    Integer {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// `true` or `false`.
    Boolean,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// One of these integers.
    OneOfInts(&'static [i64]),
    /// An array of strings, each checked by the function.
    Texts(Option<TextCheck>),
    /// An array of strings, each one of these.
    TextsOneOf(&'static [&'static str]),
    /// Header name → a value or a list of values (route `headers`).
    HeaderMap,
    /// Another entity: its name, id, or `{id: …}`.
    Reference(Kind),
    /// Entities of a kind nested in this one (a service's `routes`), validated by their own
    /// schema; not part of the entity itself.
    Nested(Kind),
    /// A plugin's config object, validated by the schema of the plugin named in `name`.
    PluginConfig,
    /// Any JSON value, kept as given (Kong fields accepted for compatibility).
    Any,
}

/// A field's default, as the Admin API shows it when the field is not set.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Text(&'static str),
    /// A list of strings.
    Texts(&'static [&'static str]),
}

impl Default {
    /// The default as JSON.
    pub fn to_json(self) -> Value {
        match self {
            Default::Null => Value::Null,
            Default::Bool(b) => Value::Bool(b),
            Default::Int(i) => Value::from(i),
            Default::Text(s) => Value::String(s.to_string()),
            Default::Texts(items) => {
                Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
            }
        }
    }
}

/// How the Admin API shows a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// As stored.
    Plain,
    /// The first four characters, the rest masked (`aws_key`).
    Masked,
    /// Never: the redaction marker (`aws_secret`).
    Redacted,
}

/// What the Admin API shows instead of a redacted secret.
pub const REDACTED: &str = "<redacted>";

/// The access key id as the Admin API shows it: its first 4 characters, the rest masked.
pub fn mask(value: &str) -> String {
    let shown: String = value.chars().take(4).collect();
    format!(
        "{shown}{}",
        "*".repeat(value.chars().count().saturating_sub(4).max(4))
    )
}

/// One field of a schema.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub ty: Type,
    /// Its value when not set.
    pub default: Default,
    /// Must be set.
    pub required: bool,
    /// No two entities of a kind may share a value.
    pub unique: bool,
    /// How the Admin API shows it.
    pub shown: Shown,
    /// Accepted by Kong but refused here, with why (e.g. a feature not built yet).
    pub refused: Option<&'static str>,
}

impl Field {
    /// A field of type `ty`, `null` by default, optional.
    pub const fn new(name: &'static str, ty: Type) -> Field {
        Field {
            name,
            ty,
            default: Default::Null,
            required: false,
            unique: false,
            shown: Shown::Plain,
            refused: None,
        }
    }

    /// With a default.
    pub const fn default(mut self, default: Default) -> Field {
        self.default = default;
        self
    }

    /// Required.
    pub const fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// Unique among the entities of its kind.
    pub const fn unique(mut self) -> Field {
        self.unique = true;
        self
    }

    /// Shown as `shown` by the Admin API.
    pub const fn shown(mut self, shown: Shown) -> Field {
        self.shown = shown;
        self
    }

    /// Refused when set (not null), with `why`.
    pub const fn refused(mut self, why: &'static str) -> Field {
        self.refused = Some(why);
        self
    }
}

/// The fields of an entity kind or of a plugin's config.
#[derive(Debug)]
pub struct Schema {
    /// Its name (`services`, `aws-lambda` …).
    pub name: &'static str,
    /// Its fields.
    pub fields: &'static [Field],
}

impl Schema {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The unique fields (besides `id`).
    pub fn unique_fields(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.fields.iter().filter(|f| f.unique)
    }

    /// What no two entities of a kind may share: `id` and every unique field `raw` sets, as
    /// (field, value).
    pub fn unique_values<'a>(
        &'a self,
        raw: &'a Map<String, Value>,
    ) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
        self.unique_fields()
            .map(|f| f.name)
            .chain(["id"])
            .filter_map(|name| Some((name, raw.get(name)?.as_str()?)))
    }

    /// Checks `obj` against the schema: unknown fields, required fields, and the type of every
    /// field that is set (nested entities and plugin configs are left to the caller). Errors
    /// go to `c` with their paths.
    pub fn check(&self, c: &mut Checker, obj: &Map<String, Value>) {
        for key in obj.keys() {
            if self.field(key).is_none() {
                c.error_at(key, "unknown field");
            }
        }
        for field in self.fields {
            match obj.get(field.name) {
                None | Some(Value::Null) => {
                    if field.required {
                        c.error_at(field.name, "required field missing");
                    }
                }
                Some(value) => {
                    if let Some(why) = field.refused {
                        c.error_at(field.name, why);
                        continue;
                    }
                    c.field(field.name, |c| check_value(c, field.ty, value));
                }
            }
        }
    }

    /// `obj[name]` as text, else the field's default text.
    pub fn text<'a>(&self, obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
        match obj.get(name) {
            Some(Value::String(s)) => Some(s),
            _ => match self.field(name).map(|f| f.default) {
                Some(Default::Text(s)) => Some(s),
                _ => None,
            },
        }
    }

    /// `obj[name]` as an integer (integral floats included), else the field's default.
    pub fn int(&self, obj: &Map<String, Value>, name: &str) -> Option<i64> {
        match obj.get(name).and_then(as_integer) {
            Some(i) => Some(i),
            None => match self.field(name).map(|f| f.default) {
                Some(Default::Int(i)) => Some(i),
                _ => None,
            },
        }
    }

    /// `obj[name]` as a boolean, else the field's default (false without one).
    pub fn boolean(&self, obj: &Map<String, Value>, name: &str) -> bool {
        match obj.get(name) {
            Some(Value::Bool(b)) => *b,
            _ => matches!(
                self.field(name).map(|f| f.default),
                Some(Default::Bool(true))
            ),
        }
    }

    /// `obj[name]` as a list of strings, else the field's default (empty without one).
    pub fn texts(&self, obj: &Map<String, Value>, name: &str) -> Vec<String> {
        match obj.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => match self.field(name).map(|f| f.default) {
                Some(Default::Texts(items)) => items.iter().map(|s| s.to_string()).collect(),
                _ => Vec::new(),
            },
        }
    }

    /// The entity as the Admin API shows it: every field of the schema (nested entities
    /// excepted), set or defaulted, secrets masked or redacted.
    pub fn present(&self, raw: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for field in self.fields {
            if matches!(field.ty, Type::Nested(_)) {
                continue;
            }
            let value = match raw.get(field.name) {
                Some(v) if !v.is_null() => v.clone(),
                _ => field.default.to_json(),
            };
            out.insert(field.name.to_string(), hide(field.shown, value));
        }
        out
    }

    /// The stored document's form of `raw` with its secrets hidden (`GET /config`).
    pub fn hide_secrets(&self, raw: &mut Map<String, Value>) {
        for field in self.fields.iter().filter(|f| f.shown != Shown::Plain) {
            if let Some(v) = raw.get_mut(field.name) {
                *v = hide(field.shown, v.take());
            }
        }
    }

    /// A value given back as its hidden form (the redaction marker, the masked key) keeps the
    /// stored value, so a GET → edit → PUT round trip does not overwrite secrets with
    /// placeholders. `Err` names the field when there is no stored value to keep.
    pub fn keep_hidden(
        &self,
        incoming: &mut Map<String, Value>,
        stored: Option<&Map<String, Value>>,
    ) -> Result<(), String> {
        for field in self.fields.iter().filter(|f| f.shown != Shown::Plain) {
            let Some(Value::String(given)) = incoming.get(field.name) else {
                continue;
            };
            let stored_value = stored
                .and_then(|s| s.get(field.name))
                .and_then(Value::as_str);
            let is_placeholder = match (field.shown, stored_value) {
                (Shown::Redacted, _) => given == REDACTED,
                (_, Some(v)) => *given == mask(v),
                _ => false,
            };
            if !is_placeholder {
                continue;
            }
            match stored_value {
                Some(v) => {
                    incoming.insert(field.name.to_string(), Value::String(v.to_string()));
                }
                None => {
                    return Err(format!(
                        "config.{}: {given:?} is a redaction placeholder, not a value",
                        field.name
                    ))
                }
            }
        }
        Ok(())
    }
}

fn hide(shown: Shown, value: Value) -> Value {
    match (shown, value) {
        (Shown::Masked, Value::String(s)) => Value::String(mask(&s)),
        (Shown::Redacted, Value::String(_)) => Value::String(REDACTED.into()),
        (_, v) => v,
    }
}

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
fn check_value(c: &mut Checker, ty: Type, value: &Value) {
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
        Type::HeaderMap => check_header_map(c, value),
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
    /// `"true"` → true.
    Boolean,
    /// `"/a"` → `["/a"]`; an array of text stays.
    TextArray,
    /// `{name: "v"}` → `{name: ["v"]}` (route `headers`).
    HeaderMap,
}

impl Type {
    /// The shape of a form value for a field of this type.
    pub fn form_shape(self) -> Shape {
        match self {
            Type::Integer { .. } | Type::OneOfInts(_) => Shape::Integer,
            Type::Boolean => Shape::Boolean,
            Type::Texts(_) | Type::TextsOneOf(_) => Shape::TextArray,
            Type::HeaderMap => Shape::HeaderMap,
            _ => Shape::Text,
        }
    }
}
