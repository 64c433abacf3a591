#!/usr/bin/env node
// Bench: Express middleware overhead, ratewall vs express-rate-limit with the same limit, in the
// same run.
// (1) In process: the middleware called directly, a fresh request/response pair per request as
// on a real server (1000 client addresses in turn), median ns per request minus a no-op
// middleware (which pays for the same pairs). Two kinds of pairs:
//  - node:http: real `IncomingMessage` / `ServerResponse` objects, so every `res.setHeader`
//    validates the name and value and lower-cases the name, as on a server. This is the
//    figure the target is read on.
//  - plain: minimal objects whose `setHeader` stores into an object: the middlewares' own work,
//    without Node's per-header cost (reference).
// Each request must have been decided: a reused request object would be taken for the same
// request passing the limiter twice and be answered from ratewall's count-once record (an early
// version of this bench did that, and reported 0.07x express-rate-limit's overhead where the
// real figure was 1.9x).
// Three header configurations, each measured in its own child process (middlewares of other
// configurations in one process would share the JIT's feedback and slow each other):
//  - defaults: `rateLimit({ windowMs, limit })`, express-rate-limit's default headers (the legacy
//    `X-RateLimit-*` set; express-rate-limit also sets `Date`, which ratewall leaves to Node);
//  - draft-7: `legacyHeaders: true, standardHeaders: 'draft-7'` (two more headers);
//  - none: every rate-limit header off (reference: what setting the headers costs each).
// A third subject, `headers only`, sets the headers ratewall sends in that configuration (values
// of the same shapes, from a counter) and decides nothing: Node's own cost for them, which any
// limiter sending them pays (reference: what each middleware adds above it).
// (2) Over loopback HTTP: autocannon, in a child process, against five apps (bare, and both
// middlewares in the defaults and draft-7 configurations), HTTP_ROUNDS interleaved rounds of
// DURATION seconds each, 127.0.0.1 only; median requests/s and the added time per request
// (1/rps - 1/rps_bare).
// Run: node bench/express.js   (ROUNDS=5 OPS=100000 DURATION=5 HTTP_ROUNDS=3 CONNECTIONS=10)
'use strict'
const express = require('express')
const http = require('node:http')
const net = require('node:net')
const { promisify } = require('node:util')
const execFile = promisify(require('node:child_process').execFile)
const erl = require('express-rate-limit')
const rateLimit = require('../express.js')

const ROUNDS = Number(process.env.ROUNDS || 5)
const OPS = Number(process.env.OPS || 100_000)
const DURATION = Number(process.env.DURATION || 5)
const HTTP_ROUNDS = Number(process.env.HTTP_ROUNDS || 3)
const CONNECTIONS = Number(process.env.CONNECTIONS || 10)
/** The header configuration a child run measures in process (the parent run sets it). */
const CONFIG = process.env.BENCH_CONFIG
const LIMIT = 1e9
const quiet = { error() {}, warn() {} }

/** Middleware options and `headers only` subjects of each configuration (same limit). */
const CONFIGS = {
  defaults: { options: { windowMs: 60_000, limit: LIMIT }, headersOnly: legacyOnly },
  'draft-7': { options: { windowMs: 60_000, limit: LIMIT, legacyHeaders: true, standardHeaders: 'draft-7' }, headersOnly: draft7AndLegacy },
  none: { options: { windowMs: 60_000, limit: LIMIT, legacyHeaders: false, standardHeaders: false }, headersOnly: (req, res, next) => next() },
}
/** The configurations that send headers (the target's), also measured over HTTP. */
const WITH_HEADERS = ['defaults', 'draft-7']

let floorCount = LIMIT
/**
 * Sets the headers ratewall sends with express-rate-limit's default options (the legacy set;
 * Node writes `Date` itself), with values of the same shapes, and decides nothing.
 */
function legacyOnly(req, res, next) {
  setLegacy(res, --floorCount)
  next()
}

/** The same for draft-7 and legacy headers. */
function draft7AndLegacy(req, res, next) {
  const remaining = --floorCount
  res.setHeader('RateLimit-Policy', `${LIMIT};w=60`)
  res.setHeader('RateLimit', `limit=${LIMIT}, remaining=${remaining}, reset=60`)
  setLegacy(res, remaining)
  next()
}

