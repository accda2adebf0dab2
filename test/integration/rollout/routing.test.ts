// Staff-first and mirroring steps against the sandbox: the real CLI writes the HTTPRoute rules the
// Gateway API specifies (header matches, a Cookie regular expression, a RequestMirror with percent,
// accepted by the apiserver's v1.3.0 standard-channel CRD) and puts the route back exactly as it
// was on promote, on abort and after an undo; another service's route is never written.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PATHS} from '../../../src/rollout/kube.js'
import {RolloutProject, type ReadBack} from './helpers.js'

// One pod each (tier tolerant allows it): the file stays short; the routes are what it checks.
const service = (extra: Record<string, unknown> = {}) => ({
  tier: 'tolerant',
  scaling: {minReplicas: 1, maxReplicas: 1},
  rollout: {progressDeadline: '90s', ...extra},
})

const canaryRef = {group: '', kind: 'Service', name: 'catalog-canary', port: 8080}
const staffMatch = (headers: unknown[]) => [{path: {type: 'PathPrefix', value: '/catalog'}, headers}]
const header = {name: 'X-Canary', type: 'Exact', value: 'staff'}
const cookie = {name: 'Cookie', type: 'RegularExpression', value: '(^|;\\s*)canary=always(;|$)'}

/** What a route holds that a rollout may change: its spec and annotations (resourceVersion aside). */
const routeOf = (r: ReadBack | undefined) => ({spec: r?.spec, annotations: r?.metadata.annotations ?? {}})

