import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import type {LoadedConfig} from '../../../src/config/load.js'
import {autoscalerProvider, clusterConnectionKey, externalMetricName} from '../../../src/deploy/autoscaler.js'
import {preserveReplicas, replacedAutoscalers} from '../../../src/deploy/engine.js'
import {renderManifests} from '../../../src/deploy/render.js'
import {checkPolicy} from '../../../src/kubernetes/policy.js'
import {formatDecimalQuantity} from '../../../src/kubernetes/quantity.js'
import {type KubeObject, objectKey} from '../../../src/kubernetes/resources.js'
import {RetailOpsError} from '../../../src/errors/index.js'
import {digestImages} from '../kubernetes/fixtures.js'

const CONFIG = (extra = '', env = 'prometheus: http://127.0.0.1:9090') => `
apiVersion: retailops/v1
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
clusters:
  main: {context: kwok-retailops}
environments:
  production: {cluster: main, namespace: shop, ${env}}
services:
  cart:
    tier: revenue-critical
    scaling:
      minReplicas: 3
      maxReplicas: 12
      targetCPUUtilization: 65
      metrics:
        - {name: carts_per_second, query: 'sum(rate(cart_created_total[2m]))', target: 20}
        - {name: p95_latency, query: 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="cart"}[2m])))', target: 0.25, type: Value, activationTarget: 0.05}
${extra}
  catalog: {tier: operational, scaling: {minReplicas: 2, maxReplicas: 4}}
`

function load(text: string): LoadedConfig {
  return {file: '/tmp/shop/retailops.yaml', dir: '/tmp/shop', config: parseConfig(text)}
}

function render(p: LoadedConfig, scaling?: Parameters<typeof renderManifests>[0]['scaling']) {
  const plan = renderManifests({project: p, images: digestImages(p), scaling})
  return {plan, objects: plan.targets.flatMap((t) => t.objects)}
}

const autoscalersOf = (objects: KubeObject[]) =>
  objects.filter((o) => o.kind === 'ScaledObject' || o.kind === 'HorizontalPodAutoscaler')

describe('scaling.metrics rendered as a KEDA ScaledObject', () => {
  const p = load(CONFIG())
  const {plan, objects} = render(p, {override: 'keda'})
  const so = objects.find((o) => o.kind === 'ScaledObject') as KubeObject & {spec: any}

  it('is the only autoscaler of the service: no HPA beside it (KEDA owns its own)', () => {
    expect(autoscalersOf(objects).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ScaledObject/cart',
      'HorizontalPodAutoscaler/catalog',
    ])
    expect(so.apiVersion).toBe('keda.sh/v1alpha1')
    expect(so.metadata.labels).toMatchObject({
      'retailops.dev/service': 'cart',
      'app.kubernetes.io/managed-by': 'retailops',
    })
  })

  it('has prometheus triggers with the project Prometheus, query, threshold and activation, and CPU as the floor', () => {
    expect(so.spec.scaleTargetRef).toEqual({apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart'})
    expect(so.spec.minReplicaCount).toBe(3)
    expect(so.spec.maxReplicaCount).toBe(12)
    expect(so.spec.triggers).toEqual([
      {
        type: 'prometheus',
        name: 'carts_per_second',
        metricType: 'AverageValue',
        metadata: {serverAddress: 'http://127.0.0.1:9090', query: 'sum(rate(cart_created_total[2m]))', threshold: '20'},
      },
      {
        type: 'prometheus',
        name: 'p95_latency',
        metricType: 'Value',
        metadata: {
          serverAddress: 'http://127.0.0.1:9090',
          query:
            'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="cart"}[2m])))',
          threshold: '0.25',
          activationThreshold: '0.05',
        },
      },
      {type: 'cpu', name: 'cpu', metricType: 'Utilization', metadata: {value: '65'}},
    ])
  })

  it('carries the behaviour retailops gives every HPA', () => {
    const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler') as KubeObject & {spec: any}
    expect(so.spec.advanced.horizontalPodAutoscalerConfig.behavior).toEqual(hpa.spec.behavior)
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(300)
  })

  it('renders the Deployment without replicas (the autoscaler owns the count), which preserveReplicas fills from it', () => {
    const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'cart')!
    expect((d.spec as any).replicas).toBeUndefined()
    const live = (n: number) => new Map([[objectKey(d), {...d, spec: {replicas: n}}]])
    expect((preserveReplicas([d, so], new Map())[0].spec as any).replicas).toBe(3)
    expect((preserveReplicas([d, so], live(7))[0].spec as any).replicas).toBe(7)
    expect((preserveReplicas([d, so], live(40))[0].spec as any).replicas).toBe(12)
    expect((preserveReplicas([d, so], live(1))[0].spec as any).replicas).toBe(3)
  })

  it('uses autoscalingPrometheus (the address from inside the cluster) over prometheus', () => {
    const q = load(
      CONFIG('', 'prometheus: http://127.0.0.1:9090, autoscalingPrometheus: http://prometheus.monitoring:9090'),
    )
    const o = render(q, {override: 'keda'}).objects.find((x) => x.kind === 'ScaledObject') as any
    expect(o.spec.triggers.map((t: any) => t.metadata.serverAddress)).toEqual([
      'http://prometheus.monitoring:9090',
      'http://prometheus.monitoring:9090',
      undefined,
    ])
  })

  it('passes policy: a revenue-critical ScaledObject with minReplicaCount 3 counts as 3 replicas', () => {
    const report = checkPolicy(objects, {signingRequired: false, tierLabel: 'retailops.dev/tier'})
    expect(report.findings.filter((f) => f.rule === 'replicas')).toEqual([])
    const zero = {...so, spec: {...so.spec, minReplicaCount: undefined}}
    const bad = checkPolicy(
      objects.map((o) => (o === so ? zero : o)),
      {signingRequired: false, tierLabel: 'retailops.dev/tier'},
    )
    expect(bad.findings.filter((f) => f.rule === 'replicas').map((f) => f.message)).toEqual([
      expect.stringContaining('runs 0 replicas'),
    ])
  })

  it('says when auto was decided without asking a cluster (render)', () => {
    const auto = render(p)
    expect(auto.objects.some((o) => o.kind === 'ScaledObject')).toBe(true)
    expect(auto.plan.notes).toEqual([expect.stringContaining('cart scales on metrics with scaling.provider auto')])
    expect(plan.notes).toEqual([])
  })
})

