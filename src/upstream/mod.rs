//! The Lambda side: TLS settings, the per-worker connection pool, and the invoke client.

pub mod client;
pub mod pool;
pub mod stream;
pub mod target;
pub mod tls;
