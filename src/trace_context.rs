//! Trace context across process boundaries, in the header formats Kong's tracing reads and
//! writes (its `propagation.extract` and `propagation.inject`): W3C `traceparent`, B3 (the
//! `x-b3-*` headers, or the single `b3`), AWS X-Ray `x-amzn-trace-id`, Jaeger `uber-trace-id`
//! and OpenTracing `ot-tracer-*`. Each format's rules are Kong's
//! (`kong/observability/tracing/propagation`): what a valid id is, which sizes a trace id may
//! have in it (a 64-bit id is padded with zeros where a format wants 128 bits, a longer one
//! keeps its last bytes), how sampling is said. An invalid header is ignored, as Kong ignores
//! it (with a warning there, a `debug` line here: a client controls it).

/// A propagation format, by Kong's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `w3c`: `traceparent: 00-<trace>-<parent>-<flags>`.
    W3c,
    /// `b3`: `x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`, `x-b3-sampled`/`x-b3-flags`
    /// (the single `b3` header is read too).
    B3,
    /// `b3-single`: `b3: <trace>-<span>-<sampled>-<parent>`.
    B3Single,
    /// `aws`: `x-amzn-trace-id: Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`.
    Aws,
    /// `jaeger`: `uber-trace-id: <trace>:<span>:<parent>:<flags>`.
    Jaeger,
    /// `ot`: `ot-tracer-traceid`, `ot-tracer-spanid`, `ot-tracer-sampled`.
    Ot,
}

impl Format {
    /// Every format, by Kong's names.
    pub const ALL: [(&'static str, Format); 6] = [
        ("w3c", Format::W3c),
        ("b3", Format::B3),
        ("b3-single", Format::B3Single),
        ("aws", Format::Aws),
        ("jaeger", Format::Jaeger),
        ("ot", Format::Ot),
    ];

    /// The format Kong calls `name`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// The trace id sizes (bytes) the format carries; the first is used for another size.
    fn trace_id_sizes(self) -> &'static [usize] {
        match self {
            Format::W3c | Format::Aws => &[16],
            Format::B3 | Format::B3Single | Format::Jaeger => &[16, 8],
            Format::Ot => &[8, 16],
        }
    }
}

/// A trace context read from a request: the caller's trace and span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The trace id, as many bytes as it came with (8 or 16; Jaeger's may be shorter).
    pub trace_id: Option<Vec<u8>>,
    /// The caller's span: the parent of the spans made for this request.
    pub span_id: Option<[u8; 8]>,
    /// The caller's parent span, where the format says it (B3, Jaeger).
    pub parent_id: Option<[u8; 8]>,
    /// Whether the caller sampled the trace (`None`: not said).
    pub sampled: Option<bool>,
    /// B3's debug flag (`x-b3-flags: 1`, or `d`).
    pub debug: bool,
}

/// What a request carries on to the next hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The trace id (8 or 16 bytes; fitted to each format).
    pub trace_id: Vec<u8>,
    /// The span the next hop's work is a child of.
    pub span_id: [u8; 8],
    /// That span's parent, when known.
    pub parent_id: Option<[u8; 8]>,
    /// Whether the trace is sampled.
    pub sampled: bool,
    /// B3's debug flag.
    pub debug: bool,
}

/// Reads `format`'s headers through `header` (a lowercase name → the request's value):
/// `None` when they are absent or invalid.
pub fn extract<'h>(format: Format, header: &dyn Fn(&str) -> Option<&'h str>) -> Option<Context> {
    let context = match format {
        Format::W3c => w3c(header("traceparent")?),
        Format::B3 => b3_multi(header).or_else(|| b3_single(single_b3(header)?)),
        Format::B3Single => b3_single(single_b3(header)?),
        Format::Aws => aws(header("x-amzn-trace-id")?),
        Format::Jaeger => jaeger(header("uber-trace-id")?),
        Format::Ot => ot(header),
    };
    if context.is_none() {
        log::debug!("an invalid {format:?} trace context was ignored");
    }
    context
}

