import {existsSync, readdirSync} from 'node:fs'
import path from 'node:path'

import type pg from 'pg'

import {NotFoundError, PermissionError, RetailOpsError, UnavailableError} from '../errors/index.js'
import {registerSecret} from '../ui/output.js'

/** A PostgreSQL connection URL, split so the password never reaches a command line or a report. */
export interface PgTarget {
  /** postgres://user@host:port/db?params, without the password. */
  url: string
  password?: string
  database: string
  /** user@host:port/db for reports. */
  display: string
}

export function pgTarget(connection: string, database?: string): PgTarget {
  let u: URL
  try {
    u = new URL(connection)
  } catch {
    throw new RetailOpsError(
      'CONFIG',
      'A PostgreSQL URL in the configuration or environment is not a URL (expected postgres://user:password@host:port/database).',
    )
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) {
    throw new RetailOpsError('CONFIG', `A PostgreSQL URL must start with postgres:// (got ${u.protocol}//).`)
  }
  // A password may also come as ?password=…: it leaves the URL too, so the URL can go on a
  // command line (pg_dump --dbname) without it.
  const queryPassword = u.searchParams.get('password') ?? undefined
  const password = u.password ? decodeURIComponent(u.password) : queryPassword
  registerSecret(password)
  registerSecret(u.password)
  registerSecret(queryPassword)
  u.password = ''
  u.searchParams.delete('password')
  if (u.searchParams.has('sslpassword')) {
    registerSecret(u.searchParams.get('sslpassword') ?? undefined)
    throw new RetailOpsError(
      'CONFIG',
      'A PostgreSQL URL carries ?sslpassword=…, which pg_dump and pg_restore would show on their command line (visible in ps).',
      {
        nextSteps: [
          'Use a client key without a passphrase, readable only by you (sslkey=… with mode 0600), or drop sslpassword from the URL.',
        ],
      },
    )
  }
  if (database) u.pathname = `/${encodeURIComponent(database)}`
  const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres'
  return {
    url: u.toString(),
    password,
    database: db,
    display: `${decodeURIComponent(u.username) || '(default user)'}@${u.host}/${db}`,
  }
}

/** The same server, another database. */
export function withDatabase(target: PgTarget, database: string): PgTarget {
  const u = new URL(target.url)
  u.pathname = `/${encodeURIComponent(database)}`
  return {
    url: u.toString(),
    password: target.password,
    database,
    display: target.display.replace(/\/[^/]*$/, `/${database}`),
  }
}

/** host:port of a target, to tell whether two targets are on one server. */
export function serverOf(target: PgTarget): string {
  const u = new URL(target.url)
  return `${u.hostname}:${u.port || '5432'}`
}

/**
 * A connected client. With a signal, an abort closes the connection, so a long query stops the
 * drill at once (the scratch database's DROP ... WITH (FORCE) ends whatever still runs server-side).
 */
export async function pgConnect(
  target: PgTarget,
  applicationName = 'retailops-dr',
  signal?: AbortSignal,
): Promise<pg.Client> {
  const {default: pgModule} = await import('pg')
  // node-postgres lets the connection string override a separate password option, so the
  // password goes into the in-process URL (never onto a command line or into a report).
  const url = new URL(target.url)
  if (target.password !== undefined) url.password = encodeURIComponent(target.password)
  const client = new pgModule.Client({
    connectionString: url.toString(),
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    await client.end().catch(() => {})
    throw pgError(error, `connecting to ${target.display}`)
  }
  if (signal) {
    const onAbort = () => void client.end().catch(() => {})
    signal.addEventListener('abort', onAbort, {once: true})
    client.once('end', () => signal.removeEventListener('abort', onAbort))
  }
  return client
}

/**
 * What identifies a PostgreSQL server whatever address reaches it: its system identifier (from
 * pg_control_system(), which needs pg_monitor or superuser), else its postmaster's start time,
 * port and version (visible to everyone, and as good as unique).
 */
export async function serverIdentity(client: pg.Client): Promise<string> {
  try {
    const res = await client.query<{id: string}>('select system_identifier::text as id from pg_control_system()')
    return `system identifier:${res.rows[0].id}`
  } catch {
    const res = await client.query<{id: string}>(
      "select pg_postmaster_start_time()::text || ' ' || coalesce(inet_server_port()::text, 'socket') || ' ' || version() as id",
    )
    return `postmaster start time, port and version:${res.rows[0].id}`
  }
}

export function pgError(error: unknown, doing: string): RetailOpsError {
  if (error instanceof RetailOpsError) return error
  const e = error as {code?: string; message?: string}
  const message = `PostgreSQL error while ${doing}: ${e.message ?? String(error)}`
  if (e.code === '28P01' || e.code === '28000' || e.code === '42501') {
    return new PermissionError(message, {
      nextSteps: [
        'Check the user and password in the connection URL, and that the user may CREATE DATABASE on the restore server.',
      ],
      cause: error,
    })
  }
  if (e.code === '3D000')
    return new NotFoundError(message, {nextSteps: ['Check the database name in datastores[].postgres.'], cause: error})
  if (
    (e.code && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|ECONNRESET)$/.test(e.code)) ||
    /timeout|terminated unexpectedly/i.test(e.message ?? '')
  ) {
    return new UnavailableError(message, {
      nextSteps: [
        'Check PostgreSQL is running (for the sandbox: `bash scripts/sandbox.sh status`) and the URL in DATABASE_URL or datastores[].postgres.',
      ],
      cause: error,
    })
  }
  return new RetailOpsError('INTERNAL', message, {cause: error})
}

