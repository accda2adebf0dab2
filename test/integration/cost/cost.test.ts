// `cost` against the sandbox cluster: this run's own kwok nodes in three pools (tainted so nothing
// else lands on them, selected with --node-selector so other engineers' pods do not count), ~300
// pods (a Deployment, a Job and bare pods bound to nodes), usage and traffic recorded into the real
// Prometheus with promtool. The expected costs are computed here, independently, from the objects
// read back from the API server and the prices in the test's configuration.
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type * as k8s from '@kubernetes/client-node'
import pLimit from 'p-limit'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadConfig, type LoadedConfig} from '../../../src/config/load.js'
import {type CostReport, runCost} from '../../../src/cost/cost.js'
import {kubeClients, kubeCredentials} from '../../../src/kubernetes/client.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {listObjects, streamObjects} from '../../../src/kubernetes/objects.js'
import {cli, randomName} from '../capacity/helpers.js'
import {backfill, counter, deleteSeries, gauge, PROMETHEUS, scalar, waitFor} from '../slo/prometheus.js'
import {runCli} from '../../support/cli.js'
import {testContext} from '../../support/context.js'

const RUN = randomName('t-cost')
const NS = {prod: RUN, staging: `${RUN}-staging`, acme: `${RUN}-acme`, batch: `${RUN}-batch`}
const TEST_LABEL = 'retailops.dev/test'
const GIB = 1024 ** 3
const MIB = 1024 ** 2
const H = 3_600_000

const yaml = `
project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {}}
environments:
  production: {cluster: main, namespace: ${NS.prod}, prometheus: ${PROMETHEUS}}
  staging: {cluster: main, namespace: ${NS.staging}, production: false}
defaultEnvironment: production
services:
  catalog: {tier: operational, scaling: {minReplicas: 2, maxReplicas: 20, rpsPerPod: 100, targetUtilization: 0.7}}
  checkout: {tier: revenue-critical}
  reports: {tier: tolerant}
  worker: {tier: operational}
tenants:
  - {name: acme, model: dedicated-namespace, namespace: ${NS.acme}}
prices:
  pools: {memory-optimised: {cpuHour: 0.05, memoryGiBHour: 0.006}}
  instanceTypes: {m6i.xlarge: {cpuHour: 0.04, memoryGiBHour: 0.005}}
  spotDiscount: 0.6
`

// The prices the configuration above implies, written out by hand.
const PRICE: Record<string, {cpu: number; mem: number}> = {
  general: {cpu: 0.04, mem: 0.005},
  'memory-optimised': {cpu: 0.05, mem: 0.006},
  spot: {cpu: 0.031611 * 0.4, mem: 0.004237 * 0.4},
}

const POOLS = [
  {pool: 'general', type: 'm6i.xlarge', count: 6, cpu: '4', mem: '16Gi', acpu: '3920m', amem: '15Gi', spot: false},
  {
    pool: 'memory-optimised',
    type: 'r6i.2xlarge',
    count: 2,
    cpu: '8',
    mem: '64Gi',
    acpu: '7910m',
    amem: '62Gi',
    spot: false,
  },
  {pool: 'spot', type: 'm6i.2xlarge', count: 1, cpu: '8', mem: '32Gi', acpu: '7910m', amem: '30Gi', spot: true},
]

function nodeManifest(name: string, p: (typeof POOLS)[number], zone: string): k8s.V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: {'kwok.x-k8s.io/node': 'fake'},
      labels: {
        type: 'kwok',
        [TEST_LABEL]: RUN,
        'kubernetes.io/hostname': name,
        'node.kubernetes.io/instance-type': p.type,
        'topology.kubernetes.io/zone': zone,
        'retailops.dev/pool': p.pool,
        'retailops.dev/capacity-type': p.spot ? 'spot' : 'on-demand',
      },
    },
    spec: {taints: [{key: TEST_LABEL, value: RUN, effect: 'NoSchedule'}]},
    status: {
      capacity: {cpu: p.cpu, memory: p.mem, pods: '250'},
      allocatable: {cpu: p.acpu, memory: p.amem, pods: '250'},
    },
  }
}

const toleration = [{key: TEST_LABEL, operator: 'Equal', value: RUN, effect: 'NoSchedule'}]

