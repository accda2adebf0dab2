import {describe, expect, it} from 'vitest'

import type {Deployment} from '../../../src/kubernetes/kinds.js'
import {parseConfig} from '../../../src/config/parse.js'
import {canaryReplicasFor} from '../../../src/rollout/capacity.js'
import {groupExit} from '../../../src/rollout/status.js'
import {bindToCommand} from '../../../src/rollout/trust.js'
import {enforceGates, freezeCheck, releaseGates} from '../../../src/rollout/gates.js'
import {expectedPeakRps, revisionOf, rolloutSpec} from '../../../src/rollout/start.js'
import {canaryReplicasByRatio, gatewayWeight, stableReplicasFor} from '../../../src/rollout/traffic.js'
import type {RolloutSpec} from '../../../src/rollout/types.js'

const spec = (over: Partial<RolloutSpec> = {}): RolloutSpec => ({
  ...rolloutSpec(undefined, {strategy: 'canary'}, 'gateway', 'checkout', 4),
  ...over,
})

describe('canary capacity', () => {
  it("runs at least the weight's share of the replicas", () => {
    expect(canaryReplicasFor(spec(), 0).replicas).toBe(0)
    expect(canaryReplicasFor(spec(), 10).replicas).toBe(1)
    expect(canaryReplicasFor(spec(), 50).replicas).toBe(2)
    expect(canaryReplicasFor(spec(), 100).replicas).toBe(4)
  })

  it('runs enough pods for the observed traffic at the per-pod capacity', () => {
    const s = spec({rpsPerPod: 10, targetUtilization: 0.5})
    const r = canaryReplicasFor(s, 20, undefined, 100)
    expect(r.replicas).toBe(4) // 100 rps × 20 % = 20 rps at 5 rps/pod
    expect(r.reason).toContain('rps')
  })

  it('treats setCanaryScale as a floor and caps at maxReplicas', () => {
    expect(canaryReplicasFor(spec(), 10, {replicas: 3}).replicas).toBe(3)
    expect(canaryReplicasFor(spec(), 10, {weight: 50}).replicas).toBe(2)
    const capped = canaryReplicasFor(spec({rpsPerPod: 1, maxReplicas: 6}), 100, undefined, 1000)
    expect(capped).toMatchObject({replicas: 6, capped: true})
  })

  it('approximates weights by pod count without a router', () => {
    expect(canaryReplicasByRatio(10, 41)).toBe(4)
    expect(stableReplicasFor(10, 41)).toBe(6)
    expect(canaryReplicasByRatio(3, 10)).toBe(1)
    expect(canaryReplicasFor(spec({router: 'replicas', replicas: 10}), 41).replicas).toBe(4)
  })
})

describe('route weights', () => {
  it('reads the canary share of an HTTPRoute', () => {
    const route = {
      metadata: {name: 'r'},
      spec: {
        rules: [
          {
            backendRefs: [
              {name: 'checkout-stable', port: 80, weight: 75},
              {name: 'checkout-canary', port: 80, weight: 25},
            ],
          },
        ],
      },
    }
    expect(gatewayWeight(route, 'checkout')).toBe(25)
    expect(
      gatewayWeight(
        {metadata: {name: 'r'}, spec: {rules: [{backendRefs: [{name: 'checkout', port: 80}]}]}},
        'checkout',
      ),
    ).toBe(0)
  })
})

