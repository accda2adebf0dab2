/**
 * OpenCost's allocation model, pure:
 * - each container is allocated max(request, usage) of CPU and memory for the hours it ran
 *   inside the window, priced at its node's hourly CPU and RAM price;
 * - a node costs its capacity × price × the hours it existed in the window; what its allocatable
 *   share did not allocate is idle (`__idle__`), the part kube/system-reserved keep back is
 *   overhead;
 * - efficiency = usage ÷ request (core-hours, byte-hours); total efficiency weights CPU and RAM
 *   efficiency by their cost;
 * - idle is shown as its own row, or shared: weighted by each allocation's CPU and RAM cost
 *   (Kubecost's formula per resource), or evenly across the aggregated rows.
 */
import type {NodeRecord, PodRecord, Resources} from './collect.js'

export const GIB = 1024 ** 3
export const HOURS_PER_MONTH = 730
export const IDLE = '__idle__'
export const UNALLOCATED = '__unallocated__'

export interface Price {
  cpuHour: number
  memoryGiBHour: number
  source: string
}

export interface PricedNode extends NodeRecord {
  price: Price
}

/** Average usage over the window (cores, bytes) and peaks for rightsizing; null = not measured. */
export interface UsageSample {
  cpu: number | null
  memory: number | null
  cpuPeak?: number | null
  memoryPeak?: number | null
}

export interface Attribution {
  tenant: string
  tier: string
}

export interface ContainerAllocation {
  namespace: string
  pod: string
  container: string
  node: string
  pool: string
  zone?: string
  instanceType?: string
  spot: boolean
  service: string
  tenant: string
  tier: string
  controllerKind?: string
  controller?: string
  phase: string
  labels?: Record<string, string>
  /** Hours it ran inside the window, and from when to when (epoch ms, clamped to the window). */
  hours: number
  fromMs: number
  toMs: number
  /** Still running at the end of the window (counts in hourly and monthly run-rates). */
  running: boolean
  cpuRequest: number
  cpuUsage: number | null
  cpuPeak: number | null
  cpuAllocated: number
  memRequest: number
  memUsage: number | null
  memPeak: number | null
  memAllocated: number
  cpuCost: number
  ramCost: number
  /** Cost per hour now (0 when finished). */
  hourlyCost: number
  /** Idle cost shared onto this container (weighted sharing only). */
  sharedIdleCost: number
  sharedIdleHourly: number
  price: Price
}

export interface NodeCost {
  name: string
  pool: string
  zone?: string
  instanceType?: string
  spot: boolean
  price: Price
  hours: number
  /** Capacity × price × hours. */
  cost: number
  hourlyCost: number
  allocated: {cpuCost: number; ramCost: number}
  idle: {cpuCost: number; ramCost: number}
  idleHourly: number
  overheadCost: number
  requested: Resources
  allocatable: Resources
  capacity: Resources
  pods: number
}

export interface AllocateInput {
  nodes: PricedNode[]
  pods: PodRecord[]
  /** namespace/pod/container → usage; undefined = usage unknown (requests only). */
  usage?: Map<string, UsageSample>
  windowStartMs: number
  windowEndMs: number
  attribute: (pod: PodRecord) => Attribution
}

export interface AllocateResult {
  containers: ContainerAllocation[]
  nodes: NodeCost[]
  /** Pods with no node (Pending, unschedulable): no cost, but counted. */
  unscheduledPods: number
  /** Pods bound to a node outside the listed nodes (filtered out, or deleted). */
  orphanPods: number
  usageCoverage: {containers: number; withUsage: number}
}

function overlapHours(startMs: number, endMs: number, windowStart: number, windowEnd: number): number {
  const s = Math.max(startMs, windowStart)
  const e = Math.min(endMs, windowEnd)
  return e > s ? (e - s) / 3_600_000 : 0
}

