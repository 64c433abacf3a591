//! Several processes, each with its own connection, hammer one key of one policy through one
//! Redis at the same moment: together they admit exactly the quota. (The test binary runs
//! itself as the worker processes.)

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall_redis::{FailMode, RedisOptions, RedisPolicy, RedisStore, Source};

const WORKER: &str = "RW_REDIS_TEST_WORKER";
const PROCESSES: usize = 4;
const REQUESTS: usize = 60;
const LIMIT: u64 = 100;

/// In a worker process: make `REQUESTS` checks and print how many were admitted.
fn worker(spec: &str) {
    let mut parts = spec.split('|');
    let (url, name, algorithm) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let options = PolicyOptions {
        algorithm: algorithm.parse().unwrap(),
        ..PolicyOptions::default()
    };
    let store = RedisStore::connect(
        url,
        RedisOptions {
            command_timeout: Duration::from_secs(2),
            ..RedisOptions::default()
        },
    )
    .unwrap();
    let policy = Policy::parse(name, &format!("{LIMIT}/hour"), options).unwrap();
    let policy = RedisPolicy::new(&store, policy, FailMode::Closed).unwrap();
    let mut admitted = 0;
    for _ in 0..REQUESTS {
        let outcome = policy.check("one-key", 1).unwrap();
        assert_eq!(outcome.source, Source::Redis);
        admitted += outcome.allowed() as u64;
    }
    println!("admitted={admitted}");
}

#[test]
fn processes_together_admit_exactly_the_quota() {
    if let Ok(spec) = std::env::var(WORKER) {
        worker(&spec);
        return;
    }
    let Some(url) = common::shared_url() else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    for algorithm in Algorithm::ALL {
        let name = common::unique("procs");
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "processes_together_admit_exactly_the_quota",
                        "--exact",
                        "--nocapture",
                    ])
                    .env(WORKER, format!("{url}|{name}|{algorithm}"))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut total = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "worker failed");
            let text = String::from_utf8(out.stdout).unwrap();
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("admitted="))
                .unwrap_or_else(|| panic!("no count in worker output: {text}"));
            total += line.trim().parse::<u64>().unwrap();
        }
        assert_eq!(
            total, LIMIT,
            "{algorithm}: {PROCESSES} processes × {REQUESTS} requests"
        );
    }
}
