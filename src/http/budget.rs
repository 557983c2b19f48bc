//! The node-wide budget for buffered bytes: large request bodies, the payloads made of them
//! and large buffered Lambda answers reserve their bytes here before they are read or built,
//! and give them back when the request ends. When the budget is spent, a request that needs
//! more waits (its connection is not read meanwhile: back-pressure the client feels) for a
//! bounded time, then is answered 503; nothing already admitted fails because another
//! request arrived. Small requests never reserve: a few KiB each are bounded by the
//! connection count, not by their size.

use crate::metrics::PROCESS;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bodies and answers up to this size are not counted against the budget.
pub const SMALL_BYTES: usize = 64 * 1024;

/// What admitting a request with a body of `body` bytes reserves: the body, and the payload
/// that may be made of it (its base64, and the request's other fields). Reserved at once,
/// before the body is read, so that an admitted request never waits again: two requests each
/// holding a body and waiting for their payload's room would starve each other.
pub fn request_cost(body: usize) -> usize {
    body + body.div_ceil(3) * 4 + 16 * 1024
}

/// How long a request waits for room in the budget before its 503, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The shared budget: a limit, and its free bytes as the permits of a fair semaphore. A
/// request that must wait queues behind those already waiting, and room given back goes to
/// them first, in order: a newcomer cannot take it from under a request that waited longer.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    free: Semaphore,
    /// Bytes counted past the limit (see [`Budget::force`]), repaid before room is freed.
    overdraft: AtomicUsize,
    wait: Duration,
}

impl Budget {
    /// A budget of `limit` bytes, a request waiting at most `wait` for room.
    pub fn new(limit: usize, wait: Duration) -> Arc<Budget> {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Arc::new(Budget {
            limit,
            free: Semaphore::new(limit),
            overdraft: AtomicUsize::new(0),
            wait,
        })
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now (forced ones included).
    pub fn in_use(&self) -> usize {
        self.limit - self.free.available_permits() + self.overdraft.load(Ordering::Acquire)
    }

    /// What a reservation of `bytes` takes of the budget: a request larger than the whole
    /// budget takes all of it (so that it is served, alone, rather than refused for ever).
    fn share(&self, bytes: usize) -> u32 {
        bytes.min(self.limit).min(u32::MAX as usize) as u32
    }

    /// `bytes` more, if they fit now and nobody is waiting for room.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let share = self.share(bytes);
        let permit = self.free.try_acquire_many(share).ok()?;
        permit.forget();
        Some(self.reservation(bytes, share as usize))
    }

    /// `bytes` more, counted even past the limit: for bytes that already exist (a Lambda
    /// answer read, an answer being written), so that requests asking for more wait for them.
    pub fn force(self: &Arc<Self>, bytes: usize) -> Reservation {
        let taken = self.free.forget_permits(bytes);
        self.overdraft.fetch_add(bytes - taken, Ordering::AcqRel);
        self.reservation(bytes, bytes)
    }

