import {execFileSync} from 'node:child_process'
import {accessSync, constants, existsSync, statSync} from 'node:fs'
import {chmod, chown, copyFile, mkdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {DatastoreConfig} from '../../config/schema.js'
import {NotFoundError, RetailOpsError} from '../../errors/index.js'
import {sleep} from '../../kubernetes/wait.js'
import {parseLocation, s3Endpoint} from '../../objectstore/location.js'
import {throwIfAborted} from '../../ui/context.js'
import {
  backupTooOld,
  type BackupInfo,
  newestPgBackRestBackup,
  parsePgBackRestInfo,
  type PgBackRestBackup,
} from '../backups.js'
import {drillResourceName} from '../naming.js'
import {pgConnect, type PgTarget} from '../pg.js'
import type {ValidationResult} from '../types.js'
import {type DrillContext, type PlanContext, type ProviderPlan, type ProviderResult, RESTORE_FAILED} from './types.js'

/**
 * runuser by its full path: it lives in the sbin folders, which the minimal PATH of a cron job or
 * a CI runner (/usr/local/bin:/usr/bin:/bin) leaves out.
 */
export function runuser(): string {
  return ['/usr/sbin/runuser', '/sbin/runuser'].find((file) => existsSync(file)) ?? 'runuser'
}

type BackupConfig = NonNullable<NonNullable<DatastoreConfig['postgres']>['backup']>

const SCRATCH_PORT = 5432
const RECOVERY_TIMEOUT_MS = 15 * 60_000

/**
 * The repository options pgBackRest gets for a location: posix for a directory, s3 for s3://bucket/prefix.
 * caFile is the absolute path of postgres.backup.caFile: the caller passes it as
 * --repo1-storage-ca-file (the drill hands pgBackRest a copy it can read).
 */
export function pgBackRestRepoArgs(
  cfg: Pick<BackupConfig, 'location' | 'endpoint' | 'region' | 'verifyTls' | 'caFile'>,
  baseDir: string,
  env: NodeJS.ProcessEnv,
): {args: string[]; env: Record<string, string>; problems: string[]; caFile?: string} {
  const problems: string[] = []
  if (!cfg.location) return {args: [], env: {}, problems: ['postgres.backup.location is not set']}
  const loc = parseLocation(cfg.location, baseDir)
  if (loc.kind === 'directory') {
    if (cfg.caFile)
      problems.push(`postgres.backup.caFile is for an s3:// repository; ${cfg.location} is a directory (remove caFile)`)
    return {args: ['--repo1-type=posix', `--repo1-path=${loc.dir}`], env: {}, problems}
  }
  let caFile: string | undefined
  if (cfg.caFile) {
    caFile = path.resolve(baseDir, cfg.caFile)
    if (cfg.verifyTls === false)
      problems.push(
        'postgres.backup.caFile is set but verifyTls is false: nothing would be checked against it (remove one of them)',
      )
    else if (!isReadableFile(caFile))
      problems.push(
        `postgres.backup.caFile ${caFile} is not a readable file (the PEM CA certificate of the store's TLS certificate)`,
      )
  }
  const endpoint = s3Endpoint({endpoint: cfg.endpoint, env})
  const args = [
    '--repo1-type=s3',
    `--repo1-s3-bucket=${loc.bucket}`,
    `--repo1-path=/${loc.prefix.replace(/\/+$/, '')}`,
    `--repo1-s3-region=${cfg.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1'}`,
  ]
  if (endpoint) {
    const u = new URL(endpoint)
    // pgBackRest speaks to S3 over TLS only.
    if (u.protocol !== 'https:')
      problems.push(
        `pgBackRest reaches S3 over TLS only: the endpoint ${endpoint} is not https:// (set postgres.backup.endpoint to the store's TLS address)`,
      )
    args.push(`--repo1-s3-endpoint=${u.hostname}`, '--repo1-s3-uri-style=path')
    if (u.port) args.push(`--repo1-storage-port=${u.port}`)
  } else args.push(`--repo1-s3-endpoint=s3.${cfg.region ?? env.AWS_REGION ?? 'us-east-1'}.amazonaws.com`)
  if (cfg.verifyTls === false) args.push('--no-repo1-storage-verify-tls')
  // Keys through pgBackRest's environment options, never its command line (ps shows that).
  const keys: Record<string, string> = {}
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    keys.PGBACKREST_REPO1_S3_KEY = env.AWS_ACCESS_KEY_ID
    keys.PGBACKREST_REPO1_S3_KEY_SECRET = env.AWS_SECRET_ACCESS_KEY
    if (env.AWS_SESSION_TOKEN) keys.PGBACKREST_REPO1_S3_TOKEN = env.AWS_SESSION_TOKEN
  } else keys.PGBACKREST_REPO1_S3_KEY_TYPE = 'auto'
  return {args, env: keys, problems, ...(caFile ? {caFile} : {})}
}

