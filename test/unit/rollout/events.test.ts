// The release events the rollout engine and the gates raise: the measured values behind a verdict
// (each metric's last measurement against its condition), the versions, and the commands.
import {describe, expect, it} from 'vitest'

import {announceRefusals, enforceGates} from '../../../src/rollout/gates.js'
import {analysisMeasurements, rolloutEvent} from '../../../src/rollout/events.js'
import {RecordingOutput} from '../../../src/ui/output.js'

const run: any = {
  id: 'r1',
  kind: 'step 2',
  phase: 'Failed',
  startedAt: '2026-12-07T03:00:00Z',
  message: 'Failed: error-rate',
  spec: {
    count: 3,
    metrics: [
      {
        name: 'error-rate',
        failureCondition: 'result > 0.05',
        compareWithStable: true,
        tolerance: 0.2,
        minDifference: 0.01,
      },
      {
        name: 'latency',
        compareWithStable: true,
        method: 'statistical',
        confidence: 0.95,
        minEffect: 0.2,
        tolerance: 0.2,
        minDifference: 0,
      },
    ],
  },
  metrics: [
    {
      name: 'error-rate',
      successful: 1,
      failed: 1,
      measurements: [
        {at: 't', phase: 'Successful', canary: 0, stable: 0, reason: 'ok'},
        {
          at: 't',
          phase: 'Failed',
          canary: 0.41237,
          stable: 0,
          reason: 'error-rate: canary 0.412, stable 0; failureCondition "result > 0.05" is true',
        },
      ],
    },
    {
      name: 'latency',
      successful: 2,
      failed: 0,
      measurements: [{at: 't', phase: 'Successful', canary: 0.0213, stable: null, reason: 'fine'}],
    },
  ],
}

describe('analysisMeasurements', () => {
  it("takes each metric's last measurement, canary and stable, against its condition", () => {
    const [errorRate, latency] = analysisMeasurements(run)
    expect(errorRate).toEqual({
      name: 'error-rate',
      value: 'canary 0.4124, stable 0',
      condition: 'failure if result > 0.05; within 20 % of stable (minDifference 0.01)',
      verdict:
        'Failed (1 passed, 1 failed of 3): error-rate: canary 0.412, stable 0; failureCondition "result > 0.05" is true',
    })
    expect(latency.value).toBe('canary 0.0213, stable no data')
    expect(latency.condition).toBe('not worse than stable at 95 % confidence (minimum effect 0.2)')
  })
})

describe('rolloutEvent', () => {
  it('names the service, both versions, the namespace, the step and weight, and the reason of an abort', () => {
    const state: any = {
      id: 'catalog-x',
      service: 'catalog',
      namespace: 'shop',
      group: ['catalog'],
      releaseId: 'rel',
      spec: {strategy: 'canary', router: 'gateway', steps: [{setWeight: 50}, {analysis: {}}, {setWeight: 100}]},
      step: 1,
      weight: 0,
      reason: 'step 2 analysis failed: Failed: error-rate',
      canary: {version: 'v2'},
      stable: {version: 'v1'},
    }
    const e = rolloutEvent(state, 'rollout.aborted', 'critical', 'aborted')
    expect(e).toMatchObject({services: ['catalog'], version: 'v2', previousVersion: 'v1', namespace: 'shop'})
    expect(e.facts).toMatchObject({
      Rollout: 'catalog-x (canary, gateway router)',
      Step: '2/3 (analysis)',
      'Traffic to new version': '0 %',
      Reason: 'step 2 analysis failed: Failed: error-rate',
    })
    expect(e.actions).toEqual(['retailops rollout status catalog -n shop'])
    expect(rolloutEvent(state, 'rollout.started', 'info', 'started').facts!.Reason).toBeUndefined()
  })
})

describe('release gates', () => {
  const checks: any[] = [
    {
      gate: 'freeze',
      service: 'checkout',
      ok: false,
      detail: 'inside the freeze of campaign bf (2026-11-27 – 2026-11-30)',
    },
    {gate: 'error-budget', service: 'checkout', ok: false, detail: 'availability: budget exhausted (-12 %)'},
    {gate: 'freeze', service: 'search', ok: true, detail: 'tolerant tier'},
  ]

  it('a refusal raises one event per closed gate, then throws REFUSED', () => {
    const out = new RecordingOutput()
    expect(() => enforceGates(checks, undefined, {out, namespace: 'shop', versions: {checkout: 'v7'}})).toThrow(
      /Release refused by 2 gates/,
    )
    const events = out.releaseEvents
    expect(events.map((e) => e.type)).toEqual(['release.refused.freeze', 'release.refused.error-budget'])
    expect(events[1]).toMatchObject({
      services: ['checkout'],
      version: 'v7',
      namespace: 'shop',
      measurements: [{name: 'error-budget', value: 'availability: budget exhausted (-12 %)', verdict: 'closed'}],
    })
    expect(events[1].actions![0]).toBe('retailops slo checkout')
  })

  it('a forced release raises none', () => {
    const out = new RecordingOutput()
    enforceGates(checks, {reason: 'hotfix'}, {out})
    expect(out.releaseEvents).toEqual([])
  })

  it('announceRefusals alone', () => {
    const out = new RecordingOutput()
    announceRefusals([checks[0]], {out})
    expect(out.releaseEvents[0].summary).toContain('refused by the freeze gate: inside the freeze of campaign bf')
  })
})
