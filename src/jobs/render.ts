import {renderTable} from '../ui/table.js'
import type {JobRunResult} from './run.js'
import type {JobRun} from './runs.js'
import type {JobsStatusResult} from './status.js'

function duration(ms: number | undefined): string {
  if (ms === undefined) return '-'
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`
}

function outcome(run: JobRun): string {
  return run.outcome === 'failed' ? `failed: ${run.reason ?? 'unknown'}` : run.outcome
}

export function renderJobRun(r: JobRunResult): string {
  const lines = [
    `Job ${r.namespace}/${r.name} (from CronJob ${r.cronJob}${r.tenant ? ` of tenant ${r.tenant}` : ''}, image ${r.image ?? '?'}): ${r.outcome}${
      r.run.durationMs !== undefined ? ` in ${duration(r.run.durationMs)}` : ''
    }`,
  ]
  if (r.outcome === 'failed' && r.run.message) lines.push(`  ${r.run.reason}: ${r.run.message}`)
  if (r.pods.length > 0) {
    lines.push('', 'Pods:')
    for (const p of r.pods)
      lines.push(
        `  ${p.name}  ${p.phase ?? '?'}${p.node ? ` on ${p.node}` : ''}${p.exitCode !== undefined ? `  exit ${p.exitCode}` : ''}${p.reason ? `  ${p.reason}` : ''}${p.message ? `: ${p.message}` : ''}`,
      )
  }
  if (r.explanation.length > 0) lines.push('', 'Why:', ...r.explanation.map((e) => `  ${e}`))
  for (const l of r.logs) {
    lines.push('', `Last log lines of ${l.pod}:`)
    if (l.error) lines.push(`  (${l.error})`)
    else lines.push(...(l.lines.length ? l.lines.map((x) => `  ${x}`) : ['  (none)']))
  }
  if (r.outcome === 'timed-out' || r.outcome === 'started')
    lines.push('', `Follow it with: retailops jobs status ${r.job}${r.tenant ? ` --tenant ${r.tenant}` : ''}`)
  return lines.join('\n')
}

export function renderJobsStatus(r: JobsStatusResult): string {
  if (r.jobs.length === 0) return `No jobs configured (retailops.yaml jobs:).`
  const table = renderTable(r.jobs, [
    {header: 'JOB', value: (j) => j.job},
    {header: 'SCHEDULE', value: (j) => (j.oneOff ? 'one-off' : `${j.schedule}${j.timeZone ? ` (${j.timeZone})` : ''}`)},
    {
      header: 'STATE',
      value: (j) =>
        !j.deployed
          ? 'not deployed'
          : j.active.length
            ? `running (${j.active.length})`
            : j.suspended && !j.oneOff
              ? 'suspended'
              : 'idle',
    },
    {header: 'LAST RUN', value: (j) => (j.runs[0] ? `${j.runs[0].createdAt ?? '?'} ${outcome(j.runs[0])}` : '-')},
    {header: 'DURATION', value: (j) => duration(j.runs[0]?.durationMs)},
    {header: 'NEXT RUN', value: (j) => j.nextRun ?? (j.oneOff ? 'jobs run' : '-')},
  ])
  const lines = [
    `Jobs in ${r.namespace} (environment ${r.environment}${r.tenant ? `, tenant ${r.tenant}` : ''}):`,
    table,
  ]
  for (const j of r.jobs) {
    if (j.runs.length > 1 || j.lastFailure) {
      lines.push('', `${j.job}: last ${j.runs.length} run(s)`)
      for (const run of j.runs)
        lines.push(
          `  ${run.name}  ${run.trigger}  ${run.startedAt ?? run.createdAt ?? '?'}  ${duration(run.durationMs)}  ${outcome(run)}`,
        )
    }
    if (j.lastFailure)
      lines.push(
        `  last failure ${j.lastFailure.name}: ${j.lastFailure.reason ?? 'unknown'}${j.lastFailure.message ? `: ${j.lastFailure.message}` : ''}`,
      )
  }
  return lines.join('\n')
}
