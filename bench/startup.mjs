// Start-up time of the built CLI against bare Node, each run a fresh process.
//   node bench/startup.mjs [runs]
// "cold" runs get an empty compile cache each time; "warm" runs share one. Goal: the CLI's
// --version and --help at most twice bare `node -e 0`.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const runs = Number(process.argv[2] ?? 15)
const bin = new URL('../bin/run.js', import.meta.url).pathname

function time(args, env) {
  const start = process.hrtime.bigint()
  const r = spawnSync(process.execPath, args, {env: {...process.env, ...env}, stdio: ['ignore', 'ignore', 'pipe']})
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function measure(label, args) {
  const cold = []
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-cc-'))
    cold.push(time(args, {NODE_COMPILE_CACHE: dir}))
    rmSync(dir, {recursive: true, force: true})
  }
  const shared = mkdtempSync(path.join(os.tmpdir(), 'ro-cc-'))
  time(args, {NODE_COMPILE_CACHE: shared})
  const warm = []
  for (let i = 0; i < runs; i++) warm.push(time(args, {NODE_COMPILE_CACHE: shared}))
  rmSync(shared, {recursive: true, force: true})
  return {label, cold: median(cold), warm: median(warm)}
}

const rows = [
  measure('node -e 0', ['-e', '0']),
  measure('retailops --version', [bin, '--version']),
  measure('retailops --help', [bin, '--help']),
]
const base = rows[0]
console.log(`Node ${process.version}, ${os.cpus().length} cores, median of ${runs} runs each`)
console.log('command                 cold ms   warm ms   cold / node   warm / node')
for (const r of rows) {
  console.log(
    `${r.label.padEnd(22)} ${r.cold.toFixed(0).padStart(7)}   ${r.warm.toFixed(0).padStart(7)}   ${(r.cold / base.cold).toFixed(2).padStart(11)}   ${(r.warm / base.warm).toFixed(2).padStart(11)}`,
  )
}
const worst = Math.max(...rows.slice(1).map((r) => r.cold / base.cold))
console.log(`goal: at most 2.00x bare node cold; worst ${worst.toFixed(2)}x ${worst <= 2 ? 'MET' : 'MISSED'}`)
