import {readFile} from 'node:fs/promises'

import {formatDuration, parseDuration} from '../config/duration.js'
import type {CampaignConfig} from '../config/schema.js'
import {RefusedError} from '../errors/index.js'
import type {KubeHttp} from '../kubernetes/http.js'
import {FIELD_MANAGER_PREWARM} from '../kubernetes/labels.js'
import {
  applyJobObjects,
  bindingObject,
  bindingsLeft,
  cronForMinute,
  deleteJobObjects,
  type EnvVar,
  IN_CLUSTER_CONTEXT,
  runnerCronJob,
  runnerPodSpec,
  serviceAccountObject,
} from '../kubernetes/runner-job.js'
import {runnerConfigObjects} from '../kubernetes/runner-config.js'
import type {RunContext} from '../ui/context.js'
import {priorityClassName} from './headroom.js'
import {CAMPAIGN_LABEL, MANAGED_BY, stateName} from './state.js'

/**
 * --schedule: CronJobs that run the pre-warm before the campaign and the restore after it, each a
 * one-shot cron expression for that minute (UTC), with the runner image by digest (verified before
 * anything is created), Pod Security `restricted`, and only the permissions the pre-warm needs:
 * a per-campaign Role in the namespace (ConfigMap, CronJob and Secret writes limited to the
 * campaign's own by resourceNames) and a per-campaign ClusterRole with the cluster-scoped reads the
 * plan needs (nodes, pods) and its one PriorityClass by resourceNames. retailops.yaml is mounted
 * from a ConfigMap with its inline credentials replaced by placeholders; the credentials come from
 * a Secret, put back when the job loads the file. The restore job removes the CronJobs, the
 * ConfigMap and the Secret afterwards (--unschedule), so the yearly repeat of the cron expression
 * never fires. The RBAC stays (a job cannot delete what authorises it): `prewarm --unschedule`
 * from a workstation, or removeRunnerRbac(), deletes it.
 */

export interface ScheduleOptions {
  http: KubeHttp
  namespace: string
  campaign: CampaignConfig
  environment: string
  /** Path of retailops.yaml, mounted into the jobs (without its inline credentials). */
  configFile: string
  /** REGISTRY/REPOSITORY@sha256:…, already verified (verifiedRunnerImage). */
  runnerImage: string
  /** Flags passed through to the scheduled pre-warm (e.g. --no-warm, --raise-max). */
  prewarmFlags: string[]
  now: Date
  /** Minutes after the end the restore runs. */
  restoreDelayMs?: number
}

export interface ScheduledJob {
  name: string
  schedule: string
  timeZone: string
  runsAt: string
  command: string[]
}

export interface ScheduleResult {
  namespace: string
  prewarm: ScheduledJob
  restore: ScheduledJob
  serviceAccount: string
  configMap: string
  /** The Secret holding the inline credentials taken out of the ConfigMap's retailops.yaml. */
  credentialsSecret: string
  /** Key paths of those credentials (never their values). */
  credentials: string[]
  runnerImage: string
  objects: string[]
}

/** "M H D Mon *" for the minute of t in UTC: a one-shot schedule (it would repeat a year later). */
export const cronFor = cronForMinute

export function scheduleNames(namespace: string, campaign: string) {
  const short = (s: string, n: number) => s.slice(0, n).replace(/-+$/, '')
  return {
    prewarm: short(`retailops-prewarm-${campaign}`, 52),
    restore: short(`retailops-restore-${campaign}`, 52),
    // The runner's identity is per namespace; its permissions are per campaign.
    serviceAccount: 'retailops-prewarm',
    role: short(`retailops-prewarm-${campaign}`, 253),
    clusterRole: short(`retailops-prewarm-${namespace}-${campaign}`, 253),
    configMap: short(`retailops-prewarm-${campaign}-config`, 253),
    credentials: short(`retailops-prewarm-${campaign}-credentials`, 253),
  }
}

