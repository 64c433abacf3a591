//! Edge cases of time, cost and construction for every algorithm: `now = 0`, `now` at and near
//! `u64::MAX`, huge jumps, a clock stepping back; costs of 0 and beyond capacity (errors that
//! change nothing); every construction error; and the classic token-bucket demo.

use ratewall::time::{MILLISECOND, SECOND};
use ratewall::{
    CheckError, Decision, FixedWindow, LogSlot, Quota, QuotaError, RateLimiter, SlidingLog,
    SlidingWindow, TokenBucket, FIXED_WINDOW_MAX_LIMIT, SLIDING_WINDOW_MAX_LIMIT,
};

const MAX: u64 = u64::MAX;

type Limiter = Box<dyn RateLimiter>;

/// One limiter of each kind for `limit` permits per `period`.
fn every(limit: u64, period: u64) -> Vec<(&'static str, Limiter)> {
    let q = Quota::new(limit, period).unwrap();
    vec![
        ("token bucket", Box::new(TokenBucket::new(q).unwrap())),
        ("fixed window", Box::new(FixedWindow::new(q).unwrap())),
        (
            "aligned fixed window",
            Box::new(FixedWindow::aligned(q).unwrap()),
        ),
        ("sliding window", Box::new(SlidingWindow::new(q).unwrap())),
        ("sliding log", Box::new(SlidingLog::new(q).unwrap())),
    ]
}

fn admit(l: &dyn RateLimiter, now: u64, cost: u64) -> Decision {
    let d = l.check(now, cost).unwrap();
    assert!(d.allowed, "expected an admission at {now}: {d:?}");
    d
}

fn deny(l: &dyn RateLimiter, now: u64, cost: u64) -> Decision {
    let d = l.check(now, cost).unwrap();
    assert!(!d.allowed, "expected a denial at {now}: {d:?}");
    d
}

/// How many single permits `l` admits at `now`, trying up to `tries` times.
fn drain(l: &dyn RateLimiter, now: u64, tries: u64) -> u64 {
    (0..tries)
        .filter(|_| l.check(now, 1).unwrap().allowed)
        .count() as u64
}

