/**
 * `deploy --canary --detach`: the CLI does everything up to the start of the rollout (render,
 * signatures, policy, apply, claim, the canary's setup), then a Job in the cluster drives the
 * rest with the runner image, so a two-hour canary does not hold a CI runner. The Job runs
 * `retailops rollout resume` with the lease the CLI hands it (its run id is the lease's), as a
 * ServiceAccount whose Role allows exactly what driving this release needs in the namespace.
 *
 * Order, so that nothing is left half-done: the Job is created suspended with its Role, binding,
 * ConfigMap and Secret (owned by it: deleting the Job, or its ttlSecondsAfterFinished, removes
 * them) before anything of the release is written; a 403 there stops the deploy with nothing
 * changed. After the setup the lease is handed over in the state's own compare-and-swap write,
 * then the Job is resumed. backoffLimit 0: a second pod never drives alongside a first one; a
 * Job that dies stops renewing, its lease expires and `rollout resume` takes over from the state.
 */
import type {HorizontalPodAutoscaler, Job} from '../kubernetes/kinds.js'
import {listScaledObjects} from '../kubernetes/autoscalers.js'
import {randomUUID} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import type {LoadedConfig} from '../config/load.js'
import {readEnvReference, isEnvReference, resolveFileOrEnv} from '../config/secret-ref.js'
import {RetailOpsError} from '../errors/index.js'
import {kubeError} from '../kubernetes/client.js'
import {FIELD_MANAGER} from '../kubernetes/labels.js'
import type {KubeObjects, Obj} from '../kubernetes/objects.js'
import {collectionPath, objectPath} from '../kubernetes/resources.js'
import {
  applyJobObjects,
  bindingObject,
  IN_CLUSTER_CONTEXT,
  runnerPodSpec,
  serviceAccountObject,
} from '../kubernetes/runner-job.js'
import type {RunContext} from '../ui/context.js'
import {PATHS} from './kube.js'
import {ciJob, HOLDER, leaseAlive, requestName, RUN_ID_ENV, stateName} from './store.js'
import {names} from './traffic.js'
import type {Lease, RolloutState} from './types.js'

/** How long the lease handed to a Job lasts before its pod takes it (scheduling, image pull, start). */
export const DETACH_START_GRACE_SECONDS = 300
/** Margin on top of the rollout's timeout for the Job's activeDeadlineSeconds: an abort or a promotion in flight finishes. */
const DEADLINE_MARGIN_SECONDS = 900
/** Finished Jobs (and, through their owner references, their Role, ConfigMap and Secret) stay a day for their logs. */
export const DETACHED_JOB_TTL_SECONDS = 86_400
/** Without any timeout, a detached rollout is driven for at most this long. */
const DEFAULT_DRIVE_MS = 24 * 3_600_000
/** One ServiceAccount per namespace drives every detached rollout there; its permissions are per Job. */
export const DRIVER_SERVICE_ACCOUNT = 'retailops-rollout-driver'
const COMPONENT = 'rollout-driver'
const JOB_PATH = (ns: string) => collectionPath('Job', ns)

export interface DetachSpec {
  /** REGISTRY/REPOSITORY@sha256:…, verified before anything is created (verifiedRunnerImage). */
  runnerImage: string
  /** The environment the Job's `rollout resume` loads (none: the project's default). */
  environment?: string
  project: LoadedConfig
  /** The deploy's --skip-verify: the Job does not verify signatures either (recorded on the Deployment by the deploy). */
  skipVerify?: boolean
}

export interface DetachedJob {
  namespace: string
  name: string
  uid: string
  serviceAccount: string
  role: string
  configMap: string
  credentialsSecretName: string
  runnerImage: string
  /** The run id the lease is handed to: the Job's pod gets it in RETAILOPS_RUN_ID. */
  runId: string
  args: string[]
  activeDeadlineSeconds: number
  /** How to follow it from anywhere. */
  follow: string
}

/** Names of a release's Job and its objects; the release id is unique per deploy. */
export function detachNames(releaseId: string) {
  const base = `retailops-drive-${releaseId.replace(/^release-/, '')}`.slice(0, 52).replace(/-+$/, '')
  return {job: base, role: base, configMap: `${base}-config`, credentials: `${base}-credentials`}
}