/** When the two jobs run; refuses times that have passed. */
export function scheduleTimes(
  campaign: CampaignConfig,
  now: Date,
  restoreDelayMs = 60_000,
): {prewarmAt: Date; restoreAt: Date} {
  const start = Date.parse(campaign.start)
  const end = Date.parse(campaign.end)
  if (end <= now.getTime())
    throw new RefusedError(`Campaign "${campaign.name}" ended at ${campaign.end}; there is nothing to schedule.`)
  const lead = parseDuration(campaign.prewarmLead)!
  // Round down to the minute: cron has no seconds.
  const prewarmAt = new Date(Math.floor((start - lead) / 60_000) * 60_000)
  if (prewarmAt.getTime() <= now.getTime() + 60_000) {
    throw new RefusedError(
      `The pre-warm of "${campaign.name}" was due at ${prewarmAt.toISOString()} (${formatDuration(lead)} before the start); it is too late to schedule it.`,
      {
        nextSteps: [
          `Run \`retailops prewarm --campaign ${campaign.name}\` now, and \`retailops prewarm restore --campaign ${campaign.name}\` after ${campaign.end}.`,
          'Or shorten campaigns[].prewarmLead.',
        ],
      },
    )
  }
  const restoreAt = new Date(Math.ceil((end + restoreDelayMs) / 60_000) * 60_000)
  return {prewarmAt, restoreAt}
}

function cronJob(
  options: ScheduleOptions,
  name: string,
  at: Date,
  args: string[],
  deadlineSeconds: number,
  env: EnvVar[],
) {
  const n = scheduleNames(options.namespace, options.campaign.name)
  const labels = {
    ...MANAGED_BY,
    [CAMPAIGN_LABEL]: options.campaign.name,
    'app.kubernetes.io/component': 'prewarm-schedule',
  }
  return runnerCronJob({
    name,
    namespace: options.namespace,
    labels,
    annotations: {'retailops.io/runs-at': at.toISOString()},
    schedule: cronFor(at),
    timeZone: 'Etc/UTC',
    startingDeadlineSeconds: deadlineSeconds,
    pod: runnerPodSpec({
      serviceAccount: n.serviceAccount,
      image: options.runnerImage,
      args,
      configMap: n.configMap,
      credentialsSecret: n.credentials,
      env,
    }),
  })
}

/**
 * What the scheduled pre-warm and restore do, and nothing more. Namespaced: read the workloads,
 * patch HPAs and Deployments, create and delete the headroom placeholder Deployments, write only
 * the campaign's state ConfigMap (create cannot be limited by name; every other write is), and
 * delete only the campaign's own CronJobs, config and credentials. Cluster-scoped, unavoidable:
 * list nodes and pods (free capacity per node pool), and the campaign's one PriorityClass by name.
 */
export function rbac(namespace: string, campaign: string) {
  const n = scheduleNames(namespace, campaign)
  const labels = {...MANAGED_BY, [CAMPAIGN_LABEL]: campaign, 'app.kubernetes.io/component': 'prewarm-runner'}
  const ns = namespace
  const serviceAccount = {name: n.serviceAccount, namespace: ns}
  return [
    serviceAccountObject(n.serviceAccount, ns, {...MANAGED_BY, 'app.kubernetes.io/component': 'prewarm-runner'}),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: {name: n.role, namespace: ns, labels},
      rules: [
        {apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['get', 'list', 'patch']},
        // KEDA's ScaledObjects are raised and restored like HPAs (a cluster without KEDA ignores the rule).
        {apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['get', 'list', 'patch']},
        {apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'patch', 'create', 'delete']},
        {apiGroups: [''], resources: ['configmaps'], verbs: ['create']},
        {
          apiGroups: [''],
          resources: ['configmaps'],
          verbs: ['get', 'update', 'patch', 'delete'],
          resourceNames: [stateName(campaign), n.configMap],
        },
        {apiGroups: [''], resources: ['secrets'], verbs: ['delete'], resourceNames: [n.credentials]},
        {apiGroups: [''], resources: ['pods', 'events', 'resourcequotas'], verbs: ['get', 'list']},
        {
          apiGroups: ['batch'],
          resources: ['cronjobs'],
          verbs: ['get', 'delete'],
          resourceNames: [n.prewarm, n.restore],
        },
      ],
    },
    bindingObject({name: n.role, namespace: ns, labels, roleKind: 'Role', role: n.role, serviceAccount}),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {name: n.clusterRole, labels},
      rules: [
        {apiGroups: [''], resources: ['nodes', 'pods'], verbs: ['list']},
        {
          apiGroups: ['scheduling.k8s.io'],
          resources: ['priorityclasses'],
          verbs: ['get', 'create', 'patch', 'delete'],
          resourceNames: [priorityClassName(namespace, campaign)],
        },
      ],
    },
    bindingObject({name: n.clusterRole, labels, roleKind: 'ClusterRole', role: n.clusterRole, serviceAccount}),
  ]
}

