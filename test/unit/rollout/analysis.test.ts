import {describe, expect, it} from 'vitest'

import {
  buildAnalysisSpec,
  DEFAULT_JUDGEMENT,
  defaultMetrics,
  describeSpec,
  evaluateMeasurement,
  forecastEvidence,
  newRun,
  renderQuery,
  runAnalysis,
  summarize,
  tally,
  type MetricsProvider,
} from '../../../src/rollout/analysis.js'
import {bucketsFromCumulative} from '../../../src/rollout/statistics.js'
import type {AnalysisSpec, MetricSpec} from '../../../src/rollout/types.js'

const errorRate = defaultMetrics()[0]
const latency = defaultMetrics()[1]
const p95 = defaultMetrics(undefined, {...DEFAULT_JUDGEMENT, method: 'tolerance'})[1]

function spec(over: Partial<AnalysisSpec> = {}): AnalysisSpec {
  return {
    intervalMs: 1,
    count: 3,
    failureLimit: 0,
    inconclusiveLimit: 0,
    consecutiveErrorLimit: 2,
    missingData: 'inconclusive',
    windowMs: 30_000,
    metrics: [errorRate],
    ...over,
  }
}

describe('one measurement', () => {
  it('fails on an absolute condition and says why, with the values', () => {
    const m = evaluateMeasurement(errorRate, 0.41, 0.002, 'fail')
    expect(m.phase).toBe('Failed')
    expect(m.reason).toContain('canary 0.41')
    expect(m.reason).toContain('stable 0.002')
    expect(m.reason).toContain('result > 0.05')
  })

  it('fails a canary that is worse than stable beyond tolerance and margin', () => {
    const m = evaluateMeasurement(p95, 0.48, 0.0095, 'fail')
    expect(m.phase).toBe('Failed')
    expect(m.reason).toMatch(/worse than stable 0.0095 beyond the allowed 0.0595/)
    expect(evaluateMeasurement(p95, 0.03, 0.0095, 'fail').phase).toBe('Successful')
  })

  it('never passes missing data silently: the policy decides and is named', () => {
    expect(evaluateMeasurement(errorRate, null, 0, 'inconclusive')).toMatchObject({phase: 'Inconclusive'})
    expect(evaluateMeasurement(errorRate, null, 0, 'fail')).toMatchObject({phase: 'Failed'})
    const pass = evaluateMeasurement(errorRate, null, 0, 'pass')
    expect(pass.phase).toBe('Successful')
    expect(pass.reason).toContain('missingData=pass')
    expect(evaluateMeasurement(errorRate, 0, null, 'fail').reason).toContain('stable query returned no data')
  })

  it('fails a canary slower than the last histogram bucket (+Inf), never reads it as missing', () => {
    const m = evaluateMeasurement(p95, Number.POSITIVE_INFINITY, 0.01, 'pass')
    expect(m.phase).toBe('Failed')
    expect(m.reason).toContain('canary Infinity')
  })

  it('substitutes query variables', () => {
    const q = renderQuery(errorRate.query, {service: 'checkout', namespace: 'shop', version: 'v2', windowMs: 60_000})
    expect(q).toContain('service="checkout",namespace="shop",version="v2"')
    expect(q).toContain('[1m]')
    expect(q).not.toContain('{{')
  })
})

