import {createWriteStream} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import yazl from 'yazl'

import {osvIndexRoot} from '../../../src/supplychain/osv-index.js'
import {loadOsvDatabase, type OsvDatabase, type OsvRecord} from '../../../src/supplychain/osv.js'
import {testContext} from '../../support/context.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 't-osv-index-'))
})
afterAll(async () => {
  await rm(dir, {recursive: true, force: true})
})

const NOW = new Date('2026-12-06T12:00:00Z')

/** 300 records over 200 packages (some records name two), one withdrawn, one withdrawn only after NOW, one PyPI. */
function records(extra: OsvRecord[] = []): OsvRecord[] {
  const out: OsvRecord[] = []
  for (let i = 0; i < 300; i++)
    out.push({
      id: `GHSA-test-${i}`,
      modified: `2026-11-${String((i % 28) + 1).padStart(2, '0')}T00:00:00Z`,
      affected: [
        {
          package: {ecosystem: 'npm', name: `pkg-${i % 200}`},
          ranges: [{type: 'SEMVER', events: [{introduced: '0'}, {fixed: '2.0.0'}]}],
        },
        ...(i % 7 === 0 ? [{package: {ecosystem: 'npm', name: `@scope/other-${i}`}, versions: ['1.0.0']}] : []),
      ],
    })
  out.push(
    {
      id: 'GHSA-gone',
      modified: '2026-12-01T00:00:00Z',
      withdrawn: '2026-12-02T00:00:00Z',
      affected: [{package: {ecosystem: 'npm', name: 'pkg-1'}, versions: ['1.0.0']}],
    },
    {
      id: 'GHSA-later',
      modified: '2026-12-03T00:00:00Z',
      withdrawn: '2026-12-24T00:00:00Z',
      affected: [{package: {ecosystem: 'npm', name: 'pkg-2'}, versions: ['1.0.0']}],
    },
    {
      id: 'PYSEC-1',
      modified: '2026-12-04T00:00:00Z',
      affected: [{package: {ecosystem: 'PyPI', name: 'requests'}, versions: ['2.0.0']}],
    },
    ...extra,
  )
  return out
}

async function writeZip(file: string, list: OsvRecord[]): Promise<void> {
  const zip = new yazl.ZipFile()
  for (const r of list) zip.addBuffer(Buffer.from(JSON.stringify(r)), `${r.id}.json`)
  zip.end()
  await pipeline(zip.outputStream, createWriteStream(file))
}

/** What a scan sees: every package's record ids, and the database's counts. */
function seen(db: OsvDatabase) {
  const {path: _path, ...info} = db.info
  return {
    info,
    npm: Object.fromEntries([...db.npm].map(([name, list]) => [name, list.map((r) => r.id).sort()]).sort()),
  }
}

const indexFolders = async (root: string) => (await readdir(root).catch(() => [] as string[])).sort()

