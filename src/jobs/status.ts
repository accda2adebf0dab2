import type {LoadedConfig} from '../config/load.js'
import {resolveTenant, tenantRunsJob, type ResolvedEnvironment} from '../config/resolve.js'
import {kubeError, kubeHttp} from '../kubernetes/client.js'
import {nextRuns, parseCron} from '../kubernetes/cron.js'
import type {CronJob} from '../kubernetes/kinds.js'
import {LABEL, MANAGED_BY} from '../kubernetes/labels.js'
import {readObject} from '../kubernetes/objects.js'
import {namedPath} from '../kubernetes/resources.js'
import {jobTarget, listRuns} from './run.js'
import {byNewest, configuredJob, type JobRun} from './runs.js'

export interface JobStatusOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  /** Jobs to show; none: every configured job (with a tenant, those deploy renders for it). */
  jobs?: string[]
  /** --tenant: the dedicated tenant whose jobs are shown (its namespace, and its cluster for a dedicated cluster). */
  tenant?: string
  /** Runs listed per job, newest first. */
  limit?: number
  now?: Date
}

export interface JobStatus {
  job: string
  namespace: string
  /** A CronJob retailops deployed exists for it. */
  deployed: boolean
  /** No schedule: a suspended CronJob only `jobs run` starts. */
  oneOff: boolean
  schedule?: string
  timeZone?: string
  suspended: boolean
  concurrencyPolicy?: string
  image?: string
  lastScheduleTime?: string
  lastSuccessfulTime?: string
  /** The next time the controller starts it (none when one-off or suspended). */
  nextRun?: string
  active: string[]
  /** Newest first. */
  runs: JobRun[]
  /** The newest finished run, when it failed. */
  lastFailure?: JobRun
}

export interface JobsStatusResult {
  environment: string
  /** --tenant: the tenant whose jobs are shown. */
  tenant?: string
  namespace: string
  jobs: JobStatus[]
  /** Jobs whose newest finished run failed. */
  failing: string[]
}

/** `retailops jobs status`: each job's CronJob as deployed, its last runs, failures and next scheduled run. */
export async function jobsStatus(options: JobStatusOptions): Promise<JobsStatusResult> {
  const {project} = options
  const {config} = project
  // --tenant: a dedicated tenant's namespace (and cluster); a shared tenant's jobs are the environment's, shared by all of them.
  const tenant =
    options.tenant === undefined ? undefined : resolveTenant(config, options.env, options.tenant, project.dir)
  const runsFor = (job: string) => !tenant || tenant.shared || tenantRunsJob(config, tenant.tenant, job)
  const names = options.jobs?.length ? [...new Set(options.jobs)] : Object.keys(config.jobs).filter(runsFor)
  for (const n of names) configuredJob(config, n)
  // A job named that deploy does not render for the tenant is refused before the cluster is asked.
  if (tenant && !tenant.shared) for (const n of names) jobTarget(project, options.env, n, options.tenant)
  const env = tenant?.env ?? options.env
  const namespace = env.namespace
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  const now = options.now ?? new Date()
  const jobs = await Promise.all(
    names.map(async (job): Promise<JobStatus> => {
      const cron = await readObject<CronJob>(http, namedPath('CronJob', job, namespace)).catch((error: unknown) => {
        throw kubeError(error, `reading CronJob ${namespace}/${job}`)
      })
      const deployed = Boolean(cron && cron.metadata.labels?.[LABEL.managedBy] === MANAGED_BY)
      const configured = project.config.jobs[job]
      const runs = deployed ? (await listRuns(http, namespace, job)).sort(byNewest) : []
      const spec = deployed ? cron!.spec! : undefined
      const oneOff = deployed ? !configured.schedule && spec!.suspend === true : !configured.schedule
      const suspended = spec?.suspend ?? (configured.suspend || oneOff)
      const schedule = oneOff ? undefined : (spec?.schedule ?? configured.schedule)
      const timeZone = spec ? spec.timeZone : configured.timeZone
      const next =
        deployed && schedule && !suspended ? nextRuns(parseCron(schedule), timeZone ?? 'UTC', now, 1)[0] : undefined
      const finished = runs.find((r) => r.outcome !== 'running')
      return {
        job,
        namespace,
        deployed,
        oneOff,
        ...(schedule ? {schedule} : {}),
        ...(timeZone ? {timeZone} : {}),
        suspended,
        concurrencyPolicy: (spec?.concurrencyPolicy as string | undefined) ?? configured.concurrencyPolicy,
        image: (spec?.jobTemplate.spec?.template?.spec as {containers?: {image?: string}[]} | undefined)
          ?.containers?.[0]?.image,
        lastScheduleTime: cron?.status?.lastScheduleTime,
        lastSuccessfulTime: cron?.status?.lastSuccessfulTime,
        ...(next ? {nextRun: next.toISOString()} : {}),
        active: runs.filter((r) => r.outcome === 'running').map((r) => r.name),
        runs: runs.slice(0, options.limit ?? 5),
        ...(finished?.outcome === 'failed' ? {lastFailure: finished} : {}),
      }
    }),
  )
  return {
    environment: env.name,
    ...(tenant ? {tenant: tenant.tenant.name} : {}),
    namespace,
    jobs,
    failing: jobs.filter((j) => j.lastFailure).map((j) => j.job),
  }
}
