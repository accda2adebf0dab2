// The BackupLocation client against the sandbox's real S3-compatible store (versitygw): what it
// lists, reads and writes is read back through a second, independent path (the store's own
// directory on disk, where versitygw's posix backend keeps each object as a file).
import {createHash, randomBytes} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type BackupLocation, openLocation} from '../../../src/objectstore/location.js'
import {sandboxEnv} from '../../support/sandbox.js'

const s = sandboxEnv()
const prefix = `test-location-${randomBytes(3).toString('hex')}`
const dataDir = path.join(process.env.RETAILOPS_SANDBOX_STATE!, 'objectstore', 'data', s.s3Bucket)

describe('S3 backup location (versitygw)', () => {
  let loc: BackupLocation
  let tmp: string
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'retailops-s3-'))
    // Endpoint from RETAILOPS_S3_ENDPOINT, credentials from the SDK's default chain (the env).
    loc = await openLocation(`s3://${s.s3Bucket}/${prefix}`, {baseDir: tmp})
  })
  afterAll(async () => {
    for (const o of await loc.list()) await loc.delete(o.key)
    loc.close()
    await rm(tmp, {recursive: true, force: true})
  })

  it('writes, lists with sizes and times, reads back, and streams to a file', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17)
    const before = Date.now()
    await loc.put('pg/a.dump', big, {metadata: {sha256: createHash('sha256').update(big).digest('hex')}})
    await loc.put('pg/daily/b.dump', Readable.from([Buffer.from('bee')]), {contentLength: 3})
    // The store's own files: the objects are really there.
    expect(readFileSync(path.join(dataDir, prefix, 'pg', 'a.dump')).equals(big)).toBe(true)
    expect(readFileSync(path.join(dataDir, prefix, 'pg', 'daily', 'b.dump'), 'utf8')).toBe('bee')

    const listed = await loc.list()
    expect(listed.map((o) => [o.key, o.size])).toEqual([
      ['pg/a.dump', big.length],
      ['pg/daily/b.dump', 3],
    ])
    expect(listed[0].modified.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 2000)
    expect((await loc.list('pg/daily/')).map((o) => o.key)).toEqual(['pg/daily/b.dump'])

    const head = await loc.head('pg/a.dump')
    expect(head).toMatchObject({size: big.length, metadata: {sha256: createHash('sha256').update(big).digest('hex')}})
    expect(await loc.head('pg/none.dump')).toBeUndefined()

    const file = path.join(tmp, 'a.dump')
    expect(await loc.download('pg/a.dump', file)).toEqual({bytes: big.length})
    expect(readFileSync(file).equals(big)).toBe(true)
    expect(existsSync(`${file}.partial`)).toBe(false)
    expect(await loc.readText('pg/daily/b.dump')).toBe('bee')
  })

  it('a missing key is NOT_FOUND, a missing bucket NOT_FOUND, wrong keys PERMISSION, no store UNAVAILABLE', async () => {
    await expect(loc.read('pg/none.dump')).rejects.toMatchObject({exit: 'NOT_FOUND'})
    const noBucket = await openLocation('s3://retailops-no-such-bucket/x', {baseDir: tmp})
    await expect(noBucket.list()).rejects.toMatchObject({exit: 'NOT_FOUND'})
    noBucket.close()
    // The SDK's credential chain reads the process environment: the wrong secret goes in there.
    const saved = process.env.AWS_SECRET_ACCESS_KEY
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong'
    try {
      const fresh = await openLocation(`s3://${s.s3Bucket}/${prefix}`, {baseDir: tmp})
      await expect(fresh.list()).rejects.toMatchObject({exit: 'PERMISSION'})
      fresh.close()
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = saved
    }
    const down = await openLocation(`s3://${s.s3Bucket}/x`, {baseDir: tmp, endpoint: 'http://127.0.0.1:9'})
    await expect(down.list()).rejects.toMatchObject({exit: 'UNAVAILABLE'})
    down.close()
  })
})
