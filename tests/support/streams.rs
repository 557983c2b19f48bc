//! The mock Lambda's streaming functions (`InvokeWithResponseStream`): their answers are
//! event-stream messages written by the AWS SDK's own codec (aws-smithy-eventstream), one HTTP
//! chunk each, with delays, preludes, errors, corruption and sizes as each test needs.

use super::Recorded;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use lambda_gateway::emulator::Reply;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The HTTP integration content type a streaming function's prelude is announced by.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";

/// One message with string headers, encoded by the SDK.
fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut m = Message::new(payload.to_vec());
    for (name, value) in headers {
        m = m.add_header(Header::new(
            name.to_string(),
            HeaderValue::String(value.to_string().into()),
        ));
    }
    let mut out = Vec::new();
    write_message_to(&m, &mut out).expect("the SDK encodes");
    out
}

fn event(kind: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    let headers = [
        (":event-type", kind),
        (":content-type", content_type),
        (":message-type", "event"),
    ];
    message(&headers, payload)
}

/// A `PayloadChunk` event.
pub fn chunk(bytes: &[u8]) -> Vec<u8> {
    event("PayloadChunk", "application/octet-stream", bytes)
}

/// An `InvokeComplete` event, with the function's error if any.
pub fn complete(error: Option<(&str, &str)>) -> Vec<u8> {
    complete_with_log(error, "")
}

/// An `InvokeComplete` event with the function's error if any and `LogResult` (base64).
pub fn complete_with_log(error: Option<(&str, &str)>, log_result: &str) -> Vec<u8> {
    let (code, details) = error.unwrap_or(("", ""));
    let body =
        serde_json::json!({"ErrorCode": code, "ErrorDetails": details, "LogResult": log_result});
    event(
        "InvokeComplete",
        "application/json",
        body.to_string().as_bytes(),
    )
}

/// An exception message, as Lambda sends for a service-side failure mid-stream.
pub fn exception(kind: &str, text: &str) -> Vec<u8> {
    let headers = [
        (":message-type", "exception"),
        (":exception-type", kind),
        (":content-type", "application/json"),
    ];
    message(&headers, format!(r#"{{"message":"{text}"}}"#).as_bytes())
}

/// Bytes of output each counted function has produced (asked of its iterator) so far.
fn counters() -> &'static Mutex<HashMap<String, Arc<AtomicU64>>> {
    static COUNTERS: OnceLock<Mutex<HashMap<String, Arc<AtomicU64>>>> = OnceLock::new();
    COUNTERS.get_or_init(Mutex::default)
}

/// Output bytes function `name` has handed to its connection so far (for backpressure tests;
/// a piece is produced only once the one before it was written).
pub fn produced(name: &str) -> u64 {
    counters()
        .lock()
        .expect("lock")
        .get(name)
        .map_or(0, |c| c.load(Ordering::SeqCst))
}

fn counter(name: &str) -> Arc<AtomicU64> {
    let mut all = counters().lock().expect("lock");
    let c = all.entry(name.to_string()).or_default().clone();
    c.store(0, Ordering::SeqCst);
    c
}

fn headers(content_type: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), content_type.into()),
        (
            "x-amzn-RequestId".into(),
            "5f2a0c4e-0000-4000-8000-00000000000a".into(),
        ),
        ("X-Amz-Executed-Version".into(), "$LATEST".into()),
    ]
}

fn stream(content_type: &str, pieces: Vec<(Duration, Vec<u8>)>, complete_body: bool) -> Reply {
    Reply::Stream {
        status: 200,
        headers: headers(content_type),
        pieces: Box::new(pieces.into_iter()),
        complete: complete_body,
    }
}

const NOW: Duration = Duration::ZERO;

/// Output of `mib` MiB in 64 KiB chunks of `x`, counted under `name`.
fn huge(name: &str, mib: usize) -> Reply {
    let produced = counter(name);
    let piece = chunk(&[b'x'; 64 * 1024]);
    let count = mib * 16;
    let pieces = (0..count + 1).map(move |i| {
        if i == count {
            return (NOW, complete(None));
        }
        produced.fetch_add(64 * 1024, Ordering::SeqCst);
        (NOW, piece.clone())
    });
    Reply::Stream {
        status: 200,
        headers: headers("application/octet-stream"),
        pieces: Box::new(pieces),
        complete: true,
    }
}

