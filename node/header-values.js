'use strict'
/**
 * @internal Header values filled in JavaScript: the Express middleware's hot path for the
 * header forms express-rate-limit sends (`legacy`, `draft-6`, `draft-7`, and `Retry-After`).
 *
 * Why: rendering the values in the addon and taking its string apart cost about 1 µs per
 * response (a Node-API call with arguments, one string made from UTF-8, a `split`), as much as
 * everything else the middleware does. These forms hold only numbers that JavaScript already
 * has (the decision the fast `check` wrote into the limiter's `out` array) and text that never
 * changes for a limiter, so building them here costs a few string concatenations.
 *
 * How the core stays the one source of the format:
 * - The names, and the values that never change for a limiter (`RateLimit-Policy`,
 *   `X-RateLimit-Limit`, `RateLimit-Limit`), are the core's, taken from its first rendering of
 *   each response kind (allowed, denied).
 * - The values that change per request are built by the rules below, the core's rules
 *   (`ratewall::http::visit_headers`) restated: whole seconds rounded up from whole
 *   milliseconds, Structured Field integers clamped to 15 digits, `Retry-After` at least 1.
 * - At that first rendering [`plan`] builds the same values with these rules and compares them
 *   with the core's; on any difference, or a header it does not know (`draft-8`, `ietf`: lists
 *   with names and partition keys), the core renders every response of that kind. The tests
 *   compare the two over many random decisions.
 * - And every [`AUDIT_EVERY`]th filled response is rendered by the core too: on a difference
 *   the core's values are sent, the plan is dropped for good and the middleware logs an error.
 *   So a rule that went wrong for some numbers would show in production and correct itself,
 *   for about a nanosecond per response on average.
 * - Only single-limit decisions with waits under [`EXACT_MS`] take this path: below that,
 *   `Math.floor` of the addon's milliseconds (`ns / 1e6`, correctly rounded) is exactly the
 *   whole milliseconds the core renders from.
 */

/** The largest Structured Field Integer (15 digits): every `RateLimit*` number is clamped to it. */
const SF_MAX = 999_999_999_999_999

/**
 * Waits (ms) below which `Math.floor` of the addon's `ns / 1e6` is exact: an integer `k` below
 * 2^32 has neighbours closer than half of 10^-6, so `k - 10^-6` never rounds up to `k`.
 */
const EXACT_MS = 4e9

/** One filled response in this many is also rendered by the core and compared (a power of 2). */
const AUDIT_EVERY = 1024

// What one header's value is, per request.
const CONSTANT = 0
const REMAINING = 1
const SF_REMAINING = 2
const DATE = 3
const RESET_EPOCH = 4
const SF_RESET = 5
const DRAFT7 = 6
const RETRY_AFTER = 7

/** The kind of each header name the core renders; the constants repeat the first rendering. */
const KINDS = {
  'X-RateLimit-Limit': CONSTANT,
  'X-RateLimit-Remaining': REMAINING,
  Date: DATE,
  'X-RateLimit-Reset': RESET_EPOCH,
  'RateLimit-Policy': CONSTANT,
  'RateLimit-Limit': CONSTANT,
  'RateLimit-Remaining': SF_REMAINING,
  'RateLimit-Reset': SF_RESET,
  RateLimit: DRAFT7,
  'Retry-After': RETRY_AFTER,
}

let dateSecond = NaN
let dateValue = ''

/** `Date`: the HTTP-date of `nowMs`, made once per second. */
function httpDate(nowMs) {
  const second = Math.floor(nowMs / 1000)
  if (second !== dateSecond) {
    dateValue = new Date(nowMs).toUTCString()
    dateSecond = second
  }
  return dateValue
}

/** Whole seconds, rounded up, of whole milliseconds `ms`. */
function ceilSeconds(ms) {
  return Math.ceil(ms / 1000)
}

/**
 * The decision in `out` (the fast functions' layout, see src/fast.rs) at wall-clock `nowMs` can
 * take this path: one limit, both waits exact as whole milliseconds, and whole milliseconds of
 * wall clock (a mocked `Date.now()` may return fractions, which the core truncates).
 */
function fits(out, nowMs) {
  return out[6] === 1 && out[3] < EXACT_MS && out[4] < EXACT_MS &&
    Number.isSafeInteger(nowMs) && nowMs >= 0
}

/** The value of a header of `kind` for the decision in `out` at wall-clock `nowMs`. */
function value(kind, constant, out, nowMs) {
  switch (kind) {
    case CONSTANT:
      return constant
    case REMAINING:
      return String(out[2])
    case SF_REMAINING:
      return String(sf(out[2]))
    case DATE:
      return httpDate(nowMs)
    case RESET_EPOCH:
      return String(ceilSeconds(nowMs + Math.floor(out[4])))
    case SF_RESET:
      return String(sf(resetSeconds(out)))
    case DRAFT7:
      return `limit=${sf(out[1])}, remaining=${sf(out[2])}, reset=${sf(resetSeconds(out))}`
    default:
      return String(Math.max(1, ceilSeconds(Math.floor(out[3]))))
  }
}

/** A Structured Field Integer: `n` clamped to 15 digits. */
function sf(n) {
  return Math.min(n, SF_MAX)
}

/** Seconds until the decision in `out` resets, rounded up from its whole milliseconds. */
function resetSeconds(out) {
  return ceilSeconds(Math.floor(out[4]))
}

/**
 * A plan for filling one response kind's values, from the core's first rendering of it:
 * `names` and `values` as the core rendered them for the decision in `out` at `nowMs`. `null`
 * when this path cannot reproduce them (see the module docs).
 */
function plan(names, values, out, nowMs) {
  if (!fits(out, nowMs)) return null
  const kinds = []
  for (let i = 0; i < names.length; i++) {
    const kind = KINDS[names[i]]
    if (kind === undefined || value(kind, values[i], out, nowMs) !== values[i]) return null
    kinds.push(kind)
  }
  return { kinds, constants: values.slice(), filled: 0 }
}

/**
 * The values of a planned response kind for the decision in `out` at `nowMs`, or `null` when
 * this decision does not fit the path (the caller asks the core).
 */
function fill(p, out, nowMs) {
  if (!fits(out, nowMs)) return null
  const { kinds, constants } = p
  const values = new Array(kinds.length)
  for (let i = 0; i < kinds.length; i++) values[i] = value(kinds[i], constants[i], out, nowMs)
  return values
}

/** Counts a filled response of plan `p`: `true` when this one is to be audited. */
function auditDue(p) {
  p.filled = (p.filled + 1) & (AUDIT_EVERY - 1)
  return p.filled === 0
}

/** Whether two lists of values are the same. */
function sameValues(a, b) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** `[names, values]` from a flat `[name, value, …]` list (the addon's rendering). */
function unzip(flat) {
  const names = []
  const values = []
  for (let i = 0; i < flat.length; i += 2) {
    names.push(flat[i])
    values.push(flat[i + 1])
  }
  return [names, values]
}

module.exports = { plan, fill, auditDue, sameValues, unzip, AUDIT_EVERY, EXACT_MS, SF_MAX }