describe('the index of an OSV zip', () => {
  it('is written by the first load and gives later loads exactly what a full read gives, for any packages and time', async () => {
    const zip = path.join(dir, 'all.zip')
    await writeZip(zip, records())
    const root = path.join(dir, 'index-1')
    const first = testContext()
    const cold = await loadOsvDatabase(zip, {now: NOW, indexRoot: root}, first)
    expect(first.out.messages('task').at(-1)).toMatch(/^303 records read from /)
    expect(await indexFolders(root)).toHaveLength(1)
    expect(seen(cold)).toEqual(seen(await loadOsvDatabase(zip, {now: NOW})))

    const second = testContext()
    const warm = await loadOsvDatabase(zip, {now: NOW, indexRoot: root}, second)
    expect(second.out.messages('task').at(-1)).toMatch(/^303 records in .*, from its index /)
    expect(seen(warm)).toEqual(seen(cold))
    expect(warm.info).toMatchObject({format: 'zip', records: 303, withdrawn: 1, npmRecords: 301})

    const packages = ['pkg-1', 'pkg-2', 'pkg-199', '@scope/other-7', 'not-in-the-database']
    for (const now of [NOW, new Date('2026-12-01T12:00:00Z'), new Date('2027-01-01T00:00:00Z')]) {
      const full = seen(await loadOsvDatabase(zip, {now, packages}))
      expect(seen(await loadOsvDatabase(zip, {now, packages, indexRoot: root}))).toEqual(full)
      expect(seen(await loadOsvDatabase(zip, {now, indexRoot: root}))).toEqual(seen(await loadOsvDatabase(zip, {now})))
    }
    // GHSA-later is in force until its withdrawal date, then gone.
    const before = await loadOsvDatabase(zip, {now: NOW, packages: ['pkg-2'], indexRoot: root})
    expect(before.npm.get('pkg-2')!.map((r) => r.id)).toContain('GHSA-later')
    const after = await loadOsvDatabase(zip, {
      now: new Date('2027-01-01T00:00:00Z'),
      packages: ['pkg-2'],
      indexRoot: root,
    })
    expect(after.npm.get('pkg-2')!.map((r) => r.id)).not.toContain('GHSA-later')
  })

  it('is not used for a zip that changed: the new records are found', async () => {
    const zip = path.join(dir, 'changing.zip')
    const root = path.join(dir, 'index-2')
    await writeZip(zip, records())
    await loadOsvDatabase(zip, {now: NOW, indexRoot: root})
    const added: OsvRecord = {
      id: 'GHSA-new',
      modified: '2026-12-06T00:00:00Z',
      affected: [{package: {ecosystem: 'npm', name: 'pkg-5'}, versions: ['1.0.0']}],
    }
    await writeZip(zip, records([added]))
    const db = await loadOsvDatabase(zip, {now: NOW, packages: ['pkg-5'], indexRoot: root})
    expect(db.npm.get('pkg-5')!.map((r) => r.id)).toContain('GHSA-new')
    expect(db.info.records).toBe(304)
    expect(await indexFolders(root)).toHaveLength(2)
  })

  it('is not written for a database that is refused, and leaves nothing half-written', async () => {
    const zip = path.join(dir, 'bad.zip')
    const root = path.join(dir, 'index-3')
    await writeZip(zip, [...records(), {id: 'BAD', modified: 'yesterday'}])
    await expect(loadOsvDatabase(zip, {now: NOW, indexRoot: root})).rejects.toMatchObject({
      exit: 'VULNERABILITY_DATABASE_INVALID',
    })
    expect(await indexFolders(root)).toEqual([])
    // Refused again on the next load: a bad database is never "indexed" into a clean one.
    await expect(loadOsvDatabase(zip, {now: NOW, indexRoot: root})).rejects.toMatchObject({
      exit: 'VULNERABILITY_DATABASE_INVALID',
    })
  })

  it('only ever saves time: a damaged index is read again from the zip, an unwritable place is no index', async () => {
    const zip = path.join(dir, 'damaged.zip')
    const root = path.join(dir, 'index-4')
    await writeZip(zip, records())
    const expected = seen(await loadOsvDatabase(zip, {now: NOW}))
    await loadOsvDatabase(zip, {now: NOW, indexRoot: root})
    const [folder] = await indexFolders(root)
    const shards = (await readdir(path.join(root, folder))).filter((f) => f.endsWith('.ndjson'))
    for (const shard of shards) await writeFile(path.join(root, folder, shard), '{"id": "cut sho')
    const repaired = testContext()
    expect(seen(await loadOsvDatabase(zip, {now: NOW, indexRoot: root}, repaired))).toEqual(expected)
    expect(repaired.out.messages('task').at(-1)).toMatch(/^303 records read from /)
    expect(seen(await loadOsvDatabase(zip, {now: NOW, indexRoot: root}))).toEqual(expected)
    expect(JSON.parse(await readFile(path.join(root, folder, 'info.json'), 'utf8'))).toMatchObject({records: 303})

    const notAFolder = path.join(dir, 'a-file')
    await writeFile(notAFolder, '')
    expect(seen(await loadOsvDatabase(zip, {now: NOW, indexRoot: path.join(notAFolder, 'osv')}))).toEqual(expected)
  })

  it('lives under RETAILOPS_CACHE_DIR, else XDG_CACHE_HOME, else ~/.cache', () => {
    expect(osvIndexRoot({RETAILOPS_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x', HOME: '/h'})).toBe('/c/osv')
    expect(osvIndexRoot({XDG_CACHE_HOME: '/x', HOME: '/h'})).toBe('/x/retailops/osv')
    expect(osvIndexRoot({HOME: '/h'})).toBe('/h/.cache/retailops/osv')
  })
})
