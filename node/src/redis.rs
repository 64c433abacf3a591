//! The Redis store: limiters whose state lives in Redis (crate `ratewall-redis`), with every
//! call answered by a Promise, so the event loop never waits for Redis.
//!
//! ## How a call stays off the event loop
//!
//! `check`/`peek`/`refund`/`reset` build the `ratewall-redis` future (which sends the request
//! at once on the store's own I/O runtime) and poll it once on the JavaScript thread. It is then
//! parked in a per-thread table of pending calls ([`Dispatcher`]) with a [`Waker`] of its own,
//! and the call returns its slot number; `redis.js` makes the Promise and files its `resolve`
//! under that slot. When Redis answers, the store's I/O thread wakes that waker, which queues the
//! call's slot and pokes one Node-API thread-safe function ([`Remote`]); on the JavaScript thread,
//! the thread-safe function's callback polls every woken call again and writes each finished one
//! as a record of numbers into a `Float64Array` shared with `redis.js`, then calls `redis.js`'s
//! `settle` once for all of them ([`Batch`]), which resolves their Promises. So an answer costs one
//! hop from the I/O thread to the JavaScript thread, the same as a JavaScript Redis client; no
//! extra runtime or thread is started (napi-rs's `async fn` would add a Tokio runtime and a second
//! hop); and many answers that arrive together cross into JavaScript once, without a Promise, an
//! array or a number created through Node-API per answer.
//!
//! The thread-safe function is referenced (keeps the process alive) only while calls are
//! pending, so `await limiter.check(...)` in a script keeps Node running until Redis (or the
//! command timeout) answers, and an idle store never keeps a process from exiting.
//!
//! ## Events
//!
//! The store's `on_event` callback runs on the I/O thread or the JavaScript thread. It copies
//! the event into the same queue; the JavaScript side receives it through the sink function
//! given to [`redis_init`], which dispatches it to the `onEvent` option of the right store.
//! At most [`MAX_QUEUED_EVENTS`] events wait at once: a flood of failures during an outage
//! drops the excess rather than growing memory (the health counters still count them all).
//!
//! ## Keys
//!
//! Client keys are passed as UTF-8 (napi-rs `String`), so the Redis key of a client is the same
//! from C, Python and Node given the same key secret.

use std::cell::RefCell;
use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use ratewall::config::{Config, FailMode};
use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall::rate::{format_rates, parse_rates};
use ratewall::CheckError;
use ratewall_redis::{
    ConnectionState, Event, EventKind, Limiter, Limiters, Outcome, RedisOptions, RedisPolicy,
    RedisStore, Source,
};

use crate::fast::ns_to_ms;
use crate::{range_error, type_error};

/// Events waiting for the JavaScript thread beyond this many are dropped.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// The largest whole number JavaScript represents exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// The policy name of a limiter built from a rate string without a name. Part of every Redis
/// key, so instances that should share a quota must agree on it (and on the limits).
const DEFAULT_NAME: &str = "ratewall";

// ---------------------------------------------------------------------------------------------
// Values seen by JavaScript
// ---------------------------------------------------------------------------------------------

/// Connection and failure settings of a Redis store. Durations are milliseconds.
#[napi(object)]
pub struct RedisSpec {
    /// The longest a decision waits for Redis before the fail mode decides. Default 50.
    pub command_timeout_ms: Option<f64>,
    /// The longest one connection attempt may take. Default 500.
    pub connect_timeout_ms: Option<f64>,
    /// Longest pause between reconnection attempts. Default 1000.
    pub reconnect_max_delay_ms: Option<f64>,
    /// Namespace of every key. Default `ratewall` (for a configuration: its `key_prefix`).
    pub key_prefix: Option<String>,
    /// Secret of the keyed hash of client keys. Default `RATEWALL_KEY_SECRET`, else the public
    /// default. Must be the same in the whole fleet.
    pub key_secret: Option<String>,
    /// In `local` fail mode, the fraction of each limit the in-process fallback admits, in
    /// `(0, 1]`. Default 1.
    pub local_fraction: Option<f64>,
    /// `retryAfter` of a fail-closed denial. Default 1000.
    pub fail_closed_retry_after_ms: Option<f64>,
    /// Deliver failures and connection changes to the sink given to `redisInit`.
    pub events: Option<bool>,
    /// A PEM file of the certificate authorities a `rediss://` server must chain to, instead of
    /// the system's roots (`rediss://` only). Default: none (for a configuration: its
    /// `tls_ca_file`).
    pub tls_ca_file: Option<String>,
    /// PEM files of the client certificate and its key, presented to a `rediss://` server that
    /// asks clients for one (Redis's `tls-auth-clients`); both or neither. Default: none (for a
    /// configuration: its `tls_cert_file` and `tls_key_file`).
    pub tls_cert_file: Option<String>,
    /// See `tls_cert_file`.
    pub tls_key_file: Option<String>,
}

