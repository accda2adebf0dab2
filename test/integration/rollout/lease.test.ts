// Two pipelines releasing one service at once (issue 12, item 3): the rollout's lease is a
// compare-and-swap on the state ConfigMap, so exactly one CLI drives; the other is refused with
// exit 13 naming the holder. A hung driver can be taken over on purpose, and then stops.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PATHS} from '../../../src/rollout/kube.js'
import {stateName} from '../../../src/rollout/store.js'
import {eventually} from '../../support/sandbox.js'
import {RolloutProject, routeWeights, type CliResult} from './helpers.js'
import {runCli} from '../../support/cli.js'

describe('the rollout lease', () => {
  const p = new RolloutProject({
    checkout: {tier: 'operational', scaling: {minReplicas: 2, maxReplicas: 2}, rollout: {progressDeadline: '90s'}},
  })

  beforeAll(async () => {
    const first = await p.deploy(['checkout'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('checkout')
  })
  afterAll(() => p.cleanup())

  /** The real CLI as a CI job would run it (same host name for both jobs, a job id each). */
  async function job(args: string[], jobId: string): Promise<CliResult> {
    const r = await runCli([...args, '--json'], {
      cwd: p.dir,
      timeoutMs: 240_000,
      env: {GITLAB_CI: 'true', CI_JOB_ID: jobId},
    })
    return {exitCode: r.exitCode ?? -1, json: JSON.parse(r.stdout), stderr: r.stderr}
  }

  it('lets exactly one of two concurrent `deploy --canary` drive; the other exits 13 naming the holder', async () => {
    const deploy = (version: string, jobId: string) =>
      job(
        [
          'deploy',
          'checkout',
          '--image',
          p.image('checkout', version),
          '--skip-verify',
          '--canary',
          '--steps',
          '50,pause:4s,100',
        ],
        jobId,
      )
    const [a, b] = await Promise.all([deploy('v2', '101'), deploy('v3', '102')])
    const results = [
      {version: 'v2', job: '101', r: a},
      {version: 'v3', job: '102', r: b},
    ]
    const winner = results.find((x) => x.r.exitCode === 0)
    const loser = results.find((x) => x.r.exitCode !== 0)
    expect([a.exitCode, b.exitCode].sort(), `${a.stderr}\n${b.stderr}`).toEqual([0, 13])
    expect(winner && loser).toBeTruthy()

    // The refusal names the holder: host, pid, run id, CI job, since when; and how to take over.
    const error = loser!.r.json.error
    expect(error.code).toBe('ROLLOUT_HELD')
    const lease = error.details.lease
    expect(lease).toMatchObject({
      host: expect.any(String),
      pid: expect.any(Number),
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      ci: `gitlab job ${winner!.job}`,
      acquiredAt: expect.any(String),
    })
    expect(error.message).toContain(`pid ${lease.pid}, run ${lease.id}, gitlab job ${winner!.job}`)
    expect(error.nextSteps.join('\n')).toContain('--take-over --reason')

    // Read back: one rollout, of the winner's version, driven once, and the cluster runs it.
    const cm = await p.kube.get(PATHS.configmaps(p.ns), stateName('checkout'))
    const state = JSON.parse(cm!.data!['state.json'])
    const history = JSON.parse(cm!.data!['history.json'])
    expect(state).toMatchObject({phase: 'Healthy', canary: {version: winner!.version}, stable: {version: 'v1'}})
    expect(state.lease).toBeUndefined()
    expect(history.map((h: {canary: {version: string}}) => h.canary.version)).toEqual([winner!.version])
    expect(
      state.events.filter((e: {message: string}) => e.message.startsWith('50 % of traffic to the canary')),
    ).toHaveLength(1)
    expect((await p.deployment('checkout'))?.spec.template.spec.containers[0].image).toContain(`:${winner!.version}@`)
    expect(await p.deployment('checkout-canary')).toBeUndefined()
    expect(routeWeights(await p.route('checkout'))).toEqual({checkout: 1})
  })

  it('refuses `rollout resume` while the driver renews its lease, and takes it over with --take-over --reason (recorded; the old driver stops)', async () => {
    const child = p.spawnCli([
      'deploy',
      'checkout',
      '--image',
      p.image('checkout', 'v4'),
      '--skip-verify',
      '--canary',
      '--steps',
      '50,pause:10m,100',
    ])
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const held = await eventually(
      'the rollout to pause at 50 %',
      async () => {
        const s = await p.state('checkout')
        return s?.canary.version === 'v4' && s.phase === 'Paused' && s.weight === 50 ? s : undefined
      },
      60_000,
      200,
    )

    // Without --take-over, resume waits for the lease to expire; a lease that is renewed never does.
    const waited = await p.cli(['rollout', 'resume', 'checkout'])
    expect(waited.exitCode).toBe(13)
    expect(waited.json.error.message).toContain(`pid ${held.lease!.pid}, run ${held.lease!.id}`)
    expect(await p.state('checkout')).toMatchObject({phase: 'Paused', weight: 50, lease: {id: held.lease!.id}})

    const noReason = await p.cli(['rollout', 'resume', 'checkout', '--take-over'])
    expect(noReason.exitCode).toBe(2)
    expect((await p.state('checkout'))?.lease?.id).toBe(held.lease!.id)

    // The taker drives: with --timeout it times the rollout out (traffic back on stable).
    const taken = await p.cli([
      'rollout',
      'resume',
      'checkout',
      '--take-over',
      '--reason',
      'CI runner 7 hangs',
      '--timeout',
      '3s',
    ])
    expect(taken.exitCode, taken.stderr).toBe(23)
    // The old driver lost the compare-and-swap at its next write and stopped: exit 13, and it did nothing more.
    expect(await exited).toBe(13)
    const state = (await p.state('checkout'))!
    expect(state).toMatchObject({phase: 'TimedOut', weight: 0})
    const takeover = state.events.find((e) => e.message.startsWith('taken over from'))
    expect(takeover?.message).toContain(`pid ${held.lease!.pid}, run ${held.lease!.id}`)
    expect(takeover?.message).toContain('CI runner 7 hangs')
    expect(state.events.indexOf(takeover!)).toBeLessThan(
      state.events.findIndex((e) => e.message.startsWith('aborting:')),
    )
    expect(routeWeights(await p.route('checkout'))).toEqual({checkout: 1})
    expect(await p.deployment('checkout-canary')).toBeUndefined()
    expect((await p.deployment('checkout'))?.spec.template.spec.containers[0].image).not.toContain(':v4@')
  })
})
