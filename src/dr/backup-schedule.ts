import {readFile} from 'node:fs/promises'

import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {UsageError} from '../errors/index.js'
import {kubeHttp} from '../kubernetes/client.js'
import {checkTimeZone, nextRuns, parseCron} from '../kubernetes/cron.js'
import {FIELD_MANAGER_DR, LABEL, MANAGED_BY} from '../kubernetes/labels.js'
import {
  applyScheduleObjects,
  bindingObject,
  deleteJobObjects,
  type EnvVar,
  IN_CLUSTER_CONTEXT,
  type KubeRef,
  runnerCronJob,
  runnerPodSpec,
  serviceAccountObject,
} from '../kubernetes/runner-job.js'
import {runnerConfigObjects} from '../kubernetes/runner-config.js'
import {parseLocation} from '../objectstore/location.js'
import {verifiedRunnerImage} from '../runner/resolve.js'
import type {RunContext} from '../ui/context.js'
import {BACKUP_KINDS, backupLocationOf} from './backup.js'
import {startingDeadlineSeconds} from './schedule.js'

/**
 * `retailops backup --schedule CRON`: a CronJob in the environment's namespace that runs
 * `retailops backup --to <location>` with the runner image (by digest, verified before anything is
 * created), Pod Security restricted, as a ServiceAccount that may only get and list the kinds a
 * backup reads, in that namespace. The object store's credentials and endpoint come from a Secret
 * by secretKeyRef, never the ConfigMap or the CronJob; a directory location is refused (it would
 * be gone with the pod).
 */

const COMPONENT = 'backup-schedule'
/** The variables the backup's object store client reads, passed to the job from a Secret when set here. */
export const BACKUP_JOB_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ENDPOINT_URL_S3',
  'RETAILOPS_S3_ENDPOINT',
]

export function backupScheduleNames() {
  return {
    cronJob: 'retailops-backup',
    serviceAccount: 'retailops-backup',
    role: 'retailops-backup',
    configMap: 'retailops-backup-config',
    credentials: 'retailops-backup-credentials',
  }
}

/** Get and list of what a backup reads, in its namespace only. */
export function backupRbac(namespace: string, labels: Record<string, string>): KubeRef[] {
  const n = backupScheduleNames()
  const byGroup = new Map<string, string[]>()
  for (const k of BACKUP_KINDS) {
    const group = k.apiVersion.includes('/') ? k.apiVersion.split('/')[0] : ''
    byGroup.set(group, [...(byGroup.get(group) ?? []), k.plural])
  }
  return [
    serviceAccountObject(n.serviceAccount, namespace, labels),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: {name: n.role, namespace, labels},
      rules: [...byGroup].map(([group, resources]) => ({
        apiGroups: [group],
        resources: [...new Set(resources)].sort(),
        verbs: ['get', 'list'],
      })),
    } as KubeRef,
    bindingObject({
      name: n.role,
      namespace,
      labels,
      roleKind: 'Role',
      role: n.role,
      serviceAccount: {name: n.serviceAccount, namespace},
    }),
  ]
}

export interface BackupScheduleOptions {
  project: LoadedConfig
  environment: ResolvedEnvironment
  to?: string
  schedule: string
  timeZone?: string
  runnerImage?: string
  env?: NodeJS.ProcessEnv
  now?: Date
}

export interface BackupScheduleResult {
  cronJob: string
  namespace: string
  schedule: string
  timeZone: string
  nextRuns: string[]
  command: string[]
  location: string
  runnerImage: string
  serviceAccount: string
  /** Variables passed to the job from the Secret (names only). */
  variables: string[]
  objects: string[]
}

