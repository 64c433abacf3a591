//! The fleet backend: limiters whose state lives in Redis (crate `ratewall-redis`).
//!
//! - [`RedisStorage`]: one connection (one `RedisStore`) opened from a `redis://`, `rediss://`,
//!   `redis+unix://` or `redis+cluster://` URL; `limiter(limits, ...)` builds policies on it.
//! - [`Limiters`]: every policy of a [`Config`](crate::config::Config) on the store its
//!   `storage` URL names (`Config.open()`), `memory://` included.
//! - [`RedisLimiter`]: one policy on a store. `check`/`peek`/`refund` block the calling thread
//!   for at most about the command timeout **with the GIL released**; `acheck`/`apeek`/
//!   `arefund` return an asyncio future and never block the event loop.
//!
//! # The async path
//!
//! `acheck` sends the request at once (on the store's own I/O runtime) and returns an
//! `asyncio.Future` of the running loop. Completion must reach that loop without the store's
//! I/O thread ever waiting for the GIL (a busy loop holds it for up to the switch interval,
//! which would stall every Redis reply of the process). So the I/O thread only pushes the
//! result onto a per-loop queue ([`AsyncBridge`]) and writes one byte to a socket pair; the loop
//! watches the other end with `loop.add_reader` and resolves every queued future in one go, on
//! its own thread, holding the GIL it already has. One wakeup serves a whole batch of replies.
//!
//! # Events
//!
//! The store reports failures and connection changes from its I/O thread. Calling Python there
//! would need the GIL, so events go into a bounded queue ([`EventFeed`]) that a Python thread
//! (started by `ratewall.storage` when `on_event` is given) drains; the callback runs there and
//! its exceptions are logged, never raised into a request.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pyo3::exceptions::{PyConnectionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use ratewall::config::FailMode;
use ratewall::http::HeaderSets;
use ratewall::policy::{Policy, PolicyOptions};
use ratewall::rate::format_rates;
use ratewall::CheckError;
use ratewall_redis::{
    ConnectionState, Error as RedisError, Event, EventKind, Health, Limiter as Backend, Outcome,
    RedisOptions, RedisPolicy, RedisStore, Source,
};

use crate::clock::ns_to_seconds;
use crate::decision::Decision;
use crate::limiter::{cost_arg, limits_text, parse_header_sets, policy_options, with_key};
use crate::{check_error, type_error, ConfigError};

