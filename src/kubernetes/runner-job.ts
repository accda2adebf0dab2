import {CREDENTIALS_ENV} from '../config/vocabulary.js'
import {isNotFound, kubeError} from './client.js'
import type {KubeHttp} from './http.js'
import {collectionPath, objectPath} from './resources.js'
import type {Task} from '../ui/output.js'

/**
 * The pieces every job retailops runs in the cluster shares (scheduled pre-warms, scheduled
 * drills, detached rollouts): the runner's pod, Pod Security `restricted`, with retailops.yaml
 * mounted from a ConfigMap whose inline credentials are split into a Secret (never in the
 * ConfigMap or the pod spec), a CronJob around it, its ServiceAccount and bindings, and apply and
 * delete of all of them. What a job may do (its Role and ClusterRole rules) belongs to the concept
 * that knows what the job does.
 */

/** The uid/gid the runner runs as: any non-root id works, the image's files are root-owned and world-readable. */
export const RUNNER_UID = 10_001
export const RUNNER_CONFIG_DIR = '/etc/retailops'
export const RUNNER_CREDENTIALS_DIR = '/etc/retailops-credentials'

export interface KubeRef {
  apiVersion: string
  kind: string
  metadata: {name: string; namespace?: string}
}

/** Pod Security `restricted`: non-root, RuntimeDefault seccomp, no privilege escalation, no capabilities. */
export function restrictedPodSecurity(uid: number) {
  return {
    pod: {runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, seccompProfile: {type: 'RuntimeDefault'}},
    container: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: uid,
      capabilities: {drop: ['ALL']},
      seccompProfile: {type: 'RuntimeDefault'},
    },
  }
}

export interface EnvVar {
  name: string
  value?: string
  valueFrom?: {secretKeyRef?: {name: string; key: string; optional?: boolean}; fieldRef?: {fieldPath: string}}
}

export interface RunnerPodOptions {
  serviceAccount: string
  /** REGISTRY/REPOSITORY@sha256:…, verified before the pod spec is written. */
  image: string
  /** The retailops command line, without the program name. */
  args: string[]
  configMap: string
  credentialsSecret: string
  /** Further variables (credentials only as secretKeyRef, never as values). */
  env?: EnvVar[]
  resources?: {requests: Record<string, string>; limits: Record<string, string>}
  /** sizeLimit of /tmp, the only writable place (default 256Mi). */
  tmpSize?: string
}

/** The runner's pod: retailops.yaml and its credentials mounted read-only, /tmp the only writable place. */
export function runnerPodSpec(o: RunnerPodOptions) {
  const security = restrictedPodSecurity(RUNNER_UID)
  return {
    serviceAccountName: o.serviceAccount,
    // The job talks to the API server as that ServiceAccount (in-cluster configuration).
    automountServiceAccountToken: true,
    enableServiceLinks: false,
    restartPolicy: 'Never',
    securityContext: security.pod,
    containers: [
      {
        name: 'retailops',
        image: o.image,
        imagePullPolicy: 'IfNotPresent',
        args: o.args,
        env: [
          {name: 'RETAILOPS_CONFIG', value: `${RUNNER_CONFIG_DIR}/retailops.yaml`},
          {name: CREDENTIALS_ENV, value: `${RUNNER_CREDENTIALS_DIR}/credentials.json`},
          {name: 'HOME', value: '/tmp'},
          {name: 'CI', value: 'true'},
          {name: 'NO_COLOR', value: '1'},
          ...(o.env ?? []),
        ],
        volumeMounts: [
          {name: 'config', mountPath: RUNNER_CONFIG_DIR, readOnly: true},
          {name: 'credentials', mountPath: RUNNER_CREDENTIALS_DIR, readOnly: true},
          {name: 'tmp', mountPath: '/tmp'},
        ],
        resources: o.resources ?? {requests: {cpu: '100m', memory: '256Mi'}, limits: {cpu: '1', memory: '512Mi'}},
        securityContext: security.container,
      },
    ],
    volumes: [
      {name: 'config', configMap: {name: o.configMap}},
      // Readable by the runner's group only (fsGroup), never world-readable.
      {name: 'credentials', secret: {secretName: o.credentialsSecret, defaultMode: 0o440}},
      {name: 'tmp', emptyDir: {sizeLimit: o.tmpSize ?? '256Mi'}},
    ],
  }
}

export interface RunnerCronJobOptions {
  name: string
  namespace: string
  labels: Record<string, string>
  annotations?: Record<string, string>
  schedule: string
  timeZone: string
  /** A run missed by more than this (controller down, Forbid while one still runs) is skipped. */
  startingDeadlineSeconds: number
  /** The Job is stopped after this long. */
  activeDeadlineSeconds?: number
  backoffLimit?: number
  successfulJobsHistoryLimit?: number
  failedJobsHistoryLimit?: number
  ttlSecondsAfterFinished?: number
  pod: ReturnType<typeof runnerPodSpec>
}

