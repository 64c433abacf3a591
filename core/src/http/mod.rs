//! The HTTP contract: rate-limit response headers, `Retry-After` and the 429 body, rendered once
//! here so that the C, Python and Node bindings send byte-identical responses.
//!
//! Everything is a pure function of a [`RateLimitState`] (what the limiter decided, for each of
//! the policy's limits) and a [`HeaderSets`] selection. Nothing here reads a clock: wall-clock
//! time, needed only for `X-RateLimit-Reset` (an epoch timestamp) and `Date`, is passed in as
//! [`RateLimitState::now_unix_ms`].
//!
//! # Header sets: what each is for, who reads it
//!
//! Clients in the wild read different headers, so the server picks ([`HeaderSet`], config names
//! in brackets):
//!
//! | set | headers | read by |
//! |---|---|---|
//! | [`Legacy`](HeaderSet::Legacy) (`legacy`) | `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `Date`, `X-RateLimit-Reset` (Unix epoch seconds) | the de-facto convention of the GitHub/Twitter-era APIs; most SDKs and API clients, dashboards, Flask-Limiter users; express-rate-limit's default |
//! | [`Draft6`](HeaderSet::Draft6) (`draft-6`) | `RateLimit-Policy`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (delta seconds) | clients of draft-ietf-httpapi-ratelimit-headers-06 and of express-rate-limit `standardHeaders: true` |
//! | [`Draft7`](HeaderSet::Draft7) (`draft-7`) | `RateLimit-Policy`, `RateLimit: limit=, remaining=, reset=` | clients of draft 7 / express-rate-limit `standardHeaders: 'draft-7'` |
//! | [`Draft8`](HeaderSet::Draft8) (`draft-8`) | `RateLimit: "id"; r=; t=`, `RateLimit-Policy: "id"; q=; w=; pk=::` | clients of draft 8 / express-rate-limit `standardHeaders: 'draft-8'` |
//! | [`Ietf`](HeaderSet::Ietf) (`ietf`) | `RateLimit-Policy: "name";q=;w=`, `RateLimit: "name";r=;t=` | clients of the current draft-ietf-httpapi-ratelimit-headers (09 and later): named policies, one Structured Field list item per limit |
//!
//! And on every denied response (whenever any set is selected, as in express-rate-limit):
//! `Retry-After: <delay-seconds>` (RFC 9110 §10.2.3), rounded **up** to whole seconds and at least
//! `1`, so a client that obeys it is never early and never busy-loops on `0`. It is the one
//! header every generic HTTP client understands (urllib3/requests `Retry`, httpx retry helpers,
//! fetch wrappers, browsers, proxies), and the drafts say a client must prefer it over
//! `RateLimit`. Its value is the decision's `retry_after`: when the *same request* could pass,
//! which for a token bucket is much sooner than the full reset.
//!
//! The four express-rate-limit sets are byte-identical to express-rate-limit v8
//! (`source/headers.ts`: `setLegacyHeaders`, `setDraft6Headers`, `setDraft7Headers`,
//! `setDraft8Headers`, `setRetryAfterHeader`; `source/rate-limit.ts`: the default `identifier`
//! and the rule for `Retry-After`), including spacing (`100;w=60` in draft 6/7, `"id"; r=5; t=9`
//! with `"; "` in draft 8, `"name";r=5;t=9` canonical Structured Fields in the IETF form), header
//! order, and rounding (`w` and every delta in seconds is rounded up, like `Math.ceil`).
//!
//! # Several limits
//!
//! A policy such as `10/second; 1000/day` produces one [`LimitInfo`] per limit, **most
//! restrictive first** ([`sort_most_restrictive`] orders them). Then:
//!
//! - `legacy`, `draft-6`, `draft-7` can describe one limit only: they show `limits[0]`, the most
//!   restrictive, which is what a client should pace itself by.
//! - `draft-8` and `ietf` write one list item per limit, in order, in a single field line per
//!   header name (`RateLimit: "10-in-1sec"; r=9; t=1, "1000-in-1day"; r=999; t=86400`; items
//!   joined by `", "`, which RFC 9110 §5.3 makes equivalent to express-rate-limit's one line per
//!   stacked limiter). Every header name therefore appears at most once, so bindings can *set*
//!   headers; an app that stacks several ratewall policies on one route should append
//!   (comma-join) `RateLimit`/`RateLimit-Policy` instead, as express-rate-limit does.
//!
//! With no limits at all (an empty policy), only `Retry-After` can be written.
//!
//! # Names
//!
//! Policy names in the `draft-8` and `ietf` forms are Structured Field Strings: `"` and `\` are
//! escaped, and any character outside printable ASCII (CR, LF, other controls, DEL, non-ASCII)
//! is **replaced by `?`** at render time, so a bad name can never split a header line or make
//! the field unparseable. Use [`check_sf_string`] to reject such names when configuration is
//! loaded instead. (express-rate-limit does not escape at all; for every name it can render
//! validly the output is the same.) Integers in `RateLimit*` headers saturate at 10^15 - 1, the
//! largest Structured Field Integer.
//!
//! # Example
//!
//! ```
//! use ratewall::http::{self, HeaderSet, HeaderSets, LimitInfo, RateLimitState};
//! use ratewall::{time::MINUTE, Decision, Quota, RateLimiter, FixedWindow};
//!
//! let limiter = FixedWindow::new(Quota::per_minute(100)?)?;
//! let decision = limiter.check(0, 1)?;
//!
//! let limits = [LimitInfo::from_decision("api", MINUTE, &decision)];
//! let state = RateLimitState::from_decision(&decision, &limits, 1_700_000_000_000)
//!     .with_key("203.0.113.7");
//! let sets = HeaderSets::new([HeaderSet::Legacy, HeaderSet::Ietf])?;
//!
//! assert_eq!(
//!     http::headers(&state, &sets),
//!     [
//!         ("X-RateLimit-Limit", "100".to_string()),
//!         ("X-RateLimit-Remaining", "99".to_string()),
//!         ("Date", "Tue, 14 Nov 2023 22:13:20 GMT".to_string()),
//!         ("X-RateLimit-Reset", "1700000060".to_string()),
//!         ("RateLimit-Policy", r#""api";q=100;w=60"#.to_string()),
//!         ("RateLimit", r#""api";r=99;t=60"#.to_string()),
//!     ]
//! );
//!
//! // The same as HTTP/1.1 field lines, into any `fmt::Write`:
//! let mut wire = String::new();
//! http::write_headers(&state, &sets, &mut wire)?;
//! assert!(wire.starts_with("X-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 99\r\n"));
//!
//! // A denied request: status, body and Retry-After agree.
//! assert_eq!(http::DENIED_STATUS, 429);
//! assert_eq!(http::denied_body(1_500_000_000), r#"{"error":"rate_limited","retryAfter":2}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::cmp::Reverse;
use core::fmt::{self, Write as _};
use std::string::String;
use std::vec::Vec;