/// The headers that carry `out` in `format`, each given to `set` (a lowercase name, a value).
pub fn inject(format: Format, out: &Outgoing, set: &mut dyn FnMut(&'static str, String)) {
    let sizes = format.trace_id_sizes();
    let size = if sizes.contains(&out.trace_id.len()) {
        out.trace_id.len()
    } else {
        sizes[0]
    };
    let trace = hex(&fit(&out.trace_id, size));
    let span = hex(&out.span_id);
    let parent = out.parent_id.map(|p| hex(&p));
    match format {
        Format::W3c => {
            let flags = if out.sampled { "01" } else { "00" };
            set("traceparent", format!("00-{trace}-{span}-{flags}"));
        }
        Format::Aws => {
            let (time, unique) = trace.split_at(8);
            let sampled = if out.sampled { 1 } else { 0 };
            set(
                "x-amzn-trace-id",
                format!("Root=1-{time}-{unique};Parent={span};Sampled={sampled}"),
            );
        }
        Format::B3 => {
            set("x-b3-traceid", trace);
            set("x-b3-spanid", span);
            if let Some(parent) = parent {
                set("x-b3-parentspanid", parent);
            }
            if out.debug {
                set("x-b3-flags", "1".into());
            } else {
                set("x-b3-sampled", if out.sampled { "1" } else { "0" }.into());
            }
        }
        Format::B3Single => {
            let sampled = if out.debug {
                "d"
            } else if out.sampled {
                "1"
            } else {
                "0"
            };
            let parent = parent.map(|p| format!("-{p}")).unwrap_or_default();
            set("b3", format!("{trace}-{span}-{sampled}{parent}"));
        }
        Format::Jaeger => {
            let flags = if out.sampled { "01" } else { "00" };
            let parent = parent.unwrap_or_else(|| "0".into());
            set("uber-trace-id", format!("{trace}:{span}:{parent}:{flags}"));
        }
        Format::Ot => {
            set("ot-tracer-traceid", trace);
            set("ot-tracer-spanid", span);
            set(
                "ot-tracer-sampled",
                if out.sampled { "1" } else { "0" }.into(),
            );
        }
    }
}

/// A trace id as the 16 bytes OpenTelemetry's spans carry (a 64-bit one padded in front).
pub fn trace_id_16(id: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&fit(id, 16));
    out
}

/// `id` as `size` bytes: zeros in front of a shorter one, the last bytes of a longer one.
fn fit(id: &[u8], size: usize) -> Vec<u8> {
    if id.len() >= size {
        id[id.len() - size..].to_vec()
    } else {
        let mut out = vec![0; size - id.len()];
        out.extend_from_slice(id);
        out
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    crate::hexdigits::to_string(bytes)
}

/// Hexadecimal digits as bytes (an odd count gets a leading zero); `None` for anything else.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len().div_ceil(2));
    let mut rest = bytes;
    if bytes.len() % 2 == 1 {
        out.push(digit(bytes[0]));
        rest = &bytes[1..];
    }
    for pair in rest.chunks(2) {
        out.push(digit(pair[0]) << 4 | digit(pair[1]));
    }
    Some(out)
}

