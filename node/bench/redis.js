#!/usr/bin/env node
// Bench: decisions per second through one local Redis, same limit (fixed window, 10^9 per
// minute, 1000 keys), ratewall's RedisLimiter.check(key) against rate-limit-redis (with the
// `redis` client, as its README shows) through express-rate-limit's store interface
// (store.increment(key)). Measured in the same run, interleaved rounds, median per case:
//   - sequential: one caller, each call awaited before the next;
//   - concurrent: CONCURRENCY callers at once, each awaiting its own calls.
// Run: node bench/redis.js   (REDIS_URL or REDIS_TEST_URL, else a private redis-server on a
// free port; ROUNDS=5 OPS=20000 CONCURRENCY=64 by default)
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { RedisStore } = require('../redis.js')
const { createClient } = require('redis')
const { RedisStore: RateLimitRedisStore } = require('rate-limit-redis')

const ROUNDS = Number(process.env.ROUNDS || 5)
const OPS = Number(process.env.OPS || 20_000)
const CONCURRENCY = Number(process.env.CONCURRENCY || 64)
const KEYS = Array.from({ length: 1000 }, (_, i) => `user:${i}`)
const WINDOW_MS = 60_000
const LIMIT = 1e9

/** A throwaway redis-server on a free port (when no URL is given); stopped on exit. */
async function privateServer() {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port
      s.close(() => resolve(p))
    })
  })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-bench-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  process.on('exit', () => {
    child.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return `redis://127.0.0.1:${port}`
}

async function connectWithRetry(url) {
  for (let i = 0; ; i++) {
    try {
      return await RedisStore.connect(url, { keyPrefix: 'bench', commandTimeout: 5000, failMode: 'fail-closed' })
    } catch (e) {
      if (i > 100) throw e
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/** `n` calls of `fn(key)` by `callers` concurrent callers; returns decisions per second. */
async function run(fn, n, callers) {
  let next = 0
  const t = process.hrtime.bigint()
  const worker = async () => {
    while (next < n) {
      const i = next++
      await fn(KEYS[i % KEYS.length])
    }
  }
  await Promise.all(Array.from({ length: callers }, worker))
  return n / (Number(process.hrtime.bigint() - t) / 1e9)
}

/** A package's version from its package.json (which not every package exports). */
function version(name) {
  let dir = path.dirname(require.resolve(name))
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function main() {
  const url = process.env.REDIS_URL || process.env.REDIS_TEST_URL || (await privateServer())
  const store = await connectWithRetry(url)
  const ours = store.limiter({ limits: `${LIMIT}/${WINDOW_MS}ms`, algorithm: 'fixed-window', name: 'bench' })
  // ratewall's default algorithm, for reference (its script is the cheapest for Redis to run).
  const bucket = store.limiter({ limits: `${LIMIT}/${WINDOW_MS}ms`, algorithm: 'token-bucket', name: 'bench' })

  const client = createClient({ url })
  client.on('error', (e) => console.error('redis client:', e.message))
  await client.connect()
  const peer = new RateLimitRedisStore({ sendCommand: (...args) => client.sendCommand(args), prefix: 'bench-rl:' })
  await peer.init({ windowMs: WINDOW_MS })

  // Every case is the bare call, awaited by the caller, as users make it (a wrapper to inspect
  // each decision would cost ratewall a Promise more than the peer); the store's own counters
  // tell afterwards whether a fail mode decided instead of Redis.
  const OURS = 'ratewall RedisLimiter.check(key), fixed window'
  const PEER = 'rate-limit-redis store.increment(key), fixed window'
  const BUCKET = 'ratewall RedisLimiter.check(key), token bucket (reference)'
  const cases = { [OURS]: (k) => ours.check(k), [PEER]: (k) => peer.increment(k), [BUCKET]: (k) => bucket.check(k) }
  const modes = { sequential: 1, [`${CONCURRENCY} concurrent callers`]: CONCURRENCY }
  const samples = {}
  for (const mode of Object.keys(modes)) for (const name of Object.keys(cases)) samples[`${mode}|${name}`] = []
  for (const [mode, callers] of Object.entries(modes)) for (const fn of Object.values(cases)) await run(fn, OPS / 5, callers) // warm up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [mode, callers] of Object.entries(modes)) {
      // Alternate the order so neither peer always runs on a warmer server.
      const names = Object.keys(cases)
      if (r % 2) names.reverse()
      for (const name of names) samples[`${mode}|${name}`].push(await run(cases[name], OPS, callers))
    }
  }
  await client.quit()

  console.log(`node ${process.version}, ${url.replace(/\/\/[^@]*@/, '//')}, ${ROUNDS} rounds x ${OPS} decisions, ${KEYS.length} keys, median decisions/s`)
  for (const mode of Object.keys(modes)) {
    console.log(`${mode}:`)
    const rate = (name) => median(samples[`${mode}|${name}`])
    for (const name of Object.keys(cases)) console.log(`  ${rate(name).toFixed(0).padStart(8)} /s  ${name}`)
    // The project's target (at least equal) is for concurrent callers; one caller at a time
    // measures latency, reported for reference.
    const target = modes[mode] > 1 ? 'target >= 1.00x' : 'reference: one caller at a time'
    console.log(`  ratio ratewall / rate-limit-redis (fixed window, the same limit): ${(rate(OURS) / rate(PEER)).toFixed(2)}x (${target})`)
  }
  console.log(`rate-limit-redis ${version('rate-limit-redis')} with redis ${version('redis')}`)
  const h = store.health()
  const fallbacks = h.failOpen + h.failClosed + h.local
  if (fallbacks > 0) console.log(`WARNING: ${fallbacks} ratewall decisions were made by the fail mode (Redis too slow): the figures above are not valid`)
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
