import type * as k8s from '@kubernetes/client-node'
import {describe, expect, it} from 'vitest'

import {detectPoolLabel, podRequests, poolOf, summariseNodes} from '../../../src/capacity/cluster.js'
import {matchesSaved, restorePatch} from '../../../src/capacity/restore.js'
import {cronFor, scheduleObjects, scheduleTimes} from '../../../src/capacity/schedule.js'
import {saveHpa} from '../../../src/capacity/state.js'
import {k6Options, parseSummary, planWarmup, renderWarmupScript} from '../../../src/capacity/warm.js'
import {parseConfig} from '../../../src/config/parse.js'
import {GiB} from '../../../src/kubernetes/quantity.js'
import {observedPeakQuery} from '../../../src/capacity/prometheus.js'
import {parseServiceUrls, parseTrafficLabels} from '../../../src/capacity/prewarm.js'
import {durationFlag} from '../../../src/config/duration.js'

describe('flag values', () => {
  it('parses NAME=URL, KEY=VALUE and durations, and names the flag when one is wrong', () => {
    expect(parseServiceUrls(['catalog=http://127.0.0.1:8081', 'cart=https://cart.example/'])).toEqual({
      catalog: 'http://127.0.0.1:8081',
      cart: 'https://cart.example/',
    })
    expect(() => parseServiceUrls(['catalog'])).toThrow(/--service-url catalog: expected NAME=URL/)
    expect(parseTrafficLabels(['namespace=shop', 'job=a=b'])).toEqual({namespace: 'shop', job: 'a=b'})
    expect(() => parseTrafficLabels(['1x=y'])).toThrow(/--traffic-label/)
    expect(durationFlag('timeout', '10m')).toBe(600_000)
    expect(durationFlag('timeout', undefined)).toBeUndefined()
    expect(() => durationFlag('timeout', 'soon')).toThrow(/--timeout soon/)
  })
})

describe('observed traffic', () => {
  it('asks Prometheus for the highest request rate over the lookback, with extra matchers', () => {
    expect(observedPeakQuery('catalog', 300_000, 7 * 86_400_000)).toBe(
      'max_over_time(sum(rate(http_requests_total{service="catalog",synthetic!="true"}[5m]))[7d:1m])',
    )
    expect(observedPeakQuery('catalog', 30_000, 600_000, {namespace: 'shop', job: 'a"b'})).toBe(
      'max_over_time(sum(rate(http_requests_total{service="catalog",namespace="shop",job="a\\"b",synthetic!="true"}[30s]))[10m:15s])',
    )
  })
})

const CONFIG = `
project: shop
registry: {url: 127.0.0.1:5000}
services:
  catalog:
    tier: operational
    scaling: {rpsPerPod: 100}
    slos:
      - {name: latency, objective: 99, sli: {type: latency, thresholdMs: 300}}
      - {name: product-latency, objective: 99.9, sli: {type: latency, thresholdMs: 500, route: /products/:id}}
      - {name: availability, objective: 99.9, sli: {type: availability}}
  cart: {tier: operational, scaling: {rpsPerPod: 50}, synthetic: true}
  checkout:
    tier: revenue-critical
    scaling: {rpsPerPod: 40}
    synthetic: true
    slos:
      - {name: conversions, objective: 99, sli: {type: ratio, good: a, total: b}}
campaigns:
  - name: bf
    start: "2030-11-27T00:00:00Z"
    end: "2030-11-28T00:00:00Z"
    peak: {catalog: {rps: 400}, checkout: {rps: 40}}
    warmup: {share: 0.5, duration: 2m, mix: {browse: 60, search: 20, cart: 15, checkout: 5}}
`

