//! Safe retries: when an invoke may be tried again, how long to wait, and the worker's retry
//! budget.
//!
//! Only invokes the function cannot have run are retried: Lambda answered 429
//! `TooManyRequestsException` (it refused before running anything), or no connection could be
//! made (connect, TLS handshake or forward proxy failed, so nothing was sent). Nothing that
//! reached Lambda and then failed or timed out is ever sent again.
//!
//! The budget (Envoy's `retry_budget` idea) keeps a throttled function from being hammered:
//! a worker retries at most 20% of the requests it saw in the last 10–20 s (never fewer than 3
//! retries in that time, so a quiet worker can still retry).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Length of one counting window.
const WINDOW: Duration = Duration::from_secs(10);
/// Retries allowed, as a percentage of the recent requests.
const BUDGET_PERCENT: u64 = 20;
/// Retries always allowed per two windows.
const MIN_RETRIES: u64 = 3;
/// First backoff ceiling; doubles with each attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(25);
/// Largest backoff ceiling.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// A worker's retry budget and its jitter source.
pub struct RetryBudget {
    window_start: Cell<Instant>,
    /// Requests and retries: this window's, and the previous one's.
    requests: Cell<[u64; 2]>,
    retries: Cell<[u64; 2]>,
    rng: Cell<u64>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        let mut seed = [0u8; 8];
        // Jitter needs no secrecy; a fixed seed only makes workers' jitter alike.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        RetryBudget {
            window_start: Cell::new(Instant::now()),
            requests: Cell::new([0; 2]),
            retries: Cell::new([0; 2]),
            rng: Cell::new(u64::from_le_bytes(seed) | 1),
        }
    }
}

impl RetryBudget {
    /// Moves the windows on to `now`.
    fn roll(&self, now: Instant) {
        let elapsed = now.duration_since(self.window_start.get());
        if elapsed < WINDOW {
            return;
        }
        let shift = |c: &Cell<[u64; 2]>| {
            let [current, _] = c.get();
            c.set(if elapsed < 2 * WINDOW {
                [0, current]
            } else {
                [0, 0]
            });
        };
        shift(&self.requests);
        shift(&self.retries);
        self.window_start.set(now);
    }

    /// Counts a request (its first attempt).
    pub fn count_request(&self, now: Instant) {
        self.roll(now);
        let [current, previous] = self.requests.get();
        self.requests.set([current + 1, previous]);
    }

    /// Takes one retry from the budget: false when the recent retries already reach it.
    pub fn try_retry(&self, now: Instant) -> bool {
        self.roll(now);
        let [requests, earlier] = self.requests.get();
        let [retries, earlier_retries] = self.retries.get();
        let allowed = ((requests + earlier) * BUDGET_PERCENT / 100).max(MIN_RETRIES);
        if retries + earlier_retries >= allowed {
            return false;
        }
        self.retries.set([retries + 1, earlier_retries]);
        true
    }

    /// The wait before retry number `attempt` (0 for the first): uniform between zero and a
    /// ceiling doubling from 25 ms to at most 1 s ("full jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = BACKOFF_BASE
            .saturating_mul(1u32 << attempt.min(16))
            .min(BACKOFF_CAP);
        // xorshift64: fast, and good enough to spread retries apart.
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        let micros = ceiling.as_micros() as u64;
        Duration::from_micros(x % (micros + 1))
    }
}

/// The seconds of a `Retry-After` value (the HTTP-date form is not used by Lambda).
pub fn retry_after(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    text.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_fifth_of_recent_requests() {
        let b = RetryBudget::default();
        let t = Instant::now();
        // A quiet worker still has its minimum.
        assert!((0..3).all(|_| b.try_retry(t)));
        assert!(!b.try_retry(t));
        for _ in 0..100 {
            b.count_request(t);
        }
        // 100 requests: 20 retries in all, 3 already taken.
        assert_eq!((0..30).filter(|_| b.try_retry(t)).count(), 17);
        // One window later the old counts still weigh; two later they are gone.
        assert!(!b.try_retry(t + WINDOW));
        assert!(b.try_retry(t + 3 * WINDOW));
    }

    #[test]
    fn backoff_is_jittered_under_a_doubling_ceiling() {
        let b = RetryBudget::default();
        for attempt in 0..8 {
            let ceiling = BACKOFF_BASE * (1 << attempt);
            let waits: Vec<Duration> = (0..200).map(|_| b.backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= ceiling.min(BACKOFF_CAP)));
            let distinct: std::collections::HashSet<_> = waits.iter().collect();
            assert!(distinct.len() > 100, "attempt {attempt}: not spread");
        }
        assert!(b.backoff(40) <= BACKOFF_CAP);
    }

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(retry_after(b"7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(b" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after(b"-1"), None);
    }
}
