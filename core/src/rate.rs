//! Rate strings: `10/minute`, `5 per 10 minutes`, `100/day; 10/hour`, `60/min`, `10/2h`.
//!
//! Limits are configuration, and configuration is text: a config file, an environment variable
//! (`RATEWALL_*`), a Flask-Limiter decorator, an Express option. This module turns that text
//! into [`Rate`]s, and each rate into the [`Quota`] the algorithms take. One parser, here, serves
//! every binding, so `"10/minute"` means the same thing in C, Python and Node.
//!
//! # Grammar
//!
//! A superset of the grammar of Python's `limits` (and so of Flask-Limiter):
//!
//! ```text
//! rates    = item *( sep item )
//! sep      = "," / ";" / "|"
//! item     = count ( "/" / "per" ) [ multiple ] unit
//! count    = 1*DIGIT            ; at least 1
//! multiple = 1*DIGIT            ; at least 1, default 1
//! ```
//!
//! White space (any Unicode white space) is allowed around every token, and the whole string is
//! case-insensitive: `10 PER Minute` is `10/minute`. Units, singular or plural:
//!
//! | unit | accepted spellings | length |
//! |---|---|---|
//! | [`Unit::Millisecond`] | `ms`, `msec`, `msecs`, `millisecond(s)` | 1 ms (ratewall only) |
//! | [`Unit::Second`] | `s`, `sec`, `secs`, `second(s)` | 1 s |
//! | [`Unit::Minute`] | `m`, `min`, `mins`, `minute(s)` | 60 s |
//! | [`Unit::Hour`] | `h`, `hr`, `hrs`, `hour(s)` | 60 min |
//! | [`Unit::Day`] | `d`, `day(s)` | 24 h |
//! | [`Unit::Month`] | `month(s)` | 30 days, as in `limits` |
//! | [`Unit::Year`] | `year(s)` | 360 days, as in `limits` |
//!
//! `m` is a minute, never a month. Weeks are not a unit (as in `limits`): write `7days`.
//! Counts and multiples are whole numbers: write `500ms`, not `0.5s`.
//!
//! # Canonical form
//!
//! A [`Rate`] displays as `<count>/<unit>` when the multiple is 1 and as
//! `<count>/<multiple><unit>s` otherwise, with the long unit name: `10/minute`, `5/10minutes`,
//! `500/7days`, `100/millisecond`. This is the spelling of the `limits` documentation, so a
//! rendered rate is also valid input to Python's `limits` (milliseconds aside). Parsing the
//! rendered form gives back an equal rate, for every rate. A list renders with
//! [`format_rates`]: the items joined by `"; "`.
//!
//! Two rates are equal when count, multiple and unit are equal: `10/60s` and `10/minute` have
//! the same [`Quota`] but are different rates, and each keeps its own spelling.
//!
//! # Errors
//!
//! A bad string is a [`RateParseError`] that says where (byte [`position`] for programs, 1-based
//! character [`column`] for people) and what to do:
//!
//! ```
//! use ratewall::rate::parse_rates;
//!
//! let err = parse_rates("10/minute; 5/fortnight").unwrap_err();
//! assert_eq!(err.position(), 13);
//! assert_eq!(
//!     err.to_string(),
//!     "unknown unit \"fortnight\" at column 14: use ms, second, minute, hour, day, month or \
//!      year (or s, sec, min, m, h, hr, d)"
//! );
//! ```
//!
//! Rejected: the empty string, leading, trailing and doubled separators, counts or multiples
//! that are zero, negative, fractional or beyond `u64`, unknown units, and periods longer than
//! `u64::MAX` nanoseconds (about 584 years). Parsing never panics, whatever the input.
//!
//! [`position`]: RateParseError::position
//! [`column`]: RateParseError::column
//!
//! # Examples
//!
//! ```
//! use ratewall::rate::{parse_rates, Rate, Unit};
//! use ratewall::time::{HOUR, MINUTE};
//!
//! let rates = parse_rates("100/day; 5 per 10 minutes")?;
//! assert_eq!(rates[1].limit(), 5);
//! assert_eq!((rates[1].multiple(), rates[1].unit()), (10, Unit::Minute));
//! assert_eq!(rates[1].quota().period(), 10 * MINUTE);
//! assert_eq!(rates[1].to_string(), "5/10minutes");
//!
//! let rate: Rate = "60/min".parse()?;
//! assert_eq!(rate.to_string(), "60/minute");
//! assert_eq!("10/2h".parse::<Rate>()?.period(), 2 * HOUR);
//! # Ok::<(), ratewall::rate::RateParseError>(())
//! ```

