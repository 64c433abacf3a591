//! Configuration handles: every policy of a TOML file, string or the `RATEWALL_*` environment.

use std::ffi::c_char;
use std::ptr;
use std::sync::Arc;

use ratewall::config::Config;

use crate::error::{guard, rw_status, Error, Result};
use crate::policy::{clear_out, give, rw_policy};
use crate::store::{
    config_error, fill_health, load, read_store_options, rw_health, rw_store_options, Loaded,
    StoreOptions,
};
use crate::util::{c_str, check_ptr, Tagged};

/// Every policy of one configuration, built and ready on its store (in-process, or Redis when
/// the configuration's `storage` is a `redis://`, `rediss://`, `redis+unix://` or
/// `redis+cluster://` URL). Opaque; create it with `rw_config_from_file`, `rw_config_from_str`
/// or `rw_config_from_env` (or their `_with` twins, which take store options), take policies out
/// with `rw_config_policy`, free it with `rw_config_free`.
///
/// Thread-safety: `rw_config_policy` and `rw_config_health` may be called from any number of
/// threads at once; only `rw_config_free` needs exclusive access. Policy handles taken from it
/// stay valid after it is freed (they keep the Redis connection alive).
///
/// Processes: a configuration on Redis owns an I/O thread, which `fork()` does not copy: a
/// pre-forking server creates its configurations in each child after the fork (in a child,
/// handles created before it would see Redis as unreachable, and the fail mode would decide).
/// Like any program talking over sockets, ignore `SIGPIPE` (`signal(SIGPIPE, SIG_IGN)`): a
/// connection that breaks in the middle of a write (a Unix socket in particular) could
/// otherwise end the process.
pub struct rw_config(Tagged<Arc<Loaded>>);

const CONFIG_MAGIC: u64 = u64::from_le_bytes(*b"rwconfig");
// The tag is the handle's first 8 bytes (see `Tagged`).
const _: () = assert!(std::mem::offset_of!(rw_config, 0) == 0);

/// Reads and builds the TOML file at `path` with the default store options.
pub(crate) fn load_file(path: &str) -> Result<Arc<Loaded>> {
    load(
        &Config::from_file(path).map_err(config_error)?,
        StoreOptions::default(),
    )
}

/// A new handle on the policy `name` of `loaded`.
pub(crate) fn policy_in(loaded: &Arc<Loaded>, name: &str) -> Result<Box<rw_policy>> {
    let limiters = &loaded.limiters;
    let limiter = limiters.get(name).ok_or_else(|| {
        let names: Vec<&str> = limiters.iter().map(|l| l.policy().name()).collect();
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
        loaded,
        limiter,
        limiters.headers(name).clone(),
    ))
}

/// # Safety
/// `p` is NULL or points to memory readable as an `rw_config`.
unsafe fn config_ref<'a>(p: *const rw_config) -> Result<&'a rw_config> {
    check_ptr(p, "config")?;
    // Read the tag through the raw pointer first (see `policy_ref`).
    if Tagged::<()>::tag_of(p) != CONFIG_MAGIC {
        return Err(Error::new(
            rw_status::RW_INVALID_ARGUMENT,
            "config is not a live rw_config handle (freed, or another type)",
        ));
    }
    Ok(&*p)
}

/// # Safety
/// `out` is valid for writes.
unsafe fn give_config(out: *mut *mut rw_config, loaded: Arc<Loaded>) {
    give(out, Box::new(rw_config(Tagged::new(CONFIG_MAGIC, loaded))));
}

/// Builds a configuration handle into `*out`: the store options are read first, then the
/// configuration, then every policy is built on its store.
///
/// # Safety
/// `out` is NULL or valid for writing a pointer; `options` is NULL or points to
/// `options->struct_size` readable bytes.
unsafe fn make(
    out: *mut *mut rw_config,
    options: *const rw_store_options,
    read: impl FnOnce() -> Result<Config>,
) -> Result<()> {
    clear_out(out)?;
    let options = read_store_options(options)?;
    let config = read()?;
    give_config(out, load(&config, options)?);
    Ok(())
}

/// Reads the TOML configuration file at `path` and builds every policy in it. The format is the
/// one every ratewall binding reads, so a polyglot fleet enforces the same limits:
///
/// ```toml
/// [defaults]                 # optional: algorithm, max_keys, overflow, headers, storage, ...
/// headers = "legacy, ietf"
/// storage = "redis://10.0.0.5:6379/0"   # shared by the fleet; default "memory://" (in-process)
/// fail_mode = "fail-open"               # when Redis cannot answer: fail-closed, local
///
/// [policies.login]
/// limits = "5/15min"
/// algorithm = "sliding-log"
/// overflow = "deny-new-keys"
/// fail_mode = "fail-closed"
///
/// [policies.api]
/// limits = "10/second; 1000/day"
/// ```
///
/// With a Redis `storage` (`redis://`, `rediss://`, `redis+unix://`, `redis+cluster://`) this
/// connects now, within the connect timeout (500 ms; see `rw_config_from_file_with` for options
/// and a lazy start), and every policy of the configuration decides through Redis.
///
/// `*out` receives the handle (NULL on failure); free it with `rw_config_free`.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_UTF8`, `RW_IO`, `RW_CONFIG` (with line and column; also
/// a storage scheme other than the ones above, or a policy Redis cannot run), `RW_STORAGE_URL`
/// (a Redis URL that does not parse), `RW_STORAGE_UNAVAILABLE` (Redis cannot be reached),
/// `RW_STORAGE_ERROR` (Redis refused: authentication, no Lua scripting). Thread-safe.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_file(
    path: *const c_char,
    out: *mut *mut rw_config,
) -> rw_status {
    guard("rw_config_from_file", || {
        make(out, ptr::null(), || {
            Config::from_file(c_str(path, "path")?).map_err(config_error)
        })
    })
}

