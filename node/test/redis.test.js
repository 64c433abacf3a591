'use strict'
// ratewall/redis against a real redis-server: semantics, shared quotas, exact admissions under
// concurrency, Express over loopback HTTP, outages (fail-open / fail-closed / local) and
// recovery, bad inputs.
//
// The server: REDIS_TEST_URL (node/ci.sh starts one with redis/testing/server.sh), else a
// private redis-server on a free port started here. With CI set, an unreachable server or a
// missing redis-server binary fails the tests; they are skipped only on a developer machine
// without Redis. The fault tests always start (and stop) redis-servers of their own.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync, execFile } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const express = require('express')

const { RedisStore, RedisLimiter, RedisDecision } = require('../redis.js')
const rateLimit = require('../express.js')
const { loadConfig, Decision } = require('..')

const CI = Boolean(process.env.CI)

// --- redis-server processes -------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function hasRedisServer() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

/** Resolves once something accepts TCP connections on `port` (or rejects after `ms`). */
async function waitListening(port, ms = 10_000) {
  const deadline = Date.now() + ms
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy()
        resolve(true)
      })
      c.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A redis-server child on `port` (a free one by default); `stop()` kills it and waits. */
// Every redis-server a test starts, killed when the file ends whatever happened: a test that
// fails before stopping its server must not leave a child that keeps this process alive.
const children = new Set()
after(() => {
  for (const child of children) {
    try {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
    } catch {}
  }
})

/**
 * A throwaway PKI in `dir` (redis/testing/tls-certs.sh: `ca.pem`, and `server.pem` /
 * `server.key` for 127.0.0.1 signed by it): `{ ca, cert, key }`, or null when `openssl` is
 * missing outside CI.
 */
function testPki(dir) {
  const script = path.join(__dirname, '..', '..', 'redis', 'testing', 'tls-certs.sh')
  const r = spawnSync('bash', [script, dir], { stdio: 'ignore', timeout: 120_000 })
  if (r.status === 0) {
    const at = (name) => path.join(dir, name)
    return { ca: at('ca.pem'), cert: at('server.pem'), key: at('server.key'), clientCert: at('client.pem'), clientKey: at('client.key') }
  }
  if (CI) throw new Error(`${script} could not make test certificates but CI is set: install openssl`)
  return null
}

/**
 * `tls` ({ cert, key }): the server speaks only TLS on `port`, and `url` is `rediss://…/#insecure`;
 * with `clientCa` (a PEM file) it also asks every client for a certificate signed by it.
 */
async function startServer(port, tls, clientCa) {
  port = port ?? (await freePort())
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-node-redis-'))
  const clients = clientCa ? ['--tls-ca-cert-file', clientCa, '--tls-auth-clients', 'yes'] : ['--tls-auth-clients', 'no']
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, ...clients]
    : ['--port', String(port)]
  const child = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  children.add(child)
  child.once('exit', () => children.delete(child))
  await waitListening(port)
  return {
    port,
    url: tls ? `rediss://127.0.0.1:${port}/#insecure` : `redis://127.0.0.1:${port}`,
    /** SIGSTOP / SIGCONT: a server that accepts connections but never answers. */
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', () => {
          fs.rmSync(dir, { recursive: true, force: true })
          resolve()
        })
        child.kill('SIGKILL')
      }),
  }
}

let URL = process.env.REDIS_TEST_URL
let own = null
let skip = false

before(async () => {
  if (URL === undefined) {
    if (hasRedisServer()) {
      own = await startServer()
      URL = own.url
    } else if (CI) {
      throw new Error('CI is set but REDIS_TEST_URL is not and redis-server is not installed: run node/ci.sh')
    } else {
      skip = true
      return
    }
  }
  try {
    const s = await RedisStore.connect(URL)
    assert.equal(s.state, 'up')
  } catch (e) {
    if (CI) throw new Error(`CI is set and Redis at ${URL} is unreachable: ${e.message}`)
    skip = true
  }
})

after(async () => {
  if (own) await own.stop()
})

/** A key prefix no other run or test shares, so tests never see each other's state. */
function prefix() {
  return `t${crypto.randomBytes(6).toString('hex')}`
}

/** `test` that skips (only outside CI) when no Redis is reachable. */
function redisTest(name, fn) {
  test(name, async (t) => {
    if (skip) return t.skip('no Redis reachable (set REDIS_TEST_URL or install redis-server)')
    return fn(t)
  })
}

/** A second client on the same Redis, for looking at keys. */
async function redisClient(url = URL) {
  const { createClient } = require('redis')
  const c = createClient({ url })
  c.on('error', () => {})
  await c.connect()
  return c
}

// --- semantics ---------------------------------------------------------------------------------