use core::fmt;
use core::str::FromStr;
use std::string::String;
use std::vec::Vec;

use crate::{time, Quota};

/// A unit of time in a rate string.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// One millisecond (`ms`); not in Python's `limits`.
    Millisecond,
    /// One second (`s`, `sec`, `second`).
    Second,
    /// One minute (`m`, `min`, `minute`).
    Minute,
    /// One hour (`h`, `hr`, `hour`).
    Hour,
    /// One day of 24 hours (`d`, `day`).
    Day,
    /// 30 days (`month`), as in Python's `limits`.
    Month,
    /// 360 days (`year`), as in Python's `limits`.
    Year,
}

/// Every accepted spelling of every unit, lower case.
const SPELLINGS: &[(&str, Unit)] = &[
    ("ms", Unit::Millisecond),
    ("msec", Unit::Millisecond),
    ("msecs", Unit::Millisecond),
    ("millisecond", Unit::Millisecond),
    ("milliseconds", Unit::Millisecond),
    ("s", Unit::Second),
    ("sec", Unit::Second),
    ("secs", Unit::Second),
    ("second", Unit::Second),
    ("seconds", Unit::Second),
    ("m", Unit::Minute),
    ("min", Unit::Minute),
    ("mins", Unit::Minute),
    ("minute", Unit::Minute),
    ("minutes", Unit::Minute),
    ("h", Unit::Hour),
    ("hr", Unit::Hour),
    ("hrs", Unit::Hour),
    ("hour", Unit::Hour),
    ("hours", Unit::Hour),
    ("d", Unit::Day),
    ("day", Unit::Day),
    ("days", Unit::Day),
    ("month", Unit::Month),
    ("months", Unit::Month),
    ("year", Unit::Year),
    ("years", Unit::Year),
];

impl Unit {
    /// Every unit, shortest first.
    pub const ALL: [Unit; 7] = [
        Unit::Millisecond,
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Month,
        Unit::Year,
    ];

    /// The length of one unit in nanoseconds.
    ///
    /// ```
    /// use ratewall::rate::Unit;
    /// use ratewall::time::DAY;
    /// assert_eq!(Unit::Month.nanos(), 30 * DAY);
    /// assert_eq!(Unit::Year.nanos(), 360 * DAY);
    /// ```
    pub const fn nanos(self) -> u64 {
        match self {
            Unit::Millisecond => time::MILLISECOND,
            Unit::Second => time::SECOND,
            Unit::Minute => time::MINUTE,
            Unit::Hour => time::HOUR,
            Unit::Day => time::DAY,
            Unit::Month => 30 * time::DAY,
            Unit::Year => 360 * time::DAY,
        }
    }

