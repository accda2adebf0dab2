import {describe, expect, it} from 'vitest'

import {aggregate, allocate, GIB, idleTotals, type PricedNode} from '../../../src/cost/allocate.js'
import {BREAKDOWNS, type CostReport, keyFunction, poolSummaries} from '../../../src/cost/cost.js'
import {money, renderCostCsv, renderCostHtml, renderCostTable} from '../../../src/cost/render.js'

const H = 3_600_000
const END = Date.UTC(2026, 10, 25, 12)
const price = {cpuHour: 0.03, memoryGiBHour: 0.004, source: 'prices.default'}
const nodes: PricedNode[] = [
  {
    name: 'n1',
    pool: 'general',
    zone: 'a',
    instanceType: 'm6i.xlarge',
    spot: false,
    capacity: {cpu: 4, memory: 16 * GIB},
    allocatable: {cpu: 4, memory: 16 * GIB},
    createdMs: END - 48 * H,
    ready: true,
    price,
  },
]
const pods = [
  {
    namespace: 'shop',
    name: 'a',
    node: 'n1',
    phase: 'Running',
    startMs: END - 48 * H,
    service: 'checkout, "eu"',
    containers: [{name: 'app', requests: {cpu: 1, memory: GIB}}],
  },
  {
    namespace: 'shop',
    name: 'b',
    node: 'n1',
    phase: 'Running',
    startMs: END - 48 * H,
    service: '<script>',
    containers: [{name: 'app', requests: {cpu: 0.5, memory: GIB}}],
  },
]

function report(): CostReport {
  const r = allocate({
    nodes,
    pods,
    windowStartMs: END - 24 * H,
    windowEndMs: END,
    attribute: () => ({tenant: 'acme', tier: 'operational'}),
  })
  const idle = idleTotals(r.nodes)
  const opts = {windowHours: 24, idle, shareIdle: 'none' as const}
  return {
    cluster: {context: 'kwok', server: 'https://127.0.0.1:6443'},
    window: {window: '24h', start: new Date(END - 24 * H).toISOString(), end: new Date(END).toISOString(), hours: 24},
    currency: 'USD',
    pricing: {pools: [], note: ''},
    usage: {source: 'requests', detail: 'none', containers: 2, withUsage: 0},
    traffic: {source: 'none', detail: 'none'},
    aggregation: 'service',
    shareIdle: 'none',
    totals: {
      cost: 1,
      allocated: 0.5,
      idle: 0.4,
      overhead: 0.1,
      idlePercent: 0.44,
      hourly: 0.1,
      monthly: 73,
      efficiency: {cpu: null, ram: null, total: null},
    },
    allocations: aggregate(r.containers, keyFunction(['service']), opts),
    breakdowns: Object.fromEntries(
      BREAKDOWNS.map((b) => [b, aggregate(r.containers, keyFunction([b]), opts)]),
    ) as CostReport['breakdowns'],
    pools: poolSummaries(r.nodes),
    findings: [],
    findingsSkipped: ['excess-replicas: no traffic'],
    potentialMonthlySaving: 0,
    counts: {nodes: 1, pods: 2, containers: 2, unscheduledPods: 0, orphanPods: 0},
    filter: {},
    notes: [],
  }
}

describe('cost renderings', () => {
  it('formats small amounts with four decimals', () => {
    expect(money(1234.5)).toBe('1,234.50')
    expect(money(0.0123)).toBe('0.0123')
    expect(money(0)).toBe('0.00')
  })

  it('CSV: one header, one row per allocation, RFC 4180 quoting, empty cells for unknown efficiency', () => {
    const lines = renderCostCsv(report()).trimEnd().split('\r\n')
    expect(lines[0].startsWith('windowStart,windowEnd,aggregation,name,pods')).toBe(true)
    expect(lines).toHaveLength(1 + 3) // two services and __idle__
    const quoted = lines.find((l) => l.includes('checkout'))!
    expect(quoted).toContain(',"checkout, ""eu""",1,1,')
    const cells = lines[1].split(',')
    expect(cells[cells.length - 1]).toBe('USD')
  })

  it('the table names the usage source and what was not checked', () => {
    const text = renderCostTable(report())
    expect(text).toMatch(/Usage: requests \(0 of 2 containers measured\)/)
    expect(text).toMatch(/\(not checked\) excess-replicas: no traffic/)
    expect(text).toContain('__idle__')
  })

  it('the HTML report escapes names and is self-contained', () => {
    const page = renderCostHtml(report(), new Date(END))
    expect(page).toContain('&lt;script&gt;')
    expect(page).not.toMatch(/<script|<link /)
    expect(page.match(/<svg /g)!.length).toBeGreaterThan(5)
  })
})
