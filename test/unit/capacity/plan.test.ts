import {describe, expect, it} from 'vitest'

import {
  computePlan,
  type PlanInput,
  requiredReplicas,
  type ServiceFacts,
  withRedundancy,
} from '../../../src/capacity/plan.js'
import {poolPrice, podHourlyCost} from '../../../src/config/prices.js'
import {formatCpu, formatMemory, GiB, parseQuantity} from '../../../src/kubernetes/quantity.js'
import {parseConfig} from '../../../src/config/parse.js'

const Mi = 1024 ** 2
const prices = parseConfig('project: p\nregistry: {url: r}\nservices: {a: {tier: tolerant}}\n').prices

function input(overrides: Partial<PlanInput> & {services: ServiceFacts[]}): PlanInput {
  return {
    campaign: {
      name: 'bf',
      start: '2030-11-27T00:00:00Z',
      end: '2030-11-28T00:00:00Z',
      peak: {},
      buffer: 0.1,
      prewarmLead: '2h',
      nodeHeadroom: true,
      warmup: {share: 0.5, duration: '2m', mix: {browse: 60}, abort: {errorRate: 0.05, p95Ms: 2000, after: '10s'}},
    },
    now: new Date('2030-11-26T22:00:00Z'),
    zones: ['a', 'b', 'c'],
    pools: [
      {
        name: 'general',
        nodes: 6,
        allocatable: {cpu: 6 * 3.92, memory: 6 * 14.5 * GiB, pods: 6 * 58},
        requested: {cpu: 20, memory: 10 * GiB, pods: 40},
        nodeSize: {cpu: 3.92, memory: 14.5 * GiB, pods: 58},
        price: poolPrice(prices, {pool: 'general', spot: false}),
      },
    ],
    quotas: [],
    currency: 'USD',
    nodeHeadroom: true,
    raiseMax: false,
    allowBelowCurrent: false,
    ...overrides,
  }
}

function svc(overrides: Partial<ServiceFacts> = {}): ServiceFacts {
  return {
    service: 'checkout',
    tier: 'revenue-critical',
    peak: {rps: 1200},
    rpsPerPod: 80,
    targetUtilization: 0.7,
    configMinReplicas: 2,
    configMaxReplicas: 50,
    workload: {
      name: 'checkout',
      replicas: 3,
      readyReplicas: 3,
      requests: {cpu: 0.5, memory: GiB},
      limits: {cpu: 1, memory: GiB},
      pool: 'general',
      poolSource: 'nodeSelector',
    },
    hpa: {name: 'checkout', minReplicas: 3, maxReplicas: 40},
    ...overrides,
  }
}

describe('replica arithmetic', () => {
  it('follows the reference example: 1,200 rps, 80 rps/pod, 70 %, 10 % buffer → 24', () => {
    expect(requiredReplicas(1200, 0.1, 80, 0.7)).toBe(24)
  })

  it('does not round exact products up through float noise', () => {
    // 400 × 1.3 / (40 × 1.0) is exactly 13, but 400 * 1.3 = 520.0000000000001 in floating point.
    expect(requiredReplicas(400, 0.3, 40, 1)).toBe(13)
  })

  it('adds N+1 for revenue-critical services, one per zone when zones outnumber N+1', () => {
    expect(withRedundancy(24, 'revenue-critical', 3)).toEqual({replicas: 25, reason: 'N+1 (revenue-critical)'})
    expect(withRedundancy(1, 'revenue-critical', 3)).toEqual({replicas: 3, reason: 'one per zone (3 zones)'})
    expect(withRedundancy(24, 'operational', 3).replicas).toBe(24)
  })
})

