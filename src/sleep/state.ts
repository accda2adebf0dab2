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

export type SavedTarget = SavedDeployment | SavedHpa

export interface SleepState {
  version: 1
  environment: string
  namespace: string
  savedAt: string
  /** Keyed "Deployment/<name>" or "HorizontalPodAutoscaler/<name>". */
  targets: Record<string, SavedTarget>
}

export const targetKey = (t: Pick<SavedTarget, 'kind' | 'name'>) => `${t.kind}/${t.name}`

export function savedFields(t: SavedTarget): [string, SavedField<number>][] {
  return t.kind === 'Deployment'
    ? [['replicas', t.replicas]]
    : [
        ['minReplicas', t.minReplicas],
        ['maxReplicas', t.maxReplicas],
      ]
}

function field(spec: Record<string, unknown> | undefined, key: string): SavedField<number> {
  const v = spec?.[key]
  return typeof v === 'number' ? {present: true, value: v} : {present: false}
}

export function saveTarget(kind: SavedTarget['kind'], name: string, spec?: Record<string, unknown>): SavedTarget {
  return kind === 'Deployment'
    ? {kind, name, replicas: field(spec, 'replicas')}
    : {kind, name, minReplicas: field(spec, 'minReplicas'), maxReplicas: field(spec, 'maxReplicas')}
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
