import type {RetailOpsConfig} from '../config/schema.js'
import {NotFoundError} from '../errors/index.js'
import type {Condition, Job, Pod} from '../kubernetes/kinds.js'
import {LABEL} from '../kubernetes/labels.js'

/** What Kubernetes and `kubectl create job --from=cronjob/…` put on a Job started by hand. */
export const INSTANTIATE_ANNOTATION = 'cronjob.kubernetes.io/instantiate'
/** The label the Job controller puts on a Job's pods. */
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name'

export type RunOutcome = 'succeeded' | 'failed' | 'running'

/** One run of a job (a Job the CronJob controller or `jobs run` created), as `jobs status` and `jobs run` report it. */
export interface JobRun {
  name: string
  trigger: 'scheduled' | 'manual'
  outcome: RunOutcome
  createdAt?: string
  startedAt?: string
  completedAt?: string
  durationMs?: number
  /** Pods that succeeded / failed so far. */
  succeeded: number
  failed: number
  /** Why it failed: the Job's Failed condition (BackoffLimitExceeded, DeadlineExceeded…). */
  reason?: string
  message?: string
}

/** The job's configuration, or NOT_FOUND naming the jobs retailops.yaml has. */
export function configuredJob(config: RetailOpsConfig, name: string) {
  const job = config.jobs[name]
  if (!job) {
    const known = Object.keys(config.jobs)
    throw new NotFoundError(`Unknown job "${name}".`, {
      nextSteps: [
        known.length
          ? `Known jobs: ${known.join(', ')}.`
          : 'retailops.yaml has no jobs: add one under jobs: (docs/jobs.md), then `retailops deploy`.',
      ],
    })
  }
  return job
}

function condition(job: Job, type: string): Condition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True')
}

/** A Job read back, as a run: finished when the controller set Complete (or SuccessCriteriaMet) or Failed. */
export function jobRun(job: Job): JobRun {
  const status = job.status
  const failed = condition(job, 'Failed') ?? condition(job, 'FailureTarget')
  const complete = condition(job, 'Complete') ?? condition(job, 'SuccessCriteriaMet')
  const outcome: RunOutcome = failed ? 'failed' : complete ? 'succeeded' : 'running'
  const startedAt = status?.startTime
  const completedAt = status?.completionTime ?? (failed ? failed.lastTransitionTime : undefined)
  return {
    name: job.metadata.name,
    trigger: job.metadata.annotations?.[INSTANTIATE_ANNOTATION] === 'manual' ? 'manual' : 'scheduled',
    outcome,
    createdAt: job.metadata.creationTimestamp,
    startedAt,
    completedAt: outcome === 'running' ? undefined : completedAt,
    durationMs:
      startedAt && completedAt && outcome !== 'running'
        ? Math.max(0, Date.parse(completedAt) - Date.parse(startedAt))
        : undefined,
    succeeded: status?.succeeded ?? 0,
    failed: status?.failed ?? 0,
    ...(failed ? {reason: failed.reason, message: failed.message} : {}),
  }
}

/** A run's pod in a few words: where it ran and how its container ended. */
export interface RunPod {
  name: string
  phase?: string
  node?: string
  exitCode?: number
  reason?: string
  message?: string
}

export function runPod(pod: Pod): RunPod {
  const status = pod.status
  const container = status?.containerStatuses?.[0]
  const terminated = container?.state?.terminated ?? container?.lastState?.terminated
  const waiting = container?.state?.waiting
  const unscheduled = status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')
  return {
    name: pod.metadata.name,
    phase: status?.phase,
    node: (pod.spec as {nodeName?: string} | undefined)?.nodeName,
    ...(terminated?.exitCode !== undefined ? {exitCode: terminated.exitCode} : {}),
    ...((terminated?.reason ?? waiting?.reason ?? unscheduled?.reason)
      ? {reason: terminated?.reason ?? waiting?.reason ?? unscheduled?.reason}
      : {}),
    ...((terminated?.message ?? waiting?.message ?? unscheduled?.message)
      ? {message: terminated?.message ?? waiting?.message ?? unscheduled?.message}
      : {}),
  }
}

/** Selects the Jobs of one configured job (the CronJob's job template carries the label to every run). */
export function runSelector(job: string): string {
  return `${LABEL.job}=${job}`
}

/** Newest first. */
export function byNewest(a: JobRun, b: JobRun): number {
  return (b.createdAt ?? '').localeCompare(a.createdAt ?? '') || b.name.localeCompare(a.name)
}
