import {createWriteStream} from 'node:fs'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import yazl from 'yazl'

import {loadOsvDatabase, type OsvRecord, parseOsvRecord} from '../../../src/supplychain/osv.js'
import {testContext} from '../../support/context.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't-osv-'))
})
afterAll(async () => {
  await rm(dir, {recursive: true, force: true})
})

const NOW = new Date('2026-12-06T12:00:00Z')

const records: OsvRecord[] = [
  {
    id: 'GHSA-1111-2222-3333',
    modified: '2026-12-05T10:00:00Z',
    aliases: ['CVE-2026-1111'],
    affected: [
      {
        package: {ecosystem: 'npm', name: 'prom-client'},
        ranges: [{type: 'ECOSYSTEM', events: [{introduced: '0'}, {fixed: '15.1.4'}]}],
      },
    ],
  },
  {
    id: 'GHSA-4444-5555-6666',
    modified: '2026-12-01T10:00:00.123456Z',
    withdrawn: '2026-12-02T00:00:00Z',
    affected: [{package: {ecosystem: 'npm', name: 'prom-client'}, versions: ['15.1.3']}],
  },
  {
    id: 'PYSEC-2026-9',
    modified: '2026-11-01T00:00:00Z',
    affected: [{package: {ecosystem: 'PyPI', name: 'requests'}, versions: ['2.0.0']}],
  },
  {
    id: 'GHSA-7777-8888-9999',
    modified: '2026-11-20T00:00:00Z',
    affected: [{package: {ecosystem: 'npm', name: 'left-pad'}, versions: ['1.0.0']}],
  },
]

async function writeZip(file: string, entries: Record<string, string>): Promise<void> {
  const zip = new yazl.ZipFile()
  // Stored and deflated entries both (zip tools store what does not compress).
  for (const [i, [name, text]] of Object.entries(entries).entries())
    zip.addBuffer(Buffer.from(text), name, {compress: i % 2 === 0})
  zip.end()
  await pipeline(zip.outputStream, createWriteStream(file))
}

const asFiles = (list: OsvRecord[]) => Object.fromEntries(list.map((r) => [`${r.id}.json`, JSON.stringify(r)]))

