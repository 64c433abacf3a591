//! The HTTP contract into caller buffers: rate-limit headers, `Retry-After` and the 429 body,
//! byte-identical to every other ratewall binding.

use std::ffi::c_char;
use std::ptr::addr_of;

use ratewall::http::{self, BufferTooSmall, RateLimitState};
use ratewall::policy::PolicyDecision;
use ratewall::Decision;

use crate::error::{guard, rw_status, Error, Result};
use crate::policy::{policy_ref, rw_decision, rw_limit_decision, rw_policy, RW_MAX_LIMITS};
use crate::util::{bytes, check_ptr, null};

/// The HTTP status of a denied response: 429 Too Many Requests.
pub const RW_DENIED_STATUS: u16 = 429;

/// The `Content-Type` of the 429 body written by `rw_render_denied_body`.
pub const RW_DENIED_CONTENT_TYPE: &str = http::DENIED_CONTENT_TYPE;

const _: () = assert!(RW_DENIED_STATUS == http::DENIED_STATUS);

/// Reads a `bool` the caller wrote, without assuming it holds 0 or 1.
///
/// # Safety
/// `p` is valid for reading one byte.
unsafe fn read_bool(p: *const bool) -> bool {
    p.cast::<u8>().read() != 0
}

/// Rebuilds the policy decision from `limits[0 .. limit_count]` of a caller's `rw_decision`
/// (only those fields are read, field by field).
///
/// # Safety
/// `d` is non-NULL, aligned and readable as an `rw_decision` whose first `limit_count` entries
/// are initialised.
unsafe fn read_decision(d: *const rw_decision, max: usize) -> Result<PolicyDecision> {
    let count = addr_of!((*d).limit_count).read() as usize;
    if count == 0 || count > max {
        return Err(Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            format_args!(
                "decision->limit_count is {count}: pass the rw_decision filled by rw_check for \
                 this policy (1 to {max} limits)"
            ),
        ));
    }
    let entries = addr_of!((*d).limits).cast::<rw_limit_decision>();
    let mut limits = [Decision {
        allowed: true,
        limit: 0,
        remaining: 0,
        retry_after: 0,
        reset_after: 0,
    }; RW_MAX_LIMITS];
    for (i, slot) in limits.iter_mut().enumerate().take(count) {
        let e = entries.add(i);
        *slot = Decision {
            allowed: read_bool(addr_of!((*e).allowed)),
            limit: addr_of!((*e).limit).read(),
            remaining: addr_of!((*e).remaining).read(),
            retry_after: addr_of!((*e).retry_after).read(),
            reset_after: addr_of!((*e).reset_after).read(),
        };
    }
    PolicyDecision::from_limits(&limits[..count]).ok_or_else(|| {
        Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            "decision->limits cannot form a decision",
        )
    })
}

/// Writes what `render` produces plus a NUL into the caller's buffer, or reports the size needed.
///
/// # Safety
/// `buf` is NULL (then `cap` is 0) or valid for writing `cap` bytes; `out_len` is valid for
/// writes.
unsafe fn write_out(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    render: impl FnOnce(&mut [u8]) -> std::result::Result<usize, BufferTooSmall>,
) -> Result<()> {
    if buf.is_null() && cap != 0 {
        return Err(null("buf (with cap > 0)"));
    }
    if cap > isize::MAX as usize {
        return Err(Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            format_args!("cap {cap} is larger than any buffer can be"),
        ));
    }
    // One byte stays free for the terminating NUL.
    let room: &mut [u8] = if cap == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap - 1)
    };
    let needed = match render(room) {
        Ok(len) if cap > 0 => {
            buf.add(len).write(0);
            out_len.write(len);
            return Ok(());
        }
        Ok(len) => len + 1,
        Err(BufferTooSmall { needed }) => needed + 1,
    };
    if cap > 0 {
        buf.write(0);
    }
    out_len.write(needed);
    Err(Error::new(
        rw_status::RW_BUFFER_TOO_SMALL,
        format_args!(
            "a buffer of {cap} bytes is too small: {needed} bytes are needed (with the NUL)"
        ),
    ))
}

