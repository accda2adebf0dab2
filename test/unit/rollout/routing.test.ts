// Header, cookie and mirror steps: parsing, validation, and the HTTPRoute rules and ingress-nginx
// annotations they render (the same functions the routers write with).
import {describe, expect, it} from 'vitest'

import {
  cookieHeaderPattern,
  headerRouteProblem,
  mirrorRefusal,
  routingStepProblems,
} from '../../../src/config/route-match.js'
import {ExitCode} from '../../../src/errors/index.js'
import {assertRoutingSteps} from '../../../src/rollout/start.js'
import {formatSteps, parseStepsFlag, routingAt, weightOnly} from '../../../src/rollout/steps.js'
import {
  gatewayRouting,
  gatewayRoutingProblems,
  gatewayRules,
  nginxCanaryAnnotations,
} from '../../../src/rollout/traffic.js'
import type {HTTPRoute} from '../../../src/kubernetes/kinds.js'

function thrown(fn: () => unknown): Error & {exitCode: number} {
  try {
    fn()
  } catch (error) {
    return error as Error & {exitCode: number}
  }
  throw new Error('expected an error')
}

describe('header, cookie and mirror steps (--steps)', () => {
  it('parses them, keeps ":" and "=" inside a value, and formats them back', () => {
    const steps = parseStepsFlag(
      'header:X-Canary=staff,cookie:canary=always,mirror:10%,header:X-Build=a:b=c,25,mirror:0%',
    )
    expect(steps).toEqual([
      {setHeaderRoute: {header: 'X-Canary', value: 'staff'}},
      {setHeaderRoute: {cookie: 'canary', value: 'always'}},
      {setMirrorRoute: {percent: 10}},
      {setHeaderRoute: {header: 'X-Build', value: 'a:b=c'}},
      {setWeight: 25},
      {setMirrorRoute: {percent: 0}},
    ])
    expect(formatSteps(steps)).toBe(
      'header:X-Canary=staff,cookie:canary=always,mirror:10%,header:X-Build=a:b=c,25%,mirror:0%',
    )
  })

  it('reports every bad header, cookie and mirror item at once, exit 2', () => {
    const e = thrown(() =>
      parseStepsFlag(
        'header:X Canary=staff,header:X-Canary,cookie:c=a b,header:X-A=,mirror:101%,mirror:5,header:Cookie=x,header:Host=a',
      ),
    )
    expect(e.exitCode).toBe(ExitCode.USAGE)
    expect(e.message).toContain('"header:X Canary=staff": header name "X Canary" has characters HTTP does not allow')
    expect(e.message).toContain('"header:X-Canary": header takes NAME=VALUE')
    expect(e.message).toContain('"cookie:c=a b": cookie value "a b" has characters a cookie value cannot carry')
    expect(e.message).toContain('"header:X-A=": the header value is empty')
    expect(e.message).toContain('"mirror:101%": mirror takes a share of requests, 0% to 100%')
    expect(e.message).toContain('"mirror:5": mirror takes')
    expect(e.message).toContain('"header:Cookie=x": match a cookie with cookie:NAME=VALUE')
    expect(e.message).toContain('"header:Host=a": header Host is set by clients and proxies')
  })

  it('refuses control characters and edge spaces in header values, quotes and semicolons in cookies', () => {
    expect(headerRouteProblem({header: 'X-Canary', value: 'a\r\nX-Evil: 1'})).toContain('cannot carry')
    expect(headerRouteProblem({header: 'X-Canary', value: ' staff'})).toContain('spaces at either end')
    expect(headerRouteProblem({header: 'X-Canary', value: 'staff team'})).toBeUndefined()
    expect(headerRouteProblem({header: 'X-Canary', value: 'caf\u00e9'})).toContain('non-ASCII')
    expect(headerRouteProblem({cookie: 'c', value: 'a;b'})).toContain('cannot carry')
    expect(headerRouteProblem({cookie: 'c', value: '"x"'})).toContain('cannot carry')
    expect(headerRouteProblem({cookie: 'c=d', value: 'x'})).toContain('HTTP does not allow')
    expect(headerRouteProblem({header: 'x'.repeat(257), value: 'x'})).toContain('longer than 256')
  })

  it('keeps every header route up to a step (a later one on the same name replaces it) and the last mirror', () => {
    const steps = parseStepsFlag('header:X-Canary=a,mirror:20%,cookie:c=1,header:x-canary=b,50,mirror:0%,100')
    expect(routingAt(steps, 0, 0)).toEqual({weight: 0, headers: [{header: 'X-Canary', value: 'a'}], mirrorPercent: 0})
    expect(routingAt(steps, 1, 0).mirrorPercent).toBe(20)
    expect(routingAt(steps, 4, 50)).toEqual({
      weight: 50,
      headers: [
        {cookie: 'c', value: '1'},
        {header: 'x-canary', value: 'b'},
      ],
      mirrorPercent: 20,
    })
    expect(routingAt(steps, 5, 50).mirrorPercent).toBe(0)
  })
})

