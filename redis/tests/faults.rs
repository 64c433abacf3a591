//! Faults: each test runs its own `redis-server`, kills or freezes it in the middle of a run and
//! brings it back. Each fail mode must decide within the command timeout while Redis is gone,
//! and Redis must decide again after it returns, without rebuilding the limiter.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall_redis::{
    ConnectionState, Error, Event, EventKind, FailMode, RedisOptions, RedisPolicy, RedisStore,
    Source,
};

use common::Server;

/// The command timeout of these tests: long enough that a healthy request on a loaded 2-core CI
/// machine never hits it (the default, 50 ms, is for production), short enough to prove the bound.
const TIMEOUT: Duration = Duration::from_millis(200);
/// What "within the timeout" may take: the timeout plus scheduling slack. A hang would take
/// seconds (the reconnection backoff) or forever.
const BOUND: Duration = Duration::from_millis(900);

#[derive(Default)]
struct Seen {
    events: Vec<(EventKind, Option<String>)>,
}

fn store(server: &Server, seen: &Arc<Mutex<Seen>>, lazy: bool) -> RedisStore {
    let log = Arc::clone(seen);
    let options = RedisOptions {
        command_timeout: TIMEOUT,
        connect_timeout: Duration::from_millis(300),
        reconnect_min_delay: Duration::from_millis(10),
        reconnect_max_delay: Duration::from_millis(100),
        on_event: Some(Arc::new(move |e: &Event<'_>| {
            log.lock()
                .unwrap()
                .events
                .push((e.kind, e.error.map(|x| x.to_string())));
        })),
        ..RedisOptions::default()
    };
    if lazy {
        RedisStore::connect_lazy(&server.url(), options).unwrap()
    } else {
        RedisStore::connect(&server.url(), options).unwrap()
    }
}

fn policy(store: &RedisStore, mode: FailMode, limit: u64) -> RedisPolicy {
    let options = PolicyOptions {
        algorithm: Algorithm::FixedWindow,
        ..PolicyOptions::default()
    };
    let p = Policy::parse(&common::unique("fault"), &format!("{limit}/hour"), options).unwrap();
    RedisPolicy::new(store, p, mode).unwrap()
}

