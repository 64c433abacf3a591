//! ratewall against its peers, in one run: single-thread allow and deny paths, two threads on one
//! shared limiter, governor's direct limiter and a bare CAS as the physical floor.
//!
//! Benchmark ids are `<scenario>/<subject>`: scenarios `allow`, `steady`, `deny` and `two_threads`;
//! subjects `token_bucket`, `fixed_window`, `sliding_window`, `sliding_log`, `governor`,
//! `cas_floor` (allow and two threads), `clocked_floor` (allow only: the clock read every
//! subject makes plus one CAS) and `deny_floor` (deny only: the same clock read, one load, one
//! comparison). All times are per decision (the two-thread times are aggregate:
//! wall time / 2N).
//! The quota shape, clock handling and black-boxing are described in the `ratewall_benches`
//! crate docs. `src/bin/ratios.rs` turns the results into the project's target ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ratewall_benches::{
    allow_loop, cas_floor, clocked_floor, contended_allow, deny_floor, deny_loop, exhaust,
    fixed_window, governor, sliding_log, sliding_window, steady_loop, token_bucket, two_threads,
    Subject, LIMIT,
};

fn discard(ok: bool) {
    black_box(ok);
}

fn allow<S: Subject>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, make: fn() -> S) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let subject = make();
            let start = Instant::now();
            allow_loop(&subject, iters, LIMIT, discard);
            start.elapsed()
        })
    });
}

fn steady<S: Subject>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, make: fn() -> S) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let subject = make();
            let start = Instant::now();
            steady_loop(&subject, iters, discard);
            start.elapsed()
        })
    });
}

fn deny<S: Subject>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, make: fn() -> S) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let subject = make();
            exhaust(&subject);
            let start = Instant::now();
            deny_loop(&subject, iters, discard);
            start.elapsed()
        })
    });
}

fn contended<S: Subject>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, make: fn() -> S) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| -> Duration {
            let subject = make();
            two_threads(&subject, iters, |s, n| contended_allow(s, n, discard))
        })
    });
}

fn single_thread_allow(c: &mut Criterion) {
    let mut group = c.benchmark_group("allow");
    group.throughput(Throughput::Elements(1));
    allow(&mut group, "token_bucket", token_bucket);
    allow(&mut group, "fixed_window", fixed_window);
    allow(&mut group, "sliding_window", sliding_window);
    allow(&mut group, "sliding_log", sliding_log);
    allow(&mut group, "governor", governor);
    allow(&mut group, "cas_floor", cas_floor);
    allow(&mut group, "clocked_floor", clocked_floor);
    group.finish();
}

fn single_thread_steady(c: &mut Criterion) {
    let mut group = c.benchmark_group("steady");
    group.throughput(Throughput::Elements(1));
    steady(&mut group, "token_bucket", token_bucket);
    steady(&mut group, "fixed_window", fixed_window);
    steady(&mut group, "sliding_window", sliding_window);
    steady(&mut group, "sliding_log", sliding_log);
    steady(&mut group, "governor", governor);
    group.finish();
}

fn single_thread_deny(c: &mut Criterion) {
    let mut group = c.benchmark_group("deny");
    group.throughput(Throughput::Elements(1));
    deny(&mut group, "token_bucket", token_bucket);
    deny(&mut group, "fixed_window", fixed_window);
    deny(&mut group, "sliding_window", sliding_window);
    deny(&mut group, "sliding_log", sliding_log);
    deny(&mut group, "governor", governor);
    deny(&mut group, "deny_floor", deny_floor);
    group.finish();
}

fn two_thread_allow(c: &mut Criterion) {
    let mut group = c.benchmark_group("two_threads");
    group.throughput(Throughput::Elements(1));
    contended(&mut group, "token_bucket", token_bucket);
    contended(&mut group, "fixed_window", fixed_window);
    contended(&mut group, "sliding_window", sliding_window);
    contended(&mut group, "sliding_log", sliding_log);
    contended(&mut group, "governor", governor);
    contended(&mut group, "cas_floor", cas_floor);
    group.finish();
}

criterion_group!(
    benches,
    single_thread_allow,
    single_thread_steady,
    single_thread_deny,
    two_thread_allow
);
criterion_main!(benches);