describe('limits', () => {
  const metric: MetricSpec = {
    name: 'x',
    query: 'x',
    failureCondition: 'result > 1',
    compareWithStable: false,
    tolerance: 0,
    minDifference: 0,
  }

  it('fails when failures exceed failureLimit and succeeds after count', () => {
    const s = spec({metrics: [metric], failureLimit: 1, count: 4})
    let r = newRun(s, 'step 1').metrics[0]
    const at = new Date().toISOString()
    r = tally(r, {at, phase: 'Failed', reason: 'a'}, s)
    expect(r.phase).toBe('Running')
    r = tally(r, {at, phase: 'Successful', reason: 'b'}, s)
    r = tally(r, {at, phase: 'Failed', reason: 'c'}, s)
    expect(r.phase).toBe('Failed')
  })

  it('never succeeds without one successful measurement, even within the inconclusive limit', () => {
    const s = spec({metrics: [metric], inconclusiveLimit: 5, count: 2})
    let r = newRun(s, 'k').metrics[0]
    const at = new Date().toISOString()
    r = tally(r, {at, phase: 'Inconclusive', reason: 'no data'}, s)
    r = tally(r, {at, phase: 'Inconclusive', reason: 'no data'}, s)
    expect(r.phase).toBe('Inconclusive')
  })

  it('errors after consecutive query errors, and a success resets the streak', () => {
    const s = spec({metrics: [metric], consecutiveErrorLimit: 1, count: 5})
    let r = newRun(s, 'k').metrics[0]
    const at = new Date().toISOString()
    r = tally(r, {at, phase: 'Error', reason: 'e'}, s)
    r = tally(r, {at, phase: 'Successful', reason: 'ok'}, s)
    r = tally(r, {at, phase: 'Error', reason: 'e'}, s)
    expect(r.phase).toBe('Running')
    r = tally(r, {at, phase: 'Error', reason: 'e'}, s)
    expect(r.phase).toBe('Error')
  })
})

describe('a whole run', () => {
  /**
   * A scripted provider: per side (by version), a list of values for the metric's own query, and
   * the requests and 5xx counts behind each measurement (100 requests each unless given).
   */
  const values = (
    map: Record<string, (number | null)[]>,
    counts: Record<string, {requests: number; errors: number}> = {},
  ): MetricsProvider => {
    const calls: Record<string, number> = {}
    return {
      name: 'scripted',
      async query(q) {
        const key = q.includes('version="canary"') ? 'canary' : 'stable'
        const c = counts[key] ?? {requests: 100, errors: 0}
        if (q.startsWith('sum(increase(http_requests_total')) return q.includes('code=~') ? c.errors : c.requests
        const i = (calls[key] = (calls[key] ?? -1) + 1)
        const list = map[key]
        return list[Math.min(i, list.length - 1)]
      },
    }
  }
  const target = {service: 's', namespace: 'n', canaryVersion: 'canary', stableVersion: 'stable'}

  it('succeeds with every measurement explained', async () => {
    const run = await runAnalysis({
      provider: values({canary: [0, 0.001, 0], stable: [0, 0, 0]}),
      target,
      spec: spec(),
      kind: 'step 1',
    })
    expect(run.phase).toBe('Successful')
    expect(run.metrics[0].measurements).toHaveLength(3)
    expect(run.message).toContain('error-rate: canary 0')
  })

  it('stops at the first failure beyond the limit', async () => {
    const progress: string[] = []
    const run = await runAnalysis({
      provider: values({canary: [0.3], stable: [0]}),
      target,
      spec: spec({count: 5}),
      kind: 'step 1',
      onProgress: async (r) => void progress.push(r.phase),
    })
    expect(run.phase).toBe('Failed')
    expect(progress).toEqual(['Failed'])
    expect(run.message).toMatch(/^Failed: error-rate: canary 0.3, stable 0/)
  })

  it('is inconclusive when the canary gets no traffic', async () => {
    const run = await runAnalysis({
      provider: values({canary: [null], stable: [0]}),
      target,
      spec: spec(),
      kind: 'step 1',
    })
    expect(run.phase).toBe('Inconclusive')
    expect(summarize(run).message).toContain('no data')
  })

  it('builds the configured spec with defaults', () => {
    const s = buildAnalysisSpec(undefined, {count: 2})
    expect(s).toMatchObject({count: 2, intervalMs: 30_000, windowMs: 30_000, missingData: 'inconclusive'})
    expect(s.metrics.map((m) => m.name)).toEqual(['error-rate', 'latency'])
    expect(s.metrics.every((m) => m.method === 'statistical' && m.minSamples === 50 && m.confidence === 0.95)).toBe(
      true,
    )
    expect(s.metrics.map((m) => m.minEffect)).toEqual([0.01, 0.2])
  })

  it('is inconclusive, never failed, when a side has too few requests; the sentence gives the counts', async () => {
    const run = await runAnalysis({
      provider: values({canary: [0.5], stable: [0]}, {canary: {requests: 12, errors: 6}}),
      target,
      spec: spec(),
      kind: 'step 1',
    })
    expect(run.phase).toBe('Inconclusive')
    const m = run.metrics[0].measurements[0]
    expect(m.evidence?.samples).toEqual({canary: 12, stable: 100, needed: 50})
    expect(m.reason).toBe(
      'error-rate: not enough evidence in the last 30s: canary 12 requests, stable 100; each needs ≥ 50 (minSamples), so it neither passes nor fails',
    )
  })
})