    /// `bytes` more, waiting in line for room up to the budget's wait; `None` (counted) when
    /// there was none in time.
    pub async fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        if let Some(r) = self.try_reserve(bytes) {
            return Some(r);
        }
        PROCESS.budget_waits.fetch_add(1, Ordering::Relaxed);
        let share = self.share(bytes);
        // Given up (the timeout drops the wait), a request leaves the line; room it was
        // handed meanwhile goes back to the semaphore.
        match monoio::time::timeout(self.wait, self.free.acquire_many(share)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Some(self.reservation(bytes, share as usize))
            }
            _ => {
                PROCESS.budget_refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn reservation(self: &Arc<Self>, bytes: usize, share: usize) -> Reservation {
        PROCESS
            .buffered_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        Reservation {
            budget: self.clone(),
            bytes,
            share,
        }
    }

    /// Gives back `share` of the budget (for `bytes` counted in the metric): what was forced
    /// past the limit is repaid first, the rest is room again.
    fn release(&self, bytes: usize, share: usize) {
        let mut owed = self.overdraft.load(Ordering::Acquire);
        let repaid = loop {
            let repaid = owed.min(share);
            match self.overdraft.compare_exchange_weak(
                owed,
                owed - repaid,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break repaid,
                Err(now) => owed = now,
            }
        };
        if share > repaid {
            self.free.add_permits(share - repaid);
        }
        PROCESS
            .buffered_bytes
            .fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

/// Bytes reserved in a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    /// Bytes asked for.
    bytes: usize,
    /// What they took of the budget (less than `bytes` only for a request larger than it).
    share: usize,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `other`'s bytes into this reservation (both of one budget).
    pub fn absorb(&mut self, mut other: Reservation) {
        self.bytes += std::mem::take(&mut other.bytes);
        self.share += std::mem::take(&mut other.share);
    }

    /// Grows the reservation to `total` bytes if the budget has room now (a chunked body
    /// whose size is learnt as it comes).
    pub fn grow_to(&mut self, total: usize) -> bool {
        if total <= self.bytes {
            return true;
        }
        match self.budget.try_reserve(total - self.bytes) {
            Some(more) => {
                self.absorb(more);
                true
            }
            None => false,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes, self.share);
    }
}

/// The default budget: a quarter of the memory this process may use (the cgroup's limit
/// when one is set, else the machine's memory), at least 64 MiB.
pub fn default_limit() -> usize {
    let machine = meminfo_total().unwrap_or(4 << 30);
    let limit = cgroup_limit().map_or(machine, |c| c.min(machine));
    (limit / 4).max(64 << 20)
}

fn meminfo_total() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn cgroup_limit() -> Option<usize> {
    // cgroup v2 (`max` when unlimited), then v1 (a huge number when unlimited).
    for path in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(bytes) = text.trim().parse::<usize>() {
                return Some(bytes);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
    }

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let b = Budget::new(100, Duration::from_millis(20));
        let a = b.try_reserve(60).expect("fits");
        assert!(b.try_reserve(50).is_none());
        let mut c = b.try_reserve(40).expect("fits exactly");
        assert_eq!(b.in_use(), 100);
        assert!(!c.grow_to(41));
        drop(a);
        assert!(c.grow_to(90));
        assert_eq!((c.bytes(), b.in_use()), (90, 90));
        drop(c);
        assert_eq!(b.in_use(), 0);
        // Larger than the whole budget: only alone.
        let big = b.try_reserve(500).expect("alone");
        assert!(b.try_reserve(1).is_none());
        drop(big);
        // Forced past the limit, it still makes others wait; absorbed, given back once.
        let forced = b.force(150);
        assert!(b.try_reserve(1).is_none());
        let mut one = b.force(10);
        one.absorb(forced);
        assert_eq!((one.bytes(), b.in_use()), (160, 160));
        drop(one);
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn a_request_waits_for_room_then_gives_up() {
        runtime().block_on(async {
            let b = Budget::new(100, Duration::from_millis(60));
            let held = b.try_reserve(100).expect("fits");
            let started = std::time::Instant::now();
            assert!(b.reserve(10).await.is_none());
            assert!(started.elapsed() >= Duration::from_millis(60));
            // Room made while waiting is taken.
            let b2 = b.clone();
            monoio::spawn(async move {
                monoio::time::sleep(Duration::from_millis(10)).await;
                drop(held);
                drop(b2);
            });
            assert!(b.reserve(10).await.is_some());
        });
    }

    #[test]
    fn room_given_back_goes_to_those_waiting_in_order() {
        runtime().block_on(async {
            let b = Budget::new(100, Duration::from_secs(5));
            let held = b.try_reserve(100).expect("fits");
            let (first, second) = (b.clone(), b.clone());
            let first = monoio::spawn(async move { first.reserve(60).await.map(|r| r.bytes()) });
            monoio::time::sleep(Duration::from_millis(5)).await;
            let second = monoio::spawn(async move { second.reserve(60).await.map(|r| r.bytes()) });
            monoio::time::sleep(Duration::from_millis(5)).await;
            drop(held);
            // The first in line has its 60; the second waits for its 60, holding the 40 left,
            // and a newcomer cannot take them from it.
            assert!(b.try_reserve(10).is_none());
            assert_eq!(first.await, Some(60));
            // The first's room, given back as its task ended, completes the second's.
            assert_eq!(second.await, Some(60));
            assert_eq!(b.in_use(), 0);
        });
    }

    #[test]
    fn the_default_is_a_quarter_of_the_memory() {
        let limit = default_limit();
        assert!(limit >= 64 << 20);
        if let Some(total) = meminfo_total() {
            assert!(limit <= total / 4 + (64 << 20));
        }
    }
}
