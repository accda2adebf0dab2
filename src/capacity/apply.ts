import type * as k8s from '@kubernetes/client-node'

import {RetailOpsError, toRetailOpsError} from '../errors/index.js'
import {type KubeClients, kubeError} from '../kubernetes/client.js'
import type {KubeHttp} from '../kubernetes/http.js'
import {FIELD_MANAGER_PREWARM} from '../kubernetes/labels.js'
import {applyOwned, listObjects, readObject} from '../kubernetes/objects.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'
import {KEDA_DEFAULT_MAX, KEDA_DEFAULT_MIN} from '../kubernetes/autoscalers.js'
import {explainDeployments} from '../kubernetes/rollout-status.js'
import {waitFor} from '../kubernetes/wait.js'
import {type RunContext, throwIfAborted} from '../ui/context.js'
import {
  DEFAULT_PLACEHOLDER_IMAGE,
  headroomDeploymentName,
  placeholderDeployment,
  priorityClassBody,
  priorityClassName,
} from './headroom.js'
import type {CapacityPlan, ServicePlan} from './plan.js'
import {
  CAMPAIGN_LABEL,
  readState,
  recordState,
  saveDeployment,
  saveHpa,
  saveScaledObject,
  type SavedTarget,
  stateName,
} from './state.js'
import type {ScaledObject} from '../kubernetes/kinds.js'

export const PREWARM_ANNOTATION = 'retailops.io/prewarm-campaign'

export interface ApplyOptions {
  k: KubeClients
  http: KubeHttp
  namespace: string
  plan: CapacityPlan
  poolLabel?: string
  /** Add placeholder pods for the node shortfall. */
  nodeHeadroom: boolean
  placeholderImage?: string
  /** How long to wait for the raised replicas to be Ready. */
  timeoutMs: number
  pollMs?: number
  /** Called after each change (tests use it to simulate a crash half-way). */
  afterChange?: (what: string) => void | Promise<void>
}

export interface ChangedTarget {
  service: string
  kind: 'HorizontalPodAutoscaler' | 'ScaledObject' | 'Deployment'
  name: string
  before: {minReplicas?: number; maxReplicas?: number; replicas?: number; scaleDownSelectPolicy?: string}
  after: {minReplicas?: number; maxReplicas?: number; replicas?: number; scaleDownSelectPolicy?: string}
}

export interface ReadyStatus {
  service: string
  deployment: string
  desired: number
  ready: number
}

export interface HeadroomStatus {
  pool: string
  deployment: string
  replicas: number
  scheduled: number
  pending: number
}

export interface ApplyResult {
  namespace: string
  stateConfigMap: string
  /** The saved state already existed (an earlier run, perhaps interrupted): its original values were kept. */
  resumed: boolean
  changed: ChangedTarget[]
  priorityClass?: {name: string; createdByUs: boolean}
  headroom: HeadroomStatus[]
  ready: ReadyStatus[]
  waitedMs: number
}

const hpaPath = (ns: string, name: string) => namedPath('HorizontalPodAutoscaler', name, ns)
const scaledObjectPath = (ns: string, name: string) => namedPath('ScaledObject', name, ns)
const deploymentPath = (ns: string, name: string) => namedPath('Deployment', name, ns)
const pcPath = (name: string) => namedPath('PriorityClass', name)

/**
 * Saves what it will change (crash-safe: the state is written before the first change and never
 * overwritten), raises the HPA floors, stops HPA scale-down, adds node headroom and waits until
 * the raised replicas are Ready.
 */
