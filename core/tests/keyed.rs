//! The keyed limiter behaves exactly like a map of independent single-subject limiters, stays
//! within its key bound, and never over-admits under concurrency.

use std::collections::HashMap;

use proptest::prelude::*;
use ratewall::keyed::{Keyed, KeyedLog, KeyedOptions, KeyedState, Overflow};
use ratewall::time::SECOND;
use ratewall::{
    Decision, FixedWindow, FixedWindowRule, Quota, RateLimiter, SlidingLog, SlidingWindow,
    SlidingWindowRule, TokenBucket, TokenBucketRule,
};

#[derive(Clone, Debug)]
enum Op {
    Check(u8, u64),
    CheckMut(u8, u64),
    Peek(u8, u64),
    Refund(u8, u64),
    Reset(u8),
    Reclaim,
}

fn op() -> impl Strategy<Value = (u64, Op)> {
    let key = 0u8..6;
    let cost = 0u64..5;
    let op = prop_oneof![
        4 => (key.clone(), cost.clone()).prop_map(|(k, c)| Op::Check(k, c)),
        3 => (key.clone(), cost.clone()).prop_map(|(k, c)| Op::CheckMut(k, c)),
        2 => (key.clone(), cost.clone()).prop_map(|(k, c)| Op::Peek(k, c)),
        1 => (key.clone(), cost).prop_map(|(k, c)| Op::Refund(k, c)),
        1 => key.prop_map(Op::Reset),
        1 => Just(Op::Reclaim),
    ];
    (0u64..SECOND / 2, op)
}

/// Runs `ops` through a keyed limiter and through one single-subject limiter per key.
fn same_as_independent<S: KeyedState, L: RateLimiter>(
    mut keyed: Keyed<S>,
    single: impl Fn() -> L,
    ops: Vec<(u64, Op)>,
) -> Result<(), TestCaseError> {
    let mut reference: HashMap<u8, L> = HashMap::new();
    let mut now = 0u64;
    for (step, op) in ops {
        now += step;
        let key = |k: u8| format!("user:{k}");
        match op {
            Op::Check(k, c) | Op::CheckMut(k, c) => {
                let want = reference.entry(k).or_insert_with(&single).check(now, c);
                let got = if matches!(op, Op::CheckMut(..)) {
                    keyed.check_mut(key(k), now, c)
                } else {
                    keyed.check(key(k), now, c)
                };
                prop_assert_eq!(got, want, "{:?} at {}", op, now);
            }
            Op::Peek(k, c) => {
                let want = reference.entry(k).or_insert_with(&single).peek(now, c);
                prop_assert_eq!(keyed.peek(key(k), now, c), want, "peek {} at {}", k, now);
            }
            Op::Refund(k, c) => {
                let want = reference.entry(k).or_insert_with(&single).refund(now, c);
                prop_assert_eq!(
                    keyed.refund(key(k), now, c),
                    want,
                    "refund {} at {}",
                    k,
                    now
                );
            }
            Op::Reset(k) => {
                reference.entry(k).or_insert_with(&single).reset();
                keyed.reset(key(k));
            }
            Op::Reclaim => {
                keyed.reclaim(now);
            }
        }
    }
    Ok(())
}

fn options() -> KeyedOptions {
    KeyedOptions {
        max_keys: 100,
        overflow: Overflow::DenyNewKeys,
    }
}

proptest! {
    #[test]
    fn keyed_token_bucket_is_a_map_of_buckets(limit in 1u64..5, burst in 1u64..6, ops in prop::collection::vec(op(), 1..200)) {
        let quota = Quota::per_second(limit).unwrap();
        let keyed = Keyed::new(TokenBucketRule::with_burst(quota, burst).unwrap(), options()).unwrap();
        same_as_independent(keyed, || TokenBucket::with_burst(quota, burst).unwrap(), ops)?;
    }

    #[test]
    fn keyed_fixed_window_is_a_map_of_windows(limit in 1u64..6, ops in prop::collection::vec(op(), 1..200)) {
        let quota = Quota::per_second(limit).unwrap();
        let keyed = Keyed::new(FixedWindowRule::new(quota).unwrap(), options()).unwrap();
        same_as_independent(keyed, || FixedWindow::new(quota).unwrap(), ops)?;
    }

    #[test]
    fn keyed_sliding_window_is_a_map_of_counters(limit in 1u64..6, ops in prop::collection::vec(op(), 1..200)) {
        let quota = Quota::per_second(limit).unwrap();
        let keyed = Keyed::new(SlidingWindowRule::new(quota).unwrap(), options()).unwrap();
        same_as_independent(keyed, || SlidingWindow::new(quota).unwrap(), ops)?;
    }

    #[test]
    fn keyed_sliding_log_is_a_map_of_logs(limit in 1u64..6, ops in prop::collection::vec(op(), 1..200)) {
        let quota = Quota::per_second(limit).unwrap();
        let keyed = Keyed::new(KeyedLog::new(quota).unwrap(), options()).unwrap();
        same_as_independent(keyed, || SlidingLog::new(quota).unwrap(), ops)?;
    }
}

