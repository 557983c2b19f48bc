//! Trace context headers on arbitrary values: every format read without a panic; a context
//! that has a trace and a span, written in every format and read back, keeps its span, its
//! sampling and (fitted to the format's sizes) its trace.
#![no_main]

use lambda_gateway::trace_context::{extract, inject, Format, Outgoing};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 11] = [
    "traceparent",
    "x-amzn-trace-id",
    "b3",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "uber-trace-id",
    "ot-tracer-traceid",
    "ot-tracer-spanid",
    "ot-tracer-sampled",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input's lines are the headers' values, in NAMES' order.
    let values: Vec<&str> = text.split('\n').collect();
    let header = |name: &str| {
        let at = NAMES.iter().position(|n| *n == name)?;
        values.get(at).copied().filter(|v| !v.is_empty())
    };
    for (_, format) in Format::ALL {
        let Some(context) = extract(format, &header) else {
            continue;
        };
        let (Some(trace_id), Some(span_id)) = (context.trace_id, context.span_id) else {
            continue;
        };
        if trace_id.iter().all(|&b| b == 0) || span_id.iter().all(|&b| b == 0) {
            continue;
        }
        let out = Outgoing {
            trace_id: trace_id.clone(),
            span_id,
            parent_id: context.parent_id,
            sampled: context.sampled.unwrap_or(false),
            debug: false,
        };
        for (_, to) in Format::ALL {
            let mut written: Vec<(&str, String)> = Vec::new();
            inject(to, &out, &mut |n, v| written.push((n, v)));
            let back = extract(to, &|name: &str| {
                written
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.as_str())
            })
            .unwrap_or_else(|| panic!("{to:?} did not read back {written:?}"));
            assert_eq!(back.span_id, Some(span_id), "{to:?}: {written:?}");
            assert_eq!(back.sampled, Some(out.sampled), "{to:?}: {written:?}");
            let got = back.trace_id.expect("a trace id");
            let common = got.len().min(trace_id.len());
            assert_eq!(
                got[got.len() - common..],
                trace_id[trace_id.len() - common..],
                "{to:?}: {written:?}"
            );
        }
    }
});