export function allocate(input: AllocateInput): AllocateResult {
  const {windowStartMs: ws, windowEndMs: we} = input
  const nodeByName = new Map(input.nodes.map((n) => [n.name, n]))
  const containers: ContainerAllocation[] = []
  let unscheduled = 0
  let orphans = 0
  let withUsage = 0
  for (const pod of input.pods) {
    if (!pod.node) {
      if (pod.phase === 'Pending') unscheduled += 1
      continue
    }
    const node = nodeByName.get(pod.node)
    if (!node) {
      orphans += 1
      continue
    }
    const finished = pod.endMs !== undefined
    const hours = overlapHours(pod.startMs, pod.endMs ?? we, ws, we)
    const fromMs = Math.max(pod.startMs, ws)
    const toMs = Math.max(fromMs, Math.min(pod.endMs ?? we, we))
    const running = !finished && pod.startMs <= we
    const who = input.attribute(pod)
    for (const c of pod.containers) {
      const u = input.usage?.get(`${pod.namespace}/${pod.name}/${c.name}`)
      const cpuUsage = u?.cpu ?? null
      const memUsage = u?.memory ?? null
      if (cpuUsage !== null || memUsage !== null) withUsage += 1
      const cpuAllocated = Math.max(c.requests.cpu, cpuUsage ?? 0)
      const memAllocated = Math.max(c.requests.memory, memUsage ?? 0)
      const cpuHourly = cpuAllocated * node.price.cpuHour
      const ramHourly = (memAllocated / GIB) * node.price.memoryGiBHour
      containers.push({
        namespace: pod.namespace,
        pod: pod.name,
        container: c.name,
        node: node.name,
        pool: node.pool,
        zone: node.zone,
        instanceType: node.instanceType,
        spot: node.spot,
        service: pod.service,
        tenant: who.tenant,
        tier: who.tier,
        controllerKind: pod.controllerKind,
        controller: pod.controller,
        phase: pod.phase,
        labels: pod.labels,
        hours,
        fromMs,
        toMs,
        running,
        cpuRequest: c.requests.cpu,
        cpuUsage,
        cpuPeak: u?.cpuPeak ?? null,
        cpuAllocated,
        memRequest: c.requests.memory,
        memUsage,
        memPeak: u?.memoryPeak ?? null,
        memAllocated,
        cpuCost: cpuHourly * hours,
        ramCost: ramHourly * hours,
        hourlyCost: running ? cpuHourly + ramHourly : 0,
        sharedIdleCost: 0,
        sharedIdleHourly: 0,
        price: node.price,
      })
    }
  }
  return {
    containers,
    nodes: nodeCosts(input.nodes, containers, ws, we),
    unscheduledPods: unscheduled,
    orphanPods: orphans,
    usageCoverage: {containers: containers.length, withUsage},
  }
}

export function nodeCosts(nodes: PricedNode[], containers: ContainerAllocation[], ws: number, we: number): NodeCost[] {
  const perNode = new Map<
    string,
    {cpuCost: number; ramCost: number; hourly: number; cpu: number; memory: number; pods: Set<string>}
  >()
  for (const c of containers) {
    const acc = perNode.get(c.node) ?? {cpuCost: 0, ramCost: 0, hourly: 0, cpu: 0, memory: 0, pods: new Set<string>()}
    acc.cpuCost += c.cpuCost
    acc.ramCost += c.ramCost
    acc.hourly += c.hourlyCost
    if (c.running) {
      acc.cpu += c.cpuRequest
      acc.memory += c.memRequest
    }
    acc.pods.add(`${c.namespace}/${c.pod}`)
    perNode.set(c.node, acc)
  }
  return nodes.map((n) => {
    const hours = overlapHours(n.createdMs, we, ws, we)
    const cpuHourly = n.capacity.cpu * n.price.cpuHour
    const ramHourly = (n.capacity.memory / GIB) * n.price.memoryGiBHour
    const allocCpuHourly = n.allocatable.cpu * n.price.cpuHour
    const allocRamHourly = (n.allocatable.memory / GIB) * n.price.memoryGiBHour
    const used = perNode.get(n.name) ?? {cpuCost: 0, ramCost: 0, hourly: 0, cpu: 0, memory: 0, pods: new Set<string>()}
    const idle = {
      cpuCost: Math.max(0, allocCpuHourly * hours - used.cpuCost),
      ramCost: Math.max(0, allocRamHourly * hours - used.ramCost),
    }
    return {
      name: n.name,
      pool: n.pool,
      zone: n.zone,
      instanceType: n.instanceType,
      spot: n.spot,
      price: n.price,
      hours,
      cost: (cpuHourly + ramHourly) * hours,
      hourlyCost: cpuHourly + ramHourly,
      allocated: {cpuCost: used.cpuCost, ramCost: used.ramCost},
      idle,
      idleHourly: Math.max(0, allocCpuHourly + allocRamHourly - used.hourly),
      overheadCost: (cpuHourly - allocCpuHourly + ramHourly - allocRamHourly) * hours,
      requested: {cpu: used.cpu, memory: used.memory},
      allocatable: n.allocatable,
      capacity: n.capacity,
      pods: used.pods.size,
    }
  })
}

