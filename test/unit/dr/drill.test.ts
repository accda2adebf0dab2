import {existsSync, readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {RetailOpsError} from '../../../src/errors/index.js'
import {runDrill} from '../../../src/dr/drill.js'
import {listDrills, loadDrill} from '../../../src/dr/history.js'
import type {DrillContext, DrillProvider, ProviderResult} from '../../../src/dr/providers/types.js'
import {RecordingOutput} from '../../../src/ui/output.js'
import {environment, project} from './fixtures.js'
import {testContext} from '../../support/context.js'

const ONE = `
project: shop
registry: {url: 127.0.0.1:5000}
services: {orders: {tier: revenue-critical}}
datastores:
  - {name: orders-db, service: orders, provider: postgres, postgres: {url: "postgres://u:pw@127.0.0.1/orders"}}
`

/** A provider stand-in for the orchestrator's logic (no system is faked: nothing here talks to one). */
function provider(
  behaviour: (ctx: DrillContext, removed: string[]) => Promise<ProviderResult>,
  removed: string[] = [],
): Record<string, DrillProvider> {
  const p: DrillProvider = {
    name: 'postgres',
    plan: () => ({source: 'src', target: 'tgt', steps: ['x'], problems: [], warnings: []}),
    async run(_ds, _plan, ctx) {
      ctx.cleanup.push({
        kind: 'scratch database',
        resource: 'retailops_drill_x',
        action: 'drop',
        run: async () => (removed.push('retailops_drill_x'), {status: 'removed'}),
      })
      return ctx.steps.run('orders-db', 'restore', 'restore', () => behaviour(ctx, removed))
    },
  }
  return {postgres: p, 'aws-backup': p, kubernetes: p}
}

const ok =
  (recoveryPointAgoMs: number, passed = true) =>
  async (ctx: DrillContext): Promise<ProviderResult> => ({
    target: 'retailops_drill_x',
    recoveryPoint: new Date(ctx.drillStartMs - recoveryPointAgoMs),
    recoveryPointSource: 'validation newest',
    validations: [
      {
        name: 'count',
        query: 'select count(*) from orders',
        value: passed ? '3' : '0',
        expect: {min: 1},
        passed,
        message: passed ? '3 (≥ 1)' : 'expected at least 1, got 0',
        durationMs: 1,
      },
    ],
    evidence: {dumpSha256: 'abc'},
  })

async function drill(
  behaviour: Parameters<typeof provider>[0],
  options: {signal?: AbortSignal; removed?: string[]} = {},
) {
  const p = project(ONE)
  const out = new RecordingOutput()
  const record = await runDrill(
    {
      project: p,
      environment,
      filters: {},
      recoverability: false,
      leftovers: false,
      providers: provider(behaviour, options.removed),
    },
    {out, signal: options.signal},
  )
  return {record, out, dir: p.dir}
}

describe('runDrill', () => {
  it('passes when the copy validates within the targets, and keeps the record and reports', async () => {
    const removed: string[] = []
    const {record, dir} = await drill(ok(60_000), {removed})
    expect(record).toMatchObject({
      status: 'passed',
      exit: 'OK',
      datastores: [
        {name: 'orders-db', status: 'passed', rto: {status: 'pass'}, rpo: {status: 'pass', actualMs: 60_000}},
      ],
    })
    expect(record.services[0]).toMatchObject({service: 'orders', status: 'passed'})
    expect(removed).toEqual(['retailops_drill_x'])
    expect(record.cleanup).toMatchObject([{kind: 'scratch database', status: 'removed'}])
    expect(record.steps.map((s) => [s.scope, s.name, s.status])).toEqual([
      ['orders-db', 'restore', 'ok'],
      ['orders-db', 'cleanup', 'ok'],
    ])
    expect(record.config.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(record.tool.name).toBe('retailops')
    for (const f of [record.files.record, record.files.markdown, record.files.html]) expect(existsSync(f)).toBe(true)
    expect((await loadDrill(dir, record.id)).id).toBe(record.id)
    expect((await listDrills(dir)).drills).toMatchObject([
      {id: record.id, status: 'passed', datastores: ['orders-db'], rpoMs: 60_000},
    ])
    expect(readFileSync(record.files.markdown, 'utf8')).toContain(`# DR drill ${record.id}: PASSED`)
  })

  it('misses the RPO target when the restored data is too old: exit DR_TARGET_MISSED', async () => {
    const {record} = await drill(ok(6 * 60_000))
    expect(record).toMatchObject({
      status: 'target-missed',
      exit: 'DR_TARGET_MISSED',
      datastores: [{status: 'target-missed', rpo: {status: 'fail'}}],
    })
  })

  it('fails validation: exit DR_VALIDATION_FAILED, RTO not measured, cleanup still runs', async () => {
    const removed: string[] = []
    const {record} = await drill(ok(1000, false), {removed})
    expect(record).toMatchObject({
      status: 'validation-failed',
      exit: 'DR_VALIDATION_FAILED',
      datastores: [{status: 'validation-failed', rto: {status: 'not-measured'}}],
    })
    expect(removed).toEqual(['retailops_drill_x'])
  })

  it('a failed restore is a failed validation; any other error keeps its own exit code', async () => {
    const failed = await drill(async () => {
      throw new RetailOpsError('DR_VALIDATION_FAILED', 'pg_restore failed (exit 1)')
    })
    expect(failed.record).toMatchObject({
      exit: 'DR_VALIDATION_FAILED',
      datastores: [{status: 'validation-failed', error: {message: 'pg_restore failed (exit 1)'}}],
    })
    const down = await drill(async () => {
      throw new RetailOpsError('UNAVAILABLE', 'PostgreSQL is down')
    })
    expect(down.record).toMatchObject({status: 'error', exit: 'UNAVAILABLE'})
  })

  it('cleans up and reports what it removed when interrupted', async () => {
    const controller = new AbortController()
    const removed: string[] = []
    const {record, out} = await drill(
      async (ctx) => {
        controller.abort()
        await new Promise((r) => setTimeout(r, 5))
        if (ctx.signal.aborted) throw Object.assign(new Error('Interrupted'), {code: 'ABORT_ERR'})
        throw new Error('not reached')
      },
      {signal: controller.signal, removed},
    )
    expect(record).toMatchObject({status: 'interrupted', exit: 'INTERRUPTED', datastores: [{status: 'interrupted'}]})
    expect(record.steps.find((s) => s.name === 'restore')?.status).toBe('interrupted')
    expect(removed).toEqual(['retailops_drill_x'])
    expect(out.messages('info').join('\n')).toMatch(/cleanup: drop scratch database retailops_drill_x: removed/)
  })

  it('refuses to start when the plan has problems (nothing written)', async () => {
    const p = project(
      ONE.replace('postgres: {url: "postgres://u:pw@127.0.0.1/orders"}', 'postgres: {urlEnv: NOT_SET_ANYWHERE}'),
    )
    await expect(
      runDrill({project: p, environment, filters: {}, recoverability: false, env: {}}, testContext()),
    ).rejects.toMatchObject({exit: 'CONFIG'})
    expect(existsSync(`${p.dir}/.retailops/drills`)).toBe(false)
  })
})
