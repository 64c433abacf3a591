/*
 * The C participant of the cross-language hammer (redis/cross/run.sh): C, Python and Node
 * processes check one key through one Redis at the same instant, and together must admit
 * exactly the quota.
 *
 *   hammer --config PATH --policy NAME --key KEY --attempts N --start-at UNIX_MS
 *
 * Loads the TOML configuration PATH with the public API (rw_config_from_file_with; a command
 * timeout of 2 s, so that a loaded test machine measures Redis rather than the fail mode), takes
 * policy NAME (which must run on Redis), sleeps until the wall clock reaches UNIX_MS, makes N checks of
 * cost 1 on KEY one after another, and prints one JSON line:
 *
 *   {"binding":"c","policy":NAME,"allowed":A,"denied":D,"fallback":F,"first_ms":T0,"last_ms":T1}
 *
 * F counts decisions not made by Redis (fail-open, fail-closed or local); T0 and T1 are the
 * wall-clock Unix milliseconds when the first check started and the last one ended. On any error:
 * a message on stderr and exit status 1.
 *
 * Build: make -C ffi-c hammer  (writes target/cross/hammer, runs without installing)
 */
#define _POSIX_C_SOURCE 200809L
#include <ratewall.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char USAGE[] =
    "usage: hammer --config PATH --policy NAME --key KEY --attempts N --start-at UNIX_MS\n";

static int fail(const char *what, rw_status status) {
    fprintf(stderr, "hammer: %s: %s (%s)\n", what, rw_status_str((int)status), rw_last_error());
    return 1;
}

/* A whole non-negative decimal number, or -1. */
static int64_t parse_count(const char *s) {
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > INT64_MAX) {
        return -1;
    }
    return (int64_t)v;
}

/* Sleeps until the wall clock reads `unix_ms` (returns at once if it is past). */
static void sleep_until(uint64_t unix_ms) {
    for (;;) {
        uint64_t now = rw_unix_time_ms();
        if (now >= unix_ms) {
            return;
        }
        uint64_t wait = unix_ms - now;
        struct timespec t = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        nanosleep(&t, NULL); /* an interrupted sleep loops and re-reads the clock */
    }
}

/* Writes `s` as a JSON string (quotes, backslashes and control characters escaped). */
static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

int main(int argc, char **argv) {
    const char *config_path = NULL, *name = NULL, *key = NULL;
    int64_t attempts = -1, start_at = -1;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            fprintf(stderr, "hammer: %s needs a value\n%s", flag, USAGE);
            return 1;
        }
        i++;
        if (strcmp(flag, "--config") == 0) {
            config_path = value;
        } else if (strcmp(flag, "--policy") == 0) {
            name = value;
        } else if (strcmp(flag, "--key") == 0) {
            key = value;
        } else if (strcmp(flag, "--attempts") == 0) {
            if ((attempts = parse_count(value)) < 1) {
                fprintf(stderr, "hammer: --attempts %s: use a whole number of at least 1\n", value);
                return 1;
            }
        } else if (strcmp(flag, "--start-at") == 0) {
            if ((start_at = parse_count(value)) < 0) {
                fprintf(stderr, "hammer: --start-at %s: use Unix milliseconds\n", value);
                return 1;
            }
        } else {
            fprintf(stderr, "hammer: unknown argument %s\n%s", flag, USAGE);
            return 1;
        }
    }
    if (config_path == NULL || name == NULL || key == NULL || attempts < 0 || start_at < 0) {
        fprintf(stderr, "hammer: every argument is required\n%s", USAGE);
        return 1;
    }

    rw_store_options options = RW_STORE_OPTIONS_INIT;
    options.command_timeout_ms = 2000;
    options.connect_timeout_ms = 2000;
    rw_config *config = NULL;
    rw_status status = rw_config_from_file_with(config_path, &options, &config);
    if (status != RW_OK) {
        return fail("loading the configuration", status);
    }
    rw_policy *policy = NULL;
    status = rw_config_policy(config, name, &policy);
    rw_config_free(config); /* the policy handle keeps the connection */
    if (status != RW_OK) {
        return fail("taking the policy", status);
    }
    rw_health health;
    status = rw_policy_health(policy, &health);
    if (status != RW_OK) {
        rw_policy_free(policy);
        return fail("reading the store's health", status);
    }
    if (!health.redis) {
        fprintf(stderr, "hammer: policy %s does not run on Redis: set storage = \"redis://...\" "
                        "in %s\n",
                name, config_path);
        rw_policy_free(policy);
        return 1;
    }

    sleep_until((uint64_t)start_at);
    uint64_t allowed = 0, denied = 0, fallback = 0;
    size_t key_len = strlen(key);
    uint64_t first_ms = rw_unix_time_ms();
    for (int64_t i = 0; i < attempts; i++) {
        rw_decision d;
        status = rw_check_now(policy, (const uint8_t *)key, key_len, 1, &d);
        if (status != RW_OK) {
            rw_policy_free(policy);
            return fail("checking", status);
        }
        allowed += d.allowed;
        denied += !d.allowed;
        fallback += d.source != RW_SOURCE_REDIS;
    }
    uint64_t last_ms = rw_unix_time_ms();
    rw_policy_free(policy);

    printf("{\"binding\":\"c\",\"policy\":");
    json_string(name);
    printf(",\"allowed\":%" PRIu64 ",\"denied\":%" PRIu64 ",\"fallback\":%" PRIu64
           ",\"first_ms\":%" PRIu64 ",\"last_ms\":%" PRIu64 "}\n",
           allowed, denied, fallback, first_ms, last_ms);
    return fflush(stdout) == 0 ? 0 : 1;
}
