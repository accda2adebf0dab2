/** Human renderings of a CostReport: terminal tables, CSV and the self-contained HTML report. */
import {
  badge,
  barChart,
  grid,
  heading,
  html,
  type Html,
  kpis,
  meter,
  note,
  paragraph,
  renderPage,
  table,
  type Tone,
} from '../report/index.js'
import {renderTable} from '../ui/table.js'
import {type AllocationRow, GIB, IDLE} from './allocate.js'
import type {CostReport, PoolSummary} from './cost.js'
import type {Finding} from './findings.js'

/** 2 decimals, or 4 for amounts under 1 (a fresh cluster's window costs cents). */
export function money(n: number, digits?: number): string {
  const d = digits ?? (Math.abs(n) < 1 && n !== 0 ? 4 : 2)
  return n.toLocaleString('en-US', {minimumFractionDigits: d, maximumFractionDigits: d})
}

export function pct(ratio: number | null | undefined, digits = 0): string {
  return ratio === null || ratio === undefined ? 'n/a' : `${(ratio * 100).toFixed(digits)} %`
}

export function cores(n: number | null): string {
  if (n === null) return 'n/a'
  return n >= 10 ? n.toFixed(1) : n >= 1 ? n.toFixed(2) : `${Math.round(n * 1000)}m`
}

export function gib(bytes: number | null): string {
  if (bytes === null) return 'n/a'
  return bytes >= GIB ? `${(bytes / GIB).toFixed(2)}Gi` : `${Math.round(bytes / 1024 ** 2)}Mi`
}

function header(r: CostReport): string[] {
  const t = r.totals
  return [
    `Cost over ${r.window.window} on ${r.cluster.context} (${r.window.start} → ${r.window.end}), ${r.currency}`,
    `Total ${money(t.cost)}: allocated ${money(t.allocated)}, idle ${money(t.idle)} (${pct(t.idlePercent)} of allocatable), overhead ${money(t.overhead)}. Run-rate ${money(t.hourly, 4)}/h = ${money(t.monthly)}/month.`,
    `Efficiency: CPU ${pct(t.efficiency.cpu)}, RAM ${pct(t.efficiency.ram)}, total ${pct(t.efficiency.total)}. Usage: ${r.usage.source} (${r.usage.withUsage} of ${r.usage.containers} containers measured). Idle: ${r.shareIdle === 'none' ? 'shown as __idle__' : `shared ${r.shareIdle}`}.`,
  ]
}

export function renderCostTable(r: CostReport): string {
  const rows = renderTable(r.allocations, [
    {header: r.aggregation.toUpperCase(), value: (a) => a.name},
    {header: 'PODS', value: (a) => (a.name === IDLE ? '' : a.pods), align: 'right'},
    {header: 'CPU REQ', value: (a) => (a.name === IDLE ? '' : cores(a.cpuCoreRequestAverage)), align: 'right'},
    {header: 'CPU USE', value: (a) => (a.name === IDLE ? '' : cores(a.cpuCoreUsageAverage)), align: 'right'},
    {header: 'MEM REQ', value: (a) => (a.name === IDLE ? '' : gib(a.ramByteRequestAverage)), align: 'right'},
    {header: 'MEM USE', value: (a) => (a.name === IDLE ? '' : gib(a.ramByteUsageAverage)), align: 'right'},
    {header: 'CPU COST', value: (a) => money(a.cpuCost), align: 'right'},
    {header: 'RAM COST', value: (a) => money(a.ramCost), align: 'right'},
    ...(r.shareIdle === 'none'
      ? []
      : [{header: 'IDLE SHARE', value: (a: AllocationRow) => money(a.sharedCost), align: 'right' as const}]),
    {header: 'TOTAL', value: (a) => money(a.totalCost), align: 'right'},
    {header: 'EFFICIENCY', value: (a) => pct(a.totalEfficiency), align: 'right'},
    {header: '/MONTH', value: (a) => money(a.monthlyCost), align: 'right'},
  ])
  const pools = renderTable(r.pools, [
    {header: 'POOL', value: (p) => p.pool},
    {header: 'NODES', value: (p) => p.nodes, align: 'right'},
    {header: 'TYPE', value: (p) => `${p.instanceTypes.join(',') || '-'}${p.spot ? ' (spot)' : ''}`},
    {header: 'CPU/h', value: (p) => p.price.cpuHour.toFixed(6), align: 'right'},
    {header: 'GiB/h', value: (p) => p.price.memoryGiBHour.toFixed(6), align: 'right'},
    {header: 'CPU REQ', value: (p) => pct(p.cpu.utilisation), align: 'right'},
    {header: 'MEM REQ', value: (p) => pct(p.memory.utilisation), align: 'right'},
    {header: 'COST', value: (p) => money(p.cost), align: 'right'},
    {header: 'IDLE', value: (p) => `${money(p.idleCost)} (${pct(p.idlePercent)})`, align: 'right'},
    {header: 'PRICE SOURCE', value: (p) => p.price.source},
  ])
  const lines = [...header(r), '', rows, '', pools]
  if (r.findings.length) {
    lines.push('', `Findings: up to ${money(r.potentialMonthlySaving)} ${r.currency}/month (savings can overlap)`)
    const width = Math.max(...r.findings.map((f) => money(f.monthlySaving).length))
    for (const f of r.findings) {
      lines.push(`  ${money(f.monthlySaving).padStart(width)}/month  [${f.kind}] ${f.title}`)
      lines.push(`  ${' '.repeat(width + 8)}${f.detail}`)
      lines.push(`  ${' '.repeat(width + 8)}→ ${f.action}`)
    }
  } else {
    lines.push('', 'Findings: none.')
  }
  for (const s of r.findingsSkipped) lines.push(`  (not checked) ${s}`)
  for (const n of r.notes) lines.push(`Note: ${n}`)
  return lines.join('\n')
}

