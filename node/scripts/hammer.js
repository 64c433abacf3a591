#!/usr/bin/env node
// The Node participant of the cross-language hammer (redis/cross/run.sh): C, Python and Node
// processes check one key through one Redis at the same instant; together they must admit
// exactly the quota.
//
//   node scripts/hammer.js --config PATH --policy NAME --key KEY --attempts N --start-at UNIX_MS
//
// Loads the TOML config through the public API (RedisStore.fromConfig: storage, fail_mode,
// key_prefix), waits for Redis, sleeps until the wall clock reaches UNIX_MS, then makes N checks
// of cost 1 on KEY one after another and prints one JSON line:
//   {"binding":"node","policy":NAME,"allowed":A,"denied":D,"fallback":F,"first_ms":T0,"last_ms":T1}
// F counts decisions Redis did not make (a fail mode decided). On any error: a message on
// stderr and exit status 1.
'use strict'

const path = require('node:path')
const { RedisStore } = require(path.join(__dirname, '..', 'redis.js'))

const USAGE = 'usage: hammer.js --config PATH --policy NAME --key KEY --attempts N --start-at UNIX_MS'

function fail(message) {
  process.stderr.write(`hammer.js: ${message}\n`)
  process.exit(1)
}

function parseArgs(argv) {
  const names = { '--config': 'config', '--policy': 'policy', '--key': 'key', '--attempts': 'attempts', '--start-at': 'startAt' }
  const args = {}
  for (let i = 0; i < argv.length; i += 2) {
    const name = names[argv[i]]
    if (name === undefined) fail(`unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`)
    if (i + 1 >= argv.length) fail(`${argv[i]} needs a value\n${USAGE}`)
    args[name] = argv[i + 1]
  }
  for (const name of Object.values(names)) if (args[name] === undefined) fail(`missing --${name === 'startAt' ? 'start-at' : name}\n${USAGE}`)
  const whole = (text, what, min) => {
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) fail(`${what} must be a whole number >= ${min}, got ${JSON.stringify(text)}`)
    return Number(text)
  }
  return { ...args, attempts: whole(args.attempts, '--attempts', 0), startAt: whole(args.startAt, '--start-at', 0) }
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const store = RedisStore.fromConfig(args.config)
  if (store.state === 'memory') fail(`${args.config}: storage is memory://; the hammer needs storage = "redis://..."`)
  await store.ready()
  const limiter = store.policy(args.policy)
  const wait = args.startAt - Date.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  let allowed = 0
  let denied = 0
  let fallback = 0
  let first = null
  let last = null
  for (let i = 0; i < args.attempts; i++) {
    const t = Date.now()
    if (first === null) first = t
    const d = await limiter.check(args.key, 1)
    last = t
    if (d.allowed) allowed++
    else denied++
    if (d.source !== 'redis') fallback++
  }
  const now = Date.now()
  process.stdout.write(
    JSON.stringify({ binding: 'node', policy: args.policy, allowed, denied, fallback, first_ms: first ?? now, last_ms: last ?? now }) + '\n',
  )
}

main().then(
  () => process.exit(0),
  (e) => fail(e && e.message ? e.message : String(e)),
)
