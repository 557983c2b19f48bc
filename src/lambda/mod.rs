//! The aws-lambda plugin: its config, the invocation payload encoder, request argument parsing,
//! and the mapping of Lambda's answer to the client response.

pub mod arg;
pub mod args;
pub mod config;
pub mod event;
pub mod json_body;
pub mod key_groups;
pub mod payload;
pub mod response;
pub mod stream_answer;
