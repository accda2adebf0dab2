// pgBackRest repositories made by the real pgbackrest (stanza-create, a full backup, WAL pushed by
// archive_command) from a source cluster this test starts: repo1 on a directory, repo2 in the
// sandbox's object store over TLS (s3, path style, the sandbox's CA). The drill restores them into
// a scratch data directory and server; what it leaves behind (the directory, the server's
// processes) is read back from the machine, and the s3 repository's objects from the store.
import {execFileSync} from 'node:child_process'
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDrill} from '../../../src/dr/drill.js'
import {runuser} from '../../../src/dr/providers/pgbackrest.js'
import type {DrillRecord} from '../../../src/dr/types.js'
import {openLocation} from '../../../src/objectstore/location.js'
import {RecordingOutput} from '../../../src/ui/output.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {drProject, random} from './helpers.js'

const BIN = '/usr/lib/postgresql/15/bin'
const base = `/var/tmp/t-dr-pgbr-${random()}`
const scratchRoot = path.join(base, 'scratch')
const port = 56000 + Math.floor(Math.random() * 900)
const conf = path.join(base, 'pgbackrest.conf')
const sbx = sandboxEnv()
// repo2: a prefix of its own in the sandbox's bucket, reached over TLS.
const s3Prefix = `pgbackrest/${path.basename(base)}`
const s3Repo = `s3://${sbx.s3Bucket}/${s3Prefix}`
const tls = new URL(sbx.s3TlsEndpoint)
/** The s3 repository read through the plain listener: the same store, another door. */
const s3Store = () => openLocation(s3Repo, {baseDir: base, endpoint: sbx.s3Endpoint, env: process.env})
const ids = {
  uid: Number(execFileSync('id', ['-u', 'postgres']).toString()),
  gid: Number(execFileSync('id', ['-g', 'postgres']).toString()),
}

const asPostgres = (file: string, args: string[]) =>
  execFileSync(runuser(), ['-u', 'postgres', '--', file, ...args], {cwd: '/tmp', encoding: 'utf8'})
const psql = (sql: string) =>
  asPostgres(`${BIN}/psql`, ['-h', path.join(base, 'run'), '-p', String(port), '-U', 'postgres', '-Atc', sql]).trim()
const pgbackrest = (...args: string[]) => asPostgres('pgbackrest', [`--config=${conf}`, '--stanza=orders', ...args])

function config(repo: string, extra = '', rpo = '1h'): string {
  return `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  orders:
    tier: revenue-critical
    dr: {rto: 15m, rpo: ${rpo}}
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres:
      backup: {source: pgbackrest, location: "${repo}", stanza: orders${extra}}
    validation:
      - {name: order-count, query: "select count(*) from orders", expect: {min: 1}}
      - {name: newest-order, query: "select max(created_at) from orders", recoveryPoint: true}
`
}

async function drill(yaml: string): Promise<DrillRecord> {
  const p = drProject(yaml)
  return runDrill(
    {
      project: await p.load(),
      environment: {name: 'default', cluster: 'default', namespace: 'shop', router: 'replicas', production: false},
      filters: {},
      recoverability: false,
      env: {...process.env, RETAILOPS_DR_SCRATCH_DIR: scratchRoot, RETAILOPS_DR_WORK_DIR: path.join(base, 'work')},
    },
    {out: new RecordingOutput(), signal: new AbortController().signal},
  )
}

/** What a drill may leave: directories under the scratch root, and postgres processes serving them. */
function leftBehind(): {dirs: string[]; servers: string[]} {
  const dirs = existsSync(scratchRoot) ? readdirSync(scratchRoot) : []
  const servers = execFileSync('ps', ['-eo', 'args'], {encoding: 'utf8'})
    .split('\n')
    .filter((l) => l.includes(scratchRoot) && !l.includes('ps -eo'))
  return {dirs, servers}
}