describe('warm-up plan', () => {
  const config = parseConfig(CONFIG)
  const campaign = config.campaigns[0]
  const plan = planWarmup({
    config,
    campaign,
    campaignIndex: 0,
    peakRps: {catalog: 400, checkout: 40},
    serviceUrls: {catalog: 'http://127.0.0.1:1/'},
    baseUrl: 'http://gw.example',
  })

  it("splits each service's share of its peak over its behaviours, and follows the mix for the rest", () => {
    const rate = Object.fromEntries(plan.scenarios.map((s) => [s.behaviour, s.targetRps]))
    // catalog: 0.5 × 400 = 200 rps, browse 60 : search 20.
    expect(rate.browse).toBe(150)
    expect(rate.search).toBe(50)
    // checkout: 0.5 × 40 = 20 rps.
    expect(rate.checkout).toBe(20)
    // cart has no peak: (150 + 50 + 20) / (60 + 20 + 5) rps per unit of weight × 15.
    expect(rate.cart).toBeCloseTo((220 / 85) * 15, 2)
    // Cart iterations send two requests.
    expect(plan.scenarios.find((s) => s.behaviour === 'cart')!.targetPerMinute).toBe(
      Math.round(((220 / 85) * 15 * 60) / 2),
    )
    expect(plan.urls).toEqual({catalog: 'http://127.0.0.1:1', cart: 'http://gw.example', checkout: 'http://gw.example'})
  })

  it('turns SLOs into k6 thresholds and says which it cannot check', () => {
    expect(plan.thresholds).toEqual([
      {metric: 'http_req_duration{service:catalog}', expression: 'p(99)<300', slo: 'catalog/latency'},
      {
        metric: 'http_req_duration{service:catalog,route:/products/:id}',
        expression: 'p(99.9)<500',
        slo: 'catalog/product-latency',
      },
      {metric: 'http_req_failed{service:catalog}', expression: 'rate<0.001', slo: 'catalog/availability'},
    ])
    expect(plan.skipped).toEqual(['checkout/conversions: a ratio SLI (PromQL counters) is not measured by k6'])
  })

  it('builds ramping-arrival-rate scenarios that ramp to half, then the target, then hold', () => {
    const options = k6Options(plan, 'tok_test')
    const browse = (
      options.scenarios as Record<
        string,
        {executor: string; stages: {target: number; duration: string}[]; exec: string}
      >
    ).browse
    expect(browse.executor).toBe('ramping-arrival-rate')
    expect(browse.exec).toBe('browse')
    expect(browse.stages).toEqual([
      {target: 4500, duration: '30s'},
      {target: 9000, duration: '30s'},
      {target: 9000, duration: '60s'},
    ])
    expect(options.summaryTrendStats).toContain('p(99.9)')
    expect(options.thresholds['http_reqs{behaviour:cart}']).toEqual(['count>=0'])
  })

  it('renders a script from the template with the plan inlined', async () => {
    const script = await renderWarmupScript(plan, 'tok_test')
    expect(script).toContain("import http from 'k6/http'")
    expect(script).toContain('"executor": "ramping-arrival-rate"')
    expect(script).toContain('export function checkout(data)')
    expect(script).toContain("'x-synthetic': 'retailops-prewarm'")
    expect(script).not.toContain('{{')
  })

  it('needs a URL for every service the mix calls', () => {
    expect(() =>
      planWarmup({
        config,
        campaign,
        campaignIndex: 0,
        peakRps: {catalog: 400},
        serviceUrls: {catalog: 'http://127.0.0.1:1'},
      }),
    ).toThrow(/No URL for cart, checkout/)
  })

  it('writing behaviours only run where every service they reach declares synthetic support', () => {
    const partial = parseConfig(
      CONFIG.replace(
        '  cart: {tier: operational, scaling: {rpsPerPod: 50}, synthetic: true}',
        '  cart: {tier: operational, scaling: {rpsPerPod: 50}}',
      )
        .replace('    synthetic: true\n    slos:', '    dependsOn: [payments]\n    synthetic: true\n    slos:')
        .replace('campaigns:', '  payments: {tier: revenue-critical}\ncampaigns:'),
    )
    const p = planWarmup({
      config: partial,
      campaign: partial.campaigns[0],
      campaignIndex: 0,
      peakRps: {catalog: 400, checkout: 40},
      serviceUrls: {},
      baseUrl: 'http://gw.example',
    })
    expect(p.scenarios.map((s) => s.behaviour)).toEqual(['browse', 'search'])
    expect(p.excluded).toEqual([
      {
        behaviour: 'cart',
        reason:
          'cart does not declare synthetic: true (honouring X-Synthetic), so cart traffic would change real state',
      },
      {
        behaviour: 'checkout',
        reason:
          'payments does not declare synthetic: true (honouring X-Synthetic), so checkout traffic would change real state',
      },
    ])
    const writesOnly = {...partial.campaigns[0], warmup: {...partial.campaigns[0].warmup, mix: {checkout: 5}}}
    expect(() =>
      planWarmup({
        config: partial,
        campaign: writesOnly,
        campaignIndex: 0,
        peakRps: {checkout: 40},
        serviceUrls: {},
        baseUrl: 'http://gw.example',
      }),
    ).toThrow(/checkout left out: payments does not declare synthetic: true/)
  })

  it('adds per-service abort limits that stop k6 early (abortOnFail after delayAbortEval)', () => {
    expect(plan.aborts).toEqual([
      {service: 'catalog', metric: 'http_req_failed{service:catalog}', expression: 'rate<0.05', limit: 'error rate'},
      {
        service: 'catalog',
        metric: 'http_req_duration{service:catalog}',
        expression: 'p(95)<2000',
        limit: 'p95 latency',
      },
      {service: 'cart', metric: 'http_req_failed{service:cart}', expression: 'rate<0.05', limit: 'error rate'},
      {service: 'cart', metric: 'http_req_duration{service:cart}', expression: 'p(95)<2000', limit: 'p95 latency'},
      {service: 'checkout', metric: 'http_req_failed{service:checkout}', expression: 'rate<0.05', limit: 'error rate'},
      {
        service: 'checkout',
        metric: 'http_req_duration{service:checkout}',
        expression: 'p(95)<2000',
        limit: 'p95 latency',
      },
    ])
    const options = k6Options(plan, 'tok_test')
    // The SLO threshold and the abort limit share the sub-metric.
    expect(options.thresholds['http_req_failed{service:catalog}']).toEqual([
      'rate<0.001',
      {threshold: 'rate<0.05', abortOnFail: true, delayAbortEval: '10s'},
    ])
    expect(options.thresholds['http_req_duration{service:checkout}']).toEqual([
      {threshold: 'p(95)<2000', abortOnFail: true, delayAbortEval: '10s'},
    ])
  })

  it('reads a crossed abort limit as an early stop, naming the limit and the value', () => {
    const parsed = parseSummary(plan, {
      state: {testRunDurationMs: 14_250},
      metrics: {
        'http_req_failed{service:catalog}': {
          type: 'rate',
          values: {rate: 0.4821},
          thresholds: {'rate<0.001': {ok: false}, 'rate<0.05': {ok: false}},
        },
        'http_req_duration{service:catalog}': {
          type: 'trend',
          values: {'p(95)': 12.5, 'p(99)': 20},
          thresholds: {'p(99)<300': {ok: true}, 'p(95)<2000': {ok: true}},
        },
      },
    })
    expect(parsed.allOk).toBe(false)
    expect(parsed.aborted!.crossed).toEqual([
      {
        service: 'catalog',
        metric: 'http_req_failed{service:catalog}',
        expression: 'rate<0.05',
        limit: 'error rate',
        ok: false,
        observed: 0.482,
      },
    ])
    expect(parsed.aborted!.reason).toBe(
      'catalog error rate 48.2 % crossed the limit rate<0.05; k6 stopped the warm-up after 14 s of 120 s',
    )
    // Services that got no request crossed nothing.
    expect(parsed.aborts.find((a) => a.service === 'checkout')!.ok).toBe(true)
  })

  it("reads k6's summary: thresholds with observed values, per-behaviour numbers", () => {
    const summary = {
      state: {testRunDurationMs: 120_000},
      metrics: {
        'http_req_duration{service:catalog}': {
          type: 'trend',
          values: {'p(99)': 812.4},
          thresholds: {'p(99)<300': {ok: false}},
        },
        'http_req_duration{service:catalog,route:/products/:id}': {
          type: 'trend',
          values: {'p(99.9)': 100},
          thresholds: {'p(99.9)<500': {ok: true}},
        },
        'http_req_failed{service:catalog}': {type: 'rate', values: {rate: 0}, thresholds: {'rate<0.001': {ok: true}}},
        'http_reqs{behaviour:browse}': {type: 'counter', values: {count: 1200, rate: 10}},
        'http_req_failed{behaviour:browse}': {type: 'rate', values: {rate: 0.01}},
        'http_req_duration{behaviour:browse}': {type: 'trend', values: {'p(95)': 501.26, 'p(99)': 812.4}},
        dropped_iterations: {type: 'counter', values: {count: 3}},
      },
    }
    const parsed = parseSummary(plan, summary)
    expect(parsed.allOk).toBe(false)
    expect(parsed.thresholds[0]).toMatchObject({ok: false, observed: 812.4})
    expect(parsed.behaviours.find((b) => b.behaviour === 'browse')).toMatchObject({
      requests: 1200,
      rps: 10,
      failedRate: 0.01,
      p95Ms: 501.3,
      p99Ms: 812.4,
    })
    expect(parsed.droppedIterations).toBe(3)
  })
})

