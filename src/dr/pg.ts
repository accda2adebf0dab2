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
    throw new RetailOpsError('CONFIG', 'A PostgreSQL URL in the configuration or environment is not a URL (expected postgres://user:password@host:port/database).')
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) {
    throw new RetailOpsError('CONFIG', `A PostgreSQL URL must start with postgres:// (got ${u.protocol}//).`)
  }
  const password = u.password ? decodeURIComponent(u.password) : undefined
  registerSecret(password)
  registerSecret(u.password)
  u.password = ''
  if (database) u.pathname = `/${encodeURIComponent(database)}`
  const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres'
  return {url: u.toString(), password, database: db, display: `${decodeURIComponent(u.username) || '(default user)'}@${u.host}/${db}`}
}

/** The same server, another database. */
export function withDatabase(target: PgTarget, database: string): PgTarget {
  const u = new URL(target.url)
  u.pathname = `/${encodeURIComponent(database)}`
  return {url: u.toString(), password: target.password, database, display: target.display.replace(/\/[^/]*$/, `/${database}`)}
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
export async function pgConnect(target: PgTarget, applicationName = 'retailops-dr', signal?: AbortSignal): Promise<pg.Client> {
  const {default: pgModule} = await import('pg')
  // node-postgres lets the connection string override a separate password option, so the
  // password goes into the in-process URL (never onto a command line or into a report).
  const url = new URL(target.url)
  if (target.password !== undefined) url.password = encodeURIComponent(target.password)
  const client = new pgModule.Client({connectionString: url.toString(), application_name: applicationName, connectionTimeoutMillis: 10_000})
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

export function pgError(error: unknown, doing: string): RetailOpsError {
  if (error instanceof RetailOpsError) return error
  const e = error as {code?: string; message?: string}
  const message = `PostgreSQL error while ${doing}: ${e.message ?? String(error)}`
  if (e.code === '28P01' || e.code === '28000' || e.code === '42501') {
    return new PermissionError(message, {nextSteps: ['Check the user and password in the connection URL, and that the user may CREATE DATABASE on the restore server.'], cause: error})
  }
  if (e.code === '3D000') return new NotFoundError(message, {nextSteps: ['Check the database name in datastores[].postgres.'], cause: error})
  if (e.code && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|ECONNRESET)$/.test(e.code) || /timeout|terminated unexpectedly/i.test(e.message ?? '')) {
    return new UnavailableError(message, {nextSteps: ['Check PostgreSQL is running (for the sandbox: `bash scripts/sandbox.sh status`) and the URL in DATABASE_URL or datastores[].postgres.'], cause: error})
  }
  return new RetailOpsError('INTERNAL', message, {cause: error})
}

/**
 * pg_dump and pg_restore must be at least as new as the server. RETAILOPS_PG_BIN wins; then
 * Debian's /usr/lib/postgresql/<major>/bin for the server's major version or newer; then PATH.
 */
export function pgBinary(name: 'pg_dump' | 'pg_restore', serverMajor: number, env: NodeJS.ProcessEnv = process.env): string {
  if (env.RETAILOPS_PG_BIN) return path.join(env.RETAILOPS_PG_BIN, name)
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const majors = readdirSync(root).map(Number).filter((n) => Number.isInteger(n) && n >= serverMajor).sort((a, b) => a - b)
    for (const major of majors) {
      const bin = path.join(root, String(major), 'bin', name)
      if (existsSync(bin)) return bin
    }
  }
  return name
}

/** The environment for pg_dump/pg_restore: the password goes in PGPASSWORD, never on the command line. */
export function pgEnv(target: PgTarget): Record<string, string> {
  return target.password ? {PGPASSWORD: target.password} : {}
}
