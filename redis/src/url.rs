//! Storage URLs: one syntax in every language.
//!
//! | URL | meaning |
//! |---|---|
//! | `redis://[user:password@]host[:port][/db]` | TCP, port 6379 and database 0 by default |
//! | `rediss://[user:password@]host[:port][/db]` | TLS (feature `tls`, on by default; the system's root certificates) |
//! | `rediss://host[:port][/db]#insecure` | TLS without checking the server's certificate: for self-signed test servers only |
//! | `redis+unix:///path/to/redis.sock[?db=N&user=U&pass=P]` | Unix socket (`unix://` is accepted too) |
//! | `redis+cluster://[user:password@]host:port[,host:port…]` | Redis Cluster from one or more seed nodes (feature `cluster`) |
//! | `rediss+cluster://[user:password@]host:port[,host:port…][#insecure]` | Redis Cluster over TLS (features `cluster` and `tls`): every node, as `rediss://` |
//!
//! Anything else (`memory://`, `http://`, a bare host name) is an [`Error::Url`] that names the
//! accepted forms. Passwords never appear in [`StorageUrl`]'s `Display` or `Debug`.

use std::fmt;
use std::str::FromStr;

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::Error;

/// Where Redis is: one server, or the seed nodes of a cluster.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Single(Box<ConnectionInfo>),
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Cluster(Vec<ConnectionInfo>),
}

/// A parsed, validated storage URL.
///
/// ```
/// use ratewall_redis::StorageUrl;
/// let url: StorageUrl = "redis://:s3cret@127.0.0.1:6380/2".parse()?;
/// assert_eq!(url.to_string(), "redis://:***@127.0.0.1:6380/2");
/// assert!("memory://".parse::<StorageUrl>().is_err());
/// assert!("http://localhost".parse::<StorageUrl>().is_err());
/// # Ok::<(), ratewall_redis::Error>(())
/// ```
#[derive(Clone)]
pub struct StorageUrl {
    pub(crate) target: Target,
    redacted: String,
}

const FORMS: &str = "use redis://host[:port][/db], rediss://host[:port][/db], \
                     redis+unix:///path/to/socket, redis+cluster://host:port[,host:port] or \
                     rediss+cluster://host:port[,host:port]";

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k == "pass" || k == "password" => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn single(url: &str) -> Result<ConnectionInfo, Error> {
    url.into_connection_info()
        .map_err(|e| Error::Url(format!("{}: {e}", redact(url))))
}

