'use strict'
// ratewall for Node: the core API over the native addon. Types: index.d.ts.

const { native, call } = require('./native.js')

/** Length of the result buffer shared with the addon (see src/fast.rs). */
const OUT_LEN = 48

/**
 * Node's own `performance` object and `now` method, taken from `node:perf_hooks` and the
 * class's prototype rather than from the global: fake timers installed before this module was
 * loaded (jest's `enableGlobally`) must still be seen as fakes.
 */
const { PERF, PERF_NOW } = require('./native.js')

// Every `check` on the default clock asks "are `globalThis.performance` and its `now` still the
// originals?" (fake timers replace either; then their time is used, see `Limiter._time`). Node
// defines `globalThis.performance` as a lazy accessor whose getter V8 does not inline: reading
// it cost about 40 ns per call, as much as the rest of the JavaScript side. A plain writable data
// property with the same value is read for free by optimized code (V8 treats an unchanged global
// as a constant and deoptimizes when it changes). It stays writable, configurable and
// enumerable, so assigning, redefining (as @sinonjs/fake-timers and jest do) and restoring work
// as before. Left alone when it is not Node's own accessor or cannot be redefined.
{
  const d = Object.getOwnPropertyDescriptor(globalThis, 'performance')
  if (d && d.configurable && typeof d.get === 'function' && typeof d.set === 'function' && d.get.call(globalThis) === PERF) {
    Object.defineProperty(globalThis, 'performance', { value: PERF, writable: true, enumerable: d.enumerable, configurable: true })
  }
}

const LIMITER_OPTIONS = new Set(['name', 'limits', 'algorithm', 'burst', 'maxKeys', 'overflow', 'headers', 'identifier', 'now', 'clock'])
const CLOCKS = ['precise', 'coarse']

/**
 * Validates the `now` and `clock` options; returns whether the coarse clock was chosen.
 * `clock: 'coarse'` reads the kernel's tick clock (same scale, up to a tick behind, a quarter of
 * the cost; see README); it is the addon's own clock, so it cannot go with a `now` function.
 */
function clockOptions(now, clock) {
  if (now !== undefined && typeof now !== 'function') {
    throw new TypeError(`now must be a function returning milliseconds, got ${describe(now)}`)
  }
  if (clock === undefined) return false
  if (typeof clock !== 'string' || !CLOCKS.includes(clock)) {
    throw new TypeError(`clock must be 'precise' (the default) or 'coarse', got ${typeof clock === 'string' ? JSON.stringify(clock) : describe(clock)}`)
  }
  if (clock === 'coarse' && now !== undefined) {
    throw new TypeError("clock: 'coarse' picks the addon's clock and now supplies your own: pass one of them")
  }
  return clock === 'coarse'
}

/**
 * Whether a call with time `t` (from `Limiter._time`) and `cost` can take the key-only native
 * function: the addon's own clock and a cost of 1 (or none).
 */
