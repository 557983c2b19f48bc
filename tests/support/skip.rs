//! Tests that need a program this machine may not have (etcd, redis-server, nginx with Lua,
//! curl, openssl) skip without it, visibly: a `SKIPPED:` line written straight to the
//! terminal (libtest captures only the print macros, so a passing test's `eprintln!` would be
//! hidden), and a record that `tests/zz_skipped.rs`, the last test binary `cargo test` runs,
//! turns into one summary line. `.ci/run` sets `LAMBDA_GATEWAY_TESTS_SKIP_NOTHING=1`: there a
//! missing program fails the test instead.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Set to `1` where every test must run (`.ci/run`).
pub const SKIP_NOTHING: &str = "LAMBDA_GATEWAY_TESTS_SKIP_NOTHING";

/// Where this run's skips are recorded: one file per `cargo test` process (its PID and start
/// time, so a reused PID never picks up an older run's file), shared by every test binary it
/// starts.
pub fn record_file() -> PathBuf {
    let cargo = std::os::unix::process::parent_id();
    let started = std::fs::read_to_string(format!("/proc/{cargo}/stat"))
        .ok()
        .and_then(|stat| {
            // Field 22 (start time), counted after the command name's closing parenthesis.
            let after_name = &stat[stat.rfind(')')? + 1..];
            after_name.split_whitespace().nth(19).map(str::to_string)
        })
        .unwrap_or_default();
    records_dir().join(format!("{cargo}-{started}.txt"))
}

/// The folder of skip records, under the build's target folder.
pub fn records_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped")
}

/// Whether `program arg` runs and exits 0 (`arg` being its version flag).
pub fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a test needing `what` may run: true when `present`. Otherwise says so where a
/// person sees it (once per test binary), records the skip for the run's summary and returns
/// false; or, under [`SKIP_NOTHING`], fails the test.
pub fn may_run(what: &str, present: bool, debian_packages: &str) -> bool {
    if present {
        return true;
    }
    let reason = format!("{what} is not installed (apt-get install {debian_packages})");
    assert!(
        std::env::var(SKIP_NOTHING).as_deref() != Ok("1"),
        "{reason}, and {SKIP_NOTHING}=1 says every test must run here"
    );
    static SAID: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let first_time = SAID
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(reason.clone());
    if first_time {
        let binary = test_binary();
        let _ = writeln!(std::io::stderr(), "SKIPPED: {binary}: {reason}");
        let _ = std::fs::create_dir_all(records_dir());
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(record_file())
        {
            // One short write in append mode: lines from parallel tests do not interleave.
            let _ = file.write_all(format!("{binary}\t{reason}\n").as_bytes());
        }
    }
    false
}

/// This test binary's name (`fleet` for `target/debug/deps/fleet-0123abcd`).
fn test_binary() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    }
}
