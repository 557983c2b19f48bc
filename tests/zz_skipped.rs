//! The last test binary `cargo test` runs (binaries run in name order, and the library has no
//! doctests): one line naming every group of tests this run skipped because a program was not
//! installed, so that a green run which tested less says so. Silent when nothing was skipped.
//! No test harness: it prints, it does not test.

#[path = "support/skip.rs"]
#[allow(dead_code)] // only where the records are kept is used here
mod skip;

use std::time::{Duration, SystemTime};

fn main() {
    let file = skip::record_file();
    let recorded = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    forget_old_runs();
    // Each reason once, with the test binaries that skipped for it, in the order first seen.
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (binary, reason) in recorded.lines().filter_map(|l| l.split_once('\t')) {
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, binaries)) if binaries.contains(&binary) => {}
            Some((_, binaries)) => binaries.push(binary),
            None => groups.push((reason, vec![binary])),
        }
    }
    if groups.is_empty() {
        return;
    }
    let listed: Vec<String> = groups
        .iter()
        .map(|(reason, binaries)| format!("tests/{}.rs: {reason}", binaries.join(".rs, tests/")))
        .collect();
    println!(
        "\nSKIPPED in this run ({} groups; install them to test everything): {}\n",
        groups.len(),
        listed.join("; ")
    );
}

/// Records of runs that ended before reaching this binary (interrupted, or filtered to a few
/// tests): removed after a day.
fn forget_old_runs() {
    let Ok(entries) = std::fs::read_dir(skip::records_dir()) else {
        return;
    };
    let day_ago = SystemTime::now() - Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < day_ago);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
