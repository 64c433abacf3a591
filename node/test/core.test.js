'use strict'
// Core API: semantics with an injected clock, every algorithm, policies, config, bad input,
// concurrency, fake timers.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const rw = require('..')
const { Limiter, loadConfig, ipKeyGenerator, clientIp, trustProxyWarning, deniedBody } = rw

function clock(start = 0) {
  const c = { t: start, now: () => c.t }
  return c
}

test('token bucket: capacity 5 refilling 1/s (the classic demo)', () => {
  const c = clock()
  const l = new Limiter({ limits: '1/second', burst: 5, now: c.now })
  const seen = []
  for (let i = 0; i < 7; i++) seen.push(l.check('demo').allowed)
  assert.deepEqual(seen, [true, true, true, true, true, false, false])
  const denied = l.check('demo')
  assert.equal(denied.limit, 5)
  assert.equal(denied.remaining, 0)
  assert.equal(denied.retryAfter, 1000)
  c.t = 1000
  assert.equal(l.check('demo').allowed, true)
  assert.equal(l.check('demo').allowed, false)
})

test('fixed window: opens at the first request, denials take nothing, resets after the window', () => {
  const c = clock(10_000)
  const l = new Limiter({ limits: '3/minute', algorithm: 'fixed-window', now: c.now })
  assert.deepEqual([1, 2, 3].map(() => l.check('k').remaining), [2, 1, 0])
  c.t += 30_000
  const d = l.check('k')
  assert.equal(d.allowed, false)
  assert.equal(d.retryAfter, 30_000)
  assert.equal(d.resetAfter, 30_000)
  c.t += 30_000
  const back = l.check('k')
  assert.equal(back.allowed, true)
  assert.equal(back.remaining, 2)
  assert.equal(back.resetAfter, 60_000)
})

test('every algorithm admits exactly the quota at one instant and is keyed', () => {
  for (const algorithm of ['token-bucket', 'gcra', 'fixed-window', 'fixed-window-aligned', 'sliding-window-counter', 'sliding-log', 'moving-window']) {
    const c = clock(5)
    const l = new Limiter({ limits: '4/second', algorithm, now: c.now })
    let admitted = 0
    for (let i = 0; i < 10; i++) if (l.check('a').allowed) admitted++
    assert.equal(admitted, 4, algorithm)
    assert.equal(l.check('b').allowed, true, `${algorithm}: other keys have their own budget`)
    c.t += 2000
    assert.equal(l.check('a').allowed, true, `${algorithm}: recovered after two periods`)
  }
})

test('sliding log is exact over any span of the period', () => {
  const c = clock()
  const l = new Limiter({ limits: '2/second', algorithm: 'sliding-log', now: c.now })
  assert.ok(l.check('k').allowed) // t=0
  c.t = 600
  assert.ok(l.check('k').allowed) // t=600
  c.t = 999
  assert.equal(l.check('k').allowed, false)
  c.t = 1000
  assert.ok(l.check('k').allowed) // the t=0 permit left the window
  c.t = 1200
  assert.equal(l.check('k').allowed, false)
})

test('weighted cost, peek, refund and reset', () => {
  const c = clock()
  const l = new Limiter({ limits: '10/minute', algorithm: 'fixed-window', now: c.now })
  assert.equal(l.check('k', 4).remaining, 6)
  const p = l.peek('k', 6)
  assert.equal(p.allowed, true)
  assert.equal(l.peek('k', 7).allowed, false)
  assert.equal(l.check('k', 1).remaining, 5, 'peek took nothing')
  assert.equal(l.refund('k', 3).remaining, 8)
  assert.equal(l.refund('k', 100).remaining, 10, 'never above full')
  l.check('k', 10)
  assert.equal(l.check('k').allowed, false)
  l.reset('k')
  assert.equal(l.check('k').remaining, 9)
})

test('multi-limit policies are checked together: a denial takes nothing from any limit', () => {
  const c = clock()
  const l = new Limiter({ name: 'api', limits: '2/second; 3/minute', algorithm: 'fixed-window', now: c.now })
  assert.ok(l.check('k').allowed)
  assert.ok(l.check('k').allowed)
  const third = l.check('k')
  assert.equal(third.allowed, false)
  assert.equal(third.mostRestrictive, 0)
  assert.equal(third.limits.length, 2)
  c.t = 1000
  const later = l.check('k')
  assert.ok(later.allowed)
  assert.equal(later.remaining, 0)
  assert.equal(l.check('k').allowed, false)
  assert.equal(l.limits, '2/second; 3/minute')
  assert.equal(l.name, 'api')
  assert.deepEqual(l.windowsMs, [1000, 60_000])
})

