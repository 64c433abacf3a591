//! Fixed window: at most `limit` permits per window of `period`.
//!
//! A key's window opens at its first admitted request and lasts `period`, as in
//! express-rate-limit, `limits` and rate-limiter-flexible, so resets are not synchronised across
//! clients. With [`FixedWindowRule::aligned`] windows are instead `[k·period, (k+1)·period)` on
//! the caller's clock, as in Flask-Limiter's storage-side windows.
//!
//! A request of cost `c` is admitted iff `count + c <= limit` in the current window. It is the
//! cheapest algorithm and the easiest to explain to clients ("100 per hour, resets at …"), but a
//! client can spend a full window at its end and another at the start of the next: up to
//! `2 × limit` in a span of `period`. When that boundary burst matters, use the sliding log
//! (exact) or the sliding window counter (approximate, one word).
//!
//! # Packing
//!
//! The state is one word: the low `b = bits(limit)` bits count permits, the high bits hold the
//! window's end rounded *up* to a multiple of `2^b` nanoseconds. So the window lasts up to
//! `2^b - 1` ns longer than `period`: stricter, never looser. To keep that rounding under 1/16 of
//! the period, construction requires `period >= 2^(b+4)` ns (`limit` 100 → 2 µs, `limit` 10⁶ →
//! 17 ms) and `limit < 2^59`. A window whose end would reach the largest representable time never
//! ends (stricter, never looser): its decisions say `reset_after = u64::MAX`, and a denial
//! `retry_after = u64::MAX` ("never"). A `now` earlier than the window's start counts against the
//! current window.

use crate::error::{validate_cost, CheckError, QuotaError};
use crate::limiter::{Verdict, WordLimiter, WordRule};
use crate::{Decision, Quota};

/// The fixed-window rule: pure arithmetic over one packed word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FixedWindowRule {
    limit: u64,
    period: u64,
    /// Count bits; also the log2 of the time quantum of the window end.
    bits: u32,
    aligned: bool,
}

/// The largest `limit` a fixed window can count.
pub const FIXED_WINDOW_MAX_LIMIT: u64 = (1 << 59) - 1;

impl FixedWindowRule {
    /// Windows that open at each key's first admitted request.
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        let limit = quota.limit();
        if limit > FIXED_WINDOW_MAX_LIMIT {
            return Err(QuotaError::LimitTooLarge {
                max: FIXED_WINDOW_MAX_LIMIT,
            });
        }
        let bits = u64::BITS - limit.leading_zeros();
        let min_period = 1u64 << (bits + 4);
        if quota.period() < min_period {
            return Err(QuotaError::PeriodTooShort { min: min_period });
        }
        Ok(FixedWindowRule {
            limit,
            period: quota.period(),
            bits,
            aligned: false,
        })
    }

    /// Windows aligned to multiples of `period` on the caller's clock (shared reset instants).
    pub fn aligned(quota: Quota) -> Result<Self, QuotaError> {
        Ok(FixedWindowRule {
            aligned: true,
            ..Self::new(quota)?
        })
    }

    /// Whether windows are aligned to multiples of the period.
    pub fn is_aligned(&self) -> bool {
        self.aligned
    }

    #[inline]
    fn count_mask(&self) -> u64 {
        (1 << self.bits) - 1
    }

    /// The largest representable window end: a window ending here never ends.
    #[inline]
    fn end_of_time(&self) -> u64 {
        !self.count_mask()
    }

    /// The end of a window opened at `now`, rounded up to the time quantum.
    /// Out of line: a window opens once per period, and keeping this (a division for aligned
    /// windows) out of the hot path lets `check` inline into its caller.
    #[cold]
    #[inline(never)]
    fn open_end(&self, now: u64) -> u64 {
        let start = if self.aligned {
            now - now % self.period
        } else {
            now
        };
        // Round up to the quantum (a power of two): add its mask, then clear it.
        start
            .checked_add(self.period)
            .and_then(|end| end.checked_add(self.count_mask()))
            .map_or(self.end_of_time(), |end| end & !self.count_mask())
    }

    #[inline]
    fn expired(&self, end: u64, now: u64) -> bool {
        now >= end && end != self.end_of_time()
    }

    /// The current window `(end, count)` at `now`: the stored one, or a fresh one if it ended.
    #[inline]
    fn window(&self, state: u64, now: u64) -> (u64, u64) {
        let end = state & !self.count_mask();
        if self.expired(end, now) {
            (self.open_end(now), 0)
        } else {
            (end, state & self.count_mask())
        }
    }

    #[inline]
    fn decision(&self, allowed: bool, end: u64, count: u64, now: u64) -> Decision {
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit - count,
            retry_after: match (allowed, end == self.end_of_time()) {
                (true, _) => 0,
                (false, true) => u64::MAX, // a window that never ends never frees a permit
                (false, false) => end - now,
            },
            reset_after: if end == self.end_of_time() {
                u64::MAX // nor does it ever reset
            } else {
                end.saturating_sub(now)
            },
        }
    }
}

