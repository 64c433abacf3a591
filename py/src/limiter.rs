//! `Limiter`: one policy (one or more limits under one algorithm) with keyed state.

use std::str::FromStr;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyList, PyString, PyTuple};

use ratewall::http::HeaderSets;
use ratewall::keyed::Overflow;
use ratewall::policy::{Algorithm, Policy, PolicyOptions};
use ratewall::rate::{format_rates, parse_rates as core_parse_rates, Rate};
use ratewall::CheckError;

use crate::clock::{coarse_monotonic_ns, monotonic_ns, ns_to_seconds, seconds_to_ns};
use crate::decision::{Decision, Kept};
use crate::{check_error, type_error};

/// What a limiter is made of; shared with every decision it returns (for headers).
pub(crate) struct Core {
    pub(crate) policy: Policy,
    pub(crate) headers: HeaderSets,
    pub(crate) clock: ClockSource,
}

/// Where a limiter's `now` comes from when a call passes none (`clock=`).
pub(crate) enum ClockSource {
    /// `"precise"` (the default): [`monotonic_ns`], read in Rust.
    Precise,
    /// `"coarse"`: [`coarse_monotonic_ns`], the same scale as of the kernel's last tick, read
    /// in Rust.
    Coarse,
    /// A Python callable returning seconds, called once per decision.
    Callable(Py<PyAny>),
}

/// A rate limiter: a named policy of one or more limits (`"10/second; 1000/day"`), all enforced
/// together per key, under one algorithm, with bounded per-key state.
///
/// `Limiter(limits, *, algorithm="token-bucket", name="default", burst=None, max_keys=None,
/// overflow="evict", headers="legacy", send_date=True, retry_after=None, clock=None)`
///
/// - `limits`: a rate string (`"5 per 10 minutes"`, `"10/second; 1000/day"`, `"60/min"`) or a
///   list of them.
/// - `algorithm`: `token-bucket` (alias `gcra`), `fixed-window`, `fixed-window-aligned`,
///   `sliding-window-counter` (alias `sliding-window`) or `sliding-log` (alias `moving-window`).
/// - `burst`: token-bucket capacity when it differs from the limit (single-limit token bucket).
/// - `max_keys`: keys with live state per limit (default 1 000 000); `overflow`: `evict` (drop
///   the key nearest to idle) or `deny-new-keys` (for logins and OTPs) when the table is full.
/// - `headers`: the header sets that `Decision.headers()` renders: `legacy`, `draft-6`,
///   `draft-7`, `draft-8`, `ietf`, combinations such as `"legacy, ietf"`, or `none` (then only
///   `Retry-After` on a denial). `send_date`: whether the legacy set also writes `Date`.
///   `retry_after`: force `Retry-After` on denials on or off (default: on).
/// - `clock`: `"precise"` (the default: `ratewall.monotonic()`, the scale of `time.monotonic()`,
///   read in Rust), `"coarse"` (`ratewall.coarse_monotonic()`: the same scale as of the
///   kernel's last tick, up to one tick (1-4 ms) behind for about a quarter of the cost of a
///   read; decisions stay exact for the times read, but against real time a window may close up
///   to a tick early and a wait may be reported up to a tick long, never short: for limits
///   counted in seconds or more on hot paths), or a callable returning the time in seconds
///   (float), called once per decision.
///
/// Methods take `now=` (seconds on the limiter's clock scale) to decide at an explicit instant.
/// Thread-safe: share one limiter between threads; nothing takes a global lock.
#[pyclass(frozen, module = "ratewall", name = "Limiter")]
pub struct Limiter {
    pub(crate) core: Core,
}

