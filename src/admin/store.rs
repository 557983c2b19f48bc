//! The Admin API's state: the current configuration, and the one way to change it: validate
//! the whole new document with the declarative config's own validator, write it to the config
//! file atomically, then publish a new snapshot to every worker.
//!
//! The file has two writers, a person with an editor and the Admin API, and neither may lose
//! the other's change: an entity write is refused while the file differs from what was last
//! loaded or written (the hand edit is loaded with SIGHUP first); `POST /config`, which
//! replaces the whole document on purpose, is not.

use crate::config::environment::Environment;
use crate::config::persist::{serialize, write_atomically};
use crate::config::snapshot::publish;
use crate::config::{self, Config, ConfigErrors, FileDigest, Snapshot};
use crate::fleet::etcd::{EtcdStore, WriteError};
use arc_swap::ArcSwap;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a change was not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The new document is invalid; nothing changed.
    Invalid(ConfigErrors),
    /// The file could not be written; nothing changed.
    Persist(String),
    /// The file was changed by hand since it was loaded; nothing changed.
    ChangedOnDisk(String),
    /// Another fleet node changed the configuration first; nothing changed. The store is now
    /// at the newest configuration when etcd's was valid (`rebased`): the change can be made
    /// again on top of it.
    Conflict {
        /// Why, for the client if the change is not made again.
        message: String,
        /// The store took the newest configuration.
        rebased: bool,
    },
    /// The fleet's store (etcd) cannot be reached; the change was not applied (or, when its
    /// answer was lost, the watch will show it).
    Unavailable(String),
}

/// Whether a write may replace a file that changed on disk since it was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDiskChange {
    /// Refuse ([`ApplyError::ChangedOnDisk`]): the change was made against the old file.
    Refuse,
    /// Replace it: the new document is meant to be the whole configuration.
    Replace,
}

/// The configuration the Admin API edits.
pub struct Store {
    /// The current validated config.
    pub config: Config,
    /// The file changes are written to (none: changes live in memory only, as with `demo`).
    path: Option<PathBuf>,
    /// The digest of the file as last loaded or written (`None`: there was no file).
    on_disk: Option<FileDigest>,
    /// Whether the Admin API has rewritten the file yet (said once in the log).
    rewritten: bool,
    published: Arc<ArcSwap<Snapshot>>,
    env: Environment,
    /// Changes applied since start.
    pub changes: u64,
    /// A fleet's store: changes go to etcd instead of a file.
    fleet: Option<EtcdStore>,
    /// The etcd revision `config` is at.
    pub revision: i64,
    /// The digest of the configuration in force as it was given: the file's bytes, or the text
    /// `POST /config` received; after any other change, of the document (`GET /status`'s
    /// `configuration_hash`, `POST /config?check_hash=1`).
    pub config_hash: FileDigest,
}

impl Store {
    /// A store over `config`, already published in `published`; `on_disk` is the digest of
    /// the file `config` was read from (`None` when there was no file).
    pub fn new(
        config: Config,
        path: Option<PathBuf>,
        on_disk: Option<FileDigest>,
        published: Arc<ArcSwap<Snapshot>>,
        env: Environment,
    ) -> Store {
        let config_hash = on_disk.unwrap_or_else(|| document_digest(&config));
        Store {
            config,
            path,
            on_disk,
            rewritten: false,
            published,
            env,
            changes: 0,
            fleet: None,
            revision: 0,
            config_hash,
        }
    }

    /// This store writing to etcd through `fleet`; `config` is at `revision`.
    pub fn with_fleet(mut self, fleet: EtcdStore, revision: i64) -> Store {
        self.fleet = Some(fleet);
        self.revision = revision;
        self
    }

    /// The fleet's store, when the configuration is in etcd.
    pub fn fleet(&self) -> Option<&EtcdStore> {
        self.fleet.as_ref()
    }

