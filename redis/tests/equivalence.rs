//! Equivalence with the core: one generated sequence of (time, cost, operation) drives both the
//! core algorithm and the Redis script (with the script's test-only explicit time), and every
//! decision must match field by field.
//!
//! - Single limits: the core's keyed store (what Redis replaces) runs in the script's own unit (µs; for the fixed window at
//!   `2^bits(limit)` core units per µs, where the core's packing quantum vanishes), so the
//!   decisions are *identical*, including clocks that step back and times near 2^52 µs.
//! - Policies (several limits, all-or-nothing): the core `Policy` runs in nanoseconds
//!   (`now_ns = t_us × 1000`) on parameters where µs and ns arithmetic agree (see each case);
//!   for the sliding window counter `retry_after` is the core's rounded up to whole µs.
//!
//! Sequences are seeded; a failure prints the seed and the steps that led to it.

mod common;

use common::Rng;

use ratewall::keyed::{Keyed, KeyedLog, KeyedOptions, KeyedState};
use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall::rate::{Rate, Unit};
use ratewall::{CheckError, Decision, FixedWindowRule, Quota, SlidingWindowRule, TokenBucketRule};
use ratewall_redis::{FailMode, Outcome, RedisPolicy, RedisStore, Source};

const MAX_TIME: u64 = 1 << 52;
/// TTL slack for explicit times: keys outlive the real time a test takes.
const SLACK_MS: u64 = 600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Check,
    Peek,
    Refund,
}

