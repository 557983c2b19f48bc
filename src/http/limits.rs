//! Limits on what a client may send, as named constants with one struct to carry them.

use super::budget::Budget;
use std::sync::Arc;
use std::time::Duration;

/// Largest request head (request line + headers + blank line) accepted, in bytes (SPEC §6).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields accepted in one request (SPEC §6).
pub const MAX_HEADERS: usize = 100;
/// Largest request body accepted: Lambda's synchronous payload limit; a larger body can never
/// become a valid invocation.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Time a client has to send a whole head, or a whole body, once it has started (SPEC §6).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time an idle keep-alive connection is kept open waiting for the next request.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// The slowest a request body may arrive, in bytes per second, averaged from its start once
/// [`BODY_RATE_GRACE`] has passed; and no read may wait longer than the grace for a byte.
/// A 2G (EDGE) uplink sends several times this.
pub const MIN_BODY_RATE: u64 = 1024;
/// See [`MIN_BODY_RATE`].
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(10);
/// Longest chunk-size line (size, extensions, CRLF) accepted in a chunked body.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Most bytes of trailer fields accepted after the last chunk.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// The limits one server applies to every client connection.
#[derive(Clone, Debug)]
pub struct Limits {
    /// See [`MAX_HEAD_BYTES`].
    pub max_head_bytes: usize,
    /// See [`MAX_HEADERS`].
    pub max_headers: usize,
    /// See [`MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// See [`CLIENT_TIMEOUT`]: applies to the head and, separately, to the body.
    pub client_timeout: Duration,
    /// See [`KEEPALIVE_TIMEOUT`].
    pub keepalive_timeout: Duration,
    /// See [`MIN_BODY_RATE`]; 0: no minimum (the client timeout alone).
    pub min_body_rate: u64,
    /// The node's budget for large bodies; `None`: unbounded.
    pub budget: Option<Arc<Budget>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: MAX_HEAD_BYTES,
            max_headers: MAX_HEADERS,
            max_body_bytes: MAX_BODY_BYTES,
            client_timeout: CLIENT_TIMEOUT,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            min_body_rate: MIN_BODY_RATE,
            budget: None,
        }
    }
}
