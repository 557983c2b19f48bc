//! lambda-gateway: an HTTP edge gateway that turns requests into AWS Lambda `Invoke` calls.
//!
//! It does what Kong Gateway's `aws-lambda` plugin does, configured the same way (Kong's
//! declarative `kong.yml`), on thread-per-core monoio runtimes. One request flows through:
//!
//! ```text
//! http::conn ─► http::head ─► http::framing ─► config::router ─► lambda::payload
//!            ─► aws::sigv4 ─► upstream::pool/client ─► lambda::response ─► http::encode
//! ```
//!
//! Every module that touches bytes from the network or a config file returns errors instead of
//! panicking; `unsafe` is forbidden crate-wide.
#![forbid(unsafe_code)]

pub mod access;
pub mod access_log;
pub mod admin;
pub mod aws;
pub mod cache;
pub mod certificate;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod emulator;
pub mod fleet;
pub mod hexdigits;
pub mod http;
pub mod http2;
pub mod https;
pub mod json;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod pacing;
pub mod proxy;
pub mod random;
pub mod reactor;
pub mod runtime;
pub mod schema;
pub mod signals;
pub mod telemetry;
pub mod trace_context;
pub mod trace_export;
pub mod trust;
pub mod upstream;
