//! Key helpers: the client IP behind proxies, IPv6 subnets, composite keys, hashing.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use hmac::{Hmac, Mac};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyMapping, PyString};
use sha2::Sha256;

use ratewall::keys::{self as core_keys, TrustProxy as CoreTrustProxy};

use crate::limiter::with_key;
use crate::type_error;

fn key_error(e: impl ToString) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn ip(s: &str) -> PyResult<IpAddr> {
    core_keys::parse_ip(s).map_err(key_error)
}

/// Which proxies to believe about the client address, as Express's `trust proxy`:
/// `False`/`"false"` (default: the socket peer, headers ignored), a hop count (`1` with one
/// proxy in front of the app), a comma-separated list of addresses, CIDR networks and the names
/// `loopback`, `linklocal`, `uniquelocal`, or `True` (the leftmost `X-Forwarded-For` entry,
/// which the client writes itself: unsafe unless every request passes a stripping proxy).
#[pyclass(frozen, module = "ratewall", name = "TrustProxy")]
pub struct TrustProxy {
    inner: CoreTrustProxy,
}

impl TrustProxy {
    fn parse(setting: &Bound<'_, PyAny>) -> PyResult<CoreTrustProxy> {
        if let Ok(t) = setting.cast::<TrustProxy>() {
            return Ok(t.get().inner.clone());
        }
        let text = if let Ok(b) = setting.cast::<PyBool>() {
            if b.is_true() { "true" } else { "false" }.to_string()
        } else if setting.cast::<PyInt>().is_ok() {
            let n: u32 = setting.extract().map_err(|_| {
                PyValueError::new_err(format!(
                    "trust_proxy hop count must be from 0 to {}, got {setting}",
                    u32::MAX
                ))
            })?;
            n.to_string()
        } else if let Ok(s) = setting.cast::<PyString>() {
            s.to_str()?.to_string()
        } else if setting.is_none() {
            "false".to_string()
        } else {
            return Err(type_error(
                "trust_proxy",
                "a bool, a hop count, a string or a TrustProxy",
                setting,
            ));
        };
        text.parse().map_err(key_error)
    }
}

/// The client address: the socket `peer` walked left through `X-Forwarded-For` (else RFC 7239
/// `Forwarded`) while the current hop is a trusted proxy.
fn resolve(
    trust: &CoreTrustProxy,
    peer: &str,
    x_forwarded_for: Option<&str>,
    forwarded: Option<&str>,
) -> PyResult<String> {
    let peer = ip(peer)?;
    let client = match (x_forwarded_for, forwarded) {
        (None, Some(fwd)) => trust.client_ip_forwarded(peer, Some(fwd)),
        (xff, _) => trust.client_ip(peer, xff),
    };
    Ok(client.to_string())
}

#[pymethods]
impl TrustProxy {
    #[new]
    fn new(setting: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(TrustProxy {
            inner: Self::parse(setting)?,
        })
    }

    /// The client address (IPv4-mapped IPv6 turned into IPv4). `ValueError` if `peer` is not
    /// an IP address; header entries that are not addresses stop the walk.
    #[pyo3(signature = (peer, x_forwarded_for = None, forwarded = None))]
    fn client_ip(
        &self,
        peer: &str,
        x_forwarded_for: Option<&str>,
        forwarded: Option<&str>,
    ) -> PyResult<String> {
        resolve(&self.inner, peer, x_forwarded_for, forwarded)
    }

    /// Whether forwarding headers are ever read.
    #[getter]
    fn enabled(&self) -> bool {
        self.inner.is_enabled()
    }

    /// The misconfiguration warning for a request, if any, as `(code, message)`:
    /// `permissive_trust_proxy` whenever trust is `True`; `unexpected_x_forwarded_for` when a
    /// forwarding header arrives but the setting ignores headers.
    fn warning(&self, forwarding_header_present: bool) -> Option<(&'static str, &'static str)> {
        core_keys::trust_proxy_warning(&self.inner, forwarding_header_present)
            .map(|w| (w.code(), w.message()))
    }

    fn __str__(&self) -> String {
        match &self.inner {
            CoreTrustProxy::None => "false".to_string(),
            CoreTrustProxy::All => "true".to_string(),
            other => other.to_string(),
        }
    }

    fn __repr__(&self) -> String {
        format!("TrustProxy({:?})", self.__str__())
    }
}

/// The client IP of a request (see `TrustProxy`); `trust_proxy` may be a `TrustProxy` or any
/// setting it accepts. Returns the address only (use `ip_key` for the IPv6-masked key).
#[pyfunction]
#[pyo3(signature = (peer, x_forwarded_for = None, *, trust_proxy = None, forwarded = None))]
pub fn client_ip(
    peer: &str,
    x_forwarded_for: Option<&str>,
    trust_proxy: Option<&Bound<'_, PyAny>>,
    forwarded: Option<&str>,
) -> PyResult<String> {
    let trust = match trust_proxy {
        Some(t) => TrustProxy::parse(t)?,
        None => CoreTrustProxy::None,
    };
    resolve(&trust, peer, x_forwarded_for, forwarded)
}