impl WordRule for FixedWindowRule {
    fn capacity(&self) -> u64 {
        self.limit
    }

    #[inline]
    fn check(&self, state: u64, now: u64, cost: u64) -> Result<Verdict, CheckError> {
        validate_cost(cost, self.limit)?;
        let (end, count) = self.window(state, now);
        // A fresh window has count 0 and cost <= limit, so a denial always has now < end.
        Ok(if count + cost <= self.limit {
            Verdict {
                decision: self.decision(true, end, count + cost, now),
                next: Some(end | (count + cost)),
            }
        } else {
            Verdict {
                decision: self.decision(false, end, count, now),
                next: None,
            }
        })
    }

    fn refund(&self, state: u64, now: u64, cost: u64) -> Result<Verdict, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let end = state & !self.count_mask();
        let count = state & self.count_mask();
        if self.expired(end, now) {
            // No window in force: nothing to give back, and refunding must not open one.
            return Ok(Verdict {
                decision: self.decision(true, end, 0, now),
                next: None,
            });
        }
        // A window emptied by refunds still resets at its end: same decision as any refund.
        let left = count - cost.min(count);
        Ok(Verdict {
            decision: self.decision(true, end, left, now),
            next: (left != count).then_some(end | left),
        })
    }

    #[inline]
    fn is_idle(&self, state: u64, now: u64) -> bool {
        // A window emptied by refunds still fixes when the next window may open: not idle.
        state == 0 || self.expired(state & !self.count_mask(), now)
    }

    fn idle_after(&self, state: u64, now: u64) -> u64 {
        if self.is_idle(state, now) {
            0
        } else if state & !self.count_mask() == self.end_of_time() {
            u64::MAX
        } else {
            (state & !self.count_mask()) - now
        }
    }
}

/// A lock-free fixed-window limiter for one subject.
///
/// ```
/// use ratewall::{FixedWindow, Quota, RateLimiter, time::MINUTE};
/// let window = FixedWindow::new(Quota::per_minute(3)?)?;
/// for _ in 0..3 {
///     assert!(window.check(0, 1)?.allowed);
/// }
/// let denied = window.check(20 * 1_000_000_000, 1)?;
/// assert!(!denied.allowed);
/// // The window opened at 0 and resets 40 s later (to within 2^bits(3) = 4 ns).
/// assert!(denied.retry_after >= 40 * 1_000_000_000 && denied.retry_after < 40 * 1_000_000_000 + 4);
/// assert!(window.check(MINUTE + 4, 1)?.allowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type FixedWindow = WordLimiter<FixedWindowRule>;

impl FixedWindow {
    /// A fixed-window limiter whose window opens at the first admitted request.
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        Ok(Self::from_rule(FixedWindowRule::new(quota)?))
    }

    /// A fixed-window limiter with windows aligned to multiples of the period.
    pub fn aligned(quota: Quota) -> Result<Self, QuotaError> {
        Ok(Self::from_rule(FixedWindowRule::aligned(quota)?))
    }
}
