//! Policy handles, their options, and decisions: create, check, peek, refund, reset, free.

use std::ffi::{c_char, CString};
use std::ptr::{self, addr_of_mut, NonNull};
use std::str::FromStr;
use std::sync::Arc;

use ratewall::clock::CoarseMonotonicClock;
use ratewall::http::HeaderSets;
use ratewall::keyed::Overflow;
use ratewall::policy::{Algorithm, Policy, PolicyDecision, PolicyError, PolicyOptions};
use ratewall::{CheckError, Decision};
use ratewall_redis::{Limiter, Outcome, RedisPolicy};

use crate::config::{load_file, policy_in};
use crate::error::{guard, rw_status, Error, Result};
use crate::store::{
    field, fill_health, options_size, rw_health, rw_source, source_code, store_error, Loaded,
    RW_SOURCE_MEMORY,
};
use crate::util::{bytes, c_str, check_ptr, opt_c_str, Tagged};

/// The version of this crate, written into the header as `RW_VERSION`. `rw_version()` returns
/// the version of the library actually loaded.
pub const RW_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The most limits one policy holds (`"10/second; 1000/day"` is two); the size of
/// `rw_decision.limits`. Part of the ABI.
pub const RW_MAX_LIMITS: usize = 8;

/// `rw_policy_options.overflow`: when the key table is full of live keys, evict the key nearest
/// to idle and admit the new key (the default; keeps serving new clients during a key flood).
pub const RW_OVERFLOW_EVICT: u32 = 0;

/// `rw_policy_options.overflow`: when the key table is full of live keys, deny new keys until
/// room frees up, so a key flood can never reset a counter under attack. Choose it for logins,
/// OTPs and anything guarding against brute force.
pub const RW_OVERFLOW_DENY_NEW_KEYS: u32 = 1;

const _: () = assert!(RW_MAX_LIMITS == ratewall::policy::MAX_LIMITS);

/// One limit's own decision (one entry of `rw_decision.limits`). All durations are
/// nanoseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rw_limit_decision {
    /// Whether this limit admitted the request.
    pub allowed: bool,
    /// The most permits this limit holds at once (burst for the token bucket, limit otherwise).
    pub limit: u64,
    /// Permits left in this limit after the decision.
    pub remaining: u64,
    /// Nanoseconds until this limit would admit the same request; 0 when it admitted it.
    pub retry_after: u64,
    /// Nanoseconds until this limit is full again (or its window resets).
    pub reset_after: u64,
}

/// The answer to "may this client do this now?": the same five fields as in every ratewall
/// language, who decided, and each limit's own decision. All durations are nanoseconds.
///
/// `allowed`, `limit`, `remaining`, `retry_after` and `reset_after` are the combined decision
/// (the most restrictive limit's): use them to decide. `limits[0 .. limit_count]` hold every
/// limit's own decision in the policy's order; `rw_render_headers` reads only those. Entries
/// past `limit_count` are unspecified.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rw_decision {
    /// Whether the request was admitted by every limit (for a check: and its permits taken).
    pub allowed: bool,
    /// Who decided: `RW_SOURCE_MEMORY` (in-process), `RW_SOURCE_REDIS`, or, when Redis could not
    /// answer within the command timeout, the policy's fail mode: `RW_SOURCE_FAIL_OPEN`,
    /// `RW_SOURCE_FAIL_CLOSED`, `RW_SOURCE_LOCAL` (`rw_source_str` names it).
    pub source: rw_source,
    /// The most permits available at once (what `X-RateLimit-Limit` shows).
    pub limit: u64,
    /// Permits left right after this decision.
    pub remaining: u64,
    /// Nanoseconds until the same request could be admitted; 0 when allowed. `Retry-After` is
    /// `rw_retry_after_seconds(retry_after)`.
    pub retry_after: u64,
    /// Nanoseconds until the limiter is back to full / the window resets.
    pub reset_after: u64,
    /// Index (into the policy's limits) of the most restrictive limit: the one that denied, or
    /// the one with the fewest permits left.
    pub most_restrictive: u32,
    /// How many entries of `limits` are set: the policy's number of limits (fewer only when a
    /// concurrent request won a race midway and the request was denied).
    pub limit_count: u32,
    /// Each limit's own decision, in the policy's order.
    pub limits: [rw_limit_decision; RW_MAX_LIMITS],
}

