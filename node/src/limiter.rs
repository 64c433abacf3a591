//! Limiters (a policy plus its header sets) and configuration files.

use std::cell::{Ref, RefCell, UnsafeCell};
use std::rc::Rc;
use std::str::FromStr;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use ratewall::config::Config;
use ratewall::http::{HeaderSet, HeaderSets};
use ratewall::keyed::Overflow;
use ratewall::policy::{Algorithm, Policy, PolicyOptions, MAX_LIMITS};
use ratewall::rate::{format_rates, parse_rates, Rate};
use ratewall::Decision;

use crate::fast::{ms_to_ns, ns_to_ms};
use crate::headers::{render_policy_decision, render_policy_joined, NativeHeaders};
use crate::{range_error, type_error};

/// What a limiter is: its policy, the header sets it renders by default, its limits' display
/// names, and the last decision of the fast path (for header rendering right after a check).
pub(crate) struct Entry {
    /// The policy, borrowed mutably only by the fast path's one-limit check
    /// ([`Policy::check_one_at_mut`]: no shard lock, no compare-and-swap). The exclusive borrow
    /// is sound because an `Entry` never leaves its JavaScript thread (`Rc`) and the check calls
    /// no JavaScript, so no other borrow can be live; the `RefCell` checks that for a nanosecond.
    pub(crate) policy: RefCell<Policy>,
    pub(crate) sets: HeaderSets,
    /// Per limit: the name in the `ietf` header form; empty means express-rate-limit's default
    /// identifier (`100-in-1min`).
    pub(crate) names: Vec<String>,
    /// Written by the fast path (on the JavaScript thread only), read by `lastHeaders`.
    pub(crate) last: UnsafeCell<Last>,
}

/// The last decision of the fast path: each limit's own decision (the first `len`) and the
/// index of the most restrictive one. Kept field by field (not as a whole `PolicyDecision`,
/// whose copy would cost more than the decision itself).
#[derive(Clone, Copy)]
pub(crate) struct Last {
    pub(crate) len: usize,
    pub(crate) most_restrictive: usize,
    pub(crate) each: [Decision; MAX_LIMITS],
}

const EMPTY: Decision = Decision {
    allowed: true,
    limit: 0,
    remaining: 0,
    retry_after: 0,
    reset_after: 0,
};

impl Last {
    /// The limits decided.
    pub(crate) fn limits(&self) -> &[Decision] {
        &self.each[..self.len.min(MAX_LIMITS)]
    }

    /// The combined decision: the most restrictive limit's, denied if any limit denied.
    pub(crate) fn decision(&self) -> Decision {
        combined(self.limits(), self.most_restrictive)
    }
}

/// The combined decision of `limits` (as `PolicyDecision::decision`).
#[inline]
pub(crate) fn combined(limits: &[Decision], most_restrictive: usize) -> Decision {
    let mut d = limits.get(most_restrictive).copied().unwrap_or(EMPTY);
    if limits.iter().any(|d| !d.allowed) {
        d.allowed = false;
    }
    d
}

/// How to build a limiter. Only `limits` is required.
#[napi(object)]
pub struct LimiterSpec {
    /// The policy's name, shown in the `ietf` headers. Default: none (express-rate-limit's
    /// default identifier, such as `100-in-1min`, names each limit).
    pub name: Option<String>,
    /// A rate string: `"10/second"`, `"100/day; 10/hour"`, `"5 per 15 minutes"`, `"5/60000ms"`.
    pub limits: String,
    /// `token-bucket` (default), `fixed-window`, `fixed-window-aligned`,
    /// `sliding-window-counter`, `sliding-log` (and the aliases `gcra`, `sliding-window`,
    /// `moving-window`).
    pub algorithm: Option<String>,
    /// Token-bucket capacity, when it differs from the limit (single-limit token bucket only).
    pub burst: Option<f64>,
    /// Keys with live state per limit. Default 1 000 000.
    pub max_keys: Option<f64>,
    /// `evict` (default) or `deny-new-keys`: what happens to new keys when the table is full.
    pub overflow: Option<String>,
    /// Header sets: any of `legacy`, `draft-6`, `draft-7`, `draft-8`, `ietf` (at most one
    /// standard set), comma-separated, or `none`. Default `legacy`.
    pub headers: Option<String>,
    /// The draft-8 identifier. Default: express-rate-limit's `${limit}-in-${duration}`.
    pub identifier: Option<String>,
}

