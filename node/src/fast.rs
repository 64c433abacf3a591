//! The hot path: `check`, `peek` and `refund` as raw Node-API callbacks.
//!
//! `bindFast(limiter, out, coarse?)` (a raw export) returns `{ check, checkKey, peek, peekKey,
//! refund, refundKey, reset, headers, headerValues }` (plus `checkKeyDirect`, `peekKeyDirect`
//! and `refundKeyDirect` where [`crate::direct`] is available: the key-only functions as
//! direct V8 callbacks, which return `false` when they leave a call to these), functions bound
//! to one [`NativeLimiter`] and one `Float64Array` `out` of at least [`OUT_LEN`] elements,
//! reading the coarse clock ([`crate::clock::coarse_now_ns`]) instead of the precise one when
//! no time is passed and `coarse` is `true`. `check`, `peek` and `refund` take `(key: string, cost?: number, nowMs?:
//! number)`; `checkKey`, `peekKey` and `refundKey` take the key alone (cost 1, the limiter's
//! clock) and read no other argument, which makes the common call a little cheaper. Each writes
//! the decision into `out` and returns `undefined` (`out[0]` says whether the request was
//! admitted). On a bad argument it throws a `TypeError` or `RangeError` and changes nothing.
//! `reset(key)` makes the key full again. Keys are hashed from their UTF-16 code units, so every
//! operation on a key must come through these functions. `headers(key?, nowUnixMs,
//! identifier?)` renders the last decision's headers, `headerValues` their values alone
//! ([`fast_headers`]).
//!
//! Layout of `out` (all durations in milliseconds):
//!
//! | index | value |
//! |---|---|
//! | 0 | allowed (1 or 0) |
//! | 1 | limit |
//! | 2 | remaining |
//! | 3 | retryAfter |
//! | 4 | resetAfter |
//! | 5 | index of the most restrictive limit |
//! | 6 | number of limits `n` |
//! | 8 + 5i .. 8 + 5i + 4 | limit `i`'s allowed, limit, remaining, retryAfter, resetAfter (only when `n > 1`) |
//!
//! No napi-rs marshalling happens per call: the key is read with `napi_get_value_string_utf16`
//! as UTF-16 into a stack buffer of 256 code units (a heap buffer for longer keys), numbers with
//! `napi_get_value_double`, and nothing is returned. Arguments not passed are not looked at
//! (`checkKey(key)` asks Node-API for nothing but the key), and without `nowMs` the time is read
//! here ([`crate::clock`]).
//!
//! Where the time of a `check(key)` goes (`perf` on Node 20, a 1-limit fixed window, 1000 keys,
//! about 90 ns in all on a quiet 2-core KVM guest): an eighth in reading the clock (the
//! time-stamp counter, 17 ns on this VM, extrapolated to `CLOCK_MONOTONIC` by the thread's
//! [`ThreadMonotonicClock`]: a quarter of the call when it was `clock_gettime`), a fifth
//! in the Node-API call itself (V8's API-callback entry, `napi_get_cb_info`, the UTF-16 copy of
//! the key), about a third in the decision ([`Policy::check_one_at_mut`]: the key's hash, the
//! probe, a plain store: a limiter's `Entry` never leaves its thread, so the check borrows its policy
//! exclusively and takes neither the shard lock nor a compare-and-swap, two atomic
//! read-modify-writes and ~20 ns on this machine), the rest here (writing `out`) and in the
//! JavaScript glue that builds the `Decision`.
//!
//! [`Policy::check_one_at_mut`]: ratewall::policy::Policy::check_one_at_mut

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use ratewall::clock::ThreadMonotonicClock;
use ratewall::policy::{PolicyDecision, MAX_LIMITS};
use ratewall::{CheckError, Decision};

use crate::limiter::{combined, Entry, Last, NativeLimiter};

/// Length, in `f64`s, that the output array must have: 8 + 5 × 8 limits.
pub const OUT_LEN: usize = 8 + 5 * ratewall::policy::MAX_LIMITS;

