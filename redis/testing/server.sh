# Shared by every ci.sh that needs a real Redis: `source redis/testing/server.sh`, then
# `start_redis` starts a private redis-server on a free loopback port (no persistence), exports
# REDIS_TEST_URL=redis://127.0.0.1:PORT and stops the server when the calling shell exits.
#
# - Installs redis-server from apt when it is missing (quiet, idempotent).
# - Every call has its own port, directory and pidfile, so concurrent runs never collide.
# - With REDIS_TEST_URL set (and CI set), tests that cannot reach Redis fail: they never skip.
# - REDIS_TEST_PORT and REDIS_TEST_DIR are exported too (for tests that restart the server).

ensure_redis_server() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "server.sh: installing redis-server"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq redis-server >/dev/null
    fi
}

# free_port: prints a loopback TCP port nothing listens on.
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "server.sh: no free port found" >&2
    return 1
}

_ratewall_redis_dirs=()

stop_redis_servers() {
    local dir pid
    for dir in "${_ratewall_redis_dirs[@]}"; do
        if [ -f "$dir/redis.pid" ]; then
            pid="$(cat "$dir/redis.pid")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
            done
        fi
        rm -rf "$dir"
    done
    _ratewall_redis_dirs=()
}

start_redis() {
    ensure_redis_server
    local port dir
    port="$(free_port)"
    dir="$(mktemp -d /tmp/ratewall-redis.XXXXXX)"
    _ratewall_redis_dirs+=("$dir")
    trap stop_redis_servers EXIT
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log"
    for _ in $(seq 1 200); do
        [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" = "PONG" ] && break
        sleep 0.05
    done
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" != "PONG" ]; then
        echo "server.sh: redis-server did not start on port $port" >&2
        cat "$dir/redis.log" >&2 || true
        return 1
    fi
    echo "server.sh: redis-server $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') on 127.0.0.1:$port"
    export REDIS_TEST_URL="redis://127.0.0.1:$port"
    export REDIS_TEST_PORT="$port"
    export REDIS_TEST_DIR="$dir"
    export CI="${CI:-true}"
}
