//! The one shape every decision has, in every language.

/// The answer to "may this client do this now?".
///
/// All durations are nanoseconds on the caller's clock. The same five fields are what the HTTP
/// layer renders into `Retry-After` and the rate-limit headers, and what the C, Python and Node
/// bindings return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Whether the request was admitted (for [`check`](crate::RateLimiter::check): and its
    /// permits taken).
    pub allowed: bool,
    /// The most permits available at once: `burst` for the token bucket, `limit` for the windows
    /// and the log. This is what `X-RateLimit-Limit` shows.
    pub limit: u64,
    /// Permits left right after this decision.
    pub remaining: u64,
    /// Nanoseconds until the same request could be admitted; `0` when allowed.
    pub retry_after: u64,
    /// Nanoseconds until the limiter is back to full (token bucket, log, sliding counter) or the
    /// current window resets (fixed window).
    pub reset_after: u64,
}

impl Decision {
    /// `true` when the request was denied: the "wait" case. (The "never" case is an error,
    /// [`CheckError::InsufficientCapacity`](crate::CheckError::InsufficientCapacity).)
    #[inline]
    pub const fn is_denied(&self) -> bool {
        !self.allowed
    }
}