/// Keys up to this many UTF-16 code units are read without allocating.
const STACK_KEY: usize = 256;

/// The largest cost accepted: `Number.MAX_SAFE_INTEGER`.
const MAX_COST: f64 = 9_007_199_254_740_991.0;

/// Milliseconds (finite, not negative) to nanoseconds, saturating; `None` otherwise.
pub fn ms_to_ns(ms: f64) -> Option<u64> {
    if ms.is_finite() && ms >= 0.0 {
        // `as` saturates at u64::MAX.
        Some((ms * 1e6) as u64)
    } else {
        None
    }
}

/// Nanoseconds to milliseconds.
#[inline]
pub fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[derive(Clone, Copy)]
pub(crate) enum Op {
    Check,
    Peek,
    Refund,
    Reset,
    /// The last decision's headers (see [`fast_headers`]).
    Headers,
    /// Their values alone.
    HeaderValues,
}

/// What one fast function is bound to. Owned by the function object (freed by its finalizer).
pub(crate) struct Bound {
    entry: Rc<Entry>,
    op: Op,
    out: *mut f64,
    /// Keeps `out`'s buffer alive while the function is.
    out_ref: sys::napi_ref,
    /// Read the coarse clock when no time is passed (`clock: 'coarse'`).
    coarse: bool,
    /// The default clock's reader of this thread (see [`crate::clock`]).
    clock: Rc<ThreadMonotonicClock>,
}

/// Writes `d` at `out[at..at + 5]`.
///
/// # Safety
/// `out` points to at least `at + 5` `f64`s.
#[inline]
unsafe fn write_decision(out: *mut f64, at: usize, d: &Decision) {
    *out.add(at) = if d.allowed { 1.0 } else { 0.0 };
    *out.add(at + 1) = d.limit as f64;
    *out.add(at + 2) = d.remaining as f64;
    *out.add(at + 3) = ns_to_ms(d.retry_after);
    *out.add(at + 4) = ns_to_ms(d.reset_after);
}

/// Writes a whole policy decision into `out` and remembers it in `last`.
///
/// # Safety
/// `out` points to at least [`OUT_LEN`] `f64`s; `last` is not borrowed elsewhere.
#[inline]
unsafe fn record(
    out: *mut f64,
    last: *mut Last,
    limits: &[Decision],
    most_restrictive: usize,
    remember: bool,
) {
    write_decision(out, 0, &combined(limits, most_restrictive));
    *out.add(5) = most_restrictive as f64;
    *out.add(6) = limits.len() as f64;
    if limits.len() > 1 {
        for (i, d) in limits.iter().enumerate() {
            write_decision(out, 8 + 5 * i, d);
        }
    }
    if remember {
        let last = &mut *last;
        let n = limits.len().min(MAX_LIMITS);
        last.len = n;
        last.most_restrictive = most_restrictive;
        last.each[..n].copy_from_slice(&limits[..n]);
    }
}

/// [`record`] for a one-limit policy's decision, written field by field.
///
/// `d` was just written to the stack by the out-of-line check, one 8-byte store per field. Left
/// to itself the compiler loads the fields back in 16-byte pairs (to convert two at once), and a
/// load that spans two stores cannot be forwarded from them: `perf` put that stall at a quarter
/// of this file's time per check. Volatile reads keep each load the width of its store. (Going
/// through `record`'s slice had the same stall on the whole `Option<Result<Decision, _>>`.)
///
/// # Safety
/// As for [`record`].
#[inline(always)]
unsafe fn record_one(out: *mut f64, last: *mut Last, d: &Decision) {
    let allowed = ptr::read_volatile(&d.allowed);
    let limit = ptr::read_volatile(&d.limit);
    let remaining = ptr::read_volatile(&d.remaining);
    let retry_after = ptr::read_volatile(&d.retry_after);
    let reset_after = ptr::read_volatile(&d.reset_after);
    *out = if allowed { 1.0 } else { 0.0 };
    *out.add(1) = limit as f64;
    *out.add(2) = remaining as f64;
    *out.add(3) = ns_to_ms(retry_after);
    *out.add(4) = ns_to_ms(reset_after);
    *out.add(5) = 0.0;
    *out.add(6) = 1.0;
    let last = &mut *last;
    last.len = 1;
    last.most_restrictive = 0;
    last.each[0] = Decision {
        allowed,
        limit,
        remaining,
        retry_after,
        reset_after,
    };
}