let afterBackup: string
let count: (record: DrillRecord) => string | null | undefined

beforeAll(() => {
  for (const d of [base, path.join(base, 'repo'), path.join(base, 'run'), path.join(base, 'log')]) {
    mkdirSync(d, {recursive: true})
    chownSync(d, ids.uid, ids.gid)
  }
  // The source's pgbackrest runs as postgres, which cannot read the CA under root's home: a copy.
  cpSync(sbx.s3Ca, `${base}/ca.pem`)
  chownSync(`${base}/ca.pem`, ids.uid, ids.gid)
  const repo2 = [
    'repo2-type=s3',
    `repo2-path=/${s3Prefix}`,
    `repo2-s3-bucket=${sbx.s3Bucket}`,
    `repo2-s3-endpoint=${tls.hostname}`,
    `repo2-storage-port=${tls.port}`,
    'repo2-s3-uri-style=path',
    `repo2-s3-region=${sbx.s3Region}`,
    `repo2-s3-key=${process.env.AWS_ACCESS_KEY_ID}`,
    `repo2-s3-key-secret=${process.env.AWS_SECRET_ACCESS_KEY}`,
    `repo2-storage-ca-file=${base}/ca.pem`,
    'repo2-retention-full=2',
  ].join('\n')
  // Mode 0600: it holds the store's keys.
  writeFileSync(
    conf,
    `[global]\nrepo1-path=${base}/repo\nrepo1-retention-full=2\n${repo2}\nlog-path=${base}/log\nlock-path=${base}/log\nlog-level-console=warn\nstart-fast=y\n[orders]\npg1-path=${base}/data\npg1-socket-path=${base}/run\npg1-port=${port}\n`,
    {mode: 0o600},
  )
  chownSync(conf, ids.uid, ids.gid)
  asPostgres(`${BIN}/initdb`, [
    '-D',
    `${base}/data`,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
  ])
  asPostgres(`${BIN}/pg_ctl`, [
    '-D',
    `${base}/data`,
    '-l',
    `${base}/source.log`,
    '-w',
    '-o',
    `-c listen_addresses='' -c port=${port} -c unix_socket_directories=${base}/run -c archive_mode=on -c fsync=off -c 'archive_command=pgbackrest --config=${conf} --stanza=orders archive-push %p'`,
    'start',
  ])
  pgbackrest('stanza-create')
  psql(
    "create table orders (id bigserial primary key, total numeric, created_at timestamptz not null default now()); insert into orders (total, created_at) select g, now() - interval '10 minutes' from generate_series(1, 100) g",
  )
  pgbackrest('--type=full', 'backup')
  pgbackrest('--repo=2', '--type=full', 'backup')
  afterBackup = new Date(Date.now() + 1000).toISOString()
  execFileSync('sleep', ['2'])
  // After the backup: 50 more orders, committed, then the WAL segment holding them is archived.
  psql('insert into orders (total) select g from generate_series(1, 50) g')
  const segment = psql('select pg_walfile_name(pg_current_wal_lsn())')
  psql('select pg_switch_wal()')
  for (let i = 0; i < 100; i++) {
    if (psql(`select coalesce(last_archived_wal, '') >= '${segment}' from pg_stat_archiver`) === 't') break
    execFileSync('sleep', ['0.2'])
  }
  count = (record) => record.datastores[0].validations.find((v) => v.name === 'order-count')?.value
}, 120_000)

afterAll(async () => {
  try {
    asPostgres(`${BIN}/pg_ctl`, ['-D', `${base}/data`, '-m', 'immediate', '-w', 'stop'])
  } finally {
    rmSync(base, {recursive: true, force: true})
    const store = await s3Store()
    for (const o of await store.list()) await store.delete(o.key)
    expect(await store.list()).toEqual([])
    store.close()
  }
})

