'use strict'
// ratewall/express over real HTTP on loopback, with a real express app and an injected clock.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { inspect } = require('node:util')
const express = require('express')

const rateLimit = require('../express.js')
const { ipKeyGenerator, MemoryStore, Limiter } = require('..')
const erl = require('express-rate-limit')

/** Starts `app` on 127.0.0.1; returns { url, close }. */
async function serve(app) {
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  const { port } = server.address()
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) }
}

function quietLogger() {
  const logged = []
  return { logged, error: (e) => logged.push(e), warn: (e) => logged.push(e) }
}

async function get(url, headers = {}) {
  const r = await fetch(url, { headers })
  return { status: r.status, headers: r.headers, body: await r.text() }
}

test('allowed, limited, recovered: every legacy and draft-7 header, req.rateLimit, JSON 429', async () => {
  const clock = { t: 0 }
  const app = express()
  app.use(rateLimit({ windowMs: 60_000, limit: 2, standardHeaders: 'draft-7', now: () => clock.t }))
  app.get('/', (req, res) => res.json(req.rateLimit))
  const { url, close } = await serve(app)
  try {
    const a = await get(url)
    assert.equal(a.status, 200)
    const info = JSON.parse(a.body)
    assert.equal(info.limit, 2)
    assert.equal(info.used, 1)
    assert.equal(info.remaining, 1)
    assert.equal(info.key, '127.0.0.1')
    assert.ok(Date.parse(info.resetTime) > Date.now() + 59_000)
    assert.equal(a.headers.get('x-ratelimit-limit'), '2')
    assert.equal(a.headers.get('x-ratelimit-remaining'), '1')
    assert.match(a.headers.get('x-ratelimit-reset'), /^\d{10}$/)
    assert.equal(a.headers.get('ratelimit-policy'), '2;w=60')
    assert.equal(a.headers.get('ratelimit'), 'limit=2, remaining=1, reset=60')
    assert.equal(a.headers.get('retry-after'), null)

    assert.equal((await get(url)).status, 200)
    clock.t = 15_000
    const limited = await get(url)
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('content-type'), 'application/json; charset=utf-8')
    assert.deepEqual(JSON.parse(limited.body), { error: 'rate_limited', retryAfter: 45 })
    assert.equal(limited.headers.get('retry-after'), '45')
    assert.equal(limited.headers.get('ratelimit'), 'limit=2, remaining=0, reset=45')
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0')

    clock.t = 60_001
    const back = await get(url)
    assert.equal(back.status, 200)
    assert.equal(back.headers.get('x-ratelimit-remaining'), '1')
  } finally {
    await close()
  }
})

test('headers are byte-identical to express-rate-limit for draft-6 and draft-8', async () => {
  for (const standardHeaders of ['draft-6', 'draft-8']) {
    const app = express()
    const ours = rateLimit({ windowMs: 120_000, limit: 3, standardHeaders, legacyHeaders: false })
    const theirs = erl.rateLimit({ windowMs: 120_000, limit: 3, standardHeaders, legacyHeaders: false })
    app.get('/ours', ours, (req, res) => res.send('ok'))
    app.get('/theirs', theirs, (req, res) => res.send('ok'))
    const { url, close } = await serve(app)
    try {
      for (let i = 0; i < 4; i++) {
        const a = await get(`${url}/ours`)
        const b = await get(`${url}/theirs`)
        assert.equal(a.status, b.status, `${standardHeaders} request ${i}`)
        for (const h of ['ratelimit', 'ratelimit-policy', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'retry-after']) {
          assert.equal(a.headers.get(h), b.headers.get(h), `${standardHeaders} ${h} on request ${i}`)
        }
      }
    } finally {
      await close()
    }
  }
})

