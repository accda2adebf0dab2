// Configuration from environment variables, read once at start-up. A bad value is a
// start-up error that names the variable and says what is expected: a service that
// silently falls back to a default hides a broken deployment.

export type Env = Record<string, string | undefined>

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error']

export interface FaultConfig {
  /** Share of business requests answered 500, 0..1. */
  errorRate: number
  /** Latency added to every business request, in milliseconds. */
  latencyMs: number
  /** Extra latency drawn uniformly from [0, latencyJitterMs]. */
  latencyJitterMs: number
}

export interface BaseConfig {
  service: string
  version: string
  host: string
  port: number
  logLevel: LogLevel
  fault: FaultConfig
  /** Readiness stays false this long after listening (simulates cache warm-up). */
  startupDelayMs: number
  /** After SIGTERM: keep serving with readiness false this long, so endpoints can drop the pod. */
  shutdownDelayMs: number
  /** After the delay: how long in-flight requests may take to finish before they are cut. */
  shutdownTimeoutMs: number
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name]
  if (value === undefined) return undefined
  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}

export function envString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback
}

export function envNumber(
  env: Env,
  name: string,
  fallback: number,
  limits: {min?: number; max?: number; integer?: boolean} = {},
): number {
  const value = raw(env, name)
  if (value === undefined) return fallback
  const parsed = Number(value)
  const {min = -Infinity, max = Infinity, integer = false} = limits
  if (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed)) || parsed < min || parsed > max) {
    const kind = integer ? 'an integer' : 'a number'
    const range = `${Number.isFinite(min) ? ` >= ${min}` : ''}${Number.isFinite(max) ? ` and <= ${max}` : ''}`
    throw new ConfigError(`${name}=${JSON.stringify(value)} is invalid: expected ${kind}${range}`)
  }
  return parsed
}

export function envUrl(env: Env, name: string, fallback: string): string {
  const value = raw(env, name) ?? fallback
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`${name}=${JSON.stringify(value)} is invalid: expected an absolute http(s) URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name}=${JSON.stringify(value)} is invalid: expected an http or https URL`)
  }
  return value.replace(/\/+$/, '')
}

export function loadBaseConfig(service: string, env: Env = process.env): BaseConfig {
  const logLevel = envString(env, 'LOG_LEVEL', 'info').toLowerCase()
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL=${JSON.stringify(logLevel)} is invalid: expected one of ${LOG_LEVELS.join(', ')}`)
  }
  // In a cluster the endpoints controller needs a moment to take a terminating pod out of
  // the Service; outside one there is nobody to wait for.
  const inCluster = raw(env, 'KUBERNETES_SERVICE_HOST') !== undefined
  return {
    service,
    version: envString(env, 'APP_VERSION', 'dev'),
    host: envString(env, 'HOST', '0.0.0.0'),
    port: envNumber(env, 'PORT', 8080, {min: 0, max: 65_535, integer: true}),
    logLevel: logLevel as LogLevel,
    fault: {
      errorRate: envNumber(env, 'FAULT_ERROR_RATE', 0, {min: 0, max: 1}),
      latencyMs: envNumber(env, 'FAULT_LATENCY_MS', 0, {min: 0, max: 600_000, integer: true}),
      latencyJitterMs: envNumber(env, 'FAULT_LATENCY_JITTER_MS', 0, {min: 0, max: 600_000, integer: true}),
    },
    startupDelayMs: envNumber(env, 'STARTUP_DELAY_MS', 0, {min: 0, max: 600_000, integer: true}),
    shutdownDelayMs: envNumber(env, 'SHUTDOWN_DELAY_MS', inCluster ? 5_000 : 0, {min: 0, max: 600_000, integer: true}),
    shutdownTimeoutMs: envNumber(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, {min: 0, max: 600_000, integer: true}),
    maxBodyBytes: envNumber(env, 'MAX_BODY_BYTES', 1_048_576, {min: 1, integer: true}),
  }
}