fn parse_algorithm(s: &str) -> PyResult<Algorithm> {
    Algorithm::from_str(s).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn parse_overflow(s: &str) -> PyResult<Overflow> {
    Overflow::from_str(s).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Header sets from their configuration name; `none` keeps `Retry-After` on denials (the HTTP
/// contract) unless `retry_after` says otherwise.
pub(crate) fn parse_header_sets(
    s: &str,
    send_date: bool,
    retry_after: Option<bool>,
) -> PyResult<HeaderSets> {
    let sets = HeaderSets::from_str(s).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let sets = match retry_after {
        Some(on) => sets.with_retry_after(on),
        None if sets.is_empty() => sets.with_retry_after(true),
        None => sets,
    };
    Ok(sets.with_date(send_date))
}

/// A rate string, or a list of them joined as one policy.
pub(crate) fn limits_text(limits: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = limits.cast::<PyString>() {
        return Ok(s.to_str()?.to_string());
    }
    if limits.cast::<PyList>().is_ok() || limits.cast::<PyTuple>().is_ok() {
        let mut parts = Vec::new();
        for item in limits.try_iter()? {
            let item = item?;
            let s = item
                .cast::<PyString>()
                .map_err(|_| type_error("every item of limits", "a rate string", &item))?;
            parts.push(s.to_str()?.to_string());
        }
        return Ok(parts.join("; "));
    }
    Err(type_error(
        "limits",
        "a rate string such as \"10/second\" or a list of them",
        limits,
    ))
}

fn optional_positive(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    Ok(Some(positive_int(name, value)?))
}

/// A whole number of at least 1 (not a bool), with `ValueError`/`TypeError` naming `name`.
pub(crate) fn positive_int(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.cast::<PyBool>().is_ok() || value.cast::<PyInt>().is_err() {
        return Err(type_error(name, "an int", value));
    }
    match value.extract::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(PyValueError::new_err(format!(
            "{name} must be a whole number from 1 to {}, got {value}",
            u64::MAX
        ))),
    }
}

/// The policy options from `Limiter(...)`-style arguments (shared with the Redis storage).
pub(crate) fn policy_options(
    algorithm: &str,
    burst: Option<&Bound<'_, PyAny>>,
    max_keys: Option<&Bound<'_, PyAny>>,
    overflow: &str,
) -> PyResult<PolicyOptions> {
    Ok(PolicyOptions {
        algorithm: parse_algorithm(algorithm)?,
        burst: optional_positive("burst", burst)?,
        max_keys: optional_positive("max_keys", max_keys)?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        overflow: parse_overflow(overflow)?,
    })
}

/// The shared body of `check`, `peek` and `refund`: read the arguments, run `op` on the policy
/// and wrap its decision.
fn decide(
    slf: &Bound<'_, Limiter>,
    key: &Bound<'_, PyAny>,
    cost: Option<&Bound<'_, PyAny>>,
    now: Option<&Bound<'_, PyAny>>,
    op: fn(&Policy, &[u8], u64, u64) -> Result<Kept, CheckError>,
) -> PyResult<Decision> {
    let core = &slf.get().core;
    let cost = cost_arg(cost)?;
    let now = core.now_ns(slf.py(), now)?;
    let d = with_key(key, |k| op(&core.policy, k, now, cost).map_err(check_error))?;
    Ok(Decision::new(d, slf))
}

/// `cost=`: default 1.
#[inline]
pub(crate) fn cost_arg(cost: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match cost {
        None => Ok(1),
        Some(c) => {
            if let (Ok(v), false) = (c.extract::<u64>(), c.cast::<PyBool>().is_ok()) {
                if v >= 1 {
                    return Ok(v);
                }
            }
            if c.is_none() {
                return Ok(1);
            }
            positive_int("cost", c)
        }
    }
}

/// A time in seconds from Python (`now=` or a clock's answer).
fn seconds_arg(what: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.cast::<PyBool>().is_ok() {
        return Err(type_error(what, "a number of seconds", value));
    }
    let seconds: f64 = value
        .extract()
        .map_err(|_| type_error(what, "a number of seconds", value))?;
    seconds_to_ns(what, seconds)
}

impl Core {
    /// `now` in nanoseconds: the argument, else the clock.
    #[inline]
    pub(crate) fn now_ns(&self, py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        match now {
            Some(now) if !now.is_none() => seconds_arg("now", now),
            _ => match &self.clock {
                ClockSource::Precise => Ok(monotonic_ns()),
                ClockSource::Coarse => Ok(coarse_monotonic_ns()),
                ClockSource::Callable(clock) => {
                    let t = clock.bind(py).call0()?;
                    seconds_arg("the clock's return value", &t)
                }
            },
        }
    }
}

/// Runs `f` on the key's bytes: `str` (UTF-8) or `bytes`.
#[inline]
pub(crate) fn with_key<R>(
    key: &Bound<'_, PyAny>,
    f: impl FnOnce(&[u8]) -> PyResult<R>,
) -> PyResult<R> {
    if let Ok(s) = key.cast::<PyString>() {
        return f(s.to_str()?.as_bytes());
    }
    if let Ok(b) = key.cast::<PyBytes>() {
        return f(b.as_bytes());
    }
    Err(type_error("key", "str or bytes", key))
}

#[pymethods]
impl Limiter {
    #[new]
    #[pyo3(signature = (
        limits, *, algorithm = "token-bucket", name = "default", burst = None, max_keys = None,
        overflow = "evict", headers = "legacy", send_date = true, retry_after = None, clock = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
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
    ) -> PyResult<Self> {
        let text = limits_text(limits)?;
        let options = policy_options(algorithm, burst, max_keys, overflow)?;
        let policy = Policy::parse(name, &text, options)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let headers = parse_header_sets(headers, send_date, retry_after)?;
        Ok(Limiter {
            core: Core {
                policy,
                headers,
                clock: clock_arg(clock)?,
            },
        })
    }

    /// Decides a request of `cost` permits by `key` (str or bytes) at `now` (default: the
    /// clock) and, if every limit admits it, takes the permits. A denied request takes nothing.
    ///
    /// Raises `ValueError` for a cost below 1 and `InsufficientCapacityError` (a `ValueError`)
    /// for a cost the policy can never admit.
    #[pyo3(signature = (key, cost = None, now = None))]
    fn check(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        decide(slf, key, cost, now, |p, k, now, cost| {
            // One limit (the common case): no PolicyDecision built at all.
            match p.check_one_at(k, now, cost) {
                Some(one) => one.map(Kept::One),
                None => p.check_at(k, now, cost).map(Kept::from),
            }
        })
    }

    /// Decides like `check` without taking anything.
    #[pyo3(signature = (key, cost = None, now = None))]
    fn peek(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        decide(slf, key, cost, now, |p, k, now, cost| {
            p.peek_at(k, now, cost).map(Kept::from)
        })
    }

    /// Gives `cost` permits back to `key` in every limit (never above full): "count only failed
    /// logins", skip-successful-requests. The decision describes the state after the refund.
    #[pyo3(signature = (key, cost = None, now = None))]
    fn refund(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        decide(slf, key, cost, now, |p, k, now, cost| {
            p.refund_at(k, now, cost).map(Kept::from)
        })
    }

    /// Makes `key` full again in every limit.
    fn reset(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        with_key(key, |k| {
            self.core.policy.reset(k);
            Ok(())
        })
    }

    /// The time on this limiter's clock, in seconds.
    fn now(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(ns_to_seconds(self.core.now_ns(py, None)?))
    }

    /// Drops the state of every idle key (fully replenished, so equal to no state: no decision
    /// changes) and returns how many were dropped. Runs without the GIL.
    #[pyo3(signature = (now = None))]
    fn reclaim(&self, py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        let now = self.core.now_ns(py, now)?;
        let policy = &self.core.policy;
        Ok(py.detach(|| policy.reclaim(now)))
    }

    /// Keys with live state, summed over the limits.
    fn __len__(&self) -> usize {
        self.core.policy.len()
    }

    /// The policy's name (the `ietf` header set names limits after it).
    #[getter]
    fn name(&self) -> &str {
        self.core.policy.name()
    }

    /// The limits in canonical form: `"10/second; 1000/day"`.
    #[getter]
    fn limits(&self) -> String {
        format_rates(self.core.policy.rates())
    }

    /// The algorithm's canonical name.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.core.policy.options().algorithm.name()
    }

    /// The header sets rendered by `Decision.headers()`, canonical (`"legacy"`, `"none"`, ...).
    #[getter]
    fn header_sets(&self) -> String {
        self.core.headers.to_string()
    }

    /// Each limit as `(limit, period_seconds)`.
    #[getter]
    fn rates(&self) -> Vec<(u64, f64)> {
        self.core
            .policy
            .rates()
            .iter()
            .map(|r| (r.limit(), ns_to_seconds(r.period())))
            .collect()
    }

    /// The clock callable, `"coarse"` for the coarse clock, or `None` for the default (precise)
    /// monotonic clock.
    #[getter]
    fn clock(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        match &self.core.clock {
            ClockSource::Precise => None,
            ClockSource::Coarse => Some(PyString::new(py, "coarse").into_any().unbind()),
            ClockSource::Callable(c) => Some(c.clone_ref(py)),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Limiter({:?}, algorithm={:?}, name={:?})",
            self.limits(),
            self.algorithm(),
            self.name()
        )
    }
}

