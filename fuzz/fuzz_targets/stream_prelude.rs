//! A streamed output's HTTP integration prelude (`lambda::stream_answer`) on arbitrary bytes
//! fed in data-chosen pieces: never a panic; the prelude ends at the first eight NUL bytes
//! whatever the split (or is refused past its cap), its head is built or refused; and
//! `InvokeComplete`'s JSON is read.
#![no_main]

use lambda_gateway::http::encode::Response;
use lambda_gateway::lambda::stream_answer::{
    completion, prelude_head, Prelude, HTTP_INTEGRATION, MAX_PRELUDE,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, output)) = data.split_first() else {
        return;
    };
    let expected = output.windows(8).position(|w| w == [0; 8]);
    let mut prelude = Prelude::default();
    let mut fed = 0;
    let mut found = None;
    for piece in output.chunks(step as usize + 1) {
        match prelude.feed(piece) {
            Ok(Some(at)) => {
                found = Some(fed + at);
                break;
            }
            Ok(None) => fed += piece.len(),
            Err(_) => {
                assert!(expected.is_none_or(|end| end > MAX_PRELUDE));
                return;
            }
        }
    }
    match (found, expected) {
        (Some(body), Some(end)) => {
            assert_eq!(body, end + 8);
            assert_eq!(prelude.json(), &output[..end]);
            let lambda: &[(&[u8], &[u8])] = &[(b"Content-Type", HTTP_INTEGRATION)];
            let mut resp = Response::default();
            if prelude_head(prelude.json(), lambda, &mut resp).is_ok() {
                assert!((100..=599).contains(&resp.status));
            }
        }
        (None, None) => {}
        other => panic!("the prelude's end was {other:?}"),
    }
    let _ = completion(output);
});
