//! A policy whose state lives in Redis: the same limits, algorithm and decisions as the core's
//! [`Policy`], shared by every process that uses the same Redis, key prefix and key secret.

use std::future::Future;
use std::sync::Arc;

use ratewall::config::{Config, FailMode};
use ratewall::policy::{Algorithm, Policy, PolicyDecision, PolicyOptions};
use ratewall::rate::Rate;
use ratewall::{CheckError, Decision};

use crate::call::{CallForm, ScriptCall};
use crate::keys::{check_name_part, HashedKey};
use crate::script::{MAX_SPAN_US, MAX_TIME_US, SLIDING_LOG_MAX_LIMIT};
use crate::store::RedisStore;
use crate::Error;

/// Who decided a request.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The Redis script: the fleet-wide answer.
    Redis,
    /// The in-process store (`memory://`): this process's answer.
    Memory,
    /// Redis failed; `fail-open` admitted the request.
    FailOpen,
    /// Redis failed; `fail-closed` denied the request.
    FailClosed,
    /// Redis failed; the `local` in-process fallback decided.
    Local,
}

impl Source {
    /// `true` when the decision did not come from the configured store (a fail mode decided).
    pub fn is_fallback(self) -> bool {
        matches!(self, Source::FailOpen | Source::FailClosed | Source::Local)
    }
}

/// A decision and who made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The policy's decision: combined and per limit, as the core returns it (feed it to
    /// [`Policy::headers`] for the HTTP headers).
    pub decision: PolicyDecision,
    /// Who decided.
    pub source: Source,
}

impl Outcome {
    /// Whether the request was admitted.
    pub fn allowed(&self) -> bool {
        self.decision.allowed()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Check,
    Peek,
    Refund,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Check => "check",
            Op::Peek => "peek",
            Op::Refund => "refund",
        }
    }
}

struct Shared {
    store: RedisStore,
    policy: Policy,
    local: Option<Policy>,
    fail_mode: FailMode,
    /// The policy's keys and script parameters.
    form: Arc<CallForm>,
    /// Per limit: what [`Decision::limit`] reports (burst or limit).
    capacities: Vec<u64>,
    /// The smallest capacity: a larger cost can never pass.
    capacity: u64,
}

/// A [`Policy`] enforced through Redis. Cheap to clone.
///
/// Every request is one round trip: the script decides all limits of the policy atomically,
/// with Redis `TIME` as the clock. When Redis fails (down, slower than the command timeout, or
/// answering with an error), the policy's [`FailMode`] decides instead, the store's
/// [`on_event`](crate::RedisOptions::on_event) callback and [`health`](RedisStore::health)
/// counters record it, and the request goes on: `check`, `peek` and `refund` return `Err` only
/// for a bad cost, exactly like the core.
///
/// ```no_run
/// use ratewall::config::FailMode;
/// use ratewall::policy::{Policy, PolicyOptions};
/// use ratewall_redis::{RedisOptions, RedisPolicy, RedisStore};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379", RedisOptions::default())?;
/// let api = Policy::parse("api", "10/second; 1000/day", PolicyOptions::default())?;
/// let api = RedisPolicy::new(&store, api, FailMode::Local)?;
/// let outcome = api.check("client-42", 1)?;
/// if !outcome.allowed() {
///     let wait_ns = outcome.decision.decision().retry_after;
///     println!("429, retry in {} s", ratewall::http::retry_after_seconds(wait_ns));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisPolicy {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPolicy")
            .field("policy", &self.shared.policy)
            .field("fail_mode", &self.shared.fail_mode)
            .finish_non_exhaustive()
    }
}

fn algorithm_code(a: Algorithm) -> Result<&'static str, Error> {
    Ok(match a {
        Algorithm::TokenBucket => "tb",
        Algorithm::FixedWindow => "fw",
        Algorithm::FixedWindowAligned => "fwa",
        Algorithm::SlidingWindow => "sw",
        Algorithm::SlidingLog => "sl",
        other => {
            return Err(Error::Policy(format!(
                "algorithm {other} has no Redis script"
            )))
        }
    })
}

