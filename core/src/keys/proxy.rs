//! Client IP resolution behind proxies: `X-Forwarded-For`, RFC 7239 `Forwarded`, trust proxy.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;
use std::string::String;
use std::vec::Vec;

use ipnet::{IpNet, Ipv4Net};

use super::ip::{is_obfuscated, normalize_ip, parse_host};
use super::{excerpt, KeyError};

/// Which proxies to believe when they say who the client is; Express's `trust proxy`.
///
/// See the [module documentation](super) for the walk. Parse it from configuration with
/// [`FromStr`]: `"false"`, `"true"`, a hop count (`"1"`), or a comma-separated list of
/// addresses, CIDR networks (`10.0.0.0/8`, or with a netmask, `10.0.0.0/255.0.0.0`) and the
/// names `loopback` (127.0.0.0/8, ::1/128), `linklocal` (169.254.0.0/16, fe80::/10) and
/// `uniquelocal` (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7), as Express does.
/// [`Display`](fmt::Display) writes the same forms (names expanded to their networks).
///
/// ```
/// use ratewall::keys::TrustProxy;
/// assert_eq!("false".parse::<TrustProxy>()?, TrustProxy::None);
/// assert_eq!("2".parse::<TrustProxy>()?, TrustProxy::Hops(2));
/// let private: TrustProxy = "loopback, 10.0.0.0/8".parse()?;
/// assert_eq!(private.to_string(), "127.0.0.0/8, ::1/128, 10.0.0.0/8");
/// assert!("10.0.0.0/33".parse::<TrustProxy>().is_err());
/// # Ok::<(), ratewall::keys::KeyError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustProxy {
    /// Trust no proxy: the client is the socket peer, headers are ignored. The default.
    #[default]
    None,
    /// Trust every hop: the client is the leftmost entry, which the client itself wrote.
    /// Only safe when every request passes through proxies that strip incoming headers.
    All,
    /// Trust the `n` nearest hops, the socket peer being the first: the client is the `n`-th
    /// `X-Forwarded-For` entry from the right (the leftmost if there are fewer). With one proxy
    /// in front of the app, `Hops(1)` takes the rightmost entry. `Hops(0)` is `None`.
    Hops(u32),
    /// Trust the addresses in these networks (IPv4-mapped addresses match IPv4 networks).
    /// An empty list is `None`.
    Cidrs(Vec<IpNet>),
}

/// One entry of a forwarding chain, as a proxy recorded it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// An address (IPv4-mapped addresses already turned into IPv4).
    Ip(IpAddr),
    /// `unknown` (RFC 7239 §6.2), or a `Forwarded` element without `for=`.
    Unknown,
    /// An obfuscated identifier such as `_hidden` (RFC 7239 §6.3).
    Obfuscated,
    /// Anything else: not an address.
    Invalid,
}

impl Hop {
    /// Classifies one `X-Forwarded-For` entry or one unquoted `Forwarded` node; surrounding
    /// white space is ignored, ports are dropped.
    ///
    /// ```
    /// use ratewall::keys::Hop;
    /// assert_eq!(Hop::parse(" [2001:db8::1]:443"), Hop::Ip("2001:db8::1".parse()?));
    /// assert_eq!(Hop::parse("::ffff:10.0.0.1"), Hop::Ip("10.0.0.1".parse()?));
    /// assert_eq!(Hop::parse("_hidden"), Hop::Obfuscated);
    /// assert_eq!(Hop::parse("unknown"), Hop::Unknown);
    /// assert_eq!(Hop::parse("not an ip"), Hop::Invalid);
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn parse(node: &str) -> Hop {
        let node = node.trim();
        let name = node.split_once(':').map_or(node, |(name, _)| name);
        if name.eq_ignore_ascii_case("unknown") {
            Hop::Unknown
        } else if is_obfuscated(name) {
            Hop::Obfuscated
        } else {
            parse_host(node).map_or(Hop::Invalid, |ip| Hop::Ip(normalize_ip(ip)))
        }
    }
}

