import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {formatDuration, parseDuration} from '../config/duration.js'
import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {RefusedError, RetailOpsError, UsageError} from '../errors/index.js'
import {kubeClients, kubeError} from '../kubernetes/client.js'
import {checkTimeZone, nextRuns, parseCron} from '../kubernetes/cron.js'
import {KubeHttp} from '../kubernetes/http.js'
import {
  applyScheduleObjects,
  bindingObject,
  bindingsLeft,
  deleteJobObjects,
  type EnvVar,
  IN_CLUSTER_CONTEXT,
  type KubeRef,
  runnerCronJob,
  runnerPodSpec,
  serviceAccountObject,
} from '../kubernetes/runner-job.js'
import {runnerConfigObjects} from '../kubernetes/runner-config.js'
import {verifiedRunnerImage} from '../runner/resolve.js'
import type {RunContext} from '../ui/context.js'
import {DRILLS_DIR_ENV} from './history.js'
import {DRILL_PREFIX} from './naming.js'
import {type DrillFilters, planDrill} from './plan.js'
import {PROVIDERS} from './providers/index.js'
import {SNAPSHOT_KINDS} from './providers/kubernetes.js'
import {WORK_DIR_ENV} from './workdir.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'

/**
 * `dr drill --schedule CRON`: a CronJob that runs the same drill (same selection and flags) in the
 * cluster with the runner image by digest (verified first), Pod Security `restricted`, and a
 * ServiceAccount allowed exactly what that drill does:
 *  - in the environment's namespace: create ConfigMaps (the drill's record, which `dr history`
 *    reads from anywhere) and, with the recoverability checks, list Deployments and get the
 *    Secrets and ConfigMaps they reference; for a kubernetes datastore, list the kinds its
 *    snapshot holds in its source namespace;
 *  - for a kubernetes datastore, cluster-wide: create, get, list and delete Namespaces, create
 *    RoleBindings and bind one ClusterRole (the restore role), which the drill binds to itself
 *    inside the drill namespace it created, so what it may write (the restored objects) it may
 *    write there only. A ValidatingAdmissionPolicy confines its Namespace and RoleBinding writes
 *    to drill namespaces (retailops-drill-…): RBAC cannot name objects that do not exist yet.
 * Database and backup credentials (the variables the datastores name, registry credentials) and
 * retailops.yaml's inline credentials go into a Secret, never into the ConfigMap or the CronJob.
 */

export const SCHEDULE_COMPONENT = 'dr-drill-schedule'
export const RUNNER_COMPONENT = 'dr-drill-runner'
const SERVICE_ACCOUNT = 'retailops-dr-drill'
const FIELD_MANAGER = 'retailops-dr'
const NAME_LABEL = 'retailops.dev/drill-schedule'
const SOURCE_NAMESPACES = 'retailops.dev/drill-source-namespaces'
/** Time the drill gets after its --timeout to clean up before the Job is stopped. */
const CLEANUP_GRACE_SECONDS = 900
/** Variables the restore binds its role with (read by the kubernetes provider). */
export const RESTORE_ROLE_ENV = 'RETAILOPS_DR_RESTORE_ROLE'
export const SERVICE_ACCOUNT_ENV = 'RETAILOPS_DR_SERVICE_ACCOUNT'
export const RUN_BY_ENV = 'RETAILOPS_RUN_BY'
const LABELS = {'app.kubernetes.io/managed-by': 'retailops'}

