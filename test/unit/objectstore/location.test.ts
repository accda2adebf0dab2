import {mkdtemp, readFile, rm, utimes, writeFile, mkdir} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {openLocation, parseLocation, s3Endpoint} from '../../../src/objectstore/location.js'

describe('parseLocation', () => {
  it('reads s3://bucket/prefix with a trailing slash added to the prefix', () => {
    expect(parseLocation('s3://backups/pg/orders', '/p')).toEqual({
      kind: 's3',
      bucket: 'backups',
      prefix: 'pg/orders/',
      url: 's3://backups/pg/orders/',
    })
    expect(parseLocation('s3://backups', '/p')).toEqual({
      kind: 's3',
      bucket: 'backups',
      prefix: '',
      url: 's3://backups/',
    })
    expect(parseLocation('s3://backups//a/', '/p')).toMatchObject({prefix: 'a/'})
  })

  it('takes a relative directory from the base folder, an absolute one as it is', () => {
    expect(parseLocation('backups/orders', '/project')).toEqual({
      kind: 'directory',
      dir: '/project/backups/orders',
      url: '/project/backups/orders',
    })
    expect(parseLocation('/var/backups', '/project')).toMatchObject({dir: '/var/backups'})
  })

  it('refuses a bad bucket name and other URL schemes, naming the fix', () => {
    expect(() => parseLocation('s3://Bad_Bucket/x', '/p')).toThrow(/not a valid S3 bucket name/)
    expect(() => parseLocation('gs://bucket/x', '/p')).toThrow(/only s3:\/\/bucket\/prefix or a directory/)
  })

  it('takes the endpoint from the option, then RETAILOPS_S3_ENDPOINT, else leaves it to the SDK', () => {
    expect(s3Endpoint({endpoint: 'http://a:1', env: {RETAILOPS_S3_ENDPOINT: 'http://b:2'}})).toBe('http://a:1')
    expect(s3Endpoint({env: {RETAILOPS_S3_ENDPOINT: 'http://b:2'}})).toBe('http://b:2')
    expect(s3Endpoint({env: {}})).toBeUndefined()
  })
})

describe('a directory location', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'retailops-loc-'))
    await mkdir(path.join(dir, 'orders', 'daily'), {recursive: true})
    await writeFile(path.join(dir, 'orders', 'daily', 'a.dump'), 'aaaa')
    await writeFile(path.join(dir, 'orders', 'b.dump'), 'bb')
    await utimes(path.join(dir, 'orders', 'b.dump'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'))
  })
  afterAll(() => rm(dir, {recursive: true, force: true}))

  it('lists every file below it with size and modification time, keys with forward slashes', async () => {
    const loc = await openLocation(dir, {baseDir: '/'})
    const all = await loc.list()
    expect(all.map((o) => [o.key, o.size])).toEqual([
      ['orders/b.dump', 2],
      ['orders/daily/a.dump', 4],
    ])
    expect(all[0].modified.toISOString()).toBe('2026-01-02T03:04:05.000Z')
    expect((await loc.list('orders/daily')).map((o) => o.key)).toEqual(['orders/daily/a.dump'])
    expect(await loc.list('nothing-here')).toEqual([])
  })

  it('reads, streams to a file, writes and deletes; a missing key is NOT_FOUND', async () => {
    const loc = await openLocation(dir, {baseDir: '/'})
    expect(await loc.readText('orders/b.dump')).toBe('bb')
    const target = path.join(dir, 'copy')
    expect(await loc.download('orders/daily/a.dump', target)).toEqual({bytes: 4})
    expect(await readFile(target, 'utf8')).toBe('aaaa')
    await loc.put('new/x.txt', Readable.from([Buffer.from('hello')]))
    expect((await loc.head('new/x.txt'))?.size).toBe(5)
    await loc.delete('new/x.txt')
    expect(await loc.head('new/x.txt')).toBeUndefined()
    await expect(loc.read('orders/none.dump')).rejects.toMatchObject({exit: 'NOT_FOUND'})
  })

  it('refuses keys that leave the directory', async () => {
    const loc = await openLocation(dir, {baseDir: '/'})
    await expect(loc.readText('../etc/passwd')).rejects.toThrow(/outside the backup location/)
  })

  it('a missing directory is NOT_FOUND with its path', async () => {
    const loc = await openLocation(path.join(dir, 'absent'), {baseDir: '/'})
    await expect(loc.list()).rejects.toMatchObject({exit: 'NOT_FOUND', message: expect.stringContaining('absent')})
  })
})