/// Throws a check's error as a `RangeError`, out of line: the hot path stays small.
#[cold]
#[inline(never)]
unsafe fn throw_check_error(env: sys::napi_env, error: CheckError) -> sys::napi_value {
    throw_range(env, &error.to_string())
}

/// Throws `TypeError(message)` and returns `NULL` (the callback's "exception pending").
unsafe fn throw_type(env: sys::napi_env, message: &str) -> sys::napi_value {
    throw(env, message, true)
}

/// Throws `RangeError(message)` and returns `NULL`.
unsafe fn throw_range(env: sys::napi_env, message: &str) -> sys::napi_value {
    throw(env, message, false)
}

unsafe fn throw(env: sys::napi_env, message: &str, type_error: bool) -> sys::napi_value {
    // The C API wants a NUL-terminated string; our messages have no interior NUL, but strip
    // any to be safe.
    let mut bytes: Vec<u8> = message.bytes().filter(|&b| b != 0).collect();
    bytes.push(0);
    let msg = bytes.as_ptr().cast::<c_char>();
    if type_error {
        sys::napi_throw_type_error(env, ptr::null(), msg);
    } else {
        sys::napi_throw_range_error(env, ptr::null(), msg);
    }
    ptr::null_mut()
}

fn type_name(t: sys::napi_valuetype) -> &'static str {
    match t {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "boolean",
        sys::ValueType::napi_number => "number",
        sys::ValueType::napi_string => "string",
        sys::ValueType::napi_symbol => "symbol",
        sys::ValueType::napi_object => "object",
        sys::ValueType::napi_function => "function",
        sys::ValueType::napi_external => "external",
        _ => "bigint",
    }
}

/// Reads an optional argument of type `expected` with `read`: `Ok(None)` for
/// `undefined`/missing, a `TypeError` naming `what` and `kind` for any other type.
unsafe fn optional<T>(
    env: sys::napi_env,
    value: sys::napi_value,
    what: &str,
    (expected, kind): (sys::napi_valuetype, &str),
    read: impl FnOnce() -> T,
) -> std::result::Result<Option<T>, sys::napi_value> {
    if value.is_null() {
        return Ok(None);
    }
    let mut t = 0;
    if sys::napi_typeof(env, value, &mut t) != sys::Status::napi_ok {
        return Err(throw_type(env, &format!("{what} could not be read")));
    }
    if t == sys::ValueType::napi_undefined {
        Ok(None)
    } else if t == expected {
        Ok(Some(read()))
    } else {
        Err(throw_type(
            env,
            &format!("{what} must be a {kind}, got {}", type_name(t)),
        ))
    }
}

/// Reads an optional number argument: `Ok(None)` for `undefined`/missing.
unsafe fn optional_number(
    env: sys::napi_env,
    value: sys::napi_value,
    what: &str,
) -> std::result::Result<Option<f64>, sys::napi_value> {
    optional(
        env,
        value,
        what,
        (sys::ValueType::napi_number, "number"),
        || {
            let mut n = 0.0;
            sys::napi_get_value_double(env, value, &mut n);
            n
        },
    )
}