/// Drives the same operations through a keyed limiter's shared `check` and another's exclusive
/// `check_mut`, on a table small enough that new keys must make room (sweeps, eviction or
/// denial): every decision and the number of keys kept must agree.
fn exclusive_same_as_shared<S: KeyedState>(
    make: impl Fn() -> Keyed<S>,
    ops: Vec<(u64, u8, u64)>,
) -> Result<(), TestCaseError> {
    let shared = make();
    let mut exclusive = make();
    let mut now = 0u64;
    for (step, k, cost) in ops {
        now += step;
        let key = format!("user:{k}");
        let want = shared.check(&key, now, cost);
        prop_assert_eq!(
            exclusive.check_mut(&key, now, cost),
            want,
            "key {} at {}",
            k,
            now
        );
        prop_assert_eq!(exclusive.len(), shared.len());
    }
    Ok(())
}

fn crowded(overflow: Overflow) -> KeyedOptions {
    KeyedOptions {
        max_keys: 4,
        overflow,
    }
}

fn crowd_ops() -> impl Strategy<Value = Vec<(u64, u8, u64)>> {
    prop::collection::vec((0u64..SECOND / 4, 0u8..12, 0u64..4), 1..300)
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::EvictNearestIdle),
        Just(Overflow::DenyNewKeys)
    ]
}

proptest! {
    #[test]
    fn exclusive_checks_decide_like_shared_ones_on_a_crowded_table(
        limit in 1u64..4,
        overflow in overflow(),
        algorithm in 0u8..4,
        ops in crowd_ops(),
    ) {
        let quota = Quota::per_second(limit).unwrap();
        let options = crowded(overflow);
        match algorithm {
            0 => exclusive_same_as_shared(|| Keyed::new(TokenBucketRule::new(quota).unwrap(), options).unwrap(), ops)?,
            1 => exclusive_same_as_shared(|| Keyed::new(FixedWindowRule::new(quota).unwrap(), options).unwrap(), ops)?,
            2 => exclusive_same_as_shared(|| Keyed::new(SlidingWindowRule::new(quota).unwrap(), options).unwrap(), ops)?,
            _ => exclusive_same_as_shared(|| Keyed::new(KeyedLog::new(quota).unwrap(), options).unwrap(), ops)?,
        }
    }
}

#[test]
fn zero_max_keys_is_an_error() {
    let rule = TokenBucketRule::new(Quota::per_second(1).unwrap()).unwrap();
    let options = KeyedOptions {
        max_keys: 0,
        ..KeyedOptions::default()
    };
    assert!(Keyed::new(rule, options).is_err());
}

#[test]
fn bad_cost_changes_nothing_and_stores_no_key() {
    let keyed = Keyed::new(
        TokenBucketRule::new(Quota::per_second(3).unwrap()).unwrap(),
        KeyedOptions::default(),
    )
    .unwrap();
    assert!(keyed.check("k", 0, 0).is_err());
    assert!(keyed.check("k", 0, 4).is_err());
    assert_eq!(keyed.len(), 0);
    assert_eq!(keyed.check("k", 0, 3).unwrap().remaining, 0);
}

#[test]
fn peek_stores_no_key_and_reclaim_drops_only_idle_keys() {
    let quota = Quota::per_second(2).unwrap();
    let keyed = Keyed::new(
        FixedWindowRule::new(quota).unwrap(),
        KeyedOptions::default(),
    )
    .unwrap();
    assert!(keyed.peek("a", 0, 1).unwrap().allowed);
    assert_eq!(keyed.len(), 0);
    keyed.check("a", 0, 2).unwrap();
    keyed.check("b", SECOND / 2, 1).unwrap();
    assert_eq!(keyed.len(), 2);
    // At 1.1 s "a"'s window has ended (idle); "b"'s runs until 1.5 s.
    assert_eq!(keyed.reclaim(SECOND + SECOND / 10), 1);
    assert_eq!(keyed.len(), 1);
    assert!(!keyed.check("b", SECOND + SECOND / 10, 2).unwrap().allowed);
    assert!(keyed.check("a", SECOND + SECOND / 10, 2).unwrap().allowed);
}

