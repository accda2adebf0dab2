import {describe, expect, it} from 'vitest'

import {planOnly} from '../../../src/dr/plan-only.js'
import {allowSourceServerReason, datastoreTargets, selectScope} from '../../../src/dr/plan.js'
import {CONFIG, environment, project} from './fixtures.js'

const env = {
  ORDERS_URL: 'postgres://app:s3cret-pw@127.0.0.1:5432/orders',
  DATABASE_URL: 'postgres://app:pw@127.0.0.1:5432/catalog',
  AWS_REGION: 'eu-west-1',
}

describe('scope', () => {
  const p = project()
  it('selects everything without filters', () => {
    const s = selectScope(p.config, {})
    expect(s.datastores.map((d) => d.name)).toEqual(['orders-db', 'catalog-db', 'shop-config', 'payments-rds'])
    expect(s.services).toEqual(['orders', 'catalog', 'cart'])
  })
  it("narrows by tier (a datastore's own tier or its service's)", () => {
    const s = selectScope(p.config, {tiers: ['revenue-critical']})
    expect(s.datastores.map((d) => d.name)).toEqual(['orders-db', 'payments-rds'])
    expect(s.services).toEqual(['orders'])
  })
  it('narrows by service and datastore together', () => {
    expect(selectScope(p.config, {services: ['orders', 'cart'], datastores: ['shop-config']})).toMatchObject({
      datastores: [{name: 'shop-config'}],
      services: ['cart'],
    })
    expect(selectScope(p.config, {datastores: ['orders-db']}).services).toEqual(['orders'])
  })
  it('rejects unknown names before anything runs', () => {
    expect(() => selectScope(p.config, {services: ['nope']})).toThrow(/Unknown service: nope/)
    expect(() => selectScope(p.config, {datastores: ['nope']})).toThrow(/Unknown datastore: nope/)
    expect(() => selectScope(p.config, {tiers: ['gold']})).toThrow(/Unknown tier: gold/)
  })
})

describe('targets', () => {
  const p = project()
  const ds = (name: string) => p.config.datastores.find((d) => d.name === name)!
  it("come from the service's tier, its own dr override, or the datastore's tier", () => {
    expect(datastoreTargets(p.config, ds('orders-db'))).toMatchObject({rto: '15m', rpo: '5m'})
    expect(datastoreTargets(p.config, ds('catalog-db'))).toMatchObject({rto: '2h', rpo: '12h'})
    expect(datastoreTargets(p.config, ds('shop-config'))).toMatchObject({rto: '1h', rpo: '15m'})
    expect(datastoreTargets(p.config, ds('payments-rds'))).toMatchObject({rto: '15m', rpo: '5m'})
  })
})

describe('dr plan', () => {
  it('describes every step, with drill-prefixed targets and masked credentials', () => {
    const plan = planOnly({project: project(), environment, filters: {}, drillId: '20260509-120301-7f3a', env})
    expect(plan.problems).toEqual([])
    const orders = plan.datastores.find((d) => d.name === 'orders-db')!
    expect(orders.source).toBe('app@127.0.0.1:5432/orders')
    expect(JSON.stringify(plan)).not.toContain('s3cret-pw')
    expect(orders.target).toBe('retailops_drill_20260509_120301_7f3a_orders_db on 127.0.0.1:5432')
    expect(orders.steps.join('\n')).toMatch(/pg_dump custom-format backup .* one exported snapshot/)
    expect(plan.datastores.find((d) => d.name === 'shop-config')!.target).toBe(
      'namespace retailops-drill-20260509-120301-7f3a-shop-config',
    )
    expect(plan.datastores.find((d) => d.name === 'payments-rds')!.steps[0]).toMatch(/newest COMPLETED/)
    expect(plan.recoverability.find((r) => r.service === 'orders')!.checks).toContain(
      'topic order-events: definition in definitions/topics/',
    )
    expect(plan.warnings.join('\n')).toMatch(/catalog-db: no validation queries/)
  })
  it('lists the problems that would stop the drill', () => {
    const plan = planOnly({project: project(), environment, filters: {}, drillId: '20260509-120301-7f3a', env: {}})
    expect(plan.problems.join('\n')).toMatch(/orders-db: no source URL: set ORDERS_URL/)
    expect(plan.problems.join('\n')).toMatch(
      /catalog-db: no source URL: set DATABASE_URL \(or RETAILOPS_POSTGRES_URL\)/,
    )
  })
  it('refuses validation queries where they cannot run', () => {
    const text = `
project: shop
registry: {url: 127.0.0.1:5000}
services: {cart: {tier: operational}}
datastores:
  - {name: k, service: cart, provider: kubernetes, validation: [{name: q, query: "select 1"}]}
  - {name: a, provider: aws-backup, awsBackup: {vaultName: v, iamRoleArn: r, region: eu-west-1}, validation: [{name: q, query: "select 1", expect: {matchesSource: true}}]}
  - {name: p, provider: postgres, postgres: {url: "postgres://u@h/db", backupFile: missing.dump}, validation: [{name: q, query: "select 1", expect: {matchesSource: true}}]}
`
    const plan = planOnly({project: project(text), environment, filters: {}, drillId: '20260509-120301-7f3a', env: {}})
    const problems = plan.problems.join('\n')
    expect(problems).toMatch(/k: kubernetes datastores take no validation queries/)
    expect(problems).toMatch(/a: aws-backup datastores take no validation queries/)
    expect(problems).toMatch(/a: validation q: expect.matchesSource is for postgres/)
    expect(problems).toMatch(/p: backup file .*missing.dump does not exist/)
    expect(problems).toMatch(/p: validation q uses expect.matchesSource, which needs a backup taken by the drill/)
  })
})

