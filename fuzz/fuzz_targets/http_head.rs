//! Request head parsing, the framing decision and chunked decoding, on arbitrary bytes, whole
//! and split at an arbitrary point: never a panic, and the split read agrees with the whole one.
#![no_main]

use lambda_gateway::http::chunked::ChunkedDecoder;
use lambda_gateway::http::framing::BodyFraming;
use lambda_gateway::http::head::{self, RequestHead};
use lambda_gateway::http::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        ..Limits::default()
    };
    let mut whole = RequestHead::default();
    let result = head::parse(data, &limits, &mut whole);

    // Fed as a prefix first, a complete head must give the same answer as when fed whole.
    let cut = (split as usize * data.len()) / 256;
    let mut part = RequestHead::default();
    if let Ok(true) = head::parse(&data[..cut], &limits, &mut part) {
        assert!(part.len <= cut);
        assert_eq!(head::parse(data, &limits, &mut whole), Ok(true));
        assert_eq!(part.len, whole.len);
    }

    if let Ok(true) = result {
        assert!(whole.len <= data.len());
        if whole.framing == BodyFraming::Chunked {
            let body = &data[whole.len..];
            let mut one = Vec::new();
            let r1 = ChunkedDecoder::new(limits.max_body_bytes).decode(body, &mut one);
            // The same body in two reads decodes to the same bytes.
            let at = cut.min(body.len());
            let mut dec = ChunkedDecoder::new(limits.max_body_bytes);
            let mut two = Vec::new();
            let r2 = dec.decode(&body[..at], &mut two).and_then(|used| {
                if dec.is_done() {
                    Ok(used)
                } else {
                    dec.decode(&body[at..], &mut two).map(|u| u + at)
                }
            });
            if let (Ok(a), Ok(b)) = (r1, r2) {
                assert_eq!(one, two);
                assert_eq!(a, b);
            }
        }
    }
});
