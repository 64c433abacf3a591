#!/usr/bin/env bash
# The C demo: builds and installs libratewall into a temporary prefix, builds the example HTTP
# server (examples/server.c) against it with pkg-config, starts it on a free 127.0.0.1 port,
# and sends a bounded curl loop: 8 GETs to /api/demo (5 at once, then 1 per second) and 7 POSTs
# to /api/login (5 per 15 minutes), printing each status with Retry-After and the rate-limit
# headers. The 200s turn into 429s. The server stops when the script ends.
#
#   bash ffi-c/demo.sh            # the demo
#   bash ffi-c/demo.sh --check    # the same, failing unless the responses are as expected
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${ROOT:-$(cd "$here/.." && pwd)}"
check=false
[[ "${1:-}" == "--check" ]] && check=true

command -v curl >/dev/null || { echo "demo: curl is needed (apt-get install -y curl)" >&2; exit 1; }
command -v pkg-config >/dev/null || { echo "demo: pkg-config is needed (apt-get install -y pkg-config)" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building libratewall and the C server"
make -s -C "$here" install ROOT="$root" PREFIX="$work/prefix" >/dev/null
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -o "$work/server" "$here/examples/server.c" \
    $(pkg-config --cflags --libs ratewall) -Wl,-rpath,"$work/prefix/lib"

"$work/server" --config "$here/examples/ratewall.toml" --port 0 --port-file "$work/port" \
    --max-requests 40 --max-seconds 60 &
server_pid=$!
for _ in $(seq 1 100); do
    [[ -s "$work/port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "demo: the server failed to start" >&2; exit 1; }
    sleep 0.05
done
[[ -s "$work/port" ]] || { echo "demo: the server did not start listening" >&2; exit 1; }
port="$(cat "$work/port")"
base="http://127.0.0.1:$port"

statuses=()
request() { # method path
    local status
    status="$(curl -s -X "$1" --max-time 5 -D "$work/headers" -o "$work/body" -w '%{http_code}' "$base$2")"
    statuses+=("$status")
    local show
    show="$(grep -iE '^(retry-after|x-ratelimit-remaining|ratelimit):' "$work/headers" | tr -d '\r' | paste -sd ' ' -)"
    if [[ "$status" == 429 ]]; then
        printf '%s %-11s -> %s  %s  %s\n' "$1" "$2" "$status" "$show" "$(cat "$work/body")"
    else
        printf '%s %-11s -> %s  %s\n' "$1" "$2" "$status" "$show"
    fi
    if $check && [[ "$status" == 429 ]]; then
        grep -qiE '^retry-after: [1-9][0-9]*' "$work/headers" || { echo "demo: 429 without Retry-After" >&2; exit 1; }
        grep -qE '^\{"error":"rate_limited","retryAfter":[1-9][0-9]*\}$' "$work/body" || { echo "demo: bad 429 body" >&2; exit 1; }
    fi
}

echo "== $base: 8 x GET /api/demo (capacity 5, refill 1/s)"
for _ in $(seq 1 8); do request GET /api/demo; done
echo "== $base: 7 x POST /api/login (5 per 15 minutes)"
for _ in $(seq 1 7); do request POST /api/login; done

if $check; then
    demo="${statuses[*]:0:8}" login="${statuses[*]:8:7}"
    # The first five demo requests pass; the burst is spent before a token can refill (the loop
    # takes far less than a second, so at least one of the last three is a 429).
    [[ "${statuses[*]:0:5}" == "200 200 200 200 200" ]] || { echo "demo: /api/demo got $demo" >&2; exit 1; }
    [[ "${statuses[*]:5:3}" == *429* ]] || { echo "demo: /api/demo never limited: $demo" >&2; exit 1; }
    [[ "$login" == "200 200 200 200 200 429 429" ]] || { echo "demo: /api/login got $login" >&2; exit 1; }
    echo "demo: responses as expected"
fi
