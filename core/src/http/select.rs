//! Choosing header sets: [`HeaderSet`], [`HeaderSets`] and their parse errors.

use core::fmt;
use core::str::FromStr;
use std::string::{String, ToString};

use super::sf::{check_sf_string, InvalidSfString};

/// One family of rate-limit response headers.
///
/// Each variant is a complete, self-consistent header vocabulary; [`HeaderSets`] combines them
/// (at most one standard family plus, optionally, the legacy one). The string names accepted by
/// [`FromStr`] and printed by [`Display`](fmt::Display) are `legacy`, `draft-6`, `draft-7`,
/// `draft-8` and `ietf`, the same in the config file, the environment and every binding.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderSet {
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `Date`, `X-RateLimit-Reset` (epoch seconds),
    /// as express-rate-limit `legacyHeaders: true` (its default) writes them. Also what
    /// Flask-Limiter sends (it does not add `Date`; see [`HeaderSets::with_date`]).
    Legacy,
    /// express-rate-limit `standardHeaders: 'draft-6'` (also `true`):
    /// `RateLimit-Policy: 100;w=60`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
    Draft6,
    /// express-rate-limit `standardHeaders: 'draft-7'`: `RateLimit-Policy: 100;w=60` and
    /// `RateLimit: limit=100, remaining=99, reset=60`.
    Draft7,
    /// express-rate-limit `standardHeaders: 'draft-8'`:
    /// `RateLimit: "100-in-1min"; r=99; t=60` and
    /// `RateLimit-Policy: "100-in-1min"; q=100; w=60; pk=:MmMyNmI0NmI2OGZm:`.
    Draft8 {
        /// The policy name (express-rate-limit's `identifier` option). `None` (the default)
        /// names each limit `${limit}-in-${duration}` exactly as express-rate-limit does
        /// (`100-in-1min`, `5-in-2hrs`); `Some(name)` names every list item `name`, so with
        /// several limits prefer `None` (or [`HeaderSet::Ietf`], which uses each limit's own
        /// name). Must be printable ASCII ([`HeaderSets::new`] rejects anything else).
        identifier: Option<String>,
    },
    /// The current IETF form (draft-ietf-httpapi-ratelimit-headers-09 and later), canonical
    /// Structured Fields, one list item per limit, named by [`LimitInfo::name`]:
    /// `RateLimit-Policy: "api";q=100;w=60` and `RateLimit: "api";r=99;t=60`.
    ///
    /// [`LimitInfo::name`]: super::LimitInfo::name
    Ietf,
}

impl HeaderSet {
    /// express-rate-limit's `draft-8` with its default identifier.
    pub const fn draft8() -> Self {
        HeaderSet::Draft8 { identifier: None }
    }

    /// The name this set has in configuration: `legacy`, `draft-6`, `draft-7`, `draft-8`,
    /// `ietf`.
    pub const fn name(&self) -> &'static str {
        match self {
            HeaderSet::Legacy => "legacy",
            HeaderSet::Draft6 => "draft-6",
            HeaderSet::Draft7 => "draft-7",
            HeaderSet::Draft8 { .. } => "draft-8",
            HeaderSet::Ietf => "ietf",
        }
    }

    /// `true` for the `RateLimit*` families (everything but [`HeaderSet::Legacy`]); a selection
    /// holds at most one of them because they share header names with different syntaxes.
    pub const fn is_standard(&self) -> bool {
        !matches!(self, HeaderSet::Legacy)
    }
}

impl fmt::Display for HeaderSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The accepted spellings, for error messages.
const VALID: &str = "legacy, draft-6, draft-7, draft-8, ietf";

impl FromStr for HeaderSet {
    type Err = HeaderSetError;

    /// Parses `legacy`, `draft-6`, `draft-7`, `draft-8` or `ietf` (ASCII case-insensitive,
    /// surrounding whitespace ignored). `draft-8` gets the default identifier.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let set = if t.eq_ignore_ascii_case("legacy") {
            HeaderSet::Legacy
        } else if t.eq_ignore_ascii_case("draft-6") {
            HeaderSet::Draft6
        } else if t.eq_ignore_ascii_case("draft-7") {
            HeaderSet::Draft7
        } else if t.eq_ignore_ascii_case("draft-8") {
            HeaderSet::draft8()
        } else if t.eq_ignore_ascii_case("ietf") {
            HeaderSet::Ietf
        } else {
            return Err(HeaderSetError::Unknown(t.to_string()));
        };
        Ok(set)
    }
}

