import {createHash} from 'node:crypto'
import {createReadStream, existsSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import path from 'node:path'

import type {DatastoreConfig} from '../config/schema.js'
import {RetailOpsError} from '../errors/index.js'
import {type BackupLocation, openLocation, type StoredObject} from '../objectstore/location.js'
import {backupTooOld, type BackupInfo, expectedChecksum, newestBackup} from './backups.js'
import type {DrillContext} from './providers/types.js'

type BackupConfig = NonNullable<NonNullable<DatastoreConfig['postgres']>['backup']>

/** The backup a drill chose, fetched into its work folder and checked; or why it was not restored. */
export type FetchedDump =
  | {restorable: true; file: string; backup: BackupInfo; evidence: Record<string, unknown>}
  | {restorable: false; backup: BackupInfo; finding: string; evidence: Record<string, unknown>}

export function openBackupLocation(
  cfg: BackupConfig,
  ctx: Pick<DrillContext, 'project' | 'env'>,
): Promise<BackupLocation> {
  return openLocation(cfg.location!, {
    baseDir: ctx.project.dir,
    endpoint: cfg.endpoint,
    region: cfg.region,
    env: ctx.env,
  })
}

/**
 * Picks the newest complete pg_dump file in the datastore's backup location, refuses it when it is
 * older than the RPO target, and otherwise streams it into the drill's work folder while hashing
 * it; the size and the checksum (a `.sha256` sidecar, object metadata, or the store's own) must
 * match, or the drill fails (a corrupted or truncated backup does not restore).
 */
export async function fetchNewestDump(ds: DatastoreConfig, cfg: BackupConfig, ctx: DrillContext): Promise<FetchedDump> {
  const scope = ds.name
  const location = await openBackupLocation(cfg, ctx)
  try {
    const chosen = await ctx.steps.run(
      scope,
      'select-backup',
      `newest ${cfg.match} in ${location.url}`,
      async () => {
        const listed = await location.list('', ctx.signal)
        const found = newestBackup(listed, cfg.match)
        if (!found.newest)
          throw new RetailOpsError(
            'DR_VALIDATION_FAILED',
            `No backup to restore: ${location.url} holds no complete ${cfg.match} file (${listed.length} object(s) listed${found.skipped.length ? `; skipped: ${found.skipped.map((s) => `${s.key} ${s.reason}`).join(', ')}` : ''}).`,
            {nextSteps: [`Check that the backup job writes to ${location.url}, and postgres.backup.match.`]},
          )
        const head = (await location.head(found.newest.key, ctx.signal)) ?? found.newest
        const sidecarKey = `${found.newest.key}.sha256`
        const sidecar = listed.some((o) => o.key === sidecarKey)
          ? await location.readText(sidecarKey, ctx.signal)
          : undefined
        return {object: {...found.newest, ...head}, candidates: found.backups.length, skipped: found.skipped, sidecar}
      },
      (c) =>
        `${c.object.key} (${c.object.size} bytes, ${c.object.modified.toISOString()}; ${c.candidates} backup(s) found)`,
    )
    const object: StoredObject = chosen.object
    const expected = expectedChecksum(object, chosen.sidecar)
    const age = backupTooOld(object.modified, ctx.drillStartMs, ctx.targets.rpoMs, ctx.targets.rpo)
    const backup: BackupInfo = {
      kind: 'pg-dump',
      location: location.url,
      name: object.key,
      time: object.modified.toISOString(),
      timeSource: "the object's time in the store (the upload's end)",
      sizeBytes: object.size,
      checksum: {
        algorithm: 'sha256',
        ...(expected.expected ? {expected: expected.expected, expectedFrom: expected.expectedFrom} : {}),
        status: 'unverified',
      },
      ageMs: age.ageMs,
      rpoTargetMs: ctx.targets.rpoMs,
    }
    const evidence: Record<string, unknown> = {
      backupLocation: location.url,
      backupObject: object.key,
      backupObjectTime: object.modified.toISOString(),
      backupCandidates: chosen.candidates,
      ...(chosen.skipped.length ? {backupSkipped: chosen.skipped} : {}),
    }
    if (age.tooOld) return {restorable: false, backup, finding: age.finding!, evidence}
    if (expected.problem)
      throw new RetailOpsError('DR_VALIDATION_FAILED', `The backup's checksum cannot be read: ${expected.problem}`, {
        details: {backup},
      })

    const file = path.join(ctx.workDir, `${ds.name}.dump`)
    ctx.cleanup.push({
      kind: 'downloaded backup',
      resource: file,
      action: 'delete',
      run: async () => {
        const existed = existsSync(file)
        await rm(file, {force: true})
        await rm(`${file}.partial`, {force: true})
        return {status: existed ? 'removed' : 'absent'}
      },
    })
    await ctx.steps.run(
      scope,
      'fetch',
      `download ${object.key} and verify it`,
      async (step) => {
        const {bytes} = await location.download(object.key, file, ctx.signal)
        const actual = await sha256Of(file)
        backup.checksum.actual = actual
        evidence.dumpBytes = bytes
        if (bytes !== object.size) {
          backup.checksum.status = 'mismatch'
          throw new RetailOpsError(
            'DR_VALIDATION_FAILED',
            `The backup ${object.key} is truncated or changed: ${bytes} bytes read, the store lists ${object.size}.`,
            {details: {backup}},
          )
        }
        if (expected.expected) {
          if (expected.expected !== actual) {
            backup.checksum.status = 'mismatch'
            throw new RetailOpsError(
              'DR_VALIDATION_FAILED',
              `The backup ${object.key} is corrupted: its SHA-256 is ${actual}, ${expected.expectedFrom} says ${expected.expected}.`,
              {
                details: {backup},
                nextSteps: [
                  'Find out what changed the backup (storage, a partial upload); the previous backup may still be good.',
                ],
              },
            )
          }
          backup.checksum.status = 'verified'
        } else
          step.warn(
            `no checksum stored with ${object.key} (no .sha256 sidecar, no sha256 metadata, no ChecksumSHA256): integrity rests on pg_restore alone`,
          )
        return bytes
      },
      (bytes) => `${bytes} bytes, sha256 ${backup.checksum.actual?.slice(0, 12)}… ${backup.checksum.status}`,
    )
    return {restorable: true, file, backup, evidence}
  } finally {
    location.close()
  }
}

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}
