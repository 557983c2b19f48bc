//! A raw HTTP/1.1 client: exact bytes out, the answer parsed back.

use super::gateway::Gateway;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status.
    pub status: u16,
    /// Headers as sent (name case preserved).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

/// A raw HTTP/1.1 client connection.
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to gateway");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// A client over an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write");
    }

    /// Sends a request and reads one response.
    pub fn request(&mut self, raw: &[u8]) -> Response {
        self.send_raw(raw);
        self.read_response().expect("a response")
    }

    /// Like [`Client::request`], showing the gateway's log if no response comes.
    pub fn request_or_logs(&mut self, raw: &[u8], gw: &Gateway) -> Response {
        self.send_raw(raw);
        match self.read_response() {
            Some(r) => r,
            None => {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "no response (got {:?}); gateway log:\n{}",
                    String::from_utf8_lossy(&self.buf),
                    gw.logs()
                )
            }
        }
    }

    /// Reads one response (Content-Length framed, or none for 1xx/204/304); `None` on EOF.
    pub fn read_response(&mut self) -> Option<Response> {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut slots);
            if let Ok(httparse::Status::Complete(head_len)) = r.parse(&self.buf) {
                let status = r.code.unwrap_or(0);
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < head_len + len {
                    if !fill(&mut self.stream, &mut self.buf) {
                        return None;
                    }
                }
                let body = self.buf[head_len..head_len + len].to_vec();
                self.buf.drain(..head_len + len);
                return Some(Response {
                    status,
                    headers,
                    body,
                });
            }
            if !fill(&mut self.stream, &mut self.buf) {
                return None;
            }
        }
    }

    /// True when the server closed the connection (EOF with nothing pending).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        loop {
            match self.stream.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return matches!(r, Ok(0) | Err(_)),
            }
        }
    }
}

/// Reads what the stream has into `buf`: false at EOF or on an error.
fn fill<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            // A signal delivered to the test process (the gateway children exiting) interrupts
            // a blocking read; that is no EOF.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
        }
    }
}

/// `body` in chunked framing, `piece` bytes per chunk, with the last chunk.
pub fn chunked_body(body: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 2);
    for chunk in body.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Shorthand: a GET for `target`.
pub fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
}

/// All entries of a map, for quick lookups.
pub fn header_map(r: &Response) -> HashMap<String, String> {
    r.headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect()
}
