// prewarm against the sandbox: the real kube-apiserver and kube-controller-manager (whose HPA
// controller enforces a raised minReplicas even without metrics), kwok nodes in three pools over
// three zones, and the real k6 against the bundled services running as local processes.
import type * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runPrewarm} from '../../../src/capacity/prewarm.js'
import {resolveEnvironment} from '../../../src/config/resolve.js'
import {kubeClients} from '../../../src/kubernetes/client.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {removeRunnerRbac} from '../../../src/capacity/schedule.js'
import {deleteState, readState, recordState} from '../../../src/capacity/state.js'
import {cli, CONTEXT, hours, PROMETHEUS, randomName, startService, startShop, type ServiceProc} from './helpers.js'
import {tempProject, type TempProject} from '../../support/project.js'
import {testContext} from '../../support/context.js'
import {startCli} from '../../support/cli.js'

const NS = randomName('t-capacity')

const CONFIG = `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
clusters: {main: {context: ${CONTEXT}}}
environments:
  test: {cluster: main, namespace: ${NS}, prometheus: ${PROMETHEUS}, production: false}
defaultEnvironment: test
services:
  catalog:
    tier: operational
    scaling: {rpsPerPod: 20, targetUtilization: 0.5, minReplicas: 2, maxReplicas: 10}
    slos:
      - {name: latency, objective: 99, sli: {type: latency, thresholdMs: 250}}
      - {name: availability, objective: 99.5, sli: {type: availability}}
  cart: {tier: operational, scaling: {rpsPerPod: 20}, synthetic: true}
  checkout:
    tier: revenue-critical
    scaling: {rpsPerPod: 10, targetUtilization: 0.5, maxReplicas: 20}
    dependsOn: [inventory, payments, orders]
    synthetic: true
    slos:
      - {name: latency, objective: 95, sli: {type: latency, thresholdMs: 2000}}
  inventory: {tier: revenue-critical, scaling: {rpsPerPod: 50}, synthetic: true}
  payments: {tier: revenue-critical, synthetic: true}
  orders: {tier: operational, scaling: {rpsPerPod: 10, targetUtilization: 1}, synthetic: true}
campaigns:
  - name: bf
    start: "${hours(3)}"
    end: "${hours(27)}"
    buffer: 0.2
    prewarmLead: 2h
    nodeHeadroom: true
    peak: {catalog: {rps: 40}, checkout: {rps: 10}, inventory: {rps: 120}}
    warmup: {share: 0.5, duration: 12s, mix: {browse: 60, search: 20, cart: 15, checkout: 5}}
  - name: past
    start: "${hours(-30)}"
    end: "${hours(-6)}"
    peak: {catalog: {rps: 40}}
  - name: small
    start: "${hours(3)}"
    end: "${hours(27)}"
    peak: {catalog: {rps: 1}}
  - name: norps
    start: "${hours(3)}"
    end: "${hours(27)}"
    peak: {payments: {rps: 100}}
  - name: huge
    start: "${hours(3)}"
    end: "${hours(27)}"
    peak: {catalog: {rps: 200}}
  - name: spotty
    start: "${hours(3)}"
    end: "${hours(27)}"
    buffer: 0.2
    peak: {orders: {rps: 50}}
  - name: stuck
    start: "${hours(3)}"
    end: "${hours(27)}"
    peak: {cart: {rps: 50}}
  - name: observed
    start: "${hours(3)}"
    end: "${hours(27)}"
    peak: {catalog: {multiplier: 2}}
`

interface Workload {
  name: string
  replicas: number
  pool?: string
  cpu?: string
  hpa?: {min: number; max: number; behavior?: k8s.V2HorizontalPodAutoscalerBehavior}
  crashloop?: boolean
  spot?: boolean
}

