//! Sequential reference models of the four algorithms, written from their documented semantics
//! (DESIGN.md §3 and each algorithm's module docs), not from the implementation.
//!
//! Each model is plain bookkeeping in wide integers: no packing, no atomics, no saturation tricks
//! except where the documentation itself prescribes them. They are slow and obviously right;
//! the property tests in `model.rs` require the real limiters to return exactly the same
//! decisions and errors.
//!
//! `peek` is defined once for all models as "`check` on a copy": deciding without taking.
#![allow(dead_code)]

use ratewall::{CheckError, Decision, QuotaError};

const MAX: u128 = u64::MAX as u128;

/// What every reference offers: the three operations of `RateLimiter`, sequentially.
pub trait Reference: Clone {
    fn capacity(&self) -> u64;
    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError>;
    fn refund(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError>;
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.clone().check(now, cost)
    }
}

/// A request costs at least one permit and never more than the limiter can hold at once.
fn admissible(cost: u64, capacity: u64) -> Result<(), CheckError> {
    match cost {
        0 => Err(CheckError::ZeroCost),
        c if c > capacity => Err(CheckError::InsufficientCapacity { cost, capacity }),
        _ => Ok(()),
    }
}

fn quota(limit: u64, period: u64) -> Result<(), QuotaError> {
    if limit == 0 {
        Err(QuotaError::ZeroLimit)
    } else if period == 0 {
        Err(QuotaError::ZeroPeriod)
    } else {
        Ok(())
    }
}

/// Clamps a duration to what a `u64` can say; `u64::MAX` reads "never".
fn ns(x: u128) -> u64 {
    x.min(MAX) as u64
}

/// A wait of `x` ns from `now`, or "never" if it would end after the last instant of the clock.
fn within_time(now: u64, x: u128) -> u64 {
    if now as u128 + x > MAX {
        u64::MAX
    } else {
        x as u64
    }
}

// ------------------------------------------------------------------------------------------------
// Token bucket
// ------------------------------------------------------------------------------------------------

/// A bucket of credit measured in nanoseconds of refill: one permit is `per_permit` ns of credit,
/// the bucket holds at most `capacity = burst × per_permit`, and it refills one ns of credit per
/// ns of time. `credit` is what the bucket held at instant `anchor`; at any other instant it
/// holds `min(capacity, credit + (now - anchor))`. When the clock steps back the same formula
/// runs backwards (the refill between `now` and `anchor` has not happened yet), so the bucket
/// holds less, possibly less than nothing: stricter, never looser.
///
/// The bucket is re-anchored whenever it changes. Time horizon (documented): the instant at
/// which the bucket would be full again must be representable as a `u64`, or the request is
/// denied and can never pass.
#[derive(Clone, Debug)]
pub struct RefBucket {
    burst: u64,
    per_permit: i128,
    capacity: i128,
    credit: i128,
    anchor: i128,
}

impl RefBucket {
    pub fn new(limit: u64, period: u64, burst: u64) -> Result<Self, QuotaError> {
        quota(limit, period)?;
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        // One permit every ceil(period / limit) ns: rounded so the rate is never faster.
        let per_permit = (period as i128 + limit as i128 - 1) / limit as i128;
        let capacity = (burst as u128 * per_permit as u128)
            .try_into()
            .ok()
            .filter(|&c: &i128| c <= MAX as i128)
            .ok_or(QuotaError::BurstTooLarge)?;
        Ok(RefBucket {
            burst,
            per_permit,
            capacity,
            // Full at time 0, hence full at every later time.
            credit: capacity,
            anchor: 0,
        })
    }

    pub fn per_permit(&self) -> u64 {
        self.per_permit as u64
    }

    fn credit_at(&self, now: u64) -> i128 {
        (self.credit + (now as i128 - self.anchor)).min(self.capacity)
    }

    /// `true` when the bucket is full at `now`.
    pub fn idle(&self, now: u64) -> bool {
        self.credit_at(now) >= self.capacity
    }