export interface DrillScheduleNames {
  schedule: string
  cronJob: string
  serviceAccount: string
  role: string
  clusterRole: string
  restoreRole: string
  policy: string
  configMap: string
  credentials: string
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** The schedule's name: --schedule-name, else one made from the selection ("all" without filters). */
export function scheduleNameFor(filters: DrillFilters, given?: string): string {
  if (given !== undefined) {
    if (!DNS_LABEL.test(given) || given.length > 30) {
      throw new UsageError(
        `--schedule-name ${given}: a schedule name is up to 30 lowercase letters, digits and dashes, starting and ending with a letter or digit.`,
        {nextSteps: ['e.g. --schedule-name nightly-orders']},
      )
    }
    return given
  }
  const parts = [...(filters.tiers ?? []), ...(filters.services ?? []), ...(filters.datastores ?? [])]
  if (parts.length === 0) return 'all'
  const slug = parts
    .join('-')
    .toLowerCase()
    .replaceAll(/[^a-z0-9-]+/g, '-')
    .replaceAll(/-+/g, '-')
    .replace(/^-|-$/g, '')
  if (slug.length <= 30 && slug) return slug
  return `${slug.slice(0, 23).replace(/-+$/, '')}-${createHash('sha256').update(parts.join(',')).digest('hex').slice(0, 6)}`
}

export function drillScheduleNames(namespace: string, schedule: string): DrillScheduleNames {
  const cut = (s: string) => s.slice(0, 253).replace(/-+$/, '')
  return {
    schedule,
    cronJob: `retailops-dr-drill-${schedule}`,
    // One identity per namespace; its permissions are per schedule.
    serviceAccount: SERVICE_ACCOUNT,
    role: `retailops-dr-drill-${schedule}`,
    clusterRole: cut(`retailops-dr-drill-${namespace}-${schedule}`),
    restoreRole: cut(`retailops-dr-restore-${namespace}-${schedule}`),
    policy: cut(`retailops-dr-drill-${namespace}-${schedule}`),
    configMap: `retailops-dr-drill-${schedule}-config`,
    credentials: `retailops-dr-drill-${schedule}-credentials`,
  }
}

interface Rule {
  apiGroups: string[]
  resources: string[]
  verbs: string[]
  resourceNames?: string[]
}

const group = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0] : '')

/** The snapshot kinds (only those a drill restores, for the restore role), grouped by API group, with the given verbs. */
function snapshotRules(verbs: string[], which: 'all' | 'restored' = 'all'): Rule[] {
  const byGroup = new Map<string, string[]>()
  for (const k of SNAPSHOT_KINDS.filter((kind) => which === 'all' || !kind.neverRestored))
    byGroup.set(group(k.apiVersion), [...(byGroup.get(group(k.apiVersion)) ?? []), k.plural])
  return [...byGroup].map(([g, resources]) => ({apiGroups: [g], resources, verbs}))
}

export interface DrillRbacScope {
  namespace: string
  recoverability: boolean
  /** Source namespaces of the selected kubernetes datastores (none: no namespace restores). */
  sourceNamespaces: string[]
  /** The configuration has kubernetes datastores: the look for earlier drills' namespaces lists Namespaces. */
  listNamespaces: boolean
}

