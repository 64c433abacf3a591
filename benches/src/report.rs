//! The project's target ratios and how they are printed, shared by the two reports: `ratios`
//! (criterion's estimates) and `rounds` (interleaved rounds, median ratio per target).

/// The subjects of the `core` benchmark, in report order.
pub const SUBJECTS: [&str; 8] = [
    "token_bucket",
    "fixed_window",
    "sliding_window",
    "sliding_log",
    "governor",
    "cas_floor",
    "clocked_floor",
    "deny_floor",
];

/// The scenarios of the `core` benchmark and their labels.
pub const SCENARIOS: [(&str, &str); 4] = [
    ("allow", "allow, 1 thread"),
    ("steady", "steady, 1 thread"),
    ("deny", "deny, 1 thread"),
    ("two_threads", "2 threads, aggregate"),
];

/// How a measured ratio is judged.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// The ratio must not exceed this.
    AtMost(f64),
    /// The ratio must reach this.
    AtLeast(f64),
}

/// One ratio `time(scenario, numerator) / time(scenario, denominator)`, with a goal or none.
#[derive(Clone, Copy, Debug)]
pub struct Ratio {
    /// What the line says.
    pub label: &'static str,
    /// `allow`, `steady`, `deny` or `two_threads`.
    pub scenario: &'static str,
    /// The subject whose time is divided.
    pub numerator: &'static str,
    /// The subject whose time divides.
    pub denominator: &'static str,
    /// The target, if the project sets one.
    pub goal: Option<Goal>,
}

const fn ratio(
    label: &'static str,
    scenario: &'static str,
    numerator: &'static str,
    denominator: &'static str,
    goal: Option<Goal>,
) -> Ratio {
    Ratio {
        label,
        scenario,
        numerator,
        denominator,
        goal,
    }
}

const FASTER: Option<Goal> = Some(Goal::AtMost(0.7));
const NEAR_FLOOR: Option<Goal> = Some(Goal::AtMost(2.0));
/// A throughput ratio is governor's time over ours.
const AS_FAST: Option<Goal> = Some(Goal::AtLeast(1.0));

/// The targets of issue #2, then ratios for information.
pub const RATIOS: [Ratio; 24] = [
    ratio(
        "token_bucket / governor, allow (time)",
        "allow",
        "token_bucket",
        "governor",
        FASTER,
    ),
    ratio(
        "token_bucket / governor, deny (time)",
        "deny",
        "token_bucket",
        "governor",
        FASTER,
    ),
    ratio(
        "fixed_window / governor, allow (time)",
        "allow",
        "fixed_window",
        "governor",
        FASTER,
    ),
    ratio(
        "fixed_window / governor, deny (time)",
        "deny",
        "fixed_window",
        "governor",
        FASTER,
    ),
    ratio(
        "token_bucket / CAS floor, allow (time)",
        "allow",
        "token_bucket",
        "cas_floor",
        NEAR_FLOOR,
    ),
    ratio(
        "fixed_window / CAS floor, allow (time)",
        "allow",
        "fixed_window",
        "cas_floor",
        NEAR_FLOOR,
    ),
    ratio(
        "sliding_log / token_bucket, allow (time)",
        "allow",
        "sliding_log",
        "token_bucket",
        NEAR_FLOOR,
    ),
    ratio(
        "sliding_log / token_bucket, deny (time)",
        "deny",
        "sliding_log",
        "token_bucket",
        NEAR_FLOOR,
    ),
    ratio(
        "token_bucket vs governor, 2 threads (throughput)",
        "two_threads",
        "governor",
        "token_bucket",
        AS_FAST,
    ),
    ratio(
        "fixed_window vs governor, 2 threads (throughput)",
        "two_threads",
        "governor",
        "fixed_window",
        AS_FAST,
    ),
    ratio(
        "sliding_window vs governor, 2 threads (throughput)",
        "two_threads",
        "governor",
        "sliding_window",
        AS_FAST,
    ),
    ratio(
        "sliding_log vs governor, 2 threads (throughput)",
        "two_threads",
        "governor",
        "sliding_log",
        AS_FAST,
    ),
    ratio(
        "sliding_window / token_bucket, allow",
        "allow",
        "sliding_window",
        "token_bucket",
        None,
    ),
    ratio(
        "sliding_log / token_bucket, steady",
        "steady",
        "sliding_log",
        "token_bucket",
        None,
    ),
    ratio(
        "token_bucket / governor, steady",
        "steady",
        "token_bucket",
        "governor",
        None,
    ),
    ratio(
        "governor / CAS floor, allow",
        "allow",
        "governor",
        "cas_floor",
        None,
    ),
    // Above 0.7, the "0.7x governor" allow target lies below what any exact one-word limiter
    // can do in this harness: read the clock and swap its word once.
    ratio(
        "clocked floor / governor, allow",
        "allow",
        "clocked_floor",
        "governor",
        None,
    ),
    // Likewise on the deny path: above 0.7, no limiter can deny in 0.7x governor's time, since
    // a denial must read the clock and the state and compare them.
    ratio(
        "deny floor / governor, deny",
        "deny",
        "deny_floor",
        "governor",
        None,
    ),
    ratio(
        "token_bucket / deny floor, deny",
        "deny",
        "token_bucket",
        "deny_floor",
        None,
    ),
    ratio(
        "fixed_window / deny floor, deny",
        "deny",
        "fixed_window",
        "deny_floor",
        None,
    ),
    ratio(
        "token_bucket / clocked floor, allow",
        "allow",
        "token_bucket",
        "clocked_floor",
        None,
    ),
    ratio(
        "fixed_window / clocked floor, allow",
        "allow",
        "fixed_window",
        "clocked_floor",
        None,
    ),
    ratio(
        "token_bucket / CAS floor, 2 threads",
        "two_threads",
        "token_bucket",
        "cas_floor",
        None,
    ),
    ratio(
        "governor / CAS floor, 2 threads",
        "two_threads",
        "governor",
        "cas_floor",
        None,
    ),
];

/// Prints every ratio of [`RATIOS`]: the targets with PASS or MISS, then the others.
/// `measure(ratio)` gives the figure (`None`: not measured) and a note printed after it.
pub fn print_ratios(measure: impl Fn(&Ratio) -> Option<(f64, String)>) {
    println!("\n{:<52}{:>10}{:>10}  result", "target", "measured", "goal");
    for r in RATIOS.iter().filter(|r| r.goal.is_some()) {
        let measured = measure(r);
        let (goal, met) = match r.goal {
            Some(Goal::AtMost(g)) => (format!("<= {g:.1}x"), measured.as_ref().map(|m| m.0 <= g)),
            Some(Goal::AtLeast(g)) => (format!(">= {g:.1}x"), measured.as_ref().map(|m| m.0 >= g)),
            None => unreachable!("filtered"),
        };
        let result = match met {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "MISSING (run the benchmarks first)",
        };
        let (figure, note) = shown(measured);
        println!("{:<52}{figure:>10}{goal:>10}  {result}{note}", r.label);
    }
    println!("\nfor information (no target):");
    for r in RATIOS.iter().filter(|r| r.goal.is_none()) {
        let (figure, note) = shown(measure(r));
        println!("{:<52}{figure:>10}{note}", r.label);
    }
}

fn shown(measured: Option<(f64, String)>) -> (String, String) {
    match measured {
        Some((figure, note)) => (format!("{figure:.2}x"), note),
        None => ("n/a".to_string(), String::new()),
    }
}
