#!/usr/bin/env bash
# The cross-language hammer (redis/cross/hammer.py) against a private redis-server: a C, a Python
# and a Node process hammer one key of one policy together; they must admit exactly the quota.
#
# Needs the three bindings built, as `make test` leaves them: the C library (this script builds
# the C participant with `make -C ffi-c hammer`), the Python package installed in the virtualenv
# of py/ci.sh (RATEWALL_PY_VENV, default py/.venv), and node/ratewall.node (node/ci.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

# shellcheck source=../testing/server.sh
source redis/testing/server.sh
start_redis

venv="${RATEWALL_PY_VENV:-$root/py/.venv}"
[ -x "$venv/bin/python" ] || { echo "cross: no Python virtualenv at $venv: run bash py/ci.sh first" >&2; exit 1; }
[ -f node/ratewall.node ] || { echo "cross: node/ratewall.node is missing: run bash node/ci.sh first" >&2; exit 1; }

echo "== cross: building the C participant"
make -s -C ffi-c hammer
target_dir="${CARGO_TARGET_DIR:-$root/target}"

python3 redis/cross/hammer.py --redis-url "$REDIS_TEST_URL" \
    --c "$target_dir/cross/hammer" \
    --python "$venv/bin/python $root/py/scripts/hammer.py" \
    --node "node $root/node/scripts/hammer.js"