type Rule = {apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[]}

/**
 * What driving these rollouts does in the namespace, and nothing more: the state and request
 * ConfigMaps of its services; the stable and canary (or preview) Deployments, the Services the
 * router pins and the route it weights, by name (create is by name too: they are created by
 * server-side apply); reads of ReplicaSets and pods (pod-template hashes, why pods are not
 * Ready); lists of the objects policy judges a Deployment with (PodDisruptionBudgets,
 * NetworkPolicies, autoscalers), and patches of the autoscalers the replica router pins.
 */
export function driverRules(states: RolloutState[], autoscalers: string[], scaledObjects: string[] = []): Rule[] {
  const services = states.map((s) => s.service)
  const all = services.map((s) => ({s, n: names(s), state: states.find((x) => x.service === s)!}))
  const rules: Rule[] = [
    {
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'update', 'delete'],
      resourceNames: services.flatMap((s) => [stateName(s), requestName(s)]),
    },
    {
      apiGroups: ['apps'],
      resources: ['deployments'],
      verbs: ['get', 'patch'],
      resourceNames: all.flatMap(({s, n, state}) => [
        s,
        state.spec.strategy === 'blue-green' ? n.previewDeployment : n.canaryDeployment,
      ]),
    },
    {
      apiGroups: ['apps'],
      resources: ['deployments'],
      verbs: ['create', 'delete'],
      resourceNames: all.map(({n, state}) =>
        state.spec.strategy === 'blue-green' ? n.previewDeployment : n.canaryDeployment,
      ),
    },
    {apiGroups: ['apps'], resources: ['replicasets'], verbs: ['list']},
    {apiGroups: [''], resources: ['pods'], verbs: ['list']},
    {apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['list']},
    {apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['list']},
    {apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['list']},
    // A stable Deployment's autoscaler may be a KEDA ScaledObject (a cluster without KEDA ignores the rule).
    {apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['list']},
  ]
  const pinned = all.flatMap(({s, n, state}) =>
    state.spec.strategy === 'blue-green'
      ? [s, n.previewService]
      : state.spec.router === 'replicas'
        ? []
        : [n.stableService, n.canaryService],
  )
  const services_ = all.flatMap(({s, state}) =>
    state.spec.strategy === 'blue-green' || state.spec.router !== 'replicas' ? [s] : [],
  )
  if (pinned.length > 0) {
    rules.push({
      apiGroups: [''],
      resources: ['services'],
      verbs: ['get', 'patch'],
      resourceNames: [...new Set([...services_, ...pinned])],
    })
    rules.push({
      apiGroups: [''],
      resources: ['services'],
      verbs: ['create', 'delete'],
      resourceNames: pinned.filter((x) => !services.includes(x)),
    })
  }
  const routes = all
    .filter(({state}) => state.spec.strategy === 'canary' && state.spec.router === 'gateway')
    .map(({state}) => state.spec.routeName)
  if (routes.length > 0)
    rules.push({
      apiGroups: ['gateway.networking.k8s.io'],
      resources: ['httproutes'],
      verbs: ['get', 'patch'],
      resourceNames: routes,
    })
  const ingresses = all.filter(({state}) => state.spec.strategy === 'canary' && state.spec.router === 'nginx')
  if (ingresses.length > 0) {
    rules.push({
      apiGroups: ['networking.k8s.io'],
      resources: ['ingresses'],
      verbs: ['get', 'patch'],
      resourceNames: ingresses.flatMap(({n, state}) => [state.spec.routeName, n.canaryIngress]),
    })
    rules.push({
      apiGroups: ['networking.k8s.io'],
      resources: ['ingresses'],
      verbs: ['create', 'delete'],
      resourceNames: ingresses.map(({n}) => n.canaryIngress),
    })
  }
  // The replica router pins the stable autoscaler (and the trust check reads it); by name.
  if (autoscalers.length > 0)
    rules.push({
      apiGroups: ['autoscaling'],
      resources: ['horizontalpodautoscalers'],
      verbs: ['get', 'patch'],
      resourceNames: autoscalers,
    })
  if (scaledObjects.length > 0)
    rules.push({
      apiGroups: ['keda.sh'],
      resources: ['scaledobjects'],
      verbs: ['get', 'patch'],
      resourceNames: scaledObjects,
    })
  return rules
}

