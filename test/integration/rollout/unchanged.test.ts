// `deploy --canary` on a push that changed one service of several (issue 12, item 8): only the
// service whose image changed is released by canary; the others are reported unchanged, get no
// rollout objects, and their Deployments are not touched. Nothing to release exits 0.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PATHS} from '../../../src/rollout/kube.js'
import {stateName} from '../../../src/rollout/store.js'
import {RolloutProject} from './helpers.js'

const service = {tier: 'operational', scaling: {minReplicas: 2, maxReplicas: 2}, rollout: {progressDeadline: '90s'}}

describe('deploy --canary with unchanged services', () => {
  const p = new RolloutProject({catalog: service, cart: service})

  beforeAll(async () => {
    const first = await p.deploy(['catalog', 'cart'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    for (const s of ['catalog', 'cart']) await p.gatewayRoute(s)
  })
  afterAll(() => p.cleanup())

  /** What a canary of a service would leave or change in the cluster. */
  async function footprint(s: string) {
    const d = await p.deployment(s)
    return {
      resourceVersion: d?.metadata.resourceVersion,
      generation: d?.metadata.generation,
      image: d?.spec.template.spec.containers[0].image,
      replicas: d?.spec.replicas,
      canary: await p.deployment(`${s}-canary`),
      stableService: await p.service(`${s}-stable`),
      state: await p.kube.get(PATHS.configmaps(p.ns), stateName(s)),
      route: (await p.route(s))?.metadata.resourceVersion,
    }
  }

  it('releases only the service whose image changed and leaves the others untouched', async () => {
    const cartBefore = await footprint('cart')
    expect(cartBefore.state).toBeUndefined()
    const r = await p.cli([
      'deploy',
      'catalog',
      'cart',
      '--image',
      p.image('catalog', 'v2'),
      '--image',
      p.image('cart', 'v1'),
      '--skip-verify',
      '--canary',
      '--steps',
      '50,100',
    ])
    expect(r.exitCode, JSON.stringify(r.json.error ?? r.json.result?.release)).toBe(0)
    expect(r.json.result.release).toMatchObject({unchanged: ['cart'], initial: []})
    expect(r.json.result.release.rollouts.map((x: {service: string; phase: string}) => [x.service, x.phase])).toEqual([
      ['catalog', 'Healthy'],
    ])

    // catalog went through a canary to v2.
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect((await p.state('catalog'))?.events.some((e) => e.message.startsWith('50 % of traffic to the canary'))).toBe(
      true,
    )
    // cart: no rollout state was ever written, no canary objects, the Deployment and route not written to.
    expect(await footprint('cart')).toEqual(cartBefore)
  })

  it('exits 0 and changes nothing when no service changed', async () => {
    const before = {catalog: await footprint('catalog'), cart: await footprint('cart')}
    const r = await p.cli([
      'deploy',
      'catalog',
      'cart',
      '--image',
      p.image('catalog', 'v2'),
      '--image',
      p.image('cart', 'v1'),
      '--skip-verify',
      '--canary',
    ])
    expect(r.exitCode, JSON.stringify(r.json.error)).toBe(0)
    expect(r.json.result.release).toMatchObject({rollouts: [], initial: [], unchanged: ['catalog', 'cart']})
    expect({catalog: await footprint('catalog'), cart: await footprint('cart')}).toEqual(before)
  })

  it('rollout status takes flag values for flags, not for service names (--watch --timeout 15m)', async () => {
    const r = await p.cli(['rollout', 'status', 'catalog', '--watch', '--timeout', '15m'])
    expect(r.exitCode, JSON.stringify(r.json.error)).toBe(0)
    expect(r.json.result.rollouts.map((x: {service: string; phase: string}) => [x.service, x.phase])).toEqual([
      ['catalog', 'Healthy'],
    ])
  })
})