redisTest('fixed window through Redis: admits the quota, denies with a wait, peek/refund/reset', async () => {
  const store = await RedisStore.connect(URL, { keyPrefix: prefix() })
  const l = store.limiter({ limits: '3/hour', algorithm: 'fixed-window', name: 'api' })
  assert.equal(l.limits, '3/hour')
  assert.equal(l.algorithm, 'fixed-window')
  assert.equal(l.failMode, 'fail-open')
  assert.deepEqual(l.windowsMs, [3_600_000])
  assert.deepEqual(l.quotas, [3])

  const first = await l.check('alice')
  assert.ok(first instanceof RedisDecision && first instanceof Decision)
  assert.deepEqual([first.allowed, first.limit, first.remaining, first.retryAfter, first.source], [true, 3, 2, 0, 'redis'])
  assert.ok(first.resetAfter > 3_590_000 && first.resetAfter <= 3_600_000)
  assert.equal(first.fallback, false)

  const peeked = await l.peek('alice', 2)
  assert.deepEqual([peeked.allowed, peeked.remaining], [true, 0])
  assert.equal((await l.check('alice', 2)).remaining, 0, 'peek took nothing')
  const denied = await l.check('alice')
  assert.equal(denied.allowed, false)
  assert.equal(denied.remaining, 0)
  assert.ok(denied.retryAfter > 3_500_000, `retryAfter ${denied.retryAfter}`)
  assert.ok(denied.retryAfterSeconds > 3500)
  assert.deepEqual(Object.keys(denied.toJSON()), ['allowed', 'limit', 'remaining', 'retryAfter', 'resetAfter', 'source'])

  const refunded = await l.refund('alice')
  assert.equal(refunded.remaining, 1)
  assert.equal((await l.check('alice')).allowed, true)
  assert.equal((await l.check('alice')).allowed, false)
  await l.reset('alice')
  assert.equal((await l.check('alice')).remaining, 2)
  assert.equal((await l.check('bob')).remaining, 2, 'keys are independent')
  assert.equal(store.health().redisDecisions, 9, 'every check, peek and refund (reset is not a decision)')
})

redisTest('every algorithm admits exactly its quota; token-bucket burst; multi-limit policies', async () => {
  const store = await RedisStore.connect(URL, { keyPrefix: prefix() })
  for (const algorithm of ['token-bucket', 'fixed-window', 'fixed-window-aligned', 'sliding-window-counter', 'sliding-log']) {
    const l = store.limiter({ limits: '4/hour', algorithm })
    const d = []
    for (let i = 0; i < 6; i++) d.push(await l.check('k'))
    assert.deepEqual(d.map((x) => x.allowed), [true, true, true, true, false, false], algorithm)
    assert.deepEqual(d.map((x) => x.remaining), [3, 2, 1, 0, 0, 0], algorithm)
  }
  const bucket = store.limiter({ limits: '1/hour', burst: 3 })
  const b = []
  for (let i = 0; i < 4; i++) b.push(await bucket.check('k'))
  assert.deepEqual(b.map((x) => [x.allowed, x.limit]), [[true, 3], [true, 3], [true, 3], [false, 3]])

  const two = store.limiter({ limits: '2/hour; 3/day', algorithm: 'fixed-window' })
  await two.check('k')
  const d = await two.check('k')
  assert.deepEqual(d.limits.map((x) => x.remaining), [0, 1])
  assert.equal(d.mostRestrictive, 0)
  const denied = await two.check('k')
  assert.equal(denied.allowed, false)
  assert.deepEqual(denied.limits.map((x) => x.allowed), [false, true])
  assert.equal((await two.peek('k')).limits[1].remaining, 0, 'the denied request took nothing from the day limit')
})

redisTest('keys reach Redis as the keyed hash of their UTF-8 bytes (the same in C and Python), with a TTL', async () => {
  const keyPrefix = prefix()
  const store = await RedisStore.connect(URL, { keyPrefix })
  const l = store.limiter({ limits: '5/minute', name: 'shared', algorithm: 'fixed-window' })
  const key = 'ключ-🔑-ü'
  const hash = crypto.createHmac('sha256', 'ratewall-default-key-secret-v1').update(Buffer.from(key, 'utf8')).digest().subarray(0, 16).toString('base64url')
  const expected = `${keyPrefix}:{shared:${hash}}:fw:5:60000000`
  assert.deepEqual(l.redisKeys(key), [expected])
  await l.check(key)
  const c = await redisClient()
  try {
    assert.equal(await c.exists(expected), 1)
    const ttl = await c.pTTL(expected)
    assert.ok(ttl > 0 && ttl <= 60_000, `TTL ${ttl}`)
  } finally {
    await c.quit()
  }
  const secret = new RedisStore(URL, { keyPrefix, keySecret: 'fleet-secret' }).limiter({ limits: '5/minute', name: 'shared', algorithm: 'fixed-window' })
  assert.notDeepEqual(secret.redisKeys(key), [expected], 'another secret, other names')
})

