//! Structured Field (RFC 8941 / RFC 9651) pieces: strings and integers.

use core::fmt::{self, Write};

/// The largest Structured Field Integer (15 decimal digits, RFC 8941 §3.3.1).
pub const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// Clamps `v` to a valid Structured Field Integer (saturating at [`SF_INTEGER_MAX`]). Every
/// value in the `RateLimit*` headers goes through this; it only ever matters for quotas above
/// 10^15, far beyond anything a limiter counts.
#[inline]
pub(crate) const fn sf_int(v: u64) -> u64 {
    if v > SF_INTEGER_MAX {
        SF_INTEGER_MAX
    } else {
        v
    }
}

/// A character a Structured Field String cannot hold.
///
/// sf-string allows printable ASCII only (`0x20..=0x7E`); `"` and `\` are escaped. Anything else
/// (control characters such as CR/LF, DEL, any non-ASCII character) is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InvalidSfString {
    /// Byte offset of the offending character.
    pub index: usize,
    /// The offending character.
    pub ch: char,
}

impl fmt::Display for InvalidSfString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "character {:?} at byte {} is not printable ASCII; header names (Structured Field \
             strings) may only use characters from ' ' to '~'",
            self.ch, self.index
        )
    }
}

impl std::error::Error for InvalidSfString {}

/// Checks that `s` can be sent as a Structured Field String without change: every character is
/// printable ASCII (`' '..='~'`). Use it to reject bad policy names when configuration is
/// loaded; at render time, invalid characters are replaced by `?` instead (see
/// [`LimitInfo::name`](super::LimitInfo::name)).
///
/// ```
/// use ratewall::http::check_sf_string;
/// assert!(check_sf_string(r#"api "v2" \ burst"#).is_ok()); // escaped when rendered
/// let err = check_sf_string("api\r\nX-Evil: 1").unwrap_err();
/// assert_eq!((err.index, err.ch), (3, '\r'));
/// ```
pub fn check_sf_string(s: &str) -> Result<(), InvalidSfString> {
    match s.char_indices().find(|&(_, c)| !is_sf_char(c)) {
        Some((index, ch)) => Err(InvalidSfString { index, ch }),
        None => Ok(()),
    }
}

#[inline]
const fn is_sf_char(c: char) -> bool {
    matches!(c, ' '..='~')
}

/// Renders `s` as a quoted sf-string: `"` and `\` escaped with `\`, every character outside
/// printable ASCII replaced by `?` (one `?` per character, so the output is always a valid
/// field value and can never split the header line).
pub(crate) struct SfString<'a>(pub &'a str);

impl fmt::Display for SfString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        let mut rest = self.0;
        while let Some(i) = rest.find(|c: char| !is_sf_char(c) || c == '"' || c == '\\') {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or('?');
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                _ => f.write_char('?')?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)?;
        f.write_char('"')
    }
}
