//! The classic token-bucket demo: capacity 5, refilling 1 per second, seven requests.
//!
//! Requests 1–5 arrive at once and pass; request 6 arrives right after and is denied with the
//! `Retry-After` a server would send; request 7 arrives one second later and passes. Time is a
//! plain number of nanoseconds that the demo advances, so the output is the same on every run.
//!
//! Run it with `make demo` or `cargo run -p ratewall --example demo`.

use ratewall::{time::SECOND, Decision, Quota, RateLimiter, TokenBucket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bucket = TokenBucket::with_burst(Quota::per_second(1)?, 5)?;
    println!("token bucket: capacity 5, refill 1/s\n");
    println!(
        "{:>3}  {:>6}  {:<8} {:>9}  {:>11}",
        "#", "t", "decision", "remaining", "retry-after"
    );
    let arrivals = [0, 0, 0, 0, 0, 0, SECOND];
    for (n, now) in arrivals.into_iter().enumerate() {
        let d = bucket.check(now, 1)?;
        println!(
            "{:>3}  {:>5.1}s  {:<8} {:>9}  {:>11}",
            n + 1,
            now as f64 / SECOND as f64,
            if d.allowed { "200 OK" } else { "429" },
            d.remaining,
            retry_after_header(&d),
        );
    }
    Ok(())
}

/// The `Retry-After` value a server sends: whole seconds, rounded up, at least 1.
fn retry_after_header(d: &Decision) -> String {
    if d.allowed {
        "-".into()
    } else {
        d.retry_after.div_ceil(SECOND).max(1).to_string()
    }
}
