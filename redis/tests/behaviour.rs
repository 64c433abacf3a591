//! Behaviour against a real Redis: TTLs on every key, memory per key, key names, bad input,
//! concurrency, configuration, Unix sockets and Redis Cluster.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratewall::config::Config;
use ratewall::http::HeaderSets;
use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall::CheckError;
use ratewall_redis::{
    ConnectionState, Error, Event, EventKind, FailMode, Limiter, Limiters, RedisOptions,
    RedisPolicy, RedisStore, Source,
};
use redis::Value;

use common::Server;

fn policy(store: &RedisStore, algorithm: Algorithm, rates: &str, mode: FailMode) -> RedisPolicy {
    let options = PolicyOptions {
        algorithm,
        ..PolicyOptions::default()
    };
    let p = Policy::parse(&common::unique("b"), rates, options).unwrap();
    RedisPolicy::new(store, p, mode).unwrap()
}

fn int(store: &RedisStore, args: &[&str]) -> i64 {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match store.raw_command(cmd).unwrap() {
        Value::Int(i) => i,
        Value::Nil => -100,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn pttl(store: &RedisStore, key: &str) -> i64 {
    int(store, &["PTTL", key])
}

/// Every key of the prefix, by SCAN.
fn keys_matching(store: &RedisStore, pattern: &str) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(&cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let Value::Array(reply) = store.raw_command(cmd).unwrap() else {
            panic!("SCAN reply")
        };
        let Value::BulkString(next) = &reply[0] else {
            panic!("cursor")
        };
        cursor = String::from_utf8(next.clone()).unwrap();
        if let Value::Array(items) = &reply[1] {
            for item in items {
                if let Value::BulkString(k) = item {
                    keys.push(String::from_utf8(k.clone()).unwrap());
                }
            }
        }
        if cursor == "0" {
            return keys;
        }
    }
}

/// Every write sets a TTL equal to the time until the state is full again (rounded up to ms).
#[test]
fn every_key_has_a_ttl_until_it_is_idle() {
    let Some(store) = common::store() else { return };
    // (algorithm, rates, permits taken, idle time in ms after taking them)
    let cases: [(Algorithm, &str, u64, i64); 5] = [
        (Algorithm::TokenBucket, "10/second", 3, 300),
        (Algorithm::FixedWindow, "5/10seconds", 2, 10_000),
        (Algorithm::FixedWindowAligned, "5/10seconds", 2, 10_000),
        (Algorithm::SlidingWindow, "5/second", 2, 2_000),
        (Algorithm::SlidingLog, "5/3seconds", 2, 3_000),
    ];
    for (algorithm, rates, taken, idle_ms) in cases {
        let p = policy(&store, algorithm, rates, FailMode::Closed);
        for _ in 0..taken {
            assert_eq!(p.check("ttl", 1).unwrap().source, Source::Redis);
        }
        // A peek and a denial write nothing and do not extend anything.
        p.peek("ttl", 1).unwrap();
        let keys = p.redis_keys("ttl");
        assert_eq!(keys.len(), 1);
        let ttl = pttl(&store, &keys[0]);
        assert!(ttl > 0, "{algorithm}: key without TTL ({ttl})");
        assert!(
            ttl <= idle_ms,
            "{algorithm}: TTL {ttl} ms beyond the idle time {idle_ms} ms"
        );
        // About the idle time (the aligned window ends with its aligned window, the sliding
        // window counter with the next one); loose, for a loaded machine.
        let floor = match algorithm {
            Algorithm::FixedWindowAligned => 0,
            _ => idle_ms / 4,
        };
        assert!(
            ttl >= floor,
            "{algorithm}: TTL {ttl} ms, expected about {idle_ms} ms"
        );
        // Refunding everything still leaves a TTL (the state is rewritten with one).
        p.refund("ttl", taken).unwrap();
        let after = pttl(&store, &keys[0]);
        assert!(after != -1, "{algorithm}: after refund the key has no TTL");
    }
}

/// A fixed window or sliding window counter written again within its window keeps the key's
/// expiry (already the window's), but a write that opens a new window sets a new one: a key left
/// over from an older window, about to expire, must not take the new window's count with it.
#[test]
fn a_new_window_sets_a_new_expiry() {
    let Some(store) = common::store() else { return };
    let t0: u64 = 1_000_000_000_000; // 10^6 s in microseconds: a whole number of periods
                                     // (algorithm, rates, period in µs)
    let cases = [
        (Algorithm::FixedWindow, "5/10seconds", 10_000_000u64),
        (Algorithm::FixedWindowAligned, "5/10seconds", 10_000_000),
        (Algorithm::SlidingWindow, "5/second", 1_000_000),
    ];
    for (algorithm, rates, period) in cases {
        let p = policy(&store, algorithm, rates, FailMode::Closed);
        let key = &p.redis_keys("w")[0];
        assert!(p.check_at_us("w", t0, 0, 1).unwrap().allowed());
        // Later in the same window: the key still lives at least until the window ends.
        let later = t0 + period / 5;
        assert!(p.check_at_us("w", later, 0, 1).unwrap().allowed());
        let ttl = pttl(&store, key);
        assert!(
            ttl * 1000 >= (period - period / 5) as i64 - 100_000,
            "{algorithm}: TTL {ttl} ms within the window"
        );
        // The key is about to expire (as a key of an older window would be) when the next window
        // opens: the write must give it the new window's expiry.
        int(&store, &["PEXPIRE", key, "200"]);
        let next = t0 + 2 * period;
        let d = p.check_at_us("w", next, 0, 1).unwrap();
        assert!(d.allowed());
        let ttl = pttl(&store, key);
        assert!(
            ttl * 1000 >= period as i64 / 2,
            "{algorithm}: a new window kept the old key's expiry ({ttl} ms left)"
        );
    }
}

/// Across a random mix of operations on many policies, no key without a TTL ever remains.
#[test]
fn no_key_without_ttl_remains() {
    let Some(store) = common::store() else { return };
    let prefix = common::unique("ttlmix");
    let options = RedisOptions {
        key_prefix: prefix.clone(),
        ..store.options().clone()
    };
    let store = RedisStore::connect(&common::shared_url().unwrap(), options).unwrap();
    for algorithm in Algorithm::ALL {
        let p = policy(&store, algorithm, "4/2seconds; 20/minute", FailMode::Closed);
        for i in 0..60u64 {
            let key = format!("k{}", i % 7);
            match i % 5 {
                0..=2 => drop(p.check(&key, 1 + i % 3).unwrap()),
                3 => drop(p.refund(&key, 1 + i % 4).unwrap()),
                _ => drop(p.peek(&key, 1).unwrap()),
            }
        }
    }
    let keys = keys_matching(&store, &format!("{prefix}:*"));
    assert!(keys.len() > 20, "{} keys", keys.len());
    for key in keys {
        let ttl = pttl(&store, &key);
        assert!(ttl != -1, "{key}: no TTL");
    }
}

/// Redis itself removes a key once its state is idle.
#[test]
fn idle_keys_vanish() {
    let Some(store) = common::store() else { return };
    let p = policy(
        &store,
        Algorithm::TokenBucket,
        "1000/second",
        FailMode::Closed,
    );
    p.check("gone", 1).unwrap();
    let key = &p.redis_keys("gone")[0];
    let start = Instant::now();
    // The bucket is full again after 1 ms: Redis expires the key on its own (bounded wait).
    while int(&store, &["EXISTS", key]) == 1 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "key outlived its TTL"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `MEMORY USAGE` per client key for each algorithm, with a production-like key name (policy
/// `api`, default prefix); one-word algorithms stay under 150 bytes.
#[test]
fn memory_per_key() {
    let Some(store) = common::store() else { return };
    let mut report = Vec::new();
    let mut over = Vec::new();
    let cases: [(Algorithm, &str, u64); 6] = [
        (Algorithm::TokenBucket, "100/minute", 1),
        (Algorithm::FixedWindow, "100/minute", 1),
        (Algorithm::FixedWindowAligned, "100/minute", 1),
        (Algorithm::SlidingWindow, "100/minute", 1),
        (Algorithm::SlidingLog, "10/minute", 10),
        (Algorithm::SlidingLog, "100/minute", 100),
    ];
    for (algorithm, rate, taken) in cases {
        let options = PolicyOptions {
            algorithm,
            ..PolicyOptions::default()
        };
        let p = Policy::parse("api", rate, options).unwrap();
        let p = RedisPolicy::new(&store, p, FailMode::Closed).unwrap();
        let client = common::unique("203.0.113.7");
        for _ in 0..taken {
            assert!(p.check(&client, 1).unwrap().allowed());
        }
        let key = &p.redis_keys(&client)[0];
        let bytes = int(&store, &["MEMORY", "USAGE", key, "SAMPLES", "0"]);
        report.push(format!(
            "{algorithm} {rate} ({taken} taken): {bytes} bytes (key name {} bytes)",
            key.len()
        ));
        if algorithm != Algorithm::SlidingLog && bytes >= 150 {
            over.push(format!("{algorithm}: {bytes}"));
        }
        p.reset(&client).unwrap();
    }
    eprintln!("memory per key:\n  {}", report.join("\n  "));
    assert!(
        over.is_empty(),
        "one-word algorithms over 150 bytes: {over:?}"
    );
}

#[test]
fn keys_hide_client_keys_and_share_one_slot() {
    let Some(store) = common::store() else { return };
    let p = policy(
        &store,
        Algorithm::TokenBucket,
        "10/second; 100/hour",
        FailMode::Closed,
    );
    let keys = p.redis_keys("alice@example.com");
    assert_eq!(keys.len(), 2);
    let name = p.policy().name();
    for key in &keys {
        assert!(!key.contains("alice"), "{key}");
        assert!(key.starts_with(&format!("ratewall:{{{name}:")), "{key}");
    }
    let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_string();
    assert_eq!(
        tag(&keys[0]),
        tag(&keys[1]),
        "one hash slot per client and policy"
    );
    assert!(keys[0].ends_with(":tb:10:1000000") && keys[1].ends_with(":tb:100:3600000000"));
    // The same secret gives the same names in another process; another secret, other names.
    let url = common::shared_url().unwrap();
    let same = RedisStore::connect(&url, store.options().clone()).unwrap();
    assert_eq!(
        same.key_hash(b"alice@example.com"),
        store.key_hash(b"alice@example.com")
    );
    let other = RedisStore::connect(
        &url,
        RedisOptions {
            key_secret: Some(b"another".to_vec()),
            ..store.options().clone()
        },
    )
    .unwrap();
    assert_ne!(
        other.key_hash(b"alice@example.com"),
        store.key_hash(b"alice@example.com")
    );
}

/// Two stores (two connections, as two processes would have) share one quota.
#[test]
fn two_stores_share_one_quota() {
    let Some(store) = common::store() else { return };
    let url = common::shared_url().unwrap();
    let second = RedisStore::connect(&url, store.options().clone()).unwrap();
    let name = common::unique("shared");
    let make = |s: &RedisStore| {
        let p = Policy::parse(&name, "5/minute", PolicyOptions::default()).unwrap();
        RedisPolicy::new(s, p, FailMode::Closed).unwrap()
    };
    let (a, b) = (make(&store), make(&second));
    let admitted = (0..6)
        .map(|i| if i % 2 == 0 { &a } else { &b })
        .filter(|p| p.check("client", 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 5);
}

/// Many threads and async tasks hammering one key admit exactly the quota.
#[test]
fn concurrent_callers_admit_exactly_the_quota() {
    let Some(store) = common::store() else { return };
    for algorithm in Algorithm::ALL {
        let p = policy(&store, algorithm, "100/hour", FailMode::Closed);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..40 {
                        let o = p.check("hot", 1).unwrap();
                        assert_eq!(o.source, Source::Redis);
                        if o.allowed() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // Async: 200 concurrent futures on the test's own runtime.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let more = rt.block_on(async {
            let futures: Vec<_> = (0..200).map(|_| p.check_async("hot-async", 1)).collect();
            let mut n = 0;
            for f in futures {
                let o = tokio::spawn(f).await.unwrap().unwrap();
                assert_eq!(o.source, Source::Redis);
                n += o.allowed() as u64;
            }
            n
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 100, "{algorithm} threads");
        assert_eq!(more, 100, "{algorithm} async");
    }
}

/// Two identical limits share one key; the script writes it once.
#[test]
fn duplicate_limits_count_once() {
    let Some(store) = common::store() else { return };
    for algorithm in Algorithm::ALL {
        let p = policy(&store, algorithm, "6/hour; 6/hour", FailMode::Closed);
        let admitted = (0..10)
            .filter(|_| p.check("dup", 1).unwrap().allowed())
            .count();
        assert_eq!(admitted, 6, "{algorithm}");
    }
}

/// One round trip per decision: on a private server, the command statistics show exactly one
/// script call per decision, for policies of one and of several limits, and nothing else.
#[test]
fn one_round_trip_per_decision() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = common::store_at(&server.url());
    let single = policy(
        &store,
        Algorithm::TokenBucket,
        "10/second",
        FailMode::Closed,
    );
    let multi = policy(
        &store,
        Algorithm::SlidingLog,
        "3/second; 10/minute; 100/hour",
        FailMode::Closed,
    );
    store
        .raw_command(redis::cmd("CONFIG").arg("RESETSTAT").clone())
        .unwrap();
    let decisions = 40;
    for i in 0..decisions / 2 {
        single.check(format!("k{}", i % 3), 1).unwrap();
        multi.check(format!("k{}", i % 3), 1).unwrap();
    }
    let info = common::command_stats(&store);
    let calls = |cmd: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|v| v.split(',').next())
            .map_or(0, |v| v.parse().unwrap())
    };
    // Scripts' inner commands (GET, SET, LRANGE, …) are counted too; the client's are EVALSHA
    // (or EVAL) only, plus the INFO that reads the statistics.
    assert_eq!(calls("evalsha") + calls("eval"), decisions, "{info}");
    let client_side: Vec<&str> = info
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| {
            ["evalsha:", "eval:", "info:", "config|resetstat:"]
                .iter()
                .all(|c| !l.starts_with(c))
        })
        .filter(|l| {
            [
                "get:", "set:", "time:", "lrange:", "llen:", "lindex:", "rpop:", "rpush:",
                "ltrim:", "pexpire:",
            ]
            .iter()
            .all(|c| !l.starts_with(c))
        })
        .collect();
    assert!(
        client_side.is_empty(),
        "unexpected commands: {client_side:?}"
    );
}

