//! Status codes, the thread-local last-error message, and the guard every entry point runs in.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The result of every ratewall function that can fail. `RW_OK` is 0; every other value is an
/// error, explained in words by `rw_last_error()` on the same thread. A failed call changes no
/// limiter state. New codes may be added at the end in later versions: treat an unknown non-zero
/// value as a generic error.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum rw_status {
    /// Success.
    RW_OK = 0,
    /// A required pointer argument is NULL.
    RW_NULL_POINTER = 1,
    /// A string argument (name, rate string, path, option) is not valid UTF-8.
    RW_INVALID_UTF8 = 2,
    /// A rate string does not parse (the message says where and why), or a limit does not fit
    /// the chosen algorithm.
    RW_INVALID_RATE = 3,
    /// Another argument is invalid: an empty policy name, an unknown algorithm or header set, a
    /// burst that does not apply, an options struct with a bad `struct_size`, a handle that is not
    /// a live handle of the expected type, a decision whose `limit_count` does not fit the policy.
    RW_INVALID_ARGUMENT = 4,
    /// A configuration (file, string or `RATEWALL_*` environment variable) is invalid; the
    /// message names the line and column or the variable.
    RW_CONFIG = 5,
    /// A file could not be read; the message carries the operating system's reason.
    RW_IO = 6,
    /// The configuration has no policy of that name.
    RW_NOT_FOUND = 7,
    /// `cost` was 0: every request costs at least one permit (use `rw_peek` to look without
    /// taking).
    RW_ZERO_COST = 8,
    /// `cost` exceeds what the policy can ever admit at once: waiting will not help, so this is
    /// an error rather than a denial.
    RW_INSUFFICIENT_CAPACITY = 9,
    /// The caller's buffer is too small; `*out_len` holds the size needed (including the
    /// terminating NUL). Call again with a buffer at least that large.
    RW_BUFFER_TOO_SMALL = 10,
    /// The request needs something this library does not support: an options field from a
    /// newer `ratewall.h`, or an explicit `now` (`rw_check`, `rw_peek`, `rw_refund`) on a policy
    /// backed by Redis, which decides with the server's clock (use the `_now` functions).
    RW_UNSUPPORTED = 11,
    /// A bug inside ratewall (a Rust panic, caught at the ABI boundary). Please report the
    /// message. The handle stays usable.
    RW_INTERNAL = 12,
    /// The configuration's Redis storage URL does not parse (the message says what would be
    /// valid). A scheme other than `memory://`, `redis://`, `rediss://`, `redis+unix://`,
    /// `redis+cluster://` and `rediss+cluster://` is already refused by the configuration
    /// parser: `RW_CONFIG`.
    RW_STORAGE_URL = 13,
    /// Redis could not be reached within the connect timeout (at construction, unless
    /// `RW_STORE_LAZY`), or the connection failed during `rw_reset`. Decisions never return it:
    /// during an outage the policy's fail mode decides.
    RW_STORAGE_UNAVAILABLE = 14,
    /// Redis answered with an error: authentication refused, scripting disabled, a key of the
    /// wrong type.
    RW_STORAGE_ERROR = 15,
}

/// An error on its way to the caller: a status and the message for `rw_last_error()`.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) status: rw_status,
    pub(crate) message: String,
}

