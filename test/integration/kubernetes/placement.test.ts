// Placement against the sandbox: the real kube-scheduler places the rendered pods on kwok nodes of
// the sandbox's pools (general, memory-optimised, spot: tainted retailops.dev/spot=true, labelled
// retailops.dev/capacity-type=spot) over three zones; the test reads back where they landed.
import type * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDeploy} from '../../../src/deploy/engine.js'
import {kubeClients} from '../../../src/kubernetes/client.js'
import {runCli} from '../../support/cli.js'
import {testContext} from '../../support/context.js'
import {eventually} from '../../support/sandbox.js'
import {baseConfig, CONTEXT, kubeProject, projectImages, projectNs, type KubeProject} from './helpers.js'

const k = () => kubeClients({context: CONTEXT})
const SPOT_TAINT = {key: 'retailops.dev/spot', value: 'true', effect: 'NoSchedule'}
const hours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString()

/** The sandbox's pools as a project describes them, plus a one-node spot pool of this test's own. */
function nodePools(ownPool: string) {
  return {
    pools: {
      general: {},
      'memory-optimised': {},
      spot: {spot: true, taints: [SPOT_TAINT]},
      [ownPool]: {spot: true, taints: [{key: 'retailops.dev/test', value: ownPool, effect: 'NoSchedule'}]},
    },
  }
}

const RESOURCES = {requests: {cpu: '100m', memory: '64Mi'}, limits: {cpu: '200m', memory: '128Mi'}}

async function scheduledPods(namespace: string, service: string, count: number): Promise<k8s.V1Pod[]> {
  return eventually(
    `${count} ${service} pods scheduled and Running`,
    async () => {
      const pods = (await k().core.listNamespacedPod({namespace, labelSelector: `retailops.dev/service=${service}`}))
        .items
      const placed = pods.filter((p) => p.spec?.nodeName && p.status?.phase === 'Running')
      return placed.length === count ? placed : undefined
    },
    60_000,
  )
}

async function nodeLabels(name: string): Promise<Record<string, string>> {
  return (await k().core.readNode({name})).metadata?.labels ?? {}
}

