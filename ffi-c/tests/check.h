/*
 * The test runner and helpers shared by the C tests (test_ratewall.c, test_redis.c): CHECK
 * macros that print the failing expression and ratewall's last error, and a summary line
 * "c-tests: N passed, N failed" that ffi-c/ci.sh parses.
 */
#ifndef RATEWALL_TEST_CHECK_H
#define RATEWALL_TEST_CHECK_H

#include <ratewall.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a very small test runner ---------------------------------------------------------- */

static const char *current_test;
static int current_failed;
static int passed, failed;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__, __LINE__, current_test, \
                    #cond);                                                                   \
            current_failed = 1;                                                               \
        }                                                                                     \
    } while (0)

/* Checks that `expr` returns status `want`; on a mismatch prints both names and the message. */
#define CHECK_STATUS(expr, want)                                                              \
    do {                                                                                      \
        rw_status got_ = (expr);                                                              \
        if (got_ != (want)) {                                                                 \
            fprintf(stderr, "%s:%d: %s: %s returned %s, expected %s (last error: %s)\n",      \
                    __FILE__, __LINE__, current_test, #expr, rw_status_str((int)got_),        \
                    rw_status_str((int)(want)), rw_last_error());                             \
            current_failed = 1;                                                               \
        }                                                                                     \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, RW_OK)

/* The last error contains `needle`. */
#define CHECK_MSG(needle)                                                                     \
    do {                                                                                      \
        if (strstr(rw_last_error(), (needle)) == NULL) {                                      \
            fprintf(stderr, "%s:%d: %s: last error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
                    current_test, rw_last_error(), (needle));                                 \
            current_failed = 1;                                                               \
        }                                                                                     \
    } while (0)

#define CHECK_STR(got, want)                                                                  \
    do {                                                                                      \
        const char *g_ = (got), *w_ = (want);                                                 \
        if (strcmp(g_, w_) != 0) {                                                            \
            fprintf(stderr, "%s:%d: %s: got\n  \"%s\"\nexpected\n  \"%s\"\n", __FILE__,        \
                    __LINE__, current_test, g_, w_);                                          \
            current_failed = 1;                                                               \
        }                                                                                     \
    } while (0)

static void run(const char *name, void (*test)(void)) {
    current_test = name;
    current_failed = 0;
    test();
    if (current_failed) {
        failed++;
        fprintf(stderr, "FAIL %s\n", name);
    } else {
        passed++;
        printf("ok   %s\n", name);
    }
}

#define RUN(test) run(#test, test)


/* Prints the summary line ci.sh reads; the exit status of main. */
static int summary(void) {
    printf("c-tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

/* ---- helpers ---------------------------------------------------------------------------- */

#define SECOND 1000000000ULL
#define MINUTE (60 * SECOND)
#define KEY(s) (const uint8_t *)(s), strlen(s)

/* A loopback port nothing listens on (bound to port 0, then released). */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int port = 1; /* fallback: port 1 refuses on any sane machine */
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

#endif