/** The autoscalers (HPAs, KEDA ScaledObjects) that scale the released Deployments (found by their target, whatever their names). */
async function autoscalersOf(
  kube: KubeObjects,
  namespace: string,
  states: RolloutState[],
): Promise<{hpas: string[]; scaledObjects: string[]}> {
  // What each release stored (the autoscaler deploy rendered when it began): the Job acts on those and no other.
  const stored = storedAutoscalers(states)
  if (stored) return stored
  const services = states.map((s) => s.service)
  const hpas = await kube.list<HorizontalPodAutoscaler>(PATHS.hpas(namespace))
  const scaledObjects = await listScaledObjects(kube.http, namespace).catch((error: unknown) => {
    throw kubeError(error, `listing ScaledObjects in ${namespace}`, kube.server)
  })
  return {
    hpas: hpas
      .filter((h) => h.spec?.scaleTargetRef?.kind === 'Deployment' && services.includes(h.spec.scaleTargetRef.name))
      .map((h) => h.metadata.name),
    scaledObjects: scaledObjects
      .filter((so) => services.includes(so.spec?.scaleTargetRef?.name ?? '\0'))
      .map((so) => so.metadata.name),
  }
}

/** The autoscalers the rollouts stored, by kind (undefined when a state predates them: found live instead). */
export function storedAutoscalers(states: RolloutState[]): {hpas: string[]; scaledObjects: string[]} | undefined {
  if (states.some((s) => s.spec.autoscaler === undefined)) return undefined
  const of = (kind: string) => states.flatMap((s) => (s.spec.autoscaler?.kind === kind ? [s.spec.autoscaler.name] : []))
  return {hpas: of('HorizontalPodAutoscaler'), scaledObjects: of('ScaledObject')}
}

/** The public key the Job verifies signatures with (none with --skip-verify, or when signing is optional and there is none). */
async function publicKeyText(project: LoadedConfig, skipVerify?: boolean): Promise<string | undefined> {
  if (skipVerify) return undefined
  const ref = resolveFileOrEnv(project.config.signing.publicKey, project.dir)
  try {
    return isEnvReference(ref) ? readEnvReference(ref, 'signing.publicKey') : await readFile(ref, 'utf8')
  } catch (error) {
    if (!project.config.signing.required) return undefined
    throw error
  }
}

function timeoutOf(states: RolloutState[], timeoutMs?: number): number {
  const deadlines = states.map((s) => s.spec.deadlineMs).filter((d): d is number => d !== undefined)
  return timeoutMs ?? (deadlines.length > 0 ? Math.max(...deadlines) : DEFAULT_DRIVE_MS)
}

export interface PreparedJob extends DetachedJob {
  /** The lease the CLI hands over after the setup (pending until the Job's pod takes it). */
  lease: () => Lease
  /** Lets the Job run (it was created suspended). */
  start: () => Promise<void>
  /** Deletes the Job and what it owns (a deploy that did not get as far as detaching). */
  remove: () => Promise<void>
}

/**
 * Creates the Job suspended, with the namespace's driver ServiceAccount, its Role and binding, the
 * ConfigMap and the Secret. Every refusal (403: the deploying identity may not create them) comes
 * before anything of the release is written.
 */