/// The answer of a streaming function (`stream-…`), or `None` for other names.
pub fn reply(function: &str, req: &Recorded, invoked_before: usize) -> Option<Reply> {
    if !function.starts_with("stream-") {
        return None;
    }
    let ms = Duration::from_millis;
    let prelude = |json: &str| {
        let mut p = json.as_bytes().to_vec();
        p.extend_from_slice(&[0; 8]);
        p
    };
    // `name:alias` runs the same function.
    let function = function.split(':').next().unwrap_or_default();
    Some(match function {
        // Five lines, 300 ms apart: a client must see each as it is written.
        "stream-ticks" => stream(
            "text/plain",
            (0..5)
                .map(|i| {
                    (
                        if i == 0 { NOW } else { ms(300) },
                        chunk(format!("tick {i}\n").as_bytes()),
                    )
                })
                .chain([(NOW, complete(None))])
                .collect(),
            true,
        ),
        // Server-sent events behind a prelude split over two chunks, the first event in the
        // prelude's second chunk.
        "stream-sse" => {
            let p = prelude(
                r#"{"statusCode":201,"headers":{"Content-Type":"text/event-stream","X-Fn":"yes"},"cookies":["a=1; Path=/","b=2"]}"#,
            );
            let (one, two) = p.split_at(20);
            let mut two = two.to_vec();
            two.extend_from_slice(b"data: 1\n\n");
            stream(
                HTTP_INTEGRATION,
                vec![
                    (NOW, chunk(one)),
                    (NOW, chunk(&two)),
                    (ms(200), chunk(b"data: 2\n\n")),
                    (ms(200), chunk(b"data: 3\n\n")),
                    (NOW, complete(None)),
                ],
                true,
            )
        }
        // The request payload streamed back: shows what the function received; its log's
        // tail when asked, as Lambda gives it (in InvokeComplete).
        "stream-echo" => stream(
            "application/json",
            vec![
                (NOW, chunk(&req.body)),
                (
                    NOW,
                    complete_with_log(None, super::log_tail(req).unwrap_or_default()),
                ),
            ],
            true,
        ),
        "stream-empty" => stream("text/plain", vec![(NOW, complete(None))], true),
        // A token stream: 1,000 events of 10 bytes (`token0000\n`, …) sent in one burst.
        "stream-tokens" => {
            let burst: Vec<u8> = (0..1000)
                .flat_map(|i| chunk(format!("token{i:04}\n").as_bytes()))
                .collect();
            stream(
                "text/plain",
                vec![(NOW, burst), (NOW, complete(None))],
                true,
            )
        }
        "stream-fails-midway" => stream(
            "text/plain",
            vec![
                (NOW, chunk(b"partial ")),
                (ms(50), chunk(b"output")),
                (
                    ms(50),
                    complete(Some(("Runtime.ExitError", "exited with status 1"))),
                ),
            ],
            true,
        ),
        "stream-fails-first" => stream(
            "text/plain",
            vec![(
                ms(50),
                complete(Some(("Runtime.ExitError", "exited before writing"))),
            )],
            true,
        ),
        "stream-exception" => stream(
            "text/plain",
            vec![
                (NOW, chunk(b"partial")),
                (ms(50), exception("ServiceException", "stream broke")),
            ],
            true,
        ),
        "stream-corrupt" | "stream-corrupt-first" => {
            let mut bad = chunk(b"corrupted payload");
            let at = bad.len() - 6;
            bad[at] ^= 0x20;
            let mut pieces = vec![(ms(50), bad), (NOW, complete(None))];
            if function == "stream-corrupt" {
                pieces.insert(0, (NOW, chunk(b"good bytes")));
            }
            stream("text/plain", pieces, true)
        }
        // One chunk, then the connection closes with no InvokeComplete and no last chunk.
        "stream-cut" => stream("text/plain", vec![(NOW, chunk(b"half"))], false),
        // Silent for 1.5 s before anything.
        "stream-slow-start" => stream(
            "text/plain",
            vec![(ms(1500), chunk(b"late")), (NOW, complete(None))],
            true,
        ),
        // A first chunk, then 1.5 s of silence, then more.
        "stream-stall" => stream(
            "text/plain",
            vec![
                (NOW, chunk(b"first")),
                (ms(1500), chunk(b"second")),
                (NOW, complete(None)),
            ],
            true,
        ),
        // A long run (1.2 s) of chunks 100 ms apart: no gap reaches a 1 s timeout.
        "stream-long" => stream(
            "text/plain",
            (0..12)
                .map(|i| (ms(100), chunk(format!("{i},").as_bytes())))
                .chain([(NOW, complete(None))])
                .collect(),
            true,
        ),
        // InvokeComplete at once, but the HTTP body's end 2 s later.
        "stream-slow-end" => stream(
            "text/plain",
            vec![
                (NOW, chunk(b"all of it")),
                (NOW, complete(None)),
                (ms(2000), Vec::new()),
            ],
            true,
        ),
        "stream-prelude-unended" => stream(
            HTTP_INTEGRATION,
            vec![
                (NOW, chunk(br#"{"statusCode":200}"#)),
                (NOW, complete(None)),
            ],
            true,
        ),
        "stream-prelude-bad" => stream(
            HTTP_INTEGRATION,
            vec![
                (NOW, chunk(&prelude(r#"{"statusCode":"teapot"}"#))),
                (NOW, complete(None)),
            ],
            true,
        ),
        "stream-5mib" => huge(function, 5),
        "stream-10mib" => huge(function, 10),
        "stream-50mib" | "stream-50mib-slow" | "stream-50mib-gone" => huge(function, 50),
        "stream-throttled-once" if invoked_before < 1 => lambda_gateway::emulator::api_error(
            429,
            "TooManyRequestsException",
            "err-request-id",
            &[],
        ),
        "stream-throttled-once" => stream(
            "text/plain",
            vec![(NOW, chunk(b"ran once")), (NOW, complete(None))],
            true,
        ),
        _ => return None,
    })
}
