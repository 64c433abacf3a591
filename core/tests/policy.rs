//! Policies: all limits together, all or nothing.

use proptest::prelude::*;
use ratewall::policy::{Algorithm, Policy, PolicyError, PolicyOptions};
use ratewall::time::SECOND;
use ratewall::{
    CheckError, Decision, FixedWindow, Quota, RateLimiter, SlidingLog, SlidingWindow, TokenBucket,
};

fn single(algorithm: Algorithm, quota: Quota) -> Box<dyn RateLimiter> {
    match algorithm {
        Algorithm::TokenBucket => Box::new(TokenBucket::new(quota).unwrap()),
        Algorithm::FixedWindow => Box::new(FixedWindow::new(quota).unwrap()),
        Algorithm::FixedWindowAligned => Box::new(FixedWindow::aligned(quota).unwrap()),
        Algorithm::SlidingWindow => Box::new(SlidingWindow::new(quota).unwrap()),
        Algorithm::SlidingLog => Box::new(SlidingLog::new(quota).unwrap()),
        _ => unreachable!(),
    }
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop::sample::select(Algorithm::ALL.to_vec())
}

proptest! {
    /// A two-limit policy decides like its two limits peeked together, takes from both only when
    /// both admit, and a denial leaves every limit as it was.
    #[test]
    fn all_or_nothing(
        algorithm in algorithm(),
        fast in 1u64..5,
        slow in 2u64..9,
        ops in prop::collection::vec((0u64..SECOND / 3, 1u64..3, any::<bool>()), 1..150),
    ) {
        let rates = format!("{fast}/second; {slow}/5seconds");
        let options = PolicyOptions { algorithm, ..PolicyOptions::default() };
        let policy = Policy::parse("api", &rates, options).unwrap();
        let limits = [
            single(algorithm, Quota::new(fast, SECOND).unwrap()),
            single(algorithm, Quota::new(slow, 5 * SECOND).unwrap()),
        ];
        let mut now = 0;
        for (step, cost, refund) in ops {
            now += step;
            let before = policy.peek_at("k", now, 1).map(|d| d.limits().to_vec());
            let got = policy.check_at("k", now, cost);
            let peeks: Result<Vec<Decision>, CheckError> =
                limits.iter().map(|l| l.peek(now, cost)).collect();
            match (got, peeks) {
                (Err(e), Err(want)) => prop_assert_eq!(e, want),
                (Ok(got), Ok(peeks)) => {
                    if peeks.iter().all(|d| d.allowed) {
                        let taken: Vec<Decision> =
                            limits.iter().map(|l| l.check(now, cost).unwrap()).collect();
                        prop_assert!(got.allowed());
                        prop_assert_eq!(got.limits(), &taken[..]);
                    } else {
                        prop_assert!(!got.allowed());
                        prop_assert_eq!(got.limits(), &peeks[..]);
                        let after = policy.peek_at("k", now, 1).map(|d| d.limits().to_vec());
                        prop_assert_eq!(before, after, "a denial changed state");
                    }
                }
                (got, want) => prop_assert!(false, "{:?} vs {:?}", got, want),
            }
            if refund && got.map(|d| d.allowed()).unwrap_or(false) {
                let after = policy.refund_at("k", now, cost).unwrap();
                let want: Vec<Decision> = limits.iter().map(|l| l.refund(now, cost).unwrap()).collect();
                prop_assert_eq!(after.limits(), &want[..]);
            }
        }
    }
}