/// A 16-digit span id.
fn span_id(text: &str) -> Option<[u8; 8]> {
    if text.len() != 16 {
        return None;
    }
    from_hex(text)?.try_into().ok()
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn w3c(value: &str) -> Option<Context> {
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "00" || trace.len() != 32 || flags.len() != 2 {
        return None;
    }
    let trace_id = from_hex(trace).filter(|t| !all_zero(t))?;
    let span = span_id(parent).filter(|p| !all_zero(p))?;
    let flags = from_hex(flags)?[0];
    Some(Context {
        trace_id: Some(trace_id),
        span_id: Some(span),
        sampled: Some(flags & 1 == 1),
        ..Context::default()
    })
}

fn aws(value: &str) -> Option<Context> {
    let mut context = Context::default();
    for pair in value.split(';') {
        let (key, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, v) = (key.trim(), v.trim());
        match key {
            "Root" => {
                let mut parts = v.split('-');
                let (version, time, unique) = (parts.next()?, parts.next()?, parts.next()?);
                if parts.next().is_some() || version != "1" || time.len() != 8 || unique.len() != 24
                {
                    return None;
                }
                context.trace_id = Some(from_hex(&format!("{time}{unique}"))?);
            }
            "Parent" => context.span_id = Some(span_id(v)?),
            "Sampled" => {
                context.sampled = Some(match v {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                })
            }
            _ => {}
        }
    }
    Some(context)
}

fn sampled_word(value: Option<&str>) -> Result<Option<bool>, ()> {
    match value {
        None => Ok(None),
        Some("1" | "true") => Ok(Some(true)),
        Some("0" | "false") => Ok(Some(false)),
        Some(_) => Err(()),
    }
}

/// A 64- or 128-bit trace id in hex.
fn trace_id_64_or_128(text: &str) -> Option<Vec<u8>> {
    if text.len() != 16 && text.len() != 32 {
        return None;
    }
    from_hex(text)
}

fn b3_multi<'h>(header: &dyn Fn(&str) -> Option<&'h str>) -> Option<Context> {
    let names = [
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
    ];
    if names.iter().all(|n| header(n).is_none()) {
        return None;
    }
    let mut sampled = sampled_word(header("x-b3-sampled")).unwrap_or(None);
    let debug = header("x-b3-flags") == Some("1");
    if debug {
        sampled = Some(true);
    }
    let trace_id = match header("x-b3-traceid") {
        Some(t) => Some(trace_id_64_or_128(t)?),
        None => None,
    };
    let span = match header("x-b3-spanid") {
        Some(s) => Some(span_id(s)?),
        None => None,
    };
    let parent_id = match header("x-b3-parentspanid") {
        Some(p) => Some(span_id(p)?),
        None => None,
    };
    Some(Context {
        trace_id,
        span_id: span,
        parent_id,
        sampled,
        debug,
    })
}

/// The single `b3` header, or a `b3=` entry of `tracestate`.
fn single_b3<'h>(header: &dyn Fn(&str) -> Option<&'h str>) -> Option<&'h str> {
    header("b3").or_else(|| {
        header("tracestate")?
            .split(',')
            .find_map(|entry| entry.trim().strip_prefix("b3="))
    })
}

