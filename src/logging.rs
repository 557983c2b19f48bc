//! A minimal logger for the `log` facade: one line per record on stderr, with a UTC timestamp,
//! the level and the worker thread's name. Level from `LAMBDA_GATEWAY_LOG` (default `info`).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger {
    level: LevelFilter,
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
        let now = crate::aws::time::AmzDate::from_system_time(std::time::SystemTime::now());
        let thread = std::thread::current();
        let line = format!(
            "{} {:<5} [{}] {}\n",
            now.timestamp_str(),
            record.level(),
            thread.name().unwrap_or("-"),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls do nothing.
pub fn init() {
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
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}