test('handler, message (async), statusCode, keyGenerator, requestPropertyName, ietf headers', async () => {
  const app = express()
  app.get('/msg', rateLimit({ limit: 1, message: async () => 'slow down', statusCode: 503, keyGenerator: (req) => req.get('x-user'), requestPropertyName: 'quota' }), (req, res) => res.send(`ok ${req.quota.key}`))
  app.get('/handler', rateLimit({ limit: 1, handler: (req, res, next, options) => res.status(options.statusCode).json({ custom: true, key: req.rateLimit.key }) }), (req, res) => res.send('ok'))
  app.get('/ietf', rateLimit({ policy: '2/second; 5/minute', algorithm: 'sliding-log', standardHeaders: 'ietf', legacyHeaders: false }), (req, res) => res.send('ok'))
  const { url, close } = await serve(app)
  try {
    assert.equal((await get(`${url}/msg`, { 'x-user': 'alice' })).body, 'ok alice')
    assert.equal((await get(`${url}/msg`, { 'x-user': 'bob' })).status, 200, 'keys are separate')
    const m = await get(`${url}/msg`, { 'x-user': 'alice' })
    assert.equal(m.status, 503)
    assert.equal(m.body, 'slow down')
    assert.equal((await get(`${url}/handler`)).status, 200)
    const h = await get(`${url}/handler`)
    assert.equal(h.status, 429)
    assert.deepEqual(JSON.parse(h.body), { custom: true, key: '127.0.0.1' })
    const i = await get(`${url}/ietf`)
    assert.equal(i.headers.get('ratelimit-policy'), '"2-in-1sec";q=2;w=1, "5-in-1min";q=5;w=60')
    assert.equal(i.headers.get('ratelimit'), '"2-in-1sec";r=1;t=1, "5-in-1min";r=4;t=60')
  } finally {
    await close()
  }
})

test('skipFailedRequests and skipSuccessfulRequests refund; limit and cost as functions', async () => {
  const app = express()
  const failed = rateLimit({ limit: 2, skipFailedRequests: true })
  app.get('/failed/:code', failed, (req, res) => res.sendStatus(Number(req.params.code)))
  const ok = rateLimit({ limit: 2, skipSuccessfulRequests: true, requestWasSuccessful: (req, res) => res.statusCode < 500 })
  app.get('/ok/:code', ok, (req, res) => res.sendStatus(Number(req.params.code)))
  const plan = rateLimit({ limit: async (req) => (req.get('x-plan') === 'pro' ? 3 : 1), cost: (req) => Number(req.get('x-cost') || 1), keyGenerator: (req) => req.get('x-user') })
  app.get('/plan', plan, (req, res) => res.send(String(req.rateLimit.remaining)))
  const { url, close } = await serve(app)
  const settle = () => new Promise((r) => setTimeout(r, 20))
  try {
    for (let i = 0; i < 5; i++) {
      assert.equal((await get(`${url}/failed/500`)).status, 500, 'failed requests are refunded')
      await settle()
    }
    assert.equal((await get(`${url}/failed/200`)).status, 200)
    assert.equal((await get(`${url}/failed/200`)).status, 200)
    assert.equal((await get(`${url}/failed/200`)).status, 429)

    for (let i = 0; i < 4; i++) {
      assert.equal((await get(`${url}/ok/404`)).status, 404, '404 counts as success here: refunded')
      await settle()
    }
    assert.equal((await get(`${url}/ok/500`)).status, 500)
    assert.equal((await get(`${url}/ok/500`)).status, 500)
    assert.equal((await get(`${url}/ok/200`)).status, 429)

    assert.equal((await get(`${url}/plan`, { 'x-user': 'free' })).body, '0')
    assert.equal((await get(`${url}/plan`, { 'x-user': 'free' })).status, 429)
    assert.equal((await get(`${url}/plan`, { 'x-user': 'p', 'x-plan': 'pro', 'x-cost': '2' })).body, '1')
    assert.equal((await get(`${url}/plan`, { 'x-user': 'p', 'x-plan': 'pro', 'x-cost': '2' })).status, 429)
    assert.equal((await get(`${url}/plan`, { 'x-user': 'p', 'x-plan': 'pro' })).body, '0', 'a denied request took nothing')
    const bad = await get(`${url}/plan`, { 'x-user': 'q', 'x-plan': 'pro', 'x-cost': '9' })
    assert.equal(bad.status, 500, 'a cost above the limit is an error, passed to next()')
  } finally {
    await close()
  }
})

