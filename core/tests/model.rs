//! Property tests: random streams of `check` / `peek` / `refund` (costs 0, within and beyond
//! capacity; time standing still, creeping, jumping, and stepping back) through every limiter and
//! through its sequential reference model (`reference/mod.rs`), requiring identical decisions and
//! identical errors at every step.
//!
//! On top of the exact comparison, streams without refunds assert each algorithm's safety bound
//! directly on the admitted requests, so a reference that shared a bug with the implementation
//! would still be caught over-admitting.
//!
//! Failing cases are persisted next to this file, in `model.proptest-regressions`, and replayed
//! first on every run: commit that file.

mod reference;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use ratewall::{
    CheckError, Decision, FixedWindow, FixedWindowRule, Quota, QuotaError, RateLimiter, SlidingLog,
    SlidingWindow, SlidingWindowRule, TokenBucket, TokenBucketRule, WordLimiter, WordRule,
};
use reference::{RefBucket, RefFixed, RefLog, RefSliding, Reference};

// ------------------------------------------------------------------------------------------------
// Streams
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Check,
    Peek,
    Refund,
}

/// A cost, resolved against the limiter's capacity when the op runs.
#[derive(Clone, Copy, Debug)]
enum Cost {
    Zero,
    /// `1 + n % capacity`.
    Within(u64),
    /// `capacity + 1 + n`.
    Over(u64),
    Huge(u64),
}

/// How `now` moves before an op, resolved against the quota's period.
#[derive(Clone, Copy, Debug)]
enum Step {
    Same,
    Tiny(u64),
    /// `period × n / 256`.
    Fraction(u16),
    /// `n` periods and a fraction.
    Periods(u8, u16),
    Jump(u64),
    /// Back by `period × n / 256`.
    Back(u16),
    /// Back by up to a few periods, or anywhere.
    BackFar(u64),
}

#[derive(Clone, Copy, Debug)]
struct Op {
    kind: Kind,
    cost: Cost,
    step: Step,
}

#[derive(Clone, Copy, Debug)]
enum Start {
    Zero,
    At(u64),
    /// `u64::MAX - n`.
    NearEnd(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Time {
    /// `now` never decreases.
    Forward,
    /// `now` sometimes steps back.
    Backward,
}

impl Cost {
    fn resolve(self, capacity: u64) -> u64 {
        match self {
            Cost::Zero => 0,
            Cost::Within(n) => 1 + n % capacity,
            Cost::Over(n) => capacity.saturating_add(1 + n),
            Cost::Huge(n) => n,
        }
    }
}

impl Step {
    fn apply(self, now: u64, period: u64) -> u64 {
        let part = |n: u64| (period as u128 * n as u128 / 256).min(u64::MAX as u128) as u64;
        match self {
            Step::Same => now,
            Step::Tiny(d) => now.saturating_add(d),
            Step::Fraction(f) => now.saturating_add(part(f as u64)),
            Step::Periods(k, f) => now
                .saturating_add(period.saturating_mul(k as u64))
                .saturating_add(part(f as u64)),
            Step::Jump(d) => now.saturating_add(d),
            Step::Back(f) => now.saturating_sub(part(f as u64)),
            Step::BackFar(d) => now.saturating_sub(d),
        }
    }
}

impl Start {
    fn at(self) -> u64 {
        match self {
            Start::Zero => 0,
            Start::At(t) => t,
            Start::NearEnd(n) => u64::MAX - n,
        }
    }
}

fn kind(refunds: bool) -> BoxedStrategy<Kind> {
    if refunds {
        prop_oneof![6 => Just(Kind::Check), 2 => Just(Kind::Peek), 2 => Just(Kind::Refund)].boxed()
    } else {
        prop_oneof![4 => Just(Kind::Check), 1 => Just(Kind::Peek)].boxed()
    }
}

fn cost() -> impl Strategy<Value = Cost> {
    prop_oneof![
        1 => Just(Cost::Zero),
        12 => (0u64..64).prop_map(Cost::Within),
        1 => (0u64..4).prop_map(Cost::Over),
        1 => any::<u64>().prop_map(Cost::Huge),
    ]
}

fn step(time: Time) -> BoxedStrategy<Step> {
    let forward = prop_oneof![
        6 => Just(Step::Same),
        4 => (0u64..=16).prop_map(Step::Tiny),
        8 => (0u16..=300).prop_map(Step::Fraction),
        3 => (0u8..=4, 0u16..256).prop_map(|(k, f)| Step::Periods(k, f)),
        1 => any::<u8>().prop_map(|k| Step::Periods(k, 0)),
        1 => any::<u64>().prop_map(Step::Jump),
        1 => (0u64..1 << 40).prop_map(Step::Jump),
    ];
    match time {
        Time::Forward => forward.boxed(),
        Time::Backward => prop_oneof![
            6 => forward,
            2 => (0u16..=600).prop_map(Step::Back),
            1 => (0u64..=64).prop_map(Step::BackFar),
            1 => any::<u64>().prop_map(Step::BackFar),
        ]
        .boxed(),
    }
}

fn ops(time: Time, refunds: bool) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (kind(refunds), cost(), step(time)).prop_map(|(kind, cost, step)| Op { kind, cost, step }),
        1..150,
    )
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        3 => Just(Start::Zero),
        3 => (0u64..1 << 40).prop_map(Start::At),
        1 => any::<u64>().prop_map(Start::At),
        1 => (0u64..1 << 20).prop_map(Start::NearEnd),
    ]
}