describe('postgres drills of production datastores', () => {
  const production = {...environment, name: 'prod', production: true}
  const plan = (extraEnv: Record<string, string> = {}, allowSourceServer?: string, text?: string) =>
    planOnly({
      project: project(text),
      environment: production,
      filters: {datastores: ['orders-db']},
      drillId: '20260509-120301-7f3a',
      env: {...env, ...extraEnv},
      allowSourceServer,
    })
  const withRestoreEnv = CONFIG.replace(
    'postgres: {urlEnv: ORDERS_URL}',
    'postgres: {urlEnv: ORDERS_URL, restoreUrlEnv: DRILL_PG_URL}',
  )

  it("are refused on the source's own server without an explicit restore server or --allow-source-server", () => {
    const p = plan()
    expect(p.problems).toEqual([])
    expect(p.refusals).toEqual([
      expect.stringMatching(
        /^orders-db: the scratch copy would be restored on the source's own server 127\.0\.0\.1:5432, and environment prod is production\. Set datastores\[\]\.postgres\.restoreUrlEnv .* or pass --allow-source-server "<reason>"/,
      ),
    ])
  })
  it("are refused when restoreUrlEnv names the source's server", () => {
    const p = plan({DRILL_PG_URL: 'postgres://drill:pw@127.0.0.1:5432/postgres'}, undefined, withRestoreEnv)
    expect(p.refusals).toEqual([
      expect.stringMatching(
        /^orders-db: postgres\.restoreUrlEnv \(DRILL_PG_URL\) names the source's own server 127\.0\.0\.1:5432/,
      ),
    ])
  })
  it('run on an explicit restore server', () => {
    const p = plan({DRILL_PG_URL: 'postgres://drill:pw@10.9.8.7:5432/postgres'}, undefined, withRestoreEnv)
    expect(p.refusals).toEqual([])
    expect(p.datastores[0].target).toBe('retailops_drill_20260509_120301_7f3a_orders_db on 10.9.8.7:5432')
  })
  it("run on the source's server with --allow-source-server, with a warning naming the reason", () => {
    const p = plan({}, 'staging copy only')
    expect(p.refusals).toEqual([])
    expect(p.warnings).toContain(
      "orders-db: the scratch copy goes on the source's own server 127.0.0.1:5432 (--allow-source-server: staging copy only)",
    )
  })
  it("non-production environments may use the source's server", () => {
    expect(
      planOnly({
        project: project(),
        environment,
        filters: {datastores: ['orders-db']},
        drillId: '20260509-120301-7f3a',
        env,
      }).refusals,
    ).toEqual([])
  })
  it('--allow-source-server needs a reason', () => {
    expect(() => allowSourceServerReason('  ')).toThrow(expect.objectContaining({exit: 'USAGE'}))
    expect(allowSourceServerReason(' no spare server ')).toBe('no spare server')
    expect(allowSourceServerReason(undefined)).toBeUndefined()
  })
})
