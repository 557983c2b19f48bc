//! `rate-limiting` with `policy: redis` and Kong's default `sync_rate` (`-1`): every request
//! is counted in Redis before it is let through, so a tier of gateways admits exactly the
//! limit, as Kong does.
//!
//! No worker thread waits on Redis: a request hands its counters to the exchange thread of
//! its Redis server and awaits the answer (a channel whose sender wakes the worker's task),
//! within `redis_timeout`. The thread sends everything asked meanwhile in one pipelined round
//! trip (`INCRBY name 1` and `EXPIRE name ttl` per counter), so requests arriving together
//! share a round trip however many workers asked. A request refused for being over a limit
//! is taken back (`DECRBY`, in the next round trip), so that refused requests do not count
//! against a longer period's limit, as in Kong, which counts only what it admits.
//!
//! When Redis fails, each request waiting gets the failure (the plugin then counts on its node,
//! or answers 500 with `fault_tolerant: false`); the failure is logged once per outage, and
//! connecting is tried again at most once a second, so an outage costs no request a timeout.

use super::redis_link::{exchange_for, tls_for, RedisLink, RedisTarget};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One counter of a request: its Redis key and how long the key lives (its period).
#[derive(Clone, Debug)]
pub struct Counter {
    /// Kong's key: `ratelimit:<plugin id>:<identifier>:<window start ms>:<period>`.
    pub name: String,
    /// Seconds.
    pub ttl: u64,
}

/// The counts after this request, one per counter, or why Redis could not say.
pub type Counts = Result<Vec<u64>, String>;

struct Ask {
    counters: Vec<Counter>,
    reply: tokio::sync::oneshot::Sender<Counts>,
}

#[derive(Default)]
struct Queue {
    asks: Vec<Ask>,
    /// Counts to take back (refused requests), sent with the next round trip.
    take_back: Vec<Counter>,
}

/// How long connecting is not tried again after a failure (asks meanwhile fail at once).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One Redis server's exact counting: the queue every worker adds to, and its thread.
pub struct RedisExact {
    target: RedisTarget,
    queue: Mutex<Queue>,
    wake: Condvar,
    healthy: AtomicBool,
}

impl std::fmt::Debug for RedisExact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exact counting at {:?}", self.target)
    }
}

impl RedisExact {
    /// The exchange for `target`, started on first use; one per distinct server and login.
    pub fn for_target(target: &RedisTarget) -> Arc<RedisExact> {
        static ALL: OnceLock<Mutex<HashMap<RedisTarget, Arc<RedisExact>>>> = OnceLock::new();
        let make = || RedisExact {
            target: target.clone(),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            healthy: AtomicBool::new(true),
        };
        let (exact, running) = exchange_for(&ALL, target, "redis-exact", make, RedisExact::run);
        if !running {
            exact.healthy.store(false, Ordering::Relaxed);
        }
        exact
    }

    /// Whether the last round trip worked.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Counts one request on `counters`; the answer comes on the returned channel.
    pub fn count(&self, counters: Vec<Counter>) -> tokio::sync::oneshot::Receiver<Counts> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.lock().asks.push(Ask { counters, reply });
        self.wake.notify_one();
        answer
    }

    /// Takes back a refused request's counts (in the next round trip, made now if none is
    /// under way).
    pub fn take_back(&self, counters: Vec<Counter>) {
        self.lock().take_back.extend(counters);
        self.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let tls = tls_for(&self.target);
        let mut connection: Option<RedisLink> = None;
        let mut failed_at: Option<Instant> = None;
        loop {
            let (asks, take_back) = {
                let mut queue = self.lock();
                while queue.asks.is_empty() && queue.take_back.is_empty() {
                    queue = self.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                (
                    std::mem::take(&mut queue.asks),
                    std::mem::take(&mut queue.take_back),
                )
            };
            if failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) && connection.is_none() {
                answer_all(asks, "Redis failed less than a second ago");
                continue;
            }
            match self.round_trip(&mut connection, tls.as_ref(), &asks, &take_back) {
                Ok(counts) => {
                    failed_at = None;
                    if !self.healthy.swap(true, Ordering::Relaxed) {
                        log::info!(
                            "rate-limiting: {:?} is back: counting for the whole tier again",
                            self.target
                        );
                    }
                    let mut counts = counts.into_iter();
                    for ask in asks {
                        let mine: Vec<u64> = counts.by_ref().take(ask.counters.len()).collect();
                        let _ = ask.reply.send(Ok(mine));
                    }
                }
                Err(e) => {
                    connection = None;
                    failed_at = Some(Instant::now());
                    // What was to be taken back is lost with the connection: the counts it
                    // inflates expire with their window.
                    if self.healthy.swap(false, Ordering::Relaxed) {
                        log::error!(
                            "rate-limiting: {:?} failed ({e}): counting on this node only until it is back",
                            self.target
                        );
                    }
                    answer_all(asks, &e.to_string());
                }
            }
        }
    }

    /// One pipelined round trip: the counts to take back, then each ask's counters; the
    /// counts after each increment, in order.
    fn round_trip(
        &self,
        connection: &mut Option<RedisLink>,
        tls: Option<&Arc<rustls::ClientConfig>>,
        asks: &[Ask],
        take_back: &[Counter],
    ) -> redis::RedisResult<Vec<u64>> {
        let link = match connection {
            Some(link) => link,
            None => connection.insert(RedisLink::open(&self.target, tls)?),
        };
        // Every command is followed by EXPIRE, so that no key outlives its window (a key
        // taken back after it expired would otherwise stay, at -1, for ever).
        let mut pipe = redis::pipe();
        for counter in take_back {
            pipe.cmd("DECRBY").arg(&counter.name).arg(1);
            pipe.cmd("EXPIRE").arg(&counter.name).arg(counter.ttl);
        }
        for counter in asks.iter().flat_map(|a| &a.counters) {
            pipe.cmd("INCRBY").arg(&counter.name).arg(1);
            pipe.cmd("EXPIRE").arg(&counter.name).arg(counter.ttl);
        }
        // One reply per command: the counts are every INCRBY's, after the take-backs' pairs.
        let replies = link.pipeline(&pipe)?;
        replies
            .into_iter()
            .skip(2 * take_back.len())
            .step_by(2)
            .map(redis::from_owned_redis_value::<u64>)
            .collect()
    }
}

fn answer_all(asks: Vec<Ask>, why: &str) {
    for ask in asks {
        let _ = ask.reply.send(Err(why.to_string()));
    }
}
