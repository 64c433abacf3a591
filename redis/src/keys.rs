//! Redis key names: prefix, policy, keyed hash of the client key, limit.
//!
//! ```text
//! {prefix}:{{policy}:{hash}}:{algorithm}:{limit}:{period_us}
//! ratewall:{api:Jx0Qy4mE8bqkEo2lQ0dYyA}:tb:10:1000000
//! ```
//!
//! - `hash` is HMAC-SHA256 of the client key's bytes under the key secret, first 16 bytes,
//!   base64url without padding (22 characters). The raw client key (an email, an API key, an IP)
//!   never reaches Redis. Every process and language that uses the same secret computes the same
//!   name, so a polyglot fleet shares state.
//! - The part in braces is the Redis Cluster hash tag: every limit of one policy for one client
//!   lives in one slot, so one script can update them atomically.
//! - The algorithm and the limit's own parameters end the name, so editing a policy's limits or
//!   algorithm starts fresh state instead of reading state written under other rules.
//!
//! # The secret
//!
//! [`RedisOptions::key_secret`](crate::RedisOptions::key_secret), else the environment variable
//! `RATEWALL_KEY_SECRET`, else the public default [`DEFAULT_KEY_SECRET`]. With the default the
//! names still hide client keys from a casual reader of Redis, but anyone who knows a client key
//! can compute its name (and guess short keys by brute force): set a secret of your own, the same
//! in every process of the fleet.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secret used when none is configured (public: set your own, see the module docs).
pub const DEFAULT_KEY_SECRET: &[u8] = b"ratewall-default-key-secret-v1";

/// Environment variable holding the key secret when the options carry none.
pub const KEY_SECRET_ENV: &str = "RATEWALL_KEY_SECRET";

/// Computes the keyed hash of client keys.
#[derive(Clone)]
pub struct KeyHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(..)")
    }
}

impl KeyHasher {
    /// A hasher under `secret` (any length; HMAC accepts every key).
    pub fn new(secret: &[u8]) -> KeyHasher {
        KeyHasher {
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    /// The 22-character name part for `client_key`.
    ///
    /// ```
    /// use ratewall_redis::KeyHasher;
    /// let h = KeyHasher::new(b"fleet secret");
    /// assert_eq!(h.hash(b"alice"), h.hash(b"alice"));
    /// assert_ne!(h.hash(b"alice"), KeyHasher::new(b"other").hash(b"alice"));
    /// assert_eq!(h.hash(b"alice").len(), 22);
    /// ```
    pub fn hash(&self, client_key: &[u8]) -> String {
        self.hashed(client_key).as_str().to_owned()
    }

    /// [`hash`](Self::hash) without a heap allocation (the request path makes one per
    /// decision).
    pub(crate) fn hashed(&self, client_key: &[u8]) -> HashedKey {
        let mut mac = self.mac.clone();
        mac.update(client_key);
        let digest = mac.finalize().into_bytes();
        let mut text = [0u8; HASHED_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(&digest[..16], &mut text)
            .expect("16 bytes take 22 base64 characters");
        debug_assert_eq!(written, HASHED_LEN);
        HashedKey(text)
    }
}

/// Length of a hashed client key: 16 bytes of HMAC-SHA256, unpadded URL-safe base64.
const HASHED_LEN: usize = 22;

/// A hashed client key, as it appears in Redis key names, held inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HashedKey([u8; HASHED_LEN]);

impl HashedKey {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64 is ASCII")
    }
}

/// Checks that a prefix or policy name keeps the hash tag intact.
pub(crate) fn check_name_part(what: &str, value: &str) -> Result<(), crate::Error> {
    if value.contains(['{', '}']) {
        return Err(crate::Error::Policy(format!(
            "{what} {value:?} contains '{{' or '}}', which would break the Redis Cluster hash tag"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") starts with
        // f7bc83f430538424b13298e6aa6fb143 (RFC 4231 style test vector from Wikipedia).
        let h = KeyHasher::new(b"key").hash(b"The quick brown fox jumps over the lazy dog");
        let bytes = URL_SAFE_NO_PAD.decode(h).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "f7bc83f430538424b13298e6aa6fb143");
    }

    #[test]
    fn braces_are_rejected() {
        assert!(check_name_part("policy", "a{b").is_err());
        assert!(check_name_part("policy", "api").is_ok());
    }
}
