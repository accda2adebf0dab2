/**
 * Prewarm benchmark.
 *
 * 1. Planning at scale (pure, no cluster): node inventory and the campaign plan for a synthetic
 *    cluster of --nodes nodes and --pods pods with --services services, median of --rounds.
 * 2. Against the sandbox (skipped without KUBECONFIG): time to save, raise and reach Ready for
 *    --sandbox-services Deployments going from 2 to --replicas replicas each (the real
 *    kube-controller-manager enforcing the HPA floors), and the time to restore.
 *
 *   eval "$(bash scripts/sandbox.sh env)"
 *   npx tsx bench/prewarm.ts [--nodes 1000] [--pods 30000] [--services 50] [--rounds 5] [--sandbox-services 6] [--replicas 20]
 */
import {randomBytes} from 'node:crypto'
import {mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import type * as k8s from '@kubernetes/client-node'

import {summariseNodes} from '../src/capacity/cluster.js'
import {computePlan, type ServiceFacts} from '../src/capacity/plan.js'
import {runPrewarm, runRestore} from '../src/capacity/prewarm.js'
import {loadConfig} from '../src/config/load.js'
import {parseConfig} from '../src/config/parse.js'
import {resolveEnvironment} from '../src/config/resolve.js'
import {kubeClients} from '../src/kubernetes/client.js'
import {silentOutput} from '../src/ui/output.js'

const {values} = parseArgs({
  options: {
    nodes: {type: 'string', default: '1000'},
    pods: {type: 'string', default: '30000'},
    services: {type: 'string', default: '50'},
    rounds: {type: 'string', default: '5'},
    'sandbox-services': {type: 'string', default: '6'},
    replicas: {type: 'string', default: '20'},
  },
})
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

// 1. Planning at scale.
const pools = ['general', 'memory-optimised', 'spot']
const nodeCount = Number(values.nodes)
const nodes = Array.from({length: nodeCount}, (_, i) => ({
  metadata: {
    name: `n${i}`,
    labels: {
      'retailops.dev/pool': pools[i % 3],
      'topology.kubernetes.io/zone': `z${i % 3}`,
      'node.kubernetes.io/instance-type': 'm6i.xlarge',
    },
  },
  spec: {},
  status: {
    allocatable: {cpu: '3920m', memory: '15186460Ki', pods: '58'},
    conditions: [{type: 'Ready', status: 'True'}],
  },
})) as unknown as k8s.V1Node[]
const pods = Array.from({length: Number(values.pods)}, (_, i) => ({
  spec: {
    nodeName: `n${i % nodeCount}`,
    containers: [{name: 'c', resources: {requests: {cpu: '100m', memory: '128Mi'}}}],
  },
})) as unknown as k8s.V1Pod[]
const config = parseConfig('project: bench\nregistry: {url: r}\nservices: {a: {tier: tolerant}}\n')
const serviceCount = Number(values.services)
const facts: ServiceFacts[] = Array.from({length: serviceCount}, (_, i) => ({
  service: `s${i}`,
  tier: i % 3 === 0 ? 'revenue-critical' : 'operational',
  peak: {rps: 500 + i},
  rpsPerPod: 50,
  targetUtilization: 0.7,
  configMinReplicas: 2,
  configMaxReplicas: 100,
  workload: {
    name: `s${i}`,
    replicas: 3,
    readyReplicas: 3,
    requests: {cpu: 0.25, memory: 256 * 1024 ** 2},
    limits: {cpu: 0.5, memory: 512 * 1024 ** 2},
    pool: pools[i % 3],
    poolSource: 'nodeSelector',
  },
  hpa: {name: `s${i}`, minReplicas: 3, maxReplicas: 100},
}))
const times: number[] = []
for (let r = 0; r < Number(values.rounds); r++) {
  const t0 = performance.now()
  const inv = summariseNodes(nodes, pods, {prices: config.prices})
  computePlan({
    campaign: {
      name: 'bench',
      start: '2030-01-02T00:00:00Z',
      end: '2030-01-03T00:00:00Z',
      peak: {},
      buffer: 0.3,
      prewarmLead: '2h',
      nodeHeadroom: true,
      warmup: {share: 0.5, duration: '2m', mix: {}, abort: {errorRate: 0.05, p95Ms: 2000, after: '10s'}},
    },
    now: new Date('2030-01-01T00:00:00Z'),
    services: facts,
    zones: inv.zones,
    pools: inv.pools,
    quotas: [],
    currency: 'USD',
    nodeHeadroom: true,
    raiseMax: false,
    allowBelowCurrent: true,
  })
  times.push(performance.now() - t0)
}
console.log(
  `plan: ${nodeCount} nodes, ${pods.length} pods, ${serviceCount} services: median ${median(times).toFixed(1)} ms over ${times.length} rounds`,
)

// 2. Against the sandbox.
if (!process.env.KUBECONFIG) {
  console.log('sandbox: skipped (no KUBECONFIG; eval "$(bash scripts/sandbox.sh env)" first)')
  process.exit(0)
}
const ns = `t-capacity-bench-${randomBytes(3).toString('hex')}`
const n = Number(values['sandbox-services'])
const replicas = Number(values.replicas)
const context = process.env.RETAILOPS_KUBE_CONTEXT ?? 'kwok-retailops'
const k = kubeClients({context})
const names = Array.from({length: n}, (_, i) => `svc${i}`)
const dir = await mkdtemp(path.join(os.tmpdir(), 't-capacity-bench-'))
const start = new Date(Date.now() + 3 * 3_600_000).toISOString()
const end = new Date(Date.now() + 27 * 3_600_000).toISOString()
// rps so that ceil(rps × 1.0 / (10 × 1.0)) = replicas.
await writeFile(
  path.join(dir, 'retailops.yaml'),
  `project: bench\nregistry: {url: r}\nclusters: {main: {context: ${context}}}\nenvironments: {b: {cluster: main, namespace: ${ns}}}\nservices:\n${names.map((s) => `  ${s}: {tier: operational, scaling: {rpsPerPod: 10, targetUtilization: 1, maxReplicas: ${replicas}}}`).join('\n')}\ncampaigns:\n  - {name: bench, start: "${start}", end: "${end}", buffer: 0, nodeHeadroom: false, peak: {${names.map((s) => `${s}: {rps: ${replicas * 10}}`).join(', ')}}}\n`,
)
await k.core.createNamespace({body: {metadata: {name: ns}}})
try {
  for (const s of names) {
    await k.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: {name: s, labels: {'app.kubernetes.io/name': s}},
        spec: {
          replicas: 2,
          selector: {matchLabels: {'app.kubernetes.io/name': s}},
          template: {
            metadata: {labels: {'app.kubernetes.io/name': s}},
            spec: {
              nodeSelector: {'retailops.dev/pool': 'general'},
              containers: [{name: s, image: 'x', resources: {requests: {cpu: '10m', memory: '16Mi'}}}],
            },
          },
        },
      },
    })
    await k.autoscaling.createNamespacedHorizontalPodAutoscaler({
      namespace: ns,
      body: {
        metadata: {name: s},
        spec: {
          scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: s},
          minReplicas: 2,
          maxReplicas: replicas,
        },
      },
    })
  }
  const project = await loadConfig(path.join(dir, 'retailops.yaml'))
  const env = resolveEnvironment(project.config, 'b', dir)
  const ctx = {out: silentOutput}
  const t0 = performance.now()
  const result = await runPrewarm({project, env, campaign: 'bench', noWarm: true, timeoutMs: 300_000}, ctx)
  const applied = performance.now() - t0
  const t1 = performance.now()
  await runRestore({project, env, campaign: 'bench'}, ctx)
  const restored = performance.now() - t1
  console.log(
    `sandbox: ${n} services 2 → ${replicas} replicas (${n * (replicas - 2)} pods): plan + save + raise + Ready in ${(applied / 1000).toFixed(1)} s (wait ${(result.apply!.waitedMs / 1000).toFixed(1)} s); restore ${(restored / 1000).toFixed(2)} s`,
  )
} finally {
  await k.core.deleteNamespace({name: ns}).catch(() => {})
}
