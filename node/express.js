'use strict'
// ratewall/express: `rateLimit(options)`, a drop-in for express-rate-limit v8. Types:
// express.d.ts. Differences from express-rate-limit: MIGRATION.md.

const ratewall = require('./index.js')
const { isIP } = require('node:net')
const { inspect } = require('node:util')
const { Limiter, MemoryStore, ipKeyGenerator, _native: native } = ratewall
const { call } = require('./native.js')
const { plan: planHeaderValues, fill: fillHeaderValues, auditDue, sameValues, unzip } = require('./header-values.js')

const KNOWN_OPTIONS = new Set([
  // express-rate-limit v8
  'windowMs', 'limit', 'max', 'message', 'statusCode', 'legacyHeaders', 'headers', 'standardHeaders',
  'identifier', 'retryAfter', 'requestPropertyName', 'skipFailedRequests', 'skipSuccessfulRequests',
  'keyGenerator', 'ipv6Subnet', 'handler', 'skip', 'requestWasSuccessful', 'store', 'validate',
  'passOnStoreError', 'logger',
  // ratewall
  'algorithm', 'policy', 'cost', 'burst', 'maxKeys', 'overflow', 'now', 'clock', 'storage', 'failMode',
])

const VALIDATIONS = [
  'ip', 'trustProxy', 'xForwardedForHeader', 'forwardedHeader', 'positiveHits', 'unsharedStore',
  'singleCount', 'limit', 'draftPolliHeaders', 'onLimitReached', 'headersDraftVersion',
  'headersResetTime', 'knownOptions', 'validationsConfig', 'creationStack', 'ipv6Subnet',
  'ipv6SubnetOrKeyGenerator', 'keyGeneratorIpFallback', 'windowMs',
]

/** The most distinct values a `limit` function may return (one limiter is kept per value). */
const MAX_DYNAMIC_LIMITS = 1000

/**
 * `req.rateLimit`: `limit`, `used`, `remaining` and `key` as own enumerable fields, and
 * `resetTime`, a `Date`, as a getter on the prototype that builds it at its first read and
 * returns that same object afterwards. `current`, the older name of `used`, is a getter too.
 *
 * Why `resetTime` is not an own field, as it is with express-rate-limit: `new Date(ms)` runs a
 * C++ builtin, about 0.1 µs per request in the middleware (a quarter of its own work without
 * headers), and most apps never read it. What shows the object still shows it: `JSON.stringify`
 * (through `toJSON`) and `util.inspect` / `console.log` list the five fields in
 * express-rate-limit's order. What does not: `Object.keys`, `Object.entries` and spreading
 * (`{ ...req.rateLimit }`) see the four own fields only; read `resetTime` by name or use
 * `toJSON()` there (MIGRATION.md, 18). express-rate-limit defines `current` with
 * `Object.defineProperty` on each object; a getter on the prototype reads the same and costs
 * nothing per request (`defineProperty` was a tenth of the middleware's time).
 */
class RateLimitInfo {
  /** The reset instant, ms since the epoch (a number until `resetTime` is read). */
  #resetMs
  /** The `Date` built at the first read of `resetTime`. */
  #resetTime

  constructor(limit, used, remaining, resetMs, key) {
    this.limit = limit
    this.used = used
    this.remaining = remaining
    this.key = key
    this.#resetMs = resetMs
  }