/// A rate with its limit scaled by `fraction` (at least 1 permit).
fn scaled(rate: &Rate, fraction: f64) -> Result<Rate, Error> {
    let limit = ((rate.limit() as f64 * fraction).floor() as u64).max(1);
    Rate::new(limit, rate.multiple(), rate.unit())
        .map_err(|e| Error::Policy(format!("local fallback for {rate}: {e}")))
}

impl RedisPolicy {
    /// Enforces `policy` (its name, limits and algorithm) through `store`, deciding by
    /// `fail_mode` when Redis cannot answer.
    ///
    /// Fails when the policy cannot run exactly on Redis: a period that is not a whole number of
    /// microseconds, a period or token-bucket `burst × interval` beyond 2^51 µs, a sliding
    /// window counter with `limit × period` beyond 2^52 µs, a sliding log beyond 100 000 permits,
    /// or `{`/`}` in the policy name (see [`script`](crate::script) for why).
    pub fn new(
        store: &RedisStore,
        policy: Policy,
        fail_mode: FailMode,
    ) -> Result<RedisPolicy, Error> {
        let name = policy.name().to_string();
        check_name_part("policy name", &name)?;
        let options: PolicyOptions = *policy.options();
        let algorithm = algorithm_code(options.algorithm)?;
        let bad = |rate: &Rate, why: String| {
            Err(Error::Policy(format!(
                "policy {name:?}, limit {rate}: {why}"
            )))
        };
        let mut params = Vec::new();
        let mut capacities = Vec::new();
        let mut tails = Vec::new();
        for rate in policy.rates() {
            let (limit, period_ns) = (rate.limit(), rate.period());
            if period_ns % 1000 != 0 {
                return bad(
                    rate,
                    "the period must be a whole number of microseconds".into(),
                );
            }
            let period = period_ns / 1000;
            if period > MAX_SPAN_US {
                return bad(
                    rate,
                    format!("the period must be at most 2^51 µs, got {period} µs"),
                );
            }
            let (p, capacity) =
                match options.algorithm {
                    Algorithm::TokenBucket => {
                        let burst = options.burst.unwrap_or(limit);
                        let interval = period.div_ceil(limit);
                        match burst.checked_mul(interval) {
                            Some(t) if t <= MAX_SPAN_US => {}
                            _ => {
                                return bad(
                                    rate,
                                    "burst × (period / limit) must be at most 2^51 µs".into(),
                                )
                            }
                        }
                        ((interval, burst), burst)
                    }
                    Algorithm::SlidingWindow => {
                        match limit.checked_mul(period) {
                            Some(w) if w <= MAX_TIME_US => {}
                            _ => return bad(
                                rate,
                                "a sliding window counter needs limit × period (µs) of at most \
                                 2^52 (about 52 000 per day): use a shorter period, a fixed \
                                 window or a token bucket"
                                    .into(),
                            ),
                        }
                        ((limit, period), limit)
                    }
                    Algorithm::SlidingLog => {
                        if limit > SLIDING_LOG_MAX_LIMIT {
                            return bad(
                                rate,
                                format!(
                                    "a sliding log on Redis holds at most {SLIDING_LOG_MAX_LIMIT} \
                                 permits: use the sliding window counter"
                                ),
                            );
                        }
                        ((limit, period), limit)
                    }
                    _ => {
                        if limit > MAX_SPAN_US {
                            return bad(rate, "the limit must be at most 2^51".into());
                        }
                        ((limit, period), limit)
                    }
                };
            params.push(p);
            capacities.push(capacity);
            tails.push(format!("}}:{algorithm}:{limit}:{period}"));
        }
        let capacity = capacities.iter().copied().min().unwrap_or(1);
        let local = if fail_mode == FailMode::Local {
            let fraction = store.options().local_fraction;
            let rates = policy
                .rates()
                .iter()
                .map(|r| scaled(r, fraction))
                .collect::<Result<Vec<_>, _>>()?;
            let options = PolicyOptions {
                burst: options
                    .burst
                    .map(|b| ((b as f64 * fraction).floor() as u64).max(1)),
                ..options
            };
            Some(Policy::new(&name, &rates, options)?)
        } else {
            None
        };
        let head = format!("{}:{{{name}:", store.options().key_prefix);
        Ok(RedisPolicy {
            shared: Arc::new(Shared {
                store: store.clone(),
                policy,
                local,
                fail_mode,
                form: Arc::new(CallForm {
                    head,
                    tails,
                    algorithm,
                    params,
                }),
                capacities,
                capacity,
            }),
        })
    }

