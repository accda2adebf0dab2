import {describe, expect, it} from 'vitest'

import {
  analysisVerdict,
  defaultMetrics,
  evaluateMeasurement,
  forecastEvidence,
  newRun,
} from '../../../src/rollout/analysis.js'
import {renderRolloutHtml} from '../../../src/rollout/report.js'
import {bucketsFromCumulative} from '../../../src/rollout/statistics.js'
import type {RolloutTree} from '../../../src/rollout/tree.js'
import type {AnalysisSpec} from '../../../src/rollout/types.js'

const [errorRate, latency] = defaultMetrics()

function tree(): RolloutTree {
  const spec: AnalysisSpec = {
    intervalMs: 1000,
    count: 1,
    failureLimit: 0,
    inconclusiveLimit: 0,
    consecutiveErrorLimit: 1,
    missingData: 'fail',
    windowMs: 60_000,
    metrics: [errorRate, latency],
  }
  const run = newRun(spec, 'step 2', new Date('2026-12-07T01:00:00Z'), forecastEvidence(spec, 10, 3.2))
  const at = '2026-12-07T01:00:01Z'
  const failed = evaluateMeasurement(errorRate, 0.02, 0.001, 'fail', {
    samples: {canary: 2000, stable: 9000},
    errors: {canary: 40, stable: 9},
  })
  const hist = (counts: number[]) => {
    let sum = 0
    return bucketsFromCumulative(['0.005', '0.01', '+Inf'].map((le, i) => ({le, value: (sum += counts[i])})))
  }
  const few = evaluateMeasurement(
    latency,
    0.004,
    0.004,
    'fail',
    {buckets: {canary: hist([10, 5, 0]), stable: hist([900, 90, 10])}},
    60_000,
  )
  run.metrics[0] = {
    ...run.metrics[0],
    phase: 'Failed',
    failed: 1,
    measurements: [{at, ...failed, canary: 0.02, stable: 0.001}],
  }
  run.metrics[1] = {
    ...run.metrics[1],
    phase: 'Inconclusive',
    inconclusive: 1,
    measurements: [{at, ...few, canary: 0.004, stable: 0.004}],
  }
  run.phase = 'Failed'
  run.message = `Failed: ${failed.reason} (1 failed of 1)`
  return {
    status: {
      service: 'checkout',
      namespace: 'shop',
      strategy: 'canary',
      router: 'gateway',
      phase: 'Aborted',
      reason: 'step 2 analysis failed <script>',
      steps: '10,analysis,100',
      weight: 0,
      stable: {version: 'v1'},
      canary: {version: 'v2'},
      analysisSpec: 'error-rate, latency every 1s × 1',
    },
    root: {kind: 'Rollout', name: 'checkout', health: 'degraded', info: [], children: []},
    analysis: [analysisVerdict(run)],
  } as unknown as RolloutTree
}

describe('the rollout HTML report', () => {
  const page = renderRolloutHtml(tree(), new Date('2026-12-07T02:00:00Z'))

  it('shows every verdict with its counts, test, p-value, interval, effect size and thresholds', () => {
    expect(page).toContain('<h1>Rollout checkout: Aborted</h1>')
    expect(page).toContain('step 2 analysis (')
    expect(page).toMatch(/<span class="badge bad">Failed<\/span>/)
    expect(page).toContain('<td class="num">2000</td><td class="num">9000</td><td class="num">50</td>')
    expect(page).toMatch(/two-proportion z-test \(z = [\d.]+\)/)
    expect(page).toMatch(/[\d.e-]+ \(α = 0\.05\)/)
    expect(page).toMatch(/2 % − 0\.1 % = 1\.9 % \(95 % CI 1\.\d+ % to 2\.\d+ %\)/)
    expect(page).toContain('≥ 1 %')
    // The inconclusive latency measurement: its counts against the minimum, in the table and the sentence.
    expect(page).toMatch(/<span class="badge warn">Inconclusive<\/span>/)
    expect(page).toContain('<td class="num">15</td><td class="num">1000</td><td class="num">50</td>')
    expect(page).toContain(
      'latency</b>: latency: not enough evidence in the last 1m: canary 15 observations, stable 1000',
    )
  })

  it('says what was forecast before the run, as a warning when the window is too short', () => {
    expect(page).toMatch(
      /<div class="note warn">Before it started: at 10 % of 3\.2 req\/s the canary gets 0\.32 req\/s/,
    )
  })

  it('escapes what it did not build', () => {
    expect(page).toContain('step 2 analysis failed &lt;script&gt;')
    expect(page).not.toContain('<script>')
  })
})
