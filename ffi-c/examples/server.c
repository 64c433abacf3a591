/*
 * A small HTTP/1.1 server in plain C (POSIX sockets, no framework) protected by ratewall.
 *
 *   GET  /api/demo    limited by policy "demo"  (token bucket: 5 at once, then 1 per second)
 *   POST /api/login   limited by policy "login" (sliding log: 5 per 15 minutes)
 *   GET  /healthz     never limited
 *
 * Every limited response carries the rate-limit headers; a denied one is 429 with Retry-After
 * and the JSON body {"error":"rate_limited","retryAfter":N}, byte-identical to ratewall's Python
 * and Node bindings. The client key is the peer's IP address (no proxy is trusted).
 *
 * Usage: server [--config FILE] [--port N] [--port-file FILE] [--max-requests N]
 *               [--max-seconds N]
 *   --port 0 (the default) picks a free port; --port-file receives its number once listening.
 *   The server exits after --max-requests requests (default: unlimited) or --max-seconds
 *   (default 300), or on SIGINT/SIGTERM. It listens on 127.0.0.1 only.
 *
 * Build: cc -O2 server.c $(pkg-config --cflags --libs ratewall) -o server
 */
#define _POSIX_C_SOURCE 200809L
#include <ratewall.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

/* Writes all of `len` bytes, or fails. */
static int send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void respond(int fd, int status, const char *reason, const char *extra_headers,
                    const char *body) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n",
                     status, reason, strlen(body));
    if (n < 0 || (size_t)n >= sizeof head) {
        return;
    }
    if (send_all(fd, head, (size_t)n) == 0 && send_all(fd, extra_headers, strlen(extra_headers)) == 0 &&
        send_all(fd, "\r\n", 2) == 0) {
        send_all(fd, body, strlen(body));
    }
}

/*
 * Renders the rate-limit headers into `stack` when they fit, else into a heap buffer of the size
 * the library reports (the sizing protocol every rw_render_* function follows). Returns the
 * headers (free with free() if != stack), or NULL on error.
 */
static char *render_headers(const rw_policy *policy, const rw_decision *d, const char *key,
                            char *stack, size_t cap) {
    size_t need = 0;
    rw_status s = rw_render_headers(policy, d, (const uint8_t *)key, strlen(key),
                                    rw_unix_time_ms(), stack, cap, &need);
    if (s == RW_OK) {
        return stack;
    }
    if (s != RW_BUFFER_TOO_SMALL) {
        fprintf(stderr, "server: %s\n", rw_last_error());
        return NULL;
    }
    char *heap = malloc(need);
    if (heap != NULL && rw_render_headers(policy, d, (const uint8_t *)key, strlen(key),
                                          rw_unix_time_ms(), heap, need, &need) == RW_OK) {
        return heap;
    }
    free(heap);
    return NULL;
}

/* Answers one request for a limited route. */
static void limited(int fd, const rw_policy *policy, const char *client, const char *ok_body) {
    rw_decision d;
    if (rw_check_now(policy, (const uint8_t *)client, strlen(client), 1, &d) != RW_OK) {
        fprintf(stderr, "server: %s\n", rw_last_error());
        respond(fd, 500, "Internal Server Error", "", "{\"error\":\"internal\"}");
        return;
    }
    char stack[1024];
    char *headers = render_headers(policy, &d, client, stack, sizeof stack);
    if (headers == NULL) {
        respond(fd, 500, "Internal Server Error", "", "{\"error\":\"internal\"}");
        return;
    }
    if (d.allowed) {
        respond(fd, 200, "OK", headers, ok_body);
    } else {
        char body[64];
        size_t len;
        if (rw_render_denied_body(&d, body, sizeof body, &len) != RW_OK) {
            fprintf(stderr, "server: %s\n", rw_last_error());
            body[0] = '\0';
        }
        respond(fd, RW_DENIED_STATUS, "Too Many Requests", headers, body);
    }
    if (headers != stack) {
        free(headers);
    }
}

