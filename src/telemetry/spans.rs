//! Spans as a worker records them: fixed-size records and their attribute text in one batch of
//! reused vectors, so that recording a span, once the batch's vectors have grown, allocates
//! nothing. A worker's batch sits behind a mutex only the worker and the exporter thread take
//! (the exporter swaps it for an empty one a few times a second), and it is bounded: a span
//! that does not fit is dropped and counted, never waited for.

use super::Target;
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// OpenTelemetry's span kinds (the values of OTLP's `SpanKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An operation inside the gateway (the access phase).
    Internal = 1,
    /// The request the gateway serves.
    Server = 2,
    /// A call the gateway makes (the invoke).
    Client = 3,
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text in the batch's text (`Batch::text`).
    Text(Range<u32>),
    /// Text known when the gateway was built.
    Static(&'static str),
    /// An integer.
    Int(i64),
    /// A number.
    Double(f64),
    /// A flag.
    Bool(bool),
}

/// One attribute: an OpenTelemetry semantic-convention key and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// The key (`http.request.method`).
    pub key: &'static str,
    /// The value.
    pub value: Value,
}

/// Something that happened during a span (a retry).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Its name.
    pub name: &'static str,
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Its attributes: a range of the batch's attributes.
    pub attributes: Range<u32>,
}

/// One finished span.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    /// Where it is exported, and with what resource.
    pub target: Arc<Target>,
    /// The trace.
    pub trace_id: [u8; 16],
    /// The span.
    pub span_id: [u8; 8],
    /// Its parent (`None`: a root span).
    pub parent_id: Option<[u8; 8]>,
    /// Its name: text in the batch's text.
    pub name: Range<u32>,
    /// Its kind.
    pub kind: Kind,
    /// Start and end, in nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
    /// Its status when it failed: the error kind (the metrics' label) as the message, text
    /// in the batch's text.
    pub error: Option<Range<u32>>,
    /// Its attributes: a range of the batch's attributes.
    pub attributes: Range<u32>,
    /// Its events: a range of the batch's events.
    pub events: Range<u32>,
}

/// Spans and what they refer to, back to back.
#[derive(Debug, Default)]
pub struct Batch {
    /// The spans.
    pub spans: Vec<SpanRecord>,
    /// Every span's and event's attributes.
    pub attributes: Vec<Attribute>,
    /// Every span's events.
    pub events: Vec<Event>,
    /// Names and attribute text.
    pub text: Vec<u8>,
}

/// Most spans a worker holds for the exporter; more are dropped until it takes them.
pub const MAX_SPANS: usize = 4096;
/// Most attribute text a worker holds (a request's text is at most about 2.5 KiB: its path
/// and host are cut at [`MAX_VALUE`]).
pub const MAX_TEXT: usize = MAX_SPANS * 512;
/// Most bytes of one attribute value kept; a longer one is cut.
pub const MAX_VALUE: usize = 1024;
/// Most attributes one span adds (its own and its events'), and most events: a span within
/// these, and within the text its recorder says it needs, never grows a batch past the room
/// it was given.
pub const SPAN_ATTRIBUTES: usize = 24;
/// See [`SPAN_ATTRIBUTES`].
pub const SPAN_EVENTS: usize = 8;

impl Batch {
    /// An empty batch with room for a worker's bound, so that recording never grows it.
    pub fn with_room() -> Batch {
        Batch {
            spans: Vec::with_capacity(MAX_SPANS),
            attributes: Vec::with_capacity(MAX_SPANS * 8),
            events: Vec::with_capacity(MAX_SPANS * 2),
            text: Vec::with_capacity(MAX_TEXT),
        }
    }

    /// Forgets every span, keeping the room.
    pub fn clear(&mut self) {
        self.spans.clear();
        self.attributes.clear();
        self.events.clear();
        self.text.clear();
    }

    /// Whether `spans` more spans (each within the `SPAN_*` bounds) with `text` bytes of text
    /// in all fit in the room the batch was given, so that recording them cannot grow it.
    pub fn has_room(&self, spans: usize, text: usize) -> bool {
        let fits = |len: usize, more: usize, capacity: usize| len + more <= capacity;
        fits(self.spans.len(), spans, self.spans.capacity())
            && fits(
                self.attributes.len(),
                spans * SPAN_ATTRIBUTES,
                self.attributes.capacity(),
            )
            && fits(
                self.events.len(),
                spans * SPAN_EVENTS,
                self.events.capacity(),
            )
            && fits(self.text.len(), text, self.text.capacity())
    }

