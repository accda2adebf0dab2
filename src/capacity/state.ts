import type * as k8s from '@kubernetes/client-node'

import {RetailOpsError} from '../errors/index.js'
import {type KubeClients, kubeError, kubeHttpOf, statusCode} from '../kubernetes/client.js'
import {FIELD_MANAGER_PREWARM, LABEL, MANAGED_BY as MANAGER} from '../kubernetes/labels.js'
import {deleteObject, readObject} from '../kubernetes/objects.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'
import {redactDeep} from '../ui/secrets.js'
import type {ScaledObject} from '../kubernetes/kinds.js'

/**
 * What `prewarm` changed, saved in the cluster BEFORE the first change: one ConfigMap per
 * campaign and namespace. Entries are only ever added, never overwritten, so a re-run after a
 * crash keeps the values from before the first run, and `restore` puts exactly those back.
 */

export const STATE_KEY = 'state.json'
export const MANAGED_BY = {[LABEL.managedBy]: MANAGER}
export const CAMPAIGN_LABEL = 'retailops.io/campaign'

/** A field as it was: present with a value, or absent (restore removes it). */
export interface SavedField<T> {
  present: boolean
  value?: T
}

export interface SavedHpa {
  kind: 'HorizontalPodAutoscaler'
  name: string
  service: string
  minReplicas: SavedField<number>
  maxReplicas: SavedField<number>
  behavior: SavedField<k8s.V2HorizontalPodAutoscalerBehavior>
}

/**
 * A KEDA ScaledObject: its bounds and its `advanced` block (where the HPA behaviour lives), whole,
 * so restore puts back exactly what was there (absent fields absent: KEDA's defaults apply again).
 */
export interface SavedScaledObject {
  kind: 'ScaledObject'
  name: string
  service: string
  minReplicaCount: SavedField<number>
  maxReplicaCount: SavedField<number>
  advanced: SavedField<Record<string, unknown>>
}

/** A Deployment without an HPA: its replicas are raised directly. */
export interface SavedDeployment {
  kind: 'Deployment'
  name: string
  service: string
  replicas: SavedField<number>
}

export type SavedTarget = SavedHpa | SavedScaledObject | SavedDeployment

export interface SavedState {
  version: 1
  campaign: string
  namespace: string
  savedAt: string
  /** Keyed "HorizontalPodAutoscaler/<name>", "ScaledObject/<name>" or "Deployment/<name>". */
  targets: Record<string, SavedTarget>
  /** Objects the pre-warm creates; recorded before they are created. */
  headroom: {
    priorityClass?: {name: string; createdByUs: boolean}
    deployments: string[]
  }
}

export function stateName(campaign: string): string {
  return `retailops-prewarm-${campaign}`.slice(0, 253)
}

export function targetKey(t: Pick<SavedTarget, 'kind' | 'name'>): string {
  return `${t.kind}/${t.name}`
}

export interface StateHandle {
  state: SavedState
  resourceVersion: string
}

export async function readState(k: KubeClients, namespace: string, campaign: string): Promise<StateHandle | undefined> {
  let cm: k8s.V1ConfigMap | undefined
  try {
    cm = await readObject<k8s.V1ConfigMap>(kubeHttpOf(k), namedPath('ConfigMap', stateName(campaign), namespace))
  } catch (error) {
    throw kubeError(error, `reading the saved state ConfigMap ${stateName(campaign)}`, k.server)
  }
  if (!cm) return undefined
  const text = cm.data?.[STATE_KEY]
  let state: SavedState
  try {
    state = JSON.parse(text ?? '') as SavedState
  } catch {
    throw new RetailOpsError(
      'CONFIG',
      `ConfigMap ${namespace}/${stateName(campaign)} exists but holds no readable ${STATE_KEY}.`,
      {
        nextSteps: [
          `Inspect it with \`kubectl -n ${namespace} get configmap ${stateName(campaign)} -o yaml\`; do not delete it before the values in it are back.`,
        ],
      },
    )
  }
  return {state, resourceVersion: cm.metadata!.resourceVersion!}
}

function body(state: SavedState, resourceVersion?: string): k8s.V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: stateName(state.campaign),
      namespace: state.namespace,
      resourceVersion,
      labels: {...MANAGED_BY, 'app.kubernetes.io/component': 'prewarm-state', [CAMPAIGN_LABEL]: state.campaign},
      annotations: {
        'retailops.io/restore': `retailops prewarm restore --campaign ${state.campaign} --namespace ${state.namespace}`,
      },
    },
    data: {[STATE_KEY]: JSON.stringify(redactDeep(state), null, 2)},
  }
}