    /// The canonical singular name: `millisecond`, `second`, `minute`, `hour`, `day`, `month`,
    /// `year`.
    pub const fn name(self) -> &'static str {
        match self {
            Unit::Millisecond => "millisecond",
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    /// The unit spelled `word` (any accepted spelling, case-insensitive), if any.
    ///
    /// ```
    /// use ratewall::rate::Unit;
    /// assert_eq!(Unit::from_name("MINS"), Some(Unit::Minute));
    /// assert_eq!(Unit::from_name("ms"), Some(Unit::Millisecond));
    /// assert_eq!(Unit::from_name("week"), None);
    /// ```
    pub fn from_name(word: &str) -> Option<Unit> {
        SPELLINGS
            .iter()
            .find(|(spelling, _)| spelling.eq_ignore_ascii_case(word))
            .map(|&(_, unit)| unit)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `limit` permits per `multiple` × `unit`: one item of a rate string.
///
/// Build one by parsing (`"5 per 10 minutes".parse()`) or with [`Rate::new`]; use it through
/// [`Rate::quota`]. Its [`Display`](fmt::Display) is the canonical form described in the
/// [module documentation](self), and parses back to an equal rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    quota: Quota,
    multiple: u64,
    unit: Unit,
}

impl Rate {
    /// `limit` permits per `multiple` × `unit`.
    ///
    /// Fails if `limit` or `multiple` is 0, or if the period does not fit in `u64` nanoseconds.
    ///
    /// ```
    /// use ratewall::rate::{Rate, RateErrorKind, Unit};
    /// let rate = Rate::new(5, 10, Unit::Minute)?;
    /// assert_eq!(rate.to_string(), "5/10minutes");
    /// assert_eq!(Rate::new(0, 1, Unit::Second), Err(RateErrorKind::ZeroCount));
    /// # Ok::<(), RateErrorKind>(())
    /// ```
    pub fn new(limit: u64, multiple: u64, unit: Unit) -> Result<Rate, RateErrorKind> {
        if limit == 0 {
            return Err(RateErrorKind::ZeroCount);
        }
        if multiple == 0 {
            return Err(RateErrorKind::ZeroMultiple);
        }
        let period = multiple
            .checked_mul(unit.nanos())
            .ok_or(RateErrorKind::PeriodTooLong)?;
        let quota = Quota::new(limit, period).map_err(|_| RateErrorKind::ZeroCount)?;
        Ok(Rate {
            quota,
            multiple,
            unit,
        })
    }

    /// Permits per period: the count before `/`.
    pub const fn limit(&self) -> u64 {
        self.quota.limit()
    }

    /// How many units make one period (1 unless written, as in `5/10min`).
    pub const fn multiple(&self) -> u64 {
        self.multiple
    }

    /// The unit the period was written in.
    pub const fn unit(&self) -> Unit {
        self.unit
    }

    /// The period in nanoseconds: `multiple × unit`.
    pub const fn period(&self) -> u64 {
        self.quota.period()
    }

    /// The quota this rate stands for, ready for any algorithm.
    pub const fn quota(&self) -> Quota {
        self.quota
    }
}

impl From<Rate> for Quota {
    fn from(rate: Rate) -> Quota {
        rate.quota
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.multiple == 1 {
            write!(f, "{}/{}", self.limit(), self.unit)
        } else {
            write!(f, "{}/{}{}s", self.limit(), self.multiple, self.unit)
        }
    }
}

/// Parses exactly one rate; a list (`10/s; 100/min`) is an error: use [`parse_rates`].
impl FromStr for Rate {
    type Err = RateParseError;

    fn from_str(s: &str) -> Result<Rate, RateParseError> {
        let (mut rates, first_separator) = Parser::new(s).list()?;
        match first_separator {
            Some(at) => Err(RateParseError::new(s, RateErrorKind::MoreThanOneRate, at)),
            None => rates
                .pop()
                .ok_or_else(|| RateParseError::new(s, RateErrorKind::Empty, 0)),
        }
    }
}

/// Parses a list of rates separated by `,`, `;` or `|`: `"10/second; 1000/day"`.
///
/// The rates come back in the order written. See the [module documentation](self) for the
/// grammar and the errors.
///
/// ```
/// use ratewall::rate::parse_rates;
/// let rates = parse_rates("100/day;10/hour")?;
/// assert_eq!(rates.len(), 2);
/// assert_eq!(rates[1].to_string(), "10/hour");
/// assert_eq!(
///     parse_rates("10/hour;").unwrap_err().to_string(),
///     "trailing separator at column 8, found ';': remove it or add a rate after it"
/// );
/// # Ok::<(), ratewall::rate::RateParseError>(())
/// ```
pub fn parse_rates(s: &str) -> Result<Vec<Rate>, RateParseError> {
    Parser::new(s).list().map(|(rates, _)| rates)
}

/// Renders rates in canonical form joined by `"; "`; [`parse_rates`] reads it back.
///
/// ```
/// use ratewall::rate::{format_rates, parse_rates};
/// let rates = parse_rates("10 per second | 1000 per 1 day")?;
/// assert_eq!(format_rates(&rates), "10/second; 1000/day");
/// # Ok::<(), ratewall::rate::RateParseError>(())
/// ```
pub fn format_rates(rates: &[Rate]) -> String {
    let items: Vec<String> = rates.iter().map(|r| std::format!("{r}")).collect();
    items.join("; ")
}

/// What is wrong with a rate; [`RateParseError`] adds where.
///
/// Its [`Display`](fmt::Display) says what is wrong and what to do about it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateErrorKind {
    /// The string is empty or white space only.
    Empty,
    /// Something other than a count where a rate should start.
    ExpectedCount,
    /// A count or multiple with a minus sign.
    NegativeNumber,
    /// A count or multiple with a decimal point.
    Fraction,
    /// A count or multiple larger than `u64::MAX`.
    NumberTooLarge,
    /// A count of 0.
    ZeroCount,
    /// A multiple of 0 (`10/0minutes`).
    ZeroMultiple,
    /// Something other than `/` or `per` after the count.
    ExpectedPer,
    /// No unit where one should be.
    ExpectedUnit,
    /// A word that is not a unit.
    UnknownUnit {
        /// The word (its first 32 characters).
        word: String,
    },
    /// `multiple × unit` does not fit in `u64` nanoseconds.
    PeriodTooLong,
    /// The list starts with a separator.
    LeadingSeparator,
    /// Two separators with no rate between them.
    EmptyItem,
    /// The list ends with a separator.
    TrailingSeparator,
    /// Text after a rate that is neither a separator nor the end.
    ExpectedSeparator,
    /// More than one rate where exactly one is expected ([`Rate::from_str`]).
    MoreThanOneRate,
}

impl RateErrorKind {
    /// What is wrong.
    fn problem(&self) -> String {
        match self {
            RateErrorKind::Empty => "empty rate string".into(),
            RateErrorKind::ExpectedCount => "expected a count such as 10".into(),
            RateErrorKind::NegativeNumber => "negative number".into(),
            RateErrorKind::Fraction => "fractional number".into(),
            RateErrorKind::NumberTooLarge => "number too large".into(),
            RateErrorKind::ZeroCount => "count must be at least 1".into(),
            RateErrorKind::ZeroMultiple => "multiple must be at least 1".into(),
            RateErrorKind::ExpectedPer => "expected '/' or 'per' after the count".into(),
            RateErrorKind::ExpectedUnit => {
                "expected a unit such as second, minute, hour, day (or s, min, h, d)".into()
            }
            RateErrorKind::UnknownUnit { word } => std::format!("unknown unit \"{word}\""),
            RateErrorKind::PeriodTooLong => "period too long".into(),
            RateErrorKind::LeadingSeparator => "leading separator".into(),
            RateErrorKind::EmptyItem => "two separators in a row".into(),
            RateErrorKind::TrailingSeparator => "trailing separator".into(),
            RateErrorKind::ExpectedSeparator => "unexpected text after a rate".into(),
            RateErrorKind::MoreThanOneRate => "expected exactly one rate".into(),
        }
    }

