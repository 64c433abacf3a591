/*
 * C tests of libratewall on Redis: decisions through a real redis-server, two configurations
 * (two app instances) sharing one quota, exact admission counting with pthreads, health
 * counters, and the fault test: a redis-server of its own, killed during the run (fail-open
 * admits, fail-closed denies, local decides in process, each within the command timeout), then
 * started again (Redis decides again, same handles), then frozen with SIGSTOP (each decision
 * waits out the command timeout, never longer) and thawed. And mutual TLS through the
 * configuration: a TLS-only server of its own that asks for client certificates (RW_TEST_PKI:
 * the directory redis/testing/tls-certs.sh made; ffi-c/ci.sh makes one).
 *
 * Needs REDIS_TEST_URL (ffi-c/ci.sh starts a server with redis/testing/server.sh); without it
 * the tests fail when CI is set and are skipped otherwise. The fault test needs `redis-server`
 * on PATH. RW_TEST_TIME_SCALE (default 1) multiplies the time bounds (valgrind sets 20).
 *
 * Redis decides with its own clock, so these tests cannot inject time: every limit is chosen so
 * that nothing refills during a test (per minute or per hour), and the only waiting is for the
 * background reconnection, polled with a bound.
 *
 * Build: cc -std=c11 -Wall -Wextra -pthread test_redis.c $(pkg-config --cflags --libs ratewall)
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

static const char *redis_url;
static char prefix[64];
static uint64_t time_scale = 1;

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* A configuration on `url` with this run's own key prefix (re-runs under ASan and valgrind use
 * the same server) and the policies in `policies` (TOML). Options may be NULL. */
static rw_config *config_on(const char *url, const char *policies, const rw_store_options *o) {
    char toml[2048];
    snprintf(toml, sizeof toml, "[defaults]\nstorage = \"%s\"\nkey_prefix = \"%s\"\n%s", url,
             prefix, policies);
    rw_config *cfg = NULL;
    CHECK_OK(rw_config_from_str_with(toml, o, &cfg));
    return cfg;
}

static rw_policy *policy_of(const rw_config *cfg, const char *name) {
    rw_policy *p = NULL;
    CHECK_OK(rw_config_policy(cfg, name, &p));
    return p;
}

/* Options that keep a loaded machine (valgrind, parallel builds) from turning a slow answer
 * into a fallback where a test counts Redis decisions. */
static rw_store_options patient(void) {
    rw_store_options o = RW_STORE_OPTIONS_INIT;
    o.command_timeout_ms = 2000 * time_scale;
    o.connect_timeout_ms = 2000 * time_scale;
    return o;
}

static rw_decision check_now(const rw_policy *p, const char *key) {
    rw_decision d;
    memset(&d, 0xAB, sizeof d);
    CHECK_OK(rw_check_now(p, KEY(key), 1, &d));
    return d;
}

/* ---- decisions --------------------------------------------------------------------------- */

