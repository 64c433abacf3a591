//! Keyed checks over 1 000 000 live string keys (`user:<n>`) hit in random order, ratewall's
//! keyed limiter for every algorithm against governor's keyed (DashMap) limiter with the same
//! keys and quota in the same run; plus the cost of parsing rate strings and of policy checks.
//!
//! Every key is checked once before measuring, so the tables hold 1 000 000 live keys; the quota
//! (1 000 000 per second per key, time advancing 1 µs per check) keeps every check on the allow
//! path, the hot path of a busy API.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use governor::clock::FakeRelativeClock;
use ratewall::keyed::{Keyed, KeyedLog, KeyedOptions, KeyedState};
use ratewall::policy::{Policy, PolicyOptions};
use ratewall::rate::parse_rates;
use ratewall::{FixedWindowRule, Quota, SlidingWindowRule, TokenBucketRule};

const KEYS: usize = 1_000_000;
const PER_SECOND: u64 = 1_000_000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|n| format!("user:{n}")).collect()
}

/// A fixed pseudo-random visiting order (xorshift), the same for every subject.
fn order() -> Vec<u32> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..KEYS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % KEYS as u64) as u32
        })
        .collect()
}

fn ratewall_keyed<S: KeyedState>(state: S, keys: &[String]) -> Keyed<S> {
    let options = KeyedOptions {
        max_keys: 2 * KEYS,
        ..KeyedOptions::default()
    };
    let keyed = Keyed::new(state, options).unwrap();
    for key in keys {
        keyed.check(key, 0, 1).unwrap();
    }
    keyed
}

fn bench_ratewall<S: KeyedState>(
    c: &mut Criterion,
    name: &str,
    state: S,
    keys: &[String],
    order: &[u32],
) {
    let keyed = ratewall_keyed(state, keys);
    c.bench_with_input(BenchmarkId::new("keyed_1m", name), &(), |b, _| {
        let mut i = 0usize;
        let mut now = 1_000u64;
        b.iter(|| {
            let key = &keys[order[i % KEYS] as usize];
            i += 1;
            now += 1_000;
            black_box(keyed.check(black_box(key), now, 1).unwrap())
        })
    });
}

fn bench_governor(c: &mut Criterion, keys: &[String], order: &[u32]) {
    let quota = governor::Quota::per_second(NonZeroU32::new(PER_SECOND as u32).unwrap());
    let clock = FakeRelativeClock::default();
    let limiter = governor::RateLimiter::dashmap_with_clock(quota, clock.clone());
    for key in keys {
        let _ = limiter.check_key(key);
    }
    c.bench_with_input(BenchmarkId::new("keyed_1m", "governor"), &(), |b, _| {
        let mut i = 0usize;
        b.iter(|| {
            let key = &keys[order[i % KEYS] as usize];
            i += 1;
            clock.advance(Duration::from_micros(1));
            black_box(limiter.check_key(black_box(key)).is_ok())
        })
    });
}

fn keyed(c: &mut Criterion) {
    let keys = keys();
    let order = order();
    let quota = Quota::per_second(PER_SECOND).unwrap();
    bench_governor(c, &keys, &order);
    bench_ratewall(
        c,
        "token_bucket",
        TokenBucketRule::new(quota).unwrap(),
        &keys,
        &order,
    );
    bench_ratewall(
        c,
        "fixed_window",
        FixedWindowRule::new(quota).unwrap(),
        &keys,
        &order,
    );
    // The sliding window counter counts at most 2^20 - 1 per window.
    let swc = Quota::per_second(1 << 19).unwrap();
    bench_ratewall(
        c,
        "sliding_window",
        SlidingWindowRule::new(swc).unwrap(),
        &keys,
        &order,
    );
    // A sliding log holds `limit` slots per key: 1 000 000 keys × 16 slots.
    let log = KeyedLog::new(Quota::per_second(16).unwrap()).unwrap();
    let keyed_log = ratewall_keyed(log, &keys);
    c.bench_with_input(BenchmarkId::new("keyed_1m", "sliding_log"), &(), |b, _| {
        let mut i = 0usize;
        let mut now = 1_000_000_000u64;
        b.iter(|| {
            let key = &keys[order[i % KEYS] as usize];
            i += 1;
            now += 1_000;
            black_box(keyed_log.check(black_box(key), now, 1).unwrap())
        })
    });
}

fn parsing(c: &mut Criterion) {
    for text in [
        "10/second",
        "5 per 10 minutes",
        "10/second; 1000/day; 50000/month",
    ] {
        c.bench_with_input(BenchmarkId::new("parse_rates", text), &text, |b, text| {
            b.iter(|| black_box(parse_rates(black_box(text)).unwrap()))
        });
    }
}

fn policies(c: &mut Criterion) {
    for rates in ["100/second", "100/second; 10000/day"] {
        let policy = Policy::parse("api", rates, PolicyOptions::default()).unwrap();
        c.bench_with_input(
            BenchmarkId::new("policy_check", rates),
            &policy,
            |b, policy| {
                // Spaced 20 ms apart: every limit keeps admitting.
                let mut now = 0u64;
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        now += 20_000_000;
                        black_box(policy.check_at(black_box("user:42"), now, 1).unwrap());
                    }
                    start.elapsed()
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = keyed, parsing, policies
}
criterion_main!(benches);
