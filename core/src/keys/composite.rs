//! Composite keys: named parts joined so that different parts never give the same key.

use std::net::IpAddr;
use std::string::String;

use super::ip::ip_key;
use super::DEFAULT_IPV6_SUBNET;

/// Builds one key from named parts: `ip=203.0.113.7&user=alice`.
///
/// Each part is written `name=value` and parts are joined with `&`; in names and values, `\`,
/// `=` and `&` are escaped with a `\`. The encoding is injective: two different lists of
/// (name, value) parts never build the same key, whatever characters they hold. Order matters:
/// `ip` then `user` is a different key from `user` then `ip`.
///
/// ```
/// use ratewall::keys::KeyBuilder;
/// let a = KeyBuilder::new().part("x", "a&y=b").build();
/// let b = KeyBuilder::new().part("x", "a").part("y", "b").build();
/// assert_eq!(a, r"x=a\&y\=b");
/// assert_eq!(b, "x=a&y=b");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyBuilder {
    key: String,
}

impl KeyBuilder {
    /// A builder with no parts (which builds the empty key).
    pub fn new() -> KeyBuilder {
        KeyBuilder { key: String::new() }
    }

    /// Adds the part `name=value`.
    pub fn part(mut self, name: &str, value: &str) -> KeyBuilder {
        // Every part writes at least `=`, so an empty key means no parts yet.
        if !self.key.is_empty() {
            self.key.push('&');
        }
        escape_into(&mut self.key, name);
        self.key.push('=');
        escape_into(&mut self.key, value);
        self
    }

    /// Adds `ip=<ip_key(ip, DEFAULT_IPV6_SUBNET)>`: the address, IPv6 masked to /56.
    ///
    /// For another subnet, add `part("ip", &ip_key(ip, subnet)?)`.
    pub fn ip(self, ip: IpAddr) -> KeyBuilder {
        let key = ip_key(ip, DEFAULT_IPV6_SUBNET).unwrap_or_default();
        self.part("ip", &key)
    }

    /// Adds `user=<id>`: an account, user id or email.
    pub fn user(self, id: &str) -> KeyBuilder {
        self.part("user", id)
    }

    /// Adds `apikey=<key>`.
    pub fn api_key(self, key: &str) -> KeyBuilder {
        self.part("apikey", key)
    }

    /// Adds `route=<route>`: a route or endpoint name, such as `POST /login`.
    pub fn route(self, route: &str) -> KeyBuilder {
        self.part("route", route)
    }

    /// The key.
    pub fn build(self) -> String {
        self.key
    }
}

/// The key [`KeyBuilder`] builds from these (name, value) parts, in order.
///
/// ```
/// use ratewall::keys::composite_key;
/// assert_eq!(composite_key([("ip", "203.0.113.7"), ("user", "alice")]), "ip=203.0.113.7&user=alice");
/// assert_ne!(composite_key([("k", "a:b"), ("k", "c")]), composite_key([("k", "a"), ("k", "b:c")]));
/// ```
pub fn composite_key<'a>(parts: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    parts
        .into_iter()
        .fold(KeyBuilder::new(), |builder, (name, value)| {
            builder.part(name, value)
        })
        .build()
}

fn escape_into(out: &mut String, s: &str) {
    out.reserve(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '=' | '&') {
            out.push('\\');
        }
        out.push(c);
    }
}
