//! The gateway's own failures while serving a request, each with the answer the client gets
//! (SPEC §6) and a cause for the one log line it produces.

use crate::http::answers;
use crate::http::encode::Response;

/// A failure while invoking Lambda.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// TCP connect failed (refused, unreachable, DNS).
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// `host:port`.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS handshake failed (certificate not trusted, wrong name, protocol error).
    #[error("TLS handshake with {endpoint} failed: {source}")]
    Tls {
        /// `host:port`.
        endpoint: String,
        /// What rustls said.
        source: std::io::Error,
    },
    /// The connection broke while sending or reading.
    #[error("connection to {endpoint} broken: {source}")]
    Io {
        /// `host:port`.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Lambda's response could not be framed (garbage head, truncated body, lying length).
    #[error("invalid response from {endpoint}: {why}")]
    BadResponse {
        /// `host:port`.
        endpoint: String,
        /// What was wrong.
        why: &'static str,
    },
    /// The response exceeded the cap (SPEC §4: 7 MiB).
    #[error("response from {endpoint} larger than {limit} bytes")]
    ResponseTooLarge {
        /// `host:port`.
        endpoint: String,
        /// The cap.
        limit: usize,
    },
    /// The plugin's `timeout` elapsed.
    #[error("no complete response within {0:?}")]
    Timeout(std::time::Duration),
}

impl InvokeError {
    /// Fills the client answer for this failure: 504 for a timeout, 502 otherwise.
    pub fn answer(&self, resp: &mut Response) {
        match self {
            InvokeError::Timeout(_) => answers::message(resp, 504, answers::GATEWAY_TIMEOUT),
            _ => answers::message(resp, 502, answers::BAD_GATEWAY),
        }
    }
}
