#!/usr/bin/env bash
# The Python binding's tests on free-threaded CPython (issue #5): builds python3.14t from
# Debian's source package (scripts/freethreaded-python.sh; ~2.5 minutes cold on 2 cores, cached
# in py/.freethreaded), a virtualenv of it, the pinned test dependencies, `pip install ./py`
# (maturin builds a version-specific cp314t module there: abi3 has no free-threaded variant
# before 3.15, so PyO3 and maturin fall back with a warning; GIL builds keep the abi3 wheel),
# then pytest twice:
#
# - every test with PYTHON_GIL=0;
# - tests/test_free_threaded.py with PYTHON_GIL unset, so that an extension module that did not
#   declare `gil_used = false` would turn the GIL back on and fail its assertions.
#
#   bash py/ci-freethreaded.sh             # everything
#   bash py/ci-freethreaded.sh -k core     # extra arguments go to the first pytest run
#
# RATEWALL_FT_CACHE: the interpreter's cache (default py/.freethreaded); RATEWALL_FT_VENV: the
# virtualenv (default $RATEWALL_FT_CACHE/venv). Redis as in ci.sh: REDIS_TEST_URL, else a
# private redis-server for this run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RATEWALL_FT_CACHE="${RATEWALL_FT_CACHE:-$here/.freethreaded}"
venv="${RATEWALL_FT_VENV:-$RATEWALL_FT_CACHE/venv}"

echo "== py (free-threaded): interpreter"
python="$(bash "$here/scripts/freethreaded-python.sh")"
"$python" -VV

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(sys._is_gil_enabled())' 2>/dev/null; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check -q)

echo "== py (free-threaded): test dependencies"
"${pip[@]}" install -r requirements-test.txt

echo "== py (free-threaded): pip install ./py"
"${pip[@]}" install --force-reinstall --no-deps "$here"
native="$("$py" -c 'import ratewall._native as n; print(n.__file__)')"
case "$native" in
*t-*-linux-gnu.so) echo "native module: $native" ;;
*)
    echo "py/ci-freethreaded.sh: expected a free-threaded (cpython-3XXt) module, got $native" >&2
    exit 1
    ;;
esac

if [ -z "${REDIS_TEST_URL:-}" ]; then
    echo "== py (free-threaded): redis-server"
    cd "$here/.."
    # shellcheck source=../redis/testing/server.sh
    source redis/testing/server.sh
    start_redis
    cd "$here"
fi
export CI="${CI:-true}"

echo "== py (free-threaded): pytest, PYTHON_GIL=0"
PYTHON_GIL=0 "$py" -m pytest -p no:cacheprovider -q "$@" tests

echo "== py (free-threaded): pytest tests/test_free_threaded.py, PYTHON_GIL unset"
env -u PYTHON_GIL "$py" -m pytest -p no:cacheprovider -q tests/test_free_threaded.py
