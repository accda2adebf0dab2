import {createHash} from 'node:crypto'
import {createReadStream, existsSync, statSync} from 'node:fs'
import {rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type pg from 'pg'

import type {DatastoreConfig} from '../../config/schema.js'
import {RetailOpsError} from '../../errors/index.js'
import {throwIfAborted} from '../../ui/context.js'
import {checkExpectation, toRecoveryPoint, valueText} from '../measure.js'
import {isDrillDatabase, scratchDatabaseName} from '../naming.js'
import {
  assertPgToolStarted,
  pgBinary,
  pgConnect,
  pgDumpArgs,
  pgError,
  pgPlainEnv,
  pgRestoreArgs,
  pgTarget,
  type PgTarget,
  pgToolEnv,
  serverIdentity,
  serverOf,
  withDatabase,
} from '../pg.js'
import {parseLocation} from '../../objectstore/location.js'
import {archiveCreatedAt, type BackupInfo} from '../backups.js'
import {fetchNewestDump} from '../pg-backup.js'
import type {ValidationResult} from '../types.js'
import {pgBackRestPlan, restorePgBackRest} from './pgbackrest.js'
import {
  type DrillContext,
  type DrillProvider,
  type PlanContext,
  type ProviderPlan,
  type ProviderResult,
  RESTORE_FAILED,
} from './types.js'

type Validation = DatastoreConfig['validation'][number]

const STATEMENT_TIMEOUT_MS = 60_000

/** What a drill restores: a pg_dump file from a backup location, a pgBackRest backup, a dump it takes now, or postgres.backupFile. */
export type PostgresRestoreSource = 'pg-dump' | 'pgbackrest' | 'live' | 'file'

export function restoreSource(ds: DatastoreConfig): PostgresRestoreSource {
  const cfg = ds.postgres
  if (cfg?.backupFile) return 'file'
  if (cfg?.backup?.source) return cfg.backup.source
  return cfg?.backup?.location ? 'pg-dump' : 'live'
}

interface Resolved {
  mode: PostgresRestoreSource
  source?: PgTarget
  restoreServer?: PgTarget
  /** The restore server was named (postgres.restoreUrlEnv), not defaulted to the source's. */
  restoreExplicit: boolean
  backupFile?: string
  problems: string[]
  refusals: string[]
}

function allowFlag(): string {
  return '--allow-source-server "<reason>"'
}

function resolve(ds: DatastoreConfig, ctx: PlanContext): Resolved {
  const cfg = ds.postgres ?? {urlEnv: 'DATABASE_URL'}
  const problems: string[] = []
  const mode = restoreSource(ds)
  const fromBackups = mode === 'pg-dump' || mode === 'pgbackrest'
  const urlEnv = cfg.urlEnv ?? 'DATABASE_URL'
  const url = cfg.url ?? ctx.env[urlEnv] ?? (urlEnv === 'DATABASE_URL' ? ctx.env.RETAILOPS_POSTGRES_URL : undefined)
  let source: PgTarget | undefined
  if (fromBackups && cfg.backup?.location) {
    try {
      parseLocation(cfg.backup.location, ctx.project.dir)
    } catch (error) {
      problems.push(`${ds.name}: postgres.backup.location ${(error as Error).message}`)
    }
  } else if (fromBackups) {
    problems.push(
      `${ds.name}: postgres.backup.source is ${mode} but postgres.backup.location is not set (s3://bucket/prefix or a directory)`,
    )
  }
  if (url) {
    try {
      source = pgTarget(url, cfg.database)
    } catch (error) {
      problems.push(`${ds.name}: ${(error as Error).message}`)
    }
  } else if (!fromBackups) {
    // A drill from backups reads no source; one is only needed to keep the scratch copy off its server.
    problems.push(
      `${ds.name}: no source URL: set ${urlEnv}${urlEnv === 'DATABASE_URL' ? ' (or RETAILOPS_POSTGRES_URL)' : ''}, or datastores[].postgres.url`,
    )
  }
  let restoreServer = mode === 'pgbackrest' ? undefined : source
  let restoreExplicit = false
  if (cfg.restoreUrlEnv && mode !== 'pgbackrest') {
    const restoreUrl = ctx.env[cfg.restoreUrlEnv]
    if (restoreUrl) {
      try {
        restoreServer = pgTarget(restoreUrl)
        restoreExplicit = true
      } catch (error) {
        problems.push(`${ds.name}: ${(error as Error).message}`)
      }
    } else {
      problems.push(`${ds.name}: postgres.restoreUrlEnv names ${cfg.restoreUrlEnv}, which is not set`)
    }
  }
  let backupFile: string | undefined
  if (cfg.backupFile) {
    backupFile = path.resolve(ctx.project.dir, cfg.backupFile)
    if (!existsSync(backupFile)) problems.push(`${ds.name}: backup file ${backupFile} does not exist`)
  }
  if (mode === 'pg-dump' && !restoreServer)
    problems.push(
      `${ds.name}: no restore server for the scratch database: set datastores[].postgres.restoreUrlEnv (or a source URL, ${urlEnv})`,
    )
  for (const v of ds.validation) {
    if (v.expect?.matchesSource && mode !== 'live') {
      problems.push(
        `${ds.name}: validation ${v.name} uses expect.matchesSource, which needs a backup taken by the drill (postgres.backup.source: live), not ${mode === 'file' ? 'postgres.backupFile' : `a ${mode} backup`}`,
      )
    }
  }
  if (source && isDrillDatabase(source.database))
    problems.push(`${ds.name}: the source database ${source.database} is itself a drill copy`)
  // Production data restored next to production data: the primary carries a full extra copy for
  // the drill's length (for ever, if the drill is killed). Production needs another server, or
  // a stated reason.
  const refusals: string[] = []
  if (source && restoreServer && ctx.environment.production && !ctx.allowSourceServer) {
    if (!restoreExplicit) {
      refusals.push(
        `${ds.name}: the scratch copy would be restored on the source's own server ${serverOf(source)}, and environment ${ctx.environment.name} is production. Set datastores[].postgres.restoreUrlEnv to a variable holding the URL of a non-production restore server, or pass ${allowFlag()} to accept a full copy of the data on the source's server`,
      )
    } else if (serverOf(restoreServer) === serverOf(source)) {
      refusals.push(
        `${ds.name}: postgres.restoreUrlEnv (${cfg.restoreUrlEnv}) names the source's own server ${serverOf(source)}, and environment ${ctx.environment.name} is production. Point it at another server, or pass ${allowFlag()}`,
      )
    }
  }
  return {mode, source, restoreServer, restoreExplicit, backupFile, problems, refusals}
}

export const postgresProvider: DrillProvider = {
  name: 'postgres',

  plan(ds, ctx): ProviderPlan {
    const r = resolve(ds, ctx)
    const scratch = scratchDatabaseName(ctx.drillId, ds.name)
    const server = r.restoreServer ? serverOf(r.restoreServer) : '(restore server)'
    const warnings: string[] = []
    if (ds.validation.length === 0)
      warnings.push(`${ds.name}: no validation queries: only pg_restore's success is checked`)
    if (!ds.validation.some((v) => v.recoveryPoint) && r.mode === 'live') {
      warnings.push(
        `${ds.name}: no validation with recoveryPoint: true, so the RPO cannot be measured (add one returning the newest order's timestamp)`,
      )
    }
    const matches = ds.validation.filter((v) => v.expect?.matchesSource).length
    if (ctx.allowSourceServer && r.source && r.restoreServer && serverOf(r.source) === serverOf(r.restoreServer)) {
      warnings.push(
        `${ds.name}: the scratch copy goes on the source's own server ${serverOf(r.source)} (--allow-source-server: ${ctx.allowSourceServer})`,
      )
    }
    if (r.mode === 'live' && !ds.postgres?.backup)
      warnings.push(
        `${ds.name}: restores a pg_dump the drill takes of the live database, which proves pg_restore works, not that your backups restore: set postgres.backup.location (or postgres.backup.source: live to keep this on purpose)`,
      )
    const location = ds.postgres?.backup?.location
    if (r.mode === 'pgbackrest') return pgBackRestPlan(ds, ctx, r.problems, warnings)
    return {
      source:
        r.mode === 'pg-dump'
          ? `newest ${ds.postgres?.backup?.match ?? '*.dump'} in ${location}`
          : (r.source?.display ?? '(no source URL)'),
      target: `${scratch} on ${server}`,
      steps: [
        r.mode === 'pg-dump'
          ? `pick the newest complete ${ds.postgres?.backup?.match ?? '*.dump'} in ${location}; refuse it if older than the RPO target; download it and verify its size and SHA-256 (.sha256 sidecar, sha256 metadata or the store's checksum)`
          : r.backupFile
            ? `use the backup file ${r.backupFile} (checksum and table of contents recorded)`
            : `take a pg_dump custom-format backup of ${r.source?.display ?? 'the source'} in one exported snapshot${matches ? `, reading ${matches} source value(s) in that snapshot` : ''} (read-only)`,
        `create the scratch database ${scratch} on ${server}`,
        'restore the backup into it with pg_restore --no-owner --no-privileges --exit-on-error',
        `run ${ds.validation.length} validation quer${ds.validation.length === 1 ? 'y' : 'ies'} in a read-only transaction${ds.validation.some((v) => v.recoveryPoint) ? ' (the recoveryPoint one gives the RPO)' : ''}`,
        `drop ${scratch} and delete the local dump (kept in the drill's private work folder)`,
      ],
      problems: r.problems,
      refusals: r.refusals,
      warnings,
    }
  },

  // A restore URL with another address may still reach the source's server (localhost and
  // 127.0.0.1, a DNS alias): compare the servers themselves before anything is written.
  async preflight(ds, _plan, ctx): Promise<string[]> {
    const r = resolve(ds, ctx)
    if (
      !r.source ||
      !r.restoreServer ||
      !r.restoreExplicit ||
      !ctx.environment.production ||
      ctx.allowSourceServer ||
      r.refusals.length > 0
    )
      return []
    const identify = async (target: PgTarget) => {
      const client = await pgConnect(
        withDatabase(target, target === r.source ? target.database : 'postgres'),
        'retailops-dr-preflight',
        ctx.signal,
      )
      try {
        return await serverIdentity(client)
      } finally {
        await client.end().catch(() => {})
      }
    }
    const [source, restore] = await Promise.all([identify(r.source), identify(r.restoreServer)])
    if (source !== restore) return []
    return [
      `${ds.name}: the restore server ${serverOf(r.restoreServer)} (postgres.restoreUrlEnv ${ds.postgres?.restoreUrlEnv}) is the source's own server ${serverOf(r.source)} under another address (same ${source.split(':')[0]}), and environment ${ctx.environment.name} is production. Point it at another server, or pass ${allowFlag()}`,
    ]
  },

  async run(ds, _plan, ctx): Promise<ProviderResult> {
    const r = resolve(ds, ctx)
    if (r.problems.length > 0) throw new RetailOpsError('CONFIG', r.problems.join('; '))
    if (r.mode === 'pgbackrest')
      return restorePgBackRest(ds, ctx, (target, evidence) => validateScratch(ds, target, ctx, evidence, new Map()))
    if (!r.restoreServer || (r.mode === 'live' && !r.source))
      throw new RetailOpsError('CONFIG', `${ds.name}: no source or restore server`)
    // Known for a live dump; for backups only when configured (to keep the copy off its server).
    const sourceTarget = r.source
    const scratchName = scratchDatabaseName(ctx.drillId, ds.name)
    const scratch = withDatabase(r.restoreServer, scratchName)
    const sameServer = sourceTarget !== undefined && serverOf(scratch) === serverOf(sourceTarget)
    if (sameServer && scratch.database === sourceTarget.database) {
      throw new RetailOpsError('INTERNAL', `Refusing to restore over the source database ${sourceTarget.database}.`)
    }
    const evidence: Record<string, unknown> = {scratchDatabase: scratchName, restoreServer: serverOf(scratch)}
    if (ctx.allowSourceServer && sameServer) evidence.allowSourceServer = ctx.allowSourceServer
    const scope = ds.name
    const {execa} = await import('execa')

    // 1. The backup: a dump taken now in one exported snapshot, or the configured file. The dump
    // and the password files live in the drill's private work folder (0700), nowhere else.
    const local = [`${ds.name}.dump`, `${ds.name}-dump.pgpass`, `${ds.name}-restore.pgpass`].map((f) =>
      path.join(ctx.workDir, f),
    )
    ctx.cleanup.push({
      kind: 'local dump',
      resource: local[0],
      action: 'delete',
      run: async () => {
        const existed = existsSync(local[0])
        for (const f of local) await rm(f, {force: true})
        return {status: existed ? 'removed' : 'absent'}
      },
    })
    let dumpFile: string
    let backup: BackupInfo | undefined
    let recoveryPoint: Date | undefined
    let recoveryPointSource: string | undefined
    const sourceValues = new Map<string, string | null>()
    let serverMajor = 15
    if (r.mode === 'pg-dump') {
      const fetched = await fetchNewestDump(ds, ds.postgres!.backup!, ctx)
      Object.assign(evidence, fetched.evidence)
      backup = fetched.backup
      if (!fetched.restorable) {
        ctx.out.warn(`${ds.name}: ${fetched.finding}`)
        return {
          target: `${scratchName} on ${serverOf(scratch)} (not created)`,
          recoveryPoint: new Date(backup.time),
          recoveryPointSource: backup.timeSource,
          validations: [],
          evidence,
          backup,
          refused: fetched.finding,
        }
      }
      dumpFile = fetched.file
    } else if (r.backupFile) {
      dumpFile = r.backupFile
      const info = statSync(dumpFile)
      evidence.backupFile = dumpFile
      evidence.backupFileModified = info.mtime.toISOString()
      recoveryPoint = info.mtime
      recoveryPointSource = "the backup file's modification time (no recoveryPoint validation ran yet)"
    } else {
      dumpFile = local[0]
      const source = sourceTarget!
      await ctx.steps.run(
        scope,
        'backup',
        `pg_dump ${source.display}`,
        async () => {
          const client = await pgConnect(source, 'retailops-dr', ctx.signal)
          try {
            const version = await client.query<{v: string; n: string}>(
              "select version() as v, current_setting('server_version_num') as n",
            )
            serverMajor = Math.floor(Number(version.rows[0].n) / 10_000)
            evidence.sourceServer = version.rows[0].v
            // One read-only REPEATABLE READ transaction: its exported snapshot is what pg_dump copies
            // and what expect.matchesSource compares against.
            await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
            const snap = await client.query<{id: string; at: Date}>('select pg_export_snapshot() as id, now() as at')
            evidence.snapshot = snap.rows[0].id
            evidence.snapshotAt = snap.rows[0].at.toISOString()
            const bin = pgBinary('pg_dump', serverMajor, ctx.env)
            const dump = await execa(bin, pgDumpArgs(source, snap.rows[0].id, dumpFile), {
              env: await pgToolEnv(source, ctx.workDir, `${ds.name}-dump`, ctx.env),
              extendEnv: false,
              cancelSignal: ctx.signal,
              reject: false,
            })
            throwIfAborted(ctx.signal)
            assertPgToolStarted(dump, bin)
            if (dump.exitCode !== 0)
              throw new RetailOpsError(
                RESTORE_FAILED,
                `pg_dump failed (exit ${dump.exitCode}): ${String(dump.stderr).trim().split('\n').slice(-3).join(' ')}`,
              )
            evidence.pgDump = (
              await execa(bin, ['--version'], {env: pgPlainEnv(ctx.env), extendEnv: false})
            ).stdout.trim()
            for (const v of ds.validation.filter((x) => x.expect?.matchesSource)) {
              sourceValues.set(
                v.name,
                await firstValue(client, v.query).catch((error: Error) => `error: ${error.message}`),
              )
            }
            await client.query('COMMIT')
          } catch (error) {
            await client.query('ROLLBACK').catch(() => {})
            throw pgError(error, `dumping ${source.display}`)
          } finally {
            await client.end().catch(() => {})
          }
        },
        () => `${ds.name}.dump`,
      )
    }
    const info = await stat(dumpFile)
    evidence.dumpBytes = info.size
    evidence.dumpSha256 = await sha256File(dumpFile)
    let restoreBin = pgBinary('pg_restore', serverMajor, ctx.env)
    const toc = await execa(restoreBin, ['--list', dumpFile], {
      env: pgPlainEnv(ctx.env),
      extendEnv: false,
      reject: false,
    })
    assertPgToolStarted(toc, restoreBin)
    if (toc.exitCode !== 0)
      throw new RetailOpsError(
        RESTORE_FAILED,
        `${dumpFile} is not a readable pg_dump custom-format archive: ${String(toc.stderr).trim().split('\n')[0]}`,
      )
    const createdAt = archiveCreatedAt(String(toc.stdout))
    if (backup && createdAt) {
      // pg_dump's own header: the snapshot it copied, the backup's real point in time.
      backup.time = createdAt.toISOString()
      backup.timeSource = "pg_dump's snapshot (the dump's header: Archive created at)"
      backup.ageMs = Math.max(0, ctx.drillStartMs - createdAt.getTime())
    }
    if (r.mode === 'live' || r.mode === 'file') {
      const sha = evidence.dumpSha256 as string
      backup = {
        kind: r.mode,
        location: r.mode === 'live' ? sourceTarget!.display : path.dirname(dumpFile),
        name: r.mode === 'live' ? `pg_dump of ${sourceTarget!.database}` : path.basename(dumpFile),
        time: (createdAt ?? (evidence.snapshotAt ? new Date(evidence.snapshotAt as string) : info.mtime)).toISOString(),
        timeSource: createdAt
          ? "pg_dump's snapshot (the dump's header: Archive created at)"
          : "the file's modification time",
        sizeBytes: info.size,
        checksum: {algorithm: 'sha256', actual: sha, status: 'unverified'},
        ageMs: Math.max(0, ctx.drillStartMs - (createdAt ?? info.mtime).getTime()),
        rpoTargetMs: ctx.targets.rpoMs,
      }
    }
    evidence.tocEntries = String(toc.stdout)
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith(';')).length
    throwIfAborted(ctx.signal)

    // 2. The scratch database, registered for cleanup (and in the drill's lease, for a killed
    // drill's successor) before it exists.
    const admin = withDatabase(r.restoreServer, 'postgres')
    await ctx.lease({kind: 'scratch database', name: scratchName, where: serverOf(scratch)})
    ctx.cleanup.push({
      kind: 'scratch database',
      resource: `${scratchName} on ${serverOf(scratch)}`,
      action: 'drop',
      run: () => dropDatabase(admin, scratchName),
    })
    await ctx.steps.run(scope, 'create-target', `create ${scratchName}`, async () => {
      const client = await pgConnect(admin)
      try {
        const version = await client.query<{n: string}>("select current_setting('server_version_num') as n")
        restoreBin = pgBinary(
          'pg_restore',
          Math.max(serverMajor, Math.floor(Number(version.rows[0].n) / 10_000)),
          ctx.env,
        )
        const ident = client.escapeIdentifier(scratchName)
        await client.query(`CREATE DATABASE ${ident}`)
        await client.query(
          `COMMENT ON DATABASE ${ident} IS ${client.escapeLiteral(`retailops dr drill ${ctx.drillId} of datastore ${ds.name}; safe to drop`)}`,
        )
      } catch (error) {
        throw pgError(error, `creating ${scratchName}`)
      } finally {
        await client.end().catch(() => {})
      }
    })

    // 3. pg_restore.
    await ctx.steps.run(scope, 'restore', `pg_restore into ${scratchName}`, async () => {
      const jobs = Math.max(1, Math.min(4, os.availableParallelism()))
      const res = await execa(restoreBin, pgRestoreArgs(scratch, jobs, dumpFile), {
        env: await pgToolEnv(scratch, ctx.workDir, `${ds.name}-restore`, ctx.env),
        extendEnv: false,
        cancelSignal: ctx.signal,
        reject: false,
      })
      throwIfAborted(ctx.signal)
      assertPgToolStarted(res, restoreBin)
      if (res.exitCode !== 0)
        throw new RetailOpsError(
          RESTORE_FAILED,
          `pg_restore failed (exit ${res.exitCode}): ${String(res.stderr).trim().split('\n').slice(-3).join(' ')}`,
        )
      evidence.pgRestore = (
        await execa(restoreBin, ['--version'], {env: pgPlainEnv(ctx.env), extendEnv: false})
      ).stdout.trim()
    })

    // 4. Validation, read-only.
    const validations = await validateScratch(ds, scratch, ctx, evidence, sourceValues)

    // The restored data's newest point: the newest of the recoveryPoint queries (each is a lower
    // bound on the snapshot's time).
    const points = validations
      .map((v) => v.recoveryPoint)
      .filter((p): p is string => Boolean(p))
      .map((p) => new Date(p))
    if (r.mode === 'pg-dump' && backup) {
      // From a backup, the RPO is the backup's own point in time, not the age of its newest row.
      recoveryPoint = new Date(backup.time)
      recoveryPointSource = backup.timeSource
    } else if (points.length > 0) {
      recoveryPoint = new Date(Math.max(...points.map((p) => p.getTime())))
      recoveryPointSource = `validation ${validations
        .filter((v) => v.recoveryPoint)
        .map((v) => v.name)
        .join(', ')}`
    }
    return {
      target: `${scratchName} on ${serverOf(scratch)}`,
      recoveryPoint,
      recoveryPointSource,
      validations,
      evidence,
      ...(backup ? {backup} : {}),
    }
  },
}