    fn permits(&self, credit: i128) -> u64 {
        (credit.max(0) / self.per_permit) as u64
    }
}

impl Reference for RefBucket {
    fn capacity(&self) -> u64 {
        self.burst
    }

    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        admissible(cost, self.burst)?;
        let have = self.credit_at(now);
        let need = cost as i128 * self.per_permit;
        let left = have - need;
        // The instant the bucket would be full again if this request were taken.
        let full_again = now as i128 + (self.capacity - left);
        if left >= 0 && full_again <= MAX as i128 {
            self.credit = left;
            self.anchor = now as i128;
            return Ok(Decision {
                allowed: true,
                limit: self.burst,
                remaining: self.permits(left),
                retry_after: 0,
                reset_after: (self.capacity - left) as u64,
            });
        }
        // Waiting only adds credit; `full_again` does not move while waiting, so a request whose
        // `full_again` is past the end of time can never pass.
        let retry_after = if full_again > MAX as i128 {
            u64::MAX
        } else {
            (need - have) as u64
        };
        Ok(Decision {
            allowed: false,
            limit: self.burst,
            remaining: self.permits(have),
            retry_after,
            reset_after: ns((self.capacity - have) as u128),
        })
    }

    fn refund(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let have = self.credit_at(now);
        let back = (cost as i128).saturating_mul(self.per_permit);
        let after = have.saturating_add(back).min(self.capacity);
        if have < self.capacity {
            self.credit = after;
            self.anchor = now as i128;
        }
        Ok(Decision {
            allowed: true,
            limit: self.burst,
            remaining: self.permits(after),
            retry_after: 0,
            reset_after: ns((self.capacity - after) as u128),
        })
    }
}

// ------------------------------------------------------------------------------------------------
// Fixed window
// ------------------------------------------------------------------------------------------------

/// Number of bits needed to count up to `limit`.
pub fn bits_for(limit: u64) -> u32 {
    let mut bits = 0;
    while (1u128 << bits) <= limit as u128 {
        bits += 1;
    }
    bits
}

/// Explicit window bookkeeping: the current window's end and its count.
///
/// A window opens at the first admitted request after the previous one ended (or at the
/// multiple of `period` below it, when aligned) and ends `period` later, the end rounded up to a
/// multiple of `2^bits(limit)` ns (documented packing quantisation). An end at or past the
/// largest such multiple representable in a `u64` never comes: the window never ends. A request
/// at any `now` before the current window's end (including a `now` before its start: the clock
/// stepped back) counts against the current window.
#[derive(Clone, Debug)]
pub struct RefFixed {
    limit: u64,
    period: u64,
    aligned: bool,
    quantum: u128,
    end_of_time: u128,
    window: Option<(u128, u64)>,
}

impl RefFixed {
    pub fn new(limit: u64, period: u64, aligned: bool) -> Result<Self, QuotaError> {
        quota(limit, period)?;
        let max = (1u64 << 59) - 1;
        if limit > max {
            return Err(QuotaError::LimitTooLarge { max });
        }
        let bits = bits_for(limit);
        let min = 1u64 << (bits + 4);
        if period < min {
            return Err(QuotaError::PeriodTooShort { min });
        }
        let quantum = 1u128 << bits;
        Ok(RefFixed {
            limit,
            period,
            aligned,
            quantum,
            end_of_time: MAX / quantum * quantum,
            window: None,
        })
    }

    fn forever(&self, end: u128) -> bool {
        end >= self.end_of_time
    }

    /// The window in force at `now`, if any: `(end, count)`.
    fn live(&self, now: u64) -> Option<(u128, u64)> {
        self.window
            .filter(|&(end, _)| self.forever(end) || (now as u128) < end)
    }

    /// The end of a window that would open at `now`.
    fn end_if_opened(&self, now: u64) -> u128 {
        let start = if self.aligned {
            now / self.period * self.period
        } else {
            now
        };
        let end = (start as u128 + self.period as u128).div_ceil(self.quantum) * self.quantum;
        end.min(self.end_of_time)
    }