/// Fills a small table with live keys, then floods it: returns the victim's decision afterwards.
fn flood_small_table(overflow: Overflow) -> (Keyed<FixedWindowRule>, Decision) {
    // A login counter: 5 attempts per 15 minutes.
    let quota = Quota::new(5, 15 * 60 * SECOND).unwrap();
    let options = KeyedOptions {
        max_keys: 64,
        overflow,
    };
    let keyed = Keyed::new(FixedWindowRule::new(quota).unwrap(), options).unwrap();
    for _ in 0..5 {
        assert!(keyed.check("victim@example.com", 0, 1).unwrap().allowed);
    }
    for n in 0..10_000u64 {
        let _ = keyed.check(format!("flood:{n}"), SECOND + n, 1).unwrap();
        assert!(keyed.len() <= keyed.max_keys());
    }
    let victim = keyed.check("victim@example.com", 2 * SECOND, 1).unwrap();
    (keyed, victim)
}

#[test]
fn deny_new_keys_keeps_the_victims_counter_and_denies_the_flood() {
    let (keyed, victim) = flood_small_table(Overflow::DenyNewKeys);
    assert!(
        !victim.allowed,
        "the flood must not reset the victim's counter"
    );
    let newcomer = keyed.check("newcomer", 3 * SECOND, 1).unwrap();
    assert!(!newcomer.allowed);
    assert!(newcomer.retry_after > 0);
}

#[test]
fn evict_nearest_idle_admits_new_keys_within_the_bound() {
    let (keyed, _victim) = flood_small_table(Overflow::EvictNearestIdle);
    assert!(keyed.check("newcomer", 3 * SECOND, 1).unwrap().allowed);
    assert!(keyed.len() <= keyed.max_keys());
}

#[test]
fn full_table_recovers_when_keys_become_idle() {
    let quota = Quota::per_second(1).unwrap();
    let options = KeyedOptions {
        max_keys: 32,
        overflow: Overflow::DenyNewKeys,
    };
    let keyed = Keyed::new(TokenBucketRule::new(quota).unwrap(), options).unwrap();
    for n in 0..32 {
        assert!(keyed.check(format!("k{n}"), 0, 1).unwrap().allowed);
    }
    let denied = keyed.check("late", 0, 1).unwrap();
    assert!(!denied.allowed);
    assert_eq!(
        denied.retry_after, SECOND,
        "the first key is idle after one interval"
    );
    assert!(keyed.check("late", SECOND, 1).unwrap().allowed);
}

#[test]
fn hot_and_cold_keys_under_threads_never_over_admit() {
    // Frozen clock: each key admits exactly its burst, whatever the interleaving.
    let quota = Quota::per_second(10).unwrap();
    let keyed = Keyed::new(
        TokenBucketRule::new(quota).unwrap(),
        KeyedOptions::default(),
    )
    .unwrap();
    let attempts = if cfg!(debug_assertions) {
        200_000
    } else {
        2_000_000
    };
    let admitted: Vec<HashMap<u64, u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let keyed = &keyed;
                s.spawn(move || {
                    let mut admitted = HashMap::new();
                    for i in 0..attempts as u64 {
                        // Half the attempts hit 4 hot keys, the rest spread over 5000 cold keys.
                        let key = if i % 2 == 0 {
                            (i / 2) % 4
                        } else {
                            100 + (i * 7 + t) % 5000
                        };
                        if keyed.check(key.to_le_bytes(), 0, 1).unwrap().allowed {
                            *admitted.entry(key).or_default() += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut total: HashMap<u64, u64> = HashMap::new();
    for map in admitted {
        for (k, n) in map {
            *total.entry(k).or_default() += n;
        }
    }
    for hot in 0..4 {
        assert_eq!(total[&hot], 10, "hot key {hot}");
    }
    assert_eq!(total.len(), 4 + 5000);
    assert!(total.values().all(|&n| n == 10));
}

#[test]
fn sliding_log_keys_are_freed_on_reclaim_and_drop() {
    let quota = Quota::per_second(3).unwrap();
    let keyed = Keyed::new(KeyedLog::new(quota).unwrap(), KeyedOptions::default()).unwrap();
    for n in 0..1000 {
        keyed.check(format!("k{n}"), 0, 2).unwrap();
    }
    assert_eq!(keyed.reclaim(SECOND - 1), 0);
    assert_eq!(keyed.reclaim(SECOND), 1000);
    assert!(keyed.is_empty());
}

#[test]
fn exactly_max_keys_fit_whatever_the_shard_spread() {
    for max_keys in [1, 7, 1000, 100_000] {
        let options = KeyedOptions {
            max_keys,
            overflow: Overflow::DenyNewKeys,
        };
        let keyed = Keyed::new(
            TokenBucketRule::new(Quota::per_second(1).unwrap()).unwrap(),
            options,
        )
        .unwrap();
        for n in 0..max_keys {
            assert!(
                keyed.check(format!("k{n}"), 0, 1).unwrap().allowed,
                "key {n} of {max_keys}"
            );
        }
        assert_eq!(keyed.len(), max_keys);
        assert!(!keyed.check("one-too-many", 0, 1).unwrap().allowed);
        assert_eq!(keyed.len(), max_keys);
    }
}