/// Maps a construction error to the Python exception a caller expects: a bad URL, option or
/// policy is a `ValueError`; a server that cannot be reached (or refuses us) a
/// `ConnectionError`.
pub(crate) fn construction_error(e: RedisError) -> PyErr {
    match e {
        RedisError::Config(_) => ConfigError::new_err(e.to_string()),
        RedisError::Connect(_)
        | RedisError::Timeout
        | RedisError::Unavailable
        | RedisError::Io(_)
        | RedisError::Server(_)
        | RedisError::Protocol(_) => PyConnectionError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn parse_fail_mode(s: &str) -> PyResult<FailMode> {
    FailMode::from_str(s).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Seconds (float) to a positive duration, naming the option on error.
fn duration_arg(name: &str, seconds: f64) -> PyResult<Duration> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
        return Err(PyValueError::new_err(format!(
            "{name} must be a number of seconds above 0 (at most 86400), got {seconds}"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The name Python sees for who decided.
pub(crate) fn source_name(source: Source) -> &'static str {
    match source {
        Source::Redis => "redis",
        Source::Memory => "memory",
        Source::FailOpen => "fail-open",
        Source::FailClosed => "fail-closed",
        Source::Local => "local",
        _ => "other",
    }
}

// -- events ---------------------------------------------------------------------------------------

/// The most events held for the Python thread; beyond it new events are dropped and counted
/// (an outage at full request rate must not grow memory without bound).
const EVENT_QUEUE_CAPACITY: usize = 1024;

/// One store event, owned (it outlives the borrowed [`Event`]).
struct EventRecord {
    kind: &'static str,
    error: Option<String>,
    policy: Option<String>,
    fail_mode: Option<&'static str>,
}

#[derive(Default)]
struct EventQueue {
    state: Mutex<(VecDeque<EventRecord>, bool)>,
    ready: Condvar,
    dropped: AtomicU64,
}

impl EventQueue {
    fn push(&self, e: &Event<'_>) {
        let record = EventRecord {
            kind: match e.kind {
                EventKind::Error => "error",
                EventKind::Down => "down",
                EventKind::Up => "up",
                _ => "other",
            },
            error: e.error.map(|x| x.to_string()),
            policy: e.policy.map(str::to_string),
            fail_mode: e.fail_mode.map(FailMode::name),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0.len() >= EVENT_QUEUE_CAPACITY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.0.push_back(record);
        drop(state);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.ready.notify_all();
    }
}

/// Closes the queue when the store (which owns the handler, which owns this) is dropped, so the
/// Python thread that drains it ends.
struct CloseOnDrop(Arc<EventQueue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The receiving end of a store's events, drained by a Python thread (see
/// `ratewall.storage`). Not constructible from Python.
#[pyclass(frozen, module = "ratewall._native", name = "EventFeed")]
pub struct EventFeed {
    queue: Arc<EventQueue>,
}

#[pymethods]
impl EventFeed {
    /// Waits (without the GIL) up to `timeout` seconds for events and returns them as
    /// `(kind, error, policy, fail_mode)` tuples, or `None` once the store is gone.
    fn next(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Vec<EventTuple>>> {
        let wait = duration_arg("timeout", timeout)?;
        let queue = Arc::clone(&self.queue);
        let batch = py.detach(move || {
            let state = queue.state.lock().unwrap_or_else(PoisonError::into_inner);
            let (mut state, _) = queue
                .ready
                .wait_timeout_while(state, wait, |s| s.0.is_empty() && !s.1)
                .unwrap_or_else(PoisonError::into_inner);
            if state.0.is_empty() && state.1 {
                return None;
            }
            Some(state.0.drain(..).collect::<Vec<_>>())
        });
        Ok(batch.map(|b| {
            b.into_iter()
                .map(|r| (r.kind, r.error, r.policy, r.fail_mode))
                .collect()
        }))
    }

    /// Events dropped because the queue was full (the callback was too slow).
    #[getter]
    fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

type EventTuple = (
    &'static str,
    Option<String>,
    Option<String>,
    Option<&'static str>,
);

// -- options -------------------------------------------------------------------------------------

/// Store options from Python keyword arguments, plus the event feed when events are wanted.
struct StoreSettings {
    options: RedisOptions,
    feed: Option<Arc<EventQueue>>,
    lazy: bool,
}

/// The TLS files of a storage's options: `tls_ca_file`, `tls_cert_file`, `tls_key_file`.
#[derive(Clone, Copy, Default)]
struct TlsFiles<'a> {
    ca: Option<&'a str>,
    cert: Option<&'a str>,
    key: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
fn store_settings(
    command_timeout: Option<f64>,
    connect_timeout: Option<f64>,
    reconnect_min_delay: Option<f64>,
    reconnect_max_delay: Option<f64>,
    fail_closed_retry_after: Option<f64>,
    local_fraction: Option<f64>,
    key_secret: Option<&Bound<'_, PyAny>>,
    tls: TlsFiles<'_>,
    events: bool,
    lazy: bool,
) -> PyResult<StoreSettings> {
    let mut options = RedisOptions::default();
    if let Some(file) = tls.ca {
        let pem = ratewall_redis::read_tls_ca_file(file)
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
        options.tls_ca_certificates = Some(pem);
    }
    // One without the other says what to add (ValueError); an unreadable file is an OSError.
    options.tls_client_identity = ratewall_redis::read_tls_client_identity(tls.cert, tls.key)
        .map_err(|e| {
            if tls.cert.is_some() == tls.key.is_some() {
                pyo3::exceptions::PyOSError::new_err(e.to_string())
            } else {
                PyValueError::new_err(e.to_string())
            }
        })?;
    let set = |slot: &mut Duration, name: &str, v: Option<f64>| -> PyResult<()> {
        if let Some(v) = v {
            *slot = duration_arg(name, v)?;
        }
        Ok(())
    };
    set(
        &mut options.command_timeout,
        "command_timeout",
        command_timeout,
    )?;
    set(
        &mut options.connect_timeout,
        "connect_timeout",
        connect_timeout,
    )?;
    set(
        &mut options.reconnect_min_delay,
        "reconnect_min_delay",
        reconnect_min_delay,
    )?;
    set(
        &mut options.reconnect_max_delay,
        "reconnect_max_delay",
        reconnect_max_delay,
    )?;
    set(
        &mut options.fail_closed_retry_after,
        "fail_closed_retry_after",
        fail_closed_retry_after,
    )?;
    if let Some(f) = local_fraction {
        options.local_fraction = f;
    }
    if let Some(secret) = key_secret.filter(|s| !s.is_none()) {
        let bytes: Vec<u8> = match secret.extract::<String>() {
            Ok(s) => s.into_bytes(),
            Err(_) => secret
                .extract::<Vec<u8>>()
                .map_err(|_| type_error("key_secret", "str or bytes", secret))?,
        };
        if bytes.is_empty() {
            return Err(PyValueError::new_err("key_secret must not be empty"));
        }
        options.key_secret = Some(bytes);
    }
    let feed = events.then(|| Arc::new(EventQueue::default()));
    if let Some(queue) = &feed {
        let guard = CloseOnDrop(Arc::clone(queue));
        options.on_event = Some(Arc::new(move |e: &Event<'_>| guard.0.push(e)));
    }
    Ok(StoreSettings {
        options,
        feed,
        lazy,
    })
}

fn health_dict<'py>(py: Python<'py>, h: &Health) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let state = match h.state {
        ConnectionState::Up => "up",
        ConnectionState::Down => "down",
    };
    d.set_item("state", state)?;
    d.set_item("redis_decisions", h.redis_decisions)?;
    d.set_item("errors", h.errors)?;
    d.set_item("timeouts", h.timeouts)?;
    d.set_item("fail_open", h.fail_open)?;
    d.set_item("fail_closed", h.fail_closed)?;
    d.set_item("local", h.local)?;
    d.set_item("disconnects", h.disconnects)?;
    d.set_item("reconnects", h.reconnects)?;
    d.set_item("last_error", h.last_error.as_ref().map(|e| e.to_string()))?;
    Ok(d)
}

// -- storage -------------------------------------------------------------------------------------

/// A connection to Redis that policies are built on: `RedisStorage(uri, *, fail_mode=
/// "fail-open", command_timeout=0.05, connect_timeout=0.5, key_prefix="ratewall",
/// key_secret=None, local_fraction=1.0, lazy=False, events=False, ...)`.
///
/// Connects at construction (unless `lazy`): a malformed URL or a bad option raises
/// `ValueError`, an unreachable server `ConnectionError`. Use `ratewall.storage_from_uri`, which
/// adds the `on_event` callback, rather than this class directly.
#[pyclass(frozen, module = "ratewall._native", name = "RedisStorage")]
pub struct RedisStorage {
    store: RedisStore,
    uri: String,
    fail_mode: FailMode,
    feed: Option<Arc<EventQueue>>,
}

#[pymethods]
impl RedisStorage {
    #[new]
    #[pyo3(signature = (
        uri, *, fail_mode = "fail-open", command_timeout = None, connect_timeout = None,
        reconnect_min_delay = None, reconnect_max_delay = None, fail_closed_retry_after = None,
        key_prefix = "ratewall", key_secret = None, local_fraction = None, lazy = false,
        events = false, tls_ca_file = None, tls_cert_file = None, tls_key_file = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        uri: &str,
        fail_mode: &str,
        command_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        reconnect_min_delay: Option<f64>,
        reconnect_max_delay: Option<f64>,
        fail_closed_retry_after: Option<f64>,
        key_prefix: &str,
        key_secret: Option<&Bound<'_, PyAny>>,
        local_fraction: Option<f64>,
        lazy: bool,
        events: bool,
        tls_ca_file: Option<&str>,
        tls_cert_file: Option<&str>,
        tls_key_file: Option<&str>,
    ) -> PyResult<Self> {
        let fail_mode = parse_fail_mode(fail_mode)?;
        let mut settings = store_settings(
            command_timeout,
            connect_timeout,
            reconnect_min_delay,
            reconnect_max_delay,
            fail_closed_retry_after,
            local_fraction,
            key_secret,
            TlsFiles {
                ca: tls_ca_file,
                cert: tls_cert_file,
                key: tls_key_file,
            },
            events,
            lazy,
        )?;
        settings.options.key_prefix = key_prefix.to_string();
        let options = settings.options;
        let url = uri.trim().to_string();
        // Connecting waits up to the connect timeout: let other Python threads run meanwhile.
        let store = py
            .detach(move || {
                if settings.lazy {
                    RedisStore::connect_lazy(&url, options)
                } else {
                    RedisStore::connect(&url, options)
                }
            })
            .map_err(construction_error)?;
        Ok(RedisStorage {
            uri: store.url().to_string(),
            store,
            fail_mode,
            feed: settings.feed,
        })
    }

    /// The storage URL, password redacted.
    #[getter]
    fn uri(&self) -> &str {
        &self.uri
    }

    /// Always `True`: calls wait on the network (ASGI glue awaits `acheck`).
    #[getter]
    fn blocking(&self) -> bool {
        true
    }

    /// The default fail mode of policies built here.
    #[getter]
    fn fail_mode(&self) -> &'static str {
        self.fail_mode.name()
    }

    /// A policy on this store, with the options of `ratewall.Limiter` (`algorithm`, `name`,
    /// `burst`, `max_keys` and `overflow` of the local fallback, `headers`, `send_date`,
    /// `retry_after`) plus `fail_mode` (default: the storage's). `clock` must be `None`: Redis
    /// decides with the server's clock.
    #[pyo3(signature = (
        limits, *, algorithm = "token-bucket", name = "default", burst = None, max_keys = None,
        overflow = "evict", headers = "legacy", send_date = true, retry_after = None,
        clock = None, fail_mode = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn limiter(
        &self,
        limits: &Bound<'_, PyAny>,
        algorithm: &str,
        name: &str,
        burst: Option<&Bound<'_, PyAny>>,
        max_keys: Option<&Bound<'_, PyAny>>,
        overflow: &str,
        headers: &str,
        send_date: bool,
        retry_after: Option<bool>,
        clock: Option<&Bound<'_, PyAny>>,
        fail_mode: Option<&str>,
    ) -> PyResult<RedisLimiter> {
        if clock.is_some_and(|c| !c.is_none()) {
            return Err(PyTypeError::new_err(
                "clock= cannot be used with the Redis storage: Redis decides with the server's \
                 clock (TIME). Use storage_uri='memory://' to inject time in tests",
            ));
        }
        let text = limits_text(limits)?;
        let options: PolicyOptions = policy_options(algorithm, burst, max_keys, overflow)?;
        let policy = Policy::parse(name, &text, options)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let fail_mode = match fail_mode {
            Some(m) => parse_fail_mode(m)?,
            None => self.fail_mode,
        };
        let policy = RedisPolicy::new(&self.store, policy, fail_mode)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(RedisLimiter {
            backend: Backend::Redis(policy),
            headers: parse_header_sets(headers, send_date, retry_after)?,
            store: Some(self.store.clone()),
        })
    }

    /// Counters and state: `state` (`"up"`/`"down"`), `redis_decisions`, `errors`,
    /// `timeouts`, `fail_open`, `fail_closed`, `local`, `disconnects`, `reconnects`,
    /// `last_error`.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        health_dict(py, &self.store.health())
    }

    /// The event feed, when built with `events=True`.
    fn events(&self) -> Option<EventFeed> {
        self.feed.as_ref().map(|q| EventFeed {
            queue: Arc::clone(q),
        })
    }

    fn __repr__(&self) -> String {
        format!("RedisStorage({:?})", self.uri)
    }
}

/// Every policy of a configuration on its store (`Config.open()`): `limiters["api"]`,
/// `limiters.get("api")`, `names`, `health()`, `storage`.
#[pyclass(frozen, module = "ratewall._native", name = "Limiters")]
pub struct Limiters {
    names: Vec<String>,
    limiters: Vec<Py<RedisLimiter>>,
    store: Option<RedisStore>,
    storage: String,
    feed: Option<Arc<EventQueue>>,
}

impl Limiters {
    /// Builds every policy of `config` (connecting unless `lazy`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        py: Python<'_>,
        config: &ratewall::config::Config,
        command_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        fail_closed_retry_after: Option<f64>,
        local_fraction: Option<f64>,
        key_secret: Option<&Bound<'_, PyAny>>,
        lazy: bool,
        events: bool,
    ) -> PyResult<Limiters> {
        let settings = store_settings(
            command_timeout,
            connect_timeout,
            None,
            None,
            fail_closed_retry_after,
            local_fraction,
            key_secret,
            TlsFiles::default(), // the configuration's own tls_*_file
            events,
            lazy,
        )?;
        let owned = config.clone();
        let options = settings.options;
        let built = py
            .detach(move || ratewall_redis::Limiters::from_config_with(&owned, options, lazy))
            .map_err(construction_error)?;
        let mut names = Vec::new();
        let mut limiters = Vec::new();
        for backend in built.iter() {
            let name = backend.policy().name().to_string();
            let limiter = RedisLimiter {
                headers: built.headers(&name).clone(),
                backend: backend.clone(),
                store: built.store().cloned(),
            };
            names.push(name);
            limiters.push(Py::new(py, limiter)?);
        }
        Ok(Limiters {
            names,
            limiters,
            store: built.store().cloned(),
            storage: config.settings.storage.clone(),
            feed: settings.feed,
        })
    }

    fn find(&self, py: Python<'_>, name: &str) -> Option<Py<RedisLimiter>> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.limiters[i].clone_ref(py))
    }
}

#[pymethods]
impl Limiters {
    /// The policy named `name`, or `None`.
    fn get(&self, py: Python<'_>, name: &str) -> Option<Py<RedisLimiter>> {
        self.find(py, name)
    }

    fn __getitem__(&self, py: Python<'_>, name: &str) -> PyResult<Py<RedisLimiter>> {
        self.find(py, name).ok_or_else(|| {
            pyo3::exceptions::PyKeyError::new_err(format!(
                "no policy named {name:?} in the configuration (policies: {:?})",
                self.names
            ))
        })
    }

    fn __contains__(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn __len__(&self) -> usize {
        self.names.len()
    }

    /// The policy names, in the configuration's order.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// The storage URL of the configuration.
    #[getter]
    fn storage(&self) -> &str {
        &self.storage
    }

    /// The store's counters (see `RedisStorage.health`); `None` for `memory://`.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.store
            .as_ref()
            .map(|s| health_dict(py, &s.health()))
            .transpose()
    }

    /// The event feed, when opened with `events=True` on a Redis storage.
    fn events(&self) -> Option<EventFeed> {
        self.feed.as_ref().map(|q| EventFeed {
            queue: Arc::clone(q),
        })
    }

    fn __repr__(&self) -> String {
        format!("Limiters({:?}, storage={:?})", self.names, self.storage)
    }
}

// -- the limiter ---------------------------------------------------------------------------------

/// One policy on a shared store (Redis, or `memory://` through `Config.open()`).
///
/// Same methods as `ratewall.Limiter` (`check`, `peek`, `refund`, `reset`), except that time is
/// the server's (`now=` is refused), plus `acheck`/`apeek`/`arefund` (awaitables for asyncio),
/// `fail_mode`, `health()` and `redis_keys(key)`. A Redis outage never raises from
/// `check`: the fail mode decides, and `Decision.source` says who did.
#[pyclass(frozen, module = "ratewall", name = "RedisLimiter")]
pub struct RedisLimiter {
    pub(crate) backend: Backend,
    pub(crate) headers: HeaderSets,
    store: Option<RedisStore>,
}

#[derive(Clone, Copy)]
enum Op {
    Check,
    Peek,
    Refund,
}

fn no_now(now: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    if now.is_some_and(|n| !n.is_none()) {
        return Err(PyTypeError::new_err(
            "now= cannot be used with a shared store: Redis decides with the server's clock",
        ));
    }
    Ok(())
}

fn run(backend: &Backend, op: Op, key: &[u8], cost: u64) -> Result<Outcome, CheckError> {
    match op {
        Op::Check => backend.check(key, cost),
        Op::Peek => backend.peek(key, cost),
        Op::Refund => backend.refund(key, cost),
    }
}

/// The blocking body of `check`, `peek` and `refund`.
fn decide(
    slf: &Bound<'_, RedisLimiter>,
    op: Op,
    key: &Bound<'_, PyAny>,
    cost: Option<&Bound<'_, PyAny>>,
    now: Option<&Bound<'_, PyAny>>,
) -> PyResult<Decision> {
    no_now(now)?;
    let cost = cost_arg(cost)?;
    let backend = &slf.get().backend;
    let py = slf.py();
    let outcome = with_key(key, |k| {
        match backend {
            // Tens of nanoseconds: cheaper to keep the GIL than to release it.
            Backend::Memory(_) => run(backend, op, k, cost),
            // Waits for Redis (at most about the command timeout): let Python run meanwhile.
            Backend::Redis(_) => py.detach(|| run(backend, op, k, cost)),
        }
        .map_err(check_error)
    })?;
    Ok(Decision::from_outcome(outcome, slf))
}

/// `ratewall.storage._bridge_for`: `(AsyncBridge, asyncio.Future)` for the running loop.
static BRIDGE_FOR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The async body of `acheck`, `apeek` and `arefund`: sends the request now, returns a future
/// of the running loop that the bridge resolves.
fn submit<'py>(
    slf: &Bound<'py, RedisLimiter>,
    op: Op,
    key: &Bound<'py, PyAny>,
    cost: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let cost = cost_arg(cost)?;
    let bridge_for = BRIDGE_FOR.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("ratewall.storage")?
                .getattr("_bridge_for")?
                .unbind(),
        )
    })?;
    let pair = bridge_for.bind(py).call0()?;
    let pair = pair.cast::<PyTuple>()?;
    let bridge = pair.get_item(0)?;
    let bridge = bridge.cast::<AsyncBridge>()?;
    let future = pair.get_item(1)?;
    let backend = &slf.get().backend;
    let work = with_key(key, |k| {
        Ok(match op {
            Op::Check => Box::pin(backend.check_async(k, cost)) as BoxedCheck,
            Op::Peek => Box::pin(backend.peek_async(k, cost)),
            Op::Refund => Box::pin(backend.refund_async(k, cost)),
        })
    })?;
    let inner = Arc::clone(&bridge.get().inner);
    let target = (future.clone().unbind(), slf.clone().unbind());
    Task::start(work, move |result| {
        inner.complete(target.0, target.1, result)
    });
    Ok(future)
}

type BoxedCheck = Pin<Box<dyn Future<Output = Result<Outcome, CheckError>> + Send>>;

#[pymethods]
impl RedisLimiter {
    /// Decides a request of `cost` permits by `key` (str or bytes; hashed from its UTF-8
    /// bytes, identical in every binding) and takes them if admitted. Blocks at most about the
    /// command timeout, with the GIL released; never raises for an outage (the fail mode
    /// decides). `ValueError` for a bad cost.
    #[pyo3(signature = (key, cost = None, now = None))]
    fn check(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        decide(slf, Op::Check, key, cost, now)
    }

    /// Decides like `check` without taking anything.
    #[pyo3(signature = (key, cost = None, now = None))]
    fn peek(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        decide(slf, Op::Peek, key, cost, now)
    }

    /// Gives `cost` permits back to `key` (never above full).
    #[pyo3(signature = (key, cost = None, now = None))]
    fn refund(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        decide(slf, Op::Refund, key, cost, now)
    }

    /// `check` for asyncio: returns an awaitable (a future of the running loop) at once; the
    /// event loop is never blocked. Must be called with a running loop.
    #[pyo3(signature = (key, cost = None))]
    fn acheck<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        cost: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        submit(slf, Op::Check, key, cost)
    }

    /// `peek` for asyncio (see `acheck`).
    #[pyo3(signature = (key, cost = None))]
    fn apeek<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        cost: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        submit(slf, Op::Peek, key, cost)
    }

    /// `refund` for asyncio (see `acheck`).
    #[pyo3(signature = (key, cost = None))]
    fn arefund<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        cost: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        submit(slf, Op::Refund, key, cost)
    }

    /// Makes `key` full again (deletes its Redis keys). An administrative call: a Redis failure
    /// raises `ConnectionError` here.
    fn reset(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let backend = &self.backend;
        with_key(key, |k| {
            py.detach(|| backend.reset(k))
                .map_err(|e| PyConnectionError::new_err(e.to_string()))
        })
    }

    /// The Redis keys holding `key`'s state, one per limit (diagnostics); empty for memory.
    fn redis_keys(&self, key: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        with_key(key, |k| {
            Ok(match &self.backend {
                Backend::Redis(r) => r.redis_keys(k),
                _ => Vec::new(),
            })
        })
    }

    /// The store's counters (see `RedisStorage.health`); `None` for memory.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.store
            .as_ref()
            .map(|s| health_dict(py, &s.health()))
            .transpose()
    }

    /// `fail-open`, `fail-closed` or `local` (`None` for memory).
    #[getter]
    fn fail_mode(&self) -> Option<&'static str> {
        match &self.backend {
            Backend::Redis(r) => Some(r.fail_mode().name()),
            _ => None,
        }
    }

    /// `"redis"` or `"memory"`: where the state lives.
    #[getter]
    fn storage(&self) -> &'static str {
        match &self.backend {
            Backend::Redis(_) => "redis",
            _ => "memory",
        }
    }

    /// The policy's name.
    #[getter]
    fn name(&self) -> &str {
        self.backend.policy().name()
    }

    /// The limits in canonical form.
    #[getter]
    fn limits(&self) -> String {
        format_rates(self.backend.policy().rates())
    }

    /// The algorithm's canonical name.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.backend.policy().options().algorithm.name()
    }

    /// The header sets `Decision.headers()` renders.
    #[getter]
    fn header_sets(&self) -> String {
        self.headers.to_string()
    }

    /// Each limit as `(limit, period_seconds)`.
    #[getter]
    fn rates(&self) -> Vec<(u64, f64)> {
        self.backend
            .policy()
            .rates()
            .iter()
            .map(|r| (r.limit(), ns_to_seconds(r.period())))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "RedisLimiter({:?}, algorithm={:?}, name={:?}, storage={:?})",
            self.limits(),
            self.algorithm(),
            self.name(),
            self.storage()
        )
    }
}