    /// What to do about it; empty when the problem says it all.
    fn fix(&self) -> &'static str {
        match self {
            RateErrorKind::Empty => {
                "write a rate such as 10/minute, or a list such as 100/day; 10/hour"
            }
            RateErrorKind::ExpectedCount => "a rate is <count>/<unit>, such as 10/minute",
            RateErrorKind::NegativeNumber => "counts and multiples must be at least 1",
            RateErrorKind::Fraction => {
                "counts and multiples are whole numbers: use a smaller unit, such as 500ms \
                 instead of 0.5s"
            }
            RateErrorKind::NumberTooLarge => {
                "counts and multiples must be at most 18446744073709551615"
            }
            RateErrorKind::ZeroCount | RateErrorKind::ZeroMultiple => "",
            RateErrorKind::ExpectedPer => "write 10/minute or 10 per minute",
            RateErrorKind::ExpectedUnit => "",
            RateErrorKind::UnknownUnit { word } if is_week(word) => {
                "weeks are not a unit: write 7days"
            }
            RateErrorKind::UnknownUnit { .. } => {
                "use ms, second, minute, hour, day, month or year (or s, sec, min, m, h, hr, d)"
            }
            RateErrorKind::PeriodTooLong => {
                "the period must fit in 64-bit nanoseconds (about 584 years): use a smaller \
                 multiple"
            }
            RateErrorKind::LeadingSeparator => "remove it: a list starts with a rate",
            RateErrorKind::EmptyItem => "remove one, or put a rate between them",
            RateErrorKind::TrailingSeparator => "remove it or add a rate after it",
            RateErrorKind::ExpectedSeparator => "separate rates with ',', ';' or '|'",
            RateErrorKind::MoreThanOneRate => "this is a list of rates: parse it with parse_rates",
        }
    }

