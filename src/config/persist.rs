//! Writing configuration files: the Admin API's file store and a fleet node's
//! last-known-good copy.

use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The document as the file's format: JSON for `.json`, YAML otherwise.
pub fn serialize(path: &Path, doc: &Value) -> Result<Vec<u8>, String> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        let mut out = serde_json::to_vec_pretty(doc).map_err(|e| e.to_string())?;
        out.push(b'\n');
        Ok(out)
    } else {
        let yaml = serde_norway::to_string(doc).map_err(|e| e.to_string())?;
        Ok(
            format!("# Kong declarative config, maintained by lambda-gateway's Admin API.\n{yaml}")
                .into_bytes(),
        )
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file, never a
/// mix: a temporary file in the same directory (mode 0600: it holds secrets), fsync, rename
/// over the target, fsync the directory so the rename itself is durable.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("lg-store-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("kong.yml");
        write_atomically(&path, b"a: 1\n").expect("write");
        write_atomically(&path, b"a: 2\n").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"a: 2\n");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
