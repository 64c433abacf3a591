//! The batch script: many decisions in one call must be exactly the same decisions, and leave
//! exactly the same state, as the same decisions made by the one-decision script one after the
//! other; a decision that fails, fails alone; a store held for a turn sends its decisions as
//! one call at one Redis `TIME`.
//!
//! The scripts are driven directly (`EVAL` with the test-only explicit times), on two copies of
//! the same clients under two key prefixes: one copy decided call by call, the other in batches
//! of random sizes. Sequences are seeded; a failure prints the seed.

mod common;

use common::Rng;

use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall_redis::script::{BATCH_SCRIPT, SCRIPT};
use ratewall_redis::{FailMode, RedisPolicy, RedisStore, Source};
use redis::Value;

/// TTL slack for explicit times: keys outlive the real time a test takes.
const SLACK_MS: u64 = 600_000;

/// A client with a policy of its own: one algorithm, one to three limits.
struct Client {
    algorithm: &'static str,
    /// Per limit: the script's two parameters (token bucket: interval µs and burst; the others:
    /// limit and period µs).
    limits: Vec<(u64, u64)>,
    /// The client's keys without the copy's prefix.
    keys: Vec<String>,
}

fn random_client(rng: &mut Rng, n: usize) -> Client {
    let algorithms = ["tb", "fw", "fwa", "sw", "sl"];
    let algorithm = algorithms[(rng.next() % algorithms.len() as u64) as usize];
    let count = rng.range(1, 3) as usize;
    let limits = (0..count)
        .map(|_| match algorithm {
            "tb" => (rng.range(1, 400_000), rng.range(1, 5)),
            _ => (rng.range(1, 5), rng.range(1, 1_000_000)),
        })
        .collect();
    // One hash tag per client, as the policies' keys have.
    let keys = (0..count).map(|i| format!("{{c{n}}}:{i}")).collect();
    Client {
        algorithm,
        limits,
        keys,
    }
}

/// One decision's keys and arguments, as the one-decision script takes them.
fn request(client: &Client, prefix: &str, op: &str, cost: u64, now_us: u64) -> Call {
    let mut args = vec![
        op.to_string(),
        client.algorithm.to_string(),
        cost.to_string(),
    ];
    for (a, b) in &client.limits {
        args.push(a.to_string());
        args.push(b.to_string());
    }
    args.push(now_us.to_string());
    args.push(SLACK_MS.to_string());
    Call {
        keys: client.keys.iter().map(|k| format!("{prefix}{k}")).collect(),
        args,
    }
}

#[derive(Clone)]
struct Call {
    keys: Vec<String>,
    args: Vec<String>,
}

fn eval(store: &RedisStore, script: &str, keys: &[String], args: &[String]) -> String {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys).arg(args);
    match store.raw_command(cmd) {
        Ok(Value::BulkString(text)) => String::from_utf8(text).unwrap(),
        Ok(other) => panic!("unexpected reply {other:?}"),
        Err(e) => format!("E {e}"),
    }
}

/// The batch script's keys and arguments for `calls`: consecutive calls with the same
/// arguments go as one run, as the store sends them.
fn batch_request(calls: &[Call]) -> (Vec<String>, Vec<String>) {
    let mut runs: Vec<(usize, &Call)> = Vec::new();
    for c in calls {
        match runs.last_mut() {
            Some((m, first)) if first.args == c.args && first.keys.len() == c.keys.len() => *m += 1,
            _ => runs.push((1, c)),
        }
    }
    let mut args = vec![runs.len().to_string()];
    for (m, first) in &runs {
        args.push(m.to_string());
        args.push(first.keys.len().to_string());
        args.push(first.args.len().to_string());
    }
    for (_, first) in &runs {
        args.extend(first.args.iter().cloned());
    }
    let keys = calls.iter().flat_map(|c| c.keys.clone()).collect();
    (keys, args)
}

