import type {Stats} from 'node:fs'
import {readdir, readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import {promisify} from 'node:util'
import {crc32, inflateRawSync} from 'node:zlib'

import semver from 'semver'
import yauzl from 'yauzl'
import {z} from 'zod'

import {NotFoundError, RetailOpsError} from '../errors/index.js'
import {interrupted, throwIfAborted, type RunContext} from '../ui/context.js'
import {discardIndex, indexFolder, IndexWriter, npmPackages, readIndex, type IndexedDatabase} from './osv-index.js'

// The OSV schema (https://ossf.github.io/osv-schema/), the fields retailops reads. Unknown fields
// are allowed: minor schema versions only add fields.
const timestamp = z.iso.datetime({offset: true, message: 'an RFC 3339 timestamp such as 2026-01-31T12:00:00Z'})

const severityEntry = z.object({type: z.string().min(1), score: z.string().min(1)})

const event = z.union(
  [
    z.object({introduced: z.string().min(1)}).strict(),
    z.object({fixed: z.string().min(1)}).strict(),
    z.object({last_affected: z.string().min(1)}).strict(),
    z.object({limit: z.string().min(1)}).strict(),
  ],
  {error: 'each event has exactly one of introduced, fixed, last_affected or limit'},
)

const range = z
  .object({
    type: z.enum(['SEMVER', 'ECOSYSTEM', 'GIT']),
    repo: z.string().optional(),
    events: z.array(event).min(1),
    database_specific: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((r, ctx) => {
    if (!r.events.some((e) => 'introduced' in e))
      ctx.addIssue({code: 'custom', path: ['events'], message: 'has no introduced event (the schema requires one)'})
    if (r.events.some((e) => 'fixed' in e) && r.events.some((e) => 'last_affected' in e))
      ctx.addIssue({code: 'custom', path: ['events'], message: 'has both fixed and last_affected events'})
    if (r.type === 'GIT' && !r.repo)
      ctx.addIssue({code: 'custom', path: ['repo'], message: 'is required for GIT ranges'})
  })

const affected = z.object({
  package: z.object({ecosystem: z.string().min(1), name: z.string().min(1), purl: z.string().optional()}).optional(),
  severity: z.array(severityEntry).optional(),
  ranges: z.array(range).optional(),
  versions: z.array(z.string()).optional(),
  ecosystem_specific: z.record(z.string(), z.unknown()).optional(),
  database_specific: z.record(z.string(), z.unknown()).optional(),
})

export const osvRecordSchema = z.object({
  schema_version: z.string().optional(),
  id: z.string().min(1),
  modified: timestamp,
  published: timestamp.optional(),
  withdrawn: timestamp.optional(),
  aliases: z.array(z.string()).optional(),
  related: z.array(z.string()).optional(),
  upstream: z.array(z.string()).optional(),
  summary: z.string().optional(),
  details: z.string().optional(),
  severity: z.array(severityEntry).optional(),
  affected: z.array(affected).optional(),
  references: z.array(z.object({type: z.string(), url: z.string()})).optional(),
  database_specific: z.record(z.string(), z.unknown()).optional(),
})

export type OsvRecord = z.output<typeof osvRecordSchema>
export type OsvAffected = NonNullable<OsvRecord['affected']>[number]
export type OsvRange = NonNullable<OsvAffected['ranges']>[number]
export type OsvEvent = OsvRange['events'][number]

/** The one ecosystem retailops matches: the bundled services and scaffolded ones are Node. */
export const NPM = 'npm'

/** npm versions in SEMVER and ECOSYSTEM ranges are semantic versions ("0" and "*" are the schema's bounds). */
export function parseNpmVersion(version: string): semver.SemVer | null {
  return semver.parse(version) ?? semver.parse(version, {loose: true})
}

/**
 * Problems the schema cannot express: an npm range whose versions npm's ordering cannot compare
 * would be evaluated as "not affected" without a word, which is the one outcome a scanner must
 * never produce silently.
 */
function npmProblems(record: OsvRecord): string[] {
  const problems: string[] = []
  record.affected?.forEach((a, i) => {
    if (a.package?.ecosystem !== NPM) return
    a.ranges?.forEach((r, j) => {
      if (r.type === 'GIT') return
      r.events.forEach((e, k) => {
        const [kind, value] = Object.entries(e)[0]
        if (kind === 'introduced' && value === '0') return
        if (kind === 'limit' && value.includes('*')) return
        if (!parseNpmVersion(value))
          problems.push(
            `affected[${i}].ranges[${j}].events[${k}].${kind}: "${value}" is not a semantic version (npm package ${a.package?.name})`,
          )
      })
    })
  })
  return problems
}

export interface BadRecord {
  /** The file (relative to the database folder) or zip entry. */
  file: string
  problems: string[]
}

function issuePath(p: readonly PropertyKey[]): string {
  return p.reduce<string>(
    (text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key)),
    '',
  )
}

/** Parses and validates one record's text; problems name the field and what is wrong. */
export function parseOsvRecord(text: string): {record: OsvRecord} | {problems: string[]} {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return {problems: [`not JSON: ${(error as Error).message}`]}
  }
  const parsed = osvRecordSchema.safeParse(json)
  if (!parsed.success)
    return {problems: parsed.error.issues.map((issue) => `${issuePath(issue.path) || '(record)'}: ${issue.message}`)}
  const problems = npmProblems(parsed.data)
  return problems.length > 0 ? {problems} : {record: parsed.data}
}

export interface OsvDatabaseInfo {
  /** The folder or zip, as given. */
  path: string
  format: 'directory' | 'zip'
  /** Records read (every ecosystem, withdrawn ones included). */
  records: number
  /** Records withdrawn (ignored). */
  withdrawn: number
  /** Records for npm packages (not withdrawn). */
  npmRecords: number
  /** The newest `modified` of any record: how current the database is. */
  newestRecord: string
  /** The file's (zip) or newest file's (folder) modification time. */
  fileModified: string
}

export interface OsvDatabase {
  info: OsvDatabaseInfo
  /** npm package name -> the records (not withdrawn) with an affected entry for it. */
  npm: Map<string, OsvRecord[]>
}

export interface LoadOptions {
  /** Index only these npm packages (every record is still read and validated). Default: all. */
  packages?: Iterable<string>
  now?: Date
  /**
   * Where zips are indexed (osv-index.ts: osvIndexRoot() for the CLI). The first load of a zip writes its
   * index there; later loads of the same unchanged file read only the shards of `packages`. Default: no index.
   */
  indexRoot?: string
}

/** A record withdrawn at or before `now` (a future withdrawal time is not yet in force). */
export function isWithdrawn(record: OsvRecord, now: Date): boolean {
  return record.withdrawn !== undefined && Date.parse(record.withdrawn) <= now.getTime()
}

/** Builds the index from records in memory (the loader's last step; tests and callers with their own records). */
export function osvDatabase(records: OsvRecord[], info: Partial<OsvDatabaseInfo> = {}, options: LoadOptions = {}) {
  const builder = new IndexBuilder(options)
  for (const record of records) builder.add(record)
  return builder.finish({path: '(memory)', format: 'directory', fileModified: new Date(0).toISOString(), ...info})
}

class IndexBuilder {
  private readonly wanted: Set<string> | undefined
  private readonly now: Date
  private readonly npm = new Map<string, OsvRecord[]>()
  private records = 0
  private withdrawn = 0
  private npmRecords = 0
  private newest = ''
  private newestMs = -Infinity

  constructor(options: LoadOptions) {
    this.wanted = options.packages ? new Set(options.packages) : undefined
    this.now = options.now ?? new Date()
  }

  add(record: OsvRecord): void {
    this.records += 1
    const modified = Date.parse(record.modified)
    if (modified > this.newestMs) {
      this.newestMs = modified
      this.newest = record.modified
    }
    if (isWithdrawn(record, this.now)) {
      this.withdrawn += 1
      return
    }
    const names = npmPackages(record)
    if (names.size > 0) this.npmRecords += 1
    for (const name of names) {
      if (this.wanted && !this.wanted.has(name)) continue
      const list = this.npm.get(name)
      if (list) list.push(record)
      else this.npm.set(name, [record])
    }
  }

  get count(): number {
    return this.records
  }

  finish(info: Pick<OsvDatabaseInfo, 'path' | 'format' | 'fileModified'>): OsvDatabase {
    return {
      info: {
        ...info,
        records: this.records,
        withdrawn: this.withdrawn,
        npmRecords: this.npmRecords,
        newestRecord: this.newest,
      },
      npm: this.npm,
    }
  }
}

/** The database from a zip's index, with what is withdrawn decided at `now` as a full read would. */
function fromIndex(
  indexed: IndexedDatabase,
  info: Pick<OsvDatabaseInfo, 'path' | 'format' | 'fileModified'>,
  now: Date,
): OsvDatabase {
  const inForce = (times: string[]) => times.filter((t) => Date.parse(t) <= now.getTime()).length
  const npm = new Map<string, OsvRecord[]>()
  for (const [name, records] of indexed.npm) {
    const current = records.filter((r) => !isWithdrawn(r, now))
    if (current.length > 0) npm.set(name, current)
  }
  return {
    info: {
      ...info,
      records: indexed.info.records,
      withdrawn: inForce(indexed.info.withdrawnAt),
      npmRecords: indexed.info.npmRecords - inForce(indexed.info.npmWithdrawnAt),
      newestRecord: indexed.info.newestRecord,
    },
    npm,
  }
}

/** Bad records shown in the message; every one is in details.badRecords (up to this many). */
const BAD_SHOWN = 10
const BAD_KEPT = 200
/** An OSV record is a few kilobytes; a zip entry this large is not one. */
const MAX_RECORD_BYTES = 16 * 1024 * 1024

export class VulnerabilityDatabaseError extends RetailOpsError {
  constructor(
    message: string,
    options: {nextSteps?: string[]; details?: Record<string, unknown>; cause?: unknown} = {},
  ) {
    super('VULNERABILITY_DATABASE_INVALID', message, {
      nextSteps: options.nextSteps ?? [REFRESH_STEP],
      details: options.details,
      cause: options.cause,
    })
  }
}

export const OSV_NPM_ZIP = 'https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip'
export const REFRESH_STEP = `Fetch a fresh copy where there is internet access: curl -fsSL -o osv-npm.zip ${OSV_NPM_ZIP} (then cache or commit it where CI finds it; docs/scan.md).`

/**
 * Loads an OSV database: a folder of OSV JSON records (searched recursively; other files are
 * ignored) or a zip of them such as the ecosystem zip OSV publishes, read entry by entry
 * (streamed: the zip is never held in memory). Every record is validated; any bad record, an
 * unreadable zip, or a database with no records at all is VULNERABILITY_DATABASE_INVALID (exit
 * 27), never an empty result.
 */
export async function loadOsvDatabase(
  source: string,
  options: LoadOptions = {},
  ctx?: Pick<RunContext, 'signal' | 'out'>,
): Promise<OsvDatabase> {
  const stats = await stat(source).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT')
      throw new NotFoundError(`Vulnerability database ${source} does not exist.`, {
        nextSteps: [
          REFRESH_STEP,
          'Point to it with --db PATH or supplyChain.vulnerabilityDatabase in retailops.yaml (a folder of OSV JSON records or the zip).',
        ],
      })
    throw new VulnerabilityDatabaseError(`Vulnerability database ${source} cannot be read: ${error.message}`, {
      cause: error,
    })
  })
  const now = options.now ?? new Date()
  const index =
    options.indexRoot && !stats.isDirectory()
      ? await indexFolder(options.indexRoot, source, stats).catch(() => undefined)
      : undefined
  if (index) {
    // A damaged index is deleted, and this read writes it again.
    const indexed = await readIndex(index, options.packages).catch(() => discardIndex(index))
    if (indexed) {
      const db = fromIndex(indexed, {path: source, format: 'zip', fileModified: stats.mtime.toISOString()}, now)
      const task = ctx?.out.task(`Reading the vulnerability database ${source}`)
      task?.succeed(
        `${db.info.records} record${db.info.records === 1 ? '' : 's'} in ${source}, from its index ${index}`,
      )
      return db
    }
  }
  // No index yet: this read writes one (a failure to write only costs the next scan the full read).
  let writer = index ? await IndexWriter.create(index).catch(() => undefined) : undefined
  const writing = writer
  const indexInfo = {withdrawnAt: [] as string[], npmWithdrawnAt: [] as string[], npmRecords: 0}
  const toIndex = (record: OsvRecord) => {
    const names = npmPackages(record)
    if (record.withdrawn) indexInfo.withdrawnAt.push(record.withdrawn)
    if (names.size === 0) return
    indexInfo.npmRecords += 1
    if (record.withdrawn) indexInfo.npmWithdrawnAt.push(record.withdrawn)
    try {
      writer?.add(record, names)
    } catch {
      writer = undefined
    }
  }
  const builder = new IndexBuilder({...options, now})
  const bad: BadRecord[] = []
  let badCount = 0
  const take = (file: string, text: string) => {
    const parsed = parseOsvRecord(text)
    if ('record' in parsed) {
      builder.add(parsed.record)
      if (writing) toIndex(parsed.record)
    } else {
      badCount += 1
      if (bad.length < BAD_KEPT) bad.push({file, problems: parsed.problems})
    }
  }
  try {
    const db = await readAll(source, stats, builder, take, () => ({bad, badCount}), ctx)
    if (writer)
      await writer
        .finish({...indexInfo, records: db.info.records, newestRecord: db.info.newestRecord})
        .catch(() => writing?.abort())
    else await writing?.abort()
    return db
  } catch (error) {
    await writing?.abort()
    throw error
  }
}

