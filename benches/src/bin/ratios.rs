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

use ratewall_benches::report::{print_ratios, SCENARIOS, SUBJECTS};
use serde_json::Value;

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
                // The floors have no deny or steady path; the clocked floor is measured on one
                // thread.
                None if subject == "clocked_floor" && scenario != "allow" => "-".to_string(),
                None if subject == "cas_floor" && matches!(scenario, "deny" | "steady") => {
                    "-".to_string()
                }
                None => "missing".to_string(),
            };
            print!("{cell:>22}");
        }
        println!();
    }

    // time(a) / time(b): below 1 means `a` is faster.
    print_ratios(|r| {
        let ratio = get(r.scenario, r.numerator)?.point / get(r.scenario, r.denominator)?.point;
        Some((ratio, String::new()))
    });
    println!(
        "\n(For ratios that hold while the machine's speed drifts, see the interleaved report: \
         `cargo run --release -p ratewall-benches --bin rounds`.)"
    );
}
