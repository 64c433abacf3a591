//! One configuration format for every language: a TOML file plus `RATEWALL_*` environment
//! variables.
//!
//! The same file read by the C, Python and Node bindings enforces the same limits across a
//! polyglot fleet. Unknown keys and bad values are errors that name the line and column (file)
//! or the variable (environment), and say what would be valid.
//!
//! # File
//!
//! ```toml
//! [defaults]                      # every key optional; the defaults are shown
//! algorithm = "token-bucket"      # fixed-window | fixed-window-aligned | sliding-window-counter | sliding-log
//! max_keys = 1000000              # keys with live state, per limit
//! overflow = "evict"              # or "deny-new-keys" when the key table is full
//! headers = "legacy"              # any of legacy, draft-6, draft-7, draft-8, ietf (at most one standard set), or none
//! storage = "memory://"           # or redis://host:port/db, rediss://, redis+unix:///path
//! fail_mode = "fail-open"         # fail-closed | local: what a Redis outage means
//! key_prefix = "ratewall"         # namespace for Redis keys
//! # tls_ca_file = "/etc/ssl/redis-ca.pem"  # rediss:// servers must chain to these CAs (default: the system's roots)
//! # tls_cert_file = "/etc/ssl/app.pem"     # a client certificate for servers that ask for one
//! # tls_key_file = "/etc/ssl/app.key"      # (Redis's tls-auth-clients): both or neither
//!
//! [policies.login]                # one table per policy; the name is the table's
//! limits = "5/15min"              # a rate string: "10/second; 1000/day", "5 per 10 minutes"
//! algorithm = "sliding-log"       # overrides [defaults]
//! overflow = "deny-new-keys"
//!
//! [policies.api]
//! limits = "10/second; 1000/day"
//! ```
//!
//! A policy may also set `burst` (token bucket with one limit), `max_keys`, `headers` and
//! `fail_mode`.
//!
//! # Environment
//!
//! Applied on top of the file, so operators can change a limit without a deploy:
//!
//! | variable | meaning |
//! |---|---|
//! | `RATEWALL_CONFIG` | path of the TOML file ([`Config::from_env`] reads it) |
//! | `RATEWALL_STORAGE_URL` | `storage` |
//! | `RATEWALL_FAIL_MODE` | `fail_mode` |
//! | `RATEWALL_HEADERS` | `headers` |
//! | `RATEWALL_KEY_PREFIX` | `key_prefix` |
//! | `RATEWALL_TLS_CA_FILE` | `tls_ca_file` (empty: none) |
//! | `RATEWALL_TLS_CERT_FILE`, `RATEWALL_TLS_KEY_FILE` | `tls_cert_file`, `tls_key_file` (empty: none) |
//! | `RATEWALL_KEY_SECRET` | not part of the configuration: the secret of the keyed hash of client keys in Redis key names, read by `ratewall-redis` (accepted here so it is not an unknown variable) |
//! | `RATEWALL_ALGORITHM`, `RATEWALL_MAX_KEYS`, `RATEWALL_OVERFLOW` | the defaults |
//! | `RATEWALL_POLICY_<NAME>_LIMITS` | policy `NAME`'s limits (creates the policy if new) |
//! | `RATEWALL_POLICY_<NAME>_ALGORITHM`, `_BURST`, `_MAX_KEYS`, `_OVERFLOW`, `_FAIL_MODE`, `_HEADERS` | the policy's other keys |
//!
//! `<NAME>` is the policy name in upper case with every character other than `A-Z` and `0-9`
//! written `_` (`login-v2` → `LOGIN_V2`). Any other `RATEWALL_` variable is an error, so a typo
//! cannot silently leave a limit unchanged.

use core::fmt;
use core::str::FromStr;

use std::collections::BTreeMap;
use std::format;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::http::HeaderSets;
use crate::keyed::Overflow;
use crate::policy::{Algorithm, Policy, PolicyError, PolicyOptions};
use crate::rate::{parse_rates, Rate};