describe('cookie matches', () => {
  it('match the whole name=value pair in a Cookie header, with regex characters escaped', () => {
    const re = new RegExp(cookieHeaderPattern('canary.v2', 'a+b'))
    expect(re.test('canary.v2=a+b')).toBe(true)
    expect(re.test('session=1; canary.v2=a+b; other=2')).toBe(true)
    expect(re.test('session=1;canary.v2=a+b')).toBe(true)
    expect(re.test('xcanary.v2=a+b')).toBe(false)
    expect(re.test('canaryXv2=a+b')).toBe(false)
    expect(re.test('canary.v2=a+bc')).toBe(false)
    expect(re.test('canary.v2=aab')).toBe(false)
  })
})

// The rules as the apiserver returns them (defaults filled in): what the router backs up.
const original = [
  {
    matches: [{path: {type: 'PathPrefix', value: '/catalog'}}, {path: {type: 'Exact', value: '/products'}}],
    filters: [{type: 'RequestHeaderModifier', requestHeaderModifier: {set: [{name: 'X-Shop', value: '1'}]}}],
    backendRefs: [{group: '', kind: 'Service', name: 'catalog', port: 8080, weight: 1}],
  },
  {
    matches: [{path: {type: 'PathPrefix', value: '/cart'}}],
    backendRefs: [{group: '', kind: 'Service', name: 'cart', port: 8080, weight: 1}],
  },
]

