//! Errors: construction errors (bad URL, unreachable server, a policy Redis cannot run) and the
//! runtime failures that the fail mode turns into decisions.

use std::fmt;

use ratewall::config::ConfigError;
use ratewall::policy::PolicyError;

/// Why a Redis-backed limiter could not be built, or why Redis could not answer.
///
/// Construction returns these as `Err`. In the request path (`check`, `peek`, `refund`) a Redis
/// failure is never returned: the policy's fail mode decides, and the error reaches the
/// [`on_event`](crate::RedisOptions::on_event) callback and the [`Health`](crate::Health)
/// counters instead.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The storage URL is not one this crate understands. The message says what would be valid.
    Url(String),
    /// An option is out of range (a zero timeout, a local fraction outside `(0, 1]`, …).
    Option(String),
    /// The policy cannot run on Redis (a period that is not whole microseconds, a limit beyond
    /// the exact range of the scripts, braces in a name, …).
    Policy(String),
    /// The core rejected the policy itself.
    Core(PolicyError),
    /// The configuration could not be applied.
    Config(ConfigError),
    /// No connection to Redis could be made within the connect timeout.
    Connect(String),
    /// Redis did not answer within the command timeout.
    Timeout,
    /// The connection is down and is being re-established in the background; no command was
    /// sent.
    Unavailable,
    /// Redis answered with an error (a script error, a key of the wrong type, an
    /// authentication failure, …).
    Server(String),
    /// The connection failed while a command was in flight.
    Io(String),
    /// Redis answered, but not with the shape the script returns.
    Protocol(String),
}

impl Error {
    /// `true` for failures of the connection itself (timeouts, I/O errors, no connection): these
    /// mark the store down and start a reconnection.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Error::Connect(_) | Error::Timeout | Error::Unavailable | Error::Io(_)
        )
    }

    pub(crate) fn from_redis(e: &redis::RedisError) -> Error {
        if e.is_timeout() {
            Error::Timeout
        } else if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            Error::Io(e.to_string())
        } else {
            Error::Server(e.to_string())
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(m) => write!(f, "invalid storage URL: {m}"),
            Error::Option(m) => write!(f, "invalid Redis option: {m}"),
            Error::Policy(m) => write!(f, "policy cannot run on Redis: {m}"),
            Error::Core(e) => write!(f, "invalid policy: {e}"),
            Error::Config(e) => write!(f, "{e}"),
            Error::Connect(m) => write!(f, "cannot connect to Redis: {m}"),
            Error::Timeout => f.write_str("Redis did not answer within the command timeout"),
            Error::Unavailable => {
                f.write_str("Redis connection is down; reconnecting in the background")
            }
            Error::Server(m) => write!(f, "Redis error: {m}"),
            Error::Io(m) => write!(f, "Redis connection failed: {m}"),
            Error::Protocol(m) => write!(f, "unexpected Redis reply: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Self {
        Error::Core(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}
