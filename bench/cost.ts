/**
 * Cost benchmark: `retailops cost` on a cluster of 800 kwok nodes and 20,000 pods, against
 * `kubectl get pods -A -o json` alone (the bare cost of reading the pods).
 * Goals (issue 18): at most 0.5x kubectl's time, and under 300 MB peak memory (maximum RSS) in
 * every round; memory flat in the number of pods (--sizes measures it at each size).
 *
 *   bash bench/cost.sh [--rounds 3] [--nodes 800] [--pods 20000] [--sizes 5000,10000,20000]
 *   npx tsx bench/cost.ts [--rounds 3] [--bin bin/run.js] [--nodes 800] [--pods 20000]
 *                         [--sizes 5000,10000,20000] [--shared] [--keep] [--run NAME]
 *
 * By default everything runs in a scratch control plane of its own (bench/lib/scratch-cluster.ts:
 * a second etcd, kube-apiserver, controller manager and kwok controller from the sandbox's cached
 * binaries, on other ports, deleted at the end, also on Ctrl-C), so 20,000 pods never slow the
 * shared sandbox. --shared uses the cluster of KUBECONFIG instead (the sandbox's: small runs only);
 * with --keep and then --run NAME (the bench-cost-… prefix of the kept namespaces) a later run
 * reuses the nodes and pods of an earlier one, e.g. in a cluster held by
 * `npx tsx bench/lib/scratch-cluster.ts`, instead of waiting for kwok to run 20,000 pods again.
 *
 * Setup: the nodes (bench-cost-<run>-<pool>-<i>, labelled retailops.dev/bench=<run>, tainted so
 * no one else's pods land on them) in the general, memory-optimised and spot pools over three
 * zones, and pods bound to them directly (nodeName) in 10 namespaces bench-cost-<run>-<n>, as many
 * as the largest of --sizes, waited for until kwok reports every pod Running; then, size by size
 * downwards, pods are deleted (grace 0) to the next size. At each size
 * every round runs kubectl and retailops one after the other under /usr/bin/time -v (wall clock
 * and maximum resident set size). kubectl is the sandbox's (the control plane's version), never the
 * one on PATH: on this machine /usr/bin/kubectl is the Google Cloud SDK's dispatcher (v1.32.4). With --shared, everything is deleted afterwards unless --keep.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {execa} from 'execa'
import pLimit from 'p-limit'

import {KubeHttp} from '../src/kubernetes/http.js'
import {kubeHttp} from '../src/kubernetes/client.js'
import {sandboxKubectl, type ScratchCluster, startScratchCluster} from './lib/scratch-cluster.js'

const {values} = parseArgs({
  options: {
    rounds: {type: 'string', default: '3'},
    bin: {type: 'string', default: 'bin/run.js'},
    nodes: {type: 'string', default: '800'},
    pods: {type: 'string', default: '20000'},
    sizes: {type: 'string'},
    shared: {type: 'boolean', default: false},
    run: {type: 'string'},
    keep: {type: 'boolean', default: false},
  },
})
const ROOT = path.resolve(import.meta.dirname, '..')
const BIN = path.resolve(ROOT, values.bin)
const RUN = values.run ?? `bench-cost-${randomBytes(3).toString('hex')}`
const LABEL = 'retailops.dev/bench'
const NODES = Number(values.nodes)
const PODS = Number(values.pods)
const SIZES = (values.sizes ?? String(PODS))
  .split(',')
  .map(Number)
  .sort((a, b) => b - a)
if (SIZES.some((n) => !Number.isInteger(n) || n <= 0) || SIZES[0] > PODS)
  throw new Error(`--sizes ${values.sizes}: positive pod counts, none above --pods ${PODS}`)
const NAMESPACES = 10
let scratch: ScratchCluster | undefined
let k: KubeHttp

const POOLS = [
  {pool: 'general', type: 'm6i.xlarge', share: 0.6, cpu: '4', mem: '16Gi', acpu: '3920m', amem: '15Gi', spot: false},
  {
    pool: 'memory-optimised',
    type: 'r6i.2xlarge',
    share: 0.2,
    cpu: '8',
    mem: '64Gi',
    acpu: '7910m',
    amem: '62Gi',
    spot: false,
  },
  {pool: 'spot', type: 'm6i.2xlarge', share: 0.2, cpu: '8', mem: '32Gi', acpu: '7910m', amem: '30Gi', spot: true},
]
const SERVICES = ['catalog', 'cart', 'inventory', 'payments', 'orders', 'checkout', 'search', 'reports']

const nodeNames: string[] = []

/** A create that finds the object there already (--run NAME reuses an earlier --keep run) is done. */
async function tolerateExisting(method: string, url: string, options: Parameters<KubeHttp['request']>[2]) {
  await k.request(method, url, options).catch((error: unknown) => {
    if ((error as {statusCode?: number}).statusCode !== 409) throw error
  })
}

