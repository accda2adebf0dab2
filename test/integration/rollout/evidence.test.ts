// Statistical canary judgement on real metrics: the bundled catalog service runs as real processes
// on 127.0.0.1 (one stable, three canary versions with the services' own fault settings), all
// scraped by the sandbox's Prometheus through file-SD and loaded at once, so one scrape wait serves
// every case. The abort is a real `deploy --canary`; the other two run the analysis the CLI runs
// (the spec built from the same retailops.yaml, the same Prometheus provider) against those
// processes' versions, which keeps the file short: the engine's pause on an inconclusive verdict
// (exit 22) is covered by analysis.test.ts. What is judged: counts of requests and 5xx, and the
// latency histogram's buckets, as Prometheus scraped them.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {buildAnalysisSpec, prometheusProvider, runAnalysis} from '../../../src/rollout/analysis.js'
import type {ServiceConfig} from '../../../src/config/schema.js'
import {sandboxEnv} from '../../support/sandbox.js'

import {
  generateLoad,
  registerTargets,
  RolloutProject,
  runService,
  waitForMetrics,
  type RunningService,
} from './helpers.js'

// One measurement per analysis over a 30 s window (about 750 canary requests at HIGH_RPS: enough that a
// 3 % canary's observed difference stays clear of the 1 % effect threshold and under the absolute 5 %
// condition on a loaded machine: at 20 s and 2 %, a CI run saw it pass); the minimum is the default 50 requests.
const ANALYSIS = {interval: '2s', count: 1, window: '30s', failureLimit: 0, inconclusiveLimit: 0, missingData: 'fail'}
const HIGH_RPS = 100