/** The legacy `X-RateLimit-*` headers, values of the shapes ratewall sends. */
function setLegacy(res, remaining) {
  res.setHeader('X-RateLimit-Limit', String(LIMIT))
  res.setHeader('X-RateLimit-Remaining', String(remaining))
  res.setHeader('X-RateLimit-Reset', String(Math.ceil(Date.now() / 1000) + 60))
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function plainPair(i) {
  const headers = {}
  const req = { ip: `10.0.${(i >> 8) & 255}.${i & 255}`, headers: {}, app: { get: () => false }, path: '/', socket: {} }
  const res = {
    statusCode: 200,
    headersSent: false,
    writableEnded: false,
    setHeader(n, v) { headers[n] = v },
    append(n, v) { headers[n] = headers[n] ? `${headers[n]}, ${v}` : v },
    status(c) { this.statusCode = c; return this },
    send() { this.writableEnded = true },
    once() {},
  }
  return [req, res]
}

/** One socket for every node:http pair: nothing is ever written to it. */
const socket = new net.Socket()

function nodePair(i) {
  const req = new http.IncomingMessage(socket)
  req.method = 'GET'
  req.url = '/'
  req.ip = `10.0.${(i >> 8) & 255}.${i & 255}`
  req.app = { get: () => false }
  return [req, new http.ServerResponse(req)]
}

const PAIRS = { 'node:http': nodePair, plain: plainPair }

async function inProcess(mw, n, decided, makePair) {
  let nexts = 0
  const next = () => { nexts++ }
  let req
  let checked = 0
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const pair = makePair(i % 1000)
    req = pair[0]
    const r = mw(req, pair[1], next)
    if (r && typeof r.then === 'function') await r
    if ((i & 1023) === 0) checked += decided(req) ? 1 : 0
  }
  const ns = Number(process.hrtime.bigint() - t) / n
  if (nexts !== n) throw new Error(`middleware called next ${nexts} times for ${n} requests`)
  if (checked !== Math.ceil(n / 1024)) throw new Error('a request was not decided by the limiter')
  return ns
}

function app(mw) {
  const a = express()
  if (mw) a.use(mw)
  a.get('/', (req, res) => res.send('ok'))
  return a
}

async function listen(a) {
  const server = await new Promise((r) => { const s = a.listen(0, '127.0.0.1', () => r(s)) })
  return { server, url: `http://127.0.0.1:${server.address().port}/` }
}

/**
 * Requests/s of one autocannon run of DURATION seconds against `url`. autocannon runs in its own
 * process: in this one it would share the event loop with the servers it measures.
 */
async function load(url, duration = DURATION) {
  const args = [require.resolve('autocannon/autocannon.js'), '-j', '-c', String(CONNECTIONS), '-d', String(duration), url]
  const { stdout } = await execFile(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 })
  const result = JSON.parse(stdout)
  if (result.non2xx) throw new Error(`${result.non2xx} non-2xx responses`)
  return result.requests.average
}

/** Child run: measures one configuration in process and prints its medians as JSON. */
async function measureInProcess(config) {
  const { options, headersOnly } = CONFIGS[config]
  const mws = {
    'no-op': (req, res, next) => next(),
    'headers only': headersOnly,
    'express-rate-limit': erl.rateLimit({ ...options, validate: false }),
    ratewall: rateLimit({ ...options, validate: false, logger: quiet }),
  }
  // A decided request carries the limiter's info (`used` counts this request).
  const decided = Object.fromEntries(Object.keys(mws).map((k) => [k, k === 'no-op' || k === 'headers only' ? () => true : (req) => req.rateLimit?.used >= 1]))
  const medians = {}
  for (const [kind, makePair] of Object.entries(PAIRS)) {
    const samples = Object.fromEntries(Object.keys(mws).map((k) => [k, []]))
    for (const [k, mw] of Object.entries(mws)) await inProcess(mw, OPS / 5, decided[k], makePair)
    for (let r = 0; r < ROUNDS; r++) for (const [k, mw] of Object.entries(mws)) samples[k].push(await inProcess(mw, OPS, decided[k], makePair))
    medians[kind] = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]))
  }
  console.log(JSON.stringify(medians))
}