fn limit() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 1u64..=4,
        6 => 5u64..=16,
        2 => 17u64..=300,
        1 => Just(0u64),
    ]
}

fn period() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 1u64..=64,
        3 => 65u64..=100_000,
        3 => 1_000_000u64..=10_000_000_000,
        1 => (1u64 << 40)..=(1u64 << 62),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------------------------
// Driving a limiter and its reference in lockstep
// ------------------------------------------------------------------------------------------------

/// One op as it happened.
#[derive(Clone, Copy, Debug)]
struct Event {
    now: u64,
    kind: Kind,
    cost: u64,
    result: Result<Decision, CheckError>,
}

impl Event {
    fn admitted(&self) -> Option<(u64, u64)> {
        match (self.kind, self.result) {
            (Kind::Check, Ok(d)) if d.allowed => Some((self.now, self.cost)),
            _ => None,
        }
    }
}

/// Checks what must hold of any decision, whatever the algorithm.
fn sane(e: &Event, capacity: u64) -> Result<(), TestCaseError> {
    let Ok(d) = e.result else {
        return Ok(());
    };
    prop_assert_eq!(d.limit, capacity, "{:?}", e);
    prop_assert!(d.remaining <= capacity, "{:?}", e);
    // A wait is an instant on the caller's clock, or "never" (`u64::MAX`): never past the end.
    for wait in [d.retry_after, d.reset_after] {
        prop_assert!(
            wait == u64::MAX || e.now.checked_add(wait).is_some(),
            "a wait past the end of time: {:?}",
            e
        );
    }
    if d.allowed {
        prop_assert_eq!(d.retry_after, 0, "{:?}", e);
    } else {
        prop_assert!(e.kind != Kind::Refund, "a refund is never denied: {:?}", e);
        prop_assert!(d.retry_after > 0, "{:?}", e);
        // Denied means the cost does not fit now, except at the end of time (never fits).
        prop_assert!(
            d.remaining < e.cost || d.retry_after == u64::MAX,
            "denied although {} permits remain: {:?}",
            d.remaining,
            e
        );
    }
    Ok(())
}

/// The limiter's and the reference's idleness at `now`.
type Idleness<'a, L, R> = &'a dyn Fn(&L, &R, u64) -> (bool, bool);

