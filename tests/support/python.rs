//! The Python the tests run their independent peers with (Mangum, moto, PyJWT, the Prometheus
//! parser): the packages pinned in `tests/requirements.txt`, installed on first use into a
//! virtual environment under the target folder and reused while that file is unchanged. The
//! system's Python is only asked to make the environment; nothing is installed into it.
//!
//! Where `python3 -m venv` is not available (Debian's Python without `python3-venv`), the
//! packages go into a folder of their own (`pip install --target`) put on `PYTHONPATH`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const REQUIREMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt");

/// How to start the tests' Python.
#[derive(Debug)]
enum Interpreter {
    /// A virtual environment's own `python`.
    Venv(PathBuf),
    /// The system's `python3` with the packages' folder on `PYTHONPATH`.
    Target(PathBuf),
}

/// A `python` command with the tests' packages importable. The first call in a test binary
/// installs them if needed (one binary at a time, under a file lock); if that fails, the test
/// fails with one line saying what to run.
pub fn python() -> Command {
    static READY: OnceLock<Result<Interpreter, String>> = OnceLock::new();
    match READY.get_or_init(prepare) {
        Ok(Interpreter::Venv(python)) => Command::new(python),
        Ok(Interpreter::Target(packages)) => {
            let mut command = Command::new("python3");
            command.env("PYTHONPATH", packages);
            command
        }
        Err(why) => panic!("{why}"),
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python")
}

fn prepare() -> Result<Interpreter, String> {
    let root = root();
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let lock = File::create(root.join("lock")).map_err(|e| format!("{}: {e}", root.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", root.display()))?;
    let wanted = std::fs::read(REQUIREMENTS).map_err(|e| format!("{REQUIREMENTS}: {e}"))?;
    let stamp = root.join("installed-requirements.txt");
    let venv_python = root.join("venv/bin/python");
    let target = root.join("packages");
    if std::fs::read(&stamp).ok().as_deref() == Some(&wanted[..]) {
        return Ok(if venv_python.exists() {
            Interpreter::Venv(venv_python)
        } else {
            Interpreter::Target(target)
        });
    }
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_dir_all(root.join("venv"));
    let _ = std::fs::remove_dir_all(&target);
    let made_venv = Command::new("python3")
        .args(["-m", "venv"])
        .arg(root.join("venv"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && venv_python.exists();
    let (interpreter, mut install) = if made_venv {
        let mut pip = Command::new(&venv_python);
        pip.args(["-m", "pip", "install"]);
        (Interpreter::Venv(venv_python), pip)
    } else {
        let _ = std::fs::remove_dir_all(root.join("venv"));
        let mut pip = Command::new("python3");
        pip.args(["-m", "pip", "install", "--target"]).arg(&target);
        (Interpreter::Target(target), pip)
    };
    let out = install
        .args(["--quiet", "--disable-pip-version-check", "--requirement"])
        .arg(REQUIREMENTS)
        .output()
        .map_err(|e| cannot_install(&root, &format!("python3: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(cannot_install(&root, last.unwrap_or("pip failed")));
    }
    std::fs::write(&stamp, &wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(interpreter)
}

/// The one line a test fails with when the packages cannot be installed.
fn cannot_install(root: &Path, why: &str) -> String {
    format!(
        "the tests' Python packages could not be installed into {} ({why}); with access to PyPI, run: python3 -m venv {0}/venv && {0}/venv/bin/pip install -r tests/requirements.txt && cp tests/requirements.txt {0}/installed-requirements.txt",
        root.display()
    )
}
