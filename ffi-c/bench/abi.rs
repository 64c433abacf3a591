//! The per-call cost of the C ABI over the direct Rust call, on the allow path of a single key.
//!
//! `rust_direct` calls `Policy::check_at`; `c_abi` calls the exported `rw_check` through a
//! function pointer the optimiser cannot see through (as a C caller does), on an identical
//! policy, and includes everything a C caller pays: argument checks, the panic guard and
//! filling `rw_decision`. The difference of the two medians is the ABI's overhead.
//!
//! ```sh
//! make -C ffi-c bench        # or: cargo bench -p ratewall-ffi --bench abi
//! ```

use std::ffi::c_char;
use std::hint::black_box;
use std::ptr;
use std::time::Duration;

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

type CheckFn = unsafe extern "C" fn(
    *const rw_policy,
    *const u8,
    usize,
    u64,
    u64,
    *mut rw_decision,
) -> rw_status;

fn check(c: &mut Criterion) {
    let direct = Policy::parse("bench", RATES, PolicyOptions::default()).expect("valid policy");
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

    // Criterion calls each routine several times (warm-up, samples): time must keep moving
    // forward across those calls, or the bucket would run dry.
    let mut now_direct = 0_u64;
    let mut now_abi = 0_u64;
    let mut group = c.benchmark_group("check_allow");
    // Many short samples of equal size: on a shared machine most of them run undisturbed, so
    // the medians compare the code rather than the neighbours' load.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("rust_direct", |b| {
        let now = &mut now_direct;
        b.iter(|| {
            *now += STEP;
            let d = direct
                .check_at(black_box(KEY), black_box(*now), 1)
                .expect("valid cost");
            assert!(d.allowed());
            black_box(d.decision().remaining)
        })
    });
    group.bench_function("c_abi", |b| {
        let check: CheckFn = black_box(rw_check);
        let policy = black_box(handle as *const rw_policy);
        let mut out = rw_decision::default();
        let now = &mut now_abi;
        b.iter(|| {
            *now += STEP;
            let status = unsafe {
                check(
                    policy,
                    KEY.as_ptr(),
                    KEY.len(),
                    black_box(*now),
                    1,
                    &mut out,
                )
            };
            assert!(status == rw_status::RW_OK && out.allowed);
            black_box(out.remaining)
        })
    });
    group.finish();
    unsafe { rw_policy_free(handle) };
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(500);
    targets = check
}
criterion_main!(benches);
