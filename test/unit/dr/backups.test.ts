import {describe, expect, it} from 'vitest'

import {
  archiveCreatedAt,
  backupTooOld,
  expectedChecksum,
  globMatcher,
  newestBackup,
  newestPgBackRestBackup,
  parsePgBackRestInfo,
  parseSha256Sidecar,
} from '../../../src/dr/backups.js'
import type {StoredObject} from '../../../src/objectstore/location.js'

const obj = (key: string, at: string, size = 100, extra: Partial<StoredObject> = {}): StoredObject => ({
  key,
  size,
  modified: new Date(at),
  ...extra,
})
const HEX = 'ab'.repeat(32)

describe('newestBackup', () => {
  it('picks the newest matching object by the store time, skipping sidecars, partial uploads and empty files', () => {
    const found = newestBackup(
      [
        obj('pg/orders-1.dump', '2026-12-06T01:00:00Z'),
        obj('pg/orders-3.dump', '2026-12-06T03:00:00Z', 0),
        obj('pg/orders-2.dump', '2026-12-06T02:00:00Z'),
        obj('pg/orders-2.dump.sha256', '2026-12-06T04:00:00Z'),
        obj('pg/orders-4.dump.partial', '2026-12-06T05:00:00Z'),
        obj('pg/readme.txt', '2026-12-06T06:00:00Z'),
      ],
      '*.dump',
    )
    expect(found.newest?.key).toBe('pg/orders-2.dump')
    expect(found.backups.map((b) => b.key)).toEqual(['pg/orders-2.dump', 'pg/orders-1.dump'])
    expect(found.skipped).toEqual([{key: 'pg/orders-3.dump', reason: 'empty (an upload that never finished?)'}])
  })

  it('breaks a tie in time by key, and finds nothing in an empty listing', () => {
    expect(
      newestBackup([obj('a.dump', '2026-12-06T01:00:00Z'), obj('b.dump', '2026-12-06T01:00:00Z')], '*.dump').newest
        ?.key,
    ).toBe('b.dump')
    expect(newestBackup([], '*.dump')).toEqual({newest: undefined, backups: [], skipped: []})
  })

  it('matches the glob on the base name only', () => {
    const m = globMatcher('orders-*.dump')
    expect(m('x/y/orders-1.dump')).toBe(true)
    expect(m('orders-1.dump.gz')).toBe(false)
    expect(m('x/orders/1.dump')).toBe(false)
    expect(globMatcher('db?.bak')('db1.bak')).toBe(true)
  })
})

describe('checksums', () => {
  it('reads sha256sum output and bare hex, lower-cased', () => {
    expect(parseSha256Sidecar(`${HEX.toUpperCase()}  orders.dump\n`)).toBe(HEX)
    expect(parseSha256Sidecar(HEX)).toBe(HEX)
    expect(parseSha256Sidecar('not a checksum')).toBeUndefined()
    expect(parseSha256Sidecar(`${HEX}x`)).toBeUndefined()
  })

  it('trusts a sidecar first, then sha256 metadata, then the store checksum', () => {
    const o = obj('a.dump', '2026-12-06T01:00:00Z', 1, {
      metadata: {sha256: 'cd'.repeat(32)},
      checksumSha256: 'ef'.repeat(32),
    })
    expect(expectedChecksum(o, `${HEX}  a.dump`)).toEqual({expected: HEX, expectedFrom: 'a.dump.sha256'})
    expect(expectedChecksum(o, undefined)).toEqual({expected: 'cd'.repeat(32), expectedFrom: 'object metadata sha256'})
    expect(expectedChecksum({...o, metadata: {}}, undefined)).toEqual({
      expected: 'ef'.repeat(32),
      expectedFrom: "the store's ChecksumSHA256",
    })
    expect(expectedChecksum({...o, metadata: {}, checksumSha256: undefined}, undefined)).toEqual({})
  })

  it('a sidecar that holds no checksum is a problem, not "no checksum"', () => {
    expect(expectedChecksum(obj('a.dump', '2026-12-06T01:00:00Z'), 'garbage').problem).toMatch(/holds no SHA-256/)
  })
})

