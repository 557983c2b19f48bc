//! The upstream phase: the route's aws-lambda plugin encodes the payload, invokes the
//! function through the proxy's [`Invoker`] and maps its answer.

use super::error::ProxyError;
use super::record::log_tail;
use super::scratch::InvokeScratch;
use super::stream::StreamedOutput;
use super::trace::{InvokeFacts, Label};
use super::Proxy;
use crate::config::plan::RouteAction;
use crate::config::router::RouteMatch;
use crate::http::budget::{Reservation, SMALL_BYTES};
use crate::http::client::UpstreamError;
use crate::http::encode::Response;
use crate::http::failure::Failure;
use crate::http::large_buffers::LARGE_FROM;
use crate::http::request::Request;
use crate::lambda::event::{Caller, EventContext};
use crate::lambda::payload::PayloadError;
use crate::lambda::response::{LambdaAnswer, Outcome};
use crate::metrics::Source;
use crate::pacing::TimeSlice;
use crate::upstream::invoker::Invoker;
use smallvec::SmallVec;

/// Room for a payload's fields other than the body (the head's values, an event's context).
const PAYLOAD_FIELDS_ROOM: usize = 16 * 1024;

impl<I: Invoker> Proxy<I> {
    /// Invokes the route's function and maps its answer; says who answered.
    pub(super) async fn invoke(
        &self,
        action: &RouteAction,
        matched: &RouteMatch<'_>,
        req: &Request<'_>,
        caller: Option<&Caller<'_>>,
        resp: &mut Response,
        s: &mut InvokeScratch,
    ) -> (Source, Option<StreamedOutput>) {
        let plugin = match action {
            RouteAction::Invoke(target) => target,
            RouteAction::NoPlugin { route_label } => {
                self.fail(resp, ProxyError::on(route_label, "-", Failure::NoPlugin));
                return (Source::Error, None);
            }
            RouteAction::Unusable {
                route_label,
                function,
                why,
            } => {
                let failure = Failure::Unusable(why.clone());
                self.fail(resp, ProxyError::on(route_label, function, failure));
                return (Source::Error, None);
            }
        };
        let function = plugin.config.function_name.as_str();
        let mut pacer = TimeSlice::default();
        // What an API Gateway event says beyond the request, gathered only for one.
        let mut id = [0u8; 36];
        let mut path_params: SmallVec<[(&str, &[u8]); 4]> = SmallVec::new();
        let ctx = if plugin.config.awsgateway_compatible {
            matched.path_params(req.path(), |name, value| path_params.push((name, value)));
            EventContext {
                resource: matched.resource(),
                path_params: &path_params,
                source_ip: req.peer,
                request_id: self.request_ids.next(&mut id),
                time: std::time::SystemTime::now(),
                caller,
            }
        } else {
            EventContext::default()
        };
        // The payload's room was reserved with the body when the request was admitted; a
        // large one is built in one of the worker's large buffers, sized for the common case
        // (the body as JSON text, and the request's other fields): capacity asked for beyond
        // it would be memory held for nothing when the buffer is a recycled one.
        let expected = req.body.len() + PAYLOAD_FIELDS_ROOM;
        if expected >= LARGE_FROM && s.payload.out.capacity() < expected {
            s.payload.out = self.buffers.large.take(expected);
        }
        let encoded = s
            .payload
            .encode(&plugin.config, req, &ctx, &mut pacer)
            .await;
        if let Err(PayloadError::TooLarge { size, limit }) = encoded {
            let failure = Failure::PayloadTooLarge { size, limit };
            self.fail(resp, ProxyError::at(plugin, failure));
            return (Source::Error, None);
        }
        // Credentials are loaded, never fetched, here; only before a provider's very first
        // answer does a request wait for it (within the plugin's timeout).
        let creds = match plugin.credentials.ready(plugin.config.timeout).await {
            Ok(creds) => creds,
            Err(why) => {
                self.fail(resp, ProxyError::at(plugin, Failure::Unusable(why)));
                return (Source::Error, None);
            }
        };
        let invoked = std::time::Instant::now();
        let result = self
            .invoker
            .invoke(
                plugin,
                &creds,
                &mut s.payload.out,
                &mut s.invoke,
                &mut s.answer,
            )
            .await;
        s.proxy_time = Some(invoked.elapsed());
        if s.invoke.trace.on() {
            let mut facts = InvokeFacts::of(plugin, invoked, &s.invoke.trace);
            match &result {
                Ok(Some(_)) => {
                    facts.streamed = true;
                    facts.status = 200;
                }
                Ok(None) => {
                    let read = &s.invoke.read;
                    let headers = s.answer.headers.iter().map(|(n, v)| {
                        (
                            read.get(n.clone()).unwrap_or_default(),
                            read.get(v.clone()).unwrap_or_default(),
                        )
                    });
                    facts.answer(s.answer.status, headers);
                }
                Err(e) => facts.error = Label::of(e.kind().as_bytes()),
            }
            s.traced_invoke = Some(Box::new(facts));
        }
        // No attempt is left to resend the payload: a large one is given back before the
        // answer is mapped, so that the two are not held together.
        self.buffers.large.take_back_from(&mut s.payload.out);
        // Lambda's answer, read whole, is counted until it has been mapped: a large one
        // reserved its room before it was read (or, framed without a length, is counted now).
        let _answer = s
            .invoke
            .answer_room
            .take()
            .or_else(|| self.count_large(s.invoke.read.len()));
        let opened = match result {
            Ok(opened) => opened,
            Err(UpstreamError::OverBudget { wanted, limit, .. }) => {
                let failure = Failure::Overloaded { wanted, limit };
                self.fail(resp, ProxyError::at(plugin, failure));
                return (Source::Error, None);
            }
            Err(e) => {
                self.fail(resp, ProxyError::at(plugin, Failure::Upstream(e)));
                return (Source::Error, None);
            }
        };
        if let Some(upstream) = opened {
            let deadline = invoked + plugin.config.timeout;
            // Boxed: only streaming requests pay for its state.
            let started = Box::pin(self.start_stream(plugin, upstream, deadline, resp, s));
            return match started.await {
                Ok(streamed) => (Source::Service, streamed),
                Err(failure) => {
                    self.fail(resp, ProxyError::at(plugin, failure));
                    (Source::Error, None)
                }
            };
        }
        // Split the read buffer: headers are read-only, the body is parsed in place.
        let (head, body) = s.invoke.read.split_at_mut(s.answer.head_len);
        let body_range =
            (s.answer.body.start - s.answer.head_len)..(s.answer.body.end - s.answer.head_len);
        s.header_refs.clear();
        s.header_refs.extend(
            s.answer
                .headers
                .iter()
                .map(|(n, v)| (n.start, n.end, v.start, v.end)),
        );
        let header_pairs: smallvec::SmallVec<[(&[u8], &[u8]); 16]> = s
            .header_refs
            .iter()
            .map(|&(ns, ne, vs, ve)| (&head[ns..ne], &head[vs..ve]))
            .collect();
        if let Some((_, tail)) = header_pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"x-amz-log-result"))
        {
            log_tail(&plugin.route_label, function, tail);
        }
        let answer = LambdaAnswer {
            status: s.answer.status,
            headers: &header_pairs,
            body: &mut body[body_range],
        };
        let outcome = s.mapper.map(&plugin.config, answer, resp);
        let source = match outcome {
            Outcome::Ok => Source::Service,
            Outcome::Failed(failure) => {
                // A function's own error is still the function's answer.
                let source = match failure {
                    Failure::FunctionError { .. } => Source::Service,
                    _ => Source::Error,
                };
                self.report(&ProxyError::at(plugin, failure), resp.status);
                source
            }
        };
        (source, None)
    }

    /// Counts `bytes` that already exist, when they are many.
    fn count_large(&self, bytes: usize) -> Option<Reservation> {
        let budget = self.budget.as_ref().filter(|_| bytes > SMALL_BYTES)?;
        Some(budget.force(bytes))
    }
}
