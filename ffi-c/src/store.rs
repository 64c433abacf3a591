//! The store behind configured policies: in-process (`memory://`) or Redis (`redis://`,
//! `rediss://`, `redis+unix://`, `redis+cluster://`). Its options, the event callback, health
//! counters, and who decided a request.

use std::ffi::{c_char, c_void, CString};
use std::mem::size_of;
use std::ptr::{self, addr_of_mut};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ratewall::config::{Config, FailMode};
use ratewall_redis::{ConnectionState, Event, EventKind, Health, Limiters, RedisOptions, Source};

use crate::error::{rw_status, Error, Result};
use crate::util::check_ptr;

/// Who decided a request (`rw_decision.source`, `rw_event.source`).
pub type rw_source = u32;

/// The in-process limiter of this process decided (`rw_policy_from_str`, or a configuration
/// with `storage = "memory://"`, the default).
pub const RW_SOURCE_MEMORY: rw_source = 0;
/// Redis decided: the fleet-wide answer.
pub const RW_SOURCE_REDIS: rw_source = 1;
/// Redis could not answer in time; the policy's `fail_mode = "fail-open"` admitted the request.
pub const RW_SOURCE_FAIL_OPEN: rw_source = 2;
/// Redis could not answer in time; `fail_mode = "fail-closed"` denied the request.
pub const RW_SOURCE_FAIL_CLOSED: rw_source = 3;
/// Redis could not answer in time; `fail_mode = "local"` decided with an in-process limiter of
/// the same policy.
pub const RW_SOURCE_LOCAL: rw_source = 4;
/// A source newer than this header (never returned by the library this header belongs to).
pub const RW_SOURCE_OTHER: rw_source = 255;

/// The C value of a decision's source.
#[inline(always)]
pub(crate) fn source_code(source: Source) -> rw_source {
    match source {
        Source::Memory => RW_SOURCE_MEMORY,
        Source::Redis => RW_SOURCE_REDIS,
        Source::FailOpen => RW_SOURCE_FAIL_OPEN,
        Source::FailClosed => RW_SOURCE_FAIL_CLOSED,
        Source::Local => RW_SOURCE_LOCAL,
        _ => RW_SOURCE_OTHER,
    }
}

fn fail_mode_source(mode: FailMode) -> rw_source {
    match mode {
        FailMode::Open => RW_SOURCE_FAIL_OPEN,
        FailMode::Closed => RW_SOURCE_FAIL_CLOSED,
        FailMode::Local => RW_SOURCE_LOCAL,
        _ => RW_SOURCE_OTHER,
    }
}

/// The name of a source (`"redis"`, `"memory"`, `"fail-open"`, `"fail-closed"`, `"local"`, or
/// `"unknown"`) as a static NUL-terminated string, for logs and metric labels. Never NULL; never
/// needs freeing; cannot fail.
#[no_mangle]
pub extern "C" fn rw_source_str(source: rw_source) -> *const c_char {
    let name: &'static [u8] = std::panic::catch_unwind(|| match source {
        RW_SOURCE_MEMORY => &b"memory\0"[..],
        RW_SOURCE_REDIS => b"redis\0",
        RW_SOURCE_FAIL_OPEN => b"fail-open\0",
        RW_SOURCE_FAIL_CLOSED => b"fail-closed\0",
        RW_SOURCE_LOCAL => b"local\0",
        _ => b"unknown\0",
    })
    .unwrap_or(b"unknown\0");
    name.as_ptr().cast()
}

/// `rw_event.kind`: a request could not be decided by Redis; its fail mode decided it
/// (`rw_event.source` says how, `rw_event.policy` names the policy).
pub const RW_EVENT_ERROR: u32 = 1;
/// `rw_event.kind`: the connection to Redis was lost (or could not be made); it is re-established
/// in the background while fail modes decide.
pub const RW_EVENT_DOWN: u32 = 2;
/// `rw_event.kind`: the connection is (again) established; Redis decides again.
pub const RW_EVENT_UP: u32 = 3;