/// `rw_policy_options.flags`: the policy's `_now` functions (`rw_check_now`, `rw_peek_now`,
/// `rw_refund_now`) read the coarse clock, `rw_now_coarse()`, instead of `rw_now()`: the same
/// timeline, up to a tick (1 to 4 ms) behind, for a fraction of the cost of a read (see
/// `rw_now_coarse` for what that trades). For limits counted in seconds or more on hot paths.
pub const RW_POLICY_COARSE_CLOCK: u32 = 1;

/// Options for `rw_policy_from_str`. Every field's zero value means "the default", so start from
/// `RW_POLICY_OPTIONS_INIT` (which also sets `struct_size`) and set what you need:
///
/// ```c
/// rw_policy_options opts = RW_POLICY_OPTIONS_INIT;
/// opts.algorithm = "sliding-log";
/// opts.overflow = RW_OVERFLOW_DENY_NEW_KEYS;
/// ```
///
/// A policy created this way is in-process; for policies shared through Redis, use a
/// configuration (`rw_config_from_str`, ...) with a `storage` URL.
///
/// ABI evolution: `struct_size` tells the library which version of this struct the caller
/// compiled against. Later versions only append fields; a newer library reads an older, smaller struct with defaults for
/// the missing fields, and an older library accepts a newer, larger struct only if every field it
/// does not know is zero (else `RW_UNSUPPORTED`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rw_policy_options {
    /// `sizeof(rw_policy_options)` as the caller sees it. Required.
    pub struct_size: usize,
    /// `"token-bucket"` (default; also `"gcra"`), `"fixed-window"`, `"fixed-window-aligned"`,
    /// `"sliding-window-counter"` (also `"sliding-window"`) or `"sliding-log"` (also
    /// `"moving-window"`). NULL for the default.
    pub algorithm: *const c_char,
    /// The header sets `rw_render_headers` writes: `"legacy"` (default: `X-RateLimit-*`),
    /// `"draft-6"`, `"draft-7"`, `"draft-8"`, `"ietf"`, a combination such as `"legacy, ietf"`,
    /// or `"none"` (only `Retry-After` on a denial). NULL for the default.
    pub headers: *const c_char,
    /// Token-bucket capacity when it differs from the limit (`"1/second"` with burst 5 is "5 at
    /// once, then one per second"). Only for a token bucket with one limit. 0 for the default
    /// (the limit).
    pub burst: u64,
    /// The most keys with live state, per limit. 0 for the default (1 000 000).
    pub max_keys: u64,
    /// `RW_OVERFLOW_EVICT` (0, the default) or `RW_OVERFLOW_DENY_NEW_KEYS`.
    pub overflow: u32,
    /// `RW_POLICY_COARSE_CLOCK`, or 0.
    pub flags: u32,
}

/// A policy: a name plus one or more limits enforced together per key, with its keyed state
/// and the header sets it renders. Opaque; create it with `rw_policy_from_str`,
/// `rw_policy_from_file` or `rw_config_policy`, free it with `rw_policy_free`.
///
/// Thread-safety: every function taking a `const rw_policy *` may be called on the same handle
/// from any number of threads at once (the in-process state is lock-free atomics, Redis decides
/// atomically in one script; admissions are exact under concurrency). Only `rw_policy_free`
/// needs exclusive access: no other call on the handle may run or follow it.
pub struct rw_policy(Tagged<PolicyHandle>);

/// What an `rw_policy` holds (behind its tag).
pub struct PolicyHandle {
    /// Points into `owner`, which keeps it alive and never moves it (it is on the heap). For a
    /// Redis policy: its core policy (limits, names, header rendering; not its state).
    policy: NonNull<Policy>,
    /// Set when the state lives in Redis: decisions go there.
    redis: Option<RedisPolicy>,
    headers: HeaderSets,
    name: CString,
    _owner: Owner,
}