test('skip, resetKey, getKey', async () => {
  const app = express()
  const limiter = rateLimit({ limit: 1, skip: (req) => req.path === '/health' })
  app.use(limiter)
  app.get('/health', (req, res) => res.send('up'))
  app.get('/', (req, res) => res.send('ok'))
  const { url, close } = await serve(app)
  try {
    for (let i = 0; i < 3; i++) assert.equal((await get(`${url}/health`)).status, 200)
    assert.equal(await limiter.getKey('127.0.0.1'), undefined)
    assert.equal((await get(url)).status, 200)
    const k = await limiter.getKey('127.0.0.1')
    assert.equal(k.totalHits, 1)
    assert.ok(k.resetTime instanceof Date)
    assert.equal((await get(url)).status, 429)
    await limiter.resetKey('127.0.0.1')
    assert.equal((await get(url)).status, 200)
  } finally {
    await close()
  }
})

test('several limiters on one route: each counts once, stacked draft-8 headers, no double count', async () => {
  const logger = quietLogger()
  const app = express()
  const perSecond = rateLimit({ windowMs: 1000, limit: 3, standardHeaders: 'draft-8', legacyHeaders: false })
  const perMinute = rateLimit({ windowMs: 60_000, limit: 5, standardHeaders: 'draft-8', legacyHeaders: false, logger })
  app.use(perMinute)
  app.get('/', perSecond, perMinute, (req, res) => res.send('ok'))
  const { url, close } = await serve(app)
  try {
    const r = await get(url)
    assert.equal(r.headers.get('ratelimit'), '"5-in-1min"; r=4; t=60, "3-in-1sec"; r=2; t=1')
    assert.ok(logger.logged.some((e) => e.code === 'ERR_ERL_DOUBLE_COUNT'))
    const k = await perMinute.getKey('127.0.0.1')
    assert.equal(k.totalHits, 1, 'perMinute counted the request once although it ran twice')
  } finally {
    await close()
  }
})

