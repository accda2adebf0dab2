import {RetailOpsError, UnavailableError} from '../errors/index.js'
import {prometheusApiUrl} from './url.js'

/**
 * The one client for the Prometheus HTTP API (instant and range queries, readiness, build info),
 * used by canary analysis, prewarm, slo, cost and doctor. Queries go as POST forms so long PromQL
 * never hits URL limits; a path prefix in the base URL is kept (url.ts). A Prometheus that cannot
 * be reached, or refuses a query, is UNAVAILABLE (exit 5).
 */

export interface PromSample {
  labels: Record<string, string>
  value: number | null
}

export interface PromSeries {
  labels: Record<string, string>
  /** [epoch ms, value or null]. */
  points: [number, number | null][]
}

/** Prometheus answered, but refused the query (bad PromQL, timeout, too many samples). */
export class PromQueryError extends RetailOpsError {
  constructor(
    message: string,
    readonly query: string,
  ) {
    super('UNAVAILABLE', message, {details: {query}})
  }
}

/**
 * What an infinite sample value becomes. NaN and an empty vector are always no data (null).
 * - 'no-data': ±Inf is null too. For SLIs, budgets and cost an infinite value is a division by
 *   zero (no traffic), never a measurement.
 * - 'keep': +Inf and -Inf stay numbers. histogram_quantile answers +Inf when requests land beyond
 *   the last bucket: a canary that slow must fail its condition, not count as missing data.
 */
export type InfinityAs = 'no-data' | 'keep'

export interface PrometheusOptions {
  /** Required: how ±Inf is read (see InfinityAs); every caller decides. */
  infinity: InfinityAs
  /** Per request; default 60 s. */
  timeoutMs?: number
  /** Cancels every request of this client (Ctrl-C). */
  signal?: AbortSignal
}

export interface QueryOptions {
  /** Evaluation time (default: now). */
  time?: Date | number
  /** Cancels this request, in addition to the client's signal. */
  signal?: AbortSignal
}

interface ApiBody {
  status?: string
  error?: string
  errorType?: string
  data?: {resultType?: string; result?: unknown}
}

function toSeconds(time: Date | number): string {
  const ms = typeof time === 'number' ? time : time.getTime()
  return (ms / 1000).toFixed(3)
}

const reachHint =
  'Check environments.<name>.prometheus in retailops.yaml (or RETAILOPS_PROMETHEUS_URL) and that Prometheus is up (`retailops doctor`).'

export class PrometheusClient {
  /** The base URL as configured, without trailing slashes (any path prefix kept). */
  readonly url: string
  private readonly timeoutMs: number
  private readonly signal?: AbortSignal
  private readonly infinity: InfinityAs

  constructor(baseUrl: string, options: PrometheusOptions) {
    this.url = baseUrl.replace(/\/+$/, '')
    this.timeoutMs = options.timeoutMs ?? 60_000
    this.signal = options.signal
    this.infinity = options.infinity
  }

  private toNumber(text: string | undefined): number | null {
    if (text === undefined) return null
    // Prometheus writes infinities as "+Inf" and "-Inf", which Number() reads as NaN.
    const v = text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text)
    if (Number.isNaN(v)) return null
    return Number.isFinite(v) || this.infinity === 'keep' ? v : null
  }

  private async fetch(path: string, init: RequestInit & {signal?: AbortSignal}): Promise<Response> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signals = [this.signal, init.signal, timeout].filter((s): s is AbortSignal => s !== undefined)
    try {
      return await fetch(prometheusApiUrl(this.url, path), {...init, signal: AbortSignal.any(signals)})
    } catch (error) {
      if (this.signal?.aborted || init.signal?.aborted) throw error
      const code =
        (error as {cause?: {code?: string}}).cause?.code ??
        (timeout.aborted ? `no answer in ${this.timeoutMs / 1000}s` : (error as Error).message)
      throw new UnavailableError(`Cannot reach Prometheus at ${this.url} (${code}).`, {
        nextSteps: [reachHint],
        cause: error,
      })
    }
  }

  private async call(
    path: string,
    form: Record<string, string>,
    query: string,
    signal?: AbortSignal,
  ): Promise<ApiBody['data']> {
    const response = await this.fetch(path, {
      method: 'POST',
      headers: {'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json'},
      body: new URLSearchParams(form),
      signal,
    })
    const body = (await response.json().catch(() => ({}))) as ApiBody
    if (response.ok && body.status === 'success') return body.data
    if (response.status === 400 || response.status === 422 || response.status === 503) {
      throw new PromQueryError(
        `Prometheus rejected the query (${body.errorType ?? response.status}): ${body.error ?? response.statusText}`,
        query,
      )
    }
    throw new UnavailableError(
      `Prometheus at ${this.url} answered ${response.status} to ${path}: ${body.error ?? response.statusText}`,
      {details: {query}, nextSteps: [reachHint]},
    )
  }

  /** An instant query; scalars come back as one sample without labels. */
  async query(expr: string, options: QueryOptions = {}): Promise<PromSample[]> {
    const data = await this.call(
      '/api/v1/query',
      {query: expr, ...(options.time === undefined ? {} : {time: toSeconds(options.time)})},
      expr,
      options.signal,
    )
    if (data?.resultType === 'scalar' || data?.resultType === 'string') {
      const [, v] = data.result as [number, string]
      return [{labels: {}, value: this.toNumber(v)}]
    }
    return ((data?.result ?? []) as {metric: Record<string, string>; value: [number, string]}[]).map((r) => ({
      labels: r.metric ?? {},
      value: this.toNumber(r.value?.[1]),
    }))
  }

  /** The first sample's value, or null when the vector is empty or the value is no data. */
  async scalar(expr: string, options: QueryOptions = {}): Promise<number | null> {
    const samples = await this.query(expr, options)
    return samples[0]?.value ?? null
  }

  async queryRange(
    expr: string,
    start: Date | number,
    end: Date | number,
    stepSeconds: number,
    options: Pick<QueryOptions, 'signal'> = {},
  ): Promise<PromSeries[]> {
    const data = await this.call(
      '/api/v1/query_range',
      {query: expr, start: toSeconds(start), end: toSeconds(end), step: String(stepSeconds)},
      expr,
      options.signal,
    )
    return ((data?.result ?? []) as {metric: Record<string, string>; values: [number, string][]}[]).map((r) => ({
      labels: r.metric ?? {},
      points: (r.values ?? []).map(([t, v]) => [Math.round(t * 1000), this.toNumber(v)] as [number, number | null]),
    }))
  }

  /** The HTTP status of /-/ready: 200 once Prometheus is up and has loaded its data. */
  async readiness(): Promise<number> {
    const response = await this.fetch('/-/ready', {method: 'GET'})
    await response.body?.cancel()
    return response.status
  }

  async buildInfo(): Promise<{version?: string}> {
    const response = await this.fetch('/api/v1/status/buildinfo', {method: 'GET'})
    const body = (await response.json().catch(() => ({}))) as {data?: {version?: string}}
    return body.data ?? {}
  }
}