describe('restore patches', () => {
  const hpa = (spec: Record<string, unknown>, annotations?: Record<string, string>) =>
    ({
      metadata: {name: 'checkout', resourceVersion: '42', annotations},
      spec: {scaleTargetRef: {kind: 'Deployment', name: 'checkout'}, ...spec},
    }) as unknown as k8s.V2HorizontalPodAutoscaler

  it('saves absent fields as absent and removes them on restore', () => {
    const saved = saveHpa('checkout', hpa({minReplicas: 2, maxReplicas: 10}))
    expect(saved.behavior).toEqual({present: false})
    const now = {
      metadata: {resourceVersion: '50', annotations: {'retailops.io/prewarm-campaign': 'bf'}},
      spec: {minReplicas: 25, maxReplicas: 25, behavior: {scaleDown: {selectPolicy: 'Disabled'}}},
    }
    expect(restorePatch(saved, now)).toEqual([
      {op: 'test', path: '/metadata/resourceVersion', value: '50'},
      {op: 'add', path: '/spec/minReplicas', value: 2},
      {op: 'add', path: '/spec/maxReplicas', value: 10},
      {op: 'remove', path: '/spec/behavior'},
      {op: 'remove', path: '/metadata/annotations/retailops.io~1prewarm-campaign'},
    ])
  })

  it('puts a saved behavior back whole, and knows when nothing differs', () => {
    const behavior = {
      scaleDown: {
        stabilizationWindowSeconds: 120,
        selectPolicy: 'Max',
        policies: [{type: 'Pods', value: 1, periodSeconds: 60}],
      },
    }
    const saved = saveHpa('checkout', hpa({minReplicas: 3, maxReplicas: 10, behavior}))
    const same = {
      metadata: {resourceVersion: '7'},
      spec: {minReplicas: 3, maxReplicas: 10, behavior: structuredClone(behavior)},
    }
    expect(restorePatch(saved, same)).toHaveLength(1)
    expect(matchesSaved(saved, same.spec)).toBe(true)
    const changed = {
      metadata: {resourceVersion: '8'},
      spec: {minReplicas: 9, maxReplicas: 10, behavior: {scaleDown: {selectPolicy: 'Disabled'}}},
    }
    expect(restorePatch(saved, changed)).toContainEqual({op: 'add', path: '/spec/behavior', value: behavior})
    expect(matchesSaved(saved, changed.spec)).toBe(false)
  })
})

