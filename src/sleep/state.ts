import {RetailOpsError} from '../errors/index.js'
import {kubeError, statusCode} from '../kubernetes/client.js'
import type {KubeHttp} from '../kubernetes/http.js'
import {FIELD_MANAGER_SLEEP, LABEL, MANAGED_BY} from '../kubernetes/labels.js'
import {deleteObject, readObject} from '../kubernetes/objects.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'

/**
 * What `retailops sleep` changes, saved in the cluster BEFORE the first change: one ConfigMap per
 * namespace of the environment. Entries are only ever added, never overwritten, so sleeping twice
 * (or again after a crash half-way) keeps the values from before the first sleep, never the zeros
 * the first one left; `wake` puts exactly those back, verifies, and only then deletes the state.
 */

export const SLEEP_STATE = 'retailops-sleep-state'
export const STATE_KEY = 'state.json'
export const ENVIRONMENT_ANNOTATION = 'retailops.dev/asleep-environment'

/** A field as it was: present with a value, or absent (wake removes it). */
export interface SavedField<T> {
  present: boolean
  value?: T
}

export interface SavedDeployment {
  kind: 'Deployment'
  name: string
  replicas: SavedField<number>
}

/** HPAs are left in place (the HPA controller does not scale a target at 0 replicas); their bounds are saved so wake verifies and restores them exactly. */
export interface SavedHpa {
  kind: 'HorizontalPodAutoscaler'
  name: string
  minReplicas: SavedField<number>
  maxReplicas: SavedField<number>
}

/**
 * KEDA's ScaledObjects are paused at 0 replicas while the environment sleeps (the
 * `autoscaling.keda.sh/paused-replicas` annotation): unlike the HPA controller, KEDA scales a
 * Deployment at 0 back up to its minReplicaCount, which would wake the environment. The
 * annotation as it was (a user's own pause included) is saved, and wake puts exactly that back.
 */
export interface SavedScaledObject {
  kind: 'ScaledObject'
  name: string
  pausedReplicas: SavedField<string>
}

export type SavedTarget = SavedDeployment | SavedHpa | SavedScaledObject

export const PAUSED_REPLICAS = 'autoscaling.keda.sh/paused-replicas'

export interface SleepState {
  version: 1
  environment: string
  namespace: string
  savedAt: string
  /** Keyed "Deployment/<name>", "HorizontalPodAutoscaler/<name>" or "ScaledObject/<name>". */
  targets: Record<string, SavedTarget>
}

export const targetKey = (t: Pick<SavedTarget, 'kind' | 'name'>) => `${t.kind}/${t.name}`

/** A saved field: its name (as shown), its JSON Pointer in the object, and the value it had. */
export interface SavedFieldAt {
  name: string
  pointer: string
  saved: SavedField<number | string>
}

export const ANNOTATIONS_POINTER = '/metadata/annotations'
const annotationPointer = (key: string) => `${ANNOTATIONS_POINTER}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`

export function savedFields(t: SavedTarget): SavedFieldAt[] {
  switch (t.kind) {
    case 'Deployment':
      return [{name: 'replicas', pointer: '/spec/replicas', saved: t.replicas}]
    case 'HorizontalPodAutoscaler':
      return [
        {name: 'minReplicas', pointer: '/spec/minReplicas', saved: t.minReplicas},
        {name: 'maxReplicas', pointer: '/spec/maxReplicas', saved: t.maxReplicas},
      ]
    case 'ScaledObject':
      return [{name: PAUSED_REPLICAS, pointer: annotationPointer(PAUSED_REPLICAS), saved: t.pausedReplicas}]
  }
}

/** The value at a pointer savedFields made: `/spec/<field>` or `/metadata/annotations/<escaped key>`. */
export function valueAt(
  object: {metadata?: {annotations?: Record<string, string>}; spec?: object},
  pointer: string,
): unknown {
  if (pointer.startsWith('/spec/')) return (object.spec as Record<string, unknown> | undefined)?.[pointer.slice(6)]
  if (pointer.startsWith(`${ANNOTATIONS_POINTER}/`)) {
    const key = pointer
      .slice(ANNOTATIONS_POINTER.length + 1)
      .replaceAll('~1', '/')
      .replaceAll('~0', '~')
    return object.metadata?.annotations?.[key]
  }
  return undefined
}

function field(spec: Record<string, unknown> | undefined, key: string): SavedField<number> {
  const v = spec?.[key]
  return typeof v === 'number' ? {present: true, value: v} : {present: false}
}

