/** Human renderings of an SloReport: the terminal table and the self-contained HTML report. */
import {
  badge,
  html,
  kpis,
  lineChart,
  meter,
  note,
  renderPage,
  table,
  timeline,
  type Html,
  type Tone,
} from '../report/index.js'
import {makeChalk} from '../ui/terminal.js'
import {renderTable} from '../ui/table.js'
import type {SloState} from './maths.js'
import type {SloReport, SloResult} from './status.js'

export const STATE_TONE: Record<SloState, Tone> = {
  ok: 'good',
  ticket: 'warn',
  page: 'bad',
  exhausted: 'bad',
  'no-data': 'muted',
}

export function percent(ratio: number | null, digits = 2): string {
  return ratio === null ? 'no data' : `${(ratio * 100).toFixed(digits)} %`
}

export function burn(value: number | null): string {
  if (value === null) return '–'
  return value >= 100 ? `${value.toFixed(0)}×` : value >= 10 ? `${value.toFixed(1)}×` : `${value.toFixed(2)}×`
}

function sliText(s: SloResult): string {
  return s.sli === null ? 'no data' : `${s.sli.toFixed(3)} %`
}

export function renderSloTable(r: SloReport): string {
  const c = makeChalk()
  const colour: Record<SloState, (t: string) => string> = {
    ok: c.green,
    ticket: c.yellow,
    page: c.red,
    exhausted: c.red.bold,
    'no-data': c.dim,
  }
  const burnOf = (s: SloResult, w: string) => burn(s.burnRates.find((b) => b.window === w)?.burnRate ?? null)
  const rows = renderTable(r.slos, [
    {header: 'SERVICE', value: (s) => s.service},
    {header: 'SLO', value: (s) => s.slo},
    {header: 'OBJECTIVE', value: (s) => `${s.objective} % / ${s.window}`, align: 'right'},
    {header: 'SLI', value: (s) => sliText(s), align: 'right'},
    {header: 'BUDGET LEFT', value: (s) => percent(s.budgetRemaining, 1), align: 'right'},
    {header: '5m', value: (s) => burnOf(s, '5m'), align: 'right'},
    {header: '1h', value: (s) => burnOf(s, '1h'), align: 'right'},
    {header: '6h', value: (s) => burnOf(s, '6h'), align: 'right'},
    {header: '1d', value: (s) => burnOf(s, '1d'), align: 'right'},
    {header: '3d', value: (s) => burnOf(s, '3d'), align: 'right'},
    {header: 'STATUS', value: (s) => colour[s.status](s.status)},
  ])
  const lines = [`SLO status at ${r.at} from ${r.prometheus} (burn rates: error ratio ÷ error budget)`, '', rows]
  for (const s of r.slos) {
    const firing = s.alerts.filter((a) => a.active)
    if (firing.length)
      lines.push(
        `${colour[s.status]('▲')} ${s.service}/${s.slo}: ${firing.map((a) => `${a.severity} ${a.long}/${a.short} > ${burn(a.factor)}`).join(', ')}${s.timeToExhaustion ? `; budget gone in ${s.timeToExhaustion} at the 1h rate` : ''}`,
      )
    if (s.status === 'no-data') lines.push(`${c.dim('–')} ${s.service}/${s.slo}: ${s.missing.join('; ') || 'no data'}`)
  }
  lines.push(
    '',
    r.gate.pass
      ? c.green('Gate: pass (no exhausted budget, no page-level burn).')
      : c.red(
          `Gate: fail (${r.gate.blocking.map((b) => `${b.service}/${b.slo} ${b.status}`).join(', ') || 'SLOs without data'}).`,
        ),
  )
  return lines.join('\n')
}

function burnCell(value: number | null, factor?: number): Html {
  if (value === null) return badge('no data', 'muted')
  const tone: Tone = factor !== undefined && value > factor ? 'bad' : value > 1 ? 'warn' : 'good'
  return badge(burn(value), tone)
}

