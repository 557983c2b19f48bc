//! Admin API bodies (Kong's form notation, JSON, multipart) on arbitrary bytes: never a panic.
#![no_main]

use lambda_gateway::admin::body::{self, Shape};
use libfuzzer_sys::fuzz_target;

const TYPES: [&[u8]; 3] = [
    b"application/x-www-form-urlencoded",
    b"application/json",
    b"multipart/form-data; boundary=B",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ctype = TYPES[(sel as usize) % TYPES.len()];
    if let Ok((mut map, _)) = body::parse(Some(ctype), rest) {
        body::coerce(
            &mut map,
            &[
                ("port", Shape::Integer),
                ("paths", Shape::TextArray),
                ("enabled", Shape::Boolean),
                ("headers", Shape::HeaderMap),
            ],
            &[("timeout", Shape::Integer)],
        );
        let _ = serde_json::to_vec(&map);
    }
});