test('checkHttp: headers and 429 body rendered by the core', () => {
  const c = clock()
  const l = new Limiter({ name: 'api', limits: '1/minute', algorithm: 'fixed-window', headers: 'legacy,ietf', now: c.now })
  const ok = l.checkHttp('k')
  assert.equal(ok.status, 200)
  assert.equal(ok.body, null)
  const names = ok.headers.map(([n]) => n)
  assert.deepEqual(names, ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'Date', 'X-RateLimit-Reset', 'RateLimit-Policy', 'RateLimit'])
  assert.deepEqual(ok.headers[4], ['RateLimit-Policy', '"api";q=1;w=60'])
  assert.deepEqual(ok.headers[5], ['RateLimit', '"api";r=0;t=60'])
  c.t = 20_500
  const no = l.checkHttp('k', { headers: 'draft-8' })
  assert.equal(no.status, 429)
  assert.equal(no.body, '{"error":"rate_limited","retryAfter":40}')
  assert.deepEqual(no.headers, [
    ['RateLimit', '"1-in-1min"; r=0; t=40'],
    ['RateLimit-Policy', `"1-in-1min"; q=1; w=60; pk=:${Buffer.from(require('node:crypto').createHash('sha256').update('k').digest('hex').slice(0, 12)).toString('base64')}:`],
    ['Retry-After', '40'],
  ])
  assert.equal(deniedBody(1), '{"error":"rate_limited","retryAfter":1}')
})

test('the bound headers function renders what lastHeaders renders, and refuses bad arguments', () => {
  const c = clock()
  const l = new Limiter({ limits: '2/minute; 5/hour', algorithm: 'sliding-window', headers: 'legacy,draft-8', now: c.now })
  const now = Date.UTC(2026, 10, 27, 12, 0, 0)
  assert.equal(l._headers('k', now), '', 'nothing before a decision')
  for (const t of [0, 1_000, 2_000, 61_000]) {
    c.t = t
    const d = l.check('k')
    for (const [key, id] of [[undefined, undefined], ['k', undefined], ['k', 'plan'], ['ü\u{1F600}', 'plan 2']]) {
      const flat = l._native.lastHeaders(key, now, undefined, id)
      assert.deepEqual(l._headers(key, now, id).split('\n'), flat, `at ${t} ms, key ${key}, identifier ${id}`)
      assert.equal(flat.includes('Retry-After'), !d.allowed)
    }
  }
  const cases = [
    [() => l._headers(42, now), /key must be a string, got number/],
    [() => l._headers('k'), /nowUnixMs must be a number, got undefined/],
    [() => l._headers('k', '1'), /nowUnixMs must be a number, got string/],
    [() => l._headers('k', now, {}), /identifier must be a string, got object/],
    [() => l._headers('k', now, 'ïd'), /draft-8 identifier: character 'ï' at byte 0 is not printable ASCII/],
  ]
  for (const [f, message] of cases) assert.throws(f, (e) => e instanceof TypeError && message.test(e.message))
  // Not a finite time: rendered at the epoch, as lastHeaders does.
  assert.deepEqual(l._headers(undefined, NaN).split('\n'), l._native.lastHeaders(undefined, NaN))
})