describe('postgres drill from a pgBackRest repository (real pgbackrest, archived WAL)', () => {
  it('restores the newest backup, replays the archived WAL, measures RPO from the last replayed transaction, and removes the scratch server', async () => {
    const record = await drill(config(`${base}/repo`))
    expect(record.exit, JSON.stringify(record.datastores[0].error)).toBe('OK')
    const ds = record.datastores[0]
    // 100 orders in the backup, 50 more only in the archived WAL.
    expect(count(record)).toBe('150')
    expect(ds.backup).toMatchObject({
      kind: 'pgbackrest',
      location: `${base}/repo`,
      name: expect.stringMatching(/^orders\/\d{8}-\d{6}F$/),
      checksum: {algorithm: 'pgbackrest', status: 'verified'},
      timeSource: 'the last transaction replayed from archived WAL (pg_last_xact_replay_timestamp)',
      pointInTime: {target: 'end of archived WAL', walArchived: true},
    })
    expect(Date.parse(ds.backup!.time)).toBeGreaterThan(Date.parse(afterBackup))
    expect(ds.rpo).toMatchObject({status: 'pass', recoveryPoint: ds.backup!.time})
    expect(record.steps.filter((s) => s.scope === 'orders-db').map((s) => s.name)).toEqual([
      'select-backup',
      'restore',
      'start-server',
      'validate',
      'cleanup',
    ])
    expect(record.cleanup.map((c) => [c.kind, c.status])).toEqual([
      ['scratch server', 'removed'],
      ['scratch data directory', 'removed'],
    ])
    expect(leftBehind()).toEqual({dirs: [], servers: []})
    // The source cluster's archive did not get WAL from the scratch server (archive_mode=off there).
    expect(JSON.parse(pgbackrest('--output=json', 'info'))[0].archive[0].max).not.toMatch(/^00000002/)
  })

  it('recovers to postgres.backup.targetTime (point in time): the orders after it are not there', async () => {
    const record = await drill(config(`${base}/repo`, `, targetTime: "${afterBackup}"`))
    expect(record.exit, JSON.stringify(record.datastores[0].error)).toBe('OK')
    expect(count(record)).toBe('100')
    expect(record.datastores[0].backup?.pointInTime?.target).toBe(afterBackup)
    expect(leftBehind()).toEqual({dirs: [], servers: []})
  })

  it('restores from the s3 repository in the object store over TLS (postgres.backup.caFile), and leaves nothing behind', async () => {
    const record = await drill(config(s3Repo, `, endpoint: "${sbx.s3TlsEndpoint}", caFile: "${sbx.s3Ca}"`))
    expect(record.exit, JSON.stringify(record.datastores[0].error)).toBe('OK')
    const ds = record.datastores[0]
    expect(count(record)).toBe('150')
    expect(ds.backup).toMatchObject({
      kind: 'pgbackrest',
      location: s3Repo,
      name: expect.stringMatching(/^orders\/\d{8}-\d{6}F$/),
      checksum: {algorithm: 'pgbackrest', status: 'verified'},
      pointInTime: {target: 'end of archived WAL', walArchived: true},
    })
    expect(Date.parse(ds.backup!.time)).toBeGreaterThan(Date.parse(afterBackup))
    expect(ds.evidence).toMatchObject({repositoryCaFile: sbx.s3Ca})
    // The backup restored is repo2's own (pgbackrest info of repo2 names it), read from the store.
    const repo2Label = (JSON.parse(pgbackrest('--repo=2', '--output=json', 'info'))[0].backup as {label: string}[])[0]
      .label
    expect(ds.backup!.name).toBe(`orders/${repo2Label}`)
    const keys = (await (await s3Store()).list()).map((o) => o.key)
    expect(keys).toEqual(
      expect.arrayContaining([
        'archive/orders/archive.info',
        'backup/orders/backup.info',
        `backup/orders/${repo2Label}/backup.manifest`,
      ]),
    )
    expect(
      keys.filter((k) => /^archive\/orders\/15-1\/[0-9A-F]{16}\/[0-9A-F]{24}-[0-9a-f]{40}/.test(k)).length,
    ).toBeGreaterThan(1)
    expect(record.cleanup.map((c) => [c.kind, c.status])).toEqual([
      ['scratch server', 'removed'],
      ['scratch data directory', 'removed'],
    ])
    expect(leftBehind()).toEqual({dirs: [], servers: []})
  })

  // (A CA that did not sign the store's certificate: pgBackRest retries for its io-timeout, 60 s,
  // before saying so; its answer is a unit test of parsePgBackRestInfo, test/unit/dr/backups.test.ts.)
  it('a caFile that is not there: refused before anything is created, naming the file', async () => {
    const missing = path.join(base, 'no-such-ca.pem')
    await expect(
      drill(config(s3Repo, `, endpoint: "${sbx.s3TlsEndpoint}", caFile: "${missing}"`)),
    ).rejects.toMatchObject({
      exit: 'CONFIG',
      message: expect.stringContaining(`orders-db: postgres.backup.caFile ${missing} is not a readable file`),
    })
    expect(leftBehind()).toEqual({dirs: [], servers: []})
  })

  it('a backup older than the RPO target with no WAL archived after it: refused with 40, nothing restored or left', async () => {
    // A copy of repo1 without the WAL archived after its backup: nothing could bring it closer.
    const copy = `${base}/repo-old`
    cpSync(`${base}/repo`, copy, {recursive: true})
    const walStop = JSON.parse(pgbackrest('--repo=1', '--output=json', 'info'))[0].backup[0].archive.stop as string
    const archived = execFileSync('find', [`${copy}/archive/orders`, '-type', 'f', '-name', '0*'], {encoding: 'utf8'})
      .trim()
      .split('\n')
    const later = archived.filter(
      (f) => /^[0-9A-F]{24}-/.test(path.basename(f)) && path.basename(f).slice(0, 24) > walStop,
    )
    expect(later.length).toBeGreaterThan(0)
    for (const f of later) rmSync(f)
    execFileSync('chown', ['-R', 'postgres:postgres', copy])
    const record = await drill(config(copy, '', '1s'))
    expect(record.exit).toBe('DR_TARGET_MISSED')
    const ds = record.datastores[0]
    expect(ds).toMatchObject({
      status: 'target-missed',
      finding: expect.stringContaining('older than the RPO target 1s'),
      rpo: {status: 'fail'},
      backup: {kind: 'pgbackrest', pointInTime: {walArchived: false}},
      validations: [],
    })
    expect(record.steps.filter((s) => s.scope === 'orders-db').map((s) => s.name)).toEqual(['select-backup', 'cleanup'])
    expect(leftBehind()).toEqual({dirs: [], servers: []})
  })

  it('a corrupted file in the repository fails the restore with 41 and leaves no directory or server', async () => {
    const copy = `${base}/repo-corrupt`
    cpSync(`${base}/repo`, copy, {recursive: true})
    const label = readdirSync(`${copy}/backup/orders`).find((f) => /F$/.test(f))!
    // The largest data file of the backup, cut in half.
    const files = execFileSync('find', [`${copy}/backup/orders/${label}/pg_data/base`, '-type', 'f', '-size', '+8k'], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
    const victim = files[0]
    truncateSync(victim, Math.floor(readFileSync(victim).length / 2))
    execFileSync('chown', ['-R', 'postgres:postgres', copy])
    const record = await drill(config(copy))
    expect(record.exit).toBe('DR_VALIDATION_FAILED')
    expect(record.datastores[0]).toMatchObject({
      status: 'validation-failed',
      error: {message: expect.stringContaining('pgbackrest restore of')},
      backup: {checksum: {status: 'mismatch'}},
    })
    expect(leftBehind()).toEqual({dirs: [], servers: []})
  })
})
