//! Loom models of every atomic state machine: the one-word limiter (`WordLimiter`) with each of
//! the three one-word rules, and the sliding log. Loom runs each model under every interleaving
//! of its threads (up to a bound on preemptions) with the crate's own atomics swapped for loom's
//! (`core/src/sync.rs`).
//!
//! What is checked, for every interleaving:
//! - no over-admission: the permits admitted never exceed what the quota allows;
//! - the one-word limiter is linearizable: some interleaving of the threads' operations, run
//!   sequentially through the pure rule, gives every decision that was returned and the final
//!   word;
//! - the sliding log, once the threads are done, is in a state some sequential order of the
//!   admitted requests would have produced (probed with `peek` at several instants, before and
//!   after the requests' own), so a race never corrupts it.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p ratewall --test loom --release`.
//! `RW_LOOM_BOUND=n` overrides every model's preemption bound (higher: more interleavings, much
//! slower).
#![cfg(loom)]

mod reference;

use loom::sync::Arc;
use loom::thread;
use ratewall::{
    CheckError, Decision, FixedWindowRule, Quota, RateLimiter, SlidingLog, SlidingWindowRule,
    TokenBucketRule, WordLimiter, WordRule,
};
use reference::{RefLog, Reference};

fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(f);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Check(u64, u64),
    Peek(u64, u64),
    Refund(u64, u64),
}

type Outcome = Result<Decision, CheckError>;

fn run(l: &impl RateLimiter, op: Op) -> Outcome {
    match op {
        Op::Check(now, cost) => l.check(now, cost),
        Op::Peek(now, cost) => l.peek(now, cost),
        Op::Refund(now, cost) => l.refund(now, cost),
    }
}