use crate::Decision;

mod date;
mod express;
mod select;
mod sf;

use date::HttpDate;
use express::{partition_key_bytes, Identifier};
use sf::{sf_int, SfString};

pub use express::{default_identifier, partition_key};
pub use select::{HeaderSet, HeaderSetError, HeaderSets};
pub use sf::{check_sf_string, InvalidSfString, SF_INTEGER_MAX};

/// The status of a denied response: 429 Too Many Requests (RFC 6585 §4), express-rate-limit's
/// `statusCode` default.
pub const DENIED_STATUS: u16 = 429;

/// The `Content-Type` of [`denied_body`].
pub const DENIED_CONTENT_TYPE: &str = "application/json";

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The status of one limit of a policy after a decision: what the headers describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LimitInfo<'a> {
    /// The limit's name, for the `ietf` form (`"name";q=100;w=60`). Empty means "use
    /// express-rate-limit's default identifier", `${limit}-in-${duration}` (`100-in-1min`).
    /// Rendered as a Structured Field String (see [the module docs](self#names)). The `draft-8`
    /// set ignores it and uses its own `identifier` ([`HeaderSet::Draft8`]), as
    /// express-rate-limit does.
    pub name: &'a str,
    /// The quota shown to clients: [`Decision::limit`] (`burst` for a token bucket).
    pub limit: u64,
    /// The limit's period in nanoseconds: `w=` (rounded up to seconds) and the default
    /// identifier's duration.
    pub window: u64,
    /// Permits left: [`Decision::remaining`].
    pub remaining: u64,
    /// Nanoseconds until this limit is back to full / its window resets:
    /// [`Decision::reset_after`]. Rendered rounded up to seconds (`t=`, `reset=`,
    /// `RateLimit-Reset`, and added to the wall clock for `X-RateLimit-Reset`).
    pub reset_after: u64,
}

