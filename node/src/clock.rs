//! The default clock: `performance.now()`'s scale, read in Rust.
//!
//! `performance.now()` costs more than the whole decision when called from JavaScript (a
//! builtin call plus a conversion to a double), so when a limiter uses the default clock and
//! `performance.now` is the original (not replaced by fake timers), the JavaScript glue passes
//! no time and the fast callback reads it here: the time since an origin that JavaScript pinned
//! to `performance.now()` when the addon was loaded ([`set_origin`]). Both clocks are
//! `CLOCK_MONOTONIC` (libuv's `uv_hrtime` on Linux and here), so the two readings agree to within
//! the few hundred nanoseconds between the two reads at load time.
//!
//! On 64-bit Linux the clock is read with `clock_gettime(CLOCK_MONOTONIC)` itself and the
//! origin kept as plain nanoseconds: `Instant::elapsed` adds a second, checked subtraction of
//! two `timespec`s, which measured about 5% of the whole fast call. Elsewhere `Instant` is used.

use std::sync::OnceLock;

use napi_derive::napi;

/// (monotonic reading at the origin, `performance.now()` at that instant), both nanoseconds.
static ORIGIN: OnceLock<(u64, u64)> = OnceLock::new();

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod monotonic {
    /// `struct timespec` of 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    /// `CLOCK_MONOTONIC` on Linux (every architecture).
    const CLOCK_MONOTONIC: i32 = 1;

    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }

    /// `CLOCK_MONOTONIC` in nanoseconds (since boot).
    #[inline]
    pub fn now() -> u64 {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid `struct timespec` to write; CLOCK_MONOTONIC always exists on
        // Linux, so the call cannot fail (a failure would leave 0, an early but valid time).
        unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod monotonic {
    use std::sync::OnceLock;
    use std::time::Instant;

    static START: OnceLock<Instant> = OnceLock::new();

    /// A monotonic reading in nanoseconds (since the first call).
    #[inline]
    pub fn now() -> u64 {
        let start = START.get_or_init(Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Pins the default clock: `performance_now_ms` is `performance.now()` read just before the
/// call. Only the first call counts (per process: worker threads share the origin, and their
/// own `performance.now()` scales differ, so workers should pass `now` explicitly if they mix
/// the two). Returns the origin in effect, in milliseconds.
#[napi(js_name = "setClockOrigin")]
pub fn set_origin(performance_now_ms: f64) -> f64 {
    let ns = crate::fast::ms_to_ns(performance_now_ms).unwrap_or(0);
    let (_, origin) = ORIGIN.get_or_init(|| (monotonic::now(), ns));
    *origin as f64 / 1e6
}

/// The default clock in nanoseconds on the `performance.now()` scale.
#[inline]
pub fn now_ns() -> u64 {
    let reading = monotonic::now();
    let (start, origin) = *ORIGIN.get_or_init(|| (reading, 0));
    // A monotonic clock never reads below an earlier reading; saturate rather than trust it.
    origin.saturating_add(reading.saturating_sub(start))
}

/// The default clock in milliseconds on the `performance.now()` scale (for tests and for the
/// JavaScript side's `limiter.now()`).
#[napi(js_name = "clockNow")]
pub fn now_ms() -> f64 {
    now_ns() as f64 / 1e6
}