/** The objects --schedule creates, in apply order. */
export async function scheduleObjects(options: ScheduleOptions) {
  const {prewarmAt, restoreAt} = scheduleTimes(options.campaign, options.now, options.restoreDelayMs)
  const n = scheduleNames(options.namespace, options.campaign.name)
  const common = [
    '--campaign',
    options.campaign.name,
    '--environment',
    options.environment,
    '--namespace',
    options.namespace,
    '--context',
    IN_CLUSTER_CONTEXT,
    '--yes',
  ]
  const prewarmArgs = ['prewarm', ...common, '--allow-below-current', ...options.prewarmFlags]
  const restoreArgs = ['prewarm', 'restore', ...common, '--unschedule']
  const lead = parseDuration(options.campaign.prewarmLead)!
  const labels = {
    ...MANAGED_BY,
    [CAMPAIGN_LABEL]: options.campaign.name,
    'app.kubernetes.io/component': 'prewarm-schedule',
  }
  const config = runnerConfigObjects({
    namespace: options.namespace,
    labels,
    configMap: n.configMap,
    credentialsSecret: n.credentials,
    configText: await readFile(options.configFile, 'utf8'),
  })
  return {
    prewarmAt,
    restoreAt,
    prewarmArgs,
    restoreArgs,
    credentials: config.credentials,
    objects: [
      ...rbac(options.namespace, options.campaign.name),
      ...config.objects,
      cronJob(options, n.prewarm, prewarmAt, prewarmArgs, Math.max(300, Math.round(lead / 1000)), config.env),
      cronJob(options, n.restore, restoreAt, restoreArgs, 6 * 3600, config.env),
    ],
  }
}

export async function scheduleCampaign(options: ScheduleOptions, ctx: RunContext): Promise<ScheduleResult> {
  const built = await scheduleObjects(options)
  const n = scheduleNames(options.namespace, options.campaign.name)
  const task = ctx.out.task(
    `Scheduling the pre-warm at ${built.prewarmAt.toISOString()} and the restore at ${built.restoreAt.toISOString()}`,
  )
  const applied = await applyJobObjects(options.http, built.objects, FIELD_MANAGER_PREWARM).catch((error: unknown) => {
    task.fail()
    throw error
  })
  task.succeed(
    `Scheduled: CronJob ${n.prewarm} (${cronFor(built.prewarmAt)} UTC) and CronJob ${n.restore} (${cronFor(built.restoreAt)} UTC)`,
  )
  const job = (name: string, at: Date, args: string[]): ScheduledJob => ({
    name,
    schedule: cronFor(at),
    timeZone: 'Etc/UTC',
    runsAt: at.toISOString(),
    command: ['retailops', ...args],
  })
  return {
    namespace: options.namespace,
    prewarm: job(n.prewarm, built.prewarmAt, built.prewarmArgs),
    restore: job(n.restore, built.restoreAt, built.restoreArgs),
    serviceAccount: n.serviceAccount,
    configMap: n.configMap,
    credentialsSecret: n.credentials,
    credentials: built.credentials,
    runnerImage: options.runnerImage,
    objects: applied,
  }
}

/** Deletes the campaign's CronJobs, config and credentials (CronJobs orphan their running Jobs, so a job can remove its own). */
export async function unscheduleCampaign(http: KubeHttp, namespace: string, campaign: string): Promise<string[]> {
  const n = scheduleNames(namespace, campaign)
  return deleteJobObjects(http, [
    {apiVersion: 'batch/v1', kind: 'CronJob', metadata: {name: n.prewarm, namespace}},
    {apiVersion: 'batch/v1', kind: 'CronJob', metadata: {name: n.restore, namespace}},
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: n.configMap, namespace}},
    {apiVersion: 'v1', kind: 'Secret', metadata: {name: n.credentials, namespace}},
  ])
}

/** Deletes the campaign's runner permissions (ClusterRole, Role and their bindings); the namespace's ServiceAccount goes with the last campaign's. */
export async function removeRunnerRbac(http: KubeHttp, namespace: string, campaign: string): Promise<string[]> {
  const n = scheduleNames(namespace, campaign)
  const deleted = await deleteJobObjects(http, [
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: {name: n.clusterRole}},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: {name: n.clusterRole}},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: n.role, namespace}},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: n.role, namespace}},
  ])
  if (!(await bindingsLeft(http, namespace, 'app.kubernetes.io/component=prewarm-runner')))
    deleted.push(
      ...(await deleteJobObjects(http, [
        {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: n.serviceAccount, namespace}},
      ])),
    )
  return deleted
}
