// Structured JSON logs, one object a line on stdout, for the cluster's log collector.

import type {LogLevel} from './config.ts'

export type Fields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: Fields): void
  info(msg: string, fields?: Fields): void
  warn(msg: string, fields?: Fields): void
  error(msg: string, fields?: Fields): void
  child(fields: Fields): Logger
}

export interface LoggerOptions {
  level?: LogLevel
  fields?: Fields
  write?: (line: string) => void
  now?: () => Date
}

const RANK: Record<LogLevel, number> = {debug: 10, info: 20, warn: 30, error: 40}

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Fields = {name: value.name, message: value.message, stack: value.stack}
    if (value.cause !== undefined) out.cause = serialize(value.cause)
    return out
  }
  return value
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = RANK[options.level ?? 'info']
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`))
  const now = options.now ?? (() => new Date())
  const base = options.fields ?? {}

  const emit = (level: LogLevel, msg: string, fields?: Fields): void => {
    if (RANK[level] < threshold) return
    const record: Fields = {time: now().toISOString(), level, ...base, msg}
    if (fields) for (const [key, value] of Object.entries(fields)) record[key] = serialize(value)
    let line: string
    try {
      line = JSON.stringify(record)
    } catch {
      line = JSON.stringify({time: record.time, level, ...base, msg, logError: 'fields not serializable'})
    }
    write(line)
  }

  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({...options, fields: {...base, ...fields}}),
  }
}

/** A logger that drops everything: for tests that don't read logs. */
export const silentLogger: Logger = createLogger({write: () => {}})