describe('computePlan', () => {
  it('plans replicas, HPA floors, cost and node headroom', () => {
    const plan = computePlan(input({services: [svc()]}))
    expect(plan.problems).toEqual([])
    const s = plan.services[0]
    expect(s.capacityReplicas).toBe(24)
    expect(s.replicas).toBe(25)
    expect(s.newMin).toBe(25)
    expect(s.newMax).toBe(40)
    expect(s.raisesMax).toBe(false)
    expect(s.action).toBe('raise')
    // 25 × (0.5 × 0.031611 + 1 × 0.004237) per hour
    expect(s.costPerHour).toBeCloseTo(25 * (0.5 * 0.031611 + 0.004237), 4)
    expect(s.currentCostPerHour).toBeCloseTo(3 * (0.5 * 0.031611 + 0.004237), 4)
    // 22 more pods × 0.5 CPU = 11 CPU; the pool has 23.52 − 20 = 3.52 free → 7.48 CPU short.
    const pool = plan.pools.find((p) => p.pool === 'general')!
    expect(pool.needed.cpu).toBeCloseTo(11)
    expect(pool.shortfall.cpu).toBeCloseTo(7.48)
    expect(pool.extraNodes).toBe(2)
    expect(pool.placeholder.replicas).toBe(15)
    expect(pool.placeholder.requests).toEqual({cpu: 0.5, memory: GiB})
    expect(plan.cost.campaignHours).toBe(24)
    expect(plan.cost.extraPerHour).toBeCloseTo(
      plan.cost.plannedPerHour + plan.cost.headroomPerHour - plan.cost.currentPerHour,
      4,
    )
  })

  it('refuses an ended campaign', () => {
    const plan = computePlan(input({services: [svc()], now: new Date('2030-12-01T00:00:00Z')}))
    expect(plan.problems.map((p) => p.code)).toContain('campaign-ended')
  })

  it('refuses a peak below current capacity unless allowed, and then leaves the floor alone', () => {
    const small = svc({
      peak: {rps: 50},
      hpa: {name: 'checkout', minReplicas: 4, maxReplicas: 10},
      workload: {...svc().workload!, replicas: 6},
    })
    const refused = computePlan(input({services: [small]}))
    expect(refused.problems).toHaveLength(1)
    expect(refused.problems[0]).toMatchObject({code: 'below-current', service: 'checkout'})
    expect(refused.problems[0].message).toContain('needs 3 replicas, no more than the 4 its HPA keeps at least now')
    const allowed = computePlan(input({services: [small], allowBelowCurrent: true}))
    expect(allowed.problems).toEqual([])
    expect(allowed.services[0]).toMatchObject({action: 'unchanged', newMin: 4})
  })

  it('raises a floor below the plan even when more replicas run now (the HPA scaled up), with a warning', () => {
    const scaled = svc({
      peak: {rps: 50},
      hpa: {name: 'checkout', minReplicas: 2, maxReplicas: 10},
      workload: {...svc().workload!, replicas: 6},
    })
    const plan = computePlan(input({services: [scaled]}))
    expect(plan.problems).toEqual([])
    expect(plan.services[0]).toMatchObject({action: 'raise', newMin: 3})
    expect(plan.warnings[0]).toContain('checkout runs 6 replicas now, more than the 3 its campaign peak needs')
  })

  it('reports a missing rpsPerPod', () => {
    const plan = computePlan(input({services: [svc({rpsPerPod: undefined})]}))
    expect(plan.problems.map((p) => p.code)).toEqual(['missing-rps-per-pod'])
  })

  it('refuses a plan beyond the HPA maxReplicas unless --raise-max', () => {
    const capped = svc({hpa: {name: 'checkout', minReplicas: 3, maxReplicas: 10}})
    const refused = computePlan(input({services: [capped]}))
    expect(refused.problems.map((p) => p.code)).toEqual(['beyond-max'])
    expect(refused.problems[0].message).toContain("HPA checkout's maxReplicas (10)")
    const raised = computePlan(input({services: [capped], raiseMax: true}))
    expect(raised.problems).toEqual([])
    expect(raised.services[0]).toMatchObject({newMin: 25, newMax: 25, raisesMax: true})
  })

  it('uses the config maxReplicas for a Deployment without an HPA', () => {
    const plan = computePlan(input({services: [svc({hpa: undefined, configMaxReplicas: 20})]}))
    expect(plan.problems[0].message).toContain('services.checkout.scaling.maxReplicas (20)')
  })

  it('refuses a plan beyond the namespace quota, placeholders included', () => {
    const quotas = [
      {
        name: 'compute',
        hard: {pods: 30, 'requests.cpu': 100, 'requests.memory': 100 * GiB},
        used: {pods: 3, 'requests.cpu': 1.5, 'requests.memory': 3 * GiB},
      },
    ]
    const plan = computePlan(input({services: [svc()], quotas}))
    const pods = plan.quota.find((q) => q.resource === 'pods')!
    // 22 more service pods + 15 placeholders.
    expect(pods).toMatchObject({used: 3, added: 37, hard: 30, ok: false})
    expect(plan.problems.map((p) => p.code)).toEqual(['beyond-quota'])
    expect(plan.problems[0].message).toContain('ResourceQuota compute: pods would be 40 of a hard limit of 30')
    const noHeadroom = computePlan(input({services: [svc()], quotas, nodeHeadroom: false}))
    expect(noHeadroom.problems).toEqual([])
  })

  it('multiplies observed traffic, and says so when there is none', () => {
    const plan = computePlan(input({services: [svc({peak: {multiplier: 3}, observedRps: 400})]}))
    expect(plan.services[0]).toMatchObject({
      peakRps: 1200,
      peakSource: 'multiplier',
      observedRps: 400,
      capacityReplicas: 24,
    })
    const none = computePlan(input({services: [svc({peak: {multiplier: 3}})]}))
    expect(none.problems.map((p) => p.code)).toContain('no-observed-traffic')
  })

  it('reports a service without a Deployment', () => {
    const plan = computePlan(input({services: [svc({workload: undefined, hpa: undefined})]}))
    expect(plan.problems.map((p) => p.code)).toEqual(['no-workload'])
  })
})

