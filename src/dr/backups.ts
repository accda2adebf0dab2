import {formatDuration} from '../config/duration.js'
import type {StoredObject} from '../objectstore/location.js'

/**
 * Choosing and checking the backup a drill restores: which object is the newest complete backup,
 * which checksum it must match, and whether it is too old to be worth restoring. Pure: the
 * provider lists, reads and restores.
 */

/** What the drill restored from, as the report and the record show it. */
export interface BackupInfo {
  /** pg-dump: a pg_dump custom-format file; pgbackrest: a pgBackRest backup (plus archived WAL); live: a dump taken by the drill; file: postgres.backupFile. */
  kind: 'pg-dump' | 'pgbackrest' | 'live' | 'file'
  /** s3://bucket/prefix, a directory, or the live source (credentials masked). */
  location: string
  /** The object (key), the pgBackRest backup label, or the file. */
  name: string
  /** The backup's own point in time: the data it holds is from then (pg_dump: its snapshot; pgBackRest: backup stop or the last replayed transaction). */
  time: string
  /** Where `time` comes from. */
  timeSource: string
  sizeBytes?: number
  checksum: {
    algorithm: 'sha256' | 'pgbackrest'
    /** The checksum the store or the backup tool kept, if any. */
    expected?: string
    /** Where the expected one came from: a .sha256 sidecar, object metadata, the store's ChecksumSHA256, pgBackRest's manifest. */
    expectedFrom?: string
    /** What the drill computed over the bytes it restored. */
    actual?: string
    /** verified: matched; mismatch: did not (the drill failed); unverified: nothing to compare with. */
    status: 'verified' | 'mismatch' | 'unverified'
  }
  /** The backup's age at the drill's start, against the RPO target. */
  ageMs: number
  rpoTargetMs: number
  /** Point-in-time recovery: archived WAL replayed after the backup (pgBackRest). */
  pointInTime?: {target: string; reachedAt?: string; walArchived: boolean}
}

/** Names that mark an object as unfinished or as a companion of a backup, never a backup itself. */
const NOT_A_BACKUP = /(\.sha256|\.sha256sum|\.md5|\.partial|\.tmp|\.part|\.inprogress|\.lock)$/i