#[test]
fn most_restrictive_is_the_longest_wait_or_the_fewest_left() {
    let policy = Policy::parse(
        "api",
        "3/second; 4/minute",
        PolicyOptions {
            algorithm: Algorithm::FixedWindow,
            ..PolicyOptions::default()
        },
    )
    .unwrap();
    let first = policy.check_at("k", 0, 2).unwrap();
    assert_eq!(first.most_restrictive(), 0); // 1 left of 3/s, 2 left of 4/min
    assert_eq!(first.decision().remaining, 1);
    policy.check_at("k", 0, 1).unwrap();
    let later = policy.check_at("k", SECOND, 1).unwrap();
    assert!(later.allowed());
    assert_eq!(later.most_restrictive(), 1);
    assert_eq!(later.decision().remaining, 0);
    let denied = policy.check_at("k", 2 * SECOND, 1).unwrap();
    assert!(!denied.allowed());
    assert_eq!(denied.most_restrictive(), 1);
    assert!(denied.decision().retry_after > 50 * SECOND);
}

#[test]
fn cost_beyond_the_smallest_limit_is_an_error_and_changes_nothing() {
    let policy = Policy::parse("ai", "10/minute; 100/day", PolicyOptions::default()).unwrap();
    assert_eq!(
        policy.check_at("k", 0, 11).unwrap_err(),
        CheckError::InsufficientCapacity {
            cost: 11,
            capacity: 10
        }
    );
    assert_eq!(
        policy.check_at("k", 0, 0).unwrap_err(),
        CheckError::ZeroCost
    );
    assert!(policy.is_empty());
    assert_eq!(policy.check_at("k", 0, 10).unwrap().decision().remaining, 0);
}

#[test]
fn construction_errors_say_what_to_change() {
    let bad = |name: &str, rates: &str, options: PolicyOptions| {
        Policy::parse(name, rates, options).unwrap_err()
    };
    assert_eq!(
        bad("", "1/s", PolicyOptions::default()),
        PolicyError::EmptyName
    );
    assert!(matches!(
        bad("x", "1/fortnight", PolicyOptions::default()),
        PolicyError::Rate(_)
    ));
    let many = ["1/s"; 9].join(";");
    assert_eq!(
        bad("x", &many, PolicyOptions::default()),
        PolicyError::TooManyLimits(9)
    );
    let burst = PolicyOptions {
        burst: Some(5),
        ..PolicyOptions::default()
    };
    assert_eq!(
        bad("x", "1/s; 10/min", burst),
        PolicyError::BurstNotApplicable
    );
    let window_burst = PolicyOptions {
        algorithm: Algorithm::FixedWindow,
        ..burst
    };
    assert_eq!(
        bad("x", "1/s", window_burst),
        PolicyError::BurstNotApplicable
    );
    let err = bad(
        "x",
        "2000000/s",
        PolicyOptions {
            algorithm: Algorithm::SlidingWindow,
            ..PolicyOptions::default()
        },
    );
    assert!(err.to_string().contains("2000000/second"), "{err}");
}

#[test]
fn burst_sets_the_bucket_capacity() {
    let options = PolicyOptions {
        burst: Some(5),
        ..PolicyOptions::default()
    };
    let policy = Policy::parse("demo", "1/second", options).unwrap();
    for _ in 0..5 {
        assert!(policy.check_at("k", 0, 1).unwrap().allowed());
    }
    let sixth = policy.check_at("k", 0, 1).unwrap();
    assert_eq!(
        (
            sixth.allowed(),
            sixth.decision().retry_after,
            sixth.decision().limit
        ),
        (false, SECOND, 5)
    );
}

/// Four threads hammer one key with slowly advancing, slightly skewed clocks; returns the
/// admissions and the latest `now` used.
fn hammer(policy: &Policy) -> (u64, u64) {
    let attempts: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        500_000
    };
    let now = |i: u64, t: u64| (i / 100) * (SECOND / 100) + t;
    let admitted = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    (0..attempts)
                        .filter(|&i| policy.check_at("shared", now(i, t), 1).unwrap().allowed())
                        .count() as u64
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    (admitted, now(attempts - 1, 3))
}

