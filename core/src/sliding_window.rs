//! Sliding window counter: a one-word approximation of the sliding log.
//!
//! Time is cut into windows `[k·period, (k+1)·period)` on the caller's clock. The rule keeps the
//! count of the current window (`cur`) and of the previous one (`prev`) and assumes the previous
//! window's requests were spread evenly, so at `elapsed` nanoseconds into the current window the
//! part of `prev` still inside the sliding period is `prev × (period - elapsed) / period`. A
//! request of cost `c` is admitted iff (all in integers, no rounding)
//!
//! ```text
//! prev·(period - elapsed) + cur·period + c·period <= limit·period
//! ```
//!
//! # Error bound
//!
//! Each aligned window admits at most `limit`. Any span of `period` nanoseconds covers the end of
//! one window and the start of the next; the admitted permits in it are at most
//! `limit + prev·elapsed/period < 2·limit`, reached only when the previous window's requests all
//! came at its very end. When traffic is spread out the estimate is close (Cloudflare measured
//! 0.003 % of requests wrongly decided on real traffic). Use the sliding log when the bound must
//! be exact, the fixed window when the simplest explanation matters more.
//!
//! # Packing
//!
//! One word: `cur` and `prev` in `b = bits(limit)` bits each, the window index in the other
//! `64 - 2b`. The index is stored whole: a quota is accepted only when every window of the
//! 64-bit clock fits in those bits, that is when `period >= 2^(2b)` ns
//! ([`QuotaError::PeriodTooShort`] otherwise): at least 1.05 ms for a limit up to 1023,
//! 268 ms up to 16 383, 17.2 s up to 131 071, 18.3 min up to 2²⁰ − 1 (the largest limit).
//! Shorter periods with such limits would wrap the index, and a clock stepping far enough back
//! would then look like one moving forward to a fresh window: an over-admission no decision
//! rule can prevent once the index is cut. Because it is whole, the stored window and `now`'s
//! compare exactly, whatever the jump: a clock that steps back decides as if at the start of
//! the stored window (stricter, never looser), one that moves on finds its window fresh. A wait
//! that would end past `u64::MAX` (in a window the clock never reaches) is reported as
//! `u64::MAX`: "never".

use crate::error::{validate_cost, CheckError, QuotaError};
use crate::limiter::{Step, Verdict, WordLimiter, WordRule};
use crate::{Decision, Quota};
use strength_reduce::StrengthReducedU64;

/// The largest `limit` a sliding window counter can count.
pub const SLIDING_WINDOW_MAX_LIMIT: u64 = (1 << 20) - 1;

/// The sliding-window-counter rule: pure arithmetic over one packed word.
#[derive(Clone, Copy, Debug)]
pub struct SlidingWindowRule {
    limit: u64,
    period: u64,
    /// Bits per counter.
    bits: u32,
    /// `period` as a multiply-and-shift divisor: every decision divides `now` by the period
    /// (and an admission's report divides by it again), and a hardware division is the
    /// slowest instruction of the rule; inside the compare-and-swap window it also widens the
    /// time in which another thread can force a retry.
    per_period: StrengthReducedU64,
}

// Equality and hashing follow the quota; `per_period` is derived from `period`.
impl PartialEq for SlidingWindowRule {
    fn eq(&self, other: &Self) -> bool {
        (self.limit, self.period) == (other.limit, other.period)
    }
}

impl Eq for SlidingWindowRule {}

impl core::hash::Hash for SlidingWindowRule {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (self.limit, self.period).hash(state);
    }
}

/// The state as seen at one `now`: which window applies and what it holds.
#[derive(Clone, Copy, Debug)]
struct View {
    /// Full index of the window the decision is made in.
    window: u64,
    /// Nanoseconds into that window.
    elapsed: u64,
    /// Nanoseconds from `now` to the start of that window: non-zero only when the clock stepped
    /// back behind the stored window.
    delay: u64,
    prev: u64,
    cur: u64,
    /// The caller's `now`.
    now: u64,
}

