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
import {
  alignBuckets,
  bucketQuantile,
  bucketsFromCumulative,
  mannWhitneyBuckets,
  twoProportionTest,
} from './statistics.js'
import type {Buckets} from './statistics.js'
import type {
  AnalysisMethod,
  AnalysisRun,
  AnalysisSpec,
  Evidence,
  EvidenceForecast,
  Measurement,
  MeasurementPhase,
  MetricResult,
  MetricSpec,
} from './types.js'

// Warm-up traffic (synthetic="true") is not the canary's users: it is left out of the judgement.
const SELECTOR = 'service="{{service}}",namespace="{{namespace}}",version="{{version}}",synthetic!="true"'

/** The judgement's settings shared by every metric: analysis.method, minimums, confidence, effect sizes. */
export interface Judgement {
  method: AnalysisMethod
  minRequests: number
  minObservations: number
  confidence: number
  minEffect: {errorRate: number; latency: number}
}

export const DEFAULT_JUDGEMENT: Judgement = {
  method: 'statistical',
  minRequests: 50,
  minObservations: 50,
  confidence: 0.95,
  minEffect: {errorRate: 0.01, latency: 0.2},
}

/**
 * The default metrics, each also compared with stable on the same query, each with the count of
 * requests (or latency observations) behind it in the window. Statistical: error-rate (two
 * proportions) and latency (Mann-Whitney U over the histogram; the value shown is p95).
 * Tolerance: error-rate, latency-p95 and latency-p99 against stable by tolerance and margin.
 */
export function defaultMetrics(service?: ServiceConfig, judgement: Judgement = DEFAULT_JUDGEMENT): MetricSpec[] {
  const latencySlo = service?.slos.find((s) => s.sli.type === 'latency')?.sli as {thresholdMs?: number} | undefined
  const latencyLimit = latencySlo?.thresholdMs ? latencySlo.thresholdMs / 1000 : undefined
  const quantile = (q: number) =>
    `histogram_quantile(${q}, sum by (le) (rate(http_request_duration_seconds_bucket{${SELECTOR}}[{{window}}])))`
  const common = {method: judgement.method, confidence: judgement.confidence}
  const requests = `sum(increase(http_requests_total{${SELECTOR}}[{{window}}]))`
  const observations = `sum(increase(http_request_duration_seconds_count{${SELECTOR}}[{{window}}]))`
  const errorRate: MetricSpec = {
    name: 'error-rate',
    query: `(sum(rate(http_requests_total{${SELECTOR},code=~"5.."}[{{window}}])) or vector(0)) / sum(rate(http_requests_total{${SELECTOR}}[{{window}}]))`,
    failureCondition: 'result > 0.05',
    compareWithStable: true,
    tolerance: 0.5,
    minDifference: 0.01,
    ...common,
    samplesQuery: requests,
    errorsQuery: `sum(increase(http_requests_total{${SELECTOR},code=~"5.."}[{{window}}])) or vector(0)`,
    minSamples: judgement.minRequests,
    minEffect: judgement.minEffect.errorRate,
  }
  const latencyCondition = latencyLimit ? {failureCondition: `result > ${latencyLimit}`} : {}
  if (judgement.method === 'statistical') {
    return [
      errorRate,
      {
        name: 'latency',
        query: quantile(0.95),
        ...latencyCondition,
        compareWithStable: true,
        tolerance: 0.25,
        minDifference: 0.05,
        ...common,
        bucketsQuery: `sum by (le) (increase(http_request_duration_seconds_bucket{${SELECTOR}}[{{window}}]))`,
        minSamples: judgement.minObservations,
        minEffect: judgement.minEffect.latency,
      },
    ]
  }
  const latency = {...common, samplesQuery: observations, minSamples: judgement.minObservations}
  return [
    errorRate,
    {
      name: 'latency-p95',
      query: quantile(0.95),
      ...latencyCondition,
      compareWithStable: true,
      tolerance: 0.25,
      minDifference: 0.05,
      ...latency,
    },
    {
      name: 'latency-p99',
      query: quantile(0.99),
      compareWithStable: true,
      tolerance: 0.5,
      minDifference: 0.1,
      ...latency,
    },
  ]
}