describe('backupTooOld', () => {
  const start = Date.parse('2026-12-07T01:00:00Z')
  it('passes a backup within the RPO and refuses an older one with the finding', () => {
    expect(backupTooOld(new Date(start - 60_000), start, 300_000, '5m')).toEqual({ageMs: 60_000, tooOld: false})
    const old = backupTooOld(new Date(start - 2 * 3600_000), start, 3600_000, '1h')
    expect(old).toMatchObject({ageMs: 7_200_000, tooOld: true})
    expect(old.finding).toMatch(/older than the RPO target 1h/)
    expect(old.finding).toMatch(/it was not restored/)
  })
  it('counts a backup stamped after the drill start (clock skew) as age 0', () => {
    expect(backupTooOld(new Date(start + 5000), start, 1000, '1s')).toEqual({ageMs: 0, tooOld: false})
  })
})

describe('archiveCreatedAt', () => {
  it("reads pg_dump's header time in UTC or a numeric zone, and nothing else", () => {
    expect(archiveCreatedAt(';\n; Archive created at 2026-12-07 00:44:05 UTC\n;     dbname: x')?.toISOString()).toBe(
      '2026-12-07T00:44:05.000Z',
    )
    expect(archiveCreatedAt('; Archive created at 2026-12-07 02:44:05 +02')?.toISOString()).toBe(
      '2026-12-07T00:44:05.000Z',
    )
    expect(archiveCreatedAt('; Archive created at 2026-12-07 00:44:05 CET')).toBeUndefined()
    expect(archiveCreatedAt('no header')).toBeUndefined()
  })
})

describe('pgBackRest info', () => {
  const info = JSON.stringify([
    {
      name: 'orders',
      status: {code: 0, message: 'ok'},
      db: [{id: 1, 'system-id': 7, version: '15'}],
      archive: [{database: {id: 1}, id: '15-1', min: '000000010000000000000001', max: '000000010000000000000009'}],
      backup: [
        {
          label: '20261207-000101F',
          type: 'full',
          timestamp: {start: 1_796_601_661, stop: 1_796_601_670},
          info: {size: 30_000_000, repository: {size: 4_000_000}},
          archive: {start: '000000010000000000000003', stop: '000000010000000000000003'},
        },
        {
          label: '20261207-000101F_20261207-001001I',
          type: 'incr',
          error: true,
          timestamp: {start: 1_796_602_201, stop: 1_796_602_210},
        },
        {
          label: '20261207-000101F_20261207-000501D',
          type: 'diff',
          timestamp: {start: 1_796_601_901, stop: 1_796_601_905},
          archive: {start: '000000010000000000000005', stop: '000000010000000000000005'},
        },
      ],
    },
  ])

  it('reads the backups, WAL range and version; the newest is the newest stopped without error', () => {
    const parsed = parsePgBackRestInfo(info, 'orders')
    expect(parsed).toMatchObject({
      status: {code: 0},
      dbVersion: '15',
      archive: {max: '000000010000000000000009'},
    })
    expect(parsed.backups[0]).toMatchObject({type: 'full', repoSizeBytes: 4_000_000, sizeBytes: 30_000_000})
    expect(newestPgBackRestBackup(parsed)?.label).toBe('20261207-000101F_20261207-000501D')
  })

  it('names a missing stanza and output that is not JSON', () => {
    expect(() => parsePgBackRestInfo(info, 'payments')).toThrow(/no stanza payments/)
    expect(() => parsePgBackRestInfo('ERROR', 'orders')).toThrow(/did not print JSON/)
    expect(newestPgBackRestBackup({stanza: 'x', status: {code: 2, message: 'no valid backups'}, backups: []})).toBe(
      undefined,
    )
  })
})

describe('pgbackrest info of a repository it cannot read', () => {
  it("status 99 carries each repository's own message (pgbackrest 2.45, a CA that did not sign the store's certificate)", () => {
    const info = parsePgBackRestInfo(
      `[{"archive":[],"backup":[],"cipher":"none","db":[],"name":"orders","repo":[{"cipher":"none","key":1,"status":{"code":99,"message":"[CryptoError] unable to verify certificate presented by '127.0.0.1:9443': [20] unable to get local issuer certificate"}}],"status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}]`,
      'orders',
    )
    expect(info.status).toEqual({
      code: 99,
      message:
        "repo1: [CryptoError] unable to verify certificate presented by '127.0.0.1:9443': [20] unable to get local issuer certificate",
    })
    expect(info.backups).toEqual([])
  })
})

