//! `rate-limiting` with `policy: redis`: one count for a whole tier of gateways, exchanged with
//! Redis in batches so that no request waits on Redis.
//!
//! Every request is checked and counted in the node's table exactly as with `local`. A node
//! also notes its own new requests per counter; once per sync interval (`sync_rate`, 0.1 s by
//! default) a thread per Redis server sends them in one pipelined round trip (`INCRBY` and
//! `EXPIRE` per counter; `INCRBY 0` for counters still live without news) and adds what the
//! other nodes counted meanwhile (Redis' totals minus this node's own) to the node's table.
//!
//! Accuracy: a node learns of the others' requests one interval late, so the tier may let
//! through, beyond the limit, what the other nodes admitted during one interval (at most the
//! tier's request rate × the interval). A round trip per request (Kong's `sync_rate: -1`)
//! would be exact but put Redis' latency on every request and a connection per worker.
//!
//! At most 100,000 counters (distinct identities × periods) are exchanged per Redis server;
//! further ones, an attacker's spray of client addresses or header values, count on their node
//! only, so memory stays bounded.
//!
//! When Redis fails, requests go on being counted locally (Kong's `fault_tolerant`), the failure
//! is logged once per outage, and with `fault_tolerant: false` the plugin answers 500 instead.

use super::counters::Counters;
use super::redis_link::{exchange_for, tls_for, RedisLink, RedisTarget};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A counter with requests not yet sent to Redis.
struct Pending {
    /// The Redis key.
    name: String,
    /// Seconds the key should live (its period).
    ttl: u64,
    /// This node's requests since the last exchange.
    delta: u64,
}

/// Most counters exchanged with one Redis server; the rest count on their node only.
const MAX_COUNTERS: usize = 100_000;

/// What the node knows of a counter in its current window.
struct Known {
    name: String,
    ttl: u64,
    /// This node's requests Redis has.
    sent: u64,
    /// This node's requests not sent yet (kept while Redis is down).
    unsent: u64,
    /// The other nodes' requests already added to the node's table.
    others: u64,
    /// When the window ends (then the entry goes).
    until: Instant,
}

/// One Redis server's exchange: the notes of every worker, and its thread.
pub struct RedisSync {
    target: RedisTarget,
    pending: Mutex<HashMap<(u64, u32), Pending>>,
    healthy: AtomicBool,
}

impl std::fmt::Debug for RedisSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exchange with {:?}", self.target)
    }
}

impl RedisSync {
    /// The exchange for `target`, started on first use; one per distinct server and login.
    pub fn for_target(target: &RedisTarget) -> Arc<RedisSync> {
        static ALL: OnceLock<Mutex<HashMap<RedisTarget, Arc<RedisSync>>>> = OnceLock::new();
        let make = || RedisSync {
            target: target.clone(),
            pending: Mutex::new(HashMap::new()),
            healthy: AtomicBool::new(true),
        };
        exchange_for(&ALL, target, "redis-sync", make, RedisSync::run).0
    }

    /// Whether the last exchange with Redis worked.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Notes one request on counter `key` in `window` (named `name()` in Redis, living `ttl`
    /// seconds); `name` is only called for a counter's first request of an interval.
    pub fn note(&self, key: u64, window: u32, ttl: u64, name: impl FnOnce() -> String) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Counters are as many as distinct identities (client addresses, header values): past
        // the cap, new ones are counted on this node only.
        if pending.len() >= MAX_COUNTERS && !pending.contains_key(&(key, window)) {
            return;
        }
        pending
            .entry((key, window))
            .or_insert_with(|| Pending {
                name: name(),
                ttl,
                delta: 0,
            })
            .delta += 1;
    }

    fn run(&self) {
        let tls = tls_for(&self.target);
        let mut connection: Option<RedisLink> = None;
        let mut known: HashMap<(u64, u32), Known> = HashMap::new();
        loop {
            std::thread::sleep(self.target.interval);
            let now = Instant::now();
            known.retain(|_, k| k.until > now);
            let batch =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
            for (slot, p) in batch {
                if known.len() >= MAX_COUNTERS && !known.contains_key(&slot) {
                    continue;
                }
                let k = known.entry(slot).or_insert_with(|| Known {
                    name: p.name,
                    ttl: p.ttl,
                    sent: 0,
                    unsent: 0,
                    others: 0,
                    until: now + Duration::from_secs(p.ttl),
                });
                k.unsent += p.delta;
            }
            if known.is_empty() {
                continue;
            }
            match self.exchange(&mut connection, tls.as_ref(), &mut known) {
                Ok(()) => {
                    if !self.healthy.swap(true, Ordering::Relaxed) {
                        log::info!(
                            "rate-limiting: {:?} is back: counting for the whole tier again",
                            self.target
                        );
                    }
                }
                Err(e) => {
                    connection = None;
                    if self.healthy.swap(false, Ordering::Relaxed) {
                        log::error!(
                            "rate-limiting: {:?} failed ({e}): counting on this node only until it is back",
                            self.target
                        );
                    }
                }
            }
        }
    }

    /// One pipelined round trip: this node's news added to every live counter, whose totals
    /// come back; the other nodes' part of each goes into the node's table.
    fn exchange(
        &self,
        connection: &mut Option<RedisLink>,
        tls: Option<&Arc<rustls::ClientConfig>>,
        known: &mut HashMap<(u64, u32), Known>,
    ) -> redis::RedisResult<()> {
        let link = match connection {
            Some(link) => link,
            None => connection.insert(RedisLink::open(&self.target, tls)?),
        };
        let mut entries: Vec<(&(u64, u32), &mut Known)> = known.iter_mut().collect();
        let mut pipe = redis::pipe();
        for (_, k) in &entries {
            pipe.cmd("INCRBY").arg(&k.name).arg(k.unsent);
            if k.unsent > 0 {
                pipe.cmd("EXPIRE").arg(&k.name).arg(k.ttl);
            }
        }
        let mut replies = link.pipeline(&pipe)?.into_iter();
        let table = Counters::global();
        for (&(key, window), k) in entries.iter_mut() {
            let total: u64 =
                redis::from_owned_redis_value(replies.next().unwrap_or(redis::Value::Nil))?;
            if k.unsent > 0 {
                // EXPIRE's reply.
                replies.next();
            }
            k.sent += std::mem::take(&mut k.unsent);
            let others = total.saturating_sub(k.sent);
            if others > k.others {
                table.add(key, window, others - k.others);
                k.others = others;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spray_of_identities_is_capped() {
        let sync = RedisSync {
            target: RedisTarget {
                host: "127.0.0.1".into(),
                port: 1,
                username: None,
                password: Some("hidden".into()),
                database: 0,
                timeout: Duration::from_millis(1),
                interval: Duration::from_secs(1),
                tls: None,
            },
            pending: Mutex::new(HashMap::new()),
            healthy: AtomicBool::new(true),
        };
        for key in 0..(MAX_COUNTERS as u64 + 50) {
            sync.note(key, 1, 60, || format!("ratelimit:p:{key}:0:minute"));
        }
        // A known counter still counts past the cap.
        sync.note(7, 1, 60, || unreachable!("already named"));
        let pending = sync.pending.lock().unwrap();
        assert_eq!(pending.len(), MAX_COUNTERS);
        assert_eq!(pending[&(7, 1)].delta, 2);
        assert!(!format!("{sync:?}").contains("hidden"));
    }
}