/// Checks until Redis decides again (bounded: 10 s), returning how long it took.
fn wait_for_redis(p: &RedisPolicy, key: &str) -> Duration {
    let start = Instant::now();
    loop {
        let outcome = p.peek(key, 1).unwrap();
        if outcome.source == Source::Redis {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no reconnection within 10 s: {:?}",
            p.store().health()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// Kill the server, then start it again: the given fail mode applies in between.
fn outage(mode: FailMode) {
    let Some(mut server) = Server::start() else {
        return;
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let store = store(&server, &seen, false);
    let p = policy(&store, mode, 3);
    let key = "client";
    let first = p.check(key, 1).unwrap();
    assert_eq!(first.source, Source::Redis);
    assert_eq!(first.decision.decision().remaining, 2);

    server.stop();
    for i in 0..6 {
        let (outcome, took) = timed(|| p.check(key, 1).unwrap());
        assert!(
            took < BOUND,
            "{mode}: request {i} took {took:?} with Redis down"
        );
        match mode {
            FailMode::Open => {
                assert_eq!(outcome.source, Source::FailOpen);
                assert!(outcome.allowed());
            }
            FailMode::Closed => {
                assert_eq!(outcome.source, Source::FailClosed);
                assert!(!outcome.allowed());
                assert_eq!(outcome.decision.decision().retry_after, 1_000_000_000);
            }
            FailMode::Local => {
                assert_eq!(outcome.source, Source::Local);
                // The in-process fallback enforces the same limit on its own state.
                assert_eq!(outcome.allowed(), i < 3, "local decision {i}");
            }
            _ => unreachable!(),
        }
    }
    let health = store.health();
    assert_eq!(health.state, ConnectionState::Down);
    assert!(health.errors >= 6, "{health:?}");
    assert_eq!(health.disconnects, 1, "{health:?}");
    let fallbacks = match mode {
        FailMode::Open => health.fail_open,
        FailMode::Closed => health.fail_closed,
        _ => health.local,
    };
    assert_eq!(fallbacks, health.errors, "{health:?}");
    {
        let seen = seen.lock().unwrap();
        assert!(seen.events.iter().any(|(k, _)| *k == EventKind::Down));
        assert!(seen.events.iter().any(|(k, _)| *k == EventKind::Error));
    }

    // Back: the same limiter decides through Redis again. The restarted server is empty (no
    // persistence) and has never seen the script: NOSCRIPT is handled.
    server.restart();
    wait_for_redis(&p, key);
    let after = p.check(key, 1).unwrap();
    assert_eq!(after.source, Source::Redis);
    assert_eq!(
        after.decision.decision().remaining,
        2,
        "fresh server, fresh window"
    );
    let health = store.health();
    assert_eq!(health.state, ConnectionState::Up);
    assert!(health.reconnects >= 1, "{health:?}");
    assert!(seen
        .lock()
        .unwrap()
        .events
        .iter()
        .any(|(k, _)| *k == EventKind::Up));
}

#[test]
fn fail_open_during_an_outage_then_redis_again() {
    outage(FailMode::Open);
}

#[test]
fn fail_closed_during_an_outage_then_redis_again() {
    outage(FailMode::Closed);
}

#[test]
fn local_fallback_during_an_outage_then_redis_again() {
    outage(FailMode::Local);
}

/// A frozen server (accepts nothing, answers nothing) costs each request at most the command
/// timeout, and service resumes when it thaws.
#[test]
fn a_frozen_server_costs_at_most_the_timeout() {
    let Some(server) = Server::start() else {
        return;
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let store = store(&server, &seen, false);
    let p = policy(&store, FailMode::Open, 5);
    assert_eq!(p.check("k", 1).unwrap().source, Source::Redis);
    server.pause();
    let (outcome, took) = timed(|| p.check("k", 1).unwrap());
    assert_eq!(outcome.source, Source::FailOpen);
    assert!(
        took >= TIMEOUT,
        "timed out after {took:?}, before the timeout"
    );
    assert!(took < BOUND, "took {took:?}");
    assert_eq!(store.health().last_error, Some(Error::Timeout));
    assert!(store.health().timeouts >= 1);
    // Later requests while it is frozen fail fast or within the timeout, never hang.
    for _ in 0..5 {
        let (outcome, took) = timed(|| p.check("k", 1).unwrap());
        assert_eq!(outcome.source, Source::FailOpen);
        assert!(took < BOUND, "took {took:?}");
    }
    server.resume();
    wait_for_redis(&p, "k");
    assert_eq!(p.check("k", 1).unwrap().source, Source::Redis);
}

/// The async path obeys the same bounds and fail modes.
#[test]
fn async_requests_follow_the_fail_mode() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let store = store(&server, &seen, false);
    let p = policy(&store, FailMode::Closed, 5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(p.check_async("k", 1).await.unwrap().source, Source::Redis);
        server.stop();
        let start = Instant::now();
        let outcome = p.check_async("k", 1).await.unwrap();
        assert!(start.elapsed() < BOUND);
        assert_eq!(outcome.source, Source::FailClosed);
        assert!(!outcome.allowed());
    });
    server.restart();
    wait_for_redis(&p, "k");
    rt.block_on(async {
        assert_eq!(p.check_async("k", 1).await.unwrap().source, Source::Redis);
    });
}

/// An app may start while Redis is down: `connect_lazy` succeeds, the fail mode decides, and
/// Redis takes over as soon as it is reachable.
#[test]
fn lazy_start_while_redis_is_down() {
    let Some(mut server) = Server::start() else {
        return;
    };
    server.stop();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let store = store(&server, &seen, true);
    let p = policy(&store, FailMode::Local, 2);
    let (outcome, took) = timed(|| p.check("k", 1).unwrap());
    assert_eq!(outcome.source, Source::Local);
    assert!(took < BOUND);
    server.restart();
    wait_for_redis(&p, "k");
    assert_eq!(p.check("k", 1).unwrap().source, Source::Redis);
    assert!(store.health().reconnects >= 1);
}
