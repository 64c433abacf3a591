//! The interleaved ratio report: every subject of the `core` benchmark measured in rounds, each
//! round running every subject once per scenario, back to back, so that a change in the
//! machine's speed (on a shared VM, times drift by tens of percent within minutes) hits all
//! subjects of a round alike. Each target's ratio is taken within each round; the report gives
//! the median over the rounds, with the middle half of them, and judges the median.
//!
//! criterion (`make bench`) measures each subject for seconds, one after another: its absolute
//! figures are finer, but two subjects measured a minute apart can differ by the drift alone.
//! Here each measurement is short (about 5 ms), and the order of the subjects rotates from round
//! to round so that none always runs first.
//!
//! The loops are the `core` benchmark's own ([`allow_loop`], [`deny_loop`], [`two_threads`]
//! over the same subjects), compiled into this binary: how LLVM inlines governor's check here
//! may differ from the criterion binary (see the crate docs).
//!
//! Usage: `rounds [ROUNDS]` (default 21). Always exits 0: benchmarks are reports, not tests.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ratewall_benches::report::{print_ratios, Ratio, SCENARIOS, SUBJECTS};
use ratewall_benches::{
    allow_loop, cas_floor, clocked_floor, contended_allow, deny_floor, deny_loop, exhaust,
    fixed_window, governor, sliding_log, sliding_window, steady_loop, token_bucket, two_threads,
    Subject, LIMIT,
};

/// Decisions per single-thread measurement (a few milliseconds).
const SINGLE: u64 = 1_000_000;
/// Decisions per thread per two-thread measurement.
const PER_THREAD: u64 = 200_000;

fn discard(ok: bool) {
    black_box(ok);
}

/// Nanoseconds per decision of `scenario` on a fresh subject from `make`; `None` where the
/// subject has no such scenario (the CAS floors never deny and the deny floor only denies; the
/// clocked floor runs one thread).
fn measure<S: Subject>(scenario: &str, make: fn() -> S) -> Option<f64> {
    let subject = make();
    let (elapsed, decisions) = match scenario {
        "allow" => {
            let start = Instant::now();
            allow_loop(&subject, SINGLE, LIMIT, discard);
            (start.elapsed(), SINGLE)
        }
        "steady" => {
            let start = Instant::now();
            steady_loop(&subject, SINGLE, discard);
            (start.elapsed(), SINGLE)
        }
        "deny" => {
            exhaust(&subject);
            let start = Instant::now();
            deny_loop(&subject, SINGLE, discard);
            (start.elapsed(), SINGLE)
        }
        _ => {
            // The wall time over 2, for PER_THREAD decisions on each thread: divided by one
            // thread's decisions, the aggregate time per decision (as in criterion's figure).
            let half_wall: Duration =
                two_threads(&subject, PER_THREAD, |s, n| contended_allow(s, n, discard));
            (half_wall, PER_THREAD)
        }
    };
    Some(elapsed.as_nanos() as f64 / decisions as f64)
}

/// `measure` for the subject named `name`.
fn measure_named(scenario: &str, name: &str) -> Option<f64> {
    let floor_scenario = match name {
        "cas_floor" => scenario == "allow" || scenario == "two_threads",
        "clocked_floor" => scenario == "allow",
        "deny_floor" => scenario == "deny",
        _ => true,
    };
    if !floor_scenario {
        return None;
    }
    match name {
        "token_bucket" => measure(scenario, token_bucket),
        "fixed_window" => measure(scenario, fixed_window),
        "sliding_window" => measure(scenario, sliding_window),
        "sliding_log" => measure(scenario, sliding_log),
        "governor" => measure(scenario, governor),
        "cas_floor" => measure(scenario, cas_floor),
        "clocked_floor" => measure(scenario, clocked_floor),
        "deny_floor" => measure(scenario, deny_floor),
        other => unreachable!("unknown subject {other}"),
    }
}

/// The value at quantile `q` (0..=1) of `xs`, sorted in place.
fn quantile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(21);
    // times[round][scenario index][subject index]
    let mut times = vec![[[None::<f64>; SUBJECTS.len()]; SCENARIOS.len()]; rounds];
    for (round, table) in times.iter_mut().enumerate() {
        for (s, (scenario, _)) in SCENARIOS.iter().enumerate() {
            for k in 0..SUBJECTS.len() {
                let i = (k + round) % SUBJECTS.len();
                table[s][i] = measure_named(scenario, SUBJECTS[i]);
            }
        }
    }

    println!("ratewall benchmarks, interleaved: {rounds} rounds, each subject once per scenario per round, in rotating order");
    println!("median ns per decision over the rounds (quota: 100 per second, burst 100; see benches/src/lib.rs)\n");
    print!("{:<22}", "scenario");
    for subject in SUBJECTS {
        print!("{subject:>16}");
    }
    println!();
    for (s, (_, label)) in SCENARIOS.iter().enumerate() {
        print!("{label:<22}");
        for i in 0..SUBJECTS.len() {
            let mut xs: Vec<f64> = times.iter().filter_map(|t| t[s][i]).collect();
            let cell = if xs.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2}", quantile(&mut xs, 0.5))
            };
            print!("{cell:>16}");
        }
        println!();
    }

    let index = |name: &str| SUBJECTS.iter().position(|s| *s == name);
    print_ratios(|r: &Ratio| {
        let s = SCENARIOS.iter().position(|(name, _)| *name == r.scenario)?;
        let (a, b) = (index(r.numerator)?, index(r.denominator)?);
        let mut per_round: Vec<f64> = times
            .iter()
            .filter_map(|t| Some(t[s][a]? / t[s][b]?))
            .collect();
        if per_round.is_empty() {
            return None;
        }
        let low = quantile(&mut per_round, 0.25);
        let high = quantile(&mut per_round, 0.75);
        let median = quantile(&mut per_round, 0.5);
        Some((
            median,
            format!("  (middle half of rounds {low:.2}-{high:.2})"),
        ))
    });
}
