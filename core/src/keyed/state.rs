//! How each algorithm keeps one key's state in one word of the table.

use core::sync::atomic::{AtomicU64, Ordering};
use std::boxed::Box;

use crate::error::{validate_cost, CheckError};
use crate::limiter::{check_word, update_word, Exclusive, WordRule};
use crate::sliding_log::{heap_slots, slot_count, Compact, LogSlot, SlidingLog};
use crate::{Decision, Quota, QuotaError, RateLimiter};

/// An algorithm as the keyed table runs it: each key owns one word, `0` meaning "no state yet"
/// (a full limiter).
///
/// One-word rules keep their whole state in the word; the sliding log keeps a pointer to its
/// heap-allocated log there. The table only ever frees a word's heap state ([`release`]) while it
/// holds its shard exclusively, so a word read under the shared lock stays valid while in use.
///
/// [`release`]: KeyedState::release
pub trait KeyedState: Send + Sync {
    /// The most permits available at once.
    fn capacity(&self) -> u64;
    /// Decides and takes, as [`RateLimiter::check`].
    fn check(&self, cell: &AtomicU64, now: u64, cost: u64) -> Result<Decision, CheckError>;
    /// [`check`](KeyedState::check) for a caller that alone can reach `cell` (it holds the
    /// table by `&mut`): the same decision, and one-word rules store the new word with a plain
    /// store instead of a compare-and-swap. The default is `check`.
    #[inline]
    fn check_exclusive(
        &self,
        cell: &AtomicU64,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        self.check(cell, now, cost)
    }
    /// Decides on the stored word without taking anything.
    fn peek(&self, word: u64, now: u64, cost: u64) -> Result<Decision, CheckError>;
    /// Gives permits back, as [`RateLimiter::refund`].
    fn refund(&self, cell: &AtomicU64, now: u64, cost: u64) -> Result<Decision, CheckError>;
    /// Makes the key full again.
    fn reset(&self, cell: &AtomicU64);
    /// Nanoseconds from `now` until the word is idle (decides like `0` forever): `0` when idle.
    fn idle_after(&self, word: u64, now: u64) -> u64;
    /// Frees whatever the word owns; called once, with exclusive access, when a key is dropped.
    fn release(&self, _word: u64) {}
}

impl<R: WordRule + Send + Sync> KeyedState for R {
    fn capacity(&self) -> u64 {
        WordRule::capacity(self)
    }

    #[inline]
    fn check(&self, cell: &AtomicU64, now: u64, cost: u64) -> Result<Decision, CheckError> {
        check_word(cell, self, now, cost)
    }

    #[inline(always)]
    fn check_exclusive(
        &self,
        cell: &AtomicU64,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        check_word(&Exclusive(cell), self, now, cost)
    }

    fn peek(&self, word: u64, now: u64, cost: u64) -> Result<Decision, CheckError> {
        Ok(WordRule::check(self, word, now, cost)?.decision)
    }

    fn refund(&self, cell: &AtomicU64, now: u64, cost: u64) -> Result<Decision, CheckError> {
        update_word(cell, |word| WordRule::refund(self, word, now, cost))
    }

    fn reset(&self, cell: &AtomicU64) {
        cell.store(0, Ordering::Release);
    }

    fn idle_after(&self, word: u64, now: u64) -> u64 {
        WordRule::idle_after(self, word, now)
    }
}

/// Compact: each key's log is its own, and two threads racing on one key are rare, so the
/// padding that helps a shared log would only cost memory per key.
type HeapLog = SlidingLog<Box<[LogSlot]>, Compact>;

/// The sliding log, keyed: each key's word points to its own heap log of `limit` slots,
/// allocated on the key's first admitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedLog {
    quota: Quota,
}

impl KeyedLog {
    /// Sliding logs of `quota.limit()` slots (16 bytes each) per key.
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        slot_count(quota)?;
        Ok(KeyedLog { quota })
    }

    /// The log a word points to.
    ///
    /// # Safety
    /// `word` is non-zero, was stored by [`KeyedLog::check`], and has not been released: the
    /// table guarantees this for any word read under its shard's shared lock.
    unsafe fn log(word: u64) -> &'static HeapLog {
        &*(word as usize as *const HeapLog)
    }

    /// The decision an empty log gives: every valid cost is admitted.
    fn fresh(&self, cost: u64) -> Result<Decision, CheckError> {
        validate_cost(cost, self.quota.limit())?;
        Ok(Decision {
            allowed: true,
            limit: self.quota.limit(),
            remaining: self.quota.limit() - cost,
            retry_after: 0,
            reset_after: self.quota.period(),
        })
    }
}

impl KeyedState for KeyedLog {
    fn capacity(&self) -> u64 {
        self.quota.limit()
    }

    fn check(&self, cell: &AtomicU64, now: u64, cost: u64) -> Result<Decision, CheckError> {
        validate_cost(cost, self.quota.limit())?;
        let mut word = cell.load(Ordering::Acquire);
        if word == 0 {
            let log = heap_slots(self.quota)
                .and_then(|slots| HeapLog::placed(self.quota, slots))
                .expect("quota validated in KeyedLog::new");
            let fresh = Box::into_raw(Box::new(log)) as usize as u64;
            word = match cell.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => fresh,
                Err(theirs) => {
                    // SAFETY: `fresh` came from Box::into_raw above and was never shared.
                    drop(unsafe { Box::from_raw(fresh as usize as *mut HeapLog) });
                    theirs
                }
            };
        }
        // SAFETY: non-zero words in the cell were stored above and are only released under the
        // shard's exclusive lock, which the caller excludes by holding the shared one.
        unsafe { Self::log(word) }.check(now, cost)
    }

    fn peek(&self, word: u64, now: u64, cost: u64) -> Result<Decision, CheckError> {
        if word == 0 {
            return self.fresh(cost);
        }
        // SAFETY: as in `check`.
        unsafe { Self::log(word) }.peek(now, cost)
    }

    fn refund(&self, cell: &AtomicU64, now: u64, cost: u64) -> Result<Decision, CheckError> {
        let word = cell.load(Ordering::Acquire);
        if word == 0 {
            if cost == 0 {
                return Err(CheckError::ZeroCost);
            }
            // Nothing was taken: the key stays full.
            return Ok(Decision {
                allowed: true,
                limit: self.quota.limit(),
                remaining: self.quota.limit(),
                retry_after: 0,
                reset_after: 0,
            });
        }
        // SAFETY: as in `check`.
        unsafe { Self::log(word) }.refund(now, cost)
    }

    fn reset(&self, cell: &AtomicU64) {
        let word = cell.load(Ordering::Acquire);
        if word != 0 {
            // SAFETY: as in `check`.
            unsafe { Self::log(word) }.reset();
        }
    }

    fn idle_after(&self, word: u64, now: u64) -> u64 {
        if word == 0 {
            0
        } else {
            // SAFETY: as in `check`.
            unsafe { Self::log(word) }.idle_after(now)
        }
    }

    fn release(&self, word: u64) {
        if word != 0 {
            // SAFETY: the table calls release once per word, holding the shard exclusively.
            drop(unsafe { Box::from_raw(word as usize as *mut HeapLog) });
        }
    }
}
