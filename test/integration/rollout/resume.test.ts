// A CLI killed with SIGKILL in the middle of a rollout: one is resumed by `rollout resume` and
// promoted; another is aborted by `rollout abort`, which restores a consistent state.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {eventually} from '../../support/sandbox.js'
import {RolloutProject, routeWeights} from './helpers.js'

describe('a killed CLI', () => {
  const p = new RolloutProject({
    catalog: {tier: 'operational', scaling: {minReplicas: 2, maxReplicas: 2}, rollout: {progressDeadline: '90s'}},
  })

  beforeAll(async () => {
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('catalog')
  })
  afterAll(() => p.cleanup())

  async function killMidRollout(version: string): Promise<void> {
    const child = p.spawnCli([
      'deploy',
      'catalog',
      '--image',
      p.image('catalog', version),
      '--skip-verify',
      '--canary',
      '--steps',
      '50,pause:30s,100',
    ])
    // Killed while it pauses at 50 %: the canary is up and takes traffic.
    await eventually(
      'the rollout to pause at 50 %',
      async () => {
        const s = await p.state('catalog')
        return s?.canary.version === version && s.phase === 'Paused' && s.weight === 50 ? s : undefined
      },
      60_000,
      200,
    )
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
  }

  it('is resumed from where its state says and promoted', async () => {
    await killMidRollout('v2')
    const orphan = await p.cli(['rollout', 'status', 'catalog'])
    expect(orphan.json.result.rollouts[0]).toMatchObject({phase: 'Paused', weight: 50})
    expect(routeWeights(await p.route('catalog'))).toEqual({'catalog-stable': 50, 'catalog-canary': 50})

    const resumed = await p.cli(['rollout', 'resume', 'catalog'])
    expect(resumed.exitCode, (await p.state('catalog'))?.reason).toBe(0)
    expect(resumed.json.result.rollouts[0].phase).toBe('Healthy')
    const state = (await p.state('catalog'))!
    expect(state.lease).toBeUndefined()
    // The pause was not restarted from zero: it counted from when it began.
    const at = (prefix: string) => Date.parse(state.events.find((e) => e.message.startsWith(prefix))!.at)
    const paused = at('paused 30s')
    expect(at('step 3/3') - paused).toBeGreaterThanOrEqual(29_000)
    expect(at('step 3/3') - paused).toBeLessThan(40_000)
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(routeWeights(await p.route('catalog'))).toEqual({catalog: 1})
  })

  it('is aborted by rollout abort, which restores traffic and removes the canary', async () => {
    await killMidRollout('v3')
    const aborted = await p.cli(['rollout', 'abort', 'catalog'])
    expect(aborted.exitCode, aborted.stderr).toBe(0)
    expect(aborted.json.result).toMatchObject({drivenBy: 'this CLI'})
    expect(aborted.json.result.rollouts[0].phase).toBe('Aborted')
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect(await p.service('catalog-canary')).toBeUndefined()
    expect(routeWeights(await p.route('catalog'))).toEqual({catalog: 1})
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect((await p.cli(['rollout', 'status', 'catalog'])).exitCode).toBe(20)
  })

  it('is watched from another CLI: get --watch redraws the tree until the rollout ends', async () => {
    const child = p.spawnCli([
      'deploy',
      'catalog',
      '--image',
      p.image('catalog', 'v5'),
      '--skip-verify',
      '--canary',
      '--steps',
      '50,pause:6s,100',
    ])
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    await eventually(
      'the rollout to start',
      async () => ((await p.state('catalog'))?.canary.version === 'v5' ? true : undefined),
      60_000,
      200,
    )
    const watcher = p.spawnCli(['rollout', 'get', 'catalog', '--watch'])
    let text = ''
    watcher.stdout?.removeAllListeners('data')
    watcher.stdout?.on('data', (d) => (text += String(d)))
    const code = await new Promise<number | null>((r) => watcher.once('exit', (c) => r(c)))
    expect(await exited, (await p.state('catalog'))?.reason).toBe(0)
    expect(code).toBe(0)
    const frames = text.split('Name:         catalog').length - 1
    expect(frames).toBeGreaterThan(1)
    expect(text).toContain('Status:       ✔ Healthy')
    expect(text).toMatch(/॥ Paused|◌ Progressing/)
  })

  it('lets another CLI promote a rollout that a live CLI drives', async () => {
    const child = p.spawnCli([
      'deploy',
      'catalog',
      '--image',
      p.image('catalog', 'v6'),
      '--skip-verify',
      '--canary',
      '--steps',
      '50,pause:5m,100',
    ])
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    await eventually(
      'the rollout to pause',
      async () =>
        (await p.state('catalog'))?.canary.version === 'v6' && (await p.state('catalog'))?.phase === 'Paused'
          ? true
          : undefined,
      60_000,
      200,
    )
    const promote = await p.cli(['rollout', 'promote', 'catalog', '--full'])
    expect(promote.exitCode, promote.stderr).toBe(0)
    expect(promote.json.result.drivenBy).toBe('the running CLI')
    expect(await exited).toBe(0)
    expect((await p.state('catalog'))?.phase).toBe('Healthy')
  })
})