export async function prepareDetachedJob(
  kube: KubeObjects,
  states: RolloutState[],
  spec: DetachSpec,
  options: {timeoutMs?: number},
  ctx: RunContext,
): Promise<PreparedJob> {
  const namespace = states[0].namespace
  const n = detachNames(states[0].releaseId)
  const runId = randomUUID()
  const timeoutMs = timeoutOf(states, options.timeoutMs)
  const seconds = Math.ceil(timeoutMs / 1000)
  const args = [
    'rollout',
    'resume',
    states[0].service,
    ...(spec.environment ? ['--environment', spec.environment] : []),
    '--namespace',
    namespace,
    '--context',
    IN_CLUSTER_CONTEXT,
    '--timeout',
    `${seconds}s`,
    '--json',
    ...(spec.skipVerify ? ['--skip-verify'] : []),
  ]
  const labels = {
    'app.kubernetes.io/managed-by': 'retailops',
    'app.kubernetes.io/component': COMPONENT,
    'retailops.dev/release': states[0].releaseId,
  }
  // Loaded here, not with the module: `rollout status` reads detached Jobs and never writes one.
  const {runnerConfigObjects} = await import('../kubernetes/runner-config.js')
  const config = runnerConfigObjects({
    namespace,
    labels,
    configMap: n.configMap,
    credentialsSecret: n.credentials,
    configText: await readFile(spec.project.file, 'utf8'),
    publicKey: await publicKeyText(spec.project, spec.skipVerify),
  })
  const autoscalers = await autoscalersOf(kube, namespace, states)
  const activeDeadlineSeconds = seconds + DEADLINE_MARGIN_SECONDS
  const job: Obj = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: n.job,
      namespace,
      labels,
      annotations: {
        'retailops.dev/services': states.map((s) => s.service).join(','),
        'retailops.dev/detached-by': ciJob() ?? HOLDER,
      },
    },
    spec: {
      // Resumed once the lease is handed over: a pod started earlier would find the lease held.
      suspend: true,
      // One pod, never a second: a retry would drive alongside a pod that may still run. The state makes `rollout resume` safe instead.
      backoffLimit: 0,
      activeDeadlineSeconds,
      ttlSecondsAfterFinished: DETACHED_JOB_TTL_SECONDS,
      template: {
        metadata: {labels},
        spec: runnerPodSpec({
          image: spec.runnerImage,
          args,
          serviceAccount: DRIVER_SERVICE_ACCOUNT,
          configMap: n.configMap,
          credentialsSecret: n.credentials,
          env: [{name: RUN_ID_ENV, value: runId}, ...config.env],
        }),
      },
    },
  }
  const task = ctx.out.task(`Creating Job ${namespace}/${n.job} (suspended) to drive the rollout in the cluster`)
  let created: Obj
  try {
    created = await kube.http.request<Obj>('POST', JOB_PATH(namespace), {
      body: job,
      query: {fieldManager: FIELD_MANAGER},
    })
  } catch (error) {
    task.fail()
    throw kubeError(error, `creating Job ${namespace}/${n.job}`, kube.server)
  }
  const uid = created.metadata.uid!
  const owner = [{apiVersion: 'batch/v1', kind: 'Job', name: n.job, uid}]
  // Owned by the Job: deleting it (by hand, or ttlSecondsAfterFinished) removes them; the ServiceAccount stays for the namespace's next one.
  const own = <T extends {metadata: object}>(o: T): T => ({...o, metadata: {...o.metadata, ownerReferences: owner}})
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: {name: n.role, namespace, labels},
    rules: driverRules(states, autoscalers.hpas, autoscalers.scaledObjects),
  }
  const binding = bindingObject({
    name: n.role,
    namespace,
    labels,
    roleKind: 'Role',
    role: n.role,
    serviceAccount: {name: DRIVER_SERVICE_ACCOUNT, namespace},
  })
  const dependents = [own(role), own(binding), ...config.objects.map(own)]
  const remove = async () => {
    for (const o of [job, ...dependents])
      await kube.http
        .request('DELETE', objectPath(o as never), {body: {propagationPolicy: 'Background'}})
        .catch(() => undefined)
  }
  try {
    await applyJobObjects(
      kube.http,
      [
        serviceAccountObject(DRIVER_SERVICE_ACCOUNT, namespace, {
          'app.kubernetes.io/managed-by': 'retailops',
          'app.kubernetes.io/component': COMPONENT,
        }),
        ...dependents,
      ],
      'retailops',
    )
  } catch (error) {
    task.fail()
    await remove()
    throw kubeError(error, `creating the objects of Job ${namespace}/${n.job}`, kube.server)
  }
  task.succeed(
    `Job ${namespace}/${n.job} created (suspended), runner ${spec.runnerImage}, ServiceAccount ${DRIVER_SERVICE_ACCOUNT}`,
  )
  return {
    namespace,
    name: n.job,
    uid,
    serviceAccount: DRIVER_SERVICE_ACCOUNT,
    role: n.role,
    configMap: n.configMap,
    credentialsSecretName: n.credentials,
    runnerImage: spec.runnerImage,
    runId,
    args,
    activeDeadlineSeconds,
    follow: `retailops rollout status ${states.map((s) => s.service).join(' ')} --watch${spec.environment ? ` --environment ${spec.environment}` : ''}`,
    lease: () => {
      const now = new Date().toISOString()
      return {
        holder: `job/${namespace}/${n.job}`,
        id: runId,
        host: `job/${n.job}`,
        pid: 0,
        ci: ciJob(),
        acquiredAt: now,
        renewedAt: now,
        ttlSeconds: DETACH_START_GRACE_SECONDS,
        job: {namespace, name: n.job, uid, pending: true, handedOverAt: now, by: ciJob() ?? HOLDER},
      }
    },
    start: async () => {
      try {
        await kube.mergePatch(JOB_PATH(namespace), n.job, {spec: {suspend: false}})
      } catch (error) {
        throw kubeError(error, `starting Job ${namespace}/${n.job}`, kube.server)
      }
    },
    remove,
  }
}

