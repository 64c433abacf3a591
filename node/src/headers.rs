//! Header rendering and the 429 body, from the core's HTTP contract.

use std::fmt::Write;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use ratewall::http::{self, HeaderSets, LimitInfo, RateLimitState};

use crate::fast::ms_to_ns;
use crate::limiter::{apply_identifier, parse_sets, Entry, Last};
use crate::range_error;

/// `ns` without its sub-millisecond part.
///
/// Headers show whole seconds rounded up, as express-rate-limit does from millisecond times. The
/// core's packed fixed window ends up to `2^bits(limit)` ns after its period (stricter, never
/// looser), which would turn a fresh 60 s window into `t=61`; working at millisecond resolution,
/// as express-rate-limit does, shows `60`. (The difference is below a millisecond for every
/// limit under 10^6.)
pub(crate) fn whole_ms(ns: u64) -> u64 {
    ns - ns % 1_000_000
}

/// Flattens `(name, value)` pairs into `[name, value, name, value, …]`.
fn flatten(pairs: Vec<(&'static str, String)>) -> Vec<String> {
    let mut out = Vec::with_capacity(pairs.len() * 2);
    for (name, value) in pairs {
        out.push(name.to_string());
        out.push(value);
    }
    out
}

/// The headers of a policy decision, most restrictive limit first (as `Policy::headers` does,
/// with the binding's display names), as a flat `[name, value, …]` list.
pub(crate) fn render_policy_decision(
    entry: &Entry,
    pd: &Last,
    sets: &HeaderSets,
    key: Option<&str>,
    now_unix_ms: u64,
) -> Vec<String> {
    with_policy_state(entry, pd, key, now_unix_ms, |state| {
        flatten(http::headers(state, sets))
    })
    .unwrap_or_default()
}

/// The same flat list joined by `\n` into one string (`name\nvalue\nname\nvalue`), or with
/// `names: false` the values alone (`value\nvalue`): one JavaScript string to create per
/// response instead of two per header, and one `split('\n')` to take it apart (names and
/// values never hold a line break). The names depend only on the header sets and on whether
/// the request was allowed (see `ratewall::http::visit_headers`), so a caller that has seen
/// them once can ask for the values alone.
pub(crate) fn render_policy_joined(
    entry: &Entry,
    pd: &Last,
    sets: &HeaderSets,
    key: Option<&str>,
    now_unix_ms: u64,
    names: bool,
) -> String {
    with_policy_state(entry, pd, key, now_unix_ms, |state| {
        let mut joined = String::with_capacity(256);
        let mut first = true;
        // Writing into a String cannot fail.
        let _ = http::visit_headers(state, sets, |name, value| {
            if !first {
                joined.push('\n');
            }
            first = false;
            if names {
                joined.push_str(name);
                joined.push('\n');
            }
            write!(joined, "{value}")
        });
        joined
    })
    .unwrap_or_default()
}

/// Runs `render` on the decision's `RateLimitState`; `None` when the decision has no limits.
fn with_policy_state<R>(
    entry: &Entry,
    pd: &Last,
    key: Option<&str>,
    now_unix_ms: u64,
    render: impl FnOnce(&RateLimitState<'_>) -> R,
) -> Option<R> {
    let policy = entry.policy();
    let rates = policy.rates();
    let mut infos: Vec<LimitInfo<'_>> = pd
        .limits()
        .iter()
        .zip(rates.iter().zip(entry.names.iter()))
        .map(|(d, (rate, name))| {
            let mut info = LimitInfo::from_decision(name, rate.period(), d);
            info.reset_after = whole_ms(info.reset_after);
            info
        })
        .collect();
    if infos.is_empty() {
        return None;
    }
    let first = pd.most_restrictive.min(infos.len() - 1);
    infos.swap(0, first);
    http::sort_most_restrictive(&mut infos[1..]);
    let d = pd.decision();
    let mut state = RateLimitState::new(d.allowed, whole_ms(d.retry_after), &infos, now_unix_ms);
    if let Some(key) = key {
        state = state.with_key(key);
    }
    Some(render(&state))
}

/// One limit's status, for rendering headers of a decision made elsewhere (a custom store,
/// an express-rate-limit store).
#[napi(object)]
pub struct HeaderLimit {
    /// The name in the `ietf` form; empty or absent for express-rate-limit's default
    /// identifier.
    pub name: Option<String>,
    /// Permits per window (`X-RateLimit-Limit`).
    pub limit: f64,
    /// The window in milliseconds.
    pub window_ms: f64,
    /// Permits left.
    pub remaining: f64,
    /// Milliseconds until the window resets / the limit is full again.
    pub reset_after: f64,
}

/// A validated header-set selection (express-rate-limit's `legacyHeaders` + `standardHeaders`,
/// or a ratewall config value).
#[napi]
pub struct NativeHeaders {
    pub(crate) sets: HeaderSets,
}

fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

#[napi]
impl NativeHeaders {
    /// `sets`: `legacy`, `draft-6`, `draft-7`, `draft-8`, `ietf`, comma-separated (at most one
    /// standard set), or `none`. `identifier`: draft-8's name. `retryAfter`: force
    /// `Retry-After` on denials on or off (default: on when any set is selected).
    #[napi(constructor)]
    pub fn new(
        sets: String,
        identifier: Option<String>,
        retry_after: Option<bool>,
    ) -> Result<NativeHeaders> {
        let mut sets = parse_sets(Some(&sets), identifier.as_deref())?;
        if let Some(on) = retry_after {
            sets = sets.with_retry_after(on);
        }
        Ok(NativeHeaders { sets })
    }

    /// The selection in canonical form.
    #[napi(getter)]
    pub fn sets(&self) -> String {
        self.sets.to_string()
    }

    /// Whether a denied response carries `Retry-After`.
    #[napi(getter)]
    pub fn sends_retry_after(&self) -> bool {
        self.sets.sends_retry_after()
    }

    /// Renders headers for a decision made elsewhere: `limits` most restrictive first. Returns
    /// `[name, value, …]`.
    #[napi]
    pub fn render(
        &self,
        allowed: bool,
        retry_after_ms: f64,
        limits: Vec<HeaderLimit>,
        key: Option<String>,
        now_unix_ms: f64,
        identifier: Option<String>,
    ) -> Result<Vec<String>> {
        let retry_after = whole_ms(ms_to_ns(retry_after_ms).unwrap_or(0));
        let names: Vec<String> = limits
            .iter()
            .map(|l| l.name.clone().unwrap_or_default())
            .collect();
        let infos: Vec<LimitInfo<'_>> = limits
            .iter()
            .zip(names.iter())
            .map(|(l, name)| LimitInfo {
                name,
                limit: count(l.limit),
                window: ms_to_ns(l.window_ms).unwrap_or(0),
                remaining: count(l.remaining),
                reset_after: whole_ms(ms_to_ns(l.reset_after).unwrap_or(0)),
            })
            .collect();
        let owned;
        let sets = match identifier.as_deref() {
            Some(id) => {
                owned = apply_identifier(self.sets.clone(), Some(id))?;
                &owned
            }
            None => &self.sets,
        };
        let now = if now_unix_ms.is_finite() && now_unix_ms >= 0.0 {
            now_unix_ms as u64
        } else {
            0
        };
        let mut state = RateLimitState::new(allowed, retry_after, &infos, now);
        if let Some(key) = key.as_deref() {
            state = state.with_key(key);
        }
        Ok(flatten(http::headers(&state, sets)))
    }
}

/// The 429 body: `{"error":"rate_limited","retryAfter":N}`, `N` = `Retry-After` seconds.
#[napi]
pub fn denied_body(retry_after_ms: f64) -> Result<String> {
    let ns = ms_to_ns(retry_after_ms)
        .ok_or_else(|| range_error("retryAfter must be a finite number of milliseconds >= 0"))?;
    Ok(http::denied_body(whole_ms(ns)))
}

/// `Retry-After` seconds for a wait of `retryAfterMs`: rounded up, at least 1.
#[napi]
pub fn retry_after_seconds(retry_after_ms: f64) -> f64 {
    http::retry_after_seconds(whole_ms(ms_to_ns(retry_after_ms).unwrap_or(0))) as f64
}

/// express-rate-limit's default draft-8 identifier for `limit` per `windowMs`.
#[napi]
pub fn default_identifier(limit: f64, window_ms: f64) -> String {
    http::default_identifier(count(limit), ms_to_ns(window_ms).unwrap_or(0))
}

/// The draft-8 partition key of `key` (`foo` → `MmMyNmI0NmI2OGZm`).
#[napi]
pub fn partition_key(key: String) -> String {
    http::partition_key(&key)
}