    /// Policy `name` of `config` (limits, algorithm, burst, fail mode) on `store`.
    pub fn from_config(
        store: &RedisStore,
        config: &Config,
        name: &str,
    ) -> Result<RedisPolicy, Error> {
        let pc = config
            .policies
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::Policy(format!("no policy named {name:?} in the configuration"))
            })?;
        let policy = Policy::new(&pc.name, &pc.rates, config.options(pc)).map_err(|error| {
            Error::Config(ratewall::config::ConfigError::Policy {
                name: pc.name.clone(),
                error,
            })
        })?;
        let fail_mode = pc.fail_mode.unwrap_or(config.settings.fail_mode);
        RedisPolicy::new(store, policy, fail_mode)
    }

    /// The core policy: name, rates, limit names and [`headers`](Policy::headers) rendering.
    /// (Its own in-process state is not used.)
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// What happens when Redis cannot answer.
    pub fn fail_mode(&self) -> FailMode {
        self.shared.fail_mode
    }

    /// The store this policy talks to.
    pub fn store(&self) -> &RedisStore {
        &self.shared.store
    }

    /// The in-process fallback of `local` fail mode (limits scaled by
    /// [`local_fraction`](crate::RedisOptions::local_fraction)).
    pub fn local_fallback(&self) -> Option<&Policy> {
        self.shared.local.as_ref()
    }

    /// The Redis keys that hold `client_key`'s state, one per limit (for diagnostics).
    pub fn redis_keys(&self, client_key: impl AsRef<[u8]>) -> Vec<String> {
        let hash = self.shared.store.hashed_key(client_key.as_ref());
        self.shared.form.keys(&hash)
    }

    /// Decides a request of `cost` permits by `client_key` and, if every limit admits it, takes
    /// the permits. Blocks at most about the command timeout.
    pub fn check(&self, client_key: impl AsRef<[u8]>, cost: u64) -> Result<Outcome, CheckError> {
        self.blocking(Op::Check, client_key.as_ref(), cost, None)
    }

    /// Decides like [`check`](Self::check) without taking anything.
    pub fn peek(&self, client_key: impl AsRef<[u8]>, cost: u64) -> Result<Outcome, CheckError> {
        self.blocking(Op::Peek, client_key.as_ref(), cost, None)
    }

    /// Gives `cost` permits back to `client_key` in every limit (never above full). The decision
    /// describes the state after the refund.
    pub fn refund(&self, client_key: impl AsRef<[u8]>, cost: u64) -> Result<Outcome, CheckError> {
        self.blocking(Op::Refund, client_key.as_ref(), cost, None)
    }

    /// [`check`](Self::check) without blocking: the returned future is `Send + 'static` and
    /// runs on any executor (the I/O itself runs on the store's runtime). The request is sent
    /// when this is called; awaiting the future collects the answer (or the fail mode's).
    pub fn check_async(
        &self,
        client_key: impl AsRef<[u8]>,
        cost: u64,
    ) -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static {
        self.non_blocking(Op::Check, client_key.as_ref(), cost, None)
    }

    /// [`peek`](Self::peek) without blocking.
    pub fn peek_async(
        &self,
        client_key: impl AsRef<[u8]>,
        cost: u64,
    ) -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static {
        self.non_blocking(Op::Peek, client_key.as_ref(), cost, None)
    }

    /// [`refund`](Self::refund) without blocking.
    pub fn refund_async(
        &self,
        client_key: impl AsRef<[u8]>,
        cost: u64,
    ) -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static {
        self.non_blocking(Op::Refund, client_key.as_ref(), cost, None)
    }

    /// Makes `client_key` full again in every limit (deletes its keys; also in the local
    /// fallback). An administrative call: a Redis failure is returned, not hidden.
    pub fn reset(&self, client_key: impl AsRef<[u8]>) -> Result<(), Error> {
        let fut = self.reset_async(client_key);
        self.shared.store.block_on(fut)?
    }

    /// [`reset`](Self::reset) without blocking.
    pub fn reset_async(
        &self,
        client_key: impl AsRef<[u8]>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let hash = self.shared.store.hashed_key(client_key.as_ref());
        if let Some(local) = &self.shared.local {
            local.reset(hash.as_str());
        }
        let keys = self.shared.form.keys(&hash);
        let inner = Arc::clone(&self.shared.store.inner);
        let handle = self.shared.store.runtime().spawn(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(&keys);
            RedisStore::command(inner, cmd).await.map(|_| ())
        });
        async move { handle.await.unwrap_or(Err(Error::Timeout)) }
    }

    /// [`check`](Self::check) at an explicit server time `now_us` (integer microseconds)
    /// instead of Redis `TIME`. **For tests and simulations only**: production must use the
    /// server's clock. TTLs are computed from `now_us` plus `ttl_slack_ms` (up to one day), so
    /// keys outlive the real time a test takes.
    pub fn check_at_us(
        &self,
        client_key: impl AsRef<[u8]>,
        now_us: u64,
        ttl_slack_ms: u64,
        cost: u64,
    ) -> Result<Outcome, CheckError> {
        self.blocking(
            Op::Check,
            client_key.as_ref(),
            cost,
            Some((now_us, ttl_slack_ms)),
        )
    }

    /// [`peek`](Self::peek) at an explicit time. Tests only, see [`check_at_us`](Self::check_at_us).
    pub fn peek_at_us(
        &self,
        client_key: impl AsRef<[u8]>,
        now_us: u64,
        ttl_slack_ms: u64,
        cost: u64,
    ) -> Result<Outcome, CheckError> {
        self.blocking(
            Op::Peek,
            client_key.as_ref(),
            cost,
            Some((now_us, ttl_slack_ms)),
        )
    }

    /// [`refund`](Self::refund) at an explicit time. Tests only, see
    /// [`check_at_us`](Self::check_at_us).
    pub fn refund_at_us(
        &self,
        client_key: impl AsRef<[u8]>,
        now_us: u64,
        ttl_slack_ms: u64,
        cost: u64,
    ) -> Result<Outcome, CheckError> {
        self.blocking(
            Op::Refund,
            client_key.as_ref(),
            cost,
            Some((now_us, ttl_slack_ms)),
        )
    }

    fn validate(&self, op: Op, cost: u64) -> Result<u64, CheckError> {
        if cost == 0 {
            return Err(CheckError::ZeroCost);
        }
        match op {
            // Refunding more than everything is refunding everything.
            Op::Refund => Ok(cost.min(MAX_TIME_US)),
            _ if cost > self.shared.capacity => Err(CheckError::InsufficientCapacity {
                cost,
                capacity: self.shared.capacity,
            }),
            _ => Ok(cost),
        }
    }

    fn blocking(
        &self,
        op: Op,
        client_key: &[u8],
        cost: u64,
        at: Option<(u64, u64)>,
    ) -> Result<Outcome, CheckError> {
        let cost = self.validate(op, cost)?;
        let hash = self.shared.store.hashed_key(client_key);
        let call = self.shared.call(op, hash, cost, at);
        let result = self.shared.store.decide_blocking(call);
        Ok(self.shared.finish(op, &hash, cost, at, result))
    }

    fn non_blocking(
        &self,
        op: Op,
        client_key: &[u8],
        cost: u64,
        at: Option<(u64, u64)>,
    ) -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        let prepared = self.validate(op, cost).map(|cost| {
            let hash = shared.store.hashed_key(client_key);
            let reply = shared
                .store
                .submit_decision(shared.call(op, hash, cost, at));
            (hash, cost, reply)
        });
        async move {
            let (hash, cost, reply) = prepared?;
            let result = reply.await.unwrap_or(Err(Error::Timeout));
            Ok(shared.finish(op, &hash, cost, at, result))
        }
    }
}

