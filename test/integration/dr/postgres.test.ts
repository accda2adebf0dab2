import {existsSync, readFileSync} from 'node:fs'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDrill} from '../../../src/dr/drill.js'
import {RecordingOutput, type Output} from '../../../src/ui/output.js'
import {cli, createSourceDb, dbUrl, drillDatabases, dropDb, loadProject, query, random, sourceFingerprint, writeProject} from './helpers.js'

// A real source database on the sandbox's PostgreSQL, drilled with the real pg_dump and
// pg_restore: the scratch database must appear, validate, and be gone afterwards; the source must
// not change.
const source = `t_dr_${random()}`
const env = {T_DR_SOURCE_URL: dbUrl(source)}

function config(options: {rpo?: string; rto?: string; count?: number} = {}): string {
  return `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  orders:
    tier: revenue-critical
    ${options.rpo || options.rto ? `dr: {rto: ${options.rto ?? '15m'}, rpo: ${options.rpo ?? '5m'}}` : ''}
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres: {urlEnv: T_DR_SOURCE_URL}
    validation:
      - {name: order-count, query: "select count(*) from orders", expect: {equals: ${options.count ?? 500}}}
      - {name: checksum, query: "select md5(string_agg(id || ':' || total, ',' order by id)) from orders", expect: {matchesSource: true}}
      - {name: newest-order, query: "select max(created_at) from orders", recoveryPoint: true}
`
}

let before: Awaited<ReturnType<typeof sourceFingerprint>>

beforeAll(async () => {
  await createSourceDb(source, 500, 120)
  before = await sourceFingerprint(source)
})

afterAll(async () => {
  await dropDb(source)
})