export function saveTarget(
  kind: SavedTarget['kind'],
  name: string,
  spec?: Record<string, unknown>,
  annotations?: Record<string, string>,
): SavedTarget {
  switch (kind) {
    case 'Deployment':
      return {kind, name, replicas: field(spec, 'replicas')}
    case 'HorizontalPodAutoscaler':
      return {kind, name, minReplicas: field(spec, 'minReplicas'), maxReplicas: field(spec, 'maxReplicas')}
    case 'ScaledObject': {
      const paused = annotations?.[PAUSED_REPLICAS]
      return {kind, name, pausedReplicas: paused === undefined ? {present: false} : {present: true, value: paused}}
    }
  }
}

export interface StateHandle {
  state: SleepState
  resourceVersion: string
}

export async function readSleepState(http: KubeHttp, namespace: string): Promise<StateHandle | undefined> {
  const cm = await readObject<{metadata: {resourceVersion: string}; data?: Record<string, string>}>(
    http,
    namedPath('ConfigMap', SLEEP_STATE, namespace),
  )
  if (!cm) return undefined
  try {
    return {state: JSON.parse(cm.data?.[STATE_KEY] ?? '') as SleepState, resourceVersion: cm.metadata.resourceVersion}
  } catch {
    throw new RetailOpsError(
      'CONFIG',
      `ConfigMap ${namespace}/${SLEEP_STATE} exists but holds no readable ${STATE_KEY}.`,
      {
        nextSteps: [
          `Inspect it with \`kubectl -n ${namespace} get configmap ${SLEEP_STATE} -o yaml\`; do not delete it before the replica counts in it are back.`,
        ],
      },
    )
  }
}

function stateBody(state: SleepState) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: SLEEP_STATE,
      namespace: state.namespace,
      labels: {[LABEL.managedBy]: MANAGED_BY, [LABEL.component]: 'sleep-state'},
      annotations: {
        [ENVIRONMENT_ANNOTATION]: state.environment,
        'retailops.dev/wake': `retailops wake --environment ${state.environment}`,
      },
    },
    data: {[STATE_KEY]: JSON.stringify(state, null, 2)},
  }
}

/**
 * Adds the targets not saved yet, creating the state if needed; saved entries are kept as they
 * are. Optimistic concurrency on resourceVersion: a concurrent sleep makes us re-read and merge.
 */
export async function recordSleepState(
  http: KubeHttp,
  environment: string,
  namespace: string,
  targets: SavedTarget[],
  now: Date,
): Promise<SleepState> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await readSleepState(http, namespace)
    if (current && current.state.environment !== environment) {
      throw new RetailOpsError(
        'REFUSED',
        `Namespace ${namespace} was put to sleep as environment ${current.state.environment}, not ${environment}.`,
        {nextSteps: [`Wake it first: \`retailops wake --environment ${current.state.environment}\`.`]},
      )
    }
    const state: SleepState = current
      ? structuredClone(current.state)
      : {version: 1, environment, namespace, savedAt: now.toISOString(), targets: {}}
    let changed = !current
    for (const t of targets) {
      if (state.targets[targetKey(t)]) continue
      state.targets[targetKey(t)] = t
      changed = true
    }
    if (!changed) return state
    try {
      if (current)
        await http.request('PATCH', namedPath('ConfigMap', SLEEP_STATE, namespace), {
          body: {metadata: {resourceVersion: current.resourceVersion}, data: stateBody(state).data},
          contentType: 'application/merge-patch+json',
          query: {fieldManager: FIELD_MANAGER_SLEEP},
        })
      else
        await http.request('POST', collectionPath('ConfigMap', namespace), {
          body: stateBody(state),
          query: {fieldManager: FIELD_MANAGER_SLEEP},
        })
      return state
    } catch (error) {
      if (statusCode(error) === 409) continue
      throw kubeError(error, `saving the sleep state in ConfigMap ${namespace}/${SLEEP_STATE}`)
    }
  }
  throw new RetailOpsError(
    'DEPLOY_FAILED',
    `Could not save the sleep state in ${namespace}/${SLEEP_STATE}: it kept changing.`,
    {
      nextSteps: ['Check that no other `retailops sleep` of this environment is running, then run the command again.'],
    },
  )
}

export async function deleteSleepState(http: KubeHttp, namespace: string): Promise<void> {
  await deleteObject(http, namedPath('ConfigMap', SLEEP_STATE, namespace))
}
