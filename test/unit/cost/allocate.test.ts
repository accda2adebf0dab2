import {describe, expect, it} from 'vitest'

import {
  aggregate,
  allocate,
  GIB,
  IDLE,
  idleTotals,
  type PricedNode,
  shareIdleWeighted,
  UNALLOCATED,
} from '../../../src/cost/allocate.js'
import type {PodRecord} from '../../../src/cost/collect.js'

const H = 3_600_000
const END = Date.UTC(2026, 10, 25, 12)
const START = END - 10 * H

const price = {cpuHour: 0.03, memoryGiBHour: 0.004, source: 'test'}
const node = (name: string, extra: Partial<PricedNode> = {}): PricedNode => ({
  name,
  pool: 'general',
  zone: 'eu-west-1a',
  instanceType: 'm6i.xlarge',
  spot: false,
  capacity: {cpu: 4, memory: 16 * GIB},
  allocatable: {cpu: 3.5, memory: 14 * GIB},
  createdMs: START - 100 * H,
  ready: true,
  price,
  ...extra,
})
const pod = (name: string, extra: Partial<PodRecord>): PodRecord => ({
  namespace: 'shop',
  name,
  node: 'n1',
  phase: 'Running',
  startMs: START - H,
  service: name.replace(/-\w+$/, ''),
  containers: [{name: 'app', requests: {cpu: 1, memory: 2 * GIB}}],
  ...extra,
})

const pods: PodRecord[] = [
  pod('checkout-a', {}),
  pod('catalog-b', {startMs: END - 5 * H, containers: [{name: 'app', requests: {cpu: 0.5, memory: GIB}}]}),
  pod('report-c', {
    phase: 'Succeeded',
    startMs: END - 8 * H,
    endMs: END - 6 * H,
    controllerKind: 'Job',
    controller: 'report',
    containers: [{name: 'job', requests: {cpu: 1, memory: GIB}}],
  }),
  pod('pending-d', {node: undefined, phase: 'Pending'}),
]
const usage = new Map([['shop/checkout-a/app', {cpu: 1.5, memory: 1 * GIB}]])
const attribute = (p: PodRecord) => ({
  tenant: p.service === 'checkout' ? 'acme' : UNALLOCATED,
  tier: p.service === 'checkout' ? 'revenue-critical' : 'operational',
})

function run() {
  return allocate({nodes: [node('n1')], pods, usage, windowStartMs: START, windowEndMs: END, attribute})
}

