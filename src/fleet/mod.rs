//! Running as a fleet: the whole configuration kept in etcd (`--config etcd://…`), watched by
//! every node and written by any node's Admin API with compare-and-swap; a last-known-good
//! copy on local disk for when etcd cannot be reached.
//!
//! The etcd client (tokio and gRPC) runs on one control thread of its own; workers never wait
//! on it: they see its result as the snapshot they already load per request.

pub mod etcd;
pub mod publish;
pub mod url;
