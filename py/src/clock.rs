//! Time: seconds (float) at the Python boundary, nanoseconds inside.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// ratewall's monotonic clock ([`ratewall::clock::monotonic_ns`]) and `time.monotonic_ns()`,
/// read together at import: the default clock is `python + (reading - rust)`, so it reads the
/// same scale as `time.monotonic()` without a call into Python per check (on Linux both are
/// `CLOCK_MONOTONIC` and the offset is the few nanoseconds between the two reads).
static BASE: OnceLock<(u64, u64)> = OnceLock::new();

pub(crate) fn init(py: Python<'_>) -> PyResult<()> {
    if BASE.get().is_none() {
        let time = py.import("time")?;
        let rust = ratewall::clock::monotonic_ns();
        let ns: u64 = time.call_method0("monotonic_ns")?.extract()?;
        let _ = BASE.set((rust, ns));
    }
    Ok(())
}

/// Nanoseconds on the default clock's scale (that of `time.monotonic()`).
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    python_scale(ratewall::clock::monotonic_ns())
}

/// The coarse clock (`clock="coarse"`) in nanoseconds on the same scale:
/// `CLOCK_MONOTONIC_COARSE` ([`ratewall::clock::coarse_monotonic_ns`]), the time of the kernel's
/// last tick, about a quarter of the precise read's cost and up to a tick (1-4 ms) behind it.
#[inline]
pub(crate) fn coarse_monotonic_ns() -> u64 {
    python_scale(ratewall::clock::coarse_monotonic_ns())
}

/// A reading of ratewall's clocks on `time.monotonic()`'s scale.
#[inline(always)]
fn python_scale(reading: u64) -> u64 {
    let (rust, python) = *BASE.get_or_init(|| (ratewall::clock::monotonic_ns(), 0));
    // A monotonic clock never reads below an earlier reading, but the coarse one may trail the
    // precise reading taken at import by a tick: saturate rather than wrap.
    python.saturating_add(reading.saturating_sub(rust))
}

/// Wall-clock Unix time in milliseconds (for `X-RateLimit-Reset` and `Date` only).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The largest `now`, in seconds, that fits in `u64` nanoseconds (about 584 years).
const MAX_SECONDS: f64 = u64::MAX as f64 / 1e9;

/// Seconds (a Python number) to nanoseconds, rejecting what is not a finite, non-negative time.
pub(crate) fn seconds_to_ns(what: &str, seconds: f64) -> PyResult<u64> {
    if !(0.0..MAX_SECONDS).contains(&seconds) {
        return Err(PyValueError::new_err(format!(
            "{what} must be a finite number of seconds from 0 to {MAX_SECONDS:.0}, got {seconds}"
        )));
    }
    Ok((seconds * 1e9).round() as u64)
}

/// Nanoseconds to seconds.
#[inline]
pub(crate) fn ns_to_seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The default clock of every limiter, in seconds: the same scale as `time.monotonic()`, so
/// `now=time.monotonic()` and the default clock agree.
#[pyfunction]
pub fn monotonic() -> f64 {
    ns_to_seconds(monotonic_ns())
}

/// The coarse clock of `clock="coarse"` limiters, in seconds: the same scale as
/// [`monotonic`], read as of the kernel's last tick (up to [`coarse_clock_resolution`] behind it)
/// for about a quarter of the cost.
#[pyfunction]
pub fn coarse_monotonic() -> f64 {
    ns_to_seconds(coarse_monotonic_ns())
}

/// How far [`coarse_monotonic`] may trail [`monotonic`], in seconds: one kernel tick (1-4 ms on
/// common Linux kernels), or a nanosecond where the coarse clock is the precise one.
#[pyfunction]
pub fn coarse_clock_resolution() -> f64 {
    ns_to_seconds(ratewall::clock::coarse_resolution_ns())
}
