//! The node's answer cache (proxy-cache's `strategy: memory`): one table for every worker,
//! bounded in bytes, and the in-flight markers that let concurrent misses for one key wait for
//! one invoke (request coalescing).
//!
//! The table is 16 shards, each behind its own mutex, held only to find, insert or remove an
//! entry (never across an await or a copy of a body). An entry is immutable and shared
//! (`Arc`): a hit clones the `Arc` and the body's `Bytes` (reference counts, no allocation) and
//! the connection writes the body from where it is stored.
//!
//! Eviction is CLOCK, per shard: a hit sets the entry's reference bit; an insert that needs
//! room sweeps the shard's hand over its entries, clearing set bits and evicting the first
//! entry whose bit is clear. It keeps what is read again (as LRU would) at the cost of one
//! relaxed store per hit and no reordering of a list under the lock, and a sweep is bounded by
//! two passes over the shard. Expired entries go when they are found, or when the hand passes.

use crate::metrics::PROCESS;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// A cache key: the SHA-256 Kong's proxy-cache computes.
pub type Key = [u8; 32];

/// The default bound (`--proxy-cache-memory`).
pub const DEFAULT_CAPACITY: usize = 64 * 1024 * 1024;

/// What an entry costs beyond its headers and body: the entry, its `Arc`, its slot, its index
/// entry, and the slack of the slot list and index as they grow (measured: 20,000 entries of
/// an 18-byte body and 233 bytes of headers raised the gateway's RSS by 701 bytes each).
pub const ENTRY_OVERHEAD: usize = 448;

const SHARDS: usize = 16;

/// A stored answer.
#[derive(Debug)]
pub struct Entry {
    /// The proxy-cache plugin that stored it.
    pub plugin: String,
    /// The status.
    pub status: u16,
    /// Header lines, `Name: value\r\n` each.
    pub headers: Vec<u8>,
    /// The body.
    pub body: Bytes,
    /// When it was stored (Unix seconds).
    pub stored_at: u64,
    /// Its freshness, in seconds (Kong's `ttl`).
    pub ttl: u64,
    /// Kept until then (Unix seconds; Kong's storage TTL).
    pub expires_at: u64,
}

impl Entry {
    fn cost(&self) -> usize {
        self.headers.len() + self.body.len() + self.plugin.len() + ENTRY_OVERHEAD
    }
}

struct Slot {
    key: Key,
    entry: Arc<Entry>,
    referenced: AtomicBool,
}

#[derive(Default)]
struct Shard {
    index: HashMap<Key, usize>,
    slots: Vec<Slot>,
    hand: usize,
    bytes: usize,
    flights: HashMap<Key, Arc<Flight>>,
}

impl Shard {
    fn remove_at(&mut self, at: usize) -> Arc<Entry> {
        let slot = self.slots.swap_remove(at);
        self.index.remove(&slot.key);
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(moved.key, at);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
        self.bytes -= slot.entry.cost();
        slot.entry
    }

    /// Evicts until `room` more bytes fit under `capacity`; `false` if they cannot.
    fn make_room(&mut self, room: usize, capacity: usize, now: u64) -> (bool, usize) {
        if room > capacity {
            // It would never fit: nothing is evicted for it.
            return (false, 0);
        }
        let mut evicted = 0;
        let mut steps = 0;
        while self.bytes + room > capacity && !self.slots.is_empty() {
            let at = self.hand % self.slots.len();
            let slot = &self.slots[at];
            let expired = slot.entry.expires_at <= now;
            // Two passes clear every bit: past them the entry under the hand goes anyway.
            if !expired
                && slot.referenced.swap(false, Ordering::Relaxed)
                && steps < 2 * self.slots.len()
            {
                self.hand = at + 1;
                steps += 1;
                continue;
            }
            self.remove_at(at);
            evicted += 1;
        }
        (self.bytes + room <= capacity, evicted)
    }
}

/// A miss being answered: the requests that want the same key wait on it.
#[derive(Debug, Default)]
pub struct Flight {
    done: AtomicBool,
    notify: Notify,
}

impl Flight {
    /// Resolves once the flight is over (stored, or given up), or after `limit`.
    pub async fn wait(&self, limit: Duration) {
        let notified = self.notify.notified();
        if self.done.load(Ordering::Acquire) {
            return;
        }
        let _ = monoio::time::timeout(limit, notified).await;
    }
}