/// A bound function's first `N` arguments (`N` at most three: `argc` is the number passed, at
/// most `N`; slots past it hold `undefined` or nothing) and what it is bound to; `None` without
/// its `Bound`.
///
/// `N` is what Node-API copies: asking for one argument instead of three saves the copies (and
/// the `undefined` handles filled in) of a call that passes the key alone, about a nanosecond of
/// a `check(key)`.
///
/// # Safety
/// `info` is the callback's; the function's data is a live `Bound` (set by `bind_fast`).
#[inline(always)]
unsafe fn bound_args<'a, const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Option<(usize, [sys::napi_value; 3], &'a Bound)> {
    const { assert!(N <= 3) };
    let mut argc: usize = N;
    let mut argv: [sys::napi_value; 3] = [ptr::null_mut(); 3];
    let mut data: *mut c_void = ptr::null_mut();
    let status = sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        ptr::null_mut(),
        &mut data,
    );
    if status != sys::Status::napi_ok || data.is_null() {
        return None;
    }
    Some((argc.min(N), argv, &*(data as *const Bound)))
}

/// The raw callback behind `check`, `peek` and `refund` (`N` = 3), and behind `checkKey`,
/// `peekKey` and `refundKey` (`N` = 1: the key alone; any further argument is not read).
unsafe extern "C" fn fast_call<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let Some((argc, argv, bound)) = bound_args::<N>(env, info) else {
        return throw_type(env, "ratewall: fast call without its limiter");
    };

    // key: a string (typeof is asked only to word the error).
    if argc == 0 {
        return throw_type(env, "key must be a string, got undefined");
    }
    let mut stack = std::mem::MaybeUninit::<[u16; STACK_KEY]>::uninit();
    let mut len: usize = 0;
    if sys::napi_get_value_string_utf16(
        env,
        argv[0],
        stack.as_mut_ptr().cast(),
        STACK_KEY,
        &mut len,
    ) != sys::Status::napi_ok
    {
        let mut t = 0;
        sys::napi_typeof(env, argv[0], &mut t);
        return throw_type(env, &format!("key must be a string, got {}", type_name(t)));
    }
    let heap;
    let units: &[u16] = if len < STACK_KEY - 1 {
        // SAFETY: the first `len` units were written.
        std::slice::from_raw_parts(stack.as_ptr().cast::<u16>(), len)
    } else {
        // Possibly truncated: ask for the exact length, then read it all.
        let mut full: usize = 0;
        sys::napi_get_value_string_utf16(env, argv[0], ptr::null_mut(), 0, &mut full);
        let mut buf = vec![0u16; full + 1];
        sys::napi_get_value_string_utf16(env, argv[0], buf.as_mut_ptr(), full + 1, &mut len);
        buf.truncate(len);
        heap = buf;
        &heap
    };
    let key: &[u8] = std::slice::from_raw_parts(units.as_ptr().cast::<u8>(), units.len() * 2);

    // cost: a whole number from 1 to MAX_SAFE_INTEGER; default 1. Arguments not passed are
    // not even looked at: the JavaScript glue calls `check(key)` in the common case.
    let cost = if argc < 2 {
        1
    } else {
        match optional_number(env, argv[1], "cost") {
            Err(e) => return e,
            Ok(None) => 1,
            Ok(Some(c)) => {
                if !((1.0..=MAX_COST).contains(&c) && c.fract() == 0.0) {
                    return throw_range(
                        env,
                        &format!("cost must be a whole number from 1 to 2^53 - 1, got {c}"),
                    );
                }
                c as u64
            }
        }
    };

    // now: milliseconds on the performance.now() scale; default: the addon's clock.
    let given = if argc < 3 {
        None
    } else {
        match optional_number(env, argv[2], "now") {
            Err(e) => return e,
            Ok(given) => given,
        }
    };
    let now = match given {
        None => clock_now(bound),
        Some(ms) => match ms_to_ns(ms) {
            Some(ns) => ns,
            None => {
                return throw_range(
                    env,
                    &format!("now must be a finite number of milliseconds >= 0, got {ms}"),
                )
            }
        },
    };

    match apply(bound, key, now, cost) {
        Ok(()) => ptr::null_mut(),
        Err(Failure::Check(e)) => throw_check_error(env, e),
        Err(Failure::Reentered) => throw_type(env, "ratewall: limiter re-entered during a call"),
        // Bound to `fast_headers`, never to this callback.
        Err(Failure::NotAnOperation) => throw_type(env, "ratewall: headers called as a check"),
    }
}

