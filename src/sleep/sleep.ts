import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {tenantNamespace} from '../config/vocabulary.js'
import {RetailOpsError} from '../errors/index.js'
import {listScaledObjects, ownedByScaledObject} from '../kubernetes/autoscalers.js'
import {kubeError, kubeHttp, statusCode} from '../kubernetes/client.js'
import type {KubeHttp} from '../kubernetes/http.js'
import {FIELD_MANAGER_SLEEP, LABEL} from '../kubernetes/labels.js'
import {listObjects, readObject} from '../kubernetes/objects.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'
import {throwIfAborted, type RunContext} from '../ui/context.js'
import {
  ANNOTATIONS_POINTER,
  deleteSleepState,
  PAUSED_REPLICAS,
  readSleepState,
  recordSleepState,
  savedFields,
  type SavedTarget,
  saveTarget,
  type SleepState,
  valueAt,
} from './state.js'

/**
 * `retailops sleep` / `wake`: a non-production environment's Deployments scaled to zero and back
 * exactly as they were. HPAs stay in place: the HPA controller does not scale a target whose
 * replicas are 0 (condition ScalingActive=False, reason ScalingDisabled) and resumes once wake puts
 * the replicas back, so nothing about them has to be deleted or pointed elsewhere, and minReplicas
 * never needs to be 0 (which would take the HPAScaleToZero feature gate). Their bounds are saved
 * anyway, so wake verifies them and puts back any that changed while the environment slept.
 * KEDA is different: it scales a Deployment at 0 back up to its ScaledObject's minReplicaCount, so
 * a ScaledObject is paused at 0 replicas (its autoscaling.keda.sh/paused-replicas annotation) while
 * the environment sleeps, and its annotation is put back exactly as it was.
 * Crash-safe like prewarm: the state is saved before the first change, never overwritten.
 */

type Workload = {
  metadata: {
    name: string
    resourceVersion?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    ownerReferences?: {kind: string}[]
  }
  spec?: Record<string, unknown>
}

export interface SleepOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  now?: Date
}

export interface SleptTarget {
  namespace: string
  kind: SavedTarget['kind']
  name: string
  /** The saved values (what wake puts back). */
  saved: Record<string, number | string>
  /**
   * slept (scaled to 0, or a ScaledObject paused at 0, now), asleep (already so), kept (an HPA,
   * left as it is), restored, unchanged, gone.
   */
  outcome: 'slept' | 'asleep' | 'kept' | 'restored' | 'unchanged' | 'gone'
}

export interface SleepResult {
  environment: string
  action: 'sleep' | 'wake'
  namespaces: string[]
  /** False for a wake with no saved state (not asleep) in any namespace. */
  changed: boolean
  savedAt?: string
  targets: SleptTarget[]
  message: string
}

/** Refuses production before anything is read or written (environments.<name>.production defaults to true). */
export function refuseProduction(env: ResolvedEnvironment, action: string): void {
  if (env.production === false) return
  throw new RetailOpsError(
    'PRODUCTION_REFUSED',
    `Environment ${env.name} is production (environments.${env.name}.production is ${env.production === true ? 'true' : 'not false'}): ${action} scales it to zero, so it is refused; nothing was changed.`,
    {
      nextSteps: [
        'Name a non-production environment with --environment.',
        `If ${env.name} really is not production, set environments.${env.name}.production: false in retailops.yaml.`,
      ],
    },
  )
}

/** The namespaces the environment's workloads run in: its own and its dedicated-namespace tenants' (dedicated clusters are other clusters). */
export function environmentNamespaces(project: LoadedConfig, env: ResolvedEnvironment): string[] {
  const out = [env.namespace]
  for (const t of project.config.tenants) {
    if (t.model !== 'dedicated-namespace') continue
    const ns = tenantNamespace(project.config, t, env.namespace)
    if (ns && !out.includes(ns)) out.push(ns)
  }
  return out
}

