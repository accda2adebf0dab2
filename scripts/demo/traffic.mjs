// Real traffic for the demo's canary. kwok pods run no processes, so the demo runs the service's
// stable and canary versions here on 127.0.0.1, registers them with the sandbox's Prometheus
// (file-SD, labelled with the rollout's namespace), and sends them bounded load until the rollout
// ends. The canary analysis then reads real request rates, errors and latencies.
//   node scripts/demo/traffic.mjs --project DIR --service catalog --namespace demo [--canary-env FAULT_ERROR_RATE=0.3]
import {spawn} from 'node:child_process'
import {rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {parseArgs} from 'node:util'

const {values: opt} = parseArgs({
  options: {
    project: {type: 'string'},
    service: {type: 'string', default: 'catalog'},
    namespace: {type: 'string'},
    route: {type: 'string', default: '/products'},
    rps: {type: 'string', default: '15'},
    'max-seconds': {type: 'string', default: '900'},
    'canary-env': {type: 'string', multiple: true, default: []},
  },
})
const cli = path.resolve(import.meta.dirname, '../../bin/run.js')
const sdDir = process.env.RETAILOPS_PROMETHEUS_SD_DIR
if (!opt.project || !opt.namespace || !sdDir)
  throw new Error('need --project, --namespace and RETAILOPS_PROMETHEUS_SD_DIR (eval "$(bash scripts/sandbox.sh env)")')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const deadline = Date.now() + Number(opt['max-seconds']) * 1000
const log = (m) => process.stderr.write(`[traffic] ${m}\n`)

async function rollout() {
  const child = spawn(process.execPath, [cli, 'rollout', 'status', opt.service, '--json'], {
    cwd: opt.project,
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  let out = ''
  for await (const chunk of child.stdout) out += chunk
  try {
    return JSON.parse(out).result?.rollouts?.[0]
  } catch {
    return undefined
  }
}

const freePort = () =>
  new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const {port} = srv.address()
      srv.close(() => resolve(port))
    })
  })

async function start(version, extraEnv) {
  const port = await freePort()
  const child = spawn(process.execPath, [path.join(opt.project, 'services', opt.service, 'src', 'main.ts')], {
    env: {...process.env, HOST: '127.0.0.1', PORT: String(port), APP_VERSION: version, LOG_LEVEL: 'warn', ...extraEnv},
    stdio: 'ignore',
  })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${url}/readyz`).catch(() => undefined))?.ok) return {url, child}
    await sleep(100)
  }
  throw new Error(`${opt.service} ${version} did not become ready on ${url}`)
}

// Phases in which the CLI that drives the rollout has stopped: the traffic is no longer needed.
const ended = new Set(['Healthy', 'Aborted', 'TimedOut', 'Inconclusive', 'Paused'])
let state
// An earlier, finished rollout of the service may still be on record: wait for a running one.
while (Date.now() < deadline && !(state?.canary?.version && state.stable?.version && !ended.has(state.phase))) {
  state = await rollout()
  await sleep(1000)
}
if (!state?.canary) throw new Error('no canary rollout appeared')
const canaryEnv = Object.fromEntries(opt['canary-env'].map((kv) => kv.split('=')))
log(
  `stable ${state.stable.version}, canary ${state.canary.version}${opt['canary-env'].length ? ` (${opt['canary-env'].join(' ')})` : ''}`,
)
const procs = [await start(state.stable.version, {}), await start(state.canary.version, canaryEnv)]
const sd = path.join(sdDir, `demo-${opt.namespace}-${opt.service}.json`)
writeFileSync(
  sd,
  JSON.stringify(
    procs.map((p) => ({targets: [new URL(p.url).host], labels: {service: opt.service, namespace: opt.namespace}})),
  ),
)

let stopping = false
const cleanup = () => {
  if (stopping) return
  stopping = true
  rmSync(sd, {force: true})
  for (const p of procs) p.child.kill('SIGTERM')
}
// The demo stops this helper when the deploy ends without a rollout to serve (a refused release).
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => (cleanup(), process.exit(0)))

let sent = 0
let errors = 0
const gap = 1000 / Number(opt.rps)
let running = true
const loops = procs.map(async ({url}) => {
  while (running && Date.now() < deadline) {
    fetch(`${url}${opt.route}`, {signal: AbortSignal.timeout(5000)})
      .then((r) => r.arrayBuffer().then(() => r.status >= 500 && errors++))
      .catch(() => errors++)
    sent++
    await sleep(gap)
  }
})
while (Date.now() < deadline) {
  await sleep(3000)
  const s = await rollout()
  if (!s || s.id !== state.id || ended.has(s.phase)) break
}
running = false
await Promise.allSettled(loops)
cleanup()
log(`sent ${sent} requests (${errors} errors); traffic stopped`)
