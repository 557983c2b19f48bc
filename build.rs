//! Gives `--version` the git revision the binary was built from (`unknown` outside a checkout).
//!
//! Cargo runs a build script again whenever a path it was told to watch does not exist, and a
//! build script that ran again recompiles the crate. So only paths that exist are watched: a
//! checkout whose refs are all loose has no `packed-refs`, and outside git nothing is watched
//! but this file.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|out| out.trim().to_string())
        .filter(|out| !out.is_empty())
}

/// The files whose change can change the revision: `HEAD` (a checkout), and where the branch it
/// names is kept (a commit): its loose ref file if there is one, else `packed-refs`. The
/// `refs/heads` folder is watched as well, for a branch whose loose ref appears later.
fn revision_files() -> Vec<PathBuf> {
    let (Some(git_dir), Some(common_dir)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) else {
        return Vec::new();
    };
    let (git_dir, common_dir) = (PathBuf::from(git_dir), PathBuf::from(common_dir));
    let mut files = vec![git_dir.join("HEAD"), common_dir.join("refs/heads")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let loose = common_dir.join(&branch);
        files.push(if loose.exists() {
            loose
        } else {
            common_dir.join("packed-refs")
        });
    }
    files.retain(|path| path.exists());
    files
}

fn main() {
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LAMBDA_GATEWAY_REVISION={revision}");
    println!("cargo:rerun-if-changed=build.rs");
    for path in revision_files() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