/** The full read of a folder or zip through `take`, and the refusals of a database with bad records or none. */
async function readAll(
  source: string,
  stats: Stats,
  builder: IndexBuilder,
  take: Take,
  badRecords: () => {bad: BadRecord[]; badCount: number},
  ctx?: Pick<RunContext, 'signal' | 'out'>,
): Promise<OsvDatabase> {
  const task = ctx?.out.task(`Reading the vulnerability database ${source}`)
  let fileModified: Date
  let format: OsvDatabaseInfo['format']
  try {
    if (stats.isDirectory()) {
      format = 'directory'
      fileModified = await readDirectory(source, take, ctx?.signal)
    } else {
      format = 'zip'
      fileModified = stats.mtime
      await readZip(source, take, ctx?.signal)
    }
  } catch (error) {
    task?.fail()
    throw error
  }
  const {bad, badCount} = badRecords()
  if (badCount > 0) {
    task?.fail()
    const shown = bad
      .slice(0, BAD_SHOWN)
      .map(
        (b) =>
          `  ${b.file}: ${b.problems.slice(0, 3).join('; ')}${b.problems.length > 3 ? ` (+${b.problems.length - 3} more)` : ''}`,
      )
    throw new VulnerabilityDatabaseError(
      [
        `Vulnerability database ${source}: ${badCount} of ${builder.count + badCount} records are not valid OSV records, so a scan could miss vulnerabilities:`,
        ...shown,
        ...(badCount > BAD_SHOWN ? [`  … and ${badCount - BAD_SHOWN} more (details.badRecords in --json)`] : []),
      ].join('\n'),
      {
        nextSteps: [
          'A download that was cut short or a hand-edited record: fetch the database again.',
          REFRESH_STEP,
          'Records the OSV schema describes are accepted: https://ossf.github.io/osv-schema/',
        ],
        details: {database: source, badRecords: bad, badCount},
      },
    )
  }
  if (builder.count === 0) {
    task?.fail()
    throw new VulnerabilityDatabaseError(
      `Vulnerability database ${source} holds no OSV records (${format === 'zip' ? 'no .json entries in the zip' : 'no .json files in the folder'}): a scan against it would find nothing whatever is installed.`,
    )
  }
  const db = builder.finish({path: source, format, fileModified: fileModified.toISOString()})
  task?.succeed(`${db.info.records} record${db.info.records === 1 ? '' : 's'} read from ${source}`)
  return db
}