function barePod(
  ns: string,
  name: string,
  node: string,
  service: string,
  cpu: string,
  mem: string,
  extraLabels: Record<string, string> = {},
): k8s.V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {name, namespace: ns, labels: {'retailops.dev/service': service, ...extraLabels}},
    spec: {
      nodeName: node,
      tolerations: toleration,
      containers: [{name: 'app', image: 'registry.k8s.io/pause:3.10', resources: {requests: {cpu, memory: mem}}}],
    },
  }
}

function quantity(q: string | undefined): number {
  if (!q) return 0
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(q)!
  const n = Number(m[1])
  return m[2] === 'm' ? n / 1000 : m[2] === 'Ki' ? n * 1024 : m[2] === 'Mi' ? n * MIB : m[2] === 'Gi' ? n * GIB : n
}

const overlapH = (s: number, e: number, ws: number, we: number) => Math.max(0, Math.min(e, we) - Math.max(s, ws)) / H

describe('cost against the sandbox cluster', () => {
  const k = kubeClients()
  let project: LoadedConfig
  let dir: string
  const nodeNames: string[] = []
  let report: CostReport
  const usage = new Map<string, {cpu: number; mem: number}>()

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 't-cost-'))
    await writeFile(path.join(dir, 'retailops.yaml'), yaml)
    project = await loadConfig(path.join(dir, 'retailops.yaml'))

    for (const ns of Object.values(NS))
      await k.core.createNamespace({body: {metadata: {name: ns, labels: {[TEST_LABEL]: RUN}}}})
    const zones = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']
    for (const p of POOLS) {
      for (let i = 0; i < p.count; i++) {
        const name = `${RUN}-${p.pool}-${i}`
        await k.core.createNode({body: nodeManifest(name, p, zones[i % 3])})
        nodeNames.push(name)
      }
    }
    const inPool = (pool: string) => nodeNames.filter((n) => n.includes(`-${pool}-`))
    await waitFor(
      'the test nodes to be Ready',
      async () => {
        const nodes = await k.core.listNode({labelSelector: `${TEST_LABEL}=${RUN}`})
        return (
          nodes.items.length === nodeNames.length &&
          nodes.items.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
        )
      },
      60_000,
    )

    // A Deployment the scheduler places on the general pool, and a Job that runs to completion.
    const selector = {[TEST_LABEL]: RUN, 'retailops.dev/pool': 'general'}
    await k.apps.createNamespacedDeployment({
      namespace: NS.prod,
      body: {
        metadata: {name: 'catalog', labels: {'app.kubernetes.io/name': 'catalog'}},
        spec: {
          replicas: 12,
          selector: {matchLabels: {'app.kubernetes.io/name': 'catalog'}},
          template: {
            metadata: {labels: {'app.kubernetes.io/name': 'catalog', 'retailops.dev/service': 'catalog'}},
            spec: {
              nodeSelector: selector,
              tolerations: toleration,
              containers: [
                {
                  name: 'app',
                  image: 'registry.k8s.io/pause:3.10',
                  resources: {requests: {cpu: '250m', memory: '256Mi'}},
                },
              ],
            },
          },
        },
      },
    })
    await k.batch.createNamespacedJob({
      namespace: NS.batch,
      body: {
        metadata: {name: 'nightly-export'},
        spec: {
          completions: 3,
          parallelism: 3,
          template: {
            metadata: {labels: {'retailops.dev/service': 'nightly-export'}},
            spec: {
              restartPolicy: 'Never',
              nodeSelector: selector,
              tolerations: toleration,
              containers: [
                {name: 'job', image: 'registry.k8s.io/pause:3.10', resources: {requests: {cpu: '1', memory: '1Gi'}}},
              ],
            },
          },
        },
      },
    })

    const general = inPool('general')
    const memory = inPool('memory-optimised')
    const spot = inPool('spot')
    const pods: k8s.V1Pod[] = [
      ...Array.from({length: 30}, (_, i) =>
        barePod(
          NS.prod,
          `checkout-${i}`,
          i % 2 ? general[i % general.length] : memory[i % memory.length],
          'checkout',
          '500m',
          '512Mi',
        ),
      ),
      ...Array.from({length: 4}, (_, i) =>
        barePod(NS.prod, `reports-${i}`, general[i % general.length], 'reports', '1', '1Gi'),
      ),
      ...Array.from({length: 40}, (_, i) =>
        barePod(NS.staging, `catalog-${i}`, memory[i % memory.length], 'catalog', '100m', '128Mi'),
      ),
      ...Array.from({length: 60}, (_, i) =>
        barePod(NS.acme, `checkout-${i}`, general[i % general.length], 'checkout', '100m', '128Mi'),
      ),
      ...Array.from({length: 150}, (_, i) =>
        barePod(NS.batch, `worker-${i}`, spot[0], 'worker', '30m', '64Mi', {team: i % 3 ? 'data' : 'ml'}),
      ),
    ]
    const limit = pLimit(16)
    await Promise.all(
      pods.map((p) => limit(() => k.core.createNamespacedPod({namespace: p.metadata!.namespace!, body: p}))),
    )
    await waitFor(
      "every pod to run (the Job's to finish)",
      async () => {
        const all = await k.core.listPodForAllNamespaces({labelSelector: 'retailops.dev/service'})
        const mine = all.items.filter((p) => Object.values(NS).includes(p.metadata!.namespace!))
        const job = mine.filter(
          (p) => p.metadata!.namespace === NS.batch && p.metadata!.name!.startsWith('nightly-export'),
        )
        const running = mine.filter((p) => p.status?.phase === 'Running').length
        return running === pods.length + 12 && job.length >= 3 && job.every((p) => p.status?.phase === 'Succeeded')
      },
      180_000,
      2000,
    )

    // Usage (cAdvisor's metrics) and traffic for the last two hours, recorded into Prometheus.
    // The recording ends exactly where the cost window ends (cost runs "at" that time), so rate() sees
    // samples up to the window's edge and does not extrapolate: the usage the test knows is exactly
    // what Prometheus returns. Never record into the future: a block ending after "now" makes
    // Prometheus reject every scrape as out of bounds until that time passes.
    await new Promise((r) => setTimeout(r, 2000))
    const to = Date.now() - 1000
    const from = to - 2 * H
    const live = await k.core.listNamespacedPod({namespace: NS.prod})
    const series = []
    for (const p of live.items) {
      const name = p.metadata!.name!
      // catalog uses more CPU than it asks for (usage wins); checkout far less (overprovisioned).
      const u = name.startsWith('catalog-')
        ? {cpu: 0.4, mem: 200 * MIB}
        : name.startsWith('checkout-')
          ? {cpu: 0.05, mem: 100 * MIB}
          : undefined
      if (!u) continue
      usage.set(`${NS.prod}/${name}/app`, u)
      const labels = {namespace: NS.prod, pod: name, container: 'app', retailops_test: RUN}
      series.push(counter('container_cpu_usage_seconds_total', labels, from, to, 60_000, () => u.cpu))
      series.push(gauge('container_memory_working_set_bytes', labels, from, to, 60_000, u.mem))
    }
    // 30 req/s at most: catalog needs 2 pods (its floor), not 12.
    series.push(
      counter(
        'http_requests_total',
        {service: 'catalog', namespace: NS.prod, code: '200', retailops_test: RUN},
        from,
        to,
        60_000,
        () => 30,
      ),
    )
    await backfill(series)
    await waitFor(
      'the recorded usage to load',
      async () =>
        (await scalar(`count(count_over_time(container_cpu_usage_seconds_total{retailops_test="${RUN}"}[1h]))`)) ===
        usage.size,
      150_000,
      2000,
    )

    report = await runCost(
      {
        config: project.config,
        kube: {},
        prometheusUrl: PROMETHEUS,
        windowMs: H,
        window: '1h',
        by: ['namespace', 'service'],
        shareIdle: 'none',
        usage: 'auto',
        nodeSelector: `${TEST_LABEL}=${RUN}`,
        now: new Date(to),
      },
      testContext(),
    )
  }, 480_000)

  afterAll(async () => {
    // Pods first (grace 0: kwok has no kubelet to wait for), then the namespaces, then the nodes.
    for (const ns of Object.values(NS)) {
      await k.core.deleteCollectionNamespacedPod({namespace: ns, gracePeriodSeconds: 0}).catch(() => undefined)
      await k.core.deleteNamespace({name: ns}).catch(() => undefined)
    }
    await waitFor(
      'the test namespaces to go',
      async () => {
        const left = (await k.core.listNamespace({labelSelector: `${TEST_LABEL}=${RUN}`})).items.length
        return left === 0
      },
      120_000,
      1000,
    ).catch(() => undefined)
    for (const n of nodeNames) await k.core.deleteNode({name: n}).catch(() => undefined)
    await deleteSeries(`{retailops_test="${RUN}"}`).catch(() => undefined)
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  /** The independent computation: OpenCost's formula applied to the objects as the API server has them. */
  async function expected() {
    const ws = Date.parse(report.window.start)
    const we = Date.parse(report.window.end)
    const nodes = (await k.core.listNode({labelSelector: `${TEST_LABEL}=${RUN}`})).items
    const nodeInfo = new Map(
      nodes.map((n) => {
        const price = PRICE[n.metadata!.labels!['retailops.dev/pool']]
        const hours = overlapH(Date.parse(String(n.metadata!.creationTimestamp)), we, ws, we)
        const cap = {cpu: quantity(n.status!.capacity!.cpu), mem: quantity(n.status!.capacity!.memory)}
        const alloc = {cpu: quantity(n.status!.allocatable!.cpu), mem: quantity(n.status!.allocatable!.memory)}
        return [n.metadata!.name!, {price, hours, cap, alloc, usedCpu: 0, usedMem: 0}]
      }),
    )
    const byNamespace = new Map<string, number>()
    let pods = 0
    for (const ns of Object.values(NS)) {
      for (const p of (await k.core.listNamespacedPod({namespace: ns})).items) {
        const node = nodeInfo.get(p.spec!.nodeName ?? '')
        if (!node) continue
        pods += 1
        const start = Date.parse(String(p.status!.startTime ?? p.metadata!.creationTimestamp))
        const ends = (p.status!.containerStatuses ?? [])
          .map((c) => (c.state?.terminated?.finishedAt ? Date.parse(String(c.state.terminated.finishedAt)) : NaN))
          .filter(Number.isFinite)
        const end = ['Succeeded', 'Failed'].includes(p.status!.phase!) ? Math.max(...ends) : we
        const hours = overlapH(start, end, ws, we)
        for (const c of p.spec!.containers) {
          const u = usage.get(`${ns}/${p.metadata!.name}/${c.name}`)
          const cpu = Math.max(quantity(c.resources?.requests?.cpu), u?.cpu ?? 0)
          const mem = Math.max(quantity(c.resources?.requests?.memory), u?.mem ?? 0)
          const cpuCost = cpu * node.price.cpu * hours
          const memCost = (mem / GIB) * node.price.mem * hours
          node.usedCpu += cpuCost
          node.usedMem += memCost
          byNamespace.set(ns, (byNamespace.get(ns) ?? 0) + cpuCost + memCost)
        }
      }
    }
    let total = 0
    let idle = 0
    let overhead = 0
    for (const n of nodeInfo.values()) {
      total += (n.cap.cpu * n.price.cpu + (n.cap.mem / GIB) * n.price.mem) * n.hours
      idle +=
        Math.max(0, n.alloc.cpu * n.price.cpu * n.hours - n.usedCpu) +
        Math.max(0, (n.alloc.mem / GIB) * n.price.mem * n.hours - n.usedMem)
      overhead += ((n.cap.cpu - n.alloc.cpu) * n.price.cpu + ((n.cap.mem - n.alloc.mem) / GIB) * n.price.mem) * n.hours
    }
    return {byNamespace, total, idle, overhead, pods, nodes: nodes.length}
  }

  const close = (actual: number, want: number, rel = 1e-3) =>
    expect(Math.abs(actual - want)).toBeLessThanOrEqual(Math.abs(want) * rel + 1e-9)

  it("reads this run's nodes and every pod on them, with usage from Prometheus", async () => {
    const want = await expected()
    expect(report.counts.nodes).toBe(want.nodes)
    expect(report.counts.pods).toBe(want.pods)
    expect(want.pods).toBeGreaterThanOrEqual(290)
    expect(report.usage.source).toBe('prometheus')
    expect(report.usage.withUsage).toBe(usage.size)
    expect(report.traffic.source).toBe('prometheus')
  })

  it('matches an independent computation: node cost, allocation per namespace, idle and overhead', async () => {
    const want = await expected()
    close(report.totals.cost, want.total, 1e-9)
    close(report.totals.overhead, want.overhead, 1e-9)
    close(report.totals.idle, want.idle)
    for (const [ns, cost] of want.byNamespace)
      close(report.breakdowns.namespace.find((r) => r.name === ns)!.totalCost, cost)
    // Allocated + idle + overhead is the node cost, except where usage above requests overfills a node
    // (idle is never negative): then the allocations exceed it.
    expect(report.totals.allocated + report.totals.idle + report.totals.overhead).toBeGreaterThanOrEqual(
      report.totals.cost * (1 - 1e-9),
    )
  })

  it('prices each pool from the configuration: pools, then instance types, then the default with the spot discount', () => {
    const price = (pool: string) => report.pricing.pools.find((p) => p.pool === pool)!
    expect(price('general')).toMatchObject({
      cpuHour: 0.04,
      memoryGiBHour: 0.005,
      source: 'prices.instanceTypes.m6i.xlarge',
      nodes: 6,
      spot: false,
    })
    expect(price('memory-optimised')).toMatchObject({cpuHour: 0.05, source: 'prices.pools.memory-optimised', nodes: 2})
    expect(price('spot').spot).toBe(true)
    close(price('spot').cpuHour, 0.031611 * 0.4, 1e-12)
  })

  it('attributes to services, tenants and tiers; usage above the request is what is allocated', () => {
    const svc = (name: string) => report.breakdowns.service.find((r) => r.name === name)!
    // catalog runs 12 pods in prod (0.4 cores used of 0.25 asked) and 40 in staging at their requests.
    expect(svc('catalog').pods).toBe(52)
    expect(report.allocations.find((r) => r.name === `${NS.prod}/catalog`)!.cpuEfficiency).toBeCloseTo(1.6, 3)
    expect(report.allocations.find((r) => r.name === `${NS.prod}/checkout`)!.cpuEfficiency).toBeCloseTo(0.1, 3)
    expect(report.breakdowns.tenant.find((r) => r.name === 'acme')!.pods).toBe(60)
    expect(report.breakdowns.tier.find((r) => r.name === 'tolerant')!.pods).toBe(4)
    expect(report.breakdowns.tier.find((r) => r.name === '__unallocated__')!.pods).toBe(3) // the Job's service is not configured
    expect(report.allocations.at(-1)!.name).toBe('__idle__')
  })

  it('finds the savings of the cost table, each with a monthly figure', () => {
    const kinds = (k: string) => report.findings.filter((f) => f.kind === k)
    const excess = kinds('excess-replicas').find((f) => f.namespace === NS.prod && f.service === 'catalog')!
    expect(excess.evidence).toMatchObject({replicas: 12, need: 2})
    close(excess.monthlySaving, 10 * (0.4 * 0.04 + (256 / 1024) * 0.005) * 730)
    const over = kinds('overprovisioned-requests').find((f) => f.namespace === NS.prod && f.service === 'checkout')!
    expect(over.evidence.replicas).toBe(30)
    expect(over.monthlySaving).toBeGreaterThan(0)
    const staging = kinds('idle-non-production').find((f) => f.namespace === NS.staging)!
    expect(staging.evidence.environment).toBe('staging')
    // The finding names the command that acts on it and its saving: staging served no requests, so sleep it now.
    expect(staging.evidence.noTraffic).toBe(true)
    expect(staging.command).toBe('retailops sleep --environment staging')
    expect(staging.action).toContain(
      `\`retailops sleep --environment staging\`, saving ${staging.monthlySaving.toFixed(2)} a month`,
    )
    const spot = kinds('spot-eligible-batch').find((f) => f.service === 'reports')!
    close(spot.monthlySaving, 4 * (1 * 0.04 + 1 * 0.005) * 730 * 0.6)
    expect(report.potentialMonthlySaving).toBeCloseTo(
      report.findings.reduce((s, f) => s + f.monthlySaving, 0),
      9,
    )
  })

  it('shares idle proportionally with --share-idle, and the shares add up to the idle cost', async () => {
    const shared = await runCost(
      {
        config: project.config,
        kube: {},
        prometheusUrl: PROMETHEUS,
        windowMs: H,
        window: '1h',
        by: ['namespace'],
        shareIdle: 'weighted',
        usage: 'auto',
        nodeSelector: `${TEST_LABEL}=${RUN}`,
        now: new Date(report.window.end),
      },
      testContext(),
    )
    expect(shared.allocations.some((r) => r.name === '__idle__')).toBe(false)
    close(
      shared.allocations.reduce((s, r) => s + r.sharedCost, 0),
      shared.totals.idle,
      1e-6,
    )
  })

  it('reads the same cluster page by page: two items a page gives the report one page of 500 gives', async () => {
    const options = {
      config: project.config,
      kube: {},
      prometheusUrl: PROMETHEUS,
      windowMs: H,
      window: '1h',
      by: ['namespace', 'service'],
      shareIdle: 'none' as const,
      usage: 'auto' as const,
      nodeSelector: `${TEST_LABEL}=${RUN}`,
      now: new Date(report.window.end),
    }
    const paged = await runCost({...options, pageSize: 2}, testContext())
    // Each of this run's namespaces read two pods a page: every page a separate list request with a continue token.
    const http = new KubeHttp(kubeCredentials())
    let streamed = 0
    let listed = 0
    let mostPages = 0
    try {
      for (const ns of Object.values(NS)) {
        const pages: number[] = []
        streamed += await streamObjects(http, `/api/v1/namespaces/${ns}/pods`, () => undefined, {
          pageSize: 2,
          onPage: (_path, n) => pages.push(n),
        })
        listed += (await listObjects(http, `/api/v1/namespaces/${ns}/pods`)).length
        expect(pages.slice(0, -1).every((n, i) => n === 2 * (i + 1))).toBe(true)
        mostPages = Math.max(mostPages, pages.length)
      }
    } finally {
      http.close()
    }
    expect(mostPages).toBeGreaterThan(1)
    expect(streamed).toBe(listed)
    expect(paged.counts).toEqual(report.counts)
    expect(paged.allocations.map((r) => [r.name, r.totalCost.toFixed(9)])).toEqual(
      report.allocations.map((r) => [r.name, r.totalCost.toFixed(9)]),
    )
    close(paged.totals.cost, report.totals.cost, 1e-9)
  })

  it('the CLI: --json, --format csv, --html, and requests as the usage source when asked', async () => {
    const html = path.join(dir, 'cost.html')
    const json = await cli(
      ['cost', '--window', '1h', '--by', 'label:team', '--node-selector', `${TEST_LABEL}=${RUN}`, '--html', html],
      dir,
    )
    expect(json.exitCode, json.stderr).toBe(0)
    const rows = json.doc!.result.allocations as {name: string; pods: number}[]
    expect(rows.find((r) => r.name === 'data')!.pods).toBe(100)
    expect(rows.find((r) => r.name === 'ml')!.pods).toBe(50)
    const page = await readFile(html, 'utf8')
    expect(page).toContain('Cost report')
    expect(page).not.toMatch(/<script|<link /)
    await writeFile(path.join(os.tmpdir(), 'retailops-cost-report.html'), page)

    const csv = await runCli(
      [
        'cost',
        '--window',
        '1h',
        '--by',
        'namespace',
        '--format',
        'csv',
        '--usage',
        'requests',
        '--node-selector',
        `${TEST_LABEL}=${RUN}`,
      ],
      {cwd: dir},
    )
    expect(csv.exitCode, csv.stderr).toBe(0)
    const lines = csv.stdout.trim().split('\r\n')
    expect(lines[0]).toBe(
      'windowStart,windowEnd,aggregation,name,pods,containers,cpuCoreRequestAverage,cpuCoreUsageAverage,cpuCoreHours,cpuCost,cpuEfficiency,ramByteRequestAverage,ramByteUsageAverage,ramByteHours,ramCost,ramEfficiency,sharedCost,totalCost,totalEfficiency,hourlyCost,monthlyCost,currency',
    )
    expect(lines.some((l) => l.includes(`,${NS.staging},40,`))).toBe(true)
    // With --usage requests nothing is measured: efficiency columns are empty, not 100 %.
    const prodRow = lines.find((l) => l.includes(`,${NS.prod},`))!.split(',')
    expect(prodRow[10]).toBe('')
    expect(csv.stderr).toMatch(/usage: requests/)
    // The sandbox serves no metrics.k8s.io: forcing that source is a clear UNAVAILABLE, not a guess.
    const metricsApi = await cli(['cost', '--usage', 'metrics-api', '--node-selector', `${TEST_LABEL}=${RUN}`], dir)
    expect(metricsApi.exitCode).toBe(5)
    expect(metricsApi.doc!.error.message).toMatch(/metrics API \(metrics.k8s.io\) is not served/)
  })
}, 600_000)