// --- sharing and concurrency -------------------------------------------------------------------

redisTest('two stores (two app instances) share one quota', async () => {
  const keyPrefix = prefix()
  const a = (await RedisStore.connect(URL, { keyPrefix })).limiter({ limits: '10/hour', name: 'api' })
  const b = (await RedisStore.connect(URL, { keyPrefix })).limiter({ limits: '10/hour', name: 'api' })
  let allowed = 0
  for (let i = 0; i < 10; i++) {
    if ((await (i % 2 ? a : b).check('client')).allowed) allowed++
  }
  assert.equal(allowed, 10)
  assert.equal((await a.check('client')).allowed, false)
  assert.equal((await b.check('client')).allowed, false)
  const other = (await RedisStore.connect(URL, { keyPrefix })).limiter({ limits: '10/hour', name: 'other' })
  assert.equal((await other.check('client')).allowed, true, 'another policy name is another quota')
})

redisTest('2000 concurrent callers on two stores admit exactly the quota; every call returns its Promise at once', async () => {
  const keyPrefix = prefix()
  // A generous timeout and fail-closed: on a loaded machine a late answer must show up as a
  // failed assertion on the sources, never as an admission the fail mode made up.
  const options = { keyPrefix, commandTimeout: 10_000, failMode: 'fail-closed' }
  const stores = [await RedisStore.connect(URL, options), await RedisStore.connect(URL, options)]
  const limiters = stores.map((s) => s.limiter({ limits: '500/hour', name: 'burst', algorithm: 'sliding-log' }))
  let sync = 0
  const all = []
  for (let i = 0; i < 2000; i++) {
    all.push(limiters[i % 2].check('hot'))
    sync++ // every call returned at once (a Promise), none waited for Redis
  }
  assert.equal(sync, 2000)
  const decisions = await Promise.all(all)
  assert.ok(decisions.every((d) => d.source === 'redis'))
  assert.equal(decisions.filter((d) => d.allowed).length, 500)
  // That waiting for Redis never blocks the event loop is measured where it can be seen: with a
  // server that stops answering (the stall test below). Here the answers may all arrive in one
  // turn of the loop, so counting timer ticks would prove nothing and fail at random.
  const health = stores[0].health().redisDecisions + stores[1].health().redisDecisions
  assert.equal(health, 2000)
})

redisTest('processes: two hammer participants on one key admit exactly the quota together', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-hammer-'))
  const config = path.join(dir, 'ratewall.toml')
  fs.writeFileSync(config, `[defaults]\nstorage = "${URL}"\nfail_mode = "fail-closed"\nkey_prefix = "${prefix()}"\n\n[policies.otp]\nlimits = "37/hour"\nalgorithm = "sliding-window-counter"\n`)
  const startAt = Date.now() + 1500
  const run = () =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, [path.join(__dirname, '..', 'scripts', 'hammer.js'), '--config', config, '--policy', 'otp', '--key', 'user:42', '--attempts', '30', '--start-at', String(startAt)], (err, stdout, stderr) => {
        if (err) return reject(new Error(`hammer failed: ${stderr}`))
        resolve(JSON.parse(stdout))
      })
    })
  const results = await Promise.all([run(), run()])
  fs.rmSync(dir, { recursive: true, force: true })
  for (const r of results) {
    assert.deepEqual(Object.keys(r), ['binding', 'policy', 'allowed', 'denied', 'fallback', 'first_ms', 'last_ms'])
    assert.equal(r.binding, 'node')
    assert.equal(r.policy, 'otp')
    assert.equal(r.allowed + r.denied, 30)
    assert.equal(r.fallback, 0)
    assert.ok(r.first_ms >= startAt && r.last_ms >= r.first_ms)
  }
  assert.equal(results[0].allowed + results[1].allowed, 37)
})

// --- configuration -----------------------------------------------------------------------------