/// When the server forgets the script (`SCRIPT FLUSH`, a failover to a replica that never saw
/// it), `EVALSHA` answers NOSCRIPT and the same request goes out as `EVAL`: the decision is
/// still Redis's, and the next request is back to `EVALSHA`.
#[test]
fn noscript_falls_back_to_eval() {
    let Some(server) = Server::start() else {
        return;
    };
    let store = common::store_at(&server.url());
    let p = policy(&store, Algorithm::FixedWindow, "3/minute", FailMode::Closed);
    assert_eq!(p.check("n", 1).unwrap().source, Source::Redis);
    store
        .raw_command(redis::cmd("SCRIPT").arg("FLUSH").clone())
        .unwrap();
    store
        .raw_command(redis::cmd("CONFIG").arg("RESETSTAT").clone())
        .unwrap();
    let outcome = p.check("n", 1).unwrap();
    assert_eq!(outcome.source, Source::Redis);
    assert_eq!(outcome.decision.decision().remaining, 1);
    assert_eq!(p.check("n", 1).unwrap().decision.decision().remaining, 0);
    let info = common::command_stats(&store);
    assert!(info.contains("cmdstat_eval:calls=1,"), "{info}");
    assert!(info.contains("cmdstat_evalsha:calls=2,"), "{info}");
    assert!(
        info.contains("failed_calls=1"),
        "the first EVALSHA failed: {info}"
    );
    assert_eq!(store.health().errors, 0);
}