#[test]
fn threads_never_take_more_than_the_tightest_limit() {
    // Fixed windows: all of the run lies in the first minute, so exactly 80 pass.
    let options = PolicyOptions {
        algorithm: Algorithm::FixedWindow,
        ..PolicyOptions::default()
    };
    let policy = Policy::parse("api", "50/second; 80/minute", options).unwrap();
    assert_eq!(hammer(&policy).0, 80);

    // Token buckets refill as time passes: 80 at once, then one every 60 s / 80 = 750 ms.
    let policy = Policy::parse("api", "50/second; 80/minute", PolicyOptions::default()).unwrap();
    let (admitted, last) = hammer(&policy);
    let bound = 80 + last / (750 * SECOND / 1000);
    assert!(
        (80..=bound).contains(&admitted),
        "{admitted} admitted, bound {bound}"
    );
}

#[test]
fn headers_list_every_limit_most_restrictive_first() {
    use ratewall::http::HeaderSets;
    let policy = Policy::parse(
        "api",
        "10/second; 1000/day",
        PolicyOptions {
            algorithm: Algorithm::FixedWindow,
            ..PolicyOptions::default()
        },
    )
    .unwrap();
    for _ in 0..9 {
        policy.check_at("k", 0, 1).unwrap();
    }
    let d = policy.check_at("k", 0, 1).unwrap();
    let sets: HeaderSets = "legacy, ietf".parse().unwrap();
    let headers = policy.headers(&d, &sets, Some("k"), 1_700_000_000_000);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("X-RateLimit-Limit"), Some("10"));
    assert_eq!(get("X-RateLimit-Remaining"), Some("0"));
    assert_eq!(
        get("RateLimit-Policy"),
        Some("\"api:10/second\";q=10;w=1, \"api:1000/day\";q=1000;w=86400")
    );
    assert_eq!(
        get("RateLimit"),
        Some("\"api:10/second\";r=0;t=1, \"api:1000/day\";r=990;t=86400")
    );
    assert_eq!(get("Retry-After"), None);
    let denied = policy.check_at("k", 0, 1).unwrap();
    let headers = policy.headers(&denied, &sets, Some("k"), 1_700_000_000_000);
    assert!(headers.contains(&("Retry-After", "1".to_string())));
    let single = Policy::parse("login", "5/15min", PolicyOptions::default()).unwrap();
    assert_eq!(single.limit_names(), ["login"]);
}

#[test]
fn check_one_at_and_its_exclusive_form_decide_exactly_like_check_at_for_one_limit() {
    for algorithm in [
        "token-bucket",
        "fixed-window",
        "sliding-window-counter",
        "sliding-log",
    ] {
        let options = PolicyOptions {
            algorithm: algorithm.parse().unwrap(),
            ..PolicyOptions::default()
        };
        let a = Policy::parse("a", "3/second", options).unwrap();
        let b = Policy::parse("b", "3/second", options).unwrap();
        let mut c = Policy::parse("c", "3/second", options).unwrap();
        let steps: [(u64, u64); 9] = [
            (0, 1),
            (1, 2),
            (2, 1),
            (SECOND / 2, 1),
            (SECOND, 3),
            (SECOND, 4),
            (SECOND + 1, 0),
            (3 * SECOND, 2),
            (3 * SECOND, 2),
        ];
        for (now, cost) in steps {
            let one = a.check_one_at("k", now, cost).expect("one limit");
            let full = b.check_at("k", now, cost).map(|d| d.decision());
            assert_eq!(one, full, "{algorithm} at {now} cost {cost}");
            let exclusive = c.check_one_at_mut("k", now, cost).expect("one limit");
            assert_eq!(
                exclusive, full,
                "{algorithm} exclusively at {now} cost {cost}"
            );
        }
    }
    let mut two = Policy::parse("two", "3/second; 10/minute", PolicyOptions::default()).unwrap();
    assert!(two.check_one_at("k", 0, 1).is_none());
    assert!(two.check_one_at_mut("k", 0, 1).is_none());
    assert!(
        two.peek_at("k", 0, 3).unwrap().allowed(),
        "nothing was taken"
    );
}