describe('HTTPRoute rules for header, cookie and mirror steps', () => {
  it('puts one rule per header/cookie match ahead of the weighted rule, and a RequestMirror on it', () => {
    const routing = {
      weight: 10,
      headers: [
        {header: 'X-Canary', value: 'staff'},
        {cookie: 'canary', value: 'always'},
      ],
      mirrorPercent: 5,
    }
    const rules = gatewayRules(original, 'catalog', routing)
    const canary = {group: '', kind: 'Service', name: 'catalog-canary', port: 8080}
    expect(rules).toEqual([
      {
        matches: [
          {path: {type: 'PathPrefix', value: '/catalog'}, headers: [{name: 'X-Canary', type: 'Exact', value: 'staff'}]},
          {path: {type: 'Exact', value: '/products'}, headers: [{name: 'X-Canary', type: 'Exact', value: 'staff'}]},
        ],
        filters: original[0].filters,
        backendRefs: [canary],
      },
      {
        matches: [
          {
            path: {type: 'PathPrefix', value: '/catalog'},
            headers: [{name: 'Cookie', type: 'RegularExpression', value: '(^|;\\s*)canary=always(;|$)'}],
          },
          {
            path: {type: 'Exact', value: '/products'},
            headers: [{name: 'Cookie', type: 'RegularExpression', value: '(^|;\\s*)canary=always(;|$)'}],
          },
        ],
        filters: original[0].filters,
        backendRefs: [canary],
      },
      {
        matches: original[0].matches,
        filters: [...original[0].filters!, {type: 'RequestMirror', requestMirror: {backendRef: canary, percent: 5}}],
        backendRefs: [
          {...canary, name: 'catalog-stable', weight: 90},
          {...canary, weight: 10},
        ],
      },
      original[1],
    ])
    // Read back: the weight counts the weighted rule only; the header rules and the mirror are counted apart.
    const route = {metadata: {name: 'catalog'}, spec: {rules}} as HTTPRoute
    expect(gatewayRouting(route, 'catalog')).toEqual({weight: 10, headerRoutes: 2, mirrorPercent: 5})
    expect(gatewayRouting(route, 'cart')).toEqual({weight: 0, headerRoutes: 0, mirrorPercent: 0})
  })

  it('adds the header to existing header matches, and matches every path when the rule had no matches', () => {
    const rules = gatewayRules(
      [
        {
          matches: [{path: {type: 'PathPrefix', value: '/'}, headers: [{name: 'X-Tenant', type: 'Exact', value: 'a'}]}],
          backendRefs: [{name: 'catalog', port: 80}],
        },
        {backendRefs: [{name: 'catalog', port: 80}]},
      ],
      'catalog',
      {weight: 0, headers: [{header: 'X-Canary', value: 'staff'}], mirrorPercent: 0},
    )
    expect(rules[0].matches).toEqual([
      {
        path: {type: 'PathPrefix', value: '/'},
        headers: [
          {name: 'X-Tenant', type: 'Exact', value: 'a'},
          {name: 'X-Canary', type: 'Exact', value: 'staff'},
        ],
      },
    ])
    expect(rules[2].matches).toEqual([{headers: [{name: 'X-Canary', type: 'Exact', value: 'staff'}]}])
    expect(rules[2].backendRefs).toEqual([{name: 'catalog-canary', port: 80}])
    expect(rules[3].filters).toBeUndefined()
  })

  it('renders only the weights (the rules otherwise as they were) without header or mirror steps', () => {
    const rules = gatewayRules(original, 'catalog', weightOnly(0))
    expect(rules).toHaveLength(2)
    expect(rules[0]).toEqual({
      ...original[0],
      backendRefs: [
        {group: '', kind: 'Service', name: 'catalog-stable', port: 8080, weight: 100},
        {group: '', kind: 'Service', name: 'catalog-canary', port: 8080, weight: 0},
      ],
    })
    expect(rules[1]).toBe(original[1])
  })

  it("refuses, before any write, steps beyond the Gateway API's limits or on a header the rule matches already", () => {
    const many = Array.from({length: 6}, (_, i) => ({header: `X-Canary-${i}`, value: 'x'}))
    const rules = Array.from({length: 3}, (_, i) => ({
      matches: [{path: {type: 'PathPrefix', value: `/${i}`}}],
      backendRefs: [{name: 'catalog', port: 80}],
    }))
    expect(gatewayRoutingProblems(rules, 'catalog', {weight: 0, headers: many, mirrorPercent: 0})).toEqual([
      'the header and cookie steps need 21 rules, and an HTTPRoute holds at most 16 (3 now)',
    ])
    const tenant = [
      {
        matches: [{headers: [{name: 'x-canary', value: 'a'}]}],
        backendRefs: [{name: 'catalog', port: 80}],
      },
    ]
    expect(
      gatewayRoutingProblems(tenant, 'catalog', {
        weight: 0,
        headers: [{header: 'X-Canary', value: 'b'}],
        mirrorPercent: 0,
      })[0],
    ).toContain('rule 1 already matches on header x-canary')
    expect(
      gatewayRoutingProblems(original, 'catalog', {weight: 0, headers: many.slice(0, 2), mirrorPercent: 1}),
    ).toEqual([])
  })
})