export type JobPhase = 'suspended' | 'pending' | 'running' | 'succeeded' | 'failed' | 'deleted' | 'unknown'

/** The Job a detached rollout's lease names, as the cluster sees it now. */
export interface JobDriver {
  namespace: string
  name: string
  phase: JobPhase
  /** Why it failed (DeadlineExceeded, BackoffLimitExceeded, …) or could not be read. */
  reason?: string
  /** The Job is gone or failed and nothing renewed the lease since: the rollout has no driver. */
  gone: boolean
}

/** Reads the Job behind a lease (none for a CLI's lease). */
export async function jobDriver(kube: KubeObjects, lease: Lease | undefined): Promise<JobDriver | undefined> {
  const ref = lease?.job
  if (!lease || !ref) return undefined
  let job: Job | undefined
  try {
    job = await kube.get(JOB_PATH(ref.namespace), ref.name)
  } catch (error) {
    // No permission to read Jobs (a status-only identity): say so, decide by the lease alone.
    return {
      namespace: ref.namespace,
      name: ref.name,
      phase: 'unknown',
      reason: (error as Error).message,
      gone: !leaseAlive(lease),
    }
  }
  if (job && ref.uid && job.metadata.uid !== ref.uid) job = undefined
  if (!job)
    return {
      namespace: ref.namespace,
      name: ref.name,
      phase: 'deleted',
      gone: Boolean(ref.pending) || !leaseAlive(lease),
    }
  const conditions = (job.status?.conditions ?? []) as {
    type: string
    status: string
    reason?: string
    message?: string
    lastTransitionTime?: string
  }[]
  const failed = conditions.find((c) => (c.type === 'Failed' || c.type === 'FailureTarget') && c.status === 'True')
  if (failed) {
    const at = Date.parse(failed.lastTransitionTime ?? '') || Date.now()
    return {
      namespace: ref.namespace,
      name: ref.name,
      phase: 'failed',
      reason: `${failed.reason ?? 'Failed'}${failed.message ? `: ${failed.message}` : ''}`,
      gone: Boolean(ref.pending) || !leaseAlive(lease) || Date.parse(lease.renewedAt) <= at,
    }
  }
  const succeeded = conditions.some((c) => c.type === 'Complete' && c.status === 'True')
  const phase: JobPhase = job.spec?.suspend
    ? 'suspended'
    : succeeded
      ? 'succeeded'
      : (job.status?.active ?? 0) > 0
        ? ref.pending
          ? 'pending'
          : 'running'
        : 'pending'
  return {namespace: ref.namespace, name: ref.name, phase, gone: !leaseAlive(lease)}
}

/** The Job could not be started after the handover: the lease is given back, the Job removed. */
export class DetachFailed extends RetailOpsError {
  constructor(cause: RetailOpsError, job: string, services: string[]) {
    super(
      cause.exit,
      `${cause.message} The rollout of ${services.join(', ')} is set up but not driven: its lease was given back, Job ${job} was removed.`,
      {
        nextSteps: [
          ...cause.nextSteps,
          `\`retailops rollout resume ${services[0]}\` drives it from here (or \`retailops rollout abort ${services[0]}\` rolls it back).`,
        ],
        details: cause.details,
      },
    )
  }
}