test('bad arguments throw TypeError/RangeError with clear messages and change nothing', () => {
  const c = clock()
  const l = new Limiter({ limits: '2/second', algorithm: 'fixed-window', now: c.now })
  l.check('k')
  const cases = [
    [() => l.check(), TypeError, /key must be a string, got undefined/],
    [() => l.check(42), TypeError, /key must be a string, got number/],
    [() => l.check({}), TypeError, /got object/],
    [() => l.check('k', 0), RangeError, /cost must be a whole number/],
    [() => l.check('k', 1.5), RangeError, /cost/],
    [() => l.check('k', -1), RangeError, /cost/],
    [() => l.check('k', NaN), RangeError, /cost/],
    [() => l.check('k', '1'), TypeError, /cost must be a number, got string/],
    [() => l.check('k', 3), RangeError, /exceeds the limiter's capacity of 2/],
    [() => l.refund('k', 0), RangeError, /cost/],
    [() => new Limiter(), TypeError, /options must be an object/],
    [() => new Limiter({}), TypeError, /limits must be a rate string/],
    [() => new Limiter({ limits: '10/fortnight' }), RangeError, /unknown unit "fortnight" at column 4/],
    [() => new Limiter({ limits: '0/second' }), RangeError, /rate string/],
    [() => new Limiter({ limits: '5/second', algorithm: 'leaky' }), RangeError, /unknown algorithm "leaky"/],
    [() => new Limiter({ limits: '5/second', burst: 0 }), RangeError, /burst must be a whole number/],
    [() => new Limiter({ limits: '5/second; 10/minute', burst: 3 }), RangeError, /burst applies only/],
    [() => new Limiter({ limits: '5/second', maxKeys: 1.5 }), RangeError, /maxKeys/],
    [() => new Limiter({ limits: '5/second', overflow: 'drop' }), RangeError, /use evict or deny-new-keys/],
    [() => new Limiter({ limits: '5/second', headers: 'draft-7,draft-8' }), RangeError, /choose one of/],
    [() => new Limiter({ limits: '5/second', now: 5 }), TypeError, /now must be a function/],
    [() => new Limiter({ limits: '5/second', clock: 'fast' }), TypeError, /clock must be 'precise' \(the default\) or 'coarse', got "fast"/],
    [() => new Limiter({ limits: '5/second', clock: 1 }), TypeError, /clock must be .* got number/],
    [() => new Limiter({ limits: '5/second', clock: 'coarse', now: () => 0 }), TypeError, /pass one of them/],
    [() => new Limiter({ limits: '5/second', colour: 'red' }), TypeError, /unknown Limiter option "colour"/],
    [() => new Limiter({ limits: 5 }), TypeError, /got number/],
    [() => new Limiter({ limits: '5/second', name: '   ' }), RangeError, /name must not be empty/],
    [() => ipKeyGenerator('::1', 0), RangeError, /ipv6Subnet/],
    [() => ipKeyGenerator(7), TypeError, /ip must be a string/],
    [() => clientIp('not an ip', undefined, 1), RangeError, /is not an IP address/],
    [() => clientIp('1.2.3.4', undefined, 'nonsense'), RangeError, /invalid trust proxy entry/],
    [() => loadConfig({ toml: '[policies.x]\nlimits = "5/fortnight"' }, { env: false }), RangeError, /line 2/],
    [() => loadConfig(42), TypeError, /config source/],
  ]
  for (const [fn, cls, re] of cases) assert.throws(fn, (e) => e instanceof cls && re.test(e.message), String(fn))
  // The clock's reading is validated too.
  c.t = -5
  assert.throws(() => l.check('k'), (e) => e instanceof RangeError && /now must be a finite number/.test(e.message))
  c.t = 'soon'
  assert.throws(() => l.check('k'), (e) => e instanceof TypeError && /now must be a number, got string/.test(e.message))
  c.t = 0
  assert.equal(l.check('k').remaining, 0, 'none of the bad calls took a permit')
})

test('odd keys are fine: empty, long, non-ASCII, lone surrogates', () => {
  const c = clock()
  const l = new Limiter({ limits: '1/minute', algorithm: 'fixed-window', now: c.now })
  const keys = ['', 'x'.repeat(100_000), 'é', 'e\u0301', '\ud800', '\udc00', '日本', 'a\0b', 'a']
  for (const k of keys) assert.equal(l.check(k).allowed, true, JSON.stringify(k.slice(0, 10)))
  for (const k of keys) assert.equal(l.check(k).allowed, false, 'each key counted separately')
  l.reset('\ud800')
  assert.equal(l.check('\ud800').allowed, true)
  assert.equal(l.check('\udc00').allowed, false)
})

test('many concurrent async callers never get more than the quota', async () => {
  const c = clock()
  const l = new Limiter({ limits: '100/minute', algorithm: 'sliding-log', now: c.now })
  let admitted = 0
  const callers = Array.from({ length: 500 }, async (_, i) => {
    await new Promise((r) => setImmediate(r))
    if (l.check('shared').allowed) admitted++
    await Promise.resolve()
    if (l.check(`own-${i % 50}`).allowed) admitted += 0
  })
  await Promise.all(callers)
  assert.equal(admitted, 100)
  assert.equal(l.peek('shared').allowed, false)
})

test('worker threads share nothing but each admits exactly its quota', async () => {
  const { Worker } = require('node:worker_threads')
  const code = `
    const { parentPort } = require('node:worker_threads')
    const { Limiter } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const l = new Limiter({ limits: '50/minute', algorithm: 'fixed-window', now: () => 0 })
    let n = 0
    for (let i = 0; i < 200; i++) if (l.check('k').allowed) n++
    parentPort.postMessage(n)`
  const counts = await Promise.all([0, 1].map(() => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true })
    w.once('message', resolve)
    w.once('error', reject)
  })))
  assert.deepEqual(counts, [50, 50])
})