/// What keeps a handle's policy alive.
enum Owner {
    /// A policy created alone.
    Alone(#[allow(dead_code)] Box<Policy>),
    /// A policy of a configuration, shared with the `rw_config` and every other handle from it.
    Config(#[allow(dead_code)] Arc<Loaded>),
}

// SAFETY: `policy` points into `_owner`'s heap data (a `Policy`, which is Send + Sync) and is
// only ever read through `&self`.
unsafe impl Send for PolicyHandle {}
// SAFETY: as above.
unsafe impl Sync for PolicyHandle {}

const POLICY_MAGIC: u64 = u64::from_le_bytes(*b"rwpolicy");
// The tag is the handle's first 8 bytes (see `Tagged`).
const _: () = assert!(std::mem::offset_of!(rw_policy, 0) == 0);

impl std::ops::Deref for rw_policy {
    type Target = PolicyHandle;

    #[inline(always)]
    fn deref(&self) -> &PolicyHandle {
        &self.0.value
    }
}

impl rw_policy {
    fn boxed(
        policy: NonNull<Policy>,
        redis: Option<RedisPolicy>,
        headers: HeaderSets,
        owner: Owner,
    ) -> Box<rw_policy> {
        // SAFETY: the caller passes a pointer into `owner`.
        let name = unsafe { policy.as_ref() }.name().replace('\0', "\\0");
        Box::new(rw_policy(Tagged::new(
            POLICY_MAGIC,
            PolicyHandle {
                policy,
                redis,
                headers,
                name: CString::new(name).unwrap_or_default(),
                _owner: owner,
            },
        )))
    }

    /// A handle owning a policy of its own.
    pub(crate) fn alone(policy: Policy, headers: HeaderSets) -> Box<rw_policy> {
        let policy = Box::new(policy);
        let ptr = NonNull::from(&*policy);
        rw_policy::boxed(ptr, None, headers, Owner::Alone(policy))
    }

    /// A handle on `limiter`, which lives in `loaded` (its core policy is on the heap, behind
    /// an `Arc` that `loaded` keeps).
    pub(crate) fn in_config(
        loaded: &Arc<Loaded>,
        limiter: &Limiter,
        headers: HeaderSets,
    ) -> Box<rw_policy> {
        let redis = match limiter {
            Limiter::Redis(r) => Some(r.clone()),
            _ => None,
        };
        rw_policy::boxed(
            NonNull::from(limiter.policy()),
            redis,
            headers,
            Owner::Config(Arc::clone(loaded)),
        )
    }
}

impl PolicyHandle {
    /// The policy.
    #[inline(always)]
    pub(crate) fn policy(&self) -> &Policy {
        // SAFETY: `policy` points into `_owner`, which lives as long as `self`.
        unsafe { self.policy.as_ref() }
    }

    /// The header sets this handle renders.
    pub(crate) fn headers(&self) -> &HeaderSets {
        &self.headers
    }
}

/// A policy handle argument.
///
/// # Safety
/// `p` is NULL or points to memory readable as an `rw_policy` (a live handle).
#[inline(always)]
pub(crate) unsafe fn policy_ref<'a>(p: *const rw_policy) -> Result<&'a rw_policy> {
    check_ptr(p, "policy")?;
    // Read the tag through the raw pointer first: no reference to memory that may not be a
    // handle at all.
    if Tagged::<()>::tag_of(p) != POLICY_MAGIC {
        return Err(not_a_policy());
    }
    Ok(&*p)
}

#[cold]
#[inline(never)]
fn not_a_policy() -> Error {
    Error::new(
        rw_status::RW_INVALID_ARGUMENT,
        "policy is not a live rw_policy handle (freed, or another type)",
    )
}

#[cold]
pub(crate) fn policy_error(e: PolicyError) -> Error {
    let status = match e {
        PolicyError::Rate(_)
        | PolicyError::Limit { .. }
        | PolicyError::NoLimits
        | PolicyError::TooManyLimits(_) => rw_status::RW_INVALID_RATE,
        _ => rw_status::RW_INVALID_ARGUMENT,
    };
    Error::new(status, e)
}

#[cold]
#[inline(never)]
fn check_error(e: CheckError) -> Error {
    let status = match e {
        CheckError::ZeroCost => rw_status::RW_ZERO_COST,
        CheckError::InsufficientCapacity { .. } => rw_status::RW_INSUFFICIENT_CAPACITY,
        _ => rw_status::RW_INVALID_ARGUMENT,
    };
    Error::new(status, e)
}

/// Parses a header-set selection exactly as the config file's `headers` key does: `none` still
/// sends `Retry-After` on a 429, as the HTTP contract requires.
pub(crate) fn parse_headers(s: &str) -> Result<HeaderSets> {
    let sets = HeaderSets::from_str(s).map_err(|e| {
        Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            format_args!("options->headers: {e}"),
        )
    })?;
    Ok(if sets.is_empty() {
        sets.with_retry_after(true)
    } else {
        sets
    })
}

/// Reads `rw_policy_options` (NULL: every default).
///
/// # Safety
/// `opts` is NULL or points to `opts->struct_size` readable bytes.
pub(crate) unsafe fn read_options(
    opts: *const rw_policy_options,
) -> Result<(PolicyOptions, HeaderSets, bool)> {
    if opts.is_null() {
        return Ok((PolicyOptions::default(), HeaderSets::default(), false));
    }
    check_ptr(opts, "options")?;
    let size = options_size(opts, "rw_policy_options")?;
    let mut options = PolicyOptions::default();
    let mut headers = HeaderSets::default();
    let mut coarse = false;
    if let Some(name) = field!(rw_policy_options, opts, size, algorithm: *const c_char) {
        if let Some(name) = opt_c_str(name, "options->algorithm")? {
            options.algorithm = Algorithm::from_str(name).map_err(|e| {
                Error::new(
                    rw_status::RW_INVALID_ARGUMENT,
                    format_args!("options->algorithm: {e}"),
                )
            })?;
        }
    }
    if let Some(sets) = field!(rw_policy_options, opts, size, headers: *const c_char) {
        if let Some(sets) = opt_c_str(sets, "options->headers")? {
            headers = parse_headers(sets)?;
        }
    }
    if let Some(burst) = field!(rw_policy_options, opts, size, burst: u64) {
        options.burst = (burst != 0).then_some(burst);
    }
    if let Some(max_keys) = field!(rw_policy_options, opts, size, max_keys: u64) {
        if max_keys != 0 {
            options.max_keys = Some(usize::try_from(max_keys).map_err(|_| {
                Error::new(
                    rw_status::RW_INVALID_ARGUMENT,
                    format_args!("options->max_keys {max_keys} does not fit this platform"),
                )
            })?);
        }
    }
    if let Some(overflow) = field!(rw_policy_options, opts, size, overflow: u32) {
        options.overflow = match overflow {
            RW_OVERFLOW_EVICT => Overflow::EvictNearestIdle,
            RW_OVERFLOW_DENY_NEW_KEYS => Overflow::DenyNewKeys,
            other => {
                return Err(Error::new(
                    rw_status::RW_INVALID_ARGUMENT,
                    format_args!(
                        "options->overflow is {other}: use RW_OVERFLOW_EVICT (0) or \
                         RW_OVERFLOW_DENY_NEW_KEYS (1)"
                    ),
                ))
            }
        };
    }
    if let Some(flags) = field!(rw_policy_options, opts, size, flags: u32) {
        if flags & !RW_POLICY_COARSE_CLOCK != 0 {
            return Err(Error::new(
                rw_status::RW_UNSUPPORTED,
                format_args!(
                    "options->flags is {flags:#x}: the only flag is RW_POLICY_COARSE_CLOCK \
                     ({RW_POLICY_COARSE_CLOCK})"
                ),
            ));
        }
        coarse = flags & RW_POLICY_COARSE_CLOCK != 0;
    }
    Ok((options, headers, coarse))
}

/// Stores a new handle in `*out`.
///
/// # Safety
/// `out` is valid for writes (checked non-NULL and aligned by the caller).
pub(crate) unsafe fn give<T>(out: *mut *mut T, handle: Box<T>) {
    out.write(Box::into_raw(handle));
}

/// Checks an out-pointer for a new handle and sets `*out = NULL`, so that it is NULL on every
/// failure.
///
/// # Safety
/// `out` is NULL or valid for writes.
pub(crate) unsafe fn clear_out<T>(out: *mut *mut T) -> Result<()> {
    check_ptr(out, "out")?;
    out.write(ptr::null_mut());
    Ok(())
}

#[inline(always)]
fn limit_decision(d: &Decision) -> rw_limit_decision {
    rw_limit_decision {
        allowed: d.allowed,
        limit: d.limit,
        remaining: d.remaining,
        retry_after: d.retry_after,
        reset_after: d.reset_after,
    }
}

/// Fills `*out` field by field (no reference to the caller's possibly uninitialised memory is
/// made, and entries past `limit_count` are not written).
///
/// # Safety
/// `out` is non-NULL, aligned and valid for writes of an `rw_decision`.
#[inline(always)]
unsafe fn write_decision(out: *mut rw_decision, d: &PolicyDecision, source: rw_source) {
    let limits = d.limits();
    // With one limit the combined decision is that limit's (the common case, kept short).
    let c = match limits {
        [only] => *only,
        _ => d.decision(),
    };
    addr_of_mut!((*out).allowed).write(c.allowed);
    addr_of_mut!((*out).source).write(source);
    addr_of_mut!((*out).limit).write(c.limit);
    addr_of_mut!((*out).remaining).write(c.remaining);
    addr_of_mut!((*out).retry_after).write(c.retry_after);
    addr_of_mut!((*out).reset_after).write(c.reset_after);
    addr_of_mut!((*out).most_restrictive).write(d.most_restrictive() as u32);
    addr_of_mut!((*out).limit_count).write(limits.len() as u32);
    let slots = addr_of_mut!((*out).limits).cast::<rw_limit_decision>();
    if let [only] = limits {
        slots.write(limit_decision(only));
    } else {
        for (i, l) in limits.iter().enumerate() {
            slots.add(i).write(limit_decision(l));
        }
    }
}

/// Fills `*out` with a one-limit policy's decision ([`Policy::check_one_at`]): no
/// `PolicyDecision` is built or copied on this, the common, path.
///
/// # Safety
/// As [`write_decision`].
#[inline(always)]
unsafe fn write_one(out: *mut rw_decision, d: &Decision) {
    addr_of_mut!((*out).allowed).write(d.allowed);
    addr_of_mut!((*out).source).write(RW_SOURCE_MEMORY);
    addr_of_mut!((*out).limit).write(d.limit);
    addr_of_mut!((*out).remaining).write(d.remaining);
    addr_of_mut!((*out).retry_after).write(d.retry_after);
    addr_of_mut!((*out).reset_after).write(d.reset_after);
    addr_of_mut!((*out).most_restrictive).write(0);
    addr_of_mut!((*out).limit_count).write(1);
    addr_of_mut!((*out).limits)
        .cast::<rw_limit_decision>()
        .write(limit_decision(d));
}

/// An in-process check at `now`: the one-limit path without the large decision, else the
/// policy's.
///
/// # Safety
/// As [`write_decision`].
#[inline(always)]
unsafe fn check_memory(
    out: *mut rw_decision,
    policy: &Policy,
    key: &[u8],
    now: u64,
    cost: u64,
) -> Result<()> {
    match policy.check_one_at(key, now, cost) {
        Some(Ok(d)) => {
            write_one(out, &d);
            Ok(())
        }
        Some(Err(e)) => Err(check_error(e)),
        None => out_of_line(|| decide(out, policy.check_at(key, now, cost))),
    }
}

/// Runs `f` in a frame of its own. A policy of several limits builds a `PolicyDecision` (room
/// for eight limits): inlined into `rw_check` it gave every check a 400-byte stack frame and the
/// register saves that come with it, about a nanosecond per one-limit check.
#[inline(never)]
fn out_of_line<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Writes a decision, or turns a check error into its status, without moving the (large)
/// decision around.
///
/// # Safety
/// As [`write_decision`].
#[inline(always)]
unsafe fn decide(
    out: *mut rw_decision,
    result: std::result::Result<PolicyDecision, CheckError>,
) -> Result<()> {
    match &result {
        Ok(d) => {
            write_decision(out, d, RW_SOURCE_MEMORY);
            Ok(())
        }
        Err(e) => Err(check_error(*e)),
    }
}

/// [`decide`] for a Redis policy's outcome, with its source.
///
/// # Safety
/// As [`write_decision`].
unsafe fn decide_outcome(
    out: *mut rw_decision,
    result: std::result::Result<Outcome, CheckError>,
) -> Result<()> {
    match &result {
        Ok(o) => {
            write_decision(out, &o.decision, source_code(o.source));
            Ok(())
        }
        Err(e) => Err(check_error(*e)),
    }
}

/// The arguments every decision call checks: the handle, the key and the output.
///
/// # Safety
/// As `rw_check`'s arguments.
#[inline(always)]
unsafe fn decision_args<'a>(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    out: *mut rw_decision,
) -> Result<(&'a rw_policy, &'a [u8])> {
    let p = policy_ref(policy)?;
    let key = bytes(key, key_len, "key")?;
    check_ptr(out, "out")?;
    Ok((p, key))
}

