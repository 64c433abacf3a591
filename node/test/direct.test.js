'use strict'
// The direct V8 callbacks of check(key), peek(key) and refund(key) (src/direct.rs): used where
// the addon was compiled against this Node's headers, the same state as the Node-API calls for
// every kind of key, and everything they cannot do left to the Node-API functions.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const { Limiter } = require('..')
const { native } = require('../native.js')

const HEADERS = path.join(path.dirname(process.execPath), '..', 'include', 'node', 'v8.h')
const apiOnly = !['', '0', undefined].includes(process.env.RATEWALL_NODE_API_ONLY)

test('check(key) takes the direct V8 callback where the addon was built against this Node', {
  skip: !fs.existsSync(HEADERS) && `no Node headers at ${HEADERS}: the addon was built without direct callbacks`,
}, () => {
  const l = new Limiter('5/hour')
  if (apiOnly) {
    assert.equal(native.directCalls(), false, 'RATEWALL_NODE_API_ONLY turns them off')
    assert.equal(l._checkKey, l._checkKeyApi)
    return
  }
  assert.equal(native.directCalls(), true)
  for (const op of ['check', 'peek', 'refund']) {
    assert.notEqual(l[`_${op}Key`], l[`_${op}KeyApi`], `${op}(key) has a direct twin`)
  }
  assert.equal(l._checkKey('k'), undefined, 'a direct call that decided returns nothing')
  assert.equal(l._decision().remaining, 4)
})

test('direct and Node-API calls reach the same state for every kind of key', () => {
  const long = 'x'.repeat(1000)
  const keys = [
    '', 'a', 'user:42', 'é', 'e\u0301', '日本', '\ud800', '\udc00', 'a\0b', '😀',
    'con' + 'cat'.repeat(Number('3')), // a cons string
    long.slice(3, 40), // a sliced string
    'k'.repeat(253), 'k'.repeat(254), 'k'.repeat(255), 'k'.repeat(256), long,
  ]
  for (const key of keys) {
    const l = new Limiter({ limits: '4/hour', algorithm: 'fixed-window' })
    const name = JSON.stringify(key.slice(0, 12)) + `(${key.length})`
    const direct = l._checkKey(key)
    if (direct === false) l._checkKeyApi(key)
    else assert.equal(direct, undefined, name)
    assert.equal(l._decision().remaining, 3, name)
    l._checkKeyApi(key)
    assert.equal(l._decision().remaining, 2, `${name}: the Node-API call saw the direct one's permit`)
    l._check(key, 1, undefined)
    assert.equal(l._decision().remaining, 1, `${name}: the general call too`)
    assert.equal(l.check(key).remaining, 0, name)
    assert.equal(l.check(key).allowed, false, name)
    assert.equal(l.refund(key).remaining, 1, name)
    assert.equal(l.peek(key).remaining, 0, name)
    assert.equal(l.check(key + '!').remaining, 3, `${name}: another key is another state`)
  }
})

test('a direct call leaves what it cannot do to the Node-API function and changes nothing', () => {
  const l = new Limiter({ limits: '3/hour', algorithm: 'fixed-window' })
  l.check('k')
  if (l._checkKey === l._checkKeyApi) return // no direct callbacks in this process
  for (const fn of [l._checkKey, l._peekKey, l._refundKey]) {
    for (const bad of [42, undefined, null, {}, Symbol('s'), ['k'], 'x'.repeat(300)]) {
      assert.equal(fn(bad), false, `${typeof bad} is left to Node-API`)
    }
    assert.equal(fn(), false, 'no argument at all')
  }
  assert.equal(l.peek('k').remaining, 1, 'none of them changed anything')
  assert.throws(() => l.check(42), { name: 'TypeError', message: /key must be a string, got number/ })
  assert.throws(() => l.refund(), { name: 'TypeError', message: /key must be a string, got undefined/ })
  assert.equal(l.check('x'.repeat(300)).remaining, 2, 'a long key is decided by the Node-API call')
  assert.equal(l.check('x'.repeat(300)).remaining, 1)
})

test('a direct function outlives its limiter safely (it keeps what it uses alive)', () => {
  const script = `
    const { Limiter } = require(${JSON.stringify(path.join(__dirname, '..'))})
    let collected = false
    const registry = new FinalizationRegistry(() => { collected = true })
    let f
    ;(() => {
      const l = new Limiter({ limits: '2/hour', algorithm: 'fixed-window' })
      f = l._checkKey
      registry.register(l, 0)
    })()
    ;(async () => {
      for (let i = 0; i < 50 && !collected; i++) { global.gc(); await new Promise((r) => setImmediate(r)) }
      const r = [f('k'), f('k'), f('k')]
      f = null
      global.gc()
      console.log(JSON.stringify({ collected, r }))
    })()`
  const { collected, r } = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' }))
  assert.equal(collected, true, 'the limiter object was collected')
  assert.deepEqual(r, [null, null, null], 'its function still decided each call (no fallback needed)')
})

test('RATEWALL_NODE_API_ONLY=1 turns the direct calls off, with the same decisions', () => {
  const script = `
    const { Limiter } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'native.js'))})
    const l = new Limiter({ limits: '2/hour', algorithm: 'fixed-window' })
    console.log(JSON.stringify([native.directCalls(), l._checkKey === l._checkKeyApi,
      l.check('k').remaining, l.check('k').remaining, l.check('k').allowed]))`
  const run = (value) => JSON.parse(execFileSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, RATEWALL_NODE_API_ONLY: value },
  }))
  assert.deepEqual(run('1'), [false, true, 1, 0, false])
  const [direct, same, ...decisions] = run('')
  assert.equal(same, !direct)
  assert.deepEqual(decisions, [1, 0, false])
})