/// A key's whole state: its value (string or list) and whether it has an expiry.
fn state(store: &RedisStore, key: &str) -> String {
    let kind = match store.raw_command(redis::cmd("TYPE").arg(key).clone()) {
        Ok(Value::SimpleString(s)) => s,
        other => panic!("TYPE {key}: {other:?}"),
    };
    let value = match kind.as_str() {
        "none" => return "none".into(),
        "string" => store.raw_command(redis::cmd("GET").arg(key).clone()),
        "list" => store.raw_command(redis::cmd("LRANGE").arg(key).arg(0).arg(-1).clone()),
        other => panic!("{key} is a {other}"),
    };
    let ttl = match store.raw_command(redis::cmd("PTTL").arg(key).clone()) {
        Ok(Value::Int(ms)) => ms,
        other => panic!("PTTL {key}: {other:?}"),
    };
    // The explicit times put every expiry within the slack plus the longest period (17
    // minutes at most here): only whether there is one can be compared, the two copies were
    // written some real milliseconds apart.
    assert!(ttl > 0, "{key} has no expiry ({ttl})");
    format!("{kind} {value:?}")
}

#[test]
fn a_batch_decides_as_the_same_calls_one_after_another() {
    let Some(store) = common::store() else {
        return;
    };
    for case in 0..24u64 {
        let seed = 0xBA7C_0000 + case;
        let mut rng = Rng::new(seed);
        // Odd cases: six clients of one policy, mostly checks of one permit at one time, so
        // that runs of decisions with the same arguments (sent once per run) are common.
        let shared = case % 2 == 1;
        let clients: Vec<Client> = if shared {
            let base = random_client(&mut rng, 0);
            (0..6)
                .map(|n| Client {
                    algorithm: base.algorithm,
                    limits: base.limits.clone(),
                    keys: (0..base.limits.len())
                        .map(|i| format!("{{c{n}}}:{i}"))
                        .collect(),
                })
                .collect()
        } else {
            (0..6).map(|n| random_client(&mut rng, n)).collect()
        };
        let (one, many) = (common::unique("one"), common::unique("many"));
        let mut now = 1_700_000_000_000_000u64;
        let (mut steps, mut runs) = (0, 0);
        while steps < 120 {
            let size = rng.range(1, 12) as usize;
            let mut singles = Vec::with_capacity(size);
            let mut batch = Vec::with_capacity(size);
            for _ in 0..size {
                let client = &clients[(rng.next() % clients.len() as u64) as usize];
                let op = if shared && !rng.next().is_multiple_of(5) {
                    "check"
                } else {
                    ["check", "check", "check", "peek", "refund"][(rng.next() % 5) as usize]
                };
                // What a client sends: a check or peek never asks for more than the policy
                // holds (the core refuses that before Redis is asked).
                let capacity = client
                    .limits
                    .iter()
                    .map(|&(a, b)| if client.algorithm == "tb" { b } else { a })
                    .min()
                    .unwrap();
                let most = if op == "refund" { 3 } else { capacity.min(3) };
                let cost = if shared && !rng.next().is_multiple_of(5) {
                    1
                } else {
                    rng.range(1, most)
                };
                // Mostly forward, sometimes standing still or stepping back.
                now = match rng.next() % if shared { 40 } else { 10 } {
                    0 => now - rng.range(0, 300_000),
                    1..=3 => now,
                    _ if shared && !rng.next().is_multiple_of(8) => now,
                    _ => now + rng.range(1, 400_000),
                };
                singles.push(request(client, &format!("{one}:"), op, cost, now));
                batch.push(request(client, &format!("{many}:"), op, cost, now));
            }
            let expected: Vec<String> = singles
                .iter()
                .map(|c| eval(&store, SCRIPT, &c.keys, &c.args))
                .collect();
            let (keys, args) = batch_request(&batch);
            runs += args[0].parse::<usize>().unwrap();
            let got = eval(&store, BATCH_SCRIPT, &keys, &args);
            let got: Vec<&str> = got.split('\n').collect();
            assert_eq!(got, expected, "seed {seed:#x}, after {steps} decisions");
            steps += size;
        }
        if shared {
            // At least a quarter of the decisions went without arguments of their own.
            assert!(
                runs * 4 < steps * 3,
                "seed {seed:#x}: {runs} runs of {steps} decisions"
            );
        }
        for client in &clients {
            for key in &client.keys {
                assert_eq!(
                    state(&store, &format!("{many}:{key}")),
                    state(&store, &format!("{one}:{key}")),
                    "seed {seed:#x}: state of {key}"
                );
            }
        }
    }
}

