import {describe, expect, it} from 'vitest'

import {
  burnChartData,
  costPage,
  drSection,
  duration,
  type PageContext,
  percent,
  prewarmSection,
  rolloutDetailFragment,
  rolloutsFragment,
  servicePage,
  sloSection,
} from '../../../src/dashboard/pages.js'
import {CAMPAIGNS, COST, DRILLS, rollout, SLO} from './fixtures.js'

const CTX: PageContext = {
  project: 'shop',
  environment: 'production',
  namespace: 'shop-prod',
  services: new Set(['checkout', 'catalog']),
  at: new Date('2026-12-07T10:00:00Z'),
}
const ok = <T>(value: T) => ({ok: true as const, value})
/** The markup without the whitespace between tags (the templates are laid out for people). */
const squash = (markup: string | {value: string}) =>
  (typeof markup === 'string' ? markup : markup.value).replace(/>\s+</g, '><').replace(/\s+/g, ' ')

describe('dashboard pages', () => {
  it('lists rollouts in progress before finished ones, each with its weight read back and its steps', () => {
    const out = squash(
      rolloutsFragment(
        ok([
          rollout({
            service: 'cart',
            phase: 'Aborted',
            weight: 0,
            actualWeight: 0,
            reason: 'analysis failed: error-rate 0.41',
          }),
          rollout({weight: 20, actualWeight: 25}),
        ]),
      ),
    )
    expect(out.indexOf('In progress (1)')).toBeLessThan(out.indexOf('data-service="checkout"'))
    expect(out.indexOf('Finished (1)')).toBeLessThan(out.indexOf('data-service="cart"'))
    // The weight the router really sends wins over the stored one.
    expect(out).toContain('data-weight="25"')
    expect(out).toContain('<li class="step current" title="weight after this step: 20%">analysis</li>')
    expect(out).toContain('<b>Reason:</b> analysis failed: error-rate 0.41')
    expect(out).toContain('href="/rollouts/checkout"')
  })

  it('says so when there is nothing to show, and shows why when rollouts could not be read', () => {
    expect(rolloutsFragment(ok([]))).toContain('No rollout is stored in this namespace')
    expect(rolloutsFragment(ok([rollout()]), 'cart')).toContain('No rollout of cart')
    expect(rolloutsFragment({ok: false, error: 'Forbidden: configmaps'})).toContain(
      'Rollouts could not be read:</b> Forbidden: configmaps',
    )
  })

  it('escapes what comes from the cluster', () => {
    const out = rolloutsFragment(ok([rollout({message: '<script>alert(1)</script>', service: 'a"b'})]))
    expect(out).not.toContain('<script>')
    expect(out).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(out).toContain('data-service="a&quot;b"')
  })

  it("shows a rollout's measurements against its conditions, and its history newest first", () => {
    const out = squash(
      rolloutDetailFragment(
        ok([
          rollout({
            history: [
              {...rollout().history[0], number: 1, message: 'first'},
              {
                ...rollout().history[0],
                number: 2,
                phase: 'Aborted',
                reason: 'latency p95 0.9 s',
                forced: {reason: 'hotfix', by: 'ana'},
              },
            ],
          }),
        ]),
        'checkout',
      ),
    )
    expect(out).toContain('<code>result &gt; 0.05</code>')
    expect(out).toMatch(/<td class="num">0\.412<\/td><td class="num">0<\/td>.*Failed.*error-rate 0\.412 &gt; 0\.05/)
    expect(out).toContain('error-rate: 0 passed, 1 failed, 0 inconclusive, 0 errors')
    expect(out.indexOf('latency p95 0.9 s')).toBeLessThan(out.indexOf('first'))
    expect(out).toContain('forced by ana: hotfix')
  })

  it('charts the burn rate in seconds, with gaps for missing or infinite values and one line per threshold', () => {
    const data = burnChartData(SLO.slos[0])!
    expect(data.x).toEqual([1_765_000_000, 1_765_000_300, 1_765_000_600])
    expect(data.burn).toEqual([0.4, null, null])
    expect(data.thresholds.map((t) => t.value)).toEqual([14.4, 6, 1])
    expect(data.thresholds[0].label).toBe('page 1h/5m ×14.4')
    expect(burnChartData(SLO.slos[1])).toBeUndefined()
  })

  it("shows each SLO's budget as `slo` computes it, and no data as no data", () => {
    const out = squash(sloSection(ok(SLO)))
    expect(out).toContain('data-slo="checkout-availability" data-budget="0.4321"')
    expect(out).toContain('<span class="budget-value">43.2%</span>')
    expect(out).toContain('data-slo="catalog-latency" data-budget=""')
    expect(out).toContain('class="uplot-chart"')
    expect(sloSection(ok(SLO), 'catalog').value).not.toContain('checkout-availability')
    expect(sloSection(ok(SLO), 'cart').value).toContain('No SLO is configured for cart')
  })

  it('shows cost by service, tenant and pool with the findings and their savings, linking only known services', () => {
    const out = squash(costPage(CTX, ok(COST)))
    expect(out).toContain('123.45 USD')
    expect(out).toContain('<a href="/services/checkout">checkout</a>')
    expect(out).not.toContain('href="/services/__idle__"')
    for (const h of ['By service', 'By tenant', 'By node pool', 'Findings and savings'])
      expect(out).toContain(`<h2>${h}</h2>`)
    const other = costPage({...CTX, services: new Set()}, ok(COST))
    expect(other).not.toContain('<a href="/services/checkout">')
  })

  it("shows each campaign's pre-warm: the floor now against the one saved, and what to run next", () => {
    const out = squash(prewarmSection(ok(CAMPAIGNS)))
    expect(out).toContain('pre-warmed')
    expect(out).toMatch(
      /HorizontalPodAutoscaler checkout<\/td><td class="num">12<\/td><td class="num">3<\/td><td class="num">20<\/td><td class="num">12 \/ 12/,
    )
    expect(out).toContain('retailops prewarm restore --campaign black-friday')
    expect(prewarmSection(ok(CAMPAIGNS), 'checkout').value).not.toContain('×3 observed')
    expect(prewarmSection(ok(CAMPAIGNS), 'cart').value).toContain('No campaign covers cart')
  })

  it("compares each drill's RTO and RPO with its targets", () => {
    const out = squash(drSection(ok(DRILLS)))
    expect(out).toContain('<span class="bad">20.0m</span><span class="muted">/ 15.0m</span>')
    expect(out).toContain('<span class="good">60s</span><span class="muted">/ 5.0m</span>')
    expect(out).toContain('weekly <code>0 3 * * 1</code>')
    // A drill recorded without targets is measured against the service's configured ones.
    const older = {...DRILLS, drills: [{...DRILLS.drills[0], rtoTargetMs: undefined, rtoMs: 60_000}]}
    expect(squash(drSection(ok(older)))).toContain('<span class="good">60s</span><span class="muted">/ 15.0m</span>')
    expect(drSection(ok(DRILLS), 'catalog').value).toContain('No drill recorded for catalog')
  })

  it('joins everything about a service on its page, with the live part marked', () => {
    const out = squash(
      servicePage(CTX, 'checkout', {
        rollouts: ok([rollout()]),
        slo: ok(SLO),
        cost: ok(COST),
        prewarm: ok(CAMPAIGNS),
        drills: ok(DRILLS),
      }),
    )
    for (const h of ['Rollout', 'SLOs', 'Cost', 'Pre-warm', 'DR drills']) expect(out).toContain(`<h2>${h}</h2>`)
    expect(out).toContain('data-src="/events/rollouts?service=checkout"')
    expect(out).toContain('data-slo="checkout-availability"')
    expect(out).not.toContain('data-slo="catalog-latency"')
    expect(out).toContain('checkout runs 6 replicas for 40 rps')
    expect(out).toContain('data-drill="20261201-101500-0a1b"')
    expect(out).toContain('<body data-live="rollouts">')
  })

  it('formats numbers for people', () => {
    expect(percent(0.4321)).toBe('43.2%')
    expect(percent(null)).toBe('–')
    expect(percent(Number.NaN)).toBe('–')
    expect(duration(450)).toBe('450ms')
    expect(duration(9_500)).toBe('9.5s')
    expect(duration(95_000)).toBe('95s')
    expect(duration(150_000)).toBe('2.5m')
    expect(duration(3 * 3_600_000)).toBe('3.0h')
    expect(duration(undefined)).toBe('–')
  })
})