const selector = (project: LoadedConfig) => `${LABEL.partOf}=${project.config.project}`

async function listWorkloads(http: KubeHttp, project: LoadedConfig, namespace: string) {
  try {
    const [deployments, hpas, scaledObjects] = await Promise.all([
      listObjects<Workload>(http, collectionPath('Deployment', namespace), {labelSelector: selector(project)}),
      listObjects<Workload>(http, collectionPath('HorizontalPodAutoscaler', namespace), {
        labelSelector: selector(project),
      }),
      listScaledObjects(http, namespace),
    ])
    return {
      deployments,
      // KEDA's own HPA for a ScaledObject is KEDA's to set: the ScaledObject is paused instead.
      hpas: hpas.filter((h) => !ownedByScaledObject(h as Parameters<typeof ownedByScaledObject>[0])),
      scaledObjects: (scaledObjects as Workload[]).filter(
        (o) => o.metadata.labels?.[LABEL.partOf] === project.config.project,
      ),
    }
  } catch (error) {
    throw kubeError(error, `listing the Deployments and autoscalers of ${namespace}`)
  }
}

const describe = (t: SavedTarget) =>
  Object.fromEntries(savedFields(t).map((f) => [f.name, f.saved.present ? f.saved.value! : '(absent)']))

type PatchOp = {op: string; path: string; value?: unknown}

/** Sets a field at a pointer; an annotation needs the annotations map to exist first. */
function setAt(current: Workload, pointer: string, value: unknown): PatchOp[] {
  const ops: PatchOp[] = []
  if (pointer.startsWith(`${ANNOTATIONS_POINTER}/`) && !current.metadata.annotations)
    ops.push({op: 'add', path: ANNOTATIONS_POINTER, value: {}})
  ops.push({op: 'add', path: pointer, value})
  return ops
}

/** JSON Patch ops that make the object's fields exactly the saved ones, guarded by its resourceVersion. */
export function patchTo(t: SavedTarget, current: Workload): PatchOp[] {
  const ops: PatchOp[] = []
  for (const {pointer, saved} of savedFields(t)) {
    const value = valueAt(current, pointer)
    const has = value !== undefined && value !== null
    if (saved.present && value !== saved.value) ops.push(...setAt(current, pointer, saved.value))
    if (!saved.present && has) ops.push({op: 'remove', path: pointer})
  }
  return ops.length
    ? [{op: 'test', path: '/metadata/resourceVersion', value: current.metadata.resourceVersion}, ...ops]
    : []
}

export function matchesSaved(t: SavedTarget, object: Workload): boolean {
  return savedFields(t).every(({pointer, saved}) => {
    const value = valueAt(object, pointer)
    return saved.present ? value === saved.value : value === undefined || value === null
  })
}

/** Autoscalers (HPAs, ScaledObjects) before Deployments, each kind by name: the order sleep and wake act in. */
function autoscalersFirst(a: SavedTarget, b: SavedTarget): number {
  if (a.kind === b.kind) return a.name.localeCompare(b.name)
  return a.kind === 'Deployment' ? 1 : b.kind === 'Deployment' ? -1 : 0
}

/** What sleep sets: a Deployment's replicas to 0, a ScaledObject paused at 0 replicas. */
function sleepPatch(t: SavedTarget, current: Workload): PatchOp[] {
  const guard = {op: 'test', path: '/metadata/resourceVersion', value: current.metadata.resourceVersion}
  if (t.kind === 'ScaledObject') {
    const [{pointer}] = savedFields(t)
    return current.metadata.annotations?.[PAUSED_REPLICAS] === '0' ? [] : [guard, ...setAt(current, pointer, '0')]
  }
  return current.spec?.replicas === 0 ? [] : [guard, {op: 'add', path: '/spec/replicas', value: 0}]
}