/// The entries of an `X-Forwarded-For` value, in header order (leftmost = farthest).
///
/// Entries are separated by commas; a blank value has none; an empty entry is
/// [`Hop::Invalid`]. If a request carries several `X-Forwarded-For` lines, join them with `,`
/// in order (RFC 9110 §5.3) before calling.
///
/// ```
/// use ratewall::keys::{parse_x_forwarded_for, Hop};
/// let hops = parse_x_forwarded_for("203.0.113.7, [2001:db8::1]:443, garbage");
/// assert_eq!(hops[0], Hop::Ip("203.0.113.7".parse()?));
/// assert_eq!(hops[2], Hop::Invalid);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn parse_x_forwarded_for(value: &str) -> Vec<Hop> {
    let mut hops = x_forwarded_for_nearest_first(value).collect::<Vec<_>>();
    hops.reverse();
    hops
}

/// The `for=` node of each element of an RFC 7239 `Forwarded` value, in header order.
///
/// Element and pair boundaries are every `,` and `;`, even inside quotes: no valid node
/// contains either, and this keeps a client's unbalanced quote from swallowing the elements
/// proxies append after it. Parameter names are case-insensitive; values may be quoted (with
/// `\` escapes). An element without `for=` is [`Hop::Unknown`]; one with two `for=`, a pair
/// without `=` or a broken quoted string is [`Hop::Invalid`].
///
/// ```
/// use ratewall::keys::{parse_forwarded, Hop};
/// let hops = parse_forwarded(r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711""#);
/// assert_eq!(hops, [Hop::Ip("192.0.2.60".parse()?), Hop::Ip("2001:db8:cafe::17".parse()?)]);
/// assert_eq!(parse_forwarded("for=_hidden, for=unknown"), [Hop::Obfuscated, Hop::Unknown]);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn parse_forwarded(value: &str) -> Vec<Hop> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value.split(',').map(forwarded_element).collect()
}

fn x_forwarded_for_nearest_first(value: &str) -> impl Iterator<Item = Hop> + '_ {
    let blank = value.trim().is_empty();
    value.rsplit(',').filter(move |_| !blank).map(Hop::parse)
}

fn forwarded_element(element: &str) -> Hop {
    let mut node = None;
    for pair in element.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = pair.split_once('=') else {
            return Hop::Invalid;
        };
        if name.trim().eq_ignore_ascii_case("for") {
            if node.is_some() {
                return Hop::Invalid;
            }
            node = Some(unquote(value.trim()));
        }
    }
    match node {
        None => Hop::Unknown,
        Some(None) => Hop::Invalid,
        Some(Some(node)) => Hop::parse(&node),
    }
}

/// A token as is, or a quoted string without its quotes and escapes; `None` if broken.
fn unquote(value: &str) -> Option<String> {
    let Some(quoted) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.into());
    };
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

impl TrustProxy {
    /// Whether this setting ever looks at forwarding headers.
    pub fn is_enabled(&self) -> bool {
        match self {
            TrustProxy::None => false,
            TrustProxy::All => true,
            TrustProxy::Hops(n) => *n > 0,
            TrustProxy::Cidrs(nets) => !nets.is_empty(),
        }
    }

    /// Whether the address at `hop` (0 = the socket peer, 1 = the rightmost forwarded entry, …)
    /// is a proxy to believe.
    pub fn trusts(&self, addr: IpAddr, hop: usize) -> bool {
        match self {
            TrustProxy::None => false,
            TrustProxy::All => true,
            TrustProxy::Hops(n) => u32::try_from(hop).is_ok_and(|hop| hop < *n),
            TrustProxy::Cidrs(nets) => {
                let addr = normalize_ip(addr);
                nets.iter().any(|net| net.contains(&addr))
            }
        }
    }

