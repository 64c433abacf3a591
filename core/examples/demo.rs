//! The classic token-bucket demo: capacity 5, refilling 1 per second, seven requests.
//!
//! Requests 1–5 arrive at once and pass; request 6 arrives right after and is denied with the
//! `429`, `Retry-After` and JSON body a server would send; request 7 arrives one second later and
//! passes. Time is a manual clock the demo advances, so the output is the same on every run.
//!
//! Run it with `make demo` or `cargo run -p ratewall --example demo`.

use std::sync::Arc;

use ratewall::clock::ManualClock;
use ratewall::http::{self, HeaderSets};
use ratewall::policy::{Policy, PolicyOptions};
use ratewall::time::SECOND;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::new(0));
    let options = PolicyOptions {
        burst: Some(5),
        ..PolicyOptions::default()
    };
    let demo = Policy::parse("demo", "1/second", options)?.with_clock(clock.clone());
    let headers: HeaderSets = "legacy, ietf".parse()?;
    // A fixed wall-clock instant, so X-RateLimit-Reset and Date are the same on every run.
    let wall_ms = 1_700_000_000_000;

    println!("token bucket: capacity 5, refill 1/s (policy \"demo\" = 1/second, burst 5)\n");
    for (n, at) in [0, 0, 0, 0, 0, 0, SECOND].into_iter().enumerate() {
        clock.set(at);
        let decision = demo.check("client-1", 1)?;
        let d = decision.decision();
        let status = if d.allowed {
            "200 OK"
        } else {
            "429 Too Many Requests"
        };
        println!(
            "request {} at t={:.1}s -> {status}",
            n + 1,
            at as f64 / SECOND as f64
        );
        let wall = wall_ms + at / 1_000_000;
        for (name, value) in demo.headers(&decision, &headers, Some("client-1"), wall) {
            println!("    {name}: {value}");
        }
        if !d.allowed {
            println!("    body: {}", http::denied_body(d.retry_after));
        }
    }
    Ok(())
}
