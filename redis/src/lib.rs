//! # ratewall-redis
//!
//! The fleet backend of [ratewall]: the same policies, algorithms and decisions as the core,
//! with the state in Redis so that every instance of an app shares one quota.
//!
//! - **One round trip per decision.** One Lua script decides every limit of a policy atomically
//!   (`EVALSHA`, `EVAL` when the server does not know the script yet). All requests of all
//!   policies are pipelined over one multiplexed connection.
//! - **Server time.** The script reads Redis `TIME` (integer microseconds), never a client clock.
//! - **Same decisions as the core** for the same sequence of (time, cost): the script mirrors
//!   the core's integer arithmetic over microseconds (see [Equivalence](#equivalence-with-the-core)).
//! - **Idle state vanishes.** Every write sets a TTL (`PX`/`PEXPIRE`) equal to the time until the
//!   state is full again, so no key without a TTL ever remains.
//! - **Keys** are `{prefix}:{policy:hash}:{algorithm}:{limit}:{period_us}`, hash-tagged for Redis
//!   Cluster, with a keyed hash of the client key (never the raw key): see [`keys`].
//! - **Failure is explicit per policy** ([`FailMode`]): `fail-open` admits, `fail-closed` denies,
//!   `local` decides with an in-process limiter of the same policy (optionally a fraction of the
//!   quota). A command never waits longer than the command timeout (default 50 ms); a lost
//!   connection is re-established in the background with backoff, without rebuilding anything;
//!   every failure reaches a callback ([`RedisOptions::on_event`]) and counters
//!   ([`RedisStore::health`]). A Redis outage never hangs a request and never returns an error
//!   in the request path.
//!
//! ## What a binding calls
//!
//! The C, Python and Node bindings stay thin. From a [`Config`](ratewall::config::Config) (TOML
//! plus `RATEWALL_*` variables, `storage = "redis://…"`, `fail_mode`, `key_prefix`):
//!
//! ```text
//! // once, at startup (errors: bad URL, unreachable server, policy Redis cannot run)
//! let limiters = Limiters::from_config(&config)?;                     // connects now
//! let limiters = Limiters::from_config_with(&config, options, true)?; // lazy: start while Redis is down
//! let limiter  = limiters.get("api");                                 // Option<&Limiter>
//!
//! // per request: Err only for a bad cost (CheckError), never for an outage
//! limiter.check(key, cost)?          -> Outcome { decision: PolicyDecision, source: Source }   // blocking, ≤ timeout
//! limiter.check_async(key, cost)     -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static
//! limiter.peek / peek_async / refund / refund_async / reset / reset_async
//!
//! // rendering: exactly as for in-process policies
//! limiter.policy().headers(&outcome.decision, limiters.headers("api"), Some(key), unix_ms)
//! ratewall::http::denied_body(outcome.decision.decision().retry_after)
//!
//! // metrics / health: state (Up/Down), decisions, errors, timeouts, fallbacks, reconnects
//! limiters.store().map(|s| s.health())
//! ```
//!
//! - **C (blocking):** call [`Limiter::check`]; it blocks the calling thread at most about the
//!   command timeout. It never panics on a Redis failure.
//! - **Python:** call [`Limiter::check`] inside `py.allow_threads` (the GIL is released while
//!   waiting for Redis); for ASGI, hand [`Limiter::check_async`] to the event loop (the future
//!   is `Send + 'static` and runs on any executor; the I/O runs on the store's own runtime).
//! - **Node:** return [`Limiter::check_async`] from an `async` napi function: the event loop is
//!   never blocked. [`RedisStore::hold`] and [`RedisStore::release`] around one turn of the
//!   event loop send that turn's requests together (one wake-up of the I/O thread, one write).
//! - `Outcome::source` says who decided ([`Source::Redis`], [`Source::Memory`], or a fallback:
//!   [`Source::FailOpen`], [`Source::FailClosed`], [`Source::Local`]); bindings may expose it.
//! - Lower level: [`RedisStore::connect`] + [`RedisPolicy::new`] for a policy built in code.
//!
//! Storage URLs (one syntax everywhere, see [`url`]): `redis://host:port/db`, `rediss://` (TLS),
//! `redis+unix:///path.sock`, `redis+cluster://host:port,host:port`, `rediss+cluster://…`; `memory://` selects the
//! in-process store in [`Limiters`].
//!
//! ## Equivalence with the core
//!
//! The script runs the core's rules in integer microseconds. Given the same rule parameters in
//! the same unit, decisions are identical, field by field (tested by driving both from one
//! generated sequence of (time, cost, operation), including clocks that step back):
//!
//! | algorithm | Redis state | core state | unit-level difference (core in ns, Redis in µs) |
//! |---|---|---|---|
//! | token bucket | `tat` (integer string) | `tat` word | interval `ceil(period/limit)` rounds to whole µs instead of ns: Redis refills at most 1 µs per permit slower (stricter); none when `limit` divides the period in µs |
//! | fixed window | one integer: count, then the window end in 16 digits | packed word | the core rounds the window end up to `2^bits(limit)` ns for packing; Redis keeps it exact. Identical when the core runs at a time unit that makes the rounding vanish |
//! | sliding window counter | `window:prev:cur` | packed word | `retry_after` rounds up to whole µs (Redis µs = ceil(core ns / 1000)); allowed/remaining identical. The core's window index wraps after 2^(64−2·bits) windows, Redis's never does |
//! | sliding log | list of the last `limit` expiries, then `t_seen` | ring of `limit` slots | none |
//!
//! The reference is the core's keyed store (what Redis replaces): a refund to a client with no
//! state writes nothing, and state that is fully replenished is dropped (here by its TTL).
//! Decisions come back in nanoseconds (µs × 1000), as everywhere else. Exactness of the Lua
//! arithmetic (doubles, 53-bit integers) is argued in [`script`].
//!
//! ## Memory per key
//!
//! Redis 7.0 `MEMORY USAGE` for one client and one limit, policy `api`, default prefix (~53-byte
//! key names): token bucket 104 B, fixed window 104 B, sliding window counter 120–136 B, sliding
//! log 312 B at 10 entries and 1208 B at 100. See `README.md` for when to move from memory to
//! Redis and how each fail mode behaves.
//!
//! [ratewall]: ratewall
//! [`FailMode`]: ratewall::config::FailMode
#![deny(missing_docs)]

mod call;
mod error;
pub mod keys;
mod limiters;
mod policy;
pub mod script;
mod store;
pub mod url;

pub use error::Error;
pub use keys::KeyHasher;
pub use limiters::{Limiter, Limiters};
pub use policy::{Outcome, RedisPolicy, Source};
pub use store::{
    read_tls_ca_file, read_tls_client_identity, ConnectionState, Event, EventHandler, EventKind,
    Health, RedisOptions, RedisStore, TlsClientIdentity,
};
pub use url::StorageUrl;

/// Re-exported so bindings need only this crate for the failure settings.
pub use ratewall::config::FailMode;

#[cfg(test)]
mod tests {
    /// Bindings share these across threads (pyo3 classes, napi objects, C handles).
    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<crate::RedisStore>();
        check::<crate::RedisPolicy>();
        check::<crate::Limiter>();
        check::<crate::Limiters>();
        check::<crate::Outcome>();
        check::<crate::Error>();
        check::<crate::Health>();
    }
}
