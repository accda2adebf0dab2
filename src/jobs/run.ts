import {randomBytes} from 'node:crypto'

import type {LoadedConfig} from '../config/load.js'
import {resolveTenant, tenantRunsJob, type ResolvedEnvironment} from '../config/resolve.js'
import {RefusedError, NotFoundError, UsageError} from '../errors/index.js'
import {isNotFound, kubeError, kubeHttp} from '../kubernetes/client.js'
import type {KubeHttp} from '../kubernetes/http.js'
import type {CronJob, Job, Pod} from '../kubernetes/kinds.js'
import {LABEL, MANAGED_BY} from '../kubernetes/labels.js'
import {listObjects, readObject} from '../kubernetes/objects.js'
import {explainPods, type EventLike} from '../kubernetes/rollout-status.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'
import {waitFor} from '../kubernetes/wait.js'
import type {RunContext} from '../ui/context.js'
import {
  configuredJob,
  INSTANTIATE_ANNOTATION,
  JOB_NAME_LABEL,
  jobRun,
  type JobRun,
  runPod,
  type RunPod,
  runSelector,
} from './runs.js'

export interface JobRunOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  job: string
  /** --tenant: the dedicated tenant whose CronJob runs (its namespace, and its cluster for a dedicated cluster). */
  tenant?: string
  /** Follow the run to its end (default); false: create the Job and return. */
  wait?: boolean
  /** How long to follow it; default the job's activeDeadlineSeconds plus a minute. */
  timeoutMs?: number
  pollMs?: number
  /** Log lines kept per pod in the result. */
  logLines?: number
}

export interface JobRunResult {
  job: string
  /** --tenant: the tenant whose job ran. */
  tenant?: string
  namespace: string
  /** The Job created from the CronJob's template. */
  name: string
  cronJob: string
  image?: string
  /** started (--no-wait), succeeded, failed, or timed-out (--timeout passed; the Job keeps running). */
  outcome: 'started' | 'succeeded' | 'failed' | 'timed-out'
  run: JobRun
  pods: RunPod[]
  /** Why pods did not run or failed, in the words deploy and rollouts use. */
  explanation: string[]
  /** The last lines each pod logged (or why they could not be read). */
  logs: {pod: string; lines: string[]; error?: string}[]
}

const MAX_NAME = 63

/** kubectl's `create job --from=cronjob/NAME` naming: the CronJob's name, "-manual-" and a random suffix. */
export function manualJobName(cronJob: string): string {
  const suffix = `-manual-${randomBytes(3).toString('hex').slice(0, 5)}`
  return `${cronJob.slice(0, MAX_NAME - suffix.length)}${suffix}`
}

/**
 * The Job `kubectl create job --from=cronjob/NAME` creates: the job template's labels,
 * annotations and spec, annotation cronjob.kubernetes.io/instantiate: manual, and the CronJob as
 * its controlling owner (the CronJob's history and concurrency policy count it; deleting the
 * CronJob deletes it).
 */
export function jobFromCronJob(cron: CronJob, name: string): Job {
  const template = cron.spec!.jobTemplate as {
    metadata?: {labels?: Record<string, string>; annotations?: Record<string, string>}
    spec?: Record<string, unknown>
  }
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: cron.metadata.namespace,
      labels: {...template.metadata?.labels},
      annotations: {...template.metadata?.annotations, [INSTANTIATE_ANNOTATION]: 'manual'},
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          name: cron.metadata.name,
          uid: cron.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        } as {uid: string; kind: string; name: string},
      ],
    },
    spec: {...template.spec},
  }
}

/**
 * `retailops jobs run NAME`: a Job from the deployed CronJob's template (so exactly the image,
 * by digest, that deploy verified and admitted), followed to its end. Nothing is created when the
 * job is unknown, not deployed, or (concurrencyPolicy Forbid) already running.
 */