/** A CronJob that never runs two at once (concurrencyPolicy Forbid). */
export function runnerCronJob(o: RunnerCronJobOptions) {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels: o.labels,
      ...(o.annotations ? {annotations: o.annotations} : {}),
    },
    spec: {
      schedule: o.schedule,
      timeZone: o.timeZone,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: o.startingDeadlineSeconds,
      successfulJobsHistoryLimit: o.successfulJobsHistoryLimit ?? 1,
      failedJobsHistoryLimit: o.failedJobsHistoryLimit ?? 3,
      jobTemplate: {
        metadata: {labels: o.labels},
        spec: {
          backoffLimit: o.backoffLimit ?? 2,
          ...(o.activeDeadlineSeconds ? {activeDeadlineSeconds: o.activeDeadlineSeconds} : {}),
          ttlSecondsAfterFinished: o.ttlSecondsAfterFinished ?? 7 * 86_400,
          template: {metadata: {labels: o.labels}, spec: o.pod},
        },
      },
    },
  }
}

/** The ConfigMap key (and file next to retailops.yaml in the pod) of the public key a job verifies signatures with. */
export const RUNNER_PUBLIC_KEY_FILE = 'signing.pub'
/** @kubernetes/client-node's name for in-cluster credentials: jobs pass `--context inClusterContext`. */
export const IN_CLUSTER_CONTEXT = 'inClusterContext'

export function serviceAccountObject(name: string, namespace: string, labels: Record<string, string>) {
  // No token Secret and no automount by default: the runner's pod asks for its projected token itself.
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {name, namespace, labels},
    automountServiceAccountToken: false,
  }
}

/** A RoleBinding (namespace given) or ClusterRoleBinding of a Role or ClusterRole to one ServiceAccount. */
export function bindingObject(o: {
  name: string
  namespace?: string
  labels: Record<string, string>
  roleKind: 'Role' | 'ClusterRole'
  role: string
  serviceAccount: {name: string; namespace: string}
}) {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: o.namespace ? 'RoleBinding' : 'ClusterRoleBinding',
    metadata: {name: o.name, ...(o.namespace ? {namespace: o.namespace} : {}), labels: o.labels},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: o.roleKind, name: o.role},
    subjects: [{kind: 'ServiceAccount', name: o.serviceAccount.name, namespace: o.serviceAccount.namespace}],
  }
}

/** Server-side applies each object in order with the given field manager; answers Kind/name of each. */
export async function applyJobObjects(http: KubeHttp, objects: KubeRef[], fieldManager: string): Promise<string[]> {
  const applied: string[] = []
  for (const obj of objects) {
    try {
      await http.request('PATCH', objectPath(obj), {
        body: obj,
        contentType: 'application/apply-patch+yaml',
        query: {fieldManager, force: true},
      })
    } catch (error) {
      throw kubeError(error, `creating ${obj.kind} ${obj.metadata.name}`)
    }
    applied.push(`${obj.kind}/${obj.metadata.name}`)
  }
  return applied
}

/**
 * Applies a schedule's objects under its task line, as every `--schedule` does: the task fails
 * with the error, and the connection (made for this one apply) is closed either way.
 */
export async function applyScheduleObjects(
  http: KubeHttp,
  objects: KubeRef[],
  fieldManager: string,
  task: Task,
): Promise<string[]> {
  try {
    return await applyJobObjects(http, objects, fieldManager)
  } catch (error) {
    task.fail()
    throw error
  } finally {
    http.close()
  }
}

/**
 * Deletes each object that exists; answers Kind/name of those deleted. CronJobs and Jobs orphan
 * their running Jobs and pods, so a job may remove its own schedule.
 */
export async function deleteJobObjects(http: KubeHttp, targets: KubeRef[]): Promise<string[]> {
  const deleted: string[] = []
  for (const t of targets) {
    try {
      await http.request('DELETE', objectPath(t), {
        query: {propagationPolicy: t.kind === 'CronJob' ? 'Orphan' : 'Background'},
      })
      deleted.push(`${t.kind}/${t.metadata.name}`)
    } catch (error) {
      if (!isNotFound(error)) throw kubeError(error, `deleting ${t.kind} ${t.metadata.name}`)
    }
  }
  return deleted
}

/** Whether any RoleBinding in the namespace still carries the label (another schedule still uses its ServiceAccount). */
export async function bindingsLeft(http: KubeHttp, namespace: string, labelSelector: string): Promise<boolean> {
  const others = await http
    .request<{items: unknown[]}>('GET', collectionPath('RoleBinding', namespace), {query: {labelSelector}})
    .catch(() => ({items: [{}]}))
  return others.items.length > 0
}

/** "M H D Mon *" for the minute of t in UTC: a one-shot schedule (it would repeat a year later). */
export function cronForMinute(t: Date): string {
  return `${t.getUTCMinutes()} ${t.getUTCHours()} ${t.getUTCDate()} ${t.getUTCMonth() + 1} *`
}
