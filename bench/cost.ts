/**
 * Cost benchmark: `retailops cost` on a cluster of 200 kwok nodes and 5,000 pods, against
 * `kubectl get pods -A -o json` alone (the bare cost of reading the pods).
 * Goals: under 1.5x kubectl's time, and under 300 MB peak memory (maximum RSS).
 *
 *   eval "$(bash scripts/sandbox.sh env)"
 *   flock /tmp/retailops-build.lock npm run build      # the built CLI is what users run
 *   npx tsx bench/cost.ts [--rounds 5] [--bin bin/run.js] [--nodes 200] [--pods 5000] [--keep]
 *
 * Setup: 200 nodes (bench-cost-<run>-<pool>-<i>, labelled retailops.dev/bench=<run>, tainted so
 * no one else's pods land on them) in the general, memory-optimised and spot pools over three
 * zones, and 5,000 pods bound to them directly (nodeName) in 10 namespaces bench-cost-<run>-<n>,
 * waited for until kwok reports them Running. Each round runs kubectl and retailops one after the
 * other under /usr/bin/time -v (wall clock and maximum resident set size). Everything is deleted
 * afterwards (pods with grace 0, namespaces, then nodes) unless --keep.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {execa} from 'execa'
import pLimit from 'p-limit'

import {kubeClients} from '../src/kubernetes/client.js'

const {values} = parseArgs({
  options: {
    rounds: {type: 'string', default: '5'},
    bin: {type: 'string', default: 'bin/run.js'},
    nodes: {type: 'string', default: '200'},
    pods: {type: 'string', default: '5000'},
    keep: {type: 'boolean', default: false},
  },
})
const ROOT = path.resolve(import.meta.dirname, '..')
const BIN = path.resolve(ROOT, values.bin)
const RUN = `bench-cost-${randomBytes(3).toString('hex')}`
const LABEL = 'retailops.dev/bench'
const NODES = Number(values.nodes)
const PODS = Number(values.pods)
const NAMESPACES = 10
const k = kubeClients()

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

async function setup(): Promise<string[]> {
  const limit = pLimit(32)
  const names: string[] = []
  const zones = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']
  const started = Date.now()
  await Promise.all(
    POOLS.flatMap((p) =>
      Array.from({length: Math.round(NODES * p.share)}, (_, i) => {
        const name = `${RUN}-${p.pool}-${i}`
        names.push(name)
        return limit(() =>
          k.core.createNode({
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
    await k.core.createNamespace({body: {metadata: {name: `${RUN}-${n}`, labels: {[LABEL]: RUN}}}})
  await Promise.all(
    Array.from({length: PODS}, (_, i) => {
      const service = SERVICES[i % SERVICES.length]
      return limit(() =>
        k.core.createNamespacedPod({
          namespace: `${RUN}-${i % NAMESPACES}`,
          body: {
            metadata: {
              name: `${service}-${i}`,
              labels: {'retailops.dev/service': service, 'app.kubernetes.io/name': service, team: `team-${i % 7}`},
            },
            spec: {
              nodeName: names[i % names.length],
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
    `created ${names.length} nodes and ${PODS} pods in ${((Date.now() - started) / 1000).toFixed(0)} s; waiting for Running…\n`,
  )
  for (;;) {
    const r = await execa('kubectl', [
      'get',
      'pods',
      '-A',
      '-l',
      'retailops.dev/service',
      '--field-selector',
      'status.phase=Running',
      '--no-headers',
      '-o',
      'custom-columns=NS:.metadata.namespace',
    ])
    const running = r.stdout.split('\n').filter((l) => l.startsWith(RUN)).length
    if (running >= PODS) break
    await new Promise((res) => setTimeout(res, 3000))
  }
  return names
}

async function cleanup(): Promise<void> {
  const limit = pLimit(8)
  await Promise.all(
    Array.from({length: NAMESPACES}, (_, n) =>
      limit(async () => {
        await k.core
          .deleteCollectionNamespacedPod({namespace: `${RUN}-${n}`, gracePeriodSeconds: 0})
          .catch(() => undefined)
        await k.core.deleteNamespace({name: `${RUN}-${n}`}).catch(() => undefined)
      }),
    ),
  )
  for (let i = 0; i < 120; i++) {
    const left = (await k.core.listNamespace({labelSelector: `${LABEL}=${RUN}`})).items.length
    if (left === 0) break
    await new Promise((res) => setTimeout(res, 1000))
  }
  await k.core.deleteCollectionNode({labelSelector: `${LABEL}=${RUN}`}).catch(() => undefined)
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
    await setup()
    const total = (await execa('kubectl', ['get', 'pods', '-A', '--no-headers'])).stdout.split('\n').length
    const kubectl: Measure[] = []
    const cost: Measure[] = []
    for (let round = 0; round < Number(values.rounds) && !interrupted; round++) {
      kubectl.push(await timed('kubectl', ['get', 'pods', '-A', '-o', 'json'], dir))
      cost.push(await timed(process.execPath, [BIN, 'cost', '--window', '24h', '--json'], dir))
      process.stderr.write(
        `round ${round + 1}: kubectl ${kubectl.at(-1)!.seconds.toFixed(2)} s ${kubectl.at(-1)!.maxRssMb.toFixed(0)} MB; retailops cost ${cost.at(-1)!.seconds.toFixed(2)} s ${cost.at(-1)!.maxRssMb.toFixed(0)} MB\n`,
      )
    }
    const kt = median(kubectl.map((m) => m.seconds))
    const ct = median(cost.map((m) => m.seconds))
    const peak = Math.max(...cost.map((m) => m.maxRssMb))
    const ratio = ct / kt
    const lines = [
      `Cluster: ${total} pods in all (${PODS} bench pods on ${NODES} bench nodes, plus the sandbox's), ${kubectl.length} rounds, medians.`,
      '',
      '| command | wall time | max RSS |',
      '| --- | ---: | ---: |',
      `| kubectl get pods -A -o json | ${kt.toFixed(2)} s | ${median(kubectl.map((m) => m.maxRssMb)).toFixed(0)} MB |`,
      `| retailops cost --window 24h --json | ${ct.toFixed(2)} s | ${median(cost.map((m) => m.maxRssMb)).toFixed(0)} MB (peak ${peak.toFixed(0)} MB) |`,
      '',
      `time ratio ${ratio.toFixed(2)}x (goal < 1.5x): ${ratio < 1.5 ? 'met' : 'MISSED'}; peak memory ${peak.toFixed(0)} MB (goal < 300 MB): ${peak < 300 ? 'met' : 'MISSED'}`,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
    if (ratio >= 1.5 || peak >= 300) process.exitCode = 1
  } finally {
    if (!values.keep) await cleanup()
    rmSync(dir, {recursive: true, force: true})
  }
}

await main()
