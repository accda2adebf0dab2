import {describe, expect, it} from 'vitest'

import {observedPeakQuery} from '../../../src/capacity/prometheus.js'
import {matchers, promEscape, promString} from '../../../src/prometheus/promql.js'
import {renderQuery} from '../../../src/rollout/analysis.js'

describe('PromQL label quoting (one way for slo, cost, analysis and prewarm)', () => {
  it('escapes backslash, double quote and newline', () => {
    expect(promEscape('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd')
    expect(promString('shop')).toBe('"shop"')
    expect(matchers([])).toBe('')
    expect(
      matchers([
        ['service', 'cart'],
        ['code', '5..', '=~'],
        ['synthetic', 'true', '!='],
      ]),
    ).toBe('{service="cart",code=~"5..",synthetic!="true"}')
  })

  it('prewarm and analysis quote values the same way', () => {
    expect(observedPeakQuery('cart', 300_000, 7 * 86_400_000, {team: 'a"b'})).toContain(
      'http_requests_total{service="cart",team="a\\"b",synthetic!="true"}',
    )
    expect(
      renderQuery('x{service="{{service}}",version="{{version}}"}[{{window}}]', {
        service: 'cart',
        namespace: 'shop',
        version: '1"2',
        windowMs: 60_000,
      }),
    ).toBe('x{service="cart",version="1\\"2"}[1m]')
  })
})
