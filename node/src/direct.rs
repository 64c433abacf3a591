//! Direct V8 callbacks for `check(key)`, `peek(key)` and `refund(key)` (cost 1, the limiter's
//! clock): the common call without Node-API's wrapper.
//!
//! # Why
//!
//! A Node-API callback is called through Node's wrapper: `FunctionCallbackWrapper::Invoke`,
//! then `napi_get_cb_info` (with `External::Value` for the function's data) and the wrapper
//! around `napi_get_value_string_utf16`. On the machine ratewall is measured on, a native
//! function that reads a string key costs 8-10 ns less called as a plain V8 `FunctionCallback`
//! (35 against 43 ns), out of the 60 ns of a whole `check(key)`: the difference between
//! 1.8 and about 2.1 times the speed of express-rate-limit's store. Node-API offers no faster
//! call (V8's "fast API calls" are not exposed to addons in Node 20).
//!
//! # How it stays safe
//!
//! V8's C++ API has no stable ABI, so `direct.cc` is compiled against the headers of the Node
//! that builds the addon (`build.rs`; left out, with a warning, when they are missing) and
//! used only when the running Node is that same version and runs that same V8
//! ([`available`]). Its V8 symbols are weak, so the addon loads in any host. Otherwise, or with
//! `RATEWALL_NODE_API_ONLY=1` in the environment, every call takes the Node-API path: same
//! results, a few nanoseconds slower.
//!
//! A direct function does only what it can finish: a key that is a string of fewer than 255
//! UTF-16 code units, read into a stack buffer like the Node-API path's, then the same
//! [`apply`](crate::fast::apply) as the Node-API function bound to the same limiter and
//! `Float64Array`. It never throws: for anything else (another argument type, a long key, a
//! refused check, a call from inside a call) it changes nothing and returns `false`, and the
//! JavaScript glue calls the Node-API function, which handles or reports it. Keys are the same
//! UTF-16 code units either way, so both reach the same state.
//!
//! Each direct function keeps the Node-API function it doubles alive (an internal field of its
//! data), and that function owns the binding both use: no lifetime of its own to manage.

use std::sync::atomic::{AtomicU8, Ordering};

use napi::sys;
use napi_derive::napi;

use crate::fast::Bound;

#[cfg(ratewall_direct)]
mod ffi {
    use std::ffi::{c_char, c_void};

    use napi::sys;

    extern "C" {
        /// The Node version `direct.cc` was compiled against (`"v20.20.2"`).
        pub fn ratewall_direct_node_version() -> *const c_char;
        /// Whether the host exports V8's API and runs the V8 compiled against.
        pub fn ratewall_direct_ready() -> bool;
        /// The direct twin of Node-API function `owner`, bound to `bound`; NULL on failure.
        pub fn ratewall_direct_function(
            owner: sys::napi_value,
            bound: *const c_void,
        ) -> sys::napi_value;
    }
}

/// 0: not yet known; 1: available; 2: not available.
static AVAILABLE: AtomicU8 = AtomicU8::new(0);

/// Whether direct callbacks are compiled in, allowed (`RATEWALL_NODE_API_ONLY` is not set to
/// anything but `0` or empty) and safe in this process (the running Node and V8 are the ones
/// compiled against). Decided once per process.
pub(crate) fn available(env: sys::napi_env) -> bool {
    match AVAILABLE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let yes = allowed() && compiled_for_this_node(env);
            AVAILABLE.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
    }
}

fn allowed() -> bool {
    std::env::var_os("RATEWALL_NODE_API_ONLY").is_none_or(|v| v.is_empty() || v == "0")
}

#[cfg(ratewall_direct)]
fn compiled_for_this_node(env: sys::napi_env) -> bool {
    let mut version: *const sys::napi_node_version = std::ptr::null();
    // SAFETY: `env` is the calling thread's; Node owns the returned struct for the process.
    if unsafe { sys::napi_get_node_version(env, &mut version) } != sys::Status::napi_ok
        || version.is_null()
    {
        return false;
    }
    // SAFETY: non-null, as checked; the compiled version is a static C string.
    let (running, compiled) = unsafe {
        let v = &*version;
        (
            format!("v{}.{}.{}", v.major, v.minor, v.patch),
            std::ffi::CStr::from_ptr(ffi::ratewall_direct_node_version()),
        )
    };
    // SAFETY: only looks symbols up.
    compiled.to_bytes() == running.as_bytes() && unsafe { ffi::ratewall_direct_ready() }
}

#[cfg(not(ratewall_direct))]
fn compiled_for_this_node(_env: sys::napi_env) -> bool {
    false
}

/// The direct twin of Node-API function `owner`, which owns `bound`; `None` when direct
/// callbacks are not [`available`] or V8 could not create it.
///
/// # Safety
/// Called on a JavaScript thread inside a Node-API callback, `owner` being a live function
/// whose finalizer frees `bound`.
pub(crate) unsafe fn twin(
    env: sys::napi_env,
    owner: sys::napi_value,
    bound: *const Bound,
) -> Option<sys::napi_value> {
    if !available(env) {
        return None;
    }
    #[cfg(ratewall_direct)]
    {
        let f = ffi::ratewall_direct_function(owner, bound.cast());
        (!f.is_null()).then_some(f)
    }
    #[cfg(not(ratewall_direct))]
    {
        let _ = (owner, bound);
        None
    }
}

/// Called by `direct.cc` with a key of `len` UTF-16 code units: `bound`'s operation on it,
/// with cost 1 at the limiter's clock. Returns whether it was done (see the
/// [module docs](self)).
///
/// # Safety
/// `bound` is a live `Bound` of this thread; `units` points to `len` code units.
#[cfg(ratewall_direct)]
#[no_mangle]
pub unsafe extern "C" fn ratewall_direct_key_op(
    bound: *const std::ffi::c_void,
    units: *const u16,
    len: usize,
) -> bool {
    let bound = &*bound.cast::<Bound>();
    let key = std::slice::from_raw_parts(units.cast::<u8>(), len * 2);
    crate::fast::apply(bound, key, crate::fast::clock_now(bound), 1).is_ok()
}

/// Whether `check(key)`, `peek(key)` and `refund(key)` take the direct V8 callbacks in this
/// process (see the module docs of `direct.rs`); for tests and benchmarks.
#[napi(js_name = "directCalls")]
pub fn direct_calls(env: napi::Env) -> bool {
    available(env.raw())
}
