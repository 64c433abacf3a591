//! The per-call cost of the C ABI over the direct Rust call, on the allow path of a single key.
//!
//! `rust_direct` calls `Policy::check_one_at`, the leanest Rust call for a one-limit policy
//! (the same path `rw_check` takes inside);
//! `c_abi` calls the exported `rw_check` through a function pointer the optimiser cannot see
//! through (as a C caller does) on an identical policy, and so includes everything a C caller
//! pays: argument checks, the panic guard and filling `rw_decision`. The difference of the two
//! is the ABI's overhead.
//!
//! The machine this runs on is shared, so the two are measured *interleaved*: every sample of
//! either bench alternates short chunks of direct and ABI calls and reports its own side's
//! time, and each pair of neighbouring chunks gives one difference. The median of those
//! differences, printed at the end, is the overhead: load from other processes falls on both
//! sides alike, and a chunk that a context switch hit is an outlier the median ignores.
//!
//! ```sh
//! make -C ffi-c bench        # or: cargo bench -p ratewall-ffi --bench abi (then bench/run.sh's report)
//! ```

use std::ffi::c_char;
use std::hint::black_box;
use std::ptr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use ratewall::policy::{Policy, PolicyOptions};
use ratewall_ffi::{
    rw_check, rw_decision, rw_policy, rw_policy_free, rw_policy_from_str, rw_status,
};

/// One permit per microsecond, a million at once: advancing `now` by 1 µs per call keeps every
/// call on the allow path.
const RATES: &str = "1000000/second";
const STEP: u64 = 1_000;
const KEY: &[u8] = b"203.0.113.7";
/// Calls per timed chunk: long enough that reading the clock (~20 ns) is noise, short enough
/// that the two sides see the same machine.
const CHUNK: u64 = 256;

type CheckFn = unsafe extern "C" fn(
    *const rw_policy,
    *const u8,
    usize,
    u64,
    u64,
    *mut rw_decision,
) -> rw_status;

/// Both sides of the comparison, with their own clocks (`now` only moves forward, across every
/// call criterion makes).
struct Pair {
    direct: Policy,
    handle: *mut rw_policy,
    check: CheckFn,
    now_direct: u64,
    now_abi: u64,
    out: rw_decision,
    /// Per-call difference (ABI minus direct, ns) of every pair of neighbouring chunks.
    overheads: Vec<f64>,
}

impl Pair {
    fn direct_chunk(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            self.now_direct += STEP;
            let d = self
                .direct
                .check_one_at(black_box(KEY), black_box(self.now_direct), 1)
                .expect("one limit")
                .expect("valid cost");
            assert!(d.allowed);
            black_box(d.remaining);
        }
        start.elapsed()
    }

    fn abi_chunk(&mut self, n: u64) -> Duration {
        let (check, policy) = (black_box(self.check), black_box(self.handle.cast_const()));
        let start = Instant::now();
        for _ in 0..n {
            self.now_abi += STEP;
            let status = unsafe {
                check(
                    policy,
                    KEY.as_ptr(),
                    KEY.len(),
                    black_box(self.now_abi),
                    1,
                    &mut self.out,
                )
            };
            assert!(status == rw_status::RW_OK && self.out.allowed);
            black_box(self.out.remaining);
        }
        start.elapsed()
    }

    /// `iters` calls of each side, interleaved chunk by chunk: (direct, abi) total times.
    fn run(&mut self, iters: u64) -> (Duration, Duration) {
        let (mut direct, mut abi) = (Duration::ZERO, Duration::ZERO);
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK);
            let (d, a) = (self.direct_chunk(n), self.abi_chunk(n));
            self.overheads
                .push((a.as_nanos() as f64 - d.as_nanos() as f64) / n as f64);
            direct += d;
            abi += a;
            left -= n;
        }
        (direct, abi)
    }
}

fn check(c: &mut Criterion) {
    let mut handle: *mut rw_policy = ptr::null_mut();
    let status = unsafe {
        rw_policy_from_str(
            c"bench".as_ptr().cast::<c_char>(),
            c"1000000/second".as_ptr().cast::<c_char>(),
            ptr::null(),
            &mut handle,
        )
    };
    assert_eq!(status, rw_status::RW_OK);
    let mut pair = Pair {
        direct: Policy::parse("bench", RATES, PolicyOptions::default()).expect("valid policy"),
        handle,
        check: rw_check,
        now_direct: 0,
        now_abi: 0,
        out: rw_decision::default(),
        overheads: Vec::new(),
    };

    let mut group = c.benchmark_group("check_allow");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("rust_direct", |b| b.iter_custom(|iters| pair.run(iters).0));
    group.bench_function("c_abi", |b| b.iter_custom(|iters| pair.run(iters).1));
    group.finish();
    unsafe { rw_policy_free(handle) };

    // A chunk pair that a context switch hit is an outlier on one side; the median of the pairs
    // is the cost of the code.
    let mut overheads = std::mem::take(&mut pair.overheads);
    overheads.sort_by(f64::total_cmp);
    let q = |f: f64| overheads[((overheads.len() - 1) as f64 * f) as usize];
    println!(
        "C ABI overhead, paired chunks of {CHUNK} calls: median {:+.2} ns per check \
         (p25 {:+.2}, p75 {:+.2}; {} pairs)",
        q(0.5),
        q(0.25),
        q(0.75),
        overheads.len()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(300);
    targets = check
}
criterion_main!(benches);
