//! A worker's pool of large buffers: the request bodies, payloads and answers over 256 KiB
//! that the per-request buffer sets do not keep. Reusing them saves each large request the
//! page faults of fresh memory; bounding them (4 buffers, 16 MiB per worker) and
//! letting them go after a quiet spell returns a burst's memory to the allocator, and through
//! it to the OS, rather than keeping the burst's peak for ever.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Buffers from this capacity on are large: kept here rather than in a buffer set.
pub const LARGE_FROM: usize = 256 * 1024;
/// Most buffers kept per worker.
const MAX_KEPT: usize = 4;
/// Most bytes of capacity kept per worker.
const MAX_KEPT_BYTES: usize = 16 * 1024 * 1024;
/// After this long without a large buffer taken, the kept ones are let go.
pub const RELEASE_AFTER: Duration = Duration::from_secs(10);

/// Set when a worker let its large buffers go: a burst is over, and the allocator may now hold
/// freed memory that the binary asks it to return (see `main.rs`).
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Whether any worker let its large buffers go since the last call.
pub fn released_since_last_asked() -> bool {
    RELEASED.swap(false, Ordering::AcqRel)
}

/// Worker-local large buffers, kept between requests within bounds.
#[derive(Debug)]
pub struct LargeBuffers {
    free: RefCell<Vec<Vec<u8>>>,
    last_taken: Cell<Instant>,
}

impl Default for LargeBuffers {
    fn default() -> Self {
        LargeBuffers {
            free: RefCell::new(Vec::new()),
            last_taken: Cell::new(Instant::now()),
        }
    }
}

impl LargeBuffers {
    /// An empty buffer of at least `capacity` bytes: the smallest kept one that is large
    /// enough, or a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        self.last_taken.set(Instant::now());
        let mut free = self.free.borrow_mut();
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => free.swap_remove(i),
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buf` (emptied) for a later [`LargeBuffers::take`] if it is large and there is
    /// room; otherwise frees it.
    pub fn keep(&self, mut buf: Vec<u8>) {
        if buf.capacity() < LARGE_FROM || buf.capacity() > MAX_KEPT_BYTES {
            return;
        }
        buf.clear();
        let mut free = self.free.borrow_mut();
        if free.len() < MAX_KEPT && self.held(&free) + buf.capacity() <= MAX_KEPT_BYTES {
            free.push(buf);
        }
    }

    /// Moves `buf` here when it is large, leaving an empty vector in its place.
    pub fn take_back_from(&self, buf: &mut Vec<u8>) {
        if buf.capacity() >= LARGE_FROM {
            self.keep(std::mem::take(buf));
        }
    }

    /// Frees every kept buffer when none was taken for [`RELEASE_AFTER`] before `now`.
    pub fn release_if_idle(&self, now: Instant) {
        if now.duration_since(self.last_taken.get()) >= RELEASE_AFTER {
            let mut free = self.free.borrow_mut();
            if !free.is_empty() {
                free.clear();
                RELEASED.store(true, Ordering::Release);
            }
        }
    }

    /// Bytes of capacity kept now.
    pub fn held_bytes(&self) -> usize {
        self.held(&self.free.borrow())
    }

    fn held(&self, free: &[Vec<u8>]) -> usize {
        free.iter().map(Vec::capacity).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn a_kept_buffer_is_taken_again_the_smallest_that_fits_first() {
        let pool = LargeBuffers::default();
        pool.keep(Vec::with_capacity(6 * MIB));
        pool.keep(Vec::with_capacity(MIB));
        let b = pool.take(512 * 1024);
        assert!(b.capacity() >= MIB && b.capacity() < 6 * MIB);
        assert!(b.is_empty());
        let b = pool.take(2 * MIB);
        assert!(b.capacity() >= 6 * MIB);
        assert_eq!(pool.held_bytes(), 0);
        // None fits: a new one.
        assert!(pool.take(3 * MIB).capacity() >= 3 * MIB);
    }

    #[test]
    fn small_huge_and_surplus_buffers_are_not_kept() {
        let pool = LargeBuffers::default();
        pool.keep(Vec::with_capacity(4096));
        pool.keep(Vec::with_capacity(MAX_KEPT_BYTES + 1));
        assert_eq!(pool.held_bytes(), 0);
        for _ in 0..MAX_KEPT + 2 {
            pool.keep(Vec::with_capacity(MIB));
        }
        assert_eq!(pool.free.borrow().len(), MAX_KEPT);
        let pool = LargeBuffers::default();
        for _ in 0..MAX_KEPT {
            pool.keep(Vec::with_capacity(6 * MIB));
        }
        assert!(pool.held_bytes() <= MAX_KEPT_BYTES);
    }

    #[test]
    fn buffers_are_let_go_after_a_quiet_spell_only() {
        let pool = LargeBuffers::default();
        let mut b = pool.take(MIB);
        b.extend_from_slice(b"data");
        pool.take_back_from(&mut b);
        assert_eq!(b.capacity(), 0);
        assert!(pool.held_bytes() >= MIB);
        let now = Instant::now();
        pool.release_if_idle(now);
        assert!(pool.held_bytes() >= MIB, "taken just now: kept");
        pool.release_if_idle(now + RELEASE_AFTER);
        assert_eq!(pool.held_bytes(), 0);
    }
}