/// Why [`apply`] changed nothing.
pub(crate) enum Failure {
    /// The core refused the arguments (a cost above the limit's capacity).
    Check(CheckError),
    /// The limiter is in use further up this thread's stack (a call from inside a call).
    Reentered,
    /// The function is bound to something that is not a check, a peek, a refund or a reset.
    NotAnOperation,
}

/// Carries out `bound`'s operation on `key` at `now` for `cost` permits and writes its decision
/// into `out` (and the last decision, for the headers); on failure, changes nothing.
///
/// # Safety
/// `bound.out` points to at least [`OUT_LEN`] `f64`s.
#[inline(always)]
pub(crate) unsafe fn apply(
    bound: &Bound,
    key: &[u8],
    now: u64,
    cost: u64,
) -> std::result::Result<(), Failure> {
    // Each arm hands its result straight to `finish` (one arm, one call): merging the three
    // results into one variable first made the compiler copy the whole `PolicyDecision`
    // (eight limits' room) once more per call.
    let Ok(mut exclusive) = bound.entry.policy.try_borrow_mut() else {
        return Err(Failure::Reentered);
    };
    let policy = &mut *exclusive;
    match bound.op {
        // One limit (the common case): its decision alone, no `PolicyDecision` built at all,
        // through the exclusive borrow (no shard lock, no compare-and-swap).
        Op::Check => match policy.check_one_at_mut(key, now, cost) {
            Some(Ok(d)) => {
                record_one(bound.out, bound.entry.last.get(), &d);
                Ok(())
            }
            Some(Err(e)) => Err(Failure::Check(e)),
            None => finish(bound, policy.check_at(key, now, cost), true),
        },
        Op::Peek => finish(bound, policy.peek_at(key, now, cost), true),
        Op::Refund => finish(bound, policy.refund_at(key, now, cost), false),
        Op::Reset => {
            policy.reset(key);
            Ok(())
        }
        Op::Headers | Op::HeaderValues => Err(Failure::NotAnOperation),
    }
}

/// The time of a call that passed none: the limiter's clock.
#[inline(always)]
pub(crate) fn clock_now(bound: &Bound) -> u64 {
    if bound.coarse {
        crate::clock::coarse_now_ns()
    } else {
        crate::clock::now_ns(&bound.clock)
    }
}

/// Reads an optional string argument as UTF-8: `Ok(None)` for `undefined`/missing.
unsafe fn optional_string(
    env: sys::napi_env,
    value: sys::napi_value,
    what: &str,
) -> std::result::Result<Option<String>, sys::napi_value> {
    optional(
        env,
        value,
        what,
        (sys::ValueType::napi_string, "string"),
        || {
            let mut len = 0usize;
            sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len);
            let mut buf = vec![0u8; len + 1];
            sys::napi_get_value_string_utf8(env, value, buf.as_mut_ptr().cast(), len + 1, &mut len);
            buf.truncate(len);
            // Node-API writes valid UTF-8 (lone surrogates become U+FFFD).
            String::from_utf8_lossy(&buf).into_owned()
        },
    )
}

