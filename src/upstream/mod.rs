//! The Lambda side: TLS settings, opening connections (directly or through a forward proxy),
//! the per-worker connection pool, the invoke client, and one-shot requests to the other AWS
//! endpoints the credential providers call; [`invoker`] is the seam the proxy invokes through
//! (the real upstream, or a Lambda in memory for tests).

pub mod client;
pub mod connect;
pub mod fetch;
pub mod invoker;
pub mod pool;
pub mod retry;
pub mod stream;
pub mod streaming;
pub mod target;
pub mod tls;
