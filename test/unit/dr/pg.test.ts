import {mkdtempSync, readFileSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {passfileLine, pgDumpArgs, pgRestoreArgs, pgTarget, pgToolEnv, withDatabase} from '../../../src/dr/pg.js'

describe('PostgreSQL passwords never reach a command line', () => {
  it('takes the password out of the URL, from user info or ?password=', () => {
    const a = pgTarget('postgres://app:s3cret@db.internal:5432/orders?sslmode=require')
    expect(a).toMatchObject({
      url: 'postgres://app@db.internal:5432/orders?sslmode=require',
      password: 's3cret',
      database: 'orders',
      display: 'app@db.internal:5432/orders',
    })
    const b = pgTarget('postgresql://app@db.internal/orders?password=q%3Duery-pw&sslmode=require')
    expect(b.password).toBe('q=uery-pw')
    expect(b.url).toBe('postgresql://app@db.internal/orders?sslmode=require')
    expect(withDatabase(b, 'retailops_drill_x').url).toBe(
      'postgresql://app@db.internal/retailops_drill_x?sslmode=require',
    )
  })
  it('builds pg_dump and pg_restore argv without the password', () => {
    const source = pgTarget('postgres://app@db:5432/orders?password=hunter2-pw')
    const scratch = withDatabase(pgTarget('postgres://drill:hunter3-pw@restore:5432/postgres'), 'retailops_drill_x')
    const argv = [...pgDumpArgs(source, '00000003-1', '/w/orders.dump'), ...pgRestoreArgs(scratch, 2, '/w/orders.dump')]
    expect(argv).toEqual([
      '--format=custom',
      '--snapshot=00000003-1',
      '--file=/w/orders.dump',
      '--dbname=postgres://app@db:5432/orders',
      '--no-owner',
      '--no-privileges',
      '--exit-on-error',
      '--jobs=2',
      '--dbname=postgres://drill@restore:5432/retailops_drill_x',
      '/w/orders.dump',
    ])
    expect(argv.join(' ')).not.toMatch(/hunter/)
  })
  it('refuses ?sslpassword=, which would have to go on the command line', () => {
    expect(() => pgTarget('postgres://app@db/orders?sslpassword=k3y-pw')).toThrow(
      expect.objectContaining({exit: 'CONFIG', message: expect.stringMatching(/sslpassword/)}),
    )
  })
  it('hands the password over in a 0600 password file, and drops inherited PGPASSWORD/PGPASSFILE', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-pgpass-'))
    const env = await pgToolEnv(pgTarget('postgres://app:pa:ss\\word@db/orders'), dir, 'orders-dump', {
      PATH: '/usr/bin',
      PGPASSWORD: 'inherited',
      PGPASSFILE: '/elsewhere',
    })
    expect(Object.keys(env).sort()).toEqual(['PATH', 'PGPASSFILE'])
    expect(env.PGPASSFILE).toBe(path.join(dir, 'orders-dump.pgpass'))
    expect(statSync(env.PGPASSFILE).mode & 0o777).toBe(0o600)
    expect(readFileSync(env.PGPASSFILE, 'utf8')).toBe('*:*:*:*:pa\\:ss\\\\word\n')
    expect(passfileLine('a:b')).toBe('*:*:*:*:a\\:b\n')
    expect(await pgToolEnv(pgTarget('postgres://app@db/orders'), dir, 'none', {PGPASSWORD: 'x'})).toEqual({})
  })
})
