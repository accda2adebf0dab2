import {formatDuration} from '../config/duration.js'
import {lineChart, timeline, type TimelineLane} from '../report/charts.js'
import {badge, type Html, html, kpis, note, renderPage, type ReportSection, table, type Tone} from '../report/html.js'
import {backupRows, stepsAgainstRto} from './backups.js'
import type {DatastoreTrend} from './history.js'
import type {DatastoreDrillResult, DrillRecord, DrillStep, ObjectiveMeasurement, StepStatus} from './types.js'

const STATUS_TEXT: Record<DrillRecord['status'], string> = {
  passed: 'PASSED',
  'target-missed': 'TARGET MISSED',
  'validation-failed': 'VALIDATION FAILED',
  error: 'ERROR',
  interrupted: 'INTERRUPTED',
}

const MEASURE_TEXT: Record<ObjectiveMeasurement['status'], string> = {
  pass: 'pass',
  fail: 'FAIL',
  'not-measured': 'not measured',
  'not-applicable': 'n/a',
}

const LEFTOVERS_INTRO =
  'Found when this drill started. What a drill killed on this host left was removed (its process is gone); the rest is left alone, because another drill may be using it'

function actual(m: ObjectiveMeasurement): string {
  return m.actualMs === undefined ? '–' : formatDuration(m.actualMs)
}

/** "+1m05s" from the drill's start: the timeline's time axis. */
function offset(record: DrillRecord, iso: string | undefined): string {
  if (!iso) return '–'
  const ms = Date.parse(iso) - Date.parse(record.startedAt)
  return `+${formatDuration(Math.max(0, ms))}`
}

/** "3 restored, 2 modified, 1 placeholder, 1 not restored" */
export function inventorySummary(d: Pick<DatastoreDrillResult, 'inventory'>): string {
  const counts = new Map<string, number>()
  for (const i of d.inventory ?? []) counts.set(i.outcome, (counts.get(i.outcome) ?? 0) + 1)
  return (
    ['restored', 'modified', 'placeholder', 'not-restored']
      .filter((o) => counts.has(o))
      .map((o) => `${counts.get(o)} ${o.replace('-', ' ')}`)
      .join(', ') || 'nothing'
  )
}

function evidenceText(value: unknown): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Escapes what Markdown tables and text would otherwise interpret. */
function md(text: unknown): string {
  return String(text ?? '')
    .replaceAll('\\', '\\\\')
    .replaceAll('|', '\\|')
    .replaceAll('\n', ' ')
    .replaceAll('`', '\\`')
}

function mdTable(headers: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '_none_\n'
  return (
    [
      `| ${headers.join(' | ')} |`,
      `| ${headers.map(() => '---').join(' | ')} |`,
      ...rows.map((r) => `| ${r.map(md).join(' | ')} |`),
    ].join('\n') + '\n'
  )
}

function expectText(expect: Record<string, unknown> | undefined): string {
  if (!expect) return ''
  return Object.entries(expect)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (k === 'matchesSource' ? 'matches source' : `${k} ${JSON.stringify(v)}`))
    .join(', ')
}