/** Prints one configuration's in-process medians and ratios. */
function report(config, medians) {
  console.log(`configuration '${config}' (${JSON.stringify(CONFIGS[config].options)}):`)
  for (const [kind, m] of Object.entries(medians)) {
    const erlOver = m['express-rate-limit'] - m['no-op']
    const rwOver = m.ratewall - m['no-op']
    console.log(`  ${kind} request/response pairs${kind === 'plain' ? ' (reference: no Node setHeader cost)' : ''}:`)
    for (const [k, v] of Object.entries(m)) console.log(`  ${v.toFixed(0).padStart(8)} ns  ${k}`)
    const target = kind === 'plain' || config === 'none' ? '' : ' (target <= 0.333)'
    console.log(`    added overhead: express-rate-limit ${erlOver.toFixed(0)} ns, ratewall ${rwOver.toFixed(0)} ns, ratio ${(rwOver / erlOver).toFixed(3)}${target}`)
    if (config !== 'none') {
      const floor = m['headers only']
      console.log(`    above 'headers only' (${(floor - m['no-op']).toFixed(0)} ns: setting ratewall's headers, nothing decided): express-rate-limit ${(m['express-rate-limit'] - floor).toFixed(0)} ns, ratewall ${(m.ratewall - floor).toFixed(0)} ns, ratio ${((m.ratewall - floor) / (m['express-rate-limit'] - floor)).toFixed(3)} (reference)`)
    }
  }
}

async function main() {
  if (CONFIG) return measureInProcess(CONFIG)
  console.log(`node ${process.version}; in process, ${ROUNDS} rounds x ${OPS} requests, median ns/request, one child process per configuration`)
  const all = {}
  for (const config of Object.keys(CONFIGS)) {
    const child = await execFile(process.execPath, [__filename], { env: { ...process.env, BENCH_CONFIG: config } })
    all[config] = JSON.parse(child.stdout.trim().split('\n').pop())
    report(config, all[config])
  }
  for (const config of WITH_HEADERS) {
    for (const kind of Object.keys(PAIRS)) {
      const m = all[config][kind]
      const b = all.none[kind]
      const headerCost = (k) => (m[k] - b[k]).toFixed(0)
      console.log(`  ${config}, ${kind}: setting the headers costs express-rate-limit ${headerCost('express-rate-limit')} ns, ratewall ${headerCost('ratewall')} ns (against 'none')`)
    }
  }

  if (HTTP_ROUNDS < 1) return
  // The apps listen side by side; each round loads each app once, in a rotating order, so a
  // change in the machine's load hits them alike; the median round counts.
  console.log(`over loopback HTTP: autocannon, ${CONNECTIONS} connections, ${HTTP_ROUNDS} interleaved rounds of ${DURATION} s per app, median`)
  const apps = { bare: await listen(app(null)) }
  for (const config of WITH_HEADERS) {
    const { options } = CONFIGS[config]
    apps[`express-rate-limit ${config}`] = await listen(app(erl.rateLimit({ ...options, validate: false })))
    apps[`ratewall ${config}`] = await listen(app(rateLimit({ ...options, validate: false, logger: quiet })))
  }
  const names = Object.keys(apps)
  const runs = Object.fromEntries(names.map((k) => [k, []]))
  for (const k of names) await load(apps[k].url, 1) // warm up
  for (let r = 0; r < HTTP_ROUNDS; r++) {
    for (let i = 0; i < names.length; i++) {
      const k = names[(i + r) % names.length]
      runs[k].push(await load(apps[k].url))
    }
  }
  for (const { server } of Object.values(apps)) await new Promise((r) => server.close(r))
  const rps = Object.fromEntries(names.map((k) => [k, median(runs[k])]))
  for (const [k, v] of Object.entries(rps)) console.log(`  ${v.toFixed(0).padStart(8)} req/s  ${k}`)
  const added = (r) => (1 / r - 1 / rps.bare) * 1e6
  for (const config of WITH_HEADERS) {
    const e = rps[`express-rate-limit ${config}`]
    const w = rps[`ratewall ${config}`]
    console.log(`  ${config}: added time per request: express-rate-limit ${added(e).toFixed(1)} us, ratewall ${added(w).toFixed(1)} us; requests/s ratewall / express-rate-limit: ${(w / e).toFixed(3)} (target >= 1)`)
  }
}

main().catch((e) => { console.error(e); process.exit(1) })