    /// The client address given the socket `peer` and the request's `X-Forwarded-For` value
    /// (several header lines joined with `,`), walking from the right.
    ///
    /// The result is normalised ([`normalize_ip`]). Entries left of the first untrusted
    /// address are never read, so a long spoofed header costs nothing.
    pub fn client_ip(&self, peer: IpAddr, x_forwarded_for: Option<&str>) -> IpAddr {
        if !self.is_enabled() {
            return normalize_ip(peer);
        }
        let hops = x_forwarded_for.map(x_forwarded_for_nearest_first);
        self.resolve(peer, hops.into_iter().flatten())
    }

    /// The client address given the socket `peer` and the request's RFC 7239 `Forwarded` value
    /// (several header lines joined with `,`), walking its `for=` nodes from the right.
    pub fn client_ip_forwarded(&self, peer: IpAddr, forwarded: Option<&str>) -> IpAddr {
        if !self.is_enabled() {
            return normalize_ip(peer);
        }
        let hops = forwarded.map(parse_forwarded).unwrap_or_default();
        self.resolve(peer, hops.into_iter().rev())
    }

    /// The walk itself, over hops given nearest first (the rightmost entry first): starting
    /// at `peer`, step to the next hop while the current address is trusted; stop at an
    /// untrusted address (the client) or at a hop that is not an address (the current, last
    /// valid address is the client).
    ///
    /// ```
    /// use ratewall::keys::{Hop, TrustProxy};
    /// let peer = "127.0.0.1".parse()?;
    /// let hops = [Hop::Ip("10.0.0.7".parse()?), Hop::Invalid, Hop::Ip("6.6.6.6".parse()?)];
    /// let trust: TrustProxy = "loopback, uniquelocal".parse().unwrap();
    /// assert_eq!(trust.resolve(peer, hops).to_string(), "10.0.0.7");
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn resolve(
        &self,
        peer: IpAddr,
        hops_nearest_first: impl IntoIterator<Item = Hop>,
    ) -> IpAddr {
        let mut hops = hops_nearest_first.into_iter();
        let mut client = normalize_ip(peer);
        let mut index = 0;
        while self.trusts(client, index) {
            match hops.next() {
                Some(Hop::Ip(ip)) => client = normalize_ip(ip),
                _ => break,
            }
            index += 1;
        }
        client
    }
}

/// The networks behind Express's names; `None` for any other word.
fn named_networks(name: &str) -> Option<&'static [&'static str]> {
    const NAMES: &[(&str, &[&str])] = &[
        ("loopback", &["127.0.0.0/8", "::1/128"]),
        ("linklocal", &["169.254.0.0/16", "fe80::/10"]),
        (
            "uniquelocal",
            &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
        ),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, nets)| nets)
}

/// `10.0.0.0/8`, `10.0.0.0/255.0.0.0` or a bare address; IPv4-mapped networks become IPv4.
fn parse_network(entry: &str) -> Option<IpNet> {
    let net = match entry.split_once('/') {
        None => IpNet::from(entry.parse::<IpAddr>().ok()?),
        Some((addr, mask)) => {
            let addr: IpAddr = addr.trim().parse().ok()?;
            let mask = mask.trim();
            if !mask.is_empty() && mask.bytes().all(|b| b.is_ascii_digit()) {
                IpNet::new(addr, mask.parse().ok()?).ok()?
            } else {
                let mask: IpAddr = mask.parse().ok()?;
                if mask.is_ipv4() != addr.is_ipv4() {
                    return None;
                }
                IpNet::with_netmask(addr, mask).ok()?
            }
        }
    };
    Some(unmap_network(net).trunc())
}

