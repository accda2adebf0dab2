// Start-up time of the built CLI against bare Node, each run a fresh process.
//   node bench/startup.mjs [runs]
// "cold" runs get an empty compile cache each time; "warm" runs share one. Goals (issue 18):
// --version and --help at most twice bare `node -e 0`; the fixed cost of the everyday commands
// (config validate, slo rules, dr plan, rollout status) before they wait on the network at most
// 4x, and render of the scaffolded six-service project at most 6x.
//
// The everyday commands run in a project `retailops init` scaffolds in a temporary folder. With
// the sandbox's KUBECONFIG set (`eval "$(bash scripts/sandbox.sh env)"`), the commands talk to the
// real API server through a TCP relay on 127.0.0.1 that notes when each run opens its first
// connection: a command's fixed cost is the time until then, or its whole run when it never
// connects. Without KUBECONFIG, rollout status is left out.
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {parse, stringify} from 'yaml'

const runs = Number(process.argv[2] ?? 15)
const bin = new URL('../bin/run.js', import.meta.url).pathname

/** The moment the current run first connected to the API server (relay below), if it did. */
let firstConnect
const relay = await startRelay()

function time(args, env, cwd) {
  return new Promise((resolve, reject) => {
    firstConnect = undefined
    const start = process.hrtime.bigint()
    const child = spawn(process.execPath, args, {
      cwd,
      env: {...process.env, ...env},
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (c) => (stderr += c))
    child.on('error', reject)
    child.on('close', (status) => {
      const end = process.hrtime.bigint()
      if (status !== 0) return reject(new Error(`${args.join(' ')} exited ${status}: ${stderr}`))
      resolve(Number((firstConnect ?? end) - start) / 1e6)
    })
  })
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function measure(label, args, {cwd, env = {}} = {}) {
  const cold = []
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-cc-'))
    cold.push(await time(args, {...env, NODE_COMPILE_CACHE: dir}, cwd))
    rmSync(dir, {recursive: true, force: true})
  }
  const shared = mkdtempSync(path.join(os.tmpdir(), 'ro-cc-'))
  await time(args, {...env, NODE_COMPILE_CACHE: shared}, cwd)
  const warm = []
  for (let i = 0; i < runs; i++) warm.push(await time(args, {...env, NODE_COMPILE_CACHE: shared}, cwd))
  rmSync(shared, {recursive: true, force: true})
  return {label, cold: median(cold), warm: median(warm)}
}

/** A TCP relay to the kubeconfig's API server that records each run's first connection. */
async function startRelay() {
  const file = process.env.KUBECONFIG
  if (!file || file.includes(path.delimiter) || file.includes('\n')) return undefined
  const config = parse(readFileSync(file, 'utf8'))
  const context = process.env.RETAILOPS_KUBE_CONTEXT ?? config['current-context']
  const clusterName = config.contexts.find((c) => c.name === context)?.context.cluster
  const cluster = config.clusters.find((c) => c.name === clusterName)?.cluster
  const upstream = new URL(cluster.server)
  if (upstream.hostname !== '127.0.0.1' && upstream.hostname !== 'localhost') return undefined
  const server = net.createServer((socket) => {
    firstConnect ??= process.hrtime.bigint()
    const to = net.connect(Number(upstream.port || 443), upstream.hostname)
    socket.pipe(to).pipe(socket)
    socket.on('error', () => to.destroy())
    to.on('error', () => socket.destroy())
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  server.unref()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-bench-kube-'))
  const kubeconfig = path.join(dir, 'kubeconfig')
  // Same host, so the server certificate still matches; only the port is the relay's.
  cluster.server = `${upstream.protocol}//${upstream.hostname}:${server.address().port}`
  writeFileSync(kubeconfig, stringify(config))
  return {kubeconfig, dir, context}
}

const project = mkdtempSync(path.join(os.tmpdir(), 'ro-bench-startup-'))
try {
  await time([bin, 'init', '--directory', project, '--project', 'shop', '--ci', 'none', '--yes'], {}, undefined)
  const inProject = {
    cwd: project,
    env: relay ? {KUBECONFIG: relay.kubeconfig, RETAILOPS_KUBE_CONTEXT: relay.context} : {},
  }
  const rows = [
    {...(await measure('node -e 0', ['-e', '0'])), goal: undefined},
    {...(await measure('retailops --version', [bin, '--version'])), goal: 2},
    {...(await measure('retailops --help', [bin, '--help'])), goal: 2},
    {...(await measure('config validate', [bin, 'config', 'validate'], inProject)), goal: 4},
    {...(await measure('slo rules', [bin, 'slo', 'rules'], inProject)), goal: 4},
    {...(await measure('dr plan', [bin, 'dr', 'plan'], inProject)), goal: 4},
    ...(relay ? [{...(await measure('rollout status', [bin, 'rollout', 'status'], inProject)), goal: 4}] : []),
    {...(await measure('render (6 services)', [bin, 'render'], inProject)), goal: 6},
  ]
  const base = rows[0]
  console.log(
    `Node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}, median of ${runs} runs each`,
  )
  console.log(
    `commands that connect: time until the first connection to the API server${relay ? '' : ' (no sandbox KUBECONFIG: rollout status left out)'}`,
  )
  console.log('command                 cold ms   warm ms   cold / node   warm / node   goal')
  let missed = 0
  for (const r of rows) {
    const cold = r.cold / base.cold
    const verdict = r.goal === undefined ? '' : `${r.goal.toFixed(0)}x ${cold <= r.goal ? 'MET' : 'MISSED'}`
    if (r.goal !== undefined && cold > r.goal) missed++
    console.log(
      `${r.label.padEnd(22)} ${r.cold.toFixed(0).padStart(7)}   ${r.warm.toFixed(0).padStart(7)}   ${cold.toFixed(2).padStart(11)}   ${(r.warm / base.warm).toFixed(2).padStart(11)}   ${verdict}`,
    )
  }
  console.log(missed ? `${missed} goal(s) MISSED (cold)` : 'every goal MET (cold)')
} finally {
  rmSync(project, {recursive: true, force: true})
  if (relay) rmSync(relay.dir, {recursive: true, force: true})
}
