//! The Lua script: every algorithm and every multi-limit policy decided atomically in one
//! `EVALSHA` (falling back to `EVAL` when the server has not seen the script, as after a
//! restart).
//!
//! The script's source is `redis/lua/policy.lua`; its header documents the arguments and the
//! reply. It is the same for every policy and every language: the bindings reach it through this
//! crate, so there is one copy of the arithmetic outside the core.
//!
//! # Exactness
//!
//! Redis runs Lua 5.1, whose numbers are doubles: integers are exact up to 2^53. The script
//! works in integer microseconds from Redis `TIME` and keeps every value at most 2^53:
//!
//! - times at most 2^52 µs (the year 2112); the script refuses later ones;
//! - periods, and a token bucket's `burst × interval`, at most 2^51 µs (71 years);
//! - sliding window counter: `limit × period` at most 2^52 µs, so every weighted sum
//!   (`prev·(period − elapsed)`, `(limit − cur)·period`) stays below 2^53 — about 52 000
//!   per day, 1.25 M per hour (the core caps that algorithm at 2^20 − 1 per period anyway);
//! - sums are of at most two such terms; products are checked against these bounds before they
//!   are formed; divisions go through an exact integer division (`idiv`: the float quotient,
//!   corrected by multiplication), since `math.floor(a / b)` alone can be off by one near 2^53;
//! - numbers are written back with `string.format('%d', …)`, never `tostring` (which rounds to
//!   14 digits).
//!
//! [`RedisPolicy::new`](crate::RedisPolicy::new) rejects policies outside these bounds with a
//! clear error, and the script checks them again. The equivalence tests drive the script at the
//! extremes (times near 2^52, the longest periods).

use std::sync::OnceLock;

/// The source of the policy script.
pub const SCRIPT: &str = include_str!("../lua/policy.lua");

/// Largest time the script accepts: 2^52 µs.
pub const MAX_TIME_US: u64 = 1 << 52;
/// Largest period (and token-bucket `burst × interval`): 2^51 µs.
pub const MAX_SPAN_US: u64 = 1 << 51;
/// Largest sliding-log limit on Redis (the log is read whole on each decision).
pub const SLIDING_LOG_MAX_LIMIT: u64 = 100_000;

/// SHA-1 of [`SCRIPT`], as `EVALSHA` names it.
pub fn script_sha1() -> &'static str {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| redis::Script::new(SCRIPT).get_hash().to_string())
}
