// ESM entry of ratewall/fetch: the same objects as fetch.js.
import fetchModule from './fetch.js'

export const { fetchWithRetry, RetryBudgetError, parseRetryAfter } = fetchModule
export default fetchWithRetry