/// A wait is an instant on the caller's clock or "never": it never points past the end of time.
fn wait_in_time(name: &str, now: u64, d: &Decision) {
    for wait in [d.retry_after, d.reset_after] {
        assert!(
            wait == MAX || now.checked_add(wait).is_some(),
            "{name}: wait past the end of time at {now}: {d:?}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The classic demo
// ------------------------------------------------------------------------------------------------

#[test]
fn token_bucket_classic_demo_capacity_5_refilling_1_per_second() {
    let bucket = TokenBucket::with_burst(Quota::per_second(1).unwrap(), 5).unwrap();
    for left in (0..5).rev() {
        let d = admit(&bucket, 0, 1);
        assert_eq!((d.limit, d.remaining), (5, left));
    }
    let sixth = deny(&bucket, 0, 1);
    assert_eq!(
        sixth.retry_after, SECOND,
        "the sixth waits exactly one second"
    );
    assert_eq!((sixth.remaining, sixth.reset_after), (0, 5 * SECOND));
    // One nanosecond early is still too early.
    assert_eq!(deny(&bucket, SECOND - 1, 1).retry_after, 1);
    let seventh = admit(&bucket, SECOND, 1);
    assert_eq!((seventh.remaining, seventh.reset_after), (0, 5 * SECOND));
    assert_eq!(deny(&bucket, SECOND, 1).retry_after, SECOND);
    // After five idle seconds the bucket is full again, and not fuller.
    assert_eq!(drain(&bucket, 6 * SECOND, 10), 5);
}

// ------------------------------------------------------------------------------------------------
// Time zero
// ------------------------------------------------------------------------------------------------

#[test]
fn every_algorithm_works_at_time_zero() {
    // 3 per second; the expected wait after three permits at t = 0.
    let waits = [
        ("token bucket", 333_333_334),            // T = ceil(1 s / 3)
        ("fixed window", SECOND),                 // the window opened at 0
        ("aligned fixed window", SECOND),         // [0, 1 s)
        ("sliding window", SECOND + 333_333_334), // 3·(1 s - e)/1 s + 1 <= 3 at e = 1/3 s
        ("sliding log", SECOND),                  // the entries of t = 0 expire at 1 s
    ];
    for ((name, l), (expected_name, wait)) in every(3, SECOND).into_iter().zip(waits) {
        assert_eq!(name, expected_name);
        let first = admit(&*l, 0, 1);
        assert_eq!(
            (first.limit, first.remaining, first.retry_after),
            (3, 2, 0),
            "{name}"
        );
        let peeked = l.peek(0, 3).unwrap();
        assert!(!peeked.allowed, "{name}: {peeked:?}");
        admit(&*l, 0, 2);
        let d = deny(&*l, 0, 1);
        assert_eq!((d.remaining, d.retry_after), (0, wait), "{name}: {d:?}");
        // The wait is exact: one nanosecond before it, still denied; at it, admitted.
        deny(&*l, wait - 1, 1);
        admit(&*l, wait, 1);
    }
}

// ------------------------------------------------------------------------------------------------
// The end of time
// ------------------------------------------------------------------------------------------------

#[test]
fn at_the_last_instant_nothing_panics_wraps_or_over_admits() {
    for period in [1, 1_000, SECOND, MAX / 3, MAX] {
        for (name, l) in every(3, period.max(1 << 6)) {
            let admitted = drain(&*l, MAX, 10);
            // A token bucket cannot run its `tat` past the end of time: it admits nothing there.
            let expected = if name == "token bucket" { 0 } else { 3 };
            assert_eq!(admitted, expected, "{name}, period {period}");
            let d = deny(&*l, MAX, 1);
            assert_eq!(
                d.retry_after, MAX,
                "{name}: a denial at the last instant is final"
            );
            wait_in_time(name, MAX, &d);
            // Going back from the last instant never frees what it took.
            for back in [MAX - 1, MAX / 2, 0] {
                let d = l.check(back, 1).unwrap();
                wait_in_time(name, back, &d);
                if name != "token bucket" {
                    assert!(
                        !d.allowed,
                        "{name}: admitted at {back} after the last instant"
                    );
                }
            }
        }
    }
}

#[test]
fn near_the_end_of_time_admissions_stay_within_the_quota() {
    let period = SECOND;
    for start in [
        MAX - 3 * period,
        MAX - period,
        MAX - period / 2,
        MAX - 5,
        MAX - 1,
    ] {
        for step in [0, 1, period / 7, period] {
            for (name, l) in every(3, period) {
                let mut admitted = 0;
                let mut now = start;
                for _ in 0..40 {
                    let d = l.check(now, 1).unwrap();
                    wait_in_time(name, now, &d);
                    admitted += d.allowed as u64;
                    if !d.allowed && d.retry_after != MAX {
                        // Where it says to come back, it must be admitted (nothing else happens).
                        let at = now + d.retry_after;
                        assert!(l.peek(at, 1).unwrap().allowed, "{name}: retry at {at}");
                    }
                    now = now.saturating_add(step);
                }
                // The span covered is at most 3 periods: at most limit per period plus one
                // window's worth (fixed window boundary burst) or burst.
                let span = now - start;
                let bound = 3 * (span / period + 2);
                assert!(
                    admitted <= bound,
                    "{name}: {admitted} > {bound} from {start} by {step}"
                );
            }
        }
    }
}

#[test]
fn token_bucket_runs_its_tat_up_to_the_last_instant_exactly() {
    let bucket = TokenBucket::new(Quota::new(1, 10).unwrap()).unwrap();
    admit(&bucket, MAX - 10, 1); // tat = u64::MAX exactly
    assert_eq!(bucket.state(), MAX);
    for now in [MAX - 10, MAX - 1, MAX] {
        let d = deny(&bucket, now, 1);
        assert_eq!(d.retry_after, MAX, "at {now}: never, not 'in 10 ns': {d:?}");
    }
    // A stepped-back clock does not find room either.
    let d = deny(&bucket, MAX - 15, 1);
    assert_eq!(d.retry_after, MAX);
}

// ------------------------------------------------------------------------------------------------
// Huge jumps
// ------------------------------------------------------------------------------------------------

#[test]
fn huge_jumps_forward_find_a_fresh_quota() {
    for (name, l) in every(2, SECOND) {
        assert_eq!(drain(&*l, 0, 5), 2, "{name}");
        for now in [MAX / 2, MAX / 2 + 10 * SECOND, MAX - 4 * SECOND] {
            let d = admit(&*l, now, 2);
            assert_eq!(d.remaining, 0, "{name} at {now}");
            let d = deny(&*l, now, 1);
            wait_in_time(name, now, &d);
            assert!(d.retry_after <= 2 * SECOND, "{name} at {now}: {d:?}");
        }
    }
}

#[test]
fn sliding_window_counter_knows_its_window_across_any_jump() {
    // The window index is stored whole (the quota guarantees it fits), so no jump, however
    // large, is mistaken for another. Proptest found the case that used to over-admit: a clock
    // stepping back by more than half of a cut index looked like one moving forward.
    let l = SlidingWindow::new(Quota::new(1, 6).unwrap()).unwrap();
    admit(&l, 0, 1);
    let far = 13_835_058_055_282_163_718; // window 2^61 + 1
    admit(&l, far, 1);
    // Back to window 0: decided at the start of the stored window, where its permit counts.
    let d = l.check(5, 1).unwrap();
    assert!(!d.allowed, "{d:?}");
    wait_in_time("sliding window", 5, &d);
    // The largest limit, at its shortest period: the last window of the clock, and back.
    let limit = SLIDING_WINDOW_MAX_LIMIT;
    let period = 1 << 40;
    let l = SlidingWindow::new(Quota::new(limit, period).unwrap()).unwrap();
    admit(&l, 0, limit);
    for now in [period - 1, u64::MAX / period * period - 1, u64::MAX] {
        let d = l.peek(now, 1).unwrap();
        wait_in_time("sliding window", now, &d);
    }
    // A jump to the very last window finds it fresh; then the clock steps back to 0 and the
    // full last window decides.
    admit(&l, u64::MAX, limit);
    let d = l.check(0, 1).unwrap();
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.retry_after, u64::MAX, "its window never ends: {d:?}");
}

// ------------------------------------------------------------------------------------------------
// The clock stepping back
// ------------------------------------------------------------------------------------------------

#[test]
fn a_clock_stepping_back_never_admits_beyond_the_quota() {
    let t0 = 10 * SECOND;
    for taken in 1..=3 {
        for (name, l) in every(3, SECOND) {
            admit(&*l, t0, taken);
            let mut admitted = taken;
            for back in [1, 2, SECOND / 3, SECOND / 2, SECOND - 1] {
                admitted += drain(&*l, t0 - back, 3);
                admitted += drain(&*l, t0, 3);
            }
            assert!(
                admitted <= 3,
                "{name}: {admitted} admitted within one period"
            );
            if taken == 3 {
                assert_eq!(admitted, 3, "{name}");
            }
            // Further back still: nothing more either.
            for back in [SECOND, 5 * SECOND, t0] {
                assert!(
                    !l.check(t0 - back, 1).unwrap().allowed,
                    "{name} at {}",
                    t0 - back
                );
            }
            // Two periods on, everything is fresh again, and exactly the quota.
            assert_eq!(drain(&*l, t0 + 2 * SECOND, 10), 3, "{name}");
        }
    }
}

#[test]
fn a_clock_stepping_back_changes_no_state_when_denied() {
    let t0 = 10 * SECOND;
    let twins = every(3, SECOND).into_iter().zip(every(3, SECOND));
    for ((name, l), (_, twin)) in twins {
        admit(&*l, t0, 3);
        admit(&*twin, t0, 3);
        for back in [1, SECOND / 2, SECOND, t0] {
            let d = l.check(t0 - back, 1).unwrap();
            assert!(!d.allowed, "{name}");
            wait_in_time(name, t0 - back, &d);
            l.peek(t0 - back, 2).unwrap();
        }
        for later in [
            t0,
            t0 + SECOND / 3,
            t0 + SECOND,
            t0 + SECOND + 1,
            t0 + 3 * SECOND,
        ] {
            assert_eq!(l.check(later, 1), twin.check(later, 1), "{name} at {later}");
        }
    }
}

#[test]
fn sliding_log_refund_then_older_now_still_counts_the_overwritten_entry() {
    // limit 1 per 10 ns: admitted at 0 (counts until 10), then at 10 (overwriting the first
    // entry's slot), refunded at 15. A check at 5 must still count the entry of 0.
    let log = SlidingLog::new(Quota::new(1, 10).unwrap()).unwrap();
    admit(&log, 0, 1);
    admit(&log, 10, 1);
    log.refund(15, 1).unwrap();
    deny(&log, 5, 1);
    // From the refund's time on, the slot is free again.
    admit(&log, 15, 1);
}

// ------------------------------------------------------------------------------------------------
// Costs
// ------------------------------------------------------------------------------------------------

#[test]
fn zero_and_oversized_costs_are_errors_that_change_nothing() {
    let twins = every(3, SECOND).into_iter().zip(every(3, SECOND));
    for ((name, l), (_, twin)) in twins {
        admit(&*l, SECOND, 1);
        admit(&*twin, SECOND, 1);
        let too_big = CheckError::InsufficientCapacity {
            cost: 4,
            capacity: 3,
        };
        let huge = CheckError::InsufficientCapacity {
            cost: MAX,
            capacity: 3,
        };
        // At the same instant, later (where a window would roll), earlier, and at the ends.
        for now in [SECOND, SECOND + SECOND / 2, 5 * SECOND, SECOND - 1, 0, MAX] {
            assert_eq!(l.check(now, 0), Err(CheckError::ZeroCost), "{name}");
            assert_eq!(l.peek(now, 0), Err(CheckError::ZeroCost), "{name}");
            assert_eq!(l.refund(now, 0), Err(CheckError::ZeroCost), "{name}");
            assert_eq!(l.check(now, 4), Err(too_big), "{name}");
            assert_eq!(l.peek(now, 4), Err(too_big), "{name}");
            assert_eq!(l.check(now, MAX), Err(huge), "{name}");
        }
        for later in [
            SECOND,
            SECOND + 1,
            SECOND + SECOND / 2,
            2 * SECOND,
            3 * SECOND,
            9 * SECOND,
        ] {
            assert_eq!(l.peek(later, 2), twin.peek(later, 2), "{name} at {later}");
            assert_eq!(l.check(later, 1), twin.check(later, 1), "{name} at {later}");
        }
    }
}

#[test]
fn errors_change_no_word_state() {
    let q = Quota::per_second(3).unwrap();
    let bucket = TokenBucket::with_burst(q, 5).unwrap();
    let window = FixedWindow::new(q).unwrap();
    let sliding = SlidingWindow::new(q).unwrap();
    admit(&bucket, 7, 2);
    admit(&window, 7, 2);
    admit(&sliding, 7, 2);
    let before = (bucket.state(), window.state(), sliding.state());
    for now in [0, 7, SECOND, 10 * SECOND, MAX] {
        for cost in [0, 6, MAX] {
            bucket.check(now, cost).unwrap_err();
            window.check(now, cost).unwrap_err();
            sliding.check(now, cost).unwrap_err();
        }
        bucket.refund(now, 0).unwrap_err();
        window.refund(now, 0).unwrap_err();
        sliding.refund(now, 0).unwrap_err();
    }
    assert_eq!((bucket.state(), window.state(), sliding.state()), before);
    assert_eq!(
        bucket.check(0, 6),
        Err(CheckError::InsufficientCapacity {
            cost: 6,
            capacity: 5
        }),
        "the token bucket's capacity is its burst"
    );
}

#[test]
fn refunds_never_raise_a_limiter_above_full() {
    for (name, l) in every(3, SECOND) {
        // On a fresh limiter a refund gives nothing.
        let d = l.refund(0, 5).unwrap();
        assert_eq!(
            (d.allowed, d.remaining, d.retry_after),
            (true, 3, 0),
            "{name}"
        );
        admit(&*l, 0, 2);
        // Refunding more than was taken (and more than capacity) is not an error: it saturates.
        let d = l.refund(0, 100).unwrap();
        assert_eq!((d.remaining, d.retry_after), (3, 0), "{name}: {d:?}");
        assert_eq!(drain(&*l, 0, 10), 3, "{name}");
        // Refund one: exactly one more.
        l.refund(0, 1).unwrap();
        assert_eq!(drain(&*l, 0, 10), 1, "{name}");
    }
}

// ------------------------------------------------------------------------------------------------
// Construction
// ------------------------------------------------------------------------------------------------

#[test]
fn quotas_reject_zero_limit_and_zero_period() {
    assert_eq!(Quota::new(0, SECOND), Err(QuotaError::ZeroLimit));
    assert_eq!(Quota::new(1, 0), Err(QuotaError::ZeroPeriod));
    assert_eq!(Quota::new(0, 0), Err(QuotaError::ZeroLimit));
    assert_eq!(Quota::per_second(0), Err(QuotaError::ZeroLimit));
    let q = Quota::new(1, 1).unwrap();
    assert_eq!((q.limit(), q.period()), (1, 1));
    let q = Quota::new(MAX, MAX).unwrap();
    assert_eq!((q.limit(), q.period()), (MAX, MAX));
}

#[test]
fn token_bucket_construction_errors() {
    let q = Quota::per_second(3).unwrap();
    assert_eq!(
        TokenBucket::with_burst(q, 0).unwrap_err(),
        QuotaError::ZeroBurst
    );
    // burst × ceil(period / limit) must fit in 64 bits.
    let t = 333_333_334;
    assert!(TokenBucket::with_burst(q, MAX / t).is_ok());
    assert_eq!(
        TokenBucket::with_burst(q, MAX / t + 1).unwrap_err(),
        QuotaError::BurstTooLarge
    );
    let slow = Quota::new(1, MAX).unwrap();
    assert!(TokenBucket::new(slow).is_ok());
    assert_eq!(
        TokenBucket::with_burst(slow, 2).unwrap_err(),
        QuotaError::BurstTooLarge
    );
    // A rate faster than 1 per ns rounds to 1 per ns: any burst up to u64::MAX fits.
    assert!(TokenBucket::new(Quota::new(MAX, 1).unwrap()).is_ok());
    assert!(!QuotaError::BurstTooLarge.to_string().is_empty());
}

#[test]
fn fixed_window_construction_errors() {
    for aligned in [false, true] {
        let build = |limit, period| {
            let q = Quota::new(limit, period).unwrap();
            if aligned {
                FixedWindow::aligned(q)
            } else {
                FixedWindow::new(q)
            }
        };
        // The packed end is rounded up to 2^bits(limit) ns: the period must be >= 2^(bits + 4).
        assert_eq!(
            build(1, 31).unwrap_err(),
            QuotaError::PeriodTooShort { min: 32 }
        );
        assert!(build(1, 32).is_ok());
        assert_eq!(
            build(100, 2047).unwrap_err(),
            QuotaError::PeriodTooShort { min: 2048 }
        );
        assert!(build(100, 2048).is_ok());
        assert_eq!(
            build(127, 2047).unwrap_err(),
            QuotaError::PeriodTooShort { min: 2048 }
        );
        assert_eq!(
            build(128, 4095).unwrap_err(),
            QuotaError::PeriodTooShort { min: 4096 }
        );
        let max = FIXED_WINDOW_MAX_LIMIT;
        assert_eq!(max, (1 << 59) - 1);
        assert_eq!(
            build(max + 1, MAX).unwrap_err(),
            QuotaError::LimitTooLarge { max }
        );
        assert_eq!(
            build(MAX, MAX).unwrap_err(),
            QuotaError::LimitTooLarge { max }
        );
        assert!(build(max, 1 << 63).is_ok());
        assert_eq!(
            build(max, (1 << 63) - 1).unwrap_err(),
            QuotaError::PeriodTooShort { min: 1 << 63 }
        );
    }
    let msg = QuotaError::PeriodTooShort { min: 2048 }.to_string();
    assert!(msg.contains("2048"), "{msg}");
}

#[test]
fn sliding_window_construction_errors() {
    let max = SLIDING_WINDOW_MAX_LIMIT;
    assert_eq!(max, (1 << 20) - 1);
    let build = |limit| SlidingWindow::new(Quota::new(limit, 1 << 40).unwrap());
    assert!(build(max).is_ok());
    assert_eq!(
        build(max + 1).unwrap_err(),
        QuotaError::LimitTooLarge { max }
    );
    assert_eq!(build(MAX).unwrap_err(), QuotaError::LimitTooLarge { max });
    // The window index must fit beside the counters: period >= 2^(2 bits(limit)) ns.
    for (limit, min) in [
        (1, 4),
        (3, 16),
        (1023, 1 << 20),
        (16_383, 1 << 28),
        (max, 1 << 40),
    ] {
        let with = |period| SlidingWindow::new(Quota::new(limit, period).unwrap());
        assert!(with(min).is_ok(), "{limit} per {min} ns");
        let e = with(min - 1).unwrap_err();
        assert_eq!(e, QuotaError::PeriodTooShort { min });
        assert!(e.to_string().contains(&min.to_string()), "{e}");
    }
}

#[test]
fn sliding_log_storage_must_hold_exactly_limit_slots() {
    let q = Quota::per_second(3).unwrap();
    let two: [LogSlot; 2] = Default::default();
    assert_eq!(
        SlidingLog::with_storage(q, two).unwrap_err(),
        QuotaError::StorageSize {
            needed: 3,
            given: 2
        }
    );
    let four: Vec<LogSlot> = (0..4).map(|_| LogSlot::new()).collect();
    assert_eq!(
        SlidingLog::with_storage(q, four).unwrap_err(),
        QuotaError::StorageSize {
            needed: 3,
            given: 4
        }
    );
    let none: Vec<LogSlot> = Vec::new();
    assert_eq!(
        SlidingLog::with_storage(q, none).unwrap_err(),
        QuotaError::StorageSize {
            needed: 3,
            given: 0
        }
    );
    // Exactly `limit` slots, in any storage, borrowed or owned.
    let three: [LogSlot; 3] = Default::default();
    let log = SlidingLog::with_storage(q, &three[..]).unwrap();
    assert_eq!(drain(&log, 0, 5), 3);
    // Storage that was used before is cleared on construction.
    let log = SlidingLog::with_storage(q, &three[..]).unwrap();
    assert_eq!(drain(&log, 0, 5), 3);
    let msg = QuotaError::StorageSize {
        needed: 3,
        given: 2,
    }
    .to_string();
    assert!(msg.contains('3') && msg.contains('2'), "{msg}");
}

// ------------------------------------------------------------------------------------------------
// Reset
// ------------------------------------------------------------------------------------------------

#[test]
fn reset_makes_every_limiter_full_again() {
    for (name, l) in every(3, SECOND) {
        assert_eq!(drain(&*l, 5 * MILLISECOND, 10), 3, "{name}");
        l.reset();
        assert_eq!(drain(&*l, 5 * MILLISECOND, 10), 3, "{name}");
        // After a reset even an older `now` finds a full limiter.
        l.reset();
        assert_eq!(drain(&*l, 0, 10), 3, "{name}");
    }
}

#[test]
fn sliding_log_too_large_for_the_heap_is_an_error() {
    // 16 bytes a slot: past isize::MAX / 16 slots no allocation can hold the log.
    let max = (isize::MAX as u64) / 16;
    let quota = Quota::new(max + 1, SECOND).unwrap();
    assert_eq!(
        SlidingLog::new(quota).unwrap_err(),
        QuotaError::LimitTooLarge { max }
    );
    assert_eq!(
        ratewall::keyed::KeyedLog::new(quota).unwrap_err(),
        QuotaError::LimitTooLarge { max }
    );
}