/// What a policy does when its shared store (Redis) cannot answer in time.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailMode {
    /// Admit the request (the default: an outage of the limiter is not an outage of the app).
    #[default]
    Open,
    /// Deny the request (for limits that guard money or security: SMS, OTP, logins).
    Closed,
    /// Decide with an in-process limiter of the same policy until the store is back.
    Local,
}

impl FailMode {
    /// The canonical name: `fail-open`, `fail-closed` or `local`.
    pub const fn name(self) -> &'static str {
        match self {
            FailMode::Open => "fail-open",
            FailMode::Closed => "fail-closed",
            FailMode::Local => "local",
        }
    }
}

impl fmt::Display for FailMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FailMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "fail-open" | "open" => Ok(FailMode::Open),
            "fail-closed" | "closed" => Ok(FailMode::Closed),
            "local" => Ok(FailMode::Local),
            _ => Err(format!(
                "unknown fail mode {s:?}: use fail-open, fail-closed or local"
            )),
        }
    }
}

fn parse_overflow(s: &str) -> Result<Overflow, String> {
    s.parse()
        .map_err(|e: crate::keyed::UnknownOverflow| e.to_string())
}

/// Header sets from a config value; `none` still sends `Retry-After` on a 429, as the HTTP
/// contract requires.
fn parse_headers(s: &str) -> Result<HeaderSets, String> {
    let sets = HeaderSets::from_str(s).map_err(|e| e.to_string())?;
    Ok(if sets.is_empty() {
        sets.with_retry_after(true)
    } else {
        sets
    })
}

fn parse_max_keys(s: &str) -> Result<usize, String> {
    match s.trim().replace('_', "").parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid max_keys {s:?}: use a whole number of at least 1"
        )),
    }
}

fn parse_burst(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid burst {s:?}: use a whole number of at least 1"
        )),
    }
}

fn parse_storage(s: &str) -> Result<String, String> {
    let s = s.trim();
    const SCHEMES: [&str; 6] = [
        "memory://",
        "redis://",
        "rediss://",
        "redis+unix://",
        "redis+cluster://",
        "rediss+cluster://",
    ];
    if SCHEMES.iter().any(|scheme| s.starts_with(scheme)) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unsupported storage URL {s:?}: use memory://, redis://host:port/db, rediss://, \
             redis+unix:///path, redis+cluster:// or rediss+cluster://"
        ))
    }
}

/// Deserializes a string field through one of the parsers above, so errors carry the
/// parser's message and TOML's line and column.
macro_rules! parsed {
    ($name:ident, $ty:ty, $parse:expr) => {
        fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
            let s = String::deserialize(d)?;
            ($parse)(s.as_str()).map(Some).map_err(de::Error::custom)
        }
    };
}

parsed!(de_algorithm, Algorithm, |s: &str| Algorithm::from_str(s)
    .map_err(|e| e.to_string()));
parsed!(de_overflow, Overflow, parse_overflow);
parsed!(de_headers, HeaderSets, parse_headers);
parsed!(de_fail_mode, FailMode, FailMode::from_str);
parsed!(de_storage, String, parse_storage);
parsed!(de_rates, Vec<Rate>, |s: &str| parse_rates(s)
    .map_err(|e| e.to_string()));

