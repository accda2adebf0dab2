import {describe, expect, it} from 'vitest'

import {detailOf, stepsOf} from '../../../src/rollout/overview.js'
import type {RolloutState, Step} from '../../../src/rollout/types.js'

const steps: Step[] = [{setWeight: 20}, {analysis: {}}, {setWeight: 50}, {pause: {}}]
const at = (step: number, phase: RolloutState['phase']) => ({spec: {steps} as RolloutState['spec'], step, phase})

describe('rollout overview', () => {
  it('marks each step done, current or pending, with the weight in force after it', () => {
    expect(stepsOf(at(1, 'Analyzing'))).toEqual([
      {index: 0, label: '20%', weight: 20, state: 'done'},
      {index: 1, label: 'analysis', weight: 20, state: 'current'},
      {index: 2, label: '50%', weight: 50, state: 'pending'},
      {index: 3, label: 'pause', weight: 50, state: 'pending'},
    ])
    expect(stepsOf(at(4, 'Healthy')).map((s) => s.state)).toEqual(['done', 'done', 'done', 'done'])
    // An aborted rollout has no current step: the one it stopped at stays pending.
    expect(stepsOf(at(2, 'Aborted')).map((s) => s.state)).toEqual(['done', 'done', 'pending', 'pending'])
  })

  it('keeps the last runs and events, and numbers the history without the pod templates', () => {
    const state = {
      ...at(3, 'Paused'),
      id: 'r-2',
      service: 'checkout',
      namespace: 'shop',
      group: ['checkout'],
      releaseId: 'rel',
      spec: {steps, strategy: 'canary', analysis: {metrics: [{name: 'error-rate'}]}},
      stepStartedAt: '2026-12-07T10:00:00Z',
      message: 'paused',
      stable: {version: 'v1', images: [], digests: []},
      canary: {version: 'v2', images: [], digests: []},
      weight: 50,
      desiredWeight: 50,
      canaryReplicas: 1,
      desired: {},
      stableTemplate: {},
      analysisRuns: Array.from({length: 7}, (_, i) => ({
        id: `run-${i}`,
        kind: 'step 2',
        phase: 'Successful',
        startedAt: '',
        metrics: [],
      })),
      events: Array.from({length: 45}, (_, i) => ({at: `t${i}`, phase: 'Progressing', message: `e${i}`})),
      createdAt: '2026-12-07T10:00:00Z',
      updatedAt: '2026-12-07T10:01:00Z',
    } as unknown as RolloutState
    const history = [
      {
        id: 'r-0',
        strategy: 'canary',
        phase: 'Healthy',
        startedAt: '',
        stable: {version: 'v0'},
        canary: {version: 'v1'},
        message: 'ok',
        canaryTemplate: {a: 1},
        stableTemplate: {b: 2},
      },
    ] as unknown as Parameters<typeof detailOf>[1]
    const detail = detailOf(state, history)
    expect(detail.analysisRuns.map((r) => r.id)).toEqual(['run-2', 'run-3', 'run-4', 'run-5', 'run-6'])
    expect(detail.events).toHaveLength(40)
    expect(detail.events[0].message).toBe('e5')
    expect(detail.history).toEqual([
      {
        id: 'r-0',
        strategy: 'canary',
        phase: 'Healthy',
        startedAt: '',
        stable: {version: 'v0'},
        canary: {version: 'v1'},
        message: 'ok',
        number: 1,
      },
    ])
    expect(detail.metrics).toEqual([{name: 'error-rate'}])
    expect(detail).toMatchObject({service: 'checkout', phase: 'Paused', weight: 50, steps: '20%,analysis,50%,pause'})
  })
})