/** Everything checked before anything is written: the location, the schedule, the time zone, then the runner image (verified). */
export async function scheduleBackup(options: BackupScheduleOptions, ctx: RunContext): Promise<BackupScheduleResult> {
  const {project, environment} = options
  const env = options.env ?? process.env
  const location = backupLocationOf(project, options.to)
  if (parseLocation(location, project.dir).kind === 'directory')
    throw new UsageError(
      `--schedule needs an object store location: a directory (${location}) would be written inside the job's pod and lost with it.`,
      {nextSteps: ['Give --to s3://bucket/prefix (or backup.location).']},
    )
  const timeZone = checkTimeZone(options.timeZone ?? 'Etc/UTC')
  const cron = parseCron(options.schedule)
  const now = options.now ?? new Date()
  const runs = nextRuns(cron, timeZone, now, 3)
  if (runs.length === 0) throw new UsageError(`--schedule "${options.schedule}" never runs in the next five years.`)
  const runner = await verifiedRunnerImage(project, options.runnerImage, ctx)
  const namespace = environment.namespace
  const n = backupScheduleNames()
  const labels = {[LABEL.managedBy]: MANAGED_BY, [LABEL.component]: COMPONENT}
  const variables = BACKUP_JOB_VARIABLES.filter((v) => env[v])
  if (!variables.includes('AWS_ACCESS_KEY_ID'))
    ctx.out.warn(
      `No AWS_ACCESS_KEY_ID here: the backup job reads ${location} with the AWS SDK's default chain in its pod (give the ServiceAccount ${n.serviceAccount} an identity: IRSA, EKS Pod Identity, or workload identity).`,
    )
  const config = runnerConfigObjects({
    namespace,
    labels,
    configMap: n.configMap,
    credentialsSecret: n.credentials,
    configText: await readFile(project.file, 'utf8'),
    secretData: Object.fromEntries(variables.map((v) => [v, env[v]!])),
  })
  const args = [
    'backup',
    '--to',
    location,
    '--environment',
    environment.name,
    '--namespace',
    namespace,
    '--context',
    IN_CLUSTER_CONTEXT,
    '--yes',
  ]
  const jobEnv: EnvVar[] = variables.map((v) => ({name: v, valueFrom: {secretKeyRef: {name: n.credentials, key: v}}}))
  const objects: KubeRef[] = [
    ...backupRbac(namespace, labels),
    ...config.objects,
    runnerCronJob({
      name: n.cronJob,
      namespace,
      labels,
      schedule: options.schedule,
      timeZone,
      startingDeadlineSeconds: startingDeadlineSeconds(runs),
      activeDeadlineSeconds: 1800,
      backoffLimit: 2,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      pod: runnerPodSpec({
        serviceAccount: n.serviceAccount,
        image: runner.image,
        args,
        configMap: n.configMap,
        credentialsSecret: n.credentials,
        env: jobEnv,
      }),
    }),
  ]
  const task = ctx.out.task(`Scheduling backups of ${namespace} (${options.schedule}, ${timeZone}) to ${location}`)
  const http = kubeHttp({context: environment.context, kubeconfig: environment.kubeconfig})
  const applied = await applyScheduleObjects(http, objects, FIELD_MANAGER_DR, task)
  task.succeed(`Scheduled CronJob ${n.cronJob} in ${namespace}`)
  return {
    cronJob: n.cronJob,
    namespace,
    schedule: options.schedule,
    timeZone,
    nextRuns: runs.map((d) => d.toISOString()),
    command: ['retailops', ...args],
    location,
    runnerImage: runner.image,
    serviceAccount: n.serviceAccount,
    variables,
    objects: applied,
  }
}

/** Deletes the backup schedule's CronJob, config, credentials and permissions (never a backup). */
export async function unscheduleBackup(environment: ResolvedEnvironment): Promise<string[]> {
  const n = backupScheduleNames()
  const ns = environment.namespace
  const http = kubeHttp({context: environment.context, kubeconfig: environment.kubeconfig})
  try {
    return await deleteJobObjects(http, [
      {apiVersion: 'batch/v1', kind: 'CronJob', metadata: {name: n.cronJob, namespace: ns}},
      {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: n.configMap, namespace: ns}},
      {apiVersion: 'v1', kind: 'Secret', metadata: {name: n.credentials, namespace: ns}},
      {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: n.role, namespace: ns}},
      {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: n.role, namespace: ns}},
      {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: n.serviceAccount, namespace: ns}},
    ])
  } finally {
    http.close()
  }
}
