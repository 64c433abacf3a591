//! Every configured policy on the store its URL names: the one entry point for bindings.

use std::future::Future;
use std::sync::Arc;

use ratewall::config::{Config, ConfigError, FailMode};
use ratewall::http::HeaderSets;
use ratewall::policy::Policy;
use ratewall::CheckError;

use crate::policy::{Outcome, RedisPolicy, Source};
use crate::store::{RedisOptions, RedisStore};
use crate::url::is_memory_url;
use crate::Error;

/// One policy on its store: in-process (`memory://`) or Redis.
#[derive(Clone, Debug)]
pub enum Limiter {
    /// In-process state (this process's answer only).
    Memory(Arc<Policy>),
    /// Shared state in Redis.
    Redis(RedisPolicy),
}

impl Limiter {
    /// The core policy: name, rates, limit names, header rendering.
    pub fn policy(&self) -> &Policy {
        match self {
            Limiter::Memory(p) => p,
            Limiter::Redis(r) => r.policy(),
        }
    }

    /// Decides a request and takes the permits if admitted. Never fails for a store outage
    /// (the fail mode decides); `Err` only for a bad cost.
    pub fn check(&self, key: impl AsRef<[u8]>, cost: u64) -> Result<Outcome, CheckError> {
        match self {
            Limiter::Memory(p) => memory(p.check(key, cost)),
            Limiter::Redis(r) => r.check(key, cost),
        }
    }

    /// Decides without taking anything.
    pub fn peek(&self, key: impl AsRef<[u8]>, cost: u64) -> Result<Outcome, CheckError> {
        match self {
            Limiter::Memory(p) => memory(p.peek_at(key, p.now(), cost)),
            Limiter::Redis(r) => r.peek(key, cost),
        }
    }

    /// Gives permits back (never above full).
    pub fn refund(&self, key: impl AsRef<[u8]>, cost: u64) -> Result<Outcome, CheckError> {
        match self {
            Limiter::Memory(p) => memory(p.refund_at(key, p.now(), cost)),
            Limiter::Redis(r) => r.refund(key, cost),
        }
    }

    /// Makes `key` full again.
    pub fn reset(&self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        match self {
            Limiter::Memory(p) => {
                p.reset(key);
                Ok(())
            }
            Limiter::Redis(r) => r.reset(key),
        }
    }

    /// [`check`](Self::check) as a `Send + 'static` future for async hosts (ASGI, Node). The
    /// in-process store answers at once; Redis is awaited without blocking the caller.
    pub fn check_async(
        &self,
        key: impl AsRef<[u8]>,
        cost: u64,
    ) -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static {
        let (ready, fut) = match self {
            Limiter::Memory(p) => (Some(Box::new(memory(p.check(key, cost)))), None),
            Limiter::Redis(r) => (None, Some(r.check_async(key, cost))),
        };
        answer(ready, fut)
    }

    /// [`peek`](Self::peek) as a future.
    pub fn peek_async(
        &self,
        key: impl AsRef<[u8]>,
        cost: u64,
    ) -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static {
        let (ready, fut) = match self {
            Limiter::Memory(p) => (Some(Box::new(memory(p.peek_at(key, p.now(), cost)))), None),
            Limiter::Redis(r) => (None, Some(r.peek_async(key, cost))),
        };
        answer(ready, fut)
    }

    /// [`reset`](Self::reset) as a future.
    pub fn reset_async(
        &self,
        key: impl AsRef<[u8]>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let (ready, fut) = match self {
            Limiter::Memory(p) => {
                p.reset(key);
                (Some(Box::new(Ok(()))), None)
            }
            Limiter::Redis(r) => (None, Some(r.reset_async(key))),
        };
        answer(ready, fut)
    }

    /// [`refund`](Self::refund) as a future.
    pub fn refund_async(
        &self,
        key: impl AsRef<[u8]>,
        cost: u64,
    ) -> impl Future<Output = Result<Outcome, CheckError>> + Send + 'static {
        let (ready, fut) = match self {
            Limiter::Memory(p) => (
                Some(Box::new(memory(p.refund_at(key, p.now(), cost)))),
                None,
            ),
            Limiter::Redis(r) => (None, Some(r.refund_async(key, cost))),
        };
        answer(ready, fut)
    }
}

fn memory(
    decided: Result<ratewall::policy::PolicyDecision, CheckError>,
) -> Result<Outcome, CheckError> {
    decided.map(|decision| Outcome {
        decision,
        source: Source::Memory,
    })
}

