//! request-transformer's templates on arbitrary text: parsed (or refused) without a panic, in
//! time linear in the text, and rendered against fixed values into no more than the text's
//! literal parts and the values it names.
#![no_main]

use lambda_gateway::access::template::{Key, Source, Template, Values};
use libfuzzer_sys::fuzz_target;

struct Fixed;

impl Values for Fixed {
    fn lookup(&self, source: Source, key: &Key) -> Option<&[u8]> {
        match (source, key) {
            (Source::Headers, Key::Name(_)) => Some(b"header-value"),
            (Source::QueryParams, Key::Name(n)) if n.len() % 2 == 0 => Some(b"q"),
            (Source::UriCaptures, Key::Number(1)) => Some(b"capture"),
            _ => None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(template) = Template::parse(text) {
        let mut out = Vec::new();
        template.render(&Fixed, &mut out);
        // Each placeholder renders at most the longest value or a literal from the text.
        assert!(
            out.len() <= text.len() * (1 + "header-value".len()),
            "{text:?}"
        );
    }
});
