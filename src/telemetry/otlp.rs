//! OTLP's trace export request (`opentelemetry/proto/collector/trace/v1`), the messages and
//! fields the gateway sends, declared for prost with the tags of the OpenTelemetry project's
//! `.proto` files (fields left out are ones it never sets; a receiver reads them as unset).
//! Encoding is prost's; the tests decode with the project's own definitions
//! (`tests/tracing.rs`, Python's `opentelemetry-proto`).
//!
//! Text fields are `Bytes` (a proto `string` and `bytes` are the same on the wire; what is
//! put in them is checked to be UTF-8): keys and fixed values point at static text, a span's
//! text is copied once and every value is a slice of it, so an export allocates little beyond
//! prost's vectors of messages.

use super::spans::{Batch, Value as SpanValue};
use super::Target;
use bytes::{Bytes, BytesMut};

/// `ExportTraceServiceRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceRequest {
    /// Spans by resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `ResourceSpans`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    /// The gateway as a resource.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Spans by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// `service.name` and the configured `resource_attributes`.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeSpans`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    /// Who made the spans.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The spans.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    /// Its name.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// Its version.
    #[prost(bytes = "bytes", tag = "2")]
    pub version: Bytes,
}

/// `Span`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// 16 bytes.
    #[prost(bytes = "bytes", tag = "1")]
    pub trace_id: Bytes,
    /// 8 bytes.
    #[prost(bytes = "bytes", tag = "2")]
    pub span_id: Bytes,
    /// 8 bytes, or empty for a root span.
    #[prost(bytes = "bytes", tag = "4")]
    pub parent_span_id: Bytes,
    /// Its name (a proto `string`).
    #[prost(bytes = "bytes", tag = "5")]
    pub name: Bytes,
    /// `SpanKind`.
    #[prost(int32, tag = "6")]
    pub kind: i32,
    /// Start, nanoseconds since the Unix epoch.
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    /// End, nanoseconds since the Unix epoch.
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    /// Its attributes.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// Its events.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
    /// Unset, or an error with its kind.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
}

/// `Span.Event`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// When.
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// What (a proto `string`).
    #[prost(bytes = "bytes", tag = "2")]
    pub name: Bytes,
    /// Its attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

/// `Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// Why (a proto `string`).
    #[prost(bytes = "bytes", tag = "2")]
    pub message: Bytes,
    /// `STATUS_CODE_ERROR` is 2.
    #[prost(int32, tag = "3")]
    pub code: i32,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key (a proto `string`).
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// The value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// One of its kinds.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4")]
    pub value: Option<Value>,
}

/// `AnyValue.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// `string_value` (a proto `string`).
    #[prost(bytes = "bytes", tag = "1")]
    StringValue(Bytes),
    /// `bool_value`.
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    /// `int_value`.
    #[prost(int64, tag = "3")]
    IntValue(i64),
    /// `double_value`.
    #[prost(double, tag = "4")]
    DoubleValue(f64),
}

/// `STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;

/// A text attribute.
pub fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Some(AnyValue {
            value: Some(Value::StringValue(Bytes::copy_from_slice(value.as_bytes()))),
        }),
    }
}

