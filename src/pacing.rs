//! Pacing long work on one request, so it never keeps a worker from its other connections.
//!
//! A worker runs every connection on one thread; CPU work between two awaits holds all of them.
//! Work whose length a client chooses (the members of a JSON body, the parts of a multipart
//! body) calls [`Pacer::pause_if_due`] between items. [`TimeSlice`] lets the request run for a
//! slice of time, then sleeps until the next timer tick, during which the worker serves
//! everyone else. A request that needs less than a slice never pauses.
//!
//! Why a timer and not a self-wake: monoio puts a task that wakes itself back at the *front*
//! of its queue, so it would run again before anyone else.

use std::future::Future;
use std::time::{Duration, Instant};

/// Something that may pause a request between units of work.
pub trait Pacer {
    /// Called between units of work; returns at once unless the request used up its slice.
    fn pause_if_due(&mut self) -> impl Future<Output = ()>;
}

/// Never pauses: for benchmarks, tests and fuzzing, where nothing else waits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unpaced;

impl Pacer for Unpaced {
    async fn pause_if_due(&mut self) {}
}

/// CPU time a request may take before it lets the worker's other connections run.
pub const SLICE: Duration = Duration::from_millis(2);
/// Units of work between two looks at the clock.
const UNITS_PER_CHECK: u32 = 128;

/// Pauses a request (on monoio's timer) each time it has run for [`SLICE`] since it last
/// paused. The clock is first read after [`UNITS_PER_CHECK`] units, so a request with little
/// to do never reads it.
#[derive(Debug, Default)]
pub struct TimeSlice {
    since: Option<Instant>,
    units: u32,
    /// How many times this request paused.
    pub pauses: u32,
}

impl Pacer for TimeSlice {
    async fn pause_if_due(&mut self) {
        self.units += 1;
        if self.units < UNITS_PER_CHECK {
            return;
        }
        self.units = 0;
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < SLICE {
            return;
        }
        // The shortest sleep monoio's timer has: until its next tick (about a millisecond).
        monoio::time::sleep(Duration::from_micros(1)).await;
        self.pauses += 1;
        self.since = Some(Instant::now());
    }
}

/// Runs `work` to completion on the current thread, outside any runtime, handing it an
/// [`Unpaced`] pacer (benchmarks, tests, fuzzing, and parsers used off the request path).
/// `work` must wait on nothing but that pacer, which never waits: it completes in one poll.
pub fn run_unpaced<T>(work: impl AsyncFnOnce(&mut Unpaced) -> T) -> T {
    let mut pacer = Unpaced;
    let mut fut = std::pin::pin!(work(&mut pacer));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_work_completes_at_once() {
        let n = run_unpaced(async |pacer| {
            let mut n = 0;
            for _ in 0..1000 {
                pacer.pause_if_due().await;
                n += 1;
            }
            n
        });
        assert_eq!(n, 1000);
    }

    /// While one task does long paced work, another task on the same thread keeps running.
    #[test]
    fn a_paced_task_lets_others_run() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
            let seen = ticks.clone();
            let other = monoio::spawn(async move {
                for _ in 0..3 {
                    monoio::time::sleep(Duration::from_millis(1)).await;
                    seen.set(seen.get() + 1);
                }
            });
            let mut pacer = TimeSlice::default();
            let started = Instant::now();
            // Busy work for 30 ms, paced.
            while started.elapsed() < Duration::from_millis(30) {
                std::hint::black_box(0u64.wrapping_add(1));
                pacer.pause_if_due().await;
            }
            assert!(pacer.pauses >= 5, "paused {} times", pacer.pauses);
            assert_eq!(ticks.get(), 3, "the other task ran meanwhile");
            other.await;
        });
    }
}
