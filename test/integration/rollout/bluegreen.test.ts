// `deploy --blue-green`: a preview Service for the new colour, pre-promotion analysis, the switch
// of the active Service's selector, post-promotion analysis, the old colour scaled down after
// scaleDownDelay, and an instant switch back while the old colour is still up.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {eventually} from '../../support/sandbox.js'
import {RolloutProject} from './helpers.js'

describe('deploy --blue-green', () => {
  // No Prometheus data for these versions: the analyses pass only because missingData says so here.
  const p = new RolloutProject({
    catalog: {
      tier: 'operational',
      scaling: {minReplicas: 2, maxReplicas: 2},
      rollout: {
        progressDeadline: '90s',
        scaleDownDelay: '20s',
        autoPromotion: false,
        analysis: {interval: '1s', count: 1, missingData: 'pass'},
      },
    },
  })

  beforeAll(async () => {
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
  })
  afterAll(() => p.cleanup())

  it('waits for promotion with the preview up, switches the active Service, then retires the old colour', async () => {
    const originalSelector = (await p.service('catalog'))!.spec.selector
    const r = await p.deploy(['catalog'], 'v2', ['--blue-green'])
    expect(r.exitCode, JSON.stringify(r.json.result?.release ?? r.json.error)).toBe(21)
    const state = (await p.state('catalog'))!
    expect(state.analysisRuns[0]).toMatchObject({kind: 'pre-promotion', phase: 'Successful'})
    // The preview has its own Service; the active one is pinned to the old colour.
    expect((await p.service('catalog-preview'))?.spec.selector['retailops.dev/track']).toBe('preview')
    expect((await p.service('catalog'))!.spec.selector['pod-template-hash']).toBe(state.stable.podTemplateHash)
    expect((await p.deployment('catalog-preview'))?.status?.readyReplicas).toBe(2)

    const child = p.spawnCli(['rollout', 'promote', 'catalog'])
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const switched = await eventually(
      'the active Service to switch to the new colour',
      async () => {
        const s = await p.state('catalog')
        return s?.activeColour === 'preview' ? s : undefined
      },
      60_000,
      200,
    )
    expect((await p.service('catalog'))!.spec.selector['pod-template-hash']).toBe(switched.canary.podTemplateHash)
    // During the scale-down delay the old colour is still up.
    expect((await p.deployment('catalog'))?.status?.readyReplicas).toBe(2)
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v1@')

    expect(await exited).toBe(0)
    const done = (await p.state('catalog'))!
    expect(done.phase).toBe('Healthy')
    expect(done.analysisRuns.map((a) => a.kind)).toEqual(['pre-promotion', 'post-promotion'])
    expect((await p.service('catalog'))!.spec.selector).toEqual(originalSelector)
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(await p.deployment('catalog-preview')).toBeUndefined()
    expect(await p.service('catalog-preview')).toBeUndefined()
  })

  it('switches back at once when undone while the old colour is still up', async () => {
    const r = await p.deploy(['catalog'], 'v3', ['--blue-green'])
    expect(r.exitCode).toBe(21)
    const child = p.spawnCli(['rollout', 'promote', 'catalog'])
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const switched = await eventually(
      'the switch',
      async () => ((await p.state('catalog'))?.activeColour === 'preview' ? (await p.state('catalog'))! : undefined),
      60_000,
      200,
    )
    const started = Date.now()
    const undo = await p.cli(['rollout', 'undo', 'catalog'])
    expect(undo.exitCode, undo.stderr).toBe(0)
    expect(undo.json.result).toMatchObject({kind: 'abort', to: 'v2'})
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(await exited).toBe(20)
    const active = (await p.service('catalog'))!.spec.selector
    expect(active['pod-template-hash']).toBeUndefined()
    expect(switched.stable.podTemplateHash).toBeDefined()
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(await p.deployment('catalog-preview')).toBeUndefined()
    expect((await p.state('catalog'))?.phase).toBe('Aborted')
  })
})
