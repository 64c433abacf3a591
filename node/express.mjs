// ESM entry of ratewall/express: the same objects as express.js.
import rateLimit from './express.js'

export const { ipKeyGenerator, MemoryStore, ValidationError } = rateLimit
export { rateLimit }
export default rateLimit
