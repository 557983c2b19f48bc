//! Graceful shutdown, per worker: a flag and the wakers of tasks waiting on it. A worker
//! triggers its [`Shutdown`] when the process is told to stop, which wakes idle connections and
//! the accept loop.
//!
//! Idle keep-alive connections wait here for their idle deadline too ([`Shutdown::wait_until`]):
//! the worker's periodic tick calls [`Shutdown::expire`], which wakes those whose deadline
//! passed. A per-connection timer would cost each idle connection monoio's 640-byte timer
//! entry; a slot here costs 32 bytes, and the deadline is kept to within one tick.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A worker-local shutdown signal.
#[derive(Default)]
pub struct Shutdown {
    set: Cell<bool>,
    /// Slots of waiting tasks; a dropped waiter frees its slot.
    waiters: RefCell<Vec<Option<Waiter>>>,
    free: RefCell<Vec<usize>>,
}

/// A waiting task and its deadline, if any.
type Waiter = (Waker, Option<Instant>);

/// Why a [`Shutdown::wait_until`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// Shutdown started.
    Shutdown,
    /// The deadline passed.
    Expired,
}

impl Shutdown {
    /// True once shutdown started.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Starts shutdown and wakes every waiter.
    pub fn trigger(&self) {
        self.set.set(true);
        for w in self.waiters.borrow_mut().iter_mut() {
            if let Some((w, _)) = w.take() {
                w.wake();
            }
        }
    }

    /// Wakes the waiters whose deadline is `now` or earlier (called by the worker's tick).
    pub fn expire(&self, now: Instant) {
        for w in self.waiters.borrow_mut().iter_mut() {
            if matches!(w, Some((_, Some(deadline))) if *deadline <= now) {
                if let Some((w, _)) = w.take() {
                    w.wake();
                }
            }
        }
    }

    /// Completes when shutdown starts.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            shutdown: self,
            slot: None,
            deadline: None,
        }
    }

    /// Completes when shutdown starts or, within a tick of it, when `deadline` passes.
    pub fn wait_until(&self, deadline: Instant) -> Wait<'_> {
        Wait {
            shutdown: self,
            slot: None,
            deadline: Some(deadline),
        }
    }
}

/// The future of [`Shutdown::wait`] and [`Shutdown::wait_until`].
pub struct Wait<'a> {
    shutdown: &'a Shutdown,
    slot: Option<usize>,
    deadline: Option<Instant>,
}

impl Future for Wait<'_> {
    type Output = Woken;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Woken> {
        if self.shutdown.is_set() {
            return Poll::Ready(Woken::Shutdown);
        }
        // A slot emptied while shutdown is not set was emptied by `expire`.
        let expired = match self.slot {
            Some(i) => self
                .shutdown
                .waiters
                .borrow()
                .get(i)
                .is_some_and(Option::is_none),
            None => self.deadline.is_some_and(|d| d <= Instant::now()),
        };
        if expired {
            return Poll::Ready(Woken::Expired);
        }
        let waker = Some((cx.waker().clone(), self.deadline));
        match self.slot {
            Some(i) => self.shutdown.waiters.borrow_mut()[i] = waker,
            None => {
                let mut waiters = self.shutdown.waiters.borrow_mut();
                let i = match self.shutdown.free.borrow_mut().pop() {
                    Some(i) => {
                        waiters[i] = waker;
                        i
                    }
                    None => {
                        waiters.push(waker);
                        waiters.len() - 1
                    }
                };
                drop(waiters);
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            if let Some(w) = self.shutdown.waiters.borrow_mut().get_mut(i) {
                *w = None;
            }
            self.shutdown.free.borrow_mut().push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_wake_and_free_their_slots() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let sd = std::rc::Rc::new(Shutdown::default());
            for _ in 0..100 {
                // A waiter that loses a race is dropped: its slot is reused, not leaked.
                monoio::select! {
                    _ = sd.wait() => unreachable!(),
                    _ = monoio::time::sleep(std::time::Duration::from_millis(1)) => {}
                }
            }
            assert_eq!(sd.waiters.borrow().len(), 1);
            let sd2 = sd.clone();
            let waiter = monoio::spawn(async move { sd2.wait().await });
            // A deadline wakes its waiter at the first expiry past it, not before.
            let sd3 = sd.clone();
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(20);
            let idle = monoio::spawn(async move { sd3.wait_until(deadline).await });
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            sd.expire(std::time::Instant::now());
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            sd.expire(deadline + std::time::Duration::from_millis(1));
            assert_eq!(idle.await, Woken::Expired);
            sd.trigger();
            assert_eq!(waiter.await, Woken::Shutdown);
            assert!(sd.is_set());
        });
    }
}