describe('quantities and prices', () => {
  it('parses Kubernetes quantities', () => {
    expect(parseQuantity('250m')).toBe(0.25)
    expect(parseQuantity('1.5Gi')).toBe(1.5 * GiB)
    expect(parseQuantity('15186460Ki')).toBe(15186460 * 1024)
    expect(parseQuantity('2')).toBe(2)
    expect(parseQuantity(undefined)).toBe(0)
    expect(() => parseQuantity('lots')).toThrow(/not a Kubernetes quantity/)
  })

  it('formats CPU and memory for manifests', () => {
    expect(formatCpu(0.5)).toBe('500m')
    expect(formatCpu(2)).toBe('2')
    expect(formatMemory(GiB)).toBe('1024Mi')
    expect(formatMemory(300 * Mi)).toBe('300Mi')
  })

  it('prices pools from pools, instance types or the default, with the spot discount', () => {
    const custom = {
      ...prices,
      pools: {gpu: {cpuHour: 1, memoryGiBHour: 0.1}},
      instanceTypes: {'m6i.xlarge': {cpuHour: 0.05, memoryGiBHour: 0.006}},
    }
    expect(poolPrice(custom, {pool: 'gpu', spot: true})).toMatchObject({cpuHour: 1, source: 'prices.pools.gpu'})
    expect(poolPrice(custom, {pool: 'general', instanceType: 'm6i.xlarge', spot: false})).toMatchObject({
      cpuHour: 0.05,
      source: 'prices.instanceTypes.m6i.xlarge',
    })
    const spot = poolPrice(custom, {pool: 'spot', spot: true})
    expect(spot.cpuHour).toBeCloseTo(0.031611 * 0.3)
    expect(spot.source).toContain('spotDiscount')
    // The reference example: 27 pods at 500m / 1 GiB ≈ 0.54 $/h at default prices.
    expect(27 * podHourlyCost({cpu: 0.5, memory: GiB}, prices.default)).toBeCloseTo(0.541, 2)
  })
})
