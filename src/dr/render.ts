import {formatDuration} from '../config/duration.js'
import {makeChalk} from '../ui/terminal.js'
import {renderTable} from '../ui/table.js'
import type {BackupResult} from './backup.js'
import type {BackupScheduleResult} from './backup-schedule.js'
import {backupLine} from './backups.js'
import type {DatastoreTrend, DrillSummary} from './history.js'
import type {DrillPlan} from './plan.js'
import type {DrillScheduleResult, ScheduledDrill} from './schedule.js'
import {inventorySummary} from './report.js'
import type {DrillRecord, ObjectiveMeasurement} from './types.js'

/** Terminal renderings for the dr commands (strings; the command prints them). */

function measure(m: ObjectiveMeasurement): string {
  const c = makeChalk()
  const value = m.actualMs === undefined ? '–' : formatDuration(m.actualMs)
  const text = `${value} / ${m.target}`
  if (m.status === 'pass') return c.green(text)
  if (m.status === 'fail') return c.red(`${text} MISSED`)
  if (m.status === 'not-applicable') return c.dim('n/a')
  return c.yellow(`${text} (not measured)`)
}

export function renderDrillSummary(r: DrillRecord): string {
  const c = makeChalk()
  const verdict = {
    passed: c.green('PASSED'),
    'target-missed': c.red('TARGET MISSED'),
    'validation-failed': c.red('VALIDATION FAILED'),
    error: c.red('ERROR'),
    interrupted: c.yellow('INTERRUPTED'),
  }[r.status]
  const lines: string[] = [`${c.bold(`Drill ${r.id}`)}: ${verdict} in ${formatDuration(r.durationMs)}`, '']
  if (r.datastores.length > 0) {
    lines.push(
      renderTable(r.datastores, [
        {header: 'DATASTORE', value: (d) => d.name},
        {header: 'PROVIDER', value: (d) => d.provider},
        {header: 'TIER', value: (d) => d.tier},
        {header: 'RTO (actual / target)', value: (d) => measure(d.rto)},
        {header: 'RPO (actual / target)', value: (d) => measure(d.rpo)},
        {
          header: 'VALIDATIONS',
          value: (d) => `${d.validations.filter((v) => v.passed).length}/${d.validations.length}`,
        },
        {
          header: 'STATUS',
          value: (d) =>
            d.status === 'passed'
              ? c.green(d.status)
              : d.status === 'interrupted'
                ? c.yellow(d.status)
                : c.red(d.status),
        },
      ]),
    )
  }
  for (const d of r.datastores) {
    if (d.backup) lines.push(`  ${d.name}: backup ${backupLine(d.backup)}`)
    if (d.finding) lines.push(c.red(`  ✖ ${d.name} not restored: ${d.finding}`))
    if (d.inventory) {
      lines.push(`  ${d.name}: ${inventorySummary(d)}`)
      for (const i of d.inventory.filter((x) => x.outcome === 'not-restored'))
        lines.push(c.yellow(`    ▲ ${i.kind} ${i.name} not restored: ${i.reason}`))
      for (const i of d.inventory.filter((x) => x.outcome === 'failed'))
        lines.push(c.red(`    ✖ ${i.kind} ${i.name} failed: ${i.reason}`))
    }
    for (const v of d.validations.filter((x) => !x.passed)) lines.push(c.red(`  ✖ ${d.name} ${v.name}: ${v.message}`))
    if (d.error) lines.push(c.red(`  ✖ ${d.name}: ${d.error.message.split('\n')[0]}`))
  }
  if (r.services.length > 0) {
    lines.push(
      '',
      renderTable(r.services, [
        {header: 'SERVICE', value: (s) => s.service},
        {header: 'TIER', value: (s) => s.tier},
        {header: 'RTO', value: (s) => measure(s.rto)},
        {header: 'RPO', value: (s) => measure(s.rpo)},
        {
          header: 'CHECKS',
          value: (s) =>
            `${s.recoverability.passed} ok${s.recoverability.warned ? `, ${s.recoverability.warned} warn` : ''}${s.recoverability.failed ? c.red(`, ${s.recoverability.failed} failed`) : ''}`,
        },
        {header: 'RESULT', value: (s) => (s.status === 'passed' ? c.green('pass') : c.red('FAIL'))},
      ]),
    )
  }
  for (const check of r.recoverability.filter((x) => x.status === 'fail' || x.status === 'warn')) {
    lines.push(
      `  ${check.status === 'fail' ? c.red('✖') : c.yellow('▲')} ${check.service} ${check.kind} ${check.subject}: ${check.detail}`,
    )
  }
  for (const f of r.leftoverCheck?.failures ?? [])
    lines.push(
      c.yellow(
        `  ▲ leftovers check failed for ${f.what} (${f.reason}): unknown, not absent; look by hand with: ${f.command}`,
      ),
    )
  if (r.cleanup.length > 0) {
    lines.push('', c.bold('Cleanup:'))
    for (const a of r.cleanup) {
      const mark = a.status === 'removed' || a.status === 'absent' ? c.green('✔') : c.yellow('▲')
      lines.push(`  ${mark} ${a.action} ${a.kind} ${a.resource}: ${a.status}${a.detail ? ` (${a.detail})` : ''}`)
    }
  }
  lines.push('', `Report: ${r.files.html}`, `        ${r.files.markdown}`)
  return lines.join('\n')
}

