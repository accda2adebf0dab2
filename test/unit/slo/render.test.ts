import {describe, expect, it} from 'vitest'

import {evaluateAlerts, SLI_WINDOWS} from '../../../src/slo/maths.js'
import {renderSloHtml, renderSloTable} from '../../../src/slo/render.js'
import {gateOf, type SloReport, type SloResult} from '../../../src/slo/status.js'

const D = 86_400_000
const AT = Date.UTC(2026, 10, 25, 12)

function result(slo: string, burn: number | null, remaining: number | null, status: SloResult['status']): SloResult {
  const burns = Object.fromEntries(SLI_WINDOWS.map((w) => [w, burn]))
  return {
    service: 'checkout',
    tier: 'revenue-critical',
    slo,
    id: `checkout-${slo}`,
    sliType: 'availability',
    errorDefinition: 'requests to checkout answered 5xx',
    objective: 99.9,
    window: '30d',
    errorBudget: 0.001,
    sli: remaining === null ? null : 99.95,
    errorRatio: remaining === null ? null : 0.0005,
    timeAveragedErrorRatio: null,
    events: remaining === null ? null : 1_000_000,
    budgetRemaining: remaining,
    burnRates: SLI_WINDOWS.map((window) => ({
      window,
      errorRatio: burn === null ? null : burn * 0.001,
      burnRate: burn,
      eventRate: burn === null ? null : 10,
    })),
    alerts: evaluateAlerts(burns, 30 * D),
    status,
    timeToExhaustion: status === 'page' ? '1d2h' : null,
    missing: remaining === null ? ['no request series in 30d'] : [],
    history: [
      [AT - 2 * 3_600_000, 0.5],
      [AT - 3_600_000, 20],
      [AT, null],
    ],
  }
}

const slos = [result('availability', 20, 0.5, 'page'), result('latency', null, null, 'no-data')]
const report: SloReport = {
  prometheus: 'http://127.0.0.1:9090',
  at: new Date(AT).toISOString(),
  slos,
  counts: {ok: 0, ticket: 0, page: 1, exhausted: 0, 'no-data': 1},
  gate: gateOf(slos, false),
}

describe('SLO renderings', () => {
  it('the gate blocks on page, and lists missing SLOs without blocking on them by default', () => {
    expect(report.gate).toEqual({
      pass: false,
      blocking: [{service: 'checkout', slo: 'availability', status: 'page'}],
      missing: [{service: 'checkout', slo: 'latency'}],
    })
    expect(gateOf([slos[1]], true).pass).toBe(false)
    expect(gateOf([slos[1]], false).pass).toBe(true)
  })

  it('the table shows missing data as such and names the firing pairs', () => {
    const text = renderSloTable(report)
    expect(text).toMatch(/latency .*no data .*no data/)
    expect(text).not.toMatch(/latency .*100/)
    expect(text).toMatch(/checkout\/availability: page 1h\/5m > 14\.4×, page 6h\/30m > 6\.00×/)
    expect(text).toMatch(/Gate: fail \(checkout\/availability page\)/)
  })

  it('the HTML report has the burn timeline, a chart per SLO with history, and no external assets', () => {
    const page = renderSloHtml(report, new Date(AT))
    expect(page).toContain('Burn timeline')
    expect(page).toContain('page-level burn')
    expect(page).toContain('no request series in 30d')
    expect(page).not.toMatch(/<script|<link /)
    expect(page.match(/<svg /g)!.length).toBeGreaterThanOrEqual(4)
  })
})
