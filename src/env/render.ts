import {formatDuration} from '../config/duration.js'
import type {DestroyResult, ExtendResult, PreviewInfo, SweepResult} from './manage.js'
import type {CreatePreviewResult} from './preview.js'
import type {SweepScheduleResult} from './schedule.js'

const ago = (ms?: number) => (ms === undefined ? '-' : formatDuration(Math.max(0, ms)))

export function renderCreated(r: CreatePreviewResult): string {
  if (r.removed)
    return [
      `Preview ${r.name} was not created: ${r.apply.failed.length} object(s) could not be applied, so its namespace ${r.namespace} was deleted.`,
      ...r.apply.failed.map((f) => `  • ${f.ref}: ${f.message}`),
      `Outcome: ${r.outcome}. Fix the cause and run \`retailops env create ${r.name}\` again.`,
    ].join('\n')
  const lines = [
    `Preview ${r.name}: namespace ${r.namespace} (cluster ${r.cluster}), owner ${r.owner}, expires ${r.expires} (TTL ${r.ttl}); images from the ${r.source}.`,
    `Outcome: ${r.outcome} (${r.apply.created} created, ${r.apply.configured} configured, ${r.apply.unchanged} unchanged)`,
    '',
    'Reach it:',
  ]
  for (const x of r.reach)
    lines.push(`  ${x.service}: ${x.host}`, `    ${x.portForward}   # then http://127.0.0.1:${x.port}/`)
  lines.push('', `Extend: retailops env extend ${r.name} --ttl 8h    Remove: retailops env destroy ${r.name}`)
  return lines.join('\n')
}

export function renderPreviews(previews: PreviewInfo[], currency: string): string {
  if (previews.length === 0) return 'No previews.'
  const rows = [['NAME', 'NAMESPACE', 'OWNER', 'AGE', 'TTL LEFT', `COST SO FAR (${currency})`, 'SOURCE']]
  for (const p of previews)
    rows.push([
      p.name + (p.phase === 'Terminating' ? ' (deleting)' : ''),
      p.namespace,
      p.owner,
      ago(p.ageMs),
      p.ttlLeftMs === undefined ? 'unknown' : p.expired ? `expired ${ago(-p.ttlLeftMs)} ago` : ago(p.ttlLeftMs),
      p.costSoFar === undefined ? '-' : p.costSoFar.toFixed(4),
      p.source ?? '-',
    ])
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

export function renderExtended(r: ExtendResult): string {
  return `Preview ${r.name} now expires at ${r.expires} (TTL ${r.ttl} from now; it was ${r.previousExpires ?? 'unknown'}).`
}

export function renderDestroyed(r: DestroyResult): string {
  return r.gone
    ? `Preview ${r.name} destroyed: namespace ${r.namespace} and everything in it are gone.`
    : `Preview ${r.name}: namespace ${r.namespace} is being deleted.`
}

export function renderSwept(r: SweepResult): string {
  const lines = [
    r.deleted.length
      ? `Deleted ${r.deleted.length} expired preview(s): ${r.deleted.map((p) => p.name).join(', ')}.`
      : 'No expired previews.',
  ]
  if (r.kept.length)
    lines.push(`Kept ${r.kept.length}: ${r.kept.map((p) => `${p.name} (${ago(p.ttlLeftMs)} left)`).join(', ')}.`)
  return lines.join('\n')
}

export function renderSweepSchedule(s: SweepScheduleResult): string {
  return [
    `Scheduled the preview sweep: CronJob ${s.namespace}/${s.cronJob} "${s.schedule}" ${s.timeZone}, next ${s.nextRuns[0] ?? '-'}`,
    `  runs ${s.command.join(' ')} as ServiceAccount ${s.serviceAccount} (runner ${s.runnerImage})`,
  ].join('\n')
}