const CSV_COLUMNS: (keyof AllocationRow)[] = [
  'name',
  'pods',
  'containers',
  'cpuCoreRequestAverage',
  'cpuCoreUsageAverage',
  'cpuCoreHours',
  'cpuCost',
  'cpuEfficiency',
  'ramByteRequestAverage',
  'ramByteUsageAverage',
  'ramByteHours',
  'ramCost',
  'ramEfficiency',
  'sharedCost',
  'totalCost',
  'totalEfficiency',
  'hourlyCost',
  'monthlyCost',
]

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return ''
  const s = typeof v === 'number' ? String(Number(v.toPrecision(12))) : String(v)
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

/** One row per allocation of the --by aggregation, OpenCost's field names, RFC 4180 quoting. */
export function renderCostCsv(r: CostReport): string {
  const head = ['windowStart', 'windowEnd', 'aggregation', ...CSV_COLUMNS, 'currency']
  const rows = r.allocations.map((a) =>
    [r.window.start, r.window.end, r.aggregation, ...CSV_COLUMNS.map((c) => a[c]), r.currency].map(csvCell).join(','),
  )
  return `${[head.join(','), ...rows].join('\r\n')}\r\n`
}

function effTone(e: number | null): Tone {
  if (e === null) return 'muted'
  return e >= 0.65 ? 'good' : e >= 0.35 ? 'warn' : 'bad'
}

/** Allocations only: idle has its own chart in the summary and would dwarf the bars. */
function costBars(rows: AllocationRow[], title: string, currency: string, limit = 12): Html {
  return barChart({
    title,
    limit,
    format: (n) => money(n),
    bars: rows
      .filter((a) => a.name !== IDLE)
      .map((a) => ({
        label: a.name,
        segments: [
          {label: 'CPU', value: a.cpuCost, tone: 'info'},
          {label: 'RAM', value: a.ramCost, tone: 'good'},
          ...(a.sharedCost > 0 ? [{label: 'shared idle', value: a.sharedCost, tone: 'muted' as Tone}] : []),
        ],
        note: `${money(a.totalCost)} ${currency}`,
      })),
  })
}

function runRateBars(rows: AllocationRow[], title: string, currency: string, limit = 12): Html {
  return barChart({
    title,
    limit,
    format: (n) => money(n, 0),
    bars: rows
      .filter((a) => a.name !== IDLE)
      .map((a) => ({
        label: a.name,
        value: a.monthlyCost,
        tone: 'info',
        note: `${money(a.monthlyCost)} ${currency}/month`,
      })),
  })
}

