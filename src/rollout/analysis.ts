/**
 * Canary analysis: metrics queried from Prometheus for the canary and, on the same query, for
 * stable; success and failure conditions; interval, count, failure, inconclusive and error
 * limits; an explicit policy for missing data (a canary that receives no traffic never passes
 * silently). Every measurement carries the values and the sentence that explains it.
 */

import {formatDuration, parseDuration, toPromDuration} from '../config/duration.js'
import type {AnalysisConfig, ServiceConfig} from '../config/schema.js'
import {ConfigError} from '../errors/index.js'
import {PrometheusClient} from '../prometheus/client.js'
import {promEscape} from '../prometheus/promql.js'
import {sleep} from '../kubernetes/wait.js'
import {compileCondition, ConditionError, MissingValueError} from './condition.js'
import type {AnalysisRun, AnalysisSpec, Measurement, MeasurementPhase, MetricResult, MetricSpec} from './types.js'

// Warm-up traffic (synthetic="true") is not the canary's users: it is left out of the judgement.
const SELECTOR = 'service="{{service}}",namespace="{{namespace}}",version="{{version}}",synthetic!="true"'

/** Error rate and p95/p99 latency, each also compared with stable on the same query. */
export function defaultMetrics(service?: ServiceConfig): MetricSpec[] {
  const latencySlo = service?.slos.find((s) => s.sli.type === 'latency')?.sli as {thresholdMs?: number} | undefined
  const latencyLimit = latencySlo?.thresholdMs ? latencySlo.thresholdMs / 1000 : undefined
  const quantile = (q: number) =>
    `histogram_quantile(${q}, sum by (le) (rate(http_request_duration_seconds_bucket{${SELECTOR}}[{{window}}])))`
  return [
    {
      name: 'error-rate',
      query: `(sum(rate(http_requests_total{${SELECTOR},code=~"5.."}[{{window}}])) or vector(0)) / sum(rate(http_requests_total{${SELECTOR}}[{{window}}]))`,
      failureCondition: 'result > 0.05',
      compareWithStable: true,
      tolerance: 0.5,
      minDifference: 0.01,
    },
    {
      name: 'latency-p95',
      query: quantile(0.95),
      ...(latencyLimit ? {failureCondition: `result > ${latencyLimit}`} : {}),
      compareWithStable: true,
      tolerance: 0.25,
      minDifference: 0.05,
    },
    {
      name: 'latency-p99',
      query: quantile(0.99),
      compareWithStable: true,
      tolerance: 0.5,
      minDifference: 0.1,
    },
  ]
}

/** The analysis of a service: its configuration with defaults, overridden by flags. */
export function buildAnalysisSpec(
  service: ServiceConfig | undefined,
  overrides: Partial<Pick<AnalysisSpec, 'intervalMs' | 'count' | 'missingData'>> = {},
): AnalysisSpec {
  const a: Partial<AnalysisConfig> = service?.rollout?.analysis ?? {}
  const intervalMs = overrides.intervalMs ?? parseDuration(a.interval ?? '30s')!
  const metrics: MetricSpec[] = a.metrics?.length
    ? a.metrics.map((m) => ({
        name: m.name,
        query: m.query,
        successCondition: m.successCondition,
        failureCondition: m.failureCondition,
        compareWithStable: m.compareWithStable,
        tolerance: m.tolerance,
        minDifference: m.minDifference ?? 0,
      }))
    : defaultMetrics(service)
  const spec: AnalysisSpec = {
    intervalMs,
    count: overrides.count ?? a.count ?? 5,
    failureLimit: a.failureLimit ?? 1,
    inconclusiveLimit: a.inconclusiveLimit ?? 1,
    consecutiveErrorLimit: a.consecutiveErrorLimit ?? 4,
    missingData: overrides.missingData ?? a.missingData ?? 'inconclusive',
    windowMs: a.window ? parseDuration(a.window)! : Math.max(intervalMs, 30_000),
    metrics,
  }
  validateAnalysisSpec(spec)
  return spec
}

