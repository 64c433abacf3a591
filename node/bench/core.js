#!/usr/bin/env node
// Bench: `limiter.check(key)` against rate-limiter-flexible's RateLimiterMemory.consume(key) and
// express-rate-limit's MemoryStore.increment(key), measured in the same run.
//
// Honest by construction: every case sees the same 1000 keys in the same order, the same limit
// (1e9 per minute, so nothing is ever denied and no case takes a denial path) and the same
// algorithm (a fixed window of one minute in all three libraries); each round runs every case
// once, one after another, so a change in the machine's load hits all of them; the median round
// counts. What each case measures, per operation:
//  - ratewall check(key): the whole public call as users make it: argument checks, the clock
//    (`performance.now()`'s scale; fake timers would be honoured), the decision, and the
//    `Decision` object returned (its `remaining` is read so the object is used).
//  - ratewall check(key), clock: 'coarse': the same on the opt-in coarse clock (the kernel's
//    tick clock: up to a tick, 1-4 ms, behind; a quarter of the precise clock's cost here).
//  - rate-limiter-flexible consume(key), await: the call plus awaiting its promise, as its
//    users do; the promise resolves with a RateLimiterRes object.
//  - express-rate-limit MemoryStore.increment(key), await: the same for express-rate-limit's
//    store (what its middleware awaits per request).
//  - ... no await: its bare synchronous work with the promise dropped (reference only: nobody
//    calls it that way).
//  - Node-API floor (bench/floor.c, compiled here with `cc` and the headers beside `node`; left
//    out with the reason when that fails): a Node-API function that only reads the key (one
//    callback, the UTF-16 copy, a hash) and writes one number, and the same plus a read of the
//    time-stamp counter. No Node-API function called with a string key can be faster. ratewall's
//    check(key) is below it when it takes its direct V8 callback (src/direct.rs), which skips
//    Node-API's wrapper; on Node-API alone (RATEWALL_NODE_API_ONLY=1), its time above the second
//    is its decision and its clock's scaling (reference, no target).
// Run: node bench/core.js   (ROUNDS=7 OPS=300000 by default)
'use strict'
const { Limiter } = require('..')
const { RateLimiterMemory } = require('rate-limiter-flexible')
const { MemoryStore } = require('express-rate-limit')

const ROUNDS = Number(process.env.ROUNDS || 7)
const OPS = Number(process.env.OPS || 300_000)
const KEYS = Array.from({ length: 1000 }, (_, i) => `user:${i}`)
const HUGE = 1e9

const ours = new Limiter({ limits: `${HUGE}/minute`, algorithm: 'fixed-window' })
const oursCoarse = new Limiter({ limits: `${HUGE}/minute`, algorithm: 'fixed-window', clock: 'coarse' })
const rlf = new RateLimiterMemory({ points: HUGE, duration: 60 })
const erl = new MemoryStore()
erl.init({ windowMs: 60_000 })

let sink = 0
const floor = loadFloor()
const floorOut = new Float64Array(1)
if (floor.addon) floor.addon.bind(floorOut)

/** Compiles bench/floor.c into a temporary folder: `{ addon }`, or `{ why }` when it cannot. */
function loadFloor() {
  const path = require('node:path')
  const os = require('node:os')
  const fs = require('node:fs')
  const { execFileSync } = require('node:child_process')
  const include = path.join(path.dirname(process.execPath), '..', 'include', 'node')
  if (!fs.existsSync(path.join(include, 'node_api.h'))) return { why: `no Node-API headers in ${include}` }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ratewall-floor-'))
  const lib = path.join(dir, 'floor.node')
  try {
    execFileSync(process.env.CC || 'cc', ['-O2', '-shared', '-fPIC', '-I', include, '-o', lib, path.join(__dirname, 'floor.c')], { stdio: 'pipe' })
    return { addon: require(lib) }
  } catch (e) {
    return { why: `could not build bench/floor.c: ${String(e.stderr || e.message).split('\n')[0]}` }
  }
}

const cases = {
  'ratewall check(key)': { sync: true, fn: (k) => { sink += ours.check(k).remaining } },
  "ratewall check(key), clock: 'coarse'": { sync: true, fn: (k) => { sink += oursCoarse.check(k).remaining } },
  'rate-limiter-flexible consume(key), await': { fn: (k) => rlf.consume(k) },
  'express-rate-limit MemoryStore.increment(key), await': { fn: (k) => erl.increment(k) },
  'express-rate-limit MemoryStore.increment(key), no await': { sync: true, fn: (k) => { erl.increment(k) } },
}
if (floor.addon) {
  const { keyOnly, keyAndClock } = floor.addon
  cases['Node-API floor: key only'] = { sync: true, fn: (k) => { keyOnly(k); sink += floorOut[0] } }
  cases['Node-API floor: key + time-stamp counter'] = { sync: true, fn: (k) => { keyAndClock(k); sink += floorOut[0] } }
}

async function run(c, n) {
  const t = process.hrtime.bigint()
  if (c.sync) for (let i = 0; i < n; i++) c.fn(KEYS[i % 1000])
  else for (let i = 0; i < n; i++) await c.fn(KEYS[i % 1000])
  return Number(process.hrtime.bigint() - t) / n
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function main() {
  const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  for (const c of Object.values(cases)) await run(c, OPS / 5) // warm up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, c] of Object.entries(cases)) samples[name].push(await run(c, OPS))
  }
  erl.shutdown()
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]))
  console.log(`node ${process.version}, ${ROUNDS} rounds x ${OPS} ops, 1000 keys, median ns/op; check(key) through ${require('../native.js').native.directCalls() ? 'the direct V8 callback' : 'Node-API alone'}`)
  for (const [k, v] of Object.entries(m)) console.log(`  ${v.toFixed(1).padStart(8)} ns  ${k}`)
  const ck = m['ratewall check(key)']
  console.log('ratios (peer / ratewall check):')
  console.log(`  rate-limiter-flexible consume, await:         ${(m['rate-limiter-flexible consume(key), await'] / ck).toFixed(2)}x (target >= 5x)`)
  console.log(`  express-rate-limit increment, await:          ${(m['express-rate-limit MemoryStore.increment(key), await'] / ck).toFixed(2)}x (target >= 2x)`)
  console.log(`  express-rate-limit increment, no await:       ${(m['express-rate-limit MemoryStore.increment(key), no await'] / ck).toFixed(2)}x`)
  const cc = m["ratewall check(key), clock: 'coarse'"]
  console.log("ratios (peer / ratewall check with clock: 'coarse', the kernel's tick clock, opt-in):")
  console.log(`  rate-limiter-flexible consume, await:         ${(m['rate-limiter-flexible consume(key), await'] / cc).toFixed(2)}x`)
  console.log(`  express-rate-limit increment, await:          ${(m['express-rate-limit MemoryStore.increment(key), await'] / cc).toFixed(2)}x`)
  const erlBudget = m['express-rate-limit MemoryStore.increment(key), await'] / 2
  console.log('the floor (reference, no target):')
  if (floor.addon) {
    const f = m['Node-API floor: key + time-stamp counter']
    console.log(`  ratewall check(key) above the floor with the clock: ${(ck - f).toFixed(1)} ns`)
    console.log(`  room the 2x express-rate-limit target leaves above that floor: ${(erlBudget - f).toFixed(1)} ns`)
  } else {
    console.log(`  not measured: ${floor.why}`)
  }
  if (sink === 42) console.log('')
}

main()
