//! `Config`: the shared TOML configuration file plus `RATEWALL_*` environment variables.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};

use ratewall::config::{Config as CoreConfig, PolicyConfig};
use ratewall::policy::Policy;

use crate::limiter::{clock_arg, Core, Limiter};
use crate::{type_error, ConfigError};

fn config_error(e: impl ToString) -> PyErr {
    ConfigError::new_err(e.to_string())
}

/// The configuration shared by every ratewall binding: one TOML file format plus `RATEWALL_*`
/// environment variables, so a polyglot fleet enforces the same limits.
///
/// Build one with `Config.from_toml(text)`, `Config.from_file(path)` or
/// `Config.from_env(environ=None)` (the file named by `RATEWALL_CONFIG`, then every
/// `RATEWALL_*` variable on top), then get limiters with `limiter(name)` or `limiters()`.
/// Errors raise `ConfigError` (a `ValueError`) naming the line and column or the variable.
#[pyclass(frozen, module = "ratewall", name = "Config")]
pub struct Config {
    config: CoreConfig,
}

impl Config {
    fn policy_config(&self, name: &str) -> PyResult<&PolicyConfig> {
        self.config
            .policies
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.config.policies.iter().map(|p| &*p.name).collect();
                pyo3::exceptions::PyKeyError::new_err(format!(
                    "no policy named {name:?} in the configuration (policies: {names:?})"
                ))
            })
    }

    fn build(&self, p: &PolicyConfig, clock: Option<&Bound<'_, PyAny>>) -> PyResult<Limiter> {
        if !ratewall_redis::url::is_memory_url(&self.config.settings.storage) {
            // An in-process limiter here would silently ignore the configured shared store.
            return Err(config_error(format!(
                "storage is {:?}: Config.limiter()/limiters() build in-process limiters only; \
                 use Config.open() for limiters on the configured store",
                redact(&self.config.settings.storage)
            )));
        }
        let policy = Policy::new(&p.name, &p.rates, self.config.options(p))
            .map_err(|error| config_error(format!("policy {:?}: {error}", p.name)))?;
        let headers = p
            .headers
            .clone()
            .unwrap_or_else(|| self.config.settings.headers.clone());
        Ok(Limiter {
            core: Core {
                policy,
                headers,
                clock: clock_arg(clock)?,
            },
        })
    }
}

/// A storage URL without its password, for messages.
fn redact(url: &str) -> String {
    match url.parse::<ratewall_redis::StorageUrl>() {
        Ok(u) => u.to_string(),
        Err(_) => "<invalid URL>".to_string(),
    }
}

/// `(name, value)` pairs from a mapping such as `os.environ`.
fn env_pairs(environ: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let mapping = environ
        .cast::<PyMapping>()
        .map_err(|_| type_error("environ", "a mapping of str to str", environ))?;
    let mut out = Vec::new();
    for item in mapping.items()?.iter() {
        let (k, v): (String, String) = item
            .extract()
            .map_err(|_| type_error("every environ item", "a (str, str) pair", &item))?;
        out.push((k, v));
    }
    Ok(out)
}

#[pymethods]
impl Config {
    /// An empty configuration (no policies, default settings).
    #[new]
    fn new() -> Self {
        Config {
            config: CoreConfig::default(),
        }
    }

    /// Parses a TOML configuration.
    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<Self> {
        Ok(Config {
            config: CoreConfig::from_toml_str(text).map_err(config_error)?,
        })
    }

