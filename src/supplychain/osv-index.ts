import {createHash, randomBytes} from 'node:crypto'
import type {Stats} from 'node:fs'
import {appendFileSync} from 'node:fs'
import {mkdir, readFile, realpath, rename, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {crc32} from 'node:zlib'

import type {OsvRecord} from './osv.js'

/**
 * The on-disk index of an OSV zip. OSV's npm zip holds a couple of hundred thousand records; reading
 * and validating all of them takes most of a minute here, while a scan needs the records of the few
 * hundred packages its SBOMs list. The first load of a zip writes its validated npm records into
 * shards by package name; later loads of the same file (same path, size, inode and times) read only
 * the shards of the packages asked for.
 *
 * Any failure to write or read the index falls back to reading the zip: the index only ever saves time.
 */

/** Bumped when the stored form changes: an old index is then simply not found. */
const INDEX_VERSION = 1
/** 4,096 shards keep each one near 50 KB for OSV's npm zip, so a scan of six services reads a few MB. */
const SHARDS = 4096
/** Lines buffered before they are appended to their shards. */
const FLUSH_BYTES = 8 * 1024 * 1024
const INFO = 'info.json'

/** `$RETAILOPS_CACHE_DIR/osv`, else `$XDG_CACHE_HOME/retailops/osv`, else `~/.cache/retailops/osv`. */
export function osvIndexRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.RETAILOPS_CACHE_DIR ||
    path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'retailops')
  return path.join(base, 'osv')
}

/** The folder of the index of this zip: changes whenever the file could have changed. */
export async function indexFolder(root: string, file: string, stats: Stats): Promise<string> {
  const identity = [INDEX_VERSION, await realpath(file), stats.size, stats.ino, stats.dev, stats.mtimeMs, stats.ctimeMs]
  return path.join(root, createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 32))
}

/** The npm packages a record has an affected entry for. */
export function npmPackages(record: OsvRecord): Set<string> {
  const names = new Set<string>()
  for (const a of record.affected ?? []) if (a.package?.ecosystem === 'npm') names.add(a.package.name)
  return names
}

const shardOf = (name: string) => crc32(name) % SHARDS
const shardFile = (folder: string, shard: number) => path.join(folder, `${shard.toString(16).padStart(3, '0')}.ndjson`)

/** What the index keeps about the whole zip; the counts that depend on the time are derived when it is read. */
export interface IndexInfo {
  version: number
  records: number
  /** The withdrawal times of every withdrawn record, and of the npm ones. */
  withdrawnAt: string[]
  npmWithdrawnAt: string[]
  npmRecords: number
  newestRecord: string
}

export interface IndexedDatabase {
  info: IndexInfo
  npm: Map<string, OsvRecord[]>
}

/** Writes the index while the zip is read; `finish` makes it visible at once (a rename), `abort` leaves nothing. */
export class IndexWriter {
  private pending = new Map<number, string[]>()
  private pendingBytes = 0

  private constructor(
    private readonly folder: string,
    private readonly temporary: string,
  ) {}

  static async create(folder: string): Promise<IndexWriter> {
    const temporary = `${folder}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
    await mkdir(temporary, {recursive: true})
    return new IndexWriter(folder, temporary)
  }

  /** One validated record with the npm package names it affects (called while the zip is read: synchronous). */
  add(record: OsvRecord, names: Iterable<string>): void {
    const line = `${JSON.stringify(record)}\n`
    for (const shard of new Set([...names].map(shardOf))) {
      const lines = this.pending.get(shard)
      if (lines) lines.push(line)
      else this.pending.set(shard, [line])
      this.pendingBytes += line.length
    }
    if (this.pendingBytes >= FLUSH_BYTES) this.flush()
  }

  private flush(): void {
    const batch = this.pending
    this.pending = new Map()
    this.pendingBytes = 0
    for (const [shard, lines] of batch) appendFileSync(shardFile(this.temporary, shard), lines.join(''))
  }

  async finish(info: Omit<IndexInfo, 'version'>): Promise<void> {
    this.flush()
    await writeFile(path.join(this.temporary, INFO), JSON.stringify({version: INDEX_VERSION, ...info}))
    try {
      await rename(this.temporary, this.folder)
    } catch {
      // Another process indexed the same file at the same time: its index is as good as this one.
      await this.abort()
    }
  }

  async abort(): Promise<void> {
    await rm(this.temporary, {recursive: true, force: true})
  }
}

/** Deletes an index that cannot be read (always undefined: there is no index now). */
export async function discardIndex(folder: string): Promise<undefined> {
  await rm(folder, {recursive: true, force: true}).catch(() => undefined)
  return undefined
}

/**
 * The records of `packages` (all, if not given) from the index in `folder`, or undefined when there is
 * no complete index there. Records are kept whole, withdrawn ones included: the caller decides what
 * is withdrawn at its time.
 */
export async function readIndex(folder: string, packages?: Iterable<string>): Promise<IndexedDatabase | undefined> {
  let info: IndexInfo
  try {
    info = JSON.parse(await readFile(path.join(folder, INFO), 'utf8')) as IndexInfo
  } catch {
    return undefined
  }
  if (info.version !== INDEX_VERSION) return undefined
  const wanted = packages ? new Set(packages) : undefined
  const shards = wanted ? [...new Set([...wanted].map(shardOf))] : Array.from({length: SHARDS}, (_, shard) => shard)
  const npm = new Map<string, OsvRecord[]>()
  for (const shard of shards) {
    let text: string
    try {
      text = await readFile(shardFile(folder, shard), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw error
    }
    for (const line of text.split('\n')) {
      if (!line) continue
      const record = JSON.parse(line) as OsvRecord
      for (const name of npmPackages(record)) {
        // A record is in the shard of each of its packages: it is taken here only for the names of this shard.
        if ((wanted && !wanted.has(name)) || shardOf(name) !== shard) continue
        const list = npm.get(name)
        if (list) list.push(record)
        else npm.set(name, [record])
      }
    }
  }
  return {info, npm}
}