/// ACLs: a user who may run scripts but not `SCRIPT LOAD` still gets Redis decisions (the
/// script arrives through the `EVAL` fallback); a wrong password is a clear error at connection.
#[test]
fn acl_users() {
    let Some(server) = Server::start() else {
        return;
    };
    let admin = common::store_at(&server.url());
    let mut acl = redis::cmd("ACL");
    acl.arg("SETUSER")
        .arg("limiter")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("+ping")
        .arg("+hello")
        .arg("+client");
    // The minimal set, as the README lists it (no SCRIPT).
    for command in [
        "evalsha", "eval", "time", "get", "set", "lrange", "rpop", "rpush", "ltrim", "lset",
        "pexpire", "del",
    ] {
        acl.arg(format!("+{command}"));
    }
    admin.raw_command(acl).unwrap();
    let url = format!("redis://limiter:pw@127.0.0.1:{}", server.port);
    let store = common::store_at(&url);
    let p = policy(&store, Algorithm::TokenBucket, "2/minute", FailMode::Closed);
    let first = p.check("a", 1).unwrap();
    assert_eq!(first.source, Source::Redis, "{:?}", store.health());
    let admitted = (0..2)
        .filter(|_| p.check("a", 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 1);
    let bad = format!("redis://limiter:wrong@127.0.0.1:{}", server.port);
    let e = RedisStore::connect(&bad, RedisOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e}");
    assert!(!e.to_string().contains("wrong"), "password leaked: {e}");
}

#[test]
fn bad_costs_are_errors_and_change_nothing() {
    let Some(store) = common::store() else { return };
    let p = policy(
        &store,
        Algorithm::TokenBucket,
        "5/second; 3/minute",
        FailMode::Closed,
    );
    assert_eq!(p.check("c", 0), Err(CheckError::ZeroCost));
    assert_eq!(p.peek("c", 0), Err(CheckError::ZeroCost));
    assert_eq!(p.refund("c", 0), Err(CheckError::ZeroCost));
    assert_eq!(
        p.check("c", 4),
        Err(CheckError::InsufficientCapacity {
            cost: 4,
            capacity: 3
        })
    );
    for key in p.redis_keys("c") {
        assert_eq!(int(&store, &["EXISTS", key.as_str()]), 0);
    }
    assert_eq!(store.health().errors, 0);
}

#[test]
fn bad_urls_and_unreachable_servers_are_clear_errors() {
    let start = Instant::now();
    let port = common::free_port();
    let e = RedisStore::connect(
        &format!("redis://127.0.0.1:{port}"),
        RedisOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
    assert!(start.elapsed() < Duration::from_secs(2));
    for (url, says) in [
        ("http://localhost", "unknown scheme"),
        ("memory://", "in-process"),
        ("redis://", "names no host"),
        ("localhost:6379", "no scheme"),
    ] {
        let e = RedisStore::connect(url, RedisOptions::default()).unwrap_err();
        assert!(
            matches!(e, Error::Url(_)) && e.to_string().contains(says),
            "{url}: {e}"
        );
    }
    let e = RedisStore::connect(
        "redis://127.0.0.1:1",
        RedisOptions {
            command_timeout: Duration::ZERO,
            ..RedisOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Option(_)), "{e}");
    let e = RedisStore::connect(
        "redis://127.0.0.1:1",
        RedisOptions {
            local_fraction: 0.0,
            ..RedisOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("local_fraction"), "{e}");
}

/// TLS to a server that speaks plain TCP fails at construction with a clear error.
#[cfg(feature = "tls")]
#[test]
fn rediss_to_a_plain_server_fails_clearly() {
    let Some(url) = common::shared_url() else {
        return;
    };
    let url = url.replacen("redis://", "rediss://", 1);
    let options = RedisOptions {
        connect_timeout: Duration::from_millis(500),
        ..RedisOptions::default()
    };
    let e = RedisStore::connect(&url, options).unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e}");
}

/// A throwaway PKI in `dir` (`redis/testing/tls-certs.sh`: `ca.pem`, and `server.pem` /
/// `server.key` for 127.0.0.1 signed by it); `false` outside CI when `openssl` is missing (the
/// caller skips).
#[cfg(feature = "tls")]
fn test_pki(dir: &std::path::Path) -> bool {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/testing/tls-certs.sh");
    let made = std::process::Command::new("bash")
        .arg(script)
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match made {
        Ok(status) if status.success() => true,
        _ if std::env::var_os("CI").is_some() => {
            panic!("{script} could not make test certificates but CI is set: install openssl")
        }
        _ => {
            eprintln!("SKIP: no openssl to make test certificates");
            false
        }
    }
}

/// A TLS-only `redis-server` whose certificate the throwaway CA of [`test_pki`] signed, with
/// `extra` arguments (`{ca}` stands for the CA's file, as `{port}` and `{dir}` do for
/// `Server`). Its PKI directory goes when it is dropped. `None` when openssl or redis-server is
/// missing outside CI.
#[cfg(feature = "tls")]
struct TlsServer {
    server: Server,
    pki: std::path::PathBuf,
}

#[cfg(feature = "tls")]
impl TlsServer {
    fn start(name: &str, extra: &[&str]) -> Option<TlsServer> {
        let pki = std::env::temp_dir().join(format!("ratewall-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&pki).unwrap();
        let clean = |pki: &std::path::Path| {
            let _ = std::fs::remove_dir_all(pki);
            None
        };
        if !test_pki(&pki) {
            return clean(&pki);
        }
        let file = |name: &str| pki.join(name).to_str().unwrap().to_string();
        let (ca, cert, key) = (file("ca.pem"), file("server.pem"), file("server.key"));
        let mut args = vec![
            "--port",
            "0",
            "--tls-port",
            "{port}",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
        ];
        args.extend(
            extra
                .iter()
                .map(|a| if *a == "{ca}" { ca.as_str() } else { a }),
        );
        match Server::start_with(&args) {
            Some(server) => Some(TlsServer { server, pki }),
            None => clean(&pki),
        }
    }

    /// A file of the PKI: `ca.pem`, `client.pem`, `client.key`…
    fn file(&self, name: &str) -> String {
        self.pki.join(name).to_str().unwrap().to_string()
    }
}

#[cfg(feature = "tls")]
impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pki);
    }
}

/// Real TLS round trips to a server that speaks only TLS, its certificate signed by a private
/// CA: verified against that CA (given as PEM, or as `tls_ca_file` in a configuration), or
/// unverified with `#insecure`; against the system's roots the certificate is refused at
/// construction with a clear error, and CA certificates with a plain `redis://` URL are an
/// option error.
#[cfg(feature = "tls")]
#[test]
fn rediss_round_trips_to_a_tls_only_server() {
    let Some(tls) = TlsServer::start(
        "tls-test",
        &["--tls-ca-cert-file", "{ca}", "--tls-auth-clients", "no"],
    ) else {
        return;
    };
    let (server, ca) = (&tls.server, tls.file("ca.pem"));
    let verified = format!("rediss://127.0.0.1:{}", server.port);
    let with_ca = RedisOptions {
        tls_ca_certificates: Some(std::fs::read(&ca).unwrap()),
        ..common::options()
    };
    redis_decides_on(RedisStore::connect(&verified, with_ca.clone()).unwrap());
    redis_decides_through(&format!("rediss://127.0.0.1:{}/#insecure", server.port));
    let config = Config::from_toml_str(&format!(
        "[defaults]\nstorage = {verified:?}\ntls_ca_file = {ca:?}\n[policies.p]\nlimits = \"2/minute\"\n"
    ))
    .unwrap();
    let limiters = Limiters::from_config_with(&config, common::options(), false).unwrap();
    assert_eq!(
        limiters.get("p").unwrap().check("cfg", 1).unwrap().source,
        Source::Redis
    );

    let system_roots = RedisStore::connect(&verified, common::options()).unwrap_err();
    assert!(matches!(system_roots, Error::Connect(_)), "{system_roots}");
    assert!(
        system_roots.to_string().contains("certificate"),
        "{system_roots}"
    );
    let plain = format!("redis://127.0.0.1:{}", server.port);
    let e = RedisStore::connect(&plain, with_ca).unwrap_err();
    assert!(e.to_string().contains("rediss:// URLs only"), "{e}");
}

/// Mutual TLS: a server that asks every client for a certificate (`--tls-auth-clients yes`,
/// Redis's default when it serves TLS) refuses a store without one and decides for a store that
/// presents the test CA's client certificate, given directly or as `tls_cert_file` and
/// `tls_key_file` in a configuration. A certificate without its key, a client certificate with a
/// plain `redis://` URL and a key that is not PEM are option errors that say what to do.
#[cfg(feature = "tls")]
#[test]
fn rediss_presents_a_client_certificate_to_a_server_that_asks() {
    let Some(tls) = TlsServer::start(
        "mtls-test",
        &["--tls-ca-cert-file", "{ca}", "--tls-auth-clients", "yes"],
    ) else {
        return;
    };
    let server = &tls.server;
    let ca = tls.file("ca.pem");
    let (client_cert, client_key) = (tls.file("client.pem"), tls.file("client.key"));
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let ca_only = RedisOptions {
        tls_ca_certificates: Some(std::fs::read(&ca).unwrap()),
        ..common::options()
    };
    let refused = RedisStore::connect(&url, ca_only.clone()).unwrap_err();
    assert!(matches!(refused, Error::Connect(_)), "{refused}");

    let identity = ratewall_redis::read_tls_client_identity(Some(&client_cert), Some(&client_key))
        .unwrap()
        .unwrap();
    assert!(!format!("{identity:?}").contains("PRIVATE"), "{identity:?}");
    let mutual = RedisOptions {
        tls_client_identity: Some(identity.clone()),
        ..ca_only.clone()
    };
    redis_decides_on(RedisStore::connect(&url, mutual).unwrap());

    let config = Config::from_toml_str(&format!(
        "[defaults]\nstorage = {url:?}\ntls_ca_file = {ca:?}\ntls_cert_file = {client_cert:?}\n\
         tls_key_file = {client_key:?}\n[policies.p]\nlimits = \"2/minute\"\n"
    ))
    .unwrap();
    let limiters = Limiters::from_config_with(&config, common::options(), false).unwrap();
    assert_eq!(
        limiters.get("p").unwrap().check("cfg", 1).unwrap().source,
        Source::Redis
    );

    let mut half = config.clone();
    half.settings.tls_key_file = None;
    let e = Limiters::from_config_with(&half, common::options(), false).unwrap_err();
    assert!(matches!(e, Error::Option(_)), "{e}");
    assert!(e.to_string().contains("tls_key_file"), "{e}");
    let missing =
        ratewall_redis::read_tls_client_identity(Some(&client_cert), Some("/nonexistent.key"))
            .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent.key"),
        "{missing}"
    );

    let plain = format!("redis://127.0.0.1:{}", server.port);
    let with_identity = RedisOptions {
        tls_client_identity: Some(identity.clone()),
        ..common::options()
    };
    let e = RedisStore::connect(&plain, with_identity).unwrap_err();
    assert!(e.to_string().contains("rediss:// URLs only"), "{e}");
    let garbled = RedisOptions {
        tls_client_identity: Some(ratewall_redis::TlsClientIdentity {
            key: b"not a key".to_vec(),
            ..identity
        }),
        ..ca_only
    };
    let e = RedisStore::connect(&url, garbled).unwrap_err();
    assert!(matches!(e, Error::Option(_)), "{e}");
    assert!(e.to_string().contains("tls_key_file"), "{e}");
}

