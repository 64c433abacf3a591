// Types of ratewall/express: express-rate-limit v8's options plus ratewall's.
import type { Request, Response, NextFunction, RequestHandler } from 'express'
import type { Limiter, RatewallStore, MemoryStore, Algorithm } from './index'

type Awaitable<T> = T | Promise<T>
type ValueOrFn<T> = T | ((req: Request, res: Response) => Awaitable<T>)

/** An express-rate-limit store (`increment`/`decrement`/`resetKey`), accepted as is. */
export interface LegacyStore {
  increment(key: string): Awaitable<{ totalHits: number; resetTime: Date | undefined }>
  decrement(key: string): Awaitable<void>
  resetKey(key: string): Awaitable<void>
  get?(key: string): Awaitable<{ totalHits: number; resetTime: Date | undefined } | undefined>
  init?(options: object): void | Promise<void>
}

export interface Options {
  windowMs?: number
  limit?: ValueOrFn<number>
  /** Alias of `limit`. */
  max?: ValueOrFn<number>
  /** Sent on denial instead of ratewall's JSON body. */
  message?: any
  statusCode?: number
  handler?: (req: Request, res: Response, next: NextFunction, options: Options) => unknown
  legacyHeaders?: boolean
  /** Alias of `legacyHeaders`. */
  headers?: boolean
  /** `true` = `draft-6`; `ietf` is the current IETF form (ratewall). */
  standardHeaders?: boolean | 'draft-6' | 'draft-7' | 'draft-8' | 'ietf'
  identifier?: ValueOrFn<string>
  retryAfter?: ValueOrFn<number>
  requestPropertyName?: string
  skipFailedRequests?: boolean
  skipSuccessfulRequests?: boolean
  requestWasSuccessful?: (req: Request, res: Response) => Awaitable<boolean>
  keyGenerator?: (req: Request, res: Response) => Awaitable<string>
  ipv6Subnet?: number | false | ((req: Request, res: Response) => Awaitable<number | false>)
  skip?: (req: Request, res: Response) => Awaitable<boolean>
  validate?: boolean | Record<string, boolean>
  passOnStoreError?: boolean
  logger?: { error: (...args: any[]) => void; warn: (...args: any[]) => void }
  /** A ratewall store (default: the in-process MemoryStore; `RedisStore` from ratewall/redis) or an express-rate-limit store. */
  store?: RatewallStore | LegacyStore
  /** ratewall: a storage URL instead of `store`: `redis://host:port/db` (a RedisStore) or `memory://`. */
  storage?: string
  /** ratewall, with `storage`: who decides while Redis cannot answer. Default `fail-closed`, or `fail-open` with `passOnStoreError: true`. */
  failMode?: 'fail-open' | 'fail-closed' | 'local'
  /** ratewall: the algorithm for windowMs/limit (default `fixed-window`, express-rate-limit's). */
  algorithm?: Algorithm | string
  /** ratewall: a rate string (`"10/second; 1000/day"`) or a Limiter (e.g. from loadConfig), instead of windowMs/limit. */
  policy?: string | Limiter
  /** ratewall: permits per request (weighted requests). Default 1. */
  cost?: ValueOrFn<number>
  burst?: number
  maxKeys?: number
  overflow?: 'evict' | 'deny-new-keys'
  /** ratewall: the clock in ms (default performance.now()). */
  now?: () => number
  /** ratewall: `'coarse'` reads the kernel's tick clock (up to 1-4 ms behind, cheaper); default `'precise'`. In-process limits only. */
  clock?: 'precise' | 'coarse'
}

/**
 * `req.rateLimit` (or `req[requestPropertyName]`). `limit`, `used`, `remaining` and `key` are own
 * fields; `resetTime` and `current` are getters (`resetTime` builds its `Date` at the first read),
 * so `Object.keys` and spreading list the four fields and `toJSON()` all five (MIGRATION.md, 18).
 */
export interface RateLimitInfo {
  limit: number
  used: number
  remaining: number
  resetTime: Date
  key: string
  /** The older name of `used`. */
  readonly current: number
  /** The five fields in express-rate-limit's order, `resetTime` included. */
  toJSON(): { limit: number; used: number; remaining: number; resetTime: Date; key: string }
}

export interface RateLimitRequestHandler extends RequestHandler {
  resetKey(key: string): Promise<void>
  getKey(key: string): Promise<{ totalHits: number; resetTime: Date | undefined } | undefined>
}

declare global {
  namespace Express {
    interface Request {
      rateLimit?: RateLimitInfo
    }
  }
}

export declare class ValidationError extends Error {
  readonly code: string
}

export declare function rateLimit(options?: Options): RateLimitRequestHandler
export { ipKeyGenerator, MemoryStore } from './index'
export default rateLimit
