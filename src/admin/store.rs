//! The Admin API's state: the current configuration, and the one way to change it: validate
//! the whole new document with the declarative config's own validator, write it to the config
//! file atomically, then publish a new snapshot to every worker.

use crate::config::snapshot::Environment;
use crate::config::{self, Config, ConfigErrors, Snapshot};
use arc_swap::ArcSwap;
use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a change was not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The new document is invalid; nothing changed.
    Invalid(ConfigErrors),
    /// The file could not be written; nothing changed.
    Persist(String),
}

/// The configuration the Admin API edits.
pub struct Store {
    /// The current validated config.
    pub config: Config,
    /// The file changes are written to (none: changes live in memory only, as with `demo`).
    path: Option<PathBuf>,
    published: Arc<ArcSwap<Snapshot>>,
    env: Environment,
    /// Changes applied since start.
    pub changes: u64,
}

impl Store {
    /// A store over `config`, already published in `published`.
    pub fn new(
        config: Config,
        path: Option<PathBuf>,
        published: Arc<ArcSwap<Snapshot>>,
        env: Environment,
    ) -> Store {
        Store {
            config,
            path,
            published,
            env,
            changes: 0,
        }
    }

    /// The current document (flat, with ids).
    pub fn document(&self) -> Value {
        self.config.to_document()
    }

    /// Reloads the config file (SIGHUP) and publishes it; a file that does not validate leaves
    /// the current config in place and says why.
    pub fn reload(&mut self) {
        let Some(path) = self.path.clone() else {
            log::warn!("SIGHUP ignored: no --config file to reload");
            return;
        };
        match config::load_file(&path) {
            Ok(new) => {
                let (snapshot, warnings) = Snapshot::build(new.clone(), &self.env);
                for w in warnings {
                    log::warn!("{w}");
                }
                self.published.store(Arc::new(snapshot));
                log::info!(
                    "reloaded {}: {} services, {} routes, {} plugins",
                    path.display(),
                    new.services.len(),
                    new.routes.len(),
                    new.plugins.len()
                );
                self.config = new;
                self.changes += 1;
            }
            Err(errors) => {
                let errors = errors.to_string().replace('\n', "; ");
                log::error!(
                    "reload of {} failed, keeping the current config: {errors}",
                    path.display()
                );
            }
        }
    }

    /// Validates `doc`, persists it, publishes it. On error nothing changes.
    pub fn apply(&mut self, doc: &Value) -> Result<(), ApplyError> {
        let new = config::from_document(doc).map_err(ApplyError::Invalid)?;
        if let Some(path) = &self.path {
            let canonical = new.to_document();
            write_atomically(path, &serialize(path, &canonical)?).map_err(|e| {
                ApplyError::Persist(format!("cannot write {}: {e}", path.display()))
            })?;
        }
        let (snapshot, warnings) = Snapshot::build(new.clone(), &self.env);
        for w in warnings {
            log::warn!("{w}");
        }
        // Workers load the snapshot once per request: requests in flight finish on the old one.
        self.published.store(Arc::new(snapshot));
        self.config = new;
        self.changes += 1;
        Ok(())
    }
}

/// The document as the file's format: JSON for `.json`, YAML otherwise.
fn serialize(path: &Path, doc: &Value) -> Result<Vec<u8>, ApplyError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        let mut out =
            serde_json::to_vec_pretty(doc).map_err(|e| ApplyError::Persist(e.to_string()))?;
        out.push(b'\n');
        Ok(out)
    } else {
        let yaml = serde_norway::to_string(doc).map_err(|e| ApplyError::Persist(e.to_string()))?;
        Ok(
            format!("# Kong declarative config, maintained by lambda-gateway's Admin API.\n{yaml}")
                .into_bytes(),
        )
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file, never a
/// mix: a temporary file in the same directory (mode 0600: it holds secrets), fsync, rename
/// over the target, fsync the directory so the rename itself is durable.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("lg-store-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("kong.yml");
        write_atomically(&path, b"a: 1\n").expect("write");
        write_atomically(&path, b"a: 2\n").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"a: 2\n");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn invalid_documents_change_nothing() {
        let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let mut store = Store::new(
            Config::default(),
            None,
            published.clone(),
            Environment::default(),
        );
        let bad = serde_json::json!({"_format_version": "3.0", "routes": [{"paths": ["nope"]}]});
        assert!(matches!(store.apply(&bad), Err(ApplyError::Invalid(_))));
        assert_eq!(store.changes, 0);
        let good = serde_json::json!({"_format_version": "3.0", "routes": [{"name": "r", "paths": ["/ok"]}]});
        store.apply(&good).expect("valid");
        assert_eq!(published.load().config.routes.len(), 1);
        assert_eq!(store.changes, 1);
    }
}