export function renderDrillPlan(plan: DrillPlan): string {
  const c = makeChalk()
  const lines: string[] = [
    `${c.bold('Drill plan')} for ${plan.project} / ${plan.environment} (namespace ${plan.namespace}); the id shown (${plan.drillId}) changes on each run.`,
    '',
  ]
  for (const d of plan.datastores) {
    lines.push(
      `${c.bold(d.name)} (${d.provider}, tier ${d.tier}${d.service ? `, service ${d.service}` : ''}): RTO ${d.targets.rto}, RPO ${d.targets.rpo}`,
    )
    lines.push(`  from ${d.source}`, `  into ${d.target}`)
    d.steps.forEach((s, i) => lines.push(`  ${i + 1}. ${s}`))
    for (const v of d.validations)
      lines.push(c.dim(`     validation ${v.name}${v.recoveryPoint ? ' (recovery point)' : ''}: ${v.query}`))
    lines.push('')
  }
  if (plan.recoverability.length > 0) {
    lines.push(c.bold('Recoverability checks'))
    for (const r of plan.recoverability) for (const check of r.checks) lines.push(`  ${r.service}: ${check}`)
    lines.push('')
  }
  for (const w of plan.warnings) lines.push(c.yellow(`▲ ${w}`))
  for (const p of [...plan.problems, ...plan.refusals]) lines.push(c.red(`✖ ${p}`))
  const stops = plan.problems.length + plan.refusals.length
  lines.push(
    stops > 0
      ? c.red(`${stops} problem(s) would stop the drill before its first write.`)
      : c.green('The drill can run: `retailops dr drill` with the same flags.'),
  )
  return lines.join('\n')
}

export function renderHistory(drills: DrillSummary[]): string {
  if (drills.length === 0) return 'No drills recorded yet: run `retailops dr drill`.'
  const c = makeChalk()
  return renderTable(drills, [
    {header: 'ID', value: (d) => d.id},
    {header: 'STARTED', value: (d) => d.startedAt.replace(/\.\d+Z$/, 'Z')},
    {header: 'ENV', value: (d) => d.environment},
    {header: 'DATASTORES', value: (d) => d.datastores.join(', ') || '–'},
    {header: 'RTO', value: (d) => (d.rtoMs === undefined ? '–' : formatDuration(d.rtoMs)), align: 'right'},
    {header: 'RPO', value: (d) => (d.rpoMs === undefined ? '–' : formatDuration(d.rpoMs)), align: 'right'},
    {
      header: 'STATUS',
      value: (d) =>
        d.status === 'passed' ? c.green(d.status) : d.status === 'interrupted' ? c.yellow(d.status) : c.red(d.status),
    },
    {header: 'BY', value: (d) => d.ranBy},
  ])
}

export function renderSchedules(schedules: ScheduledDrill[]): string {
  if (schedules.length === 0) return ''
  const c = makeChalk()
  return [
    c.bold('Scheduled drills'),
    renderTable(schedules, [
      {header: 'NAME', value: (s) => s.name},
      {header: 'SCHEDULE', value: (s) => `${s.schedule} (${s.timeZone})`},
      {
        header: 'NEXT RUN',
        value: (s) => (s.suspended ? c.yellow('suspended') : (s.nextRun?.replace(/\.\d+Z$/, 'Z') ?? '–')),
      },
      {header: 'LAST RUN', value: (s) => s.lastScheduleTime ?? '–'},
      {header: 'LAST SUCCESS', value: (s) => s.lastSuccessfulTime ?? '–'},
      {header: 'RUNNING', value: (s) => String(s.active), align: 'right'},
    ]),
  ].join('\n')
}

