// Types of ratewall/redis: limiters whose state lives in Redis (shared by every instance of an
// app, and by C and Python processes on the same Redis). Every call returns a Promise.
import type { Config, Decision, Limiter, RatewallStore, Algorithm } from './index'

/** Who decides while Redis cannot answer (down, or slower than `commandTimeout`). */
export type FailMode = 'fail-open' | 'fail-closed' | 'local'

export declare const FAIL_MODES: readonly FailMode[]

/** A failure or a change of connection state, for logs and metrics. */
export interface RedisStoreEvent {
  /** `error`: a request was decided by its fail mode; `down`: the connection was lost; `up`: (re)connected. */
  kind: 'error' | 'down' | 'up'
  /** What failed (for `error` and `down`). */
  error: string | null
  /** The policy whose request failed (for `error`). */
  policy: string | null
  /** How that request was decided (for `error`). */
  failMode: FailMode | null
}

export interface RedisStoreOptions {
  /** The longest a decision waits for Redis before the fail mode decides, ms. Default 50. */
  commandTimeout?: number
  /** The longest one connection attempt may take, ms. Default 500. */
  connectTimeout?: number
  /** Longest pause between reconnection attempts, ms. Default 1000. */
  reconnectMaxDelay?: number
  /** Namespace of every key. Default `ratewall`. */
  keyPrefix?: string
  /** Secret of the keyed hash of client keys; the same in the whole fleet. Default `RATEWALL_KEY_SECRET`, else a public default. */
  keySecret?: string
  /** In `local` fail mode, the fraction of each limit the in-process fallback admits, in (0, 1] (1/N for N instances). Default 1. */
  localFraction?: number
  /** `retryAfter` of a fail-closed denial, ms. Default 1000. */
  failClosedRetryAfter?: number
  /** A PEM file of the certificate authorities a `rediss://` server must chain to, instead of the system's roots (`rediss://` only). Default none (a configuration: its `tls_ca_file`). */
  tlsCaFile?: string
  /** A PEM file of the client certificate presented to a `rediss://` server that asks clients for one (Redis's `tls-auth-clients`, on by default when it serves TLS). With `tlsKeyFile`: both or neither. Default none (a configuration: its `tls_cert_file`). */
  tlsCertFile?: string
  /** A PEM file of `tlsCertFile`'s private key. Default none (a configuration: its `tls_key_file`). */
  tlsKeyFile?: string
  /** Default fail mode of the limiters built on this store. Default `fail-open`. */
  failMode?: FailMode
  /** Sees every failure and connection change (on the event loop; errors it throws are caught). */
  onEvent?: (event: RedisStoreEvent) => void
}

/** Counters since the store was built. */
export interface RedisHealth {
  state: 'up' | 'down'
  redisDecisions: number
  errors: number
  timeouts: number
  failOpen: number
  failClosed: number
  local: number
  disconnects: number
  reconnects: number
  lastError: string | null
}

/** A decision made through a store, and who made it. */
export declare class RedisDecision extends Decision {
  /** `redis`, `memory` (memory:// configuration), or the fail mode that decided while Redis could not. */
  readonly source: 'redis' | 'memory' | FailMode
  /** Whether a fail mode decided instead of the store. */
  readonly fallback: boolean
}

export interface RedisLimiterSpec {
  /** A rate string: `"10/second"`, `"100/day; 10/hour"`. */
  limits: string
  /** Part of every Redis key: instances that share a quota use the same name and limits. Default `ratewall`. */
  name?: string
  /** Default `token-bucket`. */
  algorithm?: Algorithm | string
  /** Token-bucket capacity when it differs from the limit. */
  burst?: number
  /** Default: the store's `failMode`. */
  failMode?: FailMode
}

/**
 * A connection to Redis shared by its limiters. The constructor never blocks and never fails for
 * an unreachable server (decisions follow the fail mode until Redis answers); `RedisStore.connect`
 * waits for the first connection. Also a ratewall store for `ratewall/express`.
 */
export declare class RedisStore implements RatewallStore {
  constructor(url: string, options?: RedisStoreOptions)
  /** Connects now; rejects with an Error that says what to do when Redis cannot be reached. */
  static connect(url: string, options?: RedisStoreOptions): Promise<RedisStore>
  /** Every policy of a configuration (storage, fail_mode, key_prefix from it). */
  static fromConfig(config: Config | string | { toml: string }, options?: Omit<RedisStoreOptions, 'keyPrefix' | 'failMode'>): RedisStore
  /** Waits for the first connection attempt; resolves if Redis is up, else rejects with an Error that says what to do. */
  ready(): Promise<void>
  readonly state: 'up' | 'down' | 'memory'
  readonly url: string
  readonly failMode: FailMode
  readonly localKeys: boolean
  /** The configuration's policy names (`fromConfig`). */
  readonly policies: string[]
  health(): RedisHealth | null
  limiter(spec: RedisLimiterSpec | string): RedisLimiter
  /** Policy `name` of the configuration (`fromConfig`). */
  policy(name: string): RedisLimiter
  check(key: string, cost: number, limiter: Limiter): Promise<RedisDecision>
  peek(key: string, cost: number, limiter: Limiter): Promise<RedisDecision>
  refund(key: string, cost: number, limiter: Limiter): Promise<RedisDecision>
  reset(key: string, limiter: Limiter): Promise<void>
}

export interface RedisLimiterOptions extends RedisLimiterSpec, Omit<RedisStoreOptions, 'failMode'> {
  /** A URL (`redis://host:port/db`, `rediss://`, `redis+unix:///path`, `redis+cluster://h:p,h:p`, `rediss+cluster://`): the limiter opens its own store. */
  storage?: string
  /** Or an existing store to share. */
  store?: RedisStore
}

/** One policy enforced through Redis. */
export declare class RedisLimiter {
  constructor(options: RedisLimiterOptions)
  check(key: string, cost?: number): Promise<RedisDecision>
  peek(key: string, cost?: number): Promise<RedisDecision>
  refund(key: string, cost?: number): Promise<RedisDecision>
  /** An administrative call: rejects when Redis cannot be reached. */
  reset(key: string): Promise<void>
  /** The Redis keys of `key`, one per limit. */
  redisKeys(key: string): string[]
  health(): RedisHealth | null
  readonly store: RedisStore
  readonly name: string
  readonly limits: string
  readonly algorithm: string
  readonly failMode: FailMode
  readonly storage: 'redis' | 'memory'
  readonly windowsMs: number[]
  readonly quotas: number[]
}

declare const redis: {
  RedisStore: typeof RedisStore
  RedisLimiter: typeof RedisLimiter
  RedisDecision: typeof RedisDecision
  FAIL_MODES: readonly FailMode[]
}
export default redis
