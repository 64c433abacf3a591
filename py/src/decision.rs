//! `Decision`: the answer, in the shape every ratewall binding returns.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use ratewall::http::{self, HeaderSets};
use ratewall::policy::{Policy, PolicyDecision};
use ratewall::Decision as CoreDecision;
use ratewall_redis::Outcome;

use crate::clock::{ns_to_seconds, seconds_to_ns, unix_ms};
use crate::limiter::Limiter;
use crate::redis::{source_name, RedisLimiter};

/// A decision as a `Decision` object keeps it: a one-limit policy's decision alone (40 bytes),
/// else the whole policy decision, boxed. `PolicyDecision` has room for every limit a policy may
/// have (over 300 bytes): kept inline, every check would allocate and copy all of it.
pub(crate) enum Kept {
    One(CoreDecision),
    Many(Box<PolicyDecision>),
}

impl Kept {
    /// The combined decision (the most restrictive limit's).
    #[inline]
    fn combined(&self) -> CoreDecision {
        match self {
            Kept::One(d) => *d,
            Kept::Many(p) => p.decision(),
        }
    }

    fn most_restrictive(&self) -> usize {
        match self {
            Kept::One(_) => 0,
            Kept::Many(p) => p.most_restrictive(),
        }
    }

    fn limits(&self) -> &[CoreDecision] {
        match self {
            Kept::One(d) => std::slice::from_ref(d),
            Kept::Many(p) => p.limits(),
        }
    }

    /// The policy decision again, for rendering headers.
    fn full(&self) -> PolicyDecision {
        match self {
            Kept::One(d) => {
                PolicyDecision::from_limits(std::slice::from_ref(d)).expect("one decision")
            }
            Kept::Many(p) => **p,
        }
    }
}

impl From<PolicyDecision> for Kept {
    #[inline]
    fn from(d: PolicyDecision) -> Self {
        match d.limits() {
            [one] => Kept::One(*one),
            _ => Kept::Many(Box::new(d)),
        }
    }
}

/// The limiter a decision came from: it renders the decision's headers and names its limits.
enum Owner {
    Local(Py<Limiter>),
    Shared(Py<RedisLimiter>),
}

impl Owner {
    fn policy(&self) -> &Policy {
        match self {
            Owner::Local(l) => &l.get().core.policy,
            Owner::Shared(l) => l.get().backend.policy(),
        }
    }

    fn headers(&self) -> &HeaderSets {
        match self {
            Owner::Local(l) => &l.get().core.headers,
            Owner::Shared(l) => &l.get().headers,
        }
    }
}

/// The answer to "may this client do this now?".
///
/// `allowed`; `limit` (the most permits available at once: the burst of a token bucket, the
/// limit of a window); `remaining` (permits left after this decision); `retry_after` (seconds
/// until the same request could pass, `0.0` when allowed) and `reset_after` (seconds until the
/// limiter is full again / the window resets), as floats. For a policy of several limits these
/// are the most restrictive limit's; `limits` has every limit's own.
///
/// `headers()` renders the rate-limit response headers and `body` the 429 body, exactly as every
/// ratewall binding sends them. A decision is truthy when allowed.
#[pyclass(frozen, module = "ratewall", name = "Decision")]
pub struct Decision {
    d: Kept,
    owner: Owner,
    /// Who decided: `memory`, `redis`, or a fail mode (`fail-open`, `fail-closed`, `local`).
    source: &'static str,
}

impl Decision {
    #[inline]
    pub(crate) fn new(d: Kept, limiter: &Bound<'_, Limiter>) -> Self {
        Decision {
            d,
            owner: Owner::Local(limiter.clone().unbind()),
            source: "memory",
        }
    }

    /// A decision of a shared-store limiter, with who made it.
    pub(crate) fn from_outcome(outcome: Outcome, limiter: &Bound<'_, RedisLimiter>) -> Self {
        Decision {
            d: outcome.decision.into(),
            owner: Owner::Shared(limiter.clone().unbind()),
            source: source_name(outcome.source),
        }
    }
}

/// One limit's part of a decision (see `Decision.limits`).
#[pyclass(frozen, module = "ratewall", name = "LimitStatus")]
pub struct LimitStatus {
    /// The limit's rate in canonical form (`"10/second"`).
    #[pyo3(get)]
    rate: String,
    /// The limit's name in the `ietf` header form (`"api"`, or `"api:10/second"` when the
    /// policy has several limits).
    #[pyo3(get)]
    name: String,
    /// Whether this limit admitted the request.
    #[pyo3(get)]
    allowed: bool,
    /// The most permits this limit holds at once.
    #[pyo3(get)]
    limit: u64,
    /// Permits left in this limit.
    #[pyo3(get)]
    remaining: u64,
    /// Seconds until this limit would admit the request (0.0 when it admitted it).
    #[pyo3(get)]
    retry_after: f64,
    /// Seconds until this limit is full again / its window resets.
    #[pyo3(get)]
    reset_after: f64,
    /// The limit's period in seconds.
    #[pyo3(get)]
    window: f64,
}

