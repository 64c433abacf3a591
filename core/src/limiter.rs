//! The seam between an algorithm and its storage.
//!
//! As in redis-cell, each one-word algorithm is a pure *rule*: a function from (stored word,
//! `now`, `cost`) to a [`Decision`] and, when the request is admitted, the word to store. The rule
//! knows nothing of atomics, maps or Redis. [`WordLimiter`] pairs a rule with one [`AtomicU64`]
//! and a compare-and-swap loop; the keyed layer pairs the same rule with one word per key; the
//! Redis scripts mirror the same arithmetic. One rule, many stores, same decisions.
//!
//! [`AtomicU64`]: core::sync::atomic::AtomicU64

use crate::error::CheckError;
use crate::sync::{AtomicU64, Ordering};
use crate::Decision;
use crossbeam_utils::CachePadded;

/// What a rule says about one request: the decision, and the word to store if anything changes.
///
/// `next` is `None` whenever nothing must be written; in particular a denial never writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The decision to return to the caller.
    pub decision: Decision,
    /// The new state word, or `None` when the state stays as it is.
    pub next: Option<u64>,
}

/// One pass of a check's compare-and-swap loop: see [`WordRule::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Fully decided: store `next` (if any), then return `decision`.
    Decided(Verdict),
    /// Admitted: store `next`. The decision is computed after the store, by
    /// [`WordRule::admitted`], which may reuse `memo`: whatever the rule worked out on the way
    /// and wants to keep (the default ignores it).
    Store {
        /// The word to store.
        next: u64,
        /// The rule's own note for [`WordRule::admitted`].
        memo: u64,
    },
}

/// A rate-limiting algorithm whose whole state is one `u64`, as a pure function.
///
/// The all-zero word is the initial state ("no requests seen"), so a freshly zeroed map slot or a
/// missing Redis key is a full limiter.
pub trait WordRule {
    /// The most permits available at once (`burst` or `limit`): [`Decision::limit`].
    fn capacity(&self) -> u64;

    /// Decides a request of `cost` permits at `now` against the stored `state`; `next` holds the
    /// word to store when admitted.
    fn check(&self, state: u64, now: u64, cost: u64) -> Result<Verdict, CheckError>;

    /// What a check's compare-and-swap loop runs between reading the word and swapping it.
    /// The default is [`check`](Self::check), fully decided. A rule whose reported fields cost
    /// more than the new word (a division for `remaining`) returns [`Step::Store`] when it
    /// admits: the swap then follows the read as closely as possible, so another thread has
    /// less time to change the word and force a retry, and the report is computed once, after
    /// the swap succeeded.
    #[inline]
    fn step(&self, state: u64, now: u64, cost: u64) -> Result<Step, CheckError> {
        self.check(state, now, cost).map(Step::Decided)
    }

    /// The decision of an admission that [`step`](Self::step) returned as [`Step::Store`],
    /// computed once the swap succeeded: `current` is the word replaced, `next` and `memo` are
    /// the step's. The default decides again with [`check`](Self::check) on `current` (the same
    /// pure function, so the same decision); a rule overrides it to skip work the step did.
    #[inline]
    fn admitted(
        &self,
        current: u64,
        next: u64,
        memo: u64,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        let _ = (next, memo);
        self.check(current, now, cost).map(|v| v.decision)
    }

    /// Gives `cost` permits back at `now`. The decision describes the state after the refund
    /// (`allowed` is `true`, `retry_after` is 0).
    fn refund(&self, state: u64, now: u64, cost: u64) -> Result<Verdict, CheckError>;

    /// `true` when `state` at `now` is fully replenished, so that it decides exactly like the
    /// all-zero word at every later time: such state can be dropped without changing anything.
    fn is_idle(&self, state: u64, now: u64) -> bool;

    /// Nanoseconds from `now` until `state` is idle (0 when it already is). The keyed layer
    /// evicts the entry nearest to idle first when it must make room.
    fn idle_after(&self, state: u64, now: u64) -> u64;
}

/// The operations every limiter offers, whatever its algorithm and storage.
///
/// All take `&self`: limiters are shared between threads as they are (`Sync`), with lock-free
/// state.
pub trait RateLimiter {
    /// Decides a request of `cost` permits at `now` and, if admitted, takes the permits.
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError>;

    /// Decides like [`check`](RateLimiter::check) but takes nothing.
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError>;

    /// Gives `cost` permits back (for example when only failed logins should count). Never
    /// raises the limiter above full. The decision describes the state after the refund.
    fn refund(&self, now: u64, cost: u64) -> Result<Decision, CheckError>;

    /// Forgets all state: the limiter is full again.
    fn reset(&self);

    /// The most permits available at once: [`Decision::limit`].
    fn capacity(&self) -> u64;
}

/// A one-word rule over one atomic word: the lock-free single-subject limiter.
///
/// `check` is a compare-and-swap loop: read the word, ask the rule, and write its `next` word only
/// if nobody changed the word in between; a denial returns without writing. Because the rule sees
/// `now` together with the word it replaces, a thread holding an older `now` can never rewind
/// state another thread advanced (the bug behind golang/go#71360).
///
/// The state word has a cache line of its own ([`CachePadded`]): under contention the line
/// holding it moves between cores on every admission, and the rule's parameters, read by every
/// check, must not move with it. With two threads on one limiter that took a token bucket from
/// 66 to 43 ns per decision (`make bench`, `two_threads`).
#[derive(Debug)]
pub struct WordLimiter<R> {
    rule: R,
    state: CachePadded<AtomicU64>,
}

