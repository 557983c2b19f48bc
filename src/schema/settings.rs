//! One declaration per field. [`settings!`](crate::settings) makes, from one list, a schema's
//! table of fields (what the validator, `check`, the Admin API's coercion and presentation and
//! `/schemas` read), a typed struct with a field of each, and the code that fills the struct
//! from a checked JSON object, a field's default standing in for it when it is not set. A
//! field is named once: the struct's field and the schema's entry are the same identifier, so
//! no value is ever read back by a string that could be misspelt.
//!
//! ```text
//! crate::settings! {
//!     /// Kong's fields.
//!     pub struct Settings, schema SCHEMA = "request-size-limiting" {
//!         /// In `size_unit`s.
//!         allowed_payload_size: i64 = Field::of(Type::Integer { min: 0, max: i32::MAX as i64 })
//!             .default(Default::Int(128)),
//!         size_unit: String = Field::of(Type::OneOf(&["megabytes", "kilobytes", "bytes"]))
//!             .default(Default::Text("megabytes")),
//!     }
//! }
//! ```

use super::{as_integer, Default};
use serde_json::Value;

/// A Rust type a field's value is read as: from the value set (already checked against the
/// field's type), else from the field's default.
pub trait Setting: Sized {
    /// The value of a field set to `value` (`None`: not set), with `default`.
    fn read(value: Option<&Value>, default: Default) -> Self;
}

impl Setting for bool {
    fn read(value: Option<&Value>, default: Default) -> bool {
        match value {
            Some(Value::Bool(b)) => *b,
            _ => matches!(default, Default::Bool(true)),
        }
    }
}

impl Setting for Option<bool> {
    fn read(value: Option<&Value>, default: Default) -> Option<bool> {
        match (value, default) {
            (Some(Value::Bool(b)), _) => Some(*b),
            (_, Default::Bool(b)) => Some(b),
            _ => None,
        }
    }
}

impl Setting for Option<i64> {
    fn read(value: Option<&Value>, default: Default) -> Option<i64> {
        value.and_then(as_integer).or(match default {
            Default::Int(i) => Some(i),
            _ => None,
        })
    }
}

impl Setting for i64 {
    fn read(value: Option<&Value>, default: Default) -> i64 {
        Option::<i64>::read(value, default).unwrap_or(0)
    }
}

impl Setting for Option<f64> {
    fn read(value: Option<&Value>, default: Default) -> Option<f64> {
        value.and_then(Value::as_f64).or(match default {
            Default::Int(i) => Some(i as f64),
            Default::Number(n) => Some(n),
            _ => None,
        })
    }
}

