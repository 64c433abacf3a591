//! One shard's open-addressing table: 16 bytes per slot, linear probing.
//!
//! Readers (lookups, inserts of new keys, state updates) share the shard's lock and touch the
//! table only through atomics: a new key claims an empty slot with one compare-and-swap on its
//! key word, so two threads inserting the same key always meet in the same slot (insertions only
//! ever fill empty slots, and nothing is removed under the shared lock). Removal (reclaiming idle
//! keys, evicting, growing) happens only under the exclusive lock, by rebuilding or by
//! backward-shift deletion, so probe chains never need tombstones.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::boxed::Box;

/// Key word of an empty slot. [`KeyHash`](super::KeyHash) is never 0.
pub(crate) const EMPTY: u64 = 0;

#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) key: AtomicU64,
    pub(crate) state: AtomicU64,
}

/// The table is at its occupancy limit: the caller must make room under the exclusive lock.
pub(crate) struct Full;

/// The limiter-wide count of stored keys against `max_keys`, shared by all shards. Touched only
/// when a key is added or dropped, never on the hot path of an existing key.
#[derive(Debug)]
pub(crate) struct Budget {
    live: AtomicUsize,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Budget {
        Budget {
            live: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes room for one key, if any is left.
    pub(crate) fn reserve(&self) -> bool {
        if self.live.fetch_add(1, Ordering::Relaxed) < self.max {
            true
        } else {
            self.live.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }

    pub(crate) fn release(&self, keys: usize) {
        self.live.fetch_sub(keys, Ordering::Relaxed);
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    pub(crate) fn is_full(&self) -> bool {
        self.live.load(Ordering::Relaxed) >= self.max
    }
}

#[derive(Debug)]
pub(crate) struct Table {
    slots: Box<[Slot]>,
    len: AtomicUsize,
    /// Occupancy limit: below capacity so probe chains stay short and always end.
    max_len: usize,
}

impl Table {
    pub(crate) fn new(capacity: usize, max_len: usize) -> Table {
        let max_len = max_len.min(capacity - 1);
        Table {
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            len: AtomicUsize::new(0),
            max_len,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn is_at_limit(&self) -> bool {
        self.len() >= self.max_len
    }

    pub(crate) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// First slot of `hash`'s probe sequence. Multiply-shift on the high bits, so any capacity
    /// works (no power-of-two waste) and the shard index (low bits) stays independent.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((hash as u128 * self.slots.len() as u128) >> 64) as usize
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    #[inline]
    pub(crate) fn find(&self, hash: u64) -> Option<&Slot> {
        let mut i = self.home(hash);
        loop {
            let slot = &self.slots[i];
            match slot.key.load(Ordering::Acquire) {
                k if k == hash => return Some(slot),
                EMPTY => return None,
                _ => i = self.next(i),
            }
        }
    }

    /// Finds `hash`'s slot or claims an empty one for it, within the table's occupancy limit
    /// and the limiter's `budget`.
    #[inline]
    pub(crate) fn find_or_insert(&self, hash: u64, budget: &Budget) -> Result<&Slot, Full> {
        let mut i = self.home(hash);
        loop {
            let slot = &self.slots[i];
            match slot.key.load(Ordering::Acquire) {
                k if k == hash => return Ok(slot),
                EMPTY => {
                    // Reserve room before claiming, so concurrent inserts never fill the table
                    // nor pass the limiter's bound.
                    if !budget.reserve() {
                        return Err(Full);
                    }
                    if self.len.fetch_add(1, Ordering::Relaxed) >= self.max_len {
                        self.len.fetch_sub(1, Ordering::Relaxed);
                        budget.release(1);
                        return Err(Full);
                    }
                    match slot.key.compare_exchange(
                        EMPTY,
                        hash,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok(slot),
                        Err(other) => {
                            self.len.fetch_sub(1, Ordering::Relaxed);
                            budget.release(1);
                            if other == hash {
                                return Ok(slot);
                            }
                            i = self.next(i);
                        }
                    }
                }
                _ => i = self.next(i),
            }
        }
    }

    /// Places an entry in a table nobody else can see or touch yet (rebuilds) or under the
    /// exclusive lock.
    pub(crate) fn put(&mut self, hash: u64, state: u64) {
        let mut i = self.home(hash);
        while *self.slots[i].key.get_mut() != EMPTY {
            i = self.next(i);
        }
        *self.slots[i].key.get_mut() = hash;
        *self.slots[i].state.get_mut() = state;
        *self.len.get_mut() += 1;
    }

    /// Removes the entry at `i` by backward-shift deletion (exclusive access): every later entry
    /// of the probe run whose home allows it moves back, so lookups never cross a hole.
    pub(crate) fn remove_at(&mut self, mut hole: usize) {
        let n = self.slots.len();
        let distance = |from: usize, to: usize| if to >= from { to - from } else { to + n - from };
        let mut j = hole;
        loop {
            j = self.next(j);
            let key = *self.slots[j].key.get_mut();
            if key == EMPTY {
                break;
            }
            // The entry may move back only if its home is not between the hole and j.
            if distance(self.home(key), j) >= distance(hole, j) {
                let state = *self.slots[j].state.get_mut();
                *self.slots[hole].key.get_mut() = key;
                *self.slots[hole].state.get_mut() = state;
                hole = j;
            }
        }
        *self.slots[hole].key.get_mut() = EMPTY;
        *self.slots[hole].state.get_mut() = 0;
        *self.len.get_mut() -= 1;
    }

    /// `(index, state)` of the occupied slots on `hash`'s probe path, up to the first empty slot
    /// (exclusive access).
    pub(crate) fn probe_path(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> + '_ {
        let home = self.home(hash);
        (0..self.slots.len())
            .map(move |i| {
                let j = home + i;
                if j >= self.slots.len() {
                    j - self.slots.len()
                } else {
                    j
                }
            })
            .map(|j| (j, &self.slots[j]))
            .take_while(|(_, slot)| slot.key.load(Ordering::Relaxed) != EMPTY)
            .map(|(j, slot)| (j, slot.state.load(Ordering::Relaxed)))
    }

    /// Gives the slot at `i`, on `hash`'s probe path, to `hash` with a fresh state (exclusive
    /// access). Every slot between `hash`'s home and `i` is occupied, so lookups find it, and
    /// the slot stays occupied, so no other probe run breaks.
    pub(crate) fn replace_at(&mut self, i: usize, hash: u64) {
        *self.slots[i].key.get_mut() = hash;
        *self.slots[i].state.get_mut() = 0;
    }

    /// The entries: `(key, state)` of every occupied slot.
    pub(crate) fn entries(&mut self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots
            .iter_mut()
            .map(|s| (*s.key.get_mut(), *s.state.get_mut()))
            .filter(|(k, _)| *k != EMPTY)
    }
}