export async function applyPlan(options: ApplyOptions, ctx: RunContext): Promise<ApplyResult> {
  const {k, http, namespace, plan} = options
  const started = Date.now()
  const toRaise = plan.services.filter((s) => s.deployment && (s.action === 'raise' || s.raisesMax))

  // 1. Read every object as it is now (raw JSON: nothing the client's models do not know is lost).
  const current = new Map<
    string,
    {plan: ServicePlan; hpa?: k8s.V2HorizontalPodAutoscaler; scaledObject?: ScaledObject; deployment?: k8s.V1Deployment}
  >()
  for (const s of toRaise) {
    if (s.hpa && s.hpaKind === 'ScaledObject') {
      const scaledObject = await readObject<ScaledObject>(http, scaledObjectPath(namespace, s.hpa))
      if (!scaledObject)
        throw new RetailOpsError(
          'NOT_FOUND',
          `ScaledObject ${namespace}/${s.hpa} of ${s.service} disappeared while planning.`,
        )
      current.set(s.service, {plan: s, scaledObject})
    } else if (s.hpa) {
      const hpa = await readObject<k8s.V2HorizontalPodAutoscaler>(http, hpaPath(namespace, s.hpa))
      if (!hpa)
        throw new RetailOpsError('NOT_FOUND', `HPA ${namespace}/${s.hpa} of ${s.service} disappeared while planning.`)
      current.set(s.service, {plan: s, hpa})
    } else {
      const deployment = await readObject<k8s.V1Deployment>(http, deploymentPath(namespace, s.deployment!))
      if (!deployment)
        throw new RetailOpsError(
          'NOT_FOUND',
          `Deployment ${namespace}/${s.deployment} of ${s.service} disappeared while planning.`,
        )
      current.set(s.service, {plan: s, deployment})
    }
  }
  const headroomPools = options.nodeHeadroom ? plan.pools.filter((p) => p.placeholder.replicas > 0) : []
  let priorityClass: {name: string; createdByUs: boolean} | undefined
  if (headroomPools.length > 0) {
    const name = priorityClassName(namespace, plan.campaign)
    const existing = await readObject<{metadata?: {labels?: Record<string, string>}}>(http, pcPath(name))
    priorityClass = {name, createdByUs: !existing || existing.metadata?.labels?.[CAMPAIGN_LABEL] === plan.campaign}
  }

  // 2. Save before the first change. Entries already saved by an earlier run are kept as they are.
  const task = ctx.out.task(`Saving the current values in ConfigMap ${namespace}/${stateName(plan.campaign)}`)
  const targets: SavedTarget[] = [...current.values()].map((c) =>
    c.scaledObject
      ? saveScaledObject(c.plan.service, c.scaledObject)
      : c.hpa
        ? saveHpa(c.plan.service, c.hpa)
        : saveDeployment(c.plan.service, c.deployment!),
  )
  const before = await savedAtOfEarlierRun(options)
  const state = await recordState(k, namespace, plan.campaign, {
    targets,
    priorityClass,
    deployments: headroomPools.map((p) => headroomDeploymentName(plan.campaign, p.pool)),
  })
  task.succeed(
    before
      ? `Kept the values saved by an earlier run (${before}) in ${stateName(plan.campaign)}`
      : `Saved the current values in ${stateName(plan.campaign)}`,
  )

  const changed: ChangedTarget[] = []
  const headroom: HeadroomStatus[] = []
  let ready: {done: boolean; value: ReadyStatus[]}
  try {
    // 3. Raise floors and stop scale-down.
    for (const {plan: s, hpa, scaledObject, deployment} of current.values()) {
      throwIfAborted(ctx.signal)
      if (scaledObject) {
        changed.push(await raiseScaledObject(options, s, scaledObject))
        const before = changed.at(-1)!.before
        ctx.out.info(
          `ScaledObject ${s.hpa}: minReplicaCount ${before.minReplicas} → ${s.newMin}${s.raisesMax ? `, maxReplicaCount ${before.maxReplicas} → ${s.newMax}` : ''}, scale-down disabled`,
        )
      } else if (hpa) {
        const patch = {
          metadata: {annotations: {[PREWARM_ANNOTATION]: plan.campaign}},
          spec: {
            minReplicas: s.newMin,
            ...(s.newMax === hpa.spec?.maxReplicas ? {} : {maxReplicas: s.newMax}),
            behavior: {scaleDown: {selectPolicy: 'Disabled'}},
          },
        }
        try {
          await http.request('PATCH', hpaPath(namespace, s.hpa!), {
            body: patch,
            contentType: 'application/merge-patch+json',
            query: {fieldManager: FIELD_MANAGER_PREWARM},
          })
        } catch (error) {
          throw kubeError(error, `raising HPA ${namespace}/${s.hpa}`, k.server)
        }
        changed.push({
          service: s.service,
          kind: 'HorizontalPodAutoscaler',
          name: s.hpa!,
          before: {
            minReplicas: hpa.spec?.minReplicas ?? 1,
            maxReplicas: hpa.spec?.maxReplicas,
            scaleDownSelectPolicy: hpa.spec?.behavior?.scaleDown?.selectPolicy ?? 'Max',
          },
          after: {minReplicas: s.newMin, maxReplicas: s.newMax, scaleDownSelectPolicy: 'Disabled'},
        })
        ctx.out.info(
          `HPA ${s.hpa}: minReplicas ${hpa.spec?.minReplicas ?? 1} → ${s.newMin}${s.raisesMax ? `, maxReplicas ${hpa.spec?.maxReplicas} → ${s.newMax}` : ''}, scale-down disabled`,
        )
      } else {
        const patch = {metadata: {annotations: {[PREWARM_ANNOTATION]: plan.campaign}}, spec: {replicas: s.newMin}}
        try {
          await http.request('PATCH', deploymentPath(namespace, s.deployment!), {
            body: patch,
            contentType: 'application/merge-patch+json',
            query: {fieldManager: FIELD_MANAGER_PREWARM},
          })
        } catch (error) {
          throw kubeError(error, `scaling Deployment ${namespace}/${s.deployment}`, k.server)
        }
        changed.push({
          service: s.service,
          kind: 'Deployment',
          name: s.deployment!,
          before: {replicas: deployment?.spec?.replicas},
          after: {replicas: s.newMin},
        })
        ctx.out.info(`Deployment ${s.deployment} (no HPA): replicas ${deployment?.spec?.replicas ?? 1} → ${s.newMin}`)
      }
      await options.afterChange?.(`${s.service}`)
    }

    // 4. Node headroom.
    if (priorityClass && headroomPools.length > 0) {
      throwIfAborted(ctx.signal)
      try {
        if (priorityClass.createdByUs)
          await applyOwned(
            http,
            pcPath(priorityClass.name),
            priorityClassBody(priorityClass.name, namespace, plan.campaign),
            FIELD_MANAGER_PREWARM,
          )
        for (const pool of headroomPools) {
          const tolerations = plan.services.filter((s) => s.pool === pool.pool).flatMap((s) => s.tolerations ?? [])
          const body = placeholderDeployment({
            namespace,
            campaign: plan.campaign,
            pool,
            poolLabel: options.poolLabel,
            priorityClass: priorityClass.name,
            image: options.placeholderImage ?? DEFAULT_PLACEHOLDER_IMAGE,
            tolerations: dedupe(tolerations),
          })
          await applyOwned(http, deploymentPath(namespace, body.metadata.name), body, FIELD_MANAGER_PREWARM)
          ctx.out.info(
            `Headroom in pool ${pool.pool}: ${pool.placeholder.replicas} placeholder pod(s) (${body.spec.template.spec.containers[0].resources.requests.cpu} CPU, ${body.spec.template.spec.containers[0].resources.requests.memory} each)`,
          )
          await options.afterChange?.(`headroom ${pool.pool}`)
        }
      } catch (error) {
        throw kubeError(error, 'adding node headroom', k.server)
      }
    }

    // 5. Wait until the raised capacity is Ready (the HPA controller enforces the new floor).
    const wait = ctx.out.task(`Waiting for ${toRaise.length} service(s) to reach their new replica counts`)
    const desired = toRaise.map((s) => ({service: s.service, deployment: s.deployment!, desired: s.newMin}))
    ready = await waitFor(
      async () => {
        const statuses: ReadyStatus[] = []
        for (const d of desired) {
          const dep = await readObject<k8s.V1Deployment>(http, deploymentPath(namespace, d.deployment))
          statuses.push({...d, ready: Math.min(dep?.status?.readyReplicas ?? 0, dep?.status?.availableReplicas ?? 0)})
        }
        wait.update(statuses.map((s) => `${s.service} ${s.ready}/${s.desired}`).join(', '))
        return {done: statuses.every((s) => s.ready >= s.desired), value: statuses}
      },
      {timeoutMs: options.timeoutMs, pollMs: options.pollMs ?? 2000, signal: ctx.signal},
    )
    if (!ready.done) {
      wait.fail('Capacity did not become Ready in time')
      const lagging = ready.value.filter((s) => s.ready < s.desired)
      const reasons = await explainDeployments(
        http,
        namespace,
        lagging.map((l) => l.deployment),
      )
      throw new RetailOpsError(
        'CAPACITY_NOT_READY',
        `Pre-scaled capacity was not Ready within ${Math.round(options.timeoutMs / 1000)}s: ${lagging.map((l) => `${l.service} ${l.ready}/${l.desired}`).join(', ')}.`,
        {
          nextSteps: [
            ...reasons.slice(0, 5),
            `The floors stay raised; run the command again to keep waiting, or \`retailops prewarm restore --campaign ${plan.campaign}\` to put the saved values back.`,
          ],
          details: {ready: ready.value, reasons},
        },
      )
    }
    wait.succeed(
      `Capacity Ready: ${ready.value.map((s) => `${s.service} ${s.ready}/${s.desired}`).join(', ') || 'nothing to raise'}`,
    )

    for (const pool of headroomPools) {
      const name = headroomDeploymentName(plan.campaign, pool.pool)
      const pods = await listObjects<k8s.V1Pod>(http, collectionPath('Pod', namespace), {
        labelSelector: `retailops.io/headroom=${pool.pool},${CAMPAIGN_LABEL}=${plan.campaign}`,
      }).catch((error: unknown) => {
        throw kubeError(error, `listing headroom pods in ${namespace}`, k.server)
      })
      const scheduled = pods.filter((p) => p.spec?.nodeName).length
      headroom.push({
        pool: pool.pool,
        deployment: name,
        replicas: pool.placeholder.replicas,
        scheduled,
        pending: pods.length - scheduled,
      })
      if (pods.length - scheduled > 0) {
        ctx.out.warn(
          `${pods.length - scheduled} placeholder pod(s) in pool ${pool.pool} are Pending: the pool needs ${pool.extraNodes > 0 ? `${pool.extraNodes} more node(s)` : 'more nodes'}; a cluster autoscaler adds them for priority -10 pods.`,
        )
      }
    }
  } catch (error) {
    throw withRestoreHint(error, plan.campaign, namespace)
  }

  return {
    namespace,
    stateConfigMap: stateName(plan.campaign),
    resumed: Boolean(before),
    changed,
    priorityClass: state.headroom.priorityClass,
    headroom,
    ready: ready.value,
    waitedMs: Date.now() - started,
  }
}

