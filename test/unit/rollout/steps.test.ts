import {describe, expect, it} from 'vitest'

import {formatSteps, parseStepsFlag, scaleAt, weightAfter} from '../../../src/rollout/steps.js'

describe('--steps syntax', () => {
  it('parses weights, pauses, analysis and scale', () => {
    const steps = parseStepsFlag(
      '10, analysis, 50%, pause:30s, scale:3, scale:20%, scale:match, analysis:2, pause, 100',
    )
    expect(steps).toEqual([
      {setWeight: 10},
      {analysis: {}},
      {setWeight: 50},
      {pause: {duration: '30s'}},
      {setCanaryScale: {replicas: 3}},
      {setCanaryScale: {weight: 20}},
      {setCanaryScale: {matchTrafficWeight: true}},
      {analysis: {count: 2}},
      {pause: {}},
      {setWeight: 100},
    ])
    expect(formatSteps(steps)).toBe('10%,analysis,50%,pause:30s,scale:3,scale:20%,scale:match,analysis:2,pause,100%')
  })

  it('reports every bad item at once', () => {
    let error: unknown
    try {
      parseStepsFlag('101,pause:soon,analysis:0,warp')
    } catch (e) {
      error = e
    }
    const message = (error as Error).message
    expect(message).toContain('"101"')
    expect(message).toContain('"pause:soon"')
    expect(message).toContain('"analysis:0"')
    expect(message).toContain('"warp"')
    expect((error as {exitCode: number}).exitCode).toBe(2)
  })

  it('knows the weight and scale in force at a step', () => {
    const steps = parseStepsFlag('scale:2,10,analysis,50,100')
    expect(weightAfter(steps, 0)).toBe(0)
    expect(weightAfter(steps, 2)).toBe(10)
    expect(weightAfter(steps, 3)).toBe(50)
    expect(scaleAt(steps, 4)).toEqual({replicas: 2})
  })
})
