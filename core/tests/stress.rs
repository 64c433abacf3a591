//! Multi-thread stress: threads hammer one limiter of each kind, with time injected from a shared
//! atomic "clock" the threads themselves advance (nothing sleeps), and count what was admitted.
//! Every run asserts the algorithm's exact bound over the span of time it covered, using the
//! `now` each admitted request was made with (threads often use a `now` read a while before,
//! so the limiter constantly sees the clock step back); and that the bound is nearly reached, so
//! the assertion is not vacuous. With a frozen clock exactly `limit` (`burst`) permits pass in
//! total, and racing refunds give back exactly what they say.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use ratewall::time::SECOND;
use ratewall::{FixedWindow, Quota, RateLimiter, SlidingLog, SlidingWindow, TokenBucket};

const THREADS: u64 = 2;

/// Attempts per thread: millions in total in release; fewer in debug builds, which run the same
/// code about 20 times slower.
fn attempts() -> u64 {
    if cfg!(debug_assertions) {
        2_000_000
    } else {
        5_000_000
    }
}

/// A small deterministic generator per thread (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// How the threads drive the clock and choose costs.
#[derive(Clone, Copy)]
struct Load {
    /// The clock's first reading.
    start: u64,
    /// How far a thread moves the clock, every `advance_every` of its attempts.
    step: u64,
    advance_every: u64,
    max_cost: u64,
}

/// All admitted `(now, cost)`, sorted by time, and the clock's last reading.
struct Outcome {
    admitted: Vec<(u64, u64)>,
    end: u64,
}

impl Outcome {
    fn total(&self) -> u64 {
        self.admitted.iter().map(|&(_, c)| c).sum()
    }

    fn first(&self) -> u64 {
        self.admitted.first().map_or(0, |a| a.0)
    }

    fn last(&self) -> u64 {
        self.admitted.last().map_or(0, |a| a.0)
    }
}