test('a Limiter as policy renders the middleware\'s header sets; req.rateLimit.current is used, not enumerable; resetTime is built once, and shown', async () => {
  const clock = { t: 0 }
  const shared = new Limiter({ limits: '2/minute', algorithm: 'fixed-window', headers: 'ietf', now: () => clock.t })
  const app = express()
  app.use(rateLimit({ policy: shared, standardHeaders: 'draft-7', legacyHeaders: false }))
  app.get('/', (req, res) => {
    const info = req.rateLimit
    const reset = info.resetTime
    res.json({
      keys: Object.keys(info),
      current: info.current,
      used: info.used,
      resetIsDate: reset instanceof Date,
      sameReset: info.resetTime === reset,
      resetMs: reset.getTime() - Date.now(),
      json: JSON.parse(JSON.stringify(info)),
      shown: inspect(info, { breakLength: Infinity }),
      replaced: (() => {
        const other = new Date(0)
        info.resetTime = other
        return info.resetTime === other
      })(),
    })
  })
  const { url, close } = await serve(app)
  try {
    const a = await get(url)
    assert.equal(a.headers.get('ratelimit'), 'limit=2, remaining=1, reset=60')
    assert.equal(a.headers.get('ratelimit-policy'), '2;w=60')
    assert.equal(a.headers.get('x-ratelimit-limit'), null)
    const body = JSON.parse(a.body)
    assert.deepEqual(body.keys, ['limit', 'used', 'remaining', 'key'])
    assert.equal(body.current, 1)
    assert.equal(body.used, 1)
    assert.ok(body.resetIsDate)
    assert.ok(body.sameReset, 'resetTime is the same Date on every read')
    assert.ok(body.replaced, 'resetTime can be assigned, as an own field could')
    assert.ok(body.resetMs > 50_000 && body.resetMs <= 60_000, `resetTime is a minute away, got ${body.resetMs} ms`)
    // JSON and inspect show the five fields in express-rate-limit's order.
    assert.deepEqual(Object.keys(body.json), ['limit', 'used', 'remaining', 'resetTime', 'key'])
    assert.ok(Date.parse(body.json.resetTime) - Date.now() > 50_000)
    assert.match(body.shown, /^RateLimitInfo \{ limit: 2, used: 1, remaining: 1, resetTime: \d{4}-\d\d-\d\dT[^,]+, key: '[^']+' \}$/)
    assert.equal((await get(url)).headers.get('ratelimit'), 'limit=2, remaining=0, reset=60')
    clock.t = 30_000
    const no = await get(url)
    assert.equal(no.status, 429)
    assert.equal(no.headers.get('retry-after'), '30')
    assert.equal(no.headers.get('ratelimit'), 'limit=2, remaining=0, reset=30')
    // The Limiter's own sets are untouched.
    assert.deepEqual(shared.checkHttp('other').headers.map(([n]) => n), ['RateLimit-Policy', 'RateLimit'])
  } finally {
    await close()
  }
})

test('an identifier that resolves later still shows each request its own decision', async () => {
  // While `hold` is set, each identifier waits until two requests have been checked.
  let hold = null
  const app = express()
  app.use(rateLimit({
    windowMs: 60_000,
    limit: 5,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req) => req.get('x-client'),
    identifier: async () => {
      if (hold !== null) {
        if (++hold.count === 2) hold.open()
        await hold.both
      }
      return 'plan'
    },
  }))
  app.get('/', (req, res) => res.send(String(req.rateLimit.remaining)))
  const { url, close } = await serve(app)
  try {
    for (const remaining of ['4', '3', '2']) assert.equal((await get(url, { 'x-client': 'a' })).body, remaining)
    hold = { count: 0 }
    hold.both = new Promise((resolve) => { hold.open = resolve })
    const [a, b] = await Promise.all([get(url, { 'x-client': 'a' }), get(url, { 'x-client': 'b' })])
    assert.equal(a.body, '1')
    assert.equal(b.body, '4')
    assert.equal(a.headers.get('ratelimit'), '"plan"; r=1; t=60')
    assert.equal(b.headers.get('ratelimit'), '"plan"; r=4; t=60')
  } finally {
    await close()
  }
})

test('async stores: a ratewall store, an express-rate-limit store, passOnStoreError', async () => {
  const mem = new MemoryStore()
  const asyncStore = {
    check: async (key, cost, limiter) => mem.check(key, cost, limiter),
    refund: async (key, cost, limiter) => mem.refund(key, cost, limiter),
    reset: async (key, limiter) => mem.reset(key, limiter),
    peek: async (key, cost, limiter) => mem.peek(key, cost, limiter),
  }
  const failing = { check: async () => { throw new Error('store down') }, refund() {}, reset() {} }
  const logger = quietLogger()
  const app = express()
  app.get('/async', rateLimit({ limit: 1, store: asyncStore }), (req, res) => res.send('ok'))
  app.get('/erl', rateLimit({ limit: 1, store: new erl.MemoryStore() }), (req, res) => res.send('ok'))
  app.get('/open', rateLimit({ limit: 1, store: failing, passOnStoreError: true, logger }), (req, res) => res.send('open'))
  app.get('/closed', rateLimit({ limit: 1, store: { ...failing } }), (req, res) => res.send('never'))
  app.use((err, req, res, next) => res.status(500).send(err.message))
  const { url, close } = await serve(app)
  try {
    assert.equal((await get(`${url}/async`)).status, 200)
    const denied = await get(`${url}/async`)
    assert.equal(denied.status, 429)
    assert.equal(denied.headers.get('x-ratelimit-limit'), '1')
    assert.equal((await get(`${url}/erl`)).status, 200)
    const e = await get(`${url}/erl`)
    assert.equal(e.status, 429)
    assert.equal(e.headers.get('x-ratelimit-remaining'), '0')
    assert.equal((await get(`${url}/open`)).body, 'open')
    assert.ok(logger.logged.length >= 1)
    const c = await get(`${url}/closed`)
    assert.equal(c.status, 500)
    assert.equal(c.body, 'store down')
  } finally {
    await close()
  }
})

