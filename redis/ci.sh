#!/usr/bin/env bash
# Runs every test of ratewall-redis against a real redis-server.
#
# - Installs redis-server from apt when it is missing (quiet, idempotent).
# - Starts one server on a free loopback port (no persistence), exports its URL as
#   REDIS_TEST_URL for the tests, and stops it on exit, whatever happens. The fault, Unix-socket
#   and cluster tests start (and stop) servers of their own on other free ports.
# - With REDIS_TEST_URL set, a test that cannot reach Redis FAILS: Redis tests never skip here.
# - Safe to run twice, also at the same time: every run has its own port, directory and pidfile.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    echo "ci.sh: installing redis-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq redis-server >/dev/null
fi

free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "ci.sh: no free port found" >&2
    return 1
}

workdir=$(mktemp -d /tmp/ratewall-redis-ci.XXXXXX)
port=$(free_port)
pidfile="$workdir/redis.pid"

stop_redis() {
    if [ -f "$pidfile" ]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        for _ in $(seq 1 100); do
            [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null || break
            sleep 0.05
        done
    fi
    rm -rf "$workdir"
}
trap stop_redis EXIT

redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$pidfile" --dir "$workdir" --logfile "$workdir/redis.log"

for _ in $(seq 1 200); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" = "PONG" ]; then
        break
    fi
    sleep 0.05
done
if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" != "PONG" ]; then
    echo "ci.sh: redis-server did not start on port $port" >&2
    cat "$workdir/redis.log" >&2 || true
    exit 1
fi
echo "ci.sh: redis-server $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') on 127.0.0.1:$port"

export REDIS_TEST_URL="redis://127.0.0.1:$port"
export CI="${CI:-true}"

cargo test -p ratewall-redis --all-targets
cargo test -p ratewall-redis --doc