describe('scaling.metrics rendered as an HPA with External metrics (no KEDA)', () => {
  const p = load(CONFIG())
  const {objects} = render(p, {override: 'hpa'})
  const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === 'cart') as any

  it('has one External metric per signal (name and selector by convention) plus the CPU Resource metric', () => {
    expect(objects.some((o) => o.kind === 'ScaledObject')).toBe(false)
    expect(hpa.apiVersion).toBe('autoscaling/v2')
    expect(hpa.spec.minReplicas).toBe(3)
    expect(hpa.spec.maxReplicas).toBe(12)
    expect(hpa.spec.metrics).toEqual([
      {
        type: 'External',
        external: {
          metric: {
            name: 'cart_carts_per_second',
            selector: {matchLabels: {retailops_service: 'cart', retailops_metric: 'carts_per_second'}},
          },
          target: {type: 'AverageValue', averageValue: '20'},
        },
      },
      {
        type: 'External',
        external: {
          metric: {
            name: 'cart_p95_latency',
            selector: {matchLabels: {retailops_service: 'cart', retailops_metric: 'p95_latency'}},
          },
          target: {type: 'Value', value: '250m'},
        },
      },
      {type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 65}}},
    ])
    expect(JSON.parse(hpa.metadata.annotations['retailops.dev/external-metric-queries'])).toEqual([
      {metric: 'cart_carts_per_second', query: 'sum(rate(cart_created_total[2m]))'},
      {
        metric: 'cart_p95_latency',
        query: 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="cart"}[2m])))',
      },
    ])
  })

  it('leaves a CPU-only service exactly as before: Resource metric alone, no annotation', () => {
    const catalog = objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === 'catalog') as any
    expect(catalog.spec.metrics).toEqual([
      {type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}},
    ])
    expect(catalog.metadata.annotations).toBeUndefined()
  })

  it('names External metrics with [a-z0-9_] only', () => {
    expect(externalMetricName('order-sync', 'queue_depth')).toBe('order_sync_queue_depth')
  })
})

describe('choosing the provider', () => {
  const svc = load(CONFIG()).config.services.cart
  const target = {context: 'kwok-retailops'}
  it('takes the flag, then scaling.provider, then what the deploy discovered for that cluster, else keda', () => {
    expect(autoscalerProvider(svc, {override: 'hpa'}, target)).toEqual({provider: 'hpa', discovered: false})
    expect(autoscalerProvider({...svc, scaling: {...svc.scaling, provider: 'hpa'}}, undefined, target).provider).toBe(
      'hpa',
    )
    expect(autoscalerProvider(svc, {discovered: {[clusterConnectionKey(target)]: 'hpa'}}, target)).toEqual({
      provider: 'hpa',
      discovered: true,
    })
    expect(autoscalerProvider(svc, {discovered: {[clusterConnectionKey({context: 'other'})]: 'hpa'}}, target)).toEqual({
      provider: 'keda',
      discovered: false,
    })
    expect(
      autoscalerProvider(svc, {override: 'auto', discovered: {[clusterConnectionKey(target)]: 'keda'}}, target),
    ).toEqual({provider: 'keda', discovered: true})
  })
})

