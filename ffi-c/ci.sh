#!/usr/bin/env bash
# Every test of the C binding, on a fresh machine:
#   1. header freshness: include/ratewall.h equals a fresh cbindgen generation
#   2. lint of the header generator, Rust unit tests of the crate (panic guard, status names)
#   3. `make install` into a temporary PREFIX (header, libratewall.so/.a, ratewall.pc)
#   4. the C tests (tests/test_ratewall.c): against the shared library; under AddressSanitizer +
#      UndefinedBehaviorSanitizer against the static library; under valgrind memcheck (no leaks)
#   5. the Redis C tests (tests/test_redis.c) against a private redis-server started here
#      (redis/testing/server.sh; REDIS_TEST_URL), the same three ways; the fault test in it
#      starts, kills and restarts a redis-server of its own
#   6. the cross-language hammer participant (make hammer): three processes on one key admit
#      exactly the quota together, and bad arguments exit 1; two example HTTP servers on one
#      Redis share a login quota
#   7. the pkg-config example (examples/hello.c) built with `cc $(pkg-config --cflags --libs
#      ratewall)`, and statically linked
#   8. the example HTTP server end to end (demo.sh --check: 200s turn into 429s)
# Ends with "ffi-c: N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

# ---- what the tests need (idempotent, quiet) ----
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v valgrind >/dev/null || need+=(valgrind)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# step NAME COMMAND...: runs one check, counting it.
step() {
    local name="$1"
    shift
    echo "== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "FAILED: $name" >&2
        failed=$((failed + 1))
    fi
}

# c_tests NAME COMMAND...: runs the C test binary, adding its own pass/fail counts.
c_tests() {
    local name="$1"
    shift
    echo "== C tests: $name"
    local log="$work/$name.log" status=0
    "$@" >"$log" 2>&1 || status=$?
    cat "$log"
    local line
    line="$(grep -E '^c-tests: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1 || true)"
    if [[ -z "$line" ]]; then
        echo "FAILED: C tests ($name) did not finish (exit $status)" >&2
        failed=$((failed + 1))
        return
    fi
    local p f
    p="$(sed -E 's/^c-tests: ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$line")"
    f="$(sed -E 's/^c-tests: ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$line")"
    passed=$((passed + p))
    failed=$((failed + f))
    if ((status != 0 && f == 0)); then
        echo "FAILED: C tests ($name) exited $status" >&2
        failed=$((failed + 1))
    fi
}

step "header is fresh (cbindgen)" make -s -C "$here" check-header
step "rustfmt (ratewall-ffi)" cargo fmt -p ratewall-ffi -- --check
step "clippy (header generator)" \
    cargo clippy -q -p ratewall-ffi --features header --bin gen-header -- -D warnings
step "Rust unit tests (ratewall-ffi)" cargo test -q -p ratewall-ffi --lib

prefix="$work/prefix"
step "make install PREFIX=$prefix" make -s -C "$here" install PREFIX="$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
libdir="$prefix/lib"
cflags=(-std=c11 -Wall -Wextra -Werror -pthread -g)

# build_c_tests NAME: builds tests/NAME.c against the shared library ($work/NAME) and, under
# ASan + UBSan, against the static library ($work/NAME-asan).
build_c_tests() {
    local name="$1"
    # shellcheck disable=SC2046
    step "build C tests $name (shared library)" \
        cc "${cflags[@]}" -O1 -o "$work/$name" "$here/tests/$name.c" \
        $(pkg-config --cflags --libs ratewall) -Wl,-rpath,"$libdir"
    # shellcheck disable=SC2046
    step "build C tests $name (static library, ASan + UBSan)" \
        cc "${cflags[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
        -fno-sanitize-recover=all -o "$work/$name-asan" "$here/tests/$name.c" \
        $(pkg-config --cflags ratewall) \
        $(pkg-config --static --libs ratewall | sed 's/-lratewall\b/-l:libratewall.a/')
}

# run_c_tests NAME: runs them plain, under the sanitizers, and under valgrind memcheck.
run_c_tests() {
    local name="$1"
    if [[ -x "$work/$name" ]]; then
        c_tests "$name" "$work/$name"
    fi
    if [[ -x "$work/$name-asan" ]]; then
        c_tests "$name-asan-ubsan" env \
            ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$work/$name-asan"
    fi
    # Valgrind runs every thread on one core, many times slower: the Redis tests widen their
    # time bounds by RW_TEST_TIME_SCALE. tests/valgrind-ring.supp: ring's AES-GCM assembly
    # (TLS), which memcheck cannot follow.
    if [[ -x "$work/$name" ]]; then
        c_tests "$name-valgrind" env RW_TEST_TIME_SCALE=20 valgrind -q --error-exitcode=1 \
            --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
            --suppressions="$here/tests/valgrind-ring.supp" "$work/$name"
    fi
}

build_c_tests test_ratewall
run_c_tests test_ratewall

# The Redis tests: a private server for this run (stopped on exit), its URL in REDIS_TEST_URL.
# With CI set (server.sh sets it) an unreachable server fails the tests; they never skip here.
# shellcheck source=../redis/testing/server.sh
source "$root/redis/testing/server.sh"
start_redis
# start_redis installs its own EXIT trap: keep both cleanups.
trap 'stop_redis_servers; rm -rf "$work"' EXIT
# The mutual-TLS test's throwaway PKI (CA, server and client certificates).
step "test certificates (redis/testing/tls-certs.sh)" bash "$root/redis/testing/tls-certs.sh" "$work/pki"
export RW_TEST_PKI="$work/pki"
build_c_tests test_redis
run_c_tests test_redis

