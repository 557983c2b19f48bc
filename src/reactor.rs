//! The runtime every gateway thread (workers, the Admin API) runs on: monoio on io_uring with
//! the ring tuned for a proxy, or on epoll where io_uring is unavailable or disabled
//! (`MONOIO_FORCE_LEGACY_DRIVER=1`).

/// A runtime for one thread: io_uring (epoll where unavailable), timers on, 1024 ring entries.
///
/// The ring is set up with `IORING_SETUP_COOP_TASKRUN` and `IORING_SETUP_TASKRUN_FLAG`. Without
/// them, each completion that network softirq work (often on the other core) queues for this
/// thread interrupts it with an IPI to run the ring's task work at once: 14% of a worker's time
/// went to `irqentry_exit_to_user_mode` under load. With them the task work waits for the
/// thread's next `io_uring_enter`, which monoio's loop makes on every turn, whether it submits
/// or waits. `DEFER_TASKRUN` would defer it further, to an enter that *waits* for events, but
/// monoio's submit-only path (taken while tasks are still ready, e.g. while a paced request
/// yields) does not ask for events, so completions would sit unreaped behind busy tasks.
pub fn build_runtime() -> std::io::Result<Runtime> {
    let mut ring = io_uring::IoUring::builder();
    ring.setup_coop_taskrun().setup_taskrun_flag();
    let tuned = runtime_builder().uring_builder(ring).build();
    match tuned {
        Ok(rt) => Ok(rt),
        Err(e) => {
            // Kernels before 5.19 refuse the flags: the default ring still beats epoll.
            log::warn!("io_uring with cooperative task work refused ({e}); using the default ring");
            runtime_builder().build()
        }
    }
}

/// A worker's runtime: io_uring with timers, or epoll with timers.
pub type Runtime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

fn runtime_builder() -> monoio::RuntimeBuilder<monoio::time::TimeDriver<monoio::FusionDriver>> {
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .with_entries(1024)
}