export interface IdleTotals {
  cpuCost: number
  ramCost: number
  hourly: number
}

export function idleTotals(nodes: NodeCost[]): IdleTotals {
  return nodes.reduce(
    (a, n) => ({
      cpuCost: a.cpuCost + n.idle.cpuCost,
      ramCost: a.ramCost + n.idle.ramCost,
      hourly: a.hourly + n.idleHourly,
    }),
    {cpuCost: 0, ramCost: 0, hourly: 0},
  )
}

/** Weighted sharing (Kubecost): each container takes idle CPU by its share of CPU cost, idle RAM by its share of RAM cost. */
export function shareIdleWeighted(containers: ContainerAllocation[], idle: IdleTotals): void {
  const cpu = containers.reduce((s, c) => s + c.cpuCost, 0)
  const ram = containers.reduce((s, c) => s + c.ramCost, 0)
  const hourly = containers.reduce((s, c) => s + c.hourlyCost, 0)
  for (const c of containers) {
    c.sharedIdleCost =
      (cpu > 0 ? (c.cpuCost / cpu) * idle.cpuCost : 0) + (ram > 0 ? (c.ramCost / ram) * idle.ramCost : 0)
    c.sharedIdleHourly = hourly > 0 ? (c.hourlyCost / hourly) * idle.hourly : 0
  }
}

export interface AllocationRow {
  name: string
  /** Average cores requested while the row ran (core-hours ÷ the hours from its first start to its last end in the window), as OpenCost. */
  cpuCoreRequestAverage: number
  cpuCoreUsageAverage: number | null
  cpuCoreHours: number
  cpuCost: number
  cpuEfficiency: number | null
  ramByteRequestAverage: number
  ramByteUsageAverage: number | null
  ramByteHours: number
  ramCost: number
  ramEfficiency: number | null
  /** Idle cost shared onto this row (0 unless --share-idle). */
  sharedCost: number
  totalCost: number
  totalEfficiency: number | null
  /** Cost per hour of what runs now, and × 730. */
  hourlyCost: number
  monthlyCost: number
  pods: number
  containers: number
}

export type ShareIdle = 'none' | 'weighted' | 'even'

export interface AggregateOptions {
  /** Kept for callers; averages use each row's own running span. */
  windowHours: number
  idle: IdleTotals
  shareIdle: ShareIdle
}

function efficiency(usageHours: number | null, requestHours: number): number | null {
  if (usageHours === null) return null
  if (requestHours > 0) return usageHours / requestHours
  return usageHours > 0 ? 1 : 0
}