/// `::ffff:10.0.0.0/104` is `10.0.0.0/8`: mapped addresses are matched as IPv4.
fn unmap_network(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

fn push_entry(entry: &str, nets: &mut Vec<IpNet>) -> Result<(), KeyError> {
    let invalid = || KeyError::InvalidTrustProxy {
        entry: excerpt(entry),
    };
    if let Some(named) = named_networks(entry) {
        nets.extend(named.iter().filter_map(|net| parse_network(net)));
        return Ok(());
    }
    nets.push(parse_network(entry).ok_or_else(invalid)?);
    Ok(())
}

impl FromStr for TrustProxy {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<TrustProxy, KeyError> {
        let s = s.trim();
        let invalid = || KeyError::InvalidTrustProxy { entry: excerpt(s) };
        if s.eq_ignore_ascii_case("false") {
            return Ok(TrustProxy::None);
        }
        if s.eq_ignore_ascii_case("true") {
            return Ok(TrustProxy::All);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(TrustProxy::Hops).map_err(|_| invalid());
        }
        let mut nets = Vec::new();
        for entry in s.split(',').map(str::trim) {
            push_entry(entry, &mut nets)?;
        }
        Ok(TrustProxy::Cidrs(nets))
    }
}

impl fmt::Display for TrustProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustProxy::None => f.write_str("false"),
            TrustProxy::All => f.write_str("true"),
            TrustProxy::Hops(n) => write!(f, "{n}"),
            TrustProxy::Cidrs(nets) if nets.is_empty() => f.write_str("false"),
            TrustProxy::Cidrs(nets) => {
                for (i, net) in nets.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{net}")?;
                }
                Ok(())
            }
        }
    }
}

/// A trust proxy setting that is probably wrong, found by [`trust_proxy_warning`].
///
/// Bindings log each kind once per limiter, like express-rate-limit's validations.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrustProxyWarning {
    /// Forwarding headers arrive but trust proxy is off: every client behind the proxy has
    /// the proxy's address, so all of them share one quota.
    UnexpectedXForwardedFor,
    /// Trust proxy is `true`: the client writes the leftmost entry, so it picks its own key
    /// and can bypass the limit.
    PermissiveTrustProxy,
}

impl TrustProxyWarning {
    /// A stable identifier: `unexpected_x_forwarded_for` or `permissive_trust_proxy`.
    pub const fn code(self) -> &'static str {
        match self {
            TrustProxyWarning::UnexpectedXForwardedFor => "unexpected_x_forwarded_for",
            TrustProxyWarning::PermissiveTrustProxy => "permissive_trust_proxy",
        }
    }

    /// What is wrong and what to do, in one sentence.
    pub const fn message(self) -> &'static str {
        match self {
            TrustProxyWarning::UnexpectedXForwardedFor => {
                "X-Forwarded-For is set but trust proxy is off: all clients behind the proxy \
                 share one key; set trust proxy to the number of proxies in front of the app"
            }
            TrustProxyWarning::PermissiveTrustProxy => {
                "trust proxy is true: clients can put any address in X-Forwarded-For and choose \
                 their own key to bypass the limit; set trust proxy to the number of proxies in \
                 front of the app"
            }
        }
    }
}

impl fmt::Display for TrustProxyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// The warning, if any, for a request under this trust setting, in the spirit of
/// express-rate-limit's validations: [`PermissiveTrustProxy`] whenever trust is `true`;
/// [`UnexpectedXForwardedFor`] when the request has a forwarding header (`X-Forwarded-For`,
/// or `Forwarded`) but the setting ignores headers.
///
/// [`PermissiveTrustProxy`]: TrustProxyWarning::PermissiveTrustProxy
/// [`UnexpectedXForwardedFor`]: TrustProxyWarning::UnexpectedXForwardedFor
///
/// ```
/// use ratewall::keys::{trust_proxy_warning, TrustProxy, TrustProxyWarning};
/// let warning = trust_proxy_warning(&TrustProxy::None, true);
/// assert_eq!(warning, Some(TrustProxyWarning::UnexpectedXForwardedFor));
/// assert_eq!(trust_proxy_warning(&TrustProxy::Hops(1), true), None);
/// assert_eq!(trust_proxy_warning(&TrustProxy::None, false), None);
/// ```
pub fn trust_proxy_warning(
    trust: &TrustProxy,
    x_forwarded_for_present: bool,
) -> Option<TrustProxyWarning> {
    match trust {
        TrustProxy::All => Some(TrustProxyWarning::PermissiveTrustProxy),
        _ if x_forwarded_for_present && !trust.is_enabled() => {
            Some(TrustProxyWarning::UnexpectedXForwardedFor)
        }
        _ => None,
    }
}