impl SlidingWindowRule {
    /// At most about `limit` permits in any span of `period` (see the error bound above).
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        let limit = quota.limit();
        if limit > SLIDING_WINDOW_MAX_LIMIT {
            return Err(QuotaError::LimitTooLarge {
                max: SLIDING_WINDOW_MAX_LIMIT,
            });
        }
        let bits = u64::BITS - limit.leading_zeros();
        // Every window index of the clock, up to `u64::MAX / period`, fits in `64 - 2b` bits.
        let min_period = 1u64 << (2 * bits);
        if quota.period() < min_period {
            return Err(QuotaError::PeriodTooShort { min: min_period });
        }
        Ok(SlidingWindowRule {
            limit,
            period: quota.period(),
            bits,
            // A quota's period is at least 1: the divisor is never 0.
            per_period: StrengthReducedU64::new(quota.period()),
        })
    }

    #[inline]
    fn counter_mask(&self) -> u64 {
        (1 << self.bits) - 1
    }

    /// `window` fits in the index bits: the constructor checked that every window does.
    #[inline]
    fn pack(&self, window: u64, prev: u64, cur: u64) -> u64 {
        window << (2 * self.bits) | prev << self.bits | cur
    }

    /// `now`'s window index and the time into it. The stored window or the next one, the usual
    /// cases, come from the stored index by a multiplication (`window·period` fits: every index
    /// stored is at most `u64::MAX / period`); any other `now` is divided.
    #[inline]
    fn locate(&self, state: u64, now: u64) -> (u64, u64) {
        if state != 0 {
            let stored = state >> (2 * self.bits);
            if let Some(into) = now.checked_sub(stored * self.period) {
                if into < self.period {
                    return (stored, into);
                }
                if into - self.period < self.period {
                    return (stored + 1, into - self.period);
                }
            }
        }
        StrengthReducedU64::div_rem(now, self.per_period)
    }

    #[inline]
    fn view(&self, state: u64, now: u64) -> View {
        let (window, elapsed) = self.locate(state, now);
        let fresh = View {
            window,
            elapsed,
            delay: 0,
            prev: 0,
            cur: 0,
            now,
        };
        if state == 0 {
            return fresh;
        }
        let prev = state >> self.bits & self.counter_mask();
        let cur = state & self.counter_mask();
        let stored = state >> (2 * self.bits);
        if stored == window {
            View { prev, cur, ..fresh }
        } else if stored.wrapping_add(1) == window {
            View { prev: cur, ..fresh }
        } else if stored < window {
            fresh
        } else {
            // The stored window lies ahead of `now` (the clock stepped back): decide at its
            // start, which the clock can reach (`stored <= u64::MAX / period`).
            View {
                window: stored,
                elapsed: 0,
                delay: stored * self.period - now,
                prev,
                cur,
                now,
            }
        }
    }

    /// `prev·(period - elapsed) + cur·period`: the weighted use, in permit-nanoseconds.
    #[inline]
    fn used(&self, v: &View, cur: u64) -> u128 {
        v.prev as u128 * (self.period - v.elapsed) as u128 + cur as u128 * self.period as u128
    }

    #[inline]
    fn budget(&self) -> u128 {
        self.limit as u128 * self.period as u128
    }

    #[inline]
    fn remaining(&self, v: &View, cur: u64) -> u64 {
        // floor((limit·period - used) / period) = limit - cur - ceil(prev·(period - elapsed) / period),
        // in 64 bits whenever the product fits (always, for periods under 2^44 ns ≈ 4.8 hours).
        let weight = self.period - v.elapsed;
        let decayed = match v.prev.checked_mul(weight) {
            Some(x) => {
                let (q, r) = StrengthReducedU64::div_rem(x, self.per_period);
                q + u64::from(r != 0)
            }
            None => (v.prev as u128 * weight as u128).div_ceil(self.period as u128) as u64,
        };
        self.limit.saturating_sub(cur).saturating_sub(decayed)
    }

    #[inline]
    fn reset_after(&self, v: &View, cur: u64) -> u64 {
        let windows = if cur > 0 {
            2
        } else if v.prev > 0 {
            1
        } else {
            return 0;
        };
        let left = windows * self.period as u128 - v.elapsed as u128 + v.delay as u128;
        Self::from_now(v, left)
    }

    /// An admission's report decided from scratch (after a clock that stepped back).
    #[cold]
    #[inline(never)]
    fn decide_again(&self, current: u64, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.check(current, now, cost).map(|v| v.decision)
    }

    /// A wait of `ns` from `now`, or `u64::MAX` ("never") when it ends past the end of time: the
    /// clock never reaches the window in which it would be over.
    fn from_now(v: &View, ns: u128) -> u64 {
        if v.now as u128 + ns > u64::MAX as u128 {
            u64::MAX
        } else {
            ns as u64
        }
    }

    /// Nanoseconds from the view's instant until a request of `cost` fits, for a denied request.
    /// A denial of `cost` permits seen through `v`: writes nothing.
    #[inline]
    fn denial(&self, v: &View, cost: u64) -> Verdict {
        Verdict {
            decision: Decision {
                allowed: false,
                limit: self.limit,
                remaining: self.remaining(v, v.cur),
                retry_after: self.wait(v, cost),
                reset_after: self.reset_after(v, v.cur),
            },
            next: None,
        }
    }

    #[inline]
    fn wait(&self, v: &View, cost: u64) -> u64 {
        let period = self.period as u128;
        // Earliest elapsed time `e` with weight·(period - e) + other·period <= limit·period.
        let earliest = |weight: u64, other: u64| -> u128 {
            let spare = (self.limit - other) as u128 * period;
            let quotient = match (u64::try_from(spare), weight) {
                (_, 0) => period,
                // A 64-bit division where it fits (every period under 2^64 / limit): the
                // 128-bit one is a library call that cost more than the rest of a denial.
                (Ok(spare), weight) => (spare / weight) as u128,
                (Err(_), weight) => spare / weight as u128,
            };
            period.saturating_sub(quotient)
        };
        let wait = if v.cur + cost <= self.limit && v.prev > 0 {
            let at = earliest(v.prev, v.cur + cost);
            if at < period {
                Some(at - v.elapsed as u128)
            } else {
                None
            }
        } else {
            None
        };
        let wait = wait.unwrap_or_else(|| {
            // In the next window `cur` becomes `prev`.
            (period - v.elapsed as u128) + earliest(v.cur, cost)
        });
        Self::from_now(v, wait + v.delay as u128)
    }
}