    fn until(&self, end: u128, now: u64) -> u64 {
        if self.forever(end) {
            u64::MAX
        } else {
            (end - now as u128) as u64
        }
    }

    /// `true` when no window is in force at `now` (the limiter is as good as new).
    pub fn idle(&self, now: u64) -> bool {
        self.live(now).is_none()
    }
}

impl Reference for RefFixed {
    fn capacity(&self) -> u64 {
        self.limit
    }

    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        admissible(cost, self.limit)?;
        let (end, count) = self
            .live(now)
            .unwrap_or_else(|| (self.end_if_opened(now), 0));
        if count + cost <= self.limit {
            self.window = Some((end, count + cost));
            Ok(Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - count - cost,
                retry_after: 0,
                reset_after: self.until(end, now),
            })
        } else {
            Ok(Decision {
                allowed: false,
                limit: self.limit,
                remaining: self.limit - count,
                // The count goes back to 0 when the window ends.
                retry_after: self.until(end, now),
                reset_after: self.until(end, now),
            })
        }
    }

    fn refund(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let Some((end, count)) = self.live(now) else {
            // No window in force: nothing to give back, and a refund opens no window.
            return Ok(Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit,
                retry_after: 0,
                reset_after: 0,
            });
        };
        let count = count - cost.min(count);
        self.window = Some((end, count));
        Ok(Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.limit - count,
            retry_after: 0,
            reset_after: self.until(end, now),
        })
    }
}

// ------------------------------------------------------------------------------------------------
// Sliding window counter
// ------------------------------------------------------------------------------------------------

/// Explicit `prev`/`cur` counts for the aligned window `[k·period, (k+1)·period)` they belong to.
///
/// Documented rules modelled here: a quota is refused unless every window index of the u64
/// clock fits beside the two counters (`period >= 2^(2·bits(limit))`), so the stored window is
/// known exactly; when it lies *ahead* of `now`'s window (the clock stepped back) the request is
/// decided as if at the start of the stored window, with `prev` and `cur` as stored, and every
/// wait is counted from that start. A record whose counts are both zero and whose window is 0
/// packs to the all-zero word: it is no record at all.
#[derive(Clone, Debug)]
pub struct RefSliding {
    limit: u64,
    period: u64,
    /// `(window index, prev, cur)`.
    record: Option<(u64, u64, u64)>,
}

/// The counts that apply at one `now`.
#[derive(Clone, Copy, Debug)]
struct Counts {
    window: u64,
    /// ns into `window` at which the decision is made.
    elapsed: u64,
    /// ns from `now` until that instant (non-zero only when deciding ahead of `now`).
    delay: u64,
    prev: u64,
    cur: u64,
}

impl RefSliding {
    pub fn new(limit: u64, period: u64) -> Result<Self, QuotaError> {
        quota(limit, period)?;
        let max = (1u64 << 20) - 1;
        if limit > max {
            return Err(QuotaError::LimitTooLarge { max });
        }
        let min = 1u64 << (2 * bits_for(limit));
        if period < min {
            return Err(QuotaError::PeriodTooShort { min });
        }
        Ok(RefSliding {
            limit,
            period,
            record: None,
        })
    }

    fn counts(&self, now: u64) -> Counts {
        let window = now / self.period;
        let elapsed = now % self.period;
        let fresh = Counts {
            window,
            elapsed,
            delay: 0,
            prev: 0,
            cur: 0,
        };
        let Some((stored, prev, cur)) = self.record else {
            return fresh;
        };
        if stored == window {
            Counts { prev, cur, ..fresh }
        } else if stored + 1 == window {
            Counts {
                prev: cur,
                cur: 0,
                ..fresh
            }
        } else if stored < window {
            fresh
        } else {
            // The stored window is ahead: decide at its start.
            let start = stored as u128 * self.period as u128;
            Counts {
                window: stored,
                elapsed: 0,
                delay: ns(start - now as u128),
                prev,
                cur,
            }
        }
    }