/// The raw callback behind `headers(key?, nowUnixMs, identifier?)`: the last decision's headers
/// in the limiter's own header sets, as one string joined by `'\n'`
/// (`name\nvalue\nname\nvalue`; `''` before any decision), as `NativeLimiter.lastHeadersJoined`
/// renders them. `key` is shown only by draft-8's partition key; `identifier` replaces draft-8's
/// name. The Express middleware calls this once per response: a class method of the addon costs
/// about 300 ns more per call (unwrapping `this`, checking its type tag, registering the borrow),
/// as much as rendering the headers. Bound as `headerValues`, the same with the values alone
/// (`value\nvalue`): the names depend only on the header sets and on whether the request was
/// allowed, so the middleware keeps them from a first `headers` call.
unsafe extern "C" fn fast_headers(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let Some((_, argv, bound)) = bound_args::<3>(env, info) else {
        return throw_type(env, "ratewall: headers without its limiter");
    };
    let key = match optional_string(env, argv[0], "key") {
        Ok(key) => key,
        Err(e) => return e,
    };
    let now_unix_ms = match optional_number(env, argv[1], "nowUnixMs") {
        Ok(Some(ms)) => crate::limiter::unix_ms(ms),
        Ok(None) => return throw_type(env, "nowUnixMs must be a number, got undefined"),
        Err(e) => return e,
    };
    let identifier = match optional_string(env, argv[2], "identifier") {
        Ok(id) => id,
        Err(e) => return e,
    };
    let names = matches!(bound.op, Op::Headers);
    let rendered = crate::limiter::with_last(
        &bound.entry,
        &bound.entry.sets,
        identifier.as_deref(),
        |entry, last, sets| {
            crate::headers::render_policy_joined(
                entry,
                last,
                sets,
                key.as_deref(),
                now_unix_ms,
                names,
            )
        },
    );
    let joined = match rendered {
        Ok(joined) => joined.unwrap_or_default(),
        Err(e) => return throw_type(env, &e.reason),
    };
    let mut value = ptr::null_mut();
    if sys::napi_create_string_utf8(
        env,
        joined.as_ptr().cast(),
        joined.len() as isize,
        &mut value,
    ) != sys::Status::napi_ok
    {
        return throw_type(env, "ratewall: could not create the headers string");
    }
    value
}

/// Writes an operation's result into `out` (and `last` when `remember`), or hands back its
/// error. The callbacks return `undefined`: the caller reads `out[0]` (creating a return value
/// costs more).
///
/// # Safety
/// `bound.out` points to at least [`OUT_LEN`] `f64`s.
#[inline(always)]
unsafe fn finish(
    bound: &Bound,
    result: std::result::Result<PolicyDecision, CheckError>,
    remember: bool,
) -> std::result::Result<(), Failure> {
    match &result {
        Ok(pd) => {
            record(
                bound.out,
                bound.entry.last.get(),
                pd.limits(),
                pd.most_restrictive(),
                remember,
            );
            Ok(())
        }
        Err(e) => Err(Failure::Check(*e)),
    }
}

unsafe extern "C" fn finalize_bound(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if data.is_null() {
        return;
    }
    let bound = Box::from_raw(data as *mut Bound);
    if !bound.out_ref.is_null() {
        sys::napi_delete_reference(env, bound.out_ref);
    }
}

/// `bindFast(limiter, out)`: see the [module docs](self).
unsafe extern "C" fn bind_fast(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    match bind_fast_inner(env, info) {
        Ok(v) => v,
        Err(message) => throw_type(env, &message),
    }
}

