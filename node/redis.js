'use strict'
// ratewall/redis: limiters whose state lives in Redis, so every instance of an app (and every C
// and Python process on the same Redis, key prefix and key secret) shares one quota. Every call
// returns a Promise: the addon talks to Redis on its own I/O thread and the event loop never
// waits (see src/redis.rs). Types: redis.d.ts.

const { native, call } = require('./native.js')
const { Decision, Config, loadConfig } = require('./index.js')

const FAIL_MODES = ['fail-open', 'fail-closed', 'local']
const STORE_OPTIONS = new Set([
  'commandTimeout', 'connectTimeout', 'reconnectMaxDelay', 'keyPrefix', 'keySecret', 'localFraction',
  'failClosedRetryAfter', 'failMode', 'onEvent', 'tlsCaFile', 'tlsCertFile', 'tlsKeyFile',
])
const LIMITER_OPTIONS = new Set(['limits', 'name', 'algorithm', 'burst', 'failMode', 'storage', 'store'])

/** The largest cost: Number.MAX_SAFE_INTEGER. */
const MAX_COST = Number.MAX_SAFE_INTEGER

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

// --- events ---------------------------------------------------------------------------------

/** Store id -> the user's onEvent callback. Entries go when their store is collected. */
const listeners = new Map()
const forget = new FinalizationRegistry((id) => listeners.delete(id))

/** Receives every store's events from the addon (on the event loop, never inside a call). */
function sink(event) {
  const entry = listeners.get(event.store)
  if (entry === undefined) return
  const e = { kind: event.kind, error: event.error ?? null, policy: event.policy ?? null, failMode: event.failMode ?? null }
  try {
    entry.onEvent(e)
  } catch (err) {
    // A faulty callback must not break the store or crash the process: report it once.
    if (!entry.warned) {
      entry.warned = true
      process.emitWarning(`ratewall: the Redis onEvent callback threw (${err && err.message}); later errors from it are ignored silently`, 'RatewallWarning')
    }
  }
}
/** Each pending call's resolve and reject, by the slot the addon gave it (see `settle`). */
const resolvers = []
const rejecters = []
/** Where the addon writes finished calls for `settle` (src/redis.rs `Batch`). */
const RESULTS = new Float64Array(4096)

/**
 * Finished calls, from the addon (on the event loop, never inside a call): `count` records
 * `[slot, n, n numbers]` in RESULTS (`n` = 0 for a reset, else the numbers `decisionAt` reads),
 * or, with `count` 0, the rejection of `slot` with `error`.
 */
function settle(count, slot, error) {
  if (count === 0) {
    const reject = rejecters[slot]
    resolvers[slot] = rejecters[slot] = undefined
    reject(error)
    return
  }
  let at = 0
  for (let i = 0; i < count; i++) {
    const s = RESULTS[at]
    const n = RESULTS[at + 1]
    const resolve = resolvers[s]
    resolvers[s] = rejecters[s] = undefined
    resolve(n === 0 ? undefined : decisionAt(RESULTS, at + 2, n))
    at += 2 + n
  }
}
native.redisInit(sink, settle, RESULTS)

/** Whether a `release` is queued: the requests of one turn are sent together, once it ends. */
let releasing = false
function release() {
  releasing = false
  native.redisRelease()
}

/** Who decided, by the code the addon sends (src/redis.rs `SOURCES`, same order). */
const SOURCES = ['redis', 'memory', 'fail-open', 'fail-closed', 'local', 'fallback']

/** A decision made through a Redis store, with who made it. */
class RedisDecision extends Decision {
  constructor(allowed, limit, remaining, retryAfter, resetAfter, each, mostRestrictive, source) {
    super(allowed, limit, remaining, retryAfter, resetAfter, each, mostRestrictive)
    /** `redis`, `memory`, or the fail mode that decided while Redis could not: `fail-open`, `fail-closed`, `local`. */
    this.source = source
  }

  /** Whether a fail mode decided instead of the store. */
  get fallback() {
    return this.source !== 'redis' && this.source !== 'memory'
  }

  toJSON() {
    return { ...super.toJSON(), source: this.source }
  }
}