describe('statistical judgement', () => {
  const counts = (canary: [number, number], stable: [number, number]) => ({
    samples: {canary: canary[0], stable: stable[0]},
    errors: {canary: canary[1], stable: stable[1]},
  })

  it('fails a canary whose error rate is significantly and materially worse, with every number in the sentence', () => {
    const m = evaluateMeasurement(errorRate, 0.02, 0.001, 'fail', counts([2000, 40], [9000, 9]), 60_000)
    expect(m.phase).toBe('Failed')
    const p = m.evidence!.proportion!
    expect(p).toMatchObject({canary: {requests: 2000, failures: 40, rate: 0.02}, stable: {requests: 9000, failures: 9}})
    expect(p.significant && p.material).toBe(true)
    expect(p.test).toBe('z')
    expect(p.pValue).toBeLessThan(1e-6)
    expect(p.interval[0]).toBeGreaterThan(0)
    expect(m.reason).toMatch(
      /^error-rate: canary 2 % \(40\/2000\) vs stable 0\.1 % \(9\/9000\): \+1\.9 points \(95 % CI \+1\.\d+ points to \+2\.\d+ points\), one-sided z-test z = [\d.]+, p = [\d.e-]+ < 0\.05 and the difference reaches the effect threshold \+1 points: the canary fails more often$/,
    )
  })

  it('passes a significant but negligible difference on effect size', () => {
    const m = evaluateMeasurement(errorRate, 0.005, 0.002, 'fail', counts([200_000, 1000], [1_800_000, 3600]))
    expect(m.evidence!.proportion!.significant).toBe(true)
    expect(m.evidence!.proportion!.material).toBe(false)
    expect(m.phase).toBe('Successful')
    expect(m.reason).toContain('below the effect threshold +1 points: negligible')
  })

  it('passes a large but insignificant difference (one error in 60 requests)', () => {
    const m = evaluateMeasurement(errorRate, 1 / 60, 0, 'fail', counts([60, 1], [540, 0]))
    expect(m.phase).toBe('Successful')
    expect(m.evidence!.proportion!.pValue).toBeGreaterThan(0.05)
    expect(m.evidence!.proportion!.test).toBe('fisher')
    expect(m.reason).toContain(
      'one-sided Fisher exact test (too few failures for z), p = 0.1 ≥ 0.05: no evidence the canary fails more often',
    )
  })

  const histogram = (counts: number[]) => {
    const bounds = ['0.005', '0.01', '0.025', '0.05', '0.1', '+Inf']
    let sum = 0
    return bucketsFromCumulative(bounds.map((le, i) => ({le, value: (sum += counts[i] ?? 0)})))
  }

  it('fails a slower canary by Mann-Whitney U over the buckets, with quantiles, p-value and rank-biserial', () => {
    const buckets = {canary: histogram([0, 10, 200, 300, 90]), stable: histogram([50, 3000, 1500, 100, 10])}
    const m = evaluateMeasurement(latency, 0.08, 0.02, 'fail', {buckets}, 60_000)
    expect(m.phase).toBe('Failed')
    const d = m.evidence!.distribution!
    expect(m.evidence!.samples).toEqual({canary: 600, stable: 4660, needed: 50})
    expect(d.rankBiserial).toBeGreaterThan(0.8)
    expect(d.canary.p95).toBeGreaterThan(d.stable.p95!)
    expect(m.reason).toMatch(
      /^latency: canary p50 [\d.]+ ms, p95 [\d.]+ ms \(600\) vs stable p50 [\d.]+ ms, p95 [\d.]+ ms \(4660\): Mann-Whitney U one-sided p = [\d.e-]+, rank-biserial 0\.\d+ \(canary slower in [\d.]+ % of pairs\); p < 0\.05 and the effect reaches the effect threshold 0\.2: the canary is slower$/,
    )
  })

  it('passes a latency shift that is significant at high volume but negligible', () => {
    const buckets = {canary: histogram([40_000, 60_500, 100]), stable: histogram([400_000, 598_000, 1000])}
    const m = evaluateMeasurement(latency, 0.009, 0.009, 'fail', {buckets})
    const d = m.evidence!.distribution!
    expect(d.significant).toBe(true)
    expect(Math.abs(d.rankBiserial)).toBeLessThan(0.2)
    expect(m.phase).toBe('Successful')
    expect(m.reason).toContain('negligible')
  })

  it('is inconclusive below minObservations on either side', () => {
    const buckets = {canary: histogram([5, 10, 20]), stable: histogram([5000])}
    const m = evaluateMeasurement(latency, 0.02, 0.004, 'fail', {buckets}, 20_000)
    expect(m.phase).toBe('Inconclusive')
    expect(m.reason).toContain('canary 35 observations, stable 5000; each needs ≥ 50')
  })

  it('keeps the tolerance method as an option, with the minimum evidence too', () => {
    const s = buildAnalysisSpec({slos: [], rollout: {analysis: {method: 'tolerance', minObservations: 80}}} as never)
    expect(s.metrics.map((m) => m.name)).toEqual(['error-rate', 'latency-p95', 'latency-p99'])
    const p95t = s.metrics[1]
    expect(p95t.minSamples).toBe(80)
    const few = evaluateMeasurement(p95t, 0.4, 0.01, 'fail', {samples: {canary: 79, stable: 900}})
    expect(few.phase).toBe('Inconclusive')
    const enough = evaluateMeasurement(p95t, 0.4, 0.01, 'fail', {samples: {canary: 80, stable: 900}})
    expect(enough.phase).toBe('Failed')
    expect(enough.reason).toContain('(80 and 900 observations, ≥ 80 needed)')
  })

  it('refuses a statistical custom metric without counts, and errors without samples', () => {
    const bad = (metric: Record<string, unknown>) => () =>
      buildAnalysisSpec({
        slos: [],
        rollout: {
          analysis: {
            metrics: [{name: 'm', query: 'q', compareWithStable: true, tolerance: 0, minDifference: 0, ...metric}],
          },
        },
      } as never)
    expect(bad({method: 'statistical'})).toThrow(/statistical needs counts to test/)
    expect(bad({errors: 'e'})).toThrow()
    expect(bad({errors: 'e', samples: 's'})).not.toThrow()
    expect(bad({buckets: 'b', errors: 'e', samples: 's'})).toThrow()
  })
})

