import {chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDrill} from '../../../src/dr/drill.js'
import {RecordingOutput, type Output} from '../../../src/ui/output.js'
import {
  cli,
  createSourceDb,
  dbUrl,
  drillDatabases,
  dropDb,
  query,
  random,
  sourceFingerprint,
  drProject,
} from './helpers.js'

// A real source database on the sandbox's PostgreSQL, drilled with the real pg_dump and
// pg_restore: the scratch database must appear, validate, and be gone afterwards; the source must
// not change.
const source = `t_dr_${random()}`
// Each test file run keeps its drills' private work folders in a folder of its own.
const workRoot = path.join(mkdtempSync(path.join(os.tmpdir(), 't-dr-work-')), 'dr-work')
const env = {T_DR_SOURCE_URL: dbUrl(source), RETAILOPS_DR_WORK_DIR: workRoot}
// The sandbox has one PostgreSQL server, and a project without environments is production.
const ALLOW = ['--allow-source-server', 'the sandbox has a single PostgreSQL server']

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

/**
 * A drill of a 400,000-row source (pg_restore takes a moment after the scratch database
 * appears), run by the CLI until its scratch database exists; the caller interrupts it.
 */
async function drillUntilScratch(big: string): Promise<{child: ReturnType<typeof cli>; scratch: string}> {
  await createSourceDb(big, 400_000, 60)
  const p = drProject(config({count: 400_000}))
  const existing = new Set(await drillDatabases())
  const child = cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {
    cwd: p.dir,
    env: {...env, T_DR_SOURCE_URL: dbUrl(big)},
  })
  let scratch: string | undefined
  for (let i = 0; i < 600 && !scratch; i++) {
    scratch = (await drillDatabases()).find((d) => !existing.has(d))
    if (!scratch) await new Promise((r) => setTimeout(r, 50))
  }
  expect(scratch).toBeDefined()
  return {child, scratch: scratch!}
}

beforeAll(async () => {
  await createSourceDb(source, 500, 120)
  before = await sourceFingerprint(source)
})

afterAll(async () => {
  await dropDb(source)
})

