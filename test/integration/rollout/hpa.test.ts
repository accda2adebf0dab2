// The replica router with an autoscaler whose min is below its max (issue 12, item 9): the
// sandbox's kube-controller-manager runs the HPA controller, which would pull a stable Deployment
// the router scaled below minReplicas back up and skew the split. The router holds the HPA's
// bounds at the count it sets for the rollout's duration and restores them exactly afterwards:
// after promote, after abort, and after an abort that finishes the work of a killed CLI.
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PATHS} from '../../../src/rollout/kube.js'
import {eventually} from '../../support/sandbox.js'
import {RolloutProject, type ReadBack} from './helpers.js'

describe('replica router with a HorizontalPodAutoscaler (min 3 < max 6)', () => {
  const p = new RolloutProject({
    catalog: {
      tier: 'operational',
      scaling: {minReplicas: 3, maxReplicas: 6},
      rollout: {progressDeadline: '90s', router: 'replicas'},
    },
  })
  const hpa = () => p.kube.get<ReadBack>(PATHS.hpas(p.ns), 'catalog')
  let original: Record<string, unknown>

  beforeAll(async () => {
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    // As deploy renders it (a deploy re-applies it, so that is what each rollout starts from).
    original = (await hpa())!.spec
    expect(original).toMatchObject({
      minReplicas: 3,
      maxReplicas: 6,
      behavior: {scaleDown: {stabilizationWindowSeconds: 300}},
    })
  })
  afterAll(() => p.cleanup())

  it('keeps the split the router set while paused (the HPA controller does not pull stable back to min), then promotes and restores the HPA exactly', async () => {
    const r = await p.deploy(['catalog'], 'v2', ['--canary', '--steps', '34,pause,100'])
    expect(r.exitCode, JSON.stringify(r.json.error ?? r.json.result?.release)).toBe(21)
    // 34 % of 3 pods: 1 canary, 2 stable, below the HPA's min of 3.
    expect((await p.deployment('catalog'))?.spec.replicas).toBe(2)
    expect((await hpa())?.spec).toMatchObject({minReplicas: 2, maxReplicas: 2})
    expect((await p.state('catalog'))?.hpaBackup).toEqual({name: 'catalog', minReplicas: 3, maxReplicas: 6})
    // Longer than the HPA controller's sync period (15s): the split holds.
    await sleep(25_000)
    const stable = await p.deployment('catalog')
    expect(stable?.spec.replicas).toBe(2)
    expect((await p.deployment('catalog-canary'))?.spec.replicas).toBe(1)
    expect((await p.cli(['rollout', 'status', 'catalog'])).json.result.rollouts[0]).toMatchObject({
      weight: 34,
      actualWeight: 33,
    })

    const promoted = await p.cli(['rollout', 'promote', 'catalog'])
    expect(promoted.exitCode, promoted.stderr).toBe(0)
    expect((await hpa())?.spec).toEqual(original)
    const d = await p.deployment('catalog')
    expect(d?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(d?.spec.replicas).toBe(3)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
  })

  it('restores the HPA exactly after an abort', async () => {
    expect((await p.deploy(['catalog'], 'v3', ['--canary', '--steps', '67,pause,100'])).exitCode).toBe(21)
    expect((await p.deployment('catalog'))?.spec.replicas).toBe(1)
    expect((await hpa())?.spec).toMatchObject({minReplicas: 1, maxReplicas: 1})
    const aborted = await p.cli(['rollout', 'abort', 'catalog'])
    expect(aborted.exitCode, aborted.stderr).toBe(0)
    expect((await hpa())?.spec).toEqual(original)
    expect((await p.deployment('catalog'))?.spec.replicas).toBe(3)
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
  })

  it('restores the HPA exactly when `rollout abort` finishes the rollout of a killed CLI', async () => {
    const child = p.spawnCli([
      'deploy',
      'catalog',
      '--image',
      p.image('catalog', 'v4'),
      '--skip-verify',
      '--canary',
      '--steps',
      '34,pause:10m,100',
    ])
    await eventually(
      'the rollout to pause at 34 %',
      async () => {
        const s = await p.state('catalog')
        return s?.canary.version === 'v4' && s.phase === 'Paused' && s.weight === 34 ? s : undefined
      },
      60_000,
      200,
    )
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    expect((await hpa())?.spec).toMatchObject({minReplicas: 2, maxReplicas: 2})

    const aborted = await p.cli(['rollout', 'abort', 'catalog'])
    expect(aborted.exitCode, aborted.stderr).toBe(0)
    expect((await hpa())?.spec).toEqual(original)
    expect((await p.deployment('catalog'))?.spec.replicas).toBe(3)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
  })
})