/**
 * The decision in the addon's numbers `n[at]`..`n[at + len - 1]` (see `outcome_into` in
 * src/redis.rs): allowed, limit, remaining, retryAfter, resetAfter, mostRestrictive, source code,
 * then 5 per limit when there are several.
 */
function decisionAt(n, at, len) {
  let each = null
  if (len > 7) {
    each = []
    for (let i = at + 7; i < at + len; i++) each.push(n[i])
  }
  return new RedisDecision(n[at] === 1, n[at + 1], n[at + 2], n[at + 3], n[at + 4], each, n[at + 5], SOURCES[n[at + 6]])
}

/** A rejected promise with `fn`'s synchronous error, as the JavaScript error class it stands for. */
function rejected(e) {
  try {
    call(() => {
      throw e
    })
  } catch (converted) {
    return Promise.reject(converted)
  }
  return Promise.reject(e)
}

function checkKey(key) {
  if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${describe(key)}`)
}

function checkCost(cost) {
  if (cost === undefined) return
  if (typeof cost !== 'number') throw new TypeError(`cost must be a number, got ${describe(cost)}`)
  if (!Number.isSafeInteger(cost) || cost < 1 || cost > MAX_COST) throw new RangeError(`cost must be a whole number of at least 1, got ${cost}`)
}

// --- store ------------------------------------------------------------------------------------

function millisOption(options, name) {
  const v = options[name]
  if (v === undefined) return undefined
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number of milliseconds, got ${describe(v)}`)
  return v
}

function failModeOption(v, name = 'failMode') {
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw new TypeError(`${name} must be 'fail-open', 'fail-closed' or 'local', got ${describe(v)}`)
  if (!FAIL_MODES.includes(v)) throw new RangeError(`${name} must be 'fail-open', 'fail-closed' or 'local', got ${JSON.stringify(v)}`)
  return v
}

/** The addon's RedisSpec from the user's options; validates their types. */
function storeSpec(options) {
  if (options === null || typeof options !== 'object') throw new TypeError(`Redis store options must be an object, got ${describe(options)}`)
  for (const k of Object.keys(options)) {
    if (!STORE_OPTIONS.has(k)) throw new TypeError(`unknown Redis store option ${JSON.stringify(k)}: use ${[...STORE_OPTIONS].join(', ')}`)
  }
  for (const name of ['keyPrefix', 'keySecret', 'tlsCaFile', 'tlsCertFile', 'tlsKeyFile']) {
    if (options[name] !== undefined && typeof options[name] !== 'string') throw new TypeError(`${name} must be a string, got ${describe(options[name])}`)
  }
  if (options.localFraction !== undefined && typeof options.localFraction !== 'number') {
    throw new TypeError(`localFraction must be a number in (0, 1], got ${describe(options.localFraction)}`)
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new TypeError(`onEvent must be a function (event) => void, got ${describe(options.onEvent)}`)
  }
  failModeOption(options.failMode)
  return {
    commandTimeoutMs: millisOption(options, 'commandTimeout'),
    connectTimeoutMs: millisOption(options, 'connectTimeout'),
    reconnectMaxDelayMs: millisOption(options, 'reconnectMaxDelay'),
    failClosedRetryAfterMs: millisOption(options, 'failClosedRetryAfter'),
    keyPrefix: options.keyPrefix,
    keySecret: options.keySecret,
    localFraction: options.localFraction,
    tlsCaFile: options.tlsCaFile,
    tlsCertFile: options.tlsCertFile,
    tlsKeyFile: options.tlsKeyFile,
    events: options.onEvent !== undefined,
  }
}

/** Milliseconds between two looks at the connection state while waiting for it. */
const READY_POLL_MS = 2

/**
 * A connection to Redis, shared by every limiter built on it (one multiplexed connection, every
 * request one round trip). Construction never blocks and never fails for an unreachable server:
 * it connects in the background and reconnects after a loss; until Redis answers, decisions
 * follow each limiter's fail mode. `await RedisStore.connect(url)` instead waits for the first
 * connection and fails when it cannot be made.
 *
 * It is also a ratewall store for `ratewall/express` (`rateLimit({ store })`).
 */