redisTest('from the config file: storage, fail_mode and key_prefix apply; memory:// gives in-process limiters', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-config-'))
  const file = path.join(dir, 'ratewall.toml')
  const keyPrefix = prefix()
  fs.writeFileSync(file, `[defaults]\nstorage = "${URL}"\nfail_mode = "fail-closed"\nkey_prefix = "${keyPrefix}"\n\n[policies.api]\nlimits = "2/hour"\n\n[policies.search]\nlimits = "3/hour"\nalgorithm = "fixed-window"\nfail_mode = "local"\n`)
  const store = RedisStore.fromConfig(file)
  await store.ready()
  assert.deepEqual(store.policies.sort(), ['api', 'search'])
  const api = store.policy('api')
  assert.equal(api.failMode, 'fail-closed')
  assert.equal(store.policy('search').failMode, 'local')
  assert.equal(api.storage, 'redis')
  assert.ok(api.redisKeys('k')[0].startsWith(`${keyPrefix}:{api:`))
  assert.deepEqual([(await api.check('k')).source, (await api.check('k')).allowed, (await api.check('k')).allowed], ['redis', true, false])
  // A Config object (with RATEWALL_* variables applied) works the same.
  const viaEnv = RedisStore.fromConfig(loadConfig(file, { env: { RATEWALL_KEY_PREFIX: `${keyPrefix}env` } }))
  assert.ok(viaEnv.policy('api').redisKeys('k')[0].startsWith(`${keyPrefix}env:{api:`))
  fs.rmSync(dir, { recursive: true, force: true })

  const memory = RedisStore.fromConfig({ toml: '[policies.api]\nlimits = "1/hour"\n' })
  assert.equal(memory.state, 'memory')
  assert.equal(memory.health(), null)
  const d = await memory.policy('api').check('k')
  assert.deepEqual([d.allowed, d.source], [true, 'memory'])
  assert.equal((await memory.policy('api').check('k')).allowed, false)
})

// --- Express -----------------------------------------------------------------------------------

async function serve(app) {
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) }
}

async function get(url) {
  const r = await fetch(url)
  return { status: r.status, headers: r.headers, body: await r.text() }
}

redisTest('Express with the Redis store over loopback HTTP: allowed, then limited, with headers', async () => {
  const app = express()
  app.use(rateLimit({ windowMs: 60_000, limit: 2, standardHeaders: 'draft-7', store: new RedisStore(URL, { keyPrefix: prefix() }) }))
  app.get('/', (req, res) => res.json(req.rateLimit))
  const { url, close } = await serve(app)
  try {
    const a = await get(url)
    assert.equal(a.status, 200)
    const info = JSON.parse(a.body)
    assert.deepEqual([info.limit, info.used, info.remaining, info.key], [2, 1, 1, '127.0.0.1'])
    assert.equal(a.headers.get('x-ratelimit-limit'), '2')
    assert.equal(a.headers.get('x-ratelimit-remaining'), '1')
    assert.equal(a.headers.get('ratelimit-policy'), '2;w=60')
    assert.match(a.headers.get('ratelimit'), /^limit=2, remaining=1, reset=(59|60)$/)
    assert.equal((await get(url)).status, 200)
    const limited = await get(url)
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0')
    assert.match(limited.headers.get('retry-after'), /^(59|60)$/)
    assert.equal(JSON.parse(limited.body).error, 'rate_limited')
  } finally {
    await close()
  }
})

redisTest('Express: two app instances with storage: URL share one quota; resetKey and getKey go to Redis', async () => {
  const keyGenerator = () => 'client-7'
  const name = prefix() // distinct policy per run: storage uses the default key prefix
  const make = () => rateLimit({ policy: '3/hour', identifier: name, algorithm: 'fixed-window', storage: URL, keyGenerator })
  const limiters = [make(), make()]
  const servers = []
  for (const l of limiters) {
    const app = express()
    app.use(l)
    app.get('/', (req, res) => res.send('ok'))
    servers.push(await serve(app))
  }
  try {
    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push((await get(servers[i % 2].url)).status)
    assert.deepEqual(statuses, [200, 200, 200, 429, 429])
    assert.deepEqual((await limiters[1].getKey('client-7')).totalHits, 3)
    await limiters[0].resetKey('client-7')
    assert.equal(await limiters[1].getKey('client-7'), undefined)
    assert.equal((await get(servers[1].url)).status, 200)
  } finally {
    for (const s of servers) await s.close()
  }
})

redisTest('Express: skipFailedRequests refunds in Redis', async () => {
  const app = express()
  app.use(rateLimit({ windowMs: 60_000, limit: 1, skipFailedRequests: true, store: new RedisStore(URL, { keyPrefix: prefix() }) }))
  app.get('/fail', (req, res) => res.status(500).send('no'))
  app.get('/', (req, res) => res.send('ok'))
  const { url, close } = await serve(app)
  try {
    assert.equal((await get(`${url}/fail`)).status, 500)
    // The refund is sent when the response finishes; the next request may race it by a little.
    let status
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await get(url)).status
      if (status !== 200) await new Promise((r) => setTimeout(r, 10))
    }
    assert.equal(status, 200)
    assert.equal((await get(url)).status, 429)
  } finally {
    await close()
  }
})