/**
 * pg_dump and pg_restore must be at least as new as the server. RETAILOPS_PG_BIN wins; then
 * Debian's /usr/lib/postgresql/<major>/bin for the server's major version or newer; then PATH.
 */
export function pgBinary(
  name: 'pg_dump' | 'pg_restore',
  serverMajor: number,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (env.RETAILOPS_PG_BIN) return path.join(env.RETAILOPS_PG_BIN, name)
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .map(Number)
      .filter((n) => Number.isInteger(n) && n >= serverMajor)
      .sort((a, b) => a - b)
    for (const major of majors) {
      const bin = path.join(root, String(major), 'bin', name)
      if (existsSync(bin)) return bin
    }
  }
  return name
}

/**
 * A pg tool that could not be started (not installed: ENOENT) is a missing prerequisite, not a
 * failed restore. A scheduled drill runs in the runner image, which has no PostgreSQL client
 * unless it was built on a base image that has one.
 */
export function assertPgToolStarted(result: {code?: string; failed?: boolean}, bin: string): void {
  if (result.code !== 'ENOENT') return
  throw new NotFoundError(
    `${bin} is not installed here (looked in RETAILOPS_PG_BIN, /usr/lib/postgresql/<major>/bin and PATH); PostgreSQL drills need pg_dump and pg_restore at least as new as the server.`,
    {
      nextSteps: [
        'Install the PostgreSQL client tools (Debian: postgresql-client-<major>), or point RETAILOPS_PG_BIN at their folder.',
        'For a scheduled drill (the runner image): build the runner on a Node 24 base image that has them, `retailops runner build --base-image <image with postgresql-client>`, and schedule again.',
      ],
    },
  )
}

/** A line of a libpq password file matching any server: ':' and '\\' escaped. */
export function passfileLine(password: string): string {
  return `*:*:*:*:${password.replaceAll('\\', '\\\\').replaceAll(':', '\\:')}\n`
}

const PG_SECRET_ENV = ['PGPASSWORD', 'PGPASSFILE']

/**
 * The environment for pg_dump/pg_restore. The password never goes on a command line (argv is
 * world-readable in ps and /proc) nor in PGPASSWORD (libpq advises against it): it goes in a
 * password file, mode 0600, in the drill's private work folder, named by PGPASSFILE. Inherited
 * PGPASSWORD/PGPASSFILE are dropped so they cannot override it.
 */
export async function pgToolEnv(
  target: PgTarget,
  workDir: string,
  label: string,
  base: NodeJS.ProcessEnv = process.env,
): Promise<Record<string, string>> {
  const env = pgPlainEnv(base)
  if (target.password !== undefined) {
    const {writeFile, rm} = await import('node:fs/promises')
    const file = path.join(workDir, `${label}.pgpass`)
    await rm(file, {force: true})
    await writeFile(file, passfileLine(target.password), {mode: 0o600, flag: 'wx'})
    env.PGPASSFILE = file
  }
  return env
}

/** The environment for a pg tool that connects nowhere (--version, --list): no password of any kind. */
export function pgPlainEnv(base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !PG_SECRET_ENV.includes(k)) env[k] = v
  return env
}

/** pg_dump's arguments: the URL without its password. */
export function pgDumpArgs(source: PgTarget, snapshot: string, file: string): string[] {
  return ['--format=custom', `--snapshot=${snapshot}`, `--file=${file}`, `--dbname=${source.url}`]
}

/** pg_restore's arguments: the URL without its password. */
export function pgRestoreArgs(scratch: PgTarget, jobs: number, file: string): string[] {
  return ['--no-owner', '--no-privileges', '--exit-on-error', `--jobs=${jobs}`, `--dbname=${scratch.url}`, file]
}
