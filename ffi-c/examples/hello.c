/*
 * The smallest ratewall program: one policy, seven requests from one client, the headers and
 * body of the first denial. Build it against an installed libratewall:
 *
 *     cc hello.c $(pkg-config --cflags --libs ratewall) -o hello && ./hello
 */
#include <ratewall.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    rw_policy *api = NULL;
    if (rw_policy_from_str("api", "5/minute", NULL, &api) != RW_OK) {
        fprintf(stderr, "ratewall: %s\n", rw_last_error());
        return 1;
    }
    const char *client = "203.0.113.7";
    uint64_t now = rw_now(); /* or any monotonic nanoseconds of your own */
    rw_decision d;
    int denied_once = 0;
    for (int i = 1; i <= 7; i++) {
        if (rw_check(api, (const uint8_t *)client, strlen(client), now, 1, &d) != RW_OK) {
            fprintf(stderr, "ratewall: %s\n", rw_last_error());
            return 1;
        }
        printf("request %d: %s, remaining %" PRIu64 "\n", i, d.allowed ? "allowed" : "denied",
               d.remaining);
        if (!d.allowed && !denied_once) {
            denied_once = 1;
            char headers[512], body[64];
            size_t len;
            if (rw_render_headers(api, &d, NULL, 0, rw_unix_time_ms(), headers, sizeof headers,
                                  &len) != RW_OK ||
                rw_render_denied_body(&d, body, sizeof body, &len) != RW_OK) {
                fprintf(stderr, "ratewall: %s\n", rw_last_error());
                return 1;
            }
            printf("HTTP/1.1 %d Too Many Requests\r\n%s\r\n%s\n", RW_DENIED_STATUS, headers, body);
        }
    }
    rw_policy_free(api);
    return 0;
}
