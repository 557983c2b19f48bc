//! One-shot HTTP requests to the AWS endpoints credentials come from (STS, the instance
//! metadata service, the container credentials endpoint): the invoke client's connection
//! opening, TLS and response framing, one request per connection. Off the hot path.

use super::client::{read_response, InvokeBuffers, InvokeResponse};
use crate::aws::endpoint::Endpoint;
use crate::http::client::UpstreamError;
use std::time::Duration;

/// A complete response.
#[derive(Debug)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// Headers as (name, value), in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Fetched {
    /// First value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, for error messages: at most 300 bytes of it, lossily, on one line
    /// (line breaks and other control characters become spaces, so a log line stays one line).
    pub fn body_excerpt(&self) -> String {
        let end = self.body.len().min(300);
        String::from_utf8_lossy(&self.body[..end])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string()
    }
}

/// What to send.
pub struct FetchRequest<'a> {
    /// `GET`, `PUT`, `POST`.
    pub method: &'a str,
    /// Path and query, after the endpoint's own path prefix.
    pub path: &'a str,
    /// Headers besides `Host`, `Content-Length` and `Connection`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

/// Sends `req` to `endpoint` on a new connection and reads the whole response, within `limit`.
pub async fn fetch(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    req: &FetchRequest<'_>,
    limit: Duration,
) -> Result<Fetched, UpstreamError> {
    match monoio::time::timeout(limit, exchange(tls, endpoint, req)).await {
        Ok(result) => result,
        Err(_) => Err(UpstreamError::Timeout(limit)),
    }
}

async fn exchange(
    tls: &monoio_rustls::TlsConnector,
    endpoint: &Endpoint,
    req: &FetchRequest<'_>,
) -> Result<Fetched, UpstreamError> {
    let label = || format!("{}:{}", endpoint.host, endpoint.port);
    let (mut stream, _) = super::connect::open(endpoint, tls).await?;
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}\r\n",
        req.method,
        endpoint.path_prefix,
        req.path,
        endpoint.host_header()
    );
    for (name, value) in req.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        req.body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(req.body);
    let (res, _) = stream.write_all(bytes).await;
    res.map_err(|source| UpstreamError::Io {
        endpoint: label(),
        source,
    })?;
    let mut bufs = InvokeBuffers::default();
    let mut resp = InvokeResponse::default();
    read_response(&mut stream, &mut bufs, &mut resp)
        .await
        .map_err(|(e, _)| e.with_endpoint(label()))?;
    let text =
        |r: &std::ops::Range<usize>| String::from_utf8_lossy(&bufs.read[r.clone()]).into_owned();
    Ok(Fetched {
        status: resp.status,
        headers: resp
            .headers
            .iter()
            .map(|(n, v)| (text(n), text(v)))
            .collect(),
        body: bufs.read[resp.body.clone()].to_vec(),
    })
}
