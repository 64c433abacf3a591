//! Keyed limiters: one limiter per client (IP, user, API key, route) in bounded memory.
//!
//! [`Keyed`] maps each key to its own state under any algorithm: one `u64` word for the token
//! bucket, fixed window and sliding window counter, a heap log for the sliding log.
//!
//! # Design
//!
//! - **Sharded, lock-free hot path.** Keys spread over up to 64 shards, each an open-addressing
//!   table of 16-byte slots (key hash, state word). A check on a key takes its shard's lock in
//!   *shared* mode and updates the state with one compare-and-swap: no global lock, no
//!   allocation, and threads on different keys never wait for each other. New keys claim an empty
//!   slot with a compare-and-swap, also under the shared lock.
//! - **No raw keys.** The table stores a [`KeyHash`] (seeded per process), never the key.
//! - **Bounded memory.** At most `max_keys` keys are stored at once, counted over all shards.
//!   Tables grow by half when 4/5 full up to their share of the bound (a shard that hashing made
//!   busier than the rest may hold up to twice its share): about 20–30 bytes per live key for
//!   one-word algorithms.
//! - **Idle state is reclaimed without changing any decision.** A key whose state is fully
//!   replenished decides exactly like a missing key, so it may be dropped at any time. A shard
//!   sweeps its idle keys when it would otherwise grow or overflow (and remembers when its next
//!   key can become idle, so a flood cannot make it sweep on every request); [`Keyed::reclaim`]
//!   sweeps everything eagerly.
//! - **When the table is full of live keys**, [`Overflow`] decides, per limiter:
//!   [`Overflow::EvictNearestIdle`] drops the sampled key closest to being idle (flood keys,
//!   which made one request each, go first), or [`Overflow::DenyNewKeys`] answers new keys with a
//!   denial until room frees up, so no key flood can ever reset a counter that is under attack.
//!   Choose `DenyNewKeys` for logins, OTPs and anything guarding against brute force.
//!
//! ```
//! use ratewall::keyed::{Keyed, KeyedOptions};
//! use ratewall::{Quota, TokenBucketRule, time::SECOND};
//!
//! let limiter = Keyed::new(TokenBucketRule::new(Quota::per_second(2)?)?, KeyedOptions::default())?;
//! assert!(limiter.check("user:1", 0, 1)?.allowed);
//! assert!(limiter.check("user:1", 0, 1)?.allowed);
//! assert!(!limiter.check("user:1", 0, 1)?.allowed);
//! assert!(limiter.check("user:2", 0, 1)?.allowed); // every key has its own budget
//! assert_eq!(limiter.reclaim(SECOND), 2); // both keys are full again: dropped, nothing changes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod hash;
mod state;
mod table;

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use std::boxed::Box;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::vec::Vec;

pub use hash::KeyHash;
pub use state::{KeyedLog, KeyedState};
use table::{Budget, Table};

use crate::error::{validate_cost, CheckError};
use crate::{Decision, FixedWindowRule, SlidingWindowRule, TokenBucketRule};

/// What a keyed limiter does with a new key when its shard is full of live keys.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Drop the key nearest to idle among 8 sampled, and admit the new key (the default). Keeps
    /// serving new clients during a flood; a victim's counter that is far from idle survives
    /// flood keys, which are near idle after their single request.
    #[default]
    EvictNearestIdle,
    /// Deny new keys (a denial, with `retry_after` = time until some key can be reclaimed) until
    /// room frees up. Existing counters are never lost: the right choice against brute force.
    DenyNewKeys,
}