impl Shared {
    /// The script call deciding `op` for the client whose key hashes to `hash`; with `at`, at
    /// that explicit time (tests) instead of Redis `TIME`.
    fn call(&self, op: Op, hash: HashedKey, cost: u64, at: Option<(u64, u64)>) -> ScriptCall {
        ScriptCall {
            form: Arc::clone(&self.form),
            hash,
            op: op.name(),
            cost,
            at,
        }
    }

    /// Turns the script's reply into an outcome, or applies the fail mode.
    fn finish(
        &self,
        op: Op,
        hash: &HashedKey,
        cost: u64,
        at: Option<(u64, u64)>,
        result: Result<Vec<i64>, Error>,
    ) -> Outcome {
        let error = match result.and_then(|reply| self.parse(&reply)) {
            Ok(decision) => {
                self.store.record_decision();
                return Outcome {
                    decision,
                    source: Source::Redis,
                };
            }
            Err(e) => e,
        };
        self.store
            .record_error(&error, self.policy.name(), self.fail_mode);
        self.store.record_fallback(self.fail_mode);
        self.fallback(op, hash.as_str(), cost, at)
    }

    /// The script's reply: per limit allowed (0/1), remaining, retry_after_us and
    /// reset_after_us; the limit is the policy's own.
    fn parse(&self, reply: &[i64]) -> Result<PolicyDecision, Error> {
        let n = self.form.params.len();
        if reply.len() != 4 * n {
            return Err(Error::Protocol(format!(
                "expected {} integers, got {}",
                4 * n,
                reply.len()
            )));
        }
        let ns = |us: i64| (us.max(0) as u64).saturating_mul(1000);
        let decisions: Vec<Decision> = reply
            .chunks_exact(4)
            .zip(&self.capacities)
            .map(|(d, &limit)| Decision {
                allowed: d[0] == 1,
                limit,
                remaining: d[1].max(0) as u64,
                retry_after: ns(d[2]),
                reset_after: ns(d[3]),
            })
            .collect();
        PolicyDecision::from_limits(&decisions)
            .ok_or_else(|| Error::Protocol("a policy holds 1 to 8 limits".into()))
    }

