//! The buffers one request's upstream phase works in, reused through the proxy's free list.

use super::trace::{InvokeFacts, TraceFacts};
use crate::access::RequestEdits;
use crate::lambda::payload::PayloadEncoder;
use crate::lambda::response::ResponseMapper;
use crate::upstream::client::{InvokeBuffers, InvokeResponse};

/// The invoke-side buffers of one request; reused through the proxy's free list.
#[derive(Default)]
pub(super) struct InvokeScratch {
    pub payload: PayloadEncoder,
    pub mapper: ResponseMapper,
    pub invoke: InvokeBuffers,
    pub answer: InvokeResponse,
    pub header_refs: Vec<(usize, usize, usize, usize)>,
    /// The access plugins' changes to the request, and the rewritten head.
    pub edits: RequestEdits,
    /// Time spent on the invoke, when there was one.
    pub proxy_time: Option<std::time::Duration>,
    /// A traced request's trace, for its spans in the log phase. This and the next are boxed:
    /// the scratch is part of every request's future, which must stay small (it is moved, and
    /// a larger one costs every request, traced or not).
    pub trace: Option<Box<TraceFacts>>,
    /// A traced invoke's facts, for its span.
    pub traced_invoke: Option<Box<InvokeFacts>>,
}

impl InvokeScratch {
    /// Bytes of buffer capacity this set holds on to.
    pub fn retained_bytes(&self) -> usize {
        self.payload.retained_bytes()
            + self.mapper.retained_bytes()
            + self.invoke.write.capacity()
            + self.invoke.read.capacity()
            + self.invoke.chunked.capacity()
    }
}