/// [`decision_args`] for a call with an explicit `now` (`name`): in-process policies only.
///
/// # Safety
/// As `rw_check`'s arguments.
#[inline(always)]
unsafe fn in_process<'a>(
    name: &'static str,
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    out: *mut rw_decision,
) -> Result<(&'a Policy, &'a [u8])> {
    let (p, key) = decision_args(policy, key, key_len, out)?;
    if p.redis.is_some() {
        return Err(explicit_time_on_redis(name));
    }
    Ok((p.policy(), key))
}

/// The explicit-time functions on a Redis policy: Redis decides on its own clock (`TIME`), so
/// that every instance of the fleet agrees; a caller's `now` cannot be honoured.
#[cold]
#[inline(never)]
fn explicit_time_on_redis(function: &str) -> Error {
    Error::new(
        rw_status::RW_UNSUPPORTED,
        format_args!(
            "the policy is backed by Redis, which decides with the server's clock so that every \
             instance agrees: an explicit `now` cannot be honoured; call {function}_now"
        ),
    )
}

/// Creates a policy named `name` enforcing the rate string `rates`, such as `"10/second"`,
/// `"10/second; 1000/day"` (all limits checked together), `"5 per 15 minutes"` or `"100/min"`.
///
/// - `name`: non-empty, NUL-terminated UTF-8; names the policy in the IETF headers.
/// - `rates`: NUL-terminated UTF-8 rate string; a bad one returns `RW_INVALID_RATE` with a
///   message that says where and why.
/// - `options`: NULL for every default, or a struct started from `RW_POLICY_OPTIONS_INIT`.
/// - `out`: receives the new handle (NULL on failure). Free it with `rw_policy_free`.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_UTF8`, `RW_INVALID_RATE`, `RW_INVALID_ARGUMENT`,
/// `RW_UNSUPPORTED`. Thread-safe.
///
/// # Safety
/// `name` and `rates` are NULL or NUL-terminated strings; `options` is NULL or points to
/// `options->struct_size` readable bytes; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_policy_from_str(
    name: *const c_char,
    rates: *const c_char,
    options: *const rw_policy_options,
    out: *mut *mut rw_policy,
) -> rw_status {
    guard("rw_policy_from_str", || {
        clear_out(out)?;
        let name = c_str(name, "name")?;
        let rates = c_str(rates, "rates")?;
        let (options, headers, coarse) = read_options(options)?;
        let mut policy = Policy::parse(name, rates, options).map_err(policy_error)?;
        if coarse {
            policy = policy.with_clock(Arc::new(CoarseMonotonicClock));
        }
        give(out, rw_policy::alone(policy, headers));
        Ok(())
    })
}

