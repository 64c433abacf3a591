// ESM entry of ratewall/redis: the same objects as redis.js.
import redis from './redis.js'

export const { RedisStore, RedisLimiter, RedisDecision, FAIL_MODES } = redis
export default redis
