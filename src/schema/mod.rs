//! Schemas: one table of fields per entity kind and per plugin, read by everything that needs
//! to know an entity's fields: the declarative validator (and so `check` and the Admin API's
//! validation), the Admin API's form coercion and presentation, uniqueness and references.
//! Adding a field is one entry here plus the code that uses its value.

pub mod check;
pub mod entities;
pub mod settings;
mod values;

use check::Checker;
use serde_json::{json, Map, Value};
pub use values::{as_integer, header_map, reference_target, Shape};

/// A check of a text value: `Err` with the message to report.
pub type TextCheck = fn(&str) -> Result<(), String>;

/// The entity kinds a configuration holds. What differs between kinds (names, schema) is
/// one row of [`KIND_TABLE`]; the configuration stores each kind's entities behind
/// `config::model::Entity`.
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
    /// `certificates`: server certificates for HTTPS clients.
    Certificate,
    /// `snis`: the names a certificate is served for.
    Sni,
    /// `keyauth_credentials`: a consumer's API keys (`key-auth`).
    KeyAuth,
    /// `acls`: a consumer's groups (`acl`).
    Acl,
    /// `jwt_secrets`: a consumer's JWT keys and secrets (`jwt`).
    Jwt,
}

/// What is known of an entity kind.
#[derive(Debug)]
pub struct KindInfo {
    /// The kind.
    pub kind: Kind,
    /// The collection name in a declarative document and the Admin API (`services` …).
    pub collection: &'static str,
    /// The Admin API's other names for the collection (`key-auth` under a consumer).
    pub aliases: &'static [&'static str],
    /// The field name an entity uses to refer to one of this kind (`service` …).
    pub reference_field: &'static str,
    /// The kind's fields.
    pub schema: &'static Schema,
}

/// Every kind, in the order of a declarative document and of [`Kind`]'s variants.
pub static KIND_TABLE: [KindInfo; 9] = [
    KindInfo {
        kind: Kind::Service,
        collection: "services",
        aliases: &[],
        reference_field: "service",
        schema: &entities::SERVICE,
    },
    KindInfo {
        kind: Kind::Route,
        collection: "routes",
        aliases: &[],
        reference_field: "route",
        schema: &entities::ROUTE,
    },
    KindInfo {
        kind: Kind::Consumer,
        collection: "consumers",
        aliases: &[],
        reference_field: "consumer",
        schema: &entities::CONSUMER,
    },
    KindInfo {
        kind: Kind::Plugin,
        collection: "plugins",
        aliases: &[],
        reference_field: "plugin",
        schema: &entities::PLUGIN,
    },
    KindInfo {
        kind: Kind::Certificate,
        collection: "certificates",
        aliases: &[],
        reference_field: "certificate",
        schema: &entities::CERTIFICATE,
    },
    KindInfo {
        kind: Kind::Sni,
        collection: "snis",
        aliases: &[],
        reference_field: "sni",
        schema: &entities::SNI,
    },
    KindInfo {
        kind: Kind::KeyAuth,
        collection: "keyauth_credentials",
        aliases: &["key-auth", "key-auths"],
        reference_field: "keyauth_credential",
        schema: &entities::KEYAUTH_CREDENTIAL,
    },
    KindInfo {
        kind: Kind::Acl,
        collection: "acls",
        aliases: &[],
        reference_field: "acl",
        schema: &entities::ACL,
    },
    KindInfo {
        kind: Kind::Jwt,
        collection: "jwt_secrets",
        aliases: &["jwt", "jwts"],
        reference_field: "jwt_secret",
        schema: &entities::JWT_SECRET,
    },
];

impl Kind {
    /// Every kind, in the order of a declarative document.
    pub const ALL: [Kind; 9] = [
        Kind::Service,
        Kind::Route,
        Kind::Consumer,
        Kind::Plugin,
        Kind::Certificate,
        Kind::Sni,
        Kind::KeyAuth,
        Kind::Acl,
        Kind::Jwt,
    ];

