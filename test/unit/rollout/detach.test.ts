import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {runnerConfigObjects} from '../../../src/kubernetes/runner-config.js'
import {detachNames, driverRules} from '../../../src/rollout/detach.js'
import type {RolloutState} from '../../../src/rollout/types.js'

const state = (
  service: string,
  strategy: 'canary' | 'blue-green',
  router: 'gateway' | 'nginx' | 'replicas',
  routeName = service,
) =>
  ({
    service,
    namespace: 'shop',
    releaseId: 'release-abc',
    spec: {strategy, router, routeName},
  }) as unknown as RolloutState

describe('driverRules', () => {
  it('gateway canary: its state and request, its Deployments, its pinned Services and its route, by name', () => {
    const rules = driverRules([state('catalog', 'canary', 'gateway', 'shop-route')], [])
    expect(rules).toContainEqual({
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'update', 'delete'],
      resourceNames: ['retailops-rollout-catalog', 'retailops-rollout-catalog.request'],
    })
    expect(rules).toContainEqual({
      apiGroups: ['apps'],
      resources: ['deployments'],
      verbs: ['get', 'patch'],
      resourceNames: ['catalog', 'catalog-canary'],
    })
    expect(rules).toContainEqual({
      apiGroups: ['apps'],
      resources: ['deployments'],
      verbs: ['create', 'delete'],
      resourceNames: ['catalog-canary'],
    })
    expect(rules).toContainEqual({
      apiGroups: [''],
      resources: ['services'],
      verbs: ['create', 'delete'],
      resourceNames: ['catalog-stable', 'catalog-canary'],
    })
    expect(rules).toContainEqual({
      apiGroups: ['gateway.networking.k8s.io'],
      resources: ['httproutes'],
      verbs: ['get', 'patch'],
      resourceNames: ['shop-route'],
    })
    expect(rules.some((r) => r.resources.includes('ingresses') || r.resources.includes('secrets'))).toBe(false)
    // Unnamed verbs are reads only.
    for (const r of rules.filter((x) => !x.resourceNames)) expect(r.verbs).toEqual(['list'])
  })

  it('nginx, replicas and blue-green get their own objects and nothing of the others', () => {
    const nginx = driverRules([state('cart', 'canary', 'nginx')], [])
    expect(nginx).toContainEqual({
      apiGroups: ['networking.k8s.io'],
      resources: ['ingresses'],
      verbs: ['create', 'delete'],
      resourceNames: ['cart-canary'],
    })
    expect(nginx.some((r) => r.resources.includes('httproutes'))).toBe(false)
    const replicas = driverRules([state('search', 'canary', 'replicas')], ['search-hpa'])
    expect(replicas.some((r) => r.resources.includes('services'))).toBe(false)
    expect(replicas).toContainEqual({
      apiGroups: ['autoscaling'],
      resources: ['horizontalpodautoscalers'],
      verbs: ['get', 'patch'],
      resourceNames: ['search-hpa'],
    })
    // A KEDA ScaledObject the router pins: by name, as an HPA; listing them is always allowed.
    const keda = driverRules([state('search', 'canary', 'replicas')], [], ['search'])
    expect(keda).toContainEqual({
      apiGroups: ['keda.sh'],
      resources: ['scaledobjects'],
      verbs: ['get', 'patch'],
      resourceNames: ['search'],
    })
    expect(keda).toContainEqual({apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['list']})
    expect(replicas.some((r) => r.resources.includes('scaledobjects') && r.verbs.includes('patch'))).toBe(false)
    const blueGreen = driverRules([state('checkout', 'blue-green', 'replicas')], [])
    expect(blueGreen).toContainEqual({
      apiGroups: ['apps'],
      resources: ['deployments'],
      verbs: ['create', 'delete'],
      resourceNames: ['checkout-preview'],
    })
    expect(blueGreen).toContainEqual({
      apiGroups: [''],
      resources: ['services'],
      verbs: ['get', 'patch'],
      resourceNames: ['checkout', 'checkout-preview'],
    })
    expect(blueGreen).toContainEqual({
      apiGroups: [''],
      resources: ['services'],
      verbs: ['create', 'delete'],
      resourceNames: ['checkout-preview'],
    })
  })
})

