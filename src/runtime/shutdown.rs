//! Graceful shutdown, per worker: a flag and the wakers of tasks waiting on it. The process-wide
//! signal is an `AtomicBool` set by the signal thread; each worker polls it on a timer and
//! triggers its local [`Shutdown`], which wakes idle connections and the accept loop.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A worker-local shutdown signal.
#[derive(Default)]
pub struct Shutdown {
    set: Cell<bool>,
    /// Slots of waiting tasks; a dropped waiter frees its slot.
    waiters: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
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
            if let Some(w) = w.take() {
                w.wake();
            }
        }
    }

    /// Completes when shutdown starts.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            shutdown: self,
            slot: None,
        }
    }
}

/// The future of [`Shutdown::wait`].
pub struct Wait<'a> {
    shutdown: &'a Shutdown,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.is_set() {
            return Poll::Ready(());
        }
        let waker = Some(cx.waker().clone());
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
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            sd.trigger();
            waiter.await;
            assert!(sd.is_set());
        });
    }
}