impl Overflow {
    /// The canonical name: `evict` or `deny-new-keys`.
    pub const fn name(self) -> &'static str {
        match self {
            Overflow::EvictNearestIdle => "evict",
            Overflow::DenyNewKeys => "deny-new-keys",
        }
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An overflow name that is not `evict` or `deny-new-keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownOverflow(pub std::string::String);

impl fmt::Display for UnknownOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown overflow {:?}: use evict or deny-new-keys",
            self.0
        )
    }
}

impl std::error::Error for UnknownOverflow {}

impl core::str::FromStr for Overflow {
    type Err = UnknownOverflow;

    /// `evict` (also `evict-nearest-idle`) or `deny-new-keys` (also `deny`); any case,
    /// underscores for dashes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "evict" | "evict-nearest-idle" => Ok(Overflow::EvictNearestIdle),
            "deny-new-keys" | "deny" => Ok(Overflow::DenyNewKeys),
            _ => Err(UnknownOverflow(std::string::ToString::to_string(s))),
        }
    }
}

/// Options of a keyed limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedOptions {
    /// The most keys with live state at once. Default: 1 000 000 (about 30 MB for one-word
    /// algorithms).
    pub max_keys: usize,
    /// What happens to new keys when the table is full of live keys. Default:
    /// [`Overflow::EvictNearestIdle`].
    pub overflow: Overflow,
}

impl Default for KeyedOptions {
    fn default() -> Self {
        KeyedOptions {
            max_keys: 1_000_000,
            overflow: Overflow::default(),
        }
    }
}

/// Why a keyed limiter could not be built.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyedError {
    /// `max_keys` was 0: a keyed limiter holds at least one key.
    ZeroMaxKeys,
}

impl fmt::Display for KeyedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyedError::ZeroMaxKeys => f.write_str("max_keys must be at least 1"),
        }
    }
}

impl std::error::Error for KeyedError {}

/// A shard, padded to its own cache lines so shards' locks do not share one.
#[repr(align(128))]
#[derive(Debug)]
struct Shard {
    table: RwLock<Table>,
    /// Before this instant no key of the shard can have become idle: sweeping is pointless.
    next_sweep: AtomicU64,
}

impl Shard {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        // Nothing panics while holding the lock, and the table stays consistent if it did.
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }
}

const MAX_SHARDS: usize = 64;
const INITIAL_CAPACITY: usize = 16;
const EVICTION_SAMPLE: usize = 8;

/// A limiter per key, under one algorithm, in bounded memory. See the [module docs](self).
#[derive(Debug)]
pub struct Keyed<S: KeyedState> {
    state: S,
    shards: Box<[Shard]>,
    /// Stored keys against `max_keys`, over all shards.
    budget: Budget,
    /// A shard's fair share of `max_keys`: tables grow in big steps up to it.
    fair_share: usize,
    /// The most keys one shard may hold (an unlucky shard may take more than its share).
    shard_max: usize,
    overflow: Overflow,
}

/// Keyed token buckets.
pub type KeyedTokenBucket = Keyed<TokenBucketRule>;
/// Keyed fixed windows.
pub type KeyedFixedWindow = Keyed<FixedWindowRule>;
/// Keyed sliding window counters.
pub type KeyedSlidingWindow = Keyed<SlidingWindowRule>;
/// Keyed sliding logs.
pub type KeyedSlidingLog = Keyed<KeyedLog>;

impl<S: KeyedState> Keyed<S> {
    /// A keyed limiter running `state`'s algorithm for every key.
    pub fn new(state: S, options: KeyedOptions) -> Result<Self, KeyedError> {
        if options.max_keys == 0 {
            return Err(KeyedError::ZeroMaxKeys);
        }
        // About 2048 keys per shard at least, so small tables are not split unevenly.
        let shards = options
            .max_keys
            .div_ceil(2048)
            .next_power_of_two()
            .min(MAX_SHARDS);
        let fair_share = options.max_keys.div_ceil(shards);
        let shard_max = options.max_keys.min(2 * fair_share + 64);
        let capacity = INITIAL_CAPACITY.min(Self::max_capacity(shard_max));
        Ok(Keyed {
            state,
            shards: (0..shards)
                .map(|_| Shard {
                    table: RwLock::new(Table::new(capacity, Self::max_len(capacity, shard_max))),
                    next_sweep: AtomicU64::new(0),
                })
                .collect(),
            budget: Budget::new(options.max_keys),
            fair_share,
            shard_max,
            overflow: options.overflow,
        })
    }

    /// The capacity after `capacity` when a shard must grow: by half up to the capacity of its
    /// fair share, then (for a shard that hashing made busier than the rest) by sixteenths.
    fn grown(&self, capacity: usize) -> usize {
        let fair = Self::max_capacity(self.fair_share);
        if capacity < fair {
            (capacity + capacity / 2 + 16).min(fair)
        } else {
            (capacity + fair / 16 + 16).min(Self::max_capacity(self.shard_max))
        }
    }

    /// Slots for `shard_max` keys at 4/5 occupancy, plus the one empty slot probing needs.
    fn max_capacity(shard_max: usize) -> usize {
        shard_max + shard_max.div_ceil(4) + 1
    }

    fn max_len(capacity: usize, shard_max: usize) -> usize {
        (capacity * 4 / 5).min(shard_max).max(1)
    }

    /// The algorithm every key runs.
    pub fn state(&self) -> &S {
        &self.state
    }

    #[inline]
    fn shard(&self, hash: KeyHash) -> &Shard {
        &self.shards[self.shard_index(hash)]
    }

    #[inline]
    fn shard_index(&self, hash: KeyHash) -> usize {
        (hash.get() as usize) & (self.shards.len() - 1)
    }

    /// Decides a request of `cost` permits by `key` at `now` and, if admitted, takes the permits.
    #[inline]
    pub fn check(
        &self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        self.check_hash(KeyHash::of(key), now, cost)
    }

    /// [`check`](Keyed::check) for a key hashed already.
    #[inline(always)]
    pub fn check_hash(&self, hash: KeyHash, now: u64, cost: u64) -> Result<Decision, CheckError> {
        validate_cost(cost, self.state.capacity())?;
        let shard = self.shard(hash);
        loop {
            {
                let table = shard.read();
                if let Ok(slot) = table.find_or_insert(hash.get(), &self.budget) {
                    return self.state.check(&slot.state, now, cost);
                }
            }
            if let Err(denied) = self.make_room(shard, hash, now) {
                return Ok(denied);
            }
        }
    }

    /// [`check`](Keyed::check) through an exclusive borrow: the same decisions, the same
    /// bounded memory, with no lock taken and, for the one-word algorithms, the key's state
    /// written with a plain store instead of a compare-and-swap: `&mut self` proves that no other
    /// thread can reach the table. For a limiter that one thread owns (a handle that never
    /// leaves its thread, such as a Node.js limiter; a thread-per-core server); shared limiters
    /// use [`check`](Keyed::check).
    ///
    /// ```
    /// use ratewall::keyed::{Keyed, KeyedOptions};
    /// use ratewall::{Quota, TokenBucketRule};
    ///
    /// let mut mine = Keyed::new(TokenBucketRule::new(Quota::per_second(1)?)?, KeyedOptions::default())?;
    /// assert!(mine.check_mut("user:1", 0, 1)?.allowed);
    /// assert!(!mine.check("user:1", 0, 1)?.allowed); // one state, whichever way it is reached
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn check_mut(
        &mut self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        self.check_hash_mut(KeyHash::of(key), now, cost)
    }