class RedisStore {
  constructor(url, options = {}) {
    if (typeof url !== 'string') {
      throw new TypeError(`the storage URL must be a string such as 'redis://127.0.0.1:6379', got ${describe(url)}`)
    }
    const spec = storeSpec(options)
    this._init(call(() => native.NativeRedisStore.open(url, spec)), options)
  }

  /** @internal */
  _init(inner, options) {
    this._native = inner
    this._failMode = options.failMode ?? 'fail-open'
    this._connectTimeout = options.connectTimeout ?? 500
    /** Keys are shared with every process on the same Redis (express-rate-limit's store flag). */
    this.localKeys = inner.state === 'memory'
    /** express `Limiter` -> the Redis limiter of the same policy (see `check`). */
    this._byLimiter = new WeakMap()
    if (options.onEvent !== undefined) {
      listeners.set(inner.id, { onEvent: options.onEvent, warned: false })
      forget.register(this, inner.id)
    }
    // Calls made before the first connection attempt finished wait for it (bounded by the
    // connect timeout), so an app that starts with Redis up never sees the fail mode decide.
    this._starting = null
    if (inner.state === 'down') {
      const starting = this._waitFirstAttempt()
      this._starting = starting
      // Cleared on a later turn, never inside the constructor: an attempt that failed before
      // the first look must not leave a settled promise in place for ever.
      starting.then(() => {
        if (this._starting === starting) this._starting = null
      })
    }
  }

  /**
   * Every policy of a configuration (a `Config` from `loadConfig`, a TOML file path, or
   * `{ toml }`) on the store its `storage` names (`memory://` gives in-process limiters), with
   * each policy's `fail_mode` and the configuration's `key_prefix`. `options` as for the
   * constructor (without `keyPrefix` and `failMode`, which come from the configuration).
   */
  static fromConfig(config, options = {}) {
    if (typeof config === 'string' || (config !== null && typeof config === 'object' && typeof config.toml === 'string')) {
      config = loadConfig(config)
    }
    if (!(config instanceof Config)) {
      throw new TypeError(`config must be a Config (from loadConfig), a file path or { toml }, got ${describe(config)}`)
    }
    if (options !== null && typeof options === 'object' && (options.keyPrefix !== undefined || options.failMode !== undefined)) {
      throw new TypeError('keyPrefix and failMode come from the configuration (key_prefix, fail_mode): set them there')
    }
    const spec = storeSpec(options)
    const store = Object.create(RedisStore.prototype)
    store._init(call(() => native.NativeRedisStore.fromConfig(config.toToml(), spec)), options)
    return store
  }

  /** A store on `url` once its first connection is made; rejects with an Error that says why not. */
  static async connect(url, options = {}) {
    const store = new RedisStore(url, options)
    await store.ready()
    return store
  }

  /** @internal Resolves when the first connection attempt has succeeded or failed. */
  _waitFirstAttempt() {
    const deadline = Date.now() + this._connectTimeout + 250
    return new Promise((resolve) => {
      const look = () => {
        const n = this._native
        if (n.state !== 'down' || Date.now() >= deadline || n.health().lastError != null) {
          resolve()
        } else {
          setTimeout(look, READY_POLL_MS)
        }
      }
      look()
    })
  }

  /**
   * Waits for the first connection attempt, then resolves if Redis is up and rejects with an
   * Error saying what to do if it is not (the store keeps reconnecting in the background either
   * way, and its limiters keep deciding by their fail mode).
   */
  async ready() {
    if (this._starting !== null) await this._starting
    const n = this._native
    if (n.state === 'down') {
      const why = n.health().lastError ?? `no answer within ${this._connectTimeout} ms`
      throw new Error(
        `ratewall: cannot connect to Redis at ${n.url}: ${why}. Start redis-server there or fix the storage URL; ` +
          'to start while Redis is down, use new RedisStore(url) without awaiting ready() (decisions follow failMode until it answers).',
      )
    }
  }

  /** `up`, `down`, or `memory` (a configuration whose storage is memory://). */
  get state() {
    return this._native.state
  }

  /** The storage URL, password redacted. */
  get url() {
    return this._native.url
  }

  /** The default fail mode of limiters built with `limiter()`. */
  get failMode() {
    return this._failMode
  }