    /// Whether the character at the error is worth quoting (the problem does not name it).
    fn shows_found(&self) -> bool {
        matches!(
            self,
            RateErrorKind::ExpectedCount
                | RateErrorKind::ExpectedPer
                | RateErrorKind::ExpectedUnit
                | RateErrorKind::ExpectedSeparator
                | RateErrorKind::LeadingSeparator
                | RateErrorKind::EmptyItem
                | RateErrorKind::TrailingSeparator
                | RateErrorKind::MoreThanOneRate
        )
    }
}

fn is_week(word: &str) -> bool {
    ["w", "wk", "wks", "week", "weeks"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(word))
}

impl fmt::Display for RateErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem())?;
        match self.fix() {
            "" => Ok(()),
            fix => write!(f, ": {fix}"),
        }
    }
}

impl core::error::Error for RateErrorKind {}

/// A rate string that could not be parsed: what, where, and what to do.
///
/// Displays as `<problem> at column <c>[, found '<char>'][: <what to do>]`, for example
/// `expected a unit such as second, minute, hour, day (or s, min, h, d) at column 4, found '?'`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateParseError {
    kind: RateErrorKind,
    position: usize,
    column: usize,
    found: Option<char>,
}

impl RateParseError {
    fn new(input: &str, kind: RateErrorKind, position: usize) -> RateParseError {
        let before = input.get(..position);
        let column = before.map_or(position, |b| b.chars().count()) + 1;
        let found = input.get(position..).and_then(|rest| rest.chars().next());
        RateParseError {
            kind,
            position,
            column,
            found,
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> &RateErrorKind {
        &self.kind
    }

    /// Byte offset in the input where the problem starts (0-based; `&input[position..]` is the
    /// offending text, and `position` is always a character boundary).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Character column where the problem starts (1-based, counting Unicode scalar values).
    pub fn column(&self) -> usize {
        self.column
    }

    /// The character at [`position`](Self::position), or `None` at the end of the input.
    pub fn found(&self) -> Option<char> {
        self.found
    }
}

impl fmt::Display for RateParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.kind.problem(), self.column)?;
        if self.kind.shows_found() {
            match self.found {
                Some(c) => write!(f, ", found {c:?}")?,
                None => f.write_str(", found the end of the input")?,
            }
        }
        match self.kind.fix() {
            "" => Ok(()),
            fix => write!(f, ": {fix}"),
        }
    }
}

impl core::error::Error for RateParseError {}

/// The longest unknown word quoted back in an error.
const MAX_WORD_IN_ERROR: usize = 32;

