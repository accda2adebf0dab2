import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import {resolveEnvironment} from '../../../src/config/resolve.js'
import {requiredPermissions, type RequiredPermission} from '../../../src/doctor/permissions.js'

const BASE = `
project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {}}
`
const project = (yaml: string) => {
  const config = parseConfig(BASE + yaml)
  return {config, env: resolveEnvironment(config, undefined, '/p')}
}
const verbsOf = (list: RequiredPermission[], group: string, resource: string, subresource?: string) =>
  list.find((p) => p.group === group && p.resource === resource && p.subresource === subresource)?.verbs
const none = {scaledObjects: false, httpRoutes: false}
const both = {scaledObjects: true, httpRoutes: true}

describe('doctor: the permissions derived from the project', () => {
  const plain = project(`
environments: {production: {cluster: main, namespace: shop, router: replicas}}
services: {orders: {tier: revenue-critical}}
`)
  const everything = project(`
environments:
  production: {cluster: main, namespace: shop, prometheus: http://127.0.0.1:9090, gateway: {name: shop}}
services:
  orders: {tier: revenue-critical}
  cart:
    tier: revenue-critical
    scaling:
      minReplicas: 2
      maxReplicas: 10
      provider: keda
      metrics: [{name: carts, query: 'sum(rate(carts_total[1m]))', target: 5}]
  search: {tier: tolerant, rollout: {router: nginx}}
jobs:
  reconcile: {dependsOn: [orders]}
tenants:
  - {name: acme, model: dedicated-namespace}
campaigns:
  - {name: black-friday, start: '2026-11-27T00:00:00Z', end: '2026-11-28T00:00:00Z', peak: {orders: {rps: 100}}}
datastores:
  - {name: shop-config, service: orders, provider: kubernetes}
`)

  it('a plain project needs the core and, for the prune, list on every managed kind the cluster serves', () => {
    const list = requiredPermissions(plain.config, plain.env, both)
    expect(verbsOf(list, 'apps', 'deployments')).toEqual(['get', 'list', 'create', 'patch', 'delete', 'watch'])
    expect(verbsOf(list, '', 'resourcequotas')).toEqual(['list'])
    expect(verbsOf(list, 'batch', 'cronjobs')).toEqual(['list'])
    expect(verbsOf(list, 'keda.sh', 'scaledobjects')).toEqual(['list'])
    expect(verbsOf(list, 'gateway.networking.k8s.io', 'httproutes')).toEqual(['list'])
    for (const [group, resource] of [
      ['batch', 'jobs'],
      ['keda.sh', 'triggerauthentications'],
      ['networking.k8s.io', 'ingresses'],
      ['scheduling.k8s.io', 'priorityclasses'],
      ['rbac.authorization.k8s.io', 'roles'],
    ])
      expect(verbsOf(list, group, resource), `${group}/${resource}`).toBeUndefined()
    // A cluster without KEDA or Gateway API: nothing of theirs is asked.
    const bare = requiredPermissions(plain.config, plain.env, none)
    expect(verbsOf(bare, 'keda.sh', 'scaledobjects')).toBeUndefined()
    expect(verbsOf(bare, 'gateway.networking.k8s.io', 'httproutes')).toBeUndefined()
  })

  it('a project that uses everything needs every group its commands use, each saying why', () => {
    const list = requiredPermissions(everything.config, everything.env, both)
    const find = (group: string, resource: string, subresource?: string) =>
      list.find((p) => p.group === group && p.resource === resource && p.subresource === subresource)!
    expect(find('keda.sh', 'scaledobjects')).toMatchObject({
      verbs: ['get', 'list', 'create', 'patch', 'delete'],
      usedBy: 'deploy, prewarm, rollout (replica router), sleep: KEDA scaling of cart',
    })
    expect(find('keda.sh', 'triggerauthentications').verbs).toEqual(['list', 'create', 'patch'])
    expect(find('batch', 'cronjobs')).toMatchObject({
      verbs: ['get', 'list', 'create', 'patch', 'delete'],
      usedBy: 'deploy, jobs run, jobs status (jobs reconcile), prewarm --schedule, dr drill --schedule',
    })
    expect(find('batch', 'jobs').verbs).toEqual(['get', 'list', 'create'])
    expect(find('', 'pods', 'log').verbs).toEqual(['get'])
    expect(find('gateway.networking.k8s.io', 'httproutes').verbs).toEqual(['get', 'list', 'create', 'patch', 'delete'])
    expect(find('networking.k8s.io', 'ingresses').usedBy).toBe('rollout (nginx router)')
    expect(find('', 'resourcequotas').usedBy).toBe('deploy (quotas of tenants acme)')
    expect(find('scheduling.k8s.io', 'priorityclasses').verbs).toEqual(['get', 'create', 'patch', 'delete'])
    expect(find('rbac.authorization.k8s.io', 'roles').verbs).toEqual(['list'])
  })

  it('scaling.provider auto needs KEDA permissions only where the cluster serves ScaledObjects', () => {
    const auto = project(`
environments: {production: {cluster: main, namespace: shop, prometheus: http://127.0.0.1:9090, router: replicas}}
services:
  cart:
    tier: revenue-critical
    scaling: {minReplicas: 2, maxReplicas: 10, metrics: [{name: carts, query: 'sum(rate(carts_total[1m]))', target: 5}]}
`)
    expect(verbsOf(requiredPermissions(auto.config, auto.env, both), 'keda.sh', 'scaledobjects')).toEqual([
      'get',
      'list',
      'create',
      'patch',
      'delete',
    ])
    expect(verbsOf(requiredPermissions(auto.config, auto.env, none), 'keda.sh', 'scaledobjects')).toBeUndefined()
  })

  it('without a project: every permission any command may need, as before', () => {
    const list = requiredPermissions(undefined, undefined, none)
    expect(list.map((p) => `${p.group}/${p.resource}`)).toEqual(
      expect.arrayContaining([
        'gateway.networking.k8s.io/httproutes',
        'networking.k8s.io/ingresses',
        'batch/cronjobs',
        'scheduling.k8s.io/priorityclasses',
        '/resourcequotas',
      ]),
    )
  })
})