describe('loading an OSV database', () => {
  it('reads a folder recursively and the zip OSV publishes alike: index by npm package, withdrawn left out', async () => {
    const folder = path.join(dir, 'folder')
    await mkdir(path.join(folder, 'npm', 'p'), {recursive: true})
    await mkdir(path.join(folder, 'pypi'), {recursive: true})
    await writeFile(path.join(folder, 'npm', 'p', 'GHSA-1111-2222-3333.json'), JSON.stringify(records[0]))
    await writeFile(path.join(folder, 'npm', 'GHSA-4444-5555-6666.json'), JSON.stringify(records[1]))
    await writeFile(path.join(folder, 'pypi', 'PYSEC-2026-9.json'), JSON.stringify(records[2]))
    await writeFile(path.join(folder, 'GHSA-7777-8888-9999.json'), JSON.stringify(records[3]))
    await writeFile(path.join(folder, 'README.md'), 'not a record')
    const zip = path.join(dir, 'all.zip')
    await writeZip(zip, {...asFiles(records), 'LICENSE.txt': 'not a record'})

    for (const source of [folder, zip]) {
      const ctx = testContext()
      const db = await loadOsvDatabase(source, {now: NOW}, ctx)
      expect(db.info).toMatchObject({
        format: source === zip ? 'zip' : 'directory',
        records: 4,
        withdrawn: 1,
        npmRecords: 2,
        newestRecord: '2026-12-05T10:00:00Z',
      })
      expect([...db.npm.keys()].sort()).toEqual(['left-pad', 'prom-client'])
      expect(db.npm.get('prom-client')!.map((r) => r.id)).toEqual(['GHSA-1111-2222-3333'])
      expect(ctx.out.messages('task')).toContain('4 records read from ' + source)
    }
    // Only the packages asked for are indexed; every record is still read.
    const some = await loadOsvDatabase(zip, {packages: ['prom-client'], now: NOW})
    expect([...some.npm.keys()]).toEqual(['prom-client'])
    expect(some.info.records).toBe(4)
    // A withdrawal dated after `now` is not in force yet.
    const before = await loadOsvDatabase(zip, {now: new Date('2026-12-01T12:00:00Z')})
    expect(
      before.npm
        .get('prom-client')!
        .map((r) => r.id)
        .sort(),
    ).toEqual(['GHSA-1111-2222-3333', 'GHSA-4444-5555-6666'])
  })

  it('refuses bad records, naming each file and what is wrong (exit 27), in a folder and in a zip', async () => {
    const bad = {
      'GHSA-good.json': JSON.stringify(records[0]),
      'truncated.json': JSON.stringify(records[0]).slice(0, 40),
      'no-modified.json': JSON.stringify({id: 'GHSA-x'}),
      'two-keys.json': JSON.stringify({
        id: 'GHSA-y',
        modified: '2026-12-01T00:00:00Z',
        affected: [
          {
            package: {ecosystem: 'npm', name: 'a'},
            ranges: [{type: 'SEMVER', events: [{introduced: '0', fixed: '1.0.0'}]}],
          },
        ],
      }),
      'not-semver.json': JSON.stringify({
        id: 'GHSA-z',
        modified: '2026-12-01T00:00:00Z',
        affected: [
          {
            package: {ecosystem: 'npm', name: 'a'},
            ranges: [{type: 'ECOSYSTEM', events: [{introduced: '0'}, {fixed: 'next'}]}],
          },
        ],
      }),
      'fixed-and-last.json': JSON.stringify({
        id: 'GHSA-w',
        modified: '2026-12-01T00:00:00Z',
        affected: [
          {
            package: {ecosystem: 'npm', name: 'a'},
            ranges: [{type: 'SEMVER', events: [{introduced: '0'}, {fixed: '1.0.0'}, {last_affected: '0.9.0'}]}],
          },
        ],
      }),
    }
    const folder = path.join(dir, 'bad')
    await mkdir(folder, {recursive: true})
    for (const [name, text] of Object.entries(bad)) await writeFile(path.join(folder, name), text)
    const zip = path.join(dir, 'bad.zip')
    await writeZip(zip, bad)
    for (const [source, prefix] of [
      [folder, ''],
      [zip, 'bad.zip:'],
    ]) {
      const error = await loadOsvDatabase(source, {now: NOW}).catch((e: unknown) => e)
      expect(error).toMatchObject({exit: 'VULNERABILITY_DATABASE_INVALID', exitCode: 27})
      const message = (error as Error).message
      expect(message).toContain('5 of 6 records are not valid OSV records')
      expect(message).toMatch(new RegExp(`${prefix}truncated\\.json: not JSON`))
      expect(message).toContain(`${prefix}no-modified.json: modified:`)
      expect(message).toContain(
        `${prefix}two-keys.json: affected[0].ranges[0].events[0]: each event has exactly one of`,
      )
      expect(message).toContain(
        `${prefix}not-semver.json: affected[0].ranges[0].events[1].fixed: "next" is not a semantic version`,
      )
      expect(message).toContain(
        `${prefix}fixed-and-last.json: affected[0].ranges[0].events: has both fixed and last_affected`,
      )
      expect((error as {details: {badRecords: unknown[]}}).details.badRecords).toHaveLength(5)
    }
  })

  it('an empty database, a damaged zip and a missing path are errors, never "no vulnerabilities"', async () => {
    const empty = path.join(dir, 'empty')
    await mkdir(empty, {recursive: true})
    await writeFile(path.join(empty, 'README.md'), 'nothing here')
    await expect(loadOsvDatabase(empty)).rejects.toMatchObject({
      exit: 'VULNERABILITY_DATABASE_INVALID',
      message: expect.stringContaining('holds no OSV records'),
    })
    const emptyZip = path.join(dir, 'empty.zip')
    await writeZip(emptyZip, {'README.md': 'x'})
    await expect(loadOsvDatabase(emptyZip)).rejects.toMatchObject({exit: 'VULNERABILITY_DATABASE_INVALID'})

    const damaged = path.join(dir, 'damaged.zip')
    await writeFile(damaged, Buffer.from('PK\x03\x04 this is not really a zip archive at all'))
    await expect(loadOsvDatabase(damaged)).rejects.toMatchObject({
      exit: 'VULNERABILITY_DATABASE_INVALID',
      message: expect.stringContaining('neither a folder nor a readable zip'),
    })
    // A zip cut short by an interrupted download.
    const whole = path.join(dir, 'whole.zip')
    await writeZip(whole, asFiles(records))
    const {readFile} = await import('node:fs/promises')
    const bytes = await readFile(whole)
    const cut = path.join(dir, 'cut.zip')
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)))
    await expect(loadOsvDatabase(cut)).rejects.toMatchObject({exit: 'VULNERABILITY_DATABASE_INVALID'})

    // A flipped byte inside an entry (a stored one, so the JSON still parses): its CRC-32 says so.
    const stored = Buffer.from(bytes)
    const at = stored.indexOf('"versions":["15.1.3"]') + '"versions":["'.length
    expect(at).toBeGreaterThan('"versions":["'.length)
    stored[at] = '9'.charCodeAt(0)
    const flipped = path.join(dir, 'flipped.zip')
    await writeFile(flipped, stored)
    await expect(loadOsvDatabase(flipped)).rejects.toMatchObject({
      exit: 'VULNERABILITY_DATABASE_INVALID',
      message: expect.stringContaining('does not match its recorded size and checksum'),
    })

    await expect(loadOsvDatabase(path.join(dir, 'nowhere.zip'))).rejects.toMatchObject({exit: 'NOT_FOUND'})
  })

  it('accepts what the schema allows: unknown fields, fractional timestamps, GIT ranges with a repo, limit "*"', () => {
    const parsed = parseOsvRecord(
      JSON.stringify({
        schema_version: '1.7.4',
        id: 'OSV-2026-1',
        modified: '2026-12-01T00:00:00.999999Z',
        published: '2026-11-30T23:00:00+01:00',
        future_field: {x: 1},
        affected: [
          {
            package: {ecosystem: 'npm', name: 'a', purl: 'pkg:npm/a'},
            ranges: [
              {type: 'GIT', repo: 'https://example.invalid/a.git', events: [{introduced: '0'}, {fixed: 'abcdef'}]},
              {type: 'SEMVER', events: [{introduced: '0'}, {limit: '*'}]},
            ],
          },
        ],
      }),
    )
    expect(parsed).toHaveProperty('record')
    expect(parseOsvRecord(JSON.stringify({id: 'X', modified: 'yesterday'}))).toEqual({
      problems: [expect.stringMatching(/^modified: an RFC 3339 timestamp/)],
    })
    expect(
      parseOsvRecord(
        JSON.stringify({
          id: 'X',
          modified: '2026-12-01T00:00:00Z',
          affected: [{package: {ecosystem: 'npm', name: 'a'}, ranges: [{type: 'GIT', events: [{fixed: 'abc'}]}]}],
        }),
      ),
    ).toEqual({
      problems: [
        'affected[0].ranges[0].events: has no introduced event (the schema requires one)',
        'affected[0].ranges[0].repo: is required for GIT ranges',
      ],
    })
  })
})
