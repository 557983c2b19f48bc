//! The event-stream decoder on arbitrary bytes, whole and fed in two pieces: never a panic,
//! and the same messages, the same bytes used and the same error either way.
#![no_main]

use lambda_gateway::aws::event_stream::{decode, Event, FrameError, Message};
use libfuzzer_sys::fuzz_target;

/// Every message at the front of `buf` (the events' payload lengths) and where decoding
/// stopped: (events, bytes used, error).
fn walk(buf: &[u8]) -> (Vec<usize>, usize, Option<FrameError>) {
    let mut at = 0;
    let mut seen = Vec::new();
    loop {
        match decode(&buf[at..]) {
            Ok(Some((m, used))) => {
                assert!(used >= 16 && used <= buf.len() - at);
                seen.push(describe(&m));
                at += used;
            }
            Ok(None) => return (seen, at, None),
            Err(e) => return (seen, at, Some(e)),
        }
    }
}

fn describe(m: &Message<'_>) -> usize {
    let _ = m.headers().count();
    match m.event() {
        Event::PayloadChunk(p) | Event::InvokeComplete(p) | Event::Exception(_, p) => p.len(),
        Event::Error(c, e) => c.len() + e.len(),
        Event::Other(t) => t.len(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (whole, used, error) = walk(data);
    // Fed in two pieces at a data-chosen split: the first piece's messages, then the rest.
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let (first, first_used, first_error) = walk(&data[..split]);
    assert!(first.len() <= whole.len());
    assert_eq!(first[..], whole[..first.len()]);
    if first_error.is_none() {
        let (second, second_used, second_error) = walk(&data[first_used..]);
        let mut joined = first;
        joined.extend(second);
        assert_eq!(joined, whole);
        assert_eq!(first_used + second_used, used);
        assert_eq!(second_error, error);
    }
});
