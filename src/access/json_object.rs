//! A JSON object as the transformer plugins edit one: its members in order, each kept as its
//! raw text until it is changed (an untouched member leaves with the bytes it came with), with
//! the operations Kong's transformers do on a decoded Lua table and Lua's notion of truth.

use serde_json::value::RawValue;
use serde_json::Value;

/// A member's value: as it came, or set here.
enum Member {
    Raw(Box<RawValue>),
    Value(Value),
}

impl Member {
    /// Lua's truthiness of the decoded value: all but `false` (JSON `null` decodes to
    /// cjson's null, which is truthy).
    fn is_truthy(&self) -> bool {
        match self {
            Member::Raw(raw) => raw.get() != "false",
            Member::Value(v) => *v != Value::Bool(false),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Member::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            Member::Value(v) => v,
        }
    }
}

/// A JSON object's members, in order.
#[derive(Default)]
pub struct JsonObject {
    members: Vec<(String, Member)>,
}

impl JsonObject {
    /// `text` as an object; `None` when it is not one. A repeated name keeps its last value,
    /// at its first place (as a Lua table filled in order would).
    pub fn parse(text: &[u8]) -> Option<JsonObject> {
        let members = serde_json::from_slice::<Members>(text).ok()?.0;
        Some(JsonObject {
            members: members
                .into_iter()
                .map(|(k, v)| (k, Member::Raw(v)))
                .collect(),
        })
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|(k, _)| k == name)
    }

    /// Whether member `name` is there and truthy (Lua's `if t[name]`).
    pub fn is_truthy(&self, name: &str) -> bool {
        self.find(name)
            .is_some_and(|at| self.members[at].1.is_truthy())
    }

    /// Whether member `name` is there, whatever its value (Lua's `t[name] ~= nil`).
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Removes member `name`.
    pub fn remove(&mut self, name: &str) {
        self.members.retain(|(k, _)| k != name);
    }

    /// Moves member `old`'s value to `new` (replacing one there); `false` when there is no
    /// `old`.
    pub fn rename(&mut self, old: &str, new: &str) -> bool {
        let Some(at) = self.find(old) else {
            return false;
        };
        let (_, value) = self.members.remove(at);
        match self.find(new) {
            Some(existing) => self.members[existing].1 = value,
            None => self.members.push((new.to_string(), value)),
        }
        true
    }

    /// Sets member `name` to `value` (a new member goes at the end).
    pub fn set(&mut self, name: &str, value: Value) {
        match self.find(name) {
            Some(at) => self.members[at].1 = Member::Value(value),
            None => self.members.push((name.to_string(), Member::Value(value))),
        }
    }

    /// Kong's `append_value`: a string member becomes an array of it and `value`, an array
    /// gets `value` pushed, anything else (missing, a number, an object) becomes `[value]`.
    pub fn append(&mut self, name: &str, value: Value) {
        let current = self.find(name).map(|at| {
            std::mem::replace(&mut self.members[at].1, Member::Value(Value::Null)).into_value()
        });
        let appended = match current {
            Some(Value::String(s)) => Value::Array(vec![Value::String(s), value]),
            Some(Value::Array(mut items)) => {
                items.push(value);
                Value::Array(items)
            }
            _ => Value::Array(vec![value]),
        };
        self.set(name, appended);
    }

    /// Appends the object's text to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (name, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::json::write_str(out, name.as_bytes());
            out.push(b':');
            match value {
                Member::Raw(raw) => out.extend_from_slice(raw.get().as_bytes()),
                // A `Value` always serialises.
                Member::Value(v) => {
                    let _ = serde_json::to_writer(&mut *out, v);
                }
            }
        }
        out.push(b'}');
    }
}

/// A JSON object's members in order, values as their raw text.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members: Vec<(String, Box<RawValue>)> = Vec::new();
                // Where each name is, so a repeated one costs a lookup, not a scan.
                let mut at = std::collections::HashMap::<String, usize>::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    match at.get(&k) {
                        Some(&i) => members[i].1 = v,
                        None => {
                            at.insert(k.clone(), members.len());
                            members.push((k, v));
                        }
                    }
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}