test('Express: passOnStoreError picks the fail mode of a storage URL while Redis is down', async () => {
  const port = await freePort() // nothing listens there
  const results = []
  for (const passOnStoreError of [true, false]) {
    const app = express()
    app.use(rateLimit({ windowMs: 60_000, limit: 5, storage: `redis://127.0.0.1:${port}`, passOnStoreError }))
    app.get('/', (req, res) => res.send('ok'))
    const { url, close } = await serve(app)
    try {
      results.push((await get(url)).status)
    } finally {
      await close()
    }
  }
  assert.deepEqual(results, [200, 429])
})

// --- outages -------------------------------------------------------------------------------------

/** Measures the longest the event loop went without running a 5 ms timer; `stop()` returns it. */
function stallMeter() {
  let last = performance.now()
  let worst = 0
  const timer = setInterval(() => {
    const t = performance.now()
    worst = Math.max(worst, t - last)
    last = t
  }, 5)
  return {
    get worst() {
      return worst
    },
    stop() {
      clearInterval(timer)
      return worst
    },
  }
}

/** Checks `key` until Redis decides again (at most 10 s); returns the last decision. */
async function untilRedis(limiter, key) {
  const deadline = Date.now() + 10_000
  let d
  do {
    d = await limiter.check(key)
    if (d.source !== 'redis') await new Promise((r) => setTimeout(r, 20))
  } while (d.source !== 'redis' && Date.now() < deadline)
  return d
}

/** Events arrive on a later turn of the event loop: waits (at most 2 s) until `ok()`. */
async function eventually(ok) {
  const deadline = Date.now() + 2000
  while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
}

test('outage: fail-open admits, fail-closed denies, local falls back, within the timeout; recovery without rebuilding', { skip: !hasRedisServer() && !CI ? 'redis-server is not installed' : false }, async () => {
  const server = await startServer()
  const events = []
  const store = await RedisStore.connect(server.url, { commandTimeout: 100, connectTimeout: 200, reconnectMaxDelay: 100, onEvent: (e) => events.push(e) })
  const open = store.limiter({ limits: '100/hour', name: 'open', failMode: 'fail-open' })
  const closed = store.limiter({ limits: '100/hour', name: 'closed', failMode: 'fail-closed' })
  const local = store.limiter({ limits: '2/hour', name: 'local', failMode: 'local' })
  for (const l of [open, closed, local]) assert.equal((await l.check('k')).source, 'redis')

  // Measure how long the event loop is ever blocked while Redis is gone.
  const meter = stallMeter()
  try {
    await server.stop()
    const timed = async (p) => {
      const t0 = performance.now()
      const d = await p
      return { d, ms: performance.now() - t0 }
    }
    const o = await timed(open.check('k'))
    const c = await timed(closed.check('k'))
    const l1 = await timed(local.check('fresh'))
    const l2 = await timed(local.check('fresh'))
    const l3 = await timed(local.check('fresh'))
    for (const { ms } of [o, c, l1, l2, l3]) assert.ok(ms < 1000, `a decision took ${ms} ms with Redis down`)
    assert.deepEqual([o.d.allowed, o.d.source, o.d.fallback], [true, 'fail-open', true])
    assert.deepEqual([c.d.allowed, c.d.source], [false, 'fail-closed'])
    assert.equal(c.d.retryAfter, 1000)
    assert.deepEqual([l1.d, l2.d, l3.d].map((d) => [d.allowed, d.source]), [[true, 'local'], [true, 'local'], [false, 'local']])
    assert.ok(meter.worst < 500, `the event loop stalled for ${meter.worst} ms`)

    const h = store.health()
    assert.equal(h.state, 'down')
    assert.ok(h.failOpen >= 1 && h.failClosed >= 1 && h.local >= 3, JSON.stringify(h))
    assert.ok(h.errors >= 5 && h.disconnects >= 1)
    assert.equal(typeof h.lastError, 'string')
    await eventually(() => events.some((e) => e.kind === 'down') && events.some((e) => e.kind === 'error' && e.policy === 'closed'))
    assert.ok(events.some((e) => e.kind === 'down'), JSON.stringify(events))
    const failure = events.find((e) => e.kind === 'error' && e.policy === 'closed')
    assert.ok(failure, JSON.stringify(events))
    assert.equal(failure.failMode, 'fail-closed')
    assert.equal(typeof failure.error, 'string')
    await assert.rejects(open.reset('k'), /reset failed/, 'an administrative call reports the outage')

    // Same port again: the store reconnects in the background; nothing is rebuilt.
    const again = await startServer(server.port)
    try {
      assert.equal((await untilRedis(open, 'back')).source, 'redis')
      assert.equal(store.state, 'up')
      assert.equal((await closed.check('k')).source, 'redis')
      assert.ok(store.health().reconnects >= 1)
      await eventually(() => events.filter((e) => e.kind === 'up').length >= 2)
      assert.equal(events.filter((e) => e.kind === 'up').length, 2, 'connected, then connected again')
    } finally {
      await again.stop()
    }
  } finally {
    meter.stop()
  }
})

