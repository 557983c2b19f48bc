//! One upstream connection: plain TCP or TLS, with ownership-passing reads and writes.

use crate::http::client::{Framing, UpstreamError};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio_rustls::ClientTlsStream;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// A connection to a Lambda endpoint.
pub enum Stream {
    /// `disable_https` endpoints.
    Plain(TcpStream),
    /// Everything else.
    Tls(Box<ClientTlsStream<TcpStream>>),
}

impl Stream {
    /// Reads whatever is available, appending to `buf` (which must have spare capacity).
    pub async fn read_append(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let len = buf.len();
        let cap = buf.capacity();
        let slice = monoio::buf::IoBufMut::slice_mut(buf, len..cap);
        let (res, slice) = match self {
            Stream::Plain(s) => s.read(slice).await,
            Stream::Tls(s) => s.read(slice).await,
        };
        (res, slice.into_inner())
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let (res, buf) = match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => s.write_all(buf).await,
        };
        (res.map(|_| ()), buf)
    }
}

/// The raw fd of a TCP stream, kept beside a TLS stream to probe the socket while idle.
pub fn raw_fd(s: &TcpStream) -> RawFd {
    s.as_raw_fd()
}

/// True when an idle socket is still clean: nothing to read and not closed by the peer.
/// A pooled connection that fails this (FIN, RST, a TLS close_notify, stray bytes) is dropped.
pub fn idle_socket_is_clean(fd: RawFd) -> bool {
    use nix::sys::socket::{recv, MsgFlags};
    let mut probe = [0u8; 1];
    matches!(
        recv(fd, &mut probe, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT),
        Err(nix::errno::Errno::EAGAIN)
    )
}

/// Largest Lambda response read (SPEC §4): Lambda's 6 MB plus margin. Larger is a 502.
pub const MAX_RESPONSE_BYTES: usize = 7 * 1024 * 1024;

/// Bytes a read asks for at least.
const READ_CHUNK: usize = 16 * 1024;

/// A response-reading failure before the endpoint label is attached.
pub(super) enum ReadError {
    Io(io::Error),
    Bad(&'static str),
    TooLarge,
    /// No room in the buffer budget for an answer of this many bytes (the budget's limit).
    OverBudget(usize, usize),
}

impl ReadError {
    pub(super) fn with_endpoint(self, endpoint: String) -> UpstreamError {
        match self {
            ReadError::Io(source) => UpstreamError::Io { endpoint, source },
            ReadError::Bad(why) => UpstreamError::BadResponse { endpoint, why },
            ReadError::TooLarge => UpstreamError::ResponseTooLarge {
                endpoint,
                limit: MAX_RESPONSE_BYTES,
            },
            ReadError::OverBudget(wanted, limit) => UpstreamError::OverBudget {
                endpoint,
                wanted,
                limit,
            },
        }
    }
}

/// Reads one more chunk; `Ok(0)` is EOF.
pub(super) async fn fill(stream: &mut Stream, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    let (res, b) = stream.read_append(std::mem::take(buf)).await;
    *buf = b;
    res.map_err(ReadError::Io)
}

/// Where a response's body starts and how it is framed.
#[derive(Clone, Copy, Debug)]
pub(super) struct BodyStart {
    /// Bytes of the head (the body's first bytes may follow it in the buffer).
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// The server said it closes the connection after this response.
    pub server_close: bool,
}
