import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import {resolveEnvironment, resolveTenant} from '../../../src/config/resolve.js'
import {jobTarget} from '../../../src/jobs/run.js'
import {renderManifests} from '../../../src/deploy/render.js'

const config = parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
clusters:
  main: {context: main-ctx}
  eu: {context: eu-ctx, kubeconfig: /etc/eu.kubeconfig}
environments:
  production: {cluster: main, namespace: shop}
services:
  orders: {tier: revenue-critical}
  inventory: {tier: operational}
jobs:
  reconcile: {dependsOn: [orders, inventory], schedule: '*/30 * * * *'}
tenants:
  - {name: acme, model: dedicated-namespace}
  - {name: globex, model: dedicated-cluster, cluster: eu, namespace: globex}
  - {name: beta, model: shared}
  - {name: delta, model: isolated-database}
  - {name: gamma, model: dedicated-namespace, namespace: gamma-shop, services: [orders]}
`)
const project = {file: '/p/retailops.yaml', dir: '/p', config}
const env = {...resolveEnvironment(config, 'production', '/p'), context: 'override-ctx'}

describe('jobs run --tenant: where a tenant job runs', () => {
  it("a dedicated-namespace tenant: its namespace in the environment's cluster (--context kept)", () => {
    const {env: where, tenant} = jobTarget(project, env, 'reconcile', 'acme')
    expect(tenant).toBe('acme')
    expect(where).toMatchObject({name: 'production', namespace: 'shop-acme', context: 'override-ctx'})
  })

  it("a dedicated-cluster tenant: its cluster's context and kubeconfig, its namespace", () => {
    const {env: where} = jobTarget(project, env, 'reconcile', 'globex')
    expect(where).toMatchObject({
      cluster: 'eu',
      namespace: 'globex',
      context: 'eu-ctx',
      kubeconfig: '/etc/eu.kubeconfig',
    })
  })

  it('is where deploy renders the CronJob for that tenant', () => {
    const render = renderManifests({
      project,
      environment: 'production',
      images: {
        orders: {service: 'orders', ref: 'r/orders@sha256:1', source: 'lock'},
        inventory: {service: 'inventory', ref: 'r/inventory@sha256:1', source: 'lock'},
        reconcile: {service: 'reconcile', ref: 'r/reconcile@sha256:1', source: 'lock'},
      },
    })
    for (const name of ['acme', 'globex']) {
      const where = jobTarget(project, resolveEnvironment(config, 'production', '/p'), 'reconcile', name).env
      const target = render.targets.find((t) => t.tenants.includes(name))!
      expect([target.namespace, target.context]).toEqual([where.namespace, where.context])
      expect(target.objects.find((o) => o.kind === 'CronJob')?.metadata.labels?.['retailops.dev/tenant']).toBe(name)
    }
    // gamma runs orders only: deploy renders no reconcile there, and jobs run refuses it.
    expect(render.targets.find((t) => t.tenants.includes('gamma'))!.jobs).toEqual([])
  })

  it('without --tenant: the environment, unchanged', () => {
    expect(jobTarget(project, env, 'reconcile')).toEqual({env})
  })

  it('refuses an unknown tenant (NOT_FOUND, naming the known ones)', () => {
    expect(() => jobTarget(project, env, 'reconcile', 'nobody')).toThrow(
      expect.objectContaining({exit: 'NOT_FOUND', message: 'Unknown tenant "nobody".'}),
    )
    try {
      jobTarget(project, env, 'reconcile', 'nobody')
    } catch (error) {
      expect((error as {nextSteps: string[]}).nextSteps).toEqual(['Known tenants: acme, globex, beta, delta, gamma.'])
    }
  })

  it("refuses a shared or isolated-database tenant (USAGE): the environment's job runs for all of them at once", () => {
    for (const name of ['beta', 'delta'])
      expect(() => jobTarget(project, env, 'reconcile', name)).toThrow(
        expect.objectContaining({
          exit: 'USAGE',
          message: expect.stringContaining(`one CronJob reconcile for every shared tenant at once (beta, delta`),
        }),
      )
    expect(resolveTenant(config, env, 'beta').shared).toBe(true)
  })

  it('refuses a job deploy does not render for the tenant (NOT_FOUND, naming the missing service)', () => {
    expect(() => jobTarget(project, env, 'reconcile', 'gamma')).toThrow(
      expect.objectContaining({
        exit: 'NOT_FOUND',
        message: expect.stringContaining('it dependsOn inventory, which the tenant does not run'),
      }),
    )
  })
})