describe('OpenCost allocation', () => {
  it('allocates max(request, usage) for the hours each container ran in the window', () => {
    const r = run()
    const [a, b, c] = r.containers
    // checkout: usage 1.5 cores over a 1-core request; memory use 1 GiB under a 2 GiB request.
    expect(a.cpuAllocated).toBe(1.5)
    expect(a.memAllocated).toBe(2 * GIB)
    expect(a.hours).toBe(10)
    expect(a.cpuCost).toBeCloseTo(1.5 * 0.03 * 10, 12)
    expect(a.ramCost).toBeCloseTo(2 * 0.004 * 10, 12)
    expect(a.hourlyCost).toBeCloseTo(1.5 * 0.03 + 2 * 0.004, 12)
    // catalog: started 5 h ago, no usage known: its requests.
    expect(b.hours).toBe(5)
    expect(b.cpuUsage).toBeNull()
    expect(b.cpuCost).toBeCloseTo(0.5 * 0.03 * 5, 12)
    // A finished Job: 2 h inside the window, nothing per hour now.
    expect(c.hours).toBe(2)
    expect(c.running).toBe(false)
    expect(c.hourlyCost).toBe(0)
    expect(c.cpuCost + c.ramCost).toBeCloseTo(2 * (0.03 + 0.004), 12)
    expect(r.unscheduledPods).toBe(1)
    expect(r.usageCoverage).toEqual({containers: 3, withUsage: 1})
  })

  it('node cost = capacity × price; idle = allocatable cost not allocated; overhead = capacity - allocatable', () => {
    const r = run()
    const n = r.nodes[0]
    expect(n.cost).toBeCloseTo((4 * 0.03 + 16 * 0.004) * 10, 12)
    const allocCpu = 1.5 * 0.03 * 10 + 0.5 * 0.03 * 5 + 1 * 0.03 * 2
    const allocRam = 2 * 0.004 * 10 + 1 * 0.004 * 5 + 1 * 0.004 * 2
    expect(n.idle.cpuCost).toBeCloseTo(3.5 * 0.03 * 10 - allocCpu, 12)
    expect(n.idle.ramCost).toBeCloseTo(14 * 0.004 * 10 - allocRam, 12)
    expect(n.overheadCost).toBeCloseTo(0.5 * 0.03 * 10 + 2 * 0.004 * 10, 12)
    // Everything adds up to the node's cost.
    expect(n.allocated.cpuCost + n.allocated.ramCost + n.idle.cpuCost + n.idle.ramCost + n.overheadCost).toBeCloseTo(
      n.cost,
      12,
    )
    expect(n.requested).toEqual({cpu: 1.5, memory: 3 * GIB})
    expect(n.pods).toBe(3)
  })

  it('counts a node only for the hours it existed, and never lets idle go negative', () => {
    const young = node('n1', {createdMs: END - 2 * H, allocatable: {cpu: 0.5, memory: GIB}})
    const r = allocate({nodes: [young], pods, usage, windowStartMs: START, windowEndMs: END, attribute})
    expect(r.nodes[0].hours).toBe(2)
    expect(r.nodes[0].idle).toEqual({cpuCost: 0, ramCost: 0})
  })

  it('aggregates with efficiency = usage ÷ request, cost-weighted, and an __idle__ row', () => {
    const r = run()
    const idle = idleTotals(r.nodes)
    const rows = aggregate(r.containers, (c) => c.service, {windowHours: 10, idle, shareIdle: 'none'})
    const costs = rows.slice(0, -1).map((x) => x.totalCost)
    expect(costs).toEqual([...costs].sort((x, y) => y - x))
    expect(rows.map((x) => x.name).sort()).toEqual(['catalog', 'checkout', 'report', IDLE].sort())
    const checkout = rows.find((x) => x.name === 'checkout')!
    expect(checkout.cpuEfficiency).toBeCloseTo(1.5, 12)
    expect(checkout.ramEfficiency).toBeCloseTo(0.5, 12)
    expect(checkout.totalEfficiency).toBeCloseTo(
      (1.5 * checkout.cpuCost + 0.5 * checkout.ramCost) / (checkout.cpuCost + checkout.ramCost),
      12,
    )
    expect(checkout.cpuCoreRequestAverage).toBeCloseTo(1, 12)
    expect(checkout.monthlyCost).toBeCloseTo(checkout.hourlyCost * 730, 12)
    // Unmeasured rows have no efficiency rather than a made-up one.
    expect(rows.find((x) => x.name === 'catalog')!.totalEfficiency).toBeNull()
    const idleRow = rows.find((x) => x.name === IDLE)!
    expect(idleRow.totalCost).toBeCloseTo(idle.cpuCost + idle.ramCost, 12)
    expect(rows.at(-1)!.name).toBe(IDLE)
    const sum = rows.reduce((s, x) => s + x.totalCost, 0)
    expect(sum).toBeCloseTo(r.nodes[0].cost - r.nodes[0].overheadCost, 12)
  })

  it("shares idle by each allocation's CPU and RAM cost (Kubecost's formula), or evenly", () => {
    const r = run()
    const idle = idleTotals(r.nodes)
    shareIdleWeighted(r.containers, idle)
    const weighted = aggregate(r.containers, (c) => c.service, {windowHours: 10, idle, shareIdle: 'weighted'})
    expect(weighted.some((x) => x.name === IDLE)).toBe(false)
    const cpuTotal = r.containers.reduce((s, c) => s + c.cpuCost, 0)
    const ramTotal = r.containers.reduce((s, c) => s + c.ramCost, 0)
    const checkout = weighted.find((x) => x.name === 'checkout')!
    expect(checkout.sharedCost).toBeCloseTo(
      (checkout.cpuCost / cpuTotal) * idle.cpuCost + (checkout.ramCost / ramTotal) * idle.ramCost,
      12,
    )
    expect(weighted.reduce((s, x) => s + x.sharedCost, 0)).toBeCloseTo(idle.cpuCost + idle.ramCost, 12)
    const even = aggregate(r.containers, (c) => c.tier, {windowHours: 10, idle, shareIdle: 'even'})
    for (const row of even) expect(row.sharedCost).toBeCloseTo((idle.cpuCost + idle.ramCost) / 2, 12)
  })
})