/** The Roles, ClusterRoles and admission policy a scheduled drill needs, derived from what the drill does. */
export function drillRbac(names: DrillScheduleNames, scope: DrillRbacScope): KubeRef[] {
  const ns = scope.namespace
  const labels = {...LABELS, 'app.kubernetes.io/component': RUNNER_COMPONENT, [NAME_LABEL]: names.schedule}
  const serviceAccount = {name: names.serviceAccount, namespace: ns}
  const home: Rule[] = [
    // The drill's record (its name is the drill's id, unknown in advance: create cannot be limited by name).
    {apiGroups: [''], resources: ['configmaps'], verbs: ['create']},
  ]
  if (scope.recoverability) {
    home.push(
      {apiGroups: ['apps'], resources: ['deployments'], verbs: ['list']},
      {apiGroups: [''], resources: ['secrets', 'configmaps'], verbs: ['get']},
    )
  }
  const restores = scope.sourceNamespaces.length > 0
  if (scope.sourceNamespaces.includes(ns)) home.push(...snapshotRules(['list']))
  const objects: KubeRef[] = [
    serviceAccountObject(names.serviceAccount, ns, {...LABELS, 'app.kubernetes.io/component': RUNNER_COMPONENT}),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: {name: names.role, namespace: ns, labels},
      rules: home,
    } as KubeRef,
    bindingObject({name: names.role, namespace: ns, labels, roleKind: 'Role', role: names.role, serviceAccount}),
  ]
  for (const source of scope.sourceNamespaces.filter((s) => s !== ns)) {
    objects.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: {name: names.clusterRole, namespace: source, labels},
        rules: snapshotRules(['list']),
      } as KubeRef,
      bindingObject({
        name: names.clusterRole,
        namespace: source,
        labels,
        roleKind: 'Role',
        role: names.clusterRole,
        serviceAccount,
      }),
    )
  }
  if (restores || scope.listNamespaces) {
    objects.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: {name: names.clusterRole, labels},
        rules: restores
          ? [
              {apiGroups: [''], resources: ['namespaces'], verbs: ['create', 'get', 'list', 'delete']},
              {apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create']},
              {
                apiGroups: ['rbac.authorization.k8s.io'],
                resources: ['clusterroles'],
                verbs: ['bind'],
                resourceNames: [names.restoreRole],
              },
            ]
          : [{apiGroups: [''], resources: ['namespaces'], verbs: ['list']}],
      } as KubeRef,
      bindingObject({
        name: names.clusterRole,
        labels,
        roleKind: 'ClusterRole',
        role: names.clusterRole,
        serviceAccount,
      }),
    )
  }
  if (restores) {
    objects.push(
      {
        // Bound by the drill, inside the drill namespace it created, and nowhere else.
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: {name: names.restoreRole, labels},
        rules: [
          ...snapshotRules(['get', 'list', 'create', 'patch'], 'restored'),
          {apiGroups: [''], resources: ['pods'], verbs: ['list']},
        ],
      } as KubeRef,
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: {name: names.policy, labels},
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: [''],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE', 'DELETE'],
                resources: ['namespaces'],
              },
              {
                apiGroups: ['rbac.authorization.k8s.io'],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE', 'DELETE'],
                resources: ['rolebindings'],
              },
            ],
          },
          matchConditions: [
            {
              name: 'drill-runner',
              expression: `request.userInfo.username == 'system:serviceaccount:${ns}:${names.serviceAccount}'`,
            },
          ],
          validations: [
            {
              expression: `request.resource.resource == 'namespaces' ? request.name.startsWith('${DRILL_PREFIX}-') : request.namespace.startsWith('${DRILL_PREFIX}-')`,
              messageExpression: `'the scheduled drill of ${ns} may only create and delete drill namespaces (${DRILL_PREFIX}-…) and bind its restore role inside them, not ' + request.resource.resource + ' ' + (request.namespace != '' ? request.namespace + '/' : '') + request.name`,
              reason: 'Forbidden',
            },
            {
              expression: `request.resource.resource != 'rolebindings' || request.operation == 'DELETE' || (object.roleRef.kind == 'ClusterRole' && object.roleRef.name == '${names.restoreRole}')`,
              message: `the scheduled drill may only bind ${names.restoreRole}`,
              reason: 'Forbidden',
            },
          ],
        },
      } as KubeRef,
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: {name: names.policy, labels},
        spec: {policyName: names.policy, validationActions: ['Deny']},
      } as KubeRef,
    )
  }
  return objects
}

