/*
 * C tests of libratewall through its public header: decision semantics, every error path,
 * buffer sizing, configuration, and multi-threaded admission counting with pthreads.
 *
 * Time is injected (`now` arguments); nothing sleeps. Prints one line per failed check and, at
 * the end, "c-tests: N passed, N failed". Exit status 0 only when every test passed.
 *
 * Build: cc -std=c11 -Wall -Wextra -pthread test_ratewall.c $(pkg-config --cflags --libs ratewall)
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <pthread.h>
#include <time.h>
#include <stdatomic.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static rw_policy *policy(const char *rates, const rw_policy_options *opts) {
    rw_policy *p = NULL;
    CHECK_OK(rw_policy_from_str("api", rates, opts, &p));
    CHECK(p != NULL);
    return p;
}

static rw_decision check(const rw_policy *p, const char *key, uint64_t now) {
    rw_decision d;
    memset(&d, 0xAB, sizeof d);
    CHECK_OK(rw_check(p, KEY(key), now, 1, &d));
    return d;
}

/* Admissions of `n` single-permit checks of `key` at `now`. */
static int admitted(const rw_policy *p, const char *key, uint64_t now, int n) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        count += check(p, key, now).allowed;
    }
    return count;
}

static rw_policy *with_options(const char *rates, const char *algorithm, const char *headers) {
    rw_policy_options o = RW_POLICY_OPTIONS_INIT;
    o.algorithm = algorithm;
    o.headers = headers;
    return policy(rates, &o);
}


/* ---- basics ------------------------------------------------------------------------------ */

static void test_version_and_status_names(void) {
    CHECK_STR(rw_version(), RW_VERSION);
    CHECK_STR(rw_status_str(RW_OK), "RW_OK");
    CHECK_STR(rw_status_str(RW_BUFFER_TOO_SMALL), "RW_BUFFER_TOO_SMALL");
    CHECK_STR(rw_status_str(RW_INTERNAL), "RW_INTERNAL");
    CHECK_STR(rw_status_str(RW_STORAGE_URL), "RW_STORAGE_URL");
    CHECK_STR(rw_status_str(RW_STORAGE_UNAVAILABLE), "RW_STORAGE_UNAVAILABLE");
    CHECK_STR(rw_status_str(RW_STORAGE_ERROR), "RW_STORAGE_ERROR");
    CHECK_STR(rw_source_str(RW_SOURCE_MEMORY), "memory");
    CHECK_STR(rw_source_str(RW_SOURCE_REDIS), "redis");
    CHECK_STR(rw_source_str(RW_SOURCE_FAIL_OPEN), "fail-open");
    CHECK_STR(rw_source_str(RW_SOURCE_FAIL_CLOSED), "fail-closed");
    CHECK_STR(rw_source_str(RW_SOURCE_LOCAL), "local");
    CHECK_STR(rw_source_str(1000), "unknown");
    CHECK_STR(rw_status_str(-1), "RW_UNKNOWN_STATUS");
    CHECK_STR(rw_status_str(1000), "RW_UNKNOWN_STATUS");
    CHECK(rw_last_error() != NULL);
    CHECK(RW_DENIED_STATUS == 429);
    CHECK_STR(RW_DENIED_CONTENT_TYPE, "application/json");
    CHECK(RW_MAX_LIMITS == 8);
}

static void test_token_bucket_decisions(void) {
    rw_policy *p = policy("3/second", NULL);
    const uint64_t T = 333333334; /* ceil(1 s / 3) */
    for (uint64_t i = 0; i < 3; i++) {
        rw_decision d = check(p, "alice", 0);
        CHECK(d.allowed);
        CHECK(d.limit == 3);
        CHECK(d.remaining == 2 - i);
        CHECK(d.retry_after == 0);
        CHECK(d.reset_after == (i + 1) * T);
        CHECK(d.limit_count == 1);
        CHECK(d.most_restrictive == 0);
        CHECK(d.limits[0].allowed && d.limits[0].remaining == d.remaining);
    }
    rw_decision d = check(p, "alice", 0);
    CHECK(!d.allowed);
    CHECK(d.remaining == 0);
    CHECK(d.retry_after == T);
    CHECK(d.reset_after == 3 * T);
    CHECK(!d.limits[0].allowed && d.limits[0].retry_after == T);
    /* A denial takes nothing: the same answer again. */
    rw_decision again = check(p, "alice", 0);
    CHECK(!again.allowed && again.retry_after == T);
    /* One interval later exactly one more passes. */
    CHECK(check(p, "alice", T).allowed);
    CHECK(!check(p, "alice", T).allowed);
    /* Every key has its own budget. */
    CHECK(admitted(p, "bob", 0, 10) == 3);
    CHECK_OK(rw_policy_free(p));
}

static void test_classic_demo_bucket(void) {
    /* Capacity 5, refilling one per second: five at once, then one per second. */
    rw_policy_options o = RW_POLICY_OPTIONS_INIT;
    o.burst = 5;
    rw_policy *p = policy("1/second", &o);
    for (int i = 0; i < 5; i++) {
        rw_decision d = check(p, "client", 0);
        CHECK(d.allowed && d.limit == 5 && d.remaining == (uint64_t)(4 - i));
    }
    rw_decision d = check(p, "client", 0);
    CHECK(!d.allowed && d.retry_after == SECOND);
    CHECK(rw_retry_after_seconds(d.retry_after) == 1);
    CHECK(check(p, "client", SECOND).allowed);
    CHECK(!check(p, "client", SECOND).allowed);
    CHECK(admitted(p, "client", 3 * SECOND, 5) == 2);
    rw_policy_free(p);
}

static void test_peek_refund_reset(void) {
    rw_policy *p = policy("2/minute", NULL);
    rw_decision d;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(rw_peek(p, KEY("k"), 0, 1, &d));
        CHECK(d.allowed && d.remaining == 1);
    }
    CHECK(admitted(p, "k", 0, 3) == 2);
    CHECK_OK(rw_peek(p, KEY("k"), 0, 1, &d));
    CHECK(!d.allowed && d.retry_after == 30 * SECOND);
    /* Refund gives a permit back ("count only failed logins"), never above full. */
    CHECK_OK(rw_refund(p, KEY("k"), 0, 1, &d));
    CHECK(d.remaining == 1);
    CHECK(check(p, "k", 0).allowed);
    CHECK(!check(p, "k", 0).allowed);
    CHECK_OK(rw_refund(p, KEY("k"), 0, 100, &d));
    CHECK(d.remaining == 2);
    CHECK(admitted(p, "k", 0, 3) == 2);
    /* Reset makes the key full again; other keys are untouched. */
    CHECK(admitted(p, "other", 0, 3) == 2);
    CHECK_OK(rw_reset(p, KEY("k")));
    CHECK(admitted(p, "k", 0, 3) == 2);
    CHECK(admitted(p, "other", 0, 1) == 0);
    rw_policy_free(p);
}

static void test_weighted_cost(void) {
    rw_policy *p = policy("10/minute", NULL);
    rw_decision d;
    CHECK_OK(rw_check(p, KEY("k"), 0, 7, &d));
    CHECK(d.allowed && d.remaining == 3);
    CHECK_OK(rw_check(p, KEY("k"), 0, 4, &d));
    CHECK(!d.allowed && d.remaining == 3);
    CHECK_OK(rw_check(p, KEY("k"), 0, 3, &d));
    CHECK(d.allowed && d.remaining == 0);
    rw_policy_free(p);
}