/// Runs `THREADS` threads of `attempts()` checks each against `limiter`.
///
/// Each thread mostly checks at the clock's current reading, but one attempt in four uses a
/// reading it took up to 16 attempts earlier: a thread that read the clock, then lost the race.
fn hammer<L: RateLimiter + Sync>(limiter: &L, load: Load) -> Outcome {
    let clock = AtomicU64::new(load.start);
    let mut admitted: Vec<(u64, u64)> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|id| {
                let clock = &clock;
                s.spawn(move || {
                    let mut rng = Rng::new(id + 1);
                    let mut mine = Vec::new();
                    let mut held = clock.load(Ordering::Relaxed);
                    for i in 0..attempts() {
                        if i % load.advance_every == 0 {
                            clock.fetch_add(load.step, Ordering::Relaxed);
                        }
                        let r = rng.next();
                        let now = if r % 4 == 0 {
                            held
                        } else {
                            clock.load(Ordering::Relaxed)
                        };
                        if i % 16 == 0 {
                            held = clock.load(Ordering::Relaxed);
                        }
                        let cost = 1 + (r >> 8) % load.max_cost;
                        if limiter.check(now, cost).unwrap().allowed {
                            mine.push((now, cost));
                        }
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    admitted.sort_unstable();
    Outcome {
        admitted,
        end: clock.load(Ordering::Relaxed),
    }
}

/// `THREADS` threads each try `attempts()` single permits at one frozen instant.
fn frozen<L: RateLimiter + Sync>(limiter: &L, now: u64) -> u64 {
    thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    (0..attempts() / 4)
                        .filter(|_| limiter.check(now, 1).unwrap().allowed)
                        .count() as u64
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// At a frozen instant, threads take single permits and give some back at once, racing. Returns
/// (admitted, refunded).
fn churn<L: RateLimiter + Sync>(limiter: &L, now: u64) -> (u64, u64) {
    thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|id| {
                s.spawn(move || {
                    let mut rng = Rng::new(100 + id);
                    let (mut admitted, mut refunded) = (0, 0);
                    for _ in 0..attempts() / 4 {
                        if limiter.check(now, 1).unwrap().allowed {
                            admitted += 1;
                            if rng.next() % 3 != 0 {
                                limiter.refund(now, 1).unwrap();
                                refunded += 1;
                            }
                        }
                    }
                    (admitted, refunded)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .fold((0, 0), |(a, r), (x, y)| (a + x, r + y))
    })
}

/// The bound is reached to within half: a run that admitted (almost) nothing proves nothing.
fn substantial(name: &str, total: u64, bound: u64) {
    assert!(
        total * 2 >= bound,
        "{name}: only {total} admitted against a bound of {bound}: the stress did not stress"
    );
}

// ------------------------------------------------------------------------------------------------
// Token bucket
// ------------------------------------------------------------------------------------------------

#[test]
fn token_bucket_never_admits_more_than_burst_plus_refill() {
    // 10 per ms (T = 100 µs), burst 25; the clock moves T/4 every 8 attempts of a thread:
    // demand far above the refill, so the bucket runs dry and every refill is fought over.
    let (t, burst) = (100_000, 25);
    let bucket = TokenBucket::with_burst(Quota::new(10, 1_000_000).unwrap(), burst).unwrap();
    let run = hammer(
        &bucket,
        Load {
            start: 1 << 40,
            step: t / 4,
            advance_every: 8,
            max_cost: 3,
        },
    );
    // Over any [t0, t1]: admitted permits <= burst + (t1 - t0)/T, i.e. n·T <= burst·T + t1 - t0.
    let mut lowest = i128::MAX;
    let mut sum = 0i128;
    for &(now, cost) in &run.admitted {
        lowest = lowest.min(sum * t as i128 - now as i128);
        sum += cost as i128;
        let excess = sum * t as i128 - now as i128 - lowest;
        assert!(
            excess <= (burst * t) as i128,
            "over-admitted: {excess} ns of permits beyond the bucket by {now}"
        );
    }
    let bound = burst + (run.last() - run.first()) / t;
    assert!(run.total() <= bound);
    substantial("token bucket", run.total(), bound);
}

#[test]
fn token_bucket_frozen_clock_admits_exactly_burst() {
    let bucket = TokenBucket::with_burst(Quota::per_second(10).unwrap(), 37).unwrap();
    assert_eq!(frozen(&bucket, 123_456_789), 37);
    assert_eq!(bucket.peek(123_456_789, 1).unwrap().remaining, 0);
}

#[test]
fn token_bucket_racing_refunds_give_back_exactly() {
    let bucket = TokenBucket::with_burst(Quota::per_second(10).unwrap(), 37).unwrap();
    let (admitted, refunded) = churn(&bucket, 1_000);
    let kept = admitted - refunded;
    assert!(kept <= 37, "{kept} kept");
    assert_eq!(bucket.peek(1_000, 1).unwrap().remaining, 37 - kept);
    assert!(refunded > 37, "refunds raced: {refunded}");
}

// ------------------------------------------------------------------------------------------------
// Fixed window
// ------------------------------------------------------------------------------------------------

fn fixed_window_stress(aligned: bool) {
    let (limit, period) = (20, 1 << 20);
    let q = Quota::new(limit, period).unwrap();
    let window = if aligned {
        FixedWindow::aligned(q).unwrap()
    } else {
        FixedWindow::new(q).unwrap()
    };
    let run = hammer(
        &window,
        Load {
            start: (1 << 40) + 12_345,
            step: period / 256,
            advance_every: 8,
            max_cost: 3,
        },
    );
    // Each window admits at most `limit`; a window lasts at least `period` and the next opens
    // at or after its end, so the windows that admitted anything number at most
    // span / period + 1 (aligned: the number of period multiples touched).
    let windows = if aligned {
        run.last() / period - run.first() / period + 1
    } else {
        (run.last() - run.first()) / period + 1
    };
    let bound = limit * windows;
    assert!(
        run.total() <= bound,
        "{} admitted in {windows} windows of {limit}",
        run.total()
    );
    substantial("fixed window", run.total(), bound);
    assert!(run.end > run.last());
}

#[test]
fn fixed_window_never_admits_more_than_limit_per_window() {
    fixed_window_stress(false);
}

#[test]
fn aligned_fixed_window_never_admits_more_than_limit_per_window() {
    fixed_window_stress(true);
}

#[test]
fn fixed_window_frozen_clock_admits_exactly_limit() {
    let window = FixedWindow::new(Quota::per_second(41).unwrap()).unwrap();
    assert_eq!(frozen(&window, 5), 41);
    assert_eq!(window.peek(5, 1).unwrap().remaining, 0);
}

#[test]
fn fixed_window_racing_refunds_give_back_exactly() {
    let window = FixedWindow::new(Quota::per_second(41).unwrap()).unwrap();
    let (admitted, refunded) = churn(&window, 5);
    let kept = admitted - refunded;
    assert!(kept <= 41, "{kept} kept");
    assert_eq!(window.peek(5, 1).unwrap().remaining, 41 - kept);
    assert!(refunded > 41);
}

// ------------------------------------------------------------------------------------------------
// Sliding window counter
// ------------------------------------------------------------------------------------------------

#[test]
fn sliding_window_never_admits_more_than_limit_per_window() {
    let (limit, period) = (20, 1_000_000);
    let limiter = SlidingWindow::new(Quota::new(limit, period).unwrap()).unwrap();
    let run = hammer(
        &limiter,
        Load {
            start: (1 << 40) + 777,
            step: period / 256,
            advance_every: 8,
            max_cost: 3,
        },
    );
    // Each aligned window's counter holds at most `limit`, and a counter starts only in a
    // window some admitted request was made in (a request with an older `now` counts in the
    // window already stored).
    let mut windows: Vec<u64> = run.admitted.iter().map(|&(t, _)| t / period).collect();
    windows.dedup();
    let bound = limit * windows.len() as u64;
    assert!(
        run.total() <= bound,
        "{} admitted in {} windows",
        run.total(),
        windows.len()
    );
    substantial("sliding window", run.total(), bound);
}

#[test]
fn sliding_window_frozen_clock_admits_exactly_limit() {
    let limiter = SlidingWindow::new(Quota::per_second(41).unwrap()).unwrap();
    assert_eq!(frozen(&limiter, 3_500_000_000), 41);
    assert_eq!(limiter.peek(3_500_000_000, 1).unwrap().remaining, 0);
}

#[test]
fn sliding_window_racing_refunds_give_back_exactly() {
    let limiter = SlidingWindow::new(Quota::per_second(41).unwrap()).unwrap();
    let (admitted, refunded) = churn(&limiter, 3_500_000_000);
    let kept = admitted - refunded;
    assert!(kept <= 41, "{kept} kept");
    assert_eq!(limiter.peek(3_500_000_000, 1).unwrap().remaining, 41 - kept);
    assert!(refunded > 41);
}

// ------------------------------------------------------------------------------------------------
// Sliding log
// ------------------------------------------------------------------------------------------------

#[test]
fn sliding_log_never_admits_more_than_limit_in_any_period() {
    let (limit, period) = (8, 1_000_000);
    let log = SlidingLog::new(Quota::new(limit, period).unwrap()).unwrap();
    let run = hammer(
        &log,
        Load {
            start: 1 << 40,
            step: period / 256,
            advance_every: 8,
            max_cost: 3,
        },
    );
    // For every admitted request at t: the permits admitted at times in (t - period, t],
    // including all of those at t itself, are at most `limit`.
    let a = &run.admitted;
    let mut lo = 0;
    let mut in_span = 0;
    let mut hi = 0;
    while hi < a.len() {
        let t = a[hi].0;
        while hi < a.len() && a[hi].0 == t {
            in_span += a[hi].1;
            hi += 1;
        }
        while t - a[lo].0 >= period {
            in_span -= a[lo].1;
            lo += 1;
        }
        assert!(
            in_span <= limit,
            "{in_span} permits admitted in ({}, {t}]",
            t - period
        );
    }
    let bound = limit * ((run.last() - run.first()) / period + 1);
    assert!(run.total() <= bound);
    substantial("sliding log", run.total(), bound);
}

#[test]
fn sliding_log_frozen_clock_admits_exactly_limit() {
    let log = SlidingLog::new(Quota::per_second(41).unwrap()).unwrap();
    assert_eq!(frozen(&log, 9), 41);
    assert_eq!(log.peek(9, 1).unwrap().remaining, 0);
}

#[test]
fn sliding_log_racing_refunds_never_give_back_more() {
    let log = SlidingLog::new(Quota::per_second(41).unwrap()).unwrap();
    let (admitted, refunded) = churn(&log, 9);
    let kept = admitted - refunded;
    assert!(kept <= 41, "{kept} kept");
    // A refund racing a check may find its entry not yet published and give back less (never
    // more) than asked: at most `limit - kept` remain.
    let remaining = log.peek(9, 1).unwrap().remaining;
    assert!(
        remaining <= 41 - kept,
        "{remaining} remain with {kept} kept"
    );
    assert!(refunded > 41);
}

/// `THREADS` threads take single permits until the limiter denies them, phase after phase, each
/// phase at its own frozen instant two periods after the last (so every limiter is full again);
/// the threads meet at a spinning barrier before each phase, so that they race from its first
/// request on. Returns, per phase, the `remaining` each admission reported.
fn remainings<L: RateLimiter + Sync>(limiter: &L, period: u64, phases: u64) -> Vec<Vec<u64>> {
    let arrived = AtomicU64::new(0);
    let per_thread: Vec<Vec<Vec<u64>>> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    (0..phases)
                        .map(|phase| {
                            arrived.fetch_add(1, Ordering::AcqRel);
                            while arrived.load(Ordering::Acquire) < THREADS * (phase + 1) {
                                std::hint::spin_loop();
                            }
                            let now = 1 + phase * 2 * period;
                            let mut seen = Vec::new();
                            while let Ok(d) = limiter.check(now, 1) {
                                if !d.allowed {
                                    break;
                                }
                                seen.push(d.remaining);
                            }
                            seen
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    (0..phases as usize)
        .map(|phase| {
            let mut all: Vec<u64> = per_thread
                .iter()
                .flat_map(|t| t[phase].iter().copied())
                .collect();
            all.sort_unstable();
            all
        })
        .collect()
}

/// Admissions racing for one limiter each report their own `remaining`: sorted, they count
/// up from 0 to `limit - 1` with no value twice, phase after phase. Each phase starts with the
/// sliding log's slots holding the previous phase's expired entries: a count that read a slot
/// claimed by another request, not yet written, as the expired entry it still held reported
/// the same `remaining` as that request (found by the free-threaded Python stress test).
fn each_admission_reports_its_own_remaining<L: RateLimiter + Sync>(limiter: &L, period: u64) {
    let limit = limiter.capacity();
    let phases = if cfg!(debug_assertions) { 300 } else { 3000 };
    for (phase, got) in remainings(limiter, period, phases).iter().enumerate() {
        let expected: Vec<u64> = (0..limit).collect();
        assert_eq!(got, &expected, "phase {phase}");
    }
}

#[test]
fn racing_admissions_report_distinct_remaining() {
    let quota = Quota::per_second(64).unwrap();
    each_admission_reports_its_own_remaining(&SlidingLog::new(quota).unwrap(), SECOND);
    each_admission_reports_its_own_remaining(&TokenBucket::new(quota).unwrap(), SECOND);
    each_admission_reports_its_own_remaining(&FixedWindow::new(quota).unwrap(), SECOND);
    each_admission_reports_its_own_remaining(&SlidingWindow::new(quota).unwrap(), SECOND);
}

/// A denial reports `reset_after` (until every entry has expired) at least `retry_after` (until
/// the oldest has): the log is sorted, so its newest entry expires no earlier than its oldest.
/// Two threads admit and get denied on a small log while the clock moves; a denial that read
/// the newest slot while its claimer had not yet written it took that slot's previous, expired
/// entry for the newest and reported `reset_after` 0 with the oldest entry still live.
#[test]
fn racing_denials_never_reset_before_they_retry() {
    let log = SlidingLog::new(Quota::new(4, 1_000).unwrap()).unwrap();
    let clock = AtomicU64::new(1);
    let attempts = if cfg!(debug_assertions) {
        200_000
    } else {
        2_000_000
    };
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for i in 0..attempts {
                    let now = if i % 8 == 0 {
                        clock.fetch_add(60, Ordering::Relaxed)
                    } else {
                        clock.load(Ordering::Relaxed)
                    };
                    let d = log.check(now, 1).unwrap();
                    if !d.allowed {
                        assert!(
                            d.reset_after >= d.retry_after,
                            "denial at {now}: reset_after {} before retry_after {}",
                            d.reset_after,
                            d.retry_after
                        );
                    }
                }
            });
        }
    });
}
