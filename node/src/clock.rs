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
//! The reading comes from a [`ThreadMonotonicClock`], one per JavaScript thread: ratewall's
//! [`monotonic_ns`] (on x86-64 Linux the time-stamp counter extrapolated from
//! `CLOCK_MONOTONIC`, within microseconds of it, about two thirds of a `clock_gettime`'s
//! cost) without a thread-local lookup on the hot path: each fast function holds its thread's
//! reader ([`thread_clock`]), and all readings of one thread come from it, so they never step
//! back.

use std::rc::Rc;
use std::sync::OnceLock;

use napi_derive::napi;
use ratewall::clock::{coarse_monotonic_ns, monotonic_ns, ThreadMonotonicClock};

std::thread_local! {
    static THREAD_CLOCK: Rc<ThreadMonotonicClock> = Rc::new(ThreadMonotonicClock::new());
}

/// The calling thread's reader of the default clock.
pub fn thread_clock() -> Rc<ThreadMonotonicClock> {
    THREAD_CLOCK.with(Rc::clone)
}

/// (monotonic reading at the origin, `performance.now()` at that instant), both nanoseconds.
static ORIGIN: OnceLock<(u64, u64)> = OnceLock::new();

/// Pins the default clock: `performance_now_ms` is `performance.now()` read just before the
/// call. Only the first call counts (per process: worker threads share the origin, and their
/// own `performance.now()` scales differ, so workers should pass `now` explicitly if they mix
/// the two). Returns the origin in effect, in milliseconds.
#[napi(js_name = "setClockOrigin")]
pub fn set_origin(performance_now_ms: f64) -> f64 {
    let ns = crate::fast::ms_to_ns(performance_now_ms).unwrap_or(0);
    let (_, origin) = ORIGIN.get_or_init(|| (monotonic_ns(), ns));
    *origin as f64 / 1e6
}

/// The default clock in nanoseconds on the `performance.now()` scale, read with `clock`, the
/// calling thread's reader ([`thread_clock`]).
#[inline]
pub fn now_ns(clock: &ThreadMonotonicClock) -> u64 {
    performance_scale(clock.now())
}

/// The coarse clock (`clock: 'coarse'`) in nanoseconds on the same scale: `CLOCK_MONOTONIC_COARSE`
/// ([`ratewall::clock::coarse_monotonic_ns`]), the time of the kernel's last tick, about a
/// quarter of the precise read's cost and up to a tick (1-4 ms) behind it.
#[inline]
pub fn coarse_now_ns() -> u64 {
    performance_scale(coarse_monotonic_ns())
}

/// A reading of ratewall's clocks on the `performance.now()` scale.
#[inline(always)]
fn performance_scale(reading: u64) -> u64 {
    let (start, origin) = *ORIGIN.get_or_init(|| (monotonic_ns(), 0));
    // A monotonic clock never reads below an earlier reading, but the coarse one may trail the
    // precise origin by a tick: saturate rather than wrap.
    origin.saturating_add(reading.saturating_sub(start))
}

/// The default clock in milliseconds on the `performance.now()` scale (for tests and for the
/// JavaScript side's `limiter.now()`); the coarse clock when `coarse` is true.
#[napi(js_name = "clockNow")]
pub fn now_ms(coarse: Option<bool>) -> f64 {
    let ns = if coarse == Some(true) {
        coarse_now_ns()
    } else {
        THREAD_CLOCK.with(|clock| now_ns(clock))
    };
    ns as f64 / 1e6
}

/// How far the coarse clock may trail the precise one, in milliseconds (one kernel tick).
#[napi(js_name = "coarseClockResolution")]
pub fn coarse_resolution_ms() -> f64 {
    ratewall::clock::coarse_resolution_ns() as f64 / 1e6
}