/// Runs `ops` through `limiter` and `reference`, requiring identical results; `idle` (when given)
/// compares the limiter's idleness with the reference's after every op.
fn lockstep<L: RateLimiter, R: Reference>(
    limiter: &L,
    reference: &mut R,
    start: Start,
    ops: &[Op],
    period: u64,
    idle: Option<Idleness<L, R>>,
) -> Result<Vec<Event>, TestCaseError> {
    let capacity = reference.capacity();
    prop_assert_eq!(limiter.capacity(), capacity);
    let mut now = start.at();
    let mut events = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        now = op.step.apply(now, period);
        let cost = op.cost.resolve(capacity);
        let (got, want) = match op.kind {
            Kind::Check => (limiter.check(now, cost), reference.check(now, cost)),
            Kind::Peek => (limiter.peek(now, cost), reference.peek(now, cost)),
            Kind::Refund => (limiter.refund(now, cost), reference.refund(now, cost)),
        };
        let event = Event {
            now,
            kind: op.kind,
            cost,
            result: got,
        };
        prop_assert_eq!(
            got,
            want,
            "op #{} {:?}(now = {}, cost = {}) differs from the reference",
            i,
            op.kind,
            now,
            cost
        );
        sane(&event, capacity)?;
        if let Some(idle) = idle {
            let (got, want) = idle(limiter, reference, now);
            prop_assert_eq!(got, want, "idleness after op #{} at {}", i, now);
        }
        events.push(event);
    }
    Ok(events)
}

/// Admitted `(now, cost)` pairs, sorted by time.
fn admissions(events: &[Event]) -> Vec<(u64, u64)> {
    let mut a: Vec<_> = events.iter().filter_map(Event::admitted).collect();
    a.sort_unstable();
    a
}

// ------------------------------------------------------------------------------------------------
// Safety bounds, asserted directly on what was admitted (streams without refunds)
// ------------------------------------------------------------------------------------------------

/// Token bucket: the permits admitted at times within any `[t0, t1]` are at most
/// `burst + (t1 - t0) / T`, i.e. `n·T <= burst·T + (t1 - t0)`.
fn bucket_bound(events: &[Event], burst: u64, per_permit: u64) -> Result<(), TestCaseError> {
    let a = admissions(events);
    let t = per_permit as i128;
    // For all i <= j: (S_{j+1} - S_i)·T - (t_j - t_i) <= burst·T, with S the prefix sums.
    let mut lowest = i128::MAX;
    let mut sum = 0i128;
    for &(now, cost) in &a {
        lowest = lowest.min(sum * t - now as i128);
        sum += cost as i128;
        let excess = (sum * t - now as i128) - lowest;
        prop_assert!(
            excess <= burst as i128 * t,
            "token bucket over-admitted: {:?}",
            a
        );
    }
    Ok(())
}

/// Fixed window: every window holds at most `limit`, and windows are at least `period` apart.
fn fixed_bound(
    events: &[Event],
    limit: u64,
    period: u64,
    aligned: bool,
) -> Result<(), TestCaseError> {
    let a = admissions(events);
    let (Some(first), Some(last)) = (a.first(), a.last()) else {
        return Ok(());
    };
    let windows = if aligned {
        (last.0 / period - first.0 / period) as u128 + 1
    } else {
        ((last.0 - first.0) / period) as u128 + 1
    };
    let total: u128 = a.iter().map(|&(_, c)| c as u128).sum();
    prop_assert!(
        total <= limit as u128 * windows,
        "fixed window admitted {} in {} windows: {:?}",
        total,
        windows,
        a
    );
    Ok(())
}

/// Sliding window counter: each aligned window's counter holds at most `limit`, and a counter
/// only starts in a window some admitted request was made in.
fn sliding_bound(events: &[Event], limit: u64, period: u64) -> Result<(), TestCaseError> {
    let a = admissions(events);
    let mut windows: Vec<u64> = a.iter().map(|&(t, _)| t / period).collect();
    windows.dedup();
    let total: u128 = a.iter().map(|&(_, c)| c as u128).sum();
    prop_assert!(
        total <= limit as u128 * windows.len() as u128,
        "sliding window admitted {} over {} windows: {:?}",
        total,
        windows.len(),
        a
    );
    let monotone = events.windows(2).all(|w| w[0].now <= w[1].now);
    if monotone && events.iter().all(|e| e.kind != Kind::Refund) {
        // Time never going back: each aligned window admits at most `limit`.
        for group in a.chunk_by(|x, y| x.0 / period == y.0 / period) {
            let in_window: u64 = group.iter().map(|&(_, c)| c).sum();
            prop_assert!(in_window <= limit, "window over limit: {:?}", group);
        }
    }
    Ok(())
}