describe('release gates', () => {
  const config = parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
services:
  checkout: {tier: revenue-critical}
  catalog: {tier: tolerant}
campaigns:
  - name: black-friday
    start: 2026-11-27T00:00:00Z
    end: 2026-11-30T00:00:00Z
    peak: {checkout: {rps: 100}}
    freeze: {start: 2026-11-26T00:00:00Z, end: 2026-12-01T00:00:00Z}
`)
  const inside = new Date('2026-11-28T12:00:00Z')

  it('refuses revenue-critical services inside a freeze, not others', () => {
    expect(freezeCheck(config, 'checkout', inside)).toMatchObject({ok: false})
    expect(freezeCheck(config, 'checkout', inside).detail).toContain('black-friday')
    expect(freezeCheck(config, 'catalog', inside).ok).toBe(true)
    expect(freezeCheck(config, 'checkout', new Date('2026-12-02T00:00:00Z')).ok).toBe(true)
  })

  it('refuses with REFUSED unless forced with a reason, and records the override', async () => {
    const checks = await releaseGates(config, ['checkout'], {
      now: inside,
      errorBudget: async () => ({ok: false, reasons: ['availability: error budget exhausted']}),
    })
    expect(() => enforceGates(checks)).toThrow(expect.objectContaining({exit: 'REFUSED'}))
    expect(() => enforceGates(checks, {})).toThrow(expect.objectContaining({exit: 'USAGE'}))
    const forced = enforceGates(checks, {reason: 'hotfix for payment outage'})
    expect(forced?.reason).toBe('hotfix for payment outage')
    expect(forced?.overridden.join(' ')).toContain('black-friday')
  })

  it("plans canary capacity for a running campaign's expected peak", () => {
    expect(expectedPeakRps(config, 'checkout', inside)).toBe(100)
    expect(expectedPeakRps(config, 'checkout', new Date('2026-12-05T00:00:00Z'))).toBeUndefined()
    expect(expectedPeakRps(config, 'catalog', inside)).toBeUndefined()
  })

  it('checks the error budget of services with SLOs', async () => {
    const withSlo = parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
services:
  checkout:
    tier: operational
    slos: [{name: availability, objective: 99.9, sli: {type: availability}}]
`)
    const checks = await releaseGates(withSlo, ['checkout'], {
      errorBudget: async () => ({ok: false, reasons: ['availability: error budget exhausted (0.0 % left of 28d)']}),
    })
    expect(checks.find((c) => c.gate === 'error-budget')).toMatchObject({
      ok: false,
      detail: expect.stringContaining('exhausted'),
    })
  })
})

describe('revisions and exits', () => {
  it('takes the version from app.kubernetes.io/version, else the tag', () => {
    const d = (labels: Record<string, string>, image: string): Deployment => ({
      metadata: {name: 'x'},
      spec: {template: {metadata: {labels}, spec: {containers: [{name: 'x', image}]}}},
    })
    expect(revisionOf(d({'app.kubernetes.io/version': 'v7'}, 'r/x:v6')).version).toBe('v7')
    expect(revisionOf(d({}, '127.0.0.1:5000/shop/x:v6')).version).toBe('v6')
    const digest = `sha256:${'a'.repeat(64)}`
    expect(revisionOf(d({}, `127.0.0.1:5000/shop/x:v6@${digest}`)).digests).toEqual([digest])
  })

  it('compiles blue-green into steps', () => {
    const s = rolloutSpec(undefined, {strategy: 'blue-green'}, 'gateway', 'x', 2)
    expect(s.steps).toEqual([{analysis: {}}, {setWeight: 100}, {analysis: {}}, {pause: {duration: '30s'}}])
  })

  it('gives a group the worst exit', () => {
    expect(groupExit([{phase: 'Healthy'}, {phase: 'Paused'}])).toBe('ROLLOUT_PAUSED')
    expect(groupExit([{phase: 'Aborted'}, {phase: 'Inconclusive'}])).toBe('ROLLOUT_ABORTED')
    expect(groupExit([{phase: 'Healthy'}])).toBe('OK')
    // An abort that could not return traffic is worse than any abort: the canary may still take traffic.
    expect(groupExit([{phase: 'Aborted'}, {phase: 'Aborting', trafficNotReturned: 'forbidden'}])).toBe(
      'TRAFFIC_NOT_RETURNED',
    )
    expect(groupExit([{phase: 'Aborting'}])).toBe('ROLLOUT_ABORTED')
  })
})

describe('stored state identity', () => {
  const state = {service: 'checkout', namespace: 'elsewhere', group: ['checkout', 'payments']} as never
  it('binds a stored state to the namespace of the command', () => {
    expect(bindToCommand(state, 'shop', 'checkout').namespace).toBe('shop')
  })
  it('refuses a state stored for one service that names another, or a group of unknown services', () => {
    expect(() => bindToCommand(state, 'shop', 'payments')).toThrow(
      /names service "checkout" but is stored for payments/,
    )
    const project = {config: {services: {checkout: {}}}} as never
    expect(() => bindToCommand(state, 'shop', 'checkout', project)).toThrowError(
      expect.objectContaining({exit: 'STATE_UNTRUSTED'}),
    )
  })
})
