//! A minimal logger for the `log` facade: one line per record on stderr with an RFC 3339 UTC
//! timestamp to the millisecond, the level and the thread's name, as text or as one JSON
//! object per line. Level from `LAMBDA_GATEWAY_LOG` (default `info`).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// How each log line is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-29T20:47:54.123Z INFO  [worker-0] route=… status=…`
    #[default]
    Text,
    /// `{"time":"2026-11-29T20:47:54.123Z","level":"INFO","thread":"worker-0","message":"…"}`
    Json,
}

struct StderrLogger {
    level: LevelFilter,
    format: LogFormat,
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
            && (m.level() <= Level::Warn || m.target().starts_with("lambda_gateway"))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(
            self.format,
            SystemTime::now(),
            record.level(),
            std::thread::current().name().unwrap_or("-"),
            &record.args().to_string(),
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// One log line, newline included.
fn format_line(
    format: LogFormat,
    at: SystemTime,
    level: Level,
    thread: &str,
    message: &str,
) -> String {
    let time = rfc3339_millis(at);
    match format {
        LogFormat::Text => format!("{time} {level:<5} [{thread}] {message}\n"),
        LogFormat::Json => {
            // Written by hand to keep the fields in reading order; values escaped by serde_json.
            let text = |s: &str| serde_json::Value::from(s).to_string();
            format!(
                "{{\"time\":{},\"level\":{},\"thread\":{},\"message\":{}}}\n",
                text(&time),
                text(level.as_str()),
                text(thread),
                text(message)
            )
        }
    }
}

/// `2026-11-29T20:47:54.123Z`.
fn rfc3339_millis(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = crate::aws::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Installs the logger once; later calls do nothing.
pub fn init(format: LogFormat) {
    let level = match std::env::var("LAMBDA_GATEWAY_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => LevelFilter::Info,
    };
    if log::set_boxed_logger(Box::new(StderrLogger { level, format })).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_carry_millisecond_rfc3339_times() {
        let at = UNIX_EPOCH + Duration::from_millis(1_796_071_674_123);
        assert_eq!(
            format_line(
                LogFormat::Text,
                at,
                Level::Warn,
                "worker-0",
                "route=r status=500"
            ),
            "2026-11-30T20:47:54.123Z WARN  [worker-0] route=r status=500\n"
        );
        assert_eq!(
            format_line(LogFormat::Json, at, Level::Info, "admin", "say \"hi\"\n"),
            "{\"time\":\"2026-11-30T20:47:54.123Z\",\"level\":\"INFO\",\"thread\":\"admin\",\"message\":\"say \\\"hi\\\"\\n\"}\n"
        );
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
