//! Policies: a name, one or more limits, an algorithm, checked together per key.
//!
//! `"10/second; 1000/day"` is one policy with two limits. A request passes only if every limit
//! admits it, and a denied request takes nothing from any limit: the policy first *peeks* every
//! limit, and only when all would admit does it take the permits, limit by limit. Should another
//! thread exhaust a later limit in between, the permits already taken are refunded; that race can
//! only make the policy stricter for an instant, never looser. A single-limit policy skips the
//! peek.
//!
//! The decision reports the combined answer (the most restrictive limit: on denial, the longest
//! wait; when allowed, the fewest permits left) and every limit's own decision, for multi-item
//! rate-limit headers.
//!
//! ```
//! use ratewall::policy::{Policy, PolicyOptions};
//! use ratewall::time::SECOND;
//!
//! let api = Policy::parse("api", "2/second; 3/minute", PolicyOptions::default())?;
//! assert!(api.check_at("alice", 0, 1)?.allowed());
//! assert!(api.check_at("alice", 0, 1)?.allowed());
//! let third = api.check_at("alice", 0, 1)?;
//! assert!(!third.allowed());
//! assert_eq!(third.most_restrictive(), 0); // the per-second limit said no
//! let later = api.check_at("alice", SECOND, 1)?;
//! assert!(later.allowed());
//! assert_eq!(later.decision().remaining, 0); // the per-minute limit is used up
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::str::FromStr;
use std::boxed::Box;
use std::string::{String, ToString};
use std::sync::Arc;

use crate::clock::{Clock, MonotonicClock};
use crate::error::{validate_cost, CheckError, QuotaError};
use crate::http::{self, HeaderSets, LimitInfo, RateLimitState};
use crate::keyed::{KeyHash, Keyed, KeyedError, KeyedLog, KeyedOptions, Overflow};
use crate::rate::{parse_rates, Rate, RateParseError};
use crate::{Decision, FixedWindowRule, SlidingWindowRule, TokenBucketRule};

/// The most limits one policy may hold.
pub const MAX_LIMITS: usize = 8;

/// The algorithm a policy's limits run.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// GCRA token bucket: smooth, `burst` at once (the default).
    #[default]
    TokenBucket,
    /// Fixed window opened by each key's first request.
    FixedWindow,
    /// Fixed windows aligned to multiples of the period.
    FixedWindowAligned,
    /// Sliding window counter (approximate, one word).
    SlidingWindow,
    /// Sliding log (exact, `limit` timestamps per key).
    SlidingLog,
}

impl Algorithm {
    /// Every algorithm, in documentation order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::TokenBucket,
        Algorithm::FixedWindow,
        Algorithm::FixedWindowAligned,
        Algorithm::SlidingWindow,
        Algorithm::SlidingLog,
    ];

    /// The canonical name, as accepted by `FromStr` and written in config files.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "token-bucket",
            Algorithm::FixedWindow => "fixed-window",
            Algorithm::FixedWindowAligned => "fixed-window-aligned",
            Algorithm::SlidingWindow => "sliding-window-counter",
            Algorithm::SlidingLog => "sliding-log",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An algorithm name that is not one of ratewall's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown algorithm {:?}: use token-bucket, fixed-window, fixed-window-aligned, \
             sliding-window-counter or sliding-log",
            self.0
        )
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Canonical names plus the names peers use: `gcra`; Flask-Limiter's `moving-window` (the
    /// sliding log) and `sliding-window`; underscores for dashes; any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match name.as_str() {
            "token-bucket" | "gcra" => Algorithm::TokenBucket,
            "fixed-window" => Algorithm::FixedWindow,
            "fixed-window-aligned" => Algorithm::FixedWindowAligned,
            "sliding-window-counter" | "sliding-window" => Algorithm::SlidingWindow,
            "sliding-log" | "moving-window" => Algorithm::SlidingLog,
            _ => return Err(UnknownAlgorithm(s.to_string())),
        })
    }
}

/// How a policy's limits are enforced. Every field has a default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Default: [`Algorithm::TokenBucket`].
    pub algorithm: Algorithm,
    /// Token bucket capacity when it should differ from the limit (`5` for "capacity 5,
    /// 1/second"). Only for a token-bucket policy with exactly one limit. Default: the limit.
    pub burst: Option<u64>,
    /// Keys with live state per limit. Default: 1 000 000.
    pub max_keys: Option<usize>,
    /// What to do with new keys when the table is full. Default: evict the key nearest to idle;
    /// choose [`Overflow::DenyNewKeys`] for logins and OTPs.
    pub overflow: Overflow,
}

