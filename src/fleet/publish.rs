//! Publishing etcd revisions in order. Two threads publish snapshots of a fleet's
//! configuration: the Admin API after its own write was acknowledged, the etcd watch for
//! every write (its own included). Whichever comes second must not put an older revision back.

use crate::config::Snapshot;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

/// The published snapshot and the etcd revision it was built from.
pub struct Publisher {
    published: Arc<ArcSwap<Snapshot>>,
    revision: Mutex<i64>,
}

impl Publisher {
    /// A publisher whose current snapshot (in `published`) is at `revision`.
    pub fn new(published: Arc<ArcSwap<Snapshot>>, revision: i64) -> Self {
        Publisher {
            published,
            revision: Mutex::new(revision),
        }
    }

    /// The revision published last.
    pub fn revision(&self) -> i64 {
        *self.revision.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `snapshot` at `revision` whatever was published: etcd went back in time.
    pub fn replace(&self, revision: i64, snapshot: Snapshot) {
        let mut current = self.revision.lock().unwrap_or_else(|e| e.into_inner());
        *current = revision;
        self.published.store(Arc::new(snapshot));
    }

    /// Publishes `snapshot` if `revision` is newer than what is published; says whether it did.
    pub fn publish(&self, revision: i64, snapshot: Snapshot) -> bool {
        let mut current = self.revision.lock().unwrap_or_else(|e| e.into_inner());
        if revision <= *current {
            return false;
        }
        *current = revision;
        // Workers load the snapshot once per request: requests in flight finish on the old one.
        self.published.store(Arc::new(snapshot));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_revision_never_replaces_a_newer_one() {
        let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let p = Publisher::new(published.clone(), 5);
        assert!(!p.publish(5, Snapshot::default()));
        assert!(!p.publish(3, Snapshot::default()));
        let before = published.load_full();
        assert!(p.publish(7, Snapshot::default()));
        assert!(!Arc::ptr_eq(&before, &published.load_full()));
        assert_eq!(p.revision(), 7);
    }
}
