//! Clocks for the std layer: a monotonic clock for production and a manual one for tests.
//!
//! The core never reads a clock; the keyed and policy APIs take `now` explicitly, and these
//! clocks are the usual ways to get it. Every process-wide [`MonotonicClock`] shares one origin,
//! so limiters built at different moments agree on what "now" is.

use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// A source of `now`: nanoseconds on a monotonic scale.
pub trait Clock: Send + Sync {
    /// The current time in nanoseconds on this clock's scale.
    fn now(&self) -> u64;
}

/// Nanoseconds since the first use of any `MonotonicClock` in this process, from
/// [`Instant`] (`CLOCK_MONOTONIC` on Linux: never steps back, does not count suspend).
#[derive(Clone, Copy, Debug, Default)]
pub struct MonotonicClock;

impl MonotonicClock {
    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(Instant::now)
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        // u64 nanoseconds last 584 years of uptime.
        Self::origin().elapsed().as_nanos() as u64
    }
}

/// A clock that moves only when told to: for tests and simulations.
///
/// ```
/// use ratewall::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(0);
/// clock.advance(1_000);
/// assert_eq!(clock.now(), 1_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start`.
    pub const fn new(start: u64) -> Self {
        ManualClock {
            now: AtomicU64::new(start),
        }
    }

    /// Moves the clock forward by `ns` (saturating at `u64::MAX`).
    pub fn advance(&self, ns: u64) {
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(ns))
            });
    }

    /// Sets the clock to `ns`, forwards or backwards (to test clocks that step back).
    pub fn set(&self, ns: u64) {
        self.now.store(ns, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }
}

impl<F: Fn() -> u64 + Send + Sync> Clock for F {
    fn now(&self) -> u64 {
        self()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// Wall-clock time in milliseconds since the Unix epoch, for the HTTP headers that carry a date
/// (`X-RateLimit-Reset`, `Date`). Limiting decisions never use it: wall clocks step.
pub fn unix_time_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