describe('detachNames', () => {
  it('are DNS labels short enough for the Job controller (pod names add a suffix)', () => {
    const n = detachNames('release-mabc1234')
    expect(n.job).toBe('retailops-drive-mabc1234')
    expect(n.job.length).toBeLessThanOrEqual(52)
    expect(detachNames(`release-${'x'.repeat(80)}`).job.length).toBeLessThanOrEqual(52)
  })
})

describe('runnerConfigObjects for a job', () => {
  it('drops workstation kubeconfigs, names the mounted public key, keeps credentials out of the ConfigMap', () => {
    const text = `project: shop
clusters: {main: {context: prod, kubeconfig: /home/me/.kube/prod}, dr: {kubeconfig: env://DR_KUBECONFIG}}
signing: {publicKey: .retailops/cosign.pub}
datastores: [{name: orders, provider: postgres, postgres: {url: "postgres://app:s3cret-pw@db/orders"}}]
`
    const {objects, credentials} = runnerConfigObjects({
      namespace: 'shop',
      labels: {},
      configMap: 'cm',
      credentialsSecret: 'sec',
      configText: text,
      publicKey: 'PUBLIC KEY',
    })
    const [secret, cm] = objects
    const copy = parse(cm.data['retailops.yaml'])
    expect(copy.clusters).toEqual({main: {context: 'prod'}, dr: {}})
    expect(copy.signing.publicKey).toBe('signing.pub')
    expect(cm.data['signing.pub']).toBe('PUBLIC KEY')
    expect(cm.data['retailops.yaml']).not.toContain('s3cret-pw')
    expect(secret.stringData['credentials.json']).toContain('s3cret-pw')
    expect(credentials).toEqual(['datastores[0].postgres.url'])
  })

  it("carries the notification destinations' variables in the Secret, referenced by the pod, never as values", () => {
    const text = `project: shop
notifications:
  destinations:
    ops: {type: slack, url: env://T_DETACH_SLACK}
    audit: {type: webhook, url: env://T_DETACH_HOOK, secret: env://T_DETACH_SECRET}
    unset: {type: teams, url: env://T_DETACH_NOT_SET}
`
    process.env.T_DETACH_SLACK = 'https://hooks.example.test/T/B/xyz'
    process.env.T_DETACH_HOOK = 'https://audit.example.test/in'
    process.env.T_DETACH_SECRET = 'hmac-key-value'
    delete process.env.T_DETACH_NOT_SET
    try {
      const {objects, env} = runnerConfigObjects({
        namespace: 'shop',
        labels: {},
        configMap: 'cm',
        credentialsSecret: 'sec',
        configText: text,
      })
      const [secret, cm] = objects
      expect(secret.stringData).toMatchObject({
        'env.T_DETACH_SLACK': 'https://hooks.example.test/T/B/xyz',
        'env.T_DETACH_HOOK': 'https://audit.example.test/in',
        'env.T_DETACH_SECRET': 'hmac-key-value',
      })
      expect(Object.keys(secret.stringData)).not.toContain('env.T_DETACH_NOT_SET')
      expect(env).toEqual([
        {name: 'T_DETACH_HOOK', valueFrom: {secretKeyRef: {name: 'sec', key: 'env.T_DETACH_HOOK'}}},
        {name: 'T_DETACH_SECRET', valueFrom: {secretKeyRef: {name: 'sec', key: 'env.T_DETACH_SECRET'}}},
        {name: 'T_DETACH_SLACK', valueFrom: {secretKeyRef: {name: 'sec', key: 'env.T_DETACH_SLACK'}}},
      ])
      expect(JSON.stringify(cm)).not.toContain('hooks.example.test')
      expect(cm.data['retailops.yaml']).toContain('env://T_DETACH_SLACK')
    } finally {
      for (const v of ['T_DETACH_SLACK', 'T_DETACH_HOOK', 'T_DETACH_SECRET']) delete process.env[v]
    }
  })
})
