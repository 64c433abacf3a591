//! Golden, byte-exact tests of the HTTP contract (`ratewall::http`).
//!
//! The express-rate-limit goldens were produced by running express-rate-limit 8.7.5 itself
//! (`rateLimit({ validate: false, keyGenerator: () => 'foo', ... })` on mock request/response
//! objects, with `Date`/`Date.now()` frozen at 1700000000250 ms) and copying the headers it set.

use ratewall::http::{
    self, check_sf_string, default_identifier, partition_key, reset_epoch_seconds,
    retry_after_seconds, sort_most_restrictive, BufferTooSmall, HeaderSet, HeaderSetError,
    HeaderSets, LimitInfo, RateLimitState, DENIED_CONTENT_TYPE, DENIED_STATUS,
};
use ratewall::time::{DAY, HOUR, MILLISECOND, MINUTE, SECOND};
use ratewall::{Decision, FixedWindow, Quota, RateLimiter, TokenBucket};

/// The frozen wall clock of the express-rate-limit run.
const NOW_MS: u64 = 1_700_000_000_250;

fn h(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|&(n, v)| (n, v.to_string())).collect()
}

fn sets(s: &str) -> HeaderSets {
    s.parse().unwrap()
}

/// express: `windowMs: 60000, limit: 100`, first hit.
const ALLOWED: [LimitInfo<'static>; 1] = [LimitInfo {
    name: "api",
    limit: 100,
    window: MINUTE,
    remaining: 99,
    reset_after: MINUTE,
}];

/// express: `windowMs: 60000, limit: 1`, second hit.
const DENIED: [LimitInfo<'static>; 1] = [LimitInfo {
    name: "api",
    limit: 1,
    window: MINUTE,
    remaining: 0,
    reset_after: MINUTE,
}];

fn allowed() -> RateLimitState<'static> {
    RateLimitState::new(true, 0, &ALLOWED, NOW_MS).with_key("foo")
}

fn denied() -> RateLimitState<'static> {
    RateLimitState::new(false, MINUTE, &DENIED, NOW_MS).with_key("foo")
}

// ---- express-rate-limit sets, single limit -------------------------------------------------

#[test]
fn legacy_matches_express() {
    assert_eq!(
        http::headers(&allowed(), &sets("legacy")),
        h(&[
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "99"),
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("X-RateLimit-Reset", "1700000061"),
        ])
    );
    assert_eq!(
        http::headers(&denied(), &sets("legacy")),
        h(&[
            ("X-RateLimit-Limit", "1"),
            ("X-RateLimit-Remaining", "0"),
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("X-RateLimit-Reset", "1700000061"),
            ("Retry-After", "60"),
        ])
    );
}

#[test]
fn default_selection_is_express_default_legacy() {
    assert_eq!(HeaderSets::default(), sets("legacy"));
}

#[test]
fn draft6_matches_express() {
    assert_eq!(
        http::headers(&allowed(), &sets("draft-6")),
        h(&[
            ("RateLimit-Policy", "100;w=60"),
            ("RateLimit-Limit", "100"),
            ("RateLimit-Remaining", "99"),
            ("RateLimit-Reset", "60"),
        ])
    );
    assert_eq!(
        http::headers(&denied(), &sets("draft-6")),
        h(&[
            ("RateLimit-Policy", "1;w=60"),
            ("RateLimit-Limit", "1"),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", "60"),
            ("Retry-After", "60"),
        ])
    );
}

#[test]
fn draft7_matches_express() {
    assert_eq!(
        http::headers(&allowed(), &sets("draft-7")),
        h(&[
            ("RateLimit-Policy", "100;w=60"),
            ("RateLimit", "limit=100, remaining=99, reset=60"),
        ])
    );
    assert_eq!(
        http::headers(&denied(), &sets("draft-7")),
        h(&[
            ("RateLimit-Policy", "1;w=60"),
            ("RateLimit", "limit=1, remaining=0, reset=60"),
            ("Retry-After", "60"),
        ])
    );
}