fn whole(value: f64, what: &str) -> Result<u64> {
    if value.is_finite() && value >= 1.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_991.0
    {
        Ok(value as u64)
    } else {
        Err(range_error(format!(
            "{what} must be a whole number of at least 1, got {value}"
        )))
    }
}

fn parse_overflow(s: &str) -> Result<Overflow> {
    Overflow::from_str(s).map_err(|e| range_error(e.to_string()))
}

/// Header sets from a config string plus an optional draft-8 identifier.
pub(crate) fn parse_sets(headers: Option<&str>, identifier: Option<&str>) -> Result<HeaderSets> {
    let sets = match headers {
        Some(h) => HeaderSets::from_str(h).map_err(range_error)?,
        None => HeaderSets::default(),
    };
    apply_identifier(sets, identifier)
}

/// Replaces the draft-8 set's identifier, if the selection has a draft-8 set.
pub(crate) fn apply_identifier(sets: HeaderSets, identifier: Option<&str>) -> Result<HeaderSets> {
    let Some(id) = identifier else {
        return Ok(sets);
    };
    if !matches!(sets.standard(), Some(HeaderSet::Draft8 { .. })) {
        return Ok(sets);
    }
    let mut out = HeaderSets::none();
    if sets.has_legacy() {
        out = out.with(HeaderSet::Legacy).map_err(range_error)?;
    }
    out = out
        .with(HeaderSet::Draft8 {
            identifier: Some(id.to_string()),
        })
        .map_err(range_error)?;
    Ok(out.with_date(sets.sends_date()))
}

impl Entry {
    /// The policy, for everything but the fast path's check (see [`Entry::policy`]'s field).
    pub(crate) fn policy(&self) -> Ref<'_, Policy> {
        self.policy.borrow()
    }

    fn new(policy: Policy, sets: HeaderSets, name: Option<&str>) -> Entry {
        let names = match (name, policy.rates().len()) {
            (None, _) => vec![String::new(); policy.rates().len()],
            (Some(_), _) => policy.limit_names().to_vec(),
        };
        Entry {
            policy: RefCell::new(policy),
            sets,
            names,
            last: UnsafeCell::new(Last {
                len: 0,
                most_restrictive: 0,
                each: [EMPTY; MAX_LIMITS],
            }),
        }
    }
}

/// One policy (one or more limits, one algorithm) with per-key state, and the header sets it
/// renders. The hot-path methods are bound by `bindFast`; this class has the rest.
#[napi]
pub struct NativeLimiter {
    entry: Rc<Entry>,
}

impl NativeLimiter {
    /// The shared entry (for the fast functions).
    pub(crate) fn entry(&self) -> Rc<Entry> {
        Rc::clone(&self.entry)
    }
}

/// The policy's internal name when the user gave none (never shown: see [`Entry::names`]).
const ANONYMOUS: &str = "ratewall";

#[napi]
impl NativeLimiter {
    /// Builds a limiter from `spec`; errors say what to change.
    #[napi(constructor)]
    pub fn new(spec: LimiterSpec) -> Result<NativeLimiter> {
        if let Some(name) = &spec.name {
            if name.trim().is_empty() {
                return Err(range_error("name must not be empty"));
            }
        }
        let rates = parse_rates(&spec.limits)
            .map_err(|e| range_error(format!("invalid rate string: {e}")))?;
        let algorithm = match &spec.algorithm {
            Some(a) => Algorithm::from_str(a).map_err(range_error)?,
            None => Algorithm::default(),
        };
        let options = PolicyOptions {
            algorithm,
            burst: spec.burst.map(|b| whole(b, "burst")).transpose()?,
            max_keys: spec
                .max_keys
                .map(|m| whole(m, "maxKeys").map(|m| usize::try_from(m).unwrap_or(usize::MAX)))
                .transpose()?,
            overflow: match &spec.overflow {
                Some(o) => parse_overflow(o)?,
                None => Overflow::default(),
            },
        };
        let name = spec.name.as_deref();
        let policy =
            Policy::new(name.unwrap_or(ANONYMOUS), &rates, options).map_err(range_error)?;
        let sets = parse_sets(spec.headers.as_deref(), spec.identifier.as_deref())?;
        Ok(NativeLimiter {
            entry: Rc::new(Entry::new(policy, sets, name)),
        })
    }

    /// The policy's name (`null` when none was given).
    #[napi(getter)]
    pub fn name(&self) -> Option<String> {
        let e = &self.entry;
        (e.policy().name() != ANONYMOUS || e.names.iter().any(|n| !n.is_empty()))
            .then(|| e.policy().name().to_string())
    }