  /**
   * Counters since the store was built: `{ state, redisDecisions, errors, timeouts, failOpen,
   * failClosed, local, disconnects, reconnects, lastError }`; null for memory:// storage.
   */
  health() {
    const h = this._native.health()
    if (h == null) return null
    h.lastError = h.lastError ?? null
    return h
  }

  /** A Redis-backed limiter of a rate string or `{ limits, name, algorithm, burst, failMode }`. */
  limiter(options) {
    if (typeof options === 'string') options = { limits: options }
    return RedisLimiter._build(this, options)
  }

  /** Policy `name` of the configuration this store was built from (`fromConfig`). */
  policy(name) {
    if (typeof name !== 'string') throw new TypeError(`policy name must be a string, got ${describe(name)}`)
    return new RedisLimiter(PRIVATE, this, call(() => this._native.policy(name)))
  }

  /** The configuration's policy names (`fromConfig`); empty for a store built from a URL. */
  get policies() {
    return this._native.policyNames()
  }

  // --- the ratewall store interface (ratewall/express) ----------------------------------------

  /** @internal The Redis limiter enforcing the policy of an in-process `Limiter`. */
  _for(limiter) {
    let r = this._byLimiter.get(limiter)
    if (r === undefined) {
      const algorithm = limiter.algorithm
      // The burst of a single-limit token bucket is what its decisions report as `limit`;
      // a peek on a key nobody uses reads it without creating state.
      const burst = algorithm === 'token-bucket' && limiter.quotas.length === 1 ? limiter.peek('\u0000ratewall:burst', 1).limit : undefined
      r = this.limiter({ limits: limiter.limits, name: limiter.name ?? undefined, algorithm, burst: burst === limiter.quotas[0] ? undefined : burst })
      this._byLimiter.set(limiter, r)
    }
    return r
  }

  /** Decides and takes `cost` permits for `key` under `limiter`'s policy, in Redis. */
  check(key, cost, limiter) {
    return this._for(limiter).check(key, cost)
  }

  /** Decides without taking. */
  peek(key, cost, limiter) {
    return this._for(limiter).peek(key, cost)
  }

  /** Gives `cost` permits back. */
  refund(key, cost, limiter) {
    return this._for(limiter).refund(key, cost)
  }

  /** Makes `key` full again. */
  reset(key, limiter) {
    return this._for(limiter).reset(key)
  }
}

const PRIVATE = Symbol('ratewall.redis.private')

/**
 * One policy enforced through Redis. `new RedisLimiter({ limits, storage: 'redis://…' })` opens
 * a store of its own; `{ limits, store }` shares an existing `RedisStore`. Every call returns a
 * Promise of a `RedisDecision` (`source` says who decided).
 */