/** Anything that stops the pre-warm after the state was saved says how to put things back. */
function withRestoreHint(error: unknown, campaign: string, namespace: string): RetailOpsError {
  const e = toRetailOpsError(error)
  const hint = `The values from before are saved in ConfigMap ${namespace}/${stateName(campaign)}: \`retailops prewarm restore --campaign ${campaign}\` puts them back, or run the pre-warm again to finish it.`
  if (e.exit === 'INTERRUPTED')
    return new RetailOpsError('INTERRUPTED', `Interrupted during the pre-warm of ${campaign}.`, {
      nextSteps: [hint],
      cause: error,
    })
  if (!e.nextSteps.some((s) => s.includes('prewarm restore'))) e.nextSteps.push(hint)
  return e
}

async function savedAtOfEarlierRun(options: ApplyOptions): Promise<string | undefined> {
  const existing = await readState(options.k, options.namespace, options.plan.campaign)
  return existing?.state.savedAt
}

/**
 * The same as an HPA, on the ScaledObject (KEDA owns its HPA and would put any change to it back):
 * minReplicaCount raised (and maxReplicaCount when the plan must), scale-down disabled through
 * advanced.horizontalPodAutoscalerConfig.behavior. The Deployment is scaled up to the new floor
 * at once too, rather than after KEDA's next polling interval (the autoscaler then holds it there).
 */
