//! Token bucket in its GCRA form: smooth, one word, exact.
//!
//! The bucket holds up to `burst` permits and refills one permit every
//! `T = ceil(period / limit)` nanoseconds. Instead of a token count and a timestamp it stores one
//! number, the *theoretical arrival time* `tat`: the moment the bucket would be full again. A
//! request of cost `c` at `now` is admitted iff
//!
//! ```text
//! max(tat, now) + c·T <= now + burst·T
//! ```
//!
//! and then `tat` becomes `max(tat, now) + c·T`. The word `0` is a full bucket.
//!
//! Why GCRA: one word means one compare-and-swap; the refill needs no timer; the wait until the
//! next admission falls out of the same inequality, exactly.
//!
//! # Limits of the representation
//!
//! - `T` is rounded *up* to whole nanoseconds, so a rate that does not divide evenly is slightly
//!   slower than asked (stricter, never looser): `3 per 1 s` refills every 333 333 334 ns.
//! - `burst × T` must fit in a `u64` of nanoseconds (about 584 years), checked at construction.
//! - Time horizon: `tat` is a `u64` on the caller's scale. Within `burst × T` of `u64::MAX` a
//!   request whose new `tat` would pass `u64::MAX` is denied (stricter, never looser).
//! - A `now` older than one already seen only makes the inequality stricter: the bucket never
//!   admits more because the clock stepped back.

use crate::error::{validate_cost, CheckError, QuotaError};
use crate::limiter::{Step, Verdict, WordLimiter, WordRule};
use crate::{Decision, Quota};

/// The GCRA rule: the pure arithmetic of the token bucket, shared by every store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenBucketRule {
    /// Emission interval: nanoseconds per permit.
    interval: u64,
    /// `burst × interval`: how far ahead of `now` the `tat` may run.
    tolerance: u64,
    burst: u64,
}

impl TokenBucketRule {
    /// A bucket of capacity `quota.limit()` refilling `quota.limit()` permits per `quota.period()`.
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        Self::with_burst(quota, quota.limit())
    }

    /// A bucket of capacity `burst` refilling at the quota's rate. The classic "capacity 5,
    /// 1 per second" bucket is `with_burst(Quota::per_second(1)?, 5)`.
    pub fn with_burst(quota: Quota, burst: u64) -> Result<Self, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        let interval = quota.period().div_ceil(quota.limit());
        let tolerance = burst
            .checked_mul(interval)
            .ok_or(QuotaError::BurstTooLarge)?;
        Ok(TokenBucketRule {
            interval,
            tolerance,
            burst,
        })
    }

    /// Nanoseconds between two permits (`ceil(period / limit)`).
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// The bucket's capacity.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Permits available when the bucket's `tat` runs `ahead` nanoseconds past `now`.
    #[inline]
    fn available(&self, ahead: u64) -> u64 {
        let room = self.tolerance.saturating_sub(ahead);
        // A denial of one permit always has less than one interval of room: skip the division
        // (the deny path is a load and a few subtractions, no division).
        if room < self.interval {
            0
        } else {
            room / self.interval
        }
    }

    /// A denial at `now` of a bucket whose `max(tat, now)` is `base`.
    #[inline]
    fn denial(&self, base: u64, now: u64, retry_after: u64) -> Verdict {
        Verdict {
            decision: Decision {
                allowed: false,
                limit: self.burst,
                remaining: self.available(base - now),
                retry_after,
                reset_after: base - now,
            },
            next: None,
        }
    }
}

impl WordRule for TokenBucketRule {
    fn capacity(&self) -> u64 {
        self.burst
    }