    /// The limits in canonical form: `"10/second; 1000/day"`.
    #[napi(getter)]
    pub fn limits(&self) -> String {
        format_rates(self.entry.policy().rates())
    }

    /// Each limit's period in milliseconds.
    #[napi(getter)]
    pub fn windows_ms(&self) -> Vec<f64> {
        self.entry
            .policy()
            .rates()
            .iter()
            .map(|r| ns_to_ms(r.period()))
            .collect()
    }

    /// Each limit's permits per period.
    #[napi(getter)]
    pub fn quotas(&self) -> Vec<f64> {
        self.entry
            .policy()
            .rates()
            .iter()
            .map(|r| r.limit() as f64)
            .collect()
    }

    /// The algorithm's canonical name.
    #[napi(getter)]
    pub fn algorithm(&self) -> String {
        self.entry.policy().options().algorithm.name().to_string()
    }

    /// The header sets rendered by default, canonical (`legacy`, `legacy,draft-7`, `none`, …).
    #[napi(getter)]
    pub fn headers(&self) -> String {
        self.entry.sets.to_string()
    }

    /// Drops state that is fully replenished at `nowMs` (it decides exactly like no state);
    /// returns how many keys were dropped.
    #[napi]
    pub fn reclaim(&self, now_ms: f64) -> Result<f64> {
        let now = ms_to_ns(now_ms)
            .ok_or_else(|| range_error("now must be a finite number of milliseconds >= 0"))?;
        Ok(self.entry.policy().reclaim(now) as f64)
    }

    /// Keys with live state, summed over the limits.
    #[napi(getter)]
    pub fn size(&self) -> f64 {
        self.entry.policy().len() as f64
    }

    /// The headers of the last `check`/`peek` of this limiter, as a flat list
    /// `[name, value, name, value, …]`: in `headers` (or the limiter's own sets), with `key`
    /// for draft-8's `pk`, at wall-clock `nowUnixMs`. `identifier` overrides draft-8's name.
    #[napi]
    pub fn last_headers(
        &self,
        key: Option<String>,
        now_unix_ms: f64,
        headers: Option<&NativeHeaders>,
        identifier: Option<String>,
    ) -> Result<Vec<String>> {
        self.with_last(headers, identifier, |entry, last, sets| {
            render_policy_decision(entry, last, sets, key.as_deref(), unix_ms(now_unix_ms))
        })
        .map(Option::unwrap_or_default)
    }

    /// [`lastHeaders`](Self::last_headers) as one string, the list's items joined by line feeds
    /// (`''` before any decision): splitting it at each line feed gives the list. For a Limiter
    /// passed to the Express middleware as `policy`; the middleware's own limiters render through
    /// their bound `headers` function, which skips the cost of a class method call.
    #[napi]
    pub fn last_headers_joined(
        &self,
        key: Option<String>,
        now_unix_ms: f64,
        headers: Option<&NativeHeaders>,
        identifier: Option<String>,
    ) -> Result<String> {
        self.with_last(headers, identifier, |entry, last, sets| {
            render_policy_joined(
                entry,
                last,
                sets,
                key.as_deref(),
                unix_ms(now_unix_ms),
                true,
            )
        })
        .map(Option::unwrap_or_default)
    }

    /// Runs `render` on the last decision and the header sets to use (`headers`, else the
    /// limiter's own, with `identifier` applied); `None` before any decision.
    fn with_last<R>(
        &self,
        headers: Option<&NativeHeaders>,
        identifier: Option<String>,
        render: impl FnOnce(&Entry, &Last, &HeaderSets) -> R,
    ) -> Result<Option<R>> {
        let sets = headers.map_or(&self.entry.sets, |h| &h.sets);
        with_last(&self.entry, sets, identifier.as_deref(), render)
    }
}

/// One policy of a configuration: its name and the settings a binding needs besides limits.
#[napi(object)]
pub struct ConfigPolicy {
    /// The policy's name.
    pub name: String,
    /// Its limits, canonical.
    pub limits: String,
    /// Its algorithm, canonical.
    pub algorithm: String,
    /// Its header sets, canonical.
    pub headers: String,
    /// `fail-open`, `fail-closed` or `local`: what a storage outage means.
    pub fail_mode: String,
}

/// A parsed configuration (TOML file plus `RATEWALL_*` variables): the one format every
/// binding reads.
#[napi]
pub struct NativeConfig {
    config: Config,
}

