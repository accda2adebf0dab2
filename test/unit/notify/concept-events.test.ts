// The release events of pre-warms, drills and the SLO gate: the values behind each (replicas
// against the peak, what k6 measured against a threshold, RTO and RPO against their targets, the
// budget left and the firing burn rates).
import {describe, expect, it} from 'vitest'

import {prewarmAppliedEvent, prewarmRestoredEvent, warmupFailedEvent} from '../../../src/capacity/events.js'
import {drillEvent} from '../../../src/dr/events.js'
import {gateClosedEvent} from '../../../src/slo/status.js'

describe('capacity', () => {
  it('prewarm.applied: replicas per service against the peak, Ready pods and the extra cost', () => {
    const plan: any = {
      campaign: 'bf',
      start: '2026-11-27T00:00:00Z',
      end: '2026-11-30T00:00:00Z',
      buffer: 0.3,
      services: [
        {service: 'checkout', replicas: 8, peakRps: 1200, rpsPerPod: 200, targetUtilization: 0.7, reason: 'capacity'},
      ],
      cost: {currency: 'USD', extraPerHour: 1.234, extraForCampaign: 88.8},
    }
    const apply: any = {
      namespace: 'shop',
      changed: [{}, {}],
      ready: [{service: 'checkout', ready: 8, desired: 8}],
      waitedMs: 12000,
      resumed: false,
    }
    const e = prewarmAppliedEvent(plan, apply)
    expect(e.type).toBe('prewarm.applied')
    expect(e.measurements![0]).toEqual({
      name: 'checkout',
      value: '8 replicas (8/8 Ready)',
      condition: 'peak 1200 rps at 200 rps/pod × 0.7, buffer 30 %',
      verdict: 'capacity',
    })
    expect(e.facts!['Extra cost']).toBe('1.23 USD/h, 88.8 USD for the campaign')
    expect(e.actions![0]).toContain('retailops prewarm restore --campaign bf -n shop')
  })

  it('prewarm.warmup-failed: each crossed limit and failed threshold with the value k6 measured', () => {
    const warmup: any = {
      passed: false,
      aborted: {
        crossed: [{service: 'checkout', limit: 'error rate', expression: 'rate<0.05', observed: 0.31, ok: false}],
        reason: 'checkout error rate 31 %',
      },
      aborts: [],
      thresholds: [
        {
          slo: 'checkout/latency',
          metric: 'http_req_duration{service:checkout}',
          expression: 'p(95)<300',
          observed: 812.5,
          ok: false,
        },
      ],
      behaviours: [{service: 'checkout'}],
      durationMs: 14000,
      droppedIterations: 0,
    }
    const e = warmupFailedEvent('bf', 'shop', warmup)
    expect(e.summary).toBe('The k6 warm-up of campaign bf was stopped: checkout error rate 31 %.')
    expect(e.measurements).toEqual([
      {name: 'checkout error rate', value: '0.31', condition: 'abort if not rate<0.05', verdict: 'crossed'},
      {
        name: 'checkout/latency (http_req_duration{service:checkout})',
        value: '813',
        condition: 'p(95)<300',
        verdict: 'failed',
      },
    ])
  })

  it('prewarm.restored: each object and its restored values', () => {
    const e = prewarmRestoredEvent({
      campaign: 'bf',
      namespace: 'shop',
      restored: true,
      message: '',
      targets: [
        {
          service: 'checkout',
          kind: 'HorizontalPodAutoscaler',
          name: 'checkout',
          outcome: 'restored',
          values: {minReplicas: 2},
        },
      ],
      deleted: [],
    } as any)
    expect(e.measurements).toEqual([
      {name: 'HorizontalPodAutoscaler checkout', value: 'minReplicas 2', verdict: 'restored'},
    ])
  })
})

describe('drills', () => {
  const record = (status: string, rtoMs: number): any => ({
    id: 'd1',
    environment: 'prod',
    status,
    durationMs: 200_000,
    files: {html: '/r/report.html'},
    recoverability: [],
    datastores: [
      {
        name: 'orders',
        service: 'checkout',
        status: status === 'passed' ? 'passed' : 'target-missed',
        rto: {target: '2m', targetMs: 120_000, actualMs: rtoMs, status: rtoMs <= 120_000 ? 'pass' : 'fail', detail: ''},
        rpo: {target: '5m', targetMs: 300_000, actualMs: 30_000, status: 'pass', detail: ''},
        validations: [],
      },
    ],
  })

  it('drill.missed: RTO measured against its target', () => {
    const e = drillEvent(record('target-missed', 185_000))!
    expect(e.type).toBe('drill.missed')
    expect(e.services).toEqual(['checkout'])
    expect(e.measurements![0]).toEqual({name: 'orders RTO', value: '3m5s', condition: 'target 2m', verdict: 'fail'})
  })

  it('drill.passed, and nothing for an interrupted drill', () => {
    expect(drillEvent(record('passed', 60_000))!.type).toBe('drill.passed')
    expect(drillEvent(record('interrupted', 60_000))).toBeUndefined()
  })
})

describe('SLO gate', () => {
  it('slo.gate-closed: the budget left and the firing burn-rate pairs of each blocking SLO', () => {
    const report: any = {
      prometheus: 'http://127.0.0.1:9090',
      at: '2026-12-07T03:00:00Z',
      slos: [
        {
          service: 'checkout',
          slo: 'availability',
          status: 'page',
          objective: 99.9,
          window: '28d',
          sli: 99.2,
          budgetRemaining: -0.25,
          alerts: [
            {severity: 'page', long: '1h', short: '5m', factor: 14.4, longBurn: 20.1, shortBurn: 31.7, active: true},
            {severity: 'ticket', long: '1d', short: '2h', factor: 3, longBurn: 1, shortBurn: 1, active: false},
          ],
        },
        {service: 'search', slo: 'latency', status: 'ok', alerts: []},
      ],
      gate: {pass: false, blocking: [{service: 'checkout', slo: 'availability', status: 'page'}], missing: []},
    }
    const e = gateClosedEvent(report, 'shop')
    expect(e.services).toEqual(['checkout'])
    expect(e.measurements).toEqual([
      {
        name: 'checkout/availability budget left',
        value: '-25 %',
        condition: 'objective 99.9 % over 28d; SLI 99.2 %',
        verdict: 'page',
      },
      {
        name: 'checkout/availability page burn',
        value: '1h 20.1×, 5m 31.7×',
        condition: 'fires above 14.4×',
        verdict: 'firing',
      },
    ])
    expect(e.actions).toEqual(['retailops slo checkout -n shop --html slo.html'])
  })
})