/** The judgement settings of an analysis configuration, with defaults. */
export function judgementOf(a: Partial<AnalysisConfig>): Judgement {
  return {
    method: a.method ?? DEFAULT_JUDGEMENT.method,
    minRequests: a.minRequests ?? DEFAULT_JUDGEMENT.minRequests,
    minObservations: a.minObservations ?? DEFAULT_JUDGEMENT.minObservations,
    confidence: a.confidence ?? DEFAULT_JUDGEMENT.confidence,
    minEffect: {
      errorRate: a.minEffect?.errorRate ?? DEFAULT_JUDGEMENT.minEffect.errorRate,
      latency: a.minEffect?.latency ?? DEFAULT_JUDGEMENT.minEffect.latency,
    },
  }
}

/** The analysis of a service: its configuration with defaults, overridden by flags. */
export function buildAnalysisSpec(
  service: ServiceConfig | undefined,
  overrides: Partial<Pick<AnalysisSpec, 'intervalMs' | 'count' | 'missingData'>> = {},
): AnalysisSpec {
  const a: Partial<AnalysisConfig> = service?.rollout?.analysis ?? {}
  const intervalMs = overrides.intervalMs ?? parseDuration(a.interval ?? '30s')!
  const judgement = judgementOf(a)
  const metrics: MetricSpec[] = a.metrics?.length
    ? a.metrics.map((m) => {
        const statistical = Boolean(m.errors ?? m.buckets)
        // A metric without counts to test cannot be judged statistically: tolerance, unless it asks otherwise (refused below).
        const method = m.method ?? (statistical ? judgement.method : 'tolerance')
        return {
          name: m.name,
          query: m.query,
          successCondition: m.successCondition,
          failureCondition: m.failureCondition,
          compareWithStable: m.compareWithStable || (method === 'statistical' && statistical),
          tolerance: m.tolerance,
          minDifference: m.minDifference ?? 0,
          method,
          ...(m.samples ? {samplesQuery: m.samples} : {}),
          ...(m.errors ? {errorsQuery: m.errors} : {}),
          ...(m.buckets ? {bucketsQuery: m.buckets} : {}),
          minSamples: m.minSamples ?? (m.buckets ? judgement.minObservations : judgement.minRequests),
          confidence: m.confidence ?? judgement.confidence,
          minEffect: m.minEffect ?? (m.buckets ? judgement.minEffect.latency : judgement.minEffect.errorRate),
        }
      })
    : defaultMetrics(service, judgement)
  const spec: AnalysisSpec = {
    intervalMs,
    count: overrides.count ?? a.count ?? 5,
    failureLimit: a.failureLimit ?? 1,
    inconclusiveLimit: a.inconclusiveLimit ?? 1,
    consecutiveErrorLimit: a.consecutiveErrorLimit ?? 4,
    missingData: overrides.missingData ?? a.missingData ?? 'inconclusive',
    windowMs: a.window ? parseDuration(a.window)! : Math.max(intervalMs, 30_000),
    metrics,
    method: judgement.method,
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
    const at = `rollout.analysis.metrics.${m.name}`
    if (m.errorsQuery && m.bucketsQuery)
      issues.push({file: 'retailops.yaml', path: at, message: 'takes errors or buckets, not both'})
    if (m.errorsQuery && !m.samplesQuery)
      issues.push({
        file: 'retailops.yaml',
        path: `${at}.errors`,
        message: 'needs `samples`: the requests the errors are a share of',
      })
    if (m.method === 'statistical' && !m.errorsQuery && !m.bucketsQuery)
      issues.push({
        file: 'retailops.yaml',
        path: `${at}.method`,
        message:
          'statistical needs counts to test: add `errors` (with `samples`) or `buckets`, or use method: tolerance',
      })
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

/** The counts a measurement read besides its value, per side: observations, failures, histogram buckets. */
export interface MeasurementData {
  samples?: {canary: number | null; stable?: number | null}
  errors?: {canary: number | null; stable?: number | null}
  buckets?: {canary: Buckets; stable?: Buckets}
}

type Decision = Pick<Measurement, 'phase' | 'reason' | 'evidence'>
type Judged = Pick<Measurement, 'phase' | 'reason'> & {evidence: Pick<Evidence, 'proportion' | 'distribution'>}

const percent = (rate: number): string => `${Math.round(rate * 10_000) / 100} %`
const points = (diff: number): string => `${diff >= 0 ? '+' : '−'}${Math.round(Math.abs(diff) * 10_000) / 100} points`
const pValue = (p: number): string => (p < 0.0001 ? p.toExponential(1) : String(Math.round(p * 10_000) / 10_000))
const ms = (seconds: number | null): string => (seconds === null ? 'n/a' : `${Math.round(seconds * 10_000) / 10} ms`)

/**
 * Decides one measurement from the values Prometheus returned. Pure: the values in, the phase
 * and the sentence that explains it out. `null` means the query returned no data (empty or NaN).
 * Order: no data → the missingData policy; fewer observations than the minimum on either side →
 * inconclusive (neither pass nor fail); the absolute conditions; then the comparison with stable.
 */
export function evaluateMeasurement(
  metric: MetricSpec,
  canary: number | null,
  stable: number | null | undefined,
  missingData: AnalysisSpec['missingData'],
  data: MeasurementData = {},
  windowMs?: number,
): Decision {
  const missing = (what: string): Decision => {
    const phase: MeasurementPhase =
      missingData === 'fail' ? 'Failed' : missingData === 'pass' ? 'Successful' : 'Inconclusive'
    return {
      phase,
      reason: `${metric.name}: ${what} returned no data (no traffic?); missingData=${missingData} counts it as ${phase}`,
    }
  }
  if (canary === null) return missing('the canary query')
  const statistical = metric.method === 'statistical' && Boolean(data.errors ?? data.buckets)
  const comparesStable = metric.compareWithStable || statistical
  let evidence: Evidence | undefined
  const counts = data.buckets ? {canary: data.buckets.canary.total, stable: data.buckets.stable?.total} : data.samples
  if (counts) {
    const needed = metric.minSamples ?? 0
    const c = Math.round(counts.canary ?? 0)
    const s = counts.stable === undefined || counts.stable === null ? undefined : Math.round(counts.stable)
    if (comparesStable && s === undefined && stable !== undefined) return missing('the stable query')
    evidence = {samples: {canary: c, ...(s === undefined ? {} : {stable: s}), needed}}
    const unit = data.buckets || !metric.errorsQuery ? 'observations' : 'requests'
    if (c < needed || (comparesStable && s !== undefined && s < needed)) {
      const within = windowMs ? ` in the last ${formatDuration(windowMs)}` : ''
      return {
        phase: 'Inconclusive',
        reason: `${metric.name}: not enough evidence${within}: canary ${c} ${unit}${s === undefined ? '' : `, stable ${s}`}; each needs ≥ ${needed} (minSamples), so it neither passes nor fails`,
        evidence,
      }
    }
  }
  const vars = {result: canary, canary, stable: stable ?? null}
  const values = `canary ${fmt(canary)}${stable === undefined ? '' : `, stable ${fmt(stable)}`}`
  try {
    if (metric.failureCondition && compileCondition(metric.failureCondition).test(vars)) {
      return {
        phase: 'Failed',
        reason: `${metric.name}: ${values}; failureCondition "${metric.failureCondition}" is true`,
        ...(evidence ? {evidence} : {}),
      }
    }
    if (metric.successCondition && !compileCondition(metric.successCondition).test(vars)) {
      return {
        phase: 'Failed',
        reason: `${metric.name}: ${values}; successCondition "${metric.successCondition}" is false`,
        ...(evidence ? {evidence} : {}),
      }
    }
  } catch (error) {
    if (error instanceof MissingValueError) return missing(`the ${error.variable} query`)
    throw error
  }
  if (statistical && evidence) {
    const judged = data.buckets
      ? compareDistributions(metric, data.buckets)
      : compareProportions(metric, evidence, data)
    if (judged) return {...judged, evidence: {...evidence, ...judged.evidence}}
    return missing('the stable query')
  }
  if (metric.compareWithStable) {
    if (stable === null || stable === undefined) return missing('the stable query')
    const limit = Math.max(stable * (1 + metric.tolerance), stable + metric.minDifference)
    if (canary > limit) {
      return {
        phase: 'Failed',
        reason: `${metric.name}: canary ${fmt(canary)} is worse than stable ${fmt(stable)} beyond the allowed ${fmt(limit)} (tolerance ${Math.round(metric.tolerance * 100)} %, minDifference ${fmt(metric.minDifference)})${samplesNote(evidence)}`,
        ...(evidence ? {evidence} : {}),
      }
    }
    return {
      phase: 'Successful',
      reason: `${metric.name}: canary ${fmt(canary)} within ${fmt(limit)} of stable ${fmt(stable)}${conditionsNote(metric)}${samplesNote(evidence)}`,
      ...(evidence ? {evidence} : {}),
    }
  }
  return {
    phase: 'Successful',
    reason: `${metric.name}: ${values}${conditionsNote(metric)}${samplesNote(evidence)}`,
    ...(evidence ? {evidence} : {}),
  }
}

function samplesNote(evidence: Evidence | undefined): string {
  if (!evidence) return ''
  const {canary, stable, needed} = evidence.samples
  return ` (${canary}${stable === undefined ? '' : ` and ${stable}`} observations, ≥ ${needed} needed)`
}

/** Error rates by a pooled two-proportion z-test, one-sided, with the difference as effect size. */
function compareProportions(metric: MetricSpec, evidence: Evidence, data: MeasurementData): Judged | undefined {
  if (evidence.samples.stable === undefined || data.errors?.stable === undefined || data.errors.stable === null)
    return undefined
  const confidence = metric.confidence ?? DEFAULT_JUDGEMENT.confidence
  const minEffect = metric.minEffect ?? DEFAULT_JUDGEMENT.minEffect.errorRate
  const canary = {
    requests: evidence.samples.canary,
    failures: Math.min(Math.round(data.errors.canary ?? 0), evidence.samples.canary),
  }
  const stable = {
    requests: evidence.samples.stable,
    failures: Math.min(Math.round(data.errors.stable), evidence.samples.stable),
  }
  const t = twoProportionTest(
    {n: canary.requests, failures: canary.failures},
    {n: stable.requests, failures: stable.failures},
    confidence,
  )
  const alpha = 1 - confidence
  const significant = t.pValue < alpha
  const material = t.difference >= minEffect
  const proportion = {
    canary: {...canary, rate: t.canaryRate},
    stable: {...stable, rate: t.stableRate},
    difference: t.difference,
    interval: t.interval,
    z: t.z,
    test: t.test,
    pValue: t.pValue,
    confidence,
    minEffect,
    significant,
    material,
  }
  const numbers = `canary ${percent(t.canaryRate)} (${canary.failures}/${canary.requests}) vs stable ${percent(t.stableRate)} (${stable.failures}/${stable.requests}): ${points(t.difference)} (${Math.round(confidence * 100)} % CI ${points(t.interval[0])} to ${points(t.interval[1])}), ${t.test === 'z' ? `one-sided z-test z = ${Math.round(t.z * 100) / 100}` : 'one-sided Fisher exact test (too few failures for z)'}, p = ${pValue(t.pValue)}`
  const threshold = `effect threshold ${points(minEffect)}`
  if (significant && material)
    return {
      phase: 'Failed',
      reason: `${metric.name}: ${numbers} < ${pValue(alpha)} and the difference reaches the ${threshold}: the canary fails more often`,
      evidence: {proportion},
    }
  return {
    phase: 'Successful',
    reason: significant
      ? `${metric.name}: ${numbers} < ${pValue(alpha)}, but the difference is below the ${threshold}: negligible`
      : `${metric.name}: ${numbers} ≥ ${pValue(alpha)}: no evidence the canary fails more often (${threshold})`,
    evidence: {proportion},
  }
}

/** Latency distributions by Mann-Whitney U over the histogram buckets, with the rank-biserial correlation as effect size. */
function compareDistributions(
  metric: MetricSpec,
  buckets: NonNullable<MeasurementData['buckets']>,
): Judged | undefined {
  if (!buckets.stable) return undefined
  const confidence = metric.confidence ?? DEFAULT_JUDGEMENT.confidence
  const minEffect = metric.minEffect ?? DEFAULT_JUDGEMENT.minEffect.latency
  const aligned = alignBuckets(buckets.canary, buckets.stable)
  const t = mannWhitneyBuckets(aligned.a, aligned.b)
  const alpha = 1 - confidence
  const significant = t.pValue < alpha
  const material = t.rankBiserial >= minEffect
  const side = (counts: number[]) => ({
    observations: counts.reduce((x, y) => x + y, 0),
    p50: bucketQuantile(0.5, {bounds: aligned.bounds, counts}),
    p95: bucketQuantile(0.95, {bounds: aligned.bounds, counts}),
  })
  const distribution = {
    canary: side(aligned.a),
    stable: side(aligned.b),
    u: t.u,
    z: t.z,
    pValue: t.pValue,
    confidence,
    commonLanguage: t.commonLanguage,
    rankBiserial: t.rankBiserial,
    minEffect,
    significant,
    material,
  }
  const c = distribution.canary
  const s = distribution.stable
  const numbers = `canary p50 ${ms(c.p50)}, p95 ${ms(c.p95)} (${c.observations}) vs stable p50 ${ms(s.p50)}, p95 ${ms(s.p95)} (${s.observations}): Mann-Whitney U one-sided p = ${pValue(t.pValue)}, rank-biserial ${Math.round(t.rankBiserial * 1000) / 1000} (canary slower in ${Math.round(t.commonLanguage * 1000) / 10} % of pairs)`
  const threshold = `effect threshold ${minEffect}`
  if (significant && material)
    return {
      phase: 'Failed',
      reason: `${metric.name}: ${numbers}; p < ${pValue(alpha)} and the effect reaches the ${threshold}: the canary is slower`,
      evidence: {distribution},
    }
  return {
    phase: 'Successful',
    reason: significant
      ? `${metric.name}: ${numbers}; p < ${pValue(alpha)}, but the effect is below the ${threshold}: negligible`
      : `${metric.name}: ${numbers}; p ≥ ${pValue(alpha)}: no evidence the canary is slower (${threshold})`,
    evidence: {distribution},
  }
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
  /** Every series of a query with its labels (histogram buckets by `le`); needed by bucket queries. */
  vector?(promql: string, signal?: AbortSignal): Promise<{labels: Record<string, string>; value: number | null}[]>
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
    async vector(promql, signal) {
      return client.query(promql, {signal})
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
  /** What was said before it started about the evidence the weight and traffic can give. */
  forecast?: EvidenceForecast
  /** Called after every measurement, before the next wait: the caller persists the run. */
  onProgress?: (run: AnalysisRun) => Promise<void>
  /** Checked between measurements; a non-undefined answer stops the run early (promote/abort). */
  interrupt?: () => Promise<string | undefined>
  signal?: AbortSignal
  now?: () => Date
}

export function newRun(spec: AnalysisSpec, kind: string, now = new Date(), forecast?: EvidenceForecast): AnalysisRun {
  return {
    id: `${kind.replaceAll(/\W+/g, '-')}-${now.getTime().toString(36)}`,
    kind,
    ...(forecast ? {forecast} : {}),
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
  let run =
    options.resume && options.resume.phase === 'Running'
      ? options.resume
      : newRun(spec, options.kind, now(), options.forecast)
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
  const statistical = metric.method === 'statistical'
  const withStable =
    metric.compareWithStable ||
    statistical ||
    /\bstable\b/.test(`${metric.successCondition ?? ''} ${metric.failureCondition ?? ''}`)
  const render = (template: string, version: string) => renderQuery(template, {...base, version})
  const canaryQuery = render(metric.query, target.canaryVersion)
  const stableQuery =
    withStable && target.stableVersion !== undefined ? render(metric.query, target.stableVersion) : undefined
  const queries = {canary: canaryQuery, ...(stableQuery ? {stable: stableQuery} : {})}
  /** A query for both sides: the stable side only when it is compared. */
  const both = async <T>(template: string | undefined, run: (q: string) => Promise<T>) => {
    if (!template) return undefined
    const [canary, stable] = await Promise.all([
      run(render(template, target.canaryVersion)),
      stableQuery ? run(render(template, target.stableVersion!)) : Promise.resolve(undefined),
    ])
    return {canary, ...(stable === undefined ? {} : {stable})}
  }
  const scalar = (q: string) => provider.query(q, signal)
  const histogram = async (q: string): Promise<Buckets> => {
    if (!provider.vector) throw new Error(`the metrics provider ${provider.name} cannot read histogram buckets`)
    const series = await provider.vector(q, signal)
    return bucketsFromCumulative(
      series.filter((x) => x.labels.le !== undefined).map((x) => ({le: x.labels.le, value: x.value})),
    )
  }
  try {
    const [canary, stable, samples, errors, buckets] = await Promise.all([
      provider.query(canaryQuery, signal),
      stableQuery ? provider.query(stableQuery, signal) : Promise.resolve(undefined),
      metric.bucketsQuery && statistical ? undefined : both(metric.samplesQuery, scalar),
      statistical ? both(metric.errorsQuery, scalar) : undefined,
      statistical ? both(metric.bucketsQuery, histogram) : undefined,
    ])
    const data: MeasurementData = {
      ...(samples ? {samples} : {}),
      ...(errors ? {errors} : {}),
      ...(buckets
        ? {
            buckets: {
              canary: roundBuckets(buckets.canary),
              ...(buckets.stable ? {stable: roundBuckets(buckets.stable)} : {}),
            },
          }
        : {}),
    }
    const decision = evaluateMeasurement(metric, canary, stable, spec.missingData, data, spec.windowMs)
    return {at, ...decision, canary, ...(stable === undefined ? {} : {stable}), queries}
  } catch (error) {
    if (signal?.aborted) throw error
    const text = error instanceof ConditionError ? `bad condition: ${error.message}` : (error as Error).message
    return {at, phase: 'Error', reason: `${metric.name}: query failed: ${text}`, queries}
  }
}

/** increase() extrapolates counts to fractions: the tests count whole requests. */
function roundBuckets(b: Buckets): Buckets {
  const counts = b.counts.map((c) => Math.round(c))
  return {bounds: b.bounds, counts, total: counts.reduce((x, y) => x + y, 0)}
}

/** The most observations any metric needs per side and window (0: no minimum). */
function minimumEvidence(spec: AnalysisSpec): number {
  return Math.max(0, ...spec.metrics.map((m) => (m.samplesQuery || m.bucketsQuery ? (m.minSamples ?? 0) : 0)))
}

/** The request rate of a service over all versions, customers only (warm-up traffic left out). */
export function requestRateQuery(service: string, namespace: string, windowMs: number): string {
  return `sum(rate(http_requests_total{service="${promEscape(service)}",namespace="${promEscape(namespace)}",synthetic!="true"}[${toPromDuration(windowMs)}]))`
}

/**
 * How long each measurement window must be for the minimum evidence at the canary's weight and
 * the observed traffic, said before an analysis starts. Pure.
 */
export function forecastEvidence(spec: AnalysisSpec, weight: number, rps: number | undefined): EvidenceForecast {
  const needed = minimumEvidence(spec)
  const compares = spec.metrics.some((m) => m.compareWithStable || m.method === 'statistical')
  const windowMs = spec.windowMs
  const base = {weight, needed, windowMs}
  if (needed === 0)
    return {...base, ...(rps === undefined ? {} : {rps}), enough: true, message: 'no minimum evidence is configured'}
  if (rps === undefined)
    return {
      ...base,
      enough: false,
      message: `the service's request rate is unknown (no data in Prometheus): each measurement needs ≥ ${needed} requests per side in its ${formatDuration(windowMs)} window`,
    }
  const canaryRps = (rps * weight) / 100
  const stableRps = (rps * (100 - weight)) / 100
  const time = (r: number) => (r > 0 ? Math.ceil((needed / r) * 1000) : undefined)
  const canaryMs = time(canaryRps)
  const stableMs = compares ? time(stableRps) : undefined
  const longest = Math.max(canaryMs ?? Infinity, compares ? (stableMs ?? Infinity) : 0)
  const rate = (r: number) => `${Math.round(r * 100) / 100} req/s`
  const lasting = (x: number | undefined) => (x === undefined ? 'never (no traffic)' : `≥ ${formatDuration(x)}`)
  const head = `at ${weight} % of ${rate(rps)} the canary gets ${rate(canaryRps)} and needs ${lasting(canaryMs)} for ${needed} requests${compares ? ` (stable at ${rate(stableRps)}: ${lasting(stableMs)})` : ''}`
  const enough = longest <= windowMs
  const message = enough
    ? `${head}; the ${formatDuration(windowMs)} measurement window is long enough`
    : `${head}; the measurement window is ${formatDuration(windowMs)}: measurements will be inconclusive unless ${
        Number.isFinite(longest)
          ? `the window is at least ${formatDuration(longest)} (rollout.analysis.window), the weight is higher, or traffic grows`
          : 'traffic reaches both sides'
      }`
  return {
    ...base,
    rps,
    canaryRps,
    stableRps,
    ...(canaryMs === undefined ? {} : {canaryMs}),
    ...(stableMs === undefined ? {} : {stableMs}),
    enough,
    message,
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

/** An analysis run as deploy --json, rollout get --json and the HTML report show it: each metric's decisive measurement with its numbers. */
export interface AnalysisVerdict {
  id: string
  kind: string
  phase: AnalysisRun['phase']
  message?: string
  forecast?: EvidenceForecast
  metrics: {
    name: string
    phase: MetricResult['phase']
    successful: number
    failed: number
    inconclusive: number
    errors: number
    /** The measurement that decided the metric (its last one of the metric's phase, else its last). */
    decisive?: Pick<Measurement, 'at' | 'phase' | 'reason' | 'canary' | 'stable' | 'evidence'>
  }[]
}

export function analysisVerdict(run: AnalysisRun): AnalysisVerdict {
  return {
    id: run.id,
    kind: run.kind,
    phase: run.phase,
    ...(run.message ? {message: run.message} : {}),
    ...(run.forecast ? {forecast: run.forecast} : {}),
    metrics: run.metrics.map((m) => {
      const decisive = [...m.measurements].reverse().find((x) => x.phase === m.phase) ?? m.measurements.at(-1)
      return {
        name: m.name,
        phase: m.phase,
        successful: m.successful,
        failed: m.failed,
        inconclusive: m.inconclusive,
        errors: m.errors,
        ...(decisive
          ? {
              decisive: {
                at: decisive.at,
                phase: decisive.phase,
                reason: decisive.reason,
                ...(decisive.canary === undefined ? {} : {canary: decisive.canary}),
                ...(decisive.stable === undefined ? {} : {stable: decisive.stable}),
                ...(decisive.evidence ? {evidence: decisive.evidence} : {}),
              },
            }
          : {}),
      }
    }),
  }
}

/** A one-line description of an analysis spec, for status output. */
export function describeSpec(spec: AnalysisSpec): string {
  const minimum = minimumEvidence(spec)
  const statistical = spec.metrics.find((m) => m.method === 'statistical')
  const judgement = [
    ...(statistical ? [`statistical at ${Math.round((statistical.confidence ?? 0.95) * 1000) / 10} %`] : []),
    ...(minimum > 0 ? [`≥ ${minimum} per side`] : []),
  ]
  return `${spec.metrics.map((m) => m.name).join(', ')} every ${formatDuration(spec.intervalMs)} × ${spec.count} over ${formatDuration(spec.windowMs)} (${[...judgement, `failureLimit ${spec.failureLimit}`, `inconclusiveLimit ${spec.inconclusiveLimit}`, `missingData ${spec.missingData}`].join(', ')})`
}