test('a Redis that stops answering: each decision waits the command timeout, never longer, and the event loop keeps turning', { skip: !hasRedisServer() && !CI ? 'redis-server is not installed' : false }, async () => {
  const server = await startServer()
  const commandTimeout = 500
  // connectTimeout >= commandTimeout: the crate's connection also bounds each reply by connectTimeout.
  const store = await RedisStore.connect(server.url, { commandTimeout, connectTimeout: 1000, reconnectMaxDelay: 100 })
  const l = store.limiter({ limits: '100/hour', name: 'slow', failMode: 'fail-open' })
  assert.equal((await l.check('k')).source, 'redis')
  const meter = stallMeter()
  server.pause()
  try {
    const t0 = performance.now()
    const decisions = await Promise.all(Array.from({ length: 10 }, (_, i) => l.check(`k${i}`)))
    const waited = performance.now() - t0
    assert.ok(decisions.every((d) => d.allowed && d.source === 'fail-open'), JSON.stringify(decisions.map((d) => d.source)))
    // Never longer than the command timeout (plus scheduling slack on a loaded machine); that
    // Redis was waited for is shown by the timeout counter below.
    assert.ok(waited < commandTimeout + 1500, `answered after ${waited} ms`)
    // A call that blocked the event loop would stall the timer for the whole command timeout.
    const worst = meter.stop()
    assert.ok(worst < commandTimeout * 0.8, `the event loop stalled for ${worst} ms`)
    assert.ok(store.health().timeouts >= 1, JSON.stringify(store.health()))
  } finally {
    meter.stop()
    server.resume()
  }
  assert.equal((await untilRedis(l, 'after')).source, 'redis', 'Redis decides again once it answers')
  await server.stop()
})

test('a store that starts while Redis is down decides by its fail mode and never blocks', async () => {
  const port = await freePort()
  const store = new RedisStore(`redis://127.0.0.1:${port}`, { failMode: 'fail-closed' })
  assert.equal(store.state, 'down')
  const l = store.limiter('5/minute')
  const d = await l.check('k')
  assert.deepEqual([d.allowed, d.source], [false, 'fail-closed'])
  await assert.rejects(RedisStore.connect(`redis://127.0.0.1:${port}`), (e) => e instanceof Error && /cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+/.test(e.message) && /redis-server/.test(e.message))

  // local with localFraction: each instance admits its share of the quota while Redis is down.
  const local = new RedisStore(`redis://127.0.0.1:${port}`, { failMode: 'local', localFraction: 0.5 }).limiter('4/hour')
  const decisions = []
  for (let i = 0; i < 4; i++) decisions.push(await local.check('k'))
  assert.deepEqual(decisions.map((x) => [x.allowed, x.source]), [[true, 'local'], [true, 'local'], [false, 'local'], [false, 'local']])
  assert.equal(decisions[0].limit, 2)
})

test('an onEvent callback that throws is caught; the request still gets its decision', async () => {
  const port = await freePort()
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    const store = new RedisStore(`redis://127.0.0.1:${port}`, {
      onEvent: () => {
        throw new Error('boom')
      },
    })
    const l = store.limiter('5/minute')
    for (let i = 0; i < 3; i++) assert.equal((await l.check('k')).source, 'fail-open')
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(warnings.filter((w) => /onEvent callback threw \(boom\)/.test(w.message)).length, 1)
  } finally {
    process.off('warning', onWarning)
  }
})

redisTest('a pending check keeps the process alive until it settles; an idle store does not', async () => {
  const script = `
    const { RedisStore } = require(${JSON.stringify(path.join(__dirname, '..', 'redis.js'))})
    const l = new RedisStore(${JSON.stringify(URL)}, { keyPrefix: 'alive' }).limiter('5/minute')
    l.check('k').then((d) => console.log(d.source))`
  const t0 = Date.now()
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'redis')
  assert.ok(Date.now() - t0 < 5000, 'the process exited once the check settled')
})

// --- bad inputs ------------------------------------------------------------------------------