// -- the asyncio bridge --------------------------------------------------------------------------

/// A finished request waiting for its loop.
struct Done {
    future: Py<PyAny>,
    limiter: Py<RedisLimiter>,
    result: Result<Outcome, CheckError>,
}

struct BridgeInner {
    ready: Mutex<Vec<Done>>,
    writer: Pipe,
}

impl BridgeInner {
    /// Runs on whatever thread finished the request (usually the store's I/O thread): no GIL,
    /// no Python; one byte wakes the loop when the queue was empty.
    fn complete(
        &self,
        future: Py<PyAny>,
        limiter: Py<RedisLimiter>,
        result: Result<Outcome, CheckError>,
    ) {
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = ready.is_empty();
        ready.push(Done {
            future,
            limiter,
            result,
        });
        drop(ready);
        if was_empty {
            // WouldBlock means bytes are already pending: the loop wakes anyway.
            let _ = (&self.writer).write(&[1]);
        }
    }
}

/// The per-event-loop end of the async path (created by `ratewall.storage._bridge_for`): a
/// socket the loop watches (`fileno()`) and `drain()`, the reader callback that resolves every
/// finished future.
#[pyclass(frozen, module = "ratewall._native", name = "AsyncBridge")]
pub struct AsyncBridge {
    inner: Arc<BridgeInner>,
    reader: Pipe,
}