class RedisLimiter {
  constructor(options, store, inner) {
    if (options === PRIVATE) {
      this._store = store
      this._native = inner
      return
    }
    if (typeof options === 'string') {
      throw new TypeError("RedisLimiter needs a storage URL or a store: new RedisLimiter({ limits, storage: 'redis://127.0.0.1:6379' })")
    }
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`RedisLimiter options must be an object, got ${describe(options)}`)
    }
    const own = {}
    const storeOptions = {}
    for (const [k, v] of Object.entries(options)) {
      if (LIMITER_OPTIONS.has(k)) own[k] = v
      else if (STORE_OPTIONS.has(k) && k !== 'failMode') storeOptions[k] = v
      else throw new TypeError(`unknown RedisLimiter option ${JSON.stringify(k)}: use ${[...LIMITER_OPTIONS, ...STORE_OPTIONS].join(', ')}`)
    }
    let s = own.store
    if (s !== undefined && own.storage !== undefined) throw new TypeError('give storage (a URL) or store (a RedisStore), not both')
    if (s === undefined) {
      if (own.storage === undefined) throw new TypeError("RedisLimiter needs storage: 'redis://host:port' or store: a RedisStore")
      s = new RedisStore(own.storage, storeOptions)
    } else {
      if (!(s instanceof RedisStore)) throw new TypeError(`store must be a RedisStore, got ${describe(s)}`)
      if (Object.keys(storeOptions).length > 0) throw new TypeError(`${Object.keys(storeOptions).join(', ')} belong to the store: pass them to new RedisStore()`)
    }
    const built = RedisLimiter._build(s, own)
    this._store = built._store
    this._native = built._native
  }

  /** @internal */
  static _build(store, options) {
    if (options === null || typeof options !== 'object') throw new TypeError(`limiter options must be an object or a rate string, got ${describe(options)}`)
    if (typeof options.limits !== 'string') {
      throw new TypeError(`limits must be a rate string such as "10/second; 1000/day", got ${describe(options.limits)}`)
    }
    for (const name of ['name', 'algorithm']) {
      if (options[name] !== undefined && typeof options[name] !== 'string') throw new TypeError(`${name} must be a string, got ${describe(options[name])}`)
    }
    if (options.burst !== undefined && typeof options.burst !== 'number') throw new TypeError(`burst must be a number, got ${describe(options.burst)}`)
    const failMode = failModeOption(options.failMode) ?? store._failMode
    const spec = { limits: options.limits, name: options.name, algorithm: options.algorithm, burst: options.burst, failMode }
    return new RedisLimiter(PRIVATE, store, call(() => store._native.limiter(spec)))
  }

  /** @internal Runs `op` once the store's first connection attempt is over. */
  _run(op, key, cost) {
    try {
      checkKey(key)
      checkCost(cost)
    } catch (e) {
      return Promise.reject(e)
    }
    const starting = this._store._starting
    return starting === null ? this._send(op, key, cost) : starting.then(() => this._send(op, key, cost))
  }

  /** @internal Sends `op` to the addon (arguments already checked). */
  _send(op, key, cost) {
    // The addon holds the request until `release` (see src/redis.rs `redis_release`).
    if (!releasing) {
      releasing = true
      queueMicrotask(release)
    }
    let r
    try {
      r = op === 0 ? this._native.check(key, cost) : op === 1 ? this._native.peek(key, cost) : op === 2 ? this._native.refund(key, cost) : this._native.reset(key)
    } catch (e) {
      return rejected(e)
    }
    // A slot: the answer comes through `settle`. Numbers: done at once (a fail mode, memory://).
    if (typeof r === 'number') {
      return new Promise((resolve, reject) => {
        resolvers[r] = resolve
        rejecters[r] = reject
      })
    }
    return Promise.resolve(op === 3 ? undefined : decisionAt(r, 0, r.length))
  }

  /** Decides a request of `cost` permits (default 1) by `key` and, if admitted, takes them. */
  check(key, cost) {
    return this._run(0, key, cost)
  }

  /** Decides like `check` without taking anything. */
  peek(key, cost) {
    return this._run(1, key, cost)
  }

  /** Gives `cost` permits (default 1) back to `key`, never above full; resolves to the state after. */
  refund(key, cost) {
    return this._run(2, key, cost)
  }

  /** Makes `key` full again. An administrative call: rejects when Redis cannot be reached. */
  reset(key) {
    return this._run(3, key, undefined)
  }

  /** The Redis keys holding `key`'s state, one per limit (diagnostics; empty for memory://). */
  redisKeys(key) {
    checkKey(key)
    return this._native.redisKeys(key)
  }

  /** The store this limiter talks through. */
  get store() {
    return this._store
  }

  /** Counters of the store (see `RedisStore#health`). */
  health() {
    return this._store.health()
  }

  /** The policy's name (part of every Redis key). */
  get name() {
    return this._native.name
  }

  /** The limits, canonical: `"10/second; 1000/day"`. */
  get limits() {
    return this._native.limits
  }

  /** The algorithm's canonical name. */
  get algorithm() {
    return this._native.algorithm
  }

  /** `fail-open`, `fail-closed` or `local`. */
  get failMode() {
    return this._native.failMode
  }

  /** `redis`, or `memory` for a configuration whose storage is memory://. */
  get storage() {
    return this._native.storage
  }

  /** Each limit's window in milliseconds. */
  get windowsMs() {
    return this._native.windowsMs
  }

  /** Each limit's permits per window. */
  get quotas() {
    return this._native.quotas
  }
}

module.exports = { RedisStore, RedisLimiter, RedisDecision, FAIL_MODES }
