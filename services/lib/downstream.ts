// Calls to another service: JSON over fetch, a timeout on every attempt (AbortSignal.timeout),
// an optional overall deadline, bounded retries with jittered backoff for idempotent calls
// only (safe methods, or any method carrying an Idempotency-Key), and a circuit breaker that
// every attempt goes through. 4xx answers are the caller's business, not the dependency's
// failure: they return normally and count as successes for the breaker.

import {setTimeout as sleep} from 'node:timers/promises'
import {CircuitBreaker, CircuitOpenError} from './breaker.ts'
import type {BreakerOptions, BreakerState} from './breaker.ts'
import type {Logger} from './log.ts'
import type {Metrics} from './metrics.ts'

export type DownstreamFailure = 'timeout' | 'network' | 'status' | 'circuit_open'

export class DownstreamError extends Error {
  override name = 'DownstreamError'
  readonly downstream: string
  readonly kind: DownstreamFailure
  readonly status: number | undefined
  readonly retryAfterMs: number | undefined

  constructor(
    downstream: string,
    kind: DownstreamFailure,
    message: string,
    extra: {status?: number; retryAfterMs?: number; cause?: unknown} = {},
  ) {
    super(message, {cause: extra.cause})
    this.downstream = downstream
    this.kind = kind
    this.status = extra.status
    this.retryAfterMs = extra.retryAfterMs
  }
}

export interface DownstreamResponse<T = unknown> {
  status: number
  body: T
  headers: Headers
}

export interface CallOptions {
  body?: unknown
  idempotencyKey?: string
  requestId?: string
  /** X-Synthetic value of the request this call serves: a synthetic request stays synthetic downstream. */
  synthetic?: string
  /** Epoch ms after which no attempt starts and running ones are cut. */
  deadline?: number
}

export interface DownstreamOptions {
  name: string
  baseUrl: string
  /** Timeout of one attempt, in ms. */
  timeoutMs: number
  /** Extra attempts after the first, for idempotent calls only. */
  retries: number
  /** First backoff step, in ms; doubles each retry, capped at maxBackoffMs, full jitter. */
  backoffMs?: number
  maxBackoffMs?: number
  breaker?: Omit<BreakerOptions, 'name' | 'onStateChange'>
  log: Logger
  metrics?: Metrics
  fetch?: typeof fetch
  random?: () => number
}

export interface Downstream {
  readonly name: string
  readonly breaker: CircuitBreaker
  request<T = unknown>(method: string, path: string, options?: CallOptions): Promise<DownstreamResponse<T>>
}

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])
const STATE_VALUE: Record<BreakerState, number> = {closed: 0, open: 1, half_open: 2}

/** Metric instruments shared by every downstream of one service (prom-client names are per registry). */
const instrumentsByRegistry = new WeakMap<object, ReturnType<typeof createInstruments>>()

function createInstruments(metrics: Metrics) {
  return {
    requests: metrics.counter(
      'downstream_requests_total',
      'Attempts at calling a dependency, by outcome: a status code, timeout, network or circuit_open.',
      ['downstream', 'outcome'],
    ),
    duration: metrics.histogram('downstream_request_duration_seconds', 'Duration of one attempt at a dependency.', [
      'downstream',
    ]),
    retries: metrics.counter('downstream_retries_total', 'Retries of idempotent calls to a dependency.', [
      'downstream',
    ]),
    state: metrics.gauge('circuit_breaker_state', 'Circuit breaker state: 0 closed, 1 open, 2 half-open.', [
      'downstream',
    ]),
    transitions: metrics.counter('circuit_breaker_transitions_total', 'Circuit breaker state changes, by new state.', [
      'downstream',
      'to',
    ]),
  }
}

function instruments(metrics: Metrics | undefined) {
  if (!metrics) return undefined
  let found = instrumentsByRegistry.get(metrics.registry)
  if (!found) {
    found = createInstruments(metrics)
    instrumentsByRegistry.set(metrics.registry, found)
  }
  return found
}