    /// [`check_mut`](Keyed::check_mut) for a key hashed already.
    // Out of line on purpose: inlined into the Node.js fast path, the compiler moved the
    // decision through the caller's stack in pieces of mismatched widths (failed store
    // forwarding), and the call was 10-20 ns slower than with this call in between.
    #[inline(never)]
    pub fn check_hash_mut(
        &mut self,
        hash: KeyHash,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        validate_cost(cost, self.state.capacity())?;
        let index = self.shard_index(hash);
        loop {
            let Keyed {
                state,
                shards,
                budget,
                ..
            } = &mut *self;
            let table = shards[index]
                .table
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            if let Ok(slot) = table.find_or_insert(hash.get(), budget) {
                return state.check_exclusive(&slot.state, now, cost);
            }
            // Rare (a full shard): the shared path's exclusive lock is uncontended here.
            if let Err(denied) = self.make_room(&self.shards[index], hash, now) {
                return Ok(denied);
            }
        }
    }

    /// Decides like [`check`](Keyed::check) but takes nothing (and stores no new key).
    pub fn peek(&self, key: impl AsRef<[u8]>, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.peek_hash(KeyHash::of(key), now, cost)
    }

    /// [`peek`](Keyed::peek) for a key hashed already.
    pub fn peek_hash(&self, hash: KeyHash, now: u64, cost: u64) -> Result<Decision, CheckError> {
        let table = self.shard(hash).read();
        let word = table
            .find(hash.get())
            .map_or(0, |slot| slot.state.load(Ordering::Acquire));
        self.state.peek(word, now, cost)
    }