    /// `true` when the counts `(prev, cur)` plus `cost` fit at `elapsed` ns into the window.
    fn fits(&self, prev: u64, cur: u64, cost: u64, elapsed: u64) -> bool {
        let p = self.period as u128;
        prev as u128 * (p - elapsed as u128) + (cur as u128 + cost as u128) * p
            <= self.limit as u128 * p
    }

    fn remaining(&self, c: &Counts) -> u64 {
        let p = self.period as u128;
        let used = c.prev as u128 * (p - c.elapsed as u128) + c.cur as u128 * p;
        ((self.limit as u128 * p).saturating_sub(used) / p) as u64
    }

    /// Until both windows' permits weigh nothing: `prev` weighs until this window ends, `cur`
    /// until the next one ends.
    fn reset_after(&self, c: &Counts, now: u64) -> u64 {
        let p = self.period as u128;
        let to_end = p - c.elapsed as u128 + c.delay as u128;
        if c.cur > 0 {
            within_time(now, to_end + p)
        } else if c.prev > 0 {
            within_time(now, to_end)
        } else {
            0
        }
    }

    /// Smallest `x` in `lo..hi` with `ok(x)`, for a predicate that stays true once true.
    fn first(lo: u64, hi: u64, ok: impl Fn(u64) -> bool) -> Option<u64> {
        if lo >= hi || !ok(hi - 1) {
            return None;
        }
        let (mut lo, mut hi) = (lo, hi - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ok(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    }

    /// For a denied request: ns until it would pass, found by searching the timeline (later in
    /// this window, or in the next window where `cur` has become `prev`; at the start of the
    /// window after that nothing weighs any more and `cost <= limit` always fits).
    fn retry_after(&self, c: &Counts, cost: u64, now: u64) -> u64 {
        let p = self.period;
        let here = Self::first(c.elapsed, p, |x| self.fits(c.prev, c.cur, cost, x))
            .map(|x| (x - c.elapsed) as u128);
        let wait = here.unwrap_or_else(|| {
            let next = Self::first(0, p, |y| self.fits(c.cur, 0, cost, y)).unwrap_or(p);
            (p - c.elapsed) as u128 + next as u128
        });
        within_time(now, wait + c.delay as u128)
    }

    fn store(&mut self, window: u64, prev: u64, cur: u64) {
        let zero_word = prev == 0 && cur == 0 && window == 0;
        self.record = if zero_word {
            None
        } else {
            Some((window, prev, cur))
        };
    }

    /// `true` when nothing weighs at `now`.
    pub fn idle(&self, now: u64) -> bool {
        let c = self.counts(now);
        c.prev == 0 && c.cur == 0
    }
}

impl Reference for RefSliding {
    fn capacity(&self) -> u64 {
        self.limit
    }

    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        admissible(cost, self.limit)?;
        let c = self.counts(now);
        if self.fits(c.prev, c.cur, cost, c.elapsed) {
            let after = Counts {
                cur: c.cur + cost,
                ..c
            };
            self.store(c.window, c.prev, c.cur + cost);
            Ok(Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.remaining(&after),
                retry_after: 0,
                reset_after: self.reset_after(&after, now),
            })
        } else {
            Ok(Decision {
                allowed: false,
                limit: self.limit,
                remaining: self.remaining(&c),
                retry_after: self.retry_after(&c, cost, now),
                reset_after: self.reset_after(&c, now),
            })
        }
    }

    fn refund(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let c = self.counts(now);
        // Give back the newest permits first: those of the current window, then the previous.
        let from_cur = cost.min(c.cur);
        let from_prev = (cost - from_cur).min(c.prev);
        let after = Counts {
            prev: c.prev - from_prev,
            cur: c.cur - from_cur,
            ..c
        };
        if from_cur + from_prev > 0 {
            self.store(after.window, after.prev, after.cur);
        }
        Ok(Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.remaining(&after),
            retry_after: 0,
            reset_after: self.reset_after(&after, now),
        })
    }
}

// ------------------------------------------------------------------------------------------------
// Sliding log
// ------------------------------------------------------------------------------------------------

