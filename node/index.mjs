// ESM entry of ratewall: the same objects as the CommonJS entry (index.js).
import ratewall from './index.js'

export const {
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
  DENIED_STATUS,
  DENIED_CONTENT_TYPE,
} = ratewall
export default ratewall