impl<'a> LimitInfo<'a> {
    /// The status of a limit named `name` with period `window` (ns) after `decision`.
    pub const fn from_decision(name: &'a str, window: u64, decision: &Decision) -> Self {
        LimitInfo {
            name,
            limit: decision.limit,
            window,
            remaining: decision.remaining,
            reset_after: decision.reset_after,
        }
    }
}

/// Everything the headers of one response depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimitState<'a> {
    /// Whether the request was admitted. Denied responses get `Retry-After`.
    pub allowed: bool,
    /// Nanoseconds until the same request could be admitted ([`Decision::retry_after`]); used
    /// only when denied.
    pub retry_after: u64,
    /// One entry per limit of the policy, **most restrictive first** (see
    /// [`sort_most_restrictive`]).
    pub limits: &'a [LimitInfo<'a>],
    /// The client's rate-limit key, for the `draft-8` partition key `pk` (see
    /// [`partition_key`]). `None` leaves `pk` out.
    pub key: Option<&'a str>,
    /// Wall-clock time, Unix epoch milliseconds, supplied by the caller: `X-RateLimit-Reset` is
    /// `ceil((now_unix_ms + reset_after) / 1 s)` and `Date` is this instant.
    pub now_unix_ms: u64,
}

impl<'a> RateLimitState<'a> {
    /// A state without a key.
    pub const fn new(
        allowed: bool,
        retry_after: u64,
        limits: &'a [LimitInfo<'a>],
        now_unix_ms: u64,
    ) -> Self {
        RateLimitState {
            allowed,
            retry_after,
            limits,
            key: None,
            now_unix_ms,
        }
    }

    /// `allowed` and `retry_after` from the policy's combined `decision`; no key.
    pub const fn from_decision(
        decision: &Decision,
        limits: &'a [LimitInfo<'a>],
        now_unix_ms: u64,
    ) -> Self {
        Self::new(decision.allowed, decision.retry_after, limits, now_unix_ms)
    }

    /// Sets the key used for the `draft-8` partition key.
    #[must_use]
    pub const fn with_key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }
}