#[test]
fn a_failing_decision_fails_alone() {
    let Some(store) = common::store() else {
        return;
    };
    let prefix = format!("{}:", common::unique("alone"));
    let fixed = Client {
        algorithm: "fw",
        limits: vec![(2, 1_000_000)],
        keys: vec!["{a}".into()],
    };
    // Its key holds a hash: GET fails with WRONGTYPE.
    let wrong_type = Client {
        algorithm: "tb",
        limits: vec![(1000, 2)],
        keys: vec!["{b}".into()],
    };
    let wrong_key = format!("{prefix}{{b}}");
    store
        .raw_command(redis::cmd("HSET").arg(&wrong_key).arg("f").arg("v").clone())
        .unwrap();
    // A limit of 0 is out of range.
    let bad_limit = Client {
        algorithm: "sl",
        limits: vec![(0, 1_000_000)],
        keys: vec!["{c}".into()],
    };
    // More permits than a sliding log holds: a client never asks that (the core refuses it
    // first), and the script refuses it with a clear error rather than fail inside.
    let small_log = Client {
        algorithm: "sl",
        limits: vec![(2, 1_000_000)],
        keys: vec!["{d}".into()],
    };
    let now = 1_700_000_000_000_000;
    let calls = [
        request(&fixed, &prefix, "check", 1, now),
        request(&wrong_type, &prefix, "check", 1, now),
        request(&bad_limit, &prefix, "check", 1, now),
        request(&fixed, &prefix, "check", 1, now),
        request(&small_log, &prefix, "peek", 3, now),
        // A cost of 0 after decisions of cost 1: the script checks every new value (it skips
        // the check only for values it found in range before).
        request(&fixed, &prefix, "check", 0, now),
    ];
    let (keys, args) = batch_request(&calls);
    let reply = eval(&store, BATCH_SCRIPT, &keys, &args);
    let lines: Vec<&str> = reply.split('\n').collect();
    assert_eq!(lines.len(), 6, "{reply:?}");
    assert!(
        lines[5].starts_with("E ") && lines[5].contains("cost must be an integer"),
        "{reply:?}"
    );
    assert!(
        lines[4].starts_with("E ") && lines[4].contains("cost exceeds the sliding log limit"),
        "{reply:?}"
    );
    assert_eq!(lines[0], "1 1 0 1000000");
    assert!(
        lines[1].starts_with("E ") && lines[1].contains("WRONGTYPE"),
        "{reply:?}"
    );
    assert!(
        lines[2].starts_with("E ") && lines[2].contains("limit parameters out of range"),
        "{reply:?}"
    );
    // The decisions after a failed one go on: the second permit of the window.
    assert_eq!(lines[3], "1 0 0 1000000");
    let kind = store.raw_command(redis::cmd("TYPE").arg(&wrong_key).clone());
    assert_eq!(kind, Ok(Value::SimpleString("hash".into())));
    let bad_key = format!("{prefix}{{c}}");
    let exists = store.raw_command(redis::cmd("EXISTS").arg(&bad_key).clone());
    assert_eq!(exists, Ok(Value::Int(0)));
}

#[test]
fn a_malformed_batch_is_refused_whole() {
    let Some(store) = common::store() else {
        return;
    };
    let prefix = format!("{}:", common::unique("malformed"));
    let client = Client {
        algorithm: "fw",
        limits: vec![(5, 1_000_000)],
        keys: vec!["{m}".into()],
    };
    let call = request(&client, &prefix, "check", 1, 1_700_000_000_000_000);
    let (keys, args) = batch_request(&[call.clone(), call]);
    // One run of two decisions of one key and seven arguments.
    assert_eq!(args[..4], ["1", "2", "1", "7"]);
    let mut broken = Vec::new();
    // Counts that do not add up to the keys and arguments given.
    for (at, n) in [(1, "3"), (2, "2"), (3, "8")] {
        let mut a = args.clone();
        a[at] = n.into();
        broken.push((keys.clone(), a));
    }
    let mut fewer_args = args.clone();
    fewer_args.pop();
    broken.push((keys.clone(), fewer_args));
    // No count, a count of 0, a count that is not a number (of runs, of decisions).
    broken.push((keys.clone(), args[1..].to_vec()));
    for at in [0, 1] {
        for n in ["0", "x", "1.5"] {
            let mut a = args.clone();
            a[at] = n.into();
            broken.push((keys.clone(), a));
        }
    }
    for (keys, args) in broken {
        let reply = eval(&store, BATCH_SCRIPT, &keys, &args);
        assert!(
            reply.starts_with("E ") && reply.contains("malformed batch"),
            "{args:?}: {reply:?}"
        );
    }
    let key = format!("{prefix}{{m}}");
    let exists = store.raw_command(redis::cmd("EXISTS").arg(&key).clone());
    assert_eq!(exists, Ok(Value::Int(0)), "nothing was written");
}