    #[inline]
    fn check(&self, tat: u64, now: u64, cost: u64) -> Result<Verdict, CheckError> {
        validate_cost(cost, self.burst)?;
        let base = tat.max(now);
        // cost <= burst, so cost × interval <= tolerance and cannot overflow; everything below
        // is a distance from `now` of at most `tolerance`, or checked.
        let Some(new_tat) = base.checked_add(cost * self.interval) else {
            // Waiting never lowers `max(tat, now) + c·T`: a request whose new `tat` would pass
            // the end of time can never pass, however long it waits.
            return Ok(self.denial(base, now, u64::MAX));
        };
        let ahead = new_tat - now;
        if ahead <= self.tolerance {
            Ok(Verdict {
                decision: Decision {
                    allowed: true,
                    limit: self.burst,
                    remaining: self.available(ahead),
                    retry_after: 0,
                    reset_after: ahead,
                },
                next: Some(new_tat),
            })
        } else {
            Ok(self.denial(base, now, ahead - self.tolerance))
        }
    }

    /// Admission needs only the new `tat`; `remaining` (a division) is reported after the swap.
    #[inline]
    fn step(&self, tat: u64, now: u64, cost: u64) -> Result<Step, CheckError> {
        validate_cost(cost, self.burst)?;
        let base = tat.max(now);
        Ok(match base.checked_add(cost * self.interval) {
            Some(new_tat) if new_tat - now <= self.tolerance => Step::Store {
                next: new_tat,
                memo: 0,
            },
            Some(new_tat) => Step::Decided(self.denial(base, now, new_tat - now - self.tolerance)),
            None => Step::Decided(self.denial(base, now, u64::MAX)),
        })
    }

    /// The stored `tat` alone gives the report: no second pass over the arithmetic.
    #[inline]
    fn admitted(
        &self,
        _: u64,
        new_tat: u64,
        _: u64,
        now: u64,
        _: u64,
    ) -> Result<Decision, CheckError> {
        let ahead = new_tat - now;
        Ok(Decision {
            allowed: true,
            limit: self.burst,
            remaining: self.available(ahead),
            retry_after: 0,
            reset_after: ahead,
        })
    }

    fn refund(&self, tat: u64, now: u64, cost: u64) -> Result<Verdict, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let new_tat = tat
            .saturating_sub(cost.saturating_mul(self.interval))
            .max(now);
        let next = (new_tat < tat).then_some(new_tat);
        let kept = next.unwrap_or(tat).max(now);
        Ok(Verdict {
            decision: Decision {
                allowed: true,
                limit: self.burst,
                remaining: self.available(kept - now),
                retry_after: 0,
                reset_after: kept - now,
            },
            next,
        })
    }

    #[inline]
    fn is_idle(&self, tat: u64, now: u64) -> bool {
        tat <= now
    }

    fn idle_after(&self, tat: u64, now: u64) -> u64 {
        tat.saturating_sub(now)
    }
}

/// A lock-free token bucket for one subject.
///
/// ```
/// use ratewall::{Quota, RateLimiter, TokenBucket, time::SECOND};
/// // Capacity 5, refilling 1 per second.
/// let bucket = TokenBucket::with_burst(Quota::per_second(1)?, 5)?;
/// for _ in 0..5 {
///     assert!(bucket.check(0, 1)?.allowed);
/// }
/// let sixth = bucket.check(0, 1)?;
/// assert!(!sixth.allowed);
/// assert_eq!(sixth.retry_after, SECOND);
/// assert!(bucket.check(SECOND, 1)?.allowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type TokenBucket = WordLimiter<TokenBucketRule>;

impl TokenBucket {
    /// A full bucket of capacity `quota.limit()` refilling at the quota's rate.
    pub fn new(quota: Quota) -> Result<Self, QuotaError> {
        Ok(Self::from_rule(TokenBucketRule::new(quota)?))
    }

    /// A full bucket of capacity `burst` refilling at the quota's rate.
    pub fn with_burst(quota: Quota, burst: u64) -> Result<Self, QuotaError> {
        Ok(Self::from_rule(TokenBucketRule::with_burst(quota, burst)?))
    }
}
