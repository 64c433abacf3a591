#![cfg(not(debug_assertions))]
//! A flood of 10 million distinct keys against a bounded keyed limiter: memory stays within the
//! configured bound, and with `DenyNewKeys` the victim's login counter is never reset.
//!
//! Memory is measured with a counting global allocator: the peak of live heap bytes during the
//! flood, minus what was live before the limiter was built. The file builds in release only
//! (`make test` runs it so), where the 20 million checks take a few seconds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ratewall::keyed::{Keyed, KeyedOptions, Overflow};
use ratewall::time::{MINUTE, SECOND};
use ratewall::{FixedWindowRule, Quota};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MAX_KEYS: usize = 100_000;
const FLOOD: u64 = 10_000_000;
/// Slots for the bound at 4/5 occupancy, 16 bytes each, a sixteenth more for shards that hashing
/// made busier than the rest, one shard's transient copy during a rebuild, and a little for
/// shard headers.
const MEMORY_BOUND: usize = MAX_KEYS * 5 / 4 * 17 + MAX_KEYS * 5 / 4 * 16 / 64 * 2 + 64 * 1024;

struct Outcome {
    victim_denied: bool,
    flood_admitted: u64,
    peak_bytes: usize,
    max_keys: usize,
}

/// The allocator's counters are process-wide: floods run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn flood(overflow: Overflow) -> Outcome {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    // A login counter: 5 attempts per 15 minutes per account.
    let quota = Quota::new(5, 15 * MINUTE).unwrap();
    let options = KeyedOptions {
        max_keys: MAX_KEYS,
        overflow,
    };
    let logins = Keyed::new(FixedWindowRule::new(quota).unwrap(), options).unwrap();
    for _ in 0..5 {
        assert!(logins.check("victim@example.com", 0, 1).unwrap().allowed);
    }
    // The attacker spreads 10 M attempts over 10 M accounts within one second.
    let mut flood_admitted = 0;
    for n in 0..FLOOD {
        let d = logins.check(n.to_le_bytes(), SECOND + n / 10, 1).unwrap();
        flood_admitted += d.allowed as u64;
    }
    assert!(logins.len() <= logins.max_keys());
    let peak_bytes = PEAK.load(Ordering::Relaxed) - base;
    let victim_denied = !logins
        .check("victim@example.com", 2 * SECOND, 1)
        .unwrap()
        .allowed;
    Outcome {
        victim_denied,
        flood_admitted,
        peak_bytes,
        max_keys: logins.max_keys(),
    }
}

#[test]
fn ten_million_keys_deny_new_keys() {
    let out = flood(Overflow::DenyNewKeys);
    eprintln!(
        "deny-new-keys: peak {} bytes for {MAX_KEYS} keys",
        out.peak_bytes
    );
    assert!(
        out.peak_bytes <= MEMORY_BOUND,
        "peak {} > bound {MEMORY_BOUND}",
        out.peak_bytes
    );
    assert!(
        out.victim_denied,
        "the flood reset the victim's login counter"
    );
    // Only the keys that found room before the table filled were admitted (the victim holds one
    // place of the bound).
    assert_eq!(out.max_keys, MAX_KEYS);
    assert_eq!(out.flood_admitted, MAX_KEYS as u64 - 1);
}

#[test]
fn ten_million_keys_evict_nearest_idle() {
    let out = flood(Overflow::EvictNearestIdle);
    eprintln!(
        "evict-nearest-idle: peak {} bytes for {MAX_KEYS} keys",
        out.peak_bytes
    );
    assert!(
        out.peak_bytes <= MEMORY_BOUND,
        "peak {} > bound {MEMORY_BOUND}",
        out.peak_bytes
    );
    // Every new key is served; the price is that evicted counters start over, which is why
    // login limits should choose DenyNewKeys.
    assert_eq!(out.flood_admitted, FLOOD);
}