/* Reads the request head (up to the blank line) into buf; returns its length or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap) {
    size_t used = 0;
    while (used + 1 < cap) {
        ssize_t n = recv(fd, buf + used, cap - 1 - used, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        used += (size_t)n;
        buf[used] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL) {
            return (ssize_t)used;
        }
    }
    return -1; /* head too large */
}

static void serve(int fd, const char *client, const rw_policy *demo, const rw_policy *login) {
    char head[8192];
    if (read_head(fd, head, sizeof head) < 0) {
        respond(fd, 400, "Bad Request", "", "{\"error\":\"bad_request\"}");
        return;
    }
    char method[16], target[1024], version[16];
    if (sscanf(head, "%15s %1023s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        respond(fd, 400, "Bad Request", "", "{\"error\":\"bad_request\"}");
        return;
    }
    target[strcspn(target, "?")] = '\0';
    if (strcmp(target, "/healthz") == 0) {
        respond(fd, 200, "OK", "", "{\"ok\":true}");
    } else if (strcmp(target, "/api/demo") == 0) {
        limited(fd, demo, client, "{\"ok\":true,\"path\":\"/api/demo\"}");
    } else if (strcmp(target, "/api/login") == 0) {
        if (strcmp(method, "POST") != 0) {
            respond(fd, 405, "Method Not Allowed", "Allow: POST\r\n",
                    "{\"error\":\"method_not_allowed\"}");
        } else {
            limited(fd, login, client, "{\"ok\":true,\"path\":\"/api/login\"}");
        }
    } else {
        respond(fd, 404, "Not Found", "", "{\"error\":\"not_found\"}");
    }
}

static void usage(void) {
    fprintf(stderr, "usage: server [--config FILE] [--port N] [--port-file FILE] "
                    "[--max-requests N] [--max-seconds N]\n");
}

int main(int argc, char **argv) {
    const char *config_path = "ratewall.toml", *port_file = NULL;
    long port = 0, max_requests = -1, max_seconds = 300;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        if (strcmp(argv[i], "--config") == 0) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0) {
            port = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--port-file") == 0) {
            port_file = argv[++i];
        } else if (strcmp(argv[i], "--max-requests") == 0) {
            max_requests = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--max-seconds") == 0) {
            max_seconds = strtol(argv[++i], NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    if (port < 0 || port > 65535 || max_seconds <= 0) {
        usage();
        return 2;
    }

    /* The policies, from the same TOML file every ratewall binding reads. */
    rw_config *config = NULL;
    rw_policy *demo = NULL, *login = NULL;
    if (rw_config_from_file(config_path, &config) != RW_OK ||
        rw_config_policy(config, "demo", &demo) != RW_OK ||
        rw_config_policy(config, "login", &login) != RW_OK) {
        fprintf(stderr, "server: %s\n", rw_last_error());
        return 1;
    }
    rw_config_free(config); /* the policy handles live on */

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: accept() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)max_seconds); /* a hard bound on the server's life */

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 64) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
        perror("server: listen");
        return 1;
    }
    port = ntohs(addr.sin_port);
    if (port_file != NULL) {
        /* Write then rename, so a reader never sees a half-written number. */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%ld\n", port) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            perror("server: port file");
            return 1;
        }
    }
    fprintf(stderr, "server: listening on http://127.0.0.1:%ld (libratewall %s)\n", port,
            rw_version());

    long served = 0;
    while (!stopping && (max_requests < 0 || served < max_requests)) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept(listener, (struct sockaddr *)&peer, &peer_len);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("server: accept");
            break;
        }
        struct timeval timeout = {2, 0}; /* a silent client cannot hold the server */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        char client[INET_ADDRSTRLEN] = "unknown";
        inet_ntop(AF_INET, &peer.sin_addr, client, sizeof client);
        serve(fd, client, demo, login);
        /* Finish politely: half-close, then drain what the client still sends (bounded by the
         * receive timeout) so that closing never resets the connection before it read us. */
        shutdown(fd, SHUT_WR);
        char drain[512];
        while (recv(fd, drain, sizeof drain, 0) > 0) {
        }
        close(fd);
        served++;
    }
    close(listener);
    rw_policy_free(demo);
    rw_policy_free(login);
    fprintf(stderr, "server: served %ld requests, exiting\n", served);
    return 0;
}
