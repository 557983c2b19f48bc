//! Admin API bodies (Kong's form notation, JSON, multipart) on arbitrary bytes: never a panic.
#![no_main]

use lambda_gateway::admin::body;
use lambda_gateway::schema::Kind;
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
    if let Ok((map, _)) = body::parse(Some(ctype), rest) {
        for kind in Kind::ALL {
            let mut copy = map.clone();
            body::coerce(
                &mut copy,
                kind.schema(),
                Some(&lambda_gateway::lambda::config::SCHEMA),
            );
            let _ = serde_json::to_vec(&copy);
        }
        let _ = serde_json::to_vec(&map);
    }
});