export function renderMarkdown(r: DrillRecord): string {
  const out: string[] = []
  out.push(`# DR drill ${r.id}: ${STATUS_TEXT[r.status]}`, '')
  out.push(
    mdTable(
      ['', ''],
      [
        ['Project / environment', `${r.project} / ${r.environment}`],
        ['Started', r.startedAt],
        ['Ended', `${r.endedAt} (${formatDuration(r.durationMs)})`],
        ['Ran by', r.ranBy.ci ?? `${r.ranBy.user}@${r.ranBy.host}`],
        ['Tool', `${r.tool.name} ${r.tool.version} (Node ${r.tool.node})`],
        ['Configuration', `${r.config.file} sha256:${r.config.sha256}`],
        [
          'Scope',
          [
            r.filters.tiers.length ? `tiers ${r.filters.tiers.join(', ')}` : '',
            r.filters.services.length ? `services ${r.filters.services.join(', ')}` : '',
            r.filters.datastores.length ? `datastores ${r.filters.datastores.join(', ')}` : '',
          ]
            .filter(Boolean)
            .join('; ') || 'everything configured',
        ],
        ['Exit', r.exit],
      ],
    ),
  )
  out.push('## Targets against actuals', '')
  out.push(
    mdTable(
      ['service', 'tier', 'RTO target', 'RTO actual', 'RTO', 'RPO target', 'RPO actual', 'RPO', 'result'],
      r.services.map((s) => [
        s.service,
        s.tier,
        s.rto.target,
        actual(s.rto),
        MEASURE_TEXT[s.rto.status],
        s.rpo.target,
        actual(s.rpo),
        MEASURE_TEXT[s.rpo.status],
        s.status === 'passed' ? 'pass' : 'FAIL',
      ]),
    ),
  )
  out.push('## Datastores', '')
  for (const d of r.datastores) out.push(...datastoreMarkdown(r, d))
  if (r.datastores.length === 0) out.push('_none selected_', '')
  out.push('## Recoverability', '')
  out.push(
    mdTable(
      ['service', 'check', 'subject', 'result', 'detail'],
      r.recoverability.map((c) => [c.service, c.kind, c.subject, c.status, c.detail]),
    ),
  )
  out.push('## Timeline', '')
  out.push(
    mdTable(
      ['scope', 'step', 'start', 'end', 'took', 'status', 'detail'],
      r.steps.map((s) => [
        s.scope,
        s.title,
        offset(r, s.startedAt),
        offset(r, s.endedAt),
        s.durationMs === undefined ? '–' : formatDuration(s.durationMs),
        s.status,
        s.detail ?? '',
      ]),
    ),
  )
  out.push(`Times are from the drill's start, ${r.startedAt}.`, '')
  out.push('## Cleanup', '')
  out.push(
    mdTable(
      ['what', 'resource', 'action', 'result', 'detail', 'at'],
      r.cleanup.map((c) => [c.kind, c.resource, c.action, c.status, c.detail ?? '', c.at]),
    ),
  )
  if (r.leftovers?.length) {
    out.push('## Left by earlier drills', '', `${LEFTOVERS_INTRO}:`, '')
    out.push(
      mdTable(
        ['what', 'name', 'where', 'drill', 'result', 'remove with'],
        r.leftovers.map((l) => [
          l.kind,
          l.name,
          l.where,
          l.drillId ?? '?',
          `${l.status ?? 'present'}${l.detail ? `: ${l.detail}` : ''}`,
          l.status === 'removed' ? '' : l.command,
        ]),
      ),
    )
  }
  if (r.leftoverCheck?.failures.length) {
    out.push(
      '## Leftovers check failed',
      '',
      `The look for targets left by earlier drills failed${r.leftoverCheck.checked.length ? ` for part of them (checked: ${r.leftoverCheck.checked.map(md).join(', ')})` : ''}: leftovers there are unknown, not absent.`,
      '',
    )
    out.push(
      mdTable(
        ['could not check', 'why', 'look by hand with'],
        r.leftoverCheck.failures.map((f) => [f.what, f.reason, f.command]),
      ),
    )
  } else if (r.leftoverCheck?.status === 'checked' && !r.leftovers?.length) {
    out.push(
      `No targets left by earlier drills (checked: ${r.leftoverCheck.checked.map(md).join(', ') || 'nothing to check'}).`,
      '',
    )
  }
  if (r.warnings.length > 0) out.push('## Warnings', '', ...r.warnings.map((w) => `- ${md(w)}`), '')
  return `${out.join('\n')}\n`
}

