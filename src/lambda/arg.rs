//! One request argument (a query or form argument, a JSON member, a multipart part) as
//! [`super::args::Args`] holds it: its key and value as ranges, and its links to the other
//! arguments with the same key ([`super::key_groups`] makes them for long lists).

use std::ops::Range;

/// Marks "no next argument" in [`Arg`]'s links.
pub(super) const NONE: u32 = u32::MAX;

/// The value of one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgValue {
    /// A flag argument without `=` (`?debug`): JSON `true`.
    Flag,
    /// Decoded text, a range of `Args::scratch`.
    Text(Range<usize>),
    /// A JSON value exactly as it appears in the body, a range of the body.
    Json(Range<usize>),
}

/// One argument: its decoded key (a range of the scratch), its value, and its link to the
/// next argument with the same key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// Key bytes in `Args::scratch`.
    pub key: Range<usize>,
    /// The value.
    pub value: ArgValue,
    /// True on the first argument with its key: a group is written where it first appeared.
    pub(super) first: bool,
    /// The next argument with the same key, or [`NONE`].
    pub(super) next: u32,
    /// On a first argument, the last one of its group (where the next repeat is linked).
    pub(super) last: u32,
    /// A JSON member whose key came again later: its value went to the first member with
    /// that key, and it is not sent.
    pub(super) dropped: bool,
}

impl Arg {
    /// True when this is the first argument with its key (repeats are reached through it).
    pub fn is_first(&self) -> bool {
        self.first
    }

    /// True when a later argument has the same key.
    pub fn is_repeated(&self) -> bool {
        self.next != NONE
    }

    /// True for a repeated JSON member whose value went to the first member with its key.
    pub fn is_dropped(&self) -> bool {
        self.dropped
    }
}

/// What a repeated key does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Repeat {
    /// Join the key's group (query and form arguments, headers: written as an array).
    #[default]
    Group,
    /// Replace the value of the first occurrence (JSON members: the last one wins, as in a
    /// decoded Lua table).
    Replace,
}