describe('header, cookie and mirror steps (gateway router)', () => {
  const p = new RolloutProject({
    catalog: service({mirrorSafe: true}),
    cart: service(),
    checkout: {...service(), tier: 'revenue-critical', scaling: {minReplicas: 2, maxReplicas: 2}},
  })
  let catalogBefore: ReturnType<typeof routeOf>
  let cartVersion: string

  beforeAll(async () => {
    const first = await p.deploy(['catalog', 'cart', 'checkout'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error ?? first.stderr)).toBe(0)
    for (const s of ['catalog', 'cart', 'checkout']) await p.gatewayRoute(s)
    catalogBefore = routeOf(await p.route('catalog'))
    cartVersion = (await p.route('cart'))!.metadata.resourceVersion as string
  })
  afterAll(() => p.cleanup())

  it('sends staff by header and cookie to the canary before any weight, mirrors 10 %, keeps the header rules with weight, and restores the route on promote', async () => {
    const paused = await p.deploy(['catalog'], 'v2', [
      '--canary',
      '--steps',
      'header:X-Canary=staff,cookie:canary=always,mirror:10%,pause,mirror:0%,30,pause',
    ])
    expect(paused.exitCode, JSON.stringify(paused.json.error ?? paused.json.result)).toBe(21)

    // Weight 0, yet a Ready canary pod behind the header rules, which come ahead of the weighted rule.
    const route = (await p.route('catalog'))!
    expect(route.spec.rules).toEqual([
      {matches: staffMatch([header]), backendRefs: [{...canaryRef, weight: 1}]},
      {matches: staffMatch([cookie]), backendRefs: [{...canaryRef, weight: 1}]},
      {
        matches: [{path: {type: 'PathPrefix', value: '/catalog'}}],
        filters: [{type: 'RequestMirror', requestMirror: {backendRef: canaryRef, percent: 10}}],
        backendRefs: [
          {...canaryRef, name: 'catalog-stable', weight: 100},
          {...canaryRef, weight: 0},
        ],
      },
    ])
    expect(route.metadata.annotations).toMatchObject({
      'retailops.dev/canary-weight': '0',
      'retailops.dev/canary-match': 'header:X-Canary=staff,cookie:canary=always,mirror:10%',
    })
    expect((await p.deployment('catalog-canary'))?.status?.readyReplicas).toBeGreaterThanOrEqual(1)
    expect((await p.service('catalog-canary'))?.spec.selector).toMatchObject({'retailops.dev/track': 'canary'})
    const status = await p.cli(['rollout', 'status', 'catalog'])
    expect(status.json.result.rollouts[0]).toMatchObject({phase: 'Paused', weight: 0, actualWeight: 0})

    // Next: the mirror stops, 30 % by weight, the header and cookie rules stay.
    const weighted = await p.cli(['rollout', 'promote', 'catalog'])
    expect(weighted.exitCode, weighted.stderr).toBe(21)
    const rules = (await p.route('catalog'))!.spec.rules
    expect(rules).toHaveLength(3)
    expect(rules[0].matches).toEqual(staffMatch([header]))
    expect(rules[1].matches).toEqual(staffMatch([cookie]))
    expect(rules[2].filters).toBeUndefined()
    expect(rules[2].backendRefs.map((b: {name: string; weight: number}) => [b.name, b.weight])).toEqual([
      ['catalog-stable', 70],
      ['catalog-canary', 30],
    ])

    const promoted = await p.cli(['rollout', 'promote', 'catalog'])
    expect(promoted.exitCode, promoted.stderr).toBe(0)
    expect(promoted.json.result.rollouts[0].phase).toBe('Healthy')
    expect(routeOf(await p.route('catalog'))).toEqual(catalogBefore)
    expect(await p.service('catalog-canary')).toBeUndefined()
    expect((await p.route('cart'))!.metadata.resourceVersion).toBe(cartVersion)

    // An undo goes back to v1 through the Deployment: the route stays as it was.
    const undo = await p.cli(['rollout', 'undo', 'catalog'])
    expect(undo.exitCode, undo.stderr).toBe(0)
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v1@')
    expect(routeOf(await p.route('catalog'))).toEqual(catalogBefore)
  })

  it('removes the header rule and the mirror on abort, and restores the route exactly', async () => {
    const paused = await p.deploy(['catalog'], 'v3', [
      '--canary',
      '--steps',
      'header:X-Canary=staff,mirror:100%,pause,50',
    ])
    expect(paused.exitCode, JSON.stringify(paused.json.error ?? paused.json.result)).toBe(21)
    const rules = (await p.route('catalog'))!.spec.rules
    expect(rules.map((r: {backendRefs: {name: string}[]}) => r.backendRefs.map((b) => b.name))).toEqual([
      ['catalog-canary'],
      ['catalog-stable', 'catalog-canary'],
    ])
    expect(rules[1].filters).toEqual([{type: 'RequestMirror', requestMirror: {backendRef: canaryRef, percent: 100}}])

    const abort = await p.cli(['rollout', 'abort', 'catalog', '--reason', 'staff found a bug'])
    expect(abort.exitCode, abort.stderr).toBe(0)
    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Aborted')
    expect(routeOf(await p.route('catalog'))).toEqual(catalogBefore)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect(await p.service('catalog-stable')).toBeUndefined()
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v1@')
    // Traffic back (header rule and mirror gone, read back) came before the canary went.
    const messages = state.events.map((e) => e.message)
    expect(messages.findIndex((m) => m.startsWith('all traffic is back on stable'))).toBeGreaterThan(
      messages.findIndex((m) => m.startsWith('aborting:')),
    )
    expect((await p.route('cart'))!.metadata.resourceVersion).toBe(cartVersion)
  })

  it('writes canary-by-header and canary-by-cookie on the ingress-nginx canary Ingress, and restores the Ingress on abort', async () => {
    await p.nginxIngress('cart')
    const before = await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'cart')
    const paused = await p.deploy(['cart'], 'v2', [
      '--canary',
      '--router',
      'nginx',
      '--steps',
      'header:X-Canary=staff,cookie:canary=always,pause,100',
    ])
    expect(paused.exitCode, JSON.stringify(paused.json.error ?? paused.json.result)).toBe(21)
    const canary = await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'cart-canary')
    expect(canary?.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/canary': 'true',
      'nginx.ingress.kubernetes.io/canary-weight': '0',
      'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary',
      'nginx.ingress.kubernetes.io/canary-by-header-value': 'staff',
      'nginx.ingress.kubernetes.io/canary-by-cookie': 'canary',
    })
    expect((await p.deployment('cart-canary'))?.status?.readyReplicas).toBeGreaterThanOrEqual(1)

    const abort = await p.cli(['rollout', 'abort', 'cart'])
    expect(abort.exitCode, abort.stderr).toBe(0)
    expect(await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'cart-canary')).toBeUndefined()
    const after = await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'cart')
    expect({spec: after?.spec, annotations: after?.metadata.annotations}).toEqual({
      spec: before?.spec,
      annotations: before?.metadata.annotations,
    })
    // The cart HTTPRoute (gateway router) was never written by the nginx rollout.
    expect((await p.route('cart'))!.metadata.resourceVersion).toBe(cartVersion)
  })

  it('refuses to mirror checkout (not declared safe) with exit 3, before anything is written', async () => {
    const before = await p.route('checkout')
    const refused = await p.deploy(['checkout'], 'v2', ['--canary', '--steps', 'mirror:10%,100'])
    expect(refused.exitCode).toBe(3)
    expect(refused.json.error.message).toContain(
      'checkout: --steps asks for mirror:10%, but a mirror step copies live requests to the canary, and checkout is "checkout"',
    )
    expect(refused.json.error.nextSteps.join(' ')).toContain('services.checkout.rollout.mirrorSafe: true')
    expect(await p.state('checkout')).toBeUndefined()
    expect(await p.deployment('checkout-canary')).toBeUndefined()
    expect((await p.route('checkout'))!.metadata.resourceVersion).toBe(before!.metadata.resourceVersion)
    expect((await p.deployment('checkout'))?.spec.template.spec.containers[0].image).toContain(':v1@')

    // The same step in retailops.yaml is refused when the configuration loads.
    p.services.checkout = {
      ...p.services.checkout,
      rollout: {steps: [{setMirrorRoute: {percent: 10}}, {setWeight: 100}]},
    }
    p.writeConfig()
    const config = await p.deploy(['checkout'], 'v2', ['--canary'])
    expect(config.exitCode).toBe(3)
    expect(config.json.error.message).toContain('services.checkout.rollout.steps[0].setMirrorRoute')
    expect(await p.state('checkout')).toBeUndefined()
    expect((await p.route('checkout'))!.metadata.resourceVersion).toBe(before!.metadata.resourceVersion)
  })
})