    /// Reads a TOML configuration file (without holding the GIL).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let config = py
            .detach(|| CoreConfig::from_file(&path))
            .map_err(config_error)?;
        Ok(Config { config })
    }

    /// The file named by `RATEWALL_CONFIG` (if set), then every `RATEWALL_*` variable on top,
    /// read from `environ` (default: `os.environ`). Unknown `RATEWALL_*` variables are errors.
    #[staticmethod]
    #[pyo3(signature = (environ = None))]
    fn from_env(py: Python<'_>, environ: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let environ = match environ {
            Some(e) if !e.is_none() => e.clone(),
            _ => py.import("os")?.getattr("environ")?,
        };
        let vars = env_pairs(&environ)?;
        let mut config = match vars.iter().find(|(k, _)| k == "RATEWALL_CONFIG") {
            Some((_, path)) => py
                .detach(|| CoreConfig::from_file(path))
                .map_err(config_error)?,
            None => CoreConfig::default(),
        };
        config.apply_env(vars).map_err(config_error)?;
        Ok(Config { config })
    }

    /// A copy with `RATEWALL_*` variables from `environ` applied on top.
    fn with_env(&self, environ: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut config = self.config.clone();
        config
            .apply_env(env_pairs(environ)?)
            .map_err(config_error)?;
        Ok(Config { config })
    }

    /// The policy names, in order.
    #[getter]
    fn policy_names(&self) -> Vec<String> {
        self.config
            .policies
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    /// A new limiter (fresh state) for policy `name`; `KeyError` if there is none. `clock` as for
    /// `Limiter`: `"precise"` (the default), `"coarse"` or a callable returning seconds.
    #[pyo3(signature = (name, *, clock = None))]
    fn limiter(&self, name: &str, clock: Option<&Bound<'_, PyAny>>) -> PyResult<Limiter> {
        self.build(self.policy_config(name)?, clock)
    }

    /// A new limiter for every policy, by name (`clock` as for `limiter`).
    #[pyo3(signature = (*, clock = None))]
    fn limiters<'py>(
        &self,
        py: Python<'py>,
        clock: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for p in &self.config.policies {
            out.set_item(&p.name, self.build(p, clock)?)?;
        }
        Ok(out)
    }

    /// Every policy on the store the configuration's `storage` names (`memory://` or a Redis
    /// URL), with its `key_prefix` and per-policy `fail_mode`: a `Limiters` mapping of
    /// `RedisLimiter`s. Connects now, so an unreachable server raises `ConnectionError` and a
    /// bad URL `ValueError`; `lazy=True` starts without waiting for Redis (fail modes decide
    /// until it answers). Options as for `RedisStorage`; `events=True` keeps an event feed
    /// (prefer `ratewall.open_config(config, on_event=...)`, which drains it for you).
    #[pyo3(signature = (
        *, command_timeout = None, connect_timeout = None, fail_closed_retry_after = None,
        local_fraction = None, key_secret = None, lazy = false, events = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        &self,
        py: Python<'_>,
        command_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        fail_closed_retry_after: Option<f64>,
        local_fraction: Option<f64>,
        key_secret: Option<&Bound<'_, PyAny>>,
        lazy: bool,
        events: bool,
    ) -> PyResult<crate::redis::Limiters> {
        crate::redis::Limiters::open(
            py,
            &self.config,
            command_timeout,
            connect_timeout,
            fail_closed_retry_after,
            local_fraction,
            key_secret,
            lazy,
            events,
        )
    }

    /// The storage URL (`memory://`, `redis://...`).
    #[getter]
    fn storage(&self) -> &str {
        &self.config.settings.storage
    }

    /// The namespace of shared-store keys.
    #[getter]
    fn key_prefix(&self) -> &str {
        &self.config.settings.key_prefix
    }

    /// The default header sets, canonical.
    #[getter]
    fn headers(&self) -> String {
        self.config.settings.headers.to_string()
    }

    /// The failure mode of policy `name` (its own, else the default): `fail-open`,
    /// `fail-closed` or `local`.
    fn fail_mode(&self, name: &str) -> PyResult<&'static str> {
        let p = self.policy_config(name)?;
        Ok(p.fail_mode.unwrap_or(self.config.settings.fail_mode).name())
    }

    /// The limits of policy `name`, canonical.
    fn limits(&self, name: &str) -> PyResult<String> {
        Ok(ratewall::rate::format_rates(
            &self.policy_config(name)?.rates,
        ))
    }

    /// The configuration as TOML, every value in canonical form.
    fn to_toml(&self) -> String {
        self.config.to_toml()
    }

    fn __repr__(&self) -> String {
        format!(
            "Config(policies={:?}, storage={:?})",
            self.policy_names(),
            self.storage()
        )
    }
}
