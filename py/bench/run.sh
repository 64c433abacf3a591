#!/usr/bin/env bash
# Python benchmarks with their peers in the same run: Limiter.check() vs `limits`, the
# per-request overhead of ratewall.flask vs Flask-Limiter, and decisions per second through Redis
# vs `limits`' RedisStorage (a private redis-server unless REDIS_TEST_URL is set). Prints the
# ratios.
#
#   bash py/bench/run.sh            # full
#   bash py/bench/run.sh --quick    # shorter
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${RATEWALL_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install -r "$here/requirements-test.txt" -r "$here/requirements-bench.txt"
"${pip[@]}" install --force-reinstall --no-deps "$here"
echo "== Limiter.check() vs limits (MemoryStorage hit)"
"$venv/bin/python" "$here/bench/bench_core.py" "$@"
echo
echo "== Flask: per-request overhead, ratewall.flask vs Flask-Limiter"
"$venv/bin/python" -W ignore "$here/bench/bench_flask.py" "$@"
echo
echo "== Redis: decisions per second, ratewall vs limits.storage.RedisStorage"
if [ -z "${REDIS_TEST_URL:-}" ]; then
    cd "$here/.."
    # shellcheck source=../../redis/testing/server.sh
    source redis/testing/server.sh
    start_redis
fi
"$venv/bin/python" "$here/bench/bench_redis.py" "$@"