test('the default clock follows performance.now, including when fake timers replace it', () => {
  const l = new Limiter({ limits: '1/second', algorithm: 'fixed-window' })
  const real = l.now()
  assert.ok(Math.abs(real - performance.now()) < 50, 'same scale as performance.now()')
  assert.ok(l.check('k').allowed)
  assert.equal(l.check('k').allowed, false)
  // Fake timers (sinon/jest style) replace performance.now or the performance object.
  const original = Object.getOwnPropertyDescriptor(globalThis, 'performance')
  let fake = real + 10_000
  Object.defineProperty(globalThis, 'performance', { value: { now: () => fake }, configurable: true, writable: true })
  try {
    assert.ok(Math.abs(l.now() - fake) < 1e-6)
    assert.ok(l.check('k').allowed, 'the fake clock moved past the window')
    assert.equal(l.check('k').allowed, false)
    fake += 1001 // windows end on a quantum boundary at most 2^b ns after the period
    assert.ok(l.check('k').allowed)
  } finally {
    Object.defineProperty(globalThis, 'performance', original)
  }
  const perf = globalThis.performance
  const now = perf.now
  perf.now = () => fake + 5000
  try {
    assert.ok(l.check('k').allowed, 'a replaced performance.now is used')
  } finally {
    perf.now = now
  }
})

test('on the default clock, check/peek/refund of a key alone (the key-only native calls) decide as with cost 1', () => {
  const l = new Limiter('3/hour')
  assert.equal(l.peek('k').remaining, 2, 'peek(key): what a check would leave')
  assert.equal(l.check('k').remaining, 2, 'the peek took nothing')
  assert.equal(l.check('k', 1).remaining, 1, 'cost 1 is the key-only call too')
  assert.equal(l.refund('k').remaining, 2, 'refund(key) gives one back')
  assert.equal(l.check('k', 2).remaining, 0, 'the general call sees what the key-only ones left')
  assert.equal(l.refund('k', 2).remaining, 2)
  assert.equal(l.peek('k', 1).remaining, 1)
  assert.throws(() => l.check(42), { name: 'TypeError', message: /key must be a string, got number/ })
  assert.throws(() => l.peek(undefined), { name: 'TypeError', message: /key must be a string, got undefined/ })
  assert.throws(() => l.refund(null), { name: 'TypeError', message: /key must be a string, got null/ })
  assert.equal(l.peek('k').remaining, 1, 'bad keys changed nothing')
  // The raw key-only function reads its first argument alone: a cost passed to it is ignored.
  l._checkKey('k', 2)
  assert.equal(l._decision().remaining, 1)
  // Which native function each call takes: cost 1 or none, the key-only one; any other cost, or
  // a time from a `now` option, the general one.
  const spied = (limiter) => {
    const calls = { key: 0, general: 0 }
    const [key, general] = [limiter._checkKey, limiter._check]
    limiter._checkKey = (...a) => { calls.key++; return key(...a) }
    limiter._check = (...a) => { calls.general++; return general(...a) }
    return calls
  }
  const m = new Limiter('9/hour')
  const mc = spied(m)
  m.check('a'); m.check('a', 1); m.check('a', 2)
  assert.deepEqual(mc, { key: 2, general: 1 })
  const timed = new Limiter({ limits: '9/hour', now: () => 5 })
  const tc = spied(timed)
  timed.check('a'); timed.check('a', 1)
  assert.deepEqual(tc, { key: 0, general: 2 })
})