/** Sets spec fields with a JSON Patch carrying the resourceVersion read; re-reads and retries when it moved. */
async function patchFields(
  http: KubeHttp,
  namespace: string,
  t: SavedTarget,
  want: (current: Workload) => {op: string; path: string; value?: unknown}[],
): Promise<'changed' | 'unchanged' | 'gone'> {
  const path = namedPath(t.kind, t.name, namespace)
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await readObject<Workload>(http, path)
    if (!current) return 'gone'
    const ops = want(current)
    if (ops.length === 0) return 'unchanged'
    try {
      await http.request('PATCH', path, {
        body: ops,
        contentType: 'application/json-patch+json',
        query: {fieldManager: FIELD_MANAGER_SLEEP},
      })
      return 'changed'
    } catch (error) {
      const code = statusCode(error)
      if (code === 409 || code === 422) continue
      throw kubeError(error, `patching ${t.kind} ${namespace}/${t.name}`)
    }
  }
  throw new RetailOpsError('WAKE_INCOMPLETE', `${t.kind} ${namespace}/${t.name} kept changing while it was patched.`, {
    nextSteps: [
      'Check what else scales it (a deploy, an operator), then run the command again; the saved state is kept.',
    ],
  })
}

/** Saves every Deployment's replicas, HPA's bounds and ScaledObject's pause (once), then pauses the ScaledObjects and scales the Deployments to 0. */
export async function sleepEnvironment(
  options: SleepOptions & {afterSave?: () => Promise<void> | void},
  ctx: RunContext,
): Promise<SleepResult> {
  const {project, env} = options
  refuseProduction(env, 'sleep')
  const now = options.now ?? new Date()
  const namespaces = environmentNamespaces(project, env)
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  const targets: SleptTarget[] = []
  let savedAt: string | undefined
  try {
    for (const namespace of namespaces) {
      const {deployments, hpas, scaledObjects} = await listWorkloads(http, project, namespace)
      const found = [
        ...deployments.map((d) => saveTarget('Deployment', d.metadata.name, d.spec)),
        ...hpas.map((h) => saveTarget('HorizontalPodAutoscaler', h.metadata.name, h.spec)),
        ...scaledObjects.map((o) => saveTarget('ScaledObject', o.metadata.name, o.spec, o.metadata.annotations)),
      ]
      if (found.length === 0) {
        ctx.out.warn(`No Deployments or autoscalers of project ${project.config.project} in ${namespace}.`)
        continue
      }
      const task = ctx.out.task(
        `Saving ${found.length} replica count(s), HPA bound(s) and ScaledObject pause(s) of ${namespace}`,
      )
      // Saved before the first change; entries saved by an earlier sleep are kept (never the zeros it left).
      const state: SleepState = await recordSleepState(http, env.name, namespace, found, now)
      savedAt ??= state.savedAt
      task.succeed(`Saved in ConfigMap ${namespace}/retailops-sleep-state (first saved ${state.savedAt})`)
      await options.afterSave?.()
      const scale = ctx.out.task(`Scaling the Deployments of ${namespace} to 0`)
      // ScaledObjects paused first, so KEDA does not scale a Deployment back up once it is at 0.
      const ordered = Object.values(state.targets).sort(autoscalersFirst)
      for (const t of ordered) {
        throwIfAborted(ctx.signal)
        if (t.kind === 'HorizontalPodAutoscaler') {
          targets.push({namespace, kind: t.kind, name: t.name, saved: describe(t), outcome: 'kept'})
          continue
        }
        const outcome = await patchFields(http, namespace, t, (current) => sleepPatch(t, current))
        targets.push({
          namespace,
          kind: t.kind,
          name: t.name,
          saved: describe(t),
          outcome: outcome === 'changed' ? 'slept' : outcome === 'gone' ? 'gone' : 'asleep',
        })
      }
      scale.succeed(
        `${namespace}: ${targets.filter((t) => t.namespace === namespace && t.kind === 'Deployment' && t.outcome === 'slept').length} Deployment(s) scaled to 0`,
      )
    }
  } finally {
    http.close()
  }
  const deploymentsNow = targets.filter((t) => t.kind === 'Deployment' && t.outcome === 'slept').length
  const paused = targets.filter((t) => t.kind === 'ScaledObject' && t.outcome !== 'gone').length
  return {
    environment: env.name,
    action: 'sleep',
    namespaces,
    changed: targets.some((t) => t.outcome === 'slept'),
    savedAt,
    targets,
    message: `Environment ${env.name} is asleep: ${deploymentsNow} Deployment(s) scaled to 0 now, ${targets.filter((t) => t.kind === 'Deployment' && t.outcome === 'asleep').length} already at 0; HPAs left in place (they do not scale a target at 0)${paused ? `; ${paused} KEDA ScaledObject(s) paused at 0 replicas` : ''}. \`retailops wake --environment ${env.name}\` puts everything back.`,
  }
}