/// Orders `limits` most restrictive first: fewest permits remaining first, and among equals the
/// one that takes longest to reset. A limit that denied a request always has fewer permits left
/// than one that would have admitted it, so it comes first. The sort is stable.
pub fn sort_most_restrictive(limits: &mut [LimitInfo<'_>]) {
    limits.sort_by_key(|l| (l.remaining, Reverse(l.reset_after)));
}

/// Nanoseconds to whole seconds, rounded up (`Math.ceil` in express-rate-limit): 0 → 0,
/// 1 ns → 1, 1 s → 1, 1 s + 1 ns → 2.
pub const fn ceil_seconds(ns: u64) -> u64 {
    ns / NANOS_PER_SEC + (ns % NANOS_PER_SEC != 0) as u64
}

/// The `Retry-After` value (and the body's `retryAfter`) for a wait of `retry_after_ns`: whole
/// seconds rounded up, and at least 1 (a `0` invites an immediate retry that would be denied
/// again).
///
/// ```
/// use ratewall::http::retry_after_seconds;
/// assert_eq!(retry_after_seconds(0), 1);
/// assert_eq!(retry_after_seconds(1), 1);
/// assert_eq!(retry_after_seconds(2_000_000_000), 2);
/// assert_eq!(retry_after_seconds(1_000_000_001), 2);
/// ```
pub const fn retry_after_seconds(retry_after_ns: u64) -> u64 {
    let s = ceil_seconds(retry_after_ns);
    if s == 0 {
        1
    } else {
        s
    }
}

/// `X-RateLimit-Reset`: the Unix time, in whole seconds rounded up, at which a limit with
/// `reset_after_ns` left resets, seen from wall-clock `now_unix_ms` (express-rate-limit:
/// `Math.ceil(resetTime.getTime() / 1000)`). Saturates at `u64::MAX`.
pub const fn reset_epoch_seconds(now_unix_ms: u64, reset_after_ns: u64) -> u64 {
    let ns = now_unix_ms as u128 * 1_000_000 + reset_after_ns as u128;
    let s = ns.div_ceil(NANOS_PER_SEC as u128);
    if s > u64::MAX as u128 {
        u64::MAX
    } else {
        s as u64
    }
}

/// Calls `f(name, value)` for every header of the response, in order. The core renderer: the
/// other functions are thin wrappers around it, and a binding can use it to fill its
/// framework's header map with no intermediate allocation. Errors from `f` are returned as is.
///
/// Order: legacy (`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `Date`, `X-RateLimit-Reset`),
/// then the standard set, then `Retry-After` (denied responses only) — the order
/// express-rate-limit sets them in. Each name occurs at most once.
///
/// The names, in order, depend only on `sets` and `state.allowed` (given at least one limit),
/// never on the numbers, the key or the time: a binding may keep them per response kind and
/// ask for the values alone afterwards (the Node.js Express middleware does; for
/// express-rate-limit's forms it fills the per-request numbers itself, checked against this
/// renderer at the first response of each kind and every 1024th after it).
pub fn visit_headers<F>(state: &RateLimitState<'_>, sets: &HeaderSets, mut f: F) -> fmt::Result
where
    F: FnMut(&'static str, &dyn fmt::Display) -> fmt::Result,
{
    let first = state.limits.first();

    // express-rate-limit source/headers.ts, setLegacyHeaders: Limit, Remaining, then (because
    // the store returns a resetTime) Date = new Date().toUTCString() and
    // X-RateLimit-Reset = Math.ceil(resetTime.getTime() / 1000).
    if let (true, Some(l)) = (sets.has_legacy(), first) {
        f("X-RateLimit-Limit", &l.limit)?;
        f("X-RateLimit-Remaining", &l.remaining)?;
        if sets.sends_date() {
            f("Date", &HttpDate(state.now_unix_ms))?;
        }
        f(
            "X-RateLimit-Reset",
            &reset_epoch_seconds(state.now_unix_ms, l.reset_after),
        )?;
    }

    match sets.standard() {
        // setDraft6Headers: RateLimit-Policy `${limit};w=${windowSeconds}` (no space), Limit,
        // Remaining, and RateLimit-Reset whenever resetSeconds is a number (always, in v8).
        Some(HeaderSet::Draft6) => {
            if let Some(l) = first {
                f("RateLimit-Policy", &Draft6Policy(l))?;
                f("RateLimit-Limit", &sf_int(l.limit))?;
                f("RateLimit-Remaining", &sf_int(l.remaining))?;
                f("RateLimit-Reset", &sf_int(ceil_seconds(l.reset_after)))?;
            }
        }
        // setDraft7Headers: RateLimit-Policy as draft 6, then
        // RateLimit `limit=${limit}, remaining=${remaining}, reset=${resetSeconds}`.
        Some(HeaderSet::Draft7) => {
            if let Some(l) = first {
                f("RateLimit-Policy", &Draft6Policy(l))?;
                f("RateLimit", &Draft7RateLimit(l))?;
            }
        }
        // setDraft8Headers (v8 appends RateLimit first, then RateLimit-Policy):
        // `"${name}"; r=${remaining}; t=${resetSeconds}` and
        // `"${name}"; q=${limit}; w=${windowSeconds}; pk=:${partitionKey}:`.
        Some(HeaderSet::Draft8 { identifier }) => {
            if !state.limits.is_empty() {
                let pk = state.key.map(partition_key_bytes);
                let id = identifier.as_deref();
                f(
                    "RateLimit",
                    &List {
                        limits: state.limits,
                        item: Item::Draft8RateLimit { id },
                    },
                )?;
                f(
                    "RateLimit-Policy",
                    &List {
                        limits: state.limits,
                        item: Item::Draft8Policy {
                            id,
                            pk: pk.as_ref(),
                        },
                    },
                )?;
            }
        }
        // draft-ietf-httpapi-ratelimit-headers (09+), canonical Structured Fields.
        Some(HeaderSet::Ietf) => {
            if !state.limits.is_empty() {
                f(
                    "RateLimit-Policy",
                    &List {
                        limits: state.limits,
                        item: Item::IetfPolicy,
                    },
                )?;
                f(
                    "RateLimit",
                    &List {
                        limits: state.limits,
                        item: Item::IetfRateLimit,
                    },
                )?;
            }
        }
        Some(HeaderSet::Legacy) | None => {}
    }

    // source/rate-limit.ts: `if (totalHits > limit) { if (config.legacyHeaders ||
    // config.standardHeaders) setRetryAfterHeader(...) }`. The value is ours: the decision's
    // retry_after, rounded up, at least 1 (express-rate-limit uses the window reset).
    if !state.allowed && sets.sends_retry_after() {
        f("Retry-After", &retry_after_seconds(state.retry_after))?;
    }
    Ok(())
}

/// The response headers as `(name, value)` pairs, in order (see [`visit_headers`]).
pub fn headers(state: &RateLimitState<'_>, sets: &HeaderSets) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(8);
    // Writing into a String cannot fail.
    let _ = visit_headers(state, sets, |name, value| {
        let mut s = String::new();
        write!(s, "{value}")?;
        out.push((name, s));
        Ok(())
    });
    out
}

/// Writes the response headers as HTTP/1.1 field lines, `Name: value\r\n` each, into `out`
/// (a `String`, or any `fmt::Write`; nothing is allocated here).
pub fn write_headers<W>(state: &RateLimitState<'_>, sets: &HeaderSets, out: &mut W) -> fmt::Result
where
    W: fmt::Write + ?Sized,
{
    visit_headers(state, sets, |name, value| {
        write!(out, "{name}: {value}\r\n")
    })
}

/// The caller's buffer is too small; nothing useful was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferTooSmall {
    /// Bytes the complete output needs: call again with at least this many.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer too small: {} bytes needed", self.needed)
    }
}

impl std::error::Error for BufferTooSmall {}

/// [`write_headers`] into a caller-provided byte buffer (for the C ABI): returns the number of
/// bytes written (UTF-8, in fact ASCII, not NUL-terminated), or the size needed if `buf` is too
/// small (then `buf`'s contents are unspecified).
pub fn render_headers_into(
    state: &RateLimitState<'_>,
    sets: &HeaderSets,
    buf: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = SliceWriter { buf, len: 0 };
    // SliceWriter never fails; it counts what does not fit.
    let _ = write_headers(state, sets, &mut w);
    w.finish()
}

/// The 429 body: exactly `{"error":"rate_limited","retryAfter":N}`, with `N` the same whole
/// seconds as `Retry-After` ([`retry_after_seconds`]: rounded up, at least 1). Send it with
/// [`DENIED_STATUS`] and `Content-Type: `[`DENIED_CONTENT_TYPE`].
///
/// ```
/// assert_eq!(
///     ratewall::http::denied_body(30_000_000_000),
///     r#"{"error":"rate_limited","retryAfter":30}"#
/// );
/// ```
pub fn denied_body(retry_after_ns: u64) -> String {
    let mut s = String::with_capacity(48);
    let _ = write_denied_body(retry_after_ns, &mut s);
    s
}

/// [`denied_body`] into any `fmt::Write`.
pub fn write_denied_body<W>(retry_after_ns: u64, out: &mut W) -> fmt::Result
where
    W: fmt::Write + ?Sized,
{
    write!(
        out,
        r#"{{"error":"rate_limited","retryAfter":{}}}"#,
        retry_after_seconds(retry_after_ns)
    )
}

/// [`denied_body`] into a caller-provided byte buffer; see [`render_headers_into`].
pub fn render_denied_body_into(
    retry_after_ns: u64,
    buf: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = SliceWriter { buf, len: 0 };
    let _ = write_denied_body(retry_after_ns, &mut w);
    w.finish()
}

/// Writes what fits into a byte slice and counts the rest.
struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl SliceWriter<'_> {
    fn finish(self) -> Result<usize, BufferTooSmall> {
        if self.len <= self.buf.len() {
            Ok(self.len)
        } else {
            Err(BufferTooSmall { needed: self.len })
        }
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = self.len;
        self.len = self.len.saturating_add(s.len());
        if let Some(dst) = self.buf.get_mut(start..self.len) {
            dst.copy_from_slice(s.as_bytes());
        }
        Ok(())
    }
}

/// draft-6/draft-7 `RateLimit-Policy`: `${limit};w=${windowSeconds}`.
struct Draft6Policy<'l>(&'l LimitInfo<'l>);

impl fmt::Display for Draft6Policy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.0;
        write!(
            f,
            "{};w={}",
            sf_int(l.limit),
            sf_int(ceil_seconds(l.window))
        )
    }
}