test('@sinonjs/fake-timers drive the default clock (check, peek, refund), and uninstalling restores the real one', () => {
  const FakeTimers = require('@sinonjs/fake-timers')
  const perfHooks = require('node:perf_hooks')
  // ratewall turned Node's lazy `performance` accessor into a plain data property (index.js).
  const loaded = Object.getOwnPropertyDescriptor(globalThis, 'performance')
  assert.equal(loaded.value, perfHooks.performance)
  assert.ok(loaded.writable && loaded.configurable && loaded.enumerable)
  const l = new Limiter({ limits: '2/second', algorithm: 'fixed-window' })
  const clock = FakeTimers.install({ toFake: ['performance', 'Date'] })
  try {
    assert.notEqual(globalThis.performance, perfHooks.performance, 'sinon replaced the object')
    assert.equal(l.now(), 0, 'the fake clock starts at 0')
    assert.equal(l.peek('k').remaining, 1, 'peek: what a check would leave')
    assert.ok(l.check('k').allowed)
    assert.ok(l.check('k').allowed)
    const denied = l.check('k')
    assert.equal(denied.allowed, false)
    assert.ok(denied.retryAfter >= 1000 && denied.retryAfter < 1001, `window of 1 s from fake 0, got ${denied.retryAfter}`)
    clock.tick(999)
    assert.equal(l.now(), 999)
    const later = l.check('k')
    assert.equal(later.allowed, false)
    assert.ok(later.retryAfter > 0 && later.retryAfter < 2, `1 ms left on the fake clock, got ${later.retryAfter}`)
    assert.equal(l.refund('k').remaining, 1, 'refund at fake time 999')
    assert.ok(l.check('k').allowed)
    assert.equal(l.check('k').allowed, false)
    clock.tick(2)
    assert.equal(l.check('k', 2).remaining, 0, 'the fake clock moved into the next window')
  } finally {
    clock.uninstall()
  }
  assert.equal(globalThis.performance, perfHooks.performance, 'uninstall restored the object')
  assert.ok(Math.abs(l.now() - performance.now()) < 50, 'back on the real clock')
  // The fake window of 'k' is [1001, 2001) ms: real time decides now.
  const real = l.check('k')
  if (performance.now() >= 2001) assert.ok(real.allowed, 'real time is past the fake window')
  else assert.ok(!real.allowed && Math.abs(real.retryAfter - (2001 - performance.now())) < 50, 'still inside the fake window by real time')
})

test("clock: 'coarse' decides on the kernel's tick clock, on performance.now()'s scale", () => {
  const { native } = require('../native.js')
  const tick = native.coarseClockResolution()
  assert.ok(tick > 0 && tick <= 100, `one tick: ${tick} ms`)
  const HOUR = 3_600_000
  const l = new Limiter({ limits: '1/hour', algorithm: 'token-bucket', clock: 'coarse' })
  const before = l.now()
  const precise = native.clockNow(false)
  assert.ok(before <= precise && precise - before < tick + 1000, 'a tick behind the precise clock at most')
  assert.ok(l.check('k').allowed)
  const after = l.now()
  assert.ok(after >= before, 'never steps back')
  // The admission was stamped with a coarse reading in [before, after]: seen from `after`, the
  // bucket is full again in at most an hour. (A precise stamp, later than `after` unless a tick
  // fell between the check and the read, would leave more than an hour.)
  const perf = globalThis.performance
  const original = perf.now
  perf.now = () => after
  try {
    const d = l.peek('k')
    assert.equal(d.allowed, false)
    assert.ok(d.retryAfter <= HOUR + 1e-6 && d.retryAfter >= HOUR - (after - before) - 1e-6, `retryAfter ${d.retryAfter}`)
    // Fake timers still win over the coarse clock, as over the precise one.
    perf.now = () => after + HOUR
    assert.ok(l.check('k').allowed, 'the replaced performance.now decided')
  } finally {
    perf.now = original
  }
  const precise2 = new Limiter({ limits: '1/hour', clock: 'precise' })
  assert.ok(Math.abs(precise2.now() - performance.now()) < 50)
})

test('fake timers installed before ratewall is loaded are honoured too (jest enableGlobally)', () => {
  const { spawnSync } = require('node:child_process')
  const code = `
    const assert = require('node:assert/strict')
    const FakeTimers = require(${JSON.stringify(require.resolve('@sinonjs/fake-timers'))})
    const clock = FakeTimers.install({ toFake: ['performance', 'Date'] })
    clock.tick(5000)
    const { Limiter } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const l = new Limiter({ limits: '1/second', algorithm: 'fixed-window' })
    assert.equal(l.now(), 5000)
    assert.ok(l.check('k').allowed)
    assert.equal(l.check('k').allowed, false)
    clock.tick(1001)
    assert.ok(l.check('k').allowed, 'the fake clock opened the next window')
    clock.uninstall()
    assert.ok(Math.abs(l.now() - performance.now()) < 50, 'the real clock after uninstall: ' + l.now() + ' vs ' + performance.now())
    console.log('fake-before-load ok')
  `
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /fake-before-load ok/)
})