#[pymethods]
impl LimitStatus {
    fn __repr__(&self) -> String {
        format!(
            "LimitStatus(rate={:?}, allowed={}, limit={}, remaining={}, retry_after={:?}, \
             reset_after={:?})",
            self.rate,
            py_bool(self.allowed),
            self.limit,
            self.remaining,
            self.retry_after,
            self.reset_after
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

#[pymethods]
impl Decision {
    /// Whether the request was admitted (by every limit of the policy).
    #[getter]
    fn allowed(&self) -> bool {
        self.d.combined().allowed
    }

    /// The most permits available at once (what `X-RateLimit-Limit` shows).
    #[getter]
    fn limit(&self) -> u64 {
        self.d.combined().limit
    }

    /// Permits left right after this decision.
    #[getter]
    fn remaining(&self) -> u64 {
        self.d.combined().remaining
    }

    /// Seconds until the same request could be admitted; 0.0 when allowed.
    #[getter]
    fn retry_after(&self) -> f64 {
        ns_to_seconds(self.d.combined().retry_after)
    }

    /// Seconds until the limiter is back to full (or the window resets).
    #[getter]
    fn reset_after(&self) -> f64 {
        ns_to_seconds(self.d.combined().reset_after)
    }

    /// `retry_after` in nanoseconds (exact).
    #[getter]
    fn retry_after_ns(&self) -> u64 {
        self.d.combined().retry_after
    }

    /// `reset_after` in nanoseconds (exact).
    #[getter]
    fn reset_after_ns(&self) -> u64 {
        self.d.combined().reset_after
    }

    /// The `Retry-After` value of a denial: whole seconds, rounded up, at least 1.
    #[getter]
    fn retry_after_header(&self) -> u64 {
        http::retry_after_seconds(self.d.combined().retry_after)
    }

    /// Index (into the policy's limits) of the most restrictive limit.
    #[getter]
    fn most_restrictive(&self) -> usize {
        self.d.most_restrictive()
    }

    /// The name of the policy that decided.
    #[getter]
    fn policy(&self) -> String {
        self.owner.policy().name().to_string()
    }

    /// Who decided: `"memory"` (in-process state), `"redis"` (the fleet's shared state), or,
    /// when Redis could not answer, the fail mode that did: `"fail-open"`, `"fail-closed"` or
    /// `"local"` (the in-process fallback).
    #[getter]
    fn source(&self) -> &'static str {
        self.source
    }

    /// `True` when a fail mode decided instead of the configured store (Redis was down, slow
    /// or answered with an error).
    #[getter]
    fn fallback(&self) -> bool {
        matches!(self.source, "fail-open" | "fail-closed" | "local")
    }

    /// Every limit's own status, in the policy's order.
    #[getter]
    fn limits(&self) -> Vec<LimitStatus> {
        let policy = self.owner.policy();
        self.d
            .limits()
            .iter()
            .zip(policy.rates().iter().zip(policy.limit_names()))
            .map(|(d, (rate, name))| LimitStatus {
                rate: rate.to_string(),
                name: name.clone(),
                allowed: d.allowed,
                limit: d.limit,
                remaining: d.remaining,
                retry_after: ns_to_seconds(d.retry_after),
                reset_after: ns_to_seconds(d.reset_after),
                window: ns_to_seconds(rate.period()),
            })
            .collect()
    }

    /// The rate-limit response headers for this decision, as `(name, value)` pairs in order,
    /// in the limiter's header sets, with `Retry-After` on a denial.
    ///
    /// `key` is the client key, for the `draft-8` partition key (`pk`); `now_unix` is the wall
    /// clock in seconds since the epoch, for `X-RateLimit-Reset` and `Date` (default: now).
    #[pyo3(signature = (key = None, now_unix = None))]
    fn headers(
        &self,
        key: Option<&str>,
        now_unix: Option<f64>,
    ) -> PyResult<Vec<(&'static str, String)>> {
        let now_ms = match now_unix {
            None => unix_ms(),
            Some(s) => seconds_to_ns("now_unix", s)? / 1_000_000,
        };
        Ok(self
            .owner
            .policy()
            .headers(&self.d.full(), self.owner.headers(), key, now_ms))
    }

    /// The 429 body: `{"error":"rate_limited","retryAfter":N}` with `N` = `retry_after_header`.
    #[getter]
    fn body(&self) -> String {
        http::denied_body(self.d.combined().retry_after)
    }

    fn __bool__(&self) -> bool {
        self.d.combined().allowed
    }

    fn __repr__(&self) -> String {
        let d = self.d.combined();
        let source = match self.owner {
            Owner::Local(_) => String::new(),
            Owner::Shared(_) => format!(", source={:?}", self.source),
        };
        format!(
            "Decision(allowed={}, limit={}, remaining={}, retry_after={:?}, reset_after={:?}{source})",
            py_bool(d.allowed),
            d.limit,
            d.remaining,
            ns_to_seconds(d.retry_after),
            ns_to_seconds(d.reset_after)
        )
    }
}

/// The 429 body for a wait of `retry_after` seconds: `{"error":"rate_limited","retryAfter":N}`.
#[pyfunction]
pub fn denied_body(retry_after: f64) -> PyResult<String> {
    Ok(http::denied_body(seconds_to_ns(
        "retry_after",
        retry_after,
    )?))
}

/// The `Retry-After` value for a wait of `retry_after` seconds: rounded up, at least 1.
#[pyfunction]
pub fn retry_after_header(retry_after: f64) -> PyResult<u64> {
    if retry_after.is_nan() {
        return Err(PyValueError::new_err(
            "retry_after must be a number, got nan",
        ));
    }
    Ok(http::retry_after_seconds(seconds_to_ns(
        "retry_after",
        retry_after,
    )?))
}
