//! The declarative config on arbitrary text: never a panic; an accepted config's canonical
//! document is accepted again and gives the same document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = lambda_gateway::config::parse(text) {
        let doc = cfg.to_document();
        let again =
            lambda_gateway::config::from_document(&doc).expect("the canonical document is valid");
        assert_eq!(again.to_document(), doc);
    }
});
