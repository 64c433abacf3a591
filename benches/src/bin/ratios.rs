//! The ratio report: reads criterion's estimates for the `core` benchmark and prints ns per
//! decision and the ratios the project targets, each marked PASS or MISS.
//!
//! Usage: `ratios [CRITERION_DIR]` (default: `$CARGO_TARGET_DIR/criterion`, else the workspace's
//! `target/criterion`). Benchmarks are reports, not tests: this always exits 0, also when some
//! results are missing.
//!
//! The figure used for each benchmark is criterion's headline estimate: the slope of the linear
//! regression of time over iterations when criterion fitted one (it discounts any fixed cost per
//! sample, such as waking the two threads), else the mean.

use std::path::{Path, PathBuf};

use serde_json::Value;

const SUBJECTS: [&str; 7] = [
    "token_bucket",
    "fixed_window",
    "sliding_window",
    "sliding_log",
    "governor",
    "cas_floor",
    "clocked_floor",
];
const SCENARIOS: [(&str, &str); 3] = [
    ("allow", "allow, 1 thread"),
    ("deny", "deny, 1 thread"),
    ("two_threads", "2 threads, aggregate"),
];

/// A point estimate with its 95% confidence interval, in ns per decision.
#[derive(Clone, Copy)]
struct Estimate {
    point: f64,
    low: f64,
    high: f64,
}

fn read_estimate(dir: &Path, scenario: &str, subject: &str) -> Option<Estimate> {
    let path = dir.join(scenario).join(subject).join("new/estimates.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let stat = match &json["slope"] {
        Value::Null => &json["mean"],
        slope => slope,
    };
    Some(Estimate {
        point: stat["point_estimate"].as_f64()?,
        low: stat["confidence_interval"]["lower_bound"].as_f64()?,
        high: stat["confidence_interval"]["upper_bound"].as_f64()?,
    })
}

fn default_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// How a measured ratio is judged.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

struct Target {
    label: String,
    ratio: Option<f64>,
    goal: Goal,
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(default_dir);
    let get = |scenario: &str, subject: &str| read_estimate(&dir, scenario, subject);

    println!(
        "ratewall benchmarks, ns per decision (criterion estimate [95% CI]); results from {}",
        dir.display()
    );
    println!("quota: 100 per second, burst 100, for every limiter; see benches/src/lib.rs\n");
    print!("{:<22}", "scenario");
    for subject in SUBJECTS {
        print!("{subject:>22}");
    }
    println!();
    for (scenario, label) in SCENARIOS {
        print!("{label:<22}");
        for subject in SUBJECTS {
            let cell = match get(scenario, subject) {
                Some(e) => format!("{:.2} [{:.2}-{:.2}]", e.point, e.low, e.high),
                // The floors have no deny path; the clocked floor is measured on one thread.
                None if subject == "clocked_floor" && scenario != "allow" => "-".to_string(),
                None if scenario == "deny" && subject == "cas_floor" => "-".to_string(),
                None => "missing".to_string(),
            };
            print!("{cell:>22}");
        }
        println!();
    }

    // time(a) / time(b): below 1 means `a` is faster.
    let time_ratio = |scenario: &str, a: &str, b: &str| -> Option<f64> {
        Some(get(scenario, a)?.point / get(scenario, b)?.point)
    };
    let mut targets = Vec::new();
    for subject in ["token_bucket", "fixed_window"] {
        for scenario in ["allow", "deny"] {
            targets.push(Target {
                label: format!("{subject} / governor, {scenario} (time)"),
                ratio: time_ratio(scenario, subject, "governor"),
                goal: Goal::AtMost(0.7),
            });
        }
    }
    for subject in ["token_bucket", "fixed_window"] {
        targets.push(Target {
            label: format!("{subject} / CAS floor, allow (time)"),
            ratio: time_ratio("allow", subject, "cas_floor"),
            goal: Goal::AtMost(2.0),
        });
    }
    for scenario in ["allow", "deny"] {
        targets.push(Target {
            label: format!("sliding_log / token_bucket, {scenario} (time)"),
            ratio: time_ratio(scenario, "sliding_log", "token_bucket"),
            goal: Goal::AtMost(2.0),
        });
    }
    for subject in &SUBJECTS[..4] {
        // Throughput ratio: governor's time over ours.
        targets.push(Target {
            label: format!("{subject} vs governor, 2 threads (throughput)"),
            ratio: time_ratio("two_threads", "governor", subject),
            goal: Goal::AtLeast(1.0),
        });
    }

    println!("\n{:<52}{:>10}{:>10}  result", "target", "measured", "goal");
    for t in &targets {
        let (goal, met) = match t.goal {
            Goal::AtMost(g) => (format!("<= {g:.1}x"), t.ratio.map(|r| r <= g)),
            Goal::AtLeast(g) => (format!(">= {g:.1}x"), t.ratio.map(|r| r >= g)),
        };
        let measured = t.ratio.map_or("n/a".to_string(), |r| format!("{r:.2}x"));
        let result = match met {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "MISSING (run the benchmarks first)",
        };
        println!("{:<52}{measured:>10}{goal:>10}  {result}", t.label);
    }

    println!("\nfor information (no target):");
    let info = [
        (
            "sliding_window / token_bucket, allow",
            "allow",
            "sliding_window",
            "token_bucket",
        ),
        (
            "governor / CAS floor, allow",
            "allow",
            "governor",
            "cas_floor",
        ),
        // Above 0.7, the "0.7x governor" allow target lies below what any exact one-word
        // limiter can do in this harness: read the clock and swap its word once.
        (
            "clocked floor / governor, allow",
            "allow",
            "clocked_floor",
            "governor",
        ),
        (
            "token_bucket / clocked floor, allow",
            "allow",
            "token_bucket",
            "clocked_floor",
        ),
        (
            "fixed_window / clocked floor, allow",
            "allow",
            "fixed_window",
            "clocked_floor",
        ),
        (
            "token_bucket / CAS floor, 2 threads",
            "two_threads",
            "token_bucket",
            "cas_floor",
        ),
        (
            "governor / CAS floor, 2 threads",
            "two_threads",
            "governor",
            "cas_floor",
        ),
    ];
    for (label, scenario, a, b) in info {
        let measured = time_ratio(scenario, a, b).map_or("n/a".to_string(), |r| format!("{r:.2}x"));
        println!("{label:<52}{measured:>10}");
    }
}