describe('schedule', () => {
  const config = parseConfig(CONFIG)
  const campaign = {...config.campaigns[0], prewarmLead: '2h'}

  it('writes one-shot cron expressions in UTC', () => {
    expect(cronFor(new Date('2030-11-26T22:00:00Z'))).toBe('0 22 26 11 *')
    const {prewarmAt, restoreAt} = scheduleTimes(campaign, new Date('2030-11-01T00:00:00Z'))
    expect(prewarmAt.toISOString()).toBe('2030-11-26T22:00:00.000Z')
    expect(restoreAt.toISOString()).toBe('2030-11-28T00:01:00.000Z')
  })

  it('refuses an ended campaign and a pre-warm time that has passed', () => {
    expect(() => scheduleTimes(campaign, new Date('2030-12-01T00:00:00Z'))).toThrow(/ended/)
    expect(() => scheduleTimes(campaign, new Date('2030-11-26T23:00:00Z'))).toThrow(/too late/)
  })

  it('builds CronJobs that run the CLI in the cluster with the config mounted', async () => {
    const {writeFile, mkdtemp} = await import('node:fs/promises')
    const dir = await mkdtemp('/tmp/retailops-sched-')
    await writeFile(`${dir}/retailops.yaml`, CONFIG)
    const built = await scheduleObjects({
      http: undefined as never,
      namespace: 'shop',
      campaign,
      environment: 'production',
      configFile: `${dir}/retailops.yaml`,
      runnerImage: 'img:1',
      prewarmFlags: ['--no-warm'],
      now: new Date('2030-11-01T00:00:00Z'),
    })
    const kinds = built.objects.map((o) => o.kind)
    expect(kinds).toEqual([
      'ServiceAccount',
      'Role',
      'RoleBinding',
      'ClusterRole',
      'ClusterRoleBinding',
      'Secret',
      'ConfigMap',
      'CronJob',
      'CronJob',
    ])
    const [pre, post] = built.objects.filter((o) => o.kind === 'CronJob') as unknown as {
      spec: {
        schedule: string
        timeZone: string
        jobTemplate: {spec: {template: {spec: {containers: {args: string[]}[]}}}}
      }
    }[]
    expect(pre.spec.schedule).toBe('0 22 26 11 *')
    expect(pre.spec.timeZone).toBe('Etc/UTC')
    expect(pre.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual([
      'prewarm',
      '--campaign',
      'bf',
      '--environment',
      'production',
      '--namespace',
      'shop',
      '--context',
      'inClusterContext',
      '--yes',
      '--allow-below-current',
      '--no-warm',
    ])
    expect(post.spec.schedule).toBe('1 0 28 11 *')
    expect(post.spec.jobTemplate.spec.template.spec.containers[0].args.slice(0, 2)).toEqual(['prewarm', 'restore'])
  })
})

describe('cluster facts', () => {
  const node = (
    name: string,
    pool: string,
    zone: string,
    cpu = '3920m',
    memory = '15186460Ki',
    extra: Record<string, string> = {},
  ) =>
    ({
      metadata: {
        name,
        labels: {
          'retailops.dev/pool': pool,
          'topology.kubernetes.io/zone': zone,
          'node.kubernetes.io/instance-type': 'm6i.xlarge',
          ...extra,
        },
      },
      spec: {},
      status: {allocatable: {cpu, memory, pods: '58'}, conditions: [{type: 'Ready', status: 'True'}]},
    }) as unknown as k8s.V1Node

  it('groups nodes by pool, subtracts bound pods and finds zones', () => {
    const nodes = [
      node('g1', 'general', 'a'),
      node('g2', 'general', 'b'),
      node('s1', 'spot', 'c', '7910m', '31202428Ki', {'retailops.dev/capacity-type': 'spot'}),
    ]
    const pods = [
      {spec: {nodeName: 'g1', containers: [{name: 'c', resources: {requests: {cpu: '500m', memory: '1Gi'}}}]}},
    ] as unknown as k8s.V1Pod[]
    expect(detectPoolLabel(nodes)).toBe('retailops.dev/pool')
    const prices = parseConfig(CONFIG).prices
    const facts = summariseNodes(nodes, pods, {prices})
    expect(facts.zones).toEqual(['a', 'b', 'c'])
    expect(facts.defaultPool).toBe('general')
    const general = facts.pools.find((p) => p.name === 'general')!
    expect(general.allocatable.cpu).toBeCloseTo(7.84)
    expect(general.requested).toEqual({cpu: 0.5, memory: GiB, pods: 1})
    expect(facts.pools.find((p) => p.name === 'spot')!.price.source).toContain('spotDiscount')
  })

  it("finds a workload's pool from its nodeSelector or required affinity", () => {
    expect(
      poolOf({containers: [], nodeSelector: {'retailops.dev/pool': 'spot'}}, 'retailops.dev/pool', 'general'),
    ).toEqual({pool: 'spot', poolSource: 'nodeSelector'})
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {matchExpressions: [{key: 'retailops.dev/pool', operator: 'In', values: ['memory-optimised']}]},
          ],
        },
      },
    }
    expect(poolOf({containers: [], affinity}, 'retailops.dev/pool', 'general')).toEqual({
      pool: 'memory-optimised',
      poolSource: 'affinity',
    })
    expect(poolOf({containers: []}, 'retailops.dev/pool', 'general')).toEqual({pool: 'general', poolSource: 'default'})
  })

  it('sums container requests, with init containers and overhead', () => {
    const spec = {
      containers: [
        {name: 'a', resources: {requests: {cpu: '250m', memory: '256Mi'}}},
        {name: 'b', resources: {limits: {cpu: '100m', memory: '64Mi'}}},
      ],
      initContainers: [{name: 'i', resources: {requests: {cpu: '1', memory: '64Mi'}}}],
      overhead: {cpu: '10m'},
    } as unknown as k8s.V1PodSpec
    expect(podRequests(spec)).toEqual({cpu: 1.01, memory: 320 * 1024 ** 2})
  })
})