/// Creates the policy `name` of the TOML configuration file at `path` (the format every ratewall
/// binding reads; see `rw_config_from_file`). Shorthand for `rw_config_from_file`,
/// `rw_config_policy`, `rw_config_free`: the handle is independent of any `rw_config`.
///
/// With a Redis `storage` in the file the policy runs on Redis (default store options; use
/// `rw_config_from_file_with` for others).
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_UTF8`, `RW_IO` (unreadable file), `RW_CONFIG` (invalid
/// file, with line and column), `RW_NOT_FOUND` (no such policy), and the storage errors of
/// `rw_config_from_file`. `*out` is NULL on failure. Thread-safe.
///
/// # Safety
/// `path` and `name` are NULL or NUL-terminated strings; `out` is NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_policy_from_file(
    path: *const c_char,
    name: *const c_char,
    out: *mut *mut rw_policy,
) -> rw_status {
    guard("rw_policy_from_file", || {
        clear_out(out)?;
        let path = c_str(path, "path")?;
        let name = c_str(name, "name")?;
        let policies = load_file(path)?;
        give(out, policy_in(&policies, name)?);
        Ok(())
    })
}

/// Frees a policy handle. NULL is a no-op (returns `RW_OK`). Handles from `rw_config_policy`
/// are freed the same way; the configured state lives on while any handle or the `rw_config`
/// does. The handle must not be in use by another thread, nor used afterwards.
///
/// Errors: `RW_INVALID_ARGUMENT` if `policy` is not a live policy handle (then nothing is freed).
///
/// # Safety
/// `policy` is NULL or a handle from this library that is not used concurrently or afterwards.
#[no_mangle]
pub unsafe extern "C" fn rw_policy_free(policy: *mut rw_policy) -> rw_status {
    guard("rw_policy_free", || {
        if policy.is_null() {
            return Ok(());
        }
        policy_ref(policy)?;
        Tagged::<()>::clear_tag(policy);
        drop(Box::from_raw(policy));
        Ok(())
    })
}

/// Sets `*out` to the policy's name (NUL-terminated, owned by the handle, valid until
/// `rw_policy_free`). Thread-safe.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_ARGUMENT`.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_policy_name(
    policy: *const rw_policy,
    out: *mut *const c_char,
) -> rw_status {
    guard("rw_policy_name", || {
        let p = policy_ref(policy)?;
        check_ptr(out, "out")?;
        out.write(p.name.as_ptr());
        Ok(())
    })
}

