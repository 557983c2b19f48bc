//! Label values, interned once per process: a series is keyed by small ids, so a request adds
//! to its series without allocating once the series exists.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Distinct values kept for one label before further ones are counted under `other` (a bound
/// on memory whatever the configurations or Lambda's error types).
const MAX_LABEL_VALUES: usize = 10_000;

/// Label values, each once per process, by id.
#[derive(Default)]
pub(super) struct Interner {
    values: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        if self.values.len() >= MAX_LABEL_VALUES {
            return self.id_unbounded("other");
        }
        self.id_unbounded(value)
    }

    fn id_unbounded(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_string());
        self.ids.insert(value.to_string(), id);
        id
    }
}

/// The process's label values: routes as `service\0route`, consumers, Lambda error types.
pub(super) struct Labels {
    pub routes: Mutex<Interner>,
    pub consumers: Mutex<Interner>,
    pub errors: Mutex<Interner>,
}

pub(super) static LABELS: LazyLock<Labels> = LazyLock::new(|| {
    let labels = Labels {
        routes: Mutex::default(),
        consumers: Mutex::default(),
        errors: Mutex::default(),
    };
    // Id 0: no route (a request no route matched) and no consumer.
    intern(&labels.routes, "\0");
    intern(&labels.consumers, "");
    labels
});

pub(super) fn intern(table: &Mutex<Interner>, value: &str) -> u32 {
    table.lock().map_or(0, |mut t| t.id(value))
}

pub(super) fn value_of(table: &Mutex<Interner>, id: u32) -> String {
    table
        .lock()
        .ok()
        .and_then(|t| t.values.get(id as usize).cloned())
        .unwrap_or_default()
}

/// The label id of a route: Kong labels it by its service's name (or host) and its own name
/// (or id). Called when a configuration is loaded.
pub fn route_label(service: &str, route: &str) -> u32 {
    intern(&LABELS.routes, &format!("{service}\0{route}"))
}

/// The label id of a consumer (its username, else its id, as Kong labels it).
pub fn consumer_label(name: &str) -> u32 {
    intern(&LABELS.consumers, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_bounded() {
        let mut i = Interner::default();
        for n in 0..MAX_LABEL_VALUES + 5 {
            i.id(&n.to_string());
        }
        assert_eq!(i.values.len(), MAX_LABEL_VALUES + 1);
        assert_eq!(i.values.last().map(String::as_str), Some("other"));
    }
}