#[napi]
impl NativeConfig {
    /// Parses TOML text.
    #[napi(factory)]
    pub fn from_toml(text: String) -> Result<NativeConfig> {
        Ok(NativeConfig {
            config: Config::from_toml_str(&text).map_err(range_error)?,
        })
    }

    /// Reads a TOML file.
    #[napi(factory)]
    pub fn from_file(path: String) -> Result<NativeConfig> {
        Ok(NativeConfig {
            config: Config::from_file(&path).map_err(range_error)?,
        })
    }

    /// An empty configuration (to be filled from the environment).
    #[napi(factory)]
    pub fn empty() -> NativeConfig {
        NativeConfig {
            config: Config::default(),
        }
    }

    /// Applies `RATEWALL_*` variables from `[name, value]` pairs (others are ignored).
    #[napi]
    pub fn apply_env(&mut self, vars: Vec<Vec<String>>) -> Result<()> {
        let pairs = vars
            .into_iter()
            .map(|pair| match <[String; 2]>::try_from(pair) {
                Ok([k, v]) => Ok((k, v)),
                Err(_) => Err(type_error(
                    "environment entries must be [name, value] pairs",
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        self.config.apply_env(pairs).map_err(range_error)
    }

    /// Every policy, in name order.
    #[napi]
    pub fn policies(&self) -> Vec<ConfigPolicy> {
        self.config
            .policies
            .iter()
            .map(|p| {
                let options = self.config.options(p);
                ConfigPolicy {
                    name: p.name.clone(),
                    limits: format_rates(&p.rates),
                    algorithm: options.algorithm.name().to_string(),
                    headers: p
                        .headers
                        .as_ref()
                        .unwrap_or(&self.config.settings.headers)
                        .to_string(),
                    fail_mode: p
                        .fail_mode
                        .unwrap_or(self.config.settings.fail_mode)
                        .name()
                        .to_string(),
                }
            })
            .collect()
    }

    /// The storage URL (`memory://` unless configured).
    #[napi(getter)]
    pub fn storage(&self) -> String {
        self.config.settings.storage.clone()
    }

    /// The namespace of shared-store keys.
    #[napi(getter)]
    pub fn key_prefix(&self) -> String {
        self.config.settings.key_prefix.clone()
    }

    /// The configuration in canonical TOML.
    #[napi]
    pub fn to_toml(&self) -> String {
        self.config.to_toml()
    }

    /// Builds the in-process limiter of policy `name`.
    #[napi]
    pub fn limiter(&self, name: String) -> Result<NativeLimiter> {
        let Some(p) = self.config.policies.iter().find(|p| p.name == name) else {
            let known: Vec<&str> = self
                .config
                .policies
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            return Err(range_error(format!(
                "no policy named {name:?} in the configuration; known policies: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        let rates: &[Rate] = &p.rates;
        let policy = Policy::new(&p.name, rates, self.config.options(p))
            .map_err(|e| range_error(format!("policy {:?}: {e}", p.name)))?;
        let sets = p
            .headers
            .clone()
            .unwrap_or_else(|| self.config.settings.headers.clone());
        Ok(NativeLimiter {
            entry: Rc::new(Entry::new(policy, sets, Some(&p.name))),
        })
    }

    /// The failure mode of policy `name` (its own, else the default).
    #[napi]
    pub fn fail_mode(&self, name: String) -> String {
        self.config
            .policies
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.fail_mode)
            .unwrap_or(self.config.settings.fail_mode)
            .name()
            .to_string()
    }
}

/// Wall-clock milliseconds as given by JavaScript (`Date.now()`); 0 when not a finite time.
pub(crate) fn unix_ms(ms: f64) -> u64 {
    if ms.is_finite() && ms >= 0.0 {
        ms as u64
    } else {
        0
    }
}

/// Runs `render` on `entry`'s last decision and `sets` with `identifier` applied (draft-8's
/// name); `None` before any decision.
pub(crate) fn with_last<R>(
    entry: &Entry,
    sets: &HeaderSets,
    identifier: Option<&str>,
    render: impl FnOnce(&Entry, &Last, &HeaderSets) -> R,
) -> Result<Option<R>> {
    // SAFETY: only the JavaScript thread touches `last`, and not re-entrantly.
    let last = unsafe { *entry.last.get() };
    if last.len == 0 {
        return Ok(None);
    }
    let owned;
    let sets = match identifier {
        Some(id) => {
            owned = apply_identifier(sets.clone(), Some(id))?;
            &owned
        }
        None => sets,
    };
    Ok(Some(render(entry, &last, sets)))
}