fn cases() -> u64 {
    std::env::var("EQUIVALENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// A period: a few ms to a day, in the rate grammar's units.
fn random_rate(rng: &mut Rng, limit: u64, seconds_only: bool) -> Rate {
    let choices: &[(u64, u64, Unit)] = &[
        (1, 50, Unit::Millisecond),
        (1, 5000, Unit::Millisecond),
        (1, 90, Unit::Second),
        (1, 30, Unit::Minute),
        (1, 3, Unit::Hour),
        (1, 1, Unit::Day),
    ];
    loop {
        let (lo, hi, unit) = rng.pick(choices);
        if seconds_only && unit == Unit::Millisecond {
            continue;
        }
        let multiple = rng.range(lo, hi);
        return Rate::new(limit, multiple, unit).unwrap();
    }
}

fn random_limit(rng: &mut Rng, max: u64) -> u64 {
    if rng.chance(50) {
        rng.range(1, 10.min(max))
    } else {
        rng.range(1, max)
    }
}

/// The next time: mostly forward at about the refill pace, sometimes far, sometimes back.
fn step(rng: &mut Rng, t: u64, period_us: u64, limit: u64, grid: u64) -> u64 {
    let pace = (period_us / limit).max(1);
    let next = match rng.next() % 100 {
        0..=39 => t + rng.range(0, 2 * pace),
        40..=54 => t,
        55..=79 => t + rng.range(0, period_us),
        80..=89 => t + rng.range(0, 3 * period_us),
        _ => t.saturating_sub(rng.range(0, period_us / 2 + 1)),
    };
    (next.min(MAX_TIME) / grid) * grid
}

fn random_op(rng: &mut Rng, capacity: u64) -> (Op, u64) {
    let op = match rng.next() % 100 {
        0..=69 => Op::Check,
        70..=84 => Op::Peek,
        _ => Op::Refund,
    };
    let cost = match rng.next() % 100 {
        0..=59 => 1,
        60..=89 => rng.range(1, capacity),
        90..=95 => capacity + rng.range(1, 3),
        _ => 0,
    };
    (op, cost)
}

/// The core's keyed store (what the Redis backend replaces), any algorithm.
trait Core {
    fn run(&self, key: &str, op: Op, now: u64, cost: u64) -> Result<Decision, CheckError>;
}

impl<S: KeyedState> Core for Keyed<S> {
    fn run(&self, key: &str, op: Op, now: u64, cost: u64) -> Result<Decision, CheckError> {
        match op {
            Op::Check => self.check(key, now, cost),
            Op::Peek => self.peek(key, now, cost),
            Op::Refund => self.refund(key, now, cost),
        }
    }
}

fn redis_single(
    store: &RedisStore,
    name: &str,
    algorithm: Algorithm,
    rate: Rate,
    burst: Option<u64>,
) -> RedisPolicy {
    let options = PolicyOptions {
        algorithm,
        burst,
        ..PolicyOptions::default()
    };
    let policy = Policy::new(name, &[rate], options).unwrap();
    RedisPolicy::new(store, policy, FailMode::Closed).unwrap()
}

fn run_redis(
    policy: &RedisPolicy,
    key: &str,
    op: Op,
    t: u64,
    cost: u64,
) -> Result<Outcome, CheckError> {
    let outcome = match op {
        Op::Check => policy.check_at_us(key, t, SLACK_MS, cost),
        Op::Peek => policy.peek_at_us(key, t, SLACK_MS, cost),
        Op::Refund => policy.refund_at_us(key, t, SLACK_MS, cost),
    };
    if let Ok(o) = &outcome {
        assert_eq!(
            o.source,
            Source::Redis,
            "Redis did not decide: {:?}",
            policy.store().health()
        );
    }
    outcome
}

/// A Redis decision (ns = µs × 1000) expressed in a core unit of `scale` per µs.
fn scaled(d: &Decision, scale: u64) -> Decision {
    Decision {
        retry_after: d.retry_after / 1000 * scale,
        reset_after: d.reset_after / 1000 * scale,
        ..*d
    }
}

/// Drives one algorithm's single-limit sequences.
fn single_limit(algorithm: Algorithm, extreme: bool) {
    let Some(store) = common::store() else { return };
    for seed in 0..cases() {
        let mut rng = Rng::new(seed * 7919 + algorithm as u64 * 104_729 + extreme as u64);
        let max_limit = match algorithm {
            Algorithm::SlidingLog => 300,
            _ => 1000,
        };
        let rate = loop {
            let limit = random_limit(&mut rng, max_limit);
            let rate = if extreme {
                // The longest periods the scripts allow, near the end of their time range.
                let (m, unit) = match algorithm {
                    Algorithm::SlidingWindow => (1, Unit::Year),
                    _ => (rng.range(1, 70), Unit::Year),
                };
                Rate::new(limit.min(100), m, unit).unwrap()
            } else {
                random_rate(&mut rng, limit, false)
            };
            // The core runs the sliding window counter in µs here, and its packed window
            // index needs a period of at least 2^(2·bits(limit)) of its units: rates it would
            // refuse in those units are drawn again.
            let bits = 64 - rate.limit().leading_zeros();
            if algorithm != Algorithm::SlidingWindow || rate.period() / 1000 >= 1 << (2 * bits) {
                break rate;
            }
        };
        let limit = rate.limit();
        let period_us = rate.period() / 1000;
        let burst = (algorithm == Algorithm::TokenBucket && rng.chance(50))
            .then(|| random_limit(&mut rng, 1000));
        let burst = burst.filter(|b| b * period_us.div_ceil(limit) <= 1 << 51);
        // Core units per µs: the fixed window's packing quantum vanishes at 2^bits(limit).
        let scale = match algorithm {
            Algorithm::FixedWindow | Algorithm::FixedWindowAligned => {
                1u64 << (64 - limit.leading_zeros())
            }
            _ => 1,
        };
        let quota = Quota::new(limit, period_us * scale).unwrap();
        let opts = KeyedOptions::default();
        let core: Box<dyn Core> = match algorithm {
            Algorithm::TokenBucket => Box::new(
                Keyed::new(
                    TokenBucketRule::with_burst(quota, burst.unwrap_or(limit)).unwrap(),
                    opts,
                )
                .unwrap(),
            ),
            Algorithm::FixedWindow => {
                Box::new(Keyed::new(FixedWindowRule::new(quota).unwrap(), opts).unwrap())
            }
            Algorithm::FixedWindowAligned => {
                Box::new(Keyed::new(FixedWindowRule::aligned(quota).unwrap(), opts).unwrap())
            }
            Algorithm::SlidingWindow => {
                Box::new(Keyed::new(SlidingWindowRule::new(quota).unwrap(), opts).unwrap())
            }
            Algorithm::SlidingLog => {
                Box::new(Keyed::new(KeyedLog::new(quota).unwrap(), opts).unwrap())
            }
            _ => unreachable!(),
        };
        let capacity = burst.unwrap_or(limit);
        let name = common::unique(&format!("eq-{algorithm}"));
        let redis = redis_single(&store, &name, algorithm, rate, burst);
        let key = format!("client-{seed}");
        let mut t = if extreme {
            MAX_TIME - rng.range(0, 4 * period_us.min(MAX_TIME / 8))
        } else {
            rng.range(1_000_000_000, 1 << 51)
        };
        let mut history = Vec::new();
        let steps = if extreme { 60 } else { 150 };
        for i in 0..steps {
            t = step(&mut rng, t, period_us, limit, 1);
            let (op, cost) = random_op(&mut rng, capacity);
            history.push(format!("{i}: {op:?} t={t} cost={cost}"));
            let expected = core.run(&key, op, t * scale, cost);
            let got = run_redis(&redis, &key, op, t, cost)
                .map(|o| scaled(&o.decision.limits()[0], scale));
            if got != expected {
                panic!(
                    "{algorithm} (limit {limit}, period {period_us} µs, burst {burst:?}, extreme \
                     {extreme}) seed {seed}:\n  core  {expected:?}\n  redis {got:?}\nsteps:\n{}",
                    history[history.len().saturating_sub(25)..].join("\n")
                );
            }
        }
    }
}

#[test]
fn token_bucket_matches_core() {
    single_limit(Algorithm::TokenBucket, false);
}

#[test]
fn fixed_window_matches_core() {
    single_limit(Algorithm::FixedWindow, false);
}

#[test]
fn fixed_window_aligned_matches_core() {
    single_limit(Algorithm::FixedWindowAligned, false);
}

#[test]
fn sliding_window_matches_core() {
    single_limit(Algorithm::SlidingWindow, false);
}

#[test]
fn sliding_log_matches_core() {
    single_limit(Algorithm::SlidingLog, false);
}

#[test]
fn extreme_times_and_periods_match_core() {
    for algorithm in Algorithm::ALL {
        single_limit(algorithm, true);
    }
}

/// Several limits, all or nothing: the script against the core `Policy` in nanoseconds.
fn policy_limits(algorithm: Algorithm) {
    let Some(store) = common::store() else { return };
    // Token bucket: limits that divide the period in µs make ns and µs intervals agree.
    const DIVISORS: [u64; 12] = [1, 2, 4, 5, 8, 10, 16, 20, 25, 40, 50, 100];
    for seed in 0..cases() {
        let mut rng = Rng::new(seed * 31 + algorithm as u64 * 1009 + 5);
        let n = rng.range(2, 3) as usize;
        let fixed = matches!(
            algorithm,
            Algorithm::FixedWindow | Algorithm::FixedWindowAligned
        );
        let rates: Vec<Rate> = (0..n)
            .map(|_| match algorithm {
                Algorithm::TokenBucket => {
                    Rate::new(rng.pick(&DIVISORS), rng.range(1, 120), Unit::Second).unwrap()
                }
                // Whole seconds and times on a 64 µs grid keep the core's 2^9 ns quantum exact.
                _ if fixed => {
                    let limit = random_limit(&mut rng, 511);
                    random_rate(&mut rng, limit, true)
                }
                _ => {
                    let limit = random_limit(&mut rng, 200);
                    random_rate(&mut rng, limit, false)
                }
            })
            .collect();
        let grid = if fixed { 64 } else { 1 };
        let options = PolicyOptions {
            algorithm,
            ..PolicyOptions::default()
        };
        let name = common::unique(&format!("eqp-{algorithm}"));
        let core = Policy::new(&name, &rates, options).unwrap();
        let redis = RedisPolicy::new(
            &store,
            Policy::new(&name, &rates, options).unwrap(),
            FailMode::Closed,
        )
        .unwrap();
        let capacity = rates.iter().map(|r| r.limit()).min().unwrap();
        let shortest = rates.iter().map(|r| r.period() / 1000).min().unwrap();
        let key = format!("client-{seed}");
        let mut t = rng.range(1_000_000_000, 1 << 51) / grid * grid;
        let mut history = Vec::new();
        for i in 0..150 {
            t = step(&mut rng, t, shortest, capacity, grid);
            let (op, cost) = random_op(&mut rng, capacity);
            history.push(format!("{i}: {op:?} t={t} cost={cost}"));
            let now = t * 1000;
            let expected = match op {
                Op::Check => core.check_at(&key, now, cost),
                Op::Peek => core.peek_at(&key, now, cost),
                Op::Refund => core.refund_at(&key, now, cost),
            };
            let got = run_redis(&redis, &key, op, t, cost);
            let same = match (&expected, &got) {
                (Err(a), Err(b)) => a == b,
                (Ok(a), Ok(b)) => {
                    let each = a.limits().len() == b.decision.limits().len()
                        && a.limits().iter().zip(b.decision.limits()).all(|(c, r)| {
                            let retry_ok = if algorithm == Algorithm::SlidingWindow {
                                r.retry_after == c.retry_after.div_ceil(1000) * 1000
                            } else {
                                r.retry_after == c.retry_after
                            };
                            c.allowed == r.allowed
                                && c.limit == r.limit
                                && c.remaining == r.remaining
                                && retry_ok
                                && c.reset_after == r.reset_after
                        });
                    let combined = a.allowed() == b.decision.allowed()
                        && (algorithm == Algorithm::SlidingWindow
                            || a.most_restrictive() == b.decision.most_restrictive());
                    each && combined
                }
                _ => false,
            };
            if !same {
                panic!(
                    "{algorithm} policy {:?} seed {seed}:\n  core  {expected:?}\n  redis {got:?}\nsteps:\n{}",
                    rates.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    history[history.len().saturating_sub(25)..].join("\n")
                );
            }
        }
    }
}

#[test]
fn token_bucket_policy_matches_core() {
    policy_limits(Algorithm::TokenBucket);
}

#[test]
fn fixed_window_policy_matches_core() {
    policy_limits(Algorithm::FixedWindow);
}

#[test]
fn fixed_window_aligned_policy_matches_core() {
    policy_limits(Algorithm::FixedWindowAligned);
}

#[test]
fn sliding_window_policy_matches_core() {
    policy_limits(Algorithm::SlidingWindow);
}

#[test]
fn sliding_log_policy_matches_core() {
    policy_limits(Algorithm::SlidingLog);
}