/// `clock=`: `None` or `"precise"`, `"coarse"`, or a callable returning seconds.
pub(crate) fn clock_arg(clock: Option<&Bound<'_, PyAny>>) -> PyResult<ClockSource> {
    let Some(c) = clock.filter(|c| !c.is_none()) else {
        return Ok(ClockSource::Precise);
    };
    if let Ok(name) = c.cast::<PyString>() {
        return match name.to_str()? {
            "precise" => Ok(ClockSource::Precise),
            "coarse" => Ok(ClockSource::Coarse),
            _ => Err(PyValueError::new_err(format!(
                "clock must be 'precise' (the default), 'coarse' or a callable returning \
                 seconds, got {}",
                name.repr()?
            ))),
        };
    }
    if !c.is_callable() {
        return Err(type_error(
            "clock",
            "'precise', 'coarse' or a callable returning seconds (such as time.monotonic)",
            c,
        ));
    }
    Ok(ClockSource::Callable(c.clone().unbind()))
}

pub(crate) fn rate_error(e: impl ToString) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Parses a rate string into `(limit, period_seconds)` pairs; `ValueError` says where and why.
#[pyfunction]
pub fn parse_rates(rates: &str) -> PyResult<Vec<(u64, f64)>> {
    let rates: Vec<Rate> = core_parse_rates(rates).map_err(rate_error)?;
    Ok(rates
        .iter()
        .map(|r| (r.limit(), ns_to_seconds(r.period())))
        .collect())
}

/// The canonical form of a rate string (`"60/min"` → `"60/minute"`); `ValueError` if invalid.
#[pyfunction]
pub fn canonical_rates(rates: &str) -> PyResult<String> {
    Ok(format_rates(&core_parse_rates(rates).map_err(rate_error)?))
}
