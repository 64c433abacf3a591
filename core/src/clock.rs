//! Clocks for the std layer: a monotonic clock for production and a manual one for tests.
//!
//! The core never reads a clock; the keyed and policy APIs take `now` explicitly, and these
//! clocks are the usual ways to get it.
//!
//! [`MonotonicClock`] reads [`monotonic_ns`]: on Linux `CLOCK_MONOTONIC` itself, in nanoseconds
//! since boot, which is also the scale of Python's `time.monotonic_ns()` and Node's
//! `process.hrtime.bigint()`, so the bindings' default clocks and their hosts' clocks agree
//! without any offset; every limiter of the process shares it. It is read with
//! `clock_gettime` directly: `Instant::now().elapsed()` reads the same clock but adds a
//! checked `timespec` subtraction and a 128-bit conversion, about a quarter more per read, and
//! a check reads the clock once.

use core::sync::atomic::{AtomicU64, Ordering};

/// A source of `now`: nanoseconds on a monotonic scale.
pub trait Clock: Send + Sync {
    /// The current time in nanoseconds on this clock's scale.
    fn now(&self) -> u64;
}

/// The process's monotonic clock in nanoseconds: `CLOCK_MONOTONIC` (time since boot, never
/// steps back, does not count suspend) on Linux; elsewhere the time since its first read, from
/// [`std::time::Instant`].
#[cfg(target_os = "linux")]
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid `timespec` to write. CLOCK_MONOTONIC always exists on Linux, so
    // the call cannot fail (a failure would leave 0: an early time, which never over-admits).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // u64 nanoseconds last 584 years of uptime.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The process's monotonic clock in nanoseconds: `CLOCK_MONOTONIC` (time since boot, never
/// steps back, does not count suspend) on Linux; elsewhere the time since its first read, from
/// [`std::time::Instant`].
#[cfg(not(target_os = "linux"))]
#[inline]
pub fn monotonic_ns() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The default clock: [`monotonic_ns`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        monotonic_ns()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn monotonic_clock_is_clock_monotonic_on_linux() {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let before = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        let now = MonotonicClock.now();
        assert!(now >= before && now - before < 1_000_000_000);
    }
}
