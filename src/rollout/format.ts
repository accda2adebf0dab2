/** Human renderings of rollout results (the commands print them; --json returns the data). */
import {formatDuration} from '../config/duration.js'
import {renderTable} from '../ui/table.js'
import type {ActionResult, HistoryResult, UndoResult} from './control.js'
import type {RolloutStatus} from './status.js'
import {stepLabel} from './tree.js'
import type {ReleaseResult} from './release.js'

const ICON: Record<string, string> = {
  Healthy: '✔',
  Progressing: '◌',
  Analyzing: '◌',
  Promoting: '◌',
  Paused: '॥',
  Inconclusive: '⚠',
  Aborting: '✖',
  Aborted: '✖',
  TimedOut: '◷',
}

export function formatStatuses(rollouts: RolloutStatus[]): string {
  if (rollouts.length === 0) return 'No rollouts in this namespace.'
  const table = renderTable(rollouts, [
    {header: 'SERVICE', value: (r) => r.service},
    {header: 'STATUS', value: (r) => `${ICON[r.phase] ?? '?'} ${r.phase}${r.orphaned ? ' (no driver)' : ''}`},
    {header: 'STRATEGY', value: (r) => `${r.strategy}/${r.router}`},
    {header: 'STEP', value: (r) => stepLabel(r)},
    {
      header: 'WEIGHT',
      value: (r) =>
        r.actualWeight !== undefined && r.actualWeight !== r.weight
          ? `${r.weight} (actual ${r.actualWeight})`
          : String(r.weight),
    },
    {header: 'STABLE', value: (r) => r.stable.version},
    {header: 'CANARY', value: (r) => r.canary.version},
  ])
  const details = rollouts.map((r) => {
    const lines = [`${r.service}: ${r.message}`]
    if (r.reason && !r.message.includes(r.reason)) lines.push(`  reason: ${r.reason}`)
    if (r.analysis) lines.push(`  analysis (${r.analysis.kind}): ${r.analysis.message ?? r.analysis.phase}`)
    if (r.forced) lines.push(`  forced release: ${r.forced.reason} (by ${r.forced.by})`)
    if (r.job)
      lines.push(
        `  driven by Job ${r.job.namespace}/${r.job.name}: ${r.job.phase}${r.job.reason ? ` (${r.job.reason})` : ''}${r.orphaned ? '; it no longer drives the rollout: `retailops rollout resume ' + r.service + '` continues it' : ''}`,
      )
    return lines.join('\n')
  })
  return `${table}\n\n${details.join('\n')}`
}

export function formatAction(result: ActionResult): string {
  return `${result.action} (${result.drivenBy}):\n${formatStatuses(result.rollouts)}`
}

export function formatHistory(result: HistoryResult): string {
  if (result.entries.length === 0) return `No finished rollouts of ${result.service} yet.`
  const table = renderTable(result.entries, [
    {header: '#', value: (e) => e.number, align: 'right'},
    {header: 'STRATEGY', value: (e) => e.strategy},
    {header: 'RESULT', value: (e) => `${ICON[e.phase] ?? ''} ${e.phase}`},
    {header: 'FROM', value: (e) => e.stable.version},
    {header: 'TO', value: (e) => e.canary.version},
    {header: 'STARTED', value: (e) => e.startedAt.replace('T', ' ').slice(0, 19)},
    {
      header: 'TOOK',
      value: (e) => (e.finishedAt ? formatDuration(Date.parse(e.finishedAt) - Date.parse(e.startedAt)) : ''),
    },
    {
      header: 'WHY',
      value: (e) => `${e.reason ?? e.message}${e.forced ? ` [forced: ${e.forced.reason}]` : ''}`.slice(0, 100),
    },
  ])
  return result.current ? `${table}\n\nIn progress: ${result.current.phase} — ${result.current.message}` : table
}

export function formatUndo(result: UndoResult): string {
  const text =
    result.kind === 'abort'
      ? `Aborted the rollout of ${result.service}: traffic is back on ${result.to}.`
      : `${result.service} is back on ${result.to}${result.from ? ` (was ${result.from})` : ''}.`
  return result.forced
    ? `${text}\nRecorded as forced: ${result.forced.reason}${result.forced.overridden.length ? ` (overrode: ${result.forced.overridden.join('; ')})` : ''}`
    : text
}

export function formatRelease(release: ReleaseResult | undefined): string {
  if (!release) return ''
  const lines = [`${release.strategy} release:`]
  for (const r of release.rollouts) lines.push(`  ${ICON[r.phase] ?? '?'} ${r.service}: ${r.phase} — ${r.message}`)
  for (const s of release.initial)
    lines.push(`  ✔ ${s}: first release, rolled out directly (no stable version to compare with)`)
  for (const s of release.unchanged ?? []) lines.push(`  = ${s}: unchanged (runs these images already), not released`)
  if (release.rollouts.length === 0 && release.initial.length === 0)
    lines.push('  nothing to release: every service already runs its images')
  if (release.forced)
    lines.push(
      `  forced: ${release.forced.reason}${release.forced.overridden.length ? ` (overrode: ${release.forced.overridden.join('; ')})` : ''}`,
    )
  if (release.detached) {
    const j = release.detached
    lines.push(
      `  detached: Job ${j.namespace}/${j.name} drives it from here (runner ${j.runnerImage}, ServiceAccount ${j.serviceAccount}, at most ${formatDuration(j.activeDeadlineSeconds * 1000)})`,
    )
    lines.push(`  follow it: ${j.follow}`)
  }
  return lines.join('\n')
}
