// Start-up time of the built CLI against bare Node, each run a fresh process.
//   node bench/startup.mjs [runs] [--bin path/to/bin/run.js]
// --bin times another build (an older checkout's bin/run.js) against the same baseline.
// --baseline OLD/bin/run.js also times that build's runs of every command, interleaved with this
// build's in the same rounds, and prints this build's time as a ratio of the old one's: on a shared
// machine whose load moves, the only fair before/after.
//
// Every run is timed twice over: wall time, and CPU time (user + system of all the process's
// threads, from bench/startup-cpu.mjs loaded with --import into every process, the baseline's
// too). Wall time is what a user waits; on a loaded machine (the shared 2-core sandbox) it mostly
// measures the scheduler, CPU time what the process itself costs.
//
// "cold" runs get an empty compile cache and an empty validated-configuration cache each time (the
// first run after an install or upgrade); "warm" runs share both, filled by an untimed run (every
// run after that: bin/run.js keeps the compile cache in ~/.cache/retailops/compile, and loadConfig
// what it validated in ~/.cache/retailops/config, src/config/validated-cache.ts). "config validate
// (edited)" is warm with the configuration cache off (RETAILOPS_CONFIG_CACHE=0): the first run after
// each edit of retailops.yaml, which parses and validates it. Rounds interleave the commands, so a burst of load hits
// all of them alike. Goals (issue 18): --version and --help at most twice bare `node -e 0`; the
// fixed cost of the everyday commands (config validate, slo rules, dr plan, rollout status)
// before they wait on the network at most 4x, and render of the scaffolded six-service project
// at most 6x.
//
// The everyday commands run in a project `retailops init` scaffolds in a temporary folder. With
// the sandbox's KUBECONFIG set (`eval "$(bash scripts/sandbox.sh env)"`), the commands talk to the
// real API server through a TCP relay on 127.0.0.1 that notes when each run opens its first
// connection: a command's fixed cost is the time until then (CPU: until the process opened its
// first connection), or its whole run when it never connects. Without KUBECONFIG, rollout status
// is left out.
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {parse, stringify} from 'yaml'

const args = process.argv.slice(2)
const binAt = args.indexOf('--bin')
const bin = binAt >= 0 ? path.resolve(args.splice(binAt, 2)[1]) : new URL('../bin/run.js', import.meta.url).pathname
const baselineAt = args.indexOf('--baseline')
const baseline = baselineAt >= 0 ? path.resolve(args.splice(baselineAt, 2)[1]) : undefined
const runs = Number(args[0] ?? 15)
const cpuHook = new URL('./startup-cpu.mjs', import.meta.url).href
const scratch = mkdtempSync(path.join(os.tmpdir(), 'ro-bench-startup-'))
const cpuFile = path.join(scratch, 'cpu')

/** The moment the current run first connected to the API server (relay below), if it did. */
let firstConnect
const relay = await startRelay()

