//! Decisions per second through Redis over loopback, and Redis memory per key.
//!
//! `cargo bench -p ratewall-redis` measures, for every algorithm:
//! - blocking callers: 1, 8 and 32 threads calling `check` (each waits for its round trip);
//! - async callers: 1, 16, 64 and 256 requests in flight (`check_async`), pipelined over the
//!   store's one multiplexed connection;
//! - latency (p50/p99) of one blocking decision from a single caller;
//! - `MEMORY USAGE` of one client's key (policy `api`; the sliding log holding 100 entries).
//!
//! Every measurement is bounded in count and time. Uses `REDIS_TEST_URL` if set, else starts a
//! private `redis-server` on a free loopback port (stopped at exit). Run as a test
//! (`cargo test --benches`), it only makes a few decisions per case to prove it works.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall_redis::{FailMode, RedisOptions, RedisPolicy, RedisStore, Source};

struct Budget {
    max_ops: u64,
    max_time: Duration,
}

fn policy(store: &RedisStore, algorithm: Algorithm, name: &str) -> RedisPolicy {
    let options = PolicyOptions {
        algorithm,
        ..PolicyOptions::default()
    };
    // A quota large enough that the bench measures admissions and denials alike.
    let rate = match algorithm {
        Algorithm::SlidingLog => "100/second",
        _ => "1000/second",
    };
    RedisPolicy::new(
        store,
        Policy::parse(name, rate, options).unwrap(),
        FailMode::Open,
    )
    .unwrap()
}

/// `threads` blocking callers, each on its own keys.
fn blocking(p: &RedisPolicy, threads: u64, budget: &Budget) -> f64 {
    let done = AtomicU64::new(0);
    let fallbacks = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (done, fallbacks) = (&done, &fallbacks);
            s.spawn(move || {
                let mut i = 0u64;
                while done.load(Ordering::Relaxed) < budget.max_ops
                    && start.elapsed() < budget.max_time
                {
                    let o = p.check(format!("client-{t}-{}", i % 64), 1).unwrap();
                    if o.source != Source::Redis {
                        fallbacks.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
    });
    assert_eq!(
        fallbacks.load(Ordering::Relaxed),
        0,
        "Redis failed during the bench"
    );
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// `in_flight` async requests at all times, from a caller runtime of 2 threads.
fn pipelined(p: &RedisPolicy, in_flight: u64, budget: &Budget) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let done = std::sync::Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..in_flight {
            let p = p.clone();
            let done = done.clone();
            let max_ops = budget.max_ops;
            let max_time = budget.max_time;
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while done.load(Ordering::Relaxed) < max_ops && start.elapsed() < max_time {
                    let o = p
                        .check_async(format!("client-{w}-{}", i % 64), 1)
                        .await
                        .unwrap();
                    assert_eq!(o.source, Source::Redis, "Redis failed during the bench");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Latency of one blocking decision (p50, p99, in µs) from a single caller.
fn latency(p: &RedisPolicy, budget: &Budget) -> (f64, f64) {
    let n = budget.max_ops.min(20_000) as usize;
    let start = Instant::now();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        if start.elapsed() > budget.max_time {
            break;
        }
        let t = Instant::now();
        p.check(format!("latency-{}", i % 64), 1).unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

fn memory(store: &RedisStore, p: &RedisPolicy, taken: u64) -> i64 {
    let client = "203.0.113.7";
    p.reset(client).unwrap();
    for _ in 0..taken {
        p.check(client, 1).unwrap();
    }
    let key = &p.redis_keys(client)[0];
    let mut cmd = redis::cmd("MEMORY");
    cmd.arg("USAGE").arg(key).arg("SAMPLES").arg(0);
    match store.raw_command(cmd).unwrap() {
        redis::Value::Int(b) => b,
        other => panic!("MEMORY USAGE: {other:?}"),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full {
        Budget {
            max_ops: 400_000,
            max_time: Duration::from_millis(1500),
        }
    } else {
        Budget {
            max_ops: 50,
            max_time: Duration::from_secs(5),
        }
    };
    let Some(url) = common::shared_url() else {
        eprintln!("no redis-server: nothing measured");
        return;
    };
    let store = RedisStore::connect(
        &url,
        RedisOptions {
            // Generous: a bench must not fall back because the machine is busy.
            command_timeout: Duration::from_secs(2),
            ..RedisOptions::default()
        },
    )
    .unwrap();
    println!("ratewall-redis throughput over loopback ({url}), decisions/s");
    println!(
        "{:<24} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9} | {:>8} | {:>13}",
        "algorithm",
        "1 thr",
        "8 thr",
        "32 thr",
        "1 async",
        "16 async",
        "64 async",
        "256 async",
        "B/key",
        "p50/p99 µs"
    );
    for algorithm in Algorithm::ALL {
        let p = policy(&store, algorithm, &common::unique("bench"));
        let b: Vec<f64> = [1, 8, 32]
            .iter()
            .map(|&t| blocking(&p, t, &budget))
            .collect();
        let a: Vec<f64> = [1, 16, 64, 256]
            .iter()
            .map(|&n| pipelined(&p, n, &budget))
            .collect();
        // Memory with a production-like key name: policy `api`, default prefix.
        let api = policy(&store, algorithm, "api");
        let taken = if algorithm == Algorithm::SlidingLog {
            100
        } else {
            1
        };
        let bytes = memory(&store, &api, taken);
        api.reset("203.0.113.7").unwrap();
        let (p50, p99) = latency(&p, &budget);
        println!(
            "{:<24} {:>9.0} {:>9.0} {:>9.0} | {:>9.0} {:>9.0} {:>9.0} {:>9.0} | {:>8} | {:>6.0}/{:<6.0}",
            algorithm.name(),
            b[0],
            b[1],
            b[2],
            a[0],
            a[1],
            a[2],
            a[3],
            bytes,
            p50,
            p99
        );
    }
    let h = store.health();
    println!(
        "Redis decisions {}, errors {}, fallbacks {}",
        h.redis_decisions,
        h.errors,
        h.fail_open + h.fail_closed + h.local
    );
    if !full {
        println!("(smoke run: pass --bench for measurements)");
    }
}
