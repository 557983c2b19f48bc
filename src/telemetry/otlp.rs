//! OTLP's trace export request (`opentelemetry/proto/collector/trace/v1`), the messages and
//! fields the gateway sends, declared for prost with the tags of the OpenTelemetry project's
//! `.proto` files (fields left out are ones it never sets; a receiver reads them as unset).
//! Encoding is prost's; the tests decode with the project's own definitions
//! (`tests/tracing.rs`, Python's `opentelemetry-proto`).

use super::spans::{Batch, Value as SpanValue};
use super::Target;

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
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `Span`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    /// 8 bytes, or empty for a root span.
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    /// Its name.
    #[prost(string, tag = "5")]
    pub name: String,
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
    /// What.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Its attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

/// `Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// Why.
    #[prost(string, tag = "2")]
    pub message: String,
    /// `STATUS_CODE_ERROR` is 2.
    #[prost(int32, tag = "3")]
    pub code: i32,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
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
    /// `string_value`.
    #[prost(string, tag = "1")]
    StringValue(String),
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
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_string())),
        }),
    }
}

/// The spans of `batch` at `indexes` (all for `target`) as OTLP spans.
pub fn spans_of(batch: &Batch, indexes: impl Iterator<Item = usize>) -> Vec<Span> {
    let attributes = |range: &std::ops::Range<u32>| -> Vec<KeyValue> {
        batch
            .attributes
            .get(range.start as usize..range.end as usize)
            .unwrap_or_default()
            .iter()
            .map(|a| KeyValue {
                key: a.key.to_string(),
                value: Some(AnyValue {
                    value: Some(match &a.value {
                        SpanValue::Text(r) => {
                            Value::StringValue(String::from_utf8_lossy(batch.text_at(r)).into())
                        }
                        SpanValue::Static(s) => Value::StringValue(s.to_string()),
                        SpanValue::Int(i) => Value::IntValue(*i),
                        SpanValue::Double(d) => Value::DoubleValue(*d),
                        SpanValue::Bool(b) => Value::BoolValue(*b),
                    }),
                }),
            })
            .collect()
    };
    indexes
        .filter_map(|i| batch.spans.get(i))
        .map(|s| Span {
            trace_id: s.trace_id.to_vec(),
            span_id: s.span_id.to_vec(),
            parent_span_id: s.parent_id.map(|p| p.to_vec()).unwrap_or_default(),
            name: String::from_utf8_lossy(batch.text_at(&s.name)).into(),
            kind: s.kind as i32,
            start_time_unix_nano: s.start_ns,
            end_time_unix_nano: s.end_ns,
            attributes: attributes(&s.attributes),
            events: batch
                .events
                .get(s.events.start as usize..s.events.end as usize)
                .unwrap_or_default()
                .iter()
                .map(|e| Event {
                    time_unix_nano: e.time_ns,
                    name: e.name.to_string(),
                    attributes: attributes(&e.attributes),
                })
                .collect(),
            status: s.error.as_ref().map(|kind| Status {
                message: String::from_utf8_lossy(batch.text_at(kind)).into(),
                code: STATUS_ERROR,
            }),
        })
        .collect()
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
                    name: "lambda-gateway".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
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
        assert_eq!(span.name, "GET /x");
        assert_eq!(span.parent_span_id, vec![9; 8]);
        assert_eq!(span.kind, 2);
        assert_eq!(span.attributes.len(), 2);
        assert_eq!(span.events[0].attributes[0].key, "error.type");
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    }
}
