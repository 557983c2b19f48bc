//! The HTTP/1.1 server side: limits, head parsing, framing, chunked decoding, response encoding,
//! canned answers and the per-connection loop.
//!
//! Parsing never copies: the head is parsed in the connection's read buffer and kept as
//! [`head::Span`]s into it until the response is written.

pub mod answers;
pub mod chunked;
pub mod conn;
pub mod encode;
pub mod framing;
pub mod head;
pub mod limits;
pub mod request;

pub use limits::Limits;