static void test_multi_limit_policy(void) {
    rw_policy *p = policy("2/second; 3/minute", NULL);
    rw_decision d = check(p, "alice", 0);
    CHECK(d.allowed && d.limit_count == 2);
    CHECK(d.limits[0].limit == 2 && d.limits[1].limit == 3);
    CHECK(check(p, "alice", 0).allowed);
    d = check(p, "alice", 0);
    CHECK(!d.allowed);
    CHECK(d.most_restrictive == 0); /* the per-second limit said no */
    CHECK(!d.limits[0].allowed);
    /* A denied request took nothing from the per-minute limit. */
    d = check(p, "alice", SECOND);
    CHECK(d.allowed);
    CHECK(d.remaining == 0 && d.most_restrictive == 1); /* the per-minute limit is used up */
    d = check(p, "alice", 2 * SECOND);
    CHECK(!d.allowed && d.most_restrictive == 1);
    CHECK(d.retry_after > 10 * SECOND && d.retry_after <= MINUTE);
    rw_policy_free(p);
}

static void test_every_algorithm(void) {
    const char *algorithms[] = {"token-bucket", "gcra",          "fixed-window",
                                "fixed-window-aligned", "sliding-window-counter",
                                "sliding-window", "sliding-log",  "moving-window"};
    for (size_t i = 0; i < sizeof algorithms / sizeof *algorithms; i++) {
        rw_policy *p = with_options("4/second", algorithms[i], NULL);
        if (p == NULL) {
            continue;
        }
        int n = admitted(p, "k", 0, 10);
        if (n != 4) {
            fprintf(stderr, "%s: %s admitted %d of 10, expected 4\n", current_test, algorithms[i],
                    n);
            current_failed = 1;
        }
        rw_decision d = check(p, "k", 0);
        /* (the sliding window counter's approximation may ask for a little more than 1 s) */
        CHECK(!d.allowed && d.limit == 4 && d.retry_after > 0 && d.retry_after <= 2 * SECOND);
        /* Two periods later everything is available again. */
        CHECK(admitted(p, "k", 2 * SECOND, 10) == 4);
        rw_policy_free(p);
    }
}

static uint64_t clock_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_builtin_clock(void) {
    uint64_t a = rw_now(), b = rw_now();
    CHECK(b >= a);
    /* On Linux rw_now() is CLOCK_MONOTONIC itself: a C service's own readings mix with it. */
    uint64_t before = clock_monotonic_ns(), now = rw_now(), after = clock_monotonic_ns();
    CHECK(before <= now && now <= after);
    rw_policy *p = policy("2/hour", NULL);
    rw_decision d;
    CHECK_OK(rw_peek_now(p, KEY("k"), 1, &d));
    CHECK(d.allowed && d.remaining == 1);
    CHECK_OK(rw_check_now(p, KEY("k"), 1, &d));
    CHECK(d.allowed && d.remaining == 1);
    /* Explicit time from rw_now() mixes with the built-in clock. */
    CHECK_OK(rw_check(p, KEY("k"), rw_now(), 1, &d));
    CHECK(d.allowed && d.remaining == 0);
    CHECK_OK(rw_check_now(p, KEY("k"), 1, &d));
    CHECK(!d.allowed && d.retry_after > 0);
    CHECK_OK(rw_refund_now(p, KEY("k"), 1, &d));
    CHECK(d.remaining == 1);
    CHECK_OK(rw_check_now(p, KEY("k"), 1, &d));
    CHECK(d.allowed);
    CHECK(rw_unix_time_ms() > 1600000000000ULL);
    rw_policy_free(p);
}

static void test_coarse_clock(void) {
    uint64_t tick = rw_coarse_resolution_ns();
    CHECK(tick >= 1 && tick <= 100000000ULL);
    uint64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t coarse = rw_now_coarse(), precise = rw_now();
        /* The same timeline: read after it, rw_now() is never behind, and the coarse clock lags
         * by about a tick (the bound is loose: a preempted thread reads late). */
        CHECK(coarse <= precise && precise - coarse < tick + 1000000000ULL);
        CHECK(coarse >= last);
        last = coarse;
    }
}

static void test_coarse_clock_policy_flag(void) {
    const uint64_t hour = 3600ULL * 1000000000ULL;
    rw_policy_options o = RW_POLICY_OPTIONS_INIT;
    o.algorithm = "token-bucket";
    o.flags = RW_POLICY_COARSE_CLOCK;
    rw_policy *p = policy("1/hour", &o);
    const char *keys[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        rw_decision d;
        uint64_t before = rw_now_coarse();
        CHECK_OK(rw_check_now(p, KEY(keys[i]), 1, &d));
        uint64_t after = rw_now_coarse();
        CHECK(d.allowed && after >= before);
        /* The admission was stamped with a coarse reading in [before, after]: seen from `after`,
         * the bucket is full again in at most an hour. (A stamp from rw_now(), later than `after`
         * unless a tick fell between the check and the read, would leave more than an hour.) */
        CHECK_OK(rw_peek(p, KEY(keys[i]), after, 1, &d));
        CHECK(!d.allowed);
        CHECK(d.retry_after <= hour && d.retry_after >= hour - (after - before));
        CHECK_OK(rw_peek_now(p, KEY(keys[i]), 1, &d));
        CHECK(!d.allowed && d.retry_after <= hour);
    }
    /* Explicit rw_now() mixes with the coarse clock: it never admits more than the quota. */
    rw_decision d;
    CHECK_OK(rw_check(p, KEY("a"), rw_now(), 1, &d));
    CHECK(!d.allowed);
    CHECK_OK(rw_refund_now(p, KEY("a"), 1, &d));
    CHECK(d.remaining == 1);
    CHECK_OK(rw_check_now(p, KEY("a"), 1, &d));
    CHECK(d.allowed);
    rw_policy_free(p);
}

static void test_binary_and_empty_keys(void) {
    rw_policy *p = policy("1/hour", NULL);
    const uint8_t a[] = {'a', 0, 'b'}, b[] = {'a', 0, 'c'}, high[] = {0xff, 0xfe, 0x00};
    rw_decision d;
    CHECK_OK(rw_check(p, a, sizeof a, 0, 1, &d));
    CHECK(d.allowed);
    CHECK_OK(rw_check(p, b, sizeof b, 0, 1, &d)); /* differs after the NUL: another key */
    CHECK(d.allowed);
    CHECK_OK(rw_check(p, a, sizeof a, 0, 1, &d));
    CHECK(!d.allowed);
    CHECK_OK(rw_check(p, high, sizeof high, 0, 1, &d)); /* not UTF-8: fine for a key */
    CHECK(d.allowed);
    CHECK_OK(rw_check(p, (const uint8_t *)"", 0, 0, 1, &d)); /* the empty key is a key */
    CHECK(d.allowed);
    CHECK_OK(rw_check(p, (const uint8_t *)"", 0, 0, 1, &d));
    CHECK(!d.allowed);
    rw_policy_free(p);
}

static void test_extreme_and_backward_time(void) {
    rw_policy *p = policy("3/second", NULL);
    const uint64_t far = UINT64_MAX / 2;
    CHECK(admitted(p, "far", far, 5) == 3);
    CHECK(admitted(p, "far", far - 1, 5) == 0);
    CHECK(admitted(p, "far", 0, 5) == 0); /* the clock stepped back: never more than the quota */
    /* The very end of time: arithmetic saturates, nothing crashes, never more than the quota. */
    CHECK(admitted(p, "max", UINT64_MAX, 5) <= 3);
    CHECK(admitted(p, "max", UINT64_MAX - 1, 5) <= 3);
    CHECK(admitted(p, "zero", 0, 5) == 3);
    rw_decision d = check(p, "zero", 0);
    CHECK(!d.allowed && d.retry_after > 0);
    rw_policy_free(p);
}

static void test_overflow_policies(void) {
    /* Deny new keys when the table is full: a key flood cannot evict a counter under attack. */
    rw_policy_options o = RW_POLICY_OPTIONS_INIT;
    o.max_keys = 64;
    o.overflow = RW_OVERFLOW_DENY_NEW_KEYS;
    rw_policy *p = policy("1/hour", &o);
    CHECK(check(p, "victim", 0).allowed);
    int denied_new = 0;
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "flood-%d", i);
        denied_new += !check(p, key, 1).allowed;
    }
    CHECK(denied_new > 0);
    CHECK(!check(p, "victim", 2).allowed); /* still limited */
    rw_policy_free(p);

    /* Evict (the default): new keys keep being served. */
    o.overflow = RW_OVERFLOW_EVICT;
    p = policy("1/hour", &o);
    int admitted_new = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "flood-%d", i);
        admitted_new += check(p, key, 1).allowed;
    }
    CHECK(admitted_new == 5000);
    rw_policy_free(p);
}

