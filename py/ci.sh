#!/usr/bin/env bash
# The Python binding's tests on a fresh machine: a virtualenv, `pip install ./py` (built from
# source by maturin with cargo), the pinned test dependencies, then pytest.
#
#   bash py/ci.sh                  # everything
#   bash py/ci.sh -k flask         # extra arguments go to pytest
#
# RATEWALL_PY_VENV chooses the virtualenv (default: py/.venv, git-ignored).
#
# The Redis tests (tests/test_redis.py) need a real Redis: a private redis-server is started on
# a free loopback port (redis/testing/server.sh; installed from apt when missing) unless
# REDIS_TEST_URL already names one, and stopped when this script exits. CI is set, so the
# Redis tests fail rather than skip when Redis is unreachable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

python="${PYTHON:-python3}"
venv="${RATEWALL_PY_VENV:-$here/.venv}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "py/ci.sh: cargo is needed to build the native module" >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        # Debian's python3 ships venv separately.
        if command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        fi
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

echo "== py: test dependencies"
"${pip[@]}" install -r requirements-test.txt

echo "== py: pip install ./py (maturin, cargo build --release)"
# Reinstall every run so the tests exercise the current sources.
"${pip[@]}" install --force-reinstall --no-deps "$here"

echo "== py: redis-server"
if [ -z "${REDIS_TEST_URL:-}" ]; then
    cd "$here/.."
    # shellcheck source=../redis/testing/server.sh
    source redis/testing/server.sh
    start_redis
fi
export CI="${CI:-true}"

echo "== py: pytest"
cd "$here"
# The tests import the installed package (py/python is not on sys.path).
"$venv/bin/python" -m pytest -p no:cacheprovider -q "$@" tests

# The same tests on free-threaded CPython 3.14t, built from Debian's source package (issue #5).
bash "$here/ci-freethreaded.sh" "$@"