export function renderDrillSchedule(r: DrillScheduleResult): string {
  const s = r.scheduled
  const lines = [
    `CronJob ${s.namespace}/${s.cronJob}: "${s.schedule}" (${s.timeZone}), next runs ${s.nextRuns.join(', ')}`,
    `  runs: ${s.command.join(' ')}`,
    `  as ServiceAccount ${r.serviceAccount} with ${r.runnerImage}; each run may take ${formatDuration(r.timeoutMs)} (the Job is stopped after ${formatDuration(r.activeDeadlineSeconds * 1000)}), never two at once`,
    `  retailops.yaml from ConfigMap ${r.configMap}${r.credentials.length + r.variables.length ? `; from Secret ${r.credentialsSecret}: ${[...r.credentials, ...r.variables].join(', ')}` : ''}`,
    'Each run keeps its record in the cluster: `retailops dr history` lists them with the next run; `retailops dr drill --unschedule` with the same selection removes the schedule.',
  ]
  return lines.join('\n')
}

export function renderBackup(r: BackupResult): string {
  const kinds = Object.entries(r.objects)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ')
  return [
    `Backup ${r.name} of ${r.namespace} written to ${r.folder}`,
    `  ${kinds}`,
    `  ${r.tarball.key}: ${r.tarball.size} bytes, SHA-256 ${r.tarball.sha256}`,
  ].join('\n')
}

export function renderBackupSchedule(r: BackupScheduleResult): string {
  return [
    `CronJob ${r.namespace}/${r.cronJob} backs up ${r.namespace} to ${r.location} on "${r.schedule}" (${r.timeZone}).`,
    `  next runs: ${r.nextRuns.join(', ')}`,
    `  runs: ${r.command.join(' ')}`,
    `  image: ${r.runnerImage}; ServiceAccount ${r.serviceAccount} (get and list of what it backs up, in ${r.namespace})`,
    ...(r.variables.length ? [`  from Secret: ${r.variables.join(', ')}`] : []),
  ].join('\n')
}

/** Each datastore's RTO and RPO over the drills listed: latest, worst and how often the targets were met. */
export function renderTrends(trends: DatastoreTrend[]): string {
  if (trends.length === 0) return ''
  const c = makeChalk()
  const fmt = (ms: number | undefined) => (ms === undefined ? '–' : formatDuration(ms))
  const worst = (xs: (number | undefined)[]) => {
    const m = xs.filter((x): x is number => x !== undefined)
    return m.length ? Math.max(...m) : undefined
  }
  const spark = (xs: (number | undefined)[], target: number) =>
    xs
      .slice(-12)
      .map((x) =>
        x === undefined
          ? c.dim('·')
          : x <= target
            ? c.green('▁▂▃▄▅▆▇'[Math.min(6, Math.floor((x / target) * 7))])
            : c.red('█'),
      )
      .join('')
  return [
    c.bold('RTO and RPO per datastore (oldest → newest):'),
    renderTable(trends, [
      {header: 'DATASTORE', value: (t) => t.datastore},
      {header: 'DRILLS', value: (t) => String(t.points.length)},
      {header: 'RTO TARGET', value: (t) => fmt(t.points.at(-1)?.rtoTargetMs)},
      {
        header: 'RTO LATEST / WORST',
        value: (t) => `${fmt(t.points.at(-1)?.rtoMs)} / ${fmt(worst(t.points.map((p) => p.rtoMs)))}`,
      },
      {header: 'RTO MET', value: (t) => `${t.rtoMet}/${t.rtoMeasured}`},
      {
        header: 'RTO TREND',
        value: (t) =>
          spark(
            t.points.map((p) => p.rtoMs),
            t.points.at(-1)?.rtoTargetMs ?? 1,
          ),
      },
      {header: 'RPO TARGET', value: (t) => fmt(t.points.at(-1)?.rpoTargetMs)},
      {
        header: 'RPO LATEST / WORST',
        value: (t) => `${fmt(t.points.at(-1)?.rpoMs)} / ${fmt(worst(t.points.map((p) => p.rpoMs)))}`,
      },
      {header: 'RPO MET', value: (t) => `${t.rpoMet}/${t.rpoMeasured}`},
      {
        header: 'RPO TREND',
        value: (t) =>
          spark(
            t.points.map((p) => p.rpoMs),
            t.points.at(-1)?.rpoTargetMs ?? 1,
          ),
      },
    ]),
  ].join('\n')
}