impl Error {
    #[cold]
    pub(crate) fn new(status: rw_status, message: impl Display) -> Error {
        Error {
            status,
            message: message.to_string(),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` as this thread's last error. Interior NULs (from quoted input) are escaped
/// so that C sees the whole message.
#[cold]
pub(crate) fn set_last_error(message: &str) {
    let text = message.replace('\0', "\\0");
    let c = CString::new(text).unwrap_or_default();
    // During thread teardown the slot may be gone; the status code still reaches the caller.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = c;
        }
    });
}

#[cold]
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs the body of entry point `function`: catches any panic (none may unwind into C), and
/// turns an error into its status plus this thread's last-error message, prefixed with the
/// function's name.
#[inline(always)]
pub(crate) fn guard(function: &'static str, body: impl FnOnce() -> Result<()>) -> rw_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => rw_status::RW_OK,
        Ok(Err(e)) => fail(function, e),
        Err(payload) => panicked(function, payload),
    }
}

#[cold]
#[inline(never)]
fn fail(function: &str, e: Error) -> rw_status {
    set_last_error(&format!("{function}: {}", e.message));
    e.status
}

#[cold]
#[inline(never)]
fn panicked(function: &str, payload: Box<dyn std::any::Any + Send>) -> rw_status {
    // Dropping a payload can itself panic; never let that unwind either.
    let message = catch_unwind(AssertUnwindSafe(|| panic_message(&*payload)))
        .unwrap_or_else(|_| "unprintable panic payload".to_string());
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    set_last_error(&format!(
        "{function}: internal error in ratewall (please report): {message}"
    ));
    rw_status::RW_INTERNAL
}

/// The message explaining the last failed call on the calling thread: the function's name and
/// what to change, e.g. `rw_policy_from_str: invalid rate string: ...`.
///
/// Never NULL: an empty string when this thread has seen no failure. The message is set only by
/// calls that fail (successful calls leave it unchanged), so read it right after a call returned
/// something other than `RW_OK`. The pointer is owned by the library and stays valid until the
/// next failing ratewall call on the same thread or the thread's exit; copy it to keep it. Each
/// thread has its own message.
#[no_mangle]
pub extern "C" fn rw_last_error() -> *const c_char {
    static EMPTY: &[u8; 1] = b"\0";
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|slot| slot.try_borrow().map(|s| s.as_ptr()).ok())
            .ok()
            .flatten()
    })
    .ok()
    .flatten()
    .unwrap_or(EMPTY.as_ptr().cast())
}

/// The name of status code `status` as a static NUL-terminated string (`"RW_OK"`,
/// `"RW_BUFFER_TOO_SMALL"`, ...), or `"RW_UNKNOWN_STATUS"` for a value this version does not
/// know. Never NULL; never needs freeing. Takes an `int` so that any value is safe to pass.
#[no_mangle]
pub extern "C" fn rw_status_str(status: c_int) -> *const c_char {
    let name: &'static [u8] = match status {
        0 => b"RW_OK\0",
        1 => b"RW_NULL_POINTER\0",
        2 => b"RW_INVALID_UTF8\0",
        3 => b"RW_INVALID_RATE\0",
        4 => b"RW_INVALID_ARGUMENT\0",
        5 => b"RW_CONFIG\0",
        6 => b"RW_IO\0",
        7 => b"RW_NOT_FOUND\0",
        8 => b"RW_ZERO_COST\0",
        9 => b"RW_INSUFFICIENT_CAPACITY\0",
        10 => b"RW_BUFFER_TOO_SMALL\0",
        11 => b"RW_UNSUPPORTED\0",
        12 => b"RW_INTERNAL\0",
        13 => b"RW_STORAGE_URL\0",
        14 => b"RW_STORAGE_UNAVAILABLE\0",
        15 => b"RW_STORAGE_ERROR\0",
        _ => b"RW_UNKNOWN_STATUS\0",
    };
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        unsafe { CStr::from_ptr(rw_last_error()) }
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_panic_becomes_rw_internal_with_a_message() {
        let status = guard("rw_test", || panic!("boom {}", 42));
        assert_eq!(status, rw_status::RW_INTERNAL);
        assert!(last().contains("rw_test: internal error"), "{}", last());
        assert!(last().contains("boom 42"));
        let status = guard("rw_test", || std::panic::panic_any(7_u8));
        assert_eq!(status, rw_status::RW_INTERNAL);
        assert!(last().contains("unknown panic payload"));
    }

    #[test]
    fn errors_set_the_message_and_success_leaves_it() {
        let status = guard("rw_x", || Err(Error::new(rw_status::RW_IO, "nope\0here")));
        assert_eq!(status, rw_status::RW_IO);
        assert_eq!(last(), "rw_x: nope\\0here");
        assert_eq!(guard("rw_y", || Ok(())), rw_status::RW_OK);
        assert_eq!(last(), "rw_x: nope\\0here");
    }

    #[test]
    fn the_message_is_per_thread() {
        guard("rw_main", || Err(Error::new(rw_status::RW_IO, "main")));
        std::thread::spawn(|| {
            assert_eq!(last(), "");
            guard("rw_other", || {
                Err(Error::new(rw_status::RW_CONFIG, "other"))
            });
            assert_eq!(last(), "rw_other: other");
        })
        .join()
        .unwrap();
        assert_eq!(last(), "rw_main: main");
    }

    #[test]
    fn every_status_has_its_name() {
        use rw_status::*;
        let all = [
            RW_OK,
            RW_NULL_POINTER,
            RW_INVALID_UTF8,
            RW_INVALID_RATE,
            RW_INVALID_ARGUMENT,
            RW_CONFIG,
            RW_IO,
            RW_NOT_FOUND,
            RW_ZERO_COST,
            RW_INSUFFICIENT_CAPACITY,
            RW_BUFFER_TOO_SMALL,
            RW_UNSUPPORTED,
            RW_INTERNAL,
            RW_STORAGE_URL,
            RW_STORAGE_UNAVAILABLE,
            RW_STORAGE_ERROR,
        ];
        for s in all {
            let name = unsafe { CStr::from_ptr(rw_status_str(s as c_int)) };
            assert_eq!(name.to_str().unwrap(), format!("{s:?}"));
        }
        let unknown = unsafe { CStr::from_ptr(rw_status_str(-1)) };
        assert_eq!(unknown.to_str().unwrap(), "RW_UNKNOWN_STATUS");
    }
}