/// A Redis-backed policy built in code.
#[napi(object)]
pub struct RedisLimiterSpec {
    /// A rate string: `"10/second"`, `"100/day; 10/hour"`.
    pub limits: String,
    /// The policy's name: part of every Redis key (instances sharing a quota must agree on it).
    /// Default `ratewall`.
    pub name: Option<String>,
    /// `token-bucket` (default), `fixed-window`, `fixed-window-aligned`,
    /// `sliding-window-counter`, `sliding-log`.
    pub algorithm: Option<String>,
    /// Token-bucket capacity, when it differs from the limit.
    pub burst: Option<f64>,
    /// `fail-open` (default), `fail-closed` or `local`: who decides while Redis cannot answer.
    pub fail_mode: Option<String>,
}

/// Counters since the store was built.
#[napi(object)]
pub struct RedisHealth {
    /// `up` or `down`.
    pub state: String,
    /// Requests decided by Redis.
    pub redis_decisions: f64,
    /// Requests Redis could not decide (each was decided by the fail mode).
    pub errors: f64,
    /// Of `errors`, those that hit the command timeout.
    pub timeouts: f64,
    /// Requests admitted by `fail-open`.
    pub fail_open: f64,
    /// Requests denied by `fail-closed`.
    pub fail_closed: f64,
    /// Requests decided by the `local` fallback.
    pub local: f64,
    /// Times the connection was lost.
    pub disconnects: f64,
    /// Times the connection was re-established.
    pub reconnects: f64,
    /// The most recent failure, or null.
    pub last_error: Option<String>,
}

/// A failure or connection change, as delivered to the sink.
#[napi(object)]
pub struct RedisEvent {
    /// The store's `id`.
    pub store: u32,
    /// `error`, `down` or `up`.
    pub kind: String,
    /// The failure, for `error` and `down`.
    pub error: Option<String>,
    /// The policy whose request failed, for `error`.
    pub policy: Option<String>,
    /// How the failed request was decided, for `error`.
    pub fail_mode: Option<String>,
}

/// Position of each source in [`SOURCES`]: the code a decision array carries.
fn source_code(source: Source) -> f64 {
    match source {
        Source::Redis => 0.0,
        Source::Memory => 1.0,
        Source::FailOpen => 2.0,
        Source::FailClosed => 3.0,
        Source::Local => 4.0,
        // `Source` is non-exhaustive: a later kind is still a fallback.
        _ => 5.0,
    }
}

/// What the codes of [`source_code`] stand for (`redis.js` keeps the same list).
pub const SOURCES: [&str; 6] = [
    "redis",
    "memory",
    "fail-open",
    "fail-closed",
    "local",
    "fallback",
];

/// The most numbers [`outcome_into`] writes: 7, then 5 per limit of a policy of 2 to 8 limits.
const MAX_OUTCOME: usize = 7 + 5 * 8;

