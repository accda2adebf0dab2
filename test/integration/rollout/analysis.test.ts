// Canary analysis on real metrics: the bundled catalog service runs as two real processes on
// 127.0.0.1 (APP_VERSION v1 = stable, v2 = canary, fault injection on the canary), registered
// with the sandbox's Prometheus through file-SD with the labels of the Kubernetes objects
// (service, namespace), while a bounded load generator sends them traffic. The analysis reads
// what Prometheus scraped.
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {eventually} from '../../support/sandbox.js'
import {RolloutProject, ServiceTraffic} from './helpers.js'

const ANALYSIS = {interval: '5s', count: 3, window: '20s', failureLimit: 0, inconclusiveLimit: 0, missingData: 'fail'}

describe('canary analysis against Prometheus', () => {
  const p = new RolloutProject({
    catalog: {
      tier: 'operational',
      scaling: {minReplicas: 2, maxReplicas: 2},
      rollout: {progressDeadline: '90s', analysis: ANALYSIS},
    },
  })
  const traffic = new ServiceTraffic(p, 'catalog', {versionPrefix: 'c', maxMs: 240_000})
  const runningVersion = () => traffic.runningVersion()
  const freshVersion = () => traffic.freshVersion()
  const serve = (canaryFault: Record<string, string>) => traffic.serve(canaryFault)

  beforeAll(async () => {
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('catalog')
  })
  afterEach(() => traffic.stop())
  afterAll(() => p.cleanup())

  it('promotes a good canary after its analysis passes, with every measurement explained', async () => {
    const {canary} = await serve({})
    const r = await p.deploy(['catalog'], canary, ['--canary', '--steps', '50,analysis,100'])
    expect(r.exitCode, JSON.stringify(r.json.result?.release ?? r.json.error)).toBe(0)
    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Healthy')
    const run = state.analysisRuns.at(-1)!
    expect(run.phase).toBe('Successful')
    const errorRate = run.metrics.find((m) => m.name === 'error-rate')!
    expect(errorRate.successful).toBe(3)
    expect(errorRate.measurements[0].canary).toBe(0)
    // Statistical by default: the counts behind it, read from Prometheus, and the test.
    expect(errorRate.measurements[0].reason).toMatch(
      /^error-rate: canary 0 % \(0\/\d+\) vs stable 0 % \(0\/\d+\): .* p = 1 ≥ 0\.05: no evidence the canary fails more often/,
    )
    expect(errorRate.measurements[0].evidence!.samples.canary).toBeGreaterThanOrEqual(50)
    const latency = run.metrics.find((m) => m.name === 'latency')!
    expect(latency.measurements[0].stable).toBeGreaterThan(0)
    expect(latency.measurements[0].evidence!.distribution!.stable.observations).toBeGreaterThanOrEqual(50)
    expect(await runningVersion()).toBe(canary)
  })

  it('aborts a canary that answers with errors, and says so with the measured error rate', async () => {
    const {stable, canary} = await serve({FAULT_ERROR_RATE: '0.5'})
    const r = await p.deploy(['catalog'], canary, ['--canary', '--steps', '50,analysis,100'])
    const state = (await p.state('catalog'))!
    expect(r.exitCode).toBe(20)
    expect(state.analysisRuns, state.reason).toHaveLength(1)
    expect(state.phase).toBe('Aborted')
    const failed = state.analysisRuns.at(-1)!.metrics.find((m) => m.name === 'error-rate')!
    const m = failed.measurements.at(-1)!
    expect(m.phase).toBe('Failed')
    expect(m.canary).toBeGreaterThan(0.3)
    expect(m.stable).toBe(0)
    expect(state.reason).toMatch(
      /analysis failed: Failed: error-rate: canary 0\.\d+, stable 0; failureCondition "result > 0.05" is true/,
    )
    expect(r.json.result.release.rollouts[0].reason).toBe(state.reason)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect(await runningVersion()).toBe(stable)
  })

  it('aborts a canary that answers slowly, compared with stable on its latency distribution', async () => {
    const {canary} = await serve({FAULT_LATENCY_MS: '300'})
    const r = await p.deploy(['catalog'], canary, ['--canary', '--steps', '50,analysis,100'])
    expect(r.exitCode).toBe(20)
    const state = (await p.state('catalog'))!
    expect(state.analysisRuns, state.reason).toHaveLength(1)
    const latency = state.analysisRuns.at(-1)!.metrics.find((m) => m.name === 'latency')!
    const m = latency.measurements.at(-1)!
    expect(m.phase).toBe('Failed')
    expect(m.canary).toBeGreaterThan(0.25)
    expect(m.stable).toBeLessThan(0.05)
    // Every canary request is slower than every stable one: Mann-Whitney over the buckets says so.
    expect(m.evidence!.distribution!.rankBiserial).toBeGreaterThan(0.9)
    expect(m.reason).toMatch(/^latency: canary p50 [\d.]+ ms, p95 [\d.]+ ms .* the canary is slower$/)
  })

  it('does not pass a canary that gets no traffic: missing data fails it', async () => {
    // Only stable serves; the canary version has no series at all.
    const stable = await runningVersion()
    const s = await traffic.run(stable)
    await traffic.send([s])
    await traffic.scraped([s], [stable])
    const r = await p.deploy(['catalog'], freshVersion(), ['--canary', '--steps', '50,analysis,100'])
    expect(r.exitCode).toBe(20)
    const state = (await p.state('catalog'))!
    expect(state.reason).toContain('returned no data (no traffic?); missingData=fail')
  })

  it('blue-green: switches back when post-promotion analysis sees the new colour fail under real traffic', async () => {
    const stable = await runningVersion()
    const next = freshVersion()
    // Only the old colour has traffic before the switch: pre-promotion has no data, and passes only because missingData says so.
    p.services.catalog.rollout = {
      progressDeadline: '90s',
      scaleDownDelay: '1m',
      analysis: {...ANALYSIS, count: 12, interval: '3s', missingData: 'pass'},
    }
    p.writeConfig()
    const s = await traffic.run(stable)
    await traffic.send([s])
    try {
      const child = p.spawnCli([
        'deploy',
        'catalog',
        '--image',
        p.image('catalog', next),
        '--skip-verify',
        '--blue-green',
      ])
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      const switched = await eventually(
        'the switch to the new colour',
        async () => ((await p.state('catalog'))?.activeColour === 'preview' ? (await p.state('catalog'))! : undefined),
        120_000,
        200,
      )
      // Now the new colour takes the traffic, and fails half of it.
      const c = await traffic.run(next, {FAULT_ERROR_RATE: '0.5'})
      await traffic.send([s, c])
      expect(await exited).toBe(20)
      const state = (await p.state('catalog'))!
      expect(state.phase).toBe('Aborted')
      expect(state.reason).toMatch(/post-promotion analysis failed: Failed: error-rate: canary 0\.\d+/)
      expect((await p.service('catalog'))!.spec.selector['pod-template-hash']).toBeUndefined()
      expect(switched.stable.podTemplateHash).toBeDefined()
      expect(await runningVersion()).toBe(stable)
      expect(await p.deployment('catalog-preview')).toBeUndefined()
    } finally {
      p.services.catalog.rollout = {progressDeadline: '90s', analysis: ANALYSIS}
      p.writeConfig()
    }
  })

  it('pauses an inconclusive analysis for a person, who can accept it with promote', async () => {
    p.services.catalog.rollout = {progressDeadline: '90s', analysis: {...ANALYSIS, missingData: 'inconclusive'}}
    p.writeConfig()
    try {
      const r = await p.deploy(['catalog'], freshVersion(), ['--canary', '--steps', '50,analysis,100'])
      expect(r.exitCode).toBe(22)
      const state = (await p.state('catalog'))!
      expect(state.phase).toBe('Inconclusive')
      expect(state.reason).toContain('missingData=inconclusive counts it as Inconclusive')
      expect((await p.cli(['rollout', 'status', 'catalog'])).exitCode).toBe(22)
      const promoted = await p.cli(['rollout', 'promote', 'catalog'])
      expect(promoted.exitCode, promoted.stderr).toBe(0)
      expect(promoted.json.result.rollouts[0].phase).toBe('Healthy')
    } finally {
      p.services.catalog.rollout = {progressDeadline: '90s', analysis: ANALYSIS}
      p.writeConfig()
    }
  })
})