/// Why a policy could not be built. The message says what to change.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// The policy name is empty.
    EmptyName,
    /// No limits were given.
    NoLimits,
    /// More than [`MAX_LIMITS`] limits were given.
    TooManyLimits(usize),
    /// The rate string does not parse.
    Rate(RateParseError),
    /// One limit does not fit the algorithm.
    Limit {
        /// The limit, in canonical form.
        rate: String,
        /// Why it does not fit.
        error: QuotaError,
    },
    /// `burst` was given for something other than a single-limit token bucket.
    BurstNotApplicable,
    /// The keyed store options are invalid.
    Keyed(KeyedError),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::EmptyName => f.write_str("a policy needs a non-empty name"),
            PolicyError::NoLimits => {
                f.write_str("a policy needs at least one limit, such as \"10/second\"")
            }
            PolicyError::TooManyLimits(n) => {
                write!(
                    f,
                    "a policy holds at most {MAX_LIMITS} limits, {n} were given"
                )
            }
            PolicyError::Rate(e) => write!(f, "invalid rate string: {e}"),
            PolicyError::Limit { rate, error } => write!(f, "limit {rate}: {error}"),
            PolicyError::BurstNotApplicable => f.write_str(
                "burst applies only to a token-bucket policy with exactly one limit; \
                 remove it or use a single limit",
            ),
            PolicyError::Keyed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PolicyError {}

impl From<RateParseError> for PolicyError {
    fn from(e: RateParseError) -> Self {
        PolicyError::Rate(e)
    }
}

/// One limit's keyed store, under the policy's algorithm.
#[derive(Debug)]
enum Store {
    TokenBucket(Keyed<TokenBucketRule>),
    FixedWindow(Keyed<FixedWindowRule>),
    SlidingWindow(Keyed<SlidingWindowRule>),
    SlidingLog(Keyed<KeyedLog>),
}

macro_rules! each_store {
    ($store:expr, $keyed:ident => $body:expr) => {
        match $store {
            Store::TokenBucket($keyed) => $body,
            Store::FixedWindow($keyed) => $body,
            Store::SlidingWindow($keyed) => $body,
            Store::SlidingLog($keyed) => $body,
        }
    };
}

impl Store {
    fn new(rate: &Rate, options: &PolicyOptions, single: bool) -> Result<Store, PolicyError> {
        let quota = rate.quota();
        let keyed = KeyedOptions {
            max_keys: options.max_keys.unwrap_or(KeyedOptions::default().max_keys),
            overflow: options.overflow,
        };
        let limit_error = |error| PolicyError::Limit {
            rate: rate.to_string(),
            error,
        };
        if options.burst.is_some() && !(single && options.algorithm == Algorithm::TokenBucket) {
            return Err(PolicyError::BurstNotApplicable);
        }
        let store = match options.algorithm {
            Algorithm::TokenBucket => {
                let burst = options.burst.unwrap_or(quota.limit());
                let rule = TokenBucketRule::with_burst(quota, burst).map_err(limit_error)?;
                Store::TokenBucket(Keyed::new(rule, keyed).map_err(PolicyError::Keyed)?)
            }
            Algorithm::FixedWindow | Algorithm::FixedWindowAligned => {
                let rule = if options.algorithm == Algorithm::FixedWindow {
                    FixedWindowRule::new(quota)
                } else {
                    FixedWindowRule::aligned(quota)
                };
                let rule = rule.map_err(limit_error)?;
                Store::FixedWindow(Keyed::new(rule, keyed).map_err(PolicyError::Keyed)?)
            }
            Algorithm::SlidingWindow => {
                let rule = SlidingWindowRule::new(quota).map_err(limit_error)?;
                Store::SlidingWindow(Keyed::new(rule, keyed).map_err(PolicyError::Keyed)?)
            }
            Algorithm::SlidingLog => {
                let log = KeyedLog::new(quota).map_err(limit_error)?;
                Store::SlidingLog(Keyed::new(log, keyed).map_err(PolicyError::Keyed)?)
            }
        };
        Ok(store)
    }

    fn capacity(&self) -> u64 {
        each_store!(self, k => crate::keyed::KeyedState::capacity(k.state()))
    }

    // Always inlined: a binding's entry point (`rw_check`, the Node and Python checks) is in
    // another crate, where a call here cost as much as the C ABI's whole overhead.
    #[inline(always)]
    fn check(&self, key: KeyHash, now: u64, cost: u64) -> Result<Decision, CheckError> {
        each_store!(self, k => k.check_hash(key, now, cost))
    }

