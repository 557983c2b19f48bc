//! The `lambda-gateway` binary: the command line is [`lambda_gateway::cli`].

fn main() -> std::process::ExitCode {
    return_freed_memory_after_bursts();
    lambda_gateway::cli::main()
}

/// After a burst of large requests, glibc's malloc keeps much of what they freed: it raises its
/// mmap threshold to the largest block freed (up to 32 MiB), so later 6 MB buffers come from
/// its heaps, and it returns only a heap's free top. Measured with `tools/hold-bodies` (200 ×
/// 6 MB under a 256 MiB budget): 333 MiB stayed after the load. Fixing the threshold instead
/// (every large buffer its own mapping) cost a quarter of the 1 MiB throughput at saturation.
/// So the heaps serve the load, and once the workers let their large buffers go (10 s without
/// a large request) `malloc_trim` returns every free page.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_freed_memory_after_bursts() {
    let trimmer = std::thread::Builder::new().name("lg-trim".into());
    let _ = trimmer.spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if lambda_gateway::http::large_buffers::released_since_last_asked() {
            // SAFETY: malloc_trim takes an integer and walks glibc's arenas under their own
            // locks, so it may run beside any allocation on any thread; it frees nothing that
            // is in use. Shown by tests/memory.rs (a burst's RSS returns near idle).
            unsafe {
                nix::libc::malloc_trim(0);
            }
        }
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory_after_bursts() {}