#[test]
fn draft8_matches_express() {
    assert_eq!(
        http::headers(&allowed(), &sets("draft-8")),
        h(&[
            ("RateLimit", r#""100-in-1min"; r=99; t=60"#),
            (
                "RateLimit-Policy",
                r#""100-in-1min"; q=100; w=60; pk=:MmMyNmI0NmI2OGZm:"#
            ),
        ])
    );
    assert_eq!(
        http::headers(&denied(), &sets("draft-8")),
        h(&[
            ("RateLimit", r#""1-in-1min"; r=0; t=60"#),
            (
                "RateLimit-Policy",
                r#""1-in-1min"; q=1; w=60; pk=:MmMyNmI0NmI2OGZm:"#
            ),
            ("Retry-After", "60"),
        ])
    );
}

#[test]
fn legacy_plus_draft7_matches_express() {
    assert_eq!(
        http::headers(&allowed(), &sets("legacy,draft-7")),
        h(&[
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "99"),
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("X-RateLimit-Reset", "1700000061"),
            ("RateLimit-Policy", "100;w=60"),
            ("RateLimit", "limit=100, remaining=99, reset=60"),
        ])
    );
    assert_eq!(
        http::headers(&denied(), &sets("legacy + draft-7")),
        h(&[
            ("X-RateLimit-Limit", "1"),
            ("X-RateLimit-Remaining", "0"),
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("X-RateLimit-Reset", "1700000061"),
            ("RateLimit-Policy", "1;w=60"),
            ("RateLimit", "limit=1, remaining=0, reset=60"),
            ("Retry-After", "60"),
        ])
    );
}

#[test]
fn no_sets_means_no_headers_not_even_retry_after_like_express() {
    assert!(http::headers(&allowed(), &HeaderSets::none()).is_empty());
    assert!(http::headers(&denied(), &HeaderSets::none()).is_empty());
    assert!(http::headers(&denied(), &sets("none")).is_empty());
    // ...unless asked for.
    let only_retry = HeaderSets::none().with_retry_after(true);
    assert_eq!(
        http::headers(&denied(), &only_retry),
        h(&[("Retry-After", "60")])
    );
    assert!(http::headers(&allowed(), &only_retry).is_empty());
    // And it can be switched off for a set.
    let no_retry = sets("draft-7").with_retry_after(false);
    assert_eq!(http::headers(&denied(), &no_retry).len(), 2);
}

#[test]
fn legacy_without_date() {
    let s = sets("legacy").with_date(false);
    assert_eq!(
        http::headers(&allowed(), &s),
        h(&[
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "99"),
            ("X-RateLimit-Reset", "1700000061"),
        ])
    );
}

// ---- IETF form ---------------------------------------------------------------------------