/// draft-7 `RateLimit`: `limit=${limit}, remaining=${remaining}, reset=${resetSeconds}`.
struct Draft7RateLimit<'l>(&'l LimitInfo<'l>);

impl fmt::Display for Draft7RateLimit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.0;
        write!(
            f,
            "limit={}, remaining={}, reset={}",
            sf_int(l.limit),
            sf_int(l.remaining),
            sf_int(ceil_seconds(l.reset_after))
        )
    }
}

/// A Structured Field List, one item per limit, joined by `", "`.
struct List<'l> {
    limits: &'l [LimitInfo<'l>],
    item: Item<'l>,
}

#[derive(Clone, Copy)]
enum Item<'l> {
    Draft8RateLimit {
        id: Option<&'l str>,
    },
    Draft8Policy {
        id: Option<&'l str>,
        pk: Option<&'l [u8; 16]>,
    },
    IetfPolicy,
    IetfRateLimit,
}

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.limits.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.item {
                Item::Draft8RateLimit { id } => {
                    write_name(f, id, l)?;
                    write!(
                        f,
                        "; r={}; t={}",
                        sf_int(l.remaining),
                        sf_int(ceil_seconds(l.reset_after))
                    )?;
                }
                Item::Draft8Policy { id, pk } => {
                    write_name(f, id, l)?;
                    write!(
                        f,
                        "; q={}; w={}",
                        sf_int(l.limit),
                        sf_int(ceil_seconds(l.window))
                    )?;
                    if let Some(pk) = pk {
                        let pk = core::str::from_utf8(pk).map_err(|_| fmt::Error)?;
                        write!(f, "; pk=:{pk}:")?;
                    }
                }
                Item::IetfPolicy => {
                    write_name(f, Some(l.name).filter(|n| !n.is_empty()), l)?;
                    write!(
                        f,
                        ";q={};w={}",
                        sf_int(l.limit),
                        sf_int(ceil_seconds(l.window))
                    )?;
                }
                Item::IetfRateLimit => {
                    write_name(f, Some(l.name).filter(|n| !n.is_empty()), l)?;
                    write!(
                        f,
                        ";r={};t={}",
                        sf_int(l.remaining),
                        sf_int(ceil_seconds(l.reset_after))
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Writes `name` as an sf-string, or express-rate-limit's default identifier for `l` (which
/// is always printable ASCII without `"` or `\`, so needs no escaping).
fn write_name(f: &mut fmt::Formatter<'_>, name: Option<&str>, l: &LimitInfo<'_>) -> fmt::Result {
    match name {
        Some(name) => write!(f, "{}", SfString(name)),
        None => write!(
            f,
            "\"{}\"",
            Identifier {
                limit: l.limit,
                window_ns: l.window,
            }
        ),
    }
}