/** Variables the selected datastores and checks read, and whether each is a secret. */
export function neededVariables(
  project: LoadedConfig,
  datastores: string[],
  recoverability: boolean,
  env: NodeJS.ProcessEnv,
): {secret: string[]; plain: string[]; warnings: string[]} {
  const secret = new Set<string>()
  const plain = new Set<string>()
  const warnings: string[] = []
  for (const ds of project.config.datastores.filter((d) => datastores.includes(d.name))) {
    if (ds.provider === 'postgres') {
      const cfg = ds.postgres
      if (!cfg?.url) {
        const urlEnv = cfg?.urlEnv ?? 'DATABASE_URL'
        if (env[urlEnv]) secret.add(urlEnv)
        else if (urlEnv === 'DATABASE_URL' && env.RETAILOPS_POSTGRES_URL) secret.add('RETAILOPS_POSTGRES_URL')
      }
      if (cfg?.restoreUrlEnv && env[cfg.restoreUrlEnv]) secret.add(cfg.restoreUrlEnv)
      if (env.RETAILOPS_PG_BIN) plain.add('RETAILOPS_PG_BIN')
    }
    if (ds.provider === 'aws-backup') {
      for (const v of ['AWS_REGION', 'AWS_DEFAULT_REGION']) if (env[v]) plain.add(v)
      for (const v of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) if (env[v]) secret.add(v)
      if (env.AWS_SESSION_TOKEN)
        warnings.push(
          `${ds.name}: AWS_SESSION_TOKEN is a temporary credential and is not given to the scheduled drill (it would expire before the job runs): give the job an identity of its own (IRSA or EKS Pod Identity on ServiceAccount ${SERVICE_ACCOUNT}), or long-lived keys.`,
        )
      else if (!env.AWS_ACCESS_KEY_ID)
        warnings.push(
          `${ds.name}: no AWS keys in the environment: the scheduled drill uses the pod's own identity (IRSA or EKS Pod Identity on ServiceAccount ${SERVICE_ACCOUNT}).`,
        )
    }
  }
  for (const ds of project.config.datastores.filter((d) => datastores.includes(d.name))) {
    // A kubernetes datastore restored from backups in an object store reads it with the AWS SDK.
    if (ds.provider !== 'kubernetes' || !/^s3:\/\//i.test(ds.kubernetes?.backup?.location ?? '')) continue
    for (const v of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL_S3', 'RETAILOPS_S3_ENDPOINT'])
      if (env[v]) plain.add(v)
    for (const v of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) if (env[v]) secret.add(v)
  }
  if (recoverability && env.REGISTRY_USERNAME && env.REGISTRY_PASSWORD) {
    secret.add('REGISTRY_USERNAME')
    secret.add('REGISTRY_PASSWORD')
  }
  return {secret: [...secret].sort(), plain: [...plain].sort(), warnings}
}

export interface DrillScheduleOptions {
  project: LoadedConfig
  environment: ResolvedEnvironment
  filters: DrillFilters
  recoverability: boolean
  allowSourceServer?: string
  /** The cron expression and its time zone (default Etc/UTC). */
  cron: string
  timeZone?: string
  scheduleName?: string
  /** How long each run may take: the drill's --timeout; the Job is stopped CLEANUP_GRACE_SECONDS later. */
  timeoutMs?: number
  /** The emptyDir the drill works in (dumps). */
  scratchSize: string
  /** Flags the scheduled drill runs with, as given here. */
  drillFlags: string[]
  runnerImage?: string
  env?: NodeJS.ProcessEnv
  now?: Date
}

export interface ScheduledDrill {
  name: string
  namespace: string
  cronJob: string
  schedule: string
  timeZone: string
  suspended: boolean
  /** When it runs next (none when suspended). */
  nextRun?: string
  nextRuns: string[]
  lastScheduleTime?: string
  lastSuccessfulTime?: string
  active: number
  command: string[]
  runnerImage?: string
}

export interface DrillScheduleResult {
  mode: 'schedule'
  scheduled: ScheduledDrill
  serviceAccount: string
  configMap: string
  credentialsSecret: string
  /** Key paths of retailops.yaml's inline credentials and names of the variables kept in the Secret (never their values). */
  credentials: string[]
  variables: string[]
  timeoutMs: number
  activeDeadlineSeconds: number
  runnerImage: string
  objects: string[]
  warnings: string[]
}

/** The default bound on one run: the longest a selected datastore may take (an AWS restore job, a namespace's workloads), at least an hour. */
export function defaultTimeoutMs(project: LoadedConfig, datastores: string[]): number {
  let ms = 3_600_000
  for (const ds of project.config.datastores.filter((d) => datastores.includes(d.name))) {
    if (ds.provider === 'aws-backup') ms = Math.max(ms, parseDuration(ds.awsBackup?.timeout ?? '4h')! + 1_800_000)
    if (ds.provider === 'kubernetes') ms = Math.max(ms, parseDuration(ds.kubernetes?.waitTimeout ?? '5m')! + 1_800_000)
  }
  return ms
}

/** How late a missed run may still start: half the gap between runs, at most an hour, at least a minute. */
export function startingDeadlineSeconds(runs: Date[]): number {
  if (runs.length < 2) return 3600
  const gap = (runs[1].getTime() - runs[0].getTime()) / 1000
  return Math.max(60, Math.min(3600, Math.floor(gap / 2)))
}

function quantityOk(q: string): boolean {
  return /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/.test(q)
}

/** Everything checked and built, nothing written. */
export async function buildDrillSchedule(options: DrillScheduleOptions, runnerImage: string) {
  const env = options.env ?? process.env
  const now = options.now ?? new Date()
  const cron = parseCron(options.cron)
  const timeZone = checkTimeZone(options.timeZone ?? 'Etc/UTC')
  if (!quantityOk(options.scratchSize))
    throw new UsageError(`--scratch-size ${options.scratchSize} is not a size.`, {
      nextSteps: ['e.g. --scratch-size 20Gi (room for the largest dump the drill takes).'],
    })
  const runs = nextRuns(cron, timeZone, now, 3)
  if (runs.length === 0) throw new UsageError(`--schedule "${options.cron}" never runs in the next five years.`)
  const name = scheduleNameFor(options.filters, options.scheduleName)
  const namespace = options.environment.namespace
  const names = drillScheduleNames(namespace, name)
  const plan = planDrill({
    project: options.project,
    environment: options.environment,
    drillId: 'schedule',
    filters: options.filters,
    providers: PROVIDERS,
    recoverability: options.recoverability,
    env,
    allowSourceServer: options.allowSourceServer,
  })
  if (plan.problems.length > 0) {
    throw new RetailOpsError(
      'CONFIG',
      `The scheduled drill could not start:\n${plan.problems.map((p) => `  - ${p}`).join('\n')}`,
      {
        nextSteps: [
          "Fix these first (`retailops dr plan` with the same flags lists them); the variables the drill reads must be set here, where they are put into the schedule's Secret.",
        ],
      },
    )
  }
  if (plan.refusals.length > 0) {
    throw new RefusedError(
      `The scheduled drill would be refused:\n${plan.refusals.map((p) => `  - ${p}`).join('\n')}`,
      {
        nextSteps: [
          'Name a non-production restore server (datastores[].postgres.restoreUrlEnv), or pass --allow-source-server "<reason>".',
        ],
      },
    )
  }
  const datastores = plan.datastores.map((d) => d.name)
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs(options.project, datastores)
  const activeDeadlineSeconds = Math.ceil(timeoutMs / 1000) + CLEANUP_GRACE_SECONDS
  const variables = neededVariables(options.project, datastores, options.recoverability, env)
  const sourceNamespaces = [
    ...new Set(
      options.project.config.datastores
        .filter((d) => datastores.includes(d.name) && d.provider === 'kubernetes')
        .map((d) => d.kubernetes?.namespace ?? namespace),
    ),
  ].sort()
  const labels = {...LABELS, 'app.kubernetes.io/component': SCHEDULE_COMPONENT, [NAME_LABEL]: name}
  const config = runnerConfigObjects({
    namespace,
    labels,
    configMap: names.configMap,
    credentialsSecret: names.credentials,
    configText: await readFile(options.project.file, 'utf8'),
    secretData: Object.fromEntries(variables.secret.map((v) => [`env.${v}`, env[v]!])),
  })
  const args = [
    'dr',
    'drill',
    '--environment',
    options.environment.name,
    '--namespace',
    namespace,
    '--context',
    IN_CLUSTER_CONTEXT,
    '--yes',
    '--record-in-cluster',
    '--timeout',
    formatDuration(timeoutMs),
    ...options.drillFlags,
  ]
  const podEnv: EnvVar[] = [
    {name: DRILLS_DIR_ENV, value: '/tmp/drills'},
    {name: WORK_DIR_ENV, value: '/tmp/dr-work'},
    {name: RUN_BY_ENV, value: `CronJob ${namespace}/${names.cronJob}`},
    ...variables.plain.map((v) => ({name: v, value: env[v]!})),
    ...variables.secret.map((v) => ({name: v, valueFrom: {secretKeyRef: {name: names.credentials, key: `env.${v}`}}})),
    ...config.env.filter((e) => !variables.plain.includes(e.name) && !variables.secret.includes(e.name)),
    ...(sourceNamespaces.length > 0
      ? [
          {name: RESTORE_ROLE_ENV, value: names.restoreRole},
          {name: SERVICE_ACCOUNT_ENV, value: `${namespace}:${names.serviceAccount}`},
        ]
      : []),
  ]
  const pod = runnerPodSpec({
    serviceAccount: names.serviceAccount,
    image: runnerImage,
    args,
    configMap: names.configMap,
    credentialsSecret: names.credentials,
    env: podEnv,
    resources: {requests: {cpu: '200m', memory: '256Mi'}, limits: {cpu: '2', memory: '1Gi'}},
    tmpSize: options.scratchSize,
  })
  const cronJob = runnerCronJob({
    name: names.cronJob,
    namespace,
    labels,
    annotations: {
      [SOURCE_NAMESPACES]: sourceNamespaces.join(','),
      'retailops.dev/drill-timeout': formatDuration(timeoutMs),
    },
    schedule: options.cron.trim(),
    timeZone,
    startingDeadlineSeconds: startingDeadlineSeconds(runs),
    activeDeadlineSeconds,
    // A failed drill is a verdict, not a glitch: running it again at once would double its load.
    backoffLimit: 0,
    successfulJobsHistoryLimit: 3,
    failedJobsHistoryLimit: 3,
    pod,
  })
  const listNamespaces = options.project.config.datastores.some((d) => d.provider === 'kubernetes')
  const objects = [
    ...drillRbac(names, {namespace, recoverability: options.recoverability, sourceNamespaces, listNamespaces}),
    ...config.objects,
    cronJob,
  ]
  return {
    names,
    cron,
    timeZone,
    runs,
    args,
    objects,
    cronJob,
    credentials: config.credentials,
    variables,
    timeoutMs,
    activeDeadlineSeconds,
    plan,
  }
}

/** Stands in for the runner image while the input is checked, before its signature is. */
const NOT_YET_VERIFIED = 'not-yet-verified@sha256:0000000000000000000000000000000000000000000000000000000000000000'

export async function scheduleDrill(options: DrillScheduleOptions, ctx: RunContext): Promise<DrillScheduleResult> {
  // Input first (no I/O but reading retailops.yaml), then the runner image's signature, then the writes.
  const checked = await buildDrillSchedule(options, NOT_YET_VERIFIED)
  for (const w of checked.variables.warnings) ctx.out.warn(w)
  for (const w of checked.plan.warnings) ctx.out.warn(w)
  const runner = await verifiedRunnerImage(options.project, options.runnerImage, ctx)
  const built = await buildDrillSchedule(options, runner.image)
  const http = new KubeHttp(
    kubeClients({context: options.environment.context, kubeconfig: options.environment.kubeconfig}).kc,
  )
  const task = ctx.out.task(
    `Scheduling drill ${built.names.schedule} in ${options.environment.namespace}: "${options.cron.trim()}" (${built.timeZone})`,
  )
  const applied = await applyScheduleObjects(http, built.objects, FIELD_MANAGER, task)
  task.succeed(
    `Scheduled CronJob ${built.names.cronJob}: "${options.cron.trim()}" (${built.timeZone}); next run ${built.runs[0].toISOString()}`,
  )
  return {
    mode: 'schedule',
    scheduled: {
      name: built.names.schedule,
      namespace: options.environment.namespace,
      cronJob: built.names.cronJob,
      schedule: options.cron.trim(),
      timeZone: built.timeZone,
      suspended: false,
      nextRun: built.runs[0].toISOString(),
      nextRuns: built.runs.map((r) => r.toISOString()),
      active: 0,
      command: ['retailops', ...built.args],
      runnerImage: runner.image,
    },
    serviceAccount: built.names.serviceAccount,
    configMap: built.names.configMap,
    credentialsSecret: built.names.credentials,
    credentials: built.credentials,
    variables: built.variables.secret,
    timeoutMs: built.timeoutMs,
    activeDeadlineSeconds: built.activeDeadlineSeconds,
    runnerImage: runner.image,
    objects: applied,
    warnings: [...built.variables.warnings, ...(runner.warning ? [runner.warning] : [])],
  }
}

interface CronJobRead {
  metadata: {name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string>}
  spec: {
    schedule: string
    timeZone?: string
    suspend?: boolean
    jobTemplate: {spec: {template: {spec: {containers: {image: string; args?: string[]}[]}}}}
  }
  status?: {lastScheduleTime?: string; lastSuccessfulTime?: string; active?: unknown[]}
}

function describe(cj: CronJobRead, now: Date): ScheduledDrill {
  const timeZone = cj.spec.timeZone ?? 'Etc/UTC'
  let runs: Date[] = []
  try {
    runs = cj.spec.suspend ? [] : nextRuns(parseCron(cj.spec.schedule), timeZone, now, 3)
  } catch {
    // Edited by hand into something this version cannot read: shown without its next run.
  }
  const container = cj.spec.jobTemplate.spec.template.spec.containers[0]
  return {
    name: cj.metadata.labels?.[NAME_LABEL] ?? cj.metadata.name,
    namespace: cj.metadata.namespace,
    cronJob: cj.metadata.name,
    schedule: cj.spec.schedule,
    timeZone,
    suspended: Boolean(cj.spec.suspend),
    ...(runs[0] ? {nextRun: runs[0].toISOString()} : {}),
    nextRuns: runs.map((r) => r.toISOString()),
    ...(cj.status?.lastScheduleTime ? {lastScheduleTime: cj.status.lastScheduleTime} : {}),
    ...(cj.status?.lastSuccessfulTime ? {lastSuccessfulTime: cj.status.lastSuccessfulTime} : {}),
    active: cj.status?.active?.length ?? 0,
    command: ['retailops', ...(container?.args ?? [])],
    runnerImage: container?.image,
  }
}

/** The drills scheduled in the namespace, with their next runs. */
export async function listDrillSchedules(
  http: KubeHttp,
  namespace: string,
  now = new Date(),
): Promise<ScheduledDrill[]> {
  const list = await http
    .request<{items: CronJobRead[]}>('GET', collectionPath('CronJob', namespace), {
      query: {labelSelector: `app.kubernetes.io/component=${SCHEDULE_COMPONENT}`},
    })
    .catch((error: unknown) => {
      throw kubeError(error, `listing the drills scheduled in ${namespace}`)
    })
  return list.items.map((cj) => describe(cj, now)).sort((a, b) => a.name.localeCompare(b.name))
}

/** Removes a schedule: its CronJob, config and credentials, permissions and admission policy; the ServiceAccount with the last one. */
export async function unscheduleDrill(
  options: {environment: ResolvedEnvironment; filters: DrillFilters; scheduleName?: string},
  ctx: RunContext,
): Promise<{mode: 'unschedule'; name: string; namespace: string; unscheduled: string[]; remaining: string[]}> {
  const name = scheduleNameFor(options.filters, options.scheduleName)
  const namespace = options.environment.namespace
  const names = drillScheduleNames(namespace, name)
  const http = new KubeHttp(
    kubeClients({context: options.environment.context, kubeconfig: options.environment.kubeconfig}).kc,
  )
  try {
    const existing = await http
      .request<CronJobRead>('GET', namedPath('CronJob', names.cronJob, namespace))
      .catch(() => undefined)
    const sources = existing?.metadata.annotations?.[SOURCE_NAMESPACES]?.split(',').filter(Boolean) ?? []
    const rbac = (kind: string, apiVersion: string, n: string, ns?: string): KubeRef => ({
      apiVersion,
      kind,
      metadata: {name: n, ...(ns ? {namespace: ns} : {})},
    })
    const R = 'rbac.authorization.k8s.io/v1'
    const A = 'admissionregistration.k8s.io/v1'
    const unscheduled = await deleteJobObjects(http, [
      rbac('CronJob', 'batch/v1', names.cronJob, namespace),
      rbac('ConfigMap', 'v1', names.configMap, namespace),
      rbac('Secret', 'v1', names.credentials, namespace),
      rbac('RoleBinding', R, names.role, namespace),
      rbac('Role', R, names.role, namespace),
      ...sources
        .filter((s) => s !== namespace)
        .flatMap((s) => [rbac('RoleBinding', R, names.clusterRole, s), rbac('Role', R, names.clusterRole, s)]),
      rbac('ClusterRoleBinding', R, names.clusterRole),
      rbac('ClusterRole', R, names.clusterRole),
      rbac('ClusterRole', R, names.restoreRole),
      rbac('ValidatingAdmissionPolicyBinding', A, names.policy),
      rbac('ValidatingAdmissionPolicy', A, names.policy),
    ])
    if (!(await bindingsLeft(http, namespace, `app.kubernetes.io/component=${RUNNER_COMPONENT}`))) {
      unscheduled.push(
        ...(await deleteJobObjects(http, [rbac('ServiceAccount', 'v1', names.serviceAccount, namespace)])),
      )
    }
    const remaining = (await listDrillSchedules(http, namespace).catch(() => [])).map((s) => s.name)
    if (unscheduled.length === 0)
      ctx.out.info(
        `No drill schedule "${name}" in ${namespace}${remaining.length ? ` (scheduled: ${remaining.join(', ')}; pass --schedule-name)` : ''}.`,
      )
    return {mode: 'unschedule', name, namespace, unscheduled, remaining}
  } finally {
    http.close()
  }
}