function keyOnly(t, cost) {
  return t === undefined && (cost === undefined || cost === 1)
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function optionalString(options, name) {
  const v = options[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string, got ${describe(v)}`)
  return v
}

function optionalCount(options, name) {
  const v = options[name]
  if (v === undefined) return undefined
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`)
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number of at least 1, got ${v}`)
  return v
}

/**
 * The answer to "may this client do this now?". All durations are milliseconds.
 */
class Decision {
  #each
  #most

  constructor(allowed, limit, remaining, retryAfter, resetAfter, each, mostRestrictive) {
    /** Whether the request was admitted (and, for `check`, its permits taken). */
    this.allowed = allowed
    /** The most permits available at once (`burst` for the token bucket). */
    this.limit = limit
    /** Permits left right after this decision. */
    this.remaining = remaining
    /** Milliseconds until the same request could be admitted; 0 when allowed. */
    this.retryAfter = retryAfter
    /** Milliseconds until the limiter is full again / the window resets. */
    this.resetAfter = resetAfter
    this.#each = each
    this.#most = mostRestrictive
  }

  /** Each limit's own decision, in the policy's order (one entry for a single limit). */
  get limits() {
    const e = this.#each
    if (e === null) {
      return [{ allowed: this.allowed, limit: this.limit, remaining: this.remaining, retryAfter: this.retryAfter, resetAfter: this.resetAfter }]
    }
    const out = []
    for (let i = 0; i < e.length; i += 5) {
      out.push({ allowed: e[i] === 1, limit: e[i + 1], remaining: e[i + 2], retryAfter: e[i + 3], resetAfter: e[i + 4] })
    }
    return out
  }

  /** Index (into `limits`) of the most restrictive limit. */
  get mostRestrictive() {
    return this.#most
  }

  /** `Retry-After` seconds for this decision: rounded up, at least 1. */
  get retryAfterSeconds() {
    return native.retryAfterSeconds(this.retryAfter)
  }

  toJSON() {
    return { allowed: this.allowed, limit: this.limit, remaining: this.remaining, retryAfter: this.retryAfter, resetAfter: this.resetAfter }
  }
}

/**
 * A rate limiter: one policy (one or more limits, one algorithm) with per-key state in this
 * process. See index.d.ts for the options.
 */
class Limiter {
  constructor(options) {
    if (typeof options === 'string') options = { limits: options }
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`Limiter options must be an object or a rate string, got ${describe(options)}`)
    }
    for (const k of Object.keys(options)) {
      if (!LIMITER_OPTIONS.has(k)) {
        throw new TypeError(`unknown Limiter option ${JSON.stringify(k)}: use ${[...LIMITER_OPTIONS].join(', ')}`)
      }
    }
    const limits = options.limits
    if (typeof limits !== 'string') {
      throw new TypeError(`limits must be a rate string such as "10/second; 1000/day", got ${describe(limits)}`)
    }
    const coarse = clockOptions(options.now, options.clock)
    const spec = {
      name: optionalString(options, 'name'),
      limits,
      algorithm: optionalString(options, 'algorithm'),
      burst: optionalCount(options, 'burst'),
      maxKeys: optionalCount(options, 'maxKeys'),
      overflow: optionalString(options, 'overflow'),
      headers: optionalString(options, 'headers'),
      identifier: optionalString(options, 'identifier'),
    }
    const inner = call(() => new native.NativeLimiter(spec))
    this._init(inner, options.now, coarse)
  }

  /** @internal Binds the fast functions of `inner`. */
  _init(inner, now, coarse) {
    this._native = inner
    this._out = new Float64Array(OUT_LEN)
    this._coarse = coarse
    const fast = native.bindFast(inner, this._out, coarse)
    this._check = fast.check
    this._peek = fast.peek
    this._refund = fast.refund
    // The key-only calls: a direct V8 callback when the addon has one for this Node (see
    // src/direct.rs), which returns `false` when it leaves the call to the Node-API function.
    this._checkKey = fast.checkKeyDirect || fast.checkKey
    this._checkKeyApi = fast.checkKey
    this._peekKey = fast.peekKeyDirect || fast.peekKey
    this._peekKeyApi = fast.peekKey
    this._refundKey = fast.refundKeyDirect || fast.refundKey
    this._refundKeyApi = fast.refundKey
    this._reset = fast.reset
    this._headers = fast.headers
    this._headerValues = fast.headerValues
    /** @internal Header names by `allowed` (0 or 1), kept by the Express middleware. */
    this._headerNames = [null, null]
    /** @internal Plans for filling their values in JavaScript (header-values.js), by `allowed`. */
    this._headerPlans = [null, null]
    this._now = now === undefined ? null : now
  }

  /** @internal A limiter around an existing native limiter (from a configuration). */
  static _wrap(inner, now, clock) {
    const coarse = clockOptions(now, clock)
    const limiter = Object.create(Limiter.prototype)
    limiter._init(inner, now, coarse)
    return limiter
  }

  /**
   * @internal The time to pass to the addon: the `now` option's reading, `performance.now()`
   * when fake timers replaced it, or `undefined` to let the addon read the same clock itself.
   */
  _time() {
    if (this._now !== null) return this._now()
    const p = globalThis.performance
    if (p === PERF && p.now === PERF_NOW) return undefined
    return p.now()
  }

  /** The current time on this limiter's clock, in milliseconds. */
  now() {
    const t = this._time()
    return t === undefined ? native.clockNow(this._coarse) : t
  }

  /** @internal The decision the last fast call wrote. */
  _decision() {
    const o = this._out
    const n = o[6]
    return new Decision(o[0] === 1, o[1], o[2], o[3], o[4], n > 1 ? o.slice(8, 8 + 5 * n) : null, o[5])
  }

  /** Decides a request of `cost` permits (default 1) by `key` and, if admitted, takes them. */
  check(key, cost) {
    // In the common case (default clock untouched, cost 1 or left out) the key-only function is
    // called: the addon asks Node-API for the key alone and reads the clock itself. Each method
    // calls its own fast functions directly (one call target per call site keeps V8's calls
    // monomorphic).
    const t = this._time()
    if (keyOnly(t, cost)) {
      if (this._checkKey(key) === false) this._checkKeyApi(key)
    } else this._check(key, cost, t)
    return this._decision()
  }

  /** Decides like `check` without taking anything. */
  peek(key, cost) {
    const t = this._time()
    if (keyOnly(t, cost)) {
      if (this._peekKey(key) === false) this._peekKeyApi(key)
    } else this._peek(key, cost, t)
    return this._decision()
  }

  /** Gives `cost` permits (default 1) back to `key`, never above full; returns the state after. */
  refund(key, cost) {
    const t = this._time()
    if (keyOnly(t, cost)) {
      if (this._refundKey(key) === false) this._refundKeyApi(key)
    } else this._refund(key, cost, t)
    return this._decision()
  }

  /** Makes `key` full again. */
  reset(key) {
    this._reset(key)
  }

  /**
   * `check` plus what an HTTP response needs: `{ decision, status, headers, body }`, with the
   * rate-limit headers (and `Retry-After` on denial) as `[name, value]` pairs, status 200 or 429,
   * and the 429 JSON body (null when allowed). `options.cost`, `options.headers` (a header-set
   * selection such as `'legacy,draft-8'`, default the limiter's own) and `options.key`
   * (the partition key shown in draft-8's `pk`, default `key`).
   */
  checkHttp(key, options = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`checkHttp options must be an object, got ${describe(options)}`)
    }
    if (options.headers !== undefined && typeof options.headers !== 'string') {
      throw new TypeError(`headers must be a string, got ${describe(options.headers)}`)
    }
    const sets = options.headers === undefined ? undefined : call(() => new native.NativeHeaders(options.headers))
    const decision = this.check(key, options.cost)
    let flat
    if (sets === undefined) {
      // The limiter's own header sets: its bound `headers` function (no class method call).
      const joined = this._headers(options.key ?? key, Date.now())
      flat = joined === '' ? [] : joined.split('\n')
    } else {
      flat = call(() => this._native.lastHeaders(options.key ?? key, Date.now(), sets))
    }
    const headers = []
    for (let i = 0; i < flat.length; i += 2) headers.push([flat[i], flat[i + 1]])
    return {
      decision,
      status: decision.allowed ? 200 : 429,
      headers,
      body: decision.allowed ? null : native.deniedBody(decision.retryAfter),
    }
  }

  /** Drops keys whose state is fully replenished (it decides like no state); returns how many. */
  reclaim() {
    return call(() => this._native.reclaim(this.now()))
  }

  /** The policy's name, or null. */
  get name() {
    return this._native.name ?? null
  }

  /** The limits, canonical: `"10/second; 1000/day"`. */
  get limits() {
    return this._native.limits
  }

  /** The algorithm's canonical name. */
  get algorithm() {
    return this._native.algorithm
  }

  /** The header sets the limiter renders by default, canonical. */
  get headers() {
    return this._native.headers
  }

  /** Each limit's window in milliseconds. */
  get windowsMs() {
    return this._native.windowsMs
  }

  /** Each limit's permits per window. */
  get quotas() {
    return this._native.quotas
  }

  /** Keys with live state (summed over the limits). */
  get size() {
    return this._native.size
  }
}

/**
 * A parsed configuration: the TOML format and `RATEWALL_*` variables shared by every ratewall
 * binding.
 */
class Config {
  constructor(inner) {
    this._native = inner
  }

  /** Every policy: `{ name, limits, algorithm, headers, failMode }`. */
  get policies() {
    return this._native.policies()
  }

  /** The storage URL (`memory://` unless configured). */
  get storage() {
    return this._native.storage
  }

  /** Namespace of shared-store keys. */
  get keyPrefix() {
    return this._native.keyPrefix
  }

  /** `fail-open`, `fail-closed` or `local` for policy `name`. */
  failMode(name) {
    if (typeof name !== 'string') throw new TypeError(`policy name must be a string, got ${describe(name)}`)
    return this._native.failMode(name)
  }

  /** The configuration in canonical TOML. */
  toToml() {
    return this._native.toToml()
  }

  /** The in-process limiter of policy `name`; `options.now` and `options.clock` as for `Limiter`. */
  limiter(name, options = {}) {
    if (typeof name !== 'string') throw new TypeError(`policy name must be a string, got ${describe(name)}`)
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
    const inner = call(() => this._native.limiter(name))
    return Limiter._wrap(inner, options.now, options.clock)
  }
}

/**
 * Loads a configuration: `source` is a file path, `{ toml: text }`, or omitted (the file named
 * by `RATEWALL_CONFIG`, if any). `RATEWALL_*` variables from `options.env` (default
 * `process.env`; `false` to ignore the environment) apply on top.
 */
function loadConfig(source, options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`)
  const env = options.env === undefined ? process.env : options.env
  if (env !== false && (env === null || typeof env !== 'object')) {
    throw new TypeError(`env must be an object of variables or false, got ${describe(env)}`)
  }
  let inner
  if (source === undefined || source === null) {
    const path = env && env.RATEWALL_CONFIG
    inner = path ? call(() => native.NativeConfig.fromFile(String(path))) : native.NativeConfig.empty()
  } else if (typeof source === 'string') {
    inner = call(() => native.NativeConfig.fromFile(source))
  } else if (typeof source === 'object' && typeof source.toml === 'string') {
    inner = call(() => native.NativeConfig.fromToml(source.toml))
  } else {
    throw new TypeError(`config source must be a file path, { toml: text } or undefined, got ${describe(source)}`)
  }
  if (env) {
    const vars = Object.entries(env)
      .filter(([k, v]) => k.startsWith('RATEWALL_') && typeof v === 'string')
      .map(([k, v]) => [k, v])
    call(() => inner.applyEnv(vars))
  }
  return new Config(inner)
}

/**
 * express-rate-limit's `ipKeyGenerator(ip, ipv6Subnet = 56)`: IPv4 and IPv4-mapped addresses as
 * IPv4, other IPv6 addresses masked to their `/ipv6Subnet` network, `ipv6Subnet: false` to key
 * each IPv6 address on its own. Text that is not an IP address is returned unchanged.
 */
function ipKeyGenerator(ip, ipv6Subnet = 56) {
  if (typeof ip !== 'string') throw new TypeError(`ip must be a string, got ${describe(ip)}`)
  if (ipv6Subnet !== false) {
    if (typeof ipv6Subnet !== 'number') throw new TypeError(`ipv6Subnet must be a number or false, got ${describe(ipv6Subnet)}`)
    if (!Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128) {
      throw new RangeError(`ipv6Subnet must be a whole number from 1 to 128 (56 is the default, 64 keys one LAN), got ${ipv6Subnet}`)
    }
  }
  return call(() => native.ipKey(ip, ipv6Subnet === false ? undefined : ipv6Subnet))
}

/** Express's `trust proxy` setting as the text form the core parses; null when it is a function. */
function trustProxyText(setting) {
  if (setting === undefined || setting === null || setting === false) return 'false'
  if (setting === true) return 'true'
  if (typeof setting === 'number') return String(setting)
  if (typeof setting === 'string') return setting
  if (Array.isArray(setting)) return setting.join(',')
  return null
}

/**
 * The client IP behind proxies, for frameworks without Express's `req.ip`: `peer` is the socket
 * address, `xForwardedFor` the header's value, `trust` Express's `trust proxy` setting (false,
 * true, a hop count, or addresses/CIDR networks/`loopback`/`linklocal`/`uniquelocal`).
 */
function clientIp(peer, xForwardedFor, trust = false) {
  if (typeof peer !== 'string') throw new TypeError(`peer must be a string, got ${describe(peer)}`)
  if (xForwardedFor !== undefined && xForwardedFor !== null && typeof xForwardedFor !== 'string') {
    throw new TypeError(`xForwardedFor must be a string, got ${describe(xForwardedFor)}`)
  }
  const text = trustProxyText(trust)
  if (text === null) throw new TypeError('trust must be false, true, a hop count, or addresses/networks (a string or an array)')
  return call(() => native.trustProxyClientIp(peer, xForwardedFor ?? undefined, text))
}

/**
 * The trust-proxy misconfiguration a request reveals, if any: `{ code, message }` with code
 * `unexpected_x_forwarded_for` (forwarding headers arrive but trust proxy is off) or
 * `permissive_trust_proxy` (trust proxy is `true`), or null.
 */
function trustProxyWarning(trust, forwardedHeaderPresent) {
  const text = trustProxyText(trust)
  if (text === null) return null
  return call(() => native.trustProxyWarning(text, Boolean(forwardedHeaderPresent))) ?? null
}

/** The 429 body for a wait of `retryAfterMs`: `{"error":"rate_limited","retryAfter":N}`. */
function deniedBody(retryAfterMs) {
  if (typeof retryAfterMs !== 'number') throw new TypeError(`retryAfter must be a number of milliseconds, got ${describe(retryAfterMs)}`)
  return call(() => native.deniedBody(retryAfterMs))
}

/**
 * The in-process store: the default `store` of the Express middleware. It implements the
 * `RatewallStore` interface (index.d.ts) synchronously; `RedisStore` (ratewall/redis)
 * implements the same interface asynchronously.
 */
class MemoryStore {
  constructor() {
    /** Keys live in this process only. */
    this.localKeys = true
  }

  /** Decides and takes `cost` permits for `key` under `limiter`'s policy. */
  check(key, cost, limiter) {
    return limiter.check(key, cost)
  }

  /** Gives `cost` permits back. */
  refund(key, cost, limiter) {
    return limiter.refund(key, cost)
  }

  /** Decides without taking. */
  peek(key, cost, limiter) {
    return limiter.peek(key, cost)
  }

  /** Makes `key` full again. */
  reset(key, limiter) {
    limiter.reset(key)
  }
}

const { fetchWithRetry, RetryBudgetError } = require('./fetch.js')

module.exports = {
  Limiter,
  Decision,
  Config,
  MemoryStore,
  loadConfig,
  ipKeyGenerator,
  clientIp,
  trustProxyWarning,
  deniedBody,
  fetchWithRetry,
  RetryBudgetError,
  DENIED_STATUS: 429,
  DENIED_CONTENT_TYPE: 'application/json',
  /** @internal */
  _native: native,
  /** @internal */
  _trustProxyText: trustProxyText,
}
