/**
 * The CLI's own overhead per canary step, beyond the time Kubernetes needs to make pods Ready.
 *
 *   eval "$(bash scripts/sandbox.sh env)"
 *   npx tsx bench/rollout.ts [--steps 10] [--replicas 10] [--runs 3] [--router gateway|replicas]
 *                            [--services 1] [--scratch]
 *   npx tsx bench/rollout.ts --services 20 --replicas 4 --steps 5 --runs 2 --scratch   # issue 18 item 4
 *
 * Each run deploys `--services` services (v1) with the real CLI, then drives a canary of v2 of
 * all of them together (as `deploy --canary` does: one drive() of every rollout) through
 * `--steps` setWeight steps with the rollout engine in this process (no analysis, no pauses).
 * --scratch runs it in a control plane of its own (bench/lib/scratch-cluster.ts, with the
 * sandbox's node pools and the Gateway API CRDs), so many services do not load the shared one.
 * A Kubernetes watch on the canary Deployment records when its Ready replicas reach each target;
 * every step's duration minus the time its pods took to become Ready (from the scale request) is
 * the CLI's overhead: state writes, route patches, reads and polling. The promotion (new template
 * on the stable Deployment, traffic back, clean-up) is measured the same way.
 */
import type {Deployment} from '../src/kubernetes/kinds.js'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import * as k8s from '@kubernetes/client-node'
import {stringify} from 'yaml'

import {loadConfig} from '../src/config/load.js'
import {kubeClients} from '../src/kubernetes/client.js'
import {KubeObjects} from '../src/kubernetes/objects.js'
import {drive} from '../src/rollout/engine.js'
import {deploymentProgress, PATHS} from '../src/rollout/kube.js'
import {claimRollouts, planRollouts} from '../src/rollout/start.js'
import {StateStore} from '../src/rollout/store.js'
import type {Output} from '../src/ui/output.js'
import {type ScratchCluster, startScratchCluster} from './lib/scratch-cluster.js'

const {values} = parseArgs({
  options: {
    steps: {type: 'string', default: '10'},
    replicas: {type: 'string', default: '10'},
    runs: {type: 'string', default: '3'},
    router: {type: 'string', default: 'gateway'},
    services: {type: 'string', default: '1'},
    scratch: {type: 'boolean', default: false},
  },
})
const BASE_SERVICES = ['catalog', 'cart', 'inventory', 'payments', 'orders', 'checkout', 'search']
const SERVICES = Array.from({length: Number(values.services)}, (_, i) =>
  i < BASE_SERVICES.length ? BASE_SERVICES[i] : `svc${String(i + 1).padStart(2, '0')}`,
)
const STEPS = Number(values.steps)
const REPLICAS = Number(values.replicas)
const RUNS = Number(values.runs)
const ROUTER = values.router as 'gateway' | 'replicas'
const ROOT = path.resolve(import.meta.dirname, '..')
let scratch: ScratchCluster | undefined
if (values.scratch) {
  scratch = await startScratchCluster({name: 'rollout'})
  Object.assign(process.env, scratch.env)
  await scratch.addSandboxNodes()
  await scratch.addGatewayApi()
}
const context = process.env.RETAILOPS_KUBE_CONTEXT ?? 'kwok-retailops'

const digest = (v: string) => `sha256:${createHash('sha256').update(v).digest('hex')}`

/** Every request the CLI's engine sends (watches apart), with how long the API server took to answer. */
interface RequestSample {
  method: string
  what: string
  ms: number
}

/** The most requests in flight at once (watches included): what the keep-alive pool (maxSockets 64) must hold. */
let inFlightMax = 0

/** Counts and times the requests a KubeHttp sends: what the drivers ask of the API server, and how fast it answers. */
function recordRequests(kube: KubeObjects, samples: RequestSample[]): void {
  const http = kube.http
  const request = http.request.bind(http)
  let inFlight = 0
  http.request = async (method: string, path: string, options: Parameters<typeof http.request>[2] = {}) => {
    inFlightMax = Math.max(inFlightMax, ++inFlight)
    if (options.query?.watch) return request(method, path, options).finally(() => inFlight--) as never
    const started = performance.now()
    try {
      return await request(method, path, options)
    } finally {
      inFlight--
      const parts = path.split('?')[0].split('/')
      // .../namespaces/<ns>/<resource>[/<name>]: the resource, and whether one object or the collection.
      const at = parts.indexOf('namespaces') + 2
      const what = at > 1 && parts[at] ? `${parts[at]}${parts[at + 1] ? '' : ' (list)'}` : parts.slice(-1)[0]
      samples.push({method, what, ms: performance.now() - started})
    }
  }
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** The scratch control plane's kube-apiserver (its command line names the scratch folder). */
function scratchApiserver(name: string): number | undefined {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      } catch {
        return ''
      }
    })()
    if (cmd.includes(`retailops-scratch-${name}`) && cmd.split('\0')[0].endsWith('kube-apiserver')) return Number(pid)
  }
  return undefined
}

