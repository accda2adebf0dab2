// Release gates on every path that changes what a revenue-critical service runs (issue 12, item
// 4): inside a campaign's freeze window a rolling hotfix, `rollout undo --to-revision` and
// `rollout promote --full` are refused with nothing changed in the cluster; `--force-release
// --reason` goes through and is recorded on the Deployment and in the rollout history. Going back
// to the previous version (undo, abort) stays possible and is recorded as forced.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PATHS} from '../../../src/rollout/kube.js'
import {stateName} from '../../../src/rollout/store.js'
import {RolloutProject, routeWeights} from './helpers.js'

const FREEZE = {
  campaigns: [
    {
      name: 'black-friday',
      start: '2020-01-02T00:00:00Z',
      end: '2099-01-01T00:00:00Z',
      peak: {checkout: {rps: 100}},
      freeze: {start: '2020-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z'},
    },
  ],
}

describe('release gates beyond canaries (freeze window)', () => {
  const p = new RolloutProject({
    checkout: {tier: 'revenue-critical', scaling: {minReplicas: 3, maxReplicas: 3}, rollout: {progressDeadline: '90s'}},
  })

  beforeAll(async () => {
    // Before the freeze: v1, then a promoted canary to v2 (so undo has a previous version).
    expect((await p.deploy(['checkout'], 'v1')).exitCode).toBe(0)
    await p.gatewayRoute('checkout')
    const canary = await p.deploy(['checkout'], 'v2', ['--canary', '--steps', '100'])
    expect(canary.exitCode, JSON.stringify(canary.json.error ?? canary.json.result?.release)).toBe(0)
    p.writeConfig(FREEZE)
  })
  afterAll(() => p.cleanup())

  const image = async () => (await p.deployment('checkout'))?.spec.template.spec.containers[0].image as string
  const history = async () =>
    JSON.parse((await p.kube.get(PATHS.configmaps(p.ns), stateName('checkout')))!.data!['history.json'])

  it('refuses a rolling hotfix in the freeze with nothing changed, and lets a deploy that changes no pod through', async () => {
    const before = await p.deployment('checkout')
    const refused = await p.deploy(['checkout'], 'v3')
    expect(refused.exitCode).toBe(12)
    expect(refused.json.error.message).toContain('black-friday')
    expect(refused.json.error.nextSteps.join(' ')).toContain('--force-release')
    const after = await p.deployment('checkout')
    expect(after?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion)
    expect(await image()).toContain(':v2@')

    // The same version again changes no pod: not a release, not refused.
    const same = await p.deploy(['checkout'], 'v2')
    expect(same.exitCode, JSON.stringify(same.json.error)).toBe(0)
    expect(await image()).toContain(':v2@')
  })

  it('lets the hotfix through with --force-release --reason and records it on the Deployment and in the history', async () => {
    const forced = await p.deploy(['checkout'], 'v3', ['--force-release', '--reason', 'payment outage hotfix'])
    expect(forced.exitCode, JSON.stringify(forced.json.error)).toBe(0)
    expect(forced.json.result.forced).toMatchObject({reason: 'payment outage hotfix'})
    const d = await p.deployment('checkout')
    expect(d?.spec.template.spec.containers[0].image).toContain(':v3@')
    expect(d?.metadata.annotations?.['retailops.dev/forced-release-reason']).toBe('payment outage hotfix')
    expect(JSON.parse(d!.metadata.annotations!['retailops.dev/forced-release']).overridden.join(' ')).toContain(
      'black-friday',
    )
    const last = (await history()).at(-1)
    expect(last).toMatchObject({
      strategy: 'rolling',
      stable: {version: 'v2'},
      canary: {version: 'v3'},
      forced: {reason: 'payment outage hotfix'},
    })
  })

  it('refuses undo to another revision in the freeze; undo to the previous version goes through, recorded as forced', async () => {
    const before = await p.deployment('checkout')
    const refused = await p.cli(['rollout', 'undo', 'checkout', '--to-revision', '1'])
    expect(refused.exitCode).toBe(12)
    expect((await p.deployment('checkout'))?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion)

    // The version before the forced hotfix (v2): an incident can always go back.
    const undo = await p.cli(['rollout', 'undo', 'checkout'])
    expect(undo.exitCode, JSON.stringify(undo.json.error)).toBe(0)
    expect(undo.json.result).toMatchObject({
      kind: 'rollback',
      to: 'v2',
      from: 'v3',
      forced: {reason: expect.stringContaining('rollback to the previous version')},
    })
    const d = await p.deployment('checkout')
    expect(d?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(d?.metadata.annotations?.['retailops.dev/forced-release-reason']).toContain(
      'rollback to the previous version',
    )
    expect((await history()).at(-1)).toMatchObject({
      strategy: 'undo',
      forced: {overridden: [expect.stringContaining('black-friday')]},
    })
  })

  it('refuses promote --full in the freeze (rollout untouched), forced it promotes and records it', async () => {
    const started = await p.deploy(['checkout'], 'v4', [
      '--canary',
      '--steps',
      '50,pause,100',
      '--force-release',
      '--reason',
      'release train',
    ])
    expect(started.exitCode, JSON.stringify(started.json.error ?? started.json.result)).toBe(21)
    const paused = (await p.state('checkout'))!
    expect(paused).toMatchObject({phase: 'Paused', weight: 50})

    const refused = await p.cli(['rollout', 'promote', 'checkout', '--full'])
    expect(refused.exitCode).toBe(12)
    const still = (await p.state('checkout'))!
    expect(still).toMatchObject({phase: 'Paused', weight: 50, step: paused.step})
    expect(routeWeights(await p.route('checkout'))).toEqual({'checkout-stable': 50, 'checkout-canary': 50})
    expect(await image()).toContain(':v2@')

    const forced = await p.cli([
      'rollout',
      'promote',
      'checkout',
      '--full',
      '--force-release',
      '--reason',
      'checkout fix must ship',
    ])
    expect(forced.exitCode, forced.stderr).toBe(0)
    const state = (await p.state('checkout'))!
    expect(state.phase).toBe('Healthy')
    expect(state.forced?.reason).toContain('checkout fix must ship')
    expect(state.forced?.overridden.join(' ')).toContain('black-friday')
    const d = await p.deployment('checkout')
    expect(d?.spec.template.spec.containers[0].image).toContain(':v4@')
    expect(d?.metadata.annotations?.['retailops.dev/forced-release-reason']).toContain('checkout fix must ship')
    expect((await history()).at(-1)).toMatchObject({
      strategy: 'canary',
      phase: 'Healthy',
      forced: {reason: expect.stringContaining('checkout fix must ship')},
    })
  })

  it('aborts in the freeze without --force-release, recorded as forced', async () => {
    expect(
      (
        await p.deploy(['checkout'], 'v5', [
          '--canary',
          '--steps',
          '50,pause,100',
          '--force-release',
          '--reason',
          'release train',
        ])
      ).exitCode,
    ).toBe(21)
    const abort = await p.cli(['rollout', 'abort', 'checkout', '--reason', 'errors on the canary'])
    expect(abort.exitCode, abort.stderr).toBe(0)
    const state = (await p.state('checkout'))!
    expect(state).toMatchObject({phase: 'Aborted', weight: 0})
    expect(state.forced?.reason).toContain('errors on the canary')
    expect(state.forced?.overridden.join(' ')).toContain('black-friday')
    expect(routeWeights(await p.route('checkout'))).toEqual({checkout: 1})
    expect(await image()).toContain(':v4@')
    expect((await history()).at(-1)).toMatchObject({
      phase: 'Aborted',
      forced: {overridden: [expect.stringContaining('black-friday')]},
    })
  })
})