/// Decides a request of `cost` permits by `key` at time `now` and, if every limit admits it,
/// takes the permits. A denial is not an error: it returns `RW_OK` with `out->allowed == false`
/// and `out->retry_after` set.
///
/// - `key`, `key_len`: the client's key (IP, user id, API key, ...), any bytes (binary keys
///   work; only a seeded hash of it is stored). `key` must not be NULL, even for an empty key.
/// - `now`: nanoseconds on a monotonic scale of your choosing, the same for every call on this
///   policy (`rw_now()` is the built-in one). A `now` older than one already seen never admits
///   more than the quota.
/// - `cost`: permits this request takes, at least 1.
/// - `out`: receives the decision (untouched on failure).
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_ARGUMENT`, `RW_ZERO_COST`,
/// `RW_INSUFFICIENT_CAPACITY` (`cost` can never pass), `RW_UNSUPPORTED` on a policy backed by
/// Redis: Redis decides with the server's clock so that the whole fleet agrees, so a caller's
/// `now` cannot be honoured (use `rw_check_now`). Thread-safe: any number of threads may check
/// the same handle and key at once; admissions are exact.
///
/// # Safety
/// `policy` is NULL or a live handle; `key` is NULL or points to `key_len` readable bytes;
/// `out` is NULL or valid for writing an `rw_decision`.
#[no_mangle]
pub unsafe extern "C" fn rw_check(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    now: u64,
    cost: u64,
    out: *mut rw_decision,
) -> rw_status {
    guard("rw_check", || {
        let (p, key) = in_process("rw_check", policy, key, key_len, out)?;
        check_memory(out, p, key, now, cost)
    })
}

/// `rw_check` at the current time: the built-in monotonic clock (`rw_now()`, or
/// `rw_now_coarse()` for a policy created with `RW_POLICY_COARSE_CLOCK`) for an in-process
/// policy; Redis's own clock for a policy backed by Redis.
///
/// On Redis this is one round trip (one atomic script for every limit of the policy) and blocks
/// the calling thread at most about the command timeout (`rw_store_options.command_timeout_ms`,
/// default 50 ms). An outage is never an error: when Redis cannot answer in time, the policy's
/// `fail_mode` decides and `out->source` says so (`RW_SOURCE_FAIL_OPEN`, `..._FAIL_CLOSED`,
/// `..._LOCAL`). Errors are those of `rw_check` but `RW_UNSUPPORTED`.
///
/// # Safety
/// As `rw_check`.
#[no_mangle]
pub unsafe extern "C" fn rw_check_now(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    cost: u64,
    out: *mut rw_decision,
) -> rw_status {
    guard("rw_check_now", || {
        let (p, key) = decision_args(policy, key, key_len, out)?;
        match &p.redis {
            None => check_memory(out, p.policy(), key, p.policy().now(), cost),
            Some(r) => decide_outcome(out, r.check(key, cost)),
        }
    })
}

/// Decides like `rw_check` but takes nothing: "would this request pass now?". Same arguments,
/// errors and thread-safety as `rw_check`.
///
/// # Safety
/// As `rw_check`.
#[no_mangle]
pub unsafe extern "C" fn rw_peek(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    now: u64,
    cost: u64,
    out: *mut rw_decision,
) -> rw_status {
    guard("rw_peek", || {
        let (p, key) = in_process("rw_peek", policy, key, key_len, out)?;
        decide(out, p.peek_at(key, now, cost))
    })
}

/// `rw_peek` at the current time (see `rw_check_now`: on Redis, the server's clock, blocking at
/// most about the command timeout, the fail mode deciding during an outage).
///
/// # Safety
/// As `rw_check`.
#[no_mangle]
pub unsafe extern "C" fn rw_peek_now(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    cost: u64,
    out: *mut rw_decision,
) -> rw_status {
    guard("rw_peek_now", || {
        let (p, key) = decision_args(policy, key, key_len, out)?;
        match &p.redis {
            None => decide(out, p.policy().peek_at(key, p.policy().now(), cost)),
            Some(r) => decide_outcome(out, r.peek(key, cost)),
        }
    })
}

/// Gives `cost` permits back to `key` in every limit (never above full): for "count only failed
/// logins" (check every attempt, refund the successful ones) and skip-successful-requests
/// options. `out` receives the state after the refund.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_ARGUMENT`, `RW_ZERO_COST`. Thread-safe.
///
/// # Safety
/// As `rw_check`.
#[no_mangle]
pub unsafe extern "C" fn rw_refund(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    now: u64,
    cost: u64,
    out: *mut rw_decision,
) -> rw_status {
    guard("rw_refund", || {
        let (p, key) = in_process("rw_refund", policy, key, key_len, out)?;
        decide(out, p.refund_at(key, now, cost))
    })
}

