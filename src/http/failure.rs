//! Every way a request can end in an answer the gateway makes itself (SPEC §6): each failure
//! knows its side, and [`Failure::answer`] is the one place that maps it to a status and a body.

use super::answers::{self, with_error};
use super::chunked::ChunkedError;
use super::client::UpstreamError;
use super::encode::Response;
use super::framing::FramingError;
use super::head::HeadError;

/// Where a failure comes from: what the log line blames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something the gateway refuses.
    Client,
    /// Lambda, or the way to it, failed.
    Upstream,
    /// The gateway's own configuration cannot serve the request.
    Internal,
}

impl Side {
    /// The side's name in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
        }
    }
}

/// A request the gateway answers itself.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A head refused before routing.
    #[error("{0}")]
    Head(HeadError),
    /// A chunked body refused.
    #[error("{0}")]
    Chunked(ChunkedError),
    /// The client did not send its head or body within the client timeout.
    #[error("request not received within the client timeout")]
    ClientTimeout,
    /// The body arrived slower than the minimum rate (or stalled): 408.
    #[error("request body slower than {min_rate} bytes/s")]
    SlowBody {
        /// The rate it had to keep.
        min_rate: u64,
    },
    /// The buffer budget had no room for the request in time: 503 with `Retry-After`.
    #[error("the buffer budget ({limit} bytes) had no room for {wanted} more in time")]
    Overloaded {
        /// Bytes the request needed.
        wanted: usize,
        /// The budget.
        limit: usize,
    },
    /// No route matches.
    #[error("no route matched")]
    NoRoute,
    /// The encoded payload is over Lambda's limit.
    #[error("encoded payload of at least {size} bytes exceeds the {limit}-byte limit")]
    PayloadTooLarge {
        /// Encoded size, or as much of it as was known when encoding stopped.
        size: usize,
        /// The limit that applied.
        limit: usize,
    },
    /// The exchange with Lambda failed.
    #[error("{0}")]
    Upstream(UpstreamError),
    /// The Invoke API refused the call: its status and `x-amzn-ErrorType`.
    #[error("{error_type}")]
    LambdaApi {
        /// Lambda's status.
        status: u16,
        /// Lambda's error type.
        error_type: String,
        /// Answer with Lambda's status (the plugin's `preserve_lambda_api_error_code`).
        preserve: bool,
    },
    /// A proxy-integration output that cannot be used; the text is the client's `error`.
    #[error("{0}")]
    BadProxyResponse(String),
    /// The function failed (`X-Amz-Function-Error`, or a stream's `InvokeComplete` error) where
    /// its output would have been read as a proxy response: its error document (message,
    /// stack trace) is no answer and never reaches the client.
    #[error("function error: {kind}")]
    FunctionError {
        /// `Unhandled`, `Handled`, or a stream's error code.
        kind: String,
        /// The plugin's `unhandled_status`, answered instead of 502 for an unhandled error.
        unhandled_status: Option<u16>,
    },
    /// No enabled aws-lambda plugin applies to the route.
    #[error("no enabled aws-lambda plugin applies to this route")]
    NoPlugin,
    /// The route's plugin cannot invoke (no region, no credentials).
    #[error("{0}")]
    Unusable(String),
    /// A streamed output grew past the plugin's `max_stream_bytes` (after its head was sent).
    #[error("the streamed response is larger than max_stream_bytes ({limit})")]
    StreamTooLarge {
        /// The limit.
        limit: u64,
    },
    /// An access plugin could not decide (its Redis unreachable …): Kong's 500.
    #[error("{plugin}: {why}")]
    Plugin {
        /// The plugin's name.
        plugin: &'static str,
        /// What went wrong.
        why: String,
    },
}

impl Failure {
    /// Who is at fault.
    pub fn side(&self) -> Side {
        match self {
            Failure::Head(_)
            | Failure::Chunked(_)
            | Failure::ClientTimeout
            | Failure::SlowBody { .. }
            | Failure::NoRoute
            | Failure::PayloadTooLarge { .. } => Side::Client,
            Failure::Upstream(_)
            | Failure::LambdaApi { .. }
            | Failure::BadProxyResponse(_)
            | Failure::FunctionError { .. } => Side::Upstream,
            Failure::StreamTooLarge { .. } => Side::Upstream,
            Failure::NoPlugin
            | Failure::Unusable(_)
            | Failure::Plugin { .. }
            | Failure::Overloaded { .. } => Side::Internal,
        }
    }

    /// The status it is answered with.
    pub fn status(&self) -> u16 {
        self.parts().0
    }

