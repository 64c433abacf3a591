//! Memory per live key: builds each keyed limiter, fills it with 1 000 000 keys (`user:<n>`),
//! and reports the heap bytes it holds divided by the number of keys, measured by a counting
//! global allocator. governor's keyed (DashMap) limiter is measured the same way, with `String`
//! keys (what it must store to key by string) and with `u64` keys (its best case).
//!
//! Usage: `cargo run --release -p ratewall-benches --bin keyed_memory [KEYS]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

use governor::clock::FakeRelativeClock;
use ratewall::keyed::{Keyed, KeyedLog, KeyedOptions, KeyedState};
use ratewall::{FixedWindowRule, Quota, SlidingWindowRule, TokenBucketRule};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes held by what `build` returns, per key.
fn per_key<T>(keys: usize, build: impl FnOnce() -> T) -> f64 {
    let before = LIVE.load(Ordering::Relaxed);
    let held = build();
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(held);
    bytes as f64 / keys as f64
}

fn ratewall<S: KeyedState>(state: S, keys: usize) -> Keyed<S> {
    let options = KeyedOptions {
        max_keys: keys,
        ..KeyedOptions::default()
    };
    let keyed = Keyed::new(state, options).unwrap();
    for n in 0..keys {
        keyed.check(format!("user:{n}"), 0, 1).unwrap();
    }
    assert_eq!(keyed.len(), keys);
    keyed
}

fn main() {
    let keys: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |n| n.parse().expect("KEYS must be a number"));
    let quota = Quota::per_second(100).unwrap();
    println!("memory per live key at {keys} keys (heap bytes / keys)");
    let rows: [(&str, f64); 6] = [
        (
            "ratewall token bucket",
            per_key(keys, || {
                ratewall(TokenBucketRule::new(quota).unwrap(), keys)
            }),
        ),
        (
            "ratewall fixed window",
            per_key(keys, || {
                ratewall(FixedWindowRule::new(quota).unwrap(), keys)
            }),
        ),
        (
            "ratewall sliding window counter",
            per_key(keys, || {
                ratewall(SlidingWindowRule::new(quota).unwrap(), keys)
            }),
        ),
        (
            "ratewall sliding log (limit 10)",
            per_key(keys, || {
                ratewall(KeyedLog::new(Quota::per_second(10).unwrap()).unwrap(), keys)
            }),
        ),
        (
            "governor keyed, String keys",
            per_key(keys, || {
                let q = governor::Quota::per_second(NonZeroU32::new(100).unwrap());
                let limiter =
                    governor::RateLimiter::dashmap_with_clock(q, FakeRelativeClock::default());
                for n in 0..keys {
                    let _ = limiter.check_key(&format!("user:{n}"));
                }
                limiter
            }),
        ),
        (
            "governor keyed, u64 keys",
            per_key(keys, || {
                let q = governor::Quota::per_second(NonZeroU32::new(100).unwrap());
                let limiter =
                    governor::RateLimiter::dashmap_with_clock(q, FakeRelativeClock::default());
                for n in 0..keys as u64 {
                    let _ = limiter.check_key(&n);
                }
                limiter
            }),
        ),
    ];
    for (name, bytes) in rows {
        println!("{name:<34} {bytes:>7.1} B/key");
    }
}