/** Conditions are checked before the first write: a typo never surfaces mid-rollout. */
export function validateAnalysisSpec(spec: AnalysisSpec): void {
  const issues: {file: string; path: string; message: string}[] = []
  for (const m of spec.metrics) {
    for (const key of ['successCondition', 'failureCondition'] as const) {
      const source = m[key]
      if (!source) continue
      try {
        compileCondition(source)
      } catch (error) {
        issues.push({
          file: 'retailops.yaml',
          path: `rollout.analysis.metrics.${m.name}.${key}`,
          message: `"${source}": ${(error as Error).message}`,
        })
      }
    }
    if (!m.successCondition && !m.failureCondition && !m.compareWithStable) {
      issues.push({
        file: 'retailops.yaml',
        path: `rollout.analysis.metrics.${m.name}`,
        message: 'needs a successCondition, a failureCondition or compareWithStable',
      })
    }
  }
  if (issues.length > 0) throw new ConfigError(issues)
}

export interface QueryVars {
  service: string
  namespace: string
  version: string
  windowMs: number
}

/** A query template with its values; they go between the template's quotes, escaped as PromQL strings. */
export function renderQuery(template: string, vars: QueryVars): string {
  return template
    .replaceAll('{{service}}', promEscape(vars.service))
    .replaceAll('{{namespace}}', promEscape(vars.namespace))
    .replaceAll('{{version}}', promEscape(vars.version))
    .replaceAll('{{window}}', toPromDuration(vars.windowMs))
}

const fmt = (v: number | null | undefined): string => {
  if (v === null || v === undefined) return 'no data'
  if (!Number.isFinite(v)) return String(v)
  if (v !== 0 && Math.abs(v) < 0.001) return v.toExponential(2)
  return String(Math.round(v * 10_000) / 10_000)
}

/**
 * Decides one measurement from the values Prometheus returned. Pure: the values in, the phase
 * and the sentence that explains it out. `null` means the query returned no data (empty or NaN).
 */
export function evaluateMeasurement(
  metric: MetricSpec,
  canary: number | null,
  stable: number | null | undefined,
  missingData: AnalysisSpec['missingData'],
): Pick<Measurement, 'phase' | 'reason'> {
  const missing = (what: string): Pick<Measurement, 'phase' | 'reason'> => {
    const phase: MeasurementPhase =
      missingData === 'fail' ? 'Failed' : missingData === 'pass' ? 'Successful' : 'Inconclusive'
    return {
      phase,
      reason: `${metric.name}: ${what} returned no data (no traffic?); missingData=${missingData} counts it as ${phase}`,
    }
  }
  if (canary === null) return missing('the canary query')
  const vars = {result: canary, canary, stable: stable ?? null}
  const values = `canary ${fmt(canary)}${stable === undefined ? '' : `, stable ${fmt(stable)}`}`
  try {
    if (metric.failureCondition && compileCondition(metric.failureCondition).test(vars)) {
      return {
        phase: 'Failed',
        reason: `${metric.name}: ${values}; failureCondition "${metric.failureCondition}" is true`,
      }
    }
    if (metric.successCondition && !compileCondition(metric.successCondition).test(vars)) {
      return {
        phase: 'Failed',
        reason: `${metric.name}: ${values}; successCondition "${metric.successCondition}" is false`,
      }
    }
  } catch (error) {
    if (error instanceof MissingValueError) return missing(`the ${error.variable} query`)
    throw error
  }
  if (metric.compareWithStable) {
    if (stable === null || stable === undefined) return missing('the stable query')
    const limit = Math.max(stable * (1 + metric.tolerance), stable + metric.minDifference)
    if (canary > limit) {
      return {
        phase: 'Failed',
        reason: `${metric.name}: canary ${fmt(canary)} is worse than stable ${fmt(stable)} beyond the allowed ${fmt(limit)} (tolerance ${Math.round(metric.tolerance * 100)} %, minDifference ${fmt(metric.minDifference)})`,
      }
    }
    return {
      phase: 'Successful',
      reason: `${metric.name}: canary ${fmt(canary)} within ${fmt(limit)} of stable ${fmt(stable)}${conditionsNote(metric)}`,
    }
  }
  return {phase: 'Successful', reason: `${metric.name}: ${values}${conditionsNote(metric)}`}
}

function conditionsNote(metric: MetricSpec): string {
  const parts = [
    metric.successCondition && `"${metric.successCondition}" holds`,
    metric.failureCondition && `"${metric.failureCondition}" does not`,
  ].filter(Boolean)
  return parts.length > 0 ? `; ${parts.join(', ')}` : ''
}

