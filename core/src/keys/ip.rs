//! IP addresses: lenient parsing, IPv4-mapped normalisation, IPv6 subnet masking.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::string::{String, ToString};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{excerpt, KeyError};

/// The IPv6 prefix length [`ip_key`] masks to by default: /56, as express-rate-limit.
///
/// ISPs commonly delegate a /56 (sometimes a /48 or /64) to one subscriber, who can use any
/// address in it; /56 keys that subscriber, not each of their addresses.
pub const DEFAULT_IPV6_SUBNET: u8 = 56;

/// `ip` with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) turned into IPv4; other addresses unchanged.
///
/// Dual-stack sockets report IPv4 peers as mapped addresses; this makes them compare, match
/// networks and key like the IPv4 addresses they are.
///
/// ```
/// use std::net::IpAddr;
/// use ratewall::keys::normalize_ip;
/// let mapped: IpAddr = "::ffff:127.0.0.1".parse()?;
/// assert_eq!(normalize_ip(mapped), "127.0.0.1".parse::<IpAddr>()?);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The network an address is limited as: IPv4 (and IPv4-mapped) as a /32, IPv6 masked to
/// `ipv6_subnet` bits.
///
/// `ipv6_subnet` must be in `1..=128`; it is checked for every address, IPv4 included, so a bad
/// setting fails on the first request rather than on the first IPv6 client.
///
/// ```
/// use ratewall::keys::mask_ip;
/// let net = mask_ip("2001:db8:abcd:12ff::1".parse()?, 48)?;
/// assert_eq!(net.to_string(), "2001:db8:abcd::/48");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn mask_ip(ip: IpAddr, ipv6_subnet: u8) -> Result<IpNet, KeyError> {
    let out_of_range = KeyError::Ipv6SubnetOutOfRange {
        prefix: ipv6_subnet,
    };
    if !(1..=128).contains(&ipv6_subnet) {
        return Err(out_of_range);
    }
    match normalize_ip(ip) {
        IpAddr::V4(v4) => Ok(IpNet::V4(Ipv4Net::from(v4))),
        IpAddr::V6(v6) => Ipv6Net::new(v6, ipv6_subnet)
            .map(|net| IpNet::V6(net.trunc()))
            .map_err(|_| out_of_range),
    }
}

/// The key string for a client address: IPv4 as the address (`203.0.113.7`), IPv6 as its
/// masked network with the prefix length (`2001:db8:abcd:1200::/56`, also at /128).
///
/// Same output as express-rate-limit's `ipKeyGenerator`, except that IPv4-mapped addresses key
/// as IPv4. Use 128 to key each IPv6 address on its own (express-rate-limit's
/// `ipv6Subnet: false`). Fails only when `ipv6_subnet` is outside `1..=128`.
///
/// ```
/// use ratewall::keys::ip_key;
/// assert_eq!(ip_key("2001:db8::1".parse()?, 128)?, "2001:db8::1/128");
/// assert_eq!(ip_key("203.0.113.7".parse()?, 64)?, "203.0.113.7");
/// assert!(ip_key("203.0.113.7".parse()?, 0).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ip_key(ip: IpAddr, ipv6_subnet: u8) -> Result<String, KeyError> {
    Ok(match mask_ip(ip, ipv6_subnet)? {
        IpNet::V4(net) => net.addr().to_string(),
        IpNet::V6(net) => net.to_string(),
    })
}

/// Parses an address as it appears in sockets and headers, with or without a port.
///
/// Accepts `203.0.113.7`, `203.0.113.7:443`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443`, a zone (`fe80::1%eth0`, dropped), an obfuscated RFC 7239 port
/// (`[2001:db8::1]:_p1`), and surrounding white space. The address is returned as written:
/// use [`normalize_ip`] to turn IPv4-mapped addresses into IPv4.
///
/// ```
/// use ratewall::keys::parse_ip;
/// assert_eq!(parse_ip(" [2001:db8::1]:443 ")?.to_string(), "2001:db8::1");
/// assert_eq!(parse_ip("203.0.113.7:8080")?.to_string(), "203.0.113.7");
/// assert!(parse_ip("example.com").is_err());
/// # Ok::<(), ratewall::keys::KeyError>(())
/// ```
pub fn parse_ip(s: &str) -> Result<IpAddr, KeyError> {
    parse_host(s.trim()).ok_or_else(|| KeyError::InvalidIp { input: excerpt(s) })
}

/// An address with an optional port, already trimmed.
pub(super) fn parse_host(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return if port_ok {
            parse_v6(inside).map(IpAddr::V6)
        } else {
            None
        };
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    match s.split_once(':') {
        // One colon: IPv4 with a port. More: IPv6 (with a zone, the only form left).
        Some((host, port)) if !port.contains(':') => {
            let v4 = host.parse::<Ipv4Addr>().ok()?;
            is_port(port).then_some(IpAddr::V4(v4))
        }
        _ => parse_v6(s).map(IpAddr::V6),
    }
}

/// IPv6 with an optional zone (`%eth0`), which is dropped.
fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    let addr = match s.split_once('%') {
        Some((addr, zone)) if !zone.is_empty() => addr,
        Some(_) => return None,
        None => s,
    };
    addr.parse().ok()
}

/// RFC 7239 `node-port`: 1 to 5 digits, or `_` and an obfuscated identifier.
fn is_port(s: &str) -> bool {
    let digits = (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    digits || is_obfuscated(s)
}

/// RFC 7239 obfuscated identifier: `_` then letters, digits, `.`, `_` or `-`.
pub(super) fn is_obfuscated(s: &str) -> bool {
    s.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}