    #[inline(always)]
    fn check_mut(&mut self, key: KeyHash, now: u64, cost: u64) -> Result<Decision, CheckError> {
        each_store!(self, k => k.check_hash_mut(key, now, cost))
    }

    fn peek(&self, key: KeyHash, now: u64, cost: u64) -> Result<Decision, CheckError> {
        each_store!(self, k => k.peek_hash(key, now, cost))
    }

    fn refund(&self, key: KeyHash, now: u64, cost: u64) -> Result<Decision, CheckError> {
        each_store!(self, k => k.refund_hash(key, now, cost))
    }

    fn reset(&self, key: KeyHash) {
        each_store!(self, k => k.reset_hash(key))
    }

    fn len(&self) -> usize {
        each_store!(self, k => k.len())
    }

    fn reclaim(&self, now: u64) -> usize {
        each_store!(self, k => k.reclaim(now))
    }
}

/// A named set of limits enforced together per key. See the [module docs](self).
pub struct Policy {
    name: String,
    rates: Box<[Rate]>,
    /// Each limit's name in the IETF header form.
    limit_names: Box<[String]>,
    stores: Box<[Store]>,
    options: PolicyOptions,
    /// The smallest capacity of all limits: a larger cost can never pass.
    capacity: u64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("rates", &self.rates)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// A policy named `name` enforcing every rate in `rates`.
    pub fn new(name: &str, rates: &[Rate], options: PolicyOptions) -> Result<Policy, PolicyError> {
        if name.trim().is_empty() {
            return Err(PolicyError::EmptyName);
        }
        match rates.len() {
            0 => return Err(PolicyError::NoLimits),
            n if n > MAX_LIMITS => return Err(PolicyError::TooManyLimits(n)),
            _ => {}
        }
        let stores = rates
            .iter()
            .map(|rate| Store::new(rate, &options, rates.len() == 1))
            .collect::<Result<Box<[Store]>, _>>()?;
        let capacity = stores.iter().map(Store::capacity).min().unwrap_or(0);
        let limit_names = match rates {
            [_] => std::vec![name.to_string()],
            _ => rates.iter().map(|r| std::format!("{name}:{r}")).collect(),
        };
        Ok(Policy {
            name: name.to_string(),
            rates: rates.into(),
            limit_names: limit_names.into(),
            stores,
            options,
            capacity,
            clock: Arc::new(MonotonicClock),
        })
    }

    /// A policy from a rate string such as `"10/second; 1000/day"`.
    pub fn parse(name: &str, rates: &str, options: PolicyOptions) -> Result<Policy, PolicyError> {
        Policy::new(name, &parse_rates(rates)?, options)
    }

    /// The same policy reading `now` from `clock` in [`check`](Policy::check) and friends
    /// (default: [`MonotonicClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Policy {
        self.clock = clock;
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy's limits, in the order given.
    pub fn rates(&self) -> &[Rate] {
        &self.rates
    }

    /// The options the policy was built with.
    pub fn options(&self) -> &PolicyOptions {
        &self.options
    }

    /// The time on the policy's clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Checks `key` at the clock's current time.
    #[inline]
    pub fn check(&self, key: impl AsRef<[u8]>, cost: u64) -> Result<PolicyDecision, CheckError> {
        self.check_at(key, self.clock.now(), cost)
    }