fn b3_single(value: &str) -> Option<Context> {
    let sampled_of = |s: &str| match s {
        "1" => Some((Some(true), false)),
        "d" => Some((Some(true), true)),
        "0" => Some((Some(false), false)),
        "" => Some((None, false)),
        _ => None,
    };
    if let Some((sampled, debug)) = sampled_of(value).filter(|_| !value.is_empty()) {
        return Some(Context {
            sampled,
            debug,
            ..Context::default()
        });
    }
    let mut parts = value.split('-');
    let trace_id = trace_id_64_or_128(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let (sampled, debug) = sampled_of(parts.next().unwrap_or(""))?;
    let parent_id = match parts.next() {
        Some(p) => Some(span_id(p)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(Context {
        trace_id: Some(trace_id),
        span_id: Some(span),
        parent_id,
        sampled,
        debug,
    })
}

fn jaeger(value: &str) -> Option<Context> {
    let mut parts = value.split(':');
    let (trace, span, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || trace.len() > 32
        || span.len() > 16
        || !(1..=2).contains(&flags.len())
    {
        return None;
    }
    let trace_id = from_hex(trace).filter(|t| !all_zero(t))?;
    let span = from_hex(span).filter(|s| !all_zero(s))?;
    let parent = from_hex(parent)?;
    let flags = from_hex(flags)?;
    let eight = |id: &[u8]| -> Option<[u8; 8]> { fit(id, 8).try_into().ok() };
    Some(Context {
        trace_id: Some(trace_id),
        span_id: eight(&span),
        parent_id: Some(eight(&parent)?).filter(|p| !all_zero(p)),
        sampled: Some(flags.last().is_some_and(|f| f & 1 == 1)),
        debug: false,
    })
}

fn ot<'h>(header: &dyn Fn(&str) -> Option<&'h str>) -> Option<Context> {
    let names = ["ot-tracer-traceid", "ot-tracer-spanid", "ot-tracer-sampled"];
    if names.iter().all(|n| header(n).is_none()) {
        return None;
    }
    let sampled = sampled_word(header("ot-tracer-sampled")).unwrap_or(None);
    let trace_id = header("ot-tracer-traceid").map(trace_id_64_or_128);
    let span = header("ot-tracer-spanid").map(span_id);
    // An invalid id drops both ids, keeping what sampling said (Kong's rule).
    let (trace_id, span) = match (trace_id, span) {
        (Some(Some(t)), Some(Some(s))) => (Some(t), Some(s)),
        (Some(Some(t)), None) => (Some(t), None),
        _ => (None, None),
    };
    Some(Context {
        trace_id,
        span_id: span,
        sampled,
        ..Context::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: Format, headers: &[(&str, &str)]) -> Option<Context> {
        extract(format, &|name| {
            headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        })
    }

    fn write(format: Format, out: &Outgoing) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        inject(format, out, &mut |n, v| headers.push((n.to_string(), v)));
        headers
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn w3c_as_the_spec_and_kong_read_it() {
        let c = read(
            Format::W3c,
            &[("traceparent", &format!("00-{TRACE}-{SPAN}-01"))],
        )
        .expect("valid");
        assert_eq!(hex(c.trace_id.as_deref().expect("trace")), TRACE);
        assert_eq!(hex(&c.span_id.expect("span")), SPAN);
        assert_eq!(c.sampled, Some(true));
        for bad in [
            format!("01-{TRACE}-{SPAN}-01"),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{TRACE}-{SPAN}-1"),
            format!("00-{TRACE}-{SPAN}"),
            format!("00-{TRACE}x-{SPAN}-01"),
        ] {
            assert_eq!(read(Format::W3c, &[("traceparent", &bad)]), None, "{bad}");
        }
        assert_eq!(read(Format::W3c, &[]), None);
    }

    #[test]
    fn aws_x_ray_headers_both_ways() {
        let value = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let c = read(Format::Aws, &[("x-amzn-trace-id", value)]).expect("valid");
        assert_eq!(
            hex(c.trace_id.as_deref().expect("trace")),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(hex(&c.span_id.expect("span")), "53995c3f42cd8ad8");
        assert_eq!(c.sampled, Some(true));
        let out = Outgoing {
            trace_id: c.trace_id.expect("trace"),
            span_id: [1, 2, 3, 4, 5, 6, 7, 8],
            parent_id: None,
            sampled: true,
            debug: false,
        };
        assert_eq!(
            write(Format::Aws, &out),
            [(
                "x-amzn-trace-id".to_string(),
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0102030405060708;Sampled=1"
                    .to_string()
            )]
        );
        for bad in [
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e98-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=yes",
        ] {
            assert_eq!(
                read(Format::Aws, &[("x-amzn-trace-id", bad)]),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn b3_in_several_headers_or_one() {
        let c = read(
            Format::B3,
            &[
                ("x-b3-traceid", "a3ce929d0e0e4736"),
                ("x-b3-spanid", SPAN),
                ("x-b3-parentspanid", "0000000000000001"),
                ("x-b3-sampled", "true"),
            ],
        )
        .expect("valid");
        assert_eq!(
            c.trace_id.as_deref().map(hex).as_deref(),
            Some("a3ce929d0e0e4736")
        );
        assert_eq!(c.sampled, Some(true));
        assert_eq!(c.parent_id, Some([0, 0, 0, 0, 0, 0, 0, 1]));
        let single = read(Format::B3, &[("b3", &format!("{TRACE}-{SPAN}-d"))]).expect("valid");
        assert!(single.debug && single.sampled == Some(true));
        let state = read(
            Format::B3Single,
            &[("tracestate", &format!("x=1, b3={TRACE}-{SPAN}"))],
        );
        assert_eq!(
            state.and_then(|c| c.span_id).map(|s| hex(&s)).as_deref(),
            Some(SPAN)
        );
        assert_eq!(
            read(Format::B3Single, &[("b3", "0")])
                .expect("valid")
                .sampled,
            Some(false)
        );
        assert_eq!(read(Format::B3Single, &[("b3", "abc-def")]), None);
        assert_eq!(read(Format::B3, &[("x-b3-traceid", "xyz")]), None);
        // A 64-bit id stays 64 bits in B3, and is padded to 128 in W3C.
        let out = Outgoing {
            trace_id: from_hex("a3ce929d0e0e4736").expect("hex"),
            span_id: [0xab; 8],
            parent_id: Some([1; 8]),
            sampled: false,
            debug: false,
        };
        assert_eq!(
            write(Format::B3Single, &out),
            [(
                "b3".to_string(),
                "a3ce929d0e0e4736-abababababababab-0-0101010101010101".to_string()
            )]
        );
        assert_eq!(
            write(Format::W3c, &out),
            [(
                "traceparent".to_string(),
                "00-0000000000000000a3ce929d0e0e4736-abababababababab-00".to_string()
            )]
        );
        let multi = write(
            Format::B3,
            &Outgoing {
                debug: true,
                ..out.clone()
            },
        );
        assert!(
            multi.contains(&("x-b3-flags".to_string(), "1".to_string())),
            "{multi:?}"
        );
        assert!(!multi.iter().any(|(n, _)| n == "x-b3-sampled"), "{multi:?}");
    }

    #[test]
    fn jaeger_and_ot() {
        let c = read(
            Format::Jaeger,
            &[("uber-trace-id", &format!("{TRACE}:{SPAN}:0:1"))],
        )
        .expect("valid");
        assert_eq!((c.sampled, c.parent_id), (Some(true), None));
        let short = read(Format::Jaeger, &[("uber-trace-id", "abc:def:0:00")]).expect("short ids");
        assert_eq!(short.trace_id, Some(vec![0x0a, 0xbc]));
        assert_eq!(short.span_id, Some([0, 0, 0, 0, 0, 0, 0x0d, 0xef]));
        for bad in ["0:1:0:1", &format!("{TRACE}:{SPAN}:0:123"), "x:y:z:1"] {
            assert_eq!(
                read(Format::Jaeger, &[("uber-trace-id", bad)]),
                None,
                "{bad}"
            );
        }
        let ot_ctx = read(
            Format::Ot,
            &[
                ("ot-tracer-traceid", TRACE),
                ("ot-tracer-spanid", SPAN),
                ("ot-tracer-sampled", "1"),
            ],
        )
        .expect("valid");
        assert_eq!(hex(&ot_ctx.span_id.expect("span")), SPAN);
        let bad_span = read(
            Format::Ot,
            &[
                ("ot-tracer-traceid", TRACE),
                ("ot-tracer-spanid", "12"),
                ("ot-tracer-sampled", "0"),
            ],
        )
        .expect("sampling kept");
        assert_eq!(
            (bad_span.trace_id, bad_span.span_id, bad_span.sampled),
            (None, None, Some(false))
        );
        let out = Outgoing {
            trace_id: from_hex(TRACE).expect("hex"),
            span_id: [2; 8],
            parent_id: None,
            sampled: true,
            debug: false,
        };
        assert_eq!(
            write(Format::Jaeger, &out),
            [(
                "uber-trace-id".to_string(),
                format!("{TRACE}:0202020202020202:0:01")
            )]
        );
        assert_eq!(
            write(Format::Ot, &out)[0],
            ("ot-tracer-traceid".to_string(), TRACE.to_string())
        );
    }

    #[test]
    fn names_are_kongs() {
        for (name, format) in Format::ALL {
            assert_eq!(Format::from_name(name), Some(format));
        }
        assert_eq!(Format::from_name("gcp"), None);
    }
}