#[test]
fn policies_redis_cannot_run_are_refused() {
    let Some(store) = common::store() else { return };
    let make = |name: &str, rates: &str, algorithm| {
        let options = PolicyOptions {
            algorithm,
            ..PolicyOptions::default()
        };
        RedisPolicy::new(
            &store,
            Policy::parse(name, rates, options).unwrap(),
            FailMode::Open,
        )
        .unwrap_err()
        .to_string()
    };
    assert!(make("a{b}", "1/second", Algorithm::TokenBucket).contains("hash tag"));
    let e = make("big", "100000/day", Algorithm::SlidingWindow);
    assert!(
        e.contains("2^52") && e.contains("\"big\"") && e.contains("100000/day"),
        "{e}"
    );
    assert!(make("log", "200000/hour", Algorithm::SlidingLog).contains("at most 100000"));
    let e = RedisStore::connect(
        "redis://127.0.0.1:1",
        RedisOptions {
            key_prefix: "x{".into(),
            ..RedisOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("hash tag"), "{e}");
}

/// A script error (here a key of the wrong type) follows the fail mode and is reported.
#[test]
fn script_errors_follow_the_fail_mode_and_are_signalled() {
    let Some(url) = common::shared_url() else {
        return;
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let options = RedisOptions {
        command_timeout: Duration::from_secs(2),
        on_event: Some(Arc::new(move |e: &Event<'_>| {
            log.lock().unwrap().push((
                e.kind,
                e.policy.map(str::to_string),
                e.fail_mode,
                e.error.map(|x| x.to_string()),
            ));
        })),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect(&url, options).unwrap();
    for (mode, source) in [
        (FailMode::Open, Source::FailOpen),
        (FailMode::Closed, Source::FailClosed),
        (FailMode::Local, Source::Local),
    ] {
        let p = policy(&store, Algorithm::TokenBucket, "5/second", mode);
        let key = &p.redis_keys("victim")[0];
        store
            .raw_command(redis::cmd("LPUSH").arg(key).arg("x").clone())
            .unwrap();
        let outcome = p.check("victim", 1).unwrap();
        assert_eq!(outcome.source, source);
        assert_eq!(outcome.allowed(), mode != FailMode::Closed);
        let health = store.health();
        assert!(
            matches!(&health.last_error, Some(Error::Server(m)) if m.contains("WRONGTYPE")),
            "{health:?}"
        );
        assert_eq!(
            health.state,
            ConnectionState::Up,
            "a script error is not an outage"
        );
        let events = events.lock().unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.0, EventKind::Error);
        assert_eq!(last.1.as_deref(), Some(p.policy().name()));
        assert_eq!(last.2, Some(mode));
        store
            .raw_command(redis::cmd("DEL").arg(key).clone())
            .unwrap();
    }
    // A callback that panics never breaks a request.
    let options = RedisOptions {
        on_event: Some(Arc::new(|_: &Event<'_>| panic!("faulty callback"))),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect(&url, options).unwrap();
    let p = policy(&store, Algorithm::TokenBucket, "5/second", FailMode::Open);
    let key = &p.redis_keys("victim")[0];
    store
        .raw_command(redis::cmd("SET").arg(key).arg("not a number").clone())
        .unwrap();
    assert_eq!(p.check("victim", 1).unwrap().source, Source::FailOpen);
    store
        .raw_command(redis::cmd("DEL").arg(key).clone())
        .unwrap();
}

/// The blocking API works from inside another async runtime, and the last handle may be dropped
/// there (the store's own runtime shuts down without blocking).
#[test]
fn usable_and_droppable_inside_async_code() {
    let Some(url) = common::shared_url() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = common::store_at(&url);
        let p = policy(&store, Algorithm::TokenBucket, "2/minute", FailMode::Closed);
        assert_eq!(p.check("a", 1).unwrap().source, Source::Redis);
        let pending = p.check_async("a", 1);
        drop(p);
        drop(store);
        // The future keeps what it needs alive; the last handle goes when it completes.
        assert_eq!(pending.await.unwrap().source, Source::Redis);
    });
}

#[test]
fn reset_makes_a_client_full_again() {
    let Some(store) = common::store() else { return };
    let p = policy(
        &store,
        Algorithm::SlidingLog,
        "2/minute; 5/hour",
        FailMode::Closed,
    );
    assert!(p.check("r", 2).unwrap().allowed());
    assert!(!p.check("r", 1).unwrap().allowed());
    p.reset("r").unwrap();
    for key in p.redis_keys("r") {
        assert_eq!(int(&store, &["EXISTS", key.as_str()]), 0);
    }
    assert_eq!(p.check("r", 1).unwrap().decision.decision().remaining, 1);
}

/// Headers render from a Redis decision exactly as from an in-process one.
#[test]
fn headers_from_redis_decisions() {
    let Some(store) = common::store() else { return };
    let p = policy(&store, Algorithm::FixedWindow, "2/minute", FailMode::Closed);
    p.check("h", 2).unwrap();
    let denied = p.check("h", 1).unwrap();
    assert!(!denied.allowed());
    let headers = p.policy().headers(
        &denied.decision,
        &HeaderSets::default(),
        Some("h"),
        1_700_000_000_000,
    );
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("X-RateLimit-Limit").as_deref(), Some("2"));
    assert_eq!(get("X-RateLimit-Remaining").as_deref(), Some("0"));
    let retry: u64 = get("Retry-After").unwrap().parse().unwrap();
    assert!((58..=60).contains(&retry), "Retry-After {retry}");
}

/// `Limiters` builds every configured policy on the store its URL names.
#[test]
fn limiters_from_config() {
    let Some(url) = common::shared_url() else {
        return;
    };
    let prefix = common::unique("cfg");
    let toml = format!(
        r#"
        [defaults]
        storage = "{url}"
        fail_mode = "fail-closed"
        key_prefix = "{prefix}"

        [policies.api]
        limits = "3/minute; 100/day"

        [policies.login]
        limits = "2/15min"
        algorithm = "sliding-log"
        fail_mode = "local"
        "#
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let patient = RedisOptions {
        command_timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    };
    let limiters = Limiters::from_config_with(&config, patient, false).unwrap();
    let api = limiters.get("api").unwrap();
    assert!(matches!(api, Limiter::Redis(_)));
    assert_eq!(limiters.fail_mode("login"), FailMode::Local);
    let Limiter::Redis(login) = limiters.get("login").unwrap() else {
        panic!()
    };
    assert_eq!(login.fail_mode(), FailMode::Local);
    assert!(login.redis_keys("x")[0].starts_with(&format!("{prefix}:{{login:")));
    let admitted = (0..5)
        .filter(|_| api.check("u", 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 3);
    let outcome = api.check("u", 1).unwrap();
    assert_eq!(outcome.source, Source::Redis);
    assert_eq!(outcome.decision.most_restrictive(), 0);
    assert!(limiters.get("nope").is_none());
    assert_eq!(
        limiters.store().unwrap().health().state,
        ConnectionState::Up
    );
    // The async entry point decides the same way.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(!rt.block_on(api.check_async("u", 1)).unwrap().allowed());

    // memory:// (the default) keeps state in process.
    let config = Config::from_toml_str("[policies.api]\nlimits = \"1/minute\"").unwrap();
    let limiters = Limiters::from_config(&config).unwrap();
    let api = limiters.get("api").unwrap();
    assert_eq!(api.check("u", 1).unwrap().source, Source::Memory);
    assert!(!api.check("u", 1).unwrap().allowed());
    assert!(limiters.store().is_none());

    // An unreachable server is an error at construction, unless lazy.
    let down = format!("redis://127.0.0.1:{}", common::free_port());
    let config = Config::from_toml_str(&format!(
        "[defaults]\nstorage = \"{down}\"\n[policies.api]\nlimits = \"1/minute\""
    ))
    .unwrap();
    assert!(matches!(
        Limiters::from_config(&config),
        Err(Error::Connect(_))
    ));
    let lazy = Limiters::from_config_with(&config, RedisOptions::default(), true).unwrap();
    let outcome = lazy.get("api").unwrap().check("u", 1).unwrap();
    assert_eq!(outcome.source, Source::FailOpen);
}

#[test]
fn local_fallback_uses_a_fraction_of_the_quota() {
    let url = format!("redis://127.0.0.1:{}", common::free_port());
    let store = RedisStore::connect_lazy(
        &url,
        RedisOptions {
            local_fraction: 0.25,
            ..RedisOptions::default()
        },
    )
    .unwrap();
    let p = policy(&store, Algorithm::FixedWindow, "8/minute", FailMode::Local);
    assert_eq!(p.local_fallback().unwrap().rates()[0].limit(), 2);
    let admitted = (0..5)
        .filter(|_| p.check("k", 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 2);
    assert_eq!(p.check("k", 1).unwrap().source, Source::Local);
}

#[test]
fn unix_socket() {
    let Some(server) = Server::start_with(&[
        "--unixsocket",
        "{dir}/redis.sock",
        "--unixsocketperm",
        "700",
    ]) else {
        return;
    };
    redis_decides_through(&format!(
        "redis+unix://{}/redis.sock",
        server.dir().display()
    ));
}

/// A store on `url` makes exact decisions, and Redis makes them.
fn redis_decides_through(url: &str) {
    redis_decides_on(common::store_at(url));
}

/// `store` makes exact decisions, and Redis makes them: 2 of 3 admitted by 2/minute.
fn redis_decides_on(store: RedisStore) {
    let p = policy(&store, Algorithm::TokenBucket, "2/minute", FailMode::Closed);
    let admitted = (0..3)
        .filter(|_| p.check("u", 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 2);
    assert_eq!(p.check("u", 1).unwrap().source, Source::Redis);
}

/// A one-node Redis Cluster owning every slot: the hash tag keeps each client's limits in one
/// slot, so multi-limit scripts run there.
#[cfg(feature = "cluster")]
#[test]
fn redis_cluster() {
    let Some(server) = Server::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "{dir}/nodes.conf",
    ]) else {
        return;
    };
    own_every_slot(&common::store_at(&server.url()));
    let url = format!("redis+cluster://127.0.0.1:{}", server.port);
    cluster_decides_on(&common::store_at(&url));
}

/// Makes the one node behind `node` own every slot and waits until the cluster is ok.
#[cfg(feature = "cluster")]
fn own_every_slot(node: &RedisStore) {
    let mut add = redis::cmd("CLUSTER");
    add.arg("ADDSLOTSRANGE").arg(0).arg(16383);
    node.raw_command(add).unwrap();
    let start = Instant::now();
    loop {
        let mut info = redis::cmd("CLUSTER");
        info.arg("INFO");
        let text = match node.raw_command(info).unwrap() {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::VerbatimString { text, .. } => text,
            other => panic!("{other:?}"),
        };
        if text.contains("cluster_state:ok") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cluster never became ok"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A two-limit policy on the cluster behind `store` decides exactly, in Redis.
#[cfg(feature = "cluster")]
fn cluster_decides_on(store: &RedisStore) {
    let p = policy(
        store,
        Algorithm::SlidingWindow,
        "3/minute; 10/hour",
        FailMode::Closed,
    );
    let admitted = (0..5)
        .filter(|_| p.check("c", 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 3);
    assert_eq!(p.check("c", 1).unwrap().source, Source::Redis);
}

/// `rediss+cluster://`: a one-node cluster that speaks only TLS, also between nodes, and asks
/// every client for a certificate. Every node is checked against the test CA and shown the
/// client certificate; without the client certificate the cluster refuses the store.
#[cfg(all(feature = "cluster", feature = "tls"))]
#[test]
fn rediss_cluster_over_mutual_tls() {
    let Some(tls) = TlsServer::start(
        "tls-cluster",
        &[
            "--tls-cluster",
            "yes",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "{dir}/nodes.conf",
            "--tls-ca-cert-file",
            "{ca}",
            "--tls-auth-clients",
            "yes",
        ],
    ) else {
        return;
    };
    let (server, ca) = (&tls.server, tls.file("ca.pem"));
    let file = |name: &str| tls.file(name);
    let identity = ratewall_redis::read_tls_client_identity(
        Some(&file("client.pem")),
        Some(&file("client.key")),
    )
    .unwrap();
    let options = RedisOptions {
        tls_ca_certificates: Some(std::fs::read(&ca).unwrap()),
        tls_client_identity: identity,
        ..common::options()
    };
    let node = RedisStore::connect(
        &format!("rediss://127.0.0.1:{}", server.port),
        options.clone(),
    )
    .unwrap();
    own_every_slot(&node);
    let url = format!("rediss+cluster://127.0.0.1:{}", server.port);
    cluster_decides_on(&RedisStore::connect(&url, options.clone()).unwrap());
    let without_certificate = RedisOptions {
        tls_client_identity: None,
        ..options
    };
    assert!(RedisStore::connect(&url, without_certificate).is_err());
}

/// A held store sends nothing until released; then every held request is decided by Redis, in
/// the order made, and later requests go out at once again.
#[test]
fn held_requests_go_out_on_release() {
    let Some(store) = common::store() else {
        return;
    };
    let p = policy(&store, Algorithm::FixedWindow, "3/minute", FailMode::Closed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(store.hold());
    assert!(!store.hold(), "held already");
    let futures: Vec<_> = (0..5).map(|_| p.check_async("held", 1)).collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    // Nothing reached Redis: the key does not exist yet.
    let key = p.redis_keys("held").remove(0);
    assert_eq!(int(&store, &["EXISTS", key.as_str()]), 0);
    store.release();
    let remaining: Vec<u64> = rt.block_on(async {
        let mut out = Vec::new();
        for f in futures {
            let o = f.await.unwrap();
            assert_eq!(o.source, Source::Redis);
            out.push(o.decision.decision().remaining);
        }
        out
    });
    // One connection, sent in order: 2, 1, 0 left, then two denials.
    assert_eq!(remaining, [2, 1, 0, 0, 0]);
    let later = rt.block_on(p.peek_async("held", 1)).unwrap();
    assert_eq!(later.source, Source::Redis);
    assert!(!later.allowed());
    store.release(); // releasing a store that is not held does nothing
    assert_eq!(store.health().errors, 0);
}