interface StepSample {
  step: string
  totalMs: number
  podsReadyMs: number
  overheadMs: number
  /** Promotions: from "all steps passed" until the new version carries all traffic (CLI). */
  trafficMs?: number
  /** Promotions: from the stable rollout's completion until "promoted" (re-pin, clean-up; CLI). */
  finishMs?: number
}

/** Info lines with the time they were written: the driver reports every transition. */
class TimedOutput implements Output {
  readonly lines: {at: number; message: string}[] = []
  info(message: string): void {
    this.lines.push({at: performance.timeOrigin + performance.now(), message})
  }
  warn(message: string): void {
    this.info(`warn: ${message}`)
  }
  debug(): void {}
  stream(): void {}
  event(): void {}
  task() {
    return {update() {}, succeed() {}, fail() {}}
  }
}

interface RunResult {
  steps: StepSample[]
  promotions: StepSample[]
  wallMs: number
  requests: RequestSample[]
  /** CPU seconds the scratch API server used while the rollouts ran; undefined on the shared one. */
  apiserverCpu?: number
  /** CPU seconds this process (the drivers) used meanwhile. */
  cliCpu: number
}

async function run(index: number): Promise<RunResult> {
  const ns = `bench-rollout-${Math.random().toString(36).slice(2, 7)}`
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retailops-bench-'))
  const kube = new KubeObjects({context})
  const requests: RequestSample[] = []
  try {
    writeFileSync(
      path.join(dir, 'retailops.yaml'),
      stringify({
        project: 'bench',
        registry: {url: '127.0.0.1:5000', insecure: true},
        signing: {required: false},
        clusters: {sandbox: {context}},
        environments: {bench: {cluster: 'sandbox', namespace: ns, router: ROUTER, production: false}},
        services: Object.fromEntries(
          SERVICES.map((svc) => [
            svc,
            {
              tier: 'operational',
              scaling: {minReplicas: REPLICAS, maxReplicas: REPLICAS},
              rollout: {progressDeadline: '2m'},
            },
          ]),
        ),
      }),
    )
    execFileSync(
      process.execPath,
      [
        path.join(ROOT, 'bin/dev.js'),
        'deploy',
        ...SERVICES.flatMap((svc) => ['--image', `${svc}=127.0.0.1:5000/bench/${svc}:v1@${digest(`${svc}v1`)}`]),
        '--skip-verify',
        '--json',
      ],
      {cwd: dir, stdio: 'ignore', env: {...process.env, CI: '1'}},
    )
    const project = await loadConfig(path.join(dir, 'retailops.yaml'))
    const targets = []
    for (const svc of SERVICES) {
      if (ROUTER === 'gateway') {
        await kube.apply(PATHS.httproutes(ns), {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: {name: svc, namespace: ns},
          spec: {parentRefs: [{name: 'shop'}], rules: [{backendRefs: [{name: svc, port: 8080}]}]},
        })
      }
      const desired = (await kube.get<Deployment>(PATHS.deployments(ns), svc))!
      desired.spec!.template!.spec!.containers[0].image = `127.0.0.1:5000/bench/${svc}:v2@${digest(`${svc}v2`)}`
      desired.spec!.template!.metadata!.labels!['app.kubernetes.io/version'] = 'v2'
      targets.push({
        service: svc,
        namespace: ns,
        desired: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: {name: svc, namespace: ns, labels: desired.metadata.labels},
          spec: {replicas: REPLICAS, selector: desired.spec!.selector, template: desired.spec!.template},
        } as Deployment,
      })
    }
    const weights = Array.from({length: STEPS}, (_, i) => Math.round(((i + 1) * 100) / STEPS))
    const steps = weights.map((w) => ({setWeight: w}))

    // Ready replicas of the canary and of the stable Deployment over time, from a watch.
    const ready: Record<
      string,
      {at: number; ready: number; updated: number; generation: number; observed: number; complete: boolean}[]
    > = {}
    const watch = new k8s.Watch(kubeClients({context}).kc)
    const req = await watch.watch(
      PATHS.deployments(ns),
      {},
      (_type, obj: Deployment) => {
        const list = (ready[obj.metadata.name] ??= [])
        list.push({
          at: performance.timeOrigin + performance.now(),
          ready: obj.status?.readyReplicas ?? 0,
          updated: obj.status?.updatedReplicas ?? 0,
          generation: obj.metadata.generation ?? 0,
          observed: obj.status?.observedGeneration ?? 0,
          // Kubernetes' own "rollout complete" (the old pods gone too), as the engine waits for it.
          complete: deploymentProgress(obj).complete,
        })
      },
      () => {},
    )

    const out = new TimedOutput()
    recordRequests(kube, requests)
    const apiserver = scratch ? scratchApiserver(scratch.name) : undefined
    const apiserverCpuBefore = apiserver ? cpuSeconds(apiserver) : 0
    const cpuBefore = process.cpuUsage()
    const started = Date.now()
    const planned = await planRollouts(
      targets,
      {strategy: 'canary', steps, router: ROUTER},
      {kube, config: project.config, envRouter: ROUTER},
    )
    const store = new StateStore(kube)
    await claimRollouts(planned.states, store)
    const states = (await drive(planned.states, {kube, store}, {out})).states
    const wallMs = Date.now() - started
    const cpu = process.cpuUsage(cpuBefore)
    const cliCpu = (cpu.user + cpu.system) / 1e6
    const apiserverCpu = apiserver ? cpuSeconds(apiserver) - apiserverCpuBefore : undefined
    ;(req as {abort: () => void}).abort()
    for (const state of states)
      if (state.phase !== 'Healthy')
        throw new Error(`run ${index}: rollout of ${state.service} ended ${state.phase}: ${state.reason}`)

    const readyAt = (name: string, n: number, after: number) =>
      ready[name]?.find((r) => r.at >= after && r.ready >= n)?.at
    const samples: StepSample[] = []
    const promotions: StepSample[] = []
    for (const svc of SERVICES) {
      const find = (prefix: string, after = 0) =>
        out.lines.find((l) => l.at >= after && l.message.startsWith(`${svc}: ${prefix}`))?.at
      let stepStart = find(`canary ${svc}-canary created`)!
      for (const [i, w] of weights.entries()) {
        const scaling = out.lines.find((l) => l.at >= stepStart && l.message.startsWith(`${svc}: scaling canary to`))
        const end = find(i + 1 < weights.length ? `step ${i + 2}/` : 'all steps done', stepStart)!
        const pods = Math.ceil((REPLICAS * w) / 100)
        const scaledAt = scaling && scaling.at < end ? scaling.at : undefined
        const podsReady = scaledAt ? Math.max(0, (readyAt(`${svc}-canary`, pods, scaledAt) ?? scaledAt) - scaledAt) : 0
        samples.push({
          step: `${svc} ${w}%`,
          totalMs: end - stepStart,
          podsReadyMs: podsReady,
          overheadMs: end - stepStart - podsReady,
        })
        stepStart = end
      }
      // Promotion: the stable Deployment rolls to the new template (Kubernetes time), the rest is ours.
      const promoteStart = find('all steps passed')!
      const promoteEnd = find('promoted:')!
      const updateAt = find('the new version carries all traffic')!
      // The stable Deployment's rollout is complete the way the engine waits for it
      // (deploymentProgress: new pods ready and available, the old ones gone): Kubernetes' time.
      const stableDone =
        ready[svc]?.find((r) => r.at >= updateAt && r.complete && r.updated >= REPLICAS && r.generation > 0)?.at ??
        updateAt
      const podsReadyMs = stableDone - updateAt
      promotions.push({
        step: `${svc} promote`,
        totalMs: promoteEnd - promoteStart,
        podsReadyMs,
        overheadMs: promoteEnd - promoteStart - podsReadyMs,
        trafficMs: updateAt - promoteStart,
        finishMs: promoteEnd - stableDone,
      })
    }
    return {steps: samples, promotions, wallMs, requests, apiserverCpu, cliCpu}
  } finally {
    await kube.http.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined)
    kube.close()
    rmSync(dir, {recursive: true, force: true})
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)]

