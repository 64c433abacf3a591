//! # ratewall-node: the native half of the npm package `ratewall`
//!
//! A Node-API addon (napi-rs v3) over the `ratewall` crate. Everything that is not Express or
//! `fetch` glue lives here, in Rust, once: rate-string and config parsing, policies and their
//! keyed state, header values, the 429 body, IP keys and trust-proxy checks. The JavaScript
//! half (`index.js`, `express.js`, `fetch.js`) validates argument types, reads the clock and
//! builds the objects users see.
//!
//! ## Hot path
//!
//! Node-API marshalling is the cost that matters: a napi-rs `String` argument costs about
//! 180 ns and returning a `#[napi(object)]` about 1 µs, while a raw Node-API call with a string
//! argument costs about 40 ns and ratewall's decision about 10 ns. So `check`, `peek` and
//! `refund` are raw `napi::sys` callbacks ([`fast`]): the key is copied into a stack buffer, the
//! decision is written into a `Float64Array` shared with JavaScript, and nothing is returned
//! (`undefined`). JavaScript reads the numbers it needs and builds the decision object itself.
//! In the common case JavaScript passes only the key and the callback reads the clock itself,
//! and where the addon was compiled against the running Node's headers that call skips
//! Node-API's wrapper too ([`direct`]: a V8 callback, 8-10 ns less per call).
//! The rest of the API uses ordinary napi-rs marshalling.
//!
//! ## Time
//!
//! Every call takes `now` in milliseconds on the `performance.now()` scale, or reads the clock
//! here when JavaScript passes none (see [`clock`]): the default clock is the same scale as
//! `performance.now()`, read without the cost of calling it. Milliseconds become the core's
//! nanoseconds by multiplying by 10^6 (saturating; fractional milliseconds are kept to the
//! nanosecond).
//!
//! ## Errors
//!
//! Functions here never panic on any input. Bad values come back as errors whose status is
//! `InvalidArg` (the JavaScript glue rethrows them as `TypeError`) or `GenericFailure` (rethrown
//! as `RangeError`), with the core's message, which says what to change. The fast callbacks
//! throw `TypeError`/`RangeError` themselves.
#![deny(missing_docs)]

pub mod clock;
pub mod direct;
pub mod fast;
mod headers;
mod keys;
mod limiter;
pub mod redis;

pub use headers::{
    default_identifier, denied_body, partition_key, retry_after_seconds, HeaderLimit, NativeHeaders,
};
pub use keys::{ip_key, normalize_ip, trust_proxy_client_ip, trust_proxy_warning, TrustWarning};
pub use limiter::{ConfigPolicy, LimiterSpec, NativeConfig, NativeLimiter};

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// A bad argument: rethrown as `TypeError` by the JavaScript glue.
pub(crate) fn type_error(message: impl Into<String>) -> Error {
    Error::new(Status::InvalidArg, message.into())
}

/// A value out of range or a rejected configuration: rethrown as `RangeError` by the glue.
pub(crate) fn range_error(message: impl ToString) -> Error {
    Error::new(Status::GenericFailure, message.to_string())
}

/// Registers the raw (non napi-rs) exports: `bindFast`.
#[napi(module_exports)]
pub fn module_exports(mut exports: Object, env: Env) -> Result<()> {
    let bind = fast::create_bind_function(&env)?;
    exports.set_named_property("bindFast", bind)?;
    Ok(())
}
