//! Streamed answers (`invoke_mode: RESPONSE_STREAM`): the head from the output's first byte
//! (past its prelude), then the output piece by piece as Lambda's event stream brings it.

use super::error::ProxyError;
use super::record::{log_tail, Facts};
use super::scratch::InvokeScratch;
use super::Proxy;
use crate::http::client::UpstreamError;
use crate::http::conn::Piece;
use crate::http::encode::Response;
use crate::http::failure::Failure;
use crate::lambda::stream_answer::{
    completion, error_before_output, has_prelude, plain_head, prelude_head, Prelude,
};
use crate::metrics::WorkerMetrics;
use crate::upstream::client::InvokeResponse;
use crate::upstream::invoker::Invoker;
use crate::upstream::streaming::{Frame, ResponseStream};
use crate::upstream::target::InvokeTarget;
use smallvec::SmallVec;
use std::ops::Range;
use std::sync::Arc;

/// How long a finished stream's answer waits for the end of Lambda's HTTP body (to pool the
/// connection) before it is closed instead.
const END_OF_BODY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// A function's output being streamed to the client, and what the log and the metrics will
/// say of its request once it ends.
pub struct StreamedAnswer {
    pub(super) output: StreamedOutput,
    pub(super) facts: Facts,
    pub(super) started: std::time::Instant,
    pub(super) status: u16,
    pub(super) head_bytes: usize,
    /// A traced request's trace, for its spans when the stream ends.
    pub(super) trace: Option<Box<super::trace::TraceFacts>>,
    /// Where the request stays counted in flight until the answer is dropped (ended, or
    /// its connection dropped at shutdown).
    pub(super) metrics: Arc<WorkerMetrics>,
}