/// Every policy of a [`Config`], on the store its `storage` URL names.
///
/// ```
/// use ratewall::config::Config;
/// use ratewall_redis::{Limiters, Source};
///
/// let config = Config::from_toml_str("[policies.api]\nlimits = \"2/second\"")?;
/// let limiters = Limiters::from_config(&config)?; // storage = "memory://" by default
/// let api = limiters.get("api").unwrap();
/// let outcome = api.check("alice", 1)?;
/// assert!(outcome.allowed());
/// assert_eq!(outcome.source, Source::Memory);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Limiters {
    config: Config,
    store: Option<RedisStore>,
    limiters: Vec<Limiter>,
}

impl Limiters {
    /// Builds every policy of `config`. With a Redis `storage` URL this connects now (an
    /// unreachable server is an error here); see [`from_config_with`](Self::from_config_with).
    pub fn from_config(config: &Config) -> Result<Limiters, Error> {
        Self::from_config_with(config, RedisOptions::default(), false)
    }

    /// Builds every policy of `config` with explicit Redis options (`key_prefix` is taken from
    /// the config, `tls_ca_file` is read into `tls_ca_certificates` and `tls_cert_file` with
    /// `tls_key_file` into `tls_client_identity`, unless they are given).
    /// `lazy` starts without waiting for Redis: fail modes decide until it answers.
    pub fn from_config_with(
        config: &Config,
        options: RedisOptions,
        lazy: bool,
    ) -> Result<Limiters, Error> {
        let url = &config.settings.storage;
        if is_memory_url(url) {
            let limiters = config
                .policies
                .iter()
                .map(|pc| {
                    Policy::new(&pc.name, &pc.rates, config.options(pc))
                        .map(|p| Limiter::Memory(Arc::new(p)))
                        .map_err(|error| {
                            Error::Config(ConfigError::Policy {
                                name: pc.name.clone(),
                                error,
                            })
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Limiters {
                config: config.clone(),
                store: None,
                limiters,
            });
        }
        let tls_ca_certificates = match (&options.tls_ca_certificates, &config.settings.tls_ca_file)
        {
            (None, Some(file)) => Some(crate::store::read_tls_ca_file(file)?),
            (given, _) => given.clone(),
        };
        let tls_client_identity = match &options.tls_client_identity {
            Some(given) => Some(given.clone()),
            None => crate::store::read_tls_client_identity(
                config.settings.tls_cert_file.as_deref(),
                config.settings.tls_key_file.as_deref(),
            )?,
        };
        let options = RedisOptions {
            key_prefix: config.settings.key_prefix.clone(),
            tls_ca_certificates,
            tls_client_identity,
            ..options
        };
        let store = if lazy {
            RedisStore::connect_lazy(url, options)?
        } else {
            RedisStore::connect(url, options)?
        };
        let limiters = config
            .policies
            .iter()
            .map(|pc| RedisPolicy::from_config(&store, config, &pc.name).map(Limiter::Redis))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Limiters {
            config: config.clone(),
            store: Some(store),
            limiters,
        })
    }

    /// The policy named `name`.
    pub fn get(&self, name: &str) -> Option<&Limiter> {
        self.limiters.iter().find(|l| l.policy().name() == name)
    }

    /// Every policy, in the configuration's order.
    pub fn iter(&self) -> impl Iterator<Item = &Limiter> {
        self.limiters.iter()
    }

    /// The header sets policy `name` renders (its own, else the default).
    pub fn headers(&self, name: &str) -> &HeaderSets {
        self.config.policy_headers(name)
    }

    /// The fail mode of policy `name` (its own, else the default).
    pub fn fail_mode(&self, name: &str) -> FailMode {
        self.config.policy_fail_mode(name)
    }

    /// The Redis store, when the storage URL names one (for [`health`](RedisStore::health)).
    pub fn store(&self) -> Option<&RedisStore> {
        self.store.as_ref()
    }

    /// The configuration the limiters were built from.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The future of an async call: the in-process answer, ready at once, or Redis's. The ready
/// answer is boxed: an `Outcome` holds room for every limit of a policy (336 bytes), and kept
/// inline beside the Redis future it made every call's future over 1 KiB, a size at which
/// glibc's allocator consolidates its free lists on each allocation (`malloc_consolidate`
/// alone took 4% of a Node process's time with 64 concurrent callers).
async fn answer<T>(ready: Option<Box<T>>, fut: Option<impl Future<Output = T>>) -> T {
    match (ready, fut) {
        (Some(r), _) => *r,
        (None, Some(f)) => f.await,
        (None, None) => unreachable!("one of the two is set"),
    }
}
