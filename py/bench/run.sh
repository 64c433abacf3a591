#!/usr/bin/env bash
# Python benchmarks with their peers in the same run: Limiter.check() vs `limits`, and the
# per-request overhead of ratewall.flask vs Flask-Limiter. Prints the ratios.
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