  /** When the limit resets: the same `Date` object on every read. */
  get resetTime() {
    if (this.#resetTime === undefined) this.#resetTime = new Date(this.#resetMs)
    return this.#resetTime
  }

  /** Replaces it (as assigning the own field of express-rate-limit's object would). */
  set resetTime(value) {
    this.#resetTime = value
  }

  get current() {
    return this.used
  }

  /** The five fields in express-rate-limit's order (`resetTime` included). */
  toJSON() {
    return { limit: this.limit, used: this.used, remaining: this.remaining, resetTime: this.resetTime, key: this.key }
  }

  [inspect.custom](depth, options, inspectFn) {
    return `RateLimitInfo ${(inspectFn ?? inspect)(this.toJSON(), options)}`
  }
}

/**
 * What one middleware decided for a request, kept on it (no double count when the same
 * middleware runs twice) and passed on to the steps that answer it.
 */
class Decided {
  constructor(key, decision, cost, limiter, start) {
    this.key = key
    this.decision = decision
    this.cost = cost
    this.limiter = limiter
    this.start = start
  }
}

/** `ipKeyGenerator` with the subnet first (the order `later` passes it). */
function subnetKey(subnet, ip) {
  return ipKeyGenerator(ip, subnet)
}

class ValidationError extends Error {
  constructor(code, message) {
    super(`${message} (ratewall, ${code}; disable with validate: { ... : false })`)
    this.name = 'ValidationError'
    this.code = code
  }
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function'
}

/** `f(v)` now, or once `v` settles. */
function then(v, f) {
  return isThenable(v) ? Promise.resolve(v).then(f) : f(v)
}

/**
 * `step(x, a, b, c, d, e)` once `v` settles to `x`: the waiting path of a middleware step, kept
 * in a function of its own so that the step itself creates no closure (see "one request").
 */
function later(v, step, a, b, c, d, e) {
  return Promise.resolve(v).then((x) => step(x, a, b, c, d, e))
}

function makeValidations(validate, logger) {
  let enabled
  if (validate === undefined || typeof validate === 'boolean') {
    enabled = { default: validate !== false }
  } else if (validate !== null && typeof validate === 'object') {
    enabled = { default: true, ...validate }
    for (const k of Object.keys(validate)) {
      if (k !== 'default' && !VALIDATIONS.includes(k)) {
        throw new TypeError(`validate.${k} is not a known validation: use ${VALIDATIONS.join(', ')} or default`)
      }
    }
  } else {
    throw new TypeError(`validate must be a boolean or an object, got ${describe(validate)}`)
  }
  const done = new Set()
  return {
    enabled(name) {
      return enabled[name] ?? enabled.default
    },
    /** Logs `error` once per validation name, if enabled. */
    report(name, code, message) {
      if (!(enabled[name] ?? enabled.default) || done.has(name)) return
      done.add(name)
      logger.error(new ValidationError(code, message))
    },
  }
}

function checkPositiveInteger(name, v) {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`)
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number of at least 1, got ${v}`)
}

/** The header-set string and Retry-After rule for express-rate-limit's options. */
function headerSets(legacy, standard) {
  const parts = []
  if (legacy) parts.push('legacy')
  if (standard) parts.push(standard)
  return parts.length ? parts.join(',') : 'none'
}

/**
 * Sets rendered headers on `res`: `rendered` is `[names, values]`. List-valued fields are
 * appended (stacked limiters).
 */
function applyHeaders(res, rendered, appendLists, retryAfterOverride) {
  if (res.headersSent) return
  const names = rendered[0]
  const values = rendered[1]
  for (let i = 0; i < names.length; i++) {
    const name = names[i]
    if (name === 'Date' && res.sendDate === true) continue
    applyHeader(res, name, values[i], appendLists, retryAfterOverride)
  }
}

/** No headers (both header options off). */
const NO_HEADERS = [[], []]

/** The addon's items joined by line feeds (none of them holds one), as a list. */
function splitJoined(joined) {
  return joined === '' ? [] : joined.split('\n')
}

function applyHeader(res, name, value, appendLists, retryAfterOverride) {
  if (name === 'Retry-After' && retryAfterOverride !== undefined) value = String(retryAfterOverride)
  if (appendLists && (name === 'RateLimit' || name === 'RateLimit-Policy') && typeof res.append === 'function') {
    res.append(name, value)
  } else {
    res.setHeader(name, value)
  }
}

/**
 * The store a `storage` URL names: the in-process `MemoryStore` for `memory://` (or none), else
 * a `RedisStore` (ratewall/redis) that connects in the background. Its fail mode is `failMode`,
 * else the closest to express-rate-limit with an external store: `passOnStoreError: true` lets
 * requests through while Redis is down (`fail-open`), the default denies them (`fail-closed`,
 * a 429 instead of express-rate-limit's error).
 */
function storeFromStorage(storage, failMode, passOnStoreError) {
  if (storage === undefined) {
    if (failMode !== undefined) throw new TypeError("failMode applies to a shared store: give storage: 'redis://host:port' too")
    return new MemoryStore()
  }
  if (typeof storage !== 'string') throw new TypeError(`storage must be a URL string such as 'redis://127.0.0.1:6379' or 'memory://', got ${describe(storage)}`)
  if (/^memory:\/\//i.test(storage.trim())) {
    if (failMode !== undefined) throw new TypeError('failMode applies to a shared store, not memory://')
    return new MemoryStore()
  }
  const { RedisStore } = require('./redis.js')
  return new RedisStore(storage, { failMode: failMode ?? (passOnStoreError ? 'fail-open' : 'fail-closed') })
}

/**
 * Express middleware that limits repeated requests, accepting every express-rate-limit v8 option
 * with the same meaning, plus ratewall's `algorithm`, `policy`, `cost`, `store`, `burst`,
 * `maxKeys`, `overflow`, `now`, `clock` and `standardHeaders: 'ietf'`.
 */