impl<R: WordRule> WordLimiter<R> {
    /// A full limiter following `rule`.
    pub fn from_rule(rule: R) -> Self {
        WordLimiter {
            rule,
            state: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// The rule this limiter follows.
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// The raw state word (for diagnostics and tests).
    pub fn state(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// `true` when the limiter is full at `now` (see [`WordRule::is_idle`]).
    pub fn is_idle(&self, now: u64) -> bool {
        self.rule.is_idle(self.state(), now)
    }

    fn update(
        &self,
        now: u64,
        cost: u64,
        step: impl Fn(&R, u64, u64, u64) -> Result<Verdict, CheckError>,
    ) -> Result<Decision, CheckError> {
        update_word(&*self.state, |word| step(&self.rule, word, now, cost))
    }
}

/// The compare-and-swap loop shared by every one-word store: apply `step` to the current word
/// and store its `next` word only if the word did not change meanwhile; a verdict without `next`
/// (a denial, a peek) returns without writing.
#[inline]
pub(crate) fn update_word(
    cell: &impl WordCell,
    step: impl Fn(u64) -> Result<Verdict, CheckError>,
) -> Result<Decision, CheckError> {
    let mut current = cell.load_word();
    loop {
        let verdict = step(current)?;
        let Some(next) = verdict.next else {
            return Ok(verdict.decision);
        };
        match cell.cas_word(current, next) {
            Ok(_) => return Ok(verdict.decision),
            Err(actual) => current = actual,
        }
    }
}

/// A check on one word: [`WordRule::step`] in a compare-and-swap loop, the report after the swap.
#[inline(always)]
pub(crate) fn check_word<R: WordRule + ?Sized>(
    cell: &impl WordCell,
    rule: &R,
    now: u64,
    cost: u64,
) -> Result<Decision, CheckError> {
    let mut current = cell.load_word();
    loop {
        let (next, decided, memo) = match rule.step(current, now, cost)? {
            Step::Decided(Verdict {
                decision,
                next: None,
            }) => return Ok(decision),
            Step::Decided(Verdict {
                decision,
                next: Some(next),
            }) => (next, Some(decision), 0),
            Step::Store { next, memo } => (next, None, memo),
        };
        match cell.cas_word(current, next) {
            Ok(_) => {
                return match decided {
                    Some(decision) => Ok(decision),
                    None => rule.admitted(current, next, memo, now, cost),
                }
            }
            Err(actual) => current = actual,
        }
    }
}

/// An atomic word [`update_word`] can run on: the crate's own (loom's under `--cfg loom`, so the
/// model checker sees the loop) and `core`'s (stores that loom does not model, such as the keyed
/// layer's tables), so both build under loom.
pub(crate) trait WordCell {
    fn load_word(&self) -> u64;
    fn cas_word(&self, current: u64, next: u64) -> Result<u64, u64>;
}

macro_rules! word_cell {
    ($atomic:ty) => {
        impl WordCell for $atomic {
            #[inline]
            fn load_word(&self) -> u64 {
                self.load(Ordering::Acquire)
            }

            #[inline]
            fn cas_word(&self, current: u64, next: u64) -> Result<u64, u64> {
                self.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            }
        }
    };
}

word_cell!(core::sync::atomic::AtomicU64);
#[cfg(loom)]
word_cell!(AtomicU64);

/// A word that only its caller can reach, because the caller holds `&mut` on the structure it
/// lives in (see [`Keyed::check_hash_mut`](crate::keyed::Keyed::check_hash_mut)): read and
/// written with plain loads and stores. The compare-and-swap cannot fail, so
/// [`check_word`] runs its loop once and makes the same decision it would make on a shared word,
/// without an atomic read-modify-write.
#[cfg(feature = "std")]
pub(crate) struct Exclusive<'a>(pub(crate) &'a core::sync::atomic::AtomicU64);

#[cfg(feature = "std")]
impl WordCell for Exclusive<'_> {
    #[inline]
    fn load_word(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    fn cas_word(&self, current: u64, next: u64) -> Result<u64, u64> {
        self.0.store(next, Ordering::Relaxed);
        Ok(current)
    }
}

impl<R: WordRule> RateLimiter for WordLimiter<R> {
    // Always inlined: a check is a few instructions around one compare-and-swap, and a call
    // (saving registers, passing the 40-byte decision through memory) costs as much again.
    #[inline(always)]
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        check_word(&*self.state, &self.rule, now, cost)
    }

    #[inline]
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        let state = self.state.load(Ordering::Acquire);
        Ok(self.rule.check(state, now, cost)?.decision)
    }

    fn refund(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.update(now, cost, R::refund)
    }

    fn reset(&self) {
        self.state.store(0, Ordering::Release);
    }

    fn capacity(&self) -> u64 {
        self.rule.capacity()
    }
}