describe('the spec in one line', () => {
  it('names the method, confidence and minimum', () => {
    expect(describeSpec(buildAnalysisSpec(undefined, {count: 2}))).toBe(
      'error-rate, latency every 30s × 2 over 30s (statistical at 95 %, ≥ 50 per side, failureLimit 1, inconclusiveLimit 1, missingData inconclusive)',
    )
  })
})

describe('how long a step must measure', () => {
  const s = spec({metrics: [errorRate], windowMs: 60_000})

  it('says the canary needs longer than the window at a low weight on a quiet service', () => {
    const f = forecastEvidence(s, 10, 3.2)
    expect(f.canaryRps).toBeCloseTo(0.32, 12)
    expect(f.canaryMs).toBe(156_250)
    expect(f.enough).toBe(false)
    expect(f.message).toBe(
      'at 10 % of 3.2 req/s the canary gets 0.32 req/s and needs ≥ 2m36s for 50 requests (stable at 2.88 req/s: ≥ 17s); the measurement window is 1m: measurements will be inconclusive unless the window is at least 2m36s (rollout.analysis.window), the weight is higher, or traffic grows',
    )
  })

  it('says the window is enough when it is', () => {
    const f = forecastEvidence(s, 50, 40)
    expect(f).toMatchObject({enough: true, canaryMs: 2500, stableMs: 2500})
    expect(f.message).toContain('the 1m measurement window is long enough')
  })

  it('says so when there is no traffic, or the rate is unknown', () => {
    expect(forecastEvidence(s, 10, 0).message).toContain('needs never (no traffic)')
    expect(forecastEvidence(s, 10, 0).message).toContain('unless traffic reaches both sides')
    expect(forecastEvidence(s, 10, undefined)).toMatchObject({enough: false})
  })
})