function rateLimit(passed = {}) {
  if (passed === null || typeof passed !== 'object') {
    throw new TypeError(`rateLimit options must be an object, got ${describe(passed)}`)
  }
  const o = {}
  for (const [k, v] of Object.entries(passed)) if (v !== undefined) o[k] = v
  const logger = o.logger ?? console
  if (typeof logger !== 'object' || typeof logger.error !== 'function' || typeof logger.warn !== 'function') {
    throw new TypeError('logger must have error() and warn() methods')
  }
  const validations = makeValidations(o.validate, logger)
  for (const k of Object.keys(passed)) {
    if (!KNOWN_OPTIONS.has(k)) validations.report('knownOptions', 'ERR_ERL_UNKNOWN_OPTION', `Unexpected configuration option: ${k}`)
  }

  // --- the limit: policy string / Limiter, or windowMs + limit (fixed window by default) ----
  const windowMs = o.windowMs ?? 60_000
  checkPositiveInteger('windowMs', windowMs)
  const limitOption = o.limit ?? o.max ?? 5
  if (typeof limitOption === 'number') {
    if (!Number.isSafeInteger(limitOption) || limitOption < 0) {
      throw new RangeError(`limit must be a whole number >= 0 (0 blocks every request), got ${limitOption}`)
    }
  } else if (typeof limitOption !== 'function') {
    throw new TypeError(`limit must be a number or a function (req, res) => number, got ${describe(limitOption)}`)
  }
  if (o.now !== undefined && typeof o.now !== 'function') {
    throw new TypeError(`now must be a function returning milliseconds, got ${describe(o.now)}`)
  }
  const algorithm = o.algorithm ?? 'fixed-window'
  if (typeof algorithm !== 'string') throw new TypeError(`algorithm must be a string, got ${describe(algorithm)}`)
  for (const name of ['burst', 'maxKeys']) if (o[name] !== undefined) checkPositiveInteger(name, o[name])
  if (o.overflow !== undefined && typeof o.overflow !== 'string') throw new TypeError(`overflow must be a string, got ${describe(o.overflow)}`)

  // --- headers ------------------------------------------------------------------------------
  const legacyHeaders = o.legacyHeaders ?? o.headers ?? true
  if (typeof legacyHeaders !== 'boolean') throw new TypeError(`legacyHeaders must be a boolean, got ${describe(legacyHeaders)}`)
  let standardHeaders = o.standardHeaders ?? false
  if (standardHeaders === true) standardHeaders = 'draft-6'
  if (standardHeaders !== false && !['draft-6', 'draft-7', 'draft-8', 'ietf'].includes(standardHeaders)) {
    throw new TypeError(`standardHeaders must be true, false, 'draft-6', 'draft-7', 'draft-8' or 'ietf', got ${JSON.stringify(standardHeaders)}`)
  }
  if (o.identifier !== undefined && typeof o.identifier !== 'string' && typeof o.identifier !== 'function') {
    throw new TypeError(`identifier must be a string or a function, got ${describe(o.identifier)}`)
  }
  const headerNames = headerSets(legacyHeaders, standardHeaders)
  const headerIdentifier = typeof o.identifier === 'string' && standardHeaders === 'draft-8' ? o.identifier : undefined
  const sets = call(() => new native.NativeHeaders(headerNames, headerIdentifier))
  const listHeaders = standardHeaders === 'draft-8' || standardHeaders === 'ietf'
  const dynamicIdentifier = standardHeaders === 'draft-8' && typeof o.identifier === 'function' ? o.identifier : null

  let policyLimiter = null
  /** A Limiter passed as `policy` (its header sets are its own, not this middleware's). */
  let givenLimiter = null
  if (o.policy !== undefined) {
    if (o.limit !== undefined || o.max !== undefined || o.windowMs !== undefined) {
      throw new TypeError('policy replaces windowMs and limit/max: give one or the other')
    }
    if (o.policy instanceof Limiter) {
      policyLimiter = o.policy
      givenLimiter = o.policy
    } else if (typeof o.policy === 'string') {
      policyLimiter = new Limiter({ limits: o.policy, algorithm: o.algorithm, burst: o.burst, maxKeys: o.maxKeys, overflow: o.overflow, now: o.now, clock: o.clock, name: typeof o.identifier === 'string' ? o.identifier : undefined, headers: headerNames, identifier: headerIdentifier })
    } else {
      throw new TypeError(`policy must be a rate string such as "10/second; 1000/day" or a Limiter, got ${describe(o.policy)}`)
    }
  }

  /** One limiter per limit value (the `limit` function may vary per request). */
  const limiters = new Map()
  function limiterFor(limit) {
    if (policyLimiter) return policyLimiter
    let l = limiters.get(limit)
    if (l === undefined) {
      if (limiters.size >= MAX_DYNAMIC_LIMITS) {
        throw new RangeError(`the limit function returned more than ${MAX_DYNAMIC_LIMITS} distinct values; return one of a few plan limits`)
      }
      l = new Limiter({ limits: `${limit}/${windowMs}ms`, algorithm, burst: o.burst, maxKeys: o.maxKeys, overflow: o.overflow, now: o.now, clock: o.clock, headers: headerNames, identifier: headerIdentifier })
      limiters.set(limit, l)
    }
    return l
  }

  if (typeof limitOption === 'number' && limitOption > 0) limiterFor(limitOption) // validate now
  if (o.retryAfter !== undefined && typeof o.retryAfter !== 'number' && typeof o.retryAfter !== 'function') {
    throw new TypeError(`retryAfter must be a number of seconds or a function, got ${describe(o.retryAfter)}`)
  }

  // --- callbacks ----------------------------------------------------------------------------
  const statusCode = o.statusCode ?? 429
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999) {
    throw new RangeError(`statusCode must be an HTTP status code, got ${statusCode}`)
  }
  for (const name of ['handler', 'skip', 'requestWasSuccessful', 'keyGenerator']) {
    if (o[name] !== undefined && typeof o[name] !== 'function') throw new TypeError(`${name} must be a function, got ${describe(o[name])}`)
  }
  const requestPropertyName = o.requestPropertyName ?? 'rateLimit'
  if (typeof requestPropertyName !== 'string') throw new TypeError(`requestPropertyName must be a string, got ${describe(requestPropertyName)}`)
  const skipFailed = Boolean(o.skipFailedRequests)
  const skipSuccessful = Boolean(o.skipSuccessfulRequests)
  const requestWasSuccessful = o.requestWasSuccessful ?? ((req, res) => res.statusCode < 400)
  const skip = o.skip ?? null
  const passOnStoreError = Boolean(o.passOnStoreError)
  const costOption = o.cost ?? 1
  if (typeof costOption === 'number') checkPositiveInteger('cost', costOption)
  else if (typeof costOption !== 'function') throw new TypeError(`cost must be a number or a function (req, res) => number, got ${describe(costOption)}`)

  // ipv6Subnet: 56 by default, 32–64 (validated as express-rate-limit does), false, or a function.
  const ipv6Subnet = o.ipv6Subnet ?? 56
  if (ipv6Subnet !== false && typeof ipv6Subnet !== 'function') {
    if (typeof ipv6Subnet !== 'number' || !Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128) {
      throw new RangeError(`ipv6Subnet must be a whole number (usually 48-64), false or a function, got ${ipv6Subnet}`)
    }
    if (ipv6Subnet < 32 || ipv6Subnet > 64) {
      validations.report('ipv6Subnet', 'ERR_ERL_IPV6_SUBNET', `Unexpected ipv6Subnet value: ${ipv6Subnet}. Expected an integer between 32 and 64 (usually 48-64).`)
    }
  }
  if (o.ipv6Subnet !== undefined && o.keyGenerator) {
    validations.report('ipv6SubnetOrKeyGenerator', 'ERR_ERL_IPV6SUBNET_OR_KEYGENERATOR', "Incompatible options: the 'ipv6Subnet' option is ignored when a custom 'keyGenerator' function is also set.")
  }
  if (o.keyGenerator) {
    const src = o.keyGenerator.toString()
    if ((src.includes('req.ip') || src.includes('request.ip')) && !src.includes('ipKeyGenerator')) {
      validations.report('keyGeneratorIpFallback', 'ERR_ERL_KEY_GEN_IPV6', 'Custom keyGenerator appears to use request IP without calling the ipKeyGenerator helper function for IPv6 addresses. This could allow IPv6 users to bypass limits: wrap the address in ipKeyGenerator(req.ip).')
    }
  }
  if (limitOption === 0) {
    validations.report('limit', 'WRN_ERL_MAX_ZERO', 'limit: 0 blocks every request (as in express-rate-limit v7 and later).')
  }

  const checkIp = validations.enabled('ip')
  function defaultKeyGenerator(req, res) {
    const ip = req.ip
    if (ip === undefined) {
      throw new TypeError("ratewall: req.ip is undefined (the connection may have closed); pass a keyGenerator that does not depend on the client address")
    }
    // An IPv4 address has no colon: `isIP`'s regular expressions run only where the answer
    // matters (IPv6, or the 'ip' validation on).
    const family = checkIp || ip.includes(':') ? isIP(ip) : 4
    if (family === 0) {
      validations.report('ip', 'ERR_ERL_INVALID_IP_ADDRESS', `An invalid 'request.ip' (${ip}) was detected. Pass a keyGenerator that returns a stable client key.`)
    }
    const app = req.app
    const trust = app && typeof app.get === 'function' ? app.get('trust proxy') : false
    if (trust === true) {
      const w = ratewall.trustProxyWarning(true, true)
      validations.report('trustProxy', 'ERR_ERL_PERMISSIVE_TRUST_PROXY', `${w.message} (app.set('trust proxy', 1) for one proxy).`)
    }
    const headers = req.headers || {}
    if (headers['x-forwarded-for'] && trust === false) {
      const w = ratewall.trustProxyWarning(false, true)
      validations.report('xForwardedForHeader', 'ERR_ERL_UNEXPECTED_X_FORWARDED_FOR', `${w.message} (app.set('trust proxy', 1) for one proxy).`)
    }
    if (headers.forwarded && req.socket && ip === req.socket.remoteAddress) {
      validations.report('forwardedHeader', 'ERR_ERL_FORWARDED_HEADER', "The 'Forwarded' header is set but ignored (Express reads only X-Forwarded-For): pass a keyGenerator that uses clientIp() with the header's value if your proxy sends only Forwarded.")
    }
    if (family === 6) {
      const subnet = typeof ipv6Subnet === 'function' ? ipv6Subnet(req, res) : ipv6Subnet
      return isThenable(subnet) ? later(subnet, subnetKey, ip) : ipKeyGenerator(ip, subnet)
    }
    return ip
  }
  const keyGenerator = o.keyGenerator ?? defaultKeyGenerator

  // --- store --------------------------------------------------------------------------------
  const store = o.store ?? storeFromStorage(o.storage, o.failMode, passOnStoreError)
  if (o.store !== undefined && (o.storage !== undefined || o.failMode !== undefined)) {
    throw new TypeError('storage and failMode build a store: give them or store, not both (pass failMode to new RedisStore(url, { failMode }))')
  }
  const storeKind = store instanceof MemoryStore ? 'memory' : typeof store.check === 'function' ? 'ratewall' : typeof store.increment === 'function' ? 'erl' : null
  if (storeKind === null) {
    throw new TypeError('store must implement check(key, cost, limiter), refund() and reset() (a ratewall store), or increment(), decrement() and resetKey() (an express-rate-limit store)')
  }
  if (storeKind === 'erl') {
    for (const m of ['decrement', 'resetKey']) {
      if (typeof store[m] !== 'function') throw new TypeError(`an express-rate-limit store must have ${m}()`)
    }
    if (policyLimiter || o.algorithm !== undefined) {
      throw new TypeError('an express-rate-limit store counts hits in fixed windows itself: algorithm and policy need a ratewall store')
    }
    if (typeof store.init === 'function') {
      try {
        const r = store.init({ windowMs, limit: limitOption, max: limitOption })
        if (isThenable(r)) r.then(undefined, (e) => logger.error(e, 'ratewall: async error during store initialization.'))
      } catch (e) {
        logger.error(e, 'ratewall: error during store initialization.')
      }
    }
  }
  if (storeKind !== 'memory') {
    if (store.__ratewallUsed) {
      validations.report('unsharedStore', 'ERR_ERL_STORE_REUSE', `A store instance must not be shared across rate limiters: create a new ${store.constructor.name} for each.`)
    }
    Object.defineProperty(store, '__ratewallUsed', { value: true, configurable: true })
  }

  const options = { ...o, windowMs, limit: limitOption, statusCode, legacyHeaders, standardHeaders, requestPropertyName, store }

  function sendDenial(req, res, next, decision) {
    if (o.handler) return o.handler(req, res, next, options)
    res.status(statusCode)
    if (o.message === undefined) {
      if (!res.writableEnded) {
        res.setHeader('Content-Type', 'application/json')
        res.send(native.deniedBody(decision.retryAfter))
      }
      return undefined
    }
    const message = typeof o.message === 'function' ? o.message(req, res) : o.message
    return then(message, (m) => {
      if (!res.writableEnded) res.send(m)
    })
  }

  /**
   * Per request: the key and decision this middleware already made (no double count), kept on
   * the request under a symbol of this middleware's own. Not a WeakMap: every request is a new
   * key there, and the garbage collector's work on those entries cost about 1 µs per request.
   */
  const seen = Symbol('ratewall.seen')

  // --- one request --------------------------------------------------------------------------
  // Each step takes the previous one's value first. A value that is a promise (an async `skip`,
  // `keyGenerator`, `limit`, `cost`, `identifier` or `retryAfter`) goes through `later`; a plain
  // value goes on at once. The steps create no closures: a function that creates one allocates
  // its context (and the closure) on every call, whichever path it takes, and with a closure in
  // every step that was about 0.25 µs per request, a tenth of the middleware's cost.
  function handle(req, res, next) {
    const skipped = skip === null ? false : skip(req, res)
    if (isThenable(skipped)) return later(skipped, afterSkip, req, res, next)
    return afterSkip(skipped, req, res, next)
  }

  function afterSkip(skipped, req, res, next) {
    if (skipped) return next()
    const key = keyGenerator(req, res)
    if (isThenable(key)) return later(key, afterKey, req, res, next)
    return afterKey(key, req, res, next)
  }

  function afterKey(key, req, res, next) {
    if (typeof key !== 'string') {
      if (typeof key === 'number') key = String(key)
      else throw new TypeError(`keyGenerator must return a string, got ${describe(key)}`)
    }
    const limit = typeof limitOption === 'function' ? limitOption(req, res) : limitOption
    if (isThenable(limit)) return later(limit, afterLimit, req, res, next, key)
    return afterLimit(limit, req, res, next, key)
  }

  function afterLimit(limit, req, res, next, key) {
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`the limit function must return a whole number >= 0, got ${limit}`)
    }
    const cost = typeof costOption === 'function' ? costOption(req, res) : costOption
    if (isThenable(cost)) return later(cost, afterCost, req, res, next, key, limit)
    return afterCost(cost, req, res, next, key, limit)
  }

  function afterCost(cost, req, res, next, key, limit) {
    if (typeof cost !== 'number' || !Number.isSafeInteger(cost) || cost < 1) {
      throw new RangeError(`the cost function must return a whole number >= 1, got ${cost}`)
    }
    return decide(req, res, next, key, limit, cost)
  }

  function decide(req, res, next, key, limit, cost) {
    // The same middleware twice on one request (app.use + route): count once.
    const previous = req[seen]
    if (previous !== undefined && previous.key === key) {
      validations.report('singleCount', 'ERR_ERL_DOUBLE_COUNT', `The same rate limiter ran twice for one request (key ${key}); it counted the request once. Mount each limiter once per route.`)
      return previous.decision.allowed ? next() : sendDenial(req, res, next, previous.decision)
    }
    if (limit === 0 && !policyLimiter) {
      const decision = { allowed: false, limit: 0, remaining: 0, retryAfter: windowMs, resetAfter: windowMs, _blocked: true }
      return finish(req, res, next, key, 0, cost, decision, null, null)
    }
    const limiter = limiterFor(limit)
    if (storeKind === 'memory') {
      const start = limiter._time()
      const decision = limiter.check(key, cost)
      return finish(req, res, next, key, limit, cost, decision, limiter, start)
    }
    return decideInStore(req, res, next, key, limit, cost, limiter)
  }

  /** `decide` with a store other than the in-process one (its closures kept off that path). */
  function decideInStore(req, res, next, key, limit, cost, limiter) {
    let result
    try {
      result = storeKind === 'erl' ? erlIncrement(key, limit) : store.check(key, cost, limiter)
    } catch (e) {
      return storeError(e, next)
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then((d) => finish(req, res, next, key, limit, cost, d, limiter, null), (e) => storeError(e, next))
    }
    return finish(req, res, next, key, limit, cost, result, limiter, null)
  }

  function storeError(e, next) {
    if (passOnStoreError) {
      logger.error(e, 'ratewall: error from store, allowing request without rate-limiting.')
      return next()
    }
    throw e
  }

  /** express-rate-limit store: hits in a fixed window; blocked when hits exceed the limit. */
  function erlIncrement(key, limit) {
    return then(store.increment(key), (r) => {
      const hits = r && r.totalHits
      if (typeof hits !== 'number' || hits < 1 || hits !== Math.round(hits)) {
        validations.report('positiveHits', 'ERR_ERL_INVALID_HITS', `The totalHits value returned from the store must be a positive integer, got ${hits}`)
      }
      const resetAfter = r && r.resetTime instanceof Date ? Math.max(0, r.resetTime.getTime() - Date.now()) : windowMs
      const allowed = hits <= limit
      return { allowed, limit, remaining: Math.max(limit - hits, 0), retryAfter: allowed ? 0 : resetAfter, resetAfter, _hits: hits }
    })
  }

  /** The `[names, values]` of the headers for `decision` (a promise with an async `identifier`). */
  function headersFor(req, res, key, decision, limiter, nowMs) {
    const identifier = dynamicIdentifier ? dynamicIdentifier(req, res) : undefined
    // The limiter's last decision is this request's only until another request is checked: an
    // identifier that resolves later renders from this decision's own numbers.
    if (isThenable(identifier)) return later(identifier, renderHeaders, key, decision, limiter, nowMs, false)
    return renderHeaders(identifier, key, decision, limiter, nowMs, true)
  }

  function renderHeaders(id, key, decision, limiter, nowMs, lastIsOurs) {
    if (id !== undefined && typeof id !== 'string') throw new TypeError(`identifier must return a string, got ${describe(id)}`)
    if (lastIsOurs && storeKind === 'memory' && limiter !== null && !decision._blocked) {
      // The key only where it is shown (draft-8's partition key): passing a string costs.
      const shownKey = listHeaders ? key : undefined
      // The limiters this middleware made have its header sets as their own: their bound
      // `headers` function renders them (a raw call, no `this` to unwrap). A Limiter passed
      // as `policy` has sets of its own: render this middleware's.
      if (limiter === givenLimiter) return unzip(splitJoined(limiter._native.lastHeadersJoined(shownKey, nowMs, sets, id)))
      return ownHeaders(limiter, decision.allowed, shownKey, nowMs, id)
    }
    return renderElsewhere(id, key, decision, limiter, nowMs)
  }

  /** The headers of a decision from elsewhere (another store, limit 0), from its numbers. */
  function renderElsewhere(id, key, decision, limiter, nowMs) {
    const windows = limiter ? limiter.windowsMs : [windowMs]
    const each = decision.limits && decision.limits.length ? decision.limits : [decision]
    const names = limiter && limiter.name ? (each.length > 1 ? limiter.limits.split('; ').map((r) => `${limiter.name}:${r}`) : [limiter.name]) : []
    const limits = each.map((d, i) => ({ name: names[i], limit: d.limit, windowMs: windows[i] ?? windowMs, remaining: d.remaining, resetAfter: d.resetAfter }))
    const first = decision.mostRestrictive ?? 0
    if (first > 0 && first < limits.length) limits.unshift(limits.splice(first, 1)[0])
    return unzip(call(() => sets.render(decision.allowed, decision.retryAfter, limits, key, nowMs, id)))
  }

  /**
   * The headers of `limiter`'s last decision in its own sets (this middleware's). The names
   * depend only on the sets and on whether the request was allowed (the core renders them so),
   * so after a first full rendering per case the limiter keeps them, and names that are the
   * same string objects every time are cheaper for `res.setHeader`'s lookups. The values of
   * express-rate-limit's forms are then filled in JavaScript from the decision's numbers
   * (header-values.js: a tenth of the addon's rendering and `split`), under a plan checked
   * against the core's values at that first rendering and audited against them every
   * 1024th response; otherwise (draft-8, ietf, several limits) the addon sends the values
   * alone. A count that does not match renders in full again.
   */
  function ownHeaders(limiter, allowed, shownKey, nowMs, id) {
    const slot = allowed ? 1 : 0
    const names = limiter._headerNames[slot]
    if (names !== null) {
      // express-rate-limit's forms: the values filled here from the decision's numbers
      // (header-values.js), checked against the core's at the first rendering.
      const planned = limiter._headerPlans[slot]
      const filled = planned === null ? null : fillHeaderValues(planned, limiter._out, nowMs)
      if (filled !== null && !auditDue(planned)) return [names, filled]
      const values = splitJoined(limiter._headerValues(shownKey, nowMs, id))
      if (filled !== null && !sameValues(filled, values)) {
        // A rule of header-values.js went wrong for these numbers: the core renders from now on.
        limiter._headerPlans[slot] = null
        logger.error(new Error(`ratewall: header values filled in JavaScript (${JSON.stringify(filled)}) differ from the core's (${JSON.stringify(values)}); the core renders them from now on. Please report this.`))
      }
      if (values.length === names.length) return [names, values]
    }
    const rendered = unzip(splitJoined(limiter._headers(shownKey, nowMs, id)))
    limiter._headerNames[slot] = rendered[0]
    // The key and the identifier appear only in draft-8's lists, which the plan never covers.
    limiter._headerPlans[slot] = shownKey === undefined && id === undefined ? planHeaderValues(rendered[0], rendered[1], limiter._out, nowMs) : null
    return rendered
  }

  function finish(req, res, next, key, limit, cost, decision, limiter, start) {
    const decided = new Decided(key, decision, cost, limiter, start)
    req[seen] = decided
    const shownLimit = decision.limit
    const used = decision._hits ?? shownLimit - decision.remaining + (decision.allowed ? 0 : cost)
    const nowMs = Date.now()
    req[requestPropertyName] = new RateLimitInfo(shownLimit, used, decision.remaining, nowMs + decision.resetAfter, key)

    const rendered = legacyHeaders || standardHeaders ? headersFor(req, res, key, decision, limiter, nowMs) : NO_HEADERS
    if (isThenable(rendered)) return later(rendered, respond, req, res, next, decided)
    return respond(rendered, req, res, next, decided)
  }

  /** Sets the headers, then passes the request on or answers the denial. */
  function respond(rendered, req, res, next, decided) {
    const retryAfter = !decided.decision.allowed && o.retryAfter !== undefined ? (typeof o.retryAfter === 'function' ? o.retryAfter(req, res) : o.retryAfter) : undefined
    if (isThenable(retryAfter)) return later(retryAfter, send, req, res, next, decided, rendered)
    return send(retryAfter, req, res, next, decided, rendered)
  }

  function send(retryAfter, req, res, next, decided, rendered) {
    const { key, decision, cost, limiter, start } = decided
    applyHeaders(res, rendered, listHeaders, retryAfter)
    if ((skipFailed || skipSuccessful) && decision.allowed && !decision._blocked) {
      watchForRefund(req, res, key, cost, decision, limiter, start)
    }
    if (!decision.allowed) return sendDenial(req, res, next, decision)
    return next()
  }

  /** skipFailedRequests / skipSuccessfulRequests: give the permits back when the response ends. */
  function watchForRefund(req, res, key, cost, decision, limiter, start) {
    let done = false
    const resetAt = limiter && start !== null ? (start ?? limiter.now()) + decision.resetAfter : null
    const wallResetAt = Date.now() + decision.resetAfter
    const refund = () => {
      if (done) return
      done = true
      // Not once the window has reset: the permits would come out of the next window.
      if (resetAt !== null ? limiter.now() >= resetAt : Date.now() >= wallResetAt) return
      try {
        const r = storeKind === 'erl' ? store.decrement(key) : storeKind === 'memory' ? limiter.refund(key, cost) : store.refund(key, cost, limiter)
        if (isThenable(r)) r.then(undefined, (e) => logger.error(e, 'ratewall: error from store during refund.'))
      } catch (e) {
        logger.error(e, 'ratewall: error from store during refund.')
      }
    }
    const onFinish = () => {
      let ok
      try {
        ok = requestWasSuccessful(req, res)
      } catch (e) {
        logger.error(e, 'ratewall: error in requestWasSuccessful callback.')
        return
      }
      then(ok, (success) => {
        if ((success && skipSuccessful) || (!success && skipFailed)) refund()
      })
    }
    res.once('finish', onFinish)
    if (skipFailed) {
      res.once('close', () => {
        if (!res.writableEnded) refund()
      })
      res.once('error', refund)
    }
  }

  const middleware = function rateLimitMiddleware(req, res, next) {
    try {
      const r = handle(req, res, next)
      if (isThenable(r)) return Promise.resolve(r).then(undefined, next)
      return r
    } catch (e) {
      return next(e)
    }
  }

  /** Makes `key` full again in every limiter of this middleware (and its store). */
  middleware.resetKey = function resetKey(key) {
    if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${describe(key)}`)
    if (storeKind === 'erl') return Promise.resolve(store.resetKey(key))
    const all = policyLimiter ? [policyLimiter] : [...limiters.values()]
    const results = all.map((l) => (storeKind === 'memory' ? l.reset(key) : store.reset(key, l)))
    return Promise.all(results).then(() => undefined)
  }

  /**
   * `{ totalHits, resetTime }` for `key` (what express-rate-limit's `getKey` returns), or
   * undefined when the key has no hits. With a `limit` function, the first limit seen.
   */
  middleware.getKey = function getKey(key) {
    if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${describe(key)}`)
    if (storeKind === 'erl') {
      if (typeof store.get !== 'function') return Promise.reject(new Error('The current store does not support the get/getKey method'))
      return Promise.resolve(store.get(key))
    }
    const limiter = policyLimiter ?? limiters.values().next().value
    if (!limiter) return Promise.resolve(undefined)
    return Promise.resolve(storeKind === 'memory' ? limiter.peek(key, 1) : store.peek ? store.peek(key, 1, limiter) : undefined).then((d) => {
      if (!d) return undefined
      // An admitted peek reports what would remain after taking one permit.
      const used = d.limit - d.remaining - (d.allowed ? 1 : 0)
      if (used <= 0) return undefined
      return { totalHits: used, resetTime: new Date(Date.now() + d.resetAfter) }
    })
  }

  return middleware
}

module.exports = rateLimit
module.exports.rateLimit = rateLimit
module.exports.default = rateLimit
module.exports.ipKeyGenerator = ipKeyGenerator
module.exports.MemoryStore = MemoryStore
module.exports.ValidationError = ValidationError