    fn fallback(&self, op: Op, hash: &str, cost: u64, at: Option<(u64, u64)>) -> Outcome {
        let fixed = |allowed: bool, source: Source| {
            let wait = if allowed {
                0
            } else {
                u64::try_from(self.store.options().fail_closed_retry_after.as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1)
            };
            let decisions: Vec<Decision> = self
                .capacities
                .iter()
                .map(|&limit| Decision {
                    allowed,
                    limit,
                    remaining: if allowed { limit } else { 0 },
                    retry_after: wait,
                    reset_after: wait,
                })
                .collect();
            Outcome {
                decision: PolicyDecision::from_limits(&decisions)
                    .expect("a policy holds 1 to 8 limits"),
                source,
            }
        };
        match (self.fail_mode, &self.local) {
            (FailMode::Closed, _) if op != Op::Refund => fixed(false, Source::FailClosed),
            (FailMode::Local, Some(local)) => {
                let now = at.map_or_else(|| local.now(), |(us, _)| us.saturating_mul(1000));
                let decided = match op {
                    Op::Check => local.check_at(hash, now, cost),
                    Op::Peek => local.peek_at(hash, now, cost),
                    Op::Refund => local.refund_at(hash, now, cost),
                };
                match decided {
                    Ok(decision) => Outcome {
                        decision,
                        source: Source::Local,
                    },
                    // The local quota is scaled down: a cost it can never admit is denied.
                    Err(_) => fixed(false, Source::Local),
                }
            }
            (FailMode::Closed, _) => fixed(true, Source::FailClosed),
            _ => fixed(true, Source::FailOpen),
        }
    }
}