describe('postgres restore drill (sandbox PostgreSQL, real pg_dump/pg_restore)', () => {
  it('restores into a scratch database, validates it, measures RPO, drops it and leaves the source untouched', async () => {
    const p = drProject(config())
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(0)
    const doc = JSON.parse(result.stdout)
    const record = doc.result
    expect(doc.status).toBe(0)
    const ds = record.datastores[0]
    expect(ds).toMatchObject({
      name: 'orders-db',
      status: 'passed',
      rto: {status: 'pass'},
      rpo: {status: 'pass', source: 'validation newest-order'},
    })
    expect(ds.target).toMatch(
      new RegExp(`^retailops_drill_${record.id.replaceAll('-', '_')}_orders_db on 127\\.0\\.0\\.1:5432$`),
    )
    // The newest order is 2 minutes older than the drill's start.
    expect(ds.rpo.actualMs).toBeGreaterThanOrEqual(120_000)
    expect(ds.rpo.actualMs).toBeLessThan(180_000)
    expect(ds.validations.map((v: {name: string; value: string; passed: boolean}) => [v.name, v.passed])).toEqual([
      ['order-count', true],
      ['checksum', true],
      ['newest-order', true],
    ])
    expect(ds.validations[1].value).toBe(ds.validations[1].sourceValue)
    expect(ds.evidence).toMatchObject({
      restoredTables: 1,
      pgDump: expect.stringMatching(/pg_dump \(PostgreSQL\) 15/),
      pgRestore: expect.stringMatching(/pg_restore/),
    })
    expect(ds.evidence.dumpSha256).toMatch(/^[0-9a-f]{64}$/)
    expect(ds.evidence.allowSourceServer).toBe('the sandbox has a single PostgreSQL server')
    expect(doc.warnings).toContainEqual(
      expect.stringContaining('--allow-source-server: the sandbox has a single PostgreSQL server'),
    )
    // The dump went to the drill's private work folder, which is gone with it.
    expect(record.cleanup.find((c: {kind: string}) => c.kind === 'local dump').resource).toBe(
      path.join(workRoot, record.id, 'orders-db.dump'),
    )
    expect(readdirSync(workRoot)).toEqual([])
    expect(statSync(workRoot).mode & 0o777).toBe(0o700)
    expect(record.cleanup.map((c: {kind: string; status: string}) => [c.kind, c.status])).toEqual([
      ['scratch database', 'removed'],
      ['local dump', 'removed'],
    ])
    expect(record.steps.map((s: {name: string}) => s.name)).toEqual([
      'backup',
      'create-target',
      'restore',
      'validate',
      'cleanup',
    ])
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
    expect(JSON.parse(history.stdout).result.drills).toMatchObject([
      {id: record.id, status: 'passed', datastores: ['orders-db']},
    ])
  })

  it('exits 41 (DR_VALIDATION_FAILED) when a validation fails, and still drops the scratch database', async () => {
    const p = drProject(config({count: 499}))
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(41)
    const record = JSON.parse(result.stdout).result
    expect(record).toMatchObject({status: 'validation-failed', exit: 'DR_VALIDATION_FAILED'})
    expect(record.datastores[0].validations[0]).toMatchObject({
      name: 'order-count',
      passed: false,
      value: '500',
      message: 'expected 499, got "500"',
    })
    expect(await drillDatabases()).not.toContain(record.datastores[0].target.split(' ')[0])
  })

  it('exits 40 (DR_TARGET_MISSED) when the RPO target is tighter than the data restored', async () => {
    const p = drProject(config({rpo: '1m'}))
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(40)
    const record = JSON.parse(result.stdout).result
    expect(record.datastores[0]).toMatchObject({
      status: 'target-missed',
      rpo: {status: 'fail', target: '1m'},
      rto: {status: 'pass'},
    })
  })

  it('exits 40 when the RTO target is tighter than the restore took', async () => {
    const p = drProject(config({rto: '10ms'}))
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(40)
    expect(JSON.parse(result.stdout).result.datastores[0]).toMatchObject({
      rto: {status: 'fail', target: '10ms'},
      rpo: {status: 'pass'},
    })
  })

  it('an interrupted drill still drops its scratch database and says so', async () => {
    const p = drProject(config())
    const project = await p.load()
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
      event: (e) => recording.event(e),
      task: (title) => {
        const t = recording.task(title)
        return {
          update: (m) => t.update(m),
          fail: (m) => t.fail(m),
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
    const record = await runDrill(
      {
        project,
        environment: {name: 'default', cluster: 'default', namespace: 'shop', router: 'replicas', production: false},
        filters: {},
        recoverability: false,
        env: {...process.env, ...env},
      },
      {out, signal: controller.signal},
    )
    const scratch = record.datastores[0].target.split(' ')[0]
    expect(seen).toContain(scratch)
    expect(record).toMatchObject({status: 'interrupted', exit: 'INTERRUPTED'})
    expect(record.cleanup).toContainEqual(expect.objectContaining({kind: 'scratch database', status: 'removed'}))
    // (The sandbox's password is "retailops", so output masks that word: match around it.)
    expect(recording.messages('info').join('\n')).toMatch(
      /cleanup: drop scratch database .*_drill_.*_orders_db on .*: removed/,
    )
    expect(await drillDatabases()).not.toContain(scratch)
    expect(await sourceFingerprint(source)).toEqual(before)
  })

  it('Ctrl-C on the CLI: exit 130, scratch database removed', async () => {
    const big = `t_dr_${random()}`
    try {
      const {child, scratch} = await drillUntilScratch(big)
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
      const p = drProject(config())
      const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {cwd: p.dir, env})
      expect(result.exitCode, result.stderr).toBe(0)
      const doc = JSON.parse(result.stdout)
      expect(doc.result.leftovers).toContainEqual(
        expect.objectContaining({
          kind: 'scratch database',
          name: leftover,
          where: '127.0.0.1:5432',
          drillId: leftover.slice(16, 36).replaceAll('_', '-'),
        }),
      )
      // (Output masks the sandbox password, "retailops": match what follows it.)
      expect(doc.warnings.join('\n')).toContain(`${leftover.slice(9)} (127.0.0.1:5432); remove it with: psql`)
      expect(await drillDatabases()).toContain(leftover)
    } finally {
      await dropDb(leftover)
    }
  })

  it('dr plan writes nothing', async () => {
    const p = drProject(config())
    const dbs = await drillDatabases()
    const result = await cli(['dr', 'plan', '--json', ...ALLOW], {cwd: p.dir, env})
    expect(result.exitCode, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout).result.datastores[0].steps).toHaveLength(5)
    expect(await drillDatabases()).toEqual(dbs)
    expect(existsSync(`${p.dir}/.retailops`)).toBe(false)
    const count = await query<{n: string}>(source, 'select count(*) as n from orders')
    expect(count[0].n).toBe('500')
  })

  it("refuses (exit 12) a production datastore on its source's own server, before writing anything", async () => {
    const p = drProject(config())
    const dbs = await drillDatabases()
    const root = path.join(mkdtempSync(path.join(os.tmpdir(), 't-dr-work-')), 'never')
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {
      cwd: p.dir,
      env: {...env, RETAILOPS_DR_WORK_DIR: root},
    })
    expect(result.exitCode, result.stderr).toBe(12)
    const doc = JSON.parse(result.stdout)
    expect(doc.error.message).toMatch(
      /orders-db: the scratch copy would be restored on the source's own server 127\.0\.0\.1:\d+, and environment default is production/,
    )
    expect(doc.error.message).toMatch(/restoreUrlEnv/)
    expect(doc.error.message).toMatch(/--allow-source-server "<reason>"/)
    // Nothing written: no record, no work folder, no scratch database.
    expect(existsSync(path.join(p.dir, '.retailops'))).toBe(false)
    expect(existsSync(root)).toBe(false)
    expect(await drillDatabases()).toEqual(dbs)
    // dr plan says the same, with the same exit code.
    const plan = await cli(['dr', 'plan', '--json'], {cwd: p.dir, env})
    expect(plan.exitCode, plan.stderr).toBe(12)
    expect(JSON.parse(plan.stdout).result.refusals).toHaveLength(1)
  })

  it("refuses (exit 12) a restore server that is the source's server under another address", async () => {
    const other = new URL(dbUrl('postgres'))
    other.hostname = 'localhost'
    const p = drProject(
      config().replace(
        'postgres: {urlEnv: T_DR_SOURCE_URL}',
        'postgres: {urlEnv: T_DR_SOURCE_URL, restoreUrlEnv: T_DR_RESTORE_URL}',
      ),
    )
    const dbs = await drillDatabases()
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {
      cwd: p.dir,
      env: {...env, T_DR_RESTORE_URL: other.toString()},
    })
    expect(result.exitCode, result.stderr).toBe(12)
    expect(JSON.parse(result.stdout).error.message).toMatch(
      /orders-db: the restore server localhost:\d+ \(postgres\.restoreUrlEnv T_DR_RESTORE_URL\) is the source's own server 127\.0\.0\.1:\d+ under another address/,
    )
    expect(existsSync(path.join(p.dir, '.retailops'))).toBe(false)
    expect(await drillDatabases()).toEqual(dbs)
  })

  it("never puts the password on pg_dump's or pg_restore's command line, even from ?password= (argv read by the tools themselves)", async () => {
    // Wrappers named by RETAILOPS_PG_BIN record the argv and environment they were really started
    // with, then exec the real tools.
    const bin = mkdtempSync(path.join(os.tmpdir(), 't-dr-pgbin-'))
    const log = path.join(bin, 'calls.log')
    for (const tool of ['pg_dump', 'pg_restore']) {
      const file = path.join(bin, tool)
      writeFileSync(
        file,
        `#!/bin/sh\n{ printf '%s ' "${tool}"; tr '\\0' ' ' </proc/$$/cmdline; echo; echo "PGPASSWORD=\${PGPASSWORD:+set}"; echo "PGPASSFILE=$PGPASSFILE"; [ -n "$PGPASSFILE" ] && stat -c 'mode=%a' "$PGPASSFILE"; } >>${log}\nexec /usr/lib/postgresql/15/bin/${tool} "$@"\n`,
      )
      chmodSync(file, 0o755)
    }
    const u = new URL(dbUrl(source))
    const password = decodeURIComponent(u.password)
    u.password = ''
    u.searchParams.set('password', password)
    const p = drProject(config())
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {
      cwd: p.dir,
      env: {...env, T_DR_SOURCE_URL: u.toString(), RETAILOPS_PG_BIN: bin, PGPASSWORD: 'inherited-must-not-win'},
    })
    expect(result.exitCode, result.stderr).toBe(0)
    const calls = readFileSync(log, 'utf8')
    // pg_dump and pg_restore --list, --version and the restore itself all ran through the wrappers.
    expect(calls.match(/^pg_dump .*--dbname=postgresql:\/\/retailops@127\.0\.0\.1:\d+\/t_dr_/gm)).toHaveLength(1)
    expect(
      calls.match(/^pg_restore .*--dbname=postgresql:\/\/retailops@127\.0\.0\.1:\d+\/retailops_drill_/gm),
    ).toHaveLength(1)
    expect(calls).not.toContain(`password=`)
    expect(
      calls
        .split('\n')
        .filter((l) => /^pg_(dump|restore) /.test(l))
        .join('\n'),
    ).not.toContain(password)
    expect(calls).not.toMatch(/PGPASSWORD=set/)
    expect(calls).toMatch(
      new RegExp(`PGPASSFILE=${workRoot}/\\d{8}-\\d{6}-[0-9a-f]{4}/orders-db-dump\\.pgpass\\nmode=600`),
    )
    expect(calls).toMatch(
      new RegExp(`PGPASSFILE=${workRoot}/\\d{8}-\\d{6}-[0-9a-f]{4}/orders-db-restore\\.pgpass\\nmode=600`),
    )
    // The password files went with the work folder.
    expect(readdirSync(workRoot)).toEqual([])
  })

  it('after a SIGKILL mid-drill, the next drill finds and removes the dump and the scratch database', async () => {
    const big = `t_dr_${random()}`
    try {
      const {child, scratch} = await drillUntilScratch(big)
      child.kill('SIGKILL')
      const killed = await child
      expect(killed.signal).toBe('SIGKILL')
      // What the killed drill left: its private work folder with the dump and its lease, and the scratch database.
      const id = scratch.slice('retailops_drill_'.length, 'retailops_drill_'.length + 20).replaceAll('_', '-')
      const dir = path.join(workRoot, id)
      expect(statSync(dir).mode & 0o777).toBe(0o700)
      expect(readdirSync(dir).sort()).toEqual(expect.arrayContaining(['lease.json', 'orders-db.dump']))
      expect(JSON.parse(readFileSync(path.join(dir, 'lease.json'), 'utf8')).targets).toEqual([
        {kind: 'scratch database', name: scratch, where: expect.stringMatching(/^127\.0\.0\.1:\d+$/)},
      ])
      expect(await drillDatabases()).toContain(scratch)

      // The next drill (of the small source) cleans up after it.
      const next = await cli(['dr', 'drill', '--json', '--no-recoverability', ...ALLOW], {
        cwd: drProject(config()).dir,
        env,
      })
      expect(next.exitCode, next.stderr).toBe(0)
      const record = JSON.parse(next.stdout).result
      expect(record.leftovers).toEqual(
        expect.arrayContaining([
          expect.objectContaining({kind: 'scratch database', name: scratch, drillId: id, status: 'removed'}),
          expect.objectContaining({
            kind: 'work folder',
            name: dir,
            drillId: id,
            status: 'removed',
            detail: expect.stringContaining('orders-db.dump'),
          }),
        ]),
      )
      expect(await drillDatabases()).not.toContain(scratch)
      expect(existsSync(dir)).toBe(false)
      expect(readdirSync(workRoot)).toEqual([])
    } finally {
      await dropDb(big)
    }
  })
})
