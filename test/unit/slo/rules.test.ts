import {beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {parseConfig} from '../../../src/config/parse.js'
import {sloProject} from './fixtures.js'
import {expandCounter, leLabel, sliExpressions} from '../../../src/slo/sli.js'
import {alertName, generateRules, renderRulesYaml, slothDuration} from '../../../src/slo/rules.js'

const config = sloProject()

describe('SLI expressions', () => {
  it('availability: 5xx over all requests, with zero errors when no 5xx series exist yet', () => {
    const e = sliExpressions('checkout', {type: 'availability'})
    expect(e.errorRatio('5m')).toBe(
      '(sum(rate(http_requests_total{service="checkout",synthetic!="true",code=~"5.."}[5m])) or on() vector(0))\n/\nsum(rate(http_requests_total{service="checkout",synthetic!="true"}[5m]))',
    )
    expect(e.eventRate('1h')).toBe('sum(rate(http_requests_total{service="checkout",synthetic!="true"}[1h]))')
  })

  it('adds the configured label matchers (one Prometheus, several environments)', () => {
    const e = sliExpressions('checkout', {type: 'availability', labels: {namespace: 'shop'}})
    expect(e.eventRate('5m')).toBe(
      'sum(rate(http_requests_total{service="checkout",namespace="shop",synthetic!="true"}[5m]))',
    )
  })

  it("narrows to the environment's namespace, unless the SLI names its own", () => {
    expect(sliExpressions('checkout', {type: 'latency', thresholdMs: 300}, {namespace: 'prod'}).eventRate('5m')).toBe(
      'sum(rate(http_request_duration_seconds_count{service="checkout",namespace="prod",synthetic!="true"}[5m]))',
    )
    expect(
      sliExpressions('checkout', {type: 'availability', labels: {namespace: 'shop'}}, {namespace: 'prod'}).eventRate(
        '5m',
      ),
    ).toBe('sum(rate(http_requests_total{service="checkout",namespace="shop",synthetic!="true"}[5m]))')
  })

  it('leaves synthetic requests (warm-ups) out, unless the SLI names the label itself', () => {
    expect(sliExpressions('checkout', {type: 'availability'}).eventRate('5m')).toContain('synthetic!="true"')
    expect(sliExpressions('checkout', {type: 'availability', labels: {synthetic: 'true'}}).eventRate('5m')).toBe(
      'sum(rate(http_requests_total{service="checkout",synthetic="true"}[5m]))',
    )
  })

  it('latency: requests not in the bucket at the threshold', () => {
    expect(leLabel(300)).toBe('0.3')
    expect(leLabel(1000)).toBe('1')
    expect(leLabel(2500)).toBe('2.5')
    const e = sliExpressions('checkout', {type: 'latency', thresholdMs: 250, route: '/checkout'})
    expect(e.errorRatio('30m')).toContain(
      'http_request_duration_seconds_bucket{service="checkout",route="/checkout",synthetic!="true",le="0.25"}[30m]',
    )
    expect(e.errorRatio('30m')).toContain(
      'http_request_duration_seconds_count{service="checkout",route="/checkout",synthetic!="true"}[30m]',
    )
  })

  it("ratio: {{window}} and Sloth's {{.window}} are substituted; a bare selector becomes sum(rate(...))", () => {
    expect(expandCounter('sum(rate(x_total[{{window}}]))', '1h')).toBe('sum(rate(x_total[1h]))')
    expect(expandCounter('sum(rate(x_total[{{ .window }}]))', '6h')).toBe('sum(rate(x_total[6h]))')
    expect(expandCounter('x_total{a="b"}', '5m')).toBe('sum(rate(x_total{a="b"}[5m]))')
  })
})

describe('Sloth-compatible rules', () => {
  it('names durations as Prometheus does (28d is 4w, 30d stays 30d)', () => {
    expect(slothDuration(28 * 86_400_000)).toBe('4w')
    expect(slothDuration(30 * 86_400_000)).toBe('30d')
    expect(slothDuration(7 * 86_400_000)).toBe('1w')
    expect(slothDuration(90 * 60_000)).toBe('1h30m')
  })

  const result = generateRules({config, version: '0.1.0'})
  let doc: {groups: {name: string; rules: Record<string, any>[]}[]}
  beforeAll(async () => {
    doc = parse(await renderRulesYaml(result)) as typeof doc
  })

  it("has Sloth's groups, record names and labels per SLO", () => {
    expect(result.slos.map((s) => s.id)).toEqual([
      'checkout-availability',
      'checkout-latency',
      'checkout-checkout-success',
      'catalog-availability',
    ])
    const names = doc.groups.map((g) => g.name)
    expect(names).toContain('sloth-slo-sli-recordings-checkout-availability')
    expect(names).toContain('sloth-slo-meta-recordings-checkout-availability')
    expect(names).toContain('sloth-slo-alerts-checkout-availability')
    const sli = doc.groups.find((g) => g.name === 'sloth-slo-sli-recordings-checkout-availability')!.rules
    expect(sli.map((r) => r.record)).toEqual(
      ['5m', '30m', '1h', '2h', '6h', '1d', '3d', '30d'].map((w) => `slo:sli_error:ratio_rate${w}`),
    )
    expect(sli[0].labels).toMatchObject({
      sloth_id: 'checkout-availability',
      sloth_service: 'checkout',
      sloth_slo: 'availability',
      sloth_window: '5m',
      tier: 'revenue-critical',
    })
    expect(sli.at(-1)!.expr).toContain(
      'sum_over_time(slo:sli_error:ratio_rate5m{sloth_id="checkout-availability", sloth_service="checkout", sloth_slo="availability"}[30d])',
    )
    const meta = doc.groups.find((g) => g.name === 'sloth-slo-meta-recordings-checkout-availability')!.rules
    expect(meta.map((r) => r.record)).toEqual([
      'slo:objective:ratio',
      'slo:error_budget:ratio',
      'slo:time_period:days',
      'slo:current_burn_rate:ratio',
      'slo:period_burn_rate:ratio',
      'slo:period_error_budget_remaining:ratio',
      'sloth_slo_info',
    ])
    expect(meta[0].expr).toBe('vector(0.999)')
    expect(meta[2].expr).toBe('vector(30)')
    expect(meta.at(-1)!.labels).toMatchObject({sloth_objective: '99.9', sloth_version: '0.1.0'})
  })

  it('has one alert name per SLO with a page and a ticket rule at the workbook factors', () => {
    const alerts = doc.groups.find((g) => g.name === 'sloth-slo-alerts-checkout-availability')!.rules
    expect(alerts.map((a) => [a.alert, a.labels.sloth_severity])).toEqual([
      [alertName('checkout', 'availability'), 'page'],
      [alertName('checkout', 'availability'), 'ticket'],
    ])
    expect(alertName('checkout', 'checkout-success')).toBe('CheckoutCheckoutSuccessSLOBurnRate')
    expect(alerts[0].expr).toContain(
      'slo:sli_error:ratio_rate5m{sloth_id="checkout-availability", sloth_service="checkout", sloth_slo="availability"} > (14.4 * 0.001)',
    )
    expect(alerts[0].expr).toContain(
      'slo:sli_error:ratio_rate6h{sloth_id="checkout-availability", sloth_service="checkout", sloth_slo="availability"} > (6 * 0.001)',
    )
    expect(alerts[1].expr).toContain(
      'ratio_rate1d{sloth_id="checkout-availability", sloth_service="checkout", sloth_slo="availability"} > (3 * 0.001)',
    )
    expect(alerts[1].expr).toContain(
      'ratio_rate3d{sloth_id="checkout-availability", sloth_service="checkout", sloth_slo="availability"} > (1 * 0.001)',
    )
    expect(alerts[0].annotations.title).toBe(
      '(page) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast.',
    )
    // 28-day latency SLO: Sloth's 4w period name and its scaled factors.
    const latency = doc.groups.find((g) => g.name === 'sloth-slo-sli-recordings-checkout-latency')!.rules
    expect(latency.at(-1)!.record).toBe('slo:sli_error:ratio_rate4w')
    const latencyAlerts = doc.groups.find((g) => g.name === 'sloth-slo-alerts-checkout-latency')!.rules
    expect(latencyAlerts[0].expr).toContain('> (13.44 * 0.01)')
  })

  it("scopes the SLIs to the environment's namespace, like slo does", () => {
    const scoped = generateRules({config, services: ['catalog'], namespace: 'shop'})
    const rule = scoped.groups[0].rules[0] as {expr: string}
    expect(rule.expr).toContain('http_requests_total{service="catalog",namespace="shop",synthetic!="true"}[5m]')
  })

  it('wraps the groups in a PrometheusRule for the operator', async () => {
    const pr = parse(await renderRulesYaml(result, 'prometheus-rule', {name: 'shop-slos', namespace: 'monitoring'}))
    expect(pr).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {name: 'shop-slos', namespace: 'monitoring'},
    })
    expect(pr.spec.groups).toHaveLength(doc.groups.length)
  })

  it('refuses when no SLO is configured', () => {
    const none = parseConfig('project: shop\nregistry: {url: 127.0.0.1:5000}\nservices:\n  a: {tier: tolerant}\n')
    expect(() => generateRules({config: none})).toThrow(/No SLOs/)
  })
})