test('rediss:// to a TLS-only server: verified with tlsCaFile (or the config\'s tls_ca_file), unverified with #insecure, refused against the system roots', { skip: !hasRedisServer() && !CI ? 'redis-server is not installed' : false }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-node-tls-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const pki = testPki(dir)
  if (pki === null) return t.skip('no openssl to make test certificates')
  const server = await startServer(undefined, pki)
  const verified = `rediss://127.0.0.1:${server.port}`
  try {
    for (const [url, options] of [[verified, { tlsCaFile: pki.ca }], [server.url, {}]]) {
      const store = await RedisStore.connect(url, { keyPrefix: prefix(), commandTimeout: 2000, ...options })
      const l = store.limiter({ limits: '2/hour', name: 'tls' })
      const seen = []
      for (let i = 0; i < 3; i++) {
        const d = await l.check('k')
        seen.push([d.allowed, d.source])
      }
      assert.deepEqual(seen, [[true, 'redis'], [true, 'redis'], [false, 'redis']], url)
    }
    const file = path.join(dir, 'ratewall.toml')
    fs.writeFileSync(file, `[defaults]\nstorage = "${verified}"\ntls_ca_file = "${pki.ca}"\nkey_prefix = "${prefix()}"\n[policies.a]\nlimits = "1/hour"\n`)
    const fromConfig = RedisStore.fromConfig(file, { commandTimeout: 2000, connectTimeout: 2000 })
    assert.equal((await fromConfig.policy('a').check('cfg')).source, 'redis')
    await assert.rejects(RedisStore.connect(verified, { connectTimeout: 2000 }), (e) => e instanceof Error && /certificate/.test(e.message))
    await assert.rejects(RedisStore.connect(`redis://127.0.0.1:${server.port}`, { tlsCaFile: pki.ca }), (e) => e instanceof RangeError && /rediss:\/\/ URLs only/.test(e.message))
    assert.throws(() => new RedisStore(verified, { tlsCaFile: path.join(dir, 'missing.pem') }), /tlsCaFile .* could not be read/)
    assert.throws(() => new RedisStore(verified, { tlsCaFile: 42 }), TypeError)
  } finally {
    await server.stop()
  }
})

test('mutual TLS: a server that asks for a client certificate refuses a store without one and decides with tlsCertFile + tlsKeyFile (or the config\'s own)', { skip: !hasRedisServer() && !CI ? 'redis-server is not installed' : false }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-node-mtls-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const pki = testPki(dir)
  if (pki === null) return t.skip('no openssl to make test certificates')
  const server = await startServer(undefined, pki, pki.ca)
  const url = `rediss://127.0.0.1:${server.port}`
  const mutual = { tlsCaFile: pki.ca, tlsCertFile: pki.clientCert, tlsKeyFile: pki.clientKey }
  try {
    await assert.rejects(RedisStore.connect(url, { tlsCaFile: pki.ca, connectTimeout: 2000 }), (e) => e instanceof Error)
    const store = await RedisStore.connect(url, { keyPrefix: prefix(), commandTimeout: 2000, ...mutual })
    const l = store.limiter({ limits: '2/hour', name: 'mtls' })
    const seen = []
    for (let i = 0; i < 3; i++) {
      const d = await l.check('k')
      seen.push([d.allowed, d.source])
    }
    assert.deepEqual(seen, [[true, 'redis'], [true, 'redis'], [false, 'redis']])
    const file = path.join(dir, 'ratewall.toml')
    fs.writeFileSync(file, `[defaults]\nstorage = "${url}"\ntls_ca_file = "${pki.ca}"\ntls_cert_file = "${pki.clientCert}"\ntls_key_file = "${pki.clientKey}"\nkey_prefix = "${prefix()}"\n[policies.a]\nlimits = "1/hour"\n`)
    const fromConfig = RedisStore.fromConfig(file, { commandTimeout: 2000, connectTimeout: 2000 })
    assert.equal((await fromConfig.policy('a').check('cfg')).source, 'redis')
    assert.throws(() => new RedisStore(url, { tlsCaFile: pki.ca, tlsCertFile: pki.clientCert }), (e) => e instanceof RangeError && /tlsKeyFile/.test(e.message))
    assert.throws(() => new RedisStore(url, { tlsCaFile: pki.ca, tlsKeyFile: pki.clientKey }), (e) => e instanceof RangeError && /tlsCertFile/.test(e.message))
    assert.throws(() => new RedisStore(url, { ...mutual, tlsKeyFile: path.join(dir, 'missing.key') }), /tlsKeyFile .* could not be read/)
    assert.throws(() => new RedisStore(url, { ...mutual, tlsCertFile: 7 }), TypeError)
    await assert.rejects(RedisStore.connect(`redis://127.0.0.1:${server.port}`, { tlsCertFile: pki.clientCert, tlsKeyFile: pki.clientKey }), (e) => e instanceof RangeError && /rediss:\/\/ URLs only/.test(e.message))
  } finally {
    await server.stop()
  }
})