    /// The `kong_lambda_errors` label it counts under (`timeout`, `Unhandled`,
    /// `TooManyRequestsException` …): failures of Lambda or the way to it; `None` for the rest.
    pub fn metric_label(&self) -> Option<&str> {
        match self {
            Failure::Upstream(e) => Some(e.kind()),
            Failure::LambdaApi { error_type, .. } => Some(error_type),
            Failure::BadProxyResponse(_) => Some("bad_proxy_response"),
            Failure::FunctionError { kind, .. } => Some(kind),
            Failure::StreamTooLarge { .. } => Some("response_too_large"),
            _ => None,
        }
    }

    /// How loud its log line is: a function's own error is a warning (the gateway worked),
    /// everything else an error.
    pub fn log_level(&self) -> log::Level {
        match self {
            Failure::FunctionError { .. } => log::Level::Warn,
            _ => log::Level::Error,
        }
    }

    /// Fills `resp` with the failure's status and body; a failure after which the request
    /// stream cannot be trusted also closes the connection.
    pub fn answer(&self, resp: &mut Response) {
        let (status, message, error) = self.parts();
        with_error(resp, status, message, error);
        if let Failure::Overloaded { .. } = self {
            resp.header(b"Retry-After", b"1");
        }
        // The stream cannot be trusted past a refused head, chunked body, timeout, or a body
        // left unread.
        resp.close = matches!(
            self,
            Failure::Head(_)
                | Failure::Chunked(_)
                | Failure::ClientTimeout
                | Failure::SlowBody { .. }
                | Failure::Overloaded { .. }
        );
    }

    /// Status, message and `error` of its answer.
    fn parts(&self) -> (u16, &str, Option<&[u8]>) {
        match self {
            Failure::Head(HeadError::TooLarge | HeadError::TooManyHeaders) => {
                (431, answers::HEADERS_TOO_LARGE, None)
            }
            Failure::Head(HeadError::Framing(FramingError::TooLarge(_))) => {
                (413, answers::PAYLOAD_TOO_LARGE, None)
            }
            Failure::Head(HeadError::Expectation) => (417, answers::EXPECTATION_FAILED, None),
            Failure::Head(HeadError::Malformed(_) | HeadError::Framing(_)) => {
                (400, answers::BAD_REQUEST, None)
            }
            Failure::Chunked(ChunkedError::TooLarge) => (413, answers::PAYLOAD_TOO_LARGE, None),
            Failure::Chunked(ChunkedError::Invalid(_)) => (400, answers::BAD_REQUEST, None),
            Failure::ClientTimeout | Failure::SlowBody { .. } => {
                (408, answers::REQUEST_TIMEOUT, None)
            }
            Failure::Overloaded { .. } => (503, answers::OVERLOADED, None),
            Failure::NoRoute => (404, answers::NO_ROUTE, None),
            Failure::PayloadTooLarge { .. } => (413, answers::PAYLOAD_TOO_LARGE, None),
            Failure::Upstream(UpstreamError::Timeout(_)) => (504, answers::GATEWAY_TIMEOUT, None),
            Failure::Upstream(_) => (502, answers::BAD_GATEWAY, None),
            Failure::LambdaApi {
                status,
                error_type,
                preserve,
            } => {
                let error = Some(error_type.as_bytes());
                match status {
                    400..=599 if *preserve => (*status, super::encode::reason(*status), error),
                    429 => (429, answers::TOO_MANY_REQUESTS, error),
                    413 => (413, answers::PAYLOAD_TOO_LARGE, error),
                    _ => (502, answers::BAD_GATEWAY, error),
                }
            }
            Failure::BadProxyResponse(detail) => {
                (502, answers::BAD_GATEWAY, Some(detail.as_bytes()))
            }
            Failure::FunctionError {
                kind,
                unhandled_status,
            } => match unhandled_status {
                Some(status) if is_unhandled(kind) => (
                    *status,
                    super::encode::reason(*status),
                    Some(FUNCTION_FAILED),
                ),
                _ => (502, answers::BAD_GATEWAY, Some(FUNCTION_FAILED)),
            },
            Failure::NoPlugin => (
                502,
                answers::BAD_GATEWAY,
                Some(&b"no aws-lambda plugin on this route"[..]),
            ),
            Failure::Unusable(_) | Failure::Plugin { .. } => (500, answers::INTERNAL, None),
            Failure::StreamTooLarge { .. } => (502, answers::BAD_GATEWAY, None),
        }
    }
}