export async function runJob(options: JobRunOptions, ctx: RunContext): Promise<JobRunResult> {
  const {project, job} = options
  const spec = configuredJob(project.config, job)
  if (options.timeoutMs !== undefined && options.timeoutMs <= 0)
    throw new UsageError(`--timeout must be longer than 0.`)
  const {env, tenant} = jobTarget(project, options.env, job, options.tenant)
  const namespace = env.namespace
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  const cron = await readObject<CronJob>(http, namedPath('CronJob', job, namespace)).catch((error: unknown) => {
    throw kubeError(error, `reading CronJob ${namespace}/${job}`)
  })
  const ours =
    cron?.metadata.labels?.[LABEL.managedBy] === MANAGED_BY &&
    cron.metadata.labels[LABEL.job] === job &&
    (!tenant || cron.metadata.labels[LABEL.tenant] === tenant)
  if (!cron || !ours) {
    throw new NotFoundError(
      cron
        ? `CronJob ${namespace}/${job} exists but was not deployed by retailops as job ${job}${tenant ? ` of tenant ${tenant}` : ''}; it is left alone.`
        : `Job ${job} is not deployed in ${namespace}${tenant ? ` for tenant ${tenant}` : ''} (no CronJob ${job}).`,
      {
        nextSteps: [
          `Run \`retailops deploy ${job}${env.name === 'default' ? '' : ` --environment ${env.name}`}${tenant ? ` --tenant ${tenant}` : ''}\` first.`,
        ],
      },
    )
  }
  const runs = await listRuns(http, namespace, job)
  const active = runs.filter((r) => r.outcome === 'running')
  if (spec.concurrencyPolicy === 'Forbid' && active.length > 0) {
    throw new RefusedError(
      `Job ${job} is already running (${active.map((r) => r.name).join(', ')}) and its concurrencyPolicy is Forbid.`,
      {
        nextSteps: [
          `Follow it with \`retailops jobs status ${job}\`, or stop it with \`kubectl -n ${namespace} delete job ${active[0].name}\` and run again.`,
        ],
        details: {active: active.map((r) => r.name)},
      },
    )
  }

  const name = manualJobName(job)
  const created = await http
    .request<Job>('POST', collectionPath('Job', namespace), {body: jobFromCronJob(cron, name), signal: ctx.signal})
    .catch((error: unknown) => {
      throw kubeError(error, `creating Job ${namespace}/${name} from CronJob ${job}`)
    })
  const image = (cron.spec?.jobTemplate.spec?.template?.spec as {containers?: {image?: string}[]} | undefined)
    ?.containers?.[0]?.image
  const base = {job, ...(tenant ? {tenant} : {}), namespace, name, cronJob: job, image}
  if (options.wait === false) {
    ctx.out.info(`Started Job ${namespace}/${name} from CronJob ${job}.`)
    return {...base, outcome: 'started', run: jobRun(created), pods: [], explanation: [], logs: []}
  }

  const timeoutMs = options.timeoutMs ?? (spec.activeDeadlineSeconds + 60) * 1000
  const task = ctx.out.task(`Running ${job} (Job ${namespace}/${name})`)
  const followed = await waitFor(
    async () => {
      const live = await readObject<Job>(http, namedPath('Job', name, namespace)).catch((error: unknown) => {
        throw kubeError(error, `reading Job ${namespace}/${name}`)
      })
      if (!live) throw new NotFoundError(`Job ${namespace}/${name} was deleted while it ran.`)
      const run = jobRun(live)
      task.update(`${run.outcome}: ${run.succeeded} pod(s) succeeded, ${run.failed} failed`)
      return {done: run.outcome !== 'running', value: run}
    },
    {timeoutMs, pollMs: options.pollMs ?? 1000, signal: ctx.signal},
  ).catch((error: unknown) => {
    task.fail(`${job}: stopped following Job ${namespace}/${name}`)
    throw error
  })
  const run = followed.value
  const {pods, explanation, logs} = await describeRun(http, namespace, name, options.logLines ?? 20)
  const outcome = !followed.done ? 'timed-out' : run.outcome === 'succeeded' ? 'succeeded' : 'failed'
  if (outcome === 'succeeded') task.succeed(`${job} succeeded in ${seconds(run.durationMs)} (Job ${namespace}/${name})`)
  else if (outcome === 'failed')
    task.fail(`${job} failed: ${run.reason ?? 'unknown reason'}${run.message ? ` (${run.message})` : ''}`)
  else task.fail(`${job} still running after ${seconds(timeoutMs)}: the Job keeps running`)
  return {...base, outcome, run, pods, explanation, logs}
}

/**
 * Where a job runs: the environment's namespace, or with --tenant the dedicated tenant's namespace
 * (and cluster), as deploy renders it. Refused before anything is read: an unknown tenant, a
 * shared one (its jobs are the shared namespace's, which run for every shared tenant at once), and
 * a job deploy does not render for the tenant (a service it dependsOn is not among the tenant's).
 */
