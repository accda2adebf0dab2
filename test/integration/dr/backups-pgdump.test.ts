// Drills that restore the backups a team has: pg_dump custom-format files made by the real
// pg_dump, kept in the sandbox's object store (versitygw) or a directory. What the drill chose,
// verified and restored is checked against what the test stored; what it leaves behind (scratch
// databases, downloaded dumps) is read back from PostgreSQL and the file system.
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDrill} from '../../../src/dr/drill.js'
import {type BackupLocation, openLocation} from '../../../src/objectstore/location.js'
import {RecordingOutput} from '../../../src/ui/output.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {cli, createSourceDb, dbUrl, drillDatabases, dropDb, drProject, query, random} from './helpers.js'

const s = sandboxEnv()
const source = `t_dr_bk_${random()}`
const prefix = `t-dr-bk-${random()}`
const workRoot = path.join(mkdtempSync(path.join(os.tmpdir(), 't-dr-bk-work-')), 'dr-work')
const env = {RETAILOPS_DR_WORK_DIR: workRoot, T_DR_RESTORE_URL: dbUrl('postgres')}
const ALLOW = ['--allow-source-server', 'the sandbox has a single PostgreSQL server']
const dumps = mkdtempSync(path.join(os.tmpdir(), 't-dr-bk-dumps-'))

function pgDump(file: string): void {
  execFileSync('/usr/lib/postgresql/15/bin/pg_dump', ['--format=custom', `--dbname=${dbUrl(source)}`, `--file=${file}`])
}
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

function config(location: string, options: {rpo?: string; count?: number} = {}): string {
  return `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  orders:
    tier: revenue-critical
    ${options.rpo ? `dr: {rto: 15m, rpo: ${options.rpo}}` : 'dr: {rto: 15m, rpo: 1h}'}
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres:
      restoreUrlEnv: T_DR_RESTORE_URL
      backup: {location: "${location}"}
    validation:
      - {name: order-count, query: "select count(*) from orders", expect: {equals: ${options.count ?? 350}}}
      - {name: newest-order, query: "select max(created_at) from orders", recoveryPoint: true}
`
}

let store: BackupLocation
let older: string
let newer: string
let newerTakenAt: number

beforeAll(async () => {
  await createSourceDb(source, 300, 600)
  older = path.join(dumps, 'older.dump')
  pgDump(older)
  await query(
    source,
    "INSERT INTO orders (customer, total, created_at) SELECT 'n' || g, 1, now() FROM generate_series(1, 50) g",
  )
  newerTakenAt = Date.now()
  newer = path.join(dumps, 'newer.dump')
  pgDump(newer)
  store = await openLocation(`s3://${s.s3Bucket}/${prefix}`, {baseDir: dumps})
  // The store's time orders the backups: the older one is uploaded first, a second apart.
  await store.put('good/orders-20261206.dump', readFileSync(older))
  await new Promise((r) => setTimeout(r, 1100))
  await store.put('good/orders-20261207.dump', readFileSync(newer))
  await store.put('good/orders-20261207.dump.sha256', `${sha256(newer)}  orders-20261207.dump\n`)
}, 60_000)

afterAll(async () => {
  for (const o of await store.list()) await store.delete(o.key)
  store.close()
  await dropDb(source)
})

function drillWork(): string[] {
  return existsSync(workRoot) ? readdirSync(workRoot).filter((f) => f !== '.lock') : []
}

