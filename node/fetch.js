'use strict'
// fetchWithRetry: fetch that waits out 429s. Types: fetch.d.ts.

const DEFAULTS = {
  maxAttempts: 4,
  maxTotalWait: 60_000,
  baseDelay: 500,
  maxDelay: 30_000,
  factor: 2,
  statuses: [429],
}

/** The retry budget is spent (or a server's `Retry-After` exceeds it). */
class RetryBudgetError extends Error {
  constructor(message, details) {
    super(message)
    this.name = 'RetryBudgetError'
    /** The last response (status 429 or another retried status), body unread. */
    this.response = details.response
    /** Requests sent. */
    this.attempts = details.attempts
    /** Milliseconds spent waiting. */
    this.waited = details.waited
    /** The wait the next retry would have needed, in milliseconds. */
    this.nextWait = details.nextWait
  }
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

/**
 * `Retry-After` in milliseconds from now, or null when absent or invalid: delay-seconds (a
 * non-negative integer) or an HTTP-date (RFC 9110 §10.2.3), relative to `nowMs` (epoch ms).
 */
function parseRetryAfter(value, nowMs) {
  if (value === null || value === undefined) return null
  const v = String(value).trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  const date = Date.parse(v)
  if (Number.isNaN(date)) return null
  return Math.max(0, date - nowMs)
}

function abortReason(signal) {
  if (signal.reason !== undefined) return signal.reason
  const e = new Error('This operation was aborted')
  e.name = 'AbortError'
  return e
}

/** Waits `ms`, rejecting with the signal's reason if it aborts first. */
function defaultSleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortReason(signal))
    const timer = setTimeout(() => {
      if (signal) signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    function onAbort() {
      clearTimeout(timer)
      reject(abortReason(signal))
    }
    if (signal) signal.addEventListener('abort', onAbort, { once: true })
  })
}

function replayable(body) {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (typeof FormData !== 'undefined' && body instanceof FormData)
  )
}

function positive(options, name, allowZero = false) {
  const v = options[name] ?? DEFAULTS[name]
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`)
  if (!(Number.isFinite(v) && (allowZero ? v >= 0 : v > 0))) {
    throw new RangeError(`${name} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${v}`)
  }
  return v
}

/**
 * Like `fetch(url, init)`, but a 429 response (or another status in `options.statuses`) is
 * retried: after `Retry-After` (seconds or HTTP-date) when the response has one, else after an
 * exponential backoff with full jitter (`random() * min(maxDelay, baseDelay * factor^(n-1))`).
 * At most `maxAttempts` requests and `maxTotalWait` ms of waiting; when the budget is spent it
 * throws `RetryBudgetError` (with the last response). `init.signal` aborts the request and any
 * wait. Request bodies that are streams cannot be replayed: such a request is sent once.
 */
async function fetchWithRetry(url, init = {}, options = {}) {
  if (init === null || typeof init !== 'object') throw new TypeError(`init must be an object, got ${describe(init)}`)
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  const maxAttempts = positive(options, 'maxAttempts')
  if (!Number.isInteger(maxAttempts)) throw new RangeError(`maxAttempts must be a whole number >= 1, got ${maxAttempts}`)
  const maxTotalWait = positive(options, 'maxTotalWait', true)
  const baseDelay = positive(options, 'baseDelay', true)
  const maxDelay = positive(options, 'maxDelay', true)
  const factor = positive(options, 'factor')
  const statuses = options.statuses ?? DEFAULTS.statuses
  if (!Array.isArray(statuses) || !statuses.every((s) => Number.isInteger(s))) {
    throw new TypeError('statuses must be an array of HTTP status codes')
  }
  const fetchFn = options.fetch ?? globalThis.fetch
  const sleep = options.sleep ?? defaultSleep
  const random = options.random ?? Math.random
  const wallNow = options.now ?? Date.now
  for (const [name, fn] of [['fetch', fetchFn], ['sleep', sleep], ['random', random], ['now', wallNow]]) {
    if (typeof fn !== 'function') throw new TypeError(`${name} must be a function, got ${describe(fn)}`)
  }
  if (options.onRetry !== undefined && typeof options.onRetry !== 'function') {
    throw new TypeError(`onRetry must be a function, got ${describe(options.onRetry)}`)
  }
  const signal = init.signal ?? undefined
  const attemptsAllowed = replayable(init.body) ? maxAttempts : 1

  let waited = 0
  for (let attempt = 1; ; attempt++) {
    if (signal && signal.aborted) throw abortReason(signal)
    const response = await fetchFn(url, init)
    if (!statuses.includes(response.status)) return response
    const header = response.headers.get('retry-after')
    const fromHeader = parseRetryAfter(header, wallNow())
    const backoff = random() * Math.min(maxDelay, baseDelay * factor ** (attempt - 1))
    const wait = fromHeader ?? backoff
    if (attempt >= attemptsAllowed || waited + wait > maxTotalWait) {
      const why =
        attempt >= attemptsAllowed
          ? attemptsAllowed === 1 && maxAttempts > 1
            ? 'the request body is a stream and cannot be sent again'
            : `${attempt} attempt${attempt === 1 ? '' : 's'} made, the most allowed (maxAttempts)`
          : `the next wait of ${Math.ceil(wait)} ms${fromHeader !== null ? ' (Retry-After)' : ''} would exceed the total wait budget of ${maxTotalWait} ms (maxTotalWait), ${Math.round(waited)} ms already spent`
      throw new RetryBudgetError(
        `fetchWithRetry gave up on ${String(url)}: the server still answers ${response.status} and ${why}. ` +
          'Retry later, or raise maxAttempts / maxTotalWait.',
        { response, attempts: attempt, waited, nextWait: wait },
      )
    }
    if (options.onRetry) options.onRetry({ attempt, wait, response, retryAfter: fromHeader })
    // Free the connection: the body of a 429 is not needed.
    if (response.body && typeof response.body.cancel === 'function') {
      await response.body.cancel().catch(() => {})
    }
    await sleep(wait, signal)
    waited += wait
  }
}

module.exports = { fetchWithRetry, RetryBudgetError, parseRetryAfter }