export function createDownstream(options: DownstreamOptions): Downstream {
  const {name, log} = options
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const doFetch = options.fetch ?? fetch
  const random = options.random ?? Math.random
  const backoffMs = options.backoffMs ?? 50
  const maxBackoffMs = options.maxBackoffMs ?? 1_000
  const meters = instruments(options.metrics)
  meters?.state.set({downstream: name}, 0)

  const breaker = new CircuitBreaker({
    ...options.breaker,
    name,
    // Only the dependency's own failures trip the breaker.
    isFailure: (error) => error instanceof DownstreamError && error.kind !== 'circuit_open',
    onStateChange(from, to) {
      meters?.state.set({downstream: name}, STATE_VALUE[to])
      meters?.transitions.inc({downstream: name, to})
      const fields = {downstream: name, from, to}
      if (to === 'open') log.warn('circuit opened', fields)
      else log.info('circuit state changed', fields)
    },
  })

  async function attempt<T>(method: string, url: string, init: RequestInit, timeoutMs: number) {
    const started = process.hrtime.bigint()
    let outcome = 'network'
    try {
      const response = await doFetch(url, {...init, signal: AbortSignal.timeout(timeoutMs)})
      const text = await response.text()
      outcome = String(response.status)
      let body: unknown = text
      if (text !== '') {
        try {
          body = JSON.parse(text)
        } catch {
          // Keep the text: an error page from a proxy is still worth logging.
        }
      } else {
        body = undefined
      }
      if (response.status >= 500) {
        throw new DownstreamError(name, 'status', `${name} answered ${response.status} to ${method} ${url}`, {
          status: response.status,
        })
      }
      return {status: response.status, body: body as T, headers: response.headers}
    } catch (error) {
      if (error instanceof DownstreamError) throw error
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')
      outcome = timedOut ? 'timeout' : 'network'
      throw new DownstreamError(
        name,
        outcome as DownstreamFailure,
        timedOut
          ? `${name} did not answer ${method} ${url} within ${timeoutMs} ms`
          : `${name} unreachable: ${describe(error)}`,
        {cause: error},
      )
    } finally {
      meters?.requests.inc({downstream: name, outcome})
      meters?.duration.observe({downstream: name}, Number(process.hrtime.bigint() - started) / 1e9)
    }
  }

  async function request<T>(method: string, path: string, call: CallOptions = {}): Promise<DownstreamResponse<T>> {
    const upper = method.toUpperCase()
    const url = `${baseUrl}${path}`
    const headers: Record<string, string> = {accept: 'application/json'}
    if (call.requestId) headers['x-request-id'] = call.requestId
    if (call.idempotencyKey) headers['idempotency-key'] = call.idempotencyKey
    if (call.synthetic) headers['x-synthetic'] = call.synthetic
    let payload: string | undefined
    if (call.body !== undefined) {
      payload = JSON.stringify(call.body)
      headers['content-type'] = 'application/json'
    }
    const init: RequestInit = {method: upper, headers, body: payload}
    const idempotent = IDEMPOTENT_METHODS.has(upper) || Boolean(call.idempotencyKey)
    const attempts = idempotent ? 1 + options.retries : 1

    for (let n = 1; ; n++) {
      const remaining = call.deadline === undefined ? Infinity : call.deadline - Date.now()
      if (remaining <= 0) {
        throw new DownstreamError(name, 'timeout', `deadline passed before ${method} ${url} could be tried`)
      }
      try {
        return await breaker.execute(() => attempt<T>(upper, url, init, Math.min(options.timeoutMs, remaining)))
      } catch (error) {
        if (error instanceof CircuitOpenError) {
          meters?.requests.inc({downstream: name, outcome: 'circuit_open'})
          throw new DownstreamError(name, 'circuit_open', `circuit for ${name} is open`, {
            retryAfterMs: error.retryAfterMs,
            cause: error,
          })
        }
        if (n >= attempts || !(error instanceof DownstreamError)) throw error
        const delay = Math.round(random() * Math.min(maxBackoffMs, backoffMs * 2 ** (n - 1)))
        if (call.deadline !== undefined && Date.now() + delay >= call.deadline) throw error
        log.debug('retrying', {downstream: name, method: upper, path, attempt: n, delayMs: delay, err: error.message})
        meters?.retries.inc({downstream: name})
        await sleep(delay)
      }
    }
  }

  return {name, breaker, request}
}

/** fetch's own message is just "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND...) is in its cause. */
function describe(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as {code?: string; message?: string} | undefined) : undefined
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`
  return error instanceof Error ? error.message : String(error)
}