const WORKLOADS: Workload[] = [
  {
    name: 'catalog',
    replicas: 2,
    pool: 'general',
    hpa: {
      min: 2,
      max: 10,
      behavior: {scaleDown: {stabilizationWindowSeconds: 120, policies: [{type: 'Pods', value: 1, periodSeconds: 60}]}},
    },
  },
  {name: 'checkout', replicas: 2, pool: 'general', hpa: {min: 2, max: 20}},
  {name: 'inventory', replicas: 2},
  // orders lives on a pool of its own (one tainted 3-CPU kwok node this test creates), so the
  // shortfall does not depend on what other tests run on the shared pools.
  {name: 'orders', replicas: 1, pool: NS, spot: true, cpu: '1', hpa: {min: 1, max: 10}},
  {name: 'cart', replicas: 1, pool: 'general', crashloop: true, hpa: {min: 1, max: 10}},
]

function deployment(w: Workload): k8s.V1Deployment {
  const labels = {'app.kubernetes.io/name': w.name, ...(w.crashloop ? {'retailops.dev/simulate': 'crashloop'} : {})}
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {name: w.name, namespace: NS, labels: {'app.kubernetes.io/name': w.name}},
    spec: {
      replicas: w.replicas,
      selector: {matchLabels: {'app.kubernetes.io/name': w.name}},
      template: {
        metadata: {labels},
        spec: {
          ...(w.pool ? {nodeSelector: {'retailops.dev/pool': w.pool}} : {}),
          ...(w.spot
            ? {tolerations: [{key: 'retailops.dev/test', operator: 'Equal', value: NS, effect: 'NoSchedule'}]}
            : {}),
          containers: [
            {
              name: w.name,
              image: `127.0.0.1:5000/shop/${w.name}:it`,
              resources: {
                requests: {cpu: w.cpu ?? '50m', memory: '64Mi'},
                limits: {cpu: w.cpu ?? '200m', memory: '128Mi'},
              },
            },
          ],
        },
      },
    },
  }
}

function hpa(w: Workload): k8s.V2HorizontalPodAutoscaler {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: {name: w.name, namespace: NS},
    spec: {
      scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: w.name},
      minReplicas: w.hpa!.min,
      maxReplicas: w.hpa!.max,
      metrics: [{type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}}],
      ...(w.hpa!.behavior ? {behavior: w.hpa!.behavior} : {}),
    },
  }
}

