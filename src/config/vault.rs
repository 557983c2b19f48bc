//! Kong's vault references in secret fields: `{vault://env/NAME}` is the value of environment
//! variable `NAME` (Kong's `env` vault: upper-cased, `-` read as `_`, an optional `?prefix=`),
//! and `{vault://env/NAME/key}` the string `key` of the JSON object that variable holds.
//! References are resolved when a configuration is loaded; the configuration keeps them as
//! written, so the Admin API and the file show the reference, never the secret. Only the
//! fields a schema marks referenceable take them (Kong's `referenceable = true`).

use crate::schema::check::Checker;
use crate::schema::Schema;
use serde_json::{Map, Value};

pub use crate::schema::is_vault_reference as is_reference;

/// The value a reference stands for, read with `env`; the reason when it has none.
pub fn resolve(reference: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let inner = &reference["{vault://".len()..reference.len() - 1];
    let (inner, query) = inner.split_once('?').unwrap_or((inner, ""));
    let (vault, path) = inner.split_once('/').unwrap_or((inner, ""));
    if vault != "env" {
        return Err(format!(
            "{reference}: vault '{vault}' is not available here (only Kong's `env` vault is)"
        ));
    }
    let prefix = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("prefix="))
        .unwrap_or_default();
    let (resource, key) = match path.split_once('/') {
        Some((resource, key)) if !key.is_empty() => (resource, Some(key)),
        _ => (path.trim_end_matches('/'), None),
    };
    if resource.is_empty() {
        return Err(format!("{reference}: the reference names no variable"));
    }
    let variable = format!("{prefix}{resource}")
        .replace('-', "_")
        .to_uppercase();
    let value = env(&variable).ok_or_else(|| {
        format!("{reference} refers to environment variable {variable}, which is not set")
    })?;
    let Some(key) = key else {
        return Ok(value);
    };
    let object: Map<String, Value> = serde_json::from_str(&value).map_err(|_| {
        format!("{reference}: environment variable {variable} does not hold a JSON object")
    })?;
    match object.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!(
            "{reference}: the JSON object in environment variable {variable} has no key '{key}'"
        )),
    }
}

/// `obj` with the references in `schema`'s referenceable fields replaced by their values (in a
/// referenceable object, its string members), read from the process's environment; `None`
/// when it has none. An unresolvable reference is an error at its field.
pub fn resolve_fields(
    c: &mut Checker,
    schema: &Schema,
    obj: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let env = |name: &str| std::env::var(name).ok();
    let mut resolved: Option<Map<String, Value>> = None;
    for field in schema.fields.iter().filter(|f| f.referenceable) {
        match obj.get(field.name) {
            Some(Value::String(text)) if is_reference(text) => {
                // A reference without a value is that error alone: the field is then checked
                // as unset.
                let value = match resolve(text, &env) {
                    Ok(v) => Value::String(v),
                    Err(why) => {
                        c.error_at(field.name, why);
                        Value::Null
                    }
                };
                resolved
                    .get_or_insert_with(|| obj.clone())
                    .insert(field.name.to_string(), value);
            }
            Some(Value::Object(members)) => {
                let mut inner = members.clone();
                let mut changed = false;
                for (name, member) in members {
                    let Value::String(text) = member else {
                        continue;
                    };
                    if !is_reference(text) {
                        continue;
                    }
                    match resolve(text, &env) {
                        Ok(v) => {
                            inner.insert(name.clone(), Value::String(v));
                            changed = true;
                        }
                        Err(why) => {
                            c.field(field.name, |c| c.error_at(name, why));
                            inner.insert(name.clone(), Value::Null);
                            changed = true;
                        }
                    }
                }
                if changed {
                    resolved
                        .get_or_insert_with(|| obj.clone())
                        .insert(field.name.to_string(), Value::Object(inner));
                }
            }
            _ => {}
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "LAMBDA_KEY" => Some("AKIDEXAMPLE".into()),
            "SSL_CERT" => Some("pem".into()),
            "CREDS" => Some(r#"{"secret":"s3cr3t","n":5}"#.into()),
            "PLAIN" => Some("not json".into()),
            _ => None,
        }
    }

    #[test]
    fn env_references_resolve_as_kongs_env_vault() {
        assert!(is_reference("{vault://env/lambda-key}"));
        assert!(!is_reference("vault://env/lambda-key"));
        assert_eq!(
            resolve("{vault://env/lambda-key}", &env).unwrap(),
            "AKIDEXAMPLE"
        );
        assert_eq!(
            resolve("{vault://env/cert?prefix=ssl_}", &env).unwrap(),
            "pem"
        );
        assert_eq!(
            resolve("{vault://env/creds/secret}", &env).unwrap(),
            "s3cr3t"
        );
        assert_eq!(resolve("{vault://env/creds/n}", &env).unwrap(), "5");
        let missing = resolve("{vault://env/nope}", &env).unwrap_err();
        assert_eq!(
            missing,
            "{vault://env/nope} refers to environment variable NOPE, which is not set"
        );
        assert!(resolve("{vault://env/creds/absent}", &env)
            .unwrap_err()
            .contains("has no key 'absent'"));
        assert!(resolve("{vault://env/plain/k}", &env)
            .unwrap_err()
            .contains("does not hold a JSON object"));
        assert!(resolve("{vault://aws/secret}", &env)
            .unwrap_err()
            .contains("vault 'aws' is not available"));
    }
}
