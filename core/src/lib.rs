//! # ratewall
//!
//! Exact, lock-free rate limiting over a clock you supply.
//!
//! ratewall answers "may this client do this now?" in a few nanoseconds, never admits more than
//! the quota (also under concurrency, also when the clock steps back), and tells the client when
//! to come back. This crate is the `#![no_std]` core: four algorithms, one decision shape. With
//! feature `alloc` the sliding log can allocate its own slots; feature `std` (default) adds the
//! keyed, policy and HTTP layer.
//!
//! ## Time
//!
//! The core never reads a clock. Every call takes `now`: `u64` nanoseconds on a monotonic scale
//! of your choosing (since boot, since process start, since a test began). Tests move time by
//! passing a bigger number; nothing sleeps. A `now` smaller than one already seen never admits
//! more than the quota allows, and all arithmetic saturates: no panic and no wrap at `now = 0` or
//! near `u64::MAX`.
//!
//! ## Choosing an algorithm
//!
//! | algorithm | admits | state | choose it for |
//! |---|---|---|---|
//! | [`TokenBucket`] (GCRA) | `burst` at once, then one per `period/limit` | one word | smooth APIs; the default |
//! | [`FixedWindow`] | `limit` per window from the first request | one word | plain "100 per hour" quotas; up to 2× at a window boundary |
//! | [`SlidingLog`] | `limit` in any span of `period`, exactly | `limit` slots | small quotas that must hold exactly: logins, OTP, SMS |
//! | [`SlidingWindow`] (counter) | about `limit` per span of `period` | one word | sliding behaviour at fixed-window cost; < 2× worst case |
//!
//! Every limiter implements [`RateLimiter`]: `check` (decide and take), `peek` (decide only),
//! `refund` (give back) and `reset`, all through `&self` and safe to share between threads.
//!
//! ```
//! use ratewall::{Quota, RateLimiter, TokenBucket, time::SECOND};
//!
//! let limiter = TokenBucket::with_burst(Quota::per_second(1)?, 5)?; // capacity 5, 1 per second
//! let d = limiter.check(0, 1)?;
//! assert!(d.allowed);
//! assert_eq!((d.limit, d.remaining), (5, 4));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Decisions and errors
//!
//! A [`Decision`] carries `allowed`, `limit`, `remaining`, `retry_after` and `reset_after`. A
//! denial is a decision ("wait `retry_after`"); a request that can never pass is an error
//! ([`CheckError::InsufficientCapacity`]: "never"). Quotas and limiters validate their input at
//! construction and return [`QuotaError`]; nothing panics on bad input.
//!
//! ## Storage seam
//!
//! The one-word algorithms are pure [`WordRule`]s: (state, now, cost) → (decision, new state).
//! [`WordLimiter`] runs a rule over one atomic word with a compare-and-swap loop; the keyed layer
//! and the Redis backend run the same rules over their own storage.
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test, loom))]
extern crate std;

mod decision;
mod error;
mod fixed_window;
mod limiter;
mod quota;
mod sliding_log;
mod sliding_window;
mod sync;
mod token_bucket;

#[cfg(feature = "std")]
pub mod clock;
#[cfg(feature = "std")]
pub mod config;
#[cfg(feature = "std")]
pub mod guide;
#[cfg(feature = "std")]
pub mod http;
#[cfg(feature = "std")]
pub mod keyed;
#[cfg(feature = "std")]
pub mod keys;
#[cfg(feature = "std")]
pub mod policy;
#[cfg(feature = "std")]
pub mod rate;

pub use decision::Decision;
pub use error::{CheckError, QuotaError};
pub use fixed_window::{FixedWindow, FixedWindowRule, FIXED_WINDOW_MAX_LIMIT};
pub use limiter::{RateLimiter, Step, Verdict, WordLimiter, WordRule};
pub use quota::{time, Quota};
pub use sliding_log::{LogSlot, Padded, Placement, SlidingLog};
pub use sliding_window::{SlidingWindow, SlidingWindowRule, SLIDING_WINDOW_MAX_LIMIT};
pub use token_bucket::{TokenBucket, TokenBucketRule};
