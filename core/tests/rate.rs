//! Rate strings: every accepted form, every error (position and message), round trips, and
//! "never panics" over arbitrary and grammar-built input.

use proptest::prelude::*;
use ratewall::rate::{format_rates, parse_rates, Rate, RateErrorKind, Unit};
use ratewall::time::{DAY, HOUR, MILLISECOND, MINUTE, SECOND};

fn one(s: &str) -> Rate {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[test]
fn accepted_forms() {
    use Unit::*;
    // (input, limit, multiple, unit, canonical)
    let table: &[(&str, u64, u64, Unit, &str)] = &[
        // the limits grammar
        ("10/minute", 10, 1, Minute, "10/minute"),
        ("10 per minute", 10, 1, Minute, "10/minute"),
        ("5 per 10 minutes", 5, 10, Minute, "5/10minutes"),
        ("500/7days", 500, 7, Day, "500/7days"),
        ("1/second", 1, 1, Second, "1/second"),
        ("1/seconds", 1, 1, Second, "1/second"),
        ("3/hour", 3, 1, Hour, "3/hour"),
        ("3/hours", 3, 1, Hour, "3/hour"),
        ("100/day", 100, 1, Day, "100/day"),
        ("2/month", 2, 1, Month, "2/month"),
        ("2 per 3 months", 2, 3, Month, "2/3months"),
        ("1/year", 1, 1, Year, "1/year"),
        ("1/2years", 1, 2, Year, "1/2years"),
        ("10 / minute", 10, 1, Minute, "10/minute"),
        ("  10/minute  ", 10, 1, Minute, "10/minute"),
        ("10PER MINUTE", 10, 1, Minute, "10/minute"),
        ("10 Per 2 Hours", 10, 2, Hour, "10/2hours"),
        ("10perminute", 10, 1, Minute, "10/minute"),
        ("10/1minute", 10, 1, Minute, "10/minute"),
        ("010/minute", 10, 1, Minute, "10/minute"),
        ("10/ 5 minutes", 10, 5, Minute, "10/5minutes"),
        ("10\t/\t5\tminutes", 10, 5, Minute, "10/5minutes"),
        ("10\u{a0}per\u{2003}minute", 10, 1, Minute, "10/minute"),
        // short units (ratewall superset)
        ("10/s", 10, 1, Second, "10/second"),
        ("10/sec", 10, 1, Second, "10/second"),
        ("10/secs", 10, 1, Second, "10/second"),
        ("10/S", 10, 1, Second, "10/second"),
        ("10/m", 10, 1, Minute, "10/minute"),
        ("60/min", 60, 1, Minute, "60/minute"),
        ("60/mins", 60, 1, Minute, "60/minute"),
        ("5/10min", 5, 10, Minute, "5/10minutes"),
        ("10/h", 10, 1, Hour, "10/hour"),
        ("10/hr", 10, 1, Hour, "10/hour"),
        ("10/hrs", 10, 1, Hour, "10/hour"),
        ("10/2h", 10, 2, Hour, "10/2hours"),
        ("10/d", 10, 1, Day, "10/day"),
        ("10/7d", 10, 7, Day, "10/7days"),
        ("10/ms", 10, 1, Millisecond, "10/millisecond"),
        ("1/500ms", 1, 500, Millisecond, "1/500milliseconds"),
        ("1/500 MS", 1, 500, Millisecond, "1/500milliseconds"),
        ("1/msec", 1, 1, Millisecond, "1/millisecond"),
        ("1/5msecs", 1, 5, Millisecond, "1/5milliseconds"),
        ("1/milliseconds", 1, 1, Millisecond, "1/millisecond"),
        // extremes
        (
            "18446744073709551615/s",
            u64::MAX,
            1,
            Second,
            "18446744073709551615/second",
        ),
        (
            "1/18446744073709ms",
            1,
            18_446_744_073_709,
            Millisecond,
            "1/18446744073709milliseconds",
        ),
    ];
    for &(input, limit, multiple, unit, canonical) in table {
        let rate = one(input);
        assert_eq!(
            (rate.limit(), rate.multiple(), rate.unit()),
            (limit, multiple, unit),
            "{input:?}"
        );
        assert_eq!(rate.period(), multiple * unit.nanos(), "{input:?}");
        assert_eq!(rate.to_string(), canonical, "{input:?}");
        assert_eq!(one(canonical), rate, "{input:?} round trip");
    }
}

#[test]
fn periods_and_quotas() {
    assert_eq!(one("10/s").quota().period(), SECOND);
    assert_eq!(one("10/min").quota().period(), MINUTE);
    assert_eq!(one("10/2h").period(), 2 * HOUR);
    assert_eq!(one("500/7days").period(), 7 * DAY);
    assert_eq!(one("1/month").period(), 30 * DAY);
    assert_eq!(one("1/year").period(), 360 * DAY);
    assert_eq!(one("1/250ms").period(), 250 * MILLISECOND);
    let quota: ratewall::Quota = one("5 per 10 minutes").into();
    assert_eq!((quota.limit(), quota.period()), (5, 10 * MINUTE));
    // The longest period that fits in whole days (about 213 503 days).
    let max_days = u64::MAX / DAY;
    assert_eq!(one(&format!("1/{max_days}d")).period(), max_days * DAY);
    assert!(parse_rates(&format!("1/{}d", max_days + 1)).is_err());
}

#[test]
fn lists() {
    let table: &[(&str, &[&str])] = &[
        ("100/day;10/hour", &["100/day", "10/hour"]),
        ("100/day; 10/hour", &["100/day", "10/hour"]),
        ("10/second, 1000/day", &["10/second", "1000/day"]),
        ("1/s|2/m|3/h", &["1/second", "2/minute", "3/hour"]),
        (
            " 1/s ; 2 per 3 minutes , 4/d ",
            &["1/second", "2/3minutes", "4/day"],
        ),
        ("10/minute", &["10/minute"]),
        ("10/minute;10/minute", &["10/minute", "10/minute"]),
    ];
    for &(input, expected) in table {
        let rates = parse_rates(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        let rendered: Vec<String> = rates.iter().map(Rate::to_string).collect();
        assert_eq!(rendered, expected, "{input:?}");
        assert_eq!(parse_rates(&format_rates(&rates)).unwrap(), rates);
    }
    assert_eq!(
        format_rates(&parse_rates("1/s|2/m").unwrap()),
        "1/second; 2/minute"
    );
    assert_eq!(format_rates(&[]), "");
}

#[test]
fn equality_keeps_the_spelling() {
    assert_eq!(one("10/min"), one("10 per 1 minute"));
    assert_ne!(one("10/60s"), one("10/minute"));
    assert_eq!(one("10/60s").quota(), one("10/minute").quota());
}

const UNIT_FIX: &str =
    "use ms, second, minute, hour, day, month or year (or s, sec, min, m, h, hr, d)";
const EXPECTED_UNIT: &str = "expected a unit such as second, minute, hour, day (or s, min, h, d)";
const COUNT_FIX: &str = "a rate is <count>/<unit>, such as 10/minute";
const PER_FIX: &str = "write 10/minute or 10 per minute";
const FRACTION_FIX: &str =
    "counts and multiples are whole numbers: use a smaller unit, such as 500ms instead of 0.5s";
const PERIOD_FIX: &str =
    "the period must fit in 64-bit nanoseconds (about 584 years): use a smaller multiple";
const EMPTY_FIX: &str = "write a rate such as 10/minute, or a list such as 100/day; 10/hour";
const SEP_FIX: &str = "separate rates with ',', ';' or '|'";

fn unknown(word: &str) -> RateErrorKind {
    RateErrorKind::UnknownUnit { word: word.into() }
}

/// (input, kind, byte position, column, message) for `parse_rates`.
fn error_table() -> Vec<(&'static str, RateErrorKind, usize, usize, String)> {
    use RateErrorKind::*;
    vec![
        ("", Empty, 0, 1, format!("empty rate string at column 1: {EMPTY_FIX}")),
        ("   ", Empty, 0, 1, format!("empty rate string at column 1: {EMPTY_FIX}")),
        ("minute", ExpectedCount, 0, 1, format!("expected a count such as 10 at column 1, found 'm': {COUNT_FIX}")),
        ("/minute", ExpectedCount, 0, 1, format!("expected a count such as 10 at column 1, found '/': {COUNT_FIX}")),
        ("+5/minute", ExpectedCount, 0, 1, format!("expected a count such as 10 at column 1, found '+': {COUNT_FIX}")),
        ("-1/minute", NegativeNumber, 0, 1, "negative number at column 1: counts and multiples must be at least 1".into()),
        ("10/-5minutes", NegativeNumber, 3, 4, "negative number at column 4: counts and multiples must be at least 1".into()),
        ("0/minute", ZeroCount, 0, 1, "count must be at least 1 at column 1".into()),
        ("000/minute", ZeroCount, 0, 1, "count must be at least 1 at column 1".into()),
        ("10/0minutes", ZeroMultiple, 3, 4, "multiple must be at least 1 at column 4".into()),
        ("5 per 0 hours", ZeroMultiple, 6, 7, "multiple must be at least 1 at column 7".into()),
        ("0.5/s", Fraction, 1, 2, format!("fractional number at column 2: {FRACTION_FIX}")),
        ("1/0.5s", Fraction, 3, 4, format!("fractional number at column 4: {FRACTION_FIX}")),
        ("18446744073709551616/s", NumberTooLarge, 0, 1, "number too large at column 1: counts and multiples must be at most 18446744073709551615".into()),
        ("1/99999999999999999999999s", NumberTooLarge, 2, 3, "number too large at column 3: counts and multiples must be at most 18446744073709551615".into()),
        ("1/18446744073710ms", PeriodTooLong, 2, 3, format!("period too long at column 3: {PERIOD_FIX}")),
        ("1/600years", PeriodTooLong, 2, 3, format!("period too long at column 3: {PERIOD_FIX}")),
        ("10 minute", ExpectedPer, 3, 4, format!("expected '/' or 'per' after the count at column 4, found 'm': {PER_FIX}")),
        ("10", ExpectedPer, 2, 3, format!("expected '/' or 'per' after the count at column 3, found the end of the input: {PER_FIX}")),
        ("10:minute", ExpectedPer, 2, 3, format!("expected '/' or 'per' after the count at column 3, found ':': {PER_FIX}")),
        ("1,000/minute", ExpectedPer, 1, 2, format!("expected '/' or 'per' after the count at column 2, found ',': {PER_FIX}")),
        ("10/", ExpectedUnit, 3, 4, format!("{EXPECTED_UNIT} at column 4, found the end of the input")),
        ("10 per", ExpectedUnit, 6, 7, format!("{EXPECTED_UNIT} at column 7, found the end of the input")),
        ("10/5", ExpectedUnit, 4, 5, format!("{EXPECTED_UNIT} at column 5, found the end of the input")),
        ("10/?", ExpectedUnit, 3, 4, format!("{EXPECTED_UNIT} at column 4, found '?'")),
        ("10/ж", ExpectedUnit, 3, 4, format!("{EXPECTED_UNIT} at column 4, found 'ж'")),
        ("10/fortnight", unknown("fortnight"), 3, 4, format!("unknown unit \"fortnight\" at column 4: {UNIT_FIX}")),
        ("10/week", unknown("week"), 3, 4, "unknown unit \"week\" at column 4: weeks are not a unit: write 7days".into()),
        ("10/2w", unknown("w"), 4, 5, "unknown unit \"w\" at column 5: weeks are not a unit: write 7days".into()),
        ("10/minutess", unknown("minutess"), 3, 4, format!("unknown unit \"minutess\" at column 4: {UNIT_FIX}")),
        ("10/mo", unknown("mo"), 3, 4, format!("unknown unit \"mo\" at column 4: {UNIT_FIX}")),
        ("10/per minute", unknown("per"), 3, 4, format!("unknown unit \"per\" at column 4: {UNIT_FIX}")),
        (";10/minute", LeadingSeparator, 0, 1, "leading separator at column 1, found ';': remove it: a list starts with a rate".into()),
        (" , 10/minute", LeadingSeparator, 1, 2, "leading separator at column 2, found ',': remove it: a list starts with a rate".into()),
        ("10/minute;;5/s", EmptyItem, 10, 11, "two separators in a row at column 11, found ';': remove one, or put a rate between them".into()),
        ("10/minute; |5/s", EmptyItem, 11, 12, "two separators in a row at column 12, found '|': remove one, or put a rate between them".into()),
        ("10/minute;", TrailingSeparator, 9, 10, "trailing separator at column 10, found ';': remove it or add a rate after it".into()),
        ("10/minute ; 5/s ,  ", TrailingSeparator, 16, 17, "trailing separator at column 17, found ',': remove it or add a rate after it".into()),
        ("10/minute 5/s", ExpectedSeparator, 10, 11, format!("unexpected text after a rate at column 11, found '5': {SEP_FIX}")),
        ("10/minute/2", ExpectedSeparator, 9, 10, format!("unexpected text after a rate at column 10, found '/': {SEP_FIX}")),
        ("10/minuteé", ExpectedSeparator, 9, 10, format!("unexpected text after a rate at column 10, found 'é': {SEP_FIX}")),
        // positions count bytes, columns count characters
        ("é", ExpectedCount, 0, 1, format!("expected a count such as 10 at column 1, found 'é': {COUNT_FIX}")),
        ("\u{3000}10/x", unknown("x"), 6, 5, format!("unknown unit \"x\" at column 5: {UNIT_FIX}")),
        ("1/s; 2/ü", ExpectedUnit, 7, 8, format!("{EXPECTED_UNIT} at column 8, found 'ü'")),
        ("🦀/s", ExpectedCount, 0, 1, format!("expected a count such as 10 at column 1, found '🦀': {COUNT_FIX}")),
        ("1/s;🦀", ExpectedCount, 4, 5, format!("expected a count such as 10 at column 5, found '🦀': {COUNT_FIX}")),
    ]
}

#[test]
fn errors_say_where_and_why() {
    for (input, kind, position, column, message) in error_table() {
        let err = parse_rates(input).expect_err(input);
        assert_eq!(err.kind(), &kind, "{input:?}");
        assert_eq!(
            (err.position(), err.column()),
            (position, column),
            "{input:?}"
        );
        assert_eq!(err.to_string(), message, "{input:?}");
        assert_eq!(err.found(), input[position..].chars().next(), "{input:?}");
        // A single rate reports the same error.
        assert_eq!(input.parse::<Rate>().unwrap_err(), err, "{input:?}");
    }
}

#[test]
fn long_unknown_words_are_cut_in_errors() {
    let input = format!("1/{}", "x".repeat(10_000));
    let err = parse_rates(&input).unwrap_err();
    assert_eq!(err.kind(), &unknown(&"x".repeat(32)));
}

#[test]
fn from_str_takes_exactly_one_rate() {
    let err = "10/s; 100/min".parse::<Rate>().unwrap_err();
    assert_eq!(err.kind(), &RateErrorKind::MoreThanOneRate);
    assert_eq!((err.position(), err.column()), (4, 5));
    assert_eq!(
        err.to_string(),
        "expected exactly one rate at column 5, found ';': this is a list of rates: parse it \
         with parse_rates"
    );
    // An error anywhere in the list wins over "more than one".
    let err = "10/s; 100/lightyear".parse::<Rate>().unwrap_err();
    assert_eq!(err.kind(), &unknown("lightyear"));
}

#[test]
fn rate_new_validates() {
    assert_eq!(Rate::new(0, 1, Unit::Second), Err(RateErrorKind::ZeroCount));
    assert_eq!(
        Rate::new(1, 0, Unit::Second),
        Err(RateErrorKind::ZeroMultiple)
    );
    assert_eq!(
        Rate::new(1, u64::MAX, Unit::Millisecond),
        Err(RateErrorKind::PeriodTooLong)
    );
    assert_eq!(
        RateErrorKind::ZeroMultiple.to_string(),
        "multiple must be at least 1"
    );
    assert_eq!(
        RateErrorKind::PeriodTooLong.to_string(),
        format!("period too long: {PERIOD_FIX}")
    );
    assert_eq!(Rate::new(7, 3, Unit::Hour).unwrap().to_string(), "7/3hours");
}

#[test]
fn every_spelling_of_every_unit() {
    let spellings: &[(&[&str], Unit)] = &[
        (
            &["ms", "msec", "msecs", "millisecond", "milliseconds"],
            Unit::Millisecond,
        ),
        (&["s", "sec", "secs", "second", "seconds"], Unit::Second),
        (&["m", "min", "mins", "minute", "minutes"], Unit::Minute),
        (&["h", "hr", "hrs", "hour", "hours"], Unit::Hour),
        (&["d", "day", "days"], Unit::Day),
        (&["month", "months"], Unit::Month),
        (&["year", "years"], Unit::Year),
    ];
    for &(words, unit) in spellings {
        for word in words {
            for w in [word.to_string(), word.to_uppercase()] {
                assert_eq!(Unit::from_name(&w), Some(unit), "{w}");
                assert_eq!(one(&format!("3/{w}")).unit(), unit, "{w}");
                assert_eq!(one(&format!("3 per 2 {w}")).multiple(), 2, "{w}");
            }
        }
    }
    for unit in Unit::ALL {
        assert_eq!(Unit::from_name(unit.name()), Some(unit));
    }
}

fn any_unit() -> impl Strategy<Value = Unit> {
    prop::sample::select(Unit::ALL.to_vec())
}

fn any_rate() -> impl Strategy<Value = Rate> {
    (
        any_unit(),
        prop_oneof![Just(1), Just(u64::MAX), 1..=u64::MAX],
    )
        .prop_flat_map(|(unit, limit)| {
            let max_multiple = u64::MAX / unit.nanos();
            prop_oneof![Just(1), Just(max_multiple), 1..=max_multiple]
                .prop_map(move |multiple| Rate::new(limit, multiple, unit).unwrap())
        })
}

/// Fragments of the grammar, glued at random: mostly near-valid strings.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "0",
        "1",
        "10",
        "007",
        "18446744073709551615",
        "18446744073709551616",
        "/",
        "per",
        "PER",
        " ",
        "\t",
        "\u{a0}",
        ",",
        ";",
        "|",
        "-",
        ".",
        "+",
        "s",
        "sec",
        "m",
        "min",
        "h",
        "hr",
        "d",
        "days",
        "minute",
        "minutes",
        "month",
        "years",
        "ms",
        "week",
        "x",
        "é",
        "🦀",
        "\u{0}",
        "\u{300}",
        "\u{feff}",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn render_then_parse_is_identity(rate in any_rate()) {
        prop_assert_eq!(rate.to_string().parse::<Rate>(), Ok(rate));
    }

    #[test]
    fn lists_round_trip(rates in prop::collection::vec(any_rate(), 1..6)) {
        prop_assert_eq!(parse_rates(&format_rates(&rates)), Ok(rates));
    }

    #[test]
    fn written_forms_parse_to_the_same_rate(
        rate in any_rate(),
        spaced in any::<bool>(),
        per in any::<bool>(),
        upper in any::<bool>(),
    ) {
        let sep = if per { " per " } else if spaced { " / " } else { "/" };
        let multiple = match (rate.multiple(), spaced) {
            (1, true) => String::new(),
            (m, true) => format!("{m} "),
            (m, false) => m.to_string(),
        };
        let unit = if upper { rate.unit().name().to_uppercase() } else { rate.unit().name().into() };
        let text = format!("{}{sep}{multiple}{unit}", rate.limit());
        prop_assert_eq!(text.parse::<Rate>(), Ok(rate));
    }

    #[test]
    fn never_panics_on_arbitrary_unicode(s in any::<String>()) {
        check_total(&s);
    }

    #[test]
    fn never_panics_on_grammar_fragments(parts in prop::collection::vec(fragment(), 0..12)) {
        check_total(&parts.concat());
    }
}

/// Parsing is total: an error points inside the input at a character boundary; a success
/// renders to a string that parses back to the same rates.
fn check_total(s: &str) {
    match parse_rates(s) {
        Ok(rates) => {
            assert!(!rates.is_empty());
            assert_eq!(parse_rates(&format_rates(&rates)).unwrap(), rates);
        }
        Err(err) => {
            assert!(err.position() <= s.len());
            assert!(s.is_char_boundary(err.position()));
            assert_eq!(err.column(), s[..err.position()].chars().count() + 1);
            assert!(!err.to_string().is_empty());
        }
    }
    let _ = s.parse::<Rate>();
}
