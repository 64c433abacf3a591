//! The pieces of express-rate-limit v8 that are more than "print an integer": the draft-8
//! default identifier (with JavaScript's number formatting) and the draft-8 partition key.
//!
//! Upstream: express-rate-limit v8, `source/rate-limit.ts` (`identifier` default in
//! `parseOptions`) and `source/headers.ts` (`getPartitionKey`).

use core::fmt::{self, Write};
use std::string::{String, ToString};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Formats an `f64` exactly as JavaScript's `Number.prototype.toString()` does (what a template
/// literal `${x}` produces): the shortest digits that round-trip (Rust's `{}` picks the same
/// digits), plain decimal for `1e-6 <= |x| < 1e21`, otherwise exponent form with an explicit
/// sign (`1e+21`, `1.5e-7`).
pub(crate) struct JsNumber(pub f64);

impl fmt::Display for JsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x.is_infinite() {
            return f.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
        }
        if x == 0.0 {
            return f.write_str("0"); // JS prints -0 as "0" too
        }
        let a = x.abs();
        if (1e-6..1e21).contains(&a) {
            return write!(f, "{x}");
        }
        // Rust writes `1e21` / `1.5e-7`; JS writes `1e+21` / `1.5e-7`.
        let mut buf = StackStr::<40>::new();
        write!(buf, "{x:e}")?;
        let s = buf.as_str();
        match s.find('e') {
            Some(i) if !s[i + 1..].starts_with('-') => {
                f.write_str(&s[..=i])?;
                f.write_char('+')?;
                f.write_str(&s[i + 1..])
            }
            _ => f.write_str(s),
        }
    }
}

/// express-rate-limit's default draft-8 identifier, `${limit}-in-${duration}`.
///
/// Upstream (`source/rate-limit.ts`, `identifier` default), with `windowMs` in milliseconds:
///
/// ```text
/// const seconds = config.windowMs / 1000
/// const minutes = config.windowMs / (1000 * 60)
/// const hours = config.windowMs / (1000 * 60 * 60)
/// const days = config.windowMs / (1000 * 60 * 60 * 24)
/// if (seconds < 60) duration = `${seconds}sec`
/// else if (minutes < 60) duration = `${minutes}min`
/// else if (hours < 24) duration = `${hours}hr${hours > 1 ? 's' : ''}`
/// else duration = `${days}day${days > 1 ? 's' : ''}`
/// return `${limit}-in-${duration}`
/// ```
///
/// The same IEEE-754 divisions are done here on `window_ns / 1e6` (exact for every window that
/// is a whole number of milliseconds below 2^53 ns, i.e. every window express-rate-limit can be
/// configured with), and printed with [`JsNumber`], so the result is byte-identical: `1sec`,
/// `30sec`, `1.5sec`, `1min`, `1.5min`, `1hr`, `2hrs`, `1day`, `7days`.
pub(crate) struct Identifier {
    pub limit: u64,
    pub window_ns: u64,
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let window_ms = self.window_ns as f64 / 1e6;
        let seconds = window_ms / 1000.0;
        let minutes = window_ms / 60_000.0;
        let hours = window_ms / 3_600_000.0;
        let days = window_ms / 86_400_000.0;
        write!(f, "{}-in-", self.limit)?;
        if seconds < 60.0 {
            write!(f, "{}sec", JsNumber(seconds))
        } else if minutes < 60.0 {
            write!(f, "{}min", JsNumber(minutes))
        } else if hours < 24.0 {
            write!(
                f,
                "{}hr{}",
                JsNumber(hours),
                if hours > 1.0 { "s" } else { "" }
            )
        } else {
            write!(
                f,
                "{}day{}",
                JsNumber(days),
                if days > 1.0 { "s" } else { "" }
            )
        }
    }
}

/// express-rate-limit's default draft-8 identifier for a limit of `limit` per `window_ns`
/// nanoseconds: `${limit}-in-${duration}`, byte-identical to upstream.
///
/// ```
/// use ratewall::http::default_identifier;
/// use ratewall::time::{HOUR, MINUTE, SECOND};
///
/// assert_eq!(default_identifier(100, MINUTE), "100-in-1min");
/// assert_eq!(default_identifier(5, 2 * HOUR), "5-in-2hrs");
/// assert_eq!(default_identifier(10, 1_500 * SECOND / 1_000), "10-in-1.5sec");
/// ```
pub fn default_identifier(limit: u64, window_ns: u64) -> String {
    Identifier { limit, window_ns }.to_string()
}

/// The draft-8 partition key exactly as express-rate-limit computes it (`source/headers.ts`,
/// `getPartitionKey`): the first 12 hex characters of SHA-256(key), as ASCII, base64-encoded.
///
/// ```text
/// const hash = createHash('sha256'); hash.update(key)
/// const partitionKey = hash.digest('hex').slice(0, 12)
/// return Buffer.from(partitionKey).toString('base64')
/// ```
///
/// It identifies the client's bucket to the client (48 bits of an unkeyed hash: not a secret;
/// anyone who can guess the key, e.g. an IPv4 address, can confirm it). Pass a keyed hash as the
/// key if even that is too much.
///
/// ```
/// assert_eq!(ratewall::http::partition_key("foo"), "MmMyNmI0NmI2OGZm");
/// ```
pub fn partition_key(key: &str) -> String {
    let pk = partition_key_bytes(key);
    // Base64 output is ASCII.
    core::str::from_utf8(&pk).unwrap_or_default().to_string()
}

/// [`partition_key`] without allocating: 12 ASCII bytes encode to exactly 16 base64 characters,
/// no padding.
pub(crate) fn partition_key_bytes(key: &str) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = [0u8; 12];
    for (i, b) in digest.iter().take(6).enumerate() {
        hex[2 * i] = HEX[usize::from(b >> 4)];
        hex[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
    let mut out = [0u8; 16];
    // 12 input bytes always need exactly 16 output bytes, so this cannot fail.
    let n = STANDARD.encode_slice(hex, &mut out).unwrap_or(0);
    debug_assert_eq!(n, 16);
    out
}

/// A fixed-capacity string on the stack, for formatting without allocation.
pub(crate) struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackStr<N> {
    pub(crate) const fn new() -> Self {
        StackStr {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::JsNumber;
    use std::string::ToString;

    #[test]
    fn js_number_to_string() {
        // Expected values printed by node: `String(x)`.
        for (x, js) in [
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (24.85513480324074, "24.85513480324074"),
        ] {
            assert_eq!(JsNumber(x).to_string(), js, "{x:e}");
        }
    }
}