/// The rate-limit key of a request's client in one call: the client address (see
/// `client_ip`) with IPv6 masked to `ipv6_subnet` bits (see `ip_key`). A `peer` that is not an
/// IP address (a Unix socket path, a test client's `"testclient"`) is returned unchanged;
/// `None` or `""` keys as `127.0.0.1`. Invalid settings raise `ValueError`/`TypeError`.
#[pyfunction]
#[pyo3(signature = (peer, x_forwarded_for = None, *, trust_proxy = None, forwarded = None, ipv6_subnet = 56))]
pub fn client_key(
    peer: Option<&str>,
    x_forwarded_for: Option<&str>,
    trust_proxy: Option<&Bound<'_, PyAny>>,
    forwarded: Option<&str>,
    ipv6_subnet: i64,
) -> PyResult<String> {
    let prefix = subnet(ipv6_subnet)?;
    let trust = match trust_proxy {
        Some(t) => Some(TrustProxy::parse(t)?),
        None => None,
    };
    let peer = match peer {
        None | Some("") => "127.0.0.1",
        Some(p) => p,
    };
    let Ok(peer_ip) = core_keys::parse_ip(peer) else {
        return Ok(peer.to_string());
    };
    let client = match &trust {
        None => core_keys::normalize_ip(peer_ip),
        Some(trust) => match (x_forwarded_for, forwarded) {
            (None, Some(fwd)) => trust.client_ip_forwarded(peer_ip, Some(fwd)),
            (xff, _) => trust.client_ip(peer_ip, xff),
        },
    };
    core_keys::ip_key(client, prefix).map_err(key_error)
}

fn subnet(ipv6_subnet: i64) -> PyResult<u8> {
    u8::try_from(ipv6_subnet)
        .ok()
        .filter(|p| (1..=128).contains(p))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "ipv6_subnet must be a prefix length from 1 to 128 (56 is the default, 64 keys \
                 one LAN, 128 one address), got {ipv6_subnet}"
            ))
        })
}

/// The rate-limit key of a client address: IPv4 as is (`203.0.113.7`), IPv6 as its network
/// masked to `ipv6_subnet` bits (`2001:db8:abcd:1200::/56`), IPv4-mapped IPv6 as IPv4. A port
/// or brackets are accepted. `ValueError` for anything that is not an address.
#[pyfunction]
#[pyo3(signature = (ip, ipv6_subnet = 56))]
pub fn ip_key(ip: &str, ipv6_subnet: i64) -> PyResult<String> {
    core_keys::ip_key(self::ip(ip)?, subnet(ipv6_subnet)?).map_err(key_error)
}

/// The network an address is limited as, in CIDR form (`203.0.113.7/32`,
/// `2001:db8:abcd:1200::/56`).
#[pyfunction]
#[pyo3(signature = (ip, ipv6_subnet = 56))]
pub fn mask_ip(ip: &str, ipv6_subnet: i64) -> PyResult<String> {
    Ok(core_keys::mask_ip(self::ip(ip)?, subnet(ipv6_subnet)?)
        .map_err(key_error)?
        .to_string())
}

/// Parses an address as sockets and headers write it (`203.0.113.7:443`, `[2001:db8::1]:443`,
/// `fe80::1%eth0`) and returns it in canonical form. `ValueError` if it is not one.
#[pyfunction]
pub fn parse_ip(ip: &str) -> PyResult<String> {
    Ok(self::ip(ip)?.to_string())
}

/// One key from named parts, `name=value` joined by `&` with `\`, `=` and `&` escaped, so
/// different parts never give the same key: `composite_key([("ip", ip), ("user", "alice")])`
/// → `"ip=203.0.113.7&user=alice"`. `parts` is a list of `(name, value)` pairs or a mapping
/// (in its order).
#[pyfunction]
pub fn composite_key(parts: &Bound<'_, PyAny>) -> PyResult<String> {
    let items = match parts.cast::<PyMapping>() {
        Ok(m) => m.items()?.into_any(),
        Err(_) => parts.clone(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in items
        .try_iter()
        .map_err(|_| type_error("parts", "a list of (name, value) pairs or a mapping", parts))?
    {
        let item = item?;
        let pair: (String, String) = item
            .extract()
            .map_err(|_| type_error("every part", "a (str, str) pair", &item))?;
        pairs.push(pair);
    }
    Ok(core_keys::composite_key(
        pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    ))
}

/// A keyed hash of personal data (an email, a phone number, an API key) for logs, metrics and
/// keys that leave the process: HMAC-SHA-256 under `secret`, first 16 bytes, base64url without
/// padding (22 characters) — the same construction and encoding as the client part of the Redis
/// backend's key names, so a logged hash finds the client's Redis keys under the same secret.
/// Without the secret the value cannot be confirmed by guessing. `value` and `secret` are str
/// or bytes.
#[pyfunction]
pub fn hash_key(value: &Bound<'_, PyAny>, secret: &Bound<'_, PyAny>) -> PyResult<String> {
    let secret: Vec<u8> = with_key(secret, |s| Ok(s.to_vec()))
        .map_err(|_| type_error("secret", "str or bytes", secret))?;
    if secret.is_empty() {
        return Err(PyValueError::new_err("secret must not be empty"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    with_key(value, |v| {
        mac.update(v);
        Ok(())
    })
    .map_err(|_| type_error("value", "str or bytes", value))?;
    let digest = mac.finalize().into_bytes();
    Ok(URL_SAFE_NO_PAD.encode(&digest[..16]))
}