/** Groups containers by key (OpenCost's aggregate=…); adds an __idle__ row unless idle is shared. */
export function aggregate(
  containers: ContainerAllocation[],
  key: (c: ContainerAllocation) => string,
  options: AggregateOptions,
): AllocationRow[] {
  interface Acc {
    cpuReqH: number
    cpuUseH: number
    cpuMeasured: boolean
    cpuAllocH: number
    cpuCost: number
    ramReqH: number
    ramUseH: number
    ramMeasured: boolean
    ramAllocH: number
    ramCost: number
    shared: number
    sharedHourly: number
    hourly: number
    pods: Set<string>
    containers: number
    unmeasured: boolean
    from: number
    to: number
  }
  const groups = new Map<string, Acc>()
  for (const c of containers) {
    const k = key(c) || UNALLOCATED
    let a = groups.get(k)
    if (!a) {
      a = {
        cpuReqH: 0,
        cpuUseH: 0,
        cpuMeasured: false,
        cpuAllocH: 0,
        cpuCost: 0,
        ramReqH: 0,
        ramUseH: 0,
        ramMeasured: false,
        ramAllocH: 0,
        ramCost: 0,
        shared: 0,
        sharedHourly: 0,
        hourly: 0,
        pods: new Set(),
        containers: 0,
        unmeasured: false,
        from: c.fromMs,
        to: c.toMs,
      }
      groups.set(k, a)
    }
    a.cpuReqH += c.cpuRequest * c.hours
    a.cpuAllocH += c.cpuAllocated * c.hours
    a.cpuCost += c.cpuCost
    a.ramReqH += c.memRequest * c.hours
    a.ramAllocH += c.memAllocated * c.hours
    a.ramCost += c.ramCost
    if (c.cpuUsage === null || c.memUsage === null) a.unmeasured = true
    if (c.cpuUsage !== null) {
      a.cpuUseH += c.cpuUsage * c.hours
      a.cpuMeasured = true
    }
    if (c.memUsage !== null) {
      a.ramUseH += c.memUsage * c.hours
      a.ramMeasured = true
    }
    a.shared += c.sharedIdleCost
    a.sharedHourly += c.sharedIdleHourly
    a.hourly += c.hourlyCost
    a.pods.add(`${c.namespace}/${c.pod}`)
    a.containers += 1
    a.from = Math.min(a.from, c.fromMs)
    a.to = Math.max(a.to, c.toMs)
  }
  const evenShare = options.shareIdle === 'even' && groups.size > 0
  const idleTotal = options.idle.cpuCost + options.idle.ramCost
  const rows: AllocationRow[] = [...groups].map(([name, a]) => {
    // Efficiency only where every container of the row was measured (a partial sum would understate it).
    const cpuEff = a.cpuMeasured && !a.unmeasured ? efficiency(a.cpuUseH, a.cpuReqH) : null
    const ramEff = a.ramMeasured && !a.unmeasured ? efficiency(a.ramUseH, a.ramReqH) : null
    const cost = a.cpuCost + a.ramCost
    const wh = a.to > a.from ? (a.to - a.from) / 3_600_000 : 1
    const shared = options.shareIdle === 'weighted' ? a.shared : evenShare ? idleTotal / groups.size : 0
    const sharedHourly =
      options.shareIdle === 'weighted' ? a.sharedHourly : evenShare ? options.idle.hourly / groups.size : 0
    return {
      name,
      cpuCoreRequestAverage: a.cpuReqH / wh,
      cpuCoreUsageAverage: cpuEff === null ? null : a.cpuUseH / wh,
      cpuCoreHours: a.cpuAllocH,
      cpuCost: a.cpuCost,
      cpuEfficiency: cpuEff,
      ramByteRequestAverage: a.ramReqH / wh,
      ramByteUsageAverage: ramEff === null ? null : a.ramUseH / wh,
      ramByteHours: a.ramAllocH,
      ramCost: a.ramCost,
      ramEfficiency: ramEff,
      sharedCost: shared,
      totalCost: cost + shared,
      totalEfficiency:
        cpuEff === null || ramEff === null || cost === 0 ? null : (cpuEff * a.cpuCost + ramEff * a.ramCost) / cost,
      hourlyCost: a.hourly + sharedHourly,
      monthlyCost: (a.hourly + sharedHourly) * HOURS_PER_MONTH,
      pods: a.pods.size,
      containers: a.containers,
    }
  })
  rows.sort((x, y) => y.totalCost - x.totalCost || x.name.localeCompare(y.name))
  if (
    options.shareIdle === 'none' &&
    (options.idle.cpuCost > 0 || options.idle.ramCost > 0 || options.idle.hourly > 0)
  ) {
    rows.push({
      name: IDLE,
      cpuCoreRequestAverage: 0,
      cpuCoreUsageAverage: null,
      cpuCoreHours: 0,
      cpuCost: options.idle.cpuCost,
      cpuEfficiency: null,
      ramByteRequestAverage: 0,
      ramByteUsageAverage: null,
      ramByteHours: 0,
      ramCost: options.idle.ramCost,
      ramEfficiency: null,
      sharedCost: 0,
      totalCost: idleTotal,
      totalEfficiency: null,
      hourlyCost: options.idle.hourly,
      monthlyCost: options.idle.hourly * HOURS_PER_MONTH,
      pods: 0,
      containers: 0,
    })
  }
  return rows
}
