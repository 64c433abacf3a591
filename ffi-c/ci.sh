#!/usr/bin/env bash
# Every test of the C binding, on a fresh machine:
#   1. header freshness: include/ratewall.h equals a fresh cbindgen generation
#   2. lint of the header generator, Rust unit tests of the crate (panic guard, status names)
#   3. `make install` into a temporary PREFIX (header, libratewall.so/.a, ratewall.pc)
#   4. the C tests (tests/test_ratewall.c): against the shared library; under AddressSanitizer +
#      UndefinedBehaviorSanitizer against the static library; under valgrind memcheck (no leaks)
#   5. the pkg-config example (examples/hello.c) built with `cc $(pkg-config --cflags --libs
#      ratewall)`, and statically linked
#   6. the example HTTP server end to end (demo.sh --check: 200s turn into 429s)
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

# shellcheck disable=SC2046
step "build C tests (shared library)" \
    cc "${cflags[@]}" -O1 -o "$work/test" "$here/tests/test_ratewall.c" \
    $(pkg-config --cflags --libs ratewall) -Wl,-rpath,"$libdir"
# shellcheck disable=SC2046
step "build C tests (static library, ASan + UBSan)" \
    cc "${cflags[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
    -fno-sanitize-recover=all -o "$work/test-asan" "$here/tests/test_ratewall.c" \
    $(pkg-config --cflags ratewall) \
    $(pkg-config --static --libs ratewall | sed 's/-lratewall\b/-l:libratewall.a/')

[[ -x "$work/test" ]] && c_tests shared "$work/test"
[[ -x "$work/test-asan" ]] && c_tests asan-ubsan env \
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$work/test-asan"
[[ -x "$work/test" ]] && c_tests valgrind valgrind -q --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite "$work/test"

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