describe('statistical canary analysis against Prometheus: minimum evidence and effect size', () => {
  const p = new RolloutProject({
    catalog: {
      tier: 'operational',
      scaling: {minReplicas: 2, maxReplicas: 2},
      rollout: {progressDeadline: '90s', analysis: ANALYSIS},
    },
  })
  const tag = Date.now().toString(36)
  const versions = {
    erroring: `e${tag}`, // 3 % errors under enough load
    quiet: `q${tag}`, // 2 % errors with too little load for 50 requests in 30 s
    slower: `s${tag}`, // 1 ms slower under high load
    base: `b${tag}`, // its stable: the same spread of latencies (0-10 ms drawn per request), 1 ms less
  }
  /** The analysis the CLI would run for the catalog service, on these versions, once. */
  const analyse = (canaryVersion: string, stableVersion: string) =>
    runAnalysis({
      provider: prometheusProvider(sandboxEnv().prometheusUrl),
      target: {service: 'catalog', namespace: p.ns, canaryVersion, stableVersion},
      spec: buildAnalysisSpec({slos: [], rollout: {analysis: ANALYSIS}} as unknown as ServiceConfig, {
        intervalMs: 1,
        count: 1,
      }),
      kind: 'step 2',
    })
  const processes: RunningService[] = []
  let unregister: (() => void) | undefined
  const loads: ReturnType<typeof generateLoad>[] = []

  beforeAll(async () => {
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('catalog')
    const [stable, erroring, quiet, slower, base] = await Promise.all([
      runService('catalog', {APP_VERSION: 'v1'}),
      runService('catalog', {APP_VERSION: versions.erroring, FAULT_ERROR_RATE: '0.03'}),
      runService('catalog', {APP_VERSION: versions.quiet, FAULT_ERROR_RATE: '0.02'}),
      runService('catalog', {APP_VERSION: versions.slower, FAULT_LATENCY_MS: '1', FAULT_LATENCY_JITTER_MS: '10'}),
      runService('catalog', {APP_VERSION: versions.base, FAULT_LATENCY_JITTER_MS: '10'}),
    ])
    processes.push(stable, erroring, quiet, slower, base)
    unregister = registerTargets(
      `${p.ns}-catalog`,
      processes.map((r) => ({url: r.url, labels: {service: 'catalog', namespace: p.ns}})),
    )
    loads.push(
      generateLoad(
        [stable, erroring, slower, base].map((r) => `${r.url}/products`),
        {rps: HIGH_RPS, maxMs: 120_000},
      ),
      generateLoad([`${quiet.url}/products`], {rps: 1, maxMs: 120_000}),
    )
    await waitForMetrics(
      'catalog',
      p.ns,
      ['v1', versions.erroring, versions.quiet, versions.slower, versions.base],
      processes.map((r) => new URL(r.url).host),
    )
  }, 120_000)

  afterAll(async () => {
    await Promise.all(loads.map((l) => l.stop()))
    unregister?.()
    await Promise.all(processes.map((r) => r.stop()))
    await p.cleanup()
  })

  it('aborts a canary with 3 % errors under enough load: significant and beyond the effect threshold', async () => {
    const r = await p.deploy(['catalog'], versions.erroring, ['--canary', '--steps', '50,analysis,100'])
    const state = (await p.state('catalog'))!
    expect(r.exitCode, state.reason).toBe(20)
    expect(state.phase).toBe('Aborted')
    const run = state.analysisRuns.at(-1)!
    const m = run.metrics.find((x) => x.name === 'error-rate')!.measurements.at(-1)!
    expect(m.phase).toBe('Failed')
    const e = m.evidence!
    expect(e.samples.canary).toBeGreaterThan(500)
    expect(e.samples.stable).toBeGreaterThan(500)
    expect(e.proportion!.stable.failures).toBe(0)
    expect(e.proportion!.canary.failures).toBeGreaterThan(0)
    expect(e.proportion!.pValue).toBeLessThan(0.05)
    expect(e.proportion!.difference).toBeGreaterThanOrEqual(0.01)
    expect(e.proportion!).toMatchObject({significant: true, material: true, confidence: 0.95, minEffect: 0.01})
    // Not the absolute 5 % condition: the comparison with stable decided it.
    expect(m.canary).toBeLessThan(0.05)
    expect(state.reason).toMatch(
      /error-rate: canary [\d.]+ % \(\d+\/\d+\) vs stable 0 % \(0\/\d+\): .* the canary fails more often/,
    )
    // The forecast was said before the measurement, from the observed request rate.
    expect(run.forecast!.rps).toBeGreaterThan(0)
    expect(run.forecast!.message).toMatch(/^at 50 % of [\d.]+ req\/s the canary gets/)
    // deploy --json carries the numbers too; traffic is back on stable and the canary gone.
    const verdict = r.json.result.release.rollouts[0].analysis.at(-1)
    expect(verdict.metrics[0].decisive.evidence.proportion.pValue).toBe(e.proportion!.pValue)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect((await p.deployment('catalog'))!.spec.template.metadata.labels['app.kubernetes.io/version']).toBe('v1')
  })

  it('finds a 2 % error canary inconclusive under too little load, saying how many requests it had and needed', async () => {
    const run = await analyse(versions.quiet, 'v1')
    expect(run.phase).toBe('Inconclusive')
    const m = run.metrics.find((x) => x.name === 'error-rate')!.measurements.at(-1)!
    expect(m.phase).toBe('Inconclusive')
    expect(m.evidence!.samples.canary).toBeGreaterThan(0)
    expect(m.evidence!.samples.canary).toBeLessThan(50)
    expect(m.evidence!.samples.stable).toBeGreaterThan(50)
    expect(m.reason).toBe(
      `error-rate: not enough evidence in the last 30s: canary ${m.evidence!.samples.canary} requests, stable ${m.evidence!.samples.stable}; each needs ≥ 50 (minSamples), so it neither passes nor fails`,
    )
    expect(m.evidence!.proportion).toBeUndefined()
    expect(run.message).toContain('not enough evidence')
  })

  it('passes a canary 1 ms slower at high volume on effect size: measurably slower, but negligibly', async () => {
    const run = await analyse(versions.slower, versions.base)
    const m = run.metrics.find((x) => x.name === 'latency')!.measurements.at(-1)!
    expect(m.phase, m.reason).toBe('Successful')
    const d = m.evidence!.distribution!
    expect(d.canary.observations).toBeGreaterThan(500)
    expect(d.stable.observations).toBeGreaterThan(500)
    // The buckets see the shift (the canary is the slower one), but it is far below the threshold.
    expect(d.rankBiserial).toBeGreaterThan(0)
    expect(d.rankBiserial).toBeLessThan(d.minEffect)
    expect(d.material).toBe(false)
    // Significant at this volume (p ≈ 1e-8 in the runs so far, rank-biserial ≈ 0.13): it passes on effect size alone.
    expect(d.significant).toBe(true)
    expect(m.reason).toContain('but the effect is below the effect threshold 0.2: negligible')
    expect(m.reason).toMatch(/^latency: canary p50 [\d.]+ ms, p95 [\d.]+ ms \(\d+\) vs stable .* rank-biserial 0\.\d+/)
    expect(run.phase).toBe('Successful')
  })
})