describe('postgres restore drill (sandbox PostgreSQL, real pg_dump/pg_restore)', () => {
  it('restores into a scratch database, validates it, measures RPO, drops it and leaves the source untouched', async () => {
    const p = writeProject(config())
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(0)
    const doc = JSON.parse(result.stdout)
    const record = doc.result
    expect(doc.status).toBe(0)
    const ds = record.datastores[0]
    expect(ds).toMatchObject({name: 'orders-db', status: 'passed', rto: {status: 'pass'}, rpo: {status: 'pass', source: 'validation newest-order'}})
    expect(ds.target).toMatch(new RegExp(`^retailops_drill_${record.id.replaceAll('-', '_')}_orders_db on 127\\.0\\.0\\.1:5432$`))
    // The newest order is 2 minutes older than the drill's start.
    expect(ds.rpo.actualMs).toBeGreaterThanOrEqual(120_000)
    expect(ds.rpo.actualMs).toBeLessThan(180_000)
    expect(ds.validations.map((v: {name: string; value: string; passed: boolean}) => [v.name, v.passed])).toEqual([['order-count', true], ['checksum', true], ['newest-order', true]])
    expect(ds.validations[1].value).toBe(ds.validations[1].sourceValue)
    expect(ds.evidence).toMatchObject({restoredTables: 1, pgDump: expect.stringMatching(/pg_dump \(PostgreSQL\) 15/), pgRestore: expect.stringMatching(/pg_restore/)})
    expect(ds.evidence.dumpSha256).toMatch(/^[0-9a-f]{64}$/)
    expect(record.cleanup.map((c: {kind: string; status: string}) => [c.kind, c.status])).toEqual([['scratch database', 'removed'], ['local dump', 'removed']])
    expect(record.steps.map((s: {name: string}) => s.name)).toEqual(['backup', 'create-target', 'restore', 'validate', 'cleanup'])
    // Gone afterwards; the source is as it was.
    expect(await drillDatabases()).not.toContain(ds.target.split(' ')[0])
    expect(await sourceFingerprint(source)).toEqual(before)
    // The evidence is kept, and the password is in none of it.
    for (const f of [record.files.record, record.files.markdown, record.files.html]) {
      expect(existsSync(f)).toBe(true)
      expect(readFileSync(f, 'utf8')).not.toContain(`:${new URL(dbUrl(source)).password}@`)
    }
    expect(result.stdout).not.toContain(`:${new URL(dbUrl(source)).password}@`)
    const history = await cli(['dr', 'history', '--json'], {cwd: p.dir, env})
    expect(JSON.parse(history.stdout).result.drills).toMatchObject([{id: record.id, status: 'passed', datastores: ['orders-db']}])
  })

  it('exits 41 (DR_VALIDATION_FAILED) when a validation fails, and still drops the scratch database', async () => {
    const p = writeProject(config({count: 499}))
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(41)
    const record = JSON.parse(result.stdout).result
    expect(record).toMatchObject({status: 'validation-failed', exit: 'DR_VALIDATION_FAILED'})
    expect(record.datastores[0].validations[0]).toMatchObject({name: 'order-count', passed: false, value: '500', message: 'expected 499, got "500"'})
    expect(await drillDatabases()).not.toContain(record.datastores[0].target.split(' ')[0])
  })

  it('exits 40 (DR_TARGET_MISSED) when the RPO target is tighter than the data restored', async () => {
    const p = writeProject(config({rpo: '1m'}))
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(40)
    const record = JSON.parse(result.stdout).result
    expect(record.datastores[0]).toMatchObject({status: 'target-missed', rpo: {status: 'fail', target: '1m'}, rto: {status: 'pass'}})
  })

  it('exits 40 when the RTO target is tighter than the restore took', async () => {
    const p = writeProject(config({rto: '10ms'}))
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(40)
    expect(JSON.parse(result.stdout).result.datastores[0]).toMatchObject({rto: {status: 'fail', target: '10ms'}, rpo: {status: 'pass'}})
  })

  it('an interrupted drill still drops its scratch database and says so', async () => {
    const p = writeProject(config())
    const project = await loadProject(p.file)
    const controller = new AbortController()
    const recording = new RecordingOutput()
    let seen: string[] = []
    // Interrupt the moment the scratch database exists (as Ctrl-C would, mid-restore).
    const out: Output = {
      ...recording,
      info: (m) => recording.info(m),
      warn: (m) => recording.warn(m),
      debug: (m) => recording.debug(m),
      stream: (s, l) => recording.stream(s, l),
      task: (title) => {
        const t = recording.task(title)
        return {
          update: t.update,
          fail: t.fail,
          succeed: (m) => {
            t.succeed(m)
            if (title.includes('create retailops_drill_')) {
              void drillDatabases().then((dbs) => {
                seen = dbs
                controller.abort()
              })
            }
          },
        }
      },
    }
    const record = await runDrill({project, environment: {name: 'default', cluster: 'default', namespace: 'shop', router: 'replicas', production: false}, filters: {}, recoverability: false, env: {...process.env, ...env}}, {out, signal: controller.signal})
    const scratch = record.datastores[0].target.split(' ')[0]
    expect(seen).toContain(scratch)
    expect(record).toMatchObject({status: 'interrupted', exit: 'INTERRUPTED'})
    expect(record.cleanup).toContainEqual(expect.objectContaining({kind: 'scratch database', status: 'removed'}))
    // (The sandbox's password is "retailops", so output masks that word: match around it.)
    expect(recording.messages('info').join('\n')).toMatch(/cleanup: drop scratch database .*_drill_.*_orders_db on .*: removed/)
    expect(await drillDatabases()).not.toContain(scratch)
    expect(await sourceFingerprint(source)).toEqual(before)
  })

  it('Ctrl-C on the CLI: exit 130, scratch database removed', async () => {
    // Enough rows that pg_restore takes a moment after the scratch database appears.
    const big = `t_dr_${random()}`
    await createSourceDb(big, 400_000, 60)
    try {
      const p = writeProject(config({count: 400_000}))
      const existing = new Set(await drillDatabases())
      const child = cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir, env: {T_DR_SOURCE_URL: dbUrl(big)}})
      let scratch: string | undefined
      for (let i = 0; i < 600 && !scratch; i++) {
        scratch = (await drillDatabases()).find((d) => !existing.has(d))
        if (!scratch) await new Promise((r) => setTimeout(r, 50))
      }
      expect(scratch).toBeDefined()
      child.kill('SIGINT')
      const result = await child
      expect(result.exitCode, `${result.signal} ${result.stderr.slice(-2000)}`).toBe(130)
      const record = JSON.parse(result.stdout).result
      expect(record.status).toBe('interrupted')
      expect(record.cleanup).toContainEqual(expect.objectContaining({kind: 'scratch database', status: 'removed'}))
      expect(await drillDatabases()).not.toContain(scratch)
    } finally {
      await dropDb(big)
    }
  })

  it('reports (and leaves alone) a scratch database an earlier, killed drill left behind', async () => {
    const leftover = `retailops_drill_20200101_000000_${random().slice(0, 4)}_orders_db`
    await query('postgres', `CREATE DATABASE ${leftover}`)
    try {
      const p = writeProject(config())
      const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir, env})
      expect(result.exitCode, result.stderr).toBe(0)
      const doc = JSON.parse(result.stdout)
      expect(doc.result.leftovers).toContainEqual(expect.objectContaining({kind: 'scratch database', name: leftover, where: '127.0.0.1:5432', drillId: leftover.slice(16, 36).replaceAll('_', '-')}))
      // (Output masks the sandbox password, "retailops": match what follows it.)
      expect(doc.warnings.join("\n")).toContain(`${leftover.slice(9)} (127.0.0.1:5432); remove it with: psql`)
      expect(await drillDatabases()).toContain(leftover)
    } finally {
      await dropDb(leftover)
    }
  })

  it('dr plan writes nothing', async () => {
    const p = writeProject(config())
    const dbs = await drillDatabases()
    const result = await cli(['dr', 'plan', '--json'], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout).result.datastores[0].steps).toHaveLength(5)
    expect(await drillDatabases()).toEqual(dbs)
    expect(existsSync(`${p.dir}/.retailops`)).toBe(false)
    const count = await query<{n: string}>(source, 'select count(*) as n from orders')
    expect(count[0].n).toBe('500')
  })
})
