import {describe, expect, it} from 'vitest'

import {
  ALERT_WINDOWS,
  blocksReleases,
  budgetRemaining,
  burnFactor,
  burnRate,
  errorBudget,
  evaluateAlerts,
  sloState,
  timeToExhaustionMs,
  windowMs,
} from '../../../src/slo/maths.js'

const DAY = 86_400_000
const burnsAll = (v: number | null) =>
  Object.fromEntries(['5m', '30m', '1h', '2h', '6h', '1d', '3d'].map((w) => [w, v]))

describe('error budget maths', () => {
  it('computes the budget without float noise', () => {
    expect(errorBudget(99.9)).toBe(0.001)
    expect(errorBudget(99.5)).toBe(0.005)
    expect(errorBudget(99)).toBe(0.01)
  })

  it('burn rate is the error ratio over the budget; remaining is 1 - burn', () => {
    expect(burnRate(0.0144, 0.001)).toBeCloseTo(14.4, 10)
    expect(budgetRemaining(0.00025, 0.001)).toBeCloseTo(0.75, 10)
    expect(budgetRemaining(0.002, 0.001)).toBeCloseTo(-1, 10)
  })

  it('never turns missing data into a value', () => {
    expect(burnRate(null, 0.001)).toBeNull()
    expect(burnRate(Number.NaN, 0.001)).toBeNull()
    expect(budgetRemaining(null, 0.001)).toBeNull()
  })

  it("gives the SRE workbook factors for a 30-day window and Sloth's for 28 days", () => {
    const f30 = ALERT_WINDOWS.map((w) => burnFactor(30 * DAY, w.budgetPercent, windowMs(w.long)))
    expect(f30).toEqual([14.4, 6, 3, 1])
    const f28 = ALERT_WINDOWS.map((w) => burnFactor(28 * DAY, w.budgetPercent, windowMs(w.long)))
    expect(f28[0]).toBeCloseTo(13.44, 10)
    expect(f28[1]).toBeCloseTo(5.6, 10)
    expect(f28[2]).toBeCloseTo(2.8, 10)
    expect(f28[3]).toBeCloseTo(0.9333333333, 8)
    expect(ALERT_WINDOWS.map((w) => `${w.long}/${w.short}`)).toEqual(['1h/5m', '6h/30m', '1d/2h', '3d/6h'])
  })

  it('a 14.4x burn consumes 2 % of a 30-day budget in an hour and empties it in about 2.08 days', () => {
    const consumed = (14.4 * windowMs('1h')) / (30 * DAY)
    expect(consumed).toBeCloseTo(0.02, 10)
    expect(timeToExhaustionMs(1, 14.4, 30 * DAY)! / DAY).toBeCloseTo(2.0833, 3)
    expect(timeToExhaustionMs(0.5, 0, 30 * DAY)).toBeNull()
    expect(timeToExhaustionMs(-0.1, 2, 30 * DAY)).toBe(0)
  })
})

describe('multi-window alerts and status', () => {
  const period = 30 * DAY

  it('fires a pair only when both windows are over the factor', () => {
    const longOnly = evaluateAlerts({...burnsAll(0.5), '1h': 20, '5m': 2}, period)
    expect(longOnly.find((a) => a.id === 'page-quick')!.active).toBe(false)
    const both = evaluateAlerts({...burnsAll(0.5), '1h': 20, '5m': 15}, period)
    expect(both.find((a) => a.id === 'page-quick')!.active).toBe(true)
    expect(sloState({remaining: 0.6, alerts: both})).toBe('page')
  })

  it('a slow burn over 1x for three days is a ticket', () => {
    const alerts = evaluateAlerts({...burnsAll(0.5), '3d': 1.2, '6h': 1.5}, period)
    expect(alerts.find((a) => a.id === 'ticket-slow')!.active).toBe(true)
    expect(alerts.filter((a) => a.severity === 'page').every((a) => a.active === false)).toBe(true)
    expect(sloState({remaining: 0.4, alerts})).toBe('ticket')
  })

  it('an exhausted budget outranks every burn', () => {
    const alerts = evaluateAlerts(burnsAll(20), period)
    expect(sloState({remaining: -0.2, alerts})).toBe('exhausted')
    expect(sloState({remaining: 0, alerts: evaluateAlerts(burnsAll(0), period)})).toBe('exhausted')
  })

  it('missing windows make a pair unknown, and all-missing is no-data, not ok', () => {
    const none = evaluateAlerts({}, period)
    expect(none.every((a) => a.active === null)).toBe(true)
    expect(sloState({remaining: null, alerts: none})).toBe('no-data')
    // One known window under the factor is enough to call the pair quiet.
    const partial = evaluateAlerts({'1h': 1, '5m': null}, period)
    expect(partial.find((a) => a.id === 'page-quick')!.active).toBe(false)
    expect(sloState({remaining: 0.9, alerts: evaluateAlerts(burnsAll(0.1), period)})).toBe('ok')
  })

  it('only exhausted and page block releases', () => {
    expect(['ok', 'ticket', 'page', 'exhausted', 'no-data'].filter((s) => blocksReleases(s as never))).toEqual([
      'page',
      'exhausted',
    ])
  })
})