describe('ingress-nginx canary annotations', () => {
  it('set canary-by-header(-value) and canary-by-cookie, and remove them (null) when no step asks', () => {
    expect(
      nginxCanaryAnnotations({
        weight: 0,
        headers: [
          {header: 'X-Canary', value: 'staff'},
          {cookie: 'canary', value: 'always'},
        ],
        mirrorPercent: 0,
      }),
    ).toEqual({
      'nginx.ingress.kubernetes.io/canary-weight': '0',
      'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary',
      'nginx.ingress.kubernetes.io/canary-by-header-value': 'staff',
      'nginx.ingress.kubernetes.io/canary-by-cookie': 'canary',
      'retailops.dev/canary-match': 'header:X-Canary=staff,cookie:canary=always',
    })
    expect(nginxCanaryAnnotations(weightOnly(30))).toEqual({
      'nginx.ingress.kubernetes.io/canary-weight': '30',
      'nginx.ingress.kubernetes.io/canary-by-header': null,
      'nginx.ingress.kubernetes.io/canary-by-header-value': null,
      'nginx.ingress.kubernetes.io/canary-by-cookie': null,
      'retailops.dev/canary-match': null,
    })
  })
})

describe('which router and service may run them', () => {
  const steps = parseStepsFlag('header:X-Canary=a,header:X-Other=b,cookie:c=staff,mirror:10%')

  it('the gateway router runs all of them; replicas none; nginx one header, one cookie "always", no mirror', () => {
    expect(routingStepProblems(steps, 'gateway')).toEqual([])
    expect(routingStepProblems(steps, 'replicas').map((p) => p.index)).toEqual([0, 1, 2, 3])
    const nginx = routingStepProblems(steps, 'nginx')
    expect(nginx.map((p) => p.index)).toEqual([1, 2, 3])
    expect(nginx[0].message).toContain('takes one canary-by-header, and step 1 already sets one')
    expect(nginx[1].message).toContain('only when its value is "always"')
    expect(nginx[2].message).toContain('mirror:10% needs the gateway router')
    expect(routingStepProblems(parseStepsFlag('mirror:0%'), 'nginx')).toEqual([])
  })

  it('mirrors only services that declare themselves safe; checkout and payments are named', () => {
    expect(mirrorRefusal('checkout', {tier: 'operational'})).toContain('place or charge real orders a second time')
    expect(mirrorRefusal('payments', {tier: 'tolerant'})).toContain('"payments"')
    expect(mirrorRefusal('orders', {tier: 'revenue-critical'})).toContain('revenue-critical')
    expect(mirrorRefusal('catalog', {tier: 'operational'})).toContain('has not declared')
    expect(mirrorRefusal('catalog', {tier: 'operational', rollout: {mirrorSafe: false}})).toContain('has not declared')
    expect(mirrorRefusal('catalog', {tier: 'operational', rollout: {mirrorSafe: true}})).toBeUndefined()
    expect(mirrorRefusal('checkout', {tier: 'revenue-critical', rollout: {mirrorSafe: true}})).toBeUndefined()
  })

  it('refuses a mirror --steps for a service not declared safe with exit 3, and a router mismatch with exit 2', () => {
    const spec = {strategy: 'canary' as const, router: 'gateway' as const, steps: parseStepsFlag('mirror:10%,50')}
    const e = thrown(() => assertRoutingSteps('checkout', spec, undefined, '--steps'))
    expect(e.exitCode).toBe(ExitCode.CONFIG)
    expect(e.message).toBe(
      'checkout: --steps asks for mirror:10%, but a mirror step copies live requests to the canary, and checkout is "checkout": mirrored requests would place or charge real orders a second time.',
    )
    const r = thrown(() =>
      assertRoutingSteps(
        'catalog',
        {...spec, router: 'replicas', steps: parseStepsFlag('header:X-C=1')},
        undefined,
        '--steps',
      ),
    )
    expect(r.exitCode).toBe(ExitCode.USAGE)
    expect(r.message).toContain('step 1: header:X-C=1 needs a router that can match requests')
    expect(() =>
      assertRoutingSteps('catalog', {...spec, steps: parseStepsFlag('header:X-C=1,10')}, undefined, '--steps'),
    ).not.toThrow()
  })
})
