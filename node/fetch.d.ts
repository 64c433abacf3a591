// Types of ratewall/fetch.

export interface RetryOptions {
  /** Requests at most, the first included. Default 4. */
  maxAttempts?: number
  /** Milliseconds of waiting at most, over all retries. Default 60 000. */
  maxTotalWait?: number
  /** First backoff step (ms) when there is no Retry-After. Default 500. */
  baseDelay?: number
  /** Largest backoff step (ms). Default 30 000. */
  maxDelay?: number
  /** Backoff growth. Default 2. */
  factor?: number
  /** Statuses to retry. Default [429]. */
  statuses?: number[]
  /** The fetch to use. Default globalThis.fetch. */
  fetch?: typeof fetch
  /** Waits `ms`, rejecting when `signal` aborts (inject for tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** [0, 1) for jitter. Default Math.random. */
  random?: () => number
  /** Wall clock in epoch ms, for HTTP-date Retry-After. Default Date.now. */
  now?: () => number
  /** Called before each wait. */
  onRetry?: (info: { attempt: number; wait: number; response: Response; retryAfter: number | null }) => void
}

/** The retry budget is spent; `response` is the last (unread) response. */
export declare class RetryBudgetError extends Error {
  readonly response: Response
  readonly attempts: number
  readonly waited: number
  readonly nextWait: number
}

/** fetch that waits out 429s: Retry-After (seconds or HTTP-date), else exponential backoff with full jitter; capped; abortable. */
export declare function fetchWithRetry(url: string | URL | Request, init?: RequestInit, options?: RetryOptions): Promise<Response>
/** Retry-After in ms from `nowMs`, or null. */
export declare function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null
export default fetchWithRetry