/// `rw_config_from_file` with store options: the Redis command timeout, connect timeout, local
/// fraction, a lazy start (`RW_STORE_LAZY`: build while Redis is down), and an event callback.
/// `options` NULL means every default.
///
/// Errors: those of `rw_config_from_file`, plus `RW_INVALID_ARGUMENT` and `RW_UNSUPPORTED` for bad
/// options. Thread-safe.
///
/// # Safety
/// As `rw_config_from_file`; `options` is NULL or points to `options->struct_size` readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_file_with(
    path: *const c_char,
    options: *const rw_store_options,
    out: *mut *mut rw_config,
) -> rw_status {
    guard("rw_config_from_file_with", || {
        make(out, options, || {
            Config::from_file(c_str(path, "path")?).map_err(config_error)
        })
    })
}

/// Like `rw_config_from_file`, from the TOML text `toml` (NUL-terminated UTF-8).
///
/// Errors: those of `rw_config_from_file` but `RW_IO`. Thread-safe.
///
/// # Safety
/// `toml` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_str(
    toml: *const c_char,
    out: *mut *mut rw_config,
) -> rw_status {
    guard("rw_config_from_str", || {
        make(out, ptr::null(), || {
            Config::from_toml_str(c_str(toml, "toml")?).map_err(config_error)
        })
    })
}

/// `rw_config_from_str` with store options (see `rw_config_from_file_with`).
///
/// # Safety
/// As `rw_config_from_str`; `options` is NULL or points to `options->struct_size` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_str_with(
    toml: *const c_char,
    options: *const rw_store_options,
    out: *mut *mut rw_config,
) -> rw_status {
    guard("rw_config_from_str_with", || {
        make(out, options, || {
            Config::from_toml_str(c_str(toml, "toml")?).map_err(config_error)
        })
    })
}

/// The process's configuration, as every ratewall binding reads it: the file named by
/// `RATEWALL_CONFIG` (if set), then every `RATEWALL_*` variable on top
/// (`RATEWALL_POLICY_LOGIN_LIMITS=5/15min`, `RATEWALL_HEADERS=ietf`,
/// `RATEWALL_STORAGE_URL=redis://...`, ...). An unknown `RATEWALL_` variable is an error, so a
/// typo cannot silently leave a limit unchanged.
///
/// Errors: those of `rw_config_from_file` (`RW_CONFIG` names the variable). Reads the
/// environment: do not call it while another thread modifies the environment (`setenv`).
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_env(out: *mut *mut rw_config) -> rw_status {
    guard("rw_config_from_env", || {
        make(out, ptr::null(), || {
            Config::from_env().map_err(config_error)
        })
    })
}

/// `rw_config_from_env` with store options (see `rw_config_from_file_with`).
///
/// # Safety
/// `out` is NULL or valid for writing a pointer; `options` is NULL or points to
/// `options->struct_size` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rw_config_from_env_with(
    options: *const rw_store_options,
    out: *mut *mut rw_config,
) -> rw_status {
    guard("rw_config_from_env_with", || {
        make(out, options, || Config::from_env().map_err(config_error))
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
        give(out, policy_in(&config.0.value, name)?);
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
        Tagged::<()>::clear_tag(config);
        drop(Box::from_raw(config));
        Ok(())
    })
}

/// Fills `*out` with the health of the configuration's store: whether it runs on Redis, whether
/// Redis is connected now, and the counters since it was built (decisions by Redis, errors,
/// timeouts, fallbacks by fail mode, disconnects, reconnects, the last error). For in-process
/// storage `out->redis` is false and every counter is 0. Cheap (atomic reads): fine for a
/// metrics scrape or a health endpoint.
///
/// Errors: `RW_NULL_POINTER`, `RW_INVALID_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `config` is NULL or a live handle; `out` is NULL or valid for writing an `rw_health`.
#[no_mangle]
pub unsafe extern "C" fn rw_config_health(
    config: *const rw_config,
    out: *mut rw_health,
) -> rw_status {
    guard("rw_config_health", || {
        let config = config_ref(config)?;
        fill_health(out, config.0.value.limiters.store().map(|s| s.health()))
    })
}