test('trust proxy checks and IPv6 keys', async () => {
  const logger = quietLogger()
  const app = express()
  const limiter = rateLimit({ limit: 100, logger })
  app.get('/', limiter, (req, res) => res.send(req.rateLimit.key))
  const { url, close } = await serve(app)
  try {
    await get(url, { 'x-forwarded-for': '203.0.113.7' })
    const e = logger.logged.find((x) => x.code === 'ERR_ERL_UNEXPECTED_X_FORWARDED_FOR')
    assert.ok(e, 'X-Forwarded-For without trust proxy is reported')
    assert.match(e.message, /app\.set\('trust proxy', 1\)/)
    app.set('trust proxy', true)
    assert.equal((await get(url, { 'x-forwarded-for': '2001:db8:abcd:12ff::1' })).body, '2001:db8:abcd:1200::/56')
    assert.ok(logger.logged.some((x) => x.code === 'ERR_ERL_PERMISSIVE_TRUST_PROXY'))
  } finally {
    await close()
  }
  assert.equal(ipKeyGenerator('2001:db8:abcd:12ff::1', 64), '2001:db8:abcd:12ff::/64')
})

test('limit 0 blocks everything; bad options throw at setup', async () => {
  const app = express()
  app.get('/', rateLimit({ limit: 0, logger: quietLogger() }), (req, res) => res.send('never'))
  const { url, close } = await serve(app)
  try {
    const r = await get(url)
    assert.equal(r.status, 429)
    assert.equal(r.headers.get('x-ratelimit-limit'), '0')
    assert.equal(r.headers.get('retry-after'), '60')
  } finally {
    await close()
  }
  const bad = [
    [{ windowMs: 0 }, RangeError, /windowMs/],
    [{ windowMs: 'x' }, TypeError, /windowMs must be a number/],
    [{ limit: -1 }, RangeError, /limit must be a whole number/],
    [{ standardHeaders: 'draft-9' }, TypeError, /standardHeaders must be/],
    [{ policy: '10/fortnight' }, RangeError, /unknown unit/],
    [{ policy: '1/second', limit: 3 }, TypeError, /policy replaces/],
    [{ algorithm: 'nope' }, RangeError, /unknown algorithm/],
    [{ cost: 0 }, RangeError, /cost/],
    [{ clock: 'fast' }, TypeError, /clock must be 'precise'/],
    [{ clock: 'coarse', now: () => 0 }, TypeError, /pass one of them/],
    [{ store: {} }, TypeError, /store must implement/],
    [{ statusCode: 42 }, RangeError, /statusCode/],
    [{ validate: { nope: false } }, TypeError, /validate\.nope/],
  ]
  for (const [options, cls, re] of bad) {
    assert.throws(() => rateLimit({ logger: quietLogger(), ...options }), (e) => e instanceof cls && re.test(e.message), JSON.stringify(options))
  }
})