function allocationTable(rows: AllocationRow[], caption: string, limit = 200): Html {
  return table(
    rows,
    [
      {header: 'Name', value: (a) => (a.name === IDLE ? badge(IDLE, 'muted') : a.name)},
      {header: 'Pods', value: (a) => (a.name === IDLE ? '' : a.pods), numeric: true},
      {
        header: 'CPU req / use',
        value: (a) => (a.name === IDLE ? '' : `${cores(a.cpuCoreRequestAverage)} / ${cores(a.cpuCoreUsageAverage)}`),
        numeric: true,
      },
      {
        header: 'RAM req / use',
        value: (a) => (a.name === IDLE ? '' : `${gib(a.ramByteRequestAverage)} / ${gib(a.ramByteUsageAverage)}`),
        numeric: true,
      },
      {header: 'CPU cost', value: (a) => money(a.cpuCost), numeric: true},
      {header: 'RAM cost', value: (a) => money(a.ramCost), numeric: true},
      {header: 'Shared idle', value: (a) => money(a.sharedCost), numeric: true},
      {header: 'Total', value: (a) => money(a.totalCost), numeric: true},
      {
        header: 'Efficiency',
        value: (a) => (a.name === IDLE ? '' : badge(pct(a.totalEfficiency), effTone(a.totalEfficiency))),
        numeric: true,
      },
      {header: 'Per month', value: (a) => money(a.monthlyCost), numeric: true},
    ],
    {caption, limit},
  )
}

const KIND_TONE: Record<Finding['kind'], Tone> = {
  'excess-replicas': 'warn',
  'overprovisioned-requests': 'warn',
  'idle-node-pool': 'info',
  'idle-non-production': 'bad',
  'spot-eligible-batch': 'info',
}

function poolTable(pools: PoolSummary[]): Html {
  return table(pools, [
    {header: 'Pool', value: (p) => html`${p.pool}${p.spot ? html` ${badge('spot', 'info')}` : ''}`},
    {header: 'Nodes', value: (p) => p.nodes, numeric: true},
    {header: 'Instance types', value: (p) => p.instanceTypes.join(', ') || '–'},
    {
      header: 'Zones',
      value: (p) => html`<span title="${p.zones.join(', ')}">${p.zones.length || '–'}</span>`,
      numeric: true,
    },
    {
      header: 'CPU requested',
      value: (p) =>
        html`<span class="nowrap"
          >${meter({value: p.cpu.utilisation, tone: 'info', width: 70})} ${pct(p.cpu.utilisation)}</span
        >`,
    },
    {
      header: 'RAM requested',
      value: (p) =>
        html`<span class="nowrap"
          >${meter({value: p.memory.utilisation, tone: 'good', width: 70})} ${pct(p.memory.utilisation)}</span
        >`,
    },
    {header: 'Cost', value: (p) => money(p.cost), numeric: true},
    {header: 'Idle', value: (p) => `${money(p.idleCost)} (${pct(p.idlePercent)})`, numeric: true},
    {
      header: 'Price CPU/h · GiB/h',
      value: (p) => `${p.price.cpuHour.toFixed(5)} · ${p.price.memoryGiBHour.toFixed(5)}`,
      numeric: true,
    },
    {header: 'Price source', value: (p) => p.price.source},
  ])
}