impl FromStr for StorageUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let url = s.trim();
        let redacted = redact(url);
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::Url(format!("{redacted:?} has no scheme: {FORMS}")));
        };
        let target = match scheme.to_ascii_lowercase().as_str() {
            "redis" => {
                if rest.is_empty() || rest.starts_with('/') {
                    return Err(Error::Url(format!("{redacted:?} names no host: {FORMS}")));
                }
                Target::Single(Box::new(single(url)?))
            }
            "rediss" => {
                if cfg!(not(feature = "tls")) {
                    return Err(Error::Url(format!(
                        "{redacted:?}: this build has no TLS support (enable feature `tls`)"
                    )));
                }
                if rest.is_empty() || rest.starts_with('/') {
                    return Err(Error::Url(format!("{redacted:?} names no host: {FORMS}")));
                }
                Target::Single(Box::new(single(url)?))
            }
            "redis+unix" | "unix" => {
                let path = rest.split('?').next().unwrap_or("");
                if !path.starts_with('/') || path.len() < 2 {
                    return Err(Error::Url(format!(
                        "{redacted:?} needs an absolute socket path: redis+unix:///path/to/redis.sock"
                    )));
                }
                Target::Single(Box::new(single(&format!("redis+unix://{rest}"))?))
            }
            cluster @ ("redis+cluster" | "rediss+cluster") => {
                if cfg!(not(feature = "cluster")) {
                    return Err(Error::Url(format!(
                        "{redacted:?}: this build has no cluster support (enable feature `cluster`)"
                    )));
                }
                let tls = cluster == "rediss+cluster";
                if tls && cfg!(not(feature = "tls")) {
                    return Err(Error::Url(format!(
                        "{redacted:?}: this build has no TLS support (enable feature `tls`)"
                    )));
                }
                // `#insecure` (TLS without checking certificates, test servers only) applies to
                // every node, so it is taken off the whole URL and put on each seed.
                let (rest, fragment) = match rest.strip_suffix("#insecure") {
                    Some(r) if tls => (r, "#insecure"),
                    _ => (rest, ""),
                };
                let scheme = if tls { "rediss" } else { "redis" };
                let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(authority_end);
                if !tail.is_empty() && tail != "/" && tail != "/0" {
                    return Err(Error::Url(format!(
                        "{redacted:?}: Redis Cluster has only database 0 and takes no options"
                    )));
                }
                let (userinfo, hosts) = match authority.rsplit_once('@') {
                    Some((u, h)) => (format!("{u}@"), h),
                    None => (String::new(), authority),
                };
                let seeds = hosts
                    .split(',')
                    .map(|h| {
                        if h.is_empty() {
                            return Err(Error::Url(format!(
                                "{redacted:?} has an empty seed node: {FORMS}"
                            )));
                        }
                        single(&format!("{scheme}://{userinfo}{h}{fragment}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Target::Cluster(seeds)
            }
            "memory" => {
                return Err(Error::Url(format!(
                    "{redacted:?} is the in-process store: use ratewall::policy::Policy \
                     (or ratewall_redis::Limiters, which picks it from the URL)"
                )))
            }
            other => {
                return Err(Error::Url(format!(
                    "{redacted:?}: unknown scheme {other:?}: {FORMS}"
                )))
            }
        };
        Ok(StorageUrl { target, redacted })
    }
}

impl StorageUrl {
    /// `true` for `redis+cluster://` and `rediss+cluster://`.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// `true` for `rediss://` and `rediss+cluster://` (TLS).
    pub fn is_tls(&self) -> bool {
        let tls =
            |info: &ConnectionInfo| matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        match &self.target {
            Target::Single(info) => tls(info),
            Target::Cluster(seeds) => seeds.first().is_some_and(tls),
        }
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageUrl({:?})", self.redacted)
    }
}

/// `true` when `url` selects the in-process store (`memory://`, or empty).
pub fn is_memory_url(url: &str) -> bool {
    let url = url.trim();
    url.is_empty() || url.to_ascii_lowercase().starts_with("memory://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        url.parse::<StorageUrl>().unwrap_err().to_string()
    }

    #[test]
    fn accepted_forms() {
        for url in [
            "redis://localhost",
            "redis://127.0.0.1:6380/3",
            "redis://user:pw@host:1/0",
            "redis+unix:///tmp/redis.sock",
            "redis+unix:///tmp/redis.sock?db=2",
            "unix:///tmp/redis.sock",
        ] {
            assert!(url.parse::<StorageUrl>().is_ok(), "{url}");
        }
        #[cfg(feature = "tls")]
        assert!("rediss://cache.example:6380".parse::<StorageUrl>().is_ok());
        #[cfg(feature = "cluster")]
        {
            let url: StorageUrl = "redis+cluster://:pw@a:7000,b:7001".parse().unwrap();
            assert!(url.is_cluster());
            assert_eq!(url.to_string(), "redis+cluster://:***@a:7000,b:7001");
            assert!(!url.is_tls());
            #[cfg(feature = "tls")]
            for text in [
                "rediss+cluster://:pw@a:7000,b:7001",
                "rediss+cluster://a:7000#insecure",
            ] {
                let url: StorageUrl = text.parse().unwrap();
                assert!(url.is_cluster() && url.is_tls(), "{text}");
                let Target::Cluster(seeds) = &url.target else {
                    unreachable!()
                };
                let insecure = text.ends_with("#insecure");
                for seed in seeds {
                    assert!(
                        matches!(seed.addr(), redis::ConnectionAddr::TcpTls { insecure: i, .. } if *i == insecure),
                        "{text}: {seed:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn rejected_forms_say_why() {
        assert!(err("memory://").contains("in-process"));
        assert!(err("http://localhost").contains("unknown scheme \"http\""));
        assert!(err("localhost:6379").contains("no scheme"));
        assert!(err("redis://").contains("names no host"));
        assert!(err("redis+unix://relative.sock").contains("absolute socket path"));
        assert!(err("redis://host:notaport").contains("redis://host:notaport"));
        #[cfg(feature = "cluster")]
        {
            assert!(err("redis+cluster://a:1,,b:2").contains("empty seed"));
            assert!(err("redis+cluster://a:1/3").contains("database 0"));
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
        assert_eq!(
            redact("redis+unix:///s.sock?db=1&pass=secret"),
            "redis+unix:///s.sock?db=1&pass=***"
        );
        assert!(!err("redis://u:secret@h:xx").contains("secret"));
        assert!(
            !format!("{:?}", "redis://u:secret@h".parse::<StorageUrl>().unwrap())
                .contains("secret")
        );
    }

    #[test]
    fn memory_urls() {
        assert!(is_memory_url("memory://"));
        assert!(is_memory_url(""));
        assert!(!is_memory_url("redis://x"));
    }
}