    /// Copies `bytes` (at most [`MAX_VALUE`] of them) into the text.
    pub fn text(&mut self, bytes: &[u8]) -> Range<u32> {
        let bytes = &bytes[..bytes.len().min(MAX_VALUE)];
        let start = self.text.len() as u32;
        self.text.extend_from_slice(bytes);
        start..self.text.len() as u32
    }

    /// Writes text with `write` (a formatter into the text) and gives its range.
    pub fn text_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Range<u32> {
        let start = self.text.len();
        write(&mut self.text);
        self.text
            .truncate(start + (self.text.len() - start).min(MAX_VALUE));
        start as u32..self.text.len() as u32
    }

    /// The text at `range`.
    pub fn text_at(&self, range: &Range<u32>) -> &[u8] {
        self.text
            .get(range.start as usize..range.end as usize)
            .unwrap_or_default()
    }

    /// The next attribute's index (the start of a span's or an event's range).
    pub fn mark(&self) -> u32 {
        self.attributes.len() as u32
    }

    /// Adds an attribute.
    pub fn attribute(&mut self, key: &'static str, value: Value) {
        self.attributes.push(Attribute { key, value });
    }

    /// Adds a text attribute, copied.
    pub fn text_attribute(&mut self, key: &'static str, bytes: &[u8]) {
        let range = self.text(bytes);
        self.attribute(key, Value::Text(range));
    }

    /// The attributes since `mark`.
    pub fn since(&self, mark: u32) -> Range<u32> {
        mark..self.attributes.len() as u32
    }
}

/// A worker's spans waiting for the exporter.
#[derive(Debug, Default)]
pub struct WorkerSpans {
    /// The batch the worker writes into.
    pub batch: Mutex<Batch>,
}

impl WorkerSpans {
    /// Runs `record` on the worker's batch if `spans` spans (each within the `SPAN_*` bounds)
    /// with at most `text` bytes of text fit; otherwise counts them as dropped. Never waits
    /// longer than the exporter's swap.
    pub fn record(&self, spans: usize, text: usize, record: impl FnOnce(&mut Batch)) {
        let Ok(mut batch) = self.batch.lock() else {
            return;
        };
        if batch.spans.capacity() == 0 {
            // The first traced request of this worker: the room for its bound, once.
            *batch = Batch::with_room();
        }
        if batch.has_room(spans, text) {
            record(&mut batch);
        } else {
            drop(batch);
            crate::metrics::PROCESS
                .trace_spans_dropped
                .fetch_add(spans as u64, Relaxed);
        }
    }

    /// Swaps the worker's batch for `empty` (cleared, its room kept) and gives the full one.
    pub fn take(&self, empty: Batch) -> Batch {
        match self.batch.lock() {
            Ok(mut batch) => std::mem::replace(&mut *batch, empty),
            Err(_) => empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_worker_batch_drops_and_counts_instead_of_growing() {
        let spans = WorkerSpans::default();
        let target = Arc::new(Target::for_tests());
        let before = crate::metrics::PROCESS.trace_spans_dropped.load(Relaxed);
        for _ in 0..MAX_SPANS + 10 {
            spans.record(1, 10, |b| {
                let name = b.text(b"span");
                b.spans.push(SpanRecord {
                    target: target.clone(),
                    trace_id: [1; 16],
                    span_id: [2; 8],
                    parent_id: None,
                    name,
                    kind: Kind::Internal,
                    start_ns: 1,
                    end_ns: 2,
                    error: None,
                    attributes: 0..0,
                    events: 0..0,
                });
            });
        }
        let batch = spans.take(Batch::default());
        assert_eq!(batch.spans.len(), MAX_SPANS);
        assert_eq!(
            batch.spans.capacity(),
            MAX_SPANS,
            "never grown past its room"
        );
        // Text is a bound of its own: spans that say they need more than is left are dropped.
        let spans = WorkerSpans::default();
        let mut taken = 0;
        for _ in 0..100 {
            spans.record(1, MAX_TEXT / 10, |b| {
                b.text.extend_from_slice(&vec![b'x'; MAX_TEXT / 10]);
                taken += 1;
            });
        }
        assert_eq!(taken, 10);
        assert_eq!(spans.take(Batch::default()).text.capacity(), MAX_TEXT);
        let dropped = crate::metrics::PROCESS.trace_spans_dropped.load(Relaxed) - before;
        assert!(dropped >= 10, "{dropped}");
    }

    #[test]
    fn long_values_are_cut() {
        let mut b = Batch::default();
        let r = b.text(&[b'a'; 5000]);
        assert_eq!(r.len(), MAX_VALUE);
        let r = b.text_with(|t| t.extend_from_slice(&[b'b'; 3000]));
        assert_eq!(b.text_at(&r).len(), MAX_VALUE);
    }
}
