//! One upstream connection: plain TCP or TLS, with ownership-passing reads and writes.

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