function isReadableFile(file: string): boolean {
  try {
    accessSync(file, constants.R_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

export function pgBackRestPlan(
  ds: DatastoreConfig,
  ctx: PlanContext,
  problems: string[],
  warnings: string[],
): ProviderPlan {
  const cfg = ds.postgres!.backup!
  const stanza = cfg.stanza ?? ds.name
  let repoProblems: string[] = []
  try {
    repoProblems = pgBackRestRepoArgs(cfg, ctx.project.dir, ctx.env).problems
  } catch {
    // the location's own problem is already listed
  }
  return {
    source: `pgBackRest stanza ${stanza} in ${cfg.location ?? '(no location)'}`,
    target: `a scratch PostgreSQL server (data directory and socket private to the drill)`,
    steps: [
      `pgbackrest info: the newest backup pgBackRest completed; refuse it if older than the RPO target and no WAL was archived after it`,
      `pgbackrest restore into a scratch data directory (pgBackRest checks every file against its manifest)${cfg.targetTime ? `, to ${cfg.targetTime} (--type=time)` : ', replaying all archived WAL'}`,
      'start a scratch server on its own socket only (no TCP, archive_mode=off: nothing is pushed to the repository) and wait for recovery to end',
      `run ${ds.validation.length} validation quer${ds.validation.length === 1 ? 'y' : 'ies'} in a read-only transaction`,
      'stop the scratch server and delete its data directory',
    ],
    problems: [...problems, ...repoProblems.map((p) => `${ds.name}: ${p}`)],
    refusals: [],
    warnings,
  }
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

/** uid and gid of an operating-system user (the scratch server cannot run as root). */
function userIds(name: string): {uid: number; gid: number} {
  try {
    const uid = Number(execFileSync('id', ['-u', name], {encoding: 'utf8'}).trim())
    const gid = Number(execFileSync('id', ['-g', name], {encoding: 'utf8'}).trim())
    return {uid, gid}
  } catch {
    throw new NotFoundError(
      `The drill runs as root, and PostgreSQL will not: it runs the scratch server as ${name}, which does not exist.`,
      {nextSteps: ['Set postgres.backup.osUser to an existing user, or run the drill as a non-root user.']},
    )
  }
}

function pgServerBin(name: 'pg_ctl', major: string | undefined, env: NodeJS.ProcessEnv): string {
  if (env.RETAILOPS_PG_BIN) return path.join(env.RETAILOPS_PG_BIN, name)
  const bin = `/usr/lib/postgresql/${major ?? '15'}/bin/${name}`
  if (!existsSync(bin))
    throw new NotFoundError(
      `${bin} is missing: the backup is of PostgreSQL ${major ?? '?'}, and the scratch server needs that major version's server binaries.`,
      {nextSteps: [`Install postgresql-${major ?? '15'} (Debian) or set RETAILOPS_PG_BIN to its bin folder.`]},
    )
  return bin
}

/**
 * Restores the newest pgBackRest backup into a scratch data directory, starts a scratch server on
 * a private socket, waits for recovery (point in time: all archived WAL, or postgres.backup.targetTime),
 * validates, and registers the server's stop and the directory's removal before either exists.
 */
export async function restorePgBackRest(
  ds: DatastoreConfig,
  ctx: DrillContext,
  validate: (target: PgTarget, evidence: Record<string, unknown>) => Promise<ValidationResult[]>,
): Promise<ProviderResult> {
  const cfg = ds.postgres!.backup!
  const stanza = cfg.stanza ?? ds.name
  const scope = ds.name
  const {execa} = await import('execa')
  const repo = pgBackRestRepoArgs(cfg, ctx.project.dir, ctx.env)
  if (repo.problems.length) throw new RetailOpsError('CONFIG', `${ds.name}: ${repo.problems.join('; ')}`)
  const asRoot = isRoot()
  const ids = asRoot ? userIds(cfg.osUser) : undefined
  const base = ctx.env.RETAILOPS_DR_SCRATCH_DIR
    ? path.resolve(ctx.env.RETAILOPS_DR_SCRATCH_DIR)
    : asRoot
      ? '/var/lib/retailops/dr-scratch'
      : ctx.workDir
  const dir = path.join(base, drillResourceName(ctx.drillId, ds.name))
  const data = path.join(dir, 'data')
  const common = [
    `--stanza=${stanza}`,
    `--config=${path.join(dir, 'pgbackrest.conf')}`,
    `--lock-path=${path.join(dir, 'lock')}`,
    `--log-path=${path.join(dir, 'log')}`,
    '--log-level-file=off',
    '--log-level-console=warn',
    '--log-level-stderr=off',
    ...repo.args,
  ]
  const toolEnv = {
    PATH: ctx.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    ...repo.env,
  }
  // As root, pgBackRest and the server run as osUser (PostgreSQL refuses root).
  const run = (file: string, args: string[], extra: {timeout?: number} = {}) =>
    execa(asRoot ? runuser() : file, asRoot ? ['-u', cfg.osUser, '--', file, ...args] : args, {
      env: toolEnv,
      extendEnv: false,
      cancelSignal: ctx.signal,
      reject: false,
      ...(extra.timeout ? {timeout: extra.timeout} : {}),
      cwd: dir,
    })
  const evidence: Record<string, unknown> = {stanza, repository: cfg.location, scratchDataDirectory: data}
  const location = cfg.location!

  // The scratch directory (and with it the data directory, socket and logs), removed last.
  ctx.cleanup.push({
    kind: 'scratch data directory',
    resource: dir,
    action: 'delete',
    run: async () => {
      const existed = existsSync(dir)
      await rm(dir, {recursive: true, force: true})
      return {status: existed ? 'removed' : 'absent'}
    },
  })
  if (asRoot) {
    await mkdir(base, {recursive: true, mode: 0o711})
    await chmod(base, 0o711)
  } else await mkdir(base, {recursive: true, mode: 0o700})
  await mkdir(dir, {mode: 0o700})
  await mkdir(path.join(dir, 'lock'), {mode: 0o700})
  await mkdir(path.join(dir, 'log'), {mode: 0o700})
  await writeFile(path.join(dir, 'pgbackrest.conf'), '# retailops dr drill: every option is on the command line\n', {
    mode: 0o600,
  })
  const owned = [dir, path.join(dir, 'lock'), path.join(dir, 'log'), path.join(dir, 'pgbackrest.conf')]
  // A copy of the store's CA in the private directory: osUser may not be able to read the original
  // (a CA under root's home, say).
  if (repo.caFile) {
    const ca = path.join(dir, 'repo-ca.pem')
    await copyFile(repo.caFile, ca)
    await chmod(ca, 0o600)
    owned.push(ca)
    common.push(`--repo1-storage-ca-file=${ca}`)
    evidence.repositoryCaFile = repo.caFile
  }
  if (ids) for (const p of owned) await chown(p, ids.uid, ids.gid)

  // 1. The newest backup pgBackRest finished, from its own manifest.
  const chosen = await ctx.steps.run(
    scope,
    'select-backup',
    `pgbackrest info --stanza=${stanza}`,
    async () => {
      const res = await run('pgbackrest', [...common, '--output=json', 'info'])
      throwIfAborted(ctx.signal)
      if ((res as {code?: string}).code === 'ENOENT' || (res.exitCode === 127 && !asRoot))
        throw new NotFoundError('pgbackrest is not installed (Debian package pgbackrest).')
      if (res.exitCode !== 0)
        throw new RetailOpsError(
          'UNAVAILABLE',
          `pgbackrest info failed (exit ${res.exitCode}): ${tail(res.stderr || res.stdout)}`,
          {nextSteps: [`Check the repository ${location} and the stanza ${stanza}.`]},
        )
      const info = parsePgBackRestInfo(String(res.stdout), stanza)
      // 99: pgBackRest could not read the repository (TLS, keys, endpoint); it says why per repository.
      if (info.status.code === 99)
        throw new RetailOpsError(
          'UNAVAILABLE',
          `pgbackrest info could not read the repository ${location}: ${info.status.message}`,
          {
            nextSteps: [
              repo.args.includes('--repo1-type=posix')
                ? `Check that ${asRoot ? cfg.osUser : 'this user'} can read the repository directory ${location}.`
                : "Check postgres.backup.endpoint, caFile (the CA that signed the store's certificate) and the store's keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).",
            ],
          },
        )
      evidence.pgbackrestStatus = info.status
      evidence.pgbackrestArchive = info.archive
      const newest = newestPgBackRestBackup(info)
      if (!newest)
        throw new RetailOpsError(
          RESTORE_FAILED,
          `No backup to restore: pgBackRest's stanza ${stanza} in ${location} has no completed backup (${info.status.message}).`,
        )
      return {info, newest}
    },
    (c) => `${c.newest.label} (${c.newest.type}, stopped ${c.newest.stoppedAt.toISOString()})`,
  )
  const newest: PgBackRestBackup = chosen.newest
  const walAfter = Boolean(chosen.info.archive?.max && newest.walStop && chosen.info.archive.max > newest.walStop)
  const age = backupTooOld(newest.stoppedAt, ctx.drillStartMs, ctx.targets.rpoMs, ctx.targets.rpo)
  const backup: BackupInfo = {
    kind: 'pgbackrest',
    location,
    name: `${stanza}/${newest.label}`,
    time: newest.stoppedAt.toISOString(),
    timeSource: "pgBackRest's backup stop time (its manifest)",
    ...(newest.repoSizeBytes === undefined ? {} : {sizeBytes: newest.repoSizeBytes}),
    checksum: {
      algorithm: 'pgbackrest',
      expectedFrom: "pgBackRest's backup manifest (every file checked on restore)",
      status: 'unverified',
    },
    ageMs: age.ageMs,
    rpoTargetMs: ctx.targets.rpoMs,
    pointInTime: {target: cfg.targetTime ?? 'end of archived WAL', walArchived: walAfter},
  }
  Object.assign(evidence, {
    backupLabel: newest.label,
    backupType: newest.type,
    backupStartedAt: newest.startedAt.toISOString(),
    backupStoppedAt: newest.stoppedAt.toISOString(),
    walStart: newest.walStart,
    walStop: newest.walStop,
  })
  // Too old, and no WAL archived since that could bring it closer: not worth restoring.
  if (age.tooOld && !walAfter) {
    ctx.out.warn(`${ds.name}: ${age.finding}`)
    return {
      target: `scratch server in ${dir} (not created)`,
      recoveryPoint: newest.stoppedAt,
      recoveryPointSource: backup.timeSource,
      validations: [],
      evidence,
      backup,
      refused: age.finding,
    }
  }

  // 2. pgbackrest restore into the scratch data directory.
  await ctx.steps.run(scope, 'restore', `pgbackrest restore ${newest.label}`, async () => {
    await mkdir(data, {mode: 0o700})
    if (ids) await chown(data, ids.uid, ids.gid)
    const args = [
      ...common,
      `--pg1-path=${data}`,
      `--set=${newest.label}`,
      // The restored server must never archive into the source's repository.
      '--archive-mode=off',
      // A file that fails its check on a local repository fails again: no retries 15 s apart.
      ...(repo.args.includes('--repo1-type=posix') ? ['--job-retry=0'] : []),
      ...(cfg.targetTime
        ? // PostgreSQL's recovery_target_time does not take ISO 8601's T and Z.
          ['--type=time', `--target=${pgTimestamp(cfg.targetTime)}`, '--target-action=promote']
        : ['--type=default']),
      'restore',
    ]
    const res = await run('pgbackrest', args)
    throwIfAborted(ctx.signal)
    if (res.exitCode !== 0) {
      backup.checksum.status = 'mismatch'
      throw new RetailOpsError(
        RESTORE_FAILED,
        `pgbackrest restore of ${newest.label} failed (exit ${res.exitCode}): ${tail(res.stderr || res.stdout)}`,
        {details: {backup}},
      )
    }
    backup.checksum.status = 'verified'
    evidence.pgbackrestVersion = String((await run('pgbackrest', ['version'])).stdout).trim()
  })

  // 3. The scratch server: its own config, a socket in the private directory, no TCP, no archiving.
  const pgCtl = pgServerBin('pg_ctl', chosen.info.dbVersion, ctx.env)
  const conf = path.join(dir, 'postgresql.conf')
  const hba = path.join(dir, 'pg_hba.conf')
  await writeFile(conf, '# retailops dr drill scratch server\n', {mode: 0o600})
  // Trust over the socket only: the socket's directory is private to the drill (0700).
  await writeFile(hba, 'local all all trust\n', {mode: 0o600})
  if (ids) for (const p of [conf, hba]) await chown(p, ids.uid, ids.gid)
  const options = [
    `-c config_file=${conf}`,
    `-c hba_file=${hba}`,
    "-c listen_addresses=''",
    `-c port=${SCRATCH_PORT}`,
    `-c unix_socket_directories=${dir}`,
    '-c archive_mode=off',
    // No connections until recovery has ended: a hot standby would need settings at least the
    // source's (max_connections, max_wal_senders, ...), which the drill does not know.
    '-c hot_standby=off',
  ].join(' ')
  ctx.cleanup.push({
    kind: 'scratch server',
    resource: `postgres in ${data}`,
    action: 'stop',
    run: async () => {
      if (!existsSync(path.join(data, 'postmaster.pid'))) return {status: 'absent'}
      const res = await run(pgCtl, ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop'])
      return res.exitCode === 0 ? {status: 'removed'} : {status: 'failed', detail: tail(res.stderr || res.stdout)}
    },
  })
  const target: PgTarget = {
    url: `postgresql://${encodeURIComponent(cfg.dbUser)}@localhost/${encodeURIComponent(databaseOf(ds))}?host=${encodeURIComponent(dir)}&port=${SCRATCH_PORT}`,
    database: databaseOf(ds),
    display: `${cfg.dbUser}@scratch server (${dir})/${databaseOf(ds)}`,
  }
  const recovered = await ctx.steps.run(
    scope,
    'start-server',
    'start the scratch server and wait for recovery to end',
    async () => {
      const started = await run(pgCtl, [
        '-D',
        data,
        '-l',
        path.join(dir, 'server.log'),
        '-w',
        '-t',
        '300',
        '-o',
        options,
        'start',
      ])
      throwIfAborted(ctx.signal)
      if (started.exitCode !== 0)
        throw new RetailOpsError(
          RESTORE_FAILED,
          `The restored data directory did not start as a server (pg_ctl exit ${started.exitCode}): ${tail(started.stderr || started.stdout)} ${serverLogTail(dir)}`,
        )
      const admin = {...target, url: target.url.replace(/\/[^/?]*\?/, '/postgres?'), database: 'postgres'}
      const deadline = ctx.clock() + RECOVERY_TIMEOUT_MS
      for (;;) {
        // "the database system is starting up" (57P03) while WAL is replayed.
        const client = await pgConnect(admin, 'retailops-dr', ctx.signal).catch((error: unknown) => {
          if (/starting up|not (yet )?accepting connections|in recovery/i.test((error as Error).message))
            return undefined
          throw error
        })
        if (client) {
          try {
            const res = await client.query<{recovering: boolean; replayed: Date | null}>(
              'select pg_is_in_recovery() as recovering, pg_last_xact_replay_timestamp() as replayed',
            )
            const row = res.rows[0]
            if (!row.recovering) return {replayed: row.replayed ?? undefined}
          } finally {
            await client.end().catch(() => {})
          }
        }
        if (!existsSync(path.join(data, 'postmaster.pid')))
          throw new RetailOpsError(RESTORE_FAILED, `The scratch server stopped during recovery. ${serverLogTail(dir)}`)
        if (ctx.clock() > deadline)
          throw new RetailOpsError(RESTORE_FAILED, `Recovery did not end within 15 minutes. ${serverLogTail(dir)}`)
        await sleep(500, ctx.signal)
      }
    },
    (r) =>
      r.replayed ? `recovered to ${r.replayed.toISOString()}` : 'recovered (no transaction replayed after the backup)',
  )
  // The data's point in time: the last transaction replayed from archived WAL, else the backup's stop.
  const point =
    recovered.replayed && recovered.replayed.getTime() > newest.stoppedAt.getTime()
      ? recovered.replayed
      : newest.stoppedAt
  backup.time = point.toISOString()
  backup.timeSource =
    point === newest.stoppedAt
      ? "pgBackRest's backup stop time (no later transaction in the archived WAL)"
      : 'the last transaction replayed from archived WAL (pg_last_xact_replay_timestamp)'
  backup.ageMs = Math.max(0, ctx.drillStartMs - point.getTime())
  backup.pointInTime = {...backup.pointInTime!, reachedAt: point.toISOString()}
  evidence.recoveredTo = point.toISOString()

  // 4. Validation.
  const validations = await validate(target, evidence)
  return {
    target: target.display,
    recoveryPoint: point,
    recoveryPointSource: backup.timeSource,
    validations,
    evidence,
    backup,
  }
}

/** 2026-12-07T01:48:33.841Z as 2026-12-07 01:48:33.841+00, the form recovery_target_time reads. */
export function pgTimestamp(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace('Z', '+00')
}

function databaseOf(ds: DatastoreConfig): string {
  return ds.postgres?.database ?? 'postgres'
}

function tail(text: unknown): string {
  return String(text ?? '')
    .trim()
    .split('\n')
    .slice(-3)
    .join(' ')
}

function serverLogTail(dir: string): string {
  try {
    const log = execFileSync('tail', ['-n', '5', path.join(dir, 'server.log')], {encoding: 'utf8'})
    return `Server log: ${log.trim().split('\n').join(' | ')}`
  } catch {
    return ''
  }
}
