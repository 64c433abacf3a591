#!/usr/bin/env node
// Builds the native addon from source with cargo and copies it to ../ratewall.node.
//
// Runs as the package's `install` script, so `npm install ./node` (or `npm ci` here) builds it.
// Needs Rust's cargo on PATH (or in ~/.cargo/bin). Set RATEWALL_BUILD_PROFILE=debug for a
// debug build. Uses only Node's standard library: npm does not install the dependencies of a
// linked folder package before running its install script.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const manifest = path.join(root, 'Cargo.toml')
const dest = path.join(root, 'ratewall.node')
// `addon` is the release profile with link-time optimisation (see the workspace's Cargo.toml).
const profile = process.env.RATEWALL_BUILD_PROFILE === 'debug' ? 'debug' : 'addon'

function findCargo() {
  const candidates = [process.env.CARGO, 'cargo', path.join(os.homedir(), '.cargo', 'bin', 'cargo')]
  for (const c of candidates.filter(Boolean)) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' })
    if (r.status === 0) return c
  }
  return null
}

function fail(message) {
  console.error(`ratewall: ${message}`)
  process.exit(1)
}

const cargo = findCargo()
if (!cargo) {
  fail(
    'building the native addon needs Rust\'s cargo, which was not found on PATH or in ~/.cargo/bin. ' +
      'Install Rust (https://rustup.rs), then run `npm rebuild ratewall` (or `npm run build` in ' +
      root + ').',
  )
}

const args = ['build', '--manifest-path', manifest, '-p', 'ratewall-node', '--message-format=json-render-diagnostics']
if (profile === 'addon') args.push('--profile', 'addon')
console.error(`ratewall: building the native addon (cargo ${args.slice(0, 5).join(' ')}${profile === 'addon' ? ' --profile addon' : ''})`)
// The addon's direct V8 callbacks are compiled against this Node's headers (build.rs).
const env = { ...process.env, RATEWALL_NODE: process.execPath }
const r = spawnSync(cargo, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] })
if (r.error) fail(`could not run cargo: ${r.error.message}`)
if (r.status !== 0) fail(`cargo build failed (exit ${r.status}); see the compiler output above.`)

let artifact = null
for (const line of r.stdout.split('\n')) {
  if (!line.startsWith('{')) continue
  let msg
  try {
    msg = JSON.parse(line)
  } catch {
    continue
  }
  if (msg.reason === 'compiler-artifact' && msg.target && msg.target.name === 'ratewall_node') {
    artifact = (msg.filenames || []).find((f) => /\.(so|dylib|dll)$/.test(f)) || artifact
  }
}
if (!artifact) fail('cargo finished but reported no ratewall_node library.')
// Copy to a temporary name, then rename: a process that has the old addon loaded keeps it.
const tmp = `${dest}.${process.pid}.tmp`
fs.copyFileSync(artifact, tmp)
fs.renameSync(tmp, dest)
console.error(`ratewall: built ${path.relative(process.cwd(), dest) || dest}`)