    /// Decides a request of `cost` permits by `key` at `now` against every limit and, if all
    /// admit, takes the permits from each.
    #[inline]
    pub fn check_at(
        &self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision, CheckError> {
        self.check_hash(KeyHash::of(key), now, cost)
    }

    /// [`check_at`](Policy::check_at) for a key hashed already.
    #[inline]
    pub fn check_hash(
        &self,
        key: KeyHash,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision, CheckError> {
        validate_cost(cost, self.capacity)?;
        if let [store] = &*self.stores {
            return Ok(PolicyDecision::from_one(store.check(key, now, cost)?));
        }
        let looked = self.peek_hash(key, now, cost)?;
        if !looked.allowed() {
            return Ok(looked);
        }
        let mut decisions = PolicyDecision::empty();
        for (i, store) in self.stores.iter().enumerate() {
            let d = store.check(key, now, cost)?;
            decisions.push(d);
            if !d.allowed {
                // Lost a race for this limit: give back what the earlier ones took.
                for earlier in &self.stores[..i] {
                    earlier.refund(key, now, cost)?;
                }
                return Ok(decisions.finish());
            }
        }
        Ok(decisions.finish())
    }

    /// For a policy of exactly one limit, [`check_at`](Policy::check_at) returning that limit's
    /// [`Decision`] (40 bytes) instead of a [`PolicyDecision`] (room for [`MAX_LIMITS`] limits,
    /// over 300 bytes): the same decision, for hot paths that would otherwise copy the larger
    /// value (the C and Node bindings). `None`, taking nothing, when the policy has several
    /// limits.
    ///
    /// ```
    /// use ratewall::policy::{Policy, PolicyOptions};
    ///
    /// let login = Policy::parse("login", "5/15min", PolicyOptions::default())?;
    /// let one = login.check_one_at("alice", 0, 1).expect("one limit")?;
    /// assert_eq!((one.allowed, one.remaining), (true, 4));
    /// let api = Policy::parse("api", "10/second; 1000/day", PolicyOptions::default())?;
    /// assert!(api.check_one_at("alice", 0, 1).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn check_one_at(
        &self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Option<Result<Decision, CheckError>> {
        let [store] = &*self.stores else {
            return None;
        };
        if let Err(e) = validate_cost(cost, self.capacity) {
            return Some(Err(e));
        }
        Some(store.check(KeyHash::of(key), now, cost))
    }

    /// [`check_one_at`](Policy::check_one_at) through an exclusive borrow: the same decision,
    /// without the shard lock and, for the one-word algorithms, without a compare-and-swap
    /// (see [`Keyed::check_mut`]). For a policy that one thread owns.
    ///
    /// ```
    /// use ratewall::policy::{Policy, PolicyOptions};
    ///
    /// let mut login = Policy::parse("login", "5/15min", PolicyOptions::default())?;
    /// let one = login.check_one_at_mut("alice", 0, 1).expect("one limit")?;
    /// assert_eq!((one.allowed, one.remaining), (true, 4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn check_one_at_mut(
        &mut self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Option<Result<Decision, CheckError>> {
        let capacity = self.capacity;
        let [store] = &mut *self.stores else {
            return None;
        };
        if let Err(e) = validate_cost(cost, capacity) {
            return Some(Err(e));
        }
        Some(store.check_mut(KeyHash::of(key), now, cost))
    }

    /// Decides like [`check_at`](Policy::check_at) without taking anything.
    pub fn peek_at(
        &self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision, CheckError> {
        self.peek_hash(KeyHash::of(key), now, cost)
    }

    /// [`peek_at`](Policy::peek_at) for a key hashed already.
    pub fn peek_hash(
        &self,
        key: KeyHash,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision, CheckError> {
        validate_cost(cost, self.capacity)?;
        let mut decisions = PolicyDecision::empty();
        for store in self.stores.iter() {
            decisions.push(store.peek(key, now, cost)?);
        }
        Ok(decisions.finish())
    }

    /// Gives `cost` permits back to `key` in every limit (never above full): for "count only
    /// failed logins" and skip-successful-requests options. The decision describes the state
    /// after the refund.
    pub fn refund_at(
        &self,
        key: impl AsRef<[u8]>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision, CheckError> {
        let key = KeyHash::of(key);
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        let mut decisions = PolicyDecision::empty();
        for store in self.stores.iter() {
            decisions.push(store.refund(key, now, cost)?);
        }
        Ok(decisions.finish())
    }

    /// Makes `key` full again in every limit.
    pub fn reset(&self, key: impl AsRef<[u8]>) {
        let key = KeyHash::of(key);
        for store in self.stores.iter() {
            store.reset(key);
        }
    }

    /// Keys stored, summed over the limits.
    pub fn len(&self) -> usize {
        self.stores.iter().map(Store::len).sum()
    }

    /// `true` when no limit stores any key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each limit's name in the IETF header form: the policy's name when it has one limit,
    /// `name:rate` (`api:10/second`) for each of several.
    pub fn limit_names(&self) -> &[String] {
        &self.limit_names
    }

    /// What the HTTP layer needs to render `decision`: one [`LimitInfo`] per limit, most
    /// restrictive first.
    pub fn limit_infos(&self, decision: &PolicyDecision) -> std::vec::Vec<LimitInfo<'_>> {
        let mut infos: std::vec::Vec<LimitInfo<'_>> = decision
            .limits()
            .iter()
            .zip(self.rates.iter().zip(self.limit_names.iter()))
            .map(|(d, (rate, name))| LimitInfo::from_decision(name, rate.period(), d))
            .collect();
        infos.swap(0, decision.most_restrictive());
        infos[1..].sort_by_key(|i| (i.remaining, core::cmp::Reverse(i.reset_after)));
        infos
    }

    /// The rate-limit headers for `decision` in the selected `sets` (with `Retry-After` on a
    /// denial), exactly as every binding sends them. `key` is the client key (for draft-8 `pk`);
    /// `now_unix_ms` is wall-clock time, for `X-RateLimit-Reset` and `Date`.
    pub fn headers(
        &self,
        decision: &PolicyDecision,
        sets: &HeaderSets,
        key: Option<&str>,
        now_unix_ms: u64,
    ) -> std::vec::Vec<(&'static str, String)> {
        let infos = self.limit_infos(decision);
        let d = decision.decision();
        let mut state = RateLimitState::new(d.allowed, d.retry_after, &infos, now_unix_ms);
        if let Some(key) = key {
            state = state.with_key(key);
        }
        http::headers(&state, sets)
    }

    /// Drops idle keys in every limit (see [`Keyed::reclaim`]); returns how many were dropped.
    pub fn reclaim(&self, now: u64) -> usize {
        self.stores.iter().map(|s| s.reclaim(now)).sum()
    }
}

/// A policy's answer: the combined decision and every limit's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyDecision {
    each: [Decision; MAX_LIMITS],
    len: u8,
    most_restrictive: u8,
}

const NO_DECISION: Decision = Decision {
    allowed: true,
    limit: 0,
    remaining: 0,
    retry_after: 0,
    reset_after: 0,
};

impl PolicyDecision {
    #[inline]
    fn empty() -> Self {
        PolicyDecision {
            each: [NO_DECISION; MAX_LIMITS],
            len: 0,
            most_restrictive: 0,
        }
    }

    #[inline]
    fn from_one(d: Decision) -> Self {
        let mut this = Self::empty();
        this.push(d);
        this
    }

    #[inline]
    fn push(&mut self, d: Decision) {
        self.each[self.len as usize] = d;
        self.len += 1;
    }

    /// Picks the most restrictive limit: on denial the longest wait, else the fewest permits
    /// left (then the latest reset).
    fn finish(mut self) -> Self {
        let each = &self.each[..self.len as usize];
        let pick = if each.iter().any(|d| !d.allowed) {
            each.iter()
                .enumerate()
                .filter(|(_, d)| !d.allowed)
                .max_by_key(|(i, d)| (d.retry_after, core::cmp::Reverse(*i)))
        } else {
            each.iter()
                .enumerate()
                .min_by_key(|(i, d)| (d.remaining, core::cmp::Reverse(d.reset_after), *i))
        };
        self.most_restrictive = pick.map_or(0, |(i, _)| i as u8);
        self
    }

    /// Rebuilds a decision from every limit's own decision, in the policy's order, exactly as
    /// [`limits`](Self::limits) returned them: for bindings that hand a decision to another
    /// language (the C ABI's `rw_decision`) and render its headers later. The combined decision
    /// and the most restrictive limit are recomputed, so the result equals the original.
    /// `None` when `limits` is empty or holds more than [`MAX_LIMITS`] decisions.
    ///
    /// ```
    /// use ratewall::policy::{Policy, PolicyDecision, PolicyOptions};
    ///
    /// let api = Policy::parse("api", "2/second; 3/minute", PolicyOptions::default())?;
    /// let d = api.check_at("alice", 0, 1)?;
    /// assert_eq!(PolicyDecision::from_limits(d.limits()), Some(d));
    /// assert_eq!(PolicyDecision::from_limits(&[]), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_limits(limits: &[Decision]) -> Option<PolicyDecision> {
        if limits.is_empty() || limits.len() > MAX_LIMITS {
            return None;
        }
        let mut this = Self::empty();
        for d in limits {
            this.push(*d);
        }
        Some(this.finish())
    }

    /// Whether the request was admitted by every limit.
    #[inline]
    pub fn allowed(&self) -> bool {
        self.decision().allowed
    }

    /// The combined decision: the most restrictive limit's. (A request denied by a race after
    /// some limits admitted it reports the denying limit; nothing stays taken.)
    #[inline]
    pub fn decision(&self) -> Decision {
        let mut d = self.each[self.most_restrictive as usize];
        if self.limits().iter().any(|d| !d.allowed) {
            d.allowed = false;
        }
        d
    }

    /// Index (into the policy's [`rates`](Policy::rates)) of the most restrictive limit.
    #[inline]
    pub fn most_restrictive(&self) -> usize {
        self.most_restrictive as usize
    }

    /// Every limit's own decision, in the policy's order. When a race denied the request midway,
    /// only the limits checked so far are listed.
    #[inline]
    pub fn limits(&self) -> &[Decision] {
        &self.each[..self.len as usize]
    }
}
