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
use std::time::{Duration, Instant};

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

/// The shared budget: a limit and the bytes reserved under it.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    wait: Duration,
}

impl Budget {
    /// A budget of `limit` bytes, a request waiting at most `wait` for room.
    pub fn new(limit: usize, wait: Duration) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            wait,
        })
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// `bytes` more, if they fit now. A request larger than the whole budget fits only when
    /// nothing else is reserved (so that it is served, alone, rather than refused forever).
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        self.take(bytes).then(|| Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Counts `bytes` as reserved if they fit.
    fn take(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let fits = used == 0 || used.checked_add(bytes).is_some_and(|t| t <= self.limit);
            if !fits {
                return false;
            }
            match self.used.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        PROCESS
            .buffered_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        true
    }

    /// `bytes` more, counted even past the limit: for bytes that already exist (a Lambda
    /// answer read, an answer being written), so that requests asking for more wait for them.
    pub fn force(self: &Arc<Self>, bytes: usize) -> Reservation {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        PROCESS
            .buffered_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        Reservation {
            budget: self.clone(),
            bytes,
        }
    }

    /// `bytes` more, waiting for room up to the budget's wait; `None` (counted) when there
    /// was none in time.
    pub async fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        if let Some(r) = self.try_reserve(bytes) {
            return Some(r);
        }
        PROCESS.budget_waits.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + self.wait;
        // Room is made by other workers' requests ending: polled, with a pause that grows a
        // little, rather than a cross-thread wake-up on every release.
        let mut pause = Duration::from_millis(2);
        while Instant::now() < deadline {
            monoio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            if let Some(r) = self.try_reserve(bytes) {
                return Some(r);
            }
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        PROCESS.budget_refused.fetch_add(1, Ordering::Relaxed);
        None
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        PROCESS
            .buffered_bytes
            .fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

/// Bytes reserved in a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `other`'s bytes into this reservation (both of one budget).
    pub fn absorb(&mut self, mut other: Reservation) {
        self.bytes += other.bytes;
        other.bytes = 0;
    }

    /// Grows the reservation to `total` bytes if the budget has room now (a chunked body
    /// whose size is learnt as it comes).
    pub fn grow_to(&mut self, total: usize) -> bool {
        if total <= self.bytes {
            return true;
        }
        let grown = self.budget.take(total - self.bytes);
        if grown {
            self.bytes = total;
        }
        grown
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
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
        let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build();
        let mut rt = rt.expect("runtime");
        rt.block_on(async {
            let b = Budget::new(100, Duration::from_millis(60));
            let held = b.try_reserve(100).expect("fits");
            let started = Instant::now();
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
    fn the_default_is_a_quarter_of_the_memory() {
        let limit = default_limit();
        assert!(limit >= 64 << 20);
        if let Some(total) = meminfo_total() {
            assert!(limit <= total / 4 + (64 << 20));
        }
    }
}