/** Spans where the 1h burn rate was above the page or ticket factor, for the timeline. */
function burnSpans(s: SloResult): {start: number; end: number; label: string; tone: Tone}[] {
  const points = s.history ?? []
  const page = s.alerts.find((a) => a.id === 'page-quick')?.factor ?? 14.4
  const ticket = s.alerts.find((a) => a.id === 'ticket-quick')?.factor ?? 3
  const step = points.length > 1 ? points[1][0] - points[0][0] : 300_000
  const spans: {start: number; end: number; label: string; tone: Tone}[] = []
  for (const [t, v] of points) {
    const level = v === null ? 'no data' : v > page ? 'page' : v > ticket ? 'ticket' : undefined
    if (!level) continue
    const tone: Tone = level === 'page' ? 'bad' : level === 'ticket' ? 'warn' : 'muted'
    const last = spans.at(-1)
    if (last && last.label === level && t - last.end <= step) last.end = t + step
    else spans.push({start: t, end: t + step, label: level, tone})
  }
  return spans
}

export function renderSloHtml(r: SloReport, generatedAt = new Date()): string {
  const at = Date.parse(r.at)
  const counts = r.counts
  const sections: {title: string; intro?: string; body: Html[]}[] = [
    {
      title: 'Summary',
      body: [
        kpis([
          {label: 'SLOs', value: String(r.slos.length), hint: `${counts.ok} ok`},
          {label: 'Page', value: String(counts.page), tone: counts.page ? 'bad' : 'good'},
          {label: 'Ticket', value: String(counts.ticket), tone: counts.ticket ? 'warn' : 'good'},
          {label: 'Exhausted', value: String(counts.exhausted), tone: counts.exhausted ? 'bad' : 'good'},
          {label: 'No data', value: String(counts['no-data']), tone: counts['no-data'] ? 'warn' : 'neutral'},
          {label: 'Release gate', value: r.gate.pass ? 'pass' : 'fail', tone: r.gate.pass ? 'good' : 'bad'},
        ]),
        table(r.slos, [
          {
            header: 'Service / SLO',
            value: (s) => html`<b>${s.service} / ${s.slo}</b><br /><span class="subtitle">${s.errorDefinition}</span>`,
          },
          {
            header: 'SLI (objective, window)',
            value: (s) =>
              html`<span class="nowrap">${sliText(s)}</span><br /><span class="subtitle nowrap"
                  >${s.objective} % · ${s.window}</span
                >`,
            numeric: true,
          },
          {
            header: 'Budget left',
            value: (s) =>
              html`<span class="nowrap"
                >${meter({value: s.budgetRemaining, tone: STATE_TONE[s.status] === 'muted' ? 'good' : STATE_TONE[s.status], width: 64})}
                ${percent(s.budgetRemaining, 1)}</span
              >`,
          },
          {
            header: 'Burn 1h · 6h · 1d · 3d',
            value: (s) =>
              html`<span class="nowrap"
                >${['1h', '6h', '1d', '3d'].map((w) => html`${burnCell(s.burnRates.find((b) => b.window === w)?.burnRate ?? null)} `)}</span
              >`,
          },
          {header: 'Status', value: (s) => badge(s.status, STATE_TONE[s.status])},
        ]),
        ...(r.gate.pass
          ? []
          : [
              note(
                `Releases are blocked by: ${r.gate.blocking.map((b) => `${b.service}/${b.slo} (${b.status})`).join(', ') || 'SLOs without data'}.`,
                'bad',
              ),
            ]),
        ...r.slos
          .filter((s) => s.status === 'no-data')
          .map((s) =>
            note(`${s.service}/${s.slo}: ${s.missing.join('; ') || 'no data'} — shown as missing, not as met.`, 'warn'),
          ),
      ],
    },
  ]
  const withHistory = r.slos.filter((s) => s.history && s.history.length > 0)
  if (withHistory.length) {
    const start = Math.min(...withHistory.map((s) => s.history![0][0]))
    sections.push({
      title: 'Burn timeline',
      intro:
        'Periods when the 1-hour burn rate was above the page (red) or ticket (amber) factor of the fast pairs, across each SLO window.',
      body: [
        timeline({
          start,
          end: at,
          lanes: withHistory.map((s) => ({label: `${s.service}/${s.slo}`, spans: burnSpans(s)})),
          legend: [
            {label: 'page-level burn', tone: 'bad'},
            {label: 'ticket-level burn', tone: 'warn'},
            {label: 'no data', tone: 'muted'},
          ],
        }),
      ],
    })
  }
  for (const s of r.slos) {
    const pairs = table(s.alerts, [
      {header: 'Severity', value: (a) => badge(a.severity, a.severity === 'page' ? 'bad' : 'warn')},
      {header: 'Long / short window', value: (a) => `${a.long} / ${a.short}`},
      {header: 'Budget share', value: (a) => `${a.budgetPercent} %`, numeric: true},
      {header: 'Factor', value: (a) => burn(a.factor), numeric: true},
      {header: 'Long burn', value: (a) => burnCell(a.longBurn, a.factor), numeric: true},
      {header: 'Short burn', value: (a) => burnCell(a.shortBurn, a.factor), numeric: true},
      {
        header: 'Firing',
        value: (a) =>
          a.active === null
            ? badge('no data', 'muted')
            : a.active
              ? badge('yes', a.severity === 'page' ? 'bad' : 'warn')
              : badge('no', 'good'),
      },
    ])
    const body: Html[] = [
      kpis([
        {label: 'Status', value: s.status, tone: STATE_TONE[s.status]},
        {label: `SLI over ${s.window}`, value: sliText(s), hint: `objective ${s.objective} %`},
        {
          label: 'Budget left',
          value: percent(s.budgetRemaining, 1),
          hint: s.timeToExhaustion ? `gone in ${s.timeToExhaustion} at the 1h rate` : undefined,
          tone: STATE_TONE[s.status],
        },
        {
          label: 'Events',
          value: s.events === null ? 'no data' : Math.round(s.events).toLocaleString('en-US'),
          hint:
            s.timeAveragedErrorRatio === null
              ? undefined
              : `time-averaged SLI ${((1 - s.timeAveragedErrorRatio) * 100).toFixed(3)} %`,
        },
      ]),
      pairs,
    ]
    if (s.history?.length) {
      const page = s.alerts.find((a) => a.id === 'page-quick')!.factor
      const ticket = s.alerts.find((a) => a.id === 'ticket-quick')!.factor
      body.push(
        lineChart({
          title: '1-hour burn rate across the SLO window',
          series: [{label: '1h burn rate', tone: 'info', points: s.history}],
          thresholds: [
            {label: `page ${burn(page)}`, value: page, tone: 'bad'},
            {label: `ticket ${burn(ticket)}`, value: ticket, tone: 'warn'},
            {label: '1× (budget lasts the window)', value: 1, tone: 'good'},
          ],
          yFormat: (n) => `${n}×`,
        }),
      )
    }
    sections.push({
      title: `${s.service} / ${s.slo}`,
      intro: `${s.description ? `${s.description}. ` : ''}Errors: ${s.errorDefinition}. Error budget ${(s.errorBudget * 100).toPrecision(3)} % of events.`,
      body,
    })
  }
  return renderPage({
    title: 'SLO report',
    subtitle: `Error budgets and burn rates at ${r.at}`,
    generatedAt,
    meta: [{label: 'Prometheus', value: r.prometheus}],
    sections,
    footer:
      'Generated by retailops slo. Burn-rate pairs: SRE workbook (2 % of the budget in 1h/5m, 5 % in 6h/30m for pages; 10 % in 1d/2h and 3d/6h for tickets).',
  })
}