describe('pgBackRest options', () => {
  it('a directory is a posix repository; s3:// an s3 one with path-style requests and keys only in the environment', async () => {
    const {pgBackRestRepoArgs, pgTimestamp} = await import('../../../src/dr/providers/pgbackrest.js')
    expect(pgBackRestRepoArgs({location: 'repo', verifyTls: true}, '/p', {}).args).toEqual([
      '--repo1-type=posix',
      '--repo1-path=/p/repo',
    ])
    const s3 = pgBackRestRepoArgs(
      {location: 's3://bkp/pg/orders/', endpoint: 'https://127.0.0.1:9443', verifyTls: false},
      '/p',
      {
        AWS_ACCESS_KEY_ID: 'k',
        AWS_SECRET_ACCESS_KEY: 's',
      },
    )
    expect(s3.args).toEqual([
      '--repo1-type=s3',
      '--repo1-s3-bucket=bkp',
      '--repo1-path=/pg/orders',
      '--repo1-s3-region=us-east-1',
      '--repo1-s3-endpoint=127.0.0.1',
      '--repo1-s3-uri-style=path',
      '--repo1-storage-port=9443',
      '--no-repo1-storage-verify-tls',
    ])
    expect(s3.env).toEqual({PGBACKREST_REPO1_S3_KEY: 'k', PGBACKREST_REPO1_S3_KEY_SECRET: 's'})
    // The secret never reaches the command line.
    expect(s3.args.some((a) => a.includes('=s') && a.endsWith('=s'))).toBe(false)
    expect(
      pgBackRestRepoArgs({location: 's3://bkp/x', endpoint: 'http://127.0.0.1:9000', verifyTls: true}, '/p', {})
        .problems[0],
    ).toMatch(/over TLS only/)
    expect(pgTimestamp('2026-12-07T01:48:33.841Z')).toBe('2026-12-07 01:48:33.841+00')
  })

  it('postgres.backup.caFile: resolved from the project folder for an s3 repository, and refused where it cannot work', async () => {
    const {pgBackRestRepoArgs} = await import('../../../src/dr/providers/pgbackrest.js')
    const {mkdtempSync, writeFileSync, rmSync} = await import('node:fs')
    const {tmpdir} = await import('node:os')
    const path = await import('node:path')
    const dir = mkdtempSync(path.join(tmpdir(), 'pgbr-ca-'))
    try {
      writeFileSync(path.join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n')
      const s3 = {location: 's3://bkp/pg', endpoint: 'https://127.0.0.1:9443', verifyTls: true}
      const ok = pgBackRestRepoArgs({...s3, caFile: 'ca.pem'}, dir, {})
      expect(ok.problems).toEqual([])
      expect(ok.caFile).toBe(path.join(dir, 'ca.pem'))
      // TLS is still verified: no --no-repo1-storage-verify-tls.
      expect(ok.args.filter((a) => a.includes('verify-tls'))).toEqual([])
      expect(pgBackRestRepoArgs(s3, dir, {}).caFile).toBeUndefined()
      expect(pgBackRestRepoArgs({...s3, caFile: 'missing.pem'}, dir, {}).problems).toEqual([
        `postgres.backup.caFile ${path.join(dir, 'missing.pem')} is not a readable file (the PEM CA certificate of the store's TLS certificate)`,
      ])
      expect(pgBackRestRepoArgs({...s3, caFile: '.'}, dir, {}).problems[0]).toMatch(/is not a readable file/)
      expect(pgBackRestRepoArgs({...s3, verifyTls: false, caFile: 'ca.pem'}, dir, {}).problems).toEqual([
        'postgres.backup.caFile is set but verifyTls is false: nothing would be checked against it (remove one of them)',
      ])
      expect(pgBackRestRepoArgs({location: 'repo', verifyTls: true, caFile: 'ca.pem'}, dir, {}).problems).toEqual([
        'postgres.backup.caFile is for an s3:// repository; repo is a directory (remove caFile)',
      ])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