/** Applies a measurement to a metric's tally and decides whether the metric has finished. */
export function tally(result: MetricResult, m: Measurement, spec: AnalysisSpec): MetricResult {
  const next: MetricResult = {...result, measurements: [...result.measurements, m].slice(-MAX_KEPT)}
  if (m.phase === 'Error') {
    next.errors++
    next.consecutiveErrors++
  } else {
    next.consecutiveErrors = 0
    if (m.phase === 'Successful') next.successful++
    if (m.phase === 'Failed') next.failed++
    if (m.phase === 'Inconclusive') next.inconclusive++
  }
  if (next.failed > spec.failureLimit) next.phase = 'Failed'
  else if (next.consecutiveErrors > spec.consecutiveErrorLimit) next.phase = 'Error'
  else if (next.inconclusive > spec.inconclusiveLimit) next.phase = 'Inconclusive'
  // Every measurement taken, within the limits; but with not one success it proves nothing.
  else if (next.successful + next.failed + next.inconclusive >= spec.count)
    next.phase = next.successful > 0 ? 'Successful' : 'Inconclusive'
  return next
}

/** Measurements kept per metric in the state ConfigMap (it must stay far below 1 MiB). */
const MAX_KEPT = 20

const RANK = {Failed: 4, Error: 3, Inconclusive: 2, Running: 1, Successful: 0} as const

/** The run's verdict: the worst metric, with the sentence of the measurement that decided it. */
export function summarize(run: AnalysisRun): Pick<AnalysisRun, 'phase' | 'message'> {
  const done = run.metrics.every((m) => m.phase !== 'Running')
  const worst = [...run.metrics].sort((a, b) => RANK[b.phase] - RANK[a.phase])[0]
  if (!worst) return {phase: 'Successful', message: 'no metrics'}
  const decisive = (m: MetricResult) =>
    [...m.measurements].reverse().find((x) => x.phase === m.phase) ?? m.measurements.at(-1)
  if (worst.phase === 'Failed' || worst.phase === 'Error' || (done && worst.phase === 'Inconclusive')) {
    const count =
      worst.phase === 'Failed'
        ? `${worst.failed} failed of ${worst.measurements.length}`
        : worst.phase === 'Error'
          ? `${worst.consecutiveErrors} errors in a row`
          : `${worst.inconclusive} inconclusive`
    return {phase: worst.phase, message: `${worst.phase}: ${decisive(worst)?.reason ?? worst.name} (${count})`}
  }
  if (!done)
    return {
      phase: 'Running',
      message: `measuring (${run.metrics.map((m) => `${m.name} ${m.successful}✔ ${m.failed}✖ ${m.inconclusive}?`).join(', ')})`,
    }
  const lines = run.metrics.map((m) => m.measurements.at(-1)?.reason ?? m.name)
  return {phase: 'Successful', message: `Successful: ${lines.join('; ')}`}
}

/** Where measurements come from. `null` = no data (empty vector or NaN). */
export interface MetricsProvider {
  readonly name: string
  query(promql: string, signal?: AbortSignal): Promise<number | null>
}

/**
 * Analysis measurements from Prometheus (src/prometheus): one value per query. +Inf stays a
 * number (`infinity: 'keep'`): histogram_quantile answers +Inf when requests land beyond the last
 * bucket, and a canary that slow must fail its condition, not count as missing data.
 */
export function prometheusProvider(baseUrl: string): MetricsProvider {
  const client = new PrometheusClient(baseUrl, {infinity: 'keep', timeoutMs: 10_000})
  return {
    name: `prometheus ${baseUrl}`,
    async query(promql, signal) {
      const samples = await client.query(promql, {signal})
      if (samples.length > 1)
        throw new Error(
          `the query returned ${samples.length} series; aggregate it to one (sum, max, histogram_quantile by (le))`,
        )
      return samples[0]?.value ?? null
    },
  }
}

export interface AnalysisTarget {
  service: string
  namespace: string
  canaryVersion: string
  stableVersion?: string
}

export interface RunAnalysisOptions {
  provider: MetricsProvider
  target: AnalysisTarget
  spec: AnalysisSpec
  kind: string
  /** Continue a run that was interrupted (kill -9): its measurements so far count. */
  resume?: AnalysisRun
  /** Called after every measurement, before the next wait: the caller persists the run. */
  onProgress?: (run: AnalysisRun) => Promise<void>
  /** Checked between measurements; a non-undefined answer stops the run early (promote/abort). */
  interrupt?: () => Promise<string | undefined>
  signal?: AbortSignal
  now?: () => Date
}