/// The log as a plain list of the instants at which each admitted, unrefunded permit stops
/// counting (`recorded + period`; at or past `u64::MAX`: never), oldest first.
///
/// Documented rules: a permit counts at `now` while its expiry is after `now`, so a clock that
/// steps back never frees one. A request is admitted iff the permits counting at `now`, plus its
/// cost, are at most `limit`. It is recorded at `max(now, seen)`, where `seen` is the latest time
/// the log has seen (the latest recorded admission or refund), so the log stays in order. A
/// refund acts at `max(now, seen)` too and forgets the oldest permits counting then.
#[derive(Clone, Debug)]
pub struct RefLog {
    limit: u64,
    period: u64,
    expiries: Vec<u128>,
    seen: u64,
}

impl RefLog {
    pub fn new(limit: u64, period: u64, slots: usize) -> Result<Self, QuotaError> {
        quota(limit, period)?;
        if slots as u64 != limit {
            return Err(QuotaError::StorageSize {
                needed: limit,
                given: slots as u64,
            });
        }
        Ok(RefLog {
            limit,
            period,
            expiries: Vec::new(),
            seen: 0,
        })
    }

    fn counts(expiry: u128, now: u64) -> bool {
        expiry >= MAX || expiry > now as u128
    }

    fn until(expiry: u128, now: u64) -> u64 {
        if expiry >= MAX {
            u64::MAX
        } else {
            (expiry - now as u128) as u64
        }
    }

    /// Expiries of the permits counting at `now`, soonest first.
    fn counting(&self, now: u64) -> Vec<u128> {
        let mut live: Vec<u128> = self
            .expiries
            .iter()
            .copied()
            .filter(|&e| Self::counts(e, now))
            .collect();
        live.sort_unstable();
        live
    }

    /// `true` when the exact log would admit `cost` at `now`.
    pub fn would_admit(&self, now: u64, cost: u64) -> bool {
        self.counting(now).len() as u64 + cost <= self.limit
    }

    /// Records `cost` permits at `now` without deciding (to follow another limiter's choices).
    pub fn record(&mut self, now: u64, cost: u64) -> u128 {
        let at = now.max(self.seen);
        self.seen = at;
        let expiry = at as u128 + self.period as u128;
        for _ in 0..cost {
            self.expiries.push(expiry);
        }
        expiry
    }

    /// The latest time the log has seen.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Permits counting at `now`.
    pub fn live(&self, now: u64) -> u64 {
        self.counting(now).len() as u64
    }
}

impl Reference for RefLog {
    fn capacity(&self) -> u64 {
        self.limit
    }

    fn check(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        admissible(cost, self.limit)?;
        let live = self.counting(now);
        let used = live.len() as u64;
        if used + cost <= self.limit {
            let expiry = self.record(now, cost);
            return Ok(Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit - used - cost,
                retry_after: 0,
                reset_after: Self::until(expiry, now),
            });
        }
        // The request fits once the `used + cost - limit` soonest-expiring permits are gone.
        let must_go = (used + cost - self.limit) as usize;
        Ok(Decision {
            allowed: false,
            limit: self.limit,
            remaining: self.limit.saturating_sub(used),
            retry_after: Self::until(live[must_go - 1], now),
            reset_after: Self::until(*live.last().expect("denied, so some permit counts"), now),
        })
    }

    fn refund(&mut self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let at = now.max(self.seen);
        self.seen = at;
        let mut left = cost;
        let mut kept = Vec::with_capacity(self.expiries.len());
        for &e in &self.expiries {
            // Oldest first: the list is in recording order.
            if left > 0 && Self::counts(e, at) {
                left -= 1;
            } else {
                kept.push(e);
            }
        }
        self.expiries = kept;
        let live = self.counting(now);
        Ok(Decision {
            allowed: true,
            limit: self.limit,
            remaining: self.limit.saturating_sub(live.len() as u64),
            retry_after: 0,
            reset_after: live.last().map_or(0, |&e| Self::until(e, now)),
        })
    }
}