test('config file and RATEWALL_* variables build the same policies as other bindings', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-'))
  const file = path.join(dir, 'ratewall.toml')
  fs.writeFileSync(file, '[defaults]\nheaders = "legacy, ietf"\n\n[policies.login]\nlimits = "5/15min"\nalgorithm = "sliding-log"\noverflow = "deny-new-keys"\n\n[policies.api]\nlimits = "10/second; 1000/day"\n')
  const cfg = loadConfig(file, { env: { RATEWALL_POLICY_API_LIMITS: '3/second', RATEWALL_POLICY_SMS_LIMITS: '1/minute', PATH: '/bin' } })
  assert.deepEqual(cfg.policies.map((p) => p.name).sort(), ['api', 'login', 'sms'])
  assert.equal(cfg.storage, 'memory://')
  assert.equal(cfg.failMode('login'), 'fail-open')
  const c = clock()
  const api = cfg.limiter('api', { now: c.now })
  assert.equal(api.limits, '3/second')
  assert.equal(api.name, 'api')
  assert.deepEqual([1, 2, 3, 4].map(() => api.check('k').allowed), [true, true, true, false])
  const coarse = cfg.limiter('api', { clock: 'coarse' })
  assert.ok(coarse.check('k').allowed, 'a configured policy on the coarse clock')
  assert.throws(() => cfg.limiter('api', { clock: 'slow' }), TypeError)
  const login = cfg.limiter('login', { now: c.now })
  assert.equal(login.algorithm, 'sliding-log')
  assert.equal(login.headers, 'legacy,ietf')
  assert.match(cfg.toToml(), /\[policies\."login"\]/)
  assert.throws(() => cfg.limiter('nope'), (e) => e instanceof RangeError && /known policies: api, login, sms/.test(e.message))
  assert.throws(() => loadConfig(file, { env: { RATEWALL_POLICY_API_COLOUR: 'red' } }), (e) => e instanceof RangeError && /RATEWALL_POLICY_API_COLOUR/.test(e.message))
  assert.throws(() => loadConfig(path.join(dir, 'missing.toml'), { env: false }), RangeError)
  const fromEnv = loadConfig(undefined, { env: { RATEWALL_CONFIG: file } })
  assert.equal(fromEnv.limiter('api').limits, '10/second; 1000/day')
  fs.rmSync(dir, { recursive: true })
})

test('key helpers: IPv6 subnets, trust proxy', () => {
  assert.equal(ipKeyGenerator('2001:db8:abcd:12ff::1'), '2001:db8:abcd:1200::/56')
  assert.equal(ipKeyGenerator('2001:db8:abcd:12ff::1', 48), '2001:db8:abcd::/48')
  assert.equal(ipKeyGenerator('2001:db8::1', false), '2001:db8::1')
  assert.equal(ipKeyGenerator('::ffff:203.0.113.7'), '203.0.113.7')
  assert.equal(ipKeyGenerator('203.0.113.7'), '203.0.113.7')
  assert.equal(ipKeyGenerator('not-an-ip'), 'not-an-ip')
  assert.equal(clientIp('10.0.0.2', '6.6.6.6, 198.51.100.7', 1), '198.51.100.7')
  assert.equal(clientIp('10.0.0.2', '6.6.6.6, 198.51.100.7', false), '10.0.0.2')
  assert.equal(clientIp('127.0.0.1', '6.6.6.6, 10.0.0.7', ['loopback', 'uniquelocal']), '6.6.6.6')
  assert.equal(trustProxyWarning(false, true).code, 'unexpected_x_forwarded_for')
  assert.match(trustProxyWarning(true, false).message, /set trust proxy to the number of proxies/)
  assert.equal(trustProxyWarning(1, true), null)
})

test('memory is bounded: deny-new-keys keeps existing counters under a key flood', () => {
  const c = clock()
  const l = new Limiter({ limits: '3/hour', algorithm: 'fixed-window', maxKeys: 64, overflow: 'deny-new-keys', now: c.now })
  l.check('victim')
  for (let i = 0; i < 10_000; i++) l.check(`flood-${i}`)
  assert.ok(l.size <= 128)
  assert.equal(l.check('victim').remaining, 1, 'the victim counter survived')
})
