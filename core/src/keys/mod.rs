//! Keys: who is asking. The client IP behind proxies, IPv6 subnets, and composite keys.
//!
//! A limiter counts per key, so the key decides who shares a quota. Get it wrong one way and a
//! whole office (or every client behind your load balancer) shares one quota; get it wrong the
//! other way and an attacker mints a fresh key per request. These helpers are pure functions on
//! strings and addresses, free of any web framework, so the C, Python and Node bindings all
//! derive the same key from the same request.
//!
//! # Client IP and trust proxy
//!
//! Behind a proxy the socket peer is the proxy, and the client is somewhere in
//! `X-Forwarded-For` (or RFC 7239 `Forwarded`). But anyone can send those headers: only entries
//! appended by proxies you run can be believed. [`TrustProxy`] says which, modelled on Express's
//! `trust proxy` setting and with the same meaning:
//!
//! | setting | parsed from | client IP |
//! |---|---|---|
//! | [`TrustProxy::None`] (default) | `"false"` | the socket peer; headers are ignored |
//! | [`TrustProxy::Hops(n)`](TrustProxy::Hops) | `"1"`, `"2"`, … | the `n`-th `X-Forwarded-For` entry from the right (the peer and the `n - 1` rightmost entries are your proxies) |
//! | [`TrustProxy::Cidrs`] | `"loopback, 10.0.0.0/8"` | walking from the peer leftwards, the first address not in these networks |
//! | [`TrustProxy::All`] | `"true"` | the leftmost entry: the client chooses its own key, see [`trust_proxy_warning`] |
//!
//! The walk starts at the peer and moves one entry left per trusted address. An entry that is
//! not an IP address (garbage, `unknown`, an obfuscated `_name`, a `Forwarded` element without
//! `for=`) stops the walk, and the last valid address (the trusted proxy that passed it on) is
//! the client. That proxy's quota is then shared by everyone whose entry is broken, which is the
//! safe failure: garbage never becomes a key an attacker can vary at will.
//!
//! ```
//! use std::net::IpAddr;
//! use ratewall::keys::TrustProxy;
//!
//! let peer: IpAddr = "10.0.0.2".parse()?; // our load balancer
//! let xff = Some("6.6.6.6, 198.51.100.7"); // client-sent spoof, then what the balancer saw
//! let one_proxy: TrustProxy = "1".parse()?;
//! assert_eq!(one_proxy.client_ip(peer, xff).to_string(), "198.51.100.7");
//! assert_eq!(TrustProxy::None.client_ip(peer, xff), peer);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # IPv6 subnets
//!
//! One IPv6 subscriber usually holds a whole /56 or /64, so a per-address limit is bypassed by
//! rotating addresses. [`ip_key`] masks IPv6 to [`DEFAULT_IPV6_SUBNET`] (/56, as
//! express-rate-limit) and keeps IPv4 whole. IPv4-mapped IPv6 addresses (`::ffff:203.0.113.7`,
//! what a dual-stack socket reports for IPv4 clients) are IPv4: masking them as IPv6 would put
//! every IPv4 client in one key.
//!
//! ```
//! use ratewall::keys::{ip_key, DEFAULT_IPV6_SUBNET};
//!
//! let v6 = "2001:db8:abcd:12ff::1".parse()?;
//! assert_eq!(ip_key(v6, DEFAULT_IPV6_SUBNET)?, "2001:db8:abcd:1200::/56");
//! let mapped = "::ffff:203.0.113.7".parse()?;
//! assert_eq!(ip_key(mapped, DEFAULT_IPV6_SUBNET)?, "203.0.113.7");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Composite keys
//!
//! "5 logins per minute per IP *and* account" needs one key from two parts, and joining them
//! with `:` is ambiguous (`("a:b", "c")` and `("a", "b:c")` collide). [`KeyBuilder`] names and
//! escapes each part, so different parts always give different keys:
//!
//! ```
//! use ratewall::keys::KeyBuilder;
//!
//! let key = KeyBuilder::new()
//!     .ip("203.0.113.7".parse()?)
//!     .user("alice")
//!     .build();
//! assert_eq!(key, "ip=203.0.113.7&user=alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Keys built here are raw keys: the keyed store hashes them before storing, and they should
//! not be logged (an account name or API key is personal data or a secret).

mod composite;
mod ip;
mod proxy;

use core::fmt;
use std::string::String;

pub use composite::{composite_key, KeyBuilder};
pub use ip::{ip_key, mask_ip, normalize_ip, parse_ip, DEFAULT_IPV6_SUBNET};
pub use proxy::{
    parse_forwarded, parse_x_forwarded_for, trust_proxy_warning, Hop, TrustProxy, TrustProxyWarning,
};

/// Why a key helper could not do what was asked.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// An IPv6 subnet prefix length outside `1..=128`.
    Ipv6SubnetOutOfRange {
        /// The prefix length given.
        prefix: u8,
    },
    /// Text that is not an IP address.
    InvalidIp {
        /// The text (its first 64 characters).
        input: String,
    },
    /// An entry of a trust proxy setting that is none of the accepted forms.
    InvalidTrustProxy {
        /// The entry (its first 64 characters); empty for an empty setting or entry.
        entry: String,
    },
}

/// The longest input quoted back in an error.
const MAX_INPUT_IN_ERROR: usize = 64;

/// `s`, cut to [`MAX_INPUT_IN_ERROR`] characters.
fn excerpt(s: &str) -> String {
    s.chars().take(MAX_INPUT_IN_ERROR).collect()
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Ipv6SubnetOutOfRange { prefix } => write!(
                f,
                "IPv6 subnet /{prefix} is out of range: use a prefix length from 1 to 128 \
                 (56 is the default, 64 keys one LAN, 128 one address)"
            ),
            KeyError::InvalidIp { input } => write!(
                f,
                "{input:?} is not an IP address: expected a form such as 203.0.113.7, \
                 203.0.113.7:443, 2001:db8::1 or [2001:db8::1]:443"
            ),
            KeyError::InvalidTrustProxy { entry } => {
                if entry.is_empty() {
                    f.write_str("empty trust proxy setting or entry")?;
                } else {
                    write!(f, "invalid trust proxy entry {entry:?}")?;
                }
                f.write_str(
                    ": use false, true, a hop count such as 1, or a comma-separated list of \
                     IP addresses, CIDR networks such as 10.0.0.0/8, and the names loopback, \
                     linklocal, uniquelocal",
                )
            }
        }
    }
}

impl core::error::Error for KeyError {}