type Take = (file: string, text: string) => void

/** An entry's text from its stored or deflated bytes, checked against the sizes and CRC-32 the zip records. */
function entryText(entry: yauzl.Entry, raw: Buffer): string {
  let data: Buffer
  if (entry.compressionMethod === 0) data = raw
  else if (entry.compressionMethod === 8) data = inflateRawSync(raw, {maxOutputLength: MAX_RECORD_BYTES})
  else
    throw new Error(
      `entry ${entry.fileName} uses compression method ${entry.compressionMethod} (only stored and deflate are read)`,
    )
  if (data.length !== entry.uncompressedSize || crc32(data) !== entry.crc32)
    throw new Error(`entry ${entry.fileName} does not match its recorded size and checksum`)
  return data.toString('utf8')
}

async function readDirectory(folder: string, take: Take, signal?: AbortSignal): Promise<Date> {
  const entries = await readdir(folder, {recursive: true, withFileTypes: true})
  const files = entries
    .filter((e) => e.isFile() && e.name.endsWith('.json'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort()
  let newest = 0
  const BATCH = 64
  for (let i = 0; i < files.length; i += BATCH) {
    throwIfAborted(signal)
    const batch = files.slice(i, i + BATCH)
    const read = await Promise.all(
      batch.map(async (file) => {
        const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)])
        return {file, text, mtime: st.mtimeMs}
      }),
    )
    for (const {file, text, mtime} of read) {
      newest = Math.max(newest, mtime)
      take(path.relative(folder, file), text)
    }
  }
  return new Date(newest || (await stat(folder)).mtimeMs)
}

