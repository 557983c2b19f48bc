//! The seam between the request pipeline and Lambda: [`Invoker`] is what the proxy calls to
//! invoke a function. [`Upstream`] is the real one (pooled TLS connections, retries);
//! [`InMemoryLambda`] answers in the same process, so the whole pipeline (routing, plugins,
//! payload, signing, response mapping, metrics) runs in table tests and allocation counts
//! without a socket.

use super::client::{encode_request, InvokeBuffers, InvokeResponse, Upstream};
use super::streaming::ResponseStream;
use super::target::InvokeTarget;
use crate::aws::credentials::Credentials;
use crate::aws::sigv4::InvokeSigner;
use crate::aws::time::AmzDate;
use crate::http::client::{parse_head, Framing, HeadInfo, UpstreamError};
use crate::metrics::WorkerMetrics;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Invokes functions for the proxy.
// A worker is one thread: the futures never cross threads, so none needs to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Invoker {
    /// Invokes `target`'s function with `payload` (signed with `creds`). A buffered answer is
    /// read into `bufs.read` with `resp` indexing it (`Ok(None)`); a streamed one is returned
    /// open, its head read.
    async fn invoke(
        &self,
        target: &InvokeTarget,
        creds: &Credentials,
        payload: &mut Vec<u8>,
        bufs: &mut InvokeBuffers,
        resp: &mut InvokeResponse,
    ) -> Result<Option<Box<ResponseStream>>, UpstreamError>;

    /// Takes back a stream read to its end, for its connection to be reused.
    fn release(&self, stream: &mut ResponseStream, keepalive: Duration) {
        let _ = (stream, keepalive);
    }

    /// Counts retries and their budget in `metrics`.
    fn count_in(&mut self, metrics: Arc<WorkerMetrics>) {
        let _ = metrics;
    }
}

impl Invoker for Upstream {
    async fn invoke(
        &self,
        target: &InvokeTarget,
        creds: &Credentials,
        payload: &mut Vec<u8>,
        bufs: &mut InvokeBuffers,
        resp: &mut InvokeResponse,
    ) -> Result<Option<Box<ResponseStream>>, UpstreamError> {
        Upstream::invoke(self, target, creds, payload, bufs, resp).await
    }

    fn release(&self, stream: &mut ResponseStream, keepalive: Duration) {
        stream.release(&self.pool, keepalive);
    }

    fn count_in(&mut self, metrics: Arc<WorkerMetrics>) {
        self.metrics = metrics;
    }
}

/// One invoke as the in-memory Lambda sees it.
pub struct InvokeCall<'a> {
    /// The function name (or ARN) the plugin names.
    pub function: &'a str,
    /// The payload the function gets.
    pub payload: &'a [u8],
    /// The whole signed request as it would be written to Lambda: head and payload.
    pub request: &'a [u8],
}

/// What a function answers: the raw HTTP/1.1 response Lambda's API would send, written into
/// the buffer it is given (reused between calls). Use [`write_answer`] to write one.
pub type Function = dyn Fn(&InvokeCall<'_>, &mut Vec<u8>);

/// A Lambda in the same process: requests are signed and encoded as for the real one, the
/// function's answer is parsed by the same response parser.
pub struct InMemoryLambda {
    function: Box<Function>,
    signer: RefCell<InvokeSigner>,
    /// A fixed signing time, so that tests can compare signatures (now when `None`).
    pub date: Option<AmzDate>,
    /// Invokes made.
    pub calls: Cell<u64>,
}

impl InMemoryLambda {
    /// A Lambda whose every function is `function`.
    pub fn new(function: impl Fn(&InvokeCall<'_>, &mut Vec<u8>) + 'static) -> Self {
        InMemoryLambda {
            function: Box::new(function),
            signer: RefCell::new(InvokeSigner::default()),
            date: None,
            calls: Cell::new(0),
        }
    }
}

impl Invoker for InMemoryLambda {
    async fn invoke(
        &self,
        target: &InvokeTarget,
        creds: &Credentials,
        payload: &mut Vec<u8>,
        bufs: &mut InvokeBuffers,
        resp: &mut InvokeResponse,
    ) -> Result<Option<Box<ResponseStream>>, UpstreamError> {
        self.calls.set(self.calls.get() + 1);
        let date = self
            .date
            .unwrap_or_else(|| AmzDate::from_system_time(SystemTime::now()));
        let mut signer = self.signer.borrow_mut();
        encode_request(&mut signer, target, creds, payload, &date, bufs);
        let call = InvokeCall {
            function: &target.config.function_name,
            payload,
            request: &bufs.write,
        };
        bufs.read.clear();
        (self.function)(&call, &mut bufs.read);
        let bad = |why: &'static str| UpstreamError::BadResponse {
            endpoint: "in-memory".into(),
            why,
        };
        match parse_head(&bufs.read, resp) {
            Ok(Some(HeadInfo {
                len,
                framing: Framing::Length(body),
                ..
            })) if bufs.read.len() == len + body => {
                resp.head_len = len;
                resp.body = len..len + body;
                Ok(None)
            }
            Ok(Some(HeadInfo {
                len,
                framing: Framing::Empty,
                ..
            })) => {
                resp.head_len = len;
                resp.body = len..len;
                Ok(None)
            }
            Ok(_) => Err(bad(
                "an in-memory answer needs its whole body and a Content-Length",
            )),
            Err(why) => Err(bad(why)),
        }
    }
}

/// Writes a Lambda API answer: `status`, `headers`, and `body` with its `Content-Length`.
pub fn write_answer(out: &mut Vec<u8>, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    crate::json::write_u64(out, u64::from(status));
    out.extend_from_slice(b" X\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    crate::json::write_u64(out, body.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}