# The hammer participant: three processes start together on one key and admit exactly the quota
# (fail-closed, so a decision Redis did not make can never add an admission).
hammer() {
    make -s -C "$here" hammer || return 1
    local bin="${CARGO_TARGET_DIR:-$root/target}/cross/hammer" config="$work/cross.toml"
    cat >"$config" <<EOF
[defaults]
storage = "$REDIS_TEST_URL"
fail_mode = "fail-closed"
key_prefix = "ci-hammer-$$"

[policies.burst]
limits = "50/hour"
algorithm = "sliding-log"
EOF
    local start i pids=()
    start=$(($(date +%s%3N) + 1500))
    for i in 1 2 3; do
        "$bin" --config "$config" --policy burst --key shared --attempts 40 --start-at "$start" \
            >"$work/hammer.$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || return 1
    done
    cat "$work"/hammer.*
    local allowed=0 fallback=0 line
    local re='^\{"binding":"c","policy":"burst","allowed":([0-9]+),"denied":([0-9]+),"fallback":([0-9]+),"first_ms":([0-9]+),"last_ms":([0-9]+)\}$'
    for i in 1 2 3; do
        line="$(cat "$work/hammer.$i")"
        if ! [[ "$line" =~ $re ]]; then
            echo "not the participant's JSON line: $line" >&2
            return 1
        fi
        allowed=$((allowed + BASH_REMATCH[1]))
        fallback=$((fallback + BASH_REMATCH[3]))
        if ((BASH_REMATCH[1] + BASH_REMATCH[2] != 40 || BASH_REMATCH[4] < start ||
            BASH_REMATCH[5] < BASH_REMATCH[4])); then
            echo "inconsistent counts or times: $line" >&2
            return 1
        fi
    done
    echo "together: allowed $allowed (quota 50), fallback $fallback"
    ((allowed == 50 && fallback == 0)) || return 1
    # Errors: a message on stderr and exit 1.
    ! "$bin" --config "$config" --policy missing --key k --attempts 1 --start-at 0 2>/dev/null &&
        ! "$bin" --config "$config" --policy burst --key k --attempts x --start-at 0 2>/dev/null &&
        ! "$bin" --config /nonexistent.toml --policy burst --key k --attempts 1 --start-at 0 \
            2>/dev/null
}
step "hammer participant: 3 processes admit exactly the quota" hammer

# A fleet end to end: two instances of the example HTTP server (examples/server.c, unchanged)
# on one Redis share the login quota: 5 per 15 minutes per client across both, whichever
# instance a request reaches.
fleet() {
    # shellcheck disable=SC2046
    cc -std=c11 -O1 -o "$work/server" "$here/examples/server.c" \
        $(pkg-config --cflags --libs ratewall) -Wl,-rpath,"$libdir" || return 1
    local config="$work/fleet.toml" i pids=() ports=() codes=()
    cat >"$config" <<EOF
[defaults]
storage = "$REDIS_TEST_URL"
key_prefix = "ci-fleet-$$"
fail_mode = "fail-closed"
[policies.demo]
limits = "1/second"
burst = 5
[policies.login]
limits = "5/15min"
algorithm = "sliding-log"
EOF
    for i in 0 1; do
        "$work/server" --config "$config" --port 0 --port-file "$work/fleet-port.$i" \
            --max-requests 4 --max-seconds 30 &
        pids+=($!)
    done
    for i in 0 1; do
        local _
        for _ in $(seq 1 200); do
            [[ -s "$work/fleet-port.$i" ]] && break
            sleep 0.05
        done
        [[ -s "$work/fleet-port.$i" ]] || { kill "${pids[@]}" 2>/dev/null; return 1; }
        ports+=("$(cat "$work/fleet-port.$i")")
    done
    # Alternating instances: A, B, A, B, ... 8 login attempts by one client.
    for i in 0 1 2 3 4 5 6 7; do
        codes+=("$(curl -s -X POST --max-time 5 -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:${ports[i % 2]}/api/login")")
    done
    for i in "${pids[@]}"; do
        wait "$i" || true
    done
    echo "login attempts across two instances: ${codes[*]}"
    [[ "${codes[*]}" == "200 200 200 200 200 429 429 429" ]]
}
step "two example servers on one Redis share the quota" fleet

# The README's quickstart line, verbatim, then the program's output.
hello() {
    # shellcheck disable=SC2046
    cc "$here/examples/hello.c" $(pkg-config --cflags --libs ratewall) -o "$work/hello" &&
        LD_LIBRARY_PATH="$libdir" "$work/hello" >"$work/hello.out" &&
        grep -q '^request 5: allowed, remaining 0$' "$work/hello.out" &&
        grep -q '^request 6: denied, remaining 0$' "$work/hello.out" &&
        grep -q '^{"error":"rate_limited","retryAfter":12}$' "$work/hello.out"
}
hello_static() {
    # shellcheck disable=SC2046
    cc "$here/examples/hello.c" $(pkg-config --cflags ratewall) \
        $(pkg-config --static --libs ratewall | sed 's/-lratewall\b/-l:libratewall.a/') \
        -o "$work/hello-static" &&
        ! ldd "$work/hello-static" | grep -q libratewall &&
        "$work/hello-static" | grep -q '^request 7: denied'
}
step "pkg-config example (shared)" hello
step "pkg-config example (static)" hello_static
step "example HTTP server end to end" bash "$here/demo.sh" --check

echo "ffi-c: $passed passed, $failed failed"
((failed == 0))
