//! HTTP/2 frames from a client, after its preface, through the gateway's h2 server settings,
//! and every stream it opens laid out as the phases read a request: never a panic, and a
//! stream that lays out reads back consistently.
#![no_main]

use bytes::Bytes;
use lambda_gateway::http::head::RequestHead;
use lambda_gateway::http::request::Request;
use lambda_gateway::http::Limits;
use lambda_gateway::http2;
use libfuzzer_sys::fuzz_target;
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client's side: the preface and an empty SETTINGS frame, then the input, then nothing
/// more (pending, as an open connection whose client is quiet: at the end of the input, h2
/// would drop the streams not yet accepted); what the server writes is dropped.
struct Replay {
    input: Vec<u8>,
    read: usize,
    drained: Rc<Cell<bool>>,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf.remaining().min(self.input.len() - self.read);
        if n == 0 {
            self.drained.set(true);
            return Poll::Pending;
        }
        let start = self.read;
        buf.put_slice(&self.input[start..start + n]);
        self.read += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `f` until it ends, or is pending once the input is drained (nothing can wake it
/// then), or `polls` polls have passed.
fn run<F: Future>(f: F, drained: &Cell<bool>, polls: usize) {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..polls {
        if f.as_mut().poll(&mut cx).is_ready() || drained.get() {
            return;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    input.extend_from_slice(data);
    let limits = Limits::default();
    let polls = 64 + 4 * data.len();
    let drained = Rc::new(Cell::new(false));
    let io = Replay {
        input,
        read: 0,
        drained: drained.clone(),
    };
    let serve = async {
        let Ok(mut conn) = http2::builder(&limits).handshake::<_, Bytes>(io).await else {
            return;
        };
        while let Some(Ok((request, _respond))) = conn.accept().await {
            let (parts, _body) = request.into_parts();
            let (mut buf, mut head) = (Vec::new(), RequestHead::default());
            if http2::stream_head(&parts, 0, &limits, &mut buf, &mut head).is_err() {
                continue;
            }
            assert!(buf.len() <= limits.max_head_bytes + 64);
            let req = Request {
                buf: &buf,
                head: &head,
                body: b"",
                peer: None,
                secure: true,
            };
            assert_eq!(req.method(), parts.method.as_str().as_bytes());
            assert_eq!(req.protocol(), b"HTTP/2.0");
            assert!(req.headers().count() <= limits.max_headers + 1);
            let _ = (req.path(), req.query(), req.host(), req.content_type());
        }
    };
    run(serve, &drained, polls);
});