describe('prewarm against the sandbox', () => {
  const k = () => kubeClients({context: CONTEXT})
  let project: TempProject
  let http: KubeHttp
  /** Raw spec of each HPA as created (server-defaulted), to compare restores with. */
  const original = new Map<string, Record<string, unknown>>()
  const services: ServiceProc[] = []
  const rawHpa = (name: string) =>
    http.request<{metadata: {annotations?: Record<string, string>}; spec: Record<string, unknown>}>(
      'GET',
      `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers/${name}`,
    )
  const stateExists = () =>
    k()
      .core.readNamespacedConfigMap({name: 'retailops-prewarm-bf', namespace: NS})
      .then(
        () => true,
        () => false,
      )

  beforeAll(async () => {
    project = await tempProject(CONFIG, {}, 't-capacity')
    http = new KubeHttp(k().kc)
    await k().core.createNamespace({body: {metadata: {name: NS, labels: {'retailops.dev/test': 'capacity'}}}})
    await k().core.createNode({
      body: {
        metadata: {
          name: `${NS}-0`,
          annotations: {'kwok.x-k8s.io/node': 'fake'},
          labels: {
            type: 'kwok',
            'kubernetes.io/hostname': `${NS}-0`,
            'retailops.dev/pool': NS,
            'topology.kubernetes.io/zone': 'eu-west-1a',
            'node.kubernetes.io/instance-type': 'm6i.large',
          },
        },
        spec: {taints: [{key: 'retailops.dev/test', value: NS, effect: 'NoSchedule'}]},
        status: {capacity: {cpu: '3', memory: '8Gi', pods: '20'}, allocatable: {cpu: '3', memory: '8Gi', pods: '20'}},
      },
    })
    for (let i = 0; i < 60; i++) {
      const node = await k().core.readNode({name: `${NS}-0`})
      if (node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) break
      await new Promise((r) => setTimeout(r, 500))
    }
    for (const w of WORKLOADS) {
      await k().apps.createNamespacedDeployment({namespace: NS, body: deployment(w)})
      if (w.hpa) await k().autoscaling.createNamespacedHorizontalPodAutoscaler({namespace: NS, body: hpa(w)})
    }
    for (const w of WORKLOADS.filter((x) => x.hpa)) original.set(w.name, (await rawHpa(w.name)).spec)
    // Wait for the starting replicas (the spot pod is one 4-CPU pod: it fits).
    for (let i = 0; i < 60; i++) {
      const list = await k().apps.listNamespacedDeployment({namespace: NS})
      if (
        list.items
          .filter((d) => !d.spec?.template?.metadata?.labels?.['retailops.dev/simulate'])
          .every((d) => (d.status?.readyReplicas ?? 0) >= (d.spec?.replicas ?? 0))
      )
        break
      await new Promise((r) => setTimeout(r, 1000))
    }
  })

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()))
    if (!http) return
    await k()
      .core.deleteNamespace({name: NS})
      .catch(() => {})
    await k()
      .core.deleteNode({name: `${NS}-0`})
      .catch(() => {})
    const pcs = await k()
      .scheduling.listPriorityClass({labelSelector: `retailops.io/namespace=${NS}`})
      .catch(() => ({items: []}))
    for (const pc of pcs.items)
      await k()
        .scheduling.deletePriorityClass({name: pc.metadata!.name!})
        .catch(() => {})
    await removeRunnerRbac(http, NS, 'bf').catch(() => {})
    http.close()
  })

  it('--dry-run prints the plan: replicas, pools, cost, and changes nothing', async () => {
    const r = await cli(['prewarm', '--campaign', 'bf', '--dry-run'], project.dir)
    expect(r.exitCode, r.stderr).toBe(0)
    const plan = r.doc!.result.plan
    const by = Object.fromEntries(plan.services.map((s: {service: string}) => [s.service, s]))
    // catalog: ceil(40 × 1.2 / (20 × 0.5)) = 5; checkout: ceil(10 × 1.2 / 5) = 3, +1 = 4; inventory: ceil(144 / 35) = 5, +1 = 6.
    expect(by.catalog).toMatchObject({capacityReplicas: 5, newMin: 5, newMax: 10, pool: 'general', hpa: 'catalog'})
    expect(by.checkout).toMatchObject({capacityReplicas: 3, newMin: 4, reason: 'N+1 (revenue-critical)'})
    expect(by.inventory).toMatchObject({capacityReplicas: 5, newMin: 6, pool: 'general', deployment: 'inventory'})
    expect(by.inventory.hpa).toBeUndefined()
    expect(plan.zones).toBe(3)
    expect(plan.poolLabel).toBe('retailops.dev/pool')
    expect(plan.pools.map((p: {pool: string}) => p.pool)).toEqual(
      expect.arrayContaining(['general', 'memory-optimised', 'spot', NS]),
    )
    expect(plan.cost.plannedPerHour).toBeGreaterThan(plan.cost.currentPerHour)
    expect(plan.problems).toEqual([])
    expect((await rawHpa('catalog')).spec).toEqual(original.get('catalog'))
    expect(await stateExists()).toBe(false)
  })

  it('refuses bad input with a clear message and applies nothing', async () => {
    const ended = await cli(['prewarm', '--campaign', 'past', '--no-warm'], project.dir)
    expect(ended.exitCode).toBe(12)
    expect(ended.doc!.error.message).toMatch(/ended at/)

    const below = await cli(['prewarm', '--campaign', 'small', '--no-warm'], project.dir)
    expect(below.exitCode).toBe(12)
    expect(below.doc!.error.message).toContain(
      'catalog: the peak of 1 rps needs 1 replicas, no more than the 2 its HPA keeps at least now',
    )

    const norps = await cli(['prewarm', '--campaign', 'norps', '--no-warm'], project.dir)
    expect(norps.exitCode).toBe(3)
    expect(norps.doc!.error.details.issues[0]).toMatchObject({
      path: 'services.payments.scaling.rpsPerPod',
      file: project.file,
    })
    expect(norps.doc!.error.details.issues[0].line).toBeGreaterThan(0)

    const huge = await cli(['prewarm', '--campaign', 'huge', '--no-warm'], project.dir)
    expect(huge.exitCode).toBe(12)
    expect(huge.doc!.error.message).toContain(
      "the plan needs 26 replicas, more than the HPA catalog's maxReplicas (10)",
    )
    const raised = await cli(['prewarm', '--campaign', 'huge', '--raise-max', '--dry-run'], project.dir)
    expect(raised.exitCode).toBe(0)
    expect(raised.doc!.result.plan.services[0]).toMatchObject({newMin: 26, newMax: 26, raisesMax: true})

    // A quota that the plan's extra pods would break.
    await k().core.createNamespacedResourceQuota({
      namespace: NS,
      body: {metadata: {name: 'pods'}, spec: {hard: {pods: '12'}}},
    })
    for (let i = 0; i < 30; i++) {
      const q = await k().core.readNamespacedResourceQuota({name: 'pods', namespace: NS})
      if (q.status?.used?.pods) break
      await new Promise((r) => setTimeout(r, 500))
    }
    const quota = await cli(['prewarm', '--campaign', 'bf', '--no-warm'], project.dir)
    await k().core.deleteNamespacedResourceQuota({name: 'pods', namespace: NS})
    expect(quota.exitCode).toBe(12)
    expect(quota.doc!.error.message).toMatch(/ResourceQuota pods: pods would be \d+ of a hard limit of 12/)

    // The warm-up's needs are checked before the first change too: where the services are, and k6.
    const noUrl = await cli(['prewarm', '--campaign', 'bf'], project.dir)
    expect(noUrl.exitCode).toBe(2)
    expect(noUrl.doc!.error.message).toContain('No URL for catalog, cart, checkout')
    const noK6 = await cli(['prewarm', '--campaign', 'bf', '--base-url', 'http://127.0.0.1:9'], project.dir, {
      RETAILOPS_K6: '/nonexistent/k6',
    })
    expect(noK6.exitCode).toBe(5)
    expect(noK6.doc!.error.message).toContain('k6 was not found (/nonexistent/k6)')
    expect(noK6.doc!.error.nextSteps[0]).toContain('RETAILOPS_K6')

    for (const w of WORKLOADS.filter((x) => x.hpa)) expect((await rawHpa(w.name)).spec).toEqual(original.get(w.name))
    expect(await stateExists()).toBe(false)
  })

  it('saves before changing: after a crash half-way, a re-run keeps the original values; capacity becomes Ready; restore is exact and idempotent', async () => {
    const loaded = await project.load()
    const env = resolveEnvironment(loaded.config, 'test', loaded.dir)
    // A crash right after the first HPA was changed (the process dies: no cleanup runs).
    let changes = 0
    await expect(
      runPrewarm(
        {
          project: loaded,
          env,
          campaign: 'bf',
          noWarm: true,
          afterChange: () => {
            changes += 1
            throw new Error('simulated crash')
          },
        },
        testContext(),
      ),
    ).rejects.toThrow('simulated crash')
    expect(changes).toBe(1)
    expect(await stateExists()).toBe(true)
    expect((await rawHpa('catalog')).spec.minReplicas).toBe(5)

    // Re-run: the saved state is kept (catalog's saved minReplicas is 2, not the 5 it has now).
    const rerun = await runPrewarm(
      {project: loaded, env, campaign: 'bf', noWarm: true, timeoutMs: 120_000},
      testContext(),
    )
    expect(rerun.apply!.resumed).toBe(true)
    const cm = await k().core.readNamespacedConfigMap({name: 'retailops-prewarm-bf', namespace: NS})
    const saved = JSON.parse(cm.data!['state.json'])
    expect(saved.targets['HorizontalPodAutoscaler/catalog'].minReplicas).toEqual({present: true, value: 2})
    expect(saved.targets['HorizontalPodAutoscaler/catalog'].behavior.value).toEqual(original.get('catalog')!.behavior)
    expect(saved.targets['HorizontalPodAutoscaler/checkout'].behavior).toEqual({present: false})
    expect(saved.targets['Deployment/inventory'].replicas).toEqual({present: true, value: 2})

    // The controller-manager enforced the floors: the Deployments reached the planned replicas.
    const ready = Object.fromEntries(rerun.apply!.ready.map((r) => [r.service, r]))
    expect(ready.catalog).toMatchObject({desired: 5, ready: 5})
    expect(ready.checkout).toMatchObject({desired: 4, ready: 4})
    expect(ready.inventory).toMatchObject({desired: 6, ready: 6})
    for (const [name, want] of [
      ['catalog', 5],
      ['checkout', 4],
      ['inventory', 6],
    ] as const) {
      const d = await k().apps.readNamespacedDeployment({name, namespace: NS})
      expect(d.status?.readyReplicas).toBe(want)
    }
    const raised = await rawHpa('checkout')
    expect(raised.spec.minReplicas).toBe(4)
    expect((raised.spec.behavior as {scaleDown: {selectPolicy: string}}).scaleDown.selectPolicy).toBe('Disabled')
    expect(raised.metadata.annotations?.['retailops.io/prewarm-campaign']).toBe('bf')

    const restored = await cli(['prewarm', 'restore', '--campaign', 'bf'], project.dir)
    expect(restored.exitCode, restored.stderr).toBe(0)
    expect(restored.doc!.result.restored).toBe(true)
    for (const name of ['catalog', 'checkout']) {
      const now = await rawHpa(name)
      expect(now.spec).toEqual(original.get(name))
      expect(now.metadata.annotations?.['retailops.io/prewarm-campaign']).toBeUndefined()
    }
    expect((await rawHpa('checkout')).spec.behavior).toBeUndefined()
    expect((await k().apps.readNamespacedDeployment({name: 'inventory', namespace: NS})).spec?.replicas).toBe(2)
    expect(await stateExists()).toBe(false)

    const again = await cli(['prewarm', 'restore', '--campaign', 'bf'], project.dir)
    expect(again.exitCode).toBe(0)
    expect(again.doc!.result).toMatchObject({restored: false})
    expect(again.doc!.result.message).toMatch(/Nothing to restore/)
  })

  it('the saved state only grows: entries are never overwritten, concurrent writers both land', async () => {
    const hpaTarget = (name: string, min: number) => ({
      kind: 'HorizontalPodAutoscaler' as const,
      name,
      service: name,
      minReplicas: {present: true, value: min},
      maxReplicas: {present: true, value: 10},
      behavior: {present: false},
    })
    await recordState(k(), NS, 'ledger', {targets: [hpaTarget('a', 2)]})
    await recordState(k(), NS, 'ledger', {targets: [hpaTarget('a', 9), hpaTarget('b', 3)]})
    await Promise.all([
      recordState(k(), NS, 'ledger', {targets: [hpaTarget('c', 4)]}),
      recordState(k(), NS, 'ledger', {targets: [hpaTarget('d', 5)], deployments: ['x']}),
    ])
    const {state} = (await readState(k(), NS, 'ledger'))!
    expect(Object.keys(state.targets).sort()).toEqual([
      'HorizontalPodAutoscaler/a',
      'HorizontalPodAutoscaler/b',
      'HorizontalPodAutoscaler/c',
      'HorizontalPodAutoscaler/d',
    ])
    expect(state.targets['HorizontalPodAutoscaler/a']).toMatchObject({minReplicas: {present: true, value: 2}})
    expect(state.headroom.deployments).toEqual(['x'])
    await deleteState(k(), NS, 'ledger')
  })

  it('restores exactly after the CLI is killed (SIGKILL) while waiting for capacity, and after Ctrl-C (exit 130)', async () => {
    const child = startCli(['prewarm', '--campaign', 'stuck', '--no-warm', '--timeout', '3m', '--json'], {
      cwd: project.dir,
    })
    // Kill it once the floor is raised: its pods never become Ready (a crash-looping image).
    for (let i = 0; i < 120; i++) {
      if ((await rawHpa('cart')).spec.minReplicas !== 1) break
      await new Promise((r) => setTimeout(r, 250))
    }
    expect((await rawHpa('cart')).spec.minReplicas).toBe(5)
    child.kill('SIGKILL')
    await child
    const restored = await cli(['prewarm', 'restore', '--campaign', 'stuck'], project.dir)
    expect(restored.exitCode, restored.stderr).toBe(0)
    expect((await rawHpa('cart')).spec).toEqual(original.get('cart'))

    // Ctrl-C while waiting: exit 130, and the error says how to put things back.
    const again = startCli(['prewarm', '--campaign', 'stuck', '--no-warm', '--timeout', '3m', '--json'], {
      cwd: project.dir,
    })
    for (let i = 0; i < 120; i++) {
      if ((await rawHpa('cart')).spec.minReplicas !== 1) break
      await new Promise((r) => setTimeout(r, 250))
    }
    again.kill('SIGINT')
    const interrupted = await again
    expect(interrupted.exitCode).toBe(130)
    const doc = JSON.parse(interrupted.stdout)
    expect(doc.error.code).toBe('INTERRUPTED')
    expect(doc.error.nextSteps[0]).toContain('retailops prewarm restore --campaign stuck')
    expect((await cli(['prewarm', 'restore', '--campaign', 'stuck'], project.dir)).exitCode).toBe(0)
    expect((await rawHpa('cart')).spec).toEqual(original.get('cart'))
  })

  it('adds node headroom for a pool without room, fails CAPACITY_NOT_READY with the reason, and restore removes it', async () => {
    // orders: ceil(50 × 1.2 / 10) = 6 pods of 1 CPU on a pool of one 3-CPU node that already runs one.
    const r = await cli(['prewarm', '--campaign', 'spotty', '--no-warm', '--timeout', '20s'], project.dir)
    expect(r.exitCode, r.stderr).toBe(31)
    expect(r.doc!.error.code).toBe('CAPACITY_NOT_READY')
    expect(r.doc!.error.nextSteps.join('\n')).toMatch(
      /orders: \d+ pods? \([^)]+\): Unschedulable: 0\/\d+ nodes are available: .*Insufficient cpu/,
    )
    expect(r.doc!.error.nextSteps.join('\n')).toContain('retailops prewarm restore --campaign spotty')
    const pcName = `retailops-headroom-${NS}-spotty`
    const pc = await k().scheduling.readPriorityClass({name: pcName})
    expect(pc.value).toBe(-10)
    expect(pc.preemptionPolicy).toBe('Never')
    const placeholders = await k().apps.readNamespacedDeployment({
      name: `retailops-headroom-spotty-${NS}`.slice(0, 63).replace(/-+$/, ''),
      namespace: NS,
    })
    // 5 more pods × 1 CPU against 3 − 1 = 2 CPU free: 3 CPU short → 3 placeholders of 1 CPU.
    expect(placeholders.spec?.replicas).toBe(3)
    const pod = placeholders.spec!.template.spec!
    expect(pod.priorityClassName).toBe(pcName)
    expect(pod.nodeSelector).toEqual({'retailops.dev/pool': NS})
    expect(pod.tolerations).toEqual([{key: 'retailops.dev/test', operator: 'Equal', value: NS, effect: 'NoSchedule'}])
    expect(pod.containers[0].resources?.requests).toEqual({cpu: '1', memory: '64Mi'})

    const restored = await cli(['prewarm', 'restore', '--campaign', 'spotty'], project.dir)
    expect(restored.exitCode, restored.stderr).toBe(0)
    expect(restored.doc!.result.deleted).toEqual([
      `Deployment/${placeholders.metadata!.name}`,
      `PriorityClass/${pcName}`,
    ])
    await expect(k().scheduling.readPriorityClass({name: pcName})).rejects.toBeTruthy()
    expect((await rawHpa('orders')).spec).toEqual(original.get('orders'))
  })

  // --schedule and --unschedule: test/integration/capacity/schedule-security.test.ts (a signed runner image by digest).

  describe('the k6 warm-up against the bundled services on 127.0.0.1', () => {
    const urls: Record<string, string> = {}
    beforeAll(async () => {
      Object.assign(urls, await startShop(services))
    })
    const flags = () => ['catalog', 'cart', 'checkout'].flatMap((s) => ['--service-url', `${s}=${urls[s]}`])

    it('the whole pre-warm: plan, apply, warm with k6 (thresholds from the SLOs pass), then restore', async () => {
      const stores = async () => ({
        stock: ((await (await fetch(`${urls.inventory}/stock`)).json()) as {items: unknown[]}).items,
        orders: ((await (await fetch(`${urls.orders}/orders`)).json()) as {total: number}).total,
        authorizations: ((await (await fetch(`${urls.payments}/authorizations`)).json()) as {total: number}).total,
      })
      const before = await stores()
      const r = await cli(['prewarm', '--campaign', 'bf', ...flags(), '--timeout', '2m'], project.dir)
      expect(r.exitCode, r.stderr + r.stdout.slice(0, 2000)).toBe(0)
      const w = r.doc!.result.warmup
      expect(w.passed).toBe(true)
      expect(w.behaviours.map((b: {behaviour: string}) => b.behaviour)).toEqual([
        'browse',
        'search',
        'cart',
        'checkout',
      ])
      for (const b of w.behaviours) {
        expect(b.requests, b.behaviour).toBeGreaterThan(0)
        expect(b.failedRate, b.behaviour).toBe(0)
      }
      expect(w.thresholds.map((t: {slo: string}) => t.slo)).toEqual([
        'catalog/latency',
        'catalog/availability',
        'checkout/latency',
      ])
      expect(w.thresholds.every((t: {ok: boolean}) => t.ok)).toBe(true)
      // The checkouts were synthetic: no stock reserved, no payment, no order.
      expect(await stores()).toEqual(before)
      expect(r.doc!.result.apply.ready.find((x: {service: string}) => x.service === 'catalog')).toMatchObject({
        desired: 5,
        ready: 5,
      })
      const restored = await cli(['prewarm', 'restore', '--campaign', 'bf'], project.dir)
      expect(restored.exitCode).toBe(0)
      expect((await rawHpa('catalog')).spec).toEqual(original.get('catalog'))
    })

    it("a slow service fails its latency threshold: exit 30 (WARMUP_THRESHOLD), with k6's numbers", async () => {
      const slow = await startService('catalog', {FAULT_LATENCY_MS: '400'})
      services.push(slow)
      const args = [
        'prewarm',
        '--campaign',
        'bf',
        '--warm-only',
        ...flags().map((f) => (f === `catalog=${urls.catalog}` ? `catalog=${slow.url}` : f)),
      ]
      const r = await cli(args, project.dir)
      expect(r.exitCode, r.stderr).toBe(30)
      const w = r.doc!.result.warmup
      expect(w.passed).toBe(false)
      const latency = w.thresholds.find((t: {slo: string}) => t.slo === 'catalog/latency')
      expect(latency).toMatchObject({metric: 'http_req_duration{service:catalog}', expression: 'p(99)<250', ok: false})
      expect(latency.observed).toBeGreaterThanOrEqual(400)
      expect(w.thresholds.find((t: {slo: string}) => t.slo === 'catalog/availability').ok).toBe(true)
    })

    it('a multiplier peak reads the observed traffic from Prometheus', async () => {
      const sdDir = process.env.RETAILOPS_PROMETHEUS_SD_DIR
      if (!sdDir) return
      const {writeFile, rm} = await import('node:fs/promises')
      const sd = `${sdDir}/${NS}.json`
      await writeFile(sd, JSON.stringify([{targets: [urls.catalog.replace('http://', '')], labels: {job: NS}}]))
      try {
        // ~20 rps for 40 s, so rate() over 30 s has samples (scrape interval 5 s).
        const until = Date.now() + 40_000
        while (Date.now() < until) {
          await Promise.all(
            Array.from({length: 4}, () => fetch(`${urls.catalog}/products`).then((x) => x.arrayBuffer())),
          )
          await new Promise((r) => setTimeout(r, 200))
        }
        // --traffic-label keeps other tests' catalogs (same Prometheus) out of the observed rate.
        const r = await cli(
          [
            'prewarm',
            '--campaign',
            'observed',
            '--dry-run',
            '--rate-window',
            '30s',
            '--lookback',
            '10m',
            '--traffic-label',
            `job=${NS}`,
            '--raise-max',
            '--allow-below-current',
          ],
          project.dir,
        )
        expect(r.exitCode, r.stderr).toBe(0)
        const s = r.doc!.result.plan.services[0]
        expect(s.peakSource).toBe('multiplier')
        expect(s.observedRps).toBeGreaterThan(5)
        expect(s.observedRps).toBeLessThan(60)
        expect(s.peakRps).toBeCloseTo(2 * s.observedRps, 1)
      } finally {
        await rm(sd, {force: true})
      }
    })
  })
})