export function renderCostHtml(r: CostReport, generatedAt = new Date()): string {
  const t = r.totals
  const cur = r.currency
  const summary = [
    kpis([
      {
        label: `Cost over ${r.window.window}`,
        value: `${money(t.cost)} ${cur}`,
        hint: `${r.counts.nodes} nodes, ${r.counts.pods} pods`,
      },
      {label: 'Monthly run-rate', value: `${money(t.monthly)} ${cur}`, hint: `${money(t.hourly, 4)} ${cur}/h now`},
      {
        label: 'Idle',
        value: pct(t.idlePercent),
        hint: `${money(t.idle)} ${cur} not allocated`,
        tone: t.idlePercent === null ? 'neutral' : t.idlePercent > 0.5 ? 'bad' : t.idlePercent > 0.3 ? 'warn' : 'good',
      },
      {
        label: 'Efficiency',
        value: pct(t.efficiency.total),
        hint: `CPU ${pct(t.efficiency.cpu)} · RAM ${pct(t.efficiency.ram)}`,
        tone: effTone(t.efficiency.total),
      },
      {
        label: 'Potential savings',
        value: `${money(r.potentialMonthlySaving)} ${cur}`,
        hint: `${r.findings.length} findings, per month`,
        tone: r.findings.length ? 'warn' : 'good',
      },
    ]),
    note(
      html`Usage source: <b>${r.usage.source}</b> — ${r.usage.detail} (${r.usage.withUsage} of ${r.usage.containers}
        containers measured).`,
      r.usage.source === 'requests' ? 'warn' : 'info',
    ),
    note(html`Traffic: ${r.traffic.detail}.`, 'neutral'),
    barChart({
      title: `Where the ${money(t.cost)} ${cur} went`,
      format: (n) => money(n),
      bars: [
        {
          label: 'allocated',
          segments: [
            {label: 'allocated', value: t.allocated, tone: 'info'},
            {label: 'idle', value: t.idle, tone: 'warn'},
            {label: 'overhead (system-reserved)', value: t.overhead, tone: 'muted'},
          ],
          note: `${money(t.cost)} ${cur}`,
        },
      ],
    }),
    ...r.notes.map((n) => note(n, 'neutral')),
  ]
  const b = r.breakdowns
  const sections = [
    {title: 'Summary', body: summary},
    {
      title: 'Services',
      intro:
        "Each container costs max(request, usage) × its node's hourly CPU and RAM price for the hours it ran in the window (OpenCost).",
      body: [
        grid(
          costBars(b.service, `Cost over ${r.window.window} by service`, cur),
          runRateBars(b.service, 'Monthly run-rate by service (what runs now × 730 h)', cur),
        ),
        allocationTable(b.service, 'By service'),
      ],
    },
    {
      title: 'Namespaces, tenants and tiers',
      body: [
        grid(costBars(b.namespace, 'By namespace', cur, 10), costBars(b.tenant, 'By tenant', cur, 10)),
        grid(costBars(b.tier, 'By tier', cur, 10), costBars(b.pool, 'By node pool (allocated)', cur, 10)),
        allocationTable(b.namespace, 'By namespace', 50),
      ],
    },
    {
      title: 'Node pools',
      intro:
        'Node cost = capacity × price; idle = allocatable cost not allocated to containers; overhead = what kube- and system-reserved keep back.',
      body: [
        barChart({
          title: 'Pool cost: allocated, idle and overhead',
          format: (n) => money(n),
          bars: r.pools.map((p) => ({
            label: p.pool,
            segments: [
              {label: 'allocated', value: p.allocatedCost, tone: 'info'},
              {label: 'idle', value: p.idleCost, tone: 'warn'},
              {label: 'overhead', value: p.overheadCost, tone: 'muted'},
            ],
            note: `${money(p.cost)} ${cur} · ${pct(p.idlePercent)} idle`,
          })),
        }),
        poolTable(r.pools),
        paragraph(`Pricing: ${r.pricing.note}`),
      ],
    },
    {
      title: 'Findings',
      intro:
        "Waste patterns from the cost table of the production practices, each with an estimated monthly saving at the workload's own prices. Savings can overlap.",
      body: r.findings.length
        ? [
            barChart({
              title: `Estimated saving per month (${cur})`,
              format: (n) => money(n),
              limit: 15,
              bars: r.findings.map((f) => ({
                label: f.namespace
                  ? `${f.namespace}/${f.controller ?? f.service ?? ''}`.replace(/\/$/, '')
                  : (f.pool ?? f.kind),
                value: f.monthlySaving,
                tone: KIND_TONE[f.kind],
              })),
            }),
            table(r.findings, [
              {header: 'Kind', value: (f) => badge(f.kind, KIND_TONE[f.kind])},
              {header: 'Area / pattern', value: (f) => `${f.area}: ${f.wastePattern}`},
              {header: 'Finding', value: (f) => html`<b>${f.title}</b><br />${f.detail}`},
              {header: 'Action', value: (f) => f.action},
              {header: 'Saving / month', value: (f) => money(f.monthlySaving), numeric: true},
            ]),
            ...r.findingsSkipped.map((s) => note(`Not checked: ${s}`, 'neutral')),
          ]
        : [note('No findings.', 'good'), ...r.findingsSkipped.map((s) => note(`Not checked: ${s}`, 'neutral'))],
    },
    {
      title: `Allocations by ${r.aggregation}`,
      body: [
        heading(`Idle: ${r.shareIdle === 'none' ? 'shown as __idle__' : `shared (${r.shareIdle})`}`),
        allocationTable(r.allocations, `All rows by ${r.aggregation}`),
      ],
    },
  ]
  return renderPage({
    title: `Cost report: ${r.cluster.context}`,
    subtitle: `${r.window.window} window, ${r.window.start} → ${r.window.end}`,
    generatedAt,
    meta: [
      {label: 'Cluster', value: r.cluster.server},
      {label: 'Currency', value: r.currency},
      {label: 'Usage', value: r.usage.source},
      ...(r.filter.namespace ? [{label: 'Namespace', value: r.filter.namespace}] : []),
      ...(r.filter.nodeSelector ? [{label: 'Nodes', value: r.filter.nodeSelector}] : []),
    ],
    sections,
    footer:
      'Generated by retailops cost. Allocation model: OpenCost (max(request, usage) × node price; idle = node cost not allocated).',
  })
}
