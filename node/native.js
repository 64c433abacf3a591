'use strict'
// Loads the native addon and turns its errors into TypeError / RangeError.
const path = require('node:path')

let native
try {
  native = require('./ratewall.node')
} catch (e) {
  const err = new Error(
    `ratewall: the native addon could not be loaded from ${path.join(__dirname, 'ratewall.node')} ` +
      `(${e.message}). It is built from source when the package is installed; build it again with ` +
      '`npm run build` in ' + __dirname + ' (needs Rust\'s cargo).',
  )
  err.cause = e
  throw err
}

/** Node's own `performance` object and its class's `now`, whatever fake timers did to them. */
const PERF = require('node:perf_hooks').performance
const PERF_NOW = Object.getPrototypeOf(PERF).now

// Pin the addon's clock to the real performance.now()'s scale (see src/clock.rs).
native.setClockOrigin(PERF_NOW.call(PERF))

/** Rethrows a native error as the JavaScript error class it stands for. */
function rethrow(e) {
  if (e && e.code === 'InvalidArg') throw new TypeError(e.message)
  if (e && e.code === 'GenericFailure') throw new RangeError(e.message)
  throw e
}

/** Calls `fn`, converting native errors. */
function call(fn) {
  try {
    return fn()
  } catch (e) {
    return rethrow(e)
  }
}

module.exports = { native, call, rethrow, PERF, PERF_NOW }