/** The validations on a restored copy, read-only (a step of the drill's timeline). */
export async function validateScratch(
  ds: DatastoreConfig,
  scratch: PgTarget,
  ctx: DrillContext,
  evidence: Record<string, unknown>,
  sourceValues: Map<string, string | null>,
): Promise<ValidationResult[]> {
  return ctx.steps.run(
    ds.name,
    'validate',
    `${ds.validation.length} validation quer${ds.validation.length === 1 ? 'y' : 'ies'}`,
    async () => {
      const client = await pgConnect(scratch, 'retailops-dr', ctx.signal)
      try {
        await client.query(`SET statement_timeout = ${STATEMENT_TIMEOUT_MS}`)
        await client.query('BEGIN READ ONLY')
        const tables = await client.query<{n: string}>(
          "select count(*) as n from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')",
        )
        evidence.restoredTables = Number(tables.rows[0].n)
        const results: ValidationResult[] = []
        for (const v of ds.validation) {
          throwIfAborted(ctx.signal)
          results.push(await runValidation(client, v, sourceValues.get(v.name), ctx.clock))
        }
        await client.query('COMMIT')
        return results
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw pgError(error, `validating ${scratch.database}`)
      } finally {
        await client.end().catch(() => {})
      }
    },
    (results) => `${results.filter((x) => x.passed).length}/${results.length} passed`,
  )
}

