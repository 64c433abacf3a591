//! Configuration handles: every policy of a TOML file, string or the `RATEWALL_*` environment.

use std::ffi::c_char;
use std::ptr::addr_of_mut;
use std::sync::Arc;

use ratewall::config::{Config, ConfigError, Policies};

use crate::error::{guard, rw_status, Error, Result};
use crate::policy::{clear_out, give, rw_policy};
use crate::util::{c_str, check_ptr};

/// Every policy of one configuration, built and ready. Opaque; create it with
/// `rw_config_from_file`, `rw_config_from_str` or `rw_config_from_env`, take policies out with
/// `rw_config_policy`, free it with `rw_config_free`.
///
/// Thread-safety: `rw_config_policy` may be called from any number of threads at once; only
/// `rw_config_free` needs exclusive access. Policy handles taken from it stay valid after it is
/// freed.
pub struct rw_config {
    magic: u64,
    policies: Arc<Policies>,
}

const CONFIG_MAGIC: u64 = u64::from_le_bytes(*b"rwconfig");

#[cold]
fn config_error(e: ConfigError) -> Error {
    let status = match e {
        ConfigError::Io { .. } => rw_status::RW_IO,
        _ => rw_status::RW_CONFIG,
    };
    Error::new(status, e)
}

/// Builds every policy of `config` in process. A shared (Redis) storage is refused rather than
/// silently replaced by in-process limiting: the backend is not part of this build yet.
fn build(config: Config) -> Result<Arc<Policies>> {
    let storage = config.settings.storage.trim();
    if !storage.starts_with("memory://") {
        return Err(Error::new(
            rw_status::RW_UNSUPPORTED,
            format_args!(
                "storage {storage:?} needs the Redis backend, which this build of libratewall \
                 does not include yet; use storage = \"memory://\" (in-process limits)"
            ),
        ));
    }
    config.build().map(Arc::new).map_err(config_error)
}

/// Reads and builds the TOML file at `path`.
pub(crate) fn load_file(path: &str) -> Result<Arc<Policies>> {
    build(Config::from_file(path).map_err(config_error)?)
}

/// A new handle on the policy `name` of `policies`.
pub(crate) fn policy_in(policies: &Arc<Policies>, name: &str) -> Result<Box<rw_policy>> {
    let policy = policies.get(name).ok_or_else(|| {
        let names: Vec<&str> = policies.iter().map(|p| p.name()).collect();
        Error::new(
            rw_status::RW_NOT_FOUND,
            format_args!(
                "no policy named {name:?} in the configuration (it has: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        )
    })?;
    Ok(rw_policy::in_config(
        policies,
        policy,
        policies.headers(name).clone(),
    ))
}

/// # Safety
/// `p` is NULL or points to memory readable as an `rw_config`.
unsafe fn config_ref<'a>(p: *const rw_config) -> Result<&'a rw_config> {
    check_ptr(p, "config")?;
    // Read the tag through the raw pointer first (see `policy_ref`).
    if std::ptr::addr_of!((*p).magic).read() != CONFIG_MAGIC {
        return Err(Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            "config is not a live rw_config handle (freed, or another type)",
        ));
    }
    Ok(&*p)
}

/// # Safety
/// `out` is valid for writes.
unsafe fn give_config(out: *mut *mut rw_config, policies: Arc<Policies>) {
    give(
        out,
        Box::new(rw_config {
            magic: CONFIG_MAGIC,
            policies,
        }),
    );
}

/// Reads the TOML configuration file at `path` and builds every policy in it. The format is the
/// one every ratewall binding reads, so a polyglot fleet enforces the same limits:
///
/// ```toml
/// [defaults]                 # optional: algorithm, max_keys, overflow, headers, storage, ...
/// headers = "legacy, ietf"
///
/// [policies.login]
/// limits = "5/15min"
/// algorithm = "sliding-log"
/// overflow = "deny-new-keys"
///
/// [policies.api]
/// limits = "10/second; 1000/day"
/// ```
///
/// `*out` receives the handle (NULL on failure); free it with `rw_config_free`.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_UTF8`, `RW_IO`, `RW_CONFIG` (with line and column),
/// `RW_UNSUPPORTED` (a `redis://` storage: not in this build yet). Thread-safe.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_file(
    path: *const c_char,
    out: *mut *mut rw_config,
) -> rw_status {
    guard("rw_config_from_file", || {
        clear_out(out)?;
        let path = c_str(path, "path")?;
        give_config(out, load_file(path)?);
        Ok(())
    })
}

/// Like `rw_config_from_file`, from the TOML text `toml` (NUL-terminated UTF-8).
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_UTF8`, `RW_CONFIG`, `RW_UNSUPPORTED`. Thread-safe.
///
/// # Safety
/// `toml` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_str(
    toml: *const c_char,
    out: *mut *mut rw_config,
) -> rw_status {
    guard("rw_config_from_str", || {
        clear_out(out)?;
        let text = c_str(toml, "toml")?;
        give_config(
            out,
            build(Config::from_toml_str(text).map_err(config_error)?)?,
        );
        Ok(())
    })
}

/// The process's configuration, as every ratewall binding reads it: the file named by
/// `RATEWALL_CONFIG` (if set), then every `RATEWALL_*` variable on top
/// (`RATEWALL_POLICY_LOGIN_LIMITS=5/15min`, `RATEWALL_HEADERS=ietf`, ...). An unknown
/// `RATEWALL_` variable is an error, so a typo cannot silently leave a limit unchanged.
///
/// Errors: `RW_NULL_POINTER`, `RW_IO`, `RW_CONFIG` (naming the variable), `RW_UNSUPPORTED`.
/// Reads the environment: do not call it while another thread modifies the environment
/// (`setenv`).
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_env(out: *mut *mut rw_config) -> rw_status {
    guard("rw_config_from_env", || {
        clear_out(out)?;
        give_config(out, build(Config::from_env().map_err(config_error)?)?);
        Ok(())
    })
}

/// Sets `*out` to a new handle on the configured policy `name`, with the header sets the
/// configuration gives it. Handles for the same name share one limiter state (a key limited
/// through one is limited through all). Free each with `rw_policy_free`; a handle stays valid
/// after `rw_config_free`.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_UTF8`, `RW_INVALID_ARGUMENT`, `RW_NOT_FOUND` (the
/// message lists the configured names). `*out` is NULL on failure. Thread-safe.
///
/// # Safety
/// `config` is NULL or a live handle; `name` is NULL or a NUL-terminated string; `out` is NULL or
/// valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_config_policy(
    config: *const rw_config,
    name: *const c_char,
    out: *mut *mut rw_policy,
) -> rw_status {
    guard("rw_config_policy", || {
        clear_out(out)?;
        let config = config_ref(config)?;
        let name = c_str(name, "name")?;
        give(out, policy_in(&config.policies, name)?);
        Ok(())
    })
}

/// Frees a configuration handle. NULL is a no-op (returns `RW_OK`). Policy handles taken from
/// it stay valid until freed themselves. The handle must not be in use by another thread, nor
/// used afterwards.
///
/// Errors: `RW_INVALID_ARGUMENT` if `config` is not a live configuration handle (then nothing is
/// freed).
///
/// # Safety
/// `config` is NULL or a handle from this library that is not used concurrently or afterwards.
#[no_mangle]
pub unsafe extern "C" fn rw_config_free(config: *mut rw_config) -> rw_status {
    guard("rw_config_free", || {
        if config.is_null() {
            return Ok(());
        }
        config_ref(config)?;
        addr_of_mut!((*config).magic).write(0);
        drop(Box::from_raw(config));
        Ok(())
    })
}