    /// The kind's row of [`KIND_TABLE`].
    pub fn info(self) -> &'static KindInfo {
        &KIND_TABLE[self as usize]
    }

    /// The collection name (`services` …).
    pub fn collection(self) -> &'static str {
        self.info().collection
    }

    /// The kind of a collection name, or of the Admin API's name for it (`key-auth` under a
    /// consumer, `key-auths` at the top).
    pub fn from_collection(s: &str) -> Option<Kind> {
        KIND_TABLE
            .iter()
            .find(|k| k.collection == s || k.aliases.contains(&s))
            .map(|k| k.kind)
    }

    /// The field name an entity uses to refer to one of this kind (`service` …).
    pub fn reference_field(self) -> &'static str {
        self.info().reference_field
    }

    /// The kind's schema.
    pub fn schema(self) -> &'static Schema {
        self.info().schema
    }

    /// The kinds this kind refers to, with the field that holds each reference.
    pub fn references(self) -> impl Iterator<Item = (&'static str, Kind)> {
        self.schema().fields.iter().filter_map(|f| match f.ty {
            Type::Reference(to) => Some((f.name, to)),
            _ => None,
        })
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
    /// A number (integer or not) within the bounds (`sampling_rate`).
    Number {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
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
    /// An array of integers, each within the bounds, at least one.
    Integers {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// Header name → a value or a list of values (route `headers`).
    HeaderMap,
    /// Name → a non-empty string, each name checked by the function when given (Kong's
    /// `map` of strings: opentelemetry's `headers`, `resource_attributes`).
    TextMap(Option<TextCheck>),
    /// Another entity: its name, id, or `{id: …}`.
    Reference(Kind),
    /// Entities of a kind nested in this one (a service's `routes`), validated by their own
    /// schema; not part of the entity itself.
    Nested(Kind),
    /// A plugin's config object, validated by the schema of the plugin named in `name`.
    PluginConfig,
    /// Any JSON value, kept as given (Kong fields accepted for compatibility).
    Any,
    /// An object of the fields of its own schema (Kong's `record`: response-transformer's
    /// `add`), each defaulted as a top-level field is.
    Record(&'static Schema),
}

impl Type {
    /// The type as Kong's schemas write it.
    fn to_kong(self) -> Value {
        let strings = |items: &[&str]| json!(items);
        match self {
            Type::Text(_) => json!({"type": "string"}),
            Type::Integer { min, max } => json!({"type": "integer", "between": [min, max]}),
            Type::Number { min, max } => json!({"type": "number", "between": [min, max]}),
            Type::Boolean => json!({"type": "boolean"}),
            Type::OneOf(items) => json!({"type": "string", "one_of": strings(items)}),
            Type::OneOfInts(items) => json!({"type": "integer", "one_of": items}),
            Type::Texts(_) => json!({"type": "array", "elements": {"type": "string"}}),
            Type::Integers { min, max } => json!({
                "type": "array",
                "len_min": 1,
                "elements": {"type": "integer", "between": [min, max]},
            }),
            Type::TextsOneOf(items) => {
                json!({"type": "set", "elements": {"type": "string", "one_of": strings(items)}})
            }
            Type::HeaderMap => json!({
                "type": "map",
                "keys": {"type": "string"},
                "values": {"type": "array", "elements": {"type": "string"}},
            }),
            Type::TextMap(_) => json!({
                "type": "map",
                "keys": {"type": "string"},
                "values": {"type": "string"},
            }),
            Type::Reference(kind) => json!({"type": "foreign", "reference": kind.collection()}),
            Type::Nested(kind) => json!({"type": "array", "reference": kind.collection()}),
            Type::PluginConfig => json!({"type": "record"}),
            Type::Any => json!({"type": "json"}),
            Type::Record(schema) => {
                json!({"type": "record", "required": true, "fields": schema.to_kong_fields(None)})
            }
        }
    }
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
    /// A number.
    Number(f64),
    /// A string.
    Text(&'static str),
    /// A list of strings.
    Texts(&'static [&'static str]),
    /// A list of integers.
    Ints(&'static [i64]),
}

impl Default {
    /// The default as JSON.
    pub fn to_json(self) -> Value {
        match self {
            Default::Null => Value::Null,
            Default::Bool(b) => Value::Bool(b),
            Default::Int(i) => Value::from(i),
            Default::Number(n) => Value::from(n),
            Default::Text(s) => Value::String(s.to_string()),
            Default::Texts(items) => {
                Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
            }
            Default::Ints(items) => Value::Array(items.iter().map(|&i| Value::from(i)).collect()),
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
    /// May hold a vault reference (`{vault://env/NAME}`), resolved when the configuration is
    /// loaded (Kong's `referenceable`; for an object, its string members may).
    pub referenceable: bool,
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
            referenceable: false,
        }
    }

    /// A field of type `ty` whose name [`settings!`](crate::settings) gives it (see
    /// [`Field::named`]).
    pub const fn of(ty: Type) -> Field {
        Field::new("", ty)
    }

    /// Named `name`.
    pub const fn named(mut self, name: &'static str) -> Field {
        self.name = name;
        self
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

    /// May hold a vault reference.
    pub const fn referenceable(mut self) -> Field {
        self.referenceable = true;
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
    /// The schema as Kong's Admin API describes one (`GET /schemas/…`): `[{name: {type, …}}]`
    /// in field order; a plugin's `config` is the record of `config`'s fields. Nested
    /// collections are not fields of the entity, and fields refused here are left out.
    pub fn to_kong_fields(&self, config: Option<&Schema>) -> Value {
        let fields = self
            .fields
            .iter()
            .filter(|f| f.refused.is_none() && !matches!(f.ty, Type::Nested(_)))
            .map(|f| {
                let mut d = match f.ty {
                    Type::PluginConfig => {
                        let inner = config.map_or(Value::Array(vec![]), |c| c.to_kong_fields(None));
                        json!({"type": "record", "fields": inner})
                    }
                    ty => ty.to_kong(),
                };
                if f.required || matches!(f.ty, Type::PluginConfig) {
                    d["required"] = Value::Bool(true);
                }
                if f.unique {
                    d["unique"] = Value::Bool(true);
                }
                if !matches!(f.default, Default::Null) {
                    d["default"] = f.default.to_json();
                }
                if f.shown != Shown::Plain {
                    d["encrypted"] = Value::Bool(true);
                    d["referenceable"] = Value::Bool(true);
                }
                json!({ f.name: d })
            })
            .collect();
        Value::Array(fields)
    }

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
                // A required reference may come from the entity it is nested in: the
                // validator, which knows, checks it.
                None | Some(Value::Null) => {
                    if field.required && !matches!(field.ty, Type::Reference(_)) {
                        c.error_at(field.name, "required field missing");
                    }
                }
                Some(value) => {
                    if let Some(why) = field.refused {
                        c.error_at(field.name, why);
                        continue;
                    }
                    c.field(field.name, |c| values::check_value(c, field.ty, value));
                }
            }
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
            let value = match (raw.get(field.name), field.ty) {
                (Some(Value::Object(inner)), Type::Record(schema)) => {
                    Value::Object(schema.present(inner))
                }
                (None | Some(Value::Null), Type::Record(schema)) => {
                    Value::Object(schema.present(&Map::new()))
                }
                (Some(v), _) if !v.is_null() => v.clone(),
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

/// Whether `text` is a vault reference (`{vault://…}`, see `config::vault`): shown as written,
/// since it names where a secret is, not the secret.
pub fn is_vault_reference(text: &str) -> bool {
    text.starts_with("{vault://") && text.ends_with('}')
}

fn hide(shown: Shown, value: Value) -> Value {
    match (shown, value) {
        (_, Value::String(s)) if is_vault_reference(&s) => Value::String(s),
        (Shown::Masked, Value::String(s)) => Value::String(mask(&s)),
        (Shown::Redacted, Value::String(_)) => Value::String(REDACTED.into()),
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static TEST: Schema = Schema {
        name: "test",
        fields: &[
            Field::new("name", Type::Text(None)).required().unique(),
            Field::new("size", Type::Integer { min: 1, max: 10 }).default(Default::Int(5)),
            Field::new("mode", Type::OneOf(&["a", "b"])).default(Default::Text("a")),
            Field::new("key", Type::Text(None)).shown(Shown::Masked),
            Field::new("secret", Type::Text(None)).shown(Shown::Redacted),
            Field::new("later", Type::Boolean).refused("not built yet"),
        ],
    };

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn errors(v: Value) -> Vec<String> {
        let mut c = Checker::default();
        TEST.check(&mut c, &obj(v));
        c.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn check_reports_each_field_at_its_path() {
        assert!(errors(json!({"name": "n", "size": 3.0, "mode": "b"})).is_empty());
        assert_eq!(
            errors(json!({"size": 11, "mode": "c", "later": true, "extra": 1})),
            [
                "extra: unknown field",
                "name: required field missing",
                "size: value should be between 1 and 10, got 11",
                "mode: expected one of: \"a\", \"b\", got \"c\"",
                "later: not built yet",
            ]
        );
    }

    #[test]
    fn the_kind_table_is_in_variant_order() {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(KIND_TABLE[i].kind, kind);
            assert_eq!(kind.schema().name, kind.collection());
        }
        assert_eq!(Kind::from_collection("key-auths"), Some(Kind::KeyAuth));
        assert_eq!(Kind::from_collection("snis"), Some(Kind::Sni));
        let plugin_refs: Vec<_> = Kind::Plugin.references().collect();
        assert_eq!(
            plugin_refs,
            [
                ("service", Kind::Service),
                ("route", Kind::Route),
                ("consumer", Kind::Consumer)
            ]
        );
    }

    #[test]
    fn unique_values_are_the_set_unique_fields_then_the_id() {
        assert_eq!(
            TEST.unique_values(&obj(json!({"id": "i", "name": "n"})))
                .collect::<Vec<_>>(),
            [("name", "n"), ("id", "i")]
        );
    }

    #[test]
    fn secrets_are_shown_hidden_and_kept_when_sent_back_hidden() {
        let stored = obj(json!({"name": "n", "key": "AKIDEXAMPLE", "secret": "s3cret"}));
        let shown = TEST.present(&stored);
        assert_eq!(shown["key"], json!("AKID*******"));
        assert_eq!(shown["secret"], json!(REDACTED));
        assert_eq!(shown["size"], json!(5));
        assert_eq!(shown["later"], Value::Null);
        // A GET → PUT round trip keeps the stored secrets.
        let mut back = shown.clone();
        TEST.keep_hidden(&mut back, Some(&stored)).expect("kept");
        assert_eq!(back["key"], json!("AKIDEXAMPLE"));
        assert_eq!(back["secret"], json!("s3cret"));
        // A new value replaces; a placeholder with nothing stored is refused.
        let mut new = obj(json!({"secret": "other"}));
        TEST.keep_hidden(&mut new, Some(&stored))
            .expect("new value");
        assert_eq!(new["secret"], json!("other"));
        let mut orphan = obj(json!({"secret": REDACTED}));
        assert!(TEST.keep_hidden(&mut orphan, None).is_err());
    }
}