#[test]
fn ietf_single_limit() {
    assert_eq!(
        http::headers(&allowed(), &sets("ietf")),
        h(&[
            ("RateLimit-Policy", r#""api";q=100;w=60"#),
            ("RateLimit", r#""api";r=99;t=60"#),
        ])
    );
    assert_eq!(
        http::headers(&denied(), &sets("ietf")),
        h(&[
            ("RateLimit-Policy", r#""api";q=1;w=60"#),
            ("RateLimit", r#""api";r=0;t=60"#),
            ("Retry-After", "60"),
        ])
    );
}

// ---- two limits --------------------------------------------------------------------------

/// `10/second; 1000/day`, allowed: the two express limiters of the stacked run.
const TWO_ALLOWED: [LimitInfo<'static>; 2] = [
    LimitInfo {
        name: "burst",
        limit: 10,
        window: SECOND,
        remaining: 9,
        reset_after: SECOND,
    },
    LimitInfo {
        name: "daily",
        limit: 1000,
        window: DAY,
        remaining: 999,
        reset_after: DAY,
    },
];

/// `10/second; 1000/day`, denied by the per-second limit.
const TWO_DENIED: [LimitInfo<'static>; 2] = [
    LimitInfo {
        name: "burst",
        limit: 10,
        window: SECOND,
        remaining: 0,
        reset_after: 400 * MILLISECOND,
    },
    LimitInfo {
        name: "daily",
        limit: 1000,
        window: DAY,
        remaining: 950,
        reset_after: 20_000 * SECOND,
    },
];

fn two_allowed() -> RateLimitState<'static> {
    RateLimitState::new(true, 0, &TWO_ALLOWED, NOW_MS).with_key("foo")
}

fn two_denied() -> RateLimitState<'static> {
    RateLimitState::new(false, 400 * MILLISECOND, &TWO_DENIED, NOW_MS).with_key("foo")
}

#[test]
fn draft8_two_limits_is_expresss_stacked_output_comma_joined() {
    // express-rate-limit with two stacked draft-8 limiters appends one value each:
    let express_rate_limit = [
        r#""10-in-1sec"; r=9; t=1"#,
        r#""1000-in-1day"; r=999; t=86400"#,
    ];
    let express_policy = [
        r#""10-in-1sec"; q=10; w=1; pk=:MmMyNmI0NmI2OGZm:"#,
        r#""1000-in-1day"; q=1000; w=86400; pk=:MmMyNmI0NmI2OGZm:"#,
    ];
    assert_eq!(
        http::headers(&two_allowed(), &sets("draft-8")),
        vec![
            ("RateLimit", express_rate_limit.join(", ")),
            ("RateLimit-Policy", express_policy.join(", ")),
        ]
    );
    assert_eq!(
        http::headers(&two_denied(), &sets("draft-8")),
        h(&[
            (
                "RateLimit",
                r#""10-in-1sec"; r=0; t=1, "1000-in-1day"; r=950; t=20000"#
            ),
            (
                "RateLimit-Policy",
                r#""10-in-1sec"; q=10; w=1; pk=:MmMyNmI0NmI2OGZm:, "1000-in-1day"; q=1000; w=86400; pk=:MmMyNmI0NmI2OGZm:"#
            ),
            ("Retry-After", "1"),
        ])
    );
}

#[test]
fn ietf_two_limits_one_item_each() {
    assert_eq!(
        http::headers(&two_allowed(), &sets("ietf")),
        h(&[
            (
                "RateLimit-Policy",
                r#""burst";q=10;w=1, "daily";q=1000;w=86400"#
            ),
            ("RateLimit", r#""burst";r=9;t=1, "daily";r=999;t=86400"#),
        ])
    );
    assert_eq!(
        http::headers(&two_denied(), &sets("ietf")),
        h(&[
            (
                "RateLimit-Policy",
                r#""burst";q=10;w=1, "daily";q=1000;w=86400"#
            ),
            ("RateLimit", r#""burst";r=0;t=1, "daily";r=950;t=20000"#),
            ("Retry-After", "1"),
        ])
    );
}

#[test]
fn legacy_draft6_draft7_show_the_most_restrictive_limit() {
    let st = two_denied();
    assert_eq!(
        http::headers(&st, &sets("legacy")),
        h(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "0"),
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            // ceil(1700000000.250 + 0.4) = 1700000001
            ("X-RateLimit-Reset", "1700000001"),
            ("Retry-After", "1"),
        ])
    );
    assert_eq!(
        http::headers(&st, &sets("draft-6")),
        h(&[
            ("RateLimit-Policy", "10;w=1"),
            ("RateLimit-Limit", "10"),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", "1"),
            ("Retry-After", "1"),
        ])
    );
    assert_eq!(
        http::headers(&two_allowed(), &sets("draft-7")),
        h(&[
            ("RateLimit-Policy", "10;w=1"),
            ("RateLimit", "limit=10, remaining=9, reset=1"),
        ])
    );
}

#[test]
fn sort_most_restrictive_puts_the_denying_limit_first() {
    let mut limits = [TWO_DENIED[1], TWO_DENIED[0]];
    sort_most_restrictive(&mut limits);
    assert_eq!(limits, TWO_DENIED);

    // Equal remaining: the one that resets later is more restrictive.
    let a = LimitInfo {
        name: "a",
        limit: 5,
        window: SECOND,
        remaining: 3,
        reset_after: SECOND,
    };
    let b = LimitInfo {
        name: "b",
        reset_after: HOUR,
        ..a
    };
    let mut limits = [a, b];
    sort_most_restrictive(&mut limits);
    assert_eq!(limits.map(|l| l.name), ["b", "a"]);
}

#[test]
fn no_limits_only_retry_after() {
    let st = RateLimitState::new(false, 3 * SECOND, &[], NOW_MS);
    assert_eq!(
        http::headers(&st, &sets("legacy,draft-8")),
        h(&[("Retry-After", "3")])
    );
    let st = RateLimitState::new(true, 0, &[], NOW_MS);
    assert!(http::headers(&st, &sets("legacy,ietf")).is_empty());
}

// ---- draft-8 details -----------------------------------------------------------------------

#[test]
fn partition_keys_match_express() {
    // node: Buffer.from(createHash('sha256').update(k).digest('hex').slice(0, 12)).toString('base64')
    for (key, pk) in [
        ("foo", "MmMyNmI0NmI2OGZm"),
        ("", "ZTNiMGM0NDI5OGZj"),
        ("203.0.113.7", "ZmVjNTI1NjVhYTBj"),
        ("2001:db8::/56", "OGZhOTA1YmUyMmZm"),
        ("üñí", "NWU5MDI2ZGM3YjUz"),
    ] {
        assert_eq!(partition_key(key), pk, "key {key:?}");
    }
}

#[test]
fn default_identifiers_match_express() {
    // express-rate-limit 8.7.5, `limit: 5`, `windowMs: <ms>`.
    for (window_ns, id) in [
        (MILLISECOND, "5-in-0.001sec"),
        (100 * MILLISECOND, "5-in-0.1sec"),
        (SECOND, "5-in-1sec"),
        (1_500 * MILLISECOND, "5-in-1.5sec"),
        (30 * SECOND, "5-in-30sec"),
        (59 * SECOND, "5-in-59sec"),
        (59_999 * MILLISECOND, "5-in-59.999sec"),
        (MINUTE, "5-in-1min"),
        (90 * SECOND, "5-in-1.5min"),
        (100 * SECOND, "5-in-1.6666666666666667min"),
        (59 * MINUTE, "5-in-59min"),
        (HOUR, "5-in-1hr"),
        (90 * MINUTE, "5-in-1.5hrs"),
        (2 * HOUR, "5-in-2hrs"),
        (23 * HOUR, "5-in-23hrs"),
        (DAY, "5-in-1day"),
        (36 * HOUR, "5-in-1.5days"),
        (7 * DAY, "5-in-7days"),
        (2_147_483_647 * MILLISECOND, "5-in-24.85513480324074days"),
        // Sub-millisecond windows, which JavaScript prints in its own way.
        (1, "5-in-9.999999999999999e-10sec"),
        (1_500, "5-in-0.0000015sec"),
    ] {
        assert_eq!(
            default_identifier(5, window_ns),
            id,
            "window {window_ns} ns"
        );
    }
    // The brief's examples.
    assert_eq!(default_identifier(5, 2 * HOUR), "5-in-2hrs");
    assert_eq!(default_identifier(100, MINUTE), "100-in-1min");
}

#[test]
fn identifier_for_the_longest_window() {
    // u64::MAX ns is ~213503 days: still plain decimal in JS.
    assert!(default_identifier(1, u64::MAX).starts_with("1-in-213503.98"));
    assert!(default_identifier(1, u64::MAX).ends_with("days"));
}

#[test]
fn draft8_custom_identifier_and_no_key() {
    let s = HeaderSets::new([HeaderSet::Draft8 {
        identifier: Some("api-v2".into()),
    }])
    .unwrap();
    assert_eq!(
        http::headers(&allowed(), &s),
        h(&[
            ("RateLimit", r#""api-v2"; r=99; t=60"#),
            (
                "RateLimit-Policy",
                r#""api-v2"; q=100; w=60; pk=:MmMyNmI0NmI2OGZm:"#
            ),
        ])
    );
    let no_key = RateLimitState::new(true, 0, &ALLOWED, NOW_MS);
    assert_eq!(
        http::headers(&no_key, &sets("draft-8")),
        h(&[
            ("RateLimit", r#""100-in-1min"; r=99; t=60"#),
            ("RateLimit-Policy", r#""100-in-1min"; q=100; w=60"#),
        ])
    );
}

// ---- Retry-After, reset, body ----------------------------------------------------------------

#[test]
fn retry_after_is_ceil_seconds_at_least_one() {
    for (ns, s) in [
        (0, 1),
        (1, 1),
        (999_999_999, 1),
        (SECOND, 1),
        (SECOND + 1, 2),
        (2 * SECOND - 1, 2),
        (2 * SECOND, 2),
        (2 * SECOND + 1, 3),
        (u64::MAX, 18_446_744_074),
    ] {
        assert_eq!(retry_after_seconds(ns), s, "{ns} ns");
        let st = RateLimitState::new(false, ns, &DENIED, NOW_MS);
        let hs = http::headers(&st, &sets("ietf"));
        assert_eq!(hs.last().unwrap(), &("Retry-After", s.to_string()));
        assert_eq!(
            http::denied_body(ns),
            format!(r#"{{"error":"rate_limited","retryAfter":{s}}}"#)
        );
    }
}

#[test]
fn body_is_exact() {
    assert_eq!(DENIED_STATUS, 429);
    assert_eq!(DENIED_CONTENT_TYPE, "application/json");
    assert_eq!(
        http::denied_body(1),
        r#"{"error":"rate_limited","retryAfter":1}"#
    );
    assert_eq!(
        http::denied_body(60 * SECOND),
        r#"{"error":"rate_limited","retryAfter":60}"#
    );
    let mut s = String::from("x");
    http::write_denied_body(2 * SECOND + 1, &mut s).unwrap();
    assert_eq!(s, r#"x{"error":"rate_limited","retryAfter":3}"#);
}

#[test]
fn legacy_reset_is_epoch_seconds_rounded_up() {
    assert_eq!(reset_epoch_seconds(1_700_000_000_000, 0), 1_700_000_000);
    assert_eq!(reset_epoch_seconds(1_700_000_000_000, 1), 1_700_000_001);
    assert_eq!(
        reset_epoch_seconds(1_700_000_000_000, SECOND),
        1_700_000_001
    );
    assert_eq!(reset_epoch_seconds(1_700_000_000_001, 0), 1_700_000_001);
    assert_eq!(
        reset_epoch_seconds(1_700_000_000_999, MILLISECOND),
        1_700_000_001
    );
    assert_eq!(reset_epoch_seconds(0, 0), 0);
    assert_eq!(
        reset_epoch_seconds(u64::MAX, u64::MAX),
        18_446_744_073_709_552 + 18_446_744_074
    );

    let l = [LimitInfo {
        reset_after: 1,
        ..ALLOWED[0]
    }];
    let st = RateLimitState::new(true, 0, &l, 1_700_000_000_000);
    assert_eq!(
        http::headers(&st, &sets("legacy"))[3],
        ("X-RateLimit-Reset", "1700000001".to_string())
    );
}

#[test]
fn delta_seconds_round_up_and_window_rounds_up() {
    let l = [LimitInfo {
        name: "x",
        limit: 3,
        window: 1_500 * MILLISECOND,
        remaining: 1,
        reset_after: SECOND + 1,
    }];
    let st = RateLimitState::new(true, 0, &l, NOW_MS);
    assert_eq!(
        http::headers(&st, &sets("draft-7")),
        h(&[
            ("RateLimit-Policy", "3;w=2"),
            ("RateLimit", "limit=3, remaining=1, reset=2"),
        ])
    );
    // A limiter at full capacity has nothing to reset: 0, as express prints it.
    let l = [LimitInfo {
        reset_after: 0,
        ..l[0]
    }];
    let st = RateLimitState::new(true, 0, &l, NOW_MS);
    assert_eq!(
        http::headers(&st, &sets("draft-6"))[3],
        ("RateLimit-Reset", "0".to_string())
    );
}

#[test]
fn date_is_imf_fixdate_like_to_utc_string() {
    for (ms, date) in [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (951_782_400_000, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (253_402_300_799_999, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (NOW_MS, "Tue, 14 Nov 2023 22:13:20 GMT"),
        // JavaScript's `toUTCString` of these two (five and six digits of year).
        (253_402_300_800_000, "Sat, 01 Jan 10000 00:00:00 GMT"),
        (8_640_000_000_000_000, "Sat, 13 Sep 275760 00:00:00 GMT"),
        (1_795_797_516_999, "Fri, 27 Nov 2026 16:38:36 GMT"),
    ] {
        let st = RateLimitState::new(true, 0, &ALLOWED, ms);
        assert_eq!(
            http::headers(&st, &sets("legacy"))[2],
            ("Date", date.to_string())
        );
    }
}

// ---- Structured Fields ---------------------------------------------------------------------

fn ietf_policy_for(name: &str) -> String {
    let l = [LimitInfo { name, ..ALLOWED[0] }];
    let st = RateLimitState::new(true, 0, &l, NOW_MS);
    http::headers(&st, &sets("ietf")).remove(0).1
}

#[test]
fn names_are_escaped_sf_strings() {
    assert_eq!(ietf_policy_for(r#"a"b\c"#), r#""a\"b\\c";q=100;w=60"#);
    assert_eq!(ietf_policy_for("plain name"), r#""plain name";q=100;w=60"#);
    assert_eq!(ietf_policy_for("~ !#"), r#""~ !#";q=100;w=60"#);
}

#[test]
fn non_printable_and_non_ascii_become_question_marks() {
    assert_eq!(
        ietf_policy_for("x\r\nX-Evil: 1"),
        r#""x??X-Evil: 1";q=100;w=60"#
    );
    assert_eq!(ietf_policy_for("über\t\u{7f}"), r#""?ber??";q=100;w=60"#);
    // Rendered header lines can never be split.
    let l = [LimitInfo {
        name: "a\nb\rc",
        ..ALLOWED[0]
    }];
    let st = RateLimitState::new(false, SECOND, &l, NOW_MS);
    let mut wire = String::new();
    http::write_headers(&st, &sets("legacy,ietf"), &mut wire).unwrap();
    assert_eq!(wire.matches("\r\n").count(), 7);
    assert_eq!(wire.matches('\n').count(), 7);
}

#[test]
fn empty_name_uses_default_identifier_in_ietf() {
    assert_eq!(ietf_policy_for(""), r#""100-in-1min";q=100;w=60"#);
}

#[test]
fn check_sf_string_reports_where() {
    assert!(check_sf_string("").is_ok());
    assert!(check_sf_string(r#"any "printable" \ ascii ~"#).is_ok());
    let e = check_sf_string("ab\u{e9}").unwrap_err();
    assert_eq!((e.index, e.ch), (2, '\u{e9}'));
    assert!(e.to_string().contains("byte 2"));
    let e = check_sf_string("a\tb").unwrap_err();
    assert_eq!((e.index, e.ch), (1, '\t'));
}

#[test]
fn integers_saturate_at_the_sf_maximum_in_ratelimit_headers_only() {
    let l = [LimitInfo {
        name: "huge",
        limit: u64::MAX,
        window: SECOND,
        remaining: u64::MAX - 1,
        reset_after: 0,
    }];
    let st = RateLimitState::new(true, 0, &l, 0);
    let hs = http::headers(&st, &sets("legacy,ietf"));
    assert_eq!(hs[0].1, u64::MAX.to_string());
    assert_eq!(hs[4].1, r#""huge";q=999999999999999;w=1"#);
    assert_eq!(hs[5].1, r#""huge";r=999999999999999;t=0"#);
}

// ---- selection ---------------------------------------------------------------------------

#[test]
fn header_set_names_parse() {
    for (s, set) in [
        ("legacy", HeaderSet::Legacy),
        ("draft-6", HeaderSet::Draft6),
        ("draft-7", HeaderSet::Draft7),
        ("draft-8", HeaderSet::draft8()),
        ("ietf", HeaderSet::Ietf),
        (" IETF ", HeaderSet::Ietf),
        ("Draft-7", HeaderSet::Draft7),
    ] {
        assert_eq!(s.parse::<HeaderSet>().unwrap(), set);
    }
    for set in [
        HeaderSet::Legacy,
        HeaderSet::Draft6,
        HeaderSet::Draft7,
        HeaderSet::draft8(),
        HeaderSet::Ietf,
    ] {
        assert_eq!(set.to_string().parse::<HeaderSet>().unwrap(), set);
    }
}

#[test]
fn bad_header_set_names_are_clear_errors() {
    let e = "draft-9".parse::<HeaderSet>().unwrap_err();
    assert_eq!(e, HeaderSetError::Unknown("draft-9".into()));
    let msg = e.to_string();
    assert!(msg.contains("draft-9"), "{msg}");
    assert!(
        msg.contains("legacy, draft-6, draft-7, draft-8, ietf"),
        "{msg}"
    );
    assert!("true".parse::<HeaderSet>().is_err());
    assert!("".parse::<HeaderSet>().is_err());
}

#[test]
fn selections_parse_and_validate() {
    let s = sets("legacy,draft-7");
    assert!(s.has_legacy());
    assert_eq!(s.standard(), Some(&HeaderSet::Draft7));
    assert_eq!(
        s.iter().cloned().collect::<Vec<_>>(),
        [HeaderSet::Legacy, HeaderSet::Draft7]
    );
    assert_eq!(s.to_string(), "legacy,draft-7");
    assert_eq!(sets("draft-7 legacy"), s);
    assert_eq!(sets("legacy;draft-7"), s);
    assert_eq!(sets("ietf"), HeaderSets::from(HeaderSet::Ietf));
    assert_eq!(sets(""), HeaderSets::none());
    assert_eq!(HeaderSets::none().to_string(), "none");
    assert!(sets("").is_empty());

    assert_eq!(
        "draft-7,draft-8".parse::<HeaderSets>(),
        Err(HeaderSetError::Conflict("draft-7", "draft-8"))
    );
    assert_eq!(
        "ietf,draft-6".parse::<HeaderSets>(),
        Err(HeaderSetError::Conflict("ietf", "draft-6"))
    );
    assert_eq!(
        "legacy,legacy".parse::<HeaderSets>(),
        Err(HeaderSetError::Duplicate("legacy"))
    );
    assert_eq!(
        "ietf+ietf".parse::<HeaderSets>(),
        Err(HeaderSetError::Duplicate("ietf"))
    );
    assert!("none,legacy".parse::<HeaderSets>().is_err());
    assert!("legacy,draft7".parse::<HeaderSets>().is_err());
    let msg = "draft-7,ietf"
        .parse::<HeaderSets>()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("choose one"), "{msg}");
}

#[test]
fn draft8_identifier_must_be_a_valid_sf_string() {
    let e = HeaderSets::new([HeaderSet::Draft8 {
        identifier: Some("bad\nid".into()),
    }])
    .unwrap_err();
    assert!(matches!(e, HeaderSetError::InvalidIdentifier(i) if i.index == 3));
    // Built directly, it is sanitised instead.
    let s = HeaderSets::from(HeaderSet::Draft8 {
        identifier: Some("bad\nid".into()),
    });
    let hs = http::headers(&allowed(), &s);
    assert_eq!(hs[0].1, r#""bad?id"; r=99; t=60"#);
}

// ---- writers -------------------------------------------------------------------------------

#[test]
fn wire_format_and_caller_buffers() {
    let s = sets("draft-7");
    let mut wire = String::new();
    http::write_headers(&denied(), &s, &mut wire).unwrap();
    let expected = "RateLimit-Policy: 1;w=60\r\n\
                    RateLimit: limit=1, remaining=0, reset=60\r\n\
                    Retry-After: 60\r\n";
    assert_eq!(wire, expected);

    let mut buf = [0u8; 256];
    let n = http::render_headers_into(&denied(), &s, &mut buf).unwrap();
    assert_eq!(&buf[..n], expected.as_bytes());

    let mut small = [0u8; 10];
    assert_eq!(
        http::render_headers_into(&denied(), &s, &mut small),
        Err(BufferTooSmall {
            needed: expected.len()
        })
    );
    let mut exact = vec![0u8; expected.len()];
    assert_eq!(
        http::render_headers_into(&denied(), &s, &mut exact),
        Ok(expected.len())
    );

    let body = br#"{"error":"rate_limited","retryAfter":60}"#;
    let n = http::render_denied_body_into(MINUTE, &mut buf).unwrap();
    assert_eq!(&buf[..n], body);
    assert_eq!(
        http::render_denied_body_into(MINUTE, &mut small),
        Err(BufferTooSmall { needed: body.len() })
    );
}

#[test]
fn visit_headers_passes_writer_errors_through() {
    let r = http::visit_headers(&denied(), &sets("legacy"), |_, _| Err(core::fmt::Error));
    assert!(r.is_err());
    let mut names = Vec::new();
    http::visit_headers(&denied(), &sets("legacy,draft-8"), |n, _| {
        names.push(n);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        names,
        [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "Date",
            "X-RateLimit-Reset",
            "RateLimit",
            "RateLimit-Policy",
            "Retry-After"
        ]
    );
}

// ---- from real limiters --------------------------------------------------------------------

#[test]
fn from_real_decisions() {
    // The classic demo: capacity 5, refilling 1/s. Exhaust it, then get denied.
    let tb = TokenBucket::with_burst(Quota::per_second(1).unwrap(), 5).unwrap();
    for _ in 0..5 {
        assert!(tb.check(0, 1).unwrap().allowed);
    }
    let d: Decision = tb.check(0, 1).unwrap();
    assert!(!d.allowed);
    let limits = [LimitInfo::from_decision("demo", SECOND, &d)];
    let st = RateLimitState::from_decision(&d, &limits, NOW_MS);
    let hs = http::headers(&st, &sets("ietf"));
    assert_eq!(hs[0].1, r#""demo";q=5;w=1"#);
    assert_eq!(
        hs[1].1,
        format!(r#""demo";r=0;t={}"#, http::ceil_seconds(d.reset_after))
    );
    // Retry-After is when the same request could pass (one token: 1 s), not the full reset.
    assert_eq!(hs[2], ("Retry-After", "1".to_string()));
    assert_eq!(
        http::denied_body(d.retry_after),
        r#"{"error":"rate_limited","retryAfter":1}"#
    );

    let fw = FixedWindow::new(Quota::per_minute(100).unwrap()).unwrap();
    let d = fw.check(0, 1).unwrap();
    let limits = [LimitInfo::from_decision("api", MINUTE, &d)];
    let st = RateLimitState::from_decision(&d, &limits, NOW_MS).with_key("foo");
    assert_eq!(
        http::headers(&st, &sets("draft-8")),
        http::headers(&allowed(), &sets("draft-8"))
    );
}

/// Bindings may keep the header names of a response kind and ask only for values later (the
/// Node.js Express middleware does): the names must depend on nothing but the header sets and
/// whether the request was allowed.
#[test]
fn header_names_depend_only_on_the_sets_and_allowed() {
    let selections = [
        "legacy",
        "draft-6",
        "draft-7",
        "draft-8",
        "ietf",
        "legacy,draft-6",
        "legacy,draft-7",
        "legacy,draft-8",
        "legacy,ietf",
        "none",
    ];
    let names = |st: &RateLimitState<'_>, s: &HeaderSets| -> Vec<&'static str> {
        http::headers(st, s).into_iter().map(|(n, _)| n).collect()
    };
    for selection in selections {
        let s = sets(selection);
        for allowed in [true, false] {
            let mut seen: Option<Vec<&'static str>> = None;
            for (limit, remaining, reset_after, key, now_ms) in [
                (1, 0, 1, None, 0),
                (100, 99, MINUTE, Some("foo"), NOW_MS),
                (
                    1 << 40,
                    12_345,
                    3 * DAY,
                    Some("2001:db8::/56"),
                    u64::MAX / 2,
                ),
                (7, 7, 0, Some(""), 1),
            ] {
                let one = LimitInfo {
                    name: "api",
                    limit,
                    window: MINUTE,
                    remaining,
                    reset_after,
                };
                let two = LimitInfo {
                    name: "",
                    limit: 2 * limit,
                    window: HOUR,
                    remaining,
                    reset_after,
                };
                for limits in [&[one][..], &[one, two][..]] {
                    let mut st = RateLimitState::new(allowed, reset_after, limits, now_ms);
                    if let Some(k) = key {
                        st = st.with_key(k);
                    }
                    let got = names(&st, &s);
                    match &seen {
                        None => seen = Some(got),
                        Some(first) => assert_eq!(&got, first, "{selection}, allowed {allowed}"),
                    }
                }
            }
        }
    }
}