describe('postgres drill from pg_dump backups (sandbox object store and a directory)', () => {
  it('restores the newest backup in the bucket, verifies its sidecar checksum, and measures RPO from the backup itself', async () => {
    const p = drProject(config(`s3://${s.s3Bucket}/${prefix}/good/`))
    const before = await drillDatabases()
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(0)
    const ds = JSON.parse(result.stdout).result.datastores[0]
    expect(ds).toMatchObject({status: 'passed', rto: {status: 'pass'}, rpo: {status: 'pass'}})
    expect(ds.backup).toMatchObject({
      kind: 'pg-dump',
      location: `s3://${s.s3Bucket}/${prefix}/good/`,
      name: 'orders-20261207.dump',
      sizeBytes: readFileSync(newer).length,
      checksum: {
        algorithm: 'sha256',
        expected: sha256(newer),
        actual: sha256(newer),
        expectedFrom: 'orders-20261207.dump.sha256',
        status: 'verified',
      },
      timeSource: "pg_dump's snapshot (the dump's header: Archive created at)",
    })
    // 350 rows: the newer dump, not the older one (300).
    expect(ds.validations.map((v: {name: string; passed: boolean}) => [v.name, v.passed])).toEqual([
      ['order-count', true],
      ['newest-order', true],
    ])
    // RPO is the dump's own snapshot time (whole seconds), not its newest row (which is as new).
    expect(Math.abs(Date.parse(ds.rpo.recoveryPoint) - newerTakenAt)).toBeLessThan(3000)
    expect(ds.rpo.source).toBe(ds.backup.timeSource)
    expect(ds.evidence).toMatchObject({backupObject: 'orders-20261207.dump', backupCandidates: 2})
    // Nothing left: no scratch database, no downloaded dump.
    expect(await drillDatabases()).toEqual(before)
    expect(drillWork()).toEqual([])
  })

  it('reads the same backups from a directory', async () => {
    const dir = path.join(dumps, 'dir')
    mkdirSync(path.join(dir, 'nightly'), {recursive: true})
    writeFileSync(path.join(dir, 'nightly', 'a.dump'), readFileSync(older))
    utimesSync(path.join(dir, 'nightly', 'a.dump'), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000))
    writeFileSync(path.join(dir, 'nightly', 'b.dump'), readFileSync(newer))
    const p = drProject(config(dir))
    const project = await p.load()
    const record = await runDrill(
      {
        project,
        environment: {name: 'default', cluster: 'default', namespace: 'shop', router: 'replicas', production: false},
        filters: {},
        recoverability: false,
        env: {...process.env, ...env},
      },
      {out: new RecordingOutput(), signal: new AbortController().signal},
    )
    expect(record.exit).toBe('OK')
    expect(record.datastores[0].backup).toMatchObject({
      location: dir,
      name: 'nightly/b.dump',
      checksum: {status: 'unverified', actual: sha256(newer)},
    })
    // No checksum stored: said in the fetch step, not passed off as verified.
    expect(record.steps.find((x) => x.scope === 'orders-db' && x.name === 'fetch')).toMatchObject({
      status: 'warning',
      detail: expect.stringContaining('no checksum stored'),
    })
  })

  it('a backup whose checksum does not match fails the drill with 41 before anything is created, and leaves nothing', async () => {
    await store.put('badsum/orders.dump', readFileSync(newer))
    await store.put('badsum/orders.dump.sha256', `${'0'.repeat(64)}  orders.dump\n`)
    const p = drProject(config(`s3://${s.s3Bucket}/${prefix}/badsum`))
    const before = await drillDatabases()
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(41)
    const record = JSON.parse(result.stdout).result
    const ds = record.datastores[0]
    expect(ds).toMatchObject({
      status: 'validation-failed',
      error: {code: 'DR_VALIDATION_FAILED', message: expect.stringContaining('is corrupted: its SHA-256 is')},
      backup: {name: 'orders.dump', checksum: {status: 'mismatch', expected: '0'.repeat(64), actual: sha256(newer)}},
    })
    expect(record.cleanup).toContainEqual(expect.objectContaining({kind: 'downloaded backup', status: 'removed'}))
    expect(record.steps.map((x: {name: string}) => x.name)).not.toContain('create-target')
    expect(await drillDatabases()).toEqual(before)
    expect(drillWork()).toEqual([])
  })

  it('a truncated backup without a checksum fails in pg_restore with 41; the scratch database it made is dropped', async () => {
    const whole = readFileSync(newer)
    await store.put('truncated/orders.dump', whole.subarray(0, Math.floor(whole.length * 0.6)))
    const p = drProject(config(`s3://${s.s3Bucket}/${prefix}/truncated`))
    const before = await drillDatabases()
    const record = await runDrill(
      {
        project: await p.load(),
        environment: {name: 'default', cluster: 'default', namespace: 'shop', router: 'replicas', production: false},
        filters: {},
        recoverability: false,
        env: {...process.env, ...env},
      },
      {out: new RecordingOutput(), signal: new AbortController().signal},
    )
    expect(record.exit).toBe('DR_VALIDATION_FAILED')
    expect(record.datastores[0]).toMatchObject({
      status: 'validation-failed',
      error: {message: expect.stringMatching(/pg_restore failed|not a readable pg_dump/)},
    })
    expect(record.cleanup).toEqual(
      // The scratch database existed (pg_restore ran into it) and was dropped.
      expect.arrayContaining([
        expect.objectContaining({kind: 'downloaded backup', status: 'removed'}),
        expect.objectContaining({kind: 'scratch database', status: 'removed'}),
      ]),
    )
    expect(await drillDatabases()).toEqual(before)
    expect(drillWork()).toEqual([])
  })

  it('a newest backup older than the RPO target is not restored: exit 40 with the finding', async () => {
    const dir = path.join(dumps, 'stale')
    mkdirSync(dir, {recursive: true})
    writeFileSync(path.join(dir, 'orders.dump'), readFileSync(newer))
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
    utimesSync(path.join(dir, 'orders.dump'), twoHoursAgo, twoHoursAgo)
    const p = drProject(config(dir, {rpo: '1h'}))
    const before = await drillDatabases()
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(40)
    const record = JSON.parse(result.stdout).result
    const ds = record.datastores[0]
    expect(ds).toMatchObject({
      status: 'target-missed',
      finding: expect.stringContaining('older than the RPO target 1h'),
      rpo: {status: 'fail'},
      rto: {status: 'not-measured'},
      backup: {name: 'orders.dump', checksum: {status: 'unverified'}},
      validations: [],
    })
    expect(ds.backup.ageMs).toBeGreaterThan(2 * 3600_000 - 5000)
    // The backup's own time (the file's).
    expect(Math.abs(Date.parse(ds.rpo.recoveryPoint) - twoHoursAgo.getTime())).toBeLessThan(1000)
    // Chosen and refused: nothing downloaded, nothing created (the cleanup finds nothing to remove).
    expect(record.steps.map((x: {name: string}) => x.name)).toEqual(['select-backup', 'cleanup'])
    expect(record.cleanup.every((c: {status: string}) => c.status === 'absent')).toBe(true)
    expect(await drillDatabases()).toEqual(before)
  })
})