/// A decision as the numbers `redis.js` turns into a `RedisDecision` (durations in ms):
/// `[allowed (1/0), limit, remaining, retryAfter, resetAfter, mostRestrictive, source code]`,
/// then, with several limits, five numbers per limit (allowed, limit, remaining, retryAfter,
/// resetAfter). Written into `out` (at least [`MAX_OUTCOME`] long); returns how many. Numbers,
/// not an object: an object with eight named properties costs several times more to build
/// through Node-API.
fn outcome_into(outcome: &Outcome, out: &mut [f64]) -> usize {
    let d = outcome.decision.decision();
    let limits = outcome.decision.limits();
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    out[..7].copy_from_slice(&[
        flag(d.allowed),
        d.limit as f64,
        d.remaining as f64,
        ns_to_ms(d.retry_after),
        ns_to_ms(d.reset_after),
        outcome.decision.most_restrictive() as f64,
        source_code(outcome.source),
    ]);
    if limits.len() < 2 {
        return 7;
    }
    for (l, o) in limits.iter().zip(out[7..].chunks_exact_mut(5)) {
        o.copy_from_slice(&[
            flag(l.allowed),
            l.limit as f64,
            l.remaining as f64,
            ns_to_ms(l.retry_after),
            ns_to_ms(l.reset_after),
        ]);
    }
    7 + 5 * limits.len()
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::from_reason(format!(
            "Node-API call failed ({status})"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A construction error as the JavaScript error class it stands for: a malformed URL or option
/// type is a `TypeError`, a value out of range or a policy Redis cannot run a `RangeError`,
/// an unreachable server a plain `Error`.
/// The crate's message with its option names (Rust's) spelled as the JavaScript options are.
fn js_option_names(e: &ratewall_redis::Error) -> String {
    [
        ("command_timeout", "commandTimeout"),
        ("connect_timeout", "connectTimeout"),
        ("reconnect_max_delay", "reconnectMaxDelay"),
        ("reconnect_min_delay", "reconnectMinDelay"),
        ("local_fraction", "localFraction"),
        ("key_prefix", "keyPrefix"),
        ("tls_ca_file", "tlsCaFile"),
        ("tls_cert_file", "tlsCertFile"),
        ("tls_key_file", "tlsKeyFile"),
    ]
    .iter()
    .fold(e.to_string(), |m, (rust, js)| m.replace(rust, js))
}

fn store_error(e: ratewall_redis::Error) -> Error {
    use ratewall_redis::Error as E;
    match &e {
        E::Url(_) => type_error(e.to_string()),
        E::Option(_) => range_error(js_option_names(&e)),
        E::Policy(_) | E::Core(_) | E::Config(_) => range_error(e),
        _ => Error::from_reason(format!(
            "{e}: check that redis-server is running and the storage URL names it"
        )),
    }
}

fn check_error(e: CheckError) -> Error {
    range_error(e)
}

fn millis(value: Option<f64>, what: &str) -> Result<Option<Duration>> {
    let Some(v) = value else { return Ok(None) };
    if !(v.is_finite() && v > 0.0 && v <= 86_400_000.0) {
        return Err(range_error(format!(
            "{what} must be a number of milliseconds above 0 (at most one day), got {v}"
        )));
    }
    Ok(Some(Duration::from_secs_f64(v / 1000.0)))
}

fn whole(value: f64, what: &str) -> Result<u64> {
    if value.is_finite() && value >= 1.0 && value.fract() == 0.0 && value <= MAX_SAFE {
        Ok(value as u64)
    } else {
        Err(range_error(format!(
            "{what} must be a whole number of at least 1, got {value}"
        )))
    }
}

fn cost_of(cost: Option<f64>) -> Result<u64> {
    cost.map_or(Ok(1), |c| whole(c, "cost"))
}

// ---------------------------------------------------------------------------------------------
// Completion: pending calls, their wakers, and the thread-safe function
// ---------------------------------------------------------------------------------------------

/// What crosses from other threads to the JavaScript thread. Guarded by one mutex.
struct RemoteState {
    /// Null once Node has finalized the thread-safe function (environment teardown).
    tsfn: sys::napi_threadsafe_function,
    /// Slots whose futures were woken.
    woken: Vec<u32>,
    /// Events for the sink.
    events: Vec<RedisEvent>,
    /// A call of the thread-safe function is queued and has not started draining yet.
    notified: bool,
}

/// The thread-safe side of one JavaScript thread's [`Dispatcher`].
struct Remote {
    state: Mutex<RemoteState>,
}

// SAFETY: the only non-Send field is the thread-safe function handle, which Node-API allows to
// be called from any thread; it is only used under the mutex, and nulled (under the mutex) by
// its finalizer, so no call races with its destruction.
unsafe impl Send for Remote {}
// SAFETY: as above; every access goes through the mutex.
unsafe impl Sync for Remote {}

impl Remote {
    fn lock(&self) -> std::sync::MutexGuard<'_, RemoteState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for one drain on the JavaScript thread, unless one is already queued.
    fn notify(state: &mut RemoteState) {
        if state.notified || state.tsfn.is_null() {
            return;
        }
        // SAFETY: `tsfn` is live (not yet finalized: it would be null), and non-blocking calls
        // are allowed from any thread.
        let status = unsafe {
            sys::napi_call_threadsafe_function(
                state.tsfn,
                ptr::null_mut(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        state.notified = status == sys::Status::napi_ok;
    }

    fn wake(&self, slot: u32) {
        let mut state = self.lock();
        state.woken.push(slot);
        Self::notify(&mut state);
    }

    fn event(&self, event: RedisEvent) {
        let mut state = self.lock();
        if state.events.len() < MAX_QUEUED_EVENTS {
            state.events.push(event);
            Self::notify(&mut state);
        }
    }
}

/// The waker of one pending call: wakes its slot.
struct SlotWaker {
    slot: u32,
    remote: Arc<Remote>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.remote.wake(self.slot);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.remote.wake(self.slot);
    }
}

type OutcomeFuture = Pin<Box<dyn Future<Output = std::result::Result<Outcome, CheckError>> + Send>>;
type UnitFuture =
    Pin<Box<dyn Future<Output = std::result::Result<(), ratewall_redis::Error>> + Send>>;

enum Work {
    Decide(OutcomeFuture),
    Reset(UnitFuture),
}

/// How a call ended, before it becomes a JavaScript value.
enum Settled {
    Decided(Box<Outcome>),
    Done,
    Rejected(Error),
}

impl Work {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Settled> {
        match self {
            Work::Decide(f) => f.as_mut().poll(cx).map(|r| match r {
                Ok(o) => Settled::Decided(Box::new(o)),
                Err(e) => Settled::Rejected(check_error(e)),
            }),
            Work::Reset(f) => f.as_mut().poll(cx).map(|r| match r {
                Ok(()) => Settled::Done,
                Err(e) => Settled::Rejected(Error::from_reason(format!(
                    "reset failed: {e} (an administrative call: the fail mode does not apply)"
                ))),
            }),
        }
    }
}

struct Pending {
    work: Work,
    waker: Waker,
}

/// The JavaScript thread's table of pending calls. One per thread (one per Node environment:
/// the main thread and each worker).
struct Dispatcher {
    remote: Arc<Remote>,
    tsfn: sys::napi_threadsafe_function,
    slots: Vec<Option<Pending>>,
    free: Vec<u32>,
    live: usize,
    referenced: bool,
    /// `settle(count, slot, error)` of `redis.js` (see [`Batch`]).
    settle: sys::napi_ref,
    /// The `Float64Array` that carries finished calls to `settle`; the reference keeps it (and
    /// so `records`) alive for ever.
    _results: sys::napi_ref,
    records: *mut f64,
    capacity: usize,
    /// Stores holding requests until [`redis_release`].
    held: Vec<RedisStore>,
}

thread_local! {
    static DISPATCHER: RefCell<Option<Dispatcher>> = const { RefCell::new(None) };
}

/// Finished calls on their way to JavaScript: one call of `settle(count)` delivers `count`
/// records `[slot, n, n numbers]` written into the shared `Float64Array` (`n` = 0 for a reset,
/// else the numbers of [`outcome_into`]); `redis.js` resolves each slot's Promise, in order.
/// A rejection is `settle(0, slot, error)`. So a drain that finishes many calls crosses into
/// JavaScript once, and no Promise, array or number is created here per call.
struct Batch {
    env: sys::napi_env,
    settle: sys::napi_value,
    records: *mut f64,
    capacity: usize,
    used: usize,
    count: u32,
}

impl Batch {
    /// `None` when the thread has no dispatcher (never: a drain implies one).
    fn new(env: sys::napi_env) -> Option<Batch> {
        let (settle, records, capacity) =
            DISPATCHER.with_borrow(|d| d.as_ref().map(|d| (d.settle, d.records, d.capacity)))?;
        let mut value = ptr::null_mut();
        // SAFETY: on the JavaScript thread that created the reference.
        let status = unsafe { sys::napi_get_reference_value(env, settle, &mut value) };
        (status == sys::Status::napi_ok && !value.is_null()).then_some(Batch {
            env,
            settle: value,
            records,
            capacity,
            used: 0,
            count: 0,
        })
    }

    fn push(&mut self, slot: u32, settled: Settled) {
        let outcome = match settled {
            Settled::Rejected(e) => {
                self.flush();
                // SAFETY: on the JavaScript thread, inside the drain's callback scope.
                unsafe {
                    let error = rejection(self.env, &e);
                    self.call(&[self.number(0.0), self.number(f64::from(slot)), error]);
                }
                return;
            }
            Settled::Done => None,
            Settled::Decided(o) => Some(o),
        };
        if self.used + 2 + MAX_OUTCOME > self.capacity {
            self.flush();
        }
        // SAFETY: `records` holds `capacity` numbers, kept alive by the dispatcher's reference;
        // only this thread touches it, and JavaScript reads it only inside `settle`.
        let out =
            unsafe { std::slice::from_raw_parts_mut(self.records.add(self.used), 2 + MAX_OUTCOME) };
        out[0] = f64::from(slot);
        let n = outcome.map_or(0, |o| outcome_into(&o, &mut out[2..]));
        out[1] = n as f64;
        self.used += 2 + n;
        self.count += 1;
    }

    fn flush(&mut self) {
        if self.count > 0 {
            // SAFETY: on the JavaScript thread, inside the drain's callback scope.
            unsafe { self.call(&[self.number(f64::from(self.count))]) };
        }
        self.used = 0;
        self.count = 0;
    }

    fn number(&self, n: f64) -> sys::napi_value {
        let mut value = ptr::null_mut();
        // SAFETY: on the JavaScript thread.
        unsafe { sys::napi_create_double(self.env, n, &mut value) };
        value
    }

    /// Calls `settle`; an exception it throws is cleared (it only resolves Promises).
    unsafe fn call(&self, args: &[sys::napi_value]) {
        // SAFETY: on the JavaScript thread, inside a Node-API callback scope.
        unsafe {
            let mut undefined = ptr::null_mut();
            sys::napi_get_undefined(self.env, &mut undefined);
            let mut result = ptr::null_mut();
            let status = sys::napi_call_function(
                self.env,
                undefined,
                self.settle,
                args.len(),
                args.as_ptr(),
                &mut result,
            );
            if status != sys::Status::napi_ok {
                let mut exception = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(self.env, &mut exception);
            }
        }
    }
}

/// Node calls this on the JavaScript thread when the thread-safe function is poked.
unsafe extern "C" fn on_drain(
    env: sys::napi_env,
    sink: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() || context.is_null() {
        return; // the environment is being torn down
    }
    // SAFETY: `context` is the `Arc<Remote>` leaked at creation; it is freed only by the
    // finalizer, which runs after the last call of this function.
    let remote = unsafe { &*(context as *const Remote) };
    let (woken, events) = {
        let mut state = remote.lock();
        state.notified = false;
        (
            std::mem::take(&mut state.woken),
            std::mem::take(&mut state.events),
        )
    };
    if let Some(mut batch) = Batch::new(env) {
        for slot in woken {
            if let Some(settled) = poll_slot(env, slot) {
                batch.push(slot, settled);
            }
        }
        batch.flush();
    }
    for event in events {
        // SAFETY: `env` is this thread's live environment.
        unsafe { deliver(env, sink, event) };
    }
}

/// Calls the sink with one event; an exception it throws is cleared (the JavaScript sink
/// catches the user's own errors; this guards against anything else).
unsafe fn deliver(env: sys::napi_env, sink: sys::napi_value, event: RedisEvent) {
    if sink.is_null() {
        return;
    }
    // SAFETY: on the JavaScript thread, inside a Node-API callback scope.
    unsafe {
        let Ok(value) = RedisEvent::to_napi_value(env, event) else {
            return;
        };
        let mut undefined = ptr::null_mut();
        sys::napi_get_undefined(env, &mut undefined);
        let mut result = ptr::null_mut();
        let status = sys::napi_call_function(env, undefined, sink, 1, &value, &mut result);
        if status != sys::Status::napi_ok {
            let mut exception = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut exception);
        }
    }
}

/// The thread-safe function's finalizer: no call may reach it any more.
unsafe extern "C" fn on_finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: `data` is the `Arc<Remote>` leaked at creation; this is its only release.
    let remote = unsafe { Arc::from_raw(data as *const Remote) };
    remote.lock().tsfn = ptr::null_mut();
}

/// Polls the call in `slot` again; once it is done, frees the slot and returns how it ended.
fn poll_slot(env: sys::napi_env, slot: u32) -> Option<Settled> {
    // Take the call out while polling: polling may call back into this module (events).
    let taken = DISPATCHER.with_borrow_mut(|d| {
        d.as_mut()
            .and_then(|d| d.slots.get_mut(slot as usize).and_then(Option::take))
    });
    // `None`: settled already (a late or spurious wake).
    let mut pending = taken?;
    let mut cx = Context::from_waker(&pending.waker);
    match pending.work.poll(&mut cx) {
        Poll::Pending => {
            DISPATCHER.with_borrow_mut(|d| {
                if let Some(d) = d.as_mut() {
                    d.slots[slot as usize] = Some(pending);
                }
            });
            None
        }
        Poll::Ready(settled) => {
            DISPATCHER.with_borrow_mut(|d| {
                if let Some(d) = d.as_mut() {
                    d.free.push(slot);
                    d.live -= 1;
                    d.update_ref(env);
                }
            });
            Some(settled)
        }
    }
}

/// A JavaScript error object for `e`: `TypeError` for `InvalidArg`, `RangeError` for
/// `GenericFailure` (as the synchronous glue does), else `Error`.
unsafe fn rejection(env: sys::napi_env, e: &Error) -> sys::napi_value {
    // SAFETY: on the JavaScript thread.
    unsafe {
        let mut msg = ptr::null_mut();
        sys::napi_create_string_utf8(
            env,
            e.reason.as_ptr().cast(),
            e.reason.len() as isize,
            &mut msg,
        );
        let mut out = ptr::null_mut();
        match e.status {
            Status::InvalidArg => sys::napi_create_type_error(env, ptr::null_mut(), msg, &mut out),
            Status::GenericFailure => {
                sys::napi_create_range_error(env, ptr::null_mut(), msg, &mut out)
            }
            _ => sys::napi_create_error(env, ptr::null_mut(), msg, &mut out),
        };
        out
    }
}

impl Dispatcher {
    /// Keeps the process alive while calls are pending, and only then.
    fn update_ref(&mut self, env: sys::napi_env) {
        let want = self.live > 0;
        if want == self.referenced {
            return;
        }
        // SAFETY: on the JavaScript thread that owns the thread-safe function.
        unsafe {
            if want {
                sys::napi_ref_threadsafe_function(env, self.tsfn);
            } else {
                sys::napi_unref_threadsafe_function(env, self.tsfn);
            }
        }
        self.referenced = want;
    }
}

/// This thread's [`Remote`], for the `on_event` callbacks of stores built here.
fn remote() -> Result<Arc<Remote>> {
    DISPATCHER.with_borrow(|d| {
        d.as_ref().map(|d| Arc::clone(&d.remote)).ok_or_else(|| {
            Error::from_reason("ratewall: redisInit was not called (load ratewall/redis)")
        })
    })
}

/// Starts `work`. Returns the slot whose record `settle` will deliver, or, when the work is
/// done at once (a fail mode while Redis is down, in-process storage), its numbers (empty for
/// a reset); a call that fails at once throws.
fn submit(env: &Env, work: Work) -> Result<Either<u32, Vec<f64>>> {
    let raw_env = env.raw();
    let remote = remote()?;
    let slot = DISPATCHER.with_borrow_mut(|d| {
        let d = d.as_mut().expect("checked by remote()");
        match d.free.pop() {
            Some(s) => s,
            None => {
                d.slots.push(None);
                (d.slots.len() - 1) as u32
            }
        }
    });
    let waker = Waker::from(Arc::new(SlotWaker { slot, remote }));
    let mut work = work;
    let mut cx = Context::from_waker(&waker);
    match work.poll(&mut cx) {
        Poll::Ready(settled) => {
            DISPATCHER.with_borrow_mut(|d| {
                if let Some(d) = d.as_mut() {
                    d.free.push(slot);
                }
            });
            match settled {
                Settled::Decided(o) => {
                    let mut out = [0.0; MAX_OUTCOME];
                    let n = outcome_into(&o, &mut out);
                    Ok(Either::B(out[..n].to_vec()))
                }
                Settled::Done => Ok(Either::B(Vec::new())),
                Settled::Rejected(e) => Err(e),
            }
        }
        Poll::Pending => {
            DISPATCHER.with_borrow_mut(|d| {
                if let Some(d) = d.as_mut() {
                    d.slots[slot as usize] = Some(Pending { work, waker });
                    d.live += 1;
                    d.update_ref(raw_env);
                }
            });
            Ok(Either::A(slot))
        }
    }
}

/// Sets up this thread's completion queue: `sink(event)` receives every store's events,
/// `settle(count, slot, error)` finished calls, as records in `results` (see [`Batch`]).
/// Called once by `redis.js` when it loads; later calls do nothing.
#[napi]
pub fn redis_init(
    env: Env,
    sink: Function<'_, RedisEvent, ()>,
    settle: Function<'_, FnArgs<(u32, u32, Unknown<'_>)>, ()>,
    results: Float64ArraySlice<'_>,
) -> Result<()> {
    if DISPATCHER.with_borrow(|d| d.is_some()) {
        return Ok(());
    }
    let raw_env = env.raw();
    let capacity = results.len();
    if capacity < 2 + MAX_OUTCOME {
        return Err(range_error(format!(
            "redisInit: results must hold at least {} numbers",
            2 + MAX_OUTCOME
        )));
    }
    let records = results.as_ptr().cast_mut();
    let mut settle_ref = ptr::null_mut();
    let mut results_ref = ptr::null_mut();
    // SAFETY: on the JavaScript thread; the references are never deleted (one per thread, for
    // the environment's lifetime), so the function and the buffer outlive every drain.
    unsafe {
        check(sys::napi_create_reference(
            raw_env,
            settle.raw(),
            1,
            &mut settle_ref,
        ))?;
        check(sys::napi_create_reference(
            raw_env,
            results.raw(),
            1,
            &mut results_ref,
        ))?;
    }
    let remote = Arc::new(Remote {
        state: Mutex::new(RemoteState {
            tsfn: ptr::null_mut(),
            woken: Vec::new(),
            events: Vec::new(),
            notified: false,
        }),
    });
    let context = Arc::into_raw(Arc::clone(&remote)) as *mut c_void;
    let mut name = ptr::null_mut();
    let mut tsfn = ptr::null_mut();
    // SAFETY: on the JavaScript thread; `context` is released by `on_finalize` (or below).
    unsafe {
        let label = "ratewall-redis";
        sys::napi_create_string_utf8(
            raw_env,
            label.as_ptr().cast(),
            label.len() as isize,
            &mut name,
        );
        let status = sys::napi_create_threadsafe_function(
            raw_env,
            sink.raw(),
            ptr::null_mut(),
            name,
            0,
            1,
            context,
            Some(on_finalize),
            context,
            Some(on_drain),
            &mut tsfn,
        );
        if status != sys::Status::napi_ok {
            drop(Arc::from_raw(context as *const Remote));
            return Err(Error::from_reason(
                "ratewall: could not create the Redis completion queue",
            ));
        }
        // Idle: the queue alone must not keep the process alive.
        sys::napi_unref_threadsafe_function(raw_env, tsfn);
    }
    remote.lock().tsfn = tsfn;
    DISPATCHER.with_borrow_mut(|d| {
        *d = Some(Dispatcher {
            remote,
            tsfn,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            referenced: false,
            settle: settle_ref,
            _results: results_ref,
            records,
            capacity,
            held: Vec::new(),
        })
    });
    Ok(())
}

/// Sends the requests held since the last call (every `check`, `peek` and `refund` holds its
/// store). `redis.js` calls it once per turn of the event loop that made requests, from a
/// microtask queued by the first of them: the requests of one turn go to the I/O thread in one
/// wake-up and to Redis in one write.
#[napi]
pub fn redis_release() {
    let held = DISPATCHER.with_borrow_mut(|d| d.as_mut().map(|d| std::mem::take(&mut d.held)));
    for store in held.into_iter().flatten() {
        store.release();
    }
}

// ---------------------------------------------------------------------------------------------
// Stores and limiters
// ---------------------------------------------------------------------------------------------

static NEXT_STORE_ID: AtomicU32 = AtomicU32::new(1);

fn options_from(spec: &RedisSpec, id: u32) -> Result<RedisOptions> {
    let mut o = RedisOptions::default();
    if let Some(d) = millis(spec.command_timeout_ms, "commandTimeout")? {
        o.command_timeout = d;
    }
    if let Some(d) = millis(spec.connect_timeout_ms, "connectTimeout")? {
        o.connect_timeout = d;
    }
    if let Some(d) = millis(spec.reconnect_max_delay_ms, "reconnectMaxDelay")? {
        o.reconnect_max_delay = d;
        o.reconnect_min_delay = o.reconnect_min_delay.min(d);
    }
    if let Some(d) = millis(spec.fail_closed_retry_after_ms, "failClosedRetryAfter")? {
        o.fail_closed_retry_after = d;
    }
    if let Some(p) = &spec.key_prefix {
        o.key_prefix = p.clone();
    }
    if let Some(s) = &spec.key_secret {
        if s.is_empty() {
            return Err(range_error("keySecret must not be empty"));
        }
        o.key_secret = Some(s.as_bytes().to_vec());
    }
    if let Some(f) = spec.local_fraction {
        o.local_fraction = f;
    }
    if let Some(file) = &spec.tls_ca_file {
        // A file that cannot be read is a plain `Error`, as an unreachable server is.
        let pem = ratewall_redis::read_tls_ca_file(file)
            .map_err(|e| Error::from_reason(js_option_names(&e)))?;
        o.tls_ca_certificates = Some(pem);
    }
    let (cert, key) = (spec.tls_cert_file.as_deref(), spec.tls_key_file.as_deref());
    o.tls_client_identity = match ratewall_redis::read_tls_client_identity(cert, key) {
        Ok(identity) => identity,
        // One without the other: a bad option (RangeError, naming the missing one).
        Err(e) if cert.is_some() != key.is_some() => return Err(store_error(e)),
        // A file that cannot be read: a plain `Error`, as for tlsCaFile.
        Err(e) => return Err(Error::from_reason(js_option_names(&e))),
    };
    if spec.events == Some(true) {
        let remote = remote()?;
        o.on_event = Some(Arc::new(move |e: &Event<'_>| {
            remote.event(RedisEvent {
                store: id,
                kind: match e.kind {
                    EventKind::Error => "error",
                    EventKind::Down => "down",
                    EventKind::Up => "up",
                    _ => "other",
                }
                .to_string(),
                error: e.error.map(ToString::to_string),
                policy: e.policy.map(str::to_string),
                fail_mode: e.fail_mode.map(|m| m.name().to_string()),
            });
        }));
    }
    Ok(o)
}

/// A connection to Redis (or, from a configuration, every policy of its storage). Never
/// blocks: it connects in the background, and decisions follow each policy's fail mode until
/// Redis answers. `state` tells when it is up.
#[napi]
pub struct NativeRedisStore {
    id: u32,
    store: Option<RedisStore>,
    limiters: Option<Limiters>,
}

#[napi]
impl NativeRedisStore {
    /// A store on `url` (`redis://`, `rediss://`, `redis+unix://`, `redis+cluster://`). The URL
    /// and options are checked now; the connection is made in the background.
    #[napi(factory)]
    pub fn open(url: String, spec: RedisSpec) -> Result<NativeRedisStore> {
        if ratewall_redis::url::is_memory_url(&url) {
            return Err(type_error(format!(
                "{url:?} is the in-process store: use Limiter (or no store) for memory://, and \
                 redis://host:port for Redis"
            )));
        }
        let id = NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed);
        let store =
            RedisStore::connect_lazy(&url, options_from(&spec, id)?).map_err(store_error)?;
        Ok(NativeRedisStore {
            id,
            store: Some(store),
            limiters: None,
        })
    }

    /// Every policy of a configuration (canonical TOML) on the store its `storage` names
    /// (`memory://` gives in-process limiters). The configuration's `key_prefix` applies.
    #[napi(factory)]
    pub fn from_config(toml: String, spec: RedisSpec) -> Result<NativeRedisStore> {
        let config = Config::from_toml_str(&toml).map_err(range_error)?;
        let id = NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed);
        let limiters = Limiters::from_config_with(&config, options_from(&spec, id)?, true)
            .map_err(store_error)?;
        Ok(NativeRedisStore {
            id,
            store: limiters.store().cloned(),
            limiters: Some(limiters),
        })
    }

    /// This store's id (the `store` field of its events).
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The storage URL, password redacted.
    #[napi(getter)]
    pub fn url(&self) -> String {
        match (&self.store, &self.limiters) {
            (Some(s), _) => s.url().to_string(),
            (None, Some(l)) => l.config().settings.storage.clone(),
            (None, None) => String::new(),
        }
    }

    /// `up`, `down`, or `memory` (a configuration with `memory://` storage).
    #[napi(getter)]
    pub fn state(&self) -> String {
        match &self.store {
            Some(s) if s.state() == ConnectionState::Up => "up",
            Some(_) => "down",
            None => "memory",
        }
        .to_string()
    }

    /// Counters and state, or null for in-process storage.
    #[napi]
    pub fn health(&self) -> Option<RedisHealth> {
        let h = self.store.as_ref()?.health();
        Some(RedisHealth {
            state: if h.state == ConnectionState::Up {
                "up"
            } else {
                "down"
            }
            .to_string(),
            redis_decisions: h.redis_decisions as f64,
            errors: h.errors as f64,
            timeouts: h.timeouts as f64,
            fail_open: h.fail_open as f64,
            fail_closed: h.fail_closed as f64,
            local: h.local as f64,
            disconnects: h.disconnects as f64,
            reconnects: h.reconnects as f64,
            last_error: h.last_error.map(|e| e.to_string()),
        })
    }

    /// A policy built in code on this store.
    #[napi]
    pub fn limiter(&self, spec: RedisLimiterSpec) -> Result<NativeRedisLimiter> {
        let Some(store) = &self.store else {
            return Err(type_error(
                "this configuration's storage is memory://: take its policies with policy(name)",
            ));
        };
        let name = spec.name.as_deref().unwrap_or(DEFAULT_NAME);
        if name.trim().is_empty() {
            return Err(range_error("name must not be empty"));
        }
        let rates = parse_rates(&spec.limits)
            .map_err(|e| range_error(format!("invalid rate string: {e}")))?;
        let options = PolicyOptions {
            algorithm: match &spec.algorithm {
                Some(a) => Algorithm::from_str(a).map_err(range_error)?,
                None => Algorithm::default(),
            },
            burst: spec.burst.map(|b| whole(b, "burst")).transpose()?,
            ..PolicyOptions::default()
        };
        let fail_mode = match &spec.fail_mode {
            Some(m) => FailMode::from_str(m).map_err(range_error)?,
            None => FailMode::default(),
        };
        let policy = Policy::new(name, &rates, options)
            .map_err(|e| range_error(format!("invalid policy: {e}")))?;
        let policy = RedisPolicy::new(store, policy, fail_mode).map_err(store_error)?;
        Ok(NativeRedisLimiter {
            limiter: Limiter::Redis(policy),
            fail_mode,
        })
    }

    /// Policy `name` of the configuration this store was built from.
    #[napi]
    pub fn policy(&self, name: String) -> Result<NativeRedisLimiter> {
        let Some(limiters) = &self.limiters else {
            return Err(type_error(
                "this store was built from a URL, not a configuration: use limiter(spec)",
            ));
        };
        match limiters.get(&name) {
            Some(l) => Ok(NativeRedisLimiter {
                limiter: l.clone(),
                fail_mode: limiters.fail_mode(&name),
            }),
            None => {
                let known: Vec<&str> = limiters.iter().map(|l| l.policy().name()).collect();
                Err(range_error(format!(
                    "no policy named {name:?} in the configuration; known policies: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )))
            }
        }
    }

    /// The configuration's policy names (empty for a store built from a URL).
    #[napi]
    pub fn policy_names(&self) -> Vec<String> {
        self.limiters
            .iter()
            .flat_map(|l| l.iter().map(|l| l.policy().name().to_string()))
            .collect()
    }
}

/// One policy on a store. `check`, `peek`, `refund` and `reset` return the slot whose record
/// `settle` (see `redisInit`) delivers later, or their numbers when done at once.
#[napi]
pub struct NativeRedisLimiter {
    limiter: Limiter,
    fail_mode: FailMode,
}

#[napi]
impl NativeRedisLimiter {
    /// Holds this limiter's store until `redisRelease` (see [`redis_release`]), so the requests
    /// of one turn of the event loop go to the I/O thread together.
    fn hold(&self) {
        if let Limiter::Redis(p) = &self.limiter {
            if p.store().hold() {
                let store = p.store().clone();
                DISPATCHER.with_borrow_mut(|d| {
                    if let Some(d) = d.as_mut() {
                        d.held.push(store);
                    }
                });
            }
        }
    }

    /// Decides a request of `cost` permits (default 1) and takes them if admitted.
    #[napi]
    pub fn check(
        &self,
        env: &Env,
        key: String,
        cost: Option<f64>,
    ) -> Result<Either<u32, Vec<f64>>> {
        let cost = cost_of(cost)?;
        self.hold();
        let fut = self.limiter.check_async(key, cost);
        submit(env, Work::Decide(Box::pin(fut)))
    }

    /// Decides without taking anything.
    #[napi]
    pub fn peek(&self, env: &Env, key: String, cost: Option<f64>) -> Result<Either<u32, Vec<f64>>> {
        let cost = cost_of(cost)?;
        self.hold();
        let fut = self.limiter.peek_async(key, cost);
        submit(env, Work::Decide(Box::pin(fut)))
    }

    /// Gives `cost` permits (default 1) back, never above full.
    #[napi]
    pub fn refund(
        &self,
        env: &Env,
        key: String,
        cost: Option<f64>,
    ) -> Result<Either<u32, Vec<f64>>> {
        let cost = cost_of(cost)?;
        self.hold();
        let fut = self.limiter.refund_async(key, cost);
        submit(env, Work::Decide(Box::pin(fut)))
    }

    /// Makes `key` full again (an administrative call: a Redis failure rejects).
    #[napi]
    pub fn reset(&self, env: &Env, key: String) -> Result<Either<u32, Vec<f64>>> {
        let fut = self.limiter.reset_async(key);
        submit(env, Work::Reset(Box::pin(fut)))
    }

    /// The Redis keys holding `key`'s state, one per limit (empty for in-process storage).
    #[napi]
    pub fn redis_keys(&self, key: String) -> Vec<String> {
        match &self.limiter {
            Limiter::Redis(p) => p.redis_keys(key),
            Limiter::Memory(_) => Vec::new(),
        }
    }

    /// The policy's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.limiter.policy().name().to_string()
    }

    /// The limits, canonical.
    #[napi(getter)]
    pub fn limits(&self) -> String {
        format_rates(self.limiter.policy().rates())
    }

    /// The algorithm's canonical name.
    #[napi(getter)]
    pub fn algorithm(&self) -> String {
        self.limiter.policy().options().algorithm.name().to_string()
    }

    /// `fail-open`, `fail-closed` or `local`.
    #[napi(getter)]
    pub fn fail_mode(&self) -> String {
        self.fail_mode.name().to_string()
    }

    /// `redis` or `memory`: where the state lives.
    #[napi(getter)]
    pub fn storage(&self) -> String {
        match &self.limiter {
            Limiter::Redis(_) => "redis",
            Limiter::Memory(_) => "memory",
        }
        .to_string()
    }

    /// Each limit's window in milliseconds.
    #[napi(getter)]
    pub fn windows_ms(&self) -> Vec<f64> {
        self.limiter
            .policy()
            .rates()
            .iter()
            .map(|r| ns_to_ms(r.period()))
            .collect()
    }

    /// Each limit's permits per window.
    #[napi(getter)]
    pub fn quotas(&self) -> Vec<f64> {
        self.limiter
            .policy()
            .rates()
            .iter()
            .map(|r| r.limit() as f64)
            .collect()
    }
}
