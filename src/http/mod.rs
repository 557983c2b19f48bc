//! The HTTP/1.1 server side: limits, head parsing, framing, chunked decoding, response encoding,
//! canned answers and the per-connection loop.
//!
//! Parsing never copies: the head is parsed in the connection's read buffer and kept as
//! [`head::Span`]s into it until the response is written.

pub mod answers;
pub mod budget;
pub mod chunked;
pub mod client;
pub mod conn;
pub mod encode;
pub mod failure;
pub mod fields;
pub mod form;
pub mod framing;
pub mod head;
pub mod large_buffers;
pub mod limits;
pub mod media;
pub mod multipart;
pub mod percent;
pub mod request;
pub mod shutdown;

pub use limits::Limits;
