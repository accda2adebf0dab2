import {describe, expect, it} from 'vitest'

import {computePlan} from '../../../src/capacity/plan.js'
import {poolPrice} from '../../../src/config/prices.js'
import {GiB} from '../../../src/kubernetes/quantity.js'
import {renderCapacityPlan, renderRestore, renderWarmup} from '../../../src/capacity/render.js'
import {parseConfig} from '../../../src/config/parse.js'

const prices = parseConfig('project: p\nregistry: {url: r}\nservices: {a: {tier: tolerant}}\n').prices

describe('human rendering', () => {
  it('prints the plan with its services, pools, cost and problems', () => {
    const plan = computePlan({
      campaign: {
        name: 'bf',
        start: '2030-11-27T00:00:00Z',
        end: '2030-11-28T00:00:00Z',
        peak: {},
        buffer: 0.3,
        prewarmLead: '2h',
        nodeHeadroom: true,
        warmup: {share: 0.5, duration: '2m', mix: {}, abort: {errorRate: 0.05, p95Ms: 2000, after: '10s'}},
      },
      now: new Date('2030-11-26T00:00:00Z'),
      services: [
        {
          service: 'catalog',
          tier: 'operational',
          peak: {rps: 400},
          rpsPerPod: 50,
          targetUtilization: 0.7,
          configMinReplicas: 2,
          configMaxReplicas: 10,
          workload: {
            name: 'catalog',
            replicas: 2,
            readyReplicas: 2,
            requests: {cpu: 0.25, memory: 0.25 * GiB},
            limits: {cpu: 0.5, memory: 0.5 * GiB},
            pool: 'general',
            poolSource: 'default',
          },
          hpa: {name: 'catalog', minReplicas: 2, maxReplicas: 10},
        },
      ],
      zones: ['a', 'b', 'c'],
      pools: [
        {
          name: 'general',
          nodes: 2,
          allocatable: {cpu: 8, memory: 32 * GiB, pods: 100},
          requested: {cpu: 7, memory: 8 * GiB, pods: 10},
          nodeSize: {cpu: 4, memory: 16 * GiB, pods: 50},
          price: poolPrice(prices, {pool: 'general', spot: false}),
        },
      ],
      quotas: [],
      currency: 'USD',
      nodeHeadroom: true,
      raiseMax: false,
      allowBelowCurrent: false,
    })
    const text = renderCapacityPlan(plan)
    expect(text).toContain('Campaign bf: 2030-11-27T00:00:00Z → 2030-11-28T00:00:00Z, buffer 30 %, 3 zone(s)')
    expect(text).toMatch(/catalog\s+operational\s+general\s+400\s+50\s+15\s+2 \(min 2, max 10\)\s+min 15/)
    expect(text).toMatch(/general\s+2\s+1\s+24576Mi\s+3250m/)
    expect(text).toContain('Problems (nothing is applied while any remain):')
    expect(text).toContain("more than the HPA catalog's maxReplicas (10)")
  })

  it('prints warm-up results and restores', () => {
    const warm = renderWarmup({
      passed: false,
      k6: 'k6',
      exitCode: 99,
      durationMs: 12_000,
      urls: {},
      droppedIterations: 0,
      skipped: ['checkout/conversions: a ratio SLI'],
      aborts: [],
      excluded: [],
      behaviours: [
        {
          behaviour: 'browse',
          service: 'catalog',
          targetRps: 15,
          requests: 150,
          rps: 12.5,
          failedRate: 0,
          p95Ms: 402.1,
          p99Ms: 410.2,
        },
      ],
      thresholds: [
        {
          metric: 'http_req_duration{service:catalog}',
          expression: 'p(99)<250',
          slo: 'catalog/latency',
          ok: false,
          observed: 410.2,
        },
      ],
    })
    expect(warm).toMatch(/catalog\/latency\s+http_req_duration\{service:catalog\} p\(99\)<250\s+410.2\s+FAIL/)
    expect(warm).toContain('(not checked: checkout/conversions: a ratio SLI)')
    expect(warm).toContain('Warm-up FAILED 1 SLO threshold(s).')
    expect(
      renderRestore({
        campaign: 'bf',
        namespace: 'shop',
        restored: false,
        message: 'Nothing to restore.',
        targets: [],
        deleted: [],
      }),
    ).toBe('Nothing to restore.')
  })
})