test('every step may return a promise: skip, keyGenerator, limit, cost, ipv6Subnet and retryAfter decide as their plain values do', async () => {
  const clock = { t: 0 }
  const make = (wrap) => rateLimit({
    windowMs: 10_000,
    limit: wrap(() => 3),
    cost: wrap((req) => Number(req.get('x-cost') || 1)),
    skip: wrap((req) => req.get('x-skip') === '1'),
    keyGenerator: wrap((req) => `user:${req.get('x-user')}`),
    retryAfter: wrap(() => 7),
    standardHeaders: 'draft-7',
    now: () => clock.t,
  })
  const plain = (f) => f
  const later = (f) => async (req, res) => f(req, res)
  const app = express()
  app.get('/plain', make(plain), (req, res) => res.send(`${req.rateLimit?.key} ${req.rateLimit?.remaining}`))
  app.get('/async', make(later), (req, res) => res.send(`${req.rateLimit?.key} ${req.rateLimit?.remaining}`))
  // IPv6 keys through the default key generator, with the 'ip' validation off (the path that
  // skips `isIP` for addresses without a colon) and a subnet that arrives later.
  app.set('trust proxy', true)
  app.get('/v6', rateLimit({ limit: 2, ipv6Subnet: async () => 64, validate: false }), (req, res) => res.send(req.rateLimit.key))
  const { url, close } = await serve(app)
  try {
    const steps = [
      [{ 'x-user': 'a' }, 0], [{ 'x-user': 'a', 'x-cost': '2' }, 0], [{ 'x-user': 'a' }, 1_000],
      [{ 'x-user': 'a', 'x-skip': '1' }, 1_000], [{ 'x-user': 'b', 'x-cost': '3' }, 2_000],
      [{ 'x-user': 'b' }, 2_000], [{ 'x-user': 'a' }, 10_500],
    ]
    const seen = []
    for (const [headers, t] of steps) {
      clock.t = t
      const p = await get(`${url}/plain`, headers)
      const a = await get(`${url}/async`, headers)
      for (const h of ['ratelimit', 'ratelimit-policy', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'retry-after']) {
        assert.equal(a.headers.get(h), p.headers.get(h), `${h} at ${t} for ${JSON.stringify(headers)}`)
      }
      assert.equal(a.status, p.status)
      assert.equal(a.body, p.body)
      seen.push(p.status === 429 ? `429 ${p.headers.get('retry-after')}` : p.body)
    }
    assert.deepEqual(seen, ['user:a 2', 'user:a 0', '429 7', 'undefined undefined', 'user:b 0', '429 7', 'user:a 2'])
    assert.equal((await get(`${url}/v6`, { 'x-forwarded-for': '2001:db8:abcd:12ff::1' })).body, '2001:db8:abcd:12ff::/64')
    assert.equal((await get(`${url}/v6`, { 'x-forwarded-for': '2001:db8:abcd:12ff::2' })).body, '2001:db8:abcd:12ff::/64')
    assert.equal((await get(`${url}/v6`, { 'x-forwarded-for': '2001:db8:abcd:12ff::3' })).status, 429, 'one /64 shares one count')
    assert.equal((await get(`${url}/v6`, { 'x-forwarded-for': '198.51.100.4' })).body, '198.51.100.4')
  } finally {
    await close()
  }
})

test('legacy Date: Node sends its own when res.sendDate is on, the middleware sets it otherwise', async () => {
  const app = express()
  const limiter = rateLimit({ limit: 5, legacyHeaders: true })
  app.get('/node', limiter, (req, res) => res.send(String(res.getHeader('date'))))
  app.get('/off', (req, res, next) => { res.sendDate = false; next() }, limiter, (req, res) => res.send(String(res.getHeader('date'))))
  const { url, close } = await serve(app)
  try {
    const before = Math.floor(Date.now() / 1000) * 1000
    for (const path of ['node', 'off']) {
      const r = await get(`${url}/${path}`)
      const date = Date.parse(r.headers.get('date'))
      assert.ok(date >= before && date <= Date.now(), `${path}: one Date header on the wire, ${r.headers.get('date')}`)
      const reset = Number(r.headers.get('x-ratelimit-reset'))
      assert.ok(reset * 1000 - date >= 59_000 && reset * 1000 - date <= 61_000, `${path}: X-RateLimit-Reset is a minute after Date`)
      if (path === 'node') assert.equal(r.body, 'undefined', 'not set in-process: Node writes it with the head')
      else assert.equal(Date.parse(r.body), date, 'set by the middleware')
    }
  } finally {
    await close()
  }
  // A response object without `sendDate` (a test double) gets the header from the middleware.
  const set = {}
  const res = { statusCode: 200, headersSent: false, setHeader: (n, v) => { set[n] = v }, once() {} }
  const req = { ip: '192.0.2.1', headers: {}, app: { get: () => false } }
  let passed = false
  limiter(req, res, () => { passed = true })
  assert.ok(passed)
  assert.ok(Date.parse(set.Date) > 0, JSON.stringify(set))
  assert.equal(set['X-RateLimit-Remaining'], '4')
})
