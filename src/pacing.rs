//! Pacing long work on one request, so it never keeps a worker from its other connections.
//!
//! A worker runs every connection on one thread; CPU work between two awaits holds all of them.
//! Work whose length a client chooses (the members of a JSON body, the parts of a multipart
//! body) calls [`Pacer::pause_if_due`] between items. [`TimeSlice`] lets the request run for a
//! slice of time, then yields: the worker runs every other task that is ready and collects
//! finished I/O before the request continues. A request that needs less than a slice never
//! yields.
//!
//! Two ways to yield, by how much the request has used:
//! - at first, [`YieldNow`]: monoio puts a task that wakes itself during its own poll back at
//!   the *front* of its queue, so a plain self-wake would run it again before anyone else;
//!   `YieldNow` has a tiny task wake it instead, so it joins the *back* of the queue, and the
//!   runtime reaps I/O completions at least every two turns of a self-feeding queue. No idle
//!   time when nothing else waits.
//! - past [`HEAVY`] of work, a sleep until the timer's next tick (about a millisecond): the
//!   worker is then free for everyone else, whose requests need several I/O steps each, and
//!   the request has a budget of about half the worker from then on.

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
pub const SLICE: Duration = Duration::from_micros(500);
/// Work after which a request yields by sleeping, not only by queueing behind others.
pub const HEAVY: Duration = Duration::from_millis(10);
/// Units of work between two looks at the clock.
const UNITS_PER_CHECK: u32 = 128;

/// Yields a request each time it has run for [`SLICE`] since it last yielded. The clock is
/// first read after [`UNITS_PER_CHECK`] units, so a request with little to do never reads it.
#[derive(Debug, Default)]
pub struct TimeSlice {
    since: Option<Instant>,
    units: u32,
    /// Work done so far (not counting time spent yielded).
    used: Duration,
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
        let ran = now.duration_since(since);
        if ran < SLICE {
            return;
        }
        self.used += ran;
        if self.used < HEAVY {
            YieldNow::default().await;
        } else {
            // The shortest sleep monoio's timer has: until its next tick. Boxed: a timer entry
            // is 640 bytes, and every future that awaits a pause (and every connection's
            // future, which holds them) would carry it; this path only runs for heavy requests.
            Box::pin(monoio::time::sleep(Duration::from_micros(1))).await;
        }
        self.pauses += 1;
        self.since = Some(Instant::now());
    }
}

/// Completes on its second poll, after every task that was ready before it has had a turn.
#[derive(Debug, Default)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.yielded {
            return std::task::Poll::Ready(());
        }
        self.yielded = true;
        // Woken from another task, this one is queued behind everything already ready (a wake
        // from within its own poll would put it first).
        let waker = cx.waker().clone();
        monoio::spawn(async move { waker.wake() });
        std::task::Poll::Pending
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

    /// While one task does long paced work, a connection served by other tasks on the same
    /// thread keeps making round trips, on both of monoio's drivers: during the first
    /// [`HEAVY`] of work (yields that queue behind ready tasks), and after it (sleeps).
    fn others_keep_running<D: monoio::Driver>(mut rt: monoio::Runtime<TimeDriver<D>>) {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        rt.block_on(async {
            let listener = monoio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            monoio::spawn(async move {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 1];
                loop {
                    let (n, b) = conn.read(buf).await;
                    buf = b;
                    if !matches!(n, Ok(1)) {
                        return;
                    }
                    let (r, b) = conn.write_all(buf).await;
                    buf = b;
                    if r.is_err() {
                        return;
                    }
                }
            });
            let trips = std::rc::Rc::new(std::cell::Cell::new(0u32));
            let counted = trips.clone();
            let client = monoio::spawn(async move {
                let mut conn = monoio::net::TcpStream::connect(addr)
                    .await
                    .expect("connect");
                let mut buf = vec![0u8; 1];
                while counted.get() < u32::MAX {
                    let (r, b) = conn.write_all(buf).await;
                    buf = b;
                    r.expect("write");
                    let (n, b) = conn.read(buf).await;
                    buf = b;
                    if !matches!(n, Ok(1)) {
                        return;
                    }
                    counted.set(counted.get() + 1);
                }
            });
            // Let the connection start, then hold the thread with paced busy work.
            monoio::time::sleep(Duration::from_millis(5)).await;
            // A few attempts each: the thread itself may be descheduled for milliseconds when
            // other processes hold the cores (wall-clock windows this short are at the mercy
            // of the machine). Without pacing no attempt makes a single round trip.
            for (busy, least) in [(HEAVY - Duration::from_millis(1), 3), (HEAVY * 5, 10)] {
                let (mut during, mut pauses) = (0, 0);
                for _attempt in 0..5 {
                    let before = trips.get();
                    let mut pacer = TimeSlice::default();
                    let started = Instant::now();
                    while started.elapsed() < busy {
                        std::hint::black_box(0u64.wrapping_add(1));
                        pacer.pause_if_due().await;
                    }
                    (during, pauses) = (trips.get() - before, pacer.pauses);
                    eprintln!("{during} round trips, {pauses} pauses in {busy:?}");
                    if during >= least && pauses >= least {
                        break;
                    }
                }
                assert!(pauses >= least, "paused {pauses} times");
                assert!(during >= least, "only {during} round trips in {busy:?}");
            }
            drop(client);
        });
    }

    use monoio::time::TimeDriver;

    #[test]
    fn a_paced_task_lets_others_run_on_epoll() {
        let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        others_keep_running(rt);
    }

    #[test]
    fn a_paced_task_lets_others_run_on_io_uring() {
        // The ring as the workers set it up (cooperative task work). With DEFER_TASKRUN
        // instead, no round trip completes during the first phase: monoio's submit-only path
        // never runs the deferred task work while a task keeps yielding.
        let mut ring = io_uring::IoUring::builder();
        ring.setup_coop_taskrun().setup_taskrun_flag();
        let Ok(rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .uring_builder(ring)
            .build()
        else {
            eprintln!("io_uring unavailable here; the epoll test covers pacing");
            return;
        };
        others_keep_running(rt);
    }
}