/// What the Redis store reports to `rw_store_options.on_event`. Every pointer in it is valid
/// only during the callback: copy what you keep.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rw_event {
    /// `RW_EVENT_ERROR`, `RW_EVENT_DOWN` or `RW_EVENT_UP` (later versions may add kinds: ignore
    /// unknown ones).
    pub kind: u32,
    /// For `RW_EVENT_ERROR`: how the failed request was decided (`RW_SOURCE_FAIL_OPEN`,
    /// `RW_SOURCE_FAIL_CLOSED` or `RW_SOURCE_LOCAL`). 0 otherwise.
    pub source: rw_source,
    /// For `RW_EVENT_ERROR`: the policy's name. NULL otherwise.
    pub policy: *const c_char,
    /// For `RW_EVENT_ERROR` and `RW_EVENT_DOWN`: the failure in words (never contains a
    /// password). NULL for `RW_EVENT_UP`.
    pub message: *const c_char,
}

/// The event callback: `event` describes what happened; `user_data` is
/// `rw_store_options.user_data`, passed through untouched.
///
/// Threading: it runs on the thread that observed the event, either a thread making a
/// decision (`RW_EVENT_ERROR`, sometimes `RW_EVENT_DOWN`) or the store's I/O thread
/// (`RW_EVENT_DOWN`, `RW_EVENT_UP`), possibly on several threads at once: make it thread-safe,
/// short and non-blocking (count, log, set a gauge). It must not call any ratewall function: a
/// decision made from the I/O thread waits for that same thread and would only end through its
/// timeout, and freeing a handle from it deadlocks. After the last handle of the configuration
/// is freed the callback is never called again (freeing waits for a call in progress), so
/// `user_data` may be released then.
pub type rw_event_fn = Option<unsafe extern "C" fn(event: *const rw_event, user_data: *mut c_void)>;

/// `rw_store_options.flags`: do not wait for Redis at construction. The configuration is built
/// even while Redis is down (only the URL and options are checked); until the first connection
/// succeeds in the background, each policy's fail mode decides. Without it an unreachable
/// server is `RW_STORAGE_UNAVAILABLE`.
pub const RW_STORE_LAZY: u32 = 1;

/// Options of the store a configuration runs on, for `rw_config_from_file_with` and its
/// siblings. They apply to Redis storage (and are checked, then unused, for `memory://`); the
/// storage URL, `fail_mode` and `key_prefix` come from the configuration itself. Every zero field
/// means "the default": start from `RW_STORE_OPTIONS_INIT` (which sets `struct_size`):
///
/// ```c
/// rw_store_options opts = RW_STORE_OPTIONS_INIT;
/// opts.command_timeout_ms = 20;
/// opts.on_event = log_redis_event;
/// ```
///
/// Versioned by `struct_size` exactly like `rw_policy_options`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rw_store_options {
    /// `sizeof(rw_store_options)` as the caller sees it. Required.
    pub struct_size: usize,
    /// The longest a decision waits for Redis before the fail mode decides, in milliseconds.
    /// 0 for the default (50 ms).
    pub command_timeout_ms: u64,
    /// The longest one connection attempt may take, in milliseconds (also the construction's
    /// bound when not lazy). 0 for the default (500 ms).
    pub connect_timeout_ms: u64,
    /// For `fail_mode = "local"`: the fraction of each limit the in-process fallback admits, in
    /// (0, 1] (a fleet of N instances keeps near its quota with 1/N). 0 for the default (1).
    pub local_fraction: f64,
    /// `RW_STORE_LAZY`, or 0.
    pub flags: u32,
    /// Threads of the store's I/O runtime (1 to 64). 0 for the default (1).
    pub io_threads: u32,
    /// Called on every Redis failure and connection change; NULL for none (poll
    /// `rw_config_health` instead). See `rw_event_fn` for the threading rules.
    pub on_event: rw_event_fn,
    /// Passed to `on_event` untouched.
    pub user_data: *mut c_void,
}

/// The largest `struct_size` accepted for an options struct: anything above is surely not a
/// size.
const MAX_OPTIONS_SIZE: usize = 4096;

