//! rate-limiting's node-wide table: every worker counts in it, a fixed array of slots found by
//! open addressing on a keyed hash of (plugin, key, period), each slot's window and count
//! packed in one `AtomicU64` and updated with compare-and-swap, so counting takes no lock and
//! allocates nothing. Sharding keys to workers would need a hop between threads per request;
//! sharing one table costs an atomic operation per limit instead. A slot whose window has
//! passed is taken over by the next key that probes it; when every probed slot holds a live
//! key (a table flooded with distinct keys), the request is let through uncounted, as Kong's
//! `fault_tolerant` lets requests through when counting fails.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Slots in the node's table (16 bytes each: 4 MiB).
const SLOTS: usize = 1 << 18;
/// Slots probed for a key before giving up.
const PROBES: usize = 16;

/// The node's counters (see the module docs).
pub struct Counters {
    /// Each slot: the key's hash (0: free), and (window << 32 | count).
    slots: Box<[(AtomicU64, AtomicU64)]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            slots: (0..SLOTS)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The node-wide table.
    pub fn global() -> &'static Counters {
        static TABLE: OnceLock<Counters> = OnceLock::new();
        TABLE.get_or_init(Counters::new)
    }

    pub(super) fn key(&self, parts: &[&[u8]], period: usize) -> u64 {
        let mut h = self.hasher.build_hasher();
        for p in parts {
            p.hash(&mut h);
        }
        period.hash(&mut h);
        h.finish().max(1)
    }

    /// The count of `key` in `window` so far, and whether a slot holds it.
    fn slot(&self, key: u64, window: u32) -> Option<&AtomicU64> {
        let start = key as usize % SLOTS;
        for probe in 0..PROBES {
            let (tag, value) = &self.slots[(start + probe) % SLOTS];
            let current = tag.load(Ordering::Acquire);
            if current == key {
                return Some(value);
            }
            let stale = (value.load(Ordering::Acquire) >> 32) as u32 != window;
            if current == 0 || stale {
                // A free slot, or one whose key's window has passed: take it.
                if tag
                    .compare_exchange(current, key, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Some(value);
                }
                if tag.load(Ordering::Acquire) == key {
                    return Some(value);
                }
            }
        }
        None
    }

    /// The count in `window` before this request.
    pub(super) fn count(&self, key: u64, window: u32) -> Option<u64> {
        let value = self.slot(key, window)?.load(Ordering::Acquire);
        Some(if (value >> 32) as u32 == window {
            value & 0xffff_ffff
        } else {
            0
        })
    }

    /// Makes the count in `window` at least `total` (a count learned elsewhere).
    pub(super) fn raise(&self, key: u64, window: u32, total: u64) {
        let before = self.count(key, window).unwrap_or(0);
        if total > before {
            self.add(key, window, total - before);
        }
    }

    /// Counts `n` more requests in `window`.
    pub(super) fn add(&self, key: u64, window: u32, n: u64) {
        let Some(slot) = self.slot(key, window) else {
            return;
        };
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let next = if (current >> 32) as u32 == window {
                // The count is the low 32 bits: it stops at their maximum rather than carry
                // into the window.
                let count = (current & 0xffff_ffff).saturating_add(n).min(0xffff_ffff);
                if count == current & 0xffff_ffff {
                    return;
                }
                (current & !0xffff_ffff) | count
            } else {
                (u64::from(window) << 32) | n.min(0xffff_ffff)
            };
            match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_counts_stops_at_the_cap_and_restarts_with_the_window() {
        let counters = Counters::new();
        let key = counters.key(&[b"p", b"k"], 1);
        counters.add(key, 7, 3);
        counters.add(key, 7, 2);
        assert_eq!(counters.count(key, 7), Some(5));
        counters.add(key, 7, u64::MAX);
        assert_eq!(counters.count(key, 7), Some(0xffff_ffff));
        counters.add(key, 8, 1);
        assert_eq!(counters.count(key, 8), Some(1));
        assert_eq!(counters.count(key, 7), Some(0));
    }
}
