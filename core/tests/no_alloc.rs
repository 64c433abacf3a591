//! The hot path of a keyed check on an existing key allocates nothing, for every algorithm and
//! for policies (the sliding log allocates a key's log once, on its first admission).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ratewall::policy::{Algorithm, Policy, PolicyOptions};

struct PerThreadCounting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for PerThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the thread-local may already be gone while a thread shuts down.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: PerThreadCounting = PerThreadCounting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn checking_an_existing_key_allocates_nothing() {
    for algorithm in Algorithm::ALL {
        for rates in ["100/second", "100/second; 10000/day"] {
            let options = PolicyOptions {
                algorithm,
                ..PolicyOptions::default()
            };
            let policy = Policy::parse("p", rates, options).unwrap();
            policy.check_at("user:1", 0, 1).unwrap();
            let n = allocations_during(|| {
                for i in 0..1000u64 {
                    let now = i * 20_000_000; // 50 per second: every limit admits
                    let d = policy.check_at("user:1", now, 1).unwrap();
                    assert!(d.allowed());
                    policy.peek_at("user:1", now, 1).unwrap();
                }
            });
            assert_eq!(n, 0, "{algorithm} {rates}: {n} allocations");
        }
    }
}