/** Puts back exactly what sleep saved, verifies, and only then deletes the saved state. No state: nothing to do. */
export async function wakeEnvironment(options: SleepOptions, ctx: RunContext): Promise<SleepResult> {
  const {project, env} = options
  refuseProduction(env, 'wake')
  const namespaces = environmentNamespaces(project, env)
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  const targets: SleptTarget[] = []
  let savedAt: string | undefined
  let woke = false
  try {
    for (const namespace of namespaces) {
      const saved = await readSleepState(http, namespace)
      if (!saved) continue
      if (saved.state.environment !== env.name) {
        ctx.out.warn(`${namespace} was put to sleep as environment ${saved.state.environment}; left alone.`)
        continue
      }
      woke = true
      savedAt ??= saved.state.savedAt
      const list = Object.values(saved.state.targets)
      const task = ctx.out.task(
        `Waking ${namespace}: ${list.length} object(s) back to the values saved at ${saved.state.savedAt}`,
      )
      // Autoscalers first (HPA bounds, ScaledObjects unpaused), so a Deployment woken under one
      // meets the bounds it had, and a paused ScaledObject does not hold it at 0 again.
      list.sort(autoscalersFirst)
      for (const t of list) {
        const outcome = await patchFields(http, namespace, t, (current) => patchTo(t, current))
        targets.push({
          namespace,
          kind: t.kind,
          name: t.name,
          saved: describe(t),
          outcome: outcome === 'changed' ? 'restored' : outcome,
        })
      }
      const wrong: string[] = []
      for (const t of list) {
        const obj = await readObject<Workload>(http, namedPath(t.kind, t.name, namespace))
        if (obj && !matchesSaved(t, obj)) wrong.push(`${t.kind}/${t.name}`)
      }
      if (wrong.length > 0) {
        task.fail('Some objects differ from the saved values')
        throw new RetailOpsError(
          'WAKE_INCOMPLETE',
          `After waking, ${wrong.join(', ')} in ${namespace} still differ from the saved values; the saved state is kept.`,
          {
            nextSteps: [
              'Something else may be changing them (a deploy, an operator); run `retailops wake` again once it has finished.',
            ],
            details: {targets},
          },
        )
      }
      await deleteSleepState(http, namespace).catch((error: unknown) => {
        throw kubeError(error, `deleting the sleep state of ${namespace}`)
      })
      task.succeed(
        `${namespace}: ${targets.filter((t) => t.namespace === namespace && t.outcome === 'restored').length} object(s) restored`,
      )
    }
  } finally {
    http.close()
  }
  return {
    environment: env.name,
    action: 'wake',
    namespaces,
    changed: woke,
    savedAt,
    targets,
    message: woke
      ? `Environment ${env.name} is awake: every Deployment and autoscaler is back as saved at ${savedAt}.`
      : `Nothing to wake: environment ${env.name} has no saved sleep state (it is awake, or was never put to sleep).`,
  }
}