static void test_policy_name(void) {
    rw_policy *p = NULL;
    CHECK_OK(rw_policy_from_str("login-v2", "5/15min", NULL, &p));
    const char *name = NULL;
    CHECK_OK(rw_policy_name(p, &name));
    CHECK_STR(name, "login-v2");
    rw_policy_free(p);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_null_pointers(void) {
    rw_policy *p = policy("5/second", NULL);
    rw_policy *out = (rw_policy *)&out; /* a non-NULL sentinel: failures must reset it */
    rw_decision d;
    size_t len = 0;
    char buf[256];

    CHECK_STATUS(rw_policy_from_str(NULL, "1/s", NULL, &out), RW_NULL_POINTER);
    CHECK_MSG("rw_policy_from_str: name is NULL");
    CHECK(out == NULL);
    CHECK_STATUS(rw_policy_from_str("n", NULL, NULL, &out), RW_NULL_POINTER);
    CHECK_MSG("rates is NULL");
    CHECK_STATUS(rw_policy_from_str("n", "1/s", NULL, NULL), RW_NULL_POINTER);
    CHECK_MSG("out is NULL");
    out = (rw_policy *)&out;
    CHECK_STATUS(rw_policy_from_file(NULL, "n", &out), RW_NULL_POINTER);
    CHECK(out == NULL);
    CHECK_STATUS(rw_policy_from_file("x.toml", NULL, &out), RW_NULL_POINTER);
    CHECK_STATUS(rw_policy_from_file("x.toml", "n", NULL), RW_NULL_POINTER);

    CHECK_STATUS(rw_check(NULL, KEY("k"), 0, 1, &d), RW_NULL_POINTER);
    CHECK_MSG("rw_check: policy is NULL");
    CHECK_STATUS(rw_check(p, NULL, 0, 0, 1, &d), RW_NULL_POINTER);
    CHECK_MSG("rw_check: key is NULL");
    CHECK_STATUS(rw_check(p, KEY("k"), 0, 1, NULL), RW_NULL_POINTER);
    CHECK_MSG("rw_check: out is NULL");
    CHECK_STATUS(rw_check_now(NULL, KEY("k"), 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_check_now(p, NULL, 1, 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_check_now(p, KEY("k"), 1, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_peek(NULL, KEY("k"), 0, 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_peek(p, NULL, 1, 0, 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_peek(p, KEY("k"), 0, 1, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_peek_now(NULL, KEY("k"), 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_peek_now(p, NULL, 1, 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_peek_now(p, KEY("k"), 1, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_refund(NULL, KEY("k"), 0, 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_refund(p, NULL, 1, 0, 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_refund(p, KEY("k"), 0, 1, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_refund_now(NULL, KEY("k"), 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_refund_now(p, NULL, 1, 1, &d), RW_NULL_POINTER);
    CHECK_STATUS(rw_refund_now(p, KEY("k"), 1, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_reset(NULL, KEY("k")), RW_NULL_POINTER);
    CHECK_STATUS(rw_reset(p, NULL, 0), RW_NULL_POINTER);

    const char *name = "unchanged";
    CHECK_STATUS(rw_policy_name(NULL, &name), RW_NULL_POINTER);
    CHECK_STATUS(rw_policy_name(p, NULL), RW_NULL_POINTER);
    CHECK_STR(name, "unchanged");

    rw_config *cfg = (rw_config *)&cfg;
    CHECK_STATUS(rw_config_from_file(NULL, &cfg), RW_NULL_POINTER);
    CHECK(cfg == NULL);
    CHECK_STATUS(rw_config_from_file("x.toml", NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_config_from_str(NULL, &cfg), RW_NULL_POINTER);
    CHECK_STATUS(rw_config_from_str("", NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_config_from_env(NULL), RW_NULL_POINTER);
    CHECK_OK(rw_config_from_str("[policies.a]\nlimits = \"1/s\"\n", &cfg));
    CHECK_STATUS(rw_config_policy(NULL, "a", &out), RW_NULL_POINTER);
    CHECK_STATUS(rw_config_policy(cfg, NULL, &out), RW_NULL_POINTER);
    CHECK_STATUS(rw_config_policy(cfg, "a", NULL), RW_NULL_POINTER);
    CHECK_OK(rw_config_free(cfg));

    CHECK_OK(rw_check(p, KEY("k"), 0, 1, &d));
    CHECK_STATUS(rw_render_headers(NULL, &d, NULL, 0, 0, buf, sizeof buf, &len), RW_NULL_POINTER);
    CHECK_STATUS(rw_render_headers(p, NULL, NULL, 0, 0, buf, sizeof buf, &len), RW_NULL_POINTER);
    CHECK_STATUS(rw_render_headers(p, &d, NULL, 0, 0, buf, sizeof buf, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_render_headers(p, &d, NULL, 0, 0, NULL, 10, &len), RW_NULL_POINTER);
    CHECK_MSG("buf");
    CHECK_STATUS(rw_render_denied_body(NULL, buf, sizeof buf, &len), RW_NULL_POINTER);
    CHECK_STATUS(rw_render_denied_body(&d, buf, sizeof buf, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_render_denied_body(&d, NULL, 10, &len), RW_NULL_POINTER);

    /* Freeing NULL is a no-op. */
    CHECK_OK(rw_policy_free(NULL));
    CHECK_OK(rw_config_free(NULL));
    rw_policy_free(p);
}

static void test_invalid_utf8(void) {
    rw_policy *out = NULL;
    rw_config *cfg = NULL;
    CHECK_STATUS(rw_policy_from_str("\xff", "1/s", NULL, &out), RW_INVALID_UTF8);
    CHECK_MSG("name is not valid UTF-8");
    CHECK_STATUS(rw_policy_from_str("api", "1/s\xc3\x28", NULL, &out), RW_INVALID_UTF8);
    CHECK_MSG("rates is not valid UTF-8 (invalid byte at offset 3)");
    rw_policy_options o = RW_POLICY_OPTIONS_INIT;
    o.algorithm = "gcra\xff";
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_UTF8);
    CHECK_MSG("options->algorithm");
    o.algorithm = NULL;
    o.headers = "\xfflegacy";
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_UTF8);
    CHECK(out == NULL);
    CHECK_STATUS(rw_policy_from_file("\xff.toml", "api", &out), RW_INVALID_UTF8);
    CHECK_STATUS(rw_config_from_file("\xff.toml", &cfg), RW_INVALID_UTF8);
    CHECK_STATUS(rw_config_from_str("[policies.a]\nlimits = \"1/s\" # \xff\n", &cfg),
                 RW_INVALID_UTF8);
    CHECK_OK(rw_config_from_str("[policies.a]\nlimits = \"1/s\"\n", &cfg));
    CHECK_STATUS(rw_config_policy(cfg, "\xe2\x82", &out), RW_INVALID_UTF8);
    rw_config_free(cfg);
}

static void test_bad_rates_and_names(void) {
    rw_policy *out = NULL;
    CHECK_STATUS(rw_policy_from_str("api", "5/fortnight", NULL, &out), RW_INVALID_RATE);
    CHECK_MSG("rw_policy_from_str: invalid rate string");
    CHECK_MSG("fortnight");
    CHECK(out == NULL);
    CHECK_STATUS(rw_policy_from_str("api", "", NULL, &out), RW_INVALID_RATE);
    CHECK_STATUS(rw_policy_from_str("api", "ten per second", NULL, &out), RW_INVALID_RATE);
    CHECK_STATUS(rw_policy_from_str("api", "0/second", NULL, &out), RW_INVALID_RATE);
    CHECK_STATUS(rw_policy_from_str("api", "1/s;2/s;3/s;4/s;5/s;6/s;7/s;8/s;9/s", NULL, &out),
                 RW_INVALID_RATE);
    CHECK_MSG("at most 8 limits");
    CHECK_STATUS(rw_policy_from_str("", "1/s", NULL, &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("non-empty name");
    CHECK_STATUS(rw_policy_from_str("  ", "1/s", NULL, &out), RW_INVALID_ARGUMENT);
    CHECK(out == NULL);
    /* The grammar's other spellings work. */
    const char *good[] = {"10/minute", "10 per minute", "5 per 10 minutes", "100/day;10/hour",
                          "5/10min",   "60/min",        "1/s | 100/h"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        CHECK_OK(rw_policy_from_str("api", good[i], NULL, &out));
        rw_policy_free(out);
        out = NULL;
    }
}

static void test_bad_costs_change_nothing(void) {
    rw_policy *p = policy("3/second", NULL);
    rw_decision d, untouched;
    memset(&d, 0x5A, sizeof d);
    memcpy(&untouched, &d, sizeof d);
    CHECK_STATUS(rw_check(p, KEY("k"), 0, 0, &d), RW_ZERO_COST);
    CHECK_MSG("rw_check: cost must be at least 1");
    CHECK_STATUS(rw_check(p, KEY("k"), 0, 4, &d), RW_INSUFFICIENT_CAPACITY);
    CHECK_MSG("cost 4 exceeds the limiter's capacity of 3");
    CHECK_STATUS(rw_peek(p, KEY("k"), 0, 0, &d), RW_ZERO_COST);
    CHECK_STATUS(rw_peek(p, KEY("k"), 0, 9, &d), RW_INSUFFICIENT_CAPACITY);
    CHECK_STATUS(rw_check_now(p, KEY("k"), 0, &d), RW_ZERO_COST);
    CHECK_STATUS(rw_refund(p, KEY("k"), 0, 0, &d), RW_ZERO_COST);
    CHECK(memcmp(&d, &untouched, sizeof d) == 0); /* the out-parameter is untouched */
    CHECK(admitted(p, "k", 0, 5) == 3);           /* and so is the state */
    rw_policy_free(p);
}

static void test_options_struct(void) {
    rw_policy *out = NULL;
    rw_policy_options o = RW_POLICY_OPTIONS_INIT;
    CHECK(o.struct_size == sizeof(rw_policy_options));

    o.struct_size = 0;
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("struct_size is 0");
    o.struct_size = 1u << 20;
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_ARGUMENT);

    /* A caller compiled against an older, smaller struct: fields past its size are defaults. */
    rw_policy_options old = RW_POLICY_OPTIONS_INIT;
    old.struct_size = offsetof(rw_policy_options, burst);
    old.burst = 5; /* beyond the old struct: ignored */
    CHECK_OK(rw_policy_from_str("api", "1/s", &old, &out));
    CHECK(admitted(out, "k", 0, 5) == 1);
    rw_policy_free(out);

    /* A caller compiled against a newer header: unknown fields must be zero. */
    struct {
        rw_policy_options known;
        uint64_t newer_field;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.known.struct_size = sizeof newer;
    newer.known.burst = 2;
    CHECK_OK(rw_policy_from_str("api", "1/s", &newer.known, &out));
    CHECK(admitted(out, "k", 0, 5) == 2);
    rw_policy_free(out);
    newer.newer_field = 1;
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &newer.known, &out), RW_UNSUPPORTED);
    CHECK_MSG("upgrade libratewall");
    CHECK(out == NULL);

    o = (rw_policy_options)RW_POLICY_OPTIONS_INIT;
    o.algorithm = "leaky-bucket";
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("unknown algorithm \"leaky-bucket\"");
    o = (rw_policy_options)RW_POLICY_OPTIONS_INIT;
    o.burst = 5;
    CHECK_STATUS(rw_policy_from_str("api", "1/s; 10/min", &o, &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("burst applies only");
    o.algorithm = "fixed-window";
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_ARGUMENT);
    o = (rw_policy_options)RW_POLICY_OPTIONS_INIT;
    o.overflow = 7;
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("options->overflow is 7");
    o = (rw_policy_options)RW_POLICY_OPTIONS_INIT;
    o.flags = RW_POLICY_COARSE_CLOCK | 2;
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_UNSUPPORTED);
    CHECK_MSG("options->flags is 0x3: the only flag is RW_POLICY_COARSE_CLOCK (1)");
    CHECK(out == NULL);
    o = (rw_policy_options)RW_POLICY_OPTIONS_INIT;
    o.headers = "draft-7+draft-8";
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("options->headers");
    o.headers = "draft-9";
    CHECK_STATUS(rw_policy_from_str("api", "1/s", &o, &out), RW_INVALID_ARGUMENT);
    o = (rw_policy_options)RW_POLICY_OPTIONS_INIT;
    o.headers = "legacy, draft-7";
    o.max_keys = 10;
    o.overflow = RW_OVERFLOW_DENY_NEW_KEYS;
    o.algorithm = "sliding-log";
    CHECK_OK(rw_policy_from_str("api", "2/s", &o, &out));
    rw_policy_free(out);
}

static void test_not_a_handle(void) {
    /* Memory that is not a handle is rejected, not trusted. */
    _Alignas(16) unsigned char garbage[512];
    memset(garbage, 0, sizeof garbage);
    rw_decision d;
    CHECK_STATUS(rw_check((const rw_policy *)garbage, KEY("k"), 0, 1, &d), RW_INVALID_ARGUMENT);
    CHECK_MSG("not a live rw_policy handle");
    CHECK_STATUS(rw_policy_free((rw_policy *)garbage), RW_INVALID_ARGUMENT);
    rw_policy *out = NULL;
    CHECK_STATUS(rw_config_policy((const rw_config *)garbage, "a", &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("not a live rw_config handle");
    CHECK_STATUS(rw_config_free((rw_config *)garbage), RW_INVALID_ARGUMENT);
    /* A handle of the other type is rejected too, without reading past its end (ASan). */
    rw_config *config = NULL;
    CHECK_OK(rw_config_from_str("[policies.a]\nlimits = \"1/s\"\n", &config));
    CHECK_STATUS(rw_check((const rw_policy *)config, KEY("k"), 0, 1, &d), RW_INVALID_ARGUMENT);
    CHECK_MSG("not a live rw_policy handle");
    rw_policy *from_config = NULL;
    CHECK_OK(rw_config_policy(config, "a", &from_config));
    CHECK_STATUS(rw_config_policy((const rw_config *)from_config, "a", &out), RW_INVALID_ARGUMENT);
    CHECK_MSG("not a live rw_config handle");
    rw_policy_free(from_config);
    rw_config_free(config);
    /* A misaligned pointer too. */
    rw_policy *p = policy("1/s", NULL);
    CHECK_STATUS(rw_check(p, KEY("k"), 0, 1, (rw_decision *)(garbage + 1)), RW_INVALID_ARGUMENT);
    CHECK_MSG("aligned");
    rw_policy_free(p);
}

/* ---- the HTTP contract ---------------------------------------------------------------------- */

#define NOW_MS 1700000000000ULL /* Tue, 14 Nov 2023 22:13:20 GMT */

static void test_headers_legacy_and_sizing(void) {
    rw_policy *p = policy("3/second", NULL);
    rw_decision d;
    for (int i = 0; i < 4; i++) {
        d = check(p, "203.0.113.7", 0);
    }
    CHECK(!d.allowed);
    const char *want = "X-RateLimit-Limit: 3\r\n"
                       "X-RateLimit-Remaining: 0\r\n"
                       "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
                       "X-RateLimit-Reset: 1700000002\r\n"
                       "Retry-After: 1\r\n";
    size_t need = 0;
    /* Ask for the size first. */
    CHECK_STATUS(rw_render_headers(p, &d, NULL, 0, NOW_MS, NULL, 0, &need), RW_BUFFER_TOO_SMALL);
    CHECK(need == strlen(want) + 1);
    CHECK_MSG("bytes are needed");
    /* One byte short: an error and an empty string, never an overflow. */
    char *small = malloc(need - 1);
    size_t len = 12345;
    CHECK_STATUS(rw_render_headers(p, &d, NULL, 0, NOW_MS, small, need - 1, &len),
                 RW_BUFFER_TOO_SMALL);
    CHECK(len == need);
    CHECK(small[0] == '\0');
    free(small);
    CHECK_STATUS(rw_render_headers(p, &d, NULL, 0, NOW_MS, (char[1]){'x'}, 1, &len),
                 RW_BUFFER_TOO_SMALL);
    /* Exactly the size asked for. */
    char *exact = malloc(need);
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, exact, need, &len));
    CHECK(len == need - 1 && strlen(exact) == len);
    CHECK_STR(exact, want);
    free(exact);
    /* An allowed decision has no Retry-After. */
    d = check(p, "fresh", 0);
    char buf[512];
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK_STR(buf, "X-RateLimit-Limit: 3\r\n"
                   "X-RateLimit-Remaining: 2\r\n"
                   "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
                   "X-RateLimit-Reset: 1700000001\r\n");
    rw_policy_free(p);
}

static void test_headers_ietf_multi_limit(void) {
    rw_policy *p = with_options("2/second; 3/minute", NULL, "ietf");
    rw_decision d = check(p, "k", 0);
    char buf[512];
    size_t len;
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK_STR(buf, "RateLimit-Policy: \"api:2/second\";q=2;w=1, \"api:3/minute\";q=3;w=60\r\n"
                   "RateLimit: \"api:2/second\";r=1;t=1, \"api:3/minute\";r=2;t=20\r\n");
    check(p, "k", 0);
    d = check(p, "k", 0);
    CHECK(!d.allowed);
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK(strstr(buf, "\r\nRetry-After: 1\r\n") != NULL);
    rw_policy_free(p);
}

static void test_headers_draft8_partition_key(void) {
    rw_policy *p = with_options("100/minute", NULL, "draft-8");
    rw_decision d = check(p, "203.0.113.7", 0);
    char buf[512];
    size_t len;
    CHECK_OK(rw_render_headers(p, &d, KEY("203.0.113.7"), NOW_MS, buf, sizeof buf, &len));
    /* One permit of a 100/minute bucket refills in 0.6 s: t=1. */
    CHECK(strncmp(buf, "RateLimit: \"100-in-1min\"; r=99; t=1\r\n", 37) == 0);
    CHECK(strstr(buf, "RateLimit-Policy: \"100-in-1min\"; q=100; w=60; pk=:") != NULL);
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK(strstr(buf, "pk=") == NULL);
    CHECK_STATUS(rw_render_headers(p, &d, (const uint8_t *)"\xff", 1, NOW_MS, buf, sizeof buf,
                                   &len),
                 RW_INVALID_UTF8);
    CHECK_MSG("partition key");
    rw_policy_free(p);

    /* "none" still sends Retry-After on a denial, as the HTTP contract requires. */
    p = with_options("1/minute", NULL, "none");
    check(p, "k", 0);
    d = check(p, "k", 0);
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK_STR(buf, "Retry-After: 60\r\n");
    d = check(p, "other", 0);
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK_STR(buf, "");
    CHECK(len == 0);
    /* Even an empty result needs room for its NUL. */
    CHECK_STATUS(rw_render_headers(p, &d, NULL, 0, NOW_MS, NULL, 0, &len), RW_BUFFER_TOO_SMALL);
    CHECK(len == 1);
    rw_policy_free(p);
}

static void test_headers_reject_foreign_decisions(void) {
    rw_policy *p = policy("2/second; 3/minute", NULL);
    rw_decision d = check(p, "k", 0);
    char buf[512];
    size_t len;
    rw_decision bad = d;
    bad.limit_count = 0;
    CHECK_STATUS(rw_render_headers(p, &bad, NULL, 0, NOW_MS, buf, sizeof buf, &len),
                 RW_INVALID_ARGUMENT);
    CHECK_MSG("limit_count is 0");
    bad.limit_count = 3; /* more limits than this policy has */
    CHECK_STATUS(rw_render_headers(p, &bad, NULL, 0, NOW_MS, buf, sizeof buf, &len),
                 RW_INVALID_ARGUMENT);
    bad.limit_count = 1000;
    CHECK_STATUS(rw_render_headers(p, &bad, NULL, 0, NOW_MS, buf, sizeof buf, &len),
                 RW_INVALID_ARGUMENT);
    /* A bool byte that is neither 0 nor 1 is read as true, never trusted blindly. */
    bad = d;
    memset(&bad.limits[0].allowed, 2, 1);
    CHECK_OK(rw_render_headers(p, &bad, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    /* A decision from a one-limit policy renders on it; the fields are plain numbers. */
    rw_policy *one = policy("5/second", NULL);
    rw_decision e = check(one, "k", 0);
    CHECK_OK(rw_render_headers(p, &e, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    rw_policy_free(one);
    rw_policy_free(p);
}

static void test_denied_body(void) {
    rw_decision d;
    memset(&d, 0, sizeof d);
    char buf[64];
    size_t len;
    d.retry_after = 1;
    CHECK_OK(rw_render_denied_body(&d, buf, sizeof buf, &len));
    CHECK_STR(buf, "{\"error\":\"rate_limited\",\"retryAfter\":1}");
    CHECK(len == strlen(buf));
    d.retry_after = 30 * SECOND;
    CHECK_OK(rw_render_denied_body(&d, buf, sizeof buf, &len));
    CHECK_STR(buf, "{\"error\":\"rate_limited\",\"retryAfter\":30}");
    d.retry_after = 1500000000ULL;
    CHECK_OK(rw_render_denied_body(&d, buf, sizeof buf, &len));
    CHECK_STR(buf, "{\"error\":\"rate_limited\",\"retryAfter\":2}");
    d.retry_after = UINT64_MAX; /* 64 bytes always suffice */
    CHECK_OK(rw_render_denied_body(&d, buf, sizeof buf, &len));
    CHECK_STR(buf, "{\"error\":\"rate_limited\",\"retryAfter\":18446744074}");
    /* Sizing. */
    d.retry_after = 30 * SECOND;
    CHECK_STATUS(rw_render_denied_body(&d, NULL, 0, &len), RW_BUFFER_TOO_SMALL);
    CHECK(len == strlen("{\"error\":\"rate_limited\",\"retryAfter\":30}") + 1);
    char tiny[8] = "xxxxxxx";
    CHECK_STATUS(rw_render_denied_body(&d, tiny, sizeof tiny, &len), RW_BUFFER_TOO_SMALL);
    CHECK(tiny[0] == '\0');
    /* The body and Retry-After agree. */
    CHECK(rw_retry_after_seconds(0) == 1);
    CHECK(rw_retry_after_seconds(1) == 1);
    CHECK(rw_retry_after_seconds(2 * SECOND) == 2);
    CHECK(rw_retry_after_seconds(SECOND + 1) == 2);
}

/* ---- configuration -------------------------------------------------------------------------- */

static const char *CONFIG = "[defaults]\n"
                            "headers = \"legacy, ietf\"\n"
                            "\n"
                            "[policies.login]\n"
                            "limits = \"5/15min\"\n"
                            "algorithm = \"sliding-log\"\n"
                            "overflow = \"deny-new-keys\"\n"
                            "\n"
                            "[policies.api]\n"
                            "limits = \"10/second; 1000/day\"\n"
                            "headers = \"draft-7\"\n";

static void test_config_from_str(void) {
    rw_config *cfg = NULL;
    CHECK_OK(rw_config_from_str(CONFIG, &cfg));
    rw_policy *login = NULL, *login2 = NULL, *api = NULL, *missing = (rw_policy *)&cfg;
    CHECK_OK(rw_config_policy(cfg, "login", &login));
    CHECK_OK(rw_config_policy(cfg, "login", &login2));
    CHECK_OK(rw_config_policy(cfg, "api", &api));
    CHECK_STATUS(rw_config_policy(cfg, "signup", &missing), RW_NOT_FOUND);
    CHECK_MSG("no policy named \"signup\"");
    CHECK_MSG("api, login");
    CHECK(missing == NULL);
    /* The configuration can go; the handles stay. */
    CHECK_OK(rw_config_free(cfg));
    const char *name;
    CHECK_OK(rw_policy_name(login, &name));
    CHECK_STR(name, "login");
    /* Two handles on one policy share its state. */
    CHECK(admitted(login, "alice@example.com", 0, 3) == 3);
    CHECK(admitted(login2, "alice@example.com", MINUTE, 3) == 2);
    rw_decision d = check(login, "alice@example.com", 2 * MINUTE);
    CHECK(!d.allowed && d.limit == 5 && d.retry_after == 13 * MINUTE); /* when 0's entry expires */
    /* Each policy renders its configured header sets. */
    char buf[512];
    size_t len;
    CHECK_OK(rw_render_headers(login, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK(strncmp(buf, "X-RateLimit-Limit: 5\r\n", 22) == 0);
    CHECK(strstr(buf, "RateLimit-Policy: \"login\";q=5;w=900\r\n") != NULL);
    CHECK(strstr(buf, "Retry-After: 780\r\n") != NULL);
    d = check(api, "k", 0);
    CHECK(d.limit_count == 2);
    CHECK_OK(rw_render_headers(api, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK_STR(buf, "RateLimit-Policy: 10;w=1\r\n"
                   "RateLimit: limit=10, remaining=9, reset=1\r\n");
    rw_policy_free(login);
    rw_policy_free(login2);
    rw_policy_free(api);
}

static void test_config_errors(void) {
    rw_config *cfg = (rw_config *)&cfg;
    CHECK_STATUS(rw_config_from_str("[policies.login\nlimits = 1", &cfg), RW_CONFIG);
    CHECK_MSG("line 1");
    CHECK(cfg == NULL);
    CHECK_STATUS(rw_config_from_str("[policies.login]\nlimits = \"5/fortnight\"\n", &cfg),
                 RW_CONFIG);
    CHECK_MSG("line 2");
    CHECK_STATUS(rw_config_from_str("[policies.login]\nlimit = \"5/min\"\n", &cfg), RW_CONFIG);
    CHECK_MSG("limit");
    CHECK_STATUS(rw_config_from_str("[policies.login]\nalgorithm = \"sliding-log\"\n", &cfg),
                 RW_CONFIG);
    CHECK_MSG("missing field `limits`");
    CHECK_STATUS(rw_config_from_str("[policies.login]\nlimits = \"1/s; 2/min\"\nburst = 3\n", &cfg),
                 RW_CONFIG);
    CHECK_MSG("policy \"login\"");
    /* A storage scheme the configuration does not know is a configuration error. */
    CHECK_STATUS(rw_config_from_str("[defaults]\nstorage = \"http://127.0.0.1:6379/0\"\n"
                                    "[policies.a]\nlimits = \"1/s\"\n",
                                    &cfg),
                 RW_CONFIG);
    CHECK_MSG("unsupported storage URL \"http://127.0.0.1:6379/0\"");
    CHECK(cfg == NULL);
    /* An empty configuration is valid and has no policies. */
    CHECK_OK(rw_config_from_str("", &cfg));
    rw_policy *p = NULL;
    CHECK_STATUS(rw_config_policy(cfg, "x", &p), RW_NOT_FOUND);
    CHECK_MSG("(it has: none)");
    rw_config_free(cfg);
}

static void test_config_from_file(void) {
    char path[] = "/tmp/ratewall-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        return;
    }
    FILE *f = fdopen(fd, "w");
    fputs(CONFIG, f);
    fclose(f);

    rw_config *cfg = NULL;
    CHECK_OK(rw_config_from_file(path, &cfg));
    rw_policy *api = NULL;
    CHECK_OK(rw_config_policy(cfg, "api", &api));
    CHECK(admitted(api, "k", 0, 20) == 10);
    rw_policy_free(api);
    rw_config_free(cfg);

    rw_policy *login = NULL;
    CHECK_OK(rw_policy_from_file(path, "login", &login));
    CHECK(admitted(login, "k", 0, 20) == 5);
    rw_policy_free(login);
    login = (rw_policy *)&login;
    CHECK_STATUS(rw_policy_from_file(path, "nope", &login), RW_NOT_FOUND);
    CHECK(login == NULL);
    unlink(path);

    CHECK_STATUS(rw_config_from_file("/nonexistent/ratewall.toml", &cfg), RW_IO);
    CHECK_MSG("cannot read config file /nonexistent/ratewall.toml");
    CHECK(cfg == NULL);
    CHECK_STATUS(rw_policy_from_file("/nonexistent/ratewall.toml", "api", &login), RW_IO);
    /* A directory is not a file. */
    CHECK_STATUS(rw_config_from_file("/tmp", &cfg), RW_IO);
}

static void test_config_from_env(void) {
    setenv("RATEWALL_POLICY_ENVTEST_LIMITS", "2/minute", 1);
    setenv("RATEWALL_HEADERS", "ietf", 1);
    rw_config *cfg = NULL;
    CHECK_OK(rw_config_from_env(&cfg));
    rw_policy *p = NULL;
    CHECK_OK(rw_config_policy(cfg, "envtest", &p));
    CHECK(admitted(p, "k", 0, 5) == 2);
    rw_decision d = check(p, "k", 0);
    char buf[256];
    size_t len;
    CHECK_OK(rw_render_headers(p, &d, NULL, 0, NOW_MS, buf, sizeof buf, &len));
    CHECK(strncmp(buf, "RateLimit-Policy: \"envtest\";q=2;w=60\r\n", 38) == 0);
    rw_policy_free(p);
    rw_config_free(cfg);

    setenv("RATEWALL_POLICY_ENVTEST_LIMTIS", "2/minute", 1); /* a typo is an error */
    CHECK_STATUS(rw_config_from_env(&cfg), RW_CONFIG);
    CHECK_MSG("RATEWALL_POLICY_ENVTEST_LIMTIS");
    unsetenv("RATEWALL_POLICY_ENVTEST_LIMTIS");
    setenv("RATEWALL_CONFIG", "/nonexistent/ratewall.toml", 1);
    CHECK_STATUS(rw_config_from_env(&cfg), RW_IO);
    unsetenv("RATEWALL_CONFIG");
    unsetenv("RATEWALL_POLICY_ENVTEST_LIMITS");
    unsetenv("RATEWALL_HEADERS");
}

/* ---- store: what needs no Redis server (the Redis tests are in test_redis.c) ------------- */

static void test_in_process_source_and_health(void) {
    rw_config *cfg = NULL;
    CHECK_OK(rw_config_from_str("[policies.a]\nlimits = \"1/s\"\n", &cfg));
    rw_policy *p = NULL;
    CHECK_OK(rw_config_policy(cfg, "a", &p));
    rw_decision d;
    memset(&d, 0xAB, sizeof d);
    CHECK_OK(rw_check_now(p, KEY("k"), 1, &d));
    CHECK(d.allowed && d.source == RW_SOURCE_MEMORY);
    rw_policy *alone = policy("1/s", NULL);
    memset(&d, 0xAB, sizeof d);
    CHECK_OK(rw_check(alone, KEY("k"), 0, 1, &d));
    CHECK(d.source == RW_SOURCE_MEMORY);
    /* In-process storage: a health struct that says so, every counter 0. */
    rw_health h;
    memset(&h, 0xAB, sizeof h);
    CHECK_OK(rw_config_health(cfg, &h));
    CHECK(!h.redis && h.up && h.redis_decisions == 0 && h.errors == 0 && h.reconnects == 0);
    CHECK_STR(h.last_error, "");
    memset(&h, 0xAB, sizeof h);
    CHECK_OK(rw_policy_health(alone, &h));
    CHECK(!h.redis && h.up && h.fail_open == 0);
    CHECK_STATUS(rw_config_health(cfg, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_config_health(NULL, &h), RW_NULL_POINTER);
    CHECK_STATUS(rw_policy_health(NULL, &h), RW_NULL_POINTER);
    _Alignas(16) unsigned char garbage[512] = {0};
    CHECK_STATUS(rw_policy_health((const rw_policy *)garbage, &h), RW_INVALID_ARGUMENT);
    CHECK_STATUS(rw_config_health((const rw_config *)garbage, &h), RW_INVALID_ARGUMENT);
    rw_policy_free(alone);
    rw_policy_free(p);
    rw_config_free(cfg);
}

static void test_storage_url_errors(void) {
    rw_config *cfg = (rw_config *)&cfg;
    /* The configuration accepts the scheme, the Redis client rejects the URL. */
    CHECK_STATUS(rw_config_from_str("[defaults]\nstorage = \"redis://127.0.0.1:notaport\"\n"
                                    "[policies.a]\nlimits = \"1/s\"\n",
                                    &cfg),
                 RW_STORAGE_URL);
    CHECK_MSG("invalid storage URL");
    CHECK(cfg == NULL);
    /* Passwords never reach the message. */
    CHECK_STATUS(rw_config_from_str("[defaults]\nstorage = \"redis://:s3cret@127.0.0.1:x/0\"\n",
                                    &cfg),
                 RW_STORAGE_URL);
    CHECK(strstr(rw_last_error(), "s3cret") == NULL);
    /* Unreachable: a clear status within the connect timeout, never a hang. */
    char toml[256];
    snprintf(toml, sizeof toml,
             "[defaults]\nstorage = \"redis://127.0.0.1:%d\"\n[policies.a]\nlimits = \"1/s\"\n",
             closed_port());
    rw_store_options o = RW_STORE_OPTIONS_INIT;
    o.connect_timeout_ms = 200;
    uint64_t start = rw_now();
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_STORAGE_UNAVAILABLE);
    CHECK(rw_now() - start < 5 * SECOND);
    CHECK_MSG("cannot connect to Redis");
    CHECK(cfg == NULL);
    /* A policy Redis cannot run exactly is a configuration error, named (here: braces would
     * break the key's Redis Cluster hash tag). Lazy, so that no server is needed to see it. */
    o.flags = RW_STORE_LAZY;
    snprintf(toml, sizeof toml,
             "[defaults]\nstorage = \"redis://127.0.0.1:%d\"\n[policies.\"a{b}\"]\nlimits = \"1/s\"\n",
             closed_port());
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_CONFIG);
    CHECK_MSG("policy cannot run on Redis");
    CHECK(cfg == NULL);
}

static void test_store_options(void) {
    const char *toml = "[policies.a]\nlimits = \"1/s\"\n";
    rw_config *cfg = (rw_config *)&cfg;
    rw_store_options o = RW_STORE_OPTIONS_INIT;
    CHECK(o.struct_size == sizeof(rw_store_options));
    /* Valid options are accepted (and unused) for in-process storage; NULL means defaults. */
    o.command_timeout_ms = 20;
    o.local_fraction = 0.5;
    o.io_threads = 2;
    CHECK_OK(rw_config_from_str_with(toml, &o, &cfg));
    rw_config_free(cfg);
    CHECK_OK(rw_config_from_str_with(toml, NULL, &cfg));
    rw_config_free(cfg);

    o = (rw_store_options)RW_STORE_OPTIONS_INIT;
    o.struct_size = 3;
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_INVALID_ARGUMENT);
    CHECK_MSG("RW_STORE_OPTIONS_INIT");
    CHECK(cfg == NULL);
    o = (rw_store_options)RW_STORE_OPTIONS_INIT;
    o.local_fraction = 1.5;
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_INVALID_ARGUMENT);
    CHECK_MSG("local_fraction is 1.5");
    o.local_fraction = -0.1;
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_INVALID_ARGUMENT);
    o = (rw_store_options)RW_STORE_OPTIONS_INIT;
    o.command_timeout_ms = 1000ULL * 1000 * 1000; /* ns passed for ms */
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_INVALID_ARGUMENT);
    CHECK_MSG("it is milliseconds");
    o = (rw_store_options)RW_STORE_OPTIONS_INIT;
    o.io_threads = 65;
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_INVALID_ARGUMENT);
    o = (rw_store_options)RW_STORE_OPTIONS_INIT;
    o.flags = 2;
    CHECK_STATUS(rw_config_from_str_with(toml, &o, &cfg), RW_UNSUPPORTED);
    CHECK_MSG("RW_STORE_LAZY");

    /* A caller compiled against a newer header: unknown fields must be zero. */
    struct {
        rw_store_options known;
        uint64_t newer_field;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.known.struct_size = sizeof newer;
    CHECK_OK(rw_config_from_str_with(toml, &newer.known, &cfg));
    rw_config_free(cfg);
    newer.newer_field = 7;
    CHECK_STATUS(rw_config_from_str_with(toml, &newer.known, &cfg), RW_UNSUPPORTED);
    CHECK_MSG("upgrade libratewall");

    /* Each constructor has its options twin; they check the options first. */
    o = (rw_store_options)RW_STORE_OPTIONS_INIT;
    o.flags = 2;
    CHECK_STATUS(rw_config_from_file_with("/nonexistent.toml", &o, &cfg), RW_UNSUPPORTED);
    CHECK_STATUS(rw_config_from_env_with(&o, &cfg), RW_UNSUPPORTED);
    CHECK_STATUS(rw_config_from_file_with("/nonexistent.toml", NULL, &cfg), RW_IO);
    CHECK_STATUS(rw_config_from_str_with(toml, &o, NULL), RW_NULL_POINTER);
    CHECK_STATUS(rw_config_from_str_with(NULL, NULL, &cfg), RW_NULL_POINTER);
}

/* Counts RW_EVENT_ERROR events that are complete: a policy name, a message and a fallback. */
static void count_errors(const rw_event *event, void *user_data) {
    if (event->kind == RW_EVENT_ERROR && event->policy != NULL && event->message != NULL &&
        (event->source == RW_SOURCE_FAIL_OPEN || event->source == RW_SOURCE_FAIL_CLOSED ||
         event->source == RW_SOURCE_LOCAL)) {
        atomic_fetch_add((atomic_int *)user_data, 1);
    }
}

/* RW_STORE_LAZY: start while Redis is unreachable; every fail mode decides meanwhile. */
static void test_lazy_start_while_redis_is_down(void) {
    char toml[512];
    snprintf(toml, sizeof toml,
             "[defaults]\nstorage = \"redis://127.0.0.1:%d\"\n"
             "[policies.open]\nlimits = \"1/minute\"\nfail_mode = \"fail-open\"\n"
             "[policies.closed]\nlimits = \"1/minute\"\nfail_mode = \"fail-closed\"\n"
             "[policies.local]\nlimits = \"2/minute\"\nfail_mode = \"local\"\n",
             closed_port());
    rw_store_options o = RW_STORE_OPTIONS_INIT;
    o.flags = RW_STORE_LAZY;
    o.command_timeout_ms = 50;
    o.connect_timeout_ms = 100;
    atomic_int errors = 0;
    o.on_event = count_errors;
    o.user_data = &errors;
    rw_config *cfg = NULL;
    CHECK_OK(rw_config_from_str_with(toml, &o, &cfg));
    rw_policy *open = NULL, *closed = NULL, *local = NULL;
    CHECK_OK(rw_config_policy(cfg, "open", &open));
    CHECK_OK(rw_config_policy(cfg, "closed", &closed));
    CHECK_OK(rw_config_policy(cfg, "local", &local));
    rw_decision d;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(rw_check_now(open, KEY("k"), 1, &d));
        CHECK(d.allowed && d.source == RW_SOURCE_FAIL_OPEN);
        CHECK_OK(rw_check_now(closed, KEY("k"), 1, &d));
        CHECK(!d.allowed && d.source == RW_SOURCE_FAIL_CLOSED && d.retry_after > 0);
        CHECK_OK(rw_check_now(local, KEY("k"), 1, &d));
        CHECK(d.source == RW_SOURCE_LOCAL && d.allowed == (i < 2)); /* the local limit: 2 */
    }
    CHECK_OK(rw_peek_now(open, KEY("k"), 1, &d));
    CHECK(d.source == RW_SOURCE_FAIL_OPEN);
    /* An unblock cannot fall back on a fail mode: its failure is reported. */
    CHECK_STATUS(rw_reset(open, KEY("k")), RW_STORAGE_UNAVAILABLE);
    /* Redis keeps its own clock: an explicit `now` is refused, whatever the connection state. */
    CHECK_STATUS(rw_check(open, KEY("k"), 0, 1, &d), RW_UNSUPPORTED);
    CHECK_MSG("call rw_check_now");
    CHECK_STATUS(rw_peek(open, KEY("k"), 0, 1, &d), RW_UNSUPPORTED);
    CHECK_STATUS(rw_refund(open, KEY("k"), 0, 1, &d), RW_UNSUPPORTED);
    /* Bad costs stay errors on Redis too. */
    CHECK_STATUS(rw_check_now(open, KEY("k"), 0, &d), RW_ZERO_COST);
    CHECK_STATUS(rw_check_now(open, KEY("k"), 2, &d), RW_INSUFFICIENT_CAPACITY);
    rw_health h;
    CHECK_OK(rw_policy_health(local, &h));
    CHECK(h.redis && !h.up && h.redis_decisions == 0);
    CHECK(h.fail_open == 4 && h.fail_closed == 3 && h.local == 3 && h.errors == 10);
    CHECK(strlen(h.last_error) > 0);
    rw_health hc;
    CHECK_OK(rw_config_health(cfg, &hc));
    CHECK(hc.redis && hc.errors == h.errors);
    rw_policy_free(open);
    rw_policy_free(closed);
    rw_policy_free(local);
    /* Each request Redis could not decide reached the callback, on the calling thread. */
    CHECK(atomic_load(&errors) == 10);
    CHECK_OK(rw_config_free(cfg));
}

/* ---- threads --------------------------------------------------------------------------------- */

#define THREADS 8

struct hammer {
    const rw_policy *policy;
    pthread_barrier_t *start;
    int attempts;
    uint64_t now_step; /* 0: every check at now = 1; else now advances by this per attempt */
    int admitted;
    int errors;
};

static void *hammer_thread(void *arg) {
    struct hammer *h = arg;
    pthread_barrier_wait(h->start);
    rw_decision d;
    for (int i = 0; i < h->attempts; i++) {
        uint64_t now = h->now_step ? (uint64_t)i * h->now_step : 1;
        if (rw_check(h->policy, KEY("shared-key"), now, 1, &d) != RW_OK) {
            h->errors++;
        } else {
            h->admitted += d.allowed;
        }
    }
    return NULL;
}

/* Runs THREADS threads of `attempts` checks on one key; returns the total admitted. */
static int hammer(const rw_policy *p, int attempts, uint64_t now_step) {
    pthread_t threads[THREADS];
    struct hammer work[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) {
        work[t] = (struct hammer){p, &start, attempts, now_step, 0, 0};
        pthread_create(&threads[t], NULL, hammer_thread, &work[t]);
    }
    int total = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        total += work[t].admitted;
        CHECK(work[t].errors == 0);
    }
    pthread_barrier_destroy(&start);
    return total;
}

static void test_threads_never_over_admit(void) {
    const char *algorithms[] = {"token-bucket", "fixed-window", "sliding-window-counter",
                                "sliding-log"};
    for (size_t i = 0; i < sizeof algorithms / sizeof *algorithms; i++) {
        rw_policy *p = with_options("1000/hour", algorithms[i], NULL);
        int total = hammer(p, 1000, 0); /* 8000 attempts at one instant */
        if (total != 1000) {
            fprintf(stderr, "%s: %s admitted %d, expected exactly 1000\n", current_test,
                    algorithms[i], total);
            current_failed = 1;
        }
        rw_policy_free(p);
    }
    /* Several limits, time moving: never more than the per-minute limit in under a minute. */
    rw_policy *multi = policy("100/second; 150/minute", NULL);
    int total = hammer(multi, 2000, 1000000); /* each thread walks 0 .. 2 s */
    /* 150 at once plus one refill per 400 ms of the per-minute bucket over 2 s. */
    if (total < 150 || total > 155) {
        fprintf(stderr, "%s: multi-limit admitted %d, expected 150 to 155\n", current_test, total);
        current_failed = 1;
    }
    rw_policy_free(multi);
}

struct errors_work {
    pthread_barrier_t *start;
    int id;
    int mismatches;
    const rw_config *config;
};

static void *errors_thread(void *arg) {
    struct errors_work *w = arg;
    char name[32];
    snprintf(name, sizeof name, "missing-%d", w->id);
    pthread_barrier_wait(w->start);
    for (int i = 0; i < 200; i++) {
        rw_policy *p = NULL;
        /* Take a real handle and free it (concurrent handle churn on one config) ... */
        if (rw_config_policy(w->config, "a", &p) != RW_OK || rw_policy_free(p) != RW_OK) {
            w->mismatches++;
        }
        /* ... and fail with this thread's own message. */
        if (rw_config_policy(w->config, name, &p) != RW_NOT_FOUND ||
            strstr(rw_last_error(), name) == NULL) {
            w->mismatches++;
        }
    }
    return NULL;
}

static void test_threads_last_error_is_per_thread(void) {
    rw_config *cfg = NULL;
    CHECK_OK(rw_config_from_str("[policies.a]\nlimits = \"1/s\"\n", &cfg));
    pthread_t threads[THREADS];
    struct errors_work work[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) {
        work[t] = (struct errors_work){&start, t, 0, cfg};
        pthread_create(&threads[t], NULL, errors_thread, &work[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK(work[t].mismatches == 0);
    }
    pthread_barrier_destroy(&start);
    rw_config_free(cfg);
}

int main(void) {
    RUN(test_version_and_status_names);
    RUN(test_token_bucket_decisions);
    RUN(test_classic_demo_bucket);
    RUN(test_peek_refund_reset);
    RUN(test_weighted_cost);
    RUN(test_multi_limit_policy);
    RUN(test_every_algorithm);
    RUN(test_builtin_clock);
    RUN(test_coarse_clock);
    RUN(test_coarse_clock_policy_flag);
    RUN(test_binary_and_empty_keys);
    RUN(test_extreme_and_backward_time);
    RUN(test_overflow_policies);
    RUN(test_policy_name);
    RUN(test_null_pointers);
    RUN(test_invalid_utf8);
    RUN(test_bad_rates_and_names);
    RUN(test_bad_costs_change_nothing);
    RUN(test_options_struct);
    RUN(test_not_a_handle);
    RUN(test_headers_legacy_and_sizing);
    RUN(test_headers_ietf_multi_limit);
    RUN(test_headers_draft8_partition_key);
    RUN(test_headers_reject_foreign_decisions);
    RUN(test_denied_body);
    RUN(test_config_from_str);
    RUN(test_config_errors);
    RUN(test_config_from_file);
    RUN(test_config_from_env);
    RUN(test_in_process_source_and_health);
    RUN(test_storage_url_errors);
    RUN(test_store_options);
    RUN(test_lazy_start_while_redis_is_down);
    RUN(test_threads_never_over_admit);
    RUN(test_threads_last_error_is_per_thread);
    return summary();
}