unsafe fn bind_fast_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> std::result::Result<sys::napi_value, String> {
    let mut argc: usize = 3;
    let mut argv: [sys::napi_value; 3] = [ptr::null_mut(); 3];
    sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    if argc < 2 {
        return Err("bindFast(limiter, out, coarse?) needs at least two arguments".into());
    }
    let mut coarse = false;
    if argc > 2 && sys::napi_get_value_bool(env, argv[2], &mut coarse) != sys::Status::napi_ok {
        return Err("bindFast: the third argument (coarse clock) must be a boolean".into());
    }
    let not_limiter = || "bindFast: the first argument must be a NativeLimiter".to_string();
    let mut wrapped: *mut c_void = ptr::null_mut();
    if sys::napi_unwrap(env, argv[0], &mut wrapped) != sys::Status::napi_ok || wrapped.is_null() {
        return Err(not_limiter());
    }
    // Rejects objects of other classes (type tags, Node-API 8) before the cast.
    validate_type_tag(
        env,
        argv[0],
        &<NativeLimiter as TypeTag>::type_tag(),
        "NativeLimiter",
    )
    .map_err(|_| not_limiter())?;
    let limiter = &*(wrapped as *const NativeLimiter);
    let mut is_typed = false;
    sys::napi_is_typedarray(env, argv[1], &mut is_typed);
    if !is_typed {
        return Err("bindFast: the second argument must be a Float64Array".into());
    }
    let mut kind = 0;
    let mut len = 0usize;
    let mut data: *mut c_void = ptr::null_mut();
    let mut ab = ptr::null_mut();
    let mut offset = 0usize;
    sys::napi_get_typedarray_info(
        env,
        argv[1],
        &mut kind,
        &mut len,
        &mut data,
        &mut ab,
        &mut offset,
    );
    if kind != sys::TypedarrayType::float64_array || len < OUT_LEN || data.is_null() {
        return Err(format!(
            "bindFast: the second argument must be a Float64Array of at least {OUT_LEN} elements"
        ));
    }
    let mut object = ptr::null_mut();
    sys::napi_create_object(env, &mut object);
    type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
    // The key-only functions also get a direct V8 twin when available (`crate::direct`),
    // under the name given here.
    let table: [(&CStr, Op, Callback, Option<&CStr>); 9] = [
        (c"check", Op::Check, fast_call::<3>, None),
        (
            c"checkKey",
            Op::Check,
            fast_call::<1>,
            Some(c"checkKeyDirect"),
        ),
        (c"peek", Op::Peek, fast_call::<3>, None),
        (c"peekKey", Op::Peek, fast_call::<1>, Some(c"peekKeyDirect")),
        (c"refund", Op::Refund, fast_call::<3>, None),
        (
            c"refundKey",
            Op::Refund,
            fast_call::<1>,
            Some(c"refundKeyDirect"),
        ),
        (c"reset", Op::Reset, fast_call::<1>, None),
        (c"headers", Op::Headers, fast_headers, None),
        (c"headerValues", Op::HeaderValues, fast_headers, None),
    ];
    for (name, op, callback, direct_name) in table {
        let mut out_ref = ptr::null_mut();
        sys::napi_create_reference(env, argv[1], 1, &mut out_ref);
        let bound = Box::into_raw(Box::new(Bound {
            entry: limiter.entry(),
            op,
            out: data.cast(),
            out_ref,
            coarse,
            clock: crate::clock::thread_clock(),
        }));
        let mut func = ptr::null_mut();
        let status = sys::napi_create_function(
            env,
            name.as_ptr(),
            name.to_bytes().len() as isize,
            Some(callback),
            bound.cast(),
            &mut func,
        );
        if status != sys::Status::napi_ok {
            finalize_bound(env, bound.cast(), ptr::null_mut());
            return Err("bindFast: could not create a function".into());
        }
        if sys::napi_add_finalizer(
            env,
            func,
            bound.cast(),
            Some(finalize_bound),
            ptr::null_mut(),
            ptr::null_mut(),
        ) != sys::Status::napi_ok
        {
            finalize_bound(env, bound.cast(), ptr::null_mut());
            return Err("bindFast: could not attach a finalizer".into());
        }
        sys::napi_set_named_property(env, object, name.as_ptr(), func);
        if let Some(direct_name) = direct_name {
            // `func` owns `bound` (its finalizer frees it) and the twin keeps `func` alive.
            if let Some(twin) = crate::direct::twin(env, func, bound) {
                sys::napi_set_named_property(env, object, direct_name.as_ptr(), twin);
            }
        }
    }
    Ok(object)
}

/// The raw `bindFast` export, created once at module load.
pub(crate) fn create_bind_function(env: &Env) -> Result<Unknown<'static>> {
    let mut func = ptr::null_mut();
    let name = c"bindFast";
    let status = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr(),
            name.to_bytes().len() as isize,
            Some(bind_fast),
            ptr::null_mut(),
            &mut func,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(Error::from_reason("could not create bindFast"));
    }
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), func) })
}
