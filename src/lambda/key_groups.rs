//! Grouping the repeated keys of a long argument list in time linear in its length, with
//! memory access that stays in cache however long the list is.
//!
//! A short list is grouped as it grows, by a scan (see `args::Args`). A long one (a JSON body of
//! half a million members) is grouped once, after parsing: every key is hashed (a randomly
//! seeded SipHash, so no client can choose keys that collide), the (hash, position) pairs are
//! partitioned by the hash's top byte into 256 buckets, and each bucket is grouped with a small
//! hash table that fits in cache. One table for the whole list would be as large as the list
//! and take a cache miss per key: measured, that tripled the cost per member and made it grow
//! with the list.

use super::arg::{Arg, ArgValue, Repeat, NONE};
use crate::pacing::Pacer;
use std::hash::BuildHasher;
use std::ops::Range;

/// Buckets the keys are partitioned into (by the hash's top byte).
const BUCKETS: usize = 256;

/// One group while its bucket is being grouped: the low half of its key's hash and its first
/// argument.
#[derive(Clone, Copy, Debug)]
struct Open {
    hash: u32,
    first: u32,
}

/// The reusable state of grouping a long list, and the partition kept for later lookups.
#[derive(Debug, Default)]
pub struct KeyGroups {
    hasher: std::hash::RandomState,
    /// (hash, position) of every first argument, in list order.
    hashed: Vec<(u64, u32)>,
    /// The same, as (low half of the hash, position), partitioned by the hash's top byte.
    parted: Vec<(u32, u32)>,
    /// Where each bucket starts in `parted` (and where the last one ends).
    starts: Vec<u32>,
    /// The groups of the bucket being grouped.
    open: hashbrown::HashTable<Open>,
    /// Whether `parted` describes the current list.
    grouped: bool,
}

impl KeyGroups {
    /// Forgets the last list, keeping allocations.
    pub fn clear(&mut self) {
        self.hashed.clear();
        self.parted.clear();
        self.starts.clear();
        self.open.clear();
        self.grouped = false;
    }

    /// Bytes of capacity held between requests.
    pub fn retained_bytes(&self) -> usize {
        self.hashed.capacity() * 16
            + self.parted.capacity() * 8
            + self.starts.capacity() * 4
            + self.open.capacity() * (std::mem::size_of::<Open>() + 1)
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Groups `list` (whose keys index `scratch`): each argument not yet known to repeat an
    /// earlier key is checked against the others, in list order; a repeat joins its first
    /// argument's group, or for [`Repeat::Replace`] gives it its value and is dropped.
    /// Pauses between buckets when `pacer` says so.
    pub async fn group(
        &mut self,
        list: &mut [Arg],
        scratch: &[u8],
        repeat: Repeat,
        pacer: &mut impl Pacer,
    ) {
        self.clear();
        for (at, arg) in list.iter().enumerate().filter(|(_, a)| a.first) {
            let hash = self.hash(&scratch[arg.key.clone()]);
            self.hashed.push((hash, at as u32));
        }
        pacer.pause_if_due().await;
        self.partition();
        pacer.pause_if_due().await;
        for b in 0..BUCKETS {
            let bucket = self.starts[b] as usize..self.starts[b + 1] as usize;
            self.group_bucket(list, scratch, bucket, repeat);
            pacer.pause_if_due().await;
        }
        self.grouped = true;
    }

    /// Fills `parted` and `starts` from `hashed`: by the hash's top byte, keeping list order
    /// within each bucket. (A function of its own: its counters stay off the future's state.)
    fn partition(&mut self) {
        let mut counts = [0u32; BUCKETS];
        for &(h, _) in &self.hashed {
            counts[(h >> 56) as usize] += 1;
        }
        self.starts.push(0);
        let mut fill = [0u32; BUCKETS];
        for (b, c) in counts.into_iter().enumerate() {
            fill[b] = self.starts[b];
            self.starts.push(fill[b] + c);
        }
        self.parted.resize(self.hashed.len(), (0, 0));
        for &(h, at) in &self.hashed {
            let slot = &mut fill[(h >> 56) as usize];
            self.parted[*slot as usize] = (h as u32, at);
            *slot += 1;
        }
    }

    fn group_bucket(
        &mut self,
        list: &mut [Arg],
        scratch: &[u8],
        bucket: Range<usize>,
        repeat: Repeat,
    ) {
        self.open.clear();
        for &(hash, at) in &self.parted[bucket] {
            // The keys themselves (scattered over the list) are read only when the hashes match.
            let key = |i: u32| &scratch[list[i as usize].key.clone()];
            let found = self
                .open
                .find(fold(hash), |g| g.hash == hash && key(g.first) == key(at))
                .map(|g| g.first as usize);
            let Some(first) = found else {
                self.open
                    .insert_unique(fold(hash), Open { hash, first: at }, |g| fold(g.hash));
                continue;
            };
            let at = at as usize;
            list[at].first = false;
            match repeat {
                Repeat::Replace => {
                    let value = std::mem::replace(&mut list[at].value, ArgValue::Flag);
                    list[first].value = value;
                    list[at].dropped = true;
                }
                Repeat::Group => {
                    let last = list[first].last as usize;
                    list[last].next = at as u32;
                    list[first].last = at as u32;
                    list[at].last = NONE;
                }
            }
        }
    }

    /// True when a first argument of the grouped `list` has this key.
    pub fn contains(&self, list: &[Arg], scratch: &[u8], key: &[u8]) -> bool {
        if !self.grouped {
            return false;
        }
        let h = self.hash(key);
        let b = (h >> 56) as usize;
        let bucket = self.starts[b] as usize..self.starts[b + 1] as usize;
        self.parted[bucket].iter().any(|&(low, at)| {
            let arg = &list[at as usize];
            low == h as u32 && arg.first && scratch[arg.key.clone()] == *key
        })
    }
}

/// The 64-bit hash a bucket's table sees for 32 kept bits: hashbrown picks a slot from the low
/// bits and a tag from the top 7, so both halves carry the same well-mixed bits.
fn fold(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}