/// Sliding log: the permits admitted at times within any `(t - period, t]` are at most `limit`.
fn log_bound(admitted: &[(u64, u64)], limit: u64, period: u64) -> Result<(), TestCaseError> {
    let mut a = admitted.to_vec();
    a.sort_unstable();
    let mut lo = 0;
    let mut in_span = 0u64;
    for hi in 0..a.len() {
        in_span += a[hi].1;
        // Drop admissions at or before t - period.
        while a[hi].0 - a[lo].0 >= period {
            in_span -= a[lo].1;
            lo += 1;
        }
        // Ties at the right end: include every admission at the same instant.
        let mut ties = 0;
        let mut k = hi + 1;
        while k < a.len() && a[k].0 == a[hi].0 {
            ties += a[k].1;
            k += 1;
        }
        prop_assert!(
            in_span + ties <= limit,
            "sliding log admitted {} within one period ending at {}: {:?}",
            in_span + ties,
            a[hi].0,
            a
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Token bucket
// ------------------------------------------------------------------------------------------------

fn bucket_case(
    limit: u64,
    period: u64,
    burst: Option<u64>,
    start: Start,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let built = Quota::new(limit, period).and_then(|q| match burst {
        None => TokenBucket::new(q),
        Some(b) => TokenBucket::with_burst(q, b),
    });
    let reference = RefBucket::new(limit, period, burst.unwrap_or(limit));
    let (limiter, mut reference) = match (built, reference) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(got), want) => {
            prop_assert_eq!(Err(got), want.map(|_| ()));
            return Ok(());
        }
        (Ok(_), Err(want)) => return Err(TestCaseError::fail(format!("built, expected {want:?}"))),
    };
    let idle = |l: &TokenBucket, r: &RefBucket, now: u64| (l.is_idle(now), r.idle(now));
    let events = lockstep(&limiter, &mut reference, start, ops, period, Some(&idle))?;
    if ops.iter().all(|o| o.kind != Kind::Refund) {
        bucket_bound(&events, limiter.capacity(), reference.per_permit())?;
    }
    Ok(())
}

fn burst() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        3 => Just(None),
        3 => (1u64..=20).prop_map(Some),
        1 => any::<u64>().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn token_bucket_matches_reference(
        limit in limit(), period in period(), burst in burst(), start in start(),
        ops in ops(Time::Forward, true),
    ) {
        bucket_case(limit, period, burst, start, &ops)?;
    }

    #[test]
    fn token_bucket_matches_reference_when_time_steps_back(
        limit in limit(), period in period(), burst in burst(), start in start(),
        ops in ops(Time::Backward, true),
    ) {
        bucket_case(limit, period, burst, start, &ops)?;
    }

    #[test]
    fn token_bucket_never_over_admits_when_time_steps_back(
        limit in limit(), period in period(), burst in burst(), start in start(),
        ops in ops(Time::Backward, false),
    ) {
        bucket_case(limit, period, burst, start, &ops)?;
    }
}

// ------------------------------------------------------------------------------------------------
// Fixed window
// ------------------------------------------------------------------------------------------------

