//! One proxy error: what failed ([`Failure`]: its kind and side), where (route, function,
//! bytes already streamed) and its one log line. Every failure of the request path, a
//! plugin's, Lambda's or the gateway's own, reaches the client, the log and the metrics
//! through [`Proxy::fail`] or [`Proxy::report`]; nothing else writes a label or a log format.

use super::Proxy;
use crate::http::encode::Response;
use crate::http::failure::Failure;
use crate::upstream::invoker::Invoker;
use crate::upstream::target::InvokeTarget;

/// A request the gateway could not serve as asked.
#[derive(Debug)]
pub struct ProxyError<'a> {
    /// What failed; its side and status.
    pub failure: Failure,
    /// The route (name, else id), `-` before one matched.
    pub route: &'a str,
    /// The function, `-` when none was to be invoked.
    pub function: &'a str,
    /// More of the cause than the failure's kind says (a function's error message).
    pub detail: Option<&'a str>,
    /// Bytes of the output already streamed to the client, when it failed mid-stream (the
    /// answer's status was then sent before the failure).
    pub streamed: Option<u64>,
}

impl<'a> ProxyError<'a> {
    /// `failure` on the route and function of `target`.
    pub fn at(target: &'a InvokeTarget, failure: Failure) -> Self {
        ProxyError::on(&target.route_label, &target.config.function_name, failure)
    }

    /// `failure` on `route`, invoking `function`.
    pub fn on(route: &'a str, function: &'a str, failure: Failure) -> Self {
        ProxyError {
            failure,
            route,
            function,
            detail: None,
            streamed: None,
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> u16 {
        self.failure.status()
    }

    /// The `kong_lambda_errors` label it counts under, if it is Lambda's.
    pub fn metric_label(&self) -> Option<&str> {
        self.failure.metric_label()
    }

    /// Its log line, for an answer of `status`.
    pub fn log(&self, status: u16) {
        let detail = self.detail.map_or(String::new(), |d| format!(": {d}"));
        let streamed = self
            .streamed
            .map_or(String::new(), |n| format!(" streamed_bytes={n}"));
        log::log!(
            self.failure.log_level(),
            "route={} function={} status={status} cause=\"{}{detail}\" side={}{streamed}",
            self.route,
            self.function,
            self.failure,
            self.failure.side().as_str(),
        );
    }
}

impl<I: Invoker> Proxy<I> {
    /// Answers `error` into `resp` (its status and body), counts it and logs it.
    pub(super) fn fail(&self, resp: &mut Response, error: ProxyError<'_>) {
        error.failure.answer(resp);
        self.report(&error, resp.status);
    }

    /// Counts and logs `error`, whose answer (of `status`) is already written: a mapped
    /// error of Lambda's, or a failure after a streamed answer's head.
    pub(super) fn report(&self, error: &ProxyError<'_>, status: u16) {
        if let Some(label) = error.metric_label() {
            self.metrics.lambda_error(label);
        }
        error.log(status);
    }
}
