//! # User guide
//!
//! A tour of ratewall from one limiter to a configured fleet of policies. Every example here is
//! compiled and run by `cargo test`.
//!
//! ## 1. One subject, one algorithm
//!
//! The core limiters guard a single subject (one client, one endpoint, one outgoing API). They
//! take `now` as nanoseconds on a clock you choose and never read a clock themselves, which is
//! what makes them exact in tests and usable without `std`.
//!
//! ```
//! use ratewall::{Quota, RateLimiter, TokenBucket, time::{MILLISECOND, SECOND}};
//!
//! // 10 per second, at most 10 at once.
//! let limiter = TokenBucket::new(Quota::per_second(10)?)?;
//! let d = limiter.check(0, 10)?; // a batch of 10: the whole burst
//! assert!(d.allowed);
//! let d = limiter.check(0, 1)?;
//! assert!(!d.allowed);
//! assert_eq!(d.retry_after, 100 * MILLISECOND); // one permit every 100 ms
//! assert!(limiter.check(100 * MILLISECOND, 1)?.allowed);
//! # let _ = SECOND;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A denial is a decision to *wait*; a cost the limiter can never hold is an error to *give up*:
//!
//! ```
//! use ratewall::{CheckError, Quota, RateLimiter, TokenBucket};
//! let limiter = TokenBucket::new(Quota::per_second(10)?)?;
//! assert_eq!(
//!     limiter.check(0, 11),
//!     Err(CheckError::InsufficientCapacity { cost: 11, capacity: 10 })
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 2. Which algorithm
//!
//! - **Token bucket** ([`TokenBucket`](crate::TokenBucket)): smooth; `burst` requests at once,
//!   then a steady rate. The default, and the right answer for most APIs.
//! - **Fixed window** ([`FixedWindow`](crate::FixedWindow)): "100 per hour" exactly as users read
//!   it, cheapest to explain; a client can send up to twice the limit across a window boundary.
//! - **Sliding log** ([`SlidingLog`](crate::SlidingLog)): exact over every span of the period;
//!   memory grows with the limit. For logins, OTPs, SMS.
//! - **Sliding window counter** ([`SlidingWindow`](crate::SlidingWindow)): one word, close to the
//!   sliding log on real traffic, never more than twice the limit in a span. Its word holds
//!   the window index whole, so large limits need long periods (at least 1.05 ms up to 1023,
//!   268 ms up to 16 383, 17.2 s up to 131 071; see its module); others get
//!   [`QuotaError::PeriodTooShort`](crate::QuotaError::PeriodTooShort).
//!
//! ## 3. Many clients: keyed limiters
//!
//! [`Keyed`](crate::keyed::Keyed) keeps one state per key in bounded memory and reclaims idle
//! keys; [`Overflow`](crate::keyed::Overflow) says what happens when the table is full.
//!
//! ```
//! use ratewall::keyed::{Keyed, KeyedOptions, Overflow};
//! use ratewall::{FixedWindowRule, Quota, time::MINUTE};
//!
//! let logins = Keyed::new(
//!     FixedWindowRule::new(Quota::new(5, 15 * MINUTE)?)?,
//!     KeyedOptions { max_keys: 100_000, overflow: Overflow::DenyNewKeys },
//! )?;
//! for _ in 0..5 {
//!     assert!(logins.check("alice@example.com", 0, 1)?.allowed);
//! }
//! assert!(!logins.check("alice@example.com", 0, 1)?.allowed);
//! assert!(logins.check("bob@example.com", 0, 1)?.allowed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 4. Policies: several limits, one decision
//!
//! ```
//! use ratewall::policy::{Algorithm, Policy, PolicyOptions};
//! let search = Policy::parse("search", "5/second; 100/hour", PolicyOptions {
//!     algorithm: Algorithm::SlidingWindow,
//!     ..PolicyOptions::default()
//! })?;
//! let d = search.check_at("ip:203.0.113.7", 0, 1)?;
//! assert!(d.allowed());
//! assert_eq!(d.limits().len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Only failed logins should count? Check, and refund when the login succeeds:
//!
//! ```
//! use ratewall::policy::{Policy, PolicyOptions};
//! let login = Policy::parse("login", "3/15min", PolicyOptions::default())?;
//! for _ in 0..10 {
//!     let d = login.check_at("alice", 0, 1)?;
//!     assert!(d.allowed());
//!     let password_was_right = true;
//!     if password_was_right {
//!         login.refund_at("alice", 0, 1)?;
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 5. Configuration
//!
//! One TOML file (and `RATEWALL_*` variables) configures every language; see
//! [`config`](crate::config).
//!
//! ```
//! use ratewall::config::Config;
//! let mut config = Config::from_toml_str(r#"
//!     [policies.api]
//!     limits = "10/second; 1000/day"
//! "#)?;
//! config.apply_env([("RATEWALL_POLICY_API_LIMITS", "20/second")])?;
//! let policies = config.build()?;
//! assert_eq!(policies.get("api").unwrap().rates()[0].to_string(), "20/second");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 6. Answering clients
//!
//! ```
//! use ratewall::http::{self, HeaderSets};
//! use ratewall::policy::{Policy, PolicyOptions};
//! let api = Policy::parse("api", "1/minute", PolicyOptions::default())?;
//! api.check_at("k", 0, 1)?;
//! let d = api.check_at("k", 0, 1)?;
//! let sets: HeaderSets = "draft-7".parse()?;
//! let headers = api.headers(&d, &sets, Some("k"), 1_700_000_000_000);
//! assert!(headers.contains(&("Retry-After", "60".to_string())));
//! assert_eq!(http::denied_body(d.decision().retry_after), r#"{"error":"rate_limited","retryAfter":60}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 7. Time in tests
//!
//! Pass a [`ManualClock`](crate::clock::ManualClock) (or any `Fn() -> u64`) and move it; nothing
//! sleeps.
//!
//! ```
//! use std::sync::Arc;
//! use ratewall::clock::ManualClock;
//! use ratewall::policy::{Policy, PolicyOptions};
//! use ratewall::time::SECOND;
//! let clock = Arc::new(ManualClock::new(0));
//! let api = Policy::parse("api", "1/second", PolicyOptions::default())?.with_clock(clock.clone());
//! assert!(api.check("k", 1)?.allowed());
//! assert!(!api.check("k", 1)?.allowed());
//! clock.advance(SECOND);
//! assert!(api.check("k", 1)?.allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 8. What is guaranteed under concurrency
//!
//! - No interleaving of threads admits more than the quota: state changes by compare-and-swap
//!   on the same word the decision was computed from (loom-checked, stress-tested).
//! - A clock stepping back, or threads whose `now` readings race, never admit more.
//! - A policy's denial leaves every limit as it was; a race between limits can only deny early.
//!
//! ## 9. The hot path: cheaper clock, exclusive checks
//!
//! The default clock is already cheap: [`monotonic_ns`](crate::clock::monotonic_ns) reads the
//! time-stamp counter where the kernel keeps time with it and extrapolates `CLOCK_MONOTONIC`
//! from anchors 8 ms apart (within microseconds of it, never stepping back on a thread; the
//! [`clock`](crate::clock) module says how), and a host that keeps per-thread state can hold a
//! [`ThreadMonotonicClock`](crate::clock::ThreadMonotonicClock) to skip the thread-local lookup.
//! Beyond that, two opt-ins for checks counted in nanoseconds, each with its trade written down:
//!
//! - **The coarse clock**: [`CoarseMonotonicClock`](crate::clock::CoarseMonotonicClock) (or
//!   [`coarse_monotonic_ns`](crate::clock::coarse_monotonic_ns) as `now`) is the kernel's tick
//!   clock on the same timeline: a quarter of a precise read's cost on virtual machines, up to a
//!   tick (1–4 ms) late. Decisions stay exact for the times read; waits may be overstated by a
//!   tick. The bindings offer it as a `clock` option (`'coarse'` in Node.js, `"coarse"` in
//!   Python, `RW_POLICY_COARSE_CLOCK` in C).
//! - **Exclusive checks**: a limiter that one thread owns can be checked through `&mut`
//!   ([`Keyed::check_mut`](crate::keyed::Keyed::check_mut),
//!   [`Policy::check_one_at_mut`](crate::policy::Policy::check_one_at_mut)): the same decisions,
//!   without the shard lock and, for one-word algorithms, without a compare-and-swap. The Node.js
//!   binding, whose limiters never leave their JavaScript thread, checks this way.
//!
//! ```
//! use ratewall::clock::{Clock, CoarseMonotonicClock};
//! use ratewall::policy::{Policy, PolicyOptions};
//!
//! let mut search = Policy::parse("search", "30/minute", PolicyOptions::default())?;
//! let now = CoarseMonotonicClock.now();
//! assert!(search.check_one_at_mut("203.0.113.7", now, 1).expect("one limit")?.allowed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
