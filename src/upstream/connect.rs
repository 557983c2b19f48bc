//! Opening a connection to an endpoint: TCP (through a forward proxy's `CONNECT` tunnel when
//! the endpoint has one), then TLS when the endpoint wants it. TLS runs end to end inside the
//! tunnel: the proxy sees only the host name and port it is asked to connect to.

use super::stream::{raw_fd, Stream};
use crate::aws::endpoint::{Endpoint, ForwardProxy};
use crate::http::client::UpstreamError;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::pki_types::ServerName;
use std::io;
use std::os::fd::RawFd;

/// Largest `CONNECT` answer head read from a proxy.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// A new connection to `ep`, and its socket (for the idle-liveness probe).
pub async fn open(
    ep: &Endpoint,
    tls: &monoio_rustls::TlsConnector,
) -> Result<(Stream, RawFd), UpstreamError> {
    let label = || format!("{}:{}", ep.host, ep.port);
    let tcp = match &ep.proxy {
        None => TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|source| UpstreamError::Connect {
                endpoint: label(),
                source,
            })?,
        Some(proxy) => tunnel(proxy, ep).await?,
    };
    let _ = tcp.set_nodelay(true);
    let fd = raw_fd(&tcp);
    if !ep.tls {
        return Ok((Stream::Plain(tcp), fd));
    }
    let name = ServerName::try_from(ep.host.clone()).map_err(|e| UpstreamError::Tls {
        endpoint: label(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    })?;
    let stream = tls
        .connect(name, tcp)
        .await
        .map_err(|e| UpstreamError::Tls {
            endpoint: label(),
            source: e.into(),
        })?;
    Ok((Stream::Tls(Box::new(stream)), fd))
}

/// A TCP connection to `ep` through `proxy`: `CONNECT host:port`, answered 2xx.
async fn tunnel(proxy: &ForwardProxy, ep: &Endpoint) -> Result<TcpStream, UpstreamError> {
    let target = if ep.host.contains(':') {
        format!("[{}]:{}", ep.host, ep.port)
    } else {
        format!("{}:{}", ep.host, ep.port)
    };
    let refused = |why: String| UpstreamError::Proxy {
        proxy: proxy.to_string(),
        endpoint: target.clone(),
        why,
    };
    let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|source| UpstreamError::Connect {
            endpoint: format!("{proxy} (forward proxy)"),
            source,
        })?;
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.authorization {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let (res, _) = tcp.write_all(head.into_bytes()).await;
    res.map_err(|e| refused(format!("cannot send CONNECT: {e}")))?;
    // Neither TLS nor HTTP/1 lets the far end speak first, so whatever arrives before the
    // tunnel is used is the proxy's answer; bytes beyond its head would be a broken proxy.
    let mut answer: Vec<u8> = Vec::with_capacity(512);
    let head_len = loop {
        if let Some(at) = memchr::memmem::find(&answer, b"\r\n\r\n") {
            break at + 4;
        }
        if answer.len() >= MAX_PROXY_HEAD {
            return Err(refused("CONNECT answer head too large".into()));
        }
        answer.reserve(512);
        let len = answer.len();
        let cap = answer.capacity();
        let (res, slice) = tcp
            .read(monoio::buf::IoBufMut::slice_mut(answer, len..cap))
            .await;
        answer = slice.into_inner();
        match res {
            Ok(0) => {
                return Err(refused(
                    "closed the connection before answering CONNECT".into(),
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(refused(format!("error reading the CONNECT answer: {e}"))),
        }
    };
    let status_line = answer
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    if !status_line.starts_with("HTTP/1.") {
        return Err(refused(format!("not an HTTP answer: {status_line:?}")));
    }
    match status {
        Some(200..=299) if answer.len() > head_len => Err(refused(
            "sent bytes after its CONNECT answer, before the tunnel was used".into(),
        )),
        Some(200..=299) => Ok(tcp),
        Some(407) => Err(refused(format!(
            "{status_line} (its credentials in proxy_url are {})",
            if proxy.authorization.is_some() {
                "wrong"
            } else {
                "missing"
            }
        ))),
        _ => Err(refused(status_line)),
    }
}