const openZip = promisify<string, yauzl.Options, yauzl.ZipFile>(yauzl.open)

async function readZip(file: string, take: Take, signal?: AbortSignal): Promise<void> {
  const zip = await openZip(file, {lazyEntries: true, autoClose: true, strictFileNames: false}).catch(
    (error: Error) => {
      throw new VulnerabilityDatabaseError(
        `Vulnerability database ${file} is neither a folder nor a readable zip: ${error.message}`,
        {cause: error},
      )
    },
  )
  const label = path.basename(file)
  await new Promise<void>((resolve, reject) => {
    let failed = false
    const fail = (error: unknown) => {
      if (failed) return
      failed = true
      zip.close()
      reject(
        error instanceof RetailOpsError || (error as NodeJS.ErrnoException).code === 'ABORT_ERR'
          ? (error as Error)
          : new VulnerabilityDatabaseError(`Vulnerability database ${file} is damaged: ${(error as Error).message}`, {
              cause: error,
            }),
      )
    }
    zip.on('error', fail)
    zip.on('end', () => {
      if (!failed) resolve()
    })
    zip.on('entry', (entry: yauzl.Entry) => {
      if (signal?.aborted) return fail(interrupted())
      if (entry.fileName.endsWith('/') || !entry.fileName.endsWith('.json')) return zip.readEntry()
      if (entry.uncompressedSize > MAX_RECORD_BYTES)
        return fail(
          new VulnerabilityDatabaseError(
            `Vulnerability database ${file}: entry ${entry.fileName} is ${entry.uncompressedSize} bytes, too large for an OSV record.`,
          ),
        )
      if (entry.isEncrypted()) return fail(new Error(`entry ${entry.fileName} is encrypted; OSV's zips are not`))
      // The compressed bytes, inflated here in one call: a zlib stream per entry costs four times
      // as much over the couple of hundred thousand small entries OSV's zip holds.
      zip.openReadStream(entry, {decodeFileData: false}, (error, stream) => {
        if (error) return fail(error)
        const chunks: Buffer[] = []
        stream.on('data', (chunk: Buffer) => chunks.push(chunk))
        stream.on('error', fail)
        stream.on('end', () => {
          try {
            take(`${label}:${entry.fileName}`, entryText(entry, Buffer.concat(chunks)))
          } catch (e) {
            return fail(e)
          }
          zip.readEntry()
        })
      })
    })
    zip.readEntry()
  })
}