/// Writes the rate-limit response headers for `decision` (and `Retry-After` on a denial) as
/// HTTP/1.1 field lines, `Name: value\r\n` each, into `buf`, NUL-terminated: exactly what every
/// ratewall binding sends, in the header sets of the policy (options `headers`, or the
/// configuration's). Copy the lines into your response after the status line.
///
/// - `decision`: filled by `rw_check`/`rw_peek`/`rw_refund` on this policy; only
///   `limit_count` and `limits[0 .. limit_count]` are read.
/// - `key`, `key_len`: the client key, for the draft-8 partition key (`pk`); may be NULL (then
///   `pk` is left out, and `key_len` is ignored); must be UTF-8 when given.
/// - `now_unix_ms`: wall-clock time for `X-RateLimit-Reset` and `Date`; pass `rw_unix_time_ms()`.
/// - `buf`, `cap`: the buffer and its size in bytes. 512 bytes fit every single-limit header set.
///   `buf` may be NULL when `cap` is 0, to ask for the size.
/// - `out_len`: on `RW_OK`, the length written (without the NUL); on `RW_BUFFER_TOO_SMALL`, the
///   size needed (with the NUL), and `buf` holds an empty string (when `cap > 0`).
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_UTF8`, `RW_INVALID_ARGUMENT` (a decision that does not
/// fit this policy), `RW_BUFFER_TOO_SMALL`. Thread-safe.
///
/// # Safety
/// `policy` is NULL or a live handle; `decision` is NULL or points to an `rw_decision` whose
/// first `limit_count` entries are initialised; `key` is NULL or points to `key_len` readable
/// bytes; `buf` is NULL or valid for writing `cap` bytes; `out_len` is NULL or valid for writing
/// a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn rw_render_headers(
    policy: *const rw_policy,
    decision: *const rw_decision,
    key: *const u8,
    key_len: usize,
    now_unix_ms: u64,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> rw_status {
    guard("rw_render_headers", || {
        let p = policy_ref(policy)?;
        check_ptr(decision, "decision")?;
        check_ptr(out_len, "out_len")?;
        let key = if key.is_null() {
            None
        } else {
            let raw = bytes(key, key_len, "key")?;
            Some(std::str::from_utf8(raw).map_err(|e| {
                Error::new(
                    rw_status::RW_INVALID_UTF8,
                    format_args!(
                        "key is not valid UTF-8 (invalid byte at offset {}); pass NULL to leave \
                         the draft-8 partition key out",
                        e.valid_up_to()
                    ),
                )
            })?)
        };
        let policy = p.policy();
        let d = read_decision(decision, policy.rates().len().min(RW_MAX_LIMITS))?;
        let infos = policy.limit_infos(&d);
        let combined = d.decision();
        let mut state =
            RateLimitState::new(combined.allowed, combined.retry_after, &infos, now_unix_ms);
        if let Some(key) = key {
            state = state.with_key(key);
        }
        write_out(buf, cap, out_len, |room| {
            http::render_headers_into(&state, p.headers(), room)
        })
    })
}

/// Writes the body of a 429 response for `decision` into `buf`, NUL-terminated: exactly
/// `{"error":"rate_limited","retryAfter":N}` with `N` = `rw_retry_after_seconds(
/// decision->retry_after)`, the same value as `Retry-After`. Send it with status
/// `RW_DENIED_STATUS` and `Content-Type: RW_DENIED_CONTENT_TYPE`. 64 bytes always suffice.
///
/// `out_len`: on `RW_OK` the length written (without the NUL); on `RW_BUFFER_TOO_SMALL` the size
/// needed (with the NUL). `buf` may be NULL when `cap` is 0. Only `decision->retry_after` is
/// read.
///
/// Errors: `RW_NULL_POINTER`, `RW_BUFFER_TOO_SMALL`. Thread-safe.
///
/// # Safety
/// `decision` is NULL or points to an `rw_decision` with `retry_after` initialised; `buf` is
/// NULL or valid for writing `cap` bytes; `out_len` is NULL or valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn rw_render_denied_body(
    decision: *const rw_decision,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> rw_status {
    guard("rw_render_denied_body", || {
        check_ptr(decision, "decision")?;
        check_ptr(out_len, "out_len")?;
        let retry_after = addr_of!((*decision).retry_after).read();
        write_out(buf, cap, out_len, |room| {
            http::render_denied_body_into(retry_after, room)
        })
    })
}