    /// Gives `cost` permits back to `key` (never above full). The decision describes the key's
    /// state after the refund.
    pub fn refund(
        &self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        self.refund_hash(KeyHash::of(key), now, cost)
    }

    /// [`refund`](Keyed::refund) for a key hashed already.
    pub fn refund_hash(&self, hash: KeyHash, now: u64, cost: u64) -> Result<Decision, CheckError> {
        let shard = self.shard(hash);
        let table = shard.read();
        let result = match table.find(hash.get()) {
            Some(slot) => self.state.refund(&slot.state, now, cost),
            None => self.state.refund(&AtomicU64::new(0), now, cost),
        };
        // The key may have become idle early: let the next sweep look.
        shard.next_sweep.store(0, Ordering::Relaxed);
        result
    }

    /// Makes `key` full again.
    pub fn reset(&self, key: impl AsRef<[u8]>) {
        self.reset_hash(KeyHash::of(key))
    }

    /// [`reset`](Keyed::reset) for a key hashed already.
    pub fn reset_hash(&self, hash: KeyHash) {
        let shard = self.shard(hash);
        let table = shard.read();
        if let Some(slot) = table.find(hash.get()) {
            self.state.reset(&slot.state);
            shard.next_sweep.store(0, Ordering::Relaxed);
        }
    }

    /// Keys currently stored (live or not yet reclaimed).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// `true` when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys stored at once.
    pub fn max_keys(&self) -> usize {
        self.budget.max()
    }