/** One run: its wall time (until its first connection to the API server, if any) and CPU time, in ms. */
function time(args, env, cwd) {
  return new Promise((resolve, reject) => {
    firstConnect = undefined
    rmSync(cpuFile, {force: true})
    const start = process.hrtime.bigint()
    const child = spawn(process.execPath, ['--import', cpuHook, ...args], {
      cwd,
      env: {...process.env, ...env, RETAILOPS_BENCH_CPU: cpuFile},
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (c) => (stderr += c))
    child.on('error', reject)
    child.on('close', (status) => {
      const end = process.hrtime.bigint()
      if (status !== 0) return reject(new Error(`${args.join(' ')} exited ${status}: ${stderr}`))
      resolve({wall: Number((firstConnect ?? end) - start) / 1e6, cpu: Number(readFileSync(cpuFile, 'utf8'))})
    })
  })
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Each command's runs, interleaved round by round: a cold run (empty cache), then a warm one. */
async function measureAll(commands) {
  const samples = commands.map(() => ({cold: [], warm: []}))
  const warmCaches = []
  for (const c of commands) {
    const dir = mkdtempSync(path.join(scratch, 'warm-'))
    await time(c.args, {...c.env, NODE_COMPILE_CACHE: dir, XDG_CACHE_HOME: dir}, c.cwd)
    warmCaches.push(dir)
  }
  for (let round = 0; round < runs; round++) {
    for (const [i, c] of commands.entries()) {
      const dir = mkdtempSync(path.join(scratch, 'cold-'))
      samples[i].cold.push(await time(c.args, {...c.env, NODE_COMPILE_CACHE: dir, XDG_CACHE_HOME: dir}, c.cwd))
      rmSync(dir, {recursive: true, force: true})
      const warm = warmCaches[i]
      samples[i].warm.push(await time(c.args, {...c.env, NODE_COMPILE_CACHE: warm, XDG_CACHE_HOME: warm}, c.cwd))
    }
  }
  return commands.map((c, i) => {
    const pick = (list, key) => median(list.map((s) => s[key]))
    const {cold, warm} = samples[i]
    return {
      ...c,
      wall: {cold: pick(cold, 'wall'), warm: pick(warm, 'wall')},
      cpu: {cold: pick(cold, 'cpu'), warm: pick(warm, 'cpu')},
    }
  })
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

const project = path.join(scratch, 'project')
const loadAtStart = os.loadavg()[0]
try {
  await time([bin, 'init', '--directory', project, '--project', 'shop', '--ci', 'none', '--yes'], {}, undefined)
  const inProject = {
    cwd: project,
    env: relay ? {KUBECONFIG: relay.kubeconfig, RETAILOPS_KUBE_CONTEXT: relay.context} : {},
  }
  const commands = [
    {label: 'node -e 0', args: ['-e', '0']},
    {label: 'retailops --version', args: [bin, '--version'], goal: 2},
    {label: 'retailops --help', args: [bin, '--help'], goal: 2},
    {label: 'config validate', args: [bin, 'config', 'validate'], goal: 4, ...inProject},
    {
      label: 'config validate (edited)',
      args: [bin, 'config', 'validate'],
      goal: 4,
      ...inProject,
      env: {...inProject.env, RETAILOPS_CONFIG_CACHE: '0'},
    },
    {label: 'slo rules', args: [bin, 'slo', 'rules'], goal: 4, ...inProject},
    {label: 'dr plan', args: [bin, 'dr', 'plan'], goal: 4, ...inProject},
    ...(relay ? [{label: 'rollout status', args: [bin, 'rollout', 'status'], goal: 4, ...inProject}] : []),
    {label: 'render (6 services)', args: [bin, 'render'], goal: 6, ...inProject},
  ]
  // The old build's run of each command right after this build's, in every round.
  const old = baseline
    ? commands
        .filter((c) => c.args[0] === bin)
        .map((c) => ({...c, label: `${c.label} (old)`, args: [baseline, ...c.args.slice(1)], old: true}))
    : []
  const measured = await measureAll(commands.flatMap((c) => [c, ...old.filter((o) => o.label === `${c.label} (old)`)]))
  const rows = measured.filter((r) => !r.old)
  const base = rows[0]
  console.log(
    `${bin}\nNode ${process.version}, ${os.cpus().length} cores, load ${loadAtStart.toFixed(1)} at the start and ${os.loadavg()[0].toFixed(1)} at the end, median of ${runs} runs each`,
  )
  console.log(
    `commands that connect: until the first connection to the API server${relay ? '' : ' (no sandbox KUBECONFIG: rollout status left out)'}`,
  )
  const missed = {}
  for (const measure of ['wall', 'cpu']) {
    console.log(`\n${measure === 'wall' ? 'wall time' : 'CPU time (user + system)'}`)
    console.log('command                   cold ms   warm ms   cold / node   warm / node   goal   cold     warm')
    for (const r of rows) {
      const ratio = (cache) => r[measure][cache] / base[measure][cache]
      const verdict = (cache) => {
        if (r.goal === undefined) return ''
        const met = ratio(cache) <= r.goal
        if (!met) missed[`${measure} ${cache}`] = (missed[`${measure} ${cache}`] ?? 0) + 1
        return met ? 'met' : 'MISSED'
      }
      const goal = r.goal === undefined ? '' : `${r.goal}x`
      console.log(
        `${r.label.padEnd(24)} ${r[measure].cold.toFixed(0).padStart(7)}   ${r[measure].warm.toFixed(0).padStart(7)}   ${ratio('cold').toFixed(2).padStart(11)}   ${ratio('warm').toFixed(2).padStart(11)}   ${goal.padEnd(4)}   ${verdict('cold').padEnd(6)}   ${verdict('warm')}`,
      )
    }
  }
  if (baseline) {
    console.log(
      `\nagainst --baseline ${baseline} (its runs interleaved with these): this build's median / the old one's`,
    )
    console.log('command                   CPU cold   CPU warm   wall cold   wall warm   old CPU cold / warm ms')
    for (const r of rows) {
      const o = measured.find((m) => m.old && m.label === `${r.label} (old)`)
      if (!o) continue
      const ratio = (measure, cache) => (r[measure][cache] / o[measure][cache]).toFixed(2)
      console.log(
        `${r.label.padEnd(24)} ${ratio('cpu', 'cold').padStart(8)}   ${ratio('cpu', 'warm').padStart(8)}   ${ratio('wall', 'cold').padStart(9)}   ${ratio('wall', 'warm').padStart(9)}   ${o.cpu.cold.toFixed(0).padStart(8)} / ${o.cpu.warm.toFixed(0)}`,
      )
    }
  }
  console.log('')
  for (const key of ['wall cold', 'wall warm', 'cpu cold', 'cpu warm'])
    console.log(`${key.padEnd(10)} ${missed[key] ? `${missed[key]} goal(s) MISSED` : 'every goal met'}`)
} finally {
  rmSync(scratch, {recursive: true, force: true})
  if (relay) rmSync(relay.dir, {recursive: true, force: true})
}
