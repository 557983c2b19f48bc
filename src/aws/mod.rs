//! AWS plumbing: SigV4 signing with cached signing keys, credentials, URI encoding, timestamps,
//! and the endpoint a plugin invokes.

pub mod credentials;
pub mod endpoint;
pub mod event_stream;
pub mod profile;
pub mod sigv4;
pub mod time;
pub mod uri;