/// What a lookup found.
pub enum Lookup {
    /// An entry.
    Hit(Arc<Entry>),
    /// Nothing; this request answers for the key: the others wait until the ticket is
    /// dropped (after storing, or not).
    Lead(Ticket),
    /// Nothing, and another request is answering for the key: wait on it, then look again.
    Wait(Arc<Flight>),
}

/// The right to answer a key's miss; dropping it lets the waiting requests go on.
pub struct Ticket {
    cache: &'static Cache,
    key: Key,
    flight: Arc<Flight>,
}

impl Ticket {
    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Stores `entry` under the ticket's key (if it fits), then lets the waiting requests go.
    pub fn store(self, entry: Entry) {
        self.cache.insert(self.key, entry);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let shard = self.cache.shard(&self.key);
        let mut s = lock(shard);
        if s.flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            s.flights.remove(&self.key);
        }
        drop(s);
        self.flight.done.store(true, Ordering::Release);
        self.flight.notify.notify_waiters();
    }
}

/// Counts for the metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Entries stored.
    pub stored: AtomicU64,
    /// Entries evicted to make room.
    pub evicted: AtomicU64,
    /// Answers too large for the cache, not stored.
    pub too_large: AtomicU64,
    /// Requests that waited for another's invoke.
    pub coalesced: AtomicU64,
}

/// The node's cache.
pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: AtomicUsize,
    /// Its counts.
    pub stats: CacheStats,
    /// The node's cache reports to the process metrics.
    reports: bool,
}

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    // A panic while a shard was held leaves it consistent (every change is a whole step).
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Cache {
    fn new(capacity: usize) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: AtomicUsize::new(capacity / SHARDS),
            stats: CacheStats::default(),
            reports: false,
        }
    }

    /// The node's cache.
    pub fn global() -> &'static Cache {
        static CACHE: OnceLock<Cache> = OnceLock::new();
        CACHE.get_or_init(|| Cache {
            reports: true,
            ..Cache::new(DEFAULT_CAPACITY)
        })
    }

    /// Publishes the entries and bytes held, after a change.
    fn report(&self) {
        if self.reports {
            let (entries, bytes) = self.usage();
            PROCESS
                .proxy_cache_entries
                .store(entries as u64, Ordering::Relaxed);
            PROCESS
                .proxy_cache_bytes
                .store(bytes as u64, Ordering::Relaxed);
            PROCESS.proxy_cache_evictions.store(
                self.stats.evicted.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
    }

    /// Counts a request that waited for another's invoke.
    pub fn count_coalesced(&self) {
        self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
        if self.reports {
            PROCESS
                .proxy_cache_coalesced
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Bounds the cache at `bytes` (`--proxy-cache-memory`); entries past it are evicted as
    /// room is next needed.
    pub fn set_capacity(&self, bytes: usize) {
        self.shard_capacity.store(bytes / SHARDS, Ordering::Relaxed);
    }

    /// The bound, in bytes.
    pub fn capacity(&self) -> usize {
        self.shard_capacity.load(Ordering::Relaxed) * SHARDS
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        &self.shards[key[0] as usize % SHARDS]
    }

    /// The entry under `key` if there is one that has not expired.
    pub fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        let now = now();
        let mut s = lock(self.shard(key));
        let at = *s.index.get(key)?;
        if s.slots[at].entry.expires_at <= now {
            s.remove_at(at);
            return None;
        }
        let slot = &s.slots[at];
        slot.referenced.store(true, Ordering::Relaxed);
        Some(slot.entry.clone())
    }

    /// The entry under `key` if `accept` takes it (fresh enough), else the right to answer
    /// for the key, or a flight to wait on.
    pub fn lookup(&'static self, key: &Key, accept: impl FnOnce(&Entry) -> bool) -> Lookup {
        if let Some(entry) = self.get(key) {
            if accept(&entry) {
                return Lookup::Hit(entry);
            }
        }
        let mut s = lock(self.shard(key));
        if let Some(flight) = s.flights.get(key) {
            return Lookup::Wait(flight.clone());
        }
        let flight = Arc::new(Flight::default());
        s.flights.insert(*key, flight.clone());
        Lookup::Lead(Ticket {
            cache: self,
            key: *key,
            flight,
        })
    }

    /// Stores `entry` under `key`, replacing one there, evicting others for room; an entry
    /// larger than a shard's share of the bound is not stored.
    pub fn insert(&self, key: Key, entry: Entry) {
        let cost = entry.cost();
        let capacity = self.shard_capacity.load(Ordering::Relaxed);
        let mut s = lock(self.shard(&key));
        if let Some(at) = s.index.get(&key).copied() {
            s.remove_at(at);
        }
        let (fits, evicted) = s.make_room(cost, capacity, now());
        drop_counts(&self.stats, fits, evicted);
        if !fits {
            return;
        }
        let at = s.slots.len();
        s.slots.push(Slot {
            key,
            entry: Arc::new(entry),
            referenced: AtomicBool::new(false),
        });
        s.index.insert(key, at);
        s.bytes += cost;
        drop(s);
        self.report();
    }

    /// Removes the entry under `key`; whether there was one.
    pub fn purge(&self, key: &Key) -> bool {
        let mut s = lock(self.shard(key));
        match s.index.get(key).copied() {
            Some(at) => {
                s.remove_at(at);
                drop(s);
                self.report();
                true
            }
            None => false,
        }
    }

    /// Removes every entry (stored by `plugin`, or all).
    pub fn flush(&self, plugin: Option<&str>) {
        for shard in &self.shards {
            let mut s = lock(shard);
            let mut at = 0;
            while at < s.slots.len() {
                if plugin.is_none_or(|p| s.slots[at].entry.plugin == p) {
                    s.remove_at(at);
                } else {
                    at += 1;
                }
            }
        }
        self.report();
    }

    /// Entries and bytes held now.
    pub fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), shard| {
            let s = lock(shard);
            (n + s.slots.len(), b + s.bytes)
        })
    }
}