#[pymethods]
impl AsyncBridge {
    #[new]
    fn new() -> PyResult<Self> {
        let (reader, writer) = pipe_pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(AsyncBridge {
            inner: Arc::new(BridgeInner {
                ready: Mutex::new(Vec::new()),
                writer,
            }),
            reader,
        })
    }

    /// The descriptor to pass to `loop.add_reader`.
    fn fileno(&self) -> i64 {
        raw_handle(&self.reader)
    }

    /// Resolves every finished request's future (skipping cancelled ones); returns how many.
    fn drain(&self, py: Python<'_>) -> PyResult<usize> {
        // Empty the socket first, then the queue: a completion racing with us either lands in
        // this batch or writes a new byte that wakes us again.
        let mut buf = [0u8; 256];
        loop {
            match (&self.reader).read(&mut buf) {
                Ok(n) if n == buf.len() => continue,
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let batch = std::mem::take(
            &mut *self
                .inner
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let count = batch.len();
        for done in batch {
            // One failing future (its loop closed under it) must not strand the rest of the
            // batch, and a reader callback has no caller to report to: skip it.
            let _ = resolve(py, done);
        }
        Ok(count)
    }
}

/// The socket pair of a bridge: a Unix socket pair where there is one, else a loopback TCP
/// connection (what asyncio's selector loops can watch on Windows).
#[cfg(unix)]
type Pipe = std::os::unix::net::UnixStream;
#[cfg(not(unix))]
type Pipe = std::net::TcpStream;

#[cfg(unix)]
fn pipe_pair() -> std::io::Result<(Pipe, Pipe)> {
    Pipe::pair()
}

#[cfg(not(unix))]
fn pipe_pair() -> std::io::Result<(Pipe, Pipe)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let writer = Pipe::connect(listener.local_addr()?)?;
    let (reader, _) = listener.accept()?;
    Ok((reader, writer))
}

#[cfg(unix)]
fn raw_handle(p: &Pipe) -> i64 {
    use std::os::fd::AsRawFd;
    i64::from(p.as_raw_fd())
}

#[cfg(windows)]
fn raw_handle(p: &Pipe) -> i64 {
    use std::os::windows::io::AsRawSocket;
    p.as_raw_socket() as i64
}

/// Sets the result (a `Decision`) or the exception of one finished request's future, unless
/// its task cancelled it.
fn resolve(py: Python<'_>, done: Done) -> PyResult<()> {
    let future = done.future.bind(py);
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    match done.result {
        Ok(outcome) => {
            let decision = Decision::from_outcome(outcome, done.limiter.bind(py));
            future.call_method1("set_result", (decision,))?;
        }
        Err(e) => {
            future.call_method1("set_exception", (check_error(e).value(py),))?;
        }
    }
    Ok(())
}

// -- a minimal executor --------------------------------------------------------------------------

/// Drives one future without a runtime: it is polled once by the caller, then again by
/// whichever thread wakes it (the store's I/O thread, when the Redis reply is in). The futures
/// of `ratewall-redis` only await a task of the store's runtime and then finish with plain
/// computation, so polling them on the waking thread is cheap and never blocks.
struct Task<F: Future> {
    /// The future and what to do with its output; `None` once delivered.
    future: Mutex<Option<Pending<F>>>,
    notified: AtomicBool,
}

type Pending<F> = (Pin<Box<F>>, Box<dyn FnOnce(<F as Future>::Output) + Send>);

impl<F: Future + Send + 'static> Task<F> {
    fn start(future: F, deliver: impl FnOnce(F::Output) + Send + 'static) {
        let task = Arc::new(Task {
            future: Mutex::new(Some((Box::pin(future), Box::new(deliver)))),
            notified: AtomicBool::new(false),
        });
        task.poll_now();
    }

    fn poll_now(self: &Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
        // A wake while another thread polls only sets `notified`; that thread polls again.
        while self.notified.load(Ordering::SeqCst) {
            let Ok(mut slot) = self.future.try_lock() else {
                return;
            };
            self.notified.store(false, Ordering::SeqCst);
            let Some((future, _)) = slot.as_mut() else {
                return;
            };
            let waker = Waker::from(Arc::clone(self));
            let mut cx = Context::from_waker(&waker);
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                if let Some((_, deliver)) = slot.take() {
                    drop(slot);
                    deliver(output);
                }
                return;
            }
        }
    }
}

impl<F: Future + Send + 'static> Wake for Task<F> {
    fn wake(self: Arc<Self>) {
        self.poll_now();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.poll_now();
    }
}
