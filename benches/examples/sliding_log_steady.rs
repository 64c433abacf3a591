//! The sliding log alone, one thread, under traffic at a steady rate: how a count's cost depends
//! on how far the log's live part moves between two requests. Prints ns per `check` (best of 5
//! runs of 20 million) for a quota of 100 per second and a clock that moves, before each
//! request, by 20 ms (half the rate: every request admitted, one entry expiring between two),
//! 10 ms (exactly the rate), 7 ms (70 % admitted) and 1 µs (a full log: denials).
//!
//! Run: `cargo run --release -p ratewall-benches --example sliding_log_steady`

use std::hint::black_box;
use std::time::Instant;

use ratewall::time::{MILLISECOND, SECOND};
use ratewall::{Quota, RateLimiter, SlidingLog};

const CHECKS: u64 = 20_000_000;

/// Best ns per check over 5 runs, and the share of requests admitted.
fn measure(step: u64) -> (f64, f64) {
    let mut best = f64::MAX;
    let (mut admitted, mut fold) = (0u64, 0u64);
    for _ in 0..5 {
        let log =
            SlidingLog::new(Quota::new(100, SECOND).expect("valid quota")).expect("valid log");
        let mut now = 0;
        let start = Instant::now();
        for _ in 0..CHECKS {
            now += step;
            if let Ok(d) = black_box(&log).check(black_box(now), black_box(1)) {
                // Every field is used, none goes through memory.
                admitted += d.allowed as u64;
                fold = fold.wrapping_add(d.remaining ^ d.reset_after ^ d.retry_after ^ d.limit);
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / CHECKS as f64);
    }
    black_box(fold);
    (best, admitted as f64 / (5 * CHECKS) as f64)
}

fn main() {
    println!("sliding log, 100 per second, one thread: ns per check (best of 5)");
    for (step, what) in [
        (20 * MILLISECOND, "20 ms apart (half the rate)"),
        (10 * MILLISECOND, "10 ms apart (the rate)"),
        (7 * MILLISECOND, "7 ms apart (above the rate)"),
        (1_000, "1 us apart (a full log)"),
    ] {
        let (ns, admitted) = measure(step);
        println!(
            "  {what:<30} {ns:6.2} ns   admitted {:5.1} %",
            admitted * 100.0
        );
    }
}