/** A glob of one path segment's shape (`*.dump`, `orders-*.dump`) as a test on the object's base name. */
export function globMatcher(glob: string): (key: string) => boolean {
  const re = new RegExp(
    `^${glob
      .split('')
      .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  )
  return (key) => re.test(key.slice(key.lastIndexOf('/') + 1))
}

export interface BackupCandidates {
  newest?: StoredObject
  /** Every object that is a backup, newest first. */
  backups: StoredObject[]
  /** Objects left out, with why (an empty file, an unfinished upload). */
  skipped: {key: string; reason: string}[]
}

/**
 * The newest complete backup among a listing: objects whose name matches, that are not empty and
 * not marked unfinished; newest by the store's time (the moment the upload completed), then by key.
 */
export function newestBackup(objects: StoredObject[], match: string): BackupCandidates {
  const matches = globMatcher(match)
  const skipped: {key: string; reason: string}[] = []
  const backups: StoredObject[] = []
  for (const o of objects) {
    if (NOT_A_BACKUP.test(o.key)) continue
    if (!matches(o.key)) continue
    if (o.size === 0) {
      skipped.push({key: o.key, reason: 'empty (an upload that never finished?)'})
      continue
    }
    backups.push(o)
  }
  backups.sort((a, b) => b.modified.getTime() - a.modified.getTime() || b.key.localeCompare(a.key))
  return {newest: backups[0], backups, skipped}
}

/** The hex SHA-256 in a sidecar: `sha256sum` output (`<hex>  <name>`) or the bare hex; undefined if it holds none. */
export function parseSha256Sidecar(text: string): string | undefined {
  const m = /^\s*([0-9a-fA-F]{64})(\s|$)/.exec(text)
  return m ? m[1].toLowerCase() : undefined
}

/** The checksum a backup object must match, in order of trust: its sidecar, its metadata, the store's own. */
export function expectedChecksum(
  object: StoredObject,
  sidecar: string | undefined,
): {expected?: string; expectedFrom?: string; problem?: string} {
  if (sidecar !== undefined) {
    const hex = parseSha256Sidecar(sidecar)
    if (!hex) return {problem: `${object.key}.sha256 holds no SHA-256 (expected 64 hex digits, as sha256sum writes)`}
    return {expected: hex, expectedFrom: `${object.key}.sha256`}
  }
  const meta = object.metadata?.sha256 ?? object.metadata?.['sha256sum']
  if (meta) {
    const hex = parseSha256Sidecar(meta)
    if (!hex) return {problem: `${object.key}: metadata sha256 is not a SHA-256 (${meta.slice(0, 80)})`}
    return {expected: hex, expectedFrom: 'object metadata sha256'}
  }
  if (object.checksumSha256) return {expected: object.checksumSha256, expectedFrom: "the store's ChecksumSHA256"}
  return {}
}

/** Whether a backup is too old to restore: older than the RPO target at the drill's start. */
export function backupTooOld(
  backupTime: Date,
  drillStartMs: number,
  rpoMs: number,
  rpo: string,
): {ageMs: number; tooOld: boolean; finding?: string} {
  const ageMs = Math.max(0, drillStartMs - backupTime.getTime())
  if (ageMs <= rpoMs) return {ageMs, tooOld: false}
  return {
    ageMs,
    tooOld: true,
    finding: `the newest backup is from ${backupTime.toISOString()}, ${formatDuration(ageMs)} before the drill started: older than the RPO target ${rpo}. Restoring it would prove only that ${formatDuration(ageMs)} of data would be lost; it was not restored. Check that backups run (and reach this location) at least every ${rpo}.`,
  }
}

/** pg_restore --list's header line `; Archive created at 2026-12-07 00:44:00 UTC`: when pg_dump took its snapshot. */
export function archiveCreatedAt(toc: string): Date | undefined {
  const m = /^;\s*Archive created at (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\s*(\S+)?/m.exec(toc)
  if (!m) return undefined
  const zone = m[2] && /^(UTC|GMT|Z)$/i.test(m[2]) ? 'Z' : m[2] && /^[+-]\d{2}(:?\d{2})?$/.test(m[2]) ? m[2] : undefined
  // A zone abbreviation other than UTC cannot be read reliably: the caller falls back to the store's time.
  if (!zone) return undefined
  const d = new Date(`${m[1].replace(' ', 'T')}${zone === 'Z' ? 'Z' : zone.length === 3 ? `${zone}:00` : zone}`)
  return Number.isNaN(d.getTime()) ? undefined : d
}

/** One backup in `pgbackrest info --output=json`. */
export interface PgBackRestBackup {
  label: string
  type: 'full' | 'diff' | 'incr'
  startedAt: Date
  stoppedAt: Date
  /** Bytes in the repository (compressed), and of the database. */
  repoSizeBytes?: number
  sizeBytes?: number
  walStart?: string
  walStop?: string
  error?: boolean
}

export interface PgBackRestStanzaInfo {
  stanza: string
  status: {code: number; message: string}
  backups: PgBackRestBackup[]
  /** The archived WAL range of the current database, when any is archived. */
  archive?: {min?: string; max?: string}
  /** The PostgreSQL major version of the current database ("15"). */
  dbVersion?: string
}

/** Reads `pgbackrest info --output=json` for one stanza (the parts a drill needs); throws with the reason on anything else. */
export function parsePgBackRestInfo(json: string, stanza: string): PgBackRestStanzaInfo {
  let data: unknown
  try {
    data = JSON.parse(json)
  } catch (error) {
    throw new Error(`pgbackrest info did not print JSON: ${(error as Error).message}`, {cause: error})
  }
  if (!Array.isArray(data)) throw new Error('pgbackrest info --output=json: expected a list of stanzas')
  type Raw = {
    name?: string
    status?: {code?: number; message?: string}
    backup?: {
      label?: string
      type?: string
      error?: boolean
      timestamp?: {start?: number; stop?: number}
      info?: {size?: number; repository?: {delta?: number; size?: number}}
      archive?: {start?: string; stop?: string}
    }[]
    archive?: {min?: string; max?: string; database?: {id?: number}}[]
    db?: {id?: number; 'system-id'?: number; version?: string}[]
    repo?: {key?: number; status?: {code?: number; message?: string}}[]
  }
  const raw = (data as Raw[]).find((s) => s.name === stanza)
  if (!raw) throw new Error(`pgbackrest info knows no stanza ${stanza}`)
  const backups: PgBackRestBackup[] = (raw.backup ?? []).map((b) => ({
    label: b.label ?? '?',
    type: (b.type as PgBackRestBackup['type']) ?? 'full',
    startedAt: new Date((b.timestamp?.start ?? 0) * 1000),
    stoppedAt: new Date((b.timestamp?.stop ?? 0) * 1000),
    ...(b.info?.repository?.size === undefined ? {} : {repoSizeBytes: b.info.repository.size}),
    ...(b.info?.size === undefined ? {} : {sizeBytes: b.info.size}),
    ...(b.archive?.start ? {walStart: b.archive.start} : {}),
    ...(b.archive?.stop ? {walStop: b.archive.stop} : {}),
    ...(b.error ? {error: true} : {}),
  }))
  const archives = (raw.archive ?? []).filter((a) => a.min || a.max)
  const last = archives[archives.length - 1]
  // Status 99 ("other") says only that a repository has its own problem: name each one's.
  const repoProblems = (raw.repo ?? [])
    .filter((r) => r.status?.code === 99 && r.status.message)
    .map((r) => `repo${r.key ?? '?'}: ${r.status!.message}`)
  return {
    stanza,
    status: {
      code: raw.status?.code ?? -1,
      message:
        raw.status?.code === 99 && repoProblems.length ? repoProblems.join('; ') : (raw.status?.message ?? 'unknown'),
    },
    backups,
    ...(last ? {archive: {min: last.min, max: last.max}} : {}),
    ...(raw.db?.length ? {dbVersion: raw.db[raw.db.length - 1].version} : {}),
  }
}

/** The newest backup pgBackRest finished without error (its manifest is the tool's own word that it is complete). */
export function newestPgBackRestBackup(info: PgBackRestStanzaInfo): PgBackRestBackup | undefined {
  return info.backups
    .filter((b) => !b.error && b.stoppedAt.getTime() > 0)
    .sort((a, b) => b.stoppedAt.getTime() - a.stoppedAt.getTime())[0]
}

/** One line about the restored backup: "s3://b/p/orders.dump, 2026-12-07T00:44:05Z (12m old, RPO 1h), 1.2 MB, sha256 verified". */
export function backupLine(b: BackupInfo): string {
  const check =
    b.checksum.status === 'verified'
      ? `${b.checksum.algorithm === 'pgbackrest' ? 'pgBackRest manifest checksums' : 'sha256'} verified`
      : b.checksum.status === 'mismatch'
        ? `${b.checksum.algorithm} MISMATCH`
        : `${b.checksum.algorithm === 'sha256' ? 'no stored sha256' : 'checksums not checked'}`
  const where = b.kind === 'pg-dump' ? `${b.location.replace(/\/?$/, '/')}${b.name}` : `${b.location} ${b.name}`
  return `${where}, ${b.time} (${formatDuration(b.ageMs)} old, RPO target ${formatDuration(b.rpoTargetMs)})${b.sizeBytes === undefined ? '' : `, ${formatBytes(b.sizeBytes)}`}, ${check}`
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}

/** The backup as rows of a two-column table (report sections). */
export function backupRows(b: BackupInfo): [string, string][] {
  const rows: [string, string][] = [
    ['kind', b.kind],
    ['location', b.location],
    ['backup', b.name],
    ['point in time', `${b.time} (${b.timeSource})`],
    [
      'age at drill start',
      `${formatDuration(b.ageMs)} (RPO target ${formatDuration(b.rpoTargetMs)}: ${b.ageMs <= b.rpoTargetMs ? 'within' : 'OLDER'})`,
    ],
  ]
  if (b.sizeBytes !== undefined) rows.push(['size', `${formatBytes(b.sizeBytes)} (${b.sizeBytes} bytes)`])
  rows.push([
    'checksum',
    `${b.checksum.status}${b.checksum.expectedFrom ? ` against ${b.checksum.expectedFrom}` : ''}${b.checksum.expected ? `: expected ${b.checksum.expected}` : ''}${b.checksum.actual ? `, actual ${b.checksum.actual}` : ''}`,
  ])
  if (b.pointInTime)
    rows.push([
      'point-in-time recovery',
      `target ${b.pointInTime.target}; WAL archived after the backup: ${b.pointInTime.walArchived ? 'yes' : 'no'}${b.pointInTime.reachedAt ? `; reached ${b.pointInTime.reachedAt}` : ''}`,
    ])
  return rows
}

/** A step of one datastore against its RTO target: how long it took and when it ended, from the drill's start. */
export interface StepAgainstRto {
  name: string
  title: string
  status: string
  durationMs?: number
  /** From the drill's start to the step's end. */
  endedAtMs?: number
  /** endedAtMs as a share of the RTO target (1 = the whole budget). */
  shareOfRto?: number
}

export function stepsAgainstRto(
  steps: {
    scope: string
    name: string
    title: string
    status: string
    startedAt: string
    endedAt?: string
    durationMs?: number
  }[],
  scope: string,
  drillStartedAt: string,
  rtoTargetMs: number,
): StepAgainstRto[] {
  const start = Date.parse(drillStartedAt)
  return steps
    .filter((s) => s.scope === scope)
    .map((s) => {
      const endedAtMs = s.endedAt ? Math.max(0, Date.parse(s.endedAt) - start) : undefined
      return {
        name: s.name,
        title: s.title,
        status: s.status,
        ...(s.durationMs === undefined ? {} : {durationMs: s.durationMs}),
        ...(endedAtMs === undefined
          ? {}
          : {endedAtMs, shareOfRto: rtoTargetMs > 0 ? endedAtMs / rtoTargetMs : undefined}),
      }
    })
}