/// Static text as a field's value.
fn fixed(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

/// The spans of `batch` at `indexes` (all for `target`) as OTLP spans.
pub fn spans_of(batch: &Batch, indexes: impl Iterator<Item = usize>) -> Vec<Span> {
    indexes
        .filter_map(|i| batch.spans.get(i))
        .map(|s| span_of(batch, s))
        .collect()
}

/// One span. Its text (written back to back when it was recorded) and its ids are copied
/// into one buffer of its own, and every value is a slice of it: a span waiting for its export
/// holds its own bytes only, never the rest of the batch it came in.
fn span_of(batch: &Batch, s: &super::spans::SpanRecord) -> Span {
    let attributes_of = |range: &std::ops::Range<u32>| {
        batch
            .attributes
            .get(range.start as usize..range.end as usize)
            .unwrap_or_default()
    };
    let events = batch
        .events
        .get(s.events.start as usize..s.events.end as usize)
        .unwrap_or_default();
    let texts = attributes_of(&s.attributes)
        .iter()
        .chain(events.iter().flat_map(|e| attributes_of(&e.attributes)))
        .filter_map(|a| match &a.value {
            SpanValue::Text(r) => Some(r.clone()),
            _ => None,
        })
        .chain([s.name.clone()])
        .chain(s.error.clone());
    let (lo, hi) = texts.fold((u32::MAX, 0), |(lo, hi), r| {
        (lo.min(r.start), hi.max(r.end))
    });
    let region = batch.text.get(lo as usize..hi as usize).unwrap_or_default();
    let mut own = BytesMut::with_capacity(region.len() + 32);
    own.extend_from_slice(region);
    let ids_at = own.len();
    own.extend_from_slice(&s.trace_id);
    own.extend_from_slice(&s.span_id);
    own.extend_from_slice(&s.parent_id.unwrap_or_default());
    let own = own.freeze();
    // A proto `string` must be UTF-8: text that is not (a path's raw bytes) is made so.
    let text = |range: &std::ops::Range<u32>| -> Bytes {
        let start = (range.start.saturating_sub(lo) as usize).min(ids_at);
        let end = (range.end.saturating_sub(lo) as usize).clamp(start, ids_at);
        let slice = own.slice(start..end);
        match std::str::from_utf8(&slice) {
            Ok(_) => slice,
            Err(_) => Bytes::from(String::from_utf8_lossy(&slice).into_owned()),
        }
    };
    let attributes = |range: &std::ops::Range<u32>| -> Vec<KeyValue> {
        attributes_of(range)
            .iter()
            .map(|a| KeyValue {
                key: fixed(a.key),
                value: Some(AnyValue {
                    value: Some(match &a.value {
                        SpanValue::Text(r) => Value::StringValue(text(r)),
                        SpanValue::Static(s) => Value::StringValue(fixed(s)),
                        SpanValue::Int(i) => Value::IntValue(*i),
                        SpanValue::Double(d) => Value::DoubleValue(*d),
                        SpanValue::Bool(b) => Value::BoolValue(*b),
                    }),
                }),
            })
            .collect()
    };
    Span {
        trace_id: own.slice(ids_at..ids_at + 16),
        span_id: own.slice(ids_at + 16..ids_at + 24),
        parent_span_id: match s.parent_id {
            Some(_) => own.slice(ids_at + 24..ids_at + 32),
            None => Bytes::new(),
        },
        name: text(&s.name),
        kind: s.kind as i32,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.end_ns,
        attributes: attributes(&s.attributes),
        events: events
            .iter()
            .map(|e| Event {
                time_unix_nano: e.time_ns,
                name: fixed(e.name),
                attributes: attributes(&e.attributes),
            })
            .collect(),
        status: s.error.as_ref().map(|kind| Status {
            message: text(kind),
            code: STATUS_ERROR,
        }),
    }
}

/// The export request for `spans`, all `target`'s: the target's resource, the gateway as the
/// instrumentation scope.
pub fn encode(target: &Target, spans: Vec<Span>) -> Vec<u8> {
    use prost::Message;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: target.resource.iter().map(|(k, v)| text(k, v)).collect(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: fixed("lambda-gateway"),
                    version: fixed(env!("CARGO_PKG_VERSION")),
                }),
                spans,
            }],
        }],
    };
    request.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::spans::{Kind, SpanRecord};
    use prost::Message;
    use std::sync::Arc;

    #[test]
    fn a_batch_encodes_and_decodes_with_its_spans_attributes_and_events() {
        let target = Arc::new(Target::for_tests());
        let mut b = Batch::default();
        let name = b.text(b"GET /x");
        let mark = b.mark();
        b.text_attribute("url.path", b"/x");
        b.attribute("http.response.status_code", SpanValue::Int(200));
        // A path's raw bytes need not be UTF-8; a proto string must be.
        b.text_attribute("url.query", b"a=\xff");
        let attributes = b.since(mark);
        let event_mark = b.mark();
        b.attribute("error.type", SpanValue::Static("connect"));
        let event_attributes = b.since(event_mark);
        b.events.push(crate::telemetry::spans::Event {
            name: "retry",
            time_ns: 5,
            attributes: event_attributes,
        });
        let error = Some(b.text(b"timeout"));
        b.spans.push(SpanRecord {
            target: target.clone(),
            trace_id: [7; 16],
            span_id: [8; 8],
            parent_id: Some([9; 8]),
            name,
            kind: Kind::Server,
            start_ns: 1,
            end_ns: 9,
            error,
            attributes,
            events: 0..1,
        });
        let bytes = encode(&target, spans_of(&b, 0..1));
        let back = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decodes");
        let span = &back.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.name, "GET /x".as_bytes());
        assert_eq!(span.trace_id, [7; 16].as_slice());
        assert_eq!(span.span_id, [8; 8].as_slice());
        assert_eq!(span.parent_span_id, [9; 8].as_slice());
        assert_eq!(span.kind, 2);
        assert_eq!(span.attributes.len(), 3);
        let query = span.attributes[2].value.clone().and_then(|v| v.value);
        assert_eq!(query, Some(Value::StringValue(Bytes::from("a=\u{fffd}"))));
        assert_eq!(span.events[0].attributes[0].key, "error.type".as_bytes());
        assert_eq!(
            span.status.as_ref().map(|s| s.message.clone()),
            Some(Bytes::from_static(b"timeout"))
        );
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    }
}