describe('placement by tier (sandbox scheduler)', () => {
  let t: KubeProject
  let ownPool: string

  beforeAll(async () => {
    t = kubeProject()
    ownPool = `${t.name}-pool`.slice(0, 63)
    // A spot pool of one 3-CPU node only this test's workloads tolerate: the headroom arithmetic
    // does not depend on what other tests run on the shared pools.
    await k().core.createNode({
      body: {
        metadata: {
          name: ownPool,
          annotations: {'kwok.x-k8s.io/node': 'fake'},
          labels: {
            type: 'kwok',
            'kubernetes.io/hostname': ownPool,
            'retailops.dev/pool': ownPool,
            'retailops.dev/capacity-type': 'spot',
            'topology.kubernetes.io/zone': 'eu-west-1b',
          },
        },
        spec: {taints: [{key: 'retailops.dev/test', value: ownPool, effect: 'NoSchedule'}]},
        status: {
          capacity: {cpu: '3', memory: '8Gi', pods: '20', 'ephemeral-storage': '20Gi'},
          allocatable: {cpu: '3', memory: '8Gi', pods: '20', 'ephemeral-storage': '20Gi'},
        },
      },
    })
    t.onCleanup(async () => {
      await k()
        .core.deleteNode({name: ownPool})
        .catch(() => undefined)
      const pcs = await k()
        .scheduling.listPriorityClass({labelSelector: `retailops.io/namespace=${projectNs(t)}`})
        .catch(() => ({items: []}))
      for (const pc of pcs.items)
        await k()
          .scheduling.deletePriorityClass({name: pc.metadata!.name!})
          .catch(() => undefined)
    })
    t.config = {
      ...baseConfig(t, {
        checkout: {
          tier: 'revenue-critical',
          scaling: {minReplicas: 3, maxReplicas: 3},
          resources: RESOURCES,
          rollout: {progressDeadline: '1m'},
        },
        indexer: {
          tier: 'tolerant',
          placement: {spot: 'required'},
          scaling: {minReplicas: 3, maxReplicas: 3},
          resources: RESOURCES,
          rollout: {progressDeadline: '1m'},
        },
        reports: {
          tier: 'tolerant',
          placement: {pools: [ownPool], spot: 'required'},
          scaling: {minReplicas: 1, maxReplicas: 10, rpsPerPod: 10, targetUtilization: 1},
          resources: {requests: {cpu: '1', memory: '64Mi'}, limits: {cpu: '1', memory: '128Mi'}},
          rollout: {progressDeadline: '1m'},
        },
      }),
      nodePools: nodePools(ownPool),
      campaigns: [{name: 'sale', start: hours(3), end: hours(27), buffer: 0.2, peak: {reports: {rps: 50}}}],
    }
    t.writeConfig()
    await eventually(
      `node ${ownPool} Ready`,
      async () =>
        (await k().core.readNode({name: ownPool})).status?.conditions?.some(
          (c) => c.type === 'Ready' && c.status === 'True',
        ) || undefined,
      30_000,
    )
  })
  afterAll(async () => t.cleanup())

  it('keeps the revenue-critical service off spot nodes, spread over the zones, and puts the spot service on spot', async () => {
    const r = await runDeploy(
      {project: await t.load(), images: projectImages(t, ['checkout', 'indexer', 'reports']), skipVerify: true},
      testContext(),
    )
    expect(r.outcome, JSON.stringify(r.rollouts)).toBe('OK')

    const checkout = await scheduledPods(projectNs(t), 'checkout', 3)
    const checkoutNodes = await Promise.all(checkout.map((p) => nodeLabels(p.spec!.nodeName!)))
    for (const labels of checkoutNodes) {
      expect(labels['retailops.dev/capacity-type']).not.toBe('spot')
      expect(labels['retailops.dev/pool']).not.toBe('spot')
    }
    // DoNotSchedule, maxSkew 1: three pods in three zones.
    expect(new Set(checkoutNodes.map((l) => l['topology.kubernetes.io/zone'])).size).toBe(3)

    const indexer = await scheduledPods(projectNs(t), 'indexer', 3)
    for (const p of indexer) expect((await nodeLabels(p.spec!.nodeName!))['retailops.dev/capacity-type']).toBe('spot')
    const [reports] = await scheduledPods(projectNs(t), 'reports', 1)
    expect(reports.spec!.nodeName).toBe(ownPool)

    // What was applied, read back: the spot service tolerates the spot taint, checkout does not.
    const live = await k().apps.readNamespacedDeployment({name: 'checkout', namespace: projectNs(t)})
    expect(live.spec?.template.spec?.tolerations).toBeUndefined()
    expect(
      live.spec?.template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
        ?.nodeSelectorTerms,
    ).toEqual([{matchExpressions: [{key: 'retailops.dev/capacity-type', operator: 'NotIn', values: ['spot']}]}])
    const idx = await k().apps.readNamespacedDeployment({name: 'indexer', namespace: projectNs(t)})
    expect(idx.spec?.template.spec?.tolerations).toContainEqual({...SPOT_TAINT, operator: 'Equal'})
  })

  it('pre-warm reserves headroom on the pool the placement puts the service on', async () => {
    // reports: ceil(50 × 1.2 / 10) = 6 pods of 1 CPU on its own pool, a 3-CPU node running one: 3 CPU short.
    const r = await runCli(['prewarm', '--campaign', 'sale', '--no-warm', '--timeout', '5s'], {cwd: t.dir, json: true})
    expect(r.exitCode, r.stderr).toBe(31)
    expect(r.doc!.error.code).toBe('CAPACITY_NOT_READY')
    const placeholders = await k().apps.readNamespacedDeployment({
      name: `retailops-headroom-sale-${ownPool}`.slice(0, 63).replace(/-+$/, ''),
      namespace: projectNs(t),
    })
    expect(placeholders.spec?.replicas).toBe(3)
    const pod = placeholders.spec!.template.spec!
    expect(pod.nodeSelector).toEqual({'retailops.dev/pool': ownPool})
    expect(pod.tolerations).toContainEqual({
      key: 'retailops.dev/test',
      operator: 'Equal',
      value: ownPool,
      effect: 'NoSchedule',
    })
    // The placeholders wait for a node of that pool only: the scheduler found no room on it and no other node to take.
    const pending = await eventually(
      'the placeholder pods judged by the scheduler',
      async () => {
        const pods = await k().core.listNamespacedPod({
          namespace: projectNs(t),
          labelSelector: `retailops.io/headroom=${ownPool}`,
        })
        const judged = pods.items.map((p) => p.status?.conditions?.find((c) => c.type === 'PodScheduled'))
        return judged.length === 3 && judged.every((c) => c?.status === 'False' && c.message) ? judged : undefined
      },
      30_000,
    )
    // Only this pool's node fits their affinity and tolerations, and it is full; every other node is excluded.
    for (const c of pending) expect(c!.message).toMatch(/^0\/\d+ nodes are available: 1 Insufficient cpu/)
    const restored = await runCli(['prewarm', 'restore', '--campaign', 'sale'], {cwd: t.dir, json: true})
    expect(restored.exitCode, restored.stderr).toBe(0)
    await expect(
      k().apps.readNamespacedDeployment({name: placeholders.metadata!.name!, namespace: projectNs(t)}),
    ).rejects.toBeTruthy()
  })

  it('refuses a revenue-critical service on spot only (exit 10) and creates nothing', async () => {
    const other = kubeProject()
    try {
      other.config = {
        ...baseConfig(other, {
          checkout: {
            tier: 'revenue-critical',
            placement: {spot: 'required'},
            scaling: {minReplicas: 2, maxReplicas: 3},
          },
        }),
        nodePools: {pools: {general: {}, spot: {spot: true, taints: [SPOT_TAINT]}}},
      }
      other.writeConfig()
      const r = await runCli(
        ['deploy', '--skip-verify', ...projectImages(other, ['checkout']).flatMap((i) => ['--image', i])],
        {cwd: other.dir, json: true},
      )
      expect(r.exitCode, r.stderr).toBe(10)
      expect(r.doc!.result.outcome).toBe('POLICY')
      expect(r.doc!.result.apply.objects).toEqual([])
      const finding = r.doc!.result.policy.findings.find((f: {rule: string}) => f.rule === 'spot-placement')
      expect(finding.message).toContain('services.checkout.placement.spot is required')
      expect(finding.fix).toContain('services.checkout.placement.spot')
      // Nothing was created: not even the namespace.
      await expect(k().core.readNamespace({name: projectNs(other)})).rejects.toBeTruthy()
      expect(
        (await k().apps.listDeploymentForAllNamespaces({labelSelector: `app.kubernetes.io/part-of=${other.name}`}))
          .items,
      ).toEqual([])
    } finally {
      await other.cleanup()
    }
  })
})