fn drop_counts(stats: &CacheStats, fits: bool, evicted: usize) {
    stats.evicted.fetch_add(evicted as u64, Ordering::Relaxed);
    if fits {
        stats.stored.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.too_large.fetch_add(1, Ordering::Relaxed);
    }
}

/// A key as Kong shows it: lowercase hex.
pub fn hex(key: &Key) -> [u8; 64] {
    crate::hexdigits::hex32(key)
}

/// A key from its hex form.
pub fn parse_hex(text: &str) -> Option<Key> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        key[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: usize) -> Entry {
        Entry {
            plugin: "p".into(),
            status: 200,
            headers: Vec::new(),
            body: Bytes::from(vec![b'x'; body]),
            stored_at: now(),
            ttl: 300,
            expires_at: now() + 300,
        }
    }

    fn key(i: usize) -> Key {
        let mut k = [0u8; 32];
        k[0] = 3; // one shard
        k[1..9].copy_from_slice(&(i as u64).to_le_bytes());
        k
    }

    #[test]
    fn keys_read_back_from_hex() {
        let key = [0xab; 32];
        let text = hex(&key);
        assert_eq!(
            parse_hex(std::str::from_utf8(&text).expect("ascii")),
            Some(key)
        );
        assert_eq!(parse_hex("zz"), None);
    }

    #[test]
    fn the_bound_holds_and_what_is_read_again_stays() {
        let cache = Cache::new(SHARDS * 10 * (1000 + ENTRY_OVERHEAD + 1));
        for i in 0..10 {
            cache.insert(key(i), entry(1000));
        }
        assert_eq!(cache.usage().0, 10);
        // 0 and 1 are read; the next two inserts evict others.
        assert!(cache.get(&key(0)).is_some() && cache.get(&key(1)).is_some());
        cache.insert(key(10), entry(1000));
        cache.insert(key(11), entry(1000));
        let (n, bytes) = cache.usage();
        assert_eq!(n, 10);
        assert!(bytes <= cache.capacity() / SHARDS, "{bytes}");
        assert!(cache.get(&key(0)).is_some() && cache.get(&key(1)).is_some());
        assert!(cache.get(&key(11)).is_some());
        assert_eq!(cache.stats.evicted.load(Ordering::Relaxed), 2);
        // Larger than the shard's share: not stored, nothing evicted.
        cache.insert(key(99), entry(20_000));
        assert!(cache.get(&key(99)).is_none());
        assert_eq!(cache.usage().0, 10);
    }

    #[test]
    fn expired_entries_are_not_served_and_purges_and_flushes_remove() {
        let cache = Cache::new(1 << 20);
        let mut old = entry(10);
        old.expires_at = now() - 1;
        cache.insert(key(1), old);
        assert!(cache.get(&key(1)).is_none());
        cache.insert(key(2), entry(10));
        assert!(cache.purge(&key(2)) && !cache.purge(&key(2)));
        cache.insert(key(3), entry(10));
        cache.flush(Some("other"));
        assert_eq!(cache.usage().0, 1);
        cache.flush(None);
        assert_eq!(cache.usage(), (0, 0));
    }
}