/// Decisions held for a turn go out as one call of the batch script: decided at one Redis
/// `TIME`, so every one of them reports the same time to the window's end, to the
/// microsecond (calls of their own would each read a later `TIME`).
#[test]
fn held_decisions_are_decided_in_one_call() {
    let Some(store) = common::store() else {
        return;
    };
    let options = PolicyOptions {
        algorithm: Algorithm::FixedWindow,
        ..PolicyOptions::default()
    };
    let policy = Policy::parse(&common::unique("held"), "100/hour", options).unwrap();
    let policy = RedisPolicy::new(&store, policy, FailMode::Closed).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(store.hold());
    // Runs of five decisions of one permit, then five of two: the store sends each run's
    // arguments once, and a change of cost starts a new run.
    let cost = |i: u64| 1 + (i / 5) % 2;
    let pending: Vec<_> = (0..20)
        .map(|i| policy.check_async(format!("client {}", i % 4), cost(i)))
        .collect();
    store.release();
    let outcomes: Vec<_> = rt.block_on(async {
        let mut out = Vec::new();
        for p in pending {
            out.push(p.await.unwrap());
        }
        out
    });
    assert!(outcomes.iter().all(|o| o.source == Source::Redis));
    let resets: Vec<u64> = outcomes
        .iter()
        .map(|o| o.decision.decision().reset_after)
        .collect();
    assert!(resets.iter().all(|&r| r == resets[0]), "{resets:?}");
    // Each client's permits were taken in order.
    let remaining: Vec<u64> = outcomes
        .iter()
        .map(|o| o.decision.decision().remaining)
        .collect();
    let mut taken = [0; 4];
    let expected: Vec<u64> = (0..20)
        .map(|i| {
            taken[(i % 4) as usize] += cost(i);
            100 - taken[(i % 4) as usize]
        })
        .collect();
    assert_eq!(remaining, expected);
    assert_eq!(store.health().errors, 0);
}

/// A server that forgot the batch script (`SCRIPT FLUSH`, a failover) answers the batch's
/// `EVALSHA` with NOSCRIPT: the batch goes again as one `EVAL`, and every held decision is
/// still Redis's. The command counts also show the batch is one call.
#[test]
fn a_forgotten_batch_script_is_sent_again() {
    let Some(server) = common::Server::start() else {
        return;
    };
    let store = common::store_at(&server.url());
    let options = PolicyOptions {
        algorithm: Algorithm::TokenBucket,
        ..PolicyOptions::default()
    };
    let policy = Policy::parse("flushed", "3/minute", options).unwrap();
    let policy = RedisPolicy::new(&store, policy, FailMode::Closed).unwrap();
    for cmd in [["SCRIPT", "FLUSH"], ["CONFIG", "RESETSTAT"]] {
        store
            .raw_command(redis::cmd(cmd[0]).arg(cmd[1]).clone())
            .unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(store.hold());
    let pending: Vec<_> = (0..5).map(|_| policy.check_async("k", 1)).collect();
    store.release();
    let remaining: Vec<(Source, u64, bool)> = rt.block_on(async {
        let mut out = Vec::new();
        for p in pending {
            let o = p.await.unwrap();
            out.push((o.source, o.decision.decision().remaining, o.allowed()));
        }
        out
    });
    let redis = Source::Redis;
    assert_eq!(
        remaining,
        [
            (redis, 2, true),
            (redis, 1, true),
            (redis, 0, true),
            (redis, 0, false),
            (redis, 0, false)
        ]
    );
    let info = common::command_stats(&store);
    assert!(info.contains("cmdstat_evalsha:calls=1,"), "{info}");
    assert!(info.contains("cmdstat_eval:calls=1,"), "{info}");
    assert_eq!(store.health().errors, 0);
}