fn fixed_case(
    limit: u64,
    period: u64,
    raise: bool,
    aligned: bool,
    start: Start,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    // Mostly a period long enough for the packing, sometimes whatever was drawn.
    let period = if raise && limit > 0 {
        period.max(1 << (reference::bits_for(limit) + 4))
    } else {
        period
    };
    let built = Quota::new(limit, period).and_then(|q| {
        if aligned {
            FixedWindow::aligned(q)
        } else {
            FixedWindow::new(q)
        }
    });
    let reference = RefFixed::new(limit, period, aligned);
    let (limiter, mut reference) = match (built, reference) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(got), want) => {
            prop_assert_eq!(Err(got), want.map(|_| ()));
            return Ok(());
        }
        (Ok(_), Err(want)) => return Err(TestCaseError::fail(format!("built, expected {want:?}"))),
    };
    let idle = |l: &FixedWindow, r: &RefFixed, now: u64| (l.is_idle(now), r.idle(now));
    let events = lockstep(&limiter, &mut reference, start, ops, period, Some(&idle))?;
    if ops.iter().all(|o| o.kind != Kind::Refund) {
        fixed_bound(&events, limit, period, aligned)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fixed_window_matches_reference(
        limit in limit(), period in period(), raise in prop::bool::weighted(0.85),
        aligned in any::<bool>(), start in start(), ops in ops(Time::Forward, true),
    ) {
        fixed_case(limit, period, raise, aligned, start, &ops)?;
    }

    #[test]
    fn fixed_window_matches_reference_when_time_steps_back(
        limit in limit(), period in period(), raise in prop::bool::weighted(0.85),
        aligned in any::<bool>(), start in start(), ops in ops(Time::Backward, true),
    ) {
        fixed_case(limit, period, raise, aligned, start, &ops)?;
    }

    #[test]
    fn fixed_window_never_over_admits_when_time_steps_back(
        limit in limit(), period in period(), aligned in any::<bool>(), start in start(),
        ops in ops(Time::Backward, false),
    ) {
        fixed_case(limit, period, true, aligned, start, &ops)?;
    }
}

// ------------------------------------------------------------------------------------------------
// Sliding window counter
// ------------------------------------------------------------------------------------------------

fn sliding_case(limit: u64, period: u64, start: Start, ops: &[Op]) -> Result<(), TestCaseError> {
    let built = Quota::new(limit, period).and_then(SlidingWindow::new);
    let reference = RefSliding::new(limit, period);
    let (limiter, mut reference) = match (built, reference) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(got), want) => {
            prop_assert_eq!(Err(got), want.map(|_| ()));
            return Ok(());
        }
        (Ok(_), Err(want)) => return Err(TestCaseError::fail(format!("built, expected {want:?}"))),
    };
    let idle = |l: &SlidingWindow, r: &RefSliding, now: u64| (l.is_idle(now), r.idle(now));
    let events = lockstep(&limiter, &mut reference, start, ops, period, Some(&idle))?;
    if ops.iter().all(|o| o.kind != Kind::Refund) {
        sliding_bound(&events, limit, period)?;
    }
    Ok(())
}

fn sliding_limit() -> impl Strategy<Value = u64> {
    prop_oneof![
        10 => limit(),
        1 => (1u64 << 19)..(1u64 << 20),
        1 => Just((1u64 << 20) - 1),
        1 => Just(1u64 << 20),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sliding_window_matches_reference(
        limit in sliding_limit(), period in period(), start in start(),
        ops in ops(Time::Forward, true),
    ) {
        sliding_case(limit, period, start, &ops)?;
    }

    #[test]
    fn sliding_window_matches_reference_when_time_steps_back(
        limit in sliding_limit(), period in period(), start in start(),
        ops in ops(Time::Backward, true),
    ) {
        sliding_case(limit, period, start, &ops)?;
    }

    #[test]
    fn sliding_window_never_over_admits_when_time_steps_back(
        limit in sliding_limit(), period in period(), start in start(),
        ops in ops(Time::Backward, false),
    ) {
        sliding_case(limit, period, start, &ops)?;
    }
}

// ------------------------------------------------------------------------------------------------
// Sliding log
// ------------------------------------------------------------------------------------------------

fn log_case(limit: u64, period: u64, start: Start, ops: &[Op]) -> Result<(), TestCaseError> {
    let built = Quota::new(limit, period).and_then(SlidingLog::new);
    let reference = RefLog::new(limit, period, limit as usize);
    let (limiter, mut reference) = match (built, reference) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(got), want) => {
            prop_assert_eq!(Err(got), want.map(|_| ()));
            return Ok(());
        }
        (Ok(_), Err(want)) => return Err(TestCaseError::fail(format!("built, expected {want:?}"))),
    };
    let events = lockstep(&limiter, &mut reference, start, ops, period, None)?;
    if ops.iter().all(|o| o.kind != Kind::Refund) {
        log_bound(&admissions(&events), limit, period)?;
    }
    Ok(())
}