    /// Takes the newest revision the etcd watch applied (other nodes' changes), so the next
    /// change is made against it. Called before each Admin API request.
    pub fn catch_up(&mut self) {
        let Some(applied) = self.fleet.as_ref().and_then(EtcdStore::take_applied) else {
            return;
        };
        if applied.revision > self.revision || applied.reset {
            self.config_hash = document_digest(&applied.config);
            self.config = applied.config;
            self.revision = applied.revision;
            self.changes += 1;
        }
    }

    /// Before a change in a fleet: the newest configuration in etcd, if newer than the one
    /// held (another node's change the watch has not delivered yet), so that the change is
    /// made against every change acknowledged anywhere. etcd not answering changes nothing:
    /// the write will say so.
    pub fn catch_up_with_etcd(&mut self) {
        let Some(Ok(newest)) = self.fleet.as_ref().map(EtcdStore::read_newest) else {
            return;
        };
        if let (true, Some(config)) = (newest.revision > self.revision, newest.config) {
            self.config_hash = document_digest(&config);
            self.config = *config;
            self.revision = newest.revision;
            self.changes += 1;
        }
    }

    /// The current document (flat, with ids).
    pub fn document(&self) -> Value {
        self.config.to_document()
    }

    /// Reloads the config file (SIGHUP) and publishes it; a file that does not validate leaves
    /// the current config in place and says why.
    pub fn reload(&mut self) {
        if let Some(fleet) = &self.fleet {
            log::info!(
                "SIGHUP: nothing to reload, {} is watched",
                fleet.options().location
            );
            return;
        }
        let Some(path) = self.path.clone() else {
            log::warn!("SIGHUP ignored: no --config file to reload");
            return;
        };
        match config::load_file_with_digest(&path) {
            Ok((new, digest)) => {
                self.on_disk = Some(digest);
                self.config_hash = digest;
                publish(&new, &self.env, |s| self.published.store(Arc::new(s)));
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
    pub fn apply(&mut self, doc: &Value, on_disk_change: OnDiskChange) -> Result<(), ApplyError> {
        let new = config::from_document(doc).map_err(ApplyError::Invalid)?;
        if let Some(fleet) = &self.fleet {
            let document = serde_json::to_vec(&new.to_document())
                .map_err(|e| ApplyError::Unavailable(e.to_string()))?;
            let revision = match fleet.write(document, self.revision) {
                Ok(revision) => revision,
                Err(WriteError::Conflict { revision, newest }) => {
                    let message = format!(
                        "the configuration was changed on another node (etcd revision {revision}, \
                         this node validated against {}); this change was not applied: retry it",
                        self.revision
                    );
                    let rebased = match newest {
                        Some(config) if revision > self.revision => {
                            self.config_hash = document_digest(&config);
                            self.config = *config;
                            self.revision = revision;
                            self.changes += 1;
                            true
                        }
                        _ => false,
                    };
                    return Err(ApplyError::Conflict { message, rebased });
                }
                Err(WriteError::Unavailable(why)) => {
                    return Err(ApplyError::Unavailable(format!(
                        "the change could not be written to {}: {why}",
                        fleet.options().location
                    )))
                }
            };
            publish(&new, &self.env, |s| {
                fleet.publisher.publish(revision, s);
            });
            self.config_hash = document_digest(&new);
            self.config = new;
            self.revision = revision;
            self.changes += 1;
            return Ok(());
        }
        if let Some(path) = &self.path {
            let cannot = |e: std::io::Error| {
                ApplyError::Persist(format!("cannot write {}: {e}", path.display()))
            };
            if on_disk_change == OnDiskChange::Refuse
                && config::file_digest(path).map_err(cannot)? != self.on_disk
            {
                return Err(ApplyError::ChangedOnDisk(format!(
                    "{} was changed on disk since it was loaded; this change was not applied, \
                     so that the file's own change is not lost: send SIGHUP to load the file \
                     (or POST /config to replace it), then retry",
                    path.display()
                )));
            }
            let bytes = serialize(path, &new.to_document()).map_err(ApplyError::Persist)?;
            write_atomically(path, &bytes).map_err(cannot)?;
            self.on_disk = Some(config::digest(&bytes));
            if !self.rewritten {
                self.rewritten = true;
                log::info!(
                    "the Admin API rewrote {} from the current config: one flat document \
                     (nested entities moved to the top level, comments not kept)",
                    path.display()
                );
            }
        }
        // Workers load the snapshot once per request: requests in flight finish on the old one.
        publish(&new, &self.env, |s| self.published.store(Arc::new(s)));
        self.config_hash = document_digest(&new);
        self.config = new;
        self.changes += 1;
        Ok(())
    }
}

/// The digest of a configuration's document (flat, with ids, as JSON).
fn document_digest(config: &Config) -> FileDigest {
    config::digest(&serde_json::to_vec(&config.to_document()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn invalid_documents_change_nothing() {
        let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let mut store = Store::new(
            Config::default(),
            None,
            None,
            published.clone(),
            Environment::default(),
        );
        let bad = serde_json::json!({"_format_version": "3.0", "routes": [{"paths": ["nope"]}]});
        assert!(matches!(
            store.apply(&bad, OnDiskChange::Refuse),
            Err(ApplyError::Invalid(_))
        ));
        assert_eq!(store.changes, 0);
        let good = serde_json::json!({"_format_version": "3.0", "routes": [{"name": "r", "paths": ["/ok"]}]});
        store.apply(&good, OnDiskChange::Refuse).expect("valid");
        assert_eq!(published.load().config.routes.len(), 1);
        assert_eq!(store.changes, 1);
    }

    #[test]
    fn a_hand_edit_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("lg-store-edit-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("kong.yml");
        let route = |name: &str| serde_json::json!({"_format_version": "3.0", "routes": [{"name": name, "paths": ["/x"]}]});
        fs::write(&path, "_format_version: \"3.0\"\n").expect("write");
        let (config, digest) = config::load_file_with_digest(&path).expect("load");
        let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let env = Environment::default();
        let mut store = Store::new(config, Some(path.clone()), Some(digest), published, env);
        store
            .apply(&route("admin-1"), OnDiskChange::Refuse)
            .expect("unchanged file");
        assert!(fs::read_to_string(&path).expect("read").contains("admin-1"));

        // A hand edit: the next entity write is refused and the file keeps the edit.
        let hand = "_format_version: \"3.0\"\n# mine\nroutes: [{name: by-hand, paths: [/h]}]\n";
        fs::write(&path, hand).expect("edit");
        match store.apply(&route("admin-2"), OnDiskChange::Refuse) {
            Err(ApplyError::ChangedOnDisk(m)) => assert_eq!(
                m,
                format!(
                    "{} was changed on disk since it was loaded; this change was not applied, \
                     so that the file's own change is not lost: send SIGHUP to load the file \
                     (or POST /config to replace it), then retry",
                    path.display()
                )
            ),
            other => panic!("expected ChangedOnDisk, got {other:?}"),
        }
        assert_eq!(fs::read_to_string(&path).expect("read"), hand);
        assert_eq!(store.config.routes[0].name.as_deref(), Some("admin-1"));

        // Reloaded, the edit is the base of the next change.
        store.reload();
        assert_eq!(store.config.routes[0].name.as_deref(), Some("by-hand"));
        store
            .apply(&route("admin-3"), OnDiskChange::Refuse)
            .expect("after reload");

        // A whole replacement is deliberate and goes through.
        fs::write(&path, hand).expect("edit again");
        store
            .apply(&route("whole"), OnDiskChange::Replace)
            .expect("replace");
        assert!(fs::read_to_string(&path).expect("read").contains("whole"));
        let _ = fs::remove_dir_all(&dir);
    }
}