impl Drop for StreamedAnswer {
    fn drop(&mut self) {
        self.metrics
            .requests_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The upstream half of a streamed answer.
pub(super) struct StreamedOutput {
    pub upstream: Box<ResponseStream>,
    pub target: Arc<InvokeTarget>,
    /// Output read before the answer's head was written (after the prelude, if any).
    pub first: Option<Range<usize>>,
    /// Output bytes passed on so far.
    pub passed: u64,
    /// A frame (or failure) read while gathering a piece, for the next piece.
    pub held: Option<Result<Frame, UpstreamError>>,
}

/// Most output gathered into one piece (one chunk to the client) from events already received.
const COALESCE_BYTES: usize = 64 * 1024;

/// Appends `bytes` of the output to `out`, counting them in `passed`, unless the output would
/// then exceed `limit` (`max_stream_bytes`): false, and nothing appended.
fn pass_output(out: &mut Vec<u8>, passed: &mut u64, limit: u64, bytes: &[u8]) -> bool {
    let total = *passed + bytes.len() as u64;
    if total > limit {
        return false;
    }
    *passed = total;
    out.extend_from_slice(bytes);
    true
}

impl<I: Invoker> Proxy<I> {
    /// The next piece of a streamed answer into `out`, within the plugin's timeout per
    /// piece; a failure (after the head was sent) is reported and ends the answer.
    pub(super) async fn stream_piece(
        &self,
        answer: &mut StreamedAnswer,
        out: &mut Vec<u8>,
    ) -> Piece {
        let output = &mut answer.output;
        let target = &output.target;
        let limit = target.config.max_stream_bytes;
        let status = answer.status;
        let failed = |failure: Failure, detail: Option<&str>, passed: u64| {
            let error = ProxyError {
                detail,
                streamed: Some(passed),
                ..ProxyError::at(target, failure)
            };
            self.report(&error, status);
            Piece::Failed
        };
        let over_cap = |passed: u64| failed(Failure::StreamTooLarge { limit }, None, passed);
        let timeout = target.config.timeout;
        loop {
            // Output read with the head first, then a frame held back by the last piece, then
            // the stream.
            let next = if let Some(first) = output.first.take() {
                Ok(Frame::Chunk(first))
            } else if let Some(held) = output.held.take() {
                held
            } else {
                match monoio::time::timeout(timeout, output.upstream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let failure = Failure::Upstream(UpstreamError::Timeout(timeout));
                        return failed(
                            failure,
                            Some("no more of the streamed response"),
                            output.passed,
                        );
                    }
                }
            };
            let frame = match next {
                Ok(frame) => frame,
                Err(e) => return failed(Failure::Upstream(e), None, output.passed),
            };
            match frame {
                Frame::Chunk(bytes) if bytes.is_empty() => continue,
                Frame::Chunk(bytes) => {
                    if !pass_output(out, &mut output.passed, limit, output.upstream.bytes(bytes)) {
                        return over_cap(output.passed);
                    }
                    // Chunks already received leave in this piece too: a token stream's small
                    // events would otherwise cost a write to the client each. Anything else
                    // (or a chunk past the cap) is held for the next piece, after this one is
                    // written.
                    while out.len() < COALESCE_BYTES {
                        match output.upstream.next_buffered() {
                            Ok(None) => break,
                            Ok(Some(Frame::Chunk(bytes)))
                                if output.passed + bytes.len() as u64 <= limit =>
                            {
                                pass_output(
                                    out,
                                    &mut output.passed,
                                    limit,
                                    output.upstream.bytes(bytes),
                                );
                            }
                            Ok(Some(frame)) => {
                                output.held = Some(Ok(frame));
                                break;
                            }
                            Err(e) => {
                                output.held = Some(Err(e));
                                break;
                            }
                        }
                    }
                    return Piece::Data;
                }
                Frame::Complete(json) => {
                    let done = completion(output.upstream.bytes(json));
                    if let Some(tail) = &done.log_result {
                        log_tail(
                            &target.route_label,
                            &target.config.function_name,
                            tail.as_bytes(),
                        );
                    }
                    if let Some((kind, details)) = done.error {
                        let failure = Failure::FunctionError {
                            kind,
                            unhandled_status: None,
                        };
                        return failed(failure, Some(&details), output.passed);
                    }
                    // The connection is reused once its body's end is read; Lambda sends it
                    // right after InvokeComplete, and the client's last chunk waits for it
                    // only briefly (else the connection is closed, not pooled).
                    let keepalive = target.config.keepalive;
                    let wait = timeout.min(END_OF_BODY_WAIT);
                    if let Ok(Ok(Frame::End)) =
                        monoio::time::timeout(wait, output.upstream.next()).await
                    {
                        self.invoker.release(&mut output.upstream, keepalive);
                    }
                    return Piece::End;
                }
                Frame::End => {
                    let failure = Failure::Upstream(UpstreamError::Stream {
                        endpoint: format!("{}:{}", target.endpoint.host, target.endpoint.port),
                        why: "the response stream ended without InvokeComplete".into(),
                    });
                    return failed(failure, None, output.passed);
                }
            }
        }
    }

    /// Reads a streamed output up to its first byte (past the prelude, if it has one) within
    /// the invoke's deadline, and writes the answer's head into `resp`. `None` when the
    /// output was answered whole instead: empty, or a function error before any byte.
    pub(super) async fn start_stream(
        &self,
        plugin: &Arc<InvokeTarget>,
        mut upstream: Box<ResponseStream>,
        deadline: std::time::Instant,
        resp: &mut Response,
        s: &InvokeScratch,
    ) -> Result<Option<StreamedOutput>, Failure> {
        let timed_out = || Failure::Upstream(UpstreamError::Timeout(plugin.config.timeout));
        let with_prelude = has_prelude(lambda_header(&upstream, &s.answer, b"content-type"));
        let mut prelude = Prelude::default();
        let first = loop {
            let frame = monoio::time::timeout_at(deadline.into(), upstream.next())
                .await
                .map_err(|_| timed_out())?
                .map_err(Failure::Upstream)?;
            match frame {
                Frame::Chunk(bytes) if with_prelude => {
                    let chunk = upstream.bytes(bytes.clone());
                    if let Some(at) = prelude.feed(chunk).map_err(Failure::BadProxyResponse)? {
                        let headers = lambda_headers(&upstream, &s.answer);
                        prelude_head(prelude.json(), &headers, resp)
                            .map_err(Failure::BadProxyResponse)?;
                        break bytes.start + at..bytes.end;
                    }
                }
                Frame::Chunk(bytes) if bytes.is_empty() => {}
                Frame::Chunk(bytes) => {
                    plain_head(&lambda_headers(&upstream, &s.answer), resp);
                    break bytes;
                }
                Frame::Complete(json) => {
                    let done = completion(upstream.bytes(json));
                    if let Some(tail) = &done.log_result {
                        log_tail(
                            &plugin.route_label,
                            &plugin.config.function_name,
                            tail.as_bytes(),
                        );
                    }
                    if let Some((kind, details)) = done.error {
                        error_before_output(&kind, &details, &plugin.config, resp);
                        let failure = Failure::FunctionError {
                            kind,
                            unhandled_status: plugin.config.unhandled_status,
                        };
                        let error = ProxyError {
                            detail: Some(&details),
                            ..ProxyError::at(plugin, failure)
                        };
                        self.report(&error, resp.status);
                        return Ok(None);
                    }
                    if with_prelude && !prelude.json().is_empty() {
                        let why = "the streamed response ended inside its prelude".to_string();
                        return Err(Failure::BadProxyResponse(why));
                    }
                    // An empty output: a whole (empty) answer.
                    plain_head(&lambda_headers(&upstream, &s.answer), resp);
                    let wait = plugin.config.timeout.min(END_OF_BODY_WAIT);
                    if let Ok(Ok(Frame::End)) = monoio::time::timeout(wait, upstream.next()).await {
                        self.invoker.release(&mut upstream, plugin.config.keepalive);
                    }
                    return Ok(None);
                }
                Frame::End => {
                    return Err(Failure::Upstream(UpstreamError::Stream {
                        endpoint: format!("{}:{}", plugin.endpoint.host, plugin.endpoint.port),
                        why: "the response stream ended without InvokeComplete".into(),
                    }))
                }
            }
        };
        Ok(Some(StreamedOutput {
            upstream,
            target: plugin.clone(),
            first: Some(first),
            passed: 0,
            held: None,
        }))
    }
}

/// Lambda's response headers, read from a stream's head.
fn lambda_headers<'a>(
    upstream: &'a ResponseStream,
    answer: &InvokeResponse,
) -> SmallVec<[(&'a [u8], &'a [u8]); 16]> {
    let head = upstream.head();
    answer
        .headers
        .iter()
        .map(|(n, v)| (&head[n.clone()], &head[v.clone()]))
        .collect()
}

/// One of Lambda's response headers (`name` in lower case), read from a stream's head.
fn lambda_header<'a>(
    upstream: &'a ResponseStream,
    answer: &InvokeResponse,
    name: &[u8],
) -> Option<&'a [u8]> {
    let head = upstream.head();
    answer
        .headers
        .iter()
        .find(|(n, _)| head[n.clone()].eq_ignore_ascii_case(name))
        .map(|(_, v)| &head[v.clone()])
}