/// Every interleaving of the threads' op lists that keeps each thread's own order.
fn interleavings(threads: &[Vec<(Op, Outcome)>]) -> Vec<Vec<(Op, Outcome)>> {
    fn go(
        threads: &[Vec<(Op, Outcome)>],
        next: &mut Vec<usize>,
        prefix: &mut Vec<(Op, Outcome)>,
        out: &mut Vec<Vec<(Op, Outcome)>>,
    ) {
        let mut done = true;
        for t in 0..threads.len() {
            if next[t] < threads[t].len() {
                done = false;
                prefix.push(threads[t][next[t]]);
                next[t] += 1;
                go(threads, next, prefix, out);
                next[t] -= 1;
                prefix.pop();
            }
        }
        if done {
            out.push(prefix.clone());
        }
    }
    let mut out = Vec::new();
    go(
        threads,
        &mut vec![0; threads.len()],
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// Spawns one thread per op list against `limiter`, and returns what each op returned.
fn race<L: RateLimiter + Send + Sync + 'static>(
    limiter: &Arc<L>,
    threads: &[Vec<Op>],
) -> Vec<Vec<(Op, Outcome)>> {
    let mut handles = Vec::new();
    // The last list runs on the model's own thread, the others on spawned ones.
    for ops in &threads[..threads.len() - 1] {
        let limiter = limiter.clone();
        let ops = ops.clone();
        handles.push(thread::spawn(move || {
            ops.iter()
                .map(|&op| (op, run(&*limiter, op)))
                .collect::<Vec<_>>()
        }));
    }
    let last: Vec<_> = threads[threads.len() - 1]
        .iter()
        .map(|&op| (op, run(&**limiter, op)))
        .collect();
    let mut results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    results.push(last);
    results
}

fn admitted(results: &[Vec<(Op, Outcome)>]) -> Vec<(u64, u64)> {
    results
        .iter()
        .flatten()
        .filter_map(|&(op, out)| match (op, out) {
            (Op::Check(now, cost), Ok(d)) if d.allowed => Some((now, cost)),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// The one-word limiter, with each rule
// ------------------------------------------------------------------------------------------------

/// Races `threads` against a fresh `WordLimiter` over `rule`; then requires linearizability
/// (see the module docs) and `check_admitted` on what was admitted.
fn word_model<R>(
    rule: R,
    threads: Vec<Vec<Op>>,
    preemptions: usize,
    check_admitted: fn(&[(u64, u64)]),
) where
    R: WordRule + Copy + Send + Sync + core::fmt::Debug + 'static,
{
    model(preemptions, move || {
        let limiter = Arc::new(WordLimiter::from_rule(rule));
        let results = race(&limiter, &threads);
        check_admitted(&admitted(&results));
        let last = limiter.state();
        let linearizable = interleavings(&results).iter().any(|order| {
            let mut word = 0u64;
            for &(op, out) in order {
                let verdict = match op {
                    Op::Check(now, cost) | Op::Peek(now, cost) => rule.check(word, now, cost),
                    Op::Refund(now, cost) => rule.refund(word, now, cost),
                };
                if verdict.map(|v| v.decision) != out {
                    return false;
                }
                if let (Ok(v), false) = (verdict, matches!(op, Op::Peek(..))) {
                    word = v.next.unwrap_or(word);
                }
            }
            word == last
        });
        assert!(
            linearizable,
            "{rule:?}: no sequential order explains {results:?} ending in {last:#x}"
        );
    });
}

fn at_most(n: u64) -> fn(&[(u64, u64)]) {
    match n {
        1 => |a| assert!(a.iter().map(|x| x.1).sum::<u64>() <= 1, "{a:?}"),
        2 => |a| assert!(a.iter().map(|x| x.1).sum::<u64>() <= 2, "{a:?}"),
        _ => unreachable!(),
    }
}

const NOW: u64 = 10_000;

fn bucket(limit: u64) -> TokenBucketRule {
    TokenBucketRule::new(Quota::new(limit, 1_000).unwrap()).unwrap()
}

fn fixed(limit: u64) -> FixedWindowRule {
    FixedWindowRule::new(Quota::new(limit, 1_000).unwrap()).unwrap()
}

fn sliding(limit: u64) -> SlidingWindowRule {
    SlidingWindowRule::new(Quota::new(limit, 1_000).unwrap()).unwrap()
}

/// Two threads race for the last permit at the same instant; a third thread asks at an older
/// instant (a thread that read the clock earlier, then lost the race).
fn contend() -> Vec<Vec<Op>> {
    vec![
        vec![Op::Check(NOW, 1)],
        vec![Op::Check(NOW, 1), Op::Check(NOW, 1)],
        vec![Op::Check(NOW - 300, 1)],
    ]
}

/// A refund races two checks (a failed login given back while others log in).
fn churn() -> Vec<Vec<Op>> {
    vec![
        vec![Op::Check(NOW, 1), Op::Refund(NOW, 1)],
        vec![Op::Check(NOW, 1), Op::Peek(NOW, 1)],
        vec![Op::Check(NOW + 1, 1)],
    ]
}

/// Requests around a window boundary, one with an older `now` than the others.
fn boundary() -> Vec<Vec<Op>> {
    vec![
        vec![Op::Check(NOW + 999, 1), Op::Check(NOW + 1_000, 1)],
        vec![Op::Check(NOW + 1_000, 2)],
        vec![Op::Check(NOW + 998, 1)],
    ]
}

#[test]
fn token_bucket_word_limiter() {
    word_model(bucket(2), contend(), bound(3), at_most(2));
    word_model(bucket(1), churn(), bound(3), |_| {});
    word_model(bucket(2), boundary(), bound(3), |a| {
        // Admitted in [NOW + 998, NOW + 1000]: at most burst 2 + 2 ns / 500 ns → 2.
        assert!(a.iter().map(|x| x.1).sum::<u64>() <= 2, "{a:?}")
    });
}

#[test]
fn fixed_window_word_limiter() {
    word_model(fixed(2), contend(), bound(3), at_most(2));
    word_model(fixed(1), churn(), bound(3), |_| {});
    // The window opens at the first admission and lasts 1000 ns (+ rounding): all these
    // requests fall in at most two windows.
    word_model(fixed(2), boundary(), bound(3), |a| {
        assert!(a.iter().map(|x| x.1).sum::<u64>() <= 4, "{a:?}")
    });
}

#[test]
fn sliding_window_word_limiter() {
    word_model(sliding(2), contend(), bound(3), at_most(2));
    word_model(sliding(1), churn(), bound(3), |_| {});
    // Windows [10000, 11000) and [11000, 12000): at most 2 each.
    word_model(sliding(2), boundary(), bound(3), |a| {
        let before: u64 = a.iter().filter(|x| x.0 < NOW + 1_000).map(|x| x.1).sum();
        let after: u64 = a.iter().filter(|x| x.0 >= NOW + 1_000).map(|x| x.1).sum();
        assert!(before <= 2 && after <= 2, "{a:?}");
        // At 11000 the previous window weighs fully: the two windows share the limit.
        assert!(before + after <= 2, "{a:?}");
    });
}

// ------------------------------------------------------------------------------------------------
// The sliding log
// ------------------------------------------------------------------------------------------------

const PERIOD: u64 = 100;

/// Races `threads` (checks and peeks only) against a fresh sliding log of `limit` per
/// `PERIOD`; asserts the exact bound on what was admitted and that the log ends in a state some
/// sequential order of the admitted requests explains.
fn log_model(limit: u64, threads: Vec<Vec<Op>>, preemptions: usize) {
    model(preemptions, move || {
        let log = Arc::new(SlidingLog::new(Quota::new(limit, PERIOD).unwrap()).unwrap());
        let results = race(&log, &threads);
        let admitted = admitted(&results);
        // Exact bound: in any (t - PERIOD, t], at most `limit`.
        for &(t, _) in &admitted {
            let in_span: u64 = admitted
                .iter()
                .filter(|&&(u, _)| u <= t && u + PERIOD > t)
                .map(|x| x.1)
                .sum();
            assert!(
                in_span <= limit,
                "{in_span} admitted in ({}, {t}]: {results:?}",
                t - PERIOD
            );
        }
        // Quiescent state: probe it, then find a sequential order that explains it.
        let mut probes = vec![0];
        for &(t, _) in &admitted {
            probes.extend([t, t + PERIOD - 1, t + PERIOD, t + PERIOD + 1]);
        }
        let probe = |l: &dyn Fn(u64, u64) -> Outcome| -> Vec<Outcome> {
            probes
                .iter()
                .flat_map(|&t| (1..=limit).map(move |c| (t, c)))
                .map(|(t, c)| l(t, c))
                .collect()
        };
        let got = probe(&|t, c| log.peek(t, c));
        assert!(got.iter().all(Result::is_ok), "{got:?}");
        let only_admitted: Vec<Vec<(Op, Outcome)>> = results
            .iter()
            .map(|ops| {
                ops.iter()
                    .copied()
                    .filter(|&(op, out)| matches!((op, out), (Op::Check(..), Ok(d)) if d.allowed))
                    .collect()
            })
            .collect();
        // A request that lost the race to claim its slots may already have raised `t_seen` to
        // its `now` (documented): a later admission may be recorded at any request's `now`
        // that is no earlier than its own recording time.
        let nows: Vec<u64> = threads
            .iter()
            .flatten()
            .filter_map(|op| match op {
                Op::Check(now, _) => Some(*now),
                _ => None,
            })
            .collect();
        let explained = interleavings(&only_admitted).iter().any(|order| {
            explains(limit, order, &nows, &|exact| {
                probe(&|t, c| exact.peek(t, c)) == got
            })
        });
        assert!(
            explained,
            "no sequential order explains the log after {results:?}: {got:?}"
        );
    });
}

/// Whether some choice of recording times makes the exact log admit every request of `order`
/// and end in a state that `fits`.
fn explains(
    limit: u64,
    order: &[(Op, Outcome)],
    nows: &[u64],
    fits: &dyn Fn(&RefLog) -> bool,
) -> bool {
    fn go(
        exact: RefLog,
        rest: &[(Op, Outcome)],
        nows: &[u64],
        fits: &dyn Fn(&RefLog) -> bool,
    ) -> bool {
        let Some(((op, outcome), rest)) = rest.split_first() else {
            return fits(&exact);
        };
        let Op::Check(now, cost) = *op else {
            unreachable!()
        };
        if !exact.would_admit(now, cost) {
            return false;
        }
        // What the admission reported left: at most what the exact log leaves (a slot another
        // thread had claimed and not yet written counts as live, so it may report less).
        let exact_remaining = exact.capacity() - exact.live(now) - cost;
        if matches!(outcome, Ok(d) if d.remaining > exact_remaining) {
            return false;
        }
        let earliest = now.max(exact.seen());
        let mut at: Vec<u64> = nows.iter().copied().filter(|&t| t > earliest).collect();
        at.push(earliest);
        at.into_iter().any(|t| {
            let mut next = exact.clone();
            next.record(t, cost);
            go(next, rest, nows, fits)
        })
    }
    go(
        RefLog::new(limit, PERIOD, limit as usize).unwrap(),
        order,
        nows,
        fits,
    )
}

fn bound(default: usize) -> usize {
    std::env::var("RW_LOOM_BOUND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sliding_log_last_permit() {
    // Two threads race for the only permit.
    log_model(
        1,
        vec![vec![Op::Check(NOW, 1)], vec![Op::Check(NOW, 1)]],
        bound(3),
    );
}

#[test]
fn sliding_log_same_instant() {
    // Three threads, two permits: never more than two pass.
    log_model(
        2,
        vec![
            vec![Op::Check(NOW, 1)],
            vec![Op::Check(NOW, 1)],
            vec![Op::Check(NOW, 1)],
        ],
        bound(1),
    );
}

#[test]
fn sliding_log_older_now_records_in_order() {
    // A thread with an older `now` claims after one with a newer `now`, possibly before the
    // newer one has published its slot: it must still record no earlier than it.
    log_model(
        2,
        vec![vec![Op::Check(NOW + 50, 1)], vec![Op::Check(NOW, 1)]],
        bound(3),
    );
    log_model(
        3,
        vec![
            vec![Op::Check(NOW + 50, 1), Op::Check(NOW + 60, 1)],
            vec![Op::Check(NOW, 1)],
        ],
        bound(2),
    );
}

#[test]
fn sliding_log_hint_and_an_older_clock() {
    // The check at NOW + PERIOD finds the entry of NOW expired and stores the hint past it; a
    // check at an older `now`, for which that entry still counts, must not take the hint's
    // word for it (its `now` is before the `t_seen` the hint's promise holds from): it
    // reports `remaining` 0, not 1.
    log_model(
        3,
        vec![
            vec![Op::Check(NOW, 1), Op::Check(NOW + PERIOD, 1)],
            vec![Op::Check(NOW + PERIOD / 2, 1)],
        ],
        bound(3),
    );
}

#[test]
fn sliding_log_costs_and_stale_clocks() {
    log_model(
        3,
        vec![
            vec![Op::Check(NOW, 2)],
            vec![Op::Check(NOW + 10, 1), Op::Check(NOW - 20, 2)],
        ],
        bound(2),
    );
}

#[test]
fn sliding_log_expiry_race() {
    // One slot: the entry of NOW expires at NOW + PERIOD, just as another thread tries to take
    // it with a `now` one nanosecond too old.
    log_model(
        1,
        vec![
            vec![Op::Check(NOW, 1), Op::Check(NOW + PERIOD, 1)],
            vec![Op::Check(NOW + PERIOD - 1, 1)],
        ],
        bound(3),
    );
}

/// What one thread does in a refund model.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Check, and keep what was admitted.
    Keep(u64, u64),
    /// Check, and give back at once what was admitted.
    GiveBack(u64, u64),
    /// Refund without having checked (giving back someone else's permit).
    Refund(u64, u64),
}

/// Threads doing one `Act` each, after `setup` single-permit checks on their own. Then: never
/// more than `limit` kept, and the log decides consistently at every instant.
fn refund_model(limit: u64, setup: &'static [u64], acts: &'static [Act], preemptions: usize) {
    model(preemptions, move || {
        let log = Arc::new(SlidingLog::new(Quota::new(limit, PERIOD).unwrap()).unwrap());
        for &now in setup {
            assert!(log.check(now, 1).unwrap().allowed);
        }
        let run = |log: &SlidingLog<Box<[ratewall::LogSlot]>>, act: Act| match act {
            Act::Keep(now, cost) => cost * log.check(now, cost).unwrap().allowed as u64,
            Act::GiveBack(now, cost) => {
                if log.check(now, cost).unwrap().allowed {
                    log.refund(now, cost).unwrap();
                }
                0
            }
            Act::Refund(now, cost) => {
                log.refund(now, cost).unwrap();
                0
            }
        };
        let spawned: Vec<_> = acts[1..]
            .iter()
            .map(|&act| {
                let log = log.clone();
                thread::spawn(move || run(&log, act))
            })
            .collect();
        let mut kept = setup.len() as u64 + run(&log, acts[0]);
        kept += spawned.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
        let times: Vec<u64> = acts
            .iter()
            .map(|a| match *a {
                Act::Keep(t, _) | Act::GiveBack(t, _) | Act::Refund(t, _) => t,
            })
            .chain(setup.iter().copied())
            .collect();
        let newest = *times.iter().max().unwrap();
        let pure_refunds = acts.iter().any(|a| matches!(a, Act::Refund(..)));
        // All within one period: the permits kept are at most the limit.
        let one_period = times.iter().all(|&x| x + PERIOD > newest);
        assert!(kept <= limit || !one_period, "{kept} kept");
        let mut probes = vec![NOW - 20];
        for &t in &times {
            probes.extend([t, t + PERIOD - 1, t + PERIOD]);
        }
        // Once the threads are done, the log decides consistently at every instant.
        for t in probes {
            let d = log.peek(t, 1).unwrap();
            // `remaining` is what is left after the request: free permits before it.
            let free = d.remaining + d.allowed as u64;
            if t == newest && !pure_refunds && one_period {
                // Every kept permit still counts; a racing refund may have given back less than
                // asked, never more.
                assert!(free <= limit - kept, "at {t}: {d:?} with {kept} kept");
            }
            assert_eq!(d.allowed, free >= 1, "at {t}: {d:?}");
            for c in 2..=limit {
                let dc = log.peek(t, c).unwrap();
                assert_eq!(dc.allowed, free >= c, "at {t}: {dc:?} but {d:?}");
            }
        }
        // One period after everything, the log is empty again.
        assert_eq!(log.peek(newest + PERIOD, limit).unwrap().remaining, 0);
        assert!(log.peek(newest + PERIOD, limit).unwrap().allowed);
    });
}

#[test]
fn sliding_log_refund_races_a_check() {
    // A refund racing a check with an older `now` whose slot is older but not yet published.
    refund_model(
        2,
        &[],
        &[
            Act::Keep(NOW, 1),
            Act::GiveBack(NOW, 1),
            Act::Keep(NOW - 10, 1),
        ],
        bound(1),
    );
}

#[test]
fn sliding_log_refunds_race_each_other() {
    // Two refunds acting at different instants race for the same entries.
    refund_model(
        3,
        &[NOW - 5],
        &[Act::GiveBack(NOW + 5, 1), Act::GiveBack(NOW, 1)],
        bound(3),
    );
}

#[test]
fn sliding_log_refund_races_a_check_reusing_its_slot() {
    // The refund reads the oldest slot just as a later check (for which that entry has expired)
    // overwrites it: the refund must not mistake the new entry for the old one.
    refund_model(
        2,
        &[NOW, NOW + 60],
        &[Act::Keep(NOW + PERIOD, 1), Act::Refund(NOW, 1)],
        bound(3),
    );
}
