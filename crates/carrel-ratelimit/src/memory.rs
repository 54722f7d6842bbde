//! The in-process store: 16 shards of `Mutex<HashMap<key, TAT>>`.
//!
//! Memory stays bounded two ways:
//! - expired entries (TAT at or before the caller's `now`, i.e. a full budget, which is what a
//!   missing entry means anyway) are swept from a shard every `max(SWEEP_EVERY, len)` checks
//!   that land on it, so the sweep costs amortised O(1) per check;
//! - a hard cap on entries: when a new key arrives at a full shard, the shard is swept and, if
//!   still full, the eighth of its entries with the smallest TAT are dropped. Those are the keys
//!   closest to a full budget, so forgetting them matters least (a flood of one-off keys cannot
//!   push out the keys that are actually being limited).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hash::RandomState;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::gcra::{self, Outcome, Params};

const SHARDS: usize = 16;
/// A shard is swept after at least this many checks on it.
const SWEEP_EVERY: usize = 1024;
/// Default hard cap on keys held in memory (about 20–30 MB with short keys).
pub(crate) const DEFAULT_MAX_ENTRIES: usize = 1 << 18;

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Box<str>, i64>,
    checks_since_sweep: usize,
}

impl Shard {
    fn sweep(&mut self, now: i64) {
        self.map.retain(|_, tat| *tat > now);
        self.checks_since_sweep = 0;
    }

    /// Makes room for one more entry under `cap`.
    fn make_room(&mut self, now: i64, cap: usize) {
        self.sweep(now);
        if self.map.len() < cap {
            return;
        }
        let evict = (self.map.len() / 8).max(1);
        let mut tats: Vec<i64> = self.map.values().copied().collect();
        let (_, threshold, _) = tats.select_nth_unstable(evict - 1);
        let threshold = *threshold;
        let below = tats.iter().filter(|tat| **tat < threshold).count();
        let mut ties_to_drop = evict.saturating_sub(below);
        self.map.retain(|_, tat| {
            if *tat < threshold {
                false
            } else if *tat == threshold && ties_to_drop > 0 {
                ties_to_drop -= 1;
                false
            } else {
                true
            }
        });
        tracing::debug!(
            evicted = evict,
            cap,
            "in-memory rate-limit shard full: dropped the keys closest to a full budget"
        );
    }
}

#[derive(Debug)]
pub(crate) struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    shard_cap: usize,
}

impl MemoryStore {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            shard_cap: (max_entries / SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        // Truncation is fine: only the low bits pick the shard.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        lock(&self.shards[index])
    }

    /// One GCRA step on `key`, atomically. `now` must already be clamped.
    pub(crate) fn check(&self, key: &str, p: Params, now: i64) -> Outcome {
        let mut shard = self.shard(key);
        shard.checks_since_sweep += 1;
        if shard.checks_since_sweep >= SWEEP_EVERY.max(shard.map.len()) {
            shard.sweep(now);
        }
        let (outcome, new_tat) = gcra::step(shard.map.get(key).copied(), now, p);
        if let Some(new_tat) = new_tat {
            if let Some(tat) = shard.map.get_mut(key) {
                *tat = new_tat;
            } else {
                if shard.map.len() >= self.shard_cap {
                    shard.make_room(now, self.shard_cap);
                }
                shard.map.insert(key.into(), new_tat);
            }
        }
        outcome
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }
}

/// A poisoned shard is still consistent (nothing panics while holding the lock): keep going.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