    /// Drops every key that is idle at `now` and returns how many were dropped. Decisions do not
    /// change: an idle key decides exactly like a missing one.
    pub fn reclaim(&self, now: u64) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut table = shard.write();
                let before = table.len();
                self.rebuild(shard, &mut table, now, false);
                before - table.len()
            })
            .sum()
    }

    /// Bytes held by the tables (slots and shard headers), without heap logs: the figure to
    /// divide by [`len`](Keyed::len) for memory per key.
    pub fn table_bytes(&self) -> usize {
        let slots: usize = self.shards.iter().map(|s| s.read().capacity()).sum();
        slots * core::mem::size_of::<table::Slot>() + core::mem::size_of_val(&*self.shards)
    }

    /// Makes room for `hash` in its full shard under the exclusive lock, or says why not.
    #[cold]
    fn make_room(&self, shard: &Shard, hash: KeyHash, now: u64) -> Result<(), Decision> {
        let mut table = shard.write();
        if table.find(hash.get()).is_some() {
            return Ok(());
        }
        if table.is_at_limit() || self.budget.is_full() {
            let growable =
                table.is_at_limit() && table.capacity() < Self::max_capacity(self.shard_max);
            if growable || now >= shard.next_sweep.load(Ordering::Relaxed) {
                self.rebuild(shard, &mut table, now, true);
            }
        }
        if !table.is_at_limit() && self.budget.reserve() {
            table.put(hash.get(), 0);
            return Ok(());
        }
        match self.overflow {
            Overflow::EvictNearestIdle if self.evict_for(&mut table, hash, now) => Ok(()),
            _ => Err(self.full_denial(shard, now)),
        }
    }

    /// Rebuilds the shard's table without its idle keys, larger if `grow` and still crowded.
    fn rebuild(&self, shard: &Shard, table: &mut Table, now: u64, grow: bool) {
        let mut soonest_idle = u64::MAX;
        let mut live = Vec::with_capacity(table.len());
        for (key, word) in table.entries() {
            match self.state.idle_after(word, now) {
                0 => self.state.release(word),
                after => {
                    soonest_idle = soonest_idle.min(after);
                    live.push((key, word));
                }
            }
        }
        self.budget.release(table.len() - live.len());
        shard
            .next_sweep
            .store(now.saturating_add(soonest_idle), Ordering::Relaxed);
        let mut capacity = table.capacity();
        let fair = Self::max_capacity(self.fair_share);
        while grow && capacity < Self::max_capacity(self.shard_max) {
            // Below the fair share, leave an eighth of headroom so the shard does not rebuild
            // again at the next new key; above it, grow only as far as needed.
            let needed = if capacity < fair {
                live.len() + live.len() / 8
            } else {
                live.len()
            };
            if Self::max_len(capacity, self.shard_max) > needed {
                break;
            }
            capacity = self.grown(capacity);
        }
        let mut fresh = Table::new(capacity, Self::max_len(capacity, self.shard_max));
        for (key, word) in live {
            fresh.put(key, word);
        }
        *table = fresh;
    }

    /// Evicts the key nearest to idle among the first few on `hash`'s probe path and gives its
    /// slot to `hash`: O(1), no entries move. The path starts at a spot the attacker cannot
    /// predict (the seeded hash), so a flood cannot aim at a chosen victim.
    fn evict_for(&self, table: &mut Table, hash: KeyHash, now: u64) -> bool {
        let victim = table
            .probe_path(hash.get())
            .take(EVICTION_SAMPLE)
            .min_by_key(|&(_, word)| self.state.idle_after(word, now));
        if let Some((i, word)) = victim {
            self.state.release(word);
            table.replace_at(i, hash.get());
            return true;
        }
        // `hash`'s home slot is empty: evict among the first keys after another spot, then
        // insert normally.
        let capacity = table.capacity();
        let start = ((hash.get().rotate_left(32) as u128 * capacity as u128) >> 64) as usize;
        let victim = (start..capacity)
            .chain(0..start)
            .filter_map(|i| {
                let slot = &table.slots()[i];
                (slot.key.load(Ordering::Relaxed) != table::EMPTY)
                    .then(|| (i, slot.state.load(Ordering::Relaxed)))
            })
            .take(EVICTION_SAMPLE)
            .min_by_key(|&(_, word)| self.state.idle_after(word, now));
        match victim {
            Some((i, word)) => {
                self.state.release(word);
                table.remove_at(i);
                table.put(hash.get(), 0);
                true
            }
            // The shard holds no key at all while the limiter is full: nothing here to evict.
            None => false,
        }
    }

    fn full_denial(&self, shard: &Shard, now: u64) -> Decision {
        let wait = shard
            .next_sweep
            .load(Ordering::Relaxed)
            .saturating_sub(now)
            .max(1);
        Decision {
            allowed: false,
            limit: self.state.capacity(),
            remaining: 0,
            retry_after: wait,
            reset_after: wait,
        }
    }
}

impl<S: KeyedState> Drop for Keyed<S> {
    fn drop(&mut self) {
        for shard in self.shards.iter_mut() {
            let table = shard
                .table
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            for (_, word) in table.entries() {
                self.state.release(word);
            }
        }
    }
}