test('bad URLs, options and arguments: TypeError / RangeError / Error that say what to do', async () => {
  assert.throws(() => new RedisStore(42), { name: 'TypeError', message: /storage URL must be a string/ })
  assert.throws(() => new RedisStore('http://localhost:6379'), { name: 'TypeError', message: /unknown scheme "http".*redis:\/\// })
  assert.throws(() => new RedisStore('redis://'), TypeError)
  assert.throws(() => new RedisStore('memory://'), { name: 'TypeError', message: /in-process store/ })
  assert.throws(() => new RedisStore('redis://127.0.0.1:1', { commandTimeout: 0 }), { name: 'RangeError', message: /commandTimeout/ })
  assert.throws(() => new RedisStore('redis://127.0.0.1:1', { commandTimeout: '50' }), { name: 'TypeError', message: /commandTimeout must be a number/ })
  assert.throws(() => new RedisStore('redis://127.0.0.1:1', { localFraction: 1.5 }), { name: 'RangeError', message: /localFraction must be in \(0, 1\]/ })
  assert.throws(() => new RedisStore('redis://127.0.0.1:1', { keyPrefix: 'a{b' }), { name: 'RangeError', message: /hash tag/ })
  assert.throws(() => new RedisStore('redis://127.0.0.1:1', { failMode: 'sometimes' }), { name: 'RangeError', message: /fail-open/ })
  assert.throws(() => new RedisStore('redis://127.0.0.1:1', { timeout: 5 }), { name: 'TypeError', message: /unknown Redis store option "timeout"/ })
  assert.throws(() => new RedisStore('redis://127.0.0.1:1', { onEvent: 'log' }), { name: 'TypeError', message: /onEvent must be a function/ })

  const store = new RedisStore('redis://127.0.0.1:1')
  assert.throws(() => store.limiter('10 per fortnight'), { name: 'RangeError', message: /invalid rate string/ })
  assert.throws(() => store.limiter({ limits: '1/s', algorithm: 'leaky' }), RangeError)
  assert.throws(() => store.limiter({ limits: 10 }), { name: 'TypeError', message: /limits must be a rate string/ })
  assert.throws(() => store.limiter({ limits: '1/s', burst: 0 }), { name: 'RangeError', message: /burst/ })
  assert.throws(() => store.limiter({ limits: '100000/day', algorithm: 'sliding-window-counter' }), { name: 'RangeError', message: /cannot run on Redis/ })
  assert.throws(() => store.policy('api'), { name: 'TypeError', message: /built from a URL/ })
  assert.throws(() => new RedisLimiter('5/minute'), { name: 'TypeError', message: /storage URL or a store/ })
  assert.throws(() => new RedisLimiter({ limits: '5/minute' }), { name: 'TypeError', message: /needs storage/ })
  assert.throws(() => new RedisLimiter({ limits: '5/minute', store: {} }), { name: 'TypeError', message: /store must be a RedisStore/ })
  assert.throws(() => new RedisLimiter({ limits: '5/minute', store, commandTimeout: 5 }), { name: 'TypeError', message: /belong to the store/ })
  assert.throws(() => RedisStore.fromConfig(42), { name: 'TypeError', message: /config must be a Config/ })
  assert.throws(() => RedisStore.fromConfig({ toml: '[policies.a]\nlimits = "1/s"\n' }, { keyPrefix: 'x' }), TypeError)
  assert.throws(() => RedisStore.fromConfig({ toml: '[policies.a]\nlimits = "1/s"\n' }).policy('b'), { name: 'RangeError', message: /no policy named "b".*known policies: a/ })
  assert.throws(() => RedisStore.fromConfig({ toml: '[defaults]\nstorage = "postgres://x"\n[policies.a]\nlimits = "1/s"\n' }), { name: 'RangeError', message: /unsupported storage URL "postgres:\/\/x": use memory:\/\/, redis:\/\// })

  const l = new RedisLimiter({ limits: '3/minute', storage: 'redis://127.0.0.1:1' })
  await assert.rejects(l.check(42), { name: 'TypeError', message: /key must be a string/ })
  await assert.rejects(l.check('k', 0), { name: 'RangeError', message: /cost must be a whole number/ })
  await assert.rejects(l.check('k', 1.5), RangeError)
  await assert.rejects(l.check('k', '1'), TypeError)
  await assert.rejects(l.check('k', 4), { name: 'RangeError', message: /exceeds the limiter's capacity of 3/ })
  await assert.rejects(l.reset(null), TypeError)

  assert.throws(() => rateLimit({ storage: 6379 }), { name: 'TypeError', message: /storage must be a URL string/ })
  assert.throws(() => rateLimit({ storage: 'redis://127.0.0.1:1', store: new RedisStore('redis://127.0.0.1:1') }), { name: 'TypeError', message: /not both/ })
  assert.throws(() => rateLimit({ failMode: 'fail-open' }), { name: 'TypeError', message: /failMode applies to a shared store/ })
  assert.throws(() => rateLimit({ storage: 'redis://127.0.0.1:1', failMode: 'maybe' }), RangeError)
  assert.throws(() => rateLimit({ storage: 'ftp://x' }), TypeError)
})