static void test_redis_decisions(void) {
    rw_store_options o = patient();
    rw_config *cfg = config_on(redis_url,
                               "headers = \"legacy, ietf\"\n"
                               "[policies.api]\nlimits = \"5/minute; 100/hour\"\n"
                               "algorithm = \"sliding-window-counter\"\n",
                               &o);
    rw_policy *api = policy_of(cfg, "api");
    for (int i = 0; i < 5; i++) {
        rw_decision d = check_now(api, "alice");
        CHECK(d.allowed && d.source == RW_SOURCE_REDIS);
        CHECK(d.limit == 5 && d.remaining == (uint64_t)(4 - i));
        CHECK(d.limit_count == 2 && d.limits[1].remaining == (uint64_t)(99 - i));
    }
    rw_decision d = check_now(api, "alice");
    CHECK(!d.allowed && d.source == RW_SOURCE_REDIS && d.most_restrictive == 0);
    if (!(d.retry_after > 0 && d.retry_after <= 2 * MINUTE)) {
        fprintf(stderr, "retry_after %llu\n", (unsigned long long)d.retry_after);
    }
    CHECK(d.retry_after > 0 && d.retry_after <= 2 * MINUTE); /* the sliding window: up to 2 */
    /* The HTTP answer renders from a Redis decision exactly as from an in-process one. */
    char buf[512];
    size_t len;
    CHECK_OK(rw_render_headers(api, &d, KEY("alice"), rw_unix_time_ms(), buf, sizeof buf, &len));
    CHECK(strncmp(buf, "X-RateLimit-Limit: 5\r\nX-RateLimit-Remaining: 0\r\n", 47) == 0);
    CHECK(strstr(buf, "RateLimit-Policy: \"api:5/minute\";q=5;w=60, \"api:100/hour\";q=100;w=3600\r\n") !=
          NULL);
    CHECK(strstr(buf, "Retry-After: ") != NULL);
    /* Another key has its own state. */
    CHECK(check_now(api, "bob").allowed);

    /* Peek takes nothing (its `remaining` is what a check would leave); refund gives back;
     * reset makes the key full. */
    rw_decision p;
    CHECK_OK(rw_peek_now(api, KEY("bob"), 1, &p));
    CHECK(p.allowed && p.remaining == 3 && p.source == RW_SOURCE_REDIS);
    CHECK_OK(rw_peek_now(api, KEY("bob"), 1, &p));
    CHECK(p.remaining == 3);
    CHECK_OK(rw_refund_now(api, KEY("alice"), 2, &p));
    CHECK(p.source == RW_SOURCE_REDIS && p.remaining == 2);
    CHECK(check_now(api, "alice").allowed);
    CHECK_OK(rw_reset(api, KEY("alice")));
    d = check_now(api, "alice");
    CHECK(d.allowed && d.remaining == 4 && d.limits[1].remaining == 99);

    /* Bad costs stay errors that change nothing; an explicit `now` is refused. */
    CHECK_STATUS(rw_check_now(api, KEY("alice"), 0, &d), RW_ZERO_COST);
    CHECK_STATUS(rw_check_now(api, KEY("alice"), 6, &d), RW_INSUFFICIENT_CAPACITY);
    CHECK_STATUS(rw_check(api, KEY("alice"), rw_now(), 1, &d), RW_UNSUPPORTED);
    CHECK_MSG("server's clock");
    CHECK_OK(rw_peek_now(api, KEY("alice"), 1, &d));
    CHECK(d.remaining == 3);
    /* Binary keys work (a C key is its bytes, as a UTF-8 string is in Python and Node). */
    const uint8_t binary[] = {0, 0xff, 0x80, 'k'};
    CHECK_OK(rw_check_now(api, binary, sizeof binary, 1, &d));
    CHECK(d.allowed && d.remaining == 4);
    CHECK_OK(rw_check_now(api, binary, 3, 1, &d));
    CHECK(d.remaining == 4);

    rw_policy_free(api);
    rw_config_free(cfg);
}

/* Two configurations are two app instances: their own connections, one quota in Redis. */
static void test_two_instances_share_one_quota(void) {
    const char *policies = "[policies.login]\nlimits = \"10/minute\"\nalgorithm = \"sliding-log\"\n";
    rw_store_options o = patient();
    rw_config *a = config_on(redis_url, policies, &o);
    rw_config *b = config_on(redis_url, policies, &o);
    rw_policy *pa = policy_of(a, "login"), *pb = policy_of(b, "login");
    int admitted = 0;
    for (int i = 0; i < 10; i++) {
        admitted += check_now(pa, "shared@example.com").allowed;
        admitted += check_now(pb, "shared@example.com").allowed;
    }
    CHECK(admitted == 10);
    rw_decision d;
    CHECK_OK(rw_peek_now(pb, KEY("shared@example.com"), 1, &d));
    CHECK(!d.allowed && d.remaining == 0);
    /* A reset through one instance is seen by the other. */
    CHECK_OK(rw_reset(pa, KEY("shared@example.com")));
    CHECK(check_now(pb, "shared@example.com").remaining == 9);
    /* The same TOML from a file: rw_policy_from_file runs on Redis too. */
    char path[] = "/tmp/ratewall-redis-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "w");
        fprintf(f, "[defaults]\nstorage = \"%s\"\nkey_prefix = \"%s\"\n%s", redis_url, prefix,
                policies);
        fclose(f);
        rw_policy *pc = NULL;
        CHECK_OK(rw_policy_from_file(path, "login", &pc));
        d = check_now(pc, "shared@example.com");
        CHECK(d.source == RW_SOURCE_REDIS && d.remaining == 8);
        rw_policy_free(pc);
        unlink(path);
    }
    /* And from the environment, as every binding reads it. */
    setenv("RATEWALL_STORAGE_URL", redis_url, 1);
    setenv("RATEWALL_KEY_PREFIX", prefix, 1);
    setenv("RATEWALL_POLICY_LOGIN_LIMITS", "10/minute", 1);
    setenv("RATEWALL_POLICY_LOGIN_ALGORITHM", "sliding-log", 1);
    rw_config *e = NULL;
    CHECK_OK(rw_config_from_env_with(&o, &e));
    unsetenv("RATEWALL_STORAGE_URL");
    unsetenv("RATEWALL_KEY_PREFIX");
    unsetenv("RATEWALL_POLICY_LOGIN_LIMITS");
    unsetenv("RATEWALL_POLICY_LOGIN_ALGORITHM");
    if (e != NULL) {
        rw_policy *pe = policy_of(e, "login");
        d = check_now(pe, "shared@example.com");
        CHECK(d.source == RW_SOURCE_REDIS && d.remaining == 7);
        rw_policy_free(pe);
        rw_config_free(e);
    }
    rw_policy_free(pa);
    rw_policy_free(pb);
    rw_config_free(a);
    rw_config_free(b);
}

