//! `ratewall._native`: the Python face of the ratewall engine.
//!
//! Everything that is not framework glue lives here or in the core crate: rate-string parsing,
//! policies and their keyed state, the decision, the rate-limit header values, the 429 body, the
//! configuration file, client-IP and key helpers. The pure-Python package next to this module
//! (`ratewall.flask`, `ratewall.asgi`, `ratewall.wsgi`, `ratewall.retry`) only adapts frameworks.
//!
//! # Time
//!
//! Python sees seconds as `float`; inside, everything is `u64` nanoseconds. A limiter's clock is
//! the default monotonic clock (read in Rust; the same scale as `time.monotonic()`), the coarse
//! clock on the same scale (`clock="coarse"`, also read in Rust) or a Python callable returning
//! seconds (`clock=`), and every call also takes `now=` (seconds on the same scale) to decide at
//! an explicit instant.
//!
//! # Threads
//!
//! Every native object is immutable from Python (`frozen`) and `Sync`: the keyed state is
//! lock-free atomics in the core, so the module declares that it does not need the GIL
//! (`gil_used = false`) and runs on free-threaded CPython without a hidden global lock. A check
//! takes tens of nanoseconds, far less than releasing and re-taking the GIL, so checks keep it;
//! whole-table sweeps ([`Limiter::reclaim`]) and file reads release it. Checks through Redis
//! ([`redis`]) wait on the network and always release it; their asyncio variants never block
//! the event loop.

use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

mod clock;
mod config;
mod decision;
mod keys;
mod limiter;
mod redis;

create_exception!(
    ratewall,
    InsufficientCapacityError,
    PyValueError,
    "A request whose cost exceeds what the limiter can ever hold at once: waiting will not help \
     (a `ValueError`)."
);
create_exception!(
    ratewall,
    ConfigError,
    PyValueError,
    "A configuration file, environment variable or option that cannot be used (a `ValueError`); \
     the message says where and what would be valid."
);

/// Maps a core check error to the Python exception that says what to change.
pub(crate) fn check_error(e: ratewall::CheckError) -> PyErr {
    match e {
        ratewall::CheckError::InsufficientCapacity { .. } => {
            InsufficientCapacityError::new_err(e.to_string())
        }
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// A `TypeError` naming the argument, what was expected and what was given.
pub(crate) fn type_error(arg: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let type_name = got
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string());
    PyTypeError::new_err(format!("{arg} must be {expected}, not {type_name}"))
}

/// The native module. Import `ratewall` instead: it re-exports everything with documentation.
#[pymodule(name = "_native", gil_used = false)]
mod native {
    use super::*;

    #[pymodule_export]
    use super::{ConfigError, InsufficientCapacityError};

    #[pymodule_export]
    use crate::limiter::Limiter;

    #[pymodule_export]
    use crate::decision::{Decision, LimitStatus};

    #[pymodule_export]
    use crate::config::Config;

    #[pymodule_export]
    use crate::redis::{AsyncBridge, EventFeed, Limiters, RedisLimiter, RedisStorage};

    #[pymodule_export]
    use crate::keys::{
        client_ip, client_key, composite_key, hash_key, ip_key, mask_ip, parse_ip, TrustProxy,
    };

    #[pymodule_export]
    use crate::clock::{coarse_clock_resolution, coarse_monotonic, monotonic};

    #[pymodule_export]
    use crate::decision::{denied_body, retry_after_header};

    #[pymodule_export]
    use crate::limiter::{canonical_rates, parse_rates};

    /// The status of a denied response: 429 Too Many Requests.
    #[pymodule_export]
    const DENIED_STATUS: u16 = ratewall::http::DENIED_STATUS;

    /// The `Content-Type` of the 429 body.
    #[pymodule_export]
    const DENIED_CONTENT_TYPE: &str = ratewall::http::DENIED_CONTENT_TYPE;

    /// The default IPv6 subnet prefix length client IPs are masked to.
    #[pymodule_export]
    const DEFAULT_IPV6_SUBNET: u8 = ratewall::keys::DEFAULT_IPV6_SUBNET;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::clock::init(m.py())?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
