//! Urlencoded and multipart body arguments on arbitrary bytes: never a panic, keys are never
//! empty, the argument cap holds, and every range stays inside its buffer.
#![no_main]

use lambda_gateway::lambda::args::{ArgValue, Args, MAX_ARGS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut args = Args::default();
    args.parse_urlencoded(data);
    assert!(args.list().len() <= MAX_ARGS);
    for a in args.list() {
        assert!(!args.key(a).is_empty());
        if let ArgValue::Text(r) = &a.value {
            assert!(r.end <= args.scratch.len());
        }
    }
    // Multipart: the first line is the content type, the rest the body.
    let (ctype, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let mut args = Args::default();
    if args.parse_multipart(ctype, body) {
        for a in args.list() {
            if let ArgValue::Text(r) = &a.value {
                assert!(r.end <= args.scratch.len());
            }
        }
    }
    // JSON: accepted exactly when the body is a JSON object or array.
    let mut args = Args::default();
    let accepted = args.parse_json(data);
    // RFC 8259 validity (numbers of any size), as RawValue checks it.
    let valid = serde_json::from_slice::<&serde_json::value::RawValue>(data)
        .is_ok_and(|v| v.get().starts_with('{') || v.get().starts_with('['));
    assert_eq!(accepted, valid, "{:?}", String::from_utf8_lossy(data));
    for a in args.list() {
        if let ArgValue::Json(r) = &a.value {
            assert!(
                serde_json::from_slice::<&serde_json::value::RawValue>(&data[r.clone()]).is_ok()
            );
        }
    }
});