/// The `error` of a function error's answer: what happened, nothing of the function's output.
const FUNCTION_FAILED: &[u8] = b"the Lambda function failed";

/// Whether a function error is one `unhandled_status` applies to: Lambda's `Unhandled`, and a
/// stream's error codes (a streamed function's failure is never a handled one).
fn is_unhandled(kind: &str) -> bool {
    kind != "Handled"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_failures_count_under_their_kind_and_the_gateways_do_not() {
        let timeout = Failure::Upstream(UpstreamError::Timeout(std::time::Duration::from_secs(1)));
        assert_eq!(timeout.metric_label(), Some("timeout"));
        let api = Failure::LambdaApi {
            status: 429,
            error_type: "TooManyRequestsException".into(),
            preserve: false,
        };
        assert_eq!(api.metric_label(), Some("TooManyRequestsException"));
        let function = Failure::FunctionError {
            kind: "Unhandled".into(),
            unhandled_status: None,
        };
        assert_eq!(
            (function.metric_label(), function.log_level()),
            (Some("Unhandled"), log::Level::Warn)
        );
        assert_eq!(
            Failure::StreamTooLarge { limit: 1 }.metric_label(),
            Some("response_too_large")
        );
        let plugin = Failure::Plugin {
            plugin: "rate-limiting",
            why: "down".into(),
        };
        assert_eq!(
            (plugin.metric_label(), plugin.side(), plugin.log_level()),
            (None, Side::Internal, log::Level::Error)
        );
        assert_eq!(Failure::NoRoute.metric_label(), None);
    }

    fn answered(f: Failure) -> (u16, String, bool) {
        let mut r = Response::default();
        f.answer(&mut r);
        (
            r.status,
            String::from_utf8_lossy(&r.body).into_owned(),
            r.close,
        )
    }

    #[test]
    fn every_failure_has_its_spec_answer() {
        let cases = [
            (
                Failure::NoRoute,
                404,
                r#"{"message":"no Route matched with those values"}"#,
                false,
            ),
            (
                Failure::Head(HeadError::Malformed("x")),
                400,
                r#"{"message":"Bad request"}"#,
                true,
            ),
            (
                Failure::Head(HeadError::TooManyHeaders),
                431,
                r#"{"message":"Request header or cookie too large"}"#,
                true,
            ),
            (
                Failure::Chunked(ChunkedError::TooLarge),
                413,
                r#"{"message":"Payload too large"}"#,
                true,
            ),
            (
                Failure::ClientTimeout,
                408,
                r#"{"message":"Request timeout"}"#,
                true,
            ),
            (
                Failure::PayloadTooLarge { size: 2, limit: 1 },
                413,
                r#"{"message":"Payload too large"}"#,
                false,
            ),
            (
                Failure::Upstream(UpstreamError::Timeout(std::time::Duration::from_secs(1))),
                504,
                r#"{"message":"Gateway Timeout"}"#,
                false,
            ),
            (
                Failure::LambdaApi {
                    status: 429,
                    error_type: "TooManyRequestsException".into(),
                    preserve: false,
                },
                429,
                r#"{"message":"Too Many Requests","error":"TooManyRequestsException"}"#,
                false,
            ),
            (
                Failure::LambdaApi {
                    status: 404,
                    error_type: "ResourceNotFoundException".into(),
                    preserve: false,
                },
                502,
                r#"{"message":"Bad Gateway","error":"ResourceNotFoundException"}"#,
                false,
            ),
            (
                Failure::NoPlugin,
                502,
                r#"{"message":"Bad Gateway","error":"no aws-lambda plugin on this route"}"#,
                false,
            ),
            (
                Failure::Unusable("no region".into()),
                500,
                r#"{"message":"An unexpected error occurred"}"#,
                false,
            ),
            (
                Failure::Overloaded {
                    wanted: 6_000_000,
                    limit: 1 << 26,
                },
                503,
                r#"{"message":"The gateway is holding as much request and answer data as it may; retry shortly"}"#,
                true,
            ),
            (
                Failure::SlowBody { min_rate: 1024 },
                408,
                r#"{"message":"Request timeout"}"#,
                true,
            ),
            (
                Failure::Plugin {
                    plugin: "rate-limiting",
                    why: "redis unreachable".into(),
                },
                500,
                r#"{"message":"An unexpected error occurred"}"#,
                false,
            ),
        ];
        for (failure, status, body, close) in cases {
            assert_eq!(failure.status(), status);
            assert_eq!(answered(failure), (status, body.to_string(), close));
        }
    }
}