/* ---- threads ----------------------------------------------------------------------------- */

#define THREADS 8
#define ATTEMPTS 40

struct worker {
    const rw_policy *policy;
    const char *key;
    pthread_barrier_t *start;
    int admitted;
    int not_redis;
    int errors;
};

static void *worker_thread(void *arg) {
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    rw_decision d;
    for (int i = 0; i < ATTEMPTS; i++) {
        if (rw_check_now(w->policy, KEY(w->key), 1, &d) != RW_OK) {
            w->errors++;
            continue;
        }
        w->admitted += d.allowed;
        w->not_redis += d.source != RW_SOURCE_REDIS;
    }
    return NULL;
}

/* THREADS threads, each on its own handle of one of two instances, hammer one key: Redis
 * admits exactly the quota, whatever the interleaving. */
static void test_redis_threads_never_over_admit(void) {
    const char *algorithms[] = {"token-bucket", "fixed-window", "sliding-window-counter",
                                "sliding-log"};
    rw_store_options o = patient();
    for (size_t i = 0; i < sizeof algorithms / sizeof *algorithms; i++) {
        char policies[256];
        snprintf(policies, sizeof policies,
                 "[policies.p]\nlimits = \"100/hour\"\nalgorithm = \"%s\"\n"
                 "fail_mode = \"fail-closed\"\n",
                 algorithms[i]);
        rw_config *cfg[2] = {config_on(redis_url, policies, &o), config_on(redis_url, policies, &o)};
        if (cfg[0] == NULL || cfg[1] == NULL) {
            rw_config_free(cfg[0]);
            rw_config_free(cfg[1]);
            return;
        }
        char key[64];
        snprintf(key, sizeof key, "threads-%s", algorithms[i]);
        pthread_t threads[THREADS];
        struct worker work[THREADS];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, THREADS);
        for (int t = 0; t < THREADS; t++) {
            work[t] = (struct worker){policy_of(cfg[t % 2], "p"), key, &start, 0, 0, 0};
            pthread_create(&threads[t], NULL, worker_thread, &work[t]);
        }
        int total = 0, not_redis = 0, errors = 0;
        for (int t = 0; t < THREADS; t++) {
            pthread_join(threads[t], NULL);
            total += work[t].admitted;
            not_redis += work[t].not_redis;
            errors += work[t].errors;
            rw_policy_free((rw_policy *)work[t].policy);
        }
        pthread_barrier_destroy(&start);
        if (total != 100 || not_redis != 0 || errors != 0) {
            fprintf(stderr,
                    "%s: %s admitted %d of %d (expected exactly 100), %d not by Redis, %d errors\n",
                    current_test, algorithms[i], total, THREADS * ATTEMPTS, not_redis, errors);
            current_failed = 1;
        }
        rw_config_free(cfg[0]);
        rw_config_free(cfg[1]);
    }
}

/* ---- health ------------------------------------------------------------------------------ */

static void test_redis_health_counters(void) {
    rw_store_options o = patient();
    rw_config *cfg = config_on(redis_url, "[policies.a]\nlimits = \"3/minute\"\n", &o);
    rw_policy *a = policy_of(cfg, "a");
    rw_health h;
    CHECK_OK(rw_config_health(cfg, &h));
    CHECK(h.redis && h.up && h.redis_decisions == 0 && h.errors == 0 && h.disconnects == 0);
    CHECK_STR(h.last_error, "");
    for (int i = 0; i < 5; i++) {
        check_now(a, "k"); /* 3 admitted, 2 denied: all 5 decided by Redis */
    }
    rw_decision d;
    CHECK_OK(rw_peek_now(a, KEY("k"), 1, &d));
    CHECK_OK(rw_policy_health(a, &h));
    CHECK(h.redis && h.up && h.redis_decisions == 6);
    CHECK(h.errors == 0 && h.timeouts == 0 && h.fail_open == 0 && h.fail_closed == 0 &&
          h.local == 0 && h.reconnects == 0);
    /* A policy handle outlives its configuration, and so does the connection. */
    CHECK_OK(rw_config_free(cfg));
    d = check_now(a, "k");
    CHECK(!d.allowed && d.source == RW_SOURCE_REDIS);
    CHECK_OK(rw_policy_health(a, &h));
    CHECK(h.redis_decisions == 7);
    rw_policy_free(a);
}

