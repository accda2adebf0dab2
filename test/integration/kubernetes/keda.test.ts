// Autoscaling on business signals (issue 22, items 3 and 4) against the sandbox's real
// kube-apiserver with KEDA's CRDs (scripts/sandbox.sh installs them from the KEDA Go module; no
// KEDA operator runs): what deploy renders for scaling.metrics is a ScaledObject the apiserver
// validates with KEDA's schema; prewarm raises it and restore puts it back exactly; the replica
// router holds and restores it; switching to the HPA fallback replaces it (never both).
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {prewarmStatus} from '../../../src/capacity/status.js'
import {KubeHttpError} from '../../../src/kubernetes/http.js'
import {PATHS} from '../../../src/rollout/kube.js'
import {hours} from '../capacity/helpers.js'
import {RolloutProject, type ReadBack} from '../rollout/helpers.js'
import {sandboxEnv} from '../../support/sandbox.js'

const METRICS = [
  {name: 'carts_per_second', query: 'sum(rate(cart_created_total[2m]))', target: 20},
  {
    name: 'payment_backlog',
    query: 'sum(payment_authorizations_pending)',
    target: 50,
    type: 'Value',
    activationTarget: 5,
  },
]

describe('KEDA ScaledObjects from scaling.metrics', () => {
  const p = new RolloutProject(
    {
      cart: {
        tier: 'operational',
        resources: {requests: {cpu: '50m', memory: '64Mi'}},
        scaling: {minReplicas: 2, maxReplicas: 8, rpsPerPod: 20, targetUtilization: 0.5, metrics: METRICS},
        rollout: {progressDeadline: '90s', router: 'replicas'},
      },
    },
    {
      campaigns: [
        {name: 'launch', start: hours(3), end: hours(10), buffer: 0.2, nodeHeadroom: false, peak: {cart: {rps: 40}}},
      ],
    },
  )
  const scaledObject = () => p.kube.get<ReadBack>(PATHS.scaledobjects(p.ns), 'cart')
  const hpa = () => p.kube.get<ReadBack>(PATHS.hpas(p.ns), 'cart')
  let original: Record<string, any>

  beforeAll(async () => {
    const first = await p.deploy(['cart'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    original = (await scaledObject())!.spec
  })
  afterAll(() => p.cleanup())

  it('deploys a ScaledObject (auto: the sandbox serves scaledobjects.keda.sh) the apiserver accepted with its schema, and no HPA', async () => {
    expect(original).toEqual({
      scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart'},
      minReplicaCount: 2,
      maxReplicaCount: 8,
      advanced: {
        horizontalPodAutoscalerConfig: {
          behavior: {
            scaleUp: {stabilizationWindowSeconds: 0},
            scaleDown: {stabilizationWindowSeconds: 300, policies: [{type: 'Percent', value: 25, periodSeconds: 60}]},
          },
        },
      },
      triggers: [
        {
          type: 'prometheus',
          name: 'carts_per_second',
          metricType: 'AverageValue',
          metadata: {serverAddress: sandboxEnv().prometheusUrl, query: METRICS[0].query, threshold: '20'},
        },
        {
          type: 'prometheus',
          name: 'payment_backlog',
          metricType: 'Value',
          metadata: {
            serverAddress: sandboxEnv().prometheusUrl,
            query: METRICS[1].query,
            threshold: '50',
            activationThreshold: '5',
          },
        },
        {type: 'cpu', name: 'cpu', metricType: 'Utilization', metadata: {value: '70'}},
      ],
    })
    expect(await hpa()).toBeUndefined()
    expect((await p.deployment('cart'))?.spec.replicas).toBe(2)
  })

  it("rejects a malformed ScaledObject with KEDA's schema: the validation is real", async () => {
    const create = (spec: Record<string, unknown>) =>
      p.kube.http
        .request('POST', PATHS.scaledobjects(p.ns), {
          body: {apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: {name: 'broken'}, spec},
        })
        .then(
          () => 'accepted',
          (error: KubeHttpError) => `${error.statusCode} ${(error.body as {message?: string}).message}`,
        )
    const base = {
      scaleTargetRef: {name: 'cart'},
      triggers: [{type: 'cpu', metricType: 'Utilization', metadata: {value: '70'}}],
    }
    expect(await create({...base, minReplicaCount: 9, maxReplicaCount: 3})).toMatch(
      /^422 .*minReplicaCount must be less than or equal to maxReplicaCount/,
    )
    expect(await create({...base, triggers: [{type: 'prometheus', metadata: {query: 'up', threshold: 5}}]})).toMatch(
      /^422 .*spec\.triggers\[0\]\.metadata\.threshold: Invalid value: "integer": .*must be of type string/,
    )
    expect(await create({...base, triggers: []})).toMatch(
      /^422 .*spec\.triggers: Invalid value: 0: .*should have at least 1 items/,
    )
    expect(await p.kube.get(PATHS.scaledobjects(p.ns), 'broken')).toBeUndefined()
  })

  it('prewarm raises the ScaledObject (min, scale-down held) after saving it; a second run keeps the first values; restore puts it back exactly', async () => {
    const r = await p.cli(['prewarm', '--campaign', 'launch', '--no-warm', '--timeout', '2m'])
    expect(r.exitCode, r.stderr).toBe(0)
    const changed = r.json.result.apply.changed
    expect(changed).toEqual([
      expect.objectContaining({kind: 'ScaledObject', name: 'cart', before: expect.objectContaining({minReplicas: 2})}),
    ])
    const floor = changed[0].after.minReplicas as number
    expect(floor).toBeGreaterThan(2)
    const raised = (await scaledObject())!
    expect(raised.spec.minReplicaCount).toBe(floor)
    expect(raised.spec.maxReplicaCount).toBe(8)
    expect(raised.spec.advanced.horizontalPodAutoscalerConfig.behavior).toEqual({
      ...original.advanced.horizontalPodAutoscalerConfig.behavior,
      scaleDown: {...original.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown, selectPolicy: 'Disabled'},
    })
    expect(raised.spec.triggers).toEqual(original.triggers)
    expect((await p.deployment('cart'))?.status.readyReplicas).toBe(floor)
    const state = await p.kube.get<ReadBack>(PATHS.configmaps(p.ns), 'retailops-prewarm-launch')
    expect(JSON.parse(state!.data!['state.json']).targets['ScaledObject/cart']).toEqual({
      kind: 'ScaledObject',
      name: 'cart',
      service: 'cart',
      minReplicaCount: {present: true, value: 2},
      maxReplicaCount: {present: true, value: 8},
      advanced: {present: true, value: original.advanced},
    })

    // Run again over the raised object (as after a crash): the values saved before the first change stand.
    const again = await p.cli(['prewarm', '--campaign', 'launch', '--no-warm', '--timeout', '2m'])
    expect(again.exitCode, again.stderr).toBe(0)
    expect(
      JSON.parse((await p.kube.get<ReadBack>(PATHS.configmaps(p.ns), 'retailops-prewarm-launch'))!.data!['state.json'])
        .targets['ScaledObject/cart'].minReplicaCount,
    ).toEqual({present: true, value: 2})

    // The dashboard's pre-warm view reads the ScaledObject as the autoscaler the campaign raised.
    const status = await prewarmStatus({
      config: (await p.project.load()).config,
      namespace: p.ns,
      kube: {context: sandboxEnv().context},
    })
    expect(status.find((c) => c.campaign === 'launch')!.services[0]).toMatchObject({
      service: 'cart',
      target: {kind: 'ScaledObject', name: 'cart'},
      floor,
      savedFloor: 2,
      maxReplicas: 8,
    })

    const restored = await p.cli(['prewarm', 'restore', '--campaign', 'launch'])
    expect(restored.exitCode, restored.stderr).toBe(0)
    expect((await scaledObject())!.spec).toEqual(original)
    expect((await scaledObject())!.metadata.annotations?.['retailops.io/prewarm-campaign']).toBeUndefined()
    expect(await p.kube.get(PATHS.configmaps(p.ns), 'retailops-prewarm-launch')).toBeUndefined()
  })

  it('the replica router holds the ScaledObject at its counts and restores it exactly on abort and on promote', async () => {
    // No KEDA operator runs here: the stable count is what the prewarm left; the router takes it as the rollout's.
    const replicas = (await p.deployment('cart'))!.spec.replicas as number
    const paused = await p.deploy(['cart'], 'v2', ['--canary', '--steps', '50,pause,100'])
    expect(paused.exitCode, JSON.stringify(paused.json.error ?? paused.json.result?.release)).toBe(21)
    const stable = replicas - Math.round(replicas / 2)
    expect((await p.deployment('cart'))?.spec.replicas).toBe(stable)
    expect((await scaledObject())?.spec).toMatchObject({minReplicaCount: stable, maxReplicaCount: stable})
    expect((await p.state('cart'))?.hpaBackup).toEqual({
      kind: 'ScaledObject',
      name: 'cart',
      minReplicas: 2,
      maxReplicas: 8,
    })
    const aborted = await p.cli(['rollout', 'abort', 'cart'])
    expect(aborted.exitCode, aborted.stderr).toBe(0)
    expect((await scaledObject())?.spec).toEqual(original)
    expect((await p.deployment('cart'))?.spec.replicas).toBe(replicas)

    expect((await p.deploy(['cart'], 'v3', ['--canary', '--steps', '50,pause,100'])).exitCode).toBe(21)
    expect((await scaledObject())?.spec).toMatchObject({minReplicaCount: stable, maxReplicaCount: stable})
    const promoted = await p.cli(['rollout', 'promote', 'cart'])
    expect(promoted.exitCode, promoted.stderr).toBe(0)
    expect((await scaledObject())?.spec).toEqual(original)
    expect((await p.deployment('cart'))?.spec.template.spec.containers[0].image).toContain(':v3@')
    expect(await p.deployment('cart-canary')).toBeUndefined()
  })

  it('--scaling-provider hpa replaces the ScaledObject with an HPA (External metrics + CPU) the apiserver accepts, and back', async () => {
    const toHpa = await p.deploy(['cart'], 'v3', ['--scaling-provider', 'hpa'])
    expect(toHpa.exitCode, JSON.stringify(toHpa.json.error)).toBe(0)
    expect(await scaledObject()).toBeUndefined()
    const h = (await hpa())!
    expect(h.spec.minReplicas).toBe(2)
    expect(h.spec.maxReplicas).toBe(8)
    expect(h.spec.metrics).toEqual([
      {
        type: 'External',
        external: {
          metric: {
            name: 'cart_carts_per_second',
            selector: {matchLabels: {retailops_service: 'cart', retailops_metric: 'carts_per_second'}},
          },
          target: {type: 'AverageValue', averageValue: '20'},
        },
      },
      {
        type: 'External',
        external: {
          metric: {
            name: 'cart_payment_backlog',
            selector: {matchLabels: {retailops_service: 'cart', retailops_metric: 'payment_backlog'}},
          },
          target: {type: 'Value', value: '50'},
        },
      },
      {type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}},
    ])
    expect(h.spec.behavior).toMatchObject(original.advanced.horizontalPodAutoscalerConfig.behavior)
    expect(toHpa.json.result.pruned).toEqual([
      expect.objectContaining({kind: 'ScaledObject', name: 'cart', deleted: true}),
    ])

    const back = await p.deploy(['cart'], 'v3')
    expect(back.exitCode, JSON.stringify(back.json.error)).toBe(0)
    expect(await hpa()).toBeUndefined()
    expect((await scaledObject())?.spec).toEqual(original)
  })

  it('a rollout driven later (`rollout resume`, what a detached Job runs) acts on the autoscaler its release stored, not on what the cluster would decide now', async () => {
    // The release decides hpa (--scaling-provider) and stores it; resume drives from the state only.
    const started = await p.deploy(['cart'], 'v4', [
      '--canary',
      '--steps',
      '50,pause,100',
      '--scaling-provider',
      'hpa',
      '--no-wait',
    ])
    expect(started.exitCode, JSON.stringify(started.json.error ?? started.json.result?.release)).toBe(0)
    expect((await p.state('cart'))?.spec.autoscaler).toEqual({
      kind: 'HorizontalPodAutoscaler',
      name: 'cart',
      decidedBy: 'flag',
    })
    expect(await scaledObject()).toBeUndefined()
    // Meanwhile a ScaledObject targets the Deployment too: deciding again from the live objects would take it.
    const team = {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: {name: 'cart-team', namespace: p.ns},
      spec: {
        scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart'},
        minReplicaCount: 1,
        maxReplicaCount: 3,
        triggers: [{type: 'cpu', metricType: 'Utilization', metadata: {value: '70'}}],
      },
    }
    await p.kube.http.request('POST', PATHS.scaledobjects(p.ns), {body: team})
    try {
      const resumed = await p.cli(['rollout', 'resume', 'cart'])
      expect(resumed.exitCode, resumed.stderr).toBe(21)
      const replicas = (await p.state('cart'))!.spec.replicas
      const stable = replicas - Math.round(replicas / 2)
      // The stored HPA was saved and pinned; the other ScaledObject was never touched.
      expect((await p.state('cart'))?.hpaBackup).toEqual({name: 'cart', minReplicas: 2, maxReplicas: 8})
      expect((await hpa())?.spec).toMatchObject({minReplicas: stable, maxReplicas: stable})
      const after = (await p.kube.get<ReadBack>(PATHS.scaledobjects(p.ns), 'cart-team'))!
      expect(after.spec).toMatchObject({minReplicaCount: 1, maxReplicaCount: 3})
      expect(after.metadata.generation).toBe(1)
      const aborted = await p.cli(['rollout', 'abort', 'cart'])
      expect(aborted.exitCode, aborted.stderr).toBe(0)
      expect((await hpa())?.spec).toMatchObject({minReplicas: 2, maxReplicas: 8})
    } finally {
      await p.kube.http.request('DELETE', `${PATHS.scaledobjects(p.ns)}/cart-team`).catch(() => undefined)
    }
  })
})
