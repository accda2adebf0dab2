import {RetailOpsError, UnavailableError} from '../errors/index.js'
import {prometheusApiUrl} from '../prometheus/url.js'

/**
 * A small client for the Prometheus HTTP API (instant and range queries, vectors with labels)
 * used by `slo` and `cost`. Queries go as POST forms so long PromQL never hits URL limits.
 * "No data" is never a number: an empty vector, NaN or ±Inf all come back as null.
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

export interface PrometheusOptions {
  timeoutMs?: number
  signal?: AbortSignal
}

function toNumber(text: string | undefined): number | null {
  if (text === undefined) return null
  const v = Number(text)
  return Number.isFinite(v) ? v : null
}

function toSeconds(time: Date | number): string {
  const ms = typeof time === 'number' ? time : time.getTime()
  return (ms / 1000).toFixed(3)
}

interface ApiBody {
  status?: string
  error?: string
  errorType?: string
  data?: {resultType?: string; result?: unknown}
}

export class PrometheusClient {
  readonly url: string
  private readonly timeoutMs: number
  private readonly signal?: AbortSignal

  constructor(baseUrl: string, options: PrometheusOptions = {}) {
    this.url = baseUrl.replace(/\/+$/, '')
    this.timeoutMs = options.timeoutMs ?? 60_000
    this.signal = options.signal
  }

  private async call(path: string, form: Record<string, string>, query?: string): Promise<ApiBody['data']> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    let response: Response
    try {
      response = await fetch(prometheusApiUrl(this.url, path), {
        method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json'},
        body: new URLSearchParams(form),
        signal: this.signal ? AbortSignal.any([this.signal, timeout]) : timeout,
      })
    } catch (error) {
      if (this.signal?.aborted) throw error
      const code = (error as {cause?: {code?: string}}).cause?.code ?? (timeout.aborted ? `no answer in ${this.timeoutMs / 1000}s` : (error as Error).message)
      throw new UnavailableError(`Cannot reach Prometheus at ${this.url} (${code}).`, {
        nextSteps: ['Check environments.<name>.prometheus in retailops.yaml (or RETAILOPS_PROMETHEUS_URL) and that Prometheus is up (`retailops doctor`).'],
        cause: error,
      })
    }
    const body = (await response.json().catch(() => ({}))) as ApiBody
    if (response.ok && body.status === 'success') return body.data
    if (query !== undefined && (response.status === 400 || response.status === 422 || response.status === 503)) {
      throw new PromQueryError(`Prometheus rejected the query (${body.errorType ?? response.status}): ${body.error ?? response.statusText}`, query)
    }
    throw new UnavailableError(`Prometheus at ${this.url} answered ${response.status} to ${path}: ${body.error ?? response.statusText}`, {details: query ? {query} : {}})
  }

  /** An instant query; scalars come back as one sample without labels. */
  async query(expr: string, time?: Date | number): Promise<PromSample[]> {
    const data = await this.call('/api/v1/query', {query: expr, ...(time === undefined ? {} : {time: toSeconds(time)})}, expr)
    if (data?.resultType === 'scalar' || data?.resultType === 'string') {
      const [, v] = data.result as [number, string]
      return [{labels: {}, value: toNumber(v)}]
    }
    return ((data?.result ?? []) as {metric: Record<string, string>; value: [number, string]}[]).map((r) => ({labels: r.metric ?? {}, value: toNumber(r.value?.[1])}))
  }

  /** The first sample's value, or null when the vector is empty or the value is NaN/Inf. */
  async scalar(expr: string, time?: Date | number): Promise<number | null> {
    const samples = await this.query(expr, time)
    return samples[0]?.value ?? null
  }

  async queryRange(expr: string, start: Date | number, end: Date | number, stepSeconds: number): Promise<PromSeries[]> {
    const data = await this.call('/api/v1/query_range', {query: expr, start: toSeconds(start), end: toSeconds(end), step: String(stepSeconds)}, expr)
    return ((data?.result ?? []) as {metric: Record<string, string>; values: [number, string][]}[]).map((r) => ({
      labels: r.metric ?? {},
      points: (r.values ?? []).map(([t, v]) => [Math.round(t * 1000), toNumber(v)] as [number, number | null]),
    }))
  }

  async buildInfo(): Promise<{version?: string}> {
    const response = await fetch(prometheusApiUrl(this.url, '/api/v1/status/buildinfo'), {signal: AbortSignal.timeout(this.timeoutMs)}).catch((error: unknown) => {
      throw new UnavailableError(`Cannot reach Prometheus at ${this.url} (${(error as {cause?: {code?: string}}).cause?.code ?? (error as Error).message}).`, {cause: error})
    })
    const body = (await response.json().catch(() => ({}))) as {data?: {version?: string}}
    return body.data ?? {}
  }
}

/** A PromQL string literal for a label value. */
export function promString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`
}

/** A label matcher list {a="x",b=~"y"} from pairs; empty pairs give "". */
export function matchers(pairs: [string, string, ('=' | '=~' | '!=' | '!~')?][]): string {
  if (pairs.length === 0) return ''
  return `{${pairs.map(([k, v, op]) => `${k}${op ?? '='}${promString(v)}`).join(',')}}`
}
