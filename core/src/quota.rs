//! Quotas: `limit` permits per `period` nanoseconds.

use crate::error::QuotaError;

/// Nanoseconds in common units, for building quotas and `now` values.
pub mod time {
    /// One nanosecond.
    pub const NANOSECOND: u64 = 1;
    /// One microsecond in nanoseconds.
    pub const MICROSECOND: u64 = 1_000;
    /// One millisecond in nanoseconds.
    pub const MILLISECOND: u64 = 1_000_000;
    /// One second in nanoseconds.
    pub const SECOND: u64 = 1_000_000_000;
    /// One minute in nanoseconds.
    pub const MINUTE: u64 = 60 * SECOND;
    /// One hour in nanoseconds.
    pub const HOUR: u64 = 60 * MINUTE;
    /// One day in nanoseconds.
    pub const DAY: u64 = 24 * HOUR;
}

/// `limit` permits per `period` nanoseconds, both at least 1.
///
/// A quota says nothing about the algorithm: the same quota drives a token bucket, a fixed
/// window, a sliding log or a sliding window counter.
///
/// ```
/// use ratewall::{Quota, QuotaError, time::MINUTE};
/// let q = Quota::new(100, MINUTE)?;
/// assert_eq!((q.limit(), q.period()), (100, 60_000_000_000));
/// assert_eq!(Quota::new(0, MINUTE), Err(QuotaError::ZeroLimit));
/// # Ok::<(), QuotaError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    period: u64,
}

impl Quota {
    /// A quota of `limit` permits per `period` nanoseconds.
    pub const fn new(limit: u64, period: u64) -> Result<Quota, QuotaError> {
        if limit == 0 {
            Err(QuotaError::ZeroLimit)
        } else if period == 0 {
            Err(QuotaError::ZeroPeriod)
        } else {
            Ok(Quota { limit, period })
        }
    }

    /// `limit` permits per second.
    pub const fn per_second(limit: u64) -> Result<Quota, QuotaError> {
        Quota::new(limit, time::SECOND)
    }

    /// `limit` permits per minute.
    pub const fn per_minute(limit: u64) -> Result<Quota, QuotaError> {
        Quota::new(limit, time::MINUTE)
    }

    /// `limit` permits per hour.
    pub const fn per_hour(limit: u64) -> Result<Quota, QuotaError> {
        Quota::new(limit, time::HOUR)
    }

    /// `limit` permits per day.
    pub const fn per_day(limit: u64) -> Result<Quota, QuotaError> {
        Quota::new(limit, time::DAY)
    }

    /// Permits per period.
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// The period in nanoseconds.
    pub const fn period(&self) -> u64 {
        self.period
    }
}