fn de_positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(de::Error::custom("must be at least 1")),
        n => Ok(Some(n)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default, deserialize_with = "de_algorithm")]
    algorithm: Option<Algorithm>,
    #[serde(default, deserialize_with = "de_positive")]
    max_keys: Option<u64>,
    #[serde(default, deserialize_with = "de_overflow")]
    overflow: Option<Overflow>,
    #[serde(default, deserialize_with = "de_headers")]
    headers: Option<HeaderSets>,
    #[serde(default, deserialize_with = "de_storage")]
    storage: Option<String>,
    #[serde(default, deserialize_with = "de_fail_mode")]
    fail_mode: Option<FailMode>,
    #[serde(default)]
    key_prefix: Option<String>,
    #[serde(default)]
    tls_ca_file: Option<String>,
    #[serde(default)]
    tls_cert_file: Option<String>,
    #[serde(default)]
    tls_key_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(deserialize_with = "de_rates")]
    limits: Option<Vec<Rate>>,
    #[serde(default, deserialize_with = "de_algorithm")]
    algorithm: Option<Algorithm>,
    #[serde(default, deserialize_with = "de_positive")]
    burst: Option<u64>,
    #[serde(default, deserialize_with = "de_positive")]
    max_keys: Option<u64>,
    #[serde(default, deserialize_with = "de_overflow")]
    overflow: Option<Overflow>,
    #[serde(default, deserialize_with = "de_headers")]
    headers: Option<HeaderSets>,
    #[serde(default, deserialize_with = "de_fail_mode")]
    fail_mode: Option<FailMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    policies: BTreeMap<String, RawPolicy>,
}

/// Settings shared by all policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Default algorithm of policies that name none. Default: token bucket.
    pub algorithm: Algorithm,
    /// Default keys per limit. Default: 1 000 000.
    pub max_keys: usize,
    /// Default overflow behaviour. Default: evict the key nearest to idle.
    pub overflow: Overflow,
    /// Default header sets. Default: legacy `X-RateLimit-*` (and `Retry-After` on 429).
    pub headers: HeaderSets,
    /// Storage URL. Default: `memory://` (in-process).
    pub storage: String,
    /// Default behaviour when the storage fails. Default: fail open.
    pub fail_mode: FailMode,
    /// Namespace of shared-store keys. Default: `ratewall`.
    pub key_prefix: String,
    /// PEM file of the certificate authorities a `rediss://` server's certificate must chain
    /// to, instead of the system's root certificates (a private CA, a managed Redis that ships
    /// its own). Read by `ratewall-redis` when it connects. Default: none.
    pub tls_ca_file: Option<String>,
    /// PEM file of the client certificate (chain) presented to a `rediss://` server that asks
    /// for one (Redis's `tls-auth-clients`, on by default when Redis serves TLS). Goes with
    /// `tls_key_file`; `ratewall-redis` refuses one without the other. Default: none.
    pub tls_cert_file: Option<String>,
    /// PEM file of the private key of `tls_cert_file`. Default: none.
    pub tls_key_file: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            algorithm: Algorithm::default(),
            max_keys: 1_000_000,
            overflow: Overflow::default(),
            headers: HeaderSets::default(),
            storage: "memory://".to_string(),
            fail_mode: FailMode::default(),
            key_prefix: "ratewall".to_string(),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// One policy as configured. `None` fields take the [`Settings`] default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// The policy's name.
    pub name: String,
    /// Its limits.
    pub rates: Vec<Rate>,
    /// Algorithm, if not the default.
    pub algorithm: Option<Algorithm>,
    /// Token-bucket capacity, if not the limit.
    pub burst: Option<u64>,
    /// Keys per limit, if not the default.
    pub max_keys: Option<usize>,
    /// Overflow behaviour, if not the default.
    pub overflow: Option<Overflow>,
    /// Header sets, if not the default.
    pub headers: Option<HeaderSets>,
    /// Failure behaviour, if not the default.
    pub fail_mode: Option<FailMode>,
}

impl PolicyConfig {
    fn new(name: &str) -> Self {
        PolicyConfig {
            name: name.to_string(),
            rates: Vec::new(),
            algorithm: None,
            burst: None,
            max_keys: None,
            overflow: None,
            headers: None,
            fail_mode: None,
        }
    }
}

