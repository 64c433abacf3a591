//! Argument checking shared by the entry points, and the functions that cannot fail: version
//! and clocks.

use std::ffi::{c_char, CStr};

use ratewall::clock::{coarse_monotonic_ns, coarse_resolution_ns, monotonic_ns};

use crate::error::{rw_status, Error, Result};

/// A required pointer argument is NULL.
#[cold]
#[inline(never)]
pub(crate) fn null(what: &str) -> Error {
    Error::new(rw_status::RW_NULL_POINTER, format_args!("{what} is NULL"))
}

/// Fails unless `p` is non-NULL and aligned for `T`.
#[inline(always)]
pub(crate) fn check_ptr<T>(p: *const T, what: &str) -> Result<()> {
    if p.is_null() {
        Err(null(what))
    } else if !p.is_aligned() {
        Err(misaligned(what))
    } else {
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn misaligned(what: &str) -> Error {
    Error::new(
        rw_status::RW_INVALID_ARGUMENT,
        format_args!("{what} is not aligned for its type"),
    )
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null(what));
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        Error::new(
            rw_status::RW_INVALID_UTF8,
            format_args!(
                "{what} is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// A string argument that may be NULL (meaning "the default").
///
/// # Safety
/// As [`c_str`].
pub(crate) unsafe fn opt_c_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        c_str(p, what).map(Some)
    }
}

/// A `(pointer, length)` byte string: a key. NULL is an error even for length 0 (pass `""`).
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay valid for `'a`.
#[inline(always)]
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if p.is_null() {
        Err(null(what))
    } else if len > isize::MAX as usize {
        Err(too_long(what, len))
    } else {
        Ok(std::slice::from_raw_parts(p, len))
    }
}

#[cold]
#[inline(never)]
fn too_long(what: &str, len: usize) -> Error {
    Error::new(
        rw_status::RW_INVALID_ARGUMENT,
        format_args!("{what} length {len} is larger than any object can be"),
    )
}

/// The library's version, `"MAJOR.MINOR.PATCH"`, as a static NUL-terminated string (never NULL,
/// never freed). Compare with the header's `RW_VERSION` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn rw_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The built-in monotonic clock in nanoseconds: on Linux `CLOCK_MONOTONIC` itself (time since
/// boot, as `clock_gettime(CLOCK_MONOTONIC)` gives it: never steps back, unaffected by
/// wall-clock changes); elsewhere the time since the process first read it. This is the `now`
/// the `_now` functions (`rw_check_now`, ...) use, so explicit and built-in time can be mixed.
/// Thread-safe; cannot fail.
#[no_mangle]
pub extern "C" fn rw_now() -> u64 {
    std::panic::catch_unwind(monotonic_ns).unwrap_or(0)
}

/// The coarse monotonic clock in nanoseconds, on the same timeline as `rw_now()`: on Linux
/// `CLOCK_MONOTONIC_COARSE`, the time as of the kernel's last tick, so up to one tick
/// (`rw_coarse_resolution_ns()`: 1 to 4 ms on common kernels) behind `rw_now()`, for a fraction
/// of the cost of a read (9 ns against 40 ns on a KVM guest); elsewhere `rw_now()` itself. Pass
/// it as the `now` of `rw_check` and friends, or set `RW_POLICY_COARSE_CLOCK` for the `_now`
/// functions to read it. Decisions stay exact for the times read; against real time a window
/// may close up to a tick early and a wait may be reported up to a tick long, never short: for
/// limits counted in seconds or more on hot paths. Mixing it with `rw_now()` on one policy is
/// safe. Thread-safe; never steps back; cannot fail.
#[no_mangle]
pub extern "C" fn rw_now_coarse() -> u64 {
    std::panic::catch_unwind(coarse_monotonic_ns).unwrap_or(0)
}

/// How far `rw_now_coarse()` may trail `rw_now()`, in nanoseconds: the coarse clock's
/// resolution (one kernel tick), or 1 where the coarse clock is the precise one. At least 1;
/// cannot fail.
#[no_mangle]
pub extern "C" fn rw_coarse_resolution_ns() -> u64 {
    std::panic::catch_unwind(coarse_resolution_ns).unwrap_or(1)
}

/// Wall-clock time in Unix epoch milliseconds, for the `now_unix_ms` argument of
/// `rw_render_headers` (`X-RateLimit-Reset` and `Date` are wall-clock values). Never used for
/// limiting decisions: wall clocks step. Returns 0 if the system clock is before 1970.
#[no_mangle]
pub extern "C" fn rw_unix_time_ms() -> u64 {
    std::panic::catch_unwind(ratewall::clock::unix_time_ms).unwrap_or(0)
}

/// The whole seconds a client should wait for a denial with `retry_after_ns` (the decision's
/// `retry_after`): rounded up and at least 1, exactly the value of `Retry-After` and of the 429
/// body's `retryAfter`. Cannot fail.
#[no_mangle]
pub extern "C" fn rw_retry_after_seconds(retry_after_ns: u64) -> u64 {
    ratewall::http::retry_after_seconds(retry_after_ns)
}

/// A handle's memory: its type's tag, then its contents. Every handle type (`rw_policy`,
/// `rw_config`) is a one-field wrapper of a `Tagged` placed at offset 0 (a compile-time
/// assertion next to each type says so), so the tag is the first 8 bytes of every handle, and
/// checking the tag of a pointer to the *other* handle type reads inside that handle: a
/// `rw_config *` passed as a `rw_policy *` (which C lets through) is rejected without reading
/// past its end.
#[repr(C)]
pub(crate) struct Tagged<T> {
    magic: u64,
    pub(crate) value: T,
}

impl<T> Tagged<T> {
    pub(crate) fn new(magic: u64, value: T) -> Self {
        Tagged { magic, value }
    }
}

impl Tagged<()> {
    /// The tag of the handle at `p`.
    ///
    /// # Safety
    /// `p` is non-null, aligned and points to at least 8 readable bytes (any handle of this
    /// library).
    #[inline(always)]
    pub(crate) unsafe fn tag_of<H>(p: *const H) -> u64 {
        p.cast::<u64>().read()
    }

    /// Clears the tag of the handle at `p`, so that a use after free is caught while the memory
    /// still holds it.
    ///
    /// # Safety
    /// As [`tag_of`](Self::tag_of), and writable.
    pub(crate) unsafe fn clear_tag<H>(p: *mut H) {
        p.cast::<u64>().write(0);
    }
}
