//! lambda-gateway's change: the read and write buffers a connection lets go of while it is
//! quiet are kept per thread, a few of each, for the next connection that needs one.
//!
//! Freed to the allocator instead, an 8 KiB and a 16 KiB buffer per burst of frames cost
//! two large allocations a request at a low request rate, and, freed between the small
//! allocations a connection keeps, left holes that made an idle connection cost more than
//! twice what it holds (8.7 against 3.6 KiB measured in the gateway's worker arenas).

use bytes::BytesMut;
use std::cell::RefCell;
use std::thread::LocalKey;

/// Buffers of each kind kept per thread: what a thread holds for this is at most
/// `KEPT * (8 + 16)` KiB.
const KEPT: usize = 16;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static WRITE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// A kind of buffer: where it is kept, and the room it is made with.
pub(crate) struct Kind {
    kept: &'static LocalKey<RefCell<Vec<BytesMut>>>,
    capacity: usize,
}

/// Read buffers (tokio-util's initial capacity).
pub(crate) const READ_BUFFERS: Kind = Kind {
    kept: &READ,
    capacity: 8 * 1024,
};

/// Write buffers.
pub(crate) const WRITE_BUFFERS: Kind = Kind {
    kept: &WRITE,
    capacity: super::framed_write::DEFAULT_BUFFER_CAPACITY,
};

impl Kind {
    /// An empty buffer with this kind's room: a kept one if there is one.
    pub(crate) fn take(&self) -> BytesMut {
        let kept = self.kept.try_with(|k| k.borrow_mut().pop()).ok().flatten();
        kept.unwrap_or_else(|| BytesMut::with_capacity(self.capacity))
    }

    /// Keeps `buf` for a later `take` when nothing else points into it (a frame split off a
    /// read buffer may still be held), it has its room back and fewer than `KEPT` are kept;
    /// otherwise it is dropped.
    pub(crate) fn give_back(&self, mut buf: BytesMut) {
        buf.clear();
        if !buf.try_reclaim(self.capacity) || buf.capacity() > 2 * self.capacity {
            return;
        }
        let _ = self.kept.try_with(|k| {
            let mut k = k.borrow_mut();
            if k.len() < KEPT {
                k.push(buf);
            }
        });
    }
}
