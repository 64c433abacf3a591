'use strict'
// fetchWithRetry against a live local server limited by ratewall; waits are recorded, not slept.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')

const { Limiter, fetchWithRetry, RetryBudgetError } = require('..')

/**
 * A server on 127.0.0.1 that admits `limits` per key under a fake clock and answers 429 with
 * ratewall's headers and body. `mode` chooses what Retry-After looks like.
 */
async function limitedServer(limits, { mode = 'seconds', clock } = {}) {
  const limiter = new Limiter({ limits, algorithm: 'fixed-window', now: () => clock.t })
  const server = http.createServer((req, res) => {
    const r = limiter.checkHttp('client')
    for (const [name, value] of r.headers) res.setHeader(name, value)
    if (r.status === 429) {
      if (mode === 'date') res.setHeader('Retry-After', new Date(clock.wall + r.decision.retryAfter).toUTCString())
      if (mode === 'none') res.removeHeader('Retry-After')
      res.writeHead(429, { 'Content-Type': 'application/json' })
      return res.end(r.body)
    }
    res.end('ok')
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) }
}

/** A sleep that records the wait and moves the fake clocks instead of waiting. */
function fakeSleep(clock) {
  const waits = []
  const sleep = async (ms) => {
    waits.push(ms)
    clock.t += ms
    clock.wall += ms
  }
  return { waits, sleep }
}

test('waits exactly Retry-After (seconds) and succeeds', async () => {
  const clock = { t: 0, wall: 1_700_000_000_000 }
  const srv = await limitedServer('2/10s', { clock })
  try {
    const { waits, sleep } = fakeSleep(clock)
    assert.equal((await fetchWithRetry(srv.url, {}, { sleep })).status, 200)
    assert.equal((await fetchWithRetry(srv.url, {}, { sleep })).status, 200)
    clock.t = 2500
    const r = await fetchWithRetry(srv.url, {}, { sleep })
    assert.equal(r.status, 200)
    assert.equal(await r.text(), 'ok')
    assert.deepEqual(waits, [8000], 'Retry-After: 8 (7.5 s rounded up)')
  } finally {
    await srv.close()
  }
})

test('honours an HTTP-date Retry-After', async () => {
  const clock = { t: 0, wall: Date.parse('2026-01-01T00:00:00Z') }
  const srv = await limitedServer('1/minute', { mode: 'date', clock })
  try {
    const { waits, sleep } = fakeSleep(clock)
    await fetchWithRetry(srv.url, {}, { sleep, now: () => clock.wall })
    clock.t = 20_000
    clock.wall += 20_000
    const r = await fetchWithRetry(srv.url, {}, { sleep, now: () => clock.wall })
    assert.equal(r.status, 200)
    assert.deepEqual(waits, [40_000])
  } finally {
    await srv.close()
  }
})

test('without Retry-After: exponential backoff with jitter, capped', async () => {
  const clock = { t: 0, wall: 0 }
  const srv = await limitedServer('1/minute', { mode: 'none', clock })
  try {
    const { waits, sleep } = fakeSleep(clock)
    await fetchWithRetry(srv.url, {}, { sleep })
    await assert.rejects(
      fetchWithRetry(srv.url, {}, { sleep, random: () => 0.5, baseDelay: 1000, maxDelay: 3000, maxAttempts: 5, maxTotalWait: 1e9 }),
      (e) => e instanceof RetryBudgetError && e.attempts === 5 && e.response.status === 429 && /5 attempts made/.test(e.message),
    )
    assert.deepEqual(waits, [500, 1000, 1500, 1500], 'random()*min(maxDelay, base*2^n)')
  } finally {
    await srv.close()
  }
})

test('a Retry-After beyond the total budget fails at once with a clear error', async () => {
  const clock = { t: 0, wall: 0 }
  const srv = await limitedServer('1/hour', { clock })
  try {
    const { waits, sleep } = fakeSleep(clock)
    await fetchWithRetry(srv.url, {}, { sleep })
    await assert.rejects(fetchWithRetry(srv.url, {}, { sleep, maxTotalWait: 60_000 }), (e) => {
      assert.ok(e instanceof RetryBudgetError)
      assert.match(e.message, /next wait of 3600000 ms \(Retry-After\) would exceed the total wait budget of 60000 ms/)
      assert.equal(e.attempts, 1)
      assert.equal(e.nextWait, 3_600_000)
      return true
    })
    assert.deepEqual(waits, [])
  } finally {
    await srv.close()
  }
})

test('AbortSignal stops the waiting and the request', async () => {
  const clock = { t: 0, wall: 0 }
  const srv = await limitedServer('1/minute', { clock })
  try {
    await fetchWithRetry(srv.url)
    const controller = new AbortController()
    const sleep = (ms, signal) => new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      controller.abort(new Error('user went away'))
    })
    await assert.rejects(fetchWithRetry(srv.url, { signal: controller.signal }, { sleep }), /user went away/)
    await assert.rejects(fetchWithRetry(srv.url, { signal: controller.signal }), /user went away/, 'an aborted signal sends nothing')
  } finally {
    await srv.close()
  }
})

test('the default sleep is abortable too; non-429 answers are returned as they are; bad options', async () => {
  const controller = new AbortController()
  let calls = 0
  const fakeFetch = async () => {
    calls++
    return new Response('busy', { status: 429, headers: { 'Retry-After': '3600' } })
  }
  const pending = fetchWithRetry('http://example.invalid/', { signal: controller.signal }, { fetch: fakeFetch, maxTotalWait: 1e8 })
  setImmediate(() => controller.abort())
  await assert.rejects(pending, (e) => e.name === 'AbortError')
  assert.equal(calls, 1)
  const five = await fetchWithRetry('http://example.invalid/', {}, { fetch: async () => new Response('x', { status: 500 }) })
  assert.equal(five.status, 500)
  await assert.rejects(fetchWithRetry('u', {}, { maxAttempts: 0 }), RangeError)
  await assert.rejects(fetchWithRetry('u', {}, { sleep: 5 }), TypeError)
  await assert.rejects(fetchWithRetry('u', null), TypeError)
})
