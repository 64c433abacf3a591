//! Clocks for the std layer: a monotonic clock for production and a manual one for tests.
//!
//! The core never reads a clock; the keyed and policy APIs take `now` explicitly, and these
//! clocks are the usual ways to get it.
//!
//! [`MonotonicClock`] reads [`monotonic_ns`]: on Linux `CLOCK_MONOTONIC`, in nanoseconds
//! since boot, which is also the scale of Python's `time.monotonic_ns()` and Node's
//! `process.hrtime.bigint()`, so the bindings' default clocks and their hosts' clocks agree
//! without any offset; every limiter of the process shares it. A check reads the clock once,
//! and the read is made cheap: on x86-64 Linux where the kernel keeps time with the
//! time-stamp counter (TSC), each thread extrapolates `CLOCK_MONOTONIC` from the counter
//! between anchors 8 ms apart, as the kernel's vDSO does between its updates, without the
//! vDSO's sequence lock and serialising counter read (21–26 against 29–36 ns per read on the
//! KVM guest where ratewall is measured). An anchor is one `clock_gettime` between two
//! counter readings at most 2^11 ticks apart, so a reading is within 6 µs of the kernel's
//! clock at worst (its NTP slew over 8 ms, plus the anchor's uncertainty), never steps back on
//! a thread, and falls back to `clock_gettime` until a rate is known or when one is not
//! plausible. Not `quanta`, which calibrates the counter once and drifts from
//! `CLOCK_MONOTONIC` by parts per million, while the bindings promise their host's clock.
//! Elsewhere it calls `clock_gettime` directly (`Instant::now().elapsed()`
//! reads the same clock but adds a checked `timespec` subtraction and a 128-bit conversion,
//! about a quarter more per read).
//!
//! [`CoarseMonotonicClock`] reads [`coarse_monotonic_ns`], the same timeline as of the
//! kernel's last tick: a quarter of the cost, up to a tick (1–4 ms) of lag. It is the opt-in
//! for hot paths whose limits are counted in seconds or more (governor's `QuantaUpkeepClock`
//! makes the same trade with a thread of its own); the bindings offer it as a `clock` option.

use core::sync::atomic::{AtomicU64, Ordering};

/// A source of `now`: nanoseconds on a monotonic scale.
pub trait Clock: Send + Sync {
    /// The current time in nanoseconds on this clock's scale.
    fn now(&self) -> u64;
}

/// The process's monotonic clock in nanoseconds: `CLOCK_MONOTONIC` (time since boot, never
/// steps back, does not count suspend) on Linux; elsewhere the time since its first read, from
/// [`std::time::Instant`].
///
/// On x86-64 Linux where the kernel keeps time with the time-stamp counter, each thread reads
/// the counter and extrapolates the kernel's clock from anchors taken every 8 ms: within 6 µs
/// of `CLOCK_MONOTONIC` at worst (about 100 ns in practice), never stepping back on a thread
/// (see the [module docs](self)). [`ThreadMonotonicClock`] is the same without the
/// thread-local lookup.
#[cfg(target_os = "linux")]
#[inline]
pub fn monotonic_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if let Some(ns) = tsc::monotonic_ns(clock_gettime_monotonic) {
        return ns;
    }
    clock_gettime_monotonic()
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod tsc;

/// [`monotonic_ns`] for one thread, without the thread-local lookup.
///
/// [`monotonic_ns`] keeps its state per thread, and in a shared library (a Node or Python
/// extension) reaching a thread-local costs a call (`__tls_get_addr`): 4% of a Node
/// `check(key)`. A host that already holds per-thread state of its own (Node's per-thread
/// addon data) keeps one of these there instead: the same readings (within the bound of the
/// `tsc` module's extrapolation), never stepping back for this reader. Not `Sync`: one thread
/// reads it.
///
/// ```
/// use ratewall::clock::{monotonic_ns, ThreadMonotonicClock};
///
/// let clock = ThreadMonotonicClock::new();
/// let first = clock.now();
/// let second = clock.now();
/// assert!(second >= first);
/// // The same timeline as monotonic_ns (to within microseconds).
/// assert!(monotonic_ns().abs_diff(second) < 1_000_000);
/// ```
#[derive(Debug)]
pub struct ThreadMonotonicClock {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    reader: tsc::Reader,
}