export function jobTarget(
  project: LoadedConfig,
  env: ResolvedEnvironment,
  job: string,
  tenantName?: string,
): {env: ResolvedEnvironment; tenant?: string} {
  if (tenantName === undefined) return {env}
  const {config} = project
  const target = resolveTenant(config, env, tenantName, project.dir)
  const {tenant} = target
  if (target.shared) {
    const others = config.tenants.filter((t) => t.model === 'shared' || t.model === 'isolated-database')
    throw new UsageError(
      `Tenant ${tenant.name} is ${tenant.model}: its jobs are the environment's (namespace ${env.namespace}), one CronJob ${job} for every shared tenant at once (${others.map((t) => t.name).join(', ')}, in RETAILOPS_TENANTS), so there is no run of ${job} for ${tenant.name} alone.`,
      {
        nextSteps: [
          `Run \`retailops jobs run ${job}\` without --tenant to run it for all of them; --tenant names a dedicated-namespace or dedicated-cluster tenant.`,
        ],
      },
    )
  }
  if (!tenantRunsJob(config, tenant, job)) {
    const missing = config.jobs[job].dependsOn.filter((d) => !tenant.services?.includes(d))
    throw new NotFoundError(
      `Job ${job} does not run for tenant ${tenant.name}: it dependsOn ${missing.join(', ')}, which the tenant does not run (tenants[].services), so deploy renders no CronJob ${job} in ${target.env.namespace}.`,
      {
        nextSteps: [
          `Add ${missing.join(', ')} to the services of tenant ${tenant.name}, or run ${job} for another tenant.`,
        ],
      },
    )
  }
  return {env: target.env, tenant: tenant.name}
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '?' : `${Math.round(ms / 100) / 10}s`
}

export async function listRuns(http: KubeHttp, namespace: string, job: string): Promise<JobRun[]> {
  const jobs = await listObjects<Job>(http, collectionPath('Job', namespace), {labelSelector: runSelector(job)}).catch(
    (error: unknown) => {
      throw kubeError(error, `listing the runs of job ${job} in ${namespace}`)
    },
  )
  return jobs.map(jobRun)
}

/** The run's pods, why they did not run or failed (scheduler and kubelet events), and their last log lines. */
export async function describeRun(
  http: KubeHttp,
  namespace: string,
  name: string,
  logLines: number,
): Promise<{pods: RunPod[]; explanation: string[]; logs: JobRunResult['logs']}> {
  const pods = await listObjects<Pod>(http, collectionPath('Pod', namespace), {
    labelSelector: `${JOB_NAME_LABEL}=${name}`,
  }).catch(() => [] as Pod[])
  const events = await listObjects<EventLike>(http, collectionPath('Event', namespace), {}).catch(
    () => [] as EventLike[],
  )
  const own = new Set([name, ...pods.map((p) => p.metadata.name)])
  const relevant = events.filter((e) => own.has(e.involvedObject?.name ?? ''))
  const explanation = explainPods(pods, relevant)
  // A Job past its deadline deletes its pods: the scheduler's and kubelet's words about them are what is left.
  const gone = events.filter(
    (e) =>
      e.type === 'Warning' &&
      e.involvedObject?.kind === 'Pod' &&
      e.involvedObject.name?.startsWith(`${name}-`) &&
      !own.has(e.involvedObject.name),
  )
  for (const e of [...relevant.filter((x) => x.involvedObject?.kind === 'Job' && x.type === 'Warning'), ...gone]) {
    const text = `${e.involvedObject?.kind === 'Pod' ? `pod ${e.involvedObject.name} ` : ''}${e.reason}: ${e.message}`
    if (e.message && !explanation.some((x) => x.endsWith(`${e.reason}: ${e.message}`))) explanation.push(text)
  }
  const logs: JobRunResult['logs'] = []
  for (const pod of pods.slice(-3)) {
    const text = await http
      .request<unknown>('GET', `${namedPath('Pod', pod.metadata.name, namespace)}/log`, {query: {tailLines: logLines}})
      .then((body) => ({
        lines: String(body ?? '')
          .split('\n')
          .filter(Boolean)
          .slice(-logLines),
      }))
      .catch((error: unknown) => ({
        lines: [] as string[],
        error: isNotFound(error)
          ? 'no logs (the pod never started)'
          : `logs unavailable: ${(error as Error).message.slice(0, 300)}`,
      }))
    logs.push({pod: pod.metadata.name, ...text})
  }
  return {pods: pods.map(runPod), explanation, logs}
}