/// Why a header-set name or selection was rejected.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderSetError {
    /// Not one of `legacy`, `draft-6`, `draft-7`, `draft-8`, `ietf` (or `none` for a list).
    Unknown(String),
    /// The same set was selected twice.
    Duplicate(&'static str),
    /// Two standard sets were selected; they write the same header names (`RateLimit`,
    /// `RateLimit-Policy`) with different syntaxes, so a response can carry only one.
    /// express-rate-limit has the same rule (`standardHeaders` is one value).
    Conflict(&'static str, &'static str),
    /// A draft-8 identifier that is not a valid Structured Field string.
    InvalidIdentifier(InvalidSfString),
}

impl fmt::Display for HeaderSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderSetError::Unknown(s) => write!(
                f,
                "unknown header set {s:?}: expected one of {VALID} (or \"none\"), \
                 several separated by ',' or '+'"
            ),
            HeaderSetError::Duplicate(s) => write!(f, "header set {s:?} is selected twice"),
            HeaderSetError::Conflict(a, b) => write!(
                f,
                "header sets {a:?} and {b:?} both write `RateLimit`/`RateLimit-Policy` with \
                 different syntaxes; choose one of draft-6, draft-7, draft-8, ietf \
                 (optionally with legacy)"
            ),
            HeaderSetError::InvalidIdentifier(e) => write!(f, "draft-8 identifier: {e}"),
        }
    }
}

impl std::error::Error for HeaderSetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeaderSetError::InvalidIdentifier(e) => Some(e),
            _ => None,
        }
    }
}

/// A validated selection of header sets: optionally [`HeaderSet::Legacy`], plus at most one
/// standard set, plus the `Retry-After` and `Date` switches.
///
/// This mirrors express-rate-limit's `legacyHeaders` + `standardHeaders` pair. Rendering order
/// is fixed: legacy headers, then the standard set, then `Retry-After` (the order
/// express-rate-limit sets them in).
///
/// `Retry-After` follows express-rate-limit's rule (source/rate-limit.ts: "if
/// (config.legacyHeaders || config.standardHeaders) setRetryAfterHeader(...)"): it is sent on
/// denied responses whenever at least one set is selected, and not at all with
/// [`HeaderSets::none`]. [`with_retry_after`](Self::with_retry_after) overrides that, e.g. to
/// send only `Retry-After`.
///
/// The [`Default`] is express-rate-limit's default: legacy headers only.
///
/// ```
/// use ratewall::http::{HeaderSet, HeaderSets};
///
/// let sets: HeaderSets = "legacy, draft-7".parse()?;
/// assert_eq!(sets, HeaderSets::new([HeaderSet::Legacy, HeaderSet::Draft7])?);
/// assert!("draft-7+draft-8".parse::<HeaderSets>().is_err()); // one standard set at most
/// # Ok::<(), ratewall::http::HeaderSetError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeaderSets {
    legacy: bool,
    standard: Option<HeaderSet>,
    retry_after: Option<bool>,
    date: bool,
}

impl Default for HeaderSets {
    fn default() -> Self {
        HeaderSets {
            legacy: true,
            standard: None,
            retry_after: None,
            date: true,
        }
    }
}

impl HeaderSets {
    /// No rate-limit headers at all, and no `Retry-After` (express-rate-limit with
    /// `legacyHeaders: false, standardHeaders: false`). Combine with
    /// [`with_retry_after(true)`](Self::with_retry_after) to send only `Retry-After`.
    pub const fn none() -> Self {
        HeaderSets {
            legacy: false,
            standard: None,
            retry_after: None,
            date: true,
        }
    }

    /// Selects `sets`: at most one standard set (draft-6, draft-7, draft-8, ietf), optionally
    /// with legacy, no duplicates, and a draft-8 identifier (if any) that is a valid
    /// Structured Field string.
    pub fn new(sets: impl IntoIterator<Item = HeaderSet>) -> Result<Self, HeaderSetError> {
        sets.into_iter()
            .try_fold(HeaderSets::none(), HeaderSets::with)
    }