impl ThreadMonotonicClock {
    /// A reader for the calling thread.
    pub fn new() -> ThreadMonotonicClock {
        ThreadMonotonicClock {
            #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
            reader: tsc::Reader::new(),
        }
    }

    /// Nanoseconds on [`monotonic_ns`]'s scale.
    #[inline]
    pub fn now(&self) -> u64 {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        return self.reader.now(clock_gettime_monotonic);
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        return monotonic_ns();
    }
}

impl Default for ThreadMonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

/// `CLOCK_MONOTONIC` read with `clock_gettime`.
#[cfg(target_os = "linux")]
#[inline]
fn clock_gettime_monotonic() -> u64 {
    read_ns(libc::CLOCK_MONOTONIC)
}

/// Reads Linux clock `id` in nanoseconds.
#[cfg(target_os = "linux")]
#[inline(always)]
fn read_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid `timespec` to write. The clocks read here (CLOCK_MONOTONIC, and
    // CLOCK_MONOTONIC_COARSE since Linux 2.6.32) always exist, so the call cannot fail (a
    // failure would leave 0: an early time, which never over-admits).
    unsafe { libc::clock_gettime(id, &mut ts) };
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

/// The process's coarse monotonic clock in nanoseconds: `CLOCK_MONOTONIC_COARSE` on Linux, the
/// same timeline as [`monotonic_ns`] read from the time of the kernel's last tick, so it lags
/// by less than one tick ([`coarse_resolution_ns`]: 1 to 4 ms on common kernels) and costs a
/// fraction of a precise read (6 ns against 21 ns through the time-stamp counter and 33 ns
/// through `clock_gettime`, on the KVM guest where ratewall is benchmarked: no counter read). Elsewhere it is [`monotonic_ns`].
///
/// What a limiter gives up on this clock: its decisions stay exact *for the times it reads*
/// (never more than the quota between two readings a period apart), but a reading may be up
/// to a tick old, so against real time a window can close up to one tick early, a bucket
/// refills in steps of a tick, and `retry_after` / `reset_after` may be up to a tick longer
/// than needed (never shorter: a late reading only overstates the wait). Choose it when
/// limits are counted in seconds or more and checks are hot; keep the precise clock for
/// sub-second quotas. Mixing the two clocks on one limiter is safe: the coarse one may read
/// up to a tick behind the precise one, and a clock that steps back never over-admits.
#[cfg(target_os = "linux")]
#[inline]
pub fn coarse_monotonic_ns() -> u64 {
    read_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// The process's coarse monotonic clock: [`monotonic_ns`] where the platform has no cheaper
/// clock on the same timeline.
#[cfg(not(target_os = "linux"))]
#[inline]
pub fn coarse_monotonic_ns() -> u64 {
    monotonic_ns()
}

/// How far [`coarse_monotonic_ns`] may lag [`monotonic_ns`], in nanoseconds: the coarse
/// clock's resolution (one kernel tick), or 1 where it is the precise clock.
pub fn coarse_resolution_ns() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid `timespec` to write.
        if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0 {
            return (ts.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec as u64)
                .max(1);
        }
    }
    1
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

/// The cheap clock: [`coarse_monotonic_ns`] (read its trade-offs before choosing it).
#[derive(Clone, Copy, Debug, Default)]
pub struct CoarseMonotonicClock;

impl Clock for CoarseMonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        coarse_monotonic_ns()
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

    #[test]
    fn coarse_clock_is_the_same_timeline_never_ahead_of_the_precise_one() {
        let tick = coarse_resolution_ns();
        assert!(tick >= 1);
        let mut last = 0;
        for _ in 0..1000 {
            let coarse = CoarseMonotonicClock.now();
            let precise = MonotonicClock.now();
            // Read after the coarse one, the precise clock is never behind it; the coarse one
            // lags by about a tick (the bound is loose: a preempted thread reads late).
            assert!(coarse <= precise, "coarse {coarse} > precise {precise}");
            assert!(precise - coarse < tick + 1_000_000_000);
            assert!(coarse >= last, "the coarse clock stepped back");
            last = coarse;
        }
    }
}
