import {describe, expect, it} from 'vitest'

import {
  buildAnalysisSpec,
  defaultMetrics,
  evaluateMeasurement,
  newRun,
  renderQuery,
  runAnalysis,
  summarize,
  tally,
  type MetricsProvider,
} from '../../../src/rollout/analysis.js'
import type {AnalysisSpec, MetricSpec} from '../../../src/rollout/types.js'

const errorRate = defaultMetrics()[0]
const p95 = defaultMetrics()[1]

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
  const values = (map: Record<string, (number | null)[]>): MetricsProvider => {
    const calls: Record<string, number> = {}
    return {
      name: 'scripted',
      async query(q) {
        const key = q.includes('version="canary"') ? 'canary' : 'stable'
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
    expect(s.metrics.map((m) => m.name)).toEqual(['error-rate', 'latency-p95', 'latency-p99'])
  })
})