/// A cursor over the input. `pos` always sits on a character boundary: it only moves over
/// ASCII bytes or whole characters.
struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Parser<'a> {
        Parser { input, pos: 0 }
    }

    fn error(&self, kind: RateErrorKind, at: usize) -> RateParseError {
        RateParseError::new(self.input, kind, at)
    }

    fn peek_byte(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    fn peek_is(&self, pred: impl Fn(u8) -> bool) -> bool {
        self.peek_byte().is_some_and(pred)
    }

    fn skip_whitespace(&mut self) {
        let rest = self.input.get(self.pos..).unwrap_or("");
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Advances over ASCII bytes matching `pred` and returns them.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek_is(&pred) {
            self.pos += 1;
        }
        self.input.get(start..self.pos).unwrap_or("")
    }

    /// The whole input as a list; also returns the position of the first separator.
    fn list(&mut self) -> Result<(Vec<Rate>, Option<usize>), RateParseError> {
        self.skip_whitespace();
        match self.peek_byte() {
            None => return Err(self.error(RateErrorKind::Empty, 0)),
            Some(b) if is_separator(b) => {
                return Err(self.error(RateErrorKind::LeadingSeparator, self.pos))
            }
            Some(_) => {}
        }
        let mut rates = Vec::from([self.item()?]);
        let mut first_separator = None;
        while let Some(at) = self.separator()? {
            first_separator.get_or_insert(at);
            rates.push(self.item()?);
        }
        Ok((rates, first_separator))
    }

    /// After an item: `Ok(None)` at the end; `Ok(Some(at))` past a separator at `at`, with the
    /// next item's first character ahead; an error otherwise.
    fn separator(&mut self) -> Result<Option<usize>, RateParseError> {
        self.skip_whitespace();
        let at = self.pos;
        match self.peek_byte() {
            None => return Ok(None),
            Some(b) if !is_separator(b) => {
                return Err(self.error(RateErrorKind::ExpectedSeparator, at))
            }
            Some(_) => self.pos += 1,
        }
        self.skip_whitespace();
        match self.peek_byte() {
            None => Err(self.error(RateErrorKind::TrailingSeparator, at)),
            Some(b) if is_separator(b) => Err(self.error(RateErrorKind::EmptyItem, self.pos)),
            Some(_) => Ok(Some(at)),
        }
    }

    /// `count ("/" | "per") [multiple] unit`, starting at a non-space character.
    fn item(&mut self) -> Result<Rate, RateParseError> {
        let count_at = self.pos;
        let count = self.number(RateErrorKind::ExpectedCount)?;
        if count == 0 {
            return Err(self.error(RateErrorKind::ZeroCount, count_at));
        }
        self.skip_whitespace();
        self.per()?;
        self.skip_whitespace();
        let multiple_at = self.pos;
        let multiple = if self.peek_is(|b| b.is_ascii_digit() || b == b'-') {
            let multiple = self.number(RateErrorKind::ExpectedUnit)?;
            if multiple == 0 {
                return Err(self.error(RateErrorKind::ZeroMultiple, multiple_at));
            }
            self.skip_whitespace();
            multiple
        } else {
            1
        };
        let unit = self.unit()?;
        Rate::new(count, multiple, unit).map_err(|kind| self.error(kind, multiple_at))
    }

    /// A whole number; `missing` is the error when there is no digit here.
    fn number(&mut self, missing: RateErrorKind) -> Result<u64, RateParseError> {
        let start = self.pos;
        if self.peek_byte() == Some(b'-') {
            return Err(self.error(RateErrorKind::NegativeNumber, start));
        }
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.error(missing, start));
        }
        if self.peek_byte() == Some(b'.') {
            return Err(self.error(RateErrorKind::Fraction, self.pos));
        }
        digits
            .parse()
            .map_err(|_| self.error(RateErrorKind::NumberTooLarge, start))
    }

    /// `/` or `per` (any case).
    fn per(&mut self) -> Result<(), RateParseError> {
        let rest = self.input.as_bytes().get(self.pos..).unwrap_or(&[]);
        if rest.first() == Some(&b'/') {
            self.pos += 1;
        } else if rest
            .get(..3)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"per"))
        {
            self.pos += 3;
        } else {
            return Err(self.error(RateErrorKind::ExpectedPer, self.pos));
        }
        Ok(())
    }

    fn unit(&mut self) -> Result<Unit, RateParseError> {
        let start = self.pos;
        let word = self.take_while(|b| b.is_ascii_alphabetic());
        if word.is_empty() {
            return Err(self.error(RateErrorKind::ExpectedUnit, start));
        }
        Unit::from_name(word).ok_or_else(|| {
            let word = word.get(..MAX_WORD_IN_ERROR).unwrap_or(word).into();
            self.error(RateErrorKind::UnknownUnit { word }, start)
        })
    }
}

fn is_separator(b: u8) -> bool {
    matches!(b, b',' | b';' | b'|')
}
