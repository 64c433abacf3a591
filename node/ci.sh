#!/usr/bin/env bash
# node/ci.sh: everything the Node binding needs on a fresh machine, then every Node test.
#  1. npm ci (lockfile committed); the package's install script builds the addon with cargo.
#  2. node --test (core API, Express over loopback HTTP, fetch retry helper against a live server,
#     the Redis store against a private redis-server started here: with CI set the Redis tests
#     fail, never skip, when it is unreachable); then the core API's tests again with the direct
#     V8 callbacks turned off (RATEWALL_NODE_API_ONLY=1), the path of a Node without headers.
#  3. The user's flow: `npm install <path to node/>` from a fresh app folder, then require() and
#     import work.
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"

command -v node >/dev/null || { echo "node/ci.sh: Node.js 18.17+ is needed (apt-get install nodejs npm)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "node/ci.sh: cargo is needed to build the addon" >&2; exit 1; }
echo "== node $(node --version), npm $(npm --version)"

echo "== npm ci (builds the native addon)"
npm ci --no-audit --no-fund --loglevel=error

echo "== native.d.ts is what napi-rs generates"
rm -rf target/napi
npx --no-install napi build --release --output-dir target/napi --dts native.d.ts >/dev/null 2>&1 || npx --no-install napi build --release --output-dir target/napi --dts native.d.ts
diff -u native.d.ts target/napi/native.d.ts || { echo "node/ci.sh: native.d.ts is stale: run npm run build:types" >&2; exit 1; }
rm -rf target/napi

echo "== redis-server for the Redis tests"
# shellcheck source=../redis/testing/server.sh
source ../redis/testing/server.sh
start_redis
echo "REDIS_TEST_URL=$REDIS_TEST_URL"

echo "== node --test"
# Bounded: a test that hangs fails the run in minutes instead of holding CI.
timeout -k 10 900 node --test test/

echo "== node --test, the core API again on Node-API calls alone (no direct V8 callbacks)"
RATEWALL_NODE_API_ONLY=1 timeout -k 10 300 node --test test/core.test.js test/direct.test.js

echo "== npm install ./node from an app folder"
app="$(mktemp -d)"
trap 'rm -rf "$app"; stop_redis_servers' EXIT
cd "$app"
npm init -y >/dev/null
npm install --no-audit --no-fund --loglevel=error "$here"
test -f "$here/ratewall.node"
node -e "
const { Limiter } = require('ratewall');
const rateLimit = require('ratewall/express');
const l = new Limiter({ limits: '1/second', now: () => 0 });
if (!l.check('k').allowed || l.check('k').allowed) throw new Error('require: wrong decisions');
if (typeof rateLimit !== 'function') throw new Error('require: ratewall/express');
const { RedisStore } = require('ratewall/redis');
if (typeof RedisStore !== 'function') throw new Error('require: ratewall/redis');
console.log('require ok');"
node --input-type=module -e "
import { Limiter, fetchWithRetry } from 'ratewall';
import rateLimit, { ipKeyGenerator } from 'ratewall/express';
import ratewall from 'ratewall';
import { RedisStore, RedisLimiter } from 'ratewall/redis';
if (typeof RedisStore !== 'function' || typeof RedisLimiter !== 'function') throw new Error('import: ratewall/redis');
const l = new Limiter('2/second');
if (!l.check('k').allowed) throw new Error('import: wrong decision');
if (typeof rateLimit !== 'function' || typeof fetchWithRetry !== 'function' || ratewall.Limiter !== Limiter) throw new Error('import: exports');
if (ipKeyGenerator('2001:db8::1') !== '2001:db8::/56') throw new Error('import: ipKeyGenerator');
console.log('import ok');"
echo "1 passed, 0 failed: npm install from an app folder"