/** Deletes pods number from..to-1 at once (grace 0): the next, smaller size. */
async function removePods(from: number, to: number): Promise<void> {
  const limit = pLimit(32)
  await Promise.all(
    Array.from({length: to - from}, (_, j) => {
      const i = from + j
      return limit(() =>
        k
          .request('DELETE', `/api/v1/namespaces/${RUN}-${i % NAMESPACES}/pods/${SERVICES[i % SERVICES.length]}-${i}`, {
            query: {gracePeriodSeconds: 0},
          })
          .catch((error: unknown) => {
            if ((error as {statusCode?: number}).statusCode !== 404) throw error
          }),
      )
    }),
  )
  for (;;) {
    const left = await countPods(false)
    if (left <= from) return
    await new Promise((res) => setTimeout(res, 1000))
  }
}

/** This run's pods (Running ones only when asked). */
async function countPods(running: boolean): Promise<number> {
  let count = 0
  let token: string | undefined
  do {
    const page = await k.request<{items: {metadata: {namespace: string}}[]; metadata: {continue?: string}}>(
      'GET',
      '/api/v1/pods',
      {
        query: {
          labelSelector: 'retailops.dev/service',
          fieldSelector: running ? 'status.phase=Running' : undefined,
          limit: 5000,
          continue: token,
        },
      },
    )
    count += page.items.filter((p) => p.metadata.namespace.startsWith(`${RUN}-`)).length
    token = page.metadata.continue || undefined
  } while (token)
  return count
}

async function createNodes(): Promise<void> {
  const limit = pLimit(32)
  const zones = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']
  await Promise.all(
    POOLS.flatMap((p) =>
      Array.from({length: Math.round(NODES * p.share)}, (_, i) => {
        const name = `${RUN}-${p.pool}-${i}`
        nodeNames.push(name)
        return limit(() =>
          tolerateExisting('POST', '/api/v1/nodes', {
            body: {
              metadata: {
                name,
                annotations: {'kwok.x-k8s.io/node': 'fake'},
                labels: {
                  type: 'kwok',
                  [LABEL]: RUN,
                  'kubernetes.io/hostname': name,
                  'node.kubernetes.io/instance-type': p.type,
                  'topology.kubernetes.io/zone': zones[i % 3],
                  'retailops.dev/pool': p.pool,
                  'retailops.dev/capacity-type': p.spot ? 'spot' : 'on-demand',
                },
              },
              spec: {taints: [{key: LABEL, value: RUN, effect: 'NoSchedule'}]},
              status: {
                capacity: {cpu: p.cpu, memory: p.mem, pods: '110'},
                allocatable: {cpu: p.acpu, memory: p.amem, pods: '110'},
              },
            },
          }),
        )
      }),
    ),
  )
  for (let n = 0; n < NAMESPACES; n++)
    await tolerateExisting('POST', '/api/v1/namespaces', {
      body: {metadata: {name: `${RUN}-${n}`, labels: {[LABEL]: RUN}}},
    })
  // Pods need their namespace's default ServiceAccount (made by the controller manager).
  for (let n = 0; n < NAMESPACES; n++)
    for (let i = 0; i < 120; i++) {
      const ok = await k
        .request('GET', `/api/v1/namespaces/${RUN}-${n}/serviceaccounts/default`)
        .then(() => true)
        .catch(() => false)
      if (ok) break
      await new Promise((res) => setTimeout(res, 500))
    }
}