/// When the clock steps back after refunds, the log may decide more strictly than the exact
/// model (a refunded slot stays occupied for times before the refund). So follow the log's own
/// choices in the exact model and require only that whatever the log admits, the exact model
/// would admit too.
fn log_never_looser(
    limit: u64,
    period: u64,
    start: Start,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let (Ok(quota), Ok(mut exact)) = (
        Quota::new(limit, period),
        RefLog::new(limit, period, limit as usize),
    ) else {
        return Ok(());
    };
    let limiter = SlidingLog::new(quota).expect("valid quota");
    let mut now = start.at();
    for (i, op) in ops.iter().enumerate() {
        now = op.step.apply(now, period);
        let cost = op.cost.resolve(limit);
        let got = match op.kind {
            Kind::Check => limiter.check(now, cost),
            Kind::Peek => limiter.peek(now, cost),
            Kind::Refund => {
                let got = limiter.refund(now, cost);
                prop_assert_eq!(got.map(|_| ()), exact.refund(now, cost).map(|_| ()));
                continue;
            }
        };
        prop_assert_eq!(
            got.map(|_| ()),
            exact.peek(now, cost).map(|_| ()),
            "errors differ at op #{}",
            i
        );
        let Ok(d) = got else { continue };
        sane(
            &Event {
                now,
                kind: op.kind,
                cost,
                result: got,
            },
            limit,
        )?;
        if d.allowed {
            prop_assert!(
                exact.would_admit(now, cost),
                "op #{} {:?}(now = {}, cost = {}) admitted with {} permits counting",
                i,
                op.kind,
                now,
                cost,
                exact.live(now)
            );
            if op.kind == Kind::Check {
                exact.record(now, cost);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sliding_log_matches_reference(
        limit in limit(), period in period(), start in start(), ops in ops(Time::Forward, true),
    ) {
        log_case(limit, period, start, &ops)?;
    }

    #[test]
    fn sliding_log_matches_reference_when_time_steps_back(
        limit in limit(), period in period(), start in start(), ops in ops(Time::Backward, false),
    ) {
        log_case(limit, period, start, &ops)?;
    }

    #[test]
    fn sliding_log_never_looser_than_exact_when_time_steps_back_after_refunds(
        limit in limit(), period in period(), start in start(), ops in ops(Time::Backward, true),
    ) {
        log_never_looser(limit, period, start, &ops)?;
    }
}

// ------------------------------------------------------------------------------------------------
// Idle state: a rule's `is_idle` state decides exactly like the all-zero word from then on
// ------------------------------------------------------------------------------------------------

/// Runs `ops` through the pure rule; whenever the state is idle, the rest of the stream must
/// decide identically from that state and from the all-zero word, and `idle_after` must lead
/// to an idle state.
fn idle_case<R: WordRule>(
    rule: &R,
    start: Start,
    ops: &[Op],
    period: u64,
) -> Result<(), TestCaseError> {
    let apply = |state: &mut u64, now: u64, op: &Op| {
        let cost = op.cost.resolve(rule.capacity());
        let verdict = match op.kind {
            Kind::Check | Kind::Peek => rule.check(*state, now, cost),
            Kind::Refund => rule.refund(*state, now, cost),
        };
        if let (Ok(v), true) = (verdict, op.kind != Kind::Peek) {
            *state = v.next.unwrap_or(*state);
        }
        verdict.map(|v| v.decision)
    };
    let mut state = 0u64;
    let mut now = start.at();
    for (i, op) in ops.iter().enumerate() {
        now = op.step.apply(now, period);
        let _ = apply(&mut state, now, op);
        let wait = rule.idle_after(state, now);
        if let Some(then) = now.checked_add(wait) {
            prop_assert!(
                rule.is_idle(state, then),
                "idle_after({state:#x}, {now}) = {wait}, not idle then"
            );
        }
        if !rule.is_idle(state, now) {
            continue;
        }
        prop_assert_eq!(wait, 0);
        let (mut kept, mut dropped) = (state, 0u64);
        let mut later = now;
        for op in &ops[i + 1..] {
            later = op.step.apply(later, period);
            let a = apply(&mut kept, later, op);
            let b = apply(&mut dropped, later, op);
            prop_assert_eq!(
                a,
                b,
                "idle state {:#x} at {} decides differently at {}",
                state,
                now,
                later
            );
        }
    }
    Ok(())
}

/// Forward steps short enough that the sliding counter's window index never wraps (a gap of
/// 2^23 windows or more is documented to look like the clock stepping back).
fn short_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (
            kind(true),
            cost(),
            prop_oneof![
                2 => Just(Step::Same),
                2 => (0u64..=16).prop_map(Step::Tiny),
                4 => (0u16..=300).prop_map(Step::Fraction),
                2 => (0u8..=4, 0u16..256).prop_map(|(k, f)| Step::Periods(k, f)),
            ],
        )
            .prop_map(|(kind, cost, step)| Op { kind, cost, step }),
        1..100,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idle_state_decides_like_a_fresh_one(
        limit in 1u64..=16, period in 1_000u64..=1_000_000_000, burst in 1u64..=20,
        aligned in any::<bool>(), start in start(), ops in short_ops(),
    ) {
        let q = Quota::new(limit, period).unwrap();
        idle_case(&TokenBucketRule::with_burst(q, burst).unwrap(), start, &ops, period)?;
        idle_case(&SlidingWindowRule::new(q).unwrap(), start, &ops, period)?;
        let fixed = if aligned { FixedWindowRule::aligned(q) } else { FixedWindowRule::new(q) };
        idle_case(&fixed.unwrap(), start, &ops, period)?;
    }
}

// ------------------------------------------------------------------------------------------------
// The one-word limiter is its rule over one word
// ------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// `WordLimiter` stores exactly the rule's `next` word, and a denial or a peek writes nothing.
    #[test]
    fn word_limiter_stores_the_rules_words(
        limit in 1u64..=16, period in 1_000u64..=1_000_000_000, start in start(),
        ops in ops(Time::Backward, true),
    ) {
        let q = Quota::new(limit, period).unwrap();
        word_case(&WordLimiter::from_rule(TokenBucketRule::new(q).unwrap()), start, &ops, period)?;
        word_case(&WordLimiter::from_rule(FixedWindowRule::new(q).unwrap()), start, &ops, period)?;
        word_case(&WordLimiter::from_rule(SlidingWindowRule::new(q).unwrap()), start, &ops, period)?;
    }
}

fn word_case<R: WordRule>(
    limiter: &WordLimiter<R>,
    start: Start,
    ops: &[Op],
    period: u64,
) -> Result<(), TestCaseError> {
    let rule = limiter.rule();
    let mut now = start.at();
    for op in ops {
        now = op.step.apply(now, period);
        let cost = op.cost.resolve(rule.capacity());
        let before = limiter.state();
        let (got, verdict) = match op.kind {
            Kind::Check => (limiter.check(now, cost), rule.check(before, now, cost)),
            Kind::Peek => (limiter.peek(now, cost), rule.check(before, now, cost)),
            Kind::Refund => (limiter.refund(now, cost), rule.refund(before, now, cost)),
        };
        prop_assert_eq!(got, verdict.map(|v| v.decision));
        let expected = match (op.kind, verdict) {
            (Kind::Peek, _) | (_, Err(_)) => before,
            (_, Ok(v)) => {
                if !v.decision.allowed {
                    prop_assert_eq!(v.next, None, "a denial writes");
                }
                v.next.unwrap_or(before)
            }
        };
        prop_assert_eq!(limiter.state(), expected);
    }
    Ok(())
}

/// Quota errors are the reference's for any input.
#[test]
fn quota_errors_match_the_references() {
    let cases = [
        (0, 1, QuotaError::ZeroLimit),
        (1, 0, QuotaError::ZeroPeriod),
        (0, 0, QuotaError::ZeroLimit),
    ];
    for (limit, period, want) in cases {
        assert_eq!(Quota::new(limit, period).unwrap_err(), want);
        assert_eq!(RefBucket::new(limit, period, 1).unwrap_err(), want);
        assert_eq!(RefFixed::new(limit, period, false).unwrap_err(), want);
        assert_eq!(RefSliding::new(limit, period).unwrap_err(), want);
        assert_eq!(
            RefLog::new(limit, period, limit as usize).unwrap_err(),
            want
        );
    }
}