/* ---- faults: a server of our own, killed and started again ------------------------------- */

static pid_t start_server(int port) {
    char port_arg[16];
    snprintf(port_arg, sizeof port_arg, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execlp("redis-server", "redis-server", "--port", port_arg, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", "/tmp", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Whether a redis-server answers PING on `port`. */
static int answers_ping(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = 0;
    char reply[16] = {0};
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        write(fd, "PING\r\n", 6) == 6 && read(fd, reply, sizeof reply - 1) > 0) {
        ok = strncmp(reply, "+PONG", 5) == 0;
    }
    close(fd);
    return ok;
}

static int wait_for_ping(int port) {
    for (int i = 0; i < 1000; i++) { /* 10 s */
        if (answers_ping(port)) {
            return 1;
        }
        sleep_ms(10);
    }
    return 0;
}

struct events {
    atomic_int error, down, up, other;
};

/* The event callback: counts by kind. Thread-safe, short, calls nothing of ratewall. */
static void on_event(const rw_event *e, void *user_data) {
    struct events *ev = user_data;
    switch (e->kind) {
    case RW_EVENT_ERROR:
        atomic_fetch_add(&ev->error, e->policy != NULL && e->message != NULL);
        break;
    case RW_EVENT_DOWN:
        atomic_fetch_add(&ev->down, e->message != NULL);
        break;
    case RW_EVENT_UP:
        atomic_fetch_add(&ev->up, e->message == NULL);
        break;
    default:
        atomic_fetch_add(&ev->other, 1);
    }
}

/* Checks one policy during the outage: decided by `want` within the time bound. */
static rw_decision during_outage(const rw_policy *p, rw_source want, uint64_t bound_ns) {
    rw_decision d;
    memset(&d, 0xAB, sizeof d);
    uint64_t start = rw_now();
    CHECK_OK(rw_check_now(p, KEY("victim"), 1, &d));
    uint64_t took = rw_now() - start;
    if (took > bound_ns) {
        fprintf(stderr, "%s: a %s decision took %llu ms, bound %llu ms\n", current_test,
                rw_source_str(want), (unsigned long long)(took / 1000000),
                (unsigned long long)(bound_ns / 1000000));
        current_failed = 1;
    }
    CHECK(d.source == want);
    return d;
}

/* Polls (peeks, bounded: 10 s times the scale) until Redis decides for `p` again: the store
 * reconnects in the background, backing off up to 1 s between attempts. */
static int redis_decides_again(const rw_policy *p) {
    for (int i = 0; i < 500; i++) {
        rw_decision d;
        if (rw_peek_now(p, KEY("victim"), 1, &d) == RW_OK && d.source == RW_SOURCE_REDIS) {
            return 1;
        }
        sleep_ms(20 * (long)time_scale);
    }
    return 0;
}

static void test_fault_fail_modes_and_recovery(void) {
    int port = closed_port();
    pid_t server = start_server(port);
    CHECK(server > 0 && wait_for_ping(port));
    if (current_failed) {
        fprintf(stderr, "%s: could not start redis-server on port %d (is it on PATH?)\n",
                current_test, port);
        if (server > 0) {
            kill(server, SIGKILL);
            waitpid(server, NULL, 0);
        }
        return;
    }
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    static struct events ev;
    rw_store_options o = RW_STORE_OPTIONS_INIT;
    o.command_timeout_ms = 100;
    o.connect_timeout_ms = 100 * time_scale;
    o.on_event = on_event;
    o.user_data = &ev;
    rw_config *cfg = config_on(url,
                               "[policies.open]\nlimits = \"1000/minute\"\nfail_mode = \"fail-open\"\n"
                               "[policies.closed]\nlimits = \"1000/minute\"\nfail_mode = \"fail-closed\"\n"
                               "[policies.local]\nlimits = \"3/minute\"\nfail_mode = \"local\"\n",
                               &o);
    if (cfg == NULL) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        return;
    }
    rw_policy *open = policy_of(cfg, "open"), *closed = policy_of(cfg, "closed"),
              *local = policy_of(cfg, "local");
    CHECK(check_now(open, "victim").source == RW_SOURCE_REDIS);
    CHECK(check_now(closed, "victim").source == RW_SOURCE_REDIS);
    CHECK(check_now(local, "victim").source == RW_SOURCE_REDIS);

    /* The outage: SIGKILL, as a crash would. */
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    /* The command timeout, plus the library's grace period, plus scheduling slack. */
    uint64_t bound = (100 + 250 + 150) * 1000000ULL * time_scale;
    for (int i = 0; i < 5; i++) {
        rw_decision d = during_outage(open, RW_SOURCE_FAIL_OPEN, bound);
        CHECK(d.allowed && d.retry_after == 0);
        d = during_outage(closed, RW_SOURCE_FAIL_CLOSED, bound);
        CHECK(!d.allowed && d.retry_after > 0);
        d = during_outage(local, RW_SOURCE_LOCAL, bound);
        CHECK(d.allowed == (i < 3)); /* the local limiter enforces the policy: 3 per minute */
    }
    rw_health h;
    CHECK_OK(rw_config_health(cfg, &h));
    CHECK(h.redis && !h.up && h.redis_decisions == 3);
    CHECK(h.errors == 15 && h.fail_open == 5 && h.fail_closed == 5 && h.local == 5);
    CHECK(h.disconnects >= 1 && strlen(h.last_error) > 0);
    CHECK(atomic_load(&ev.error) == 15 && atomic_load(&ev.down) >= 1 && atomic_load(&ev.other) == 0);

    /* The server comes back on the same port: the same handles reach it again. */
    server = start_server(port);
    CHECK(server > 0 && wait_for_ping(port));
    CHECK(redis_decides_again(open));
    rw_decision d = check_now(closed, "victim");
    CHECK(d.allowed && d.source == RW_SOURCE_REDIS);
    /* The restarted server is empty (no persistence): Redis's count, not the local one. */
    d = check_now(local, "victim");
    CHECK(d.allowed && d.source == RW_SOURCE_REDIS && d.remaining == 2);
    CHECK_OK(rw_policy_health(local, &h));
    CHECK(h.up && h.reconnects >= 1);
    /* The Up event runs on the I/O thread, possibly just after the first decision. */
    for (int i = 0; i < 100 && atomic_load(&ev.up) == 0; i++) {
        sleep_ms(10);
    }
    CHECK(atomic_load(&ev.up) >= 1);

    /* A server that hangs instead of dying (SIGSTOP): the connection stays open and nothing
     * answers, so a decision waits out the command timeout, and never longer. */
    kill(server, SIGSTOP);
    rw_health before;
    CHECK_OK(rw_config_health(cfg, &before));
    for (int i = 0; i < 3; i++) {
        CHECK(during_outage(open, RW_SOURCE_FAIL_OPEN, bound).allowed);
        CHECK(!during_outage(closed, RW_SOURCE_FAIL_CLOSED, bound).allowed);
        during_outage(local, RW_SOURCE_LOCAL, bound);
    }
    CHECK_OK(rw_config_health(cfg, &h));
    CHECK(h.timeouts > before.timeouts && h.errors == before.errors + 9);
    CHECK(h.disconnects > before.disconnects);
    kill(server, SIGCONT);
    CHECK(redis_decides_again(closed));

    rw_policy_free(open);
    rw_policy_free(closed);
    rw_policy_free(local);
    CHECK_OK(rw_config_free(cfg));
    /* Freed: the callback is closed. A last outage reaches nobody. */
    int errors = atomic_load(&ev.error), down = atomic_load(&ev.down);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    sleep_ms(50);
    CHECK(atomic_load(&ev.error) == errors && atomic_load(&ev.down) == down);
}

/* ---- mutual TLS: the configuration's tls_* files ---------------------------------------- */

/* A TLS-only redis-server on `port` with the certificates in `pki`, asking every client for a
 * certificate that CA signed. */
static pid_t start_tls_server(int port, const char *pki) {
    char port_arg[16], cert[512], key[512], ca[512];
    snprintf(port_arg, sizeof port_arg, "%d", port);
    snprintf(cert, sizeof cert, "%s/server.pem", pki);
    snprintf(key, sizeof key, "%s/server.key", pki);
    snprintf(ca, sizeof ca, "%s/ca.pem", pki);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execlp("redis-server", "redis-server", "--port", "0", "--tls-port", port_arg,
               "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
               "--tls-auth-clients", "yes", "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "no", "--dir", "/tmp", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Whether something accepts TCP connections on `port` (a TLS-only server cannot answer a
 * plain PING). */
static int wait_for_accept(int port) {
    for (int i = 0; i < 1000; i++) { /* 10 s */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        if (fd >= 0) {
            close(fd);
        }
        if (ok) {
            return 1;
        }
        sleep_ms(10);
    }
    return 0;
}

/* A configuration on `url` with the given [defaults] TLS lines: its status, and `*cfg`. */
static rw_status tls_config(const char *url, const char *tls_lines, rw_config **cfg) {
    char toml[4096];
    snprintf(toml, sizeof toml,
             "[defaults]\nstorage = \"%s\"\nkey_prefix = \"%s\"\n%s"
             "[policies.m]\nlimits = \"2/hour\"\nfail_mode = \"fail-closed\"\n",
             url, prefix, tls_lines);
    rw_store_options o = patient();
    return rw_config_from_str_with(toml, &o, cfg);
}

static void test_mutual_tls_through_the_config(void) {
    const char *pki = getenv("RW_TEST_PKI");
    if (pki == NULL || *pki == '\0') {
        if (getenv("CI") != NULL) {
            fprintf(stderr, "%s: RW_TEST_PKI is not set but CI is: run ffi-c/ci.sh\n",
                    current_test);
            current_failed = 1;
        } else {
            printf("SKIP %s: RW_TEST_PKI not set\n", current_test);
        }
        return;
    }
    int port = closed_port();
    pid_t server = start_tls_server(port, pki);
    CHECK(server > 0 && wait_for_accept(port));
    char url[64], ca_only[1024], mutual[4096], no_key[2048];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", port);
    snprintf(ca_only, sizeof ca_only, "tls_ca_file = \"%s/ca.pem\"\n", pki);
    snprintf(mutual, sizeof mutual, "%stls_cert_file = \"%s/client.pem\"\ntls_key_file = \"%s/client.key\"\n",
             ca_only, pki, pki);
    snprintf(no_key, sizeof no_key, "%stls_cert_file = \"%s/client.pem\"\n", ca_only, pki);
    rw_config *cfg = NULL;
    if (!current_failed) {
        /* The server asks for a certificate: without one, the store cannot connect. */
        CHECK(tls_config(url, ca_only, &cfg) == RW_STORAGE_UNAVAILABLE);
        /* A certificate without its key: refused before connecting, saying what to add. */
        CHECK(tls_config(url, no_key, &cfg) != RW_OK);
        CHECK(strstr(rw_last_error(), "tls_key_file") != NULL);
        CHECK_OK(tls_config(url, mutual, &cfg));
    }
    if (cfg != NULL) {
        rw_policy *p = policy_of(cfg, "m");
        int admitted = 0;
        for (int i = 0; i < 3; i++) {
            rw_decision d = check_now(p, "tls-client");
            CHECK(d.source == RW_SOURCE_REDIS);
            admitted += d.allowed;
        }
        CHECK(admitted == 2);
        rw_policy_free(p);
        rw_config_free(cfg);
    }
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
}

int main(void) {
    redis_url = getenv("REDIS_TEST_URL");
    if (redis_url == NULL || *redis_url == '\0') {
        if (getenv("CI") != NULL) {
            fprintf(stderr, "REDIS_TEST_URL is not set but CI is: run ffi-c/ci.sh\n");
            failed++;
        } else {
            printf("SKIP: REDIS_TEST_URL not set (ffi-c/ci.sh starts a server)\n");
        }
        return summary();
    }
    const char *scale = getenv("RW_TEST_TIME_SCALE");
    if (scale != NULL && atoi(scale) > 0) {
        time_scale = (uint64_t)atoi(scale);
    }
    /* Each run its own keys: the ASan and valgrind runs share the server. */
    snprintf(prefix, sizeof prefix, "ctest-%ld-%llu", (long)getpid(),
             (unsigned long long)rw_unix_time_ms());
    RUN(test_redis_decisions);
    RUN(test_two_instances_share_one_quota);
    RUN(test_redis_threads_never_over_admit);
    RUN(test_redis_health_counters);
    RUN(test_fault_fail_modes_and_recovery);
    RUN(test_mutual_tls_through_the_config);
    return summary();
}
