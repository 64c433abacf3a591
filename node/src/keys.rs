//! Client keys: IP keys with IPv6 subnet masking, client IP behind proxies, trust-proxy checks.

use std::net::IpAddr;
use std::str::FromStr;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use ratewall::keys::{self, TrustProxy};

use crate::range_error;

/// express-rate-limit's `ipKeyGenerator(ip, ipv6Subnet)`: IPv4 (and IPv4-mapped IPv6) as the
/// IPv4 address; other IPv6 masked to `/ipv6Subnet` (`2001:db8:abcd:1200::/56`), or as given
/// when `ipv6Subnet` is absent (express-rate-limit's `false`). Text that is not an IP address
/// is returned unchanged, as express-rate-limit does (its default key generator reports it).
#[napi]
pub fn ip_key(ip: String, ipv6_subnet: Option<u32>) -> Result<String> {
    if let Some(subnet) = ipv6_subnet {
        if !(1..=128).contains(&subnet) {
            return Err(range_error(format!(
                "ipv6Subnet must be a whole number from 1 to 128 (56 is the default, 64 keys one \
                 LAN, 128 one address), got {subnet}"
            )));
        }
    }
    let parsed = match IpAddr::from_str(&ip) {
        Ok(addr) => addr,
        // Zoned IPv6 (fe80::1%eth0), as net.isIPv6 accepts it.
        Err(_) if ip.contains('%') => match keys::parse_ip(&ip) {
            Ok(IpAddr::V6(v6)) => IpAddr::V6(v6),
            _ => return Ok(ip),
        },
        Err(_) => return Ok(ip),
    };
    let addr = keys::normalize_ip(parsed);
    match (addr, ipv6_subnet) {
        (IpAddr::V4(v4), _) if parsed.is_ipv6() => Ok(v4.to_string()),
        (IpAddr::V4(_), _) => Ok(ip),
        (IpAddr::V6(_), None) => Ok(ip),
        (IpAddr::V6(_), Some(subnet)) => keys::ip_key(addr, subnet as u8).map_err(range_error),
    }
}

/// `ip` with IPv4-mapped IPv6 (`::ffff:203.0.113.7`) turned into IPv4, canonical; a port or
/// brackets are accepted and dropped. Errors on text that is not an IP address.
#[napi]
pub fn normalize_ip(ip: String) -> Result<String> {
    let addr = keys::parse_ip(&ip).map_err(range_error)?;
    Ok(keys::normalize_ip(addr).to_string())
}

/// The client address behind proxies: `peer` is the socket address, `xForwardedFor` the
/// request's `X-Forwarded-For` (several lines joined with `,`), `trust` Express's `trust proxy`
/// setting as text (`false`, `true`, a hop count, or addresses/CIDRs/`loopback`,
/// `linklocal`, `uniquelocal`, comma-separated).
#[napi]
pub fn trust_proxy_client_ip(
    peer: String,
    x_forwarded_for: Option<String>,
    trust: String,
) -> Result<String> {
    let trust = TrustProxy::from_str(&trust).map_err(range_error)?;
    let peer = keys::parse_ip(&peer).map_err(range_error)?;
    Ok(trust
        .client_ip(peer, x_forwarded_for.as_deref())
        .to_string())
}

/// A trust-proxy setting that is probably wrong.
#[napi(object)]
pub struct TrustWarning {
    /// `unexpected_x_forwarded_for` or `permissive_trust_proxy`.
    pub code: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The warning, if any, for a request that does (or does not) carry a forwarding header under
/// the trust setting `trust` (text, as for [`trust_proxy_client_ip`]).
#[napi]
pub fn trust_proxy_warning(
    trust: String,
    forwarded_header_present: bool,
) -> Result<Option<TrustWarning>> {
    let trust = TrustProxy::from_str(&trust).map_err(range_error)?;
    Ok(
        keys::trust_proxy_warning(&trust, forwarded_header_present).map(|w| TrustWarning {
            code: w.code().to_string(),
            message: w.message().to_string(),
        }),
    )
}
