'use strict'
// The Express middleware's JavaScript-filled header values (header-values.js) against the
// core's rendering of the same decisions: random streams, seeded so a failure repeats.
const { test } = require('node:test')
const assert = require('node:assert/strict')

const { Limiter } = require('..')
const { plan, fill, unzip, EXACT_MS } = require('../header-values.js')
const rateLimit = require('../express.js')

/** A small seeded generator (mulberry32): the same stream on every run. */
function random(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const HEADER_SETS = ['legacy', 'draft-6', 'draft-7', 'legacy,draft-6', 'legacy,draft-7']
const ALGORITHMS = ['fixed-window', 'token-bucket', 'sliding-window', 'sliding-log']

/** Limits worth crossing: tiny, ordinary, and beyond the 15-digit Structured Field integers. */
function limitsFor(algorithm) {
  if (algorithm === 'sliding-log') return [1, 3, 50]
  return [1, 7, 1000, 123_456_789, 2_000_000_000_000_000]
}

/** `[names, values]` of the core's rendering of the limiter's last decision. */
function core(limiter, wallMs) {
  return unzip(limiter._headers(undefined, wallMs, undefined).split('\n'))
}

test('filled values equal the core rendering over random decisions, every express-rate-limit form', () => {
  const next = random(0x5eed)
  let compared = 0
  let quotas = 0
  for (const headers of HEADER_SETS) {
    for (const algorithm of ALGORITHMS) {
      for (const limit of limitsFor(algorithm)) {
        for (const windowMs of [1, 999, 1000, 60_000, 3_600_001]) {
          let t = next() * 1e6
          let limiter
          try {
            limiter = new Limiter({ limits: `${limit}/${windowMs}ms`, algorithm, headers, now: () => t })
          } catch (e) {
            // A quota the algorithm cannot pack (a huge limit over a short window).
            assert.ok(e instanceof RangeError, e)
            continue
          }
          quotas++
          const plans = [null, null]
          for (let i = 0; i < 60; i++) {
            // Fractional monotonic times, steps from a microsecond to past the window.
            t += next() < 0.5 ? next() * windowMs : next() * 0.01
            const cost = next() < 0.8 ? 1 : 1 + Math.floor(next() * Math.min(limit, 5))
            const d = limiter.check('k', cost)
            // Wall-clock times with every millisecond remainder, around today.
            const wallMs = 1_790_000_000_000 + Math.floor(next() * 1e9)
            const [names, values] = core(limiter, wallMs)
            const slot = d.allowed ? 1 : 0
            if (plans[slot] === null) {
              plans[slot] = plan(names, values, limiter._out, wallMs)
              assert.notEqual(plans[slot], null, `${headers} ${algorithm} ${limit}/${windowMs}ms: no plan for ${JSON.stringify(values)}`)
            }
            const filled = fill(plans[slot], limiter._out, wallMs)
            assert.deepEqual(filled, values, `${headers} ${algorithm} ${limit}/${windowMs}ms at t=${t} wall=${wallMs}: ${JSON.stringify(d)}`)
            compared++
          }
        }
      }
    }
  }
  assert.ok(quotas >= 300 && compared === quotas * 60, `${quotas} quotas, ${compared} decisions`)
})

test('boundaries: resets on whole seconds, sub-millisecond remainders, Retry-After of at least 1', () => {
  for (const headers of ['legacy,draft-6', 'legacy,draft-7']) {
    // A fixed window of exactly 2 s: checked at times that leave whole seconds, whole
    // seconds plus a microsecond and just under them.
    let t = 0
    const limiter = new Limiter({ limits: '2/2000ms', algorithm: 'fixed-window', headers, now: () => t })
    const plans = [null, null]
    for (const at of [0, 0.001, 999.999, 1000, 1000.001, 1999, 1999.999, 2000, 2000.0005, 3999.9999, 4000]) {
      t = at
      for (const wallMs of [1_790_000_000_000, 1_790_000_000_001, 1_790_000_000_999]) {
        const d = limiter.peek('k')
        limiter.check('k')
        const [names, values] = core(limiter, wallMs)
        const slot = limiter._out[0] === 1 ? 1 : 0
        plans[slot] ??= plan(names, values, limiter._out, wallMs)
        assert.deepEqual(fill(plans[slot], limiter._out, wallMs), values, `${headers} at ${at} wall ${wallMs}: ${JSON.stringify(d)}`)
      }
    }
    assert.notEqual(plans[0], null, 'denials were compared too')
  }
})

test('no plan where the core must render: lists, several limits, waits past the exact range', () => {
  let t = 0
  const now = () => t
  const wallMs = 1_790_000_000_000
  for (const headers of ['draft-8', 'ietf']) {
    const limiter = new Limiter({ limits: '5/minute', headers, now })
    limiter.check('k')
    const [names, values] = core(limiter, wallMs)
    assert.equal(plan(names, values, limiter._out, wallMs), null, headers)
  }
  const several = new Limiter({ limits: '5/second; 100/hour', headers: 'legacy,draft-7', now })
  several.check('k')
  const [names, values] = core(several, wallMs)
  assert.equal(plan(names, values, several._out, wallMs), null, 'several limits')

  // A wall clock in fractions of a millisecond (a mocked Date.now): planned, but not filled.
  const fine = new Limiter({ limits: '5/minute', algorithm: 'fixed-window', headers: 'legacy', now })
  fine.check('k')
  const [fineNames, fineValues] = core(fine, wallMs)
  const finePlan = plan(fineNames, fineValues, fine._out, wallMs)
  assert.notEqual(finePlan, null)
  assert.equal(fill(finePlan, fine._out, wallMs + 0.5), null, 'fractional wall clock')
  assert.equal(plan(fineNames, fineValues, fine._out, wallMs + 0.5), null, 'fractional wall clock')

  // A window of 60 days: its resets are past EXACT_MS.
  const long = new Limiter({ limits: `5/${60 * 86_400_000}ms`, algorithm: 'fixed-window', headers: 'legacy,draft-7', now })
  long.check('k')
  assert.ok(long._out[4] >= EXACT_MS)
  const [longNames, longValues] = core(long, wallMs)
  assert.equal(plan(longNames, longValues, long._out, wallMs), null, 'long wait')
})

test('a value the rules would get wrong keeps the core rendering that response kind', () => {
  let t = 0
  const limiter = new Limiter({ limits: '5/minute', algorithm: 'fixed-window', headers: 'legacy,draft-7', now: () => t })
  limiter.check('k')
  const [names, values] = core(limiter, 1_790_000_000_000)
  const wrong = values.map((v, i) => (names[i] === 'X-RateLimit-Remaining' ? String(Number(v) + 1) : v))
  assert.equal(plan(names, wrong, limiter._out, 1_790_000_000_000), null)
  const unknown = names.map((n) => (n === 'RateLimit' ? 'RateLimit-Other' : n))
  assert.equal(plan(unknown, values, limiter._out, 1_790_000_000_000), null)
})

test('the middleware sets the same headers with and without the filled path, allowed and denied', async () => {
  for (const standardHeaders of ['draft-6', 'draft-7']) {
    let t = 0
    const options = { windowMs: 10_000, limit: 3, standardHeaders, legacyHeaders: true, now: () => t, validate: false }
    const mw = rateLimit(options)
    const reference = new Limiter({ limits: '3/10000ms', algorithm: 'fixed-window', headers: `legacy,${standardHeaders}`, now: () => t })
    for (let i = 0; i < 8; i++) {
      t = i * 700.25
      const set = {}
      const req = { ip: '10.0.0.1', headers: {}, app: { get: () => false }, path: '/', socket: {} }
      const res = {
        statusCode: 200,
        headersSent: false,
        writableEnded: false,
        setHeader(n, v) { set[n] = v },
        append(n, v) { set[n] = v },
        status(c) { this.statusCode = c; return this },
        send() { this.writableEnded = true },
        once() {},
        on() {},
      }
      const before = Date.now()
      await mw(req, res, () => {})
      const after = Date.now()
      reference.check('10.0.0.1')
      delete set['Content-Type'] // the 429 body's, not a rate-limit header
      // The middleware's wall clock is its own Date.now(): one of the instants it may have read.
      const candidates = []
      for (let w = before; w <= after; w++) candidates.push(Object.fromEntries(core(reference, w)[0].map((n, j) => [n, core(reference, w)[1][j]])))
      assert.ok(candidates.some((c) => JSON.stringify(c) === JSON.stringify(set)), `${standardHeaders} request ${i}: ${JSON.stringify(set)} not among ${JSON.stringify(candidates)}`)
    }
  }
})

test('every 1024th filled response is audited against the core: a wrong value is replaced, logged, and the core renders from then on', async () => {
  // A copy of the middleware whose filler gets X-RateLimit-Remaining wrong once planned.
  const filler = require.resolve('../header-values.js')
  const middleware = require.resolve('../express.js')
  const real = require(filler)
  delete require.cache[middleware]
  const saved = require.cache[filler]
  // The wrong rule: X-RateLimit-Remaining (kind 1) off by one.
  const wrongFill = (p, out, nowMs) => {
    const values = real.fill(p, out, nowMs)
    return values && values.map((v, i) => (p.kinds[i] === 1 ? String(Number(v) + 1) : v))
  }
  require.cache[filler] = { ...saved, exports: { ...real, fill: wrongFill } }
  let broken
  try {
    broken = require('../express.js')
  } finally {
    require.cache[filler] = saved
    delete require.cache[middleware]
  }
  const logged = []
  let t = 0
  const mw = broken({ windowMs: 60_000, limit: 1e9, legacyHeaders: true, standardHeaders: false, now: () => t, validate: false, logger: { error: (e) => logged.push(e), warn() {} } })
  const remaining = []
  for (let i = 0; i < real.AUDIT_EVERY + 3; i++) {
    const set = {}
    const req = { ip: '10.0.0.9', headers: {}, app: { get: () => false }, path: '/', socket: {} }
    const res = { statusCode: 200, headersSent: false, writableEnded: false, setHeader(n, v) { set[n] = v }, status() { return this }, send() {}, once() {}, on() {} }
    await mw(req, res, () => {})
    remaining.push(Number(set['X-RateLimit-Remaining']) - req.rateLimit.remaining)
  }
  // The first response is the core's (the plan is made from it); then the broken filler's
  // until the audit (the 1024th filled response), the core's from then on.
  assert.deepEqual(remaining.slice(0, 3), [0, 1, 1])
  assert.equal(remaining[real.AUDIT_EVERY - 1], 1)
  assert.deepEqual(remaining.slice(real.AUDIT_EVERY), [0, 0, 0])
  assert.equal(logged.length, 1)
  assert.match(String(logged[0]), /differ from the core's.*the core renders them from now on/)
})