/// A map of strings ([`Type::TextMap`](super::Type::TextMap)), in the object's order.
impl Setting for Vec<(String, String)> {
    fn read(value: Option<&Value>, _: Default) -> Vec<(String, String)> {
        match value {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Setting for Option<String> {
    fn read(value: Option<&Value>, default: Default) -> Option<String> {
        match (value, default) {
            (Some(Value::String(s)), _) => Some(s.clone()),
            (_, Default::Text(t)) => Some(t.to_string()),
            _ => None,
        }
    }
}

impl Setting for String {
    fn read(value: Option<&Value>, default: Default) -> String {
        Option::<String>::read(value, default).unwrap_or_default()
    }
}

impl Setting for Vec<String> {
    fn read(value: Option<&Value>, default: Default) -> Vec<String> {
        match (value, default) {
            (Some(Value::Array(items)), _) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            (_, Default::Texts(items)) => items.iter().map(|s| s.to_string()).collect(),
            _ => Vec::new(),
        }
    }
}

impl Setting for Vec<i64> {
    fn read(value: Option<&Value>, default: Default) -> Vec<i64> {
        match (value, default) {
            (Some(Value::Array(items)), _) => items.iter().filter_map(as_integer).collect(),
            (_, Default::Ints(items)) => items.to_vec(),
            _ => Vec::new(),
        }
    }
}

impl Setting for Option<Vec<String>> {
    fn read(value: Option<&Value>, default: Default) -> Option<Vec<String>> {
        match value {
            Some(Value::Array(_)) => Some(Vec::<String>::read(value, default)),
            _ => None,
        }
    }
}

/// Kept as given (fields of any JSON type, or read further by the plugin).
impl Setting for Option<Value> {
    fn read(value: Option<&Value>, default: Default) -> Option<Value> {
        match value {
            Some(Value::Null) | None => Some(default.to_json()).filter(|v| !v.is_null()),
            Some(v) => Some(v.clone()),
        }
    }
}

/// Declares a config's fields once: see [the module](crate::schema::settings).
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident, schema $schema:ident = $schema_name:literal {
            $( $(#[$field_meta:meta])* $field:ident : $ty:ty = $spec:expr ),* $(,)?
        }
    ) => {
        /// The fields of
        #[doc = concat!("[`", stringify!($name), "`]")]
        /// as the validator and the Admin API read them.
        pub static $schema: $crate::schema::Schema = $crate::schema::Schema {
            name: $schema_name,
            fields: &[ $( $spec.named(stringify!($field)) ),* ],
        };

        $(#[$meta])*
        #[derive(Clone, Debug)]
        $vis struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            /// Every field of `obj` (already checked against the schema), the field's default
            /// for one that is not set.
            pub fn read(obj: &serde_json::Map<String, serde_json::Value>) -> $name {
                $name {
                    $( $field: {
                        let default = $schema
                            .field(stringify!($field))
                            .map_or($crate::schema::Default::Null, |f| f.default);
                        <$ty as $crate::schema::settings::Setting>::read(
                            obj.get(stringify!($field)),
                            default,
                        )
                    }, )*
                }
            }
        }

        /// A record field of this type reads as the record's fields.
        impl $crate::schema::settings::Setting for $name {
            fn read(value: Option<&serde_json::Value>, _: $crate::schema::Default) -> $name {
                match value {
                    Some(serde_json::Value::Object(obj)) => $name::read(obj),
                    _ => $name::read(&serde_json::Map::new()),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::schema::{Default, Field, Type};
    use serde_json::json;

    crate::settings! {
        /// A test config.
        pub struct Sample, schema SAMPLE = "sample" {
            /// A number with a default.
            count: i64 = Field::of(Type::Integer { min: 0, max: 10 }).default(Default::Int(3)),
            /// A number without one.
            limit: Option<i64> = Field::of(Type::Integer { min: 0, max: 10 }),
            /// A flag.
            on: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
            /// Text.
            label: String = Field::of(Type::Text(None)).default(Default::Text("x")),
            /// A list.
            names: Vec<String> = Field::of(Type::Texts(None)).default(Default::Texts(&["a"])),
            /// Anything.
            extra: Option<serde_json::Value> = Field::of(Type::Any),
        }
    }

    #[test]
    fn the_schema_and_the_struct_come_from_one_list() {
        let names: Vec<&str> = SAMPLE.fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["count", "limit", "on", "label", "names", "extra"]);
        let unset = Sample::read(&serde_json::Map::new());
        assert_eq!(
            (unset.count, unset.limit, unset.on, unset.label.as_str()),
            (3, None, true, "x")
        );
        assert_eq!(unset.names, ["a"]);
        assert!(unset.extra.is_none());
        let v = json!({"count": 7.0, "limit": 2, "on": false, "label": "y", "names": ["b", "c"], "extra": {"k": 1}});
        let set = Sample::read(v.as_object().expect("object"));
        assert_eq!(
            (set.count, set.limit, set.on, set.label.as_str()),
            (7, Some(2), false, "y")
        );
        assert_eq!(set.names, ["b", "c"]);
        assert_eq!(set.extra, Some(json!({"k": 1})));
    }
}
