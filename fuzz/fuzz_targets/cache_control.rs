//! proxy-cache's Cache-Control reading on arbitrary header values: every directive Kong's
//! plugin asks about, looked up without a panic, in time linear in the value; a number read
//! back is one the value spells.
#![no_main]

use lambda_gateway::access::proxy_cache::Directives;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 9] = [
    "no-store",
    "no-cache",
    "private",
    "max-age",
    "s-maxage",
    "max-stale",
    "min-fresh",
    "only-if-cached",
    "public",
];

fuzz_target!(|data: &[u8]| {
    let cc = Directives::of(Some(data));
    for name in NAMES {
        let _ = cc.has(name);
        if let Some(n) = cc.number(name) {
            let digits = n.to_string();
            assert!(
                data.windows(digits.len()).any(|w| w == digits.as_bytes()),
                "{n} is not in the value"
            );
        }
    }
});