/// Checks a caller's versioned options struct (`struct_size` first) of our type `T` and returns
/// the size the caller declared. A larger struct from a newer header is accepted only if every
/// byte this library does not know is zero.
///
/// # Safety
/// `opts` is non-NULL, aligned, and points to `opts->struct_size` readable bytes.
pub(crate) unsafe fn options_size<T>(opts: *const T, what: &str) -> Result<usize> {
    let size = opts.cast::<usize>().read();
    let known = size_of::<T>();
    if !(size_of::<usize>()..=MAX_OPTIONS_SIZE).contains(&size) {
        return Err(Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            format_args!(
                "options->struct_size is {size}: set it to sizeof({what}) (the {}_INIT \
                 initialiser does)",
                what.to_uppercase()
            ),
        ));
    }
    if size > known {
        let extra = std::slice::from_raw_parts(opts.cast::<u8>().add(known), size - known);
        if extra.iter().any(|&b| b != 0) {
            return Err(Error::new(
                rw_status::RW_UNSUPPORTED,
                format_args!(
                    "options set fields that this library (version {}, {known}-byte {what}) does \
                     not know (struct_size {size}): upgrade libratewall, or leave the newer \
                     fields zero",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
    }
    Ok(size)
}

/// Reads field `$field` of type `$ty` of the caller's options struct `$opts` (of type `$t`) if
/// the caller's `$size` covers it.
macro_rules! field {
    ($t:ty, $opts:ident, $size:ident, $field:ident: $ty:ty) => {{
        // The declared type must be the field's type.
        let _: fn(&$t) -> &$ty = |o| &o.$field;
        let offset = std::mem::offset_of!($t, $field);
        if offset + std::mem::size_of::<$ty>() <= $size {
            // SAFETY: the caller guarantees `$size` readable bytes at `$opts`, and the field lies
            // within them; `$opts` is aligned (checked) and so is the field.
            Some(unsafe { $opts.cast::<u8>().add(offset).cast::<$ty>().read() })
        } else {
            None
        }
    }};
}
pub(crate) use field;

/// The store settings a configuration is built with.
#[derive(Default)]
pub(crate) struct StoreOptions {
    redis: RedisOptions,
    lazy: bool,
    events: Option<Arc<EventSink>>,
}

fn millis(ms: u64, what: &str) -> Result<Option<Duration>> {
    // A timeout of more than a day is surely a unit mistake (seconds or ns for ms).
    const DAY_MS: u64 = 24 * 3600 * 1000;
    match ms {
        0 => Ok(None),
        1..=DAY_MS => Ok(Some(Duration::from_millis(ms))),
        _ => Err(Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            format_args!("options->{what} is {ms} ms: use at most one day (it is milliseconds)"),
        )),
    }
}

/// Reads `rw_store_options` (NULL: every default).
///
/// # Safety
/// `opts` is NULL or points to `opts->struct_size` readable bytes.
pub(crate) unsafe fn read_store_options(opts: *const rw_store_options) -> Result<StoreOptions> {
    let mut out = StoreOptions::default();
    if opts.is_null() {
        return Ok(out);
    }
    check_ptr(opts, "options")?;
    let size = options_size(opts, "rw_store_options")?;
    let r = &mut out.redis;
    if let Some(ms) = field!(rw_store_options, opts, size, command_timeout_ms: u64) {
        if let Some(d) = millis(ms, "command_timeout_ms")? {
            r.command_timeout = d;
        }
    }
    if let Some(ms) = field!(rw_store_options, opts, size, connect_timeout_ms: u64) {
        if let Some(d) = millis(ms, "connect_timeout_ms")? {
            r.connect_timeout = d;
        }
    }
    if let Some(f) = field!(rw_store_options, opts, size, local_fraction: f64) {
        if f != 0.0 {
            if !(f > 0.0 && f <= 1.0) {
                return Err(Error::new(
                    rw_status::RW_INVALID_ARGUMENT,
                    format_args!("options->local_fraction is {f}: use a value in (0, 1], or 0"),
                ));
            }
            r.local_fraction = f;
        }
    }
    if let Some(flags) = field!(rw_store_options, opts, size, flags: u32) {
        if flags & !RW_STORE_LAZY != 0 {
            return Err(Error::new(
                rw_status::RW_UNSUPPORTED,
                format_args!(
                    "options->flags is {flags:#x}: the only flag is RW_STORE_LAZY ({RW_STORE_LAZY})"
                ),
            ));
        }
        out.lazy = flags & RW_STORE_LAZY != 0;
    }
    if let Some(n) = field!(rw_store_options, opts, size, io_threads: u32) {
        match n {
            0 => {}
            1..=64 => r.io_threads = n as usize,
            _ => {
                return Err(Error::new(
                    rw_status::RW_INVALID_ARGUMENT,
                    format_args!("options->io_threads is {n}: use 1 to 64, or 0 for the default"),
                ))
            }
        }
    }
    let callback = field!(rw_store_options, opts, size, on_event: rw_event_fn).flatten();
    let user_data = field!(rw_store_options, opts, size, user_data: *mut c_void);
    if let Some(callback) = callback {
        let sink = Arc::new(EventSink {
            callback,
            user_data: user_data.unwrap_or(ptr::null_mut()),
            open: RwLock::new(true),
        });
        let deliver = Arc::clone(&sink);
        r.on_event = Some(Arc::new(move |e: &Event<'_>| deliver.deliver(e)));
        out.events = Some(sink);
    }
    Ok(out)
}

/// The C callback and its user data, closed for good when the configuration's last handle is
/// freed.
struct EventSink {
    callback: unsafe extern "C" fn(*const rw_event, *mut c_void),
    user_data: *mut c_void,
    /// `false` once closed. Calls hold the read lock, so closing waits for the ones in flight.
    open: RwLock<bool>,
}

// SAFETY: `user_data` is the caller's pointer, handed back untouched; the documented contract
// (`rw_event_fn`) is that the callback may run on any thread, several at once.
unsafe impl Send for EventSink {}
// SAFETY: as above.
unsafe impl Sync for EventSink {}

/// A C string for an event (interior NULs escaped, as for `rw_last_error`).
fn event_text(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

impl EventSink {
    fn deliver(&self, e: &Event<'_>) {
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        if !*open {
            return;
        }
        let kind = match e.kind {
            EventKind::Error => RW_EVENT_ERROR,
            EventKind::Down => RW_EVENT_DOWN,
            EventKind::Up => RW_EVENT_UP,
            // A kind this binding does not know yet: nothing C could act on.
            _ => return,
        };
        let policy = e.policy.map(event_text);
        let message = e.error.map(|err| event_text(&err.to_string()));
        let event = rw_event {
            kind,
            source: e.fail_mode.map_or(0, fail_mode_source),
            policy: policy.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            message: message.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
        };
        // SAFETY: the caller registered this function for exactly these arguments; the pointers
        // in `event` outlive the call.
        unsafe { (self.callback)(&event, self.user_data) };
    }

    fn close(&self) {
        *self.open.write().unwrap_or_else(PoisonError::into_inner) = false;
    }
}

/// Every policy of a configuration on its store, shared by the `rw_config` and every policy
/// handle taken from it.
pub(crate) struct Loaded {
    pub(crate) limiters: Limiters,
    events: Option<Arc<EventSink>>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // Runs when the last handle is freed: from now on the C callback is never called (a
        // request still in flight on the I/O thread may report after this), so the caller may
        // release `user_data`.
        if let Some(events) = &self.events {
            events.close();
        }
    }
}

#[cold]
pub(crate) fn config_error(e: ratewall::config::ConfigError) -> Error {
    let status = match e {
        ratewall::config::ConfigError::Io { .. } => rw_status::RW_IO,
        _ => rw_status::RW_CONFIG,
    };
    Error::new(status, e)
}

/// The status of a store error.
#[cold]
pub(crate) fn store_error(e: ratewall_redis::Error) -> Error {
    use ratewall_redis::Error as E;
    let status = match &e {
        E::Config(c) => return config_error(c.clone()),
        E::Url(_) => rw_status::RW_STORAGE_URL,
        E::Option(_) => rw_status::RW_INVALID_ARGUMENT,
        E::Policy(_) | E::Core(_) => rw_status::RW_CONFIG,
        E::Connect(_) | E::Timeout | E::Unavailable | E::Io(_) => rw_status::RW_STORAGE_UNAVAILABLE,
        _ => rw_status::RW_STORAGE_ERROR,
    };
    Error::new(status, e)
}

/// Builds every policy of `config` on the store its `storage` names.
pub(crate) fn load(config: &Config, options: StoreOptions) -> Result<Arc<Loaded>> {
    let limiters =
        Limiters::from_config_with(config, options.redis, options.lazy).map_err(store_error)?;
    Ok(Arc::new(Loaded {
        limiters,
        events: options.events,
    }))
}

/// The size of `rw_health.last_error`, its terminating NUL included.
pub const RW_HEALTH_ERROR_LEN: usize = 256;

/// The health of the store behind a configuration or policy: connection state and counters since
/// it was built, for metrics and health checks. Filled by `rw_config_health` and
/// `rw_policy_health`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rw_health {
    /// Whether the policies run on Redis. When `false` (in-process storage) every counter is 0
    /// and `up` is `true`.
    pub redis: bool,
    /// Whether the store is connected now (Redis decides); `false` while fail modes decide and
    /// the store reconnects in the background.
    pub up: bool,
    /// Requests decided by Redis.
    pub redis_decisions: u64,
    /// Requests Redis could not decide (each was then decided by its fail mode).
    pub errors: u64,
    /// Of `errors`, those that hit the command timeout.
    pub timeouts: u64,
    /// Requests admitted by `fail-open`.
    pub fail_open: u64,
    /// Requests denied by `fail-closed`.
    pub fail_closed: u64,
    /// Requests decided by the `local` in-process fallback.
    pub local: u64,
    /// Times the connection was lost.
    pub disconnects: u64,
    /// Times the connection was re-established after a loss (or after a lazy start).
    pub reconnects: u64,
    /// The most recent failure in words (NUL-terminated, truncated to fit; never contains a
    /// password), or an empty string.
    pub last_error: [c_char; RW_HEALTH_ERROR_LEN],
}

/// Fills `*out` from `health` (`None`: in-process storage), field by field.
///
/// # Safety
/// `out` is non-NULL, aligned and valid for writes of an `rw_health`.
pub(crate) unsafe fn write_health(out: *mut rw_health, health: Option<Health>) {
    let h = health.as_ref();
    let n = |f: fn(&Health) -> u64| h.map_or(0, f);
    addr_of_mut!((*out).redis).write(h.is_some());
    addr_of_mut!((*out).up).write(h.is_none_or(|h| h.state == ConnectionState::Up));
    addr_of_mut!((*out).redis_decisions).write(n(|h| h.redis_decisions));
    addr_of_mut!((*out).errors).write(n(|h| h.errors));
    addr_of_mut!((*out).timeouts).write(n(|h| h.timeouts));
    addr_of_mut!((*out).fail_open).write(n(|h| h.fail_open));
    addr_of_mut!((*out).fail_closed).write(n(|h| h.fail_closed));
    addr_of_mut!((*out).local).write(n(|h| h.local));
    addr_of_mut!((*out).disconnects).write(n(|h| h.disconnects));
    addr_of_mut!((*out).reconnects).write(n(|h| h.reconnects));
    let text = h
        .and_then(|h| h.last_error.as_ref())
        .map(|e| e.to_string().replace('\0', " "))
        .unwrap_or_default();
    // Cut at a character boundary so that the C string stays valid UTF-8.
    let mut len = text.len().min(RW_HEALTH_ERROR_LEN - 1);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    let dst = addr_of_mut!((*out).last_error).cast::<u8>();
    ptr::copy_nonoverlapping(text.as_ptr(), dst, len);
    dst.add(len).write(0);
}

/// Writes `health` into the caller's `out` after checking the pointer.
///
/// # Safety
/// `out` is NULL or valid for writes of an `rw_health`.
pub(crate) unsafe fn fill_health(out: *mut rw_health, health: Option<Health>) -> Result<()> {
    check_ptr(out, "out")?;
    write_health(out, health);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn options_have_no_padding() {
        // Every byte belongs to a field, so "unknown bytes are zero" is a sound test.
        assert_eq!(size_of::<rw_store_options>(), 4 * 8 + 2 * 4 + 2 * 8);
    }

    #[test]
    fn every_source_has_its_name() {
        let names = [
            (RW_SOURCE_MEMORY, "memory", Source::Memory),
            (RW_SOURCE_REDIS, "redis", Source::Redis),
            (RW_SOURCE_FAIL_OPEN, "fail-open", Source::FailOpen),
            (RW_SOURCE_FAIL_CLOSED, "fail-closed", Source::FailClosed),
            (RW_SOURCE_LOCAL, "local", Source::Local),
        ];
        for (code, name, source) in names {
            assert_eq!(source_code(source), code);
            let got = unsafe { CStr::from_ptr(rw_source_str(code)) };
            assert_eq!(got.to_str().unwrap(), name);
        }
        let got = unsafe { CStr::from_ptr(rw_source_str(77)) };
        assert_eq!(got.to_str().unwrap(), "unknown");
    }

    #[test]
    fn store_errors_have_their_status() {
        use ratewall_redis::Error as E;
        let cases = [
            (E::Url("x".into()), rw_status::RW_STORAGE_URL),
            (E::Option("x".into()), rw_status::RW_INVALID_ARGUMENT),
            (E::Policy("x".into()), rw_status::RW_CONFIG),
            (E::Connect("x".into()), rw_status::RW_STORAGE_UNAVAILABLE),
            (E::Timeout, rw_status::RW_STORAGE_UNAVAILABLE),
            (E::Unavailable, rw_status::RW_STORAGE_UNAVAILABLE),
            (E::Io("x".into()), rw_status::RW_STORAGE_UNAVAILABLE),
            (E::Server("NOAUTH".into()), rw_status::RW_STORAGE_ERROR),
            (E::Protocol("x".into()), rw_status::RW_STORAGE_ERROR),
            (
                E::Config(ratewall::config::ConfigError::Io {
                    path: "p".into(),
                    message: "m".into(),
                }),
                rw_status::RW_IO,
            ),
            (
                E::Config(ratewall::config::ConfigError::File("f".into())),
                rw_status::RW_CONFIG,
            ),
        ];
        for (error, status) in cases {
            let text = error.to_string();
            let mapped = store_error(error);
            assert_eq!(mapped.status, status, "{text}");
            assert_eq!(mapped.message, text);
        }
    }

    unsafe extern "C" fn count(event: *const rw_event, user_data: *mut c_void) {
        let event = &*event;
        assert_eq!(event.kind, RW_EVENT_ERROR);
        assert_eq!(event.source, RW_SOURCE_LOCAL);
        assert_eq!(CStr::from_ptr(event.policy).to_str(), Ok("login"));
        assert_eq!(
            CStr::from_ptr(event.message).to_str(),
            Ok("Redis did not answer within the command timeout")
        );
        (*user_data.cast::<std::sync::atomic::AtomicUsize>())
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn events_reach_the_callback_until_it_is_closed() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let sink = EventSink {
            callback: count,
            user_data: (&calls as *const std::sync::atomic::AtomicUsize)
                .cast_mut()
                .cast(),
            open: RwLock::new(true),
        };
        let error = ratewall_redis::Error::Timeout;
        let event = Event {
            kind: EventKind::Error,
            error: Some(&error),
            policy: Some("login"),
            fail_mode: Some(FailMode::Local),
        };
        sink.deliver(&event);
        sink.deliver(&event);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
        sink.close();
        sink.deliver(&event);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn health_truncates_the_message_at_a_character_boundary() {
        let health = Health {
            state: ConnectionState::Down,
            redis_decisions: 1,
            errors: 2,
            timeouts: 3,
            fail_open: 4,
            fail_closed: 5,
            local: 6,
            disconnects: 7,
            reconnects: 8,
            last_error: Some(ratewall_redis::Error::Server("é".repeat(400))),
        };
        let mut out = std::mem::MaybeUninit::<rw_health>::uninit();
        unsafe { write_health(out.as_mut_ptr(), Some(health)) };
        let out = unsafe { out.assume_init() };
        assert!(out.redis && !out.up);
        assert_eq!((out.errors, out.reconnects), (2, 8));
        let text = unsafe { CStr::from_ptr(out.last_error.as_ptr()) };
        let text = text.to_str().expect("valid UTF-8");
        assert!(text.len() < RW_HEALTH_ERROR_LEN && text.len() >= RW_HEALTH_ERROR_LEN - 2);
        assert!(text.starts_with("Redis error: é"));
    }
}