async function raiseScaledObject(options: ApplyOptions, s: ServicePlan, so: ScaledObject): Promise<ChangedTarget> {
  const {http, namespace, plan, k} = options
  const before = {
    minReplicas: so.spec?.minReplicaCount ?? KEDA_DEFAULT_MIN,
    maxReplicas: so.spec?.maxReplicaCount ?? KEDA_DEFAULT_MAX,
    scaleDownSelectPolicy:
      (so.spec?.advanced?.horizontalPodAutoscalerConfig?.behavior as {scaleDown?: {selectPolicy?: string}} | undefined)
        ?.scaleDown?.selectPolicy ?? 'Max',
  }
  const patch = {
    metadata: {annotations: {[PREWARM_ANNOTATION]: plan.campaign}},
    spec: {
      minReplicaCount: s.newMin,
      ...(s.newMax === before.maxReplicas && so.spec?.maxReplicaCount !== undefined ? {} : {maxReplicaCount: s.newMax}),
      advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {selectPolicy: 'Disabled'}}}},
    },
  }
  try {
    await http.request('PATCH', scaledObjectPath(namespace, s.hpa!), {
      body: patch,
      contentType: 'application/merge-patch+json',
      query: {fieldManager: FIELD_MANAGER_PREWARM},
    })
    const d = await readObject<k8s.V1Deployment>(http, deploymentPath(namespace, s.deployment!))
    if (d && (d.spec?.replicas ?? 1) < s.newMin)
      await http.request('PATCH', deploymentPath(namespace, s.deployment!), {
        body: {spec: {replicas: s.newMin}},
        contentType: 'application/merge-patch+json',
        query: {fieldManager: FIELD_MANAGER_PREWARM},
      })
  } catch (error) {
    throw kubeError(error, `raising ScaledObject ${namespace}/${s.hpa}`, k.server)
  }
  return {
    service: s.service,
    kind: 'ScaledObject',
    name: s.hpa!,
    before,
    after: {minReplicas: s.newMin, maxReplicas: s.newMax, scaleDownSelectPolicy: 'Disabled'},
  }
}

function dedupe<T>(items: T[]): T[] {
  const seen = new Set<string>()
  return items.filter((i) => {
    const key = JSON.stringify(i)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