const all: StepSample[] = []
const promotions: StepSample[] = []
const requests: RequestSample[] = []
let wallMs = 0
let apiserverCpu = 0
let cliCpu = 0
for (let i = 1; i <= RUNS; i++) {
  const r = await run(i)
  all.push(...r.steps)
  promotions.push(...r.promotions)
  requests.push(...r.requests)
  wallMs += r.wallMs
  apiserverCpu += r.apiserverCpu ?? 0
  cliCpu += r.cliCpu
  const overheads = r.steps.map((s) => s.overheadMs)
  console.log(
    `run ${i}: ${SERVICES.length} services × ${STEPS} steps in ${(r.wallMs / 1000).toFixed(1)} s; per-step overhead median ${median(overheads).toFixed(0)} ms, max ${Math.max(...overheads).toFixed(0)} ms; promotion overhead median ${median(r.promotions.map((p) => p.overheadMs)).toFixed(0)} ms (pods ${median(r.promotions.map((p) => p.podsReadyMs)).toFixed(0)} ms)`,
  )
}
const overheads = all.map((s) => s.overheadMs)
const podTimes = all.map((s) => s.podsReadyMs)
console.log('')
console.log(
  `router ${ROUTER}, ${SERVICES.length} service(s) together, ${REPLICAS} replicas each, ${STEPS} setWeight steps × ${RUNS} runs (${all.length} steps); ${scratch ? 'a scratch control plane of its own' : "the sandbox's shared apiserver"}`,
)
console.log(
  `  step overhead (CLI):        median ${median(overheads).toFixed(0)} ms, p95 ${p95(overheads).toFixed(0)} ms, max ${Math.max(...overheads).toFixed(0)} ms`,
)
console.log(
  `  pods becoming Ready (k8s):  median ${median(podTimes).toFixed(0)} ms, max ${Math.max(...podTimes).toFixed(0)} ms`,
)
console.log(
  `  promotion overhead (CLI):   median ${median(promotions.map((p) => p.overheadMs)).toFixed(0)} ms, p95 ${p95(promotions.map((p) => p.overheadMs)).toFixed(0)} ms (stable rollout by k8s: median ${median(promotions.map((p) => p.podsReadyMs)).toFixed(0)} ms)`,
)
console.log(
  `    to full traffic ${median(promotions.map((p) => p.trafficMs ?? 0)).toFixed(0)} ms, after the stable rollout completed (re-pin, clean-up) ${median(promotions.map((p) => p.finishMs ?? 0)).toFixed(0)} ms (medians)`,
)
const slowest = [...promotions].sort((a, b) => b.overheadMs - a.overheadMs).slice(0, 3)
console.log(
  `    slowest: ${slowest.map((p) => `${p.step} ${p.overheadMs.toFixed(0)} ms (to full traffic ${(p.trafficMs ?? 0).toFixed(0)}, after the stable rollout ${(p.finishMs ?? 0).toFixed(0)})`).join('; ')}`,
)
const byKind = new Map<string, number[]>()
for (const r of requests) byKind.set(`${r.method} ${r.what}`, [...(byKind.get(`${r.method} ${r.what}`) ?? []), r.ms])
console.log(
  `  API requests by the drivers: ${requests.length} in ${(wallMs / 1000).toFixed(0)} s (${((requests.length * 1000) / wallMs).toFixed(1)}/s, ${(requests.length / all.length).toFixed(1)} per step), watches apart; answered in median ${median(requests.map((r) => r.ms)).toFixed(0)} ms, p95 ${p95(requests.map((r) => r.ms)).toFixed(0)} ms; at most ${inFlightMax} in flight at once (watches included)`,
)
for (const [kind, times] of [...byKind].sort((a, b) => b[1].length - a[1].length))
  console.log(
    `    ${kind.padEnd(34)} ${String(times.length).padStart(5)}  median ${median(times).toFixed(0).padStart(4)} ms, p95 ${p95(times).toFixed(0).padStart(5)} ms`,
  )
console.log(
  `  CPU while driving: the CLI ${cliCpu.toFixed(1)} s${scratch ? `, the scratch API server ${apiserverCpu.toFixed(1)} s` : ''} (wall ${(wallMs / 1000).toFixed(0)} s; load average now ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')})`,
)
console.log(
  `  goal < 1000 ms per step: ${p95(overheads) < 1000 ? 'met' : 'NOT met'} (p95; median ${median(overheads) < 1000 ? 'met' : 'NOT met'}); the promotion, a step too: ${p95(promotions.map((p) => p.overheadMs)) < 1000 ? 'met' : 'NOT met'} (p95)`,
)
await scratch?.stop()
process.exit(0)
