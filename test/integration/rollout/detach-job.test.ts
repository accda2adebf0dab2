// The real proof of `deploy --canary --detach`: the Job's exact pod spec, read back from the
// cluster, runs in the real runner image (Docker, host network, the ServiceAccount's in-cluster
// token, the ConfigMap and Secret mounted as the kubelet would: test/integration/helpers/
// run-job-pod.ts), while `rollout status --watch` follows it from the host. The canary gets real
// traffic and is judged on what the sandbox's Prometheus scraped: a good one is promoted by the
// Job (exit 0 in the pod and in status --watch), a failing one is aborted and rolled back (20).
// kwok marks the Job's own pod Succeeded at once; the lease, renewed by the container, is what
// shows who drives.
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {eventually} from '../../support/sandbox.js'
import {jobPodTemplate, runPodTemplate} from '../helpers/run-job-pod.js'
import {sandboxRunnerImage, type SandboxRunner} from '../helpers/runner-image.js'
import {RolloutProject, routeWeights, ServiceTraffic} from './helpers.js'

const ANALYSIS = {interval: '5s', count: 3, window: '20s', failureLimit: 0, inconclusiveLimit: 0, missingData: 'fail'}

describe("deploy --canary --detach: the Job's pod drives the canary on real metrics", () => {
  let runner: SandboxRunner
  const p = new RolloutProject({
    catalog: {
      tier: 'operational',
      scaling: {minReplicas: 2, maxReplicas: 2},
      rollout: {progressDeadline: '90s', analysis: ANALYSIS},
    },
  })
  const traffic = new ServiceTraffic(p, 'catalog', {versionPrefix: 'd', maxMs: 300_000})
  const runningVersion = () => traffic.runningVersion()
  const serve = (canaryFault: Record<string, string>) => traffic.serve(canaryFault)

  beforeAll(async () => {
    runner = await sandboxRunnerImage()
    // The runner image is verified with its key before the Job is created (signing.required).
    p.writeConfig({signing: {required: true, publicKey: runner.publicKey}})
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('catalog')
  }, 900_000)
  afterEach(() => traffic.stop())
  afterAll(() => p.cleanup())

  /** deploy --detach, then the Job's pod (as the kubelet would run it) and `rollout status --watch` side by side. */
  async function detachAndDrive(canary: string) {
    const before = await p.route('catalog')
    const r = await p.deploy(['catalog'], canary, [
      '--canary',
      '--steps',
      '50,analysis,100',
      '--detach',
      '--runner-image',
      runner.image,
    ])
    expect(r.exitCode, JSON.stringify(r.json.error ?? r.json.result?.release)).toBe(0)
    expect(r.json.warnings.join(' ')).not.toContain('not verified')
    const job = r.json.result.release.detached as {name: string; runId: string}
    const template = await jobPodTemplate(p.ns, 'Job', job.name)
    expect(template.containers[0].image).toBe(runner.image)
    const watch = p.cli(['rollout', 'status', 'catalog', '--watch', '--timeout', '6m'], {timeoutMs: 420_000})
    const pod = await runPodTemplate({namespace: p.ns, template, timeoutMs: 360_000})
    const status = await watch
    return {job, pod, status, before}
  }

  it('promotes a good canary: the pod ends 0, status --watch ends 0, stable runs the new version, canary and route pins gone', async () => {
    const {canary} = await serve({})
    const {job, pod, status, before} = await detachAndDrive(canary)
    expect(pod.exitCode, `${pod.stdout}\n${pod.stderr}`).toBe(0)
    expect(JSON.parse(pod.stdout).result.rollouts[0]).toMatchObject({service: 'catalog', phase: 'Healthy'})
    expect(status.exitCode, JSON.stringify(status.json)).toBe(0)
    expect(status.json.result.rollouts[0]).toMatchObject({phase: 'Healthy', canary: {version: canary}})

    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Healthy')
    expect(state.lease).toBeUndefined()
    const messages = state.events.map((e) => e.message)
    // The pod took the lease handed to it (its run id), then drove: analysis on real metrics, promotion.
    expect(messages.find((m) => m.startsWith(`Job ${p.ns}/${job.name} drives the rollout (pod `))).toBeDefined()
    const run = state.analysisRuns.at(-1)!
    expect(run.phase).toBe('Successful')
    expect(run.metrics.find((m) => m.name === 'error-rate')!.measurements[0].stable).toBe(0)
    expect(await runningVersion()).toBe(canary)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect(await p.service('catalog-stable')).toBeUndefined()
    expect((await p.route('catalog'))?.spec.rules).toEqual(before?.spec.rules)
    expect(routeWeights(await p.route('catalog'))).toEqual({catalog: 1})
  }, 900_000)

  it('aborts a canary that fails its analysis: the pod ends 20, status --watch ends 20, traffic back on stable', async () => {
    const {stable, canary} = await serve({FAULT_ERROR_RATE: '0.5'})
    const {pod, status, before} = await detachAndDrive(canary)
    expect(pod.exitCode, `${pod.stdout}\n${pod.stderr}`).toBe(20)
    expect(status.exitCode, JSON.stringify(status.json)).toBe(20)
    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Aborted')
    expect(state.reason).toMatch(/analysis failed: Failed: error-rate: canary 0\.\d+, stable 0/)
    expect(status.json.result.rollouts[0]).toMatchObject({phase: 'Aborted', reason: state.reason})
    expect(await runningVersion()).toBe(stable)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect((await p.route('catalog'))?.spec.rules).toEqual(before?.spec.rules)
    // Nothing of the rollout is left to drive: a new release may start.
    await eventually(
      'the lease to be released',
      async () => ((await p.state('catalog'))?.lease === undefined ? true : undefined),
      10_000,
      200,
    )
  }, 900_000)
})
