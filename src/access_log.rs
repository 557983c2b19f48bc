//! The access log: one JSON object per request, with the field names of Kong's `file-log`
//! where they fit (`request`, `response`, `route`, `service`, `consumer`, `latencies`,
//! `client_ip`, `started_at`), to stdout or a file (`--access-log PATH|-|off`).
//!
//! Never a secret: no header values are logged, and the request's `uri` and `url` carry no
//! query string (a query may hold an API key). Each worker writes its lines into its own
//! buffer and appends the buffer to the file when it grows past 32 KiB or every 100 ms tick;
//! the file is opened for appending, so each write lands whole at the end, whichever worker
//! makes it. `SIGUSR1` reopens the file (after logrotate moved it).

use arc_swap::ArcSwap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A worker's buffer is written out once it holds this much.
pub const FLUSH_AT: usize = 32 * 1024;

/// Where lines go.
enum Target {
    Stdout,
    File { path: PathBuf, file: ArcSwap<File> },
}

/// The process's access log.
pub struct AccessLog {
    target: Target,
    reopen: Arc<AtomicBool>,
}

fn open(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AccessLog {
    /// The log `spec` names: `off` (none), `-` or `stdout`, or a file path (created, appended
    /// to). Registers `SIGUSR1` to reopen a file.
    pub fn open(spec: &str) -> std::io::Result<Option<Arc<AccessLog>>> {
        let target = match spec {
            "off" => return Ok(None),
            "-" | "stdout" => Target::Stdout,
            path => {
                let path = PathBuf::from(path);
                let file = open(&path)?;
                Target::File {
                    path,
                    file: ArcSwap::from_pointee(file),
                }
            }
        };
        let reopen = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, reopen.clone())?;
        Ok(Some(Arc::new(AccessLog { target, reopen })))
    }

    /// Appends `lines` (whole lines). A failed write is logged, the lines are dropped: the
    /// access log never stops serving.
    pub fn write(&self, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        let result = match &self.target {
            Target::Stdout => std::io::stdout().lock().write_all(lines),
            Target::File { file, .. } => (&**file.load()).write_all(lines),
        };
        if let Err(e) = result {
            log::error!("access log: cannot write: {e}");
        }
    }

    /// Reopens the file if `SIGUSR1` asked for it since the last call (one caller does it).
    pub fn reopen_if_asked(&self) {
        if !self.reopen.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Target::File { path, file } = &self.target {
            match open(path) {
                Ok(f) => {
                    file.store(Arc::new(f));
                    log::info!("access log reopened: {}", path.display());
                }
                Err(e) => log::error!(
                    "access log: cannot reopen {}: {e}; still writing to the old file",
                    path.display()
                ),
            }
        }
    }
}

/// What one log line says, gathered by the proxy.
pub struct Entry<'a> {
    /// Method.
    pub method: &'a [u8],
    /// Path (no query).
    pub path: &'a [u8],
    /// The authority the client addressed, its port included when it gave one (for `url`).
    pub host: Option<&'a [u8]>,
    /// `https` or `http`.
    pub scheme: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`…, or empty when not known.
    pub protocol: &'a [u8],
    /// Request bytes (head and body).
    pub request_size: usize,
    /// Status sent.
    pub status: u16,
    /// Response bytes (header lines and body, before framing).
    pub response_size: usize,
    /// Route (id, name), when one matched.
    pub route: Option<(&'a str, Option<&'a str>)>,
    /// Service (id, name).
    pub service: Option<(&'a str, Option<&'a str>)>,
    /// Consumer (id, username).
    pub consumer: Option<(&'a str, Option<&'a str>)>,
    /// Milliseconds from the request to the answer.
    pub request_ms: u64,
    /// Milliseconds spent on Lambda.
    pub proxy_ms: u64,
    /// The client's address.
    pub client_ip: Option<std::net::IpAddr>,
    /// When the request came (ms since the epoch).
    pub started_at: u64,
}

fn entity(out: &mut Vec<u8>, key: &str, e: Option<(&str, Option<&str>)>, name_key: &str) {
    let Some((id, name)) = e else {
        return;
    };
    crate::json::write_key(out, key);
    out.extend_from_slice(b"{\"id\":");
    crate::json::write_str(out, id.as_bytes());
    if let Some(name) = name {
        out.push(b',');
        crate::json::write_key(out, name_key);
        crate::json::write_str(out, name.as_bytes());
    }
    out.extend_from_slice(b"},");
}

impl Entry<'_> {
    /// Appends the entry's line to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        use crate::json::{write_key, write_str, write_u64};
        out.extend_from_slice(b"{\"request\":{\"method\":");
        write_str(out, self.method);
        out.extend_from_slice(b",\"uri\":");
        write_str(out, self.path);
        out.extend_from_slice(b",\"url\":\"");
        out.extend_from_slice(self.scheme.as_bytes());
        out.extend_from_slice(b"://");
        crate::json::write_str_contents(out, self.host.unwrap_or_default());
        crate::json::write_str_contents(out, self.path);
        out.extend_from_slice(b"\",\"protocol\":");
        write_str(out, self.protocol);
        out.extend_from_slice(b",\"size\":");
        write_u64(out, self.request_size as u64);
        out.extend_from_slice(b"},\"response\":{\"status\":");
        write_u64(out, u64::from(self.status));
        out.extend_from_slice(b",\"size\":");
        write_u64(out, self.response_size as u64);
        out.extend_from_slice(b"},");
        entity(out, "route", self.route, "name");
        entity(out, "service", self.service, "name");
        entity(out, "consumer", self.consumer, "username");
        write_key(out, "latencies");
        out.extend_from_slice(b"{\"request\":");
        write_u64(out, self.request_ms);
        out.extend_from_slice(b",\"kong\":");
        write_u64(out, self.request_ms.saturating_sub(self.proxy_ms));
        out.extend_from_slice(b",\"proxy\":");
        write_u64(out, self.proxy_ms);
        out.extend_from_slice(b"},");
        write_key(out, "client_ip");
        match self.client_ip {
            Some(ip) => {
                out.push(b'"');
                let _ = write!(out, "{ip}");
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b',');
        write_key(out, "started_at");
        write_u64(out, self.started_at);
        out.extend_from_slice(b"}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_kongs_names() {
        let mut out = Vec::new();
        Entry {
            method: b"GET",
            path: b"/x\"y",
            host: Some(b"api.test"),
            scheme: "https",
            protocol: b"HTTP/2.0",
            request_size: 120,
            status: 200,
            response_size: 18,
            route: Some(("r-id", Some("r"))),
            service: None,
            consumer: Some(("c-id", Some("alice"))),
            request_ms: 12,
            proxy_ms: 10,
            client_ip: Some("127.0.0.1".parse().expect("ip")),
            started_at: 1_764_000_000_000,
        }
        .write(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "request": {"method": "GET", "uri": "/x\"y", "url": "https://api.test/x\"y", "protocol": "HTTP/2.0", "size": 120},
                "response": {"status": 200, "size": 18},
                "route": {"id": "r-id", "name": "r"},
                "consumer": {"id": "c-id", "username": "alice"},
                "latencies": {"request": 12, "kong": 2, "proxy": 10},
                "client_ip": "127.0.0.1",
                "started_at": 1_764_000_000_000u64,
            })
        );
    }
}
