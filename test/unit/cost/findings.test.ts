import {describe, expect, it} from 'vitest'

import {allocate, GIB, type PricedNode} from '../../../src/cost/allocate.js'
import type {PodRecord} from '../../../src/cost/collect.js'
import {attributionFor, keyFunction, parseAggregation} from '../../../src/cost/cost.js'
import {findSavings, SLEEP_AT, THRESHOLDS} from '../../../src/cost/findings.js'
import {parseConfig} from '../../../src/config/parse.js'

const H = 3_600_000
const END = Date.UTC(2026, 10, 25, 12)
const START = END - 24 * H

const config = parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {}}
environments:
  production: {cluster: main, namespace: shop}
  staging: {cluster: main, namespace: shop-staging, production: false}
services:
  catalog: {tier: operational, scaling: {minReplicas: 2, maxReplicas: 20, rpsPerPod: 100, targetUtilization: 0.5}}
  reports: {tier: tolerant}
tenants:
  - {name: acme, model: dedicated-namespace}
`)

const general = {cpuHour: 0.03, memoryGiBHour: 0.004, source: 'prices.default'}
const nodes: PricedNode[] = [0, 1, 2, 3].map((i) => ({
  name: `g${i}`,
  pool: 'general',
  instanceType: 'm6i.xlarge',
  zone: 'a',
  spot: false,
  capacity: {cpu: 4, memory: 16 * GIB},
  allocatable: {cpu: 4, memory: 16 * GIB},
  createdMs: START - H,
  ready: true,
  price: general,
}))

const mk = (ns: string, name: string, extra: Partial<PodRecord> = {}): PodRecord => ({
  namespace: ns,
  name,
  node: 'g0',
  phase: 'Running',
  startMs: START - H,
  service: 'catalog',
  controllerKind: 'Deployment',
  controller: 'catalog',
  containers: [{name: 'app', requests: {cpu: 0.1, memory: 128 * 1024 ** 2}}],
  ...extra,
})

function findingsFor(
  pods: PodRecord[],
  opts: {
    usage?: Map<string, any>
    traffic?: any[]
    source?: 'prometheus' | 'requests'
    config?: ReturnType<typeof parseConfig>
  } = {},
) {
  const cfg = opts.config ?? config
  const r = allocate({
    nodes,
    pods,
    usage: opts.usage,
    windowStartMs: START,
    windowEndMs: END,
    attribute: attributionFor(cfg, new Map()),
  })
  return findSavings({
    containers: r.containers,
    nodes: r.nodes,
    config: cfg,
    windowHours: 24,
    traffic: opts.traffic,
    usageSource: opts.source ?? (opts.usage ? 'prometheus' : 'requests'),
    nonProduction: new Map([['shop-staging', 'staging']]),
    spotDiscount: 0.7,
  })
}

describe('savings findings', () => {
  it('flags replicas far above what the observed peak needs, saving the surplus pods', () => {
    const pods = Array.from({length: 8}, (_, i) => mk('shop', `catalog-${i}`))
    const {findings} = findingsFor(pods, {traffic: [{service: 'catalog', namespace: 'shop', avgRps: 40, peakRps: 120}]})
    const f = findings.find((x) => x.kind === 'excess-replicas')!
    // 120 req/s ÷ (100 × 0.5) = 2.4 → 3 pods; floor 2: need 3, run 8.
    expect(f.evidence).toMatchObject({replicas: 8, need: 3})
    const perPod = 0.1 * 0.03 + (128 / 1024) * 0.004
    expect(f.monthlySaving).toBeCloseTo(5 * perPod * 730, 9)
    expect(f.area).toBe('Compute')
    // Close to need: no finding.
    expect(
      findingsFor(pods.slice(0, 4), {
        traffic: [{service: 'catalog', namespace: 'shop', avgRps: 40, peakRps: 120}],
      }).findings.some((x) => x.kind === 'excess-replicas'),
    ).toBe(false)
  })

  it('says when traffic is unknown instead of guessing', () => {
    const {findings, skipped} = findingsFor([mk('shop', 'catalog-0')])
    expect(findings.some((x) => x.kind === 'excess-replicas')).toBe(false)
    expect(skipped.join('\n')).toMatch(/excess-replicas: no http_requests_total/)
    expect(skipped.join('\n')).toMatch(/overprovisioned-requests: no usage data/)
  })

  it('rightsizes requests far above the measured peak', () => {
    const pods = [0, 1].map((i) =>
      mk('shop', `catalog-${i}`, {containers: [{name: 'app', requests: {cpu: 2, memory: 4 * GIB}}]}),
    )
    const usage = new Map(
      pods.map((p) => [`shop/${p.name}/app`, {cpu: 0.1, memory: 512 * 1024 ** 2, cpuPeak: 0.2, memoryPeak: GIB}]),
    )
    const f = findingsFor(pods, {usage}).findings.find((x) => x.kind === 'overprovisioned-requests')!
    const cpuRec = 0.2 * THRESHOLDS.cpuHeadroom
    const memRec = GIB * THRESHOLDS.memoryHeadroom
    expect(f.evidence).toMatchObject({replicas: 2})
    expect(f.evidence.cpuRecommended).toBeCloseTo(cpuRec, 12)
    expect(f.monthlySaving).toBeCloseTo(2 * ((2 - cpuRec) * 0.03 + ((4 * GIB - memRec) / GIB) * 0.004) * 730, 9)
  })

  it('non-production namespaces save the hours outside the working week; silent ones save everything', () => {
    const staging = [mk('shop-staging', 'catalog-0'), mk('shop-staging', 'catalog-1')]
    const monthly = 2 * (0.1 * 0.03 + (128 / 1024) * 0.004) * 730
    const f = findingsFor(staging).findings.find((x) => x.kind === 'idle-non-production')!
    expect(f.monthlySaving).toBeCloseTo(monthly * (1 - 50 / 168), 9)
    // It names the command that acts on it, with the working hours the saving assumes, and the saving.
    expect(f.command).toBe(`retailops sleep --environment staging --at "${SLEEP_AT}"`)
    expect(f.action).toContain(`\`${f.command}\` saves ${f.monthlySaving.toFixed(2)} a month`)
    // With per-namespace traffic, a production namespace of configured services with no requests is idle too.
    const quiet = findingsFor([mk('shop-old', 'catalog-0')], {
      traffic: [{service: 'catalog', namespace: 'shop', avgRps: 5, peakRps: 9}],
    }).findings
    const q = quiet.find((x) => x.kind === 'idle-non-production' && x.namespace === 'shop-old')!
    expect(q.monthlySaving).toBeCloseTo(monthly / 2, 9)
    expect(q.evidence.noTraffic).toBe(true)
  })

  it('batch work and tolerant services on on-demand nodes could run on spot', () => {
    const job = mk('shop', 'nightly-1', {
      service: 'nightly',
      controllerKind: 'CronJob',
      controller: 'nightly',
      phase: 'Succeeded',
      startMs: END - 3 * H,
      endMs: END - H,
      containers: [{name: 'job', requests: {cpu: 2, memory: 2 * GIB}}],
    })
    const reports = mk('shop', 'reports-0', {service: 'reports', controller: 'reports'})
    const fs = findingsFor([job, reports]).findings.filter((x) => x.kind === 'spot-eligible-batch')
    const nightly = fs.find((x) => x.controller === 'nightly')!
    // 2 h of work in 24 h, extrapolated to 730 h, at 70 % off.
    const windowCost = 2 * (2 * 0.03 + 2 * 0.004)
    expect(nightly.monthlySaving).toBeCloseTo(((windowCost * 730) / 24) * 0.7, 9)
    expect(fs.some((x) => x.controller === 'reports')).toBe(true)
  })

  it('names the retailops.yaml change that moves a tolerant service to spot, with its monthly saving', () => {
    const placed = (services: string, pools = '    spot: {spot: true}\n') =>
      parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
nodePools:
  pools:
    general: {}
${pools}services:
${services}`)
    const spotFinding = (cfg: ReturnType<typeof parseConfig>, service = 'search') =>
      findingsFor([mk('shop', `${service}-0`, {service, controller: service})], {config: cfg}).findings.find(
        (x) => x.kind === 'spot-eligible-batch' && x.controller === service,
      )
    const plain = spotFinding(placed('  search: {tier: tolerant}\n'))!
    expect(plain.change).toBe('services.search.placement.spot: preferred')
    expect(plain.action).toContain(
      `Set services.search.placement.spot: preferred in retailops.yaml, then deploy (saving ${plain.monthlySaving.toFixed(2)} a month`,
    )
    expect(plain.monthlySaving).toBeCloseTo((0.1 * 0.03 + (128 / 1024) * 0.004) * 730 * 0.7, 9)
    // Its pools hold no spot pool: the change adds one.
    expect(spotFinding(placed('  search: {tier: tolerant, placement: {pools: [general]}}\n'))!.change).toBe(
      'services.search.placement: {pools: [general, spot], spot: preferred}',
    )
    // No spot pool declared: the change declares it.
    expect(spotFinding(placed('  search: {tier: tolerant}\n', ''))!.change).toContain(
      'nodePools.pools.spot: {spot: true',
    )
    // Already preferred: no change to propose, the cluster lacks spot room.
    const preferred = spotFinding(placed('  search: {tier: tolerant, placement: {spot: preferred}}\n'))!
    expect(preferred.change).toBeUndefined()
    expect(preferred.action).toContain('services.search.placement.spot is already preferred')
    // The service said never itself: no finding.
    expect(spotFinding(placed('  search: {tier: tolerant, placement: {spot: never}}\n'))).toBeUndefined()
  })

  it('finds spare nodes in an underused pool, keeping one of headroom', () => {
    const f = findingsFor([mk('shop', 'catalog-0')]).findings.find((x) => x.kind === 'idle-node-pool')!
    // 4 nodes almost empty: 3 nodes' worth is free; one is kept as headroom, so 2 can go.
    expect(f.evidence).toMatchObject({nodes: 4, removable: 2})
    expect(f.monthlySaving).toBeCloseTo(2 * (4 * 0.03 + 16 * 0.004) * 730, 9)
  })
})

describe('aggregation keys and attribution', () => {
  it('validates --by', () => {
    expect(parseAggregation(['namespace,service'])).toEqual(['namespace', 'service'])
    expect(parseAggregation(['label:team'])).toEqual(['label:team'])
    expect(() => parseAggregation(['colour'])).toThrow(/not an aggregation/)
  })

  it('joins several keys and marks missing ones __unallocated__', () => {
    const key = keyFunction(['namespace', 'label:team'])
    expect(key({namespace: 'shop', labels: {team: 'web'}} as never)).toBe('shop/web')
    expect(key({namespace: 'shop'} as never)).toBe('shop/__unallocated__')
  })

  it('attributes tenants by label, dedicated namespace, or namespace tenant labels; tiers by label or config', () => {
    const attr = attributionFor(
      config,
      new Map([
        ['shared', ['acme', 'globex']],
        ['one', ['globex']],
      ]),
    )
    expect(attr(mk('shop-acme', 'x'))).toEqual({tenant: 'acme', tier: 'operational'})
    expect(attr(mk('shop', 'x', {tenantLabel: 'initech', tierLabel: 'revenue-critical'}))).toEqual({
      tenant: 'initech',
      tier: 'revenue-critical',
    })
    expect(attr(mk('shared', 'x')).tenant).toBe('__shared__')
    expect(attr(mk('one', 'x')).tenant).toBe('globex')
    expect(attr(mk('kube-system', 'x', {service: 'coredns'}))).toEqual({
      tenant: '__unallocated__',
      tier: '__unallocated__',
    })
  })
})

describe('excess-replicas action: the autoscaler that holds the floor', () => {
  const pods = Array.from({length: 8}, (_, i) => mk('shop', `catalog-${i}`))
  const traffic = [{service: 'catalog', namespace: 'shop', avgRps: 40, peakRps: 120}]
  const withScaling = (scaling: string) =>
    parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {}}
environments:
  production: {cluster: main, namespace: shop, prometheus: http://127.0.0.1:9090}
services:
  catalog: {tier: operational, scaling: ${scaling}}
`)
  const actionFor = (scaling: string, servesScaledObjects?: boolean) => {
    const cfg = withScaling(scaling)
    const r = allocate({
      nodes,
      pods,
      windowStartMs: START,
      windowEndMs: END,
      attribute: attributionFor(cfg, new Map()),
    })
    const {findings} = findSavings({
      containers: r.containers,
      nodes: r.nodes,
      config: cfg,
      windowHours: 24,
      traffic,
      usageSource: 'requests',
      nonProduction: new Map(),
      spotDiscount: 0.7,
      servesScaledObjects,
    })
    return findings.find((x) => x.kind === 'excess-replicas')!.action
  }
  const metrics = (provider: string) =>
    `{minReplicas: 2, maxReplicas: 20, rpsPerPod: 100, targetUtilization: 0.5, provider: ${provider}, metrics: [{name: carts, query: 'sum(rate(carts_total[1m]))', target: 5}]}`

  it('names the HPA for a CPU-only autoscaled service', () => {
    const action = actionFor('{minReplicas: 2, maxReplicas: 20, rpsPerPod: 100, targetUtilization: 0.5}')
    expect(action).toBe(
      'Scale catalog to 3 (its HPA with minReplicas 2 keeps peak readiness; pre-warm before campaigns with retailops prewarm).',
    )
  })

  it('names the KEDA ScaledObject when the service scales with KEDA, never an HPA', () => {
    const action = actionFor(metrics('keda'))
    expect(action).toContain('its KEDA ScaledObject with minReplicaCount 2 keeps peak readiness')
    expect(action).not.toMatch(/HPA/)
  })

  it('names the HPA with External metrics for provider hpa', () => {
    expect(actionFor(metrics('hpa'))).toContain(
      'its HPA with minReplicas 2 (External metrics through prometheus-adapter) keeps peak readiness',
    )
  })

  it('decides auto as the cluster would: KEDA where ScaledObjects are served, else the HPA, either when unknown', () => {
    expect(actionFor(metrics('auto'), true)).toContain('its KEDA ScaledObject with minReplicaCount 2')
    expect(actionFor(metrics('auto'), false)).toContain('its HPA with minReplicas 2 (External metrics')
    expect(actionFor(metrics('auto'))).toContain(
      "its autoscaler's floor of 2 keeps peak readiness (a KEDA ScaledObject's minReplicaCount where the cluster serves KEDA, else an HPA's minReplicas)",
    )
  })

  it('names the configured count for a service without an autoscaler', () => {
    const action = actionFor('{minReplicas: 2, maxReplicas: 2, rpsPerPod: 100, targetUtilization: 0.5}')
    expect(action).toContain(
      'no autoscaler: maxReplicas is not above minReplicas, so services.catalog.scaling.minReplicas 2 is the count',
    )
    expect(action).not.toMatch(/HPA|ScaledObject/)
  })
})