/** Pods number from..to-1, bound to the bench nodes, then waited for until all are Running. */
async function addPods(from: number, to: number): Promise<void> {
  const limit = pLimit(32)
  const started = Date.now()
  if ((await countPods(false)) >= to) from = to // --run: there already
  await Promise.all(
    Array.from({length: to - from}, (_, j) => {
      const i = from + j
      const service = SERVICES[i % SERVICES.length]
      return limit(() =>
        tolerateExisting('POST', `/api/v1/namespaces/${RUN}-${i % NAMESPACES}/pods`, {
          body: {
            metadata: {
              name: `${service}-${i}`,
              labels: {'retailops.dev/service': service, 'app.kubernetes.io/name': service, team: `team-${i % 7}`},
            },
            spec: {
              nodeName: nodeNames[i % nodeNames.length],
              tolerations: [{key: LABEL, operator: 'Equal', value: RUN, effect: 'NoSchedule'}],
              containers: [
                {
                  name: 'app',
                  image: 'registry.k8s.io/pause:3.10',
                  resources: {requests: {cpu: '100m', memory: '128Mi'}, limits: {cpu: '500m', memory: '256Mi'}},
                },
                ...(i % 4 === 0
                  ? [
                      {
                        name: 'sidecar',
                        image: 'registry.k8s.io/pause:3.10',
                        resources: {requests: {cpu: '10m', memory: '32Mi'}},
                      },
                    ]
                  : []),
              ],
            },
          },
        }),
      )
    }),
  )
  process.stderr.write(
    `created pods ${from}..${to - 1} in ${((Date.now() - started) / 1000).toFixed(0)} s; waiting for Running…\n`,
  )
  while ((await countPods(true)) < to) await new Promise((res) => setTimeout(res, 3000))
  process.stderr.write(`${to} pods Running after ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
}

async function cleanup(): Promise<void> {
  const limit = pLimit(8)
  await Promise.all(
    Array.from({length: NAMESPACES}, (_, n) =>
      limit(async () => {
        await k
          .request('DELETE', `/api/v1/namespaces/${RUN}-${n}/pods`, {query: {gracePeriodSeconds: 0}})
          .catch(() => undefined)
        await k.request('DELETE', `/api/v1/namespaces/${RUN}-${n}`).catch(() => undefined)
      }),
    ),
  )
  for (let i = 0; i < 120; i++) {
    const left = (
      await k.request<{items: unknown[]}>('GET', '/api/v1/namespaces', {query: {labelSelector: `${LABEL}=${RUN}`}})
    ).items.length
    if (left === 0) break
    await new Promise((res) => setTimeout(res, 1000))
  }
  await k.request('DELETE', '/api/v1/nodes', {query: {labelSelector: `${LABEL}=${RUN}`}}).catch(() => undefined)
}

interface Measure {
  seconds: number
  maxRssMb: number
}

/** One run under /usr/bin/time -v: wall clock and maximum resident set size. */
async function timed(cmd: string, args: string[], cwd: string): Promise<Measure> {
  const r = await execa('/usr/bin/time', ['-v', cmd, ...args], {
    cwd,
    env: {CI: 'true'},
    stdout: 'ignore',
    reject: false,
  })
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.slice(-2000)}`)
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr)!
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)!
  return {
    seconds: Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]),
    maxRssMb: Number(rss[1]) / 1024,
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-cost-'))
  writeFileSync(
    path.join(dir, 'retailops.yaml'),
    `project: shop\nregistry: {url: 127.0.0.1:5000}\nservices:\n${SERVICES.map((s) => `  ${s}: {tier: ${s === 'reports' ? 'tolerant' : 'operational'}, scaling: {minReplicas: 2, maxReplicas: 50, rpsPerPod: 100}}`).join('\n')}\n`,
  )
  let interrupted = false
  process.once('SIGINT', () => {
    interrupted = true
  })
  try {
    if (!values.shared) {
      // Pods are bound by nodeName: no scheduler needed.
      scratch = await startScratchCluster({name: 'cost', disable: ['kube-scheduler']})
      Object.assign(process.env, scratch.env)
    }
    k = kubeHttp()
    const setupStarted = Date.now()
    await createNodes()
    const rows: string[] = []
    const verdicts: boolean[] = []
    // The largest size first (one wait for kwok to run every pod), then pods are deleted down to each smaller one.
    await addPods(0, SIZES[0])
    let present = SIZES[0]
    for (const size of SIZES) {
      if (interrupted) break
      if (size < present) await removePods(size, present)
      present = size
      const total = (await execa(sandboxKubectl(), ['get', 'pods', '-A', '--no-headers'])).stdout.split('\n').length
      const kubectl: Measure[] = []
      const cost: Measure[] = []
      for (let round = 0; round < Number(values.rounds) && !interrupted; round++) {
        kubectl.push(await timed(sandboxKubectl(), ['get', 'pods', '-A', '-o', 'json'], dir))
        cost.push(await timed(process.execPath, [BIN, 'cost', '--window', '24h', '--json'], dir))
        process.stderr.write(
          `${size} pods, round ${round + 1}: kubectl ${kubectl.at(-1)!.seconds.toFixed(2)} s ${kubectl.at(-1)!.maxRssMb.toFixed(0)} MB; retailops cost ${cost.at(-1)!.seconds.toFixed(2)} s ${cost.at(-1)!.maxRssMb.toFixed(0)} MB\n`,
        )
      }
      const kt = median(kubectl.map((m) => m.seconds))
      const ct = median(cost.map((m) => m.seconds))
      const ratios = cost.map((m, i) => m.seconds / kubectl[i].seconds)
      const worst = Math.max(...ratios)
      const peak = Math.max(...cost.map((m) => m.maxRssMb))
      const met = worst <= 0.5 && peak < 300
      verdicts.push(met)
      rows.push(
        `| ${size} (${total} in all) | ${kt.toFixed(2)} s, ${median(kubectl.map((m) => m.maxRssMb)).toFixed(0)} MB | ${ct.toFixed(2)} s | ${ratios.map((r) => r.toFixed(2)).join(' / ')} | ${cost.map((m) => m.maxRssMb.toFixed(0)).join(' / ')} MB | ${met ? 'met' : 'MISSED'} |`,
      )
    }
    const lines = [
      `Cluster: ${NODES} bench nodes, ${values.shared ? 'the cluster of KUBECONFIG (--shared)' : 'a scratch control plane of its own'}; ${Number(values.rounds)} rounds per size (set up in ${((Date.now() - setupStarted) / 1000).toFixed(0)} s including the runs).`,
      '',
      '| pods | kubectl get pods -A -o json (median) | retailops cost --window 24h --json (median) | time ratio per round | cost peak RSS per round | goal (every round at most 0.5x, under 300 MB) |',
      '| ---: | ---: | ---: | ---: | ---: | --- |',
      ...rows,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
    if (verdicts.some((v) => !v)) process.exitCode = 1
  } finally {
    if (scratch) await scratch.stop()
    else if (!values.keep) await cleanup()
    k?.close()
    rmSync(dir, {recursive: true, force: true})
  }
}

await main()
