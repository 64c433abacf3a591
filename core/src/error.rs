//! Errors: small, `#[non_exhaustive]`, and telling "wait" apart from "never".
//!
//! A denial is not an error: it is a [`Decision`](crate::Decision) with `allowed == false` and a
//! `retry_after` ("wait"). An error means the question itself cannot be answered with a wait:
//! a quota that cannot be built, or a cost the quota can never admit ("never").

use core::fmt;

/// Why a quota or limiter could not be constructed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    /// `limit` was 0; a quota admits at least one permit per period.
    ZeroLimit,
    /// `period` was 0; a period lasts at least one nanosecond.
    ZeroPeriod,
    /// `burst` was 0; a token bucket holds at least one permit.
    ZeroBurst,
    /// `limit` is larger than this algorithm's packed state can count.
    LimitTooLarge {
        /// The largest `limit` this algorithm supports.
        max: u64,
    },
    /// `period` is too short for this limit in this algorithm's packed state.
    PeriodTooShort {
        /// The shortest `period` (ns) this algorithm supports for the given limit.
        min: u64,
    },
    /// `burst × ceil(period / limit)` does not fit in 64 bits of nanoseconds.
    BurstTooLarge,
    /// The storage handed to a sliding log does not hold exactly `limit` slots.
    StorageSize {
        /// The number of slots needed: the quota's `limit`.
        needed: u64,
        /// The number of slots given.
        given: u64,
    },
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaError::ZeroLimit => f.write_str("limit must be at least 1 permit per period"),
            QuotaError::ZeroPeriod => f.write_str("period must be at least 1 nanosecond"),
            QuotaError::ZeroBurst => f.write_str("burst must be at least 1 permit"),
            QuotaError::LimitTooLarge { max } => {
                write!(f, "limit is too large for this algorithm: use at most {max}, or the token bucket")
            }
            QuotaError::PeriodTooShort { min } => {
                write!(f, "period is too short for this limit: use a period of at least {min} ns, or a smaller limit")
            }
            QuotaError::BurstTooLarge => f.write_str(
                "burst × (period / limit) overflows 64-bit nanoseconds: use a smaller burst or period",
            ),
            QuotaError::StorageSize { needed, given } => write!(
                f,
                "sliding log storage must hold exactly `limit` = {needed} slots, but {given} were given"
            ),
        }
    }
}

impl core::error::Error for QuotaError {}

/// Why a request could not be decided with a wait.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// `cost` was 0: every request costs at least one permit (use `peek` to look without taking).
    ZeroCost,
    /// The request costs more than the limiter can ever hold at once: waiting will not help.
    InsufficientCapacity {
        /// The cost asked for.
        cost: u64,
        /// The most permits the limiter can ever hold at once (`burst` or `limit`).
        capacity: u64,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::ZeroCost => f.write_str("cost must be at least 1 permit (use peek to look without taking)"),
            CheckError::InsufficientCapacity { cost, capacity } => write!(
                f,
                "cost {cost} exceeds the limiter's capacity of {capacity}: the request can never be admitted"
            ),
        }
    }
}

impl core::error::Error for CheckError {}

/// Validates a cost against a capacity: the shared first step of every algorithm.
///
/// One permit is always valid: every capacity is at least 1 (a quota's limit, a bucket's
/// burst). Said first, so that the usual `check(now, 1)`, inlined with its literal cost, keeps
/// no test at all.
#[inline]
pub(crate) fn validate_cost(cost: u64, capacity: u64) -> Result<(), CheckError> {
    debug_assert!(capacity >= 1, "every capacity is at least 1");
    if cost == 1 {
        Ok(())
    } else if cost == 0 {
        Err(CheckError::ZeroCost)
    } else if cost > capacity {
        Err(CheckError::InsufficientCapacity { cost, capacity })
    } else {
        Ok(())
    }
}