/**
 * Adds targets and headroom records to the saved state, creating it if needed. Existing entries
 * are kept as they are (they hold the values from before the first change). Optimistic
 * concurrency on resourceVersion: a concurrent writer makes us re-read and merge again.
 */
export async function recordState(
  k: KubeClients,
  namespace: string,
  campaign: string,
  add: {targets?: SavedTarget[]; priorityClass?: {name: string; createdByUs: boolean}; deployments?: string[]},
  now = new Date(),
): Promise<SavedState> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await readState(k, namespace, campaign)
    const state: SavedState = current
      ? structuredClone(current.state)
      : {version: 1, campaign, namespace, savedAt: now.toISOString(), targets: {}, headroom: {deployments: []}}
    let changed = !current
    for (const t of add.targets ?? []) {
      if (state.targets[targetKey(t)]) continue
      state.targets[targetKey(t)] = t
      changed = true
    }
    if (add.priorityClass && !state.headroom.priorityClass) {
      state.headroom.priorityClass = add.priorityClass
      changed = true
    }
    for (const d of add.deployments ?? []) {
      if (!state.headroom.deployments.includes(d)) {
        state.headroom.deployments.push(d)
        changed = true
      }
    }
    if (!changed) return state
    try {
      // A merge patch carrying the resourceVersion it read: the server refuses it (409) if another
      // writer got there first, and then we read and merge again.
      const http = kubeHttpOf(k)
      if (current) {
        await http.request('PATCH', namedPath('ConfigMap', stateName(campaign), namespace), {
          body: {metadata: {resourceVersion: current.resourceVersion}, data: body(state).data},
          contentType: 'application/merge-patch+json',
          query: {fieldManager: FIELD_MANAGER_PREWARM},
        })
      } else
        await http.request('POST', collectionPath('ConfigMap', namespace), {
          body: body(state),
          query: {fieldManager: FIELD_MANAGER_PREWARM},
        })
      return state
    } catch (error) {
      if (statusCode(error) === 409) continue
      throw kubeError(error, `saving the pre-warm state in ConfigMap ${namespace}/${stateName(campaign)}`, k.server)
    }
  }
  throw new RetailOpsError(
    'DEPLOY_FAILED',
    `Could not save the pre-warm state in ${namespace}/${stateName(campaign)}: it kept changing under us.`,
    {
      nextSteps: ['Check that no other pre-warm of this campaign is running, then run the command again.'],
    },
  )
}

export async function deleteState(k: KubeClients, namespace: string, campaign: string): Promise<void> {
  await deleteObject(kubeHttpOf(k), namedPath('ConfigMap', stateName(campaign), namespace)).catch((error: unknown) => {
    throw kubeError(error, `deleting ConfigMap ${namespace}/${stateName(campaign)}`, k.server)
  })
}

export function saveHpa(service: string, hpa: k8s.V2HorizontalPodAutoscaler): SavedHpa {
  const spec = hpa.spec as unknown as Record<string, unknown>
  const field = <T>(key: string): SavedField<T> =>
    spec && key in spec && spec[key] !== undefined && spec[key] !== null
      ? {present: true, value: structuredClone(spec[key]) as T}
      : {present: false}
  return {
    kind: 'HorizontalPodAutoscaler',
    name: hpa.metadata!.name!,
    service,
    minReplicas: field<number>('minReplicas'),
    maxReplicas: field<number>('maxReplicas'),
    behavior: field<k8s.V2HorizontalPodAutoscalerBehavior>('behavior'),
  }
}

export function saveScaledObject(service: string, so: ScaledObject): SavedScaledObject {
  const spec = (so.spec ?? {}) as Record<string, unknown>
  const field = <T>(key: string): SavedField<T> =>
    key in spec && spec[key] !== undefined && spec[key] !== null
      ? {present: true, value: structuredClone(spec[key]) as T}
      : {present: false}
  return {
    kind: 'ScaledObject',
    name: so.metadata.name,
    service,
    minReplicaCount: field<number>('minReplicaCount'),
    maxReplicaCount: field<number>('maxReplicaCount'),
    advanced: field<Record<string, unknown>>('advanced'),
  }
}

export function saveDeployment(service: string, d: k8s.V1Deployment): SavedDeployment {
  return {
    kind: 'Deployment',
    name: d.metadata!.name!,
    service,
    replicas: d.spec?.replicas === undefined ? {present: false} : {present: true, value: d.spec.replicas},
  }
}