function datastoreMarkdown(r: DrillRecord, d: DatastoreDrillResult): string[] {
  const out = [`### ${d.name} (${d.provider}, ${d.tier}${d.service ? `, service ${d.service}` : ''}): ${d.status}`, '']
  out.push(`Restored from ${md(d.source)} into ${md(d.target)}.`, '')
  if (d.error) out.push(`**Error** (${d.error.code}): ${md(d.error.message)}`, '')
  if (d.finding) out.push(`**Not restored:** ${md(d.finding)}`, '')
  if (d.backup) out.push('Backup restored:', '', mdTable(['', ''], backupRows(d.backup)))
  const steps = stepsAgainstRto(r.steps, d.name, r.startedAt, d.rto.targetMs)
  if (steps.length > 0)
    out.push(
      `Steps against the RTO target (${d.rto.target}):`,
      '',
      mdTable(
        ['step', 'took', 'done at (from drill start)', 'share of RTO', 'status'],
        steps.map((x) => [
          `${x.name}: ${x.title}`,
          x.durationMs === undefined ? '–' : formatDuration(x.durationMs),
          x.endedAtMs === undefined ? '–' : `+${formatDuration(x.endedAtMs)}`,
          x.shareOfRto === undefined ? '–' : `${(x.shareOfRto * 100).toFixed(1)}%`,
          x.status,
        ]),
      ),
    )
  out.push(
    mdTable(
      ['', 'target', 'actual', 'result', 'how'],
      [
        ['RTO', d.rto.target, actual(d.rto), MEASURE_TEXT[d.rto.status], d.rto.detail],
        [
          'RPO',
          d.rpo.target,
          actual(d.rpo),
          MEASURE_TEXT[d.rpo.status],
          `${d.rpo.detail}${d.rpo.source ? ` (from ${d.rpo.source})` : ''}`,
        ],
      ],
    ),
  )
  out.push('Validations:', '')
  out.push(
    mdTable(
      ['name', 'query', 'expect', 'value', 'source value', 'result'],
      d.validations.map((v) => [
        v.name,
        v.query,
        expectText(v.expect as Record<string, unknown>),
        v.value ?? 'NULL',
        v.sourceValue === undefined ? '' : (v.sourceValue ?? 'NULL'),
        `${v.passed ? 'pass' : 'FAIL'}: ${v.message}`,
      ]),
    ),
  )
  if (d.inventory) {
    out.push(`What was restored (${inventorySummary(d)}):`, '')
    out.push(
      mdTable(
        ['kind', 'name', 'outcome', 'why'],
        d.inventory.map((i) => [i.kind, i.name, i.outcome, i.reason ?? '']),
      ),
    )
  }
  out.push('Evidence:', '')
  out.push(...Object.entries(d.evidence).map(([k, v]) => `- ${k}: \`${evidenceText(v).replaceAll('`', "'")}\``), '')
  return out
}

const STEP_TONE: Record<StepStatus, Tone> = {
  ok: 'good',
  failed: 'bad',
  warning: 'warn',
  skipped: 'muted',
  interrupted: 'neutral',
}
const STATUS_TONE: Record<DrillRecord['status'], Tone> = {
  passed: 'good',
  'target-missed': 'bad',
  'validation-failed': 'bad',
  error: 'bad',
  interrupted: 'warn',
}
const MEASURE_TONE: Record<ObjectiveMeasurement['status'], Tone> = {
  pass: 'good',
  fail: 'bad',
  'not-measured': 'warn',
  'not-applicable': 'muted',
}

function measureBadge(m: ObjectiveMeasurement): Html {
  return badge(MEASURE_TEXT[m.status], MEASURE_TONE[m.status])
}

/** Lanes of the timeline: one per datastore (and the recoverability checks), a span per step, a marker where the copy was validated. */
export function timelineLanes(r: DrillRecord): TimelineLane[] {
  const scopes = [...new Set(r.steps.map((s) => s.scope))]
  return scopes.map((scope) => {
    const steps = r.steps.filter((s) => s.scope === scope)
    const d = r.datastores.find((x) => x.name === scope)
    return {
      label: d ? `${scope} (RTO ${d.rto.target})` : scope,
      spans: steps.map((s: DrillStep) => ({
        start: Date.parse(s.startedAt),
        end: Date.parse(s.endedAt ?? r.endedAt),
        label: s.name,
        tone: STEP_TONE[s.status],
      })),
      markers: d?.validatedAt
        ? [
            {
              at: Date.parse(d.validatedAt),
              label: `validated, RTO ${actual(d.rto)}`,
              tone: d.rto.status === 'pass' ? 'good' : 'bad',
            },
          ]
        : [],
    }
  })
}

export function renderHtml(r: DrillRecord): string {
  const start = Date.parse(r.startedAt)
  const rtos = r.datastores.map((d) => d.rto.actualMs).filter((n): n is number => n !== undefined)
  const rpos = r.datastores.map((d) => d.rpo.actualMs).filter((n): n is number => n !== undefined)
  const longest = (values: number[]) => (values.length > 0 ? formatDuration(Math.max(...values)) : '–')
  const failedValidations = r.datastores.reduce((n, d) => n + d.validations.filter((v) => !v.passed).length, 0)
  const failedChecks = r.recoverability.filter((c) => c.status === 'fail').length
  const sections: ReportSection[] = [
    {
      title: 'Targets against actuals',
      intro:
        "RTO runs from the drill's start to the validated copy; RPO from the restored data's newest point to the drill's start.",
      body: [
        kpis([
          {label: 'Result', value: STATUS_TEXT[r.status], tone: STATUS_TONE[r.status], hint: `exit ${r.exit}`},
          {
            label: 'Longest RTO',
            value: longest(rtos),
            tone: r.datastores.some((d) => d.rto.status === 'fail') ? 'bad' : rtos.length > 0 ? 'good' : 'muted',
          },
          {
            label: 'Largest RPO',
            value: longest(rpos),
            tone: r.datastores.some((d) => d.rpo.status === 'fail') ? 'bad' : rpos.length > 0 ? 'good' : 'muted',
          },
          {
            label: 'Failed validations',
            value: String(failedValidations + failedChecks),
            tone: failedValidations + failedChecks > 0 ? 'bad' : 'good',
          },
        ]),
        table(r.services, [
          {header: 'Service', value: (s) => s.service},
          {header: 'Tier', value: (s) => s.tier},
          {header: 'RTO target', value: (s) => s.rto.target, numeric: true},
          {header: 'RTO actual', value: (s) => actual(s.rto), numeric: true},
          {header: 'RTO', value: (s) => measureBadge(s.rto)},
          {header: 'RPO target', value: (s) => s.rpo.target, numeric: true},
          {header: 'RPO actual', value: (s) => actual(s.rpo), numeric: true},
          {header: 'RPO', value: (s) => measureBadge(s.rpo)},
          {
            header: 'Result',
            value: (s) => badge(s.status === 'passed' ? 'pass' : 'FAIL', s.status === 'passed' ? 'good' : 'bad'),
          },
        ]),
      ],
    },
    {
      title: 'Timeline',
      intro: `Each step of the drill, from its start at ${r.startedAt}.`,
      body: r.steps.length
        ? [
            timeline({
              lanes: timelineLanes(r),
              start,
              end: Math.max(Date.parse(r.endedAt), start + 1),
              xFormat: (ms) => `+${formatDuration(ms - start)}`,
              legend: [
                {label: 'step done', tone: 'good'},
                {label: 'warning', tone: 'warn'},
                {label: 'failed', tone: 'bad'},
                {label: 'interrupted', tone: 'neutral'},
              ],
            }),
            table(r.steps, [
              {header: 'Scope', value: (s) => s.scope},
              {header: 'Step', value: (s) => s.title},
              {header: 'Start', value: (s) => offset(r, s.startedAt), numeric: true},
              {header: 'End', value: (s) => offset(r, s.endedAt), numeric: true},
              {
                header: 'Took',
                value: (s) => (s.durationMs === undefined ? '–' : formatDuration(s.durationMs)),
                numeric: true,
              },
              {header: 'Status', value: (s) => badge(s.status, STEP_TONE[s.status])},
              {header: 'Detail', value: (s) => s.detail ?? ''},
            ]),
          ]
        : note('No step ran.', 'warn'),
    },
    ...r.datastores.map((d) => datastoreSection(d, r)),
    {
      title: 'Recoverability',
      intro:
        'Deployed images pullable by digest (every manifest and blob) or rebuildable from source, referenced Secrets and ConfigMaps present, topic and search-index definitions kept as code.',
      body: r.recoverability.length
        ? table(r.recoverability, [
            {header: 'Service', value: (c) => c.service},
            {header: 'Check', value: (c) => c.kind},
            {header: 'Subject', value: (c) => breakable(c.subject)},
            {
              header: 'Result',
              value: (c) =>
                badge(
                  c.status,
                  c.status === 'pass' ? 'good' : c.status === 'fail' ? 'bad' : c.status === 'warn' ? 'warn' : 'muted',
                ),
            },
            {header: 'Detail', value: (c) => c.detail},
          ])
        : note('No recoverability checks ran.', 'muted'),
    },
    {
      title: 'Cleanup',
      intro: 'Everything the drill created, and what became of it.',
      body: r.cleanup.length
        ? table(r.cleanup, [
            {header: 'What', value: (c) => c.kind},
            {header: 'Resource', value: (c) => html`<code>${c.resource}</code>`},
            {header: 'Action', value: (c) => c.action},
            {
              header: 'Result',
              value: (c) =>
                badge(
                  c.status,
                  c.status === 'removed' || c.status === 'absent' ? 'good' : c.status === 'manual' ? 'warn' : 'bad',
                ),
            },
            {header: 'Detail', value: (c) => c.detail ?? ''},
            {header: 'At', value: (c) => offset(r, c.at), numeric: true},
          ])
        : note('The drill created nothing.', 'muted'),
    },
  ]
  if (r.leftovers?.length) {
    sections.push({
      title: 'Left by earlier drills',
      intro: `${LEFTOVERS_INTRO}.`,
      body: table(r.leftovers, [
        {header: 'What', value: (l) => l.kind},
        {header: 'Name', value: (l) => breakable(l.name)},
        {header: 'Where', value: (l) => l.where},
        {header: 'Drill', value: (l) => l.drillId ?? '?'},
        {
          header: 'Result',
          value: (l) =>
            html`${badge(l.status ?? 'present', l.status === 'removed' ? 'good' : l.status === 'failed' ? 'bad' : 'warn')}
            ${l.detail ?? ''}`,
        },
        {header: 'Remove with', value: (l) => (l.status === 'removed' ? '' : breakable(l.command))},
      ]),
    })
  }
  if (r.leftoverCheck?.failures.length) {
    sections.push({
      title: 'Leftovers check failed',
      intro: `The look for targets left by earlier drills failed${r.leftoverCheck.checked.length ? ` for part of them (checked: ${r.leftoverCheck.checked.join(', ')})` : ''}: leftovers there are unknown, not absent.`,
      body: table(r.leftoverCheck.failures, [
        {header: 'Could not check', value: (f) => f.what},
        {header: 'Why', value: (f) => breakable(f.reason)},
        {header: 'Look by hand with', value: (f) => breakable(f.command)},
      ]),
    })
  }
  if (r.warnings.length > 0) sections.push({title: 'Warnings', body: r.warnings.map((w) => note(w, 'warn'))})
  return renderPage({
    title: `DR drill ${r.id}: ${STATUS_TEXT[r.status]}`,
    subtitle: `${r.project} / ${r.environment}: ${r.datastores.length} datastore(s), ${r.services.length} service(s)`,
    meta: [
      {label: 'Started', value: r.startedAt},
      {label: 'Took', value: formatDuration(r.durationMs)},
      {label: 'Ran by', value: r.ranBy.ci ?? `${r.ranBy.user}@${r.ranBy.host}`},
      {label: 'Tool', value: `${r.tool.name} ${r.tool.version}, Node ${r.tool.node}`},
      {label: 'Config sha256', value: r.config.sha256.slice(0, 16)},
    ],
    sections,
    footer: `retailops dr drill ${r.id}. Configuration ${r.config.file} (sha256 ${r.config.sha256}). The record is drill.json beside this file.`,
  })
}

/** Code that may wrap after / @ : , (digests, ARNs and paths are long): the table stays on the page. */
function breakable(text: string): Html {
  return html`<code>${text.split(/(?<=[/@:,])/).map((part, i) => (i === 0 ? part : html`<wbr />${part}`))}</code>`
}

function datastoreSection(d: DatastoreDrillResult, r: DrillRecord): ReportSection {
  const steps = stepsAgainstRto(r.steps, d.name, r.startedAt, d.rto.targetMs)
  const tone: Tone = d.status === 'passed' ? 'good' : d.status === 'interrupted' ? 'warn' : 'bad'
  return {
    title: `Datastore ${d.name}`,
    intro: `${d.provider}, tier ${d.tier}${d.service ? `, service ${d.service}` : ''}: restored from ${d.source} into ${d.target}.`,
    body: [
      html`<p>${badge(d.status, tone)}${d.error ? html` <b>${d.error.code}</b>: ${d.error.message}` : ''}</p>`,
      ...(d.finding ? [note(`Not restored: ${d.finding}`, 'bad')] : []),
      ...(d.backup
        ? [
            table(backupRows(d.backup), [
              {header: 'Backup restored', value: ([k]) => k},
              {header: '', value: ([, v]) => breakable(v)},
            ]),
          ]
        : []),
      ...(steps.length
        ? [
            table(steps, [
              {header: `Step (RTO target ${d.rto.target})`, value: (x) => `${x.name}: ${x.title}`},
              {
                header: 'Took',
                value: (x) => (x.durationMs === undefined ? '–' : formatDuration(x.durationMs)),
                numeric: true,
              },
              {
                header: 'Done at',
                value: (x) => (x.endedAtMs === undefined ? '–' : `+${formatDuration(x.endedAtMs)}`),
                numeric: true,
              },
              {
                header: 'Share of RTO',
                value: (x) =>
                  x.shareOfRto === undefined
                    ? '–'
                    : badge(
                        `${(x.shareOfRto * 100).toFixed(1)}%`,
                        x.shareOfRto > 1 ? 'bad' : x.shareOfRto > 0.8 ? 'warn' : 'good',
                      ),
                numeric: true,
              },
              {header: 'Status', value: (x) => badge(x.status, STEP_TONE[x.status as StepStatus] ?? 'neutral')},
            ]),
          ]
        : []),
      table(
        [
          {k: 'RTO', m: d.rto, how: d.rto.detail},
          {k: 'RPO', m: d.rpo, how: `${d.rpo.detail}${d.rpo.source ? ` (from ${d.rpo.source})` : ''}`},
        ],
        [
          {header: '', value: (x) => x.k},
          {header: 'Target', value: (x) => x.m.target, numeric: true},
          {header: 'Actual', value: (x) => actual(x.m), numeric: true},
          {header: 'Result', value: (x) => measureBadge(x.m)},
          {header: 'How', value: (x) => x.how},
        ],
      ),
      d.validations.length
        ? table(d.validations, [
            {header: 'Validation', value: (v) => v.name},
            {header: 'Query', value: (v) => html`<code>${v.query}</code>`},
            {header: 'Expect', value: (v) => expectText(v.expect as Record<string, unknown>)},
            {header: 'Value', value: (v) => v.value ?? 'NULL'},
            {header: 'Source', value: (v) => (v.sourceValue === undefined ? '' : (v.sourceValue ?? 'NULL'))},
            {
              header: 'Result',
              value: (v) => html`${badge(v.passed ? 'pass' : 'FAIL', v.passed ? 'good' : 'bad')} ${v.message}`,
            },
          ])
        : note('No validation ran.', 'warn'),
      ...(d.inventory
        ? [
            html`<p>What was restored: ${inventorySummary(d)}.</p>`,
            table(d.inventory, [
              {header: 'Kind', value: (i) => i.kind},
              {header: 'Name', value: (i) => i.name},
              {
                header: 'Outcome',
                value: (i) =>
                  badge(
                    i.outcome,
                    i.outcome === 'failed'
                      ? 'bad'
                      : i.outcome === 'not-restored'
                        ? 'warn'
                        : i.outcome === 'restored'
                          ? 'good'
                          : 'neutral',
                  ),
              },
              {header: 'Why', value: (i) => i.reason ?? ''},
            ]),
          ]
        : []),
      table(Object.entries(d.evidence), [
        {header: 'Evidence', value: ([k]) => k},
        {header: 'Value', value: ([, v]) => breakable(evidenceText(v))},
      ]),
    ],
  }
}

/** `dr history --html`: each datastore's RTO and RPO over time, as line charts against their targets. */
export function renderHistoryHtml(trends: DatastoreTrend[], project: string, generatedAt = new Date()): string {
  const seconds = (ms: number | undefined): number | null => (ms === undefined ? null : ms / 1000)
  const sections: ReportSection[] = trends.map((t) => {
    const latest = t.points.at(-1)!
    const points = (pick: (p: DatastoreTrend['points'][number]) => number | undefined): [number, number | null][] =>
      t.points.map((p) => [Date.parse(p.at), seconds(pick(p))])
    return {
      title: `Datastore ${t.datastore}`,
      intro: `${t.points.length} drill(s); RTO met ${t.rtoMet} of ${t.rtoMeasured} measured, RPO met ${t.rpoMet} of ${t.rpoMeasured} measured.`,
      body: [
        lineChart({
          title: `RTO (seconds), target ${formatDuration(latest.rtoTargetMs)}`,
          series: [{label: 'RTO', tone: 'info', points: points((p) => p.rtoMs)}],
          thresholds: [
            {label: `target ${formatDuration(latest.rtoTargetMs)}`, value: latest.rtoTargetMs / 1000, tone: 'bad'},
          ],
          yFormat: (n) => `${n}s`,
        }),
        lineChart({
          title: `RPO (seconds), target ${formatDuration(latest.rpoTargetMs)}`,
          series: [{label: 'RPO', tone: 'info', points: points((p) => p.rpoMs)}],
          thresholds: [
            {label: `target ${formatDuration(latest.rpoTargetMs)}`, value: latest.rpoTargetMs / 1000, tone: 'bad'},
          ],
          yFormat: (n) => `${n}s`,
        }),
        table([...t.points].reverse(), [
          {header: 'Drill', value: (p) => p.drillId},
          {header: 'Started', value: (p) => p.at},
          {
            header: 'Status',
            value: (p) => badge(p.status, p.status === 'passed' ? 'good' : p.status === 'interrupted' ? 'warn' : 'bad'),
          },
          {header: 'RTO', value: (p) => (p.rtoMs === undefined ? '–' : formatDuration(p.rtoMs)), numeric: true},
          {header: 'RPO', value: (p) => (p.rpoMs === undefined ? '–' : formatDuration(p.rpoMs)), numeric: true},
          {header: 'Backup', value: (p) => (p.backup ? `${p.backup.kind} ${p.backup.time}` : '')},
        ]),
      ],
    }
  })
  return renderPage({
    title: `Restore drills of ${project}: RTO and RPO over time`,
    generatedAt,
    sections: sections.length ? sections : [{title: 'No drills', body: [note('No drill record matched.', 'warn')]}],
  })
}