export function newRun(spec: AnalysisSpec, kind: string, now = new Date()): AnalysisRun {
  return {
    id: `${kind.replaceAll(/\W+/g, '-')}-${now.getTime().toString(36)}`,
    kind,
    phase: 'Running',
    startedAt: now.toISOString(),
    spec,
    metrics: spec.metrics.map((m) => ({
      name: m.name,
      phase: 'Running',
      successful: 0,
      failed: 0,
      inconclusive: 0,
      errors: 0,
      consecutiveErrors: 0,
      measurements: [],
    })),
  }
}

/**
 * Runs measurements every interval until each metric reaches its count or a limit. The first
 * measurement is taken at once; the run stops early as soon as any metric fails.
 */
export async function runAnalysis(options: RunAnalysisOptions): Promise<AnalysisRun> {
  const {provider, target, spec} = options
  const now = options.now ?? (() => new Date())
  let run = options.resume && options.resume.phase === 'Running' ? options.resume : newRun(spec, options.kind, now())
  const times = run.metrics.flatMap((m) => m.measurements.map((x) => Date.parse(x.at)))
  const lastAt = times.length > 0 ? Math.max(...times) : undefined
  if (lastAt !== undefined) await wait(Math.max(0, lastAt + spec.intervalMs - now().getTime()), options)
  for (;;) {
    const at = now().toISOString()
    const metrics = await Promise.all(
      run.metrics.map(async (result, i) => {
        if (result.phase !== 'Running') return result
        const m = await measure(provider, spec.metrics[i], target, spec, at, options.signal)
        return tally(result, m, spec)
      }),
    )
    run = {...run, metrics}
    Object.assign(run, summarize(run))
    if (run.phase !== 'Running') run.finishedAt = now().toISOString()
    await options.onProgress?.(run)
    if (run.phase !== 'Running') return run
    const stop = await waitOrInterrupt(spec.intervalMs, options)
    if (stop) {
      run = {...run, phase: 'Successful', finishedAt: now().toISOString(), message: `Skipped: ${stop}`}
      await options.onProgress?.(run)
      return run
    }
  }
}

async function measure(
  provider: MetricsProvider,
  metric: MetricSpec,
  target: AnalysisTarget,
  spec: AnalysisSpec,
  at: string,
  signal?: AbortSignal,
): Promise<Measurement> {
  const base = {service: target.service, namespace: target.namespace, windowMs: spec.windowMs}
  const canaryQuery = renderQuery(metric.query, {...base, version: target.canaryVersion})
  const stableQuery =
    metric.compareWithStable || /\bstable\b/.test(`${metric.successCondition ?? ''} ${metric.failureCondition ?? ''}`)
      ? target.stableVersion === undefined
        ? undefined
        : renderQuery(metric.query, {...base, version: target.stableVersion})
      : undefined
  try {
    const [canary, stable] = await Promise.all([
      provider.query(canaryQuery, signal),
      stableQuery ? provider.query(stableQuery, signal) : Promise.resolve(undefined),
    ])
    const decision = evaluateMeasurement(metric, canary, stable, spec.missingData)
    return {
      at,
      ...decision,
      canary,
      ...(stable === undefined ? {} : {stable}),
      queries: {canary: canaryQuery, ...(stableQuery ? {stable: stableQuery} : {})},
    }
  } catch (error) {
    if (signal?.aborted) throw error
    const text = error instanceof ConditionError ? `bad condition: ${error.message}` : (error as Error).message
    return {
      at,
      phase: 'Error',
      reason: `${metric.name}: query failed: ${text}`,
      queries: {canary: canaryQuery, ...(stableQuery ? {stable: stableQuery} : {})},
    }
  }
}

async function wait(ms: number, options: Pick<RunAnalysisOptions, 'signal'>): Promise<void> {
  if (ms > 0) await sleep(ms, options.signal)
}

/** Sleeps the interval in slices, asking `interrupt` between them (a promote skips the rest). */
async function waitOrInterrupt(ms: number, options: RunAnalysisOptions): Promise<string | undefined> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    await wait(Math.min(1000, until - Date.now()), options)
    const stop = await options.interrupt?.()
    if (stop) return stop
  }
  return undefined
}

/** A one-line description of an analysis spec, for status output. */
export function describeSpec(spec: AnalysisSpec): string {
  return `${spec.metrics.map((m) => m.name).join(', ')} every ${formatDuration(spec.intervalMs)} × ${spec.count} (failureLimit ${spec.failureLimit}, inconclusiveLimit ${spec.inconclusiveLimit}, missingData ${spec.missingData})`
}