async function firstValue(client: pg.Client, query: string): Promise<string | null> {
  const res = await client.query({text: query, rowMode: 'array'})
  return valueText((res.rows[0] as unknown[] | undefined)?.[0])
}

async function runValidation(
  client: pg.Client,
  v: Validation,
  sourceValue: string | null | undefined,
  clock: () => number,
): Promise<ValidationResult> {
  const started = clock()
  const base = {name: v.name, query: v.query, expect: v.expect}
  let raw: unknown
  try {
    await client.query('SAVEPOINT validation')
    const res = await client.query({text: v.query, rowMode: 'array'})
    raw = (res.rows[0] as unknown[] | undefined)?.[0]
    await client.query('RELEASE SAVEPOINT validation')
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT validation').catch(() => {})
    return {
      ...base,
      value: null,
      passed: false,
      message: `query failed: ${(error as Error).message}`,
      durationMs: clock() - started,
    }
  }
  const value = valueText(raw)
  const check = checkExpectation(value, v.expect, sourceValue)
  let recoveryPoint: string | undefined
  if (v.recoveryPoint) {
    const point = toRecoveryPoint(raw)
    if (point) recoveryPoint = point.toISOString()
    else
      return {
        ...base,
        value,
        sourceValue,
        passed: false,
        message: `recoveryPoint query returned ${value ?? 'NULL'}, not a timestamp (an empty table?)`,
        durationMs: clock() - started,
      }
  }
  return {
    ...base,
    value,
    ...(sourceValue === undefined ? {} : {sourceValue}),
    recoveryPoint,
    passed: check.passed,
    message: check.message,
    durationMs: clock() - started,
  }
}

export async function dropDatabase(
  admin: PgTarget,
  name: string,
): Promise<{status: 'removed' | 'absent'; detail?: string}> {
  if (!isDrillDatabase(name)) throw new Error(`refusing to drop ${name}: not a drill database`)
  const client = await pgConnect(admin, 'retailops-dr-cleanup')
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [name])
    if (exists.rowCount === 0) return {status: 'absent'}
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`)
    return {status: 'removed'}
  } finally {
    await client.end().catch(() => {})
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}
