//! The Lua scripts: every algorithm and every multi-limit policy decided atomically in one
//! `EVALSHA` (falling back to `EVAL` when the server has not seen the script, as after a
//! restart).
//!
//! There is one copy of the arithmetic outside the core, `redis/lua/decide.lua` (one
//! decision), and two scripts built around it, both starting with `redis/lua/prelude.lua`
//! (whose header documents one decision's arguments and reply):
//!
//! - [`SCRIPT`] makes one decision per call (`lua/single.lua` then `decide.lua`);
//! - [`BATCH_SCRIPT`] makes many in one call (`decide.lua` as a function, then
//!   `lua/batch.lua`, which documents the layout): the decisions waiting to be sent at the same
//!   moment (from many threads or async callers, or held by a host for one turn of its event
//!   loop, [`RedisStore::hold`](crate::RedisStore::hold)) go as one call. They
//!   are decided in order at one Redis `TIME`, as the same calls made one after the other at
//!   that instant would be, and each may fail alone. The fixed cost of a script call (the
//!   script's setup, `TIME`) is paid once, and so is the command's parsing and reply: on the
//!   2-core machine where ratewall is measured, Redis's own count (`INFO commandstats`) gave
//!   5.8–6.8 µs of script time per fixed-window decision in batches of 4 to 32, against
//!   7.1–8.9 µs for the same decisions one call each (interleaved runs of `redis-benchmark`).
//!
//! Both are the same for every policy and every language: the bindings reach them through this
//! crate.
//!
//! # What a decision costs Redis
//!
//! Redis runs every script in its one thread, so the script's time per decision bounds a
//! store's throughput with many callers. Two `redis.call`s (read and write the key) are most
//! of it; the rest is Lua, where what costs is not the arithmetic but parsing and formatting
//! numbers (`tonumber` is `strtod`, `string.format` is `sprintf`: each costs more than a dozen
//! comparisons) and interpreting (every Lua instruction costs tens of machine instructions,
//! a function call hundreds). So the scripts parse each distinct argument string once per call
//! (`parsed` in `prelude.lua`, looked up inline: a batch's decisions mostly share one policy),
//! check a cost or a limit's parameters only when they differ from the last ones found in
//! range, keep each decision's argument counts from the batch's own check, format two numbers
//! of an admission's reply instead of four, and write a fixed window's end back as the digits
//! read. Counted under `lua5.1` with `redis.call` mocked (deterministic counts, unlike times on
//! a shared machine), a fixed-window decision in a batch of 30 went from 40 100 machine
//! instructions (261 Lua instructions) to 26 000 (223), a token-bucket one from 38 400 (243) to
//! 26 700 (214). In Redis (batches of 30, interleaved `redis-benchmark` rounds,
//! `INFO commandstats`) the first half of that work gave 8–25% less script time per decision,
//! depending on the run; rate-limit-redis's one-decision script took 4.1–5.1 µs per call in
//! the same setup, ours 6.3–9.3 µs per decision: each of our decisions reads and writes a
//! string of two numbers (a denial writes nothing, the window's end is exact to the
//! microsecond) where it increments one counter.
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

/// The source of the script of one decision per call.
pub const SCRIPT: &str = concat!(
    include_str!("../lua/prelude.lua"),
    include_str!("../lua/single.lua"),
    include_str!("../lua/decide.lua"),
);

/// The source of the script of many decisions per call (see the [module docs](self)).
pub const BATCH_SCRIPT: &str = concat!(
    include_str!("../lua/prelude.lua"),
    "local function decide(k0, a0, nkeys, nargs, clock)\n",
    include_str!("../lua/decide.lua"),
    "end\n",
    include_str!("../lua/batch.lua"),
);

/// The most decisions sent in one call of [`BATCH_SCRIPT`]: enough to share the call's fixed
/// cost, few enough that one call stays a short stop for Redis's other clients.
pub const MAX_BATCH: usize = 64;

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

/// SHA-1 of [`BATCH_SCRIPT`].
pub fn batch_sha1() -> &'static str {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| redis::Script::new(BATCH_SCRIPT).get_hash().to_string())
}