impl WordRule for SlidingWindowRule {
    fn capacity(&self) -> u64 {
        self.limit
    }

    #[inline]
    fn check(&self, state: u64, now: u64, cost: u64) -> Result<Verdict, CheckError> {
        validate_cost(cost, self.limit)?;
        let v = self.view(state, now);
        let cur = v.cur + cost;
        Ok(if self.used(&v, cur) <= self.budget() {
            Verdict {
                decision: Decision {
                    allowed: true,
                    limit: self.limit,
                    remaining: self.remaining(&v, cur),
                    retry_after: 0,
                    reset_after: self.reset_after(&v, cur),
                },
                next: Some(self.pack(v.window, v.prev, cur)),
            }
        } else {
            self.denial(&v, cost)
        })
    }

    /// Admission needs only the new counters; `remaining`, `reset_after` (divisions and 128-bit
    /// arithmetic) are reported after the swap.
    ///
    /// Always inlined into the compare-and-swap loop: out of line, the `Step` came back through
    /// memory in stores the caller's wider loads could not be forwarded from, a stall that was
    /// half of a denial's 32 ns.
    #[inline(always)]
    fn step(&self, state: u64, now: u64, cost: u64) -> Result<Step, CheckError> {
        validate_cost(cost, self.limit)?;
        let v = self.view(state, now);
        let cur = v.cur + cost;
        Ok(if self.used(&v, cur) <= self.budget() {
            Step::Store {
                next: self.pack(v.window, v.prev, cur),
                // The time into the window (a division) for `admitted`; a clock that stepped
                // back (`delay`) is rare enough to decide again.
                memo: if v.delay == 0 { v.elapsed } else { u64::MAX },
            }
        } else {
            Step::Decided(self.denial(&v, cost))
        })
    }

    /// The stored counters and the step's time into the window give the report without a
    /// second division of `now`.
    ///
    /// Always inlined, like `step`, and for the same reason: out of line, the `Decision` came
    /// back through memory and the caller's first wide load of it could not be forwarded from
    /// the byte store of `allowed`, a stall that `perf` put at 40% of an admission (16 ns on an
    /// AMD EPYC guest). The rare clock-stepped-back case decides again out of line.
    #[inline(always)]
    fn admitted(
        &self,
        current: u64,
        next: u64,
        elapsed: u64,
        now: u64,
        cost: u64,
    ) -> Result<Decision, CheckError> {
        if elapsed == u64::MAX {
            return self.decide_again(current, now, cost);
        }
        let cur = next & self.counter_mask();
        let v = View {
            window: 0, // not used by the report
            elapsed,
            delay: 0,
            prev: next >> self.bits & self.counter_mask(),
            cur,
            now,
        };
        Ok(Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.remaining(&v, cur),
            retry_after: 0,
            reset_after: self.reset_after(&v, cur),
        })
    }

    fn refund(&self, state: u64, now: u64, cost: u64) -> Result<Verdict, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let v = self.view(state, now);
        let from_cur = cost.min(v.cur);
        let from_prev = (cost - from_cur).min(v.prev);
        let v = View {
            prev: v.prev - from_prev,
            cur: v.cur - from_cur,
            ..v
        };
        Ok(Verdict {
            decision: Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.remaining(&v, v.cur),
                retry_after: 0,
                reset_after: self.reset_after(&v, v.cur),
            },
            next: (from_cur + from_prev > 0).then(|| self.pack(v.window, v.prev, v.cur)),
        })
    }

    #[inline]
    fn is_idle(&self, state: u64, now: u64) -> bool {
        let v = self.view(state, now);
        v.prev == 0 && v.cur == 0
    }

    fn idle_after(&self, state: u64, now: u64) -> u64 {
        let v = self.view(state, now);
        self.reset_after(&v, v.cur)
    }
}

/// A lock-free sliding-window-counter limiter for one subject.
///
/// ```
/// use ratewall::{Quota, RateLimiter, SlidingWindow, time::SECOND};
/// let limiter = SlidingWindow::new(Quota::per_second(10)?)?;
/// for _ in 0..10 {
///     assert!(limiter.check(0, 1)?.allowed);
/// }
/// // Half-way into the next window, half of the previous window still counts: 5 permits free.
/// let half = SECOND + SECOND / 2;
/// assert_eq!(limiter.peek(half, 1)?.remaining, 4);
/// assert!(limiter.check(half, 5)?.allowed);
/// assert!(!limiter.check(half, 1)?.allowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type SlidingWindow = WordLimiter<SlidingWindowRule>;

impl SlidingWindow {
    /// A sliding-window-counter limiter for the quota.
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        Ok(Self::from_rule(SlidingWindowRule::new(quota)?))
    }
}