/// Why a configuration could not be read or applied. Each says where.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The file is not valid: TOML syntax, an unknown key, or a bad value (the message carries
    /// the line and column).
    File(String),
    /// An environment variable is unknown or has a bad value.
    Env {
        /// The variable.
        var: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A policy cannot be built from its settings.
    Policy {
        /// The policy.
        name: String,
        /// Why.
        error: PolicyError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, message } => {
                write!(f, "cannot read config file {path}: {message}")
            }
            ConfigError::File(message) => write!(f, "invalid config file: {message}"),
            ConfigError::Env { var, message } => write!(f, "environment variable {var}: {message}"),
            ConfigError::Policy { name, error } => write!(f, "policy {name:?}: {error}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A whole configuration: settings and policies, before any limiter is built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Shared settings and defaults.
    pub settings: Settings,
    /// The policies, in name order.
    pub policies: Vec<PolicyConfig>,
}

/// `login-v2` → `LOGIN_V2`: how a policy name appears in environment variables.
pub fn env_name(policy: &str) -> String {
    policy
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

const POLICY_FIELDS: [&str; 7] = [
    "_FAIL_MODE",
    "_MAX_KEYS",
    "_ALGORITHM",
    "_OVERFLOW",
    "_HEADERS",
    "_LIMITS",
    "_BURST",
];

impl Config {
    /// Parses a TOML configuration.
    ///
    /// ```
    /// use ratewall::config::Config;
    /// let config = Config::from_toml_str(r#"
    ///     [policies.login]
    ///     limits = "5/15min"
    ///     algorithm = "sliding-log"
    /// "#)?;
    /// assert_eq!(config.policies[0].rates[0].to_string(), "5/15minutes");
    /// let error = Config::from_toml_str("[policies.login]\nlimits = \"5/fortnight\"").unwrap_err();
    /// assert!(error.to_string().contains("line 2"));
    /// # Ok::<(), ratewall::config::ConfigError>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::File(e.to_string()))?;
        let defaults = Settings::default();
        let settings = Settings {
            algorithm: raw.defaults.algorithm.unwrap_or(defaults.algorithm),
            max_keys: raw
                .defaults
                .max_keys
                .map_or(defaults.max_keys, |n| n as usize),
            overflow: raw.defaults.overflow.unwrap_or(defaults.overflow),
            headers: raw.defaults.headers.unwrap_or(defaults.headers),
            storage: raw.defaults.storage.unwrap_or(defaults.storage),
            fail_mode: raw.defaults.fail_mode.unwrap_or(defaults.fail_mode),
            key_prefix: raw.defaults.key_prefix.unwrap_or(defaults.key_prefix),
            tls_ca_file: raw.defaults.tls_ca_file.filter(|f| !f.is_empty()),
            tls_cert_file: raw.defaults.tls_cert_file.filter(|f| !f.is_empty()),
            tls_key_file: raw.defaults.tls_key_file.filter(|f| !f.is_empty()),
        };
        let policies = raw
            .policies
            .into_iter()
            .map(|(name, p)| PolicyConfig {
                rates: p.limits.unwrap_or_default(),
                algorithm: p.algorithm,
                burst: p.burst,
                max_keys: p.max_keys.map(|n| n as usize),
                overflow: p.overflow,
                headers: p.headers,
                fail_mode: p.fail_mode,
                ..PolicyConfig::new(&name)
            })
            .collect();
        Ok(Config { settings, policies })
    }

    /// Reads a TOML configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Config::from_toml_str(&text).map_err(|e| match e {
            ConfigError::File(message) => {
                ConfigError::File(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// The process's configuration: the file named by `RATEWALL_CONFIG` (if set), then every
    /// `RATEWALL_*` variable on top.
    pub fn from_env() -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let mut config = match vars.iter().find(|(k, _)| k == "RATEWALL_CONFIG") {
            Some((_, path)) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(vars)?;
        Ok(config)
    }

    /// Applies `RATEWALL_*` variables (other variables are ignored). Takes the variables as a
    /// list so that tests need not touch the process environment.
    pub fn apply_env<K, V>(
        &mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (var, value) in vars {
            let (var, value) = (var.as_ref(), value.as_ref());
            if let Some(rest) = var.strip_prefix("RATEWALL_") {
                self.apply_var(var, rest, value)
                    .map_err(|message| ConfigError::Env {
                        var: var.to_string(),
                        message,
                    })?;
            }
        }
        Ok(())
    }

    fn apply_var(&mut self, var: &str, rest: &str, value: &str) -> Result<(), String> {
        let s = &mut self.settings;
        match rest {
            // Read by the Redis backend (ratewall-redis); never stored or printed here.
            "CONFIG" | "KEY_SECRET" => {}
            "STORAGE_URL" => s.storage = parse_storage(value)?,
            "FAIL_MODE" => s.fail_mode = value.parse()?,
            "HEADERS" => s.headers = parse_headers(value)?,
            "KEY_PREFIX" => s.key_prefix = value.to_string(),
            "TLS_CA_FILE" => s.tls_ca_file = (!value.is_empty()).then(|| value.to_string()),
            "TLS_CERT_FILE" => s.tls_cert_file = (!value.is_empty()).then(|| value.to_string()),
            "TLS_KEY_FILE" => s.tls_key_file = (!value.is_empty()).then(|| value.to_string()),
            "ALGORITHM" => {
                s.algorithm = value
                    .parse()
                    .map_err(|e: crate::policy::UnknownAlgorithm| e.to_string())?
            }
            "MAX_KEYS" => s.max_keys = parse_max_keys(value)?,
            "OVERFLOW" => s.overflow = parse_overflow(value)?,
            _ => return self.apply_policy_var(var, rest, value),
        }
        Ok(())
    }

    fn apply_policy_var(&mut self, var: &str, rest: &str, value: &str) -> Result<(), String> {
        let unknown = || {
            format!(
                "unknown variable {var}: use RATEWALL_CONFIG, RATEWALL_STORAGE_URL, \
                 RATEWALL_FAIL_MODE, RATEWALL_HEADERS, RATEWALL_KEY_PREFIX, RATEWALL_KEY_SECRET, \
                 RATEWALL_ALGORITHM, RATEWALL_MAX_KEYS, RATEWALL_OVERFLOW or RATEWALL_POLICY_<NAME>_<FIELD> with FIELD \
                 one of LIMITS, ALGORITHM, BURST, MAX_KEYS, OVERFLOW, FAIL_MODE, HEADERS"
            )
        };
        let rest = rest.strip_prefix("POLICY_").ok_or_else(unknown)?;
        let field = POLICY_FIELDS
            .iter()
            .find(|f| rest.ends_with(*f) && rest.len() > f.len())
            .ok_or_else(unknown)?;
        let name = &rest[..rest.len() - field.len()];
        let policy = self.policy_mut(name);
        match *field {
            "_LIMITS" => policy.rates = parse_rates(value).map_err(|e| e.to_string())?,
            "_ALGORITHM" => {
                policy.algorithm = Some(
                    value
                        .parse()
                        .map_err(|e: crate::policy::UnknownAlgorithm| e.to_string())?,
                )
            }
            "_BURST" => policy.burst = Some(parse_burst(value)?),
            "_MAX_KEYS" => policy.max_keys = Some(parse_max_keys(value)?),
            "_OVERFLOW" => policy.overflow = Some(parse_overflow(value)?),
            "_FAIL_MODE" => policy.fail_mode = Some(value.parse()?),
            "_HEADERS" => policy.headers = Some(parse_headers(value)?),
            _ => unreachable!("every POLICY_FIELDS entry is handled"),
        }
        Ok(())
    }

    /// The policy whose environment name is `env`, created (named in lower case) if none is.
    fn policy_mut(&mut self, env: &str) -> &mut PolicyConfig {
        let index = match self.policies.iter().position(|p| env_name(&p.name) == env) {
            Some(i) => i,
            None => {
                self.policies
                    .push(PolicyConfig::new(&env.to_ascii_lowercase()));
                self.policies.len() - 1
            }
        };
        &mut self.policies[index]
    }

    /// The options a policy is built with: its own settings over the defaults.
    pub fn options(&self, policy: &PolicyConfig) -> PolicyOptions {
        PolicyOptions {
            algorithm: policy.algorithm.unwrap_or(self.settings.algorithm),
            burst: policy.burst,
            max_keys: Some(policy.max_keys.unwrap_or(self.settings.max_keys)),
            overflow: policy.overflow.unwrap_or(self.settings.overflow),
        }
    }

    /// The header sets policy `name` renders: its own, else the default.
    pub fn policy_headers(&self, name: &str) -> &HeaderSets {
        self.policies
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.headers.as_ref())
            .unwrap_or(&self.settings.headers)
    }

    /// The failure mode of policy `name`: its own, else the default.
    pub fn policy_fail_mode(&self, name: &str) -> FailMode {
        self.policies
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.fail_mode)
            .unwrap_or(self.settings.fail_mode)
    }

    /// Builds every policy (in-process limiters).
    pub fn build(&self) -> Result<Policies, ConfigError> {
        let policies = self
            .policies
            .iter()
            .map(|p| {
                Policy::new(&p.name, &p.rates, self.options(p)).map_err(|error| {
                    ConfigError::Policy {
                        name: p.name.clone(),
                        error,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policies {
            config: self.clone(),
            policies,
        })
    }

    /// Renders the configuration back to TOML, every value in canonical form.
    pub fn to_toml(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "[defaults]\nalgorithm = \"{}\"\nmax_keys = {}\noverflow = \"{}\"\nheaders = \"{}\"\n\
             storage = {:?}\nfail_mode = \"{}\"\nkey_prefix = {:?}\n",
            s.algorithm, s.max_keys, s.overflow, s.headers, s.storage, s.fail_mode, s.key_prefix
        );
        for (key, file) in [
            ("tls_ca_file", &s.tls_ca_file),
            ("tls_cert_file", &s.tls_cert_file),
            ("tls_key_file", &s.tls_key_file),
        ] {
            if let Some(file) = file {
                out += &format!("{key} = {file:?}\n");
            }
        }
        for p in &self.policies {
            out += &format!(
                "\n[policies.{:?}]\nlimits = \"{}\"\n",
                p.name,
                crate::rate::format_rates(&p.rates)
            );
            if let Some(a) = p.algorithm {
                out += &format!("algorithm = \"{a}\"\n");
            }
            if let Some(b) = p.burst {
                out += &format!("burst = {b}\n");
            }
            if let Some(m) = p.max_keys {
                out += &format!("max_keys = {m}\n");
            }
            if let Some(o) = p.overflow {
                out += &format!("overflow = \"{}\"\n", o);
            }
            if let Some(h) = &p.headers {
                out += &format!("headers = \"{h}\"\n");
            }
            if let Some(f) = p.fail_mode {
                out += &format!("fail_mode = \"{f}\"\n");
            }
        }
        out
    }
}

/// Every configured policy, built, by name.
#[derive(Debug)]
pub struct Policies {
    config: Config,
    policies: Vec<Policy>,
}

impl Policies {
    /// The policy named `name`.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name() == name)
    }

    /// All policies, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.iter()
    }

    /// The configuration they were built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The header sets policy `name` renders (its own, else the default).
    pub fn headers(&self, name: &str) -> &HeaderSets {
        self.config.policy_headers(name)
    }

    /// The failure mode of policy `name` (its own, else the default).
    pub fn fail_mode(&self, name: &str) -> FailMode {
        self.config.policy_fail_mode(name)
    }
}
