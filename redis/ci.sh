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

# shellcheck source=testing/server.sh
source redis/testing/server.sh
start_redis

cargo test -p ratewall-redis --all-targets
cargo test -p ratewall-redis --doc