    /// Adds one set, with the rules of [`new`](Self::new).
    pub fn with(mut self, set: HeaderSet) -> Result<Self, HeaderSetError> {
        if let HeaderSet::Draft8 {
            identifier: Some(id),
        } = &set
        {
            check_sf_string(id).map_err(HeaderSetError::InvalidIdentifier)?;
        }
        if set.is_standard() {
            if let Some(existing) = &self.standard {
                return Err(if existing.name() == set.name() {
                    HeaderSetError::Duplicate(set.name())
                } else {
                    HeaderSetError::Conflict(existing.name(), set.name())
                });
            }
            self.standard = Some(set);
        } else {
            if self.legacy {
                return Err(HeaderSetError::Duplicate(set.name()));
            }
            self.legacy = true;
        }
        Ok(self)
    }

    /// Forces `Retry-After` on denied responses on (`true`) or off (`false`) regardless of the
    /// sets selected. Without this call it is on exactly when a set is selected.
    #[must_use]
    pub const fn with_retry_after(mut self, on: bool) -> Self {
        self.retry_after = Some(on);
        self
    }

    /// Whether [`HeaderSet::Legacy`] also writes `Date` (default `true`, as express-rate-limit
    /// does, so clients with a skewed clock can interpret `X-RateLimit-Reset`). Turn it off when
    /// the server already writes `Date` and would otherwise send it twice, or to match
    /// Flask-Limiter, which does not write it.
    #[must_use]
    pub const fn with_date(mut self, on: bool) -> Self {
        self.date = on;
        self
    }

    /// The selected sets, legacy first.
    pub fn iter(&self) -> impl Iterator<Item = &HeaderSet> + '_ {
        const LEGACY: &HeaderSet = &HeaderSet::Legacy;
        self.legacy
            .then_some(LEGACY)
            .into_iter()
            .chain(self.standard.as_ref())
    }

    /// `true` when no set is selected.
    pub const fn is_empty(&self) -> bool {
        !self.legacy && self.standard.is_none()
    }

    /// Whether legacy headers are selected.
    pub const fn has_legacy(&self) -> bool {
        self.legacy
    }

    /// The standard set, if one is selected.
    pub const fn standard(&self) -> Option<&HeaderSet> {
        self.standard.as_ref()
    }

    /// Whether denied responses carry `Retry-After` (see the type docs).
    pub const fn sends_retry_after(&self) -> bool {
        match self.retry_after {
            Some(on) => on,
            None => !self.is_empty(),
        }
    }

    /// Whether the legacy set writes `Date` (see [`with_date`](Self::with_date)).
    pub const fn sends_date(&self) -> bool {
        self.legacy && self.date
    }
}

impl From<HeaderSet> for HeaderSets {
    /// One set alone (always valid, except a draft-8 identifier that is not a valid Structured
    /// Field string, which is kept and sanitised at render time; use [`HeaderSets::new`] to
    /// reject it instead).
    fn from(set: HeaderSet) -> Self {
        let mut sets = HeaderSets::none();
        if set.is_standard() {
            sets.standard = Some(set);
        } else {
            sets.legacy = true;
        }
        sets
    }
}

impl FromStr for HeaderSets {
    type Err = HeaderSetError;

    /// Parses a list of set names separated by `,`, `+`, `;` or whitespace, e.g.
    /// `legacy,draft-7` or `legacy + ietf`. `none` or an empty string selects nothing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut sets = HeaderSets::none();
        let mut saw_none = false;
        for part in s
            .split(|c: char| c == ',' || c == '+' || c == ';' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            if part.eq_ignore_ascii_case("none") {
                saw_none = true;
                continue;
            }
            sets = sets.with(part.parse()?)?;
        }
        if saw_none && !sets.is_empty() {
            return Err(HeaderSetError::Unknown(s.trim().to_string()));
        }
        Ok(sets)
    }
}

impl fmt::Display for HeaderSets {
    /// The canonical list form accepted by [`FromStr`]: `none`, `legacy`, `legacy,draft-7`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, set) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(set.name())?;
        }
        Ok(())
    }
}