describe('switching provider', () => {
  const p = load(CONFIG())
  const keda = render(p, {override: 'keda'}).objects
  const hpa = render(p, {override: 'hpa'}).objects
  const liveOf = (objects: KubeObject[]) => new Map(autoscalersOf(objects).map((o) => [objectKey(o), o]))

  it('deletes the HPA a new ScaledObject replaces, and the ScaledObject a new HPA replaces; nothing when unchanged', () => {
    expect([...replacedAutoscalers(keda, liveOf(hpa)).entries()].map(([k, o]) => [k, objectKey(o)])).toEqual([
      ['ScaledObject/shop/cart', 'HorizontalPodAutoscaler/shop/cart'],
    ])
    expect([...replacedAutoscalers(hpa, liveOf(keda)).entries()].map(([k, o]) => [k, objectKey(o)])).toEqual([
      ['HorizontalPodAutoscaler/shop/cart', 'ScaledObject/shop/cart'],
    ])
    expect(replacedAutoscalers(keda, liveOf(keda)).size).toBe(0)
    expect(replacedAutoscalers(hpa, liveOf(hpa)).size).toBe(0)
  })
})

describe('validation of scaling.metrics (exit 3, before anything is written)', () => {
  const bad = (metric: string, env?: string) => {
    try {
      load(CONFIG('', env).replace(/metrics:\n(.*\n){2}/, `metrics:\n        - ${metric}\n`))
    } catch (error) {
      expect(error).toBeInstanceOf(RetailOpsError)
      expect((error as RetailOpsError).exit).toBe('CONFIG')
      return (error as Error).message
    }
    throw new Error('accepted')
  }

  it('refuses an empty query, a non-positive target, an unknown type, a bad name, duplicates', () => {
    expect(bad(`{name: q, query: '  ', target: 5}`)).toMatch(/scaling\.metrics\[0\]\.query: an empty query/)
    expect(bad(`{name: q, query: 'up', target: 0}`)).toMatch(/scaling\.metrics\[0\]\.target: must be more than 0/)
    expect(bad(`{name: q, query: 'up', target: -2}`)).toMatch(/scaling\.metrics\[0\]\.target: must be more than 0/)
    expect(bad(`{name: q, query: 'up', target: 2, type: Utilization}`)).toMatch(
      /scaling\.metrics\[0\]\.type: expected one of "AverageValue", "Value"/,
    )
    expect(bad(`{name: Queue-Depth, query: 'up', target: 2}`)).toMatch(
      /scaling\.metrics\[0\]\.name: expected lowercase letters/,
    )
    expect(bad(`{name: q, query: 'up', target: 2}\n        - {name: q, query: 'up', target: 3}`)).toMatch(
      /scaling\.metrics\[1\]\.name: duplicate metric name "q"/,
    )
  })

  it('refuses metrics where an environment has no Prometheus, and metrics without room to scale', () => {
    expect(bad(`{name: q, query: 'up', target: 2}`, 'router: gateway')).toMatch(
      /environments\.production\.prometheus: is not set, and cart scales on Prometheus queries/,
    )
    expect(() => load(CONFIG().replace('maxReplicas: 12', 'maxReplicas: 3'))).toThrow(
      /maxReplicas: scaling on metrics needs room to scale/,
    )
  })

  it('refuses, at render, an environment given as is (a preview) without Prometheus', () => {
    const p = load(CONFIG())
    expect(() =>
      renderManifests({
        project: p,
        images: digestImages(p),
        env: {name: 'pr-7', cluster: 'main', namespace: 'pr-7', router: 'gateway', production: false},
        scaling: {override: 'hpa'},
      }),
    ).toThrow(/environment pr-7 does not say where Prometheus is/)
  })
})

describe('formatDecimalQuantity', () => {
  it('writes the canonical form the API server reads back', () => {
    expect([0.25, 1.5, 20, 1000, 100000, 0.0001, 2.5e6, 1e-9, 0].map(formatDecimalQuantity)).toEqual([
      '250m',
      '1500m',
      '20',
      '1k',
      '100k',
      '100u',
      '2500k',
      '1n',
      '0',
    ])
  })
})
