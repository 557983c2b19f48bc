//! A worker's pool of idle connections to Lambda endpoints, keyed by endpoint (TLS or not, host,
//! which is also the SNI, and port). Worker-local: no locks.

use super::stream::{idle_socket_is_clean, Stream};
use crate::aws::endpoint::Endpoint;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// An idle connection.
pub struct IdleConn {
    /// The connection.
    pub stream: Stream,
    /// Its socket, for the liveness probe.
    pub fd: RawFd,
    /// When it was returned.
    pub since: Instant,
    /// How long it may stay idle (the plugin's `keepalive`).
    pub keepalive: Duration,
}

/// Pooled connections idle at least this long are probed for a peer's close before reuse.
pub const PROBE_AFTER: Duration = Duration::from_secs(1);

/// Most idle connections kept per endpoint per worker.
pub const MAX_IDLE_PER_ENDPOINT: usize = 256;

/// The pool.
#[derive(Default)]
pub struct Pool {
    idle: HashMap<Endpoint, Vec<IdleConn>>,
}

impl Pool {
    /// The most recently returned live connection to `endpoint`, if any.
    pub fn take(&mut self, endpoint: &Endpoint) -> Option<IdleConn> {
        let list = self.idle.get_mut(endpoint)?;
        let now = Instant::now();
        while let Some(conn) = list.pop() {
            let idle = now.duration_since(conn.since);
            // A connection back from a request moments ago is not probed (a syscall per request
            // on a busy pool); if it did die, the request is resent on a new connection before
            // any response byte arrives (see client.rs).
            if idle < conn.keepalive && (idle < PROBE_AFTER || idle_socket_is_clean(conn.fd)) {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection for reuse (dropped when `keepalive` is zero or the pool is full).
    pub fn put(&mut self, endpoint: &Endpoint, conn: IdleConn) {
        if conn.keepalive.is_zero() {
            return;
        }
        let list = match self.idle.get_mut(endpoint) {
            Some(list) => list,
            None => self.idle.entry(endpoint.clone()).or_default(),
        };
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push(conn);
        }
    }

    /// Idle connections kept now, all endpoints.
    pub fn idle_count(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Closes connections idle longer than their keepalive.
    pub fn sweep(&mut self) {
        let now = Instant::now();
        for list in self.idle.values_mut() {
            list.retain(|c| now.duration_since(c.since) < c.keepalive);
        }
        self.idle.retain(|_, l| !l.is_empty());
    }
}
