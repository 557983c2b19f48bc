//! The `lambda-gateway` binary: the command line is [`lambda_gateway::cli`].

fn main() -> std::process::ExitCode {
    keep_large_blocks_returnable();
    lambda_gateway::cli::main()
}

/// Large buffers (bodies, payloads and answers of up to ~8 MB) must go back to the OS when
/// freed. glibc's malloc maps blocks over its threshold (128 KiB) separately and unmaps them on
/// free, but by default it raises that threshold to the largest such block freed (up to
/// 32 MiB): after the first 6 MB body, later ones come from its heaps, whose freed middle it
/// never returns. Measured with `tools/hold-bodies` (200 × 6 MB under a 256 MiB budget): RSS
/// peaked at 345 MiB and stayed at 333 MiB after the load; with the threshold fixed, 118 MiB
/// and 13 MiB. Setting the threshold explicitly turns its adjustment off.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_blocks_returnable() {
    const MMAP_THRESHOLD: i32 = 256 * 1024;
    // SAFETY: mallopt takes two integers and only changes glibc's malloc parameters, under
    // malloc's own lock; it is called first thing in main, and a refusal (0) leaves the
    // defaults, which are correct, only less frugal. Shown by tests/memory.rs (a burst's RSS
    // returns near idle).
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_blocks_returnable() {}