/// `rw_refund` at the current time (see `rw_check_now`: on Redis, the server's clock, blocking at
/// most about the command timeout). During an outage nothing is refunded in Redis and the fail
/// mode answers.
///
/// # Safety
/// As `rw_check`.
#[no_mangle]
pub unsafe extern "C" fn rw_refund_now(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
    cost: u64,
    out: *mut rw_decision,
) -> rw_status {
    guard("rw_refund_now", || {
        let (p, key) = decision_args(policy, key, key_len, out)?;
        match &p.redis {
            None => decide(out, p.policy().refund_at(key, p.policy().now(), cost)),
            Some(r) => decide_outcome(out, r.refund(key, cost)),
        }
    })
}

/// Makes `key` full again in every limit of the policy (e.g. after a successful login or an
/// operator's unblock). On Redis it deletes the key's state (and resets the `local` fallback),
/// blocking at most about the command timeout.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_ARGUMENT`; on Redis `RW_STORAGE_UNAVAILABLE` or
/// `RW_STORAGE_ERROR` when Redis could not do it: unlike a decision, an unblock has no fail mode
/// to fall back on, so its failure is reported rather than hidden. Thread-safe.
///
/// # Safety
/// `policy` is NULL or a live handle; `key` is NULL or points to `key_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rw_reset(
    policy: *const rw_policy,
    key: *const u8,
    key_len: usize,
) -> rw_status {
    guard("rw_reset", || {
        let p = policy_ref(policy)?;
        let key = bytes(key, key_len, "key")?;
        match &p.redis {
            None => p.policy().reset(key),
            Some(r) => r.reset(key).map_err(store_error)?,
        }
        Ok(())
    })
}

/// Fills `*out` with the health of the store behind `policy` (see `rw_config_health`): shared
/// by every policy of the same configuration. For an in-process policy `out->redis` is false.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` is NULL or valid for writing an `rw_health`.
#[no_mangle]
pub unsafe extern "C" fn rw_policy_health(
    policy: *const rw_policy,
    out: *mut rw_health,
) -> rw_status {
    guard("rw_policy_health", || {
        let p = policy_ref(policy)?;
        fill_health(out, p.redis.as_ref().map(|r| r.store().health()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn options_have_no_padding() {
        // Every byte belongs to a field, so "unknown bytes are zero" is a sound test.
        assert_eq!(size_of::<rw_policy_options>(), 5 * 8 + 2 * 4);
        assert_eq!(offset_of!(rw_policy_options, flags) + 4, 48);
    }
}
