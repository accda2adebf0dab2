import {poolPrice} from '../config/prices.js'
import {toPromDuration} from '../config/duration.js'
import type {RetailOpsConfig} from '../config/schema.js'
import {RetailOpsError, UsageError} from '../errors/index.js'
import {kubeCredentials, type KubeTarget} from '../kubernetes/client.js'
import {KubeHttp} from '../kubernetes/http.js'
import {servesScaledObjects} from '../kubernetes/autoscalers.js'
import {PrometheusClient} from '../prometheus/client.js'
import {matchers} from '../prometheus/promql.js'
import type {RunContext} from '../ui/context.js'
import {
  aggregate,
  allocate,
  type AllocationRow,
  type ContainerAllocation,
  HOURS_PER_MONTH,
  idleTotals,
  type NodeCost,
  type Price,
  type PricedNode,
  type ShareIdle,
  shareIdleWeighted,
  UNALLOCATED,
  type UsageSample,
} from './allocate.js'
import {collectCluster, metricsApiUsage, type PodRecord} from './collect.js'
import {type Finding, findSavings, type TrafficObservation} from './findings.js'

export type UsageMode = 'auto' | 'prometheus' | 'metrics-api' | 'requests'
export type UsageSource = 'prometheus' | 'metrics-api' | 'requests'

export const AGGREGATIONS = [
  'service',
  'tenant',
  'tier',
  'namespace',
  'pool',
  'node',
  'zone',
  'instance-type',
  'capacity-type',
  'controller',
  'pod',
  'container',
] as const
export const BREAKDOWNS = ['service', 'tenant', 'tier', 'namespace', 'pool'] as const

export interface CostOptions {
  config: RetailOpsConfig
  kube: KubeTarget
  /** Prometheus for usage and traffic; optional (requests are used without it). */
  prometheusUrl?: string
  /** Window length in ms and as written (24h, 7d). */
  windowMs: number
  window: string
  /** Aggregation of the main table: keys from AGGREGATIONS or label:<key>, joined per row. */
  by: string[]
  shareIdle: ShareIdle
  usage: UsageMode
  /** Only allocations in this namespace (idle and totals stay cluster-wide). */
  namespace?: string
  /** Only nodes matching this label selector, and the pods on them. */
  nodeSelector?: string
  /** End of the window (default now). */
  now?: Date
  pageSize?: number
}

export interface PoolSummary {
  pool: string
  nodes: number
  instanceTypes: string[]
  zones: string[]
  spot: boolean
  price: Price
  cost: number
  allocatedCost: number
  idleCost: number
  overheadCost: number
  idlePercent: number | null
  hourlyCost: number
  monthlyCost: number
  cpu: {allocatable: number; requested: number; utilisation: number | null}
  memory: {allocatable: number; requested: number; utilisation: number | null}
}

export interface CostReport {
  cluster: {context: string; server: string}
  window: {window: string; start: string; end: string; hours: number}
  currency: string
  pricing: {
    pools: {
      pool: string
      instanceType?: string
      spot: boolean
      cpuHour: number
      memoryGiBHour: number
      source: string
      nodes: number
    }[]
    note: string
  }
  usage: {source: UsageSource; detail: string; containers: number; withUsage: number}
  traffic: {source: 'prometheus' | 'none'; detail: string}
  aggregation: string
  shareIdle: ShareIdle
  totals: {
    cost: number
    allocated: number
    idle: number
    overhead: number
    idlePercent: number | null
    hourly: number
    monthly: number
    efficiency: {cpu: number | null; ram: number | null; total: number | null}
  }
  allocations: AllocationRow[]
  breakdowns: Record<(typeof BREAKDOWNS)[number], AllocationRow[]>
  pools: PoolSummary[]
  findings: Finding[]
  findingsSkipped: string[]
  /** Sum of the findings' savings (they can overlap: an idle namespace may also have excess replicas). */
  potentialMonthlySaving: number
  counts: {nodes: number; pods: number; containers: number; unscheduledPods: number; orphanPods: number}
  filter: {namespace?: string; nodeSelector?: string}
  notes: string[]
}

/** Validates --by keys before anything is read. */
export function parseAggregation(by: string[]): string[] {
  const keys = by
    .flatMap((b) => b.split(','))
    .map((b) => b.trim())
    .filter(Boolean)
  for (const k of keys) {
    if (k.startsWith('label:') && k.length > 6) continue
    if (!(AGGREGATIONS as readonly string[]).includes(k)) {
      throw new UsageError(`--by ${k}: not an aggregation.`, {
        nextSteps: [`Use one or more of ${AGGREGATIONS.join(', ')}, or label:<key>, comma-separated.`],
      })
    }
  }
  return keys.length ? keys : ['service']
}

export function keyFunction(keys: string[]): (c: ContainerAllocation) => string {
  const one = (k: string): ((c: ContainerAllocation) => string | undefined) => {
    if (k.startsWith('label:')) {
      const label = k.slice(6)
      return (c) => c.labels?.[label]
    }
    switch (k) {
      case 'service':
        return (c) => c.service
      case 'tenant':
        return (c) => c.tenant
      case 'tier':
        return (c) => c.tier
      case 'namespace':
        return (c) => c.namespace
      case 'pool':
        return (c) => c.pool
      case 'node':
        return (c) => c.node
      case 'zone':
        return (c) => c.zone
      case 'instance-type':
        return (c) => c.instanceType
      case 'capacity-type':
        return (c) => (c.spot ? 'spot' : 'on-demand')
      case 'controller':
        return (c) => (c.controller ? `${c.namespace}/${c.controllerKind}/${c.controller}` : undefined)
      case 'pod':
        return (c) => `${c.namespace}/${c.pod}`
      default:
        return (c) => `${c.namespace}/${c.pod}/${c.container}`
    }
  }
  const fns = keys.map(one)
  return (c) => fns.map((f) => f(c) ?? UNALLOCATED).join('/')
}

/** Tenant and tier of a pod: its labels, then the configuration (dedicated namespaces, service tiers). */
export function attributionFor(config: RetailOpsConfig, namespaceTenants: Map<string, string[]>) {
  const dedicated = new Map<string, string>()
  for (const t of config.tenants) {
    if (t.model === 'dedicated-namespace') dedicated.set(t.namespace ?? `${config.project}-${t.name}`, t.name)
    else if (t.namespace) dedicated.set(t.namespace, t.name)
  }
  return (pod: PodRecord) => {
    const nsTenants = namespaceTenants.get(pod.namespace) ?? []
    const tenant =
      pod.tenantLabel ??
      dedicated.get(pod.namespace) ??
      (nsTenants.length === 1 ? nsTenants[0] : nsTenants.length > 1 ? '__shared__' : UNALLOCATED)
    const tier = pod.tierLabel ?? config.services[pod.service]?.tier ?? UNALLOCATED
    return {tenant, tier}
  }
}

function nonProductionNamespaces(
  config: RetailOpsConfig,
  namespaces: {name: string; environment?: string}[],
): Map<string, string> {
  const out = new Map<string, string>()
  for (const [name, env] of Object.entries(config.environments)) if (!env.production) out.set(env.namespace, name)
  for (const ns of namespaces)
    if (ns.environment && config.environments[ns.environment]?.production === false) out.set(ns.name, ns.environment)
  return out
}

interface PromData {
  usage?: Map<string, UsageSample>
  usageDetail?: string
  traffic?: TrafficObservation[]
  trafficDetail: string
}

const CONTAINER_FILTER: [string, string, ('=' | '!=')?][] = [
  ['container', '', '!='],
  ['container', 'POD', '!='],
]

/** Usage (cAdvisor metrics) and traffic from Prometheus, all queries in parallel. */
async function fromPrometheus(
  prom: PrometheusClient,
  options: CostOptions,
  end: Date,
  wantUsage: boolean,
  ctx: RunContext,
): Promise<PromData> {
  const w = toPromDuration(options.windowMs)
  const ns: [string, string][] = options.namespace ? [['namespace', options.namespace]] : []
  const sel = matchers([...CONTAINER_FILTER, ...ns])
  const by = 'namespace, pod, container'
  const step = (minS: number, points: number) =>
    toPromDuration(Math.max(minS * 1000, Math.ceil(options.windowMs / points / 60_000) * 60_000))
  const usage = async (): Promise<Pick<PromData, 'usage' | 'usageDetail'>> => {
    if (!wantUsage) return {}
    // Any sample in the last hour of the window (an instant count would only look back 5 minutes).
    const recent = toPromDuration(Math.min(options.windowMs, 3_600_000))
    const present = await prom.scalar(`count(count_over_time(container_cpu_usage_seconds_total${sel}[${recent}]))`, {
      time: end,
    })
    if (!present) return {usageDetail: 'no container_cpu_usage_seconds_total series'}
    const [cpu, mem, cpuPeak, memPeak] = await Promise.all([
      prom.query(`sum by (${by}) (rate(container_cpu_usage_seconds_total${sel}[${w}]))`, {time: end}),
      prom.query(`sum by (${by}) (avg_over_time(container_memory_working_set_bytes${sel}[${w}]))`, {time: end}),
      prom.query(
        `quantile_over_time(0.95, sum by (${by}) (rate(container_cpu_usage_seconds_total${sel}[5m]))[${w}:${step(300, 288)}])`,
        {time: end},
      ),
      prom.query(`max by (${by}) (max_over_time(container_memory_working_set_bytes${sel}[${w}]))`, {time: end}),
    ])
    const map = new Map<string, UsageSample>()
    const key = (l: Record<string, string>) => `${l.namespace}/${l.pod}/${l.container}`
    const get = (l: Record<string, string>) => {
      const k = key(l)
      let s = map.get(k)
      if (!s) map.set(k, (s = {cpu: null, memory: null, cpuPeak: null, memoryPeak: null}))
      return s
    }
    for (const s of cpu) get(s.labels).cpu = s.value
    for (const s of mem) get(s.labels).memory = s.value
    for (const s of cpuPeak) get(s.labels).cpuPeak = s.value
    for (const s of memPeak) get(s.labels).memoryPeak = s.value
    return {
      usage: map,
      usageDetail: `Prometheus ${prom.url}: container_cpu_usage_seconds_total, container_memory_working_set_bytes over ${w}`,
    }
  }
  const traffic = async (): Promise<Pick<PromData, 'traffic' | 'trafficDetail'>> => {
    if (!(await prom.scalar(`count(count_over_time(http_requests_total[${w}]))`, {time: end})))
      return {trafficDetail: `no http_requests_total series in ${prom.url} over ${w}`}
    const [avg, peak, synthetic] = await Promise.all([
      // Real traffic only: warm-ups (synthetic="true") are not demand the replicas must serve.
      prom.query(`sum by (service, namespace) (rate(http_requests_total{synthetic!="true"}[${w}]))`, {time: end}),
      prom.query(
        `max_over_time(sum by (service, namespace) (rate(http_requests_total{synthetic!="true"}[5m]))[${w}:${step(60, 2000)}])`,
        {time: end},
      ),
      // ...but shown, so the cost of a warm-up can be told apart.
      prom.query(`sum by (service, namespace) (rate(http_requests_total{synthetic="true"}[${w}]))`, {time: end}),
    ])
    const key = (l: Record<string, string>) => `${l.service}/${l.namespace ?? ''}`
    const peaks = new Map(peak.map((s) => [key(s.labels), s.value ?? 0]))
    const synthetics = new Map(synthetic.filter((s) => (s.value ?? 0) > 0).map((s) => [key(s.labels), s.value!]))
    const out: TrafficObservation[] = avg
      .filter((s) => s.labels.service)
      .map((s) => ({
        service: s.labels.service,
        ...(s.labels.namespace ? {namespace: s.labels.namespace} : {}),
        avgRps: s.value ?? 0,
        peakRps: peaks.get(key(s.labels)) ?? s.value ?? 0,
        ...(synthetics.has(key(s.labels)) ? {syntheticRps: synthetics.get(key(s.labels))} : {}),
      }))
    const syntheticTotal = [...synthetics.values()].reduce((a, b) => a + b, 0)
    return {
      traffic: out,
      trafficDetail: `Prometheus ${prom.url}: http_requests_total over ${w} (${out.length} service series)${syntheticTotal > 0 ? `; ${Math.round(syntheticTotal * 100) / 100} rps of synthetic (warm-up) traffic left out` : ''}`,
    }
  }
  try {
    const [u, t] = await Promise.all([usage(), traffic()])
    return {...u, ...t}
  } catch (error) {
    if (options.usage === 'prometheus') throw error
    ctx.out.warn(
      `Prometheus ${prom.url} could not be used (${(error as Error).message.split('\n')[0]}); continuing without it.`,
    )
    return {trafficDetail: `Prometheus unavailable: ${(error as Error).message.split('\n')[0]}`}
  }
}

/**
 * Allocates the cluster's cost over the window: lists nodes and pods (streamed), reads usage and
 * traffic from Prometheus (or the metrics API) in parallel with the listing, then prices,
 * aggregates and looks for savings.
 */
export async function runCost(options: CostOptions, ctx: RunContext): Promise<CostReport> {
  const end = options.now ?? new Date()
  const start = new Date(end.getTime() - options.windowMs)
  // Raw requests only: @kubernetes/client-node is not loaded for a plain kubeconfig (time and memory).
  const credentials = kubeCredentials(options.kube)
  const http = new KubeHttp(credentials)
  const k = {context: credentials.getCurrentContext(), server: credentials.getCurrentCluster()!.server}
  const prom = options.prometheusUrl
    ? new PrometheusClient(options.prometheusUrl, {infinity: 'no-data', signal: ctx.signal, timeoutMs: 60_000})
    : undefined
  if (options.usage === 'prometheus' && !prom) {
    throw new UsageError('--usage prometheus needs a Prometheus URL.', {
      nextSteps: ['Set environments.<name>.prometheus in retailops.yaml, or RETAILOPS_PROMETHEUS_URL.'],
    })
  }
  const keepLabels = options.by.flatMap((b) => (b.startsWith('label:') ? [b.slice(6)] : []))
  const task = ctx.out.task(`Reading nodes and pods from ${k.context}`)
  try {
    const wantPromUsage = options.usage === 'auto' || options.usage === 'prometheus'
    const [snapshot, promData] = await Promise.all([
      collectCluster(http, k.server, {
        nodeSelector: options.nodeSelector,
        pageSize: options.pageSize,
        keepLabels,
        nodePools: options.config.nodePools,
        signal: ctx.signal,
        onPage: (kind, n) => kind.endsWith('/pods') && task.update(`${n} pods`),
      }),
      prom
        ? fromPrometheus(prom, options, end, wantPromUsage, ctx)
        : Promise.resolve<PromData>({trafficDetail: 'no Prometheus configured'}),
    ])
    task.update(`${snapshot.nodes.length} nodes, ${snapshot.pods.length} pods`)

    let usage: Map<string, UsageSample> | undefined
    let usageSource: UsageSource = 'requests'
    let usageDetail = 'no usage source: every container is allocated its requests, and efficiency is unknown'
    if (promData.usage && promData.usage.size > 0) {
      usage = promData.usage
      usageSource = 'prometheus'
      usageDetail = promData.usageDetail!
    } else if (options.usage === 'prometheus') {
      throw new RetailOpsError(
        'UNAVAILABLE',
        `--usage prometheus: ${promData.usageDetail ?? 'no container usage metrics'} in ${options.prometheusUrl}.`,
        {
          nextSteps: [
            "Scrape the kubelets' cAdvisor endpoint (container_cpu_usage_seconds_total), or use --usage auto.",
          ],
        },
      )
    } else if (options.usage === 'auto' || options.usage === 'metrics-api') {
      const m = await metricsApiUsage(http, ctx.signal)
      if (m && m.usage.size > 0) {
        usage = new Map([...m.usage].map(([key, r]) => [key, {cpu: r.cpu, memory: r.memory}]))
        usageSource = 'metrics-api'
        usageDetail = `metrics.k8s.io (instantaneous${m.window ? `, ${m.window} samples` : ''}): current usage stands in for the window's average`
      } else if (options.usage === 'metrics-api') {
        throw new RetailOpsError('UNAVAILABLE', 'The metrics API (metrics.k8s.io) is not served by this cluster.', {
          nextSteps: ['Install metrics-server, or use --usage auto.'],
        })
      } else if (promData.usageDetail) {
        usageDetail = `${usageDetail} (Prometheus: ${promData.usageDetail}; metrics API: not served)`
      }
    }

    const namespaceTenants = new Map(snapshot.namespaces.map((n) => [n.name, n.tenants]))
    const priced: PricedNode[] = snapshot.nodes.map((n) => ({
      ...n,
      price: poolPrice(options.config.prices, {pool: n.pool, instanceType: n.instanceType, spot: n.spot}),
    }))
    const result = allocate({
      nodes: priced,
      pods: snapshot.pods,
      usage,
      windowStartMs: start.getTime(),
      windowEndMs: end.getTime(),
      attribute: attributionFor(options.config, namespaceTenants),
    })
    const idle = idleTotals(result.nodes)
    if (options.shareIdle === 'weighted') shareIdleWeighted(result.containers, idle)
    const windowHours = options.windowMs / 3_600_000
    const shown = options.namespace
      ? result.containers.filter((c) => c.namespace === options.namespace)
      : result.containers
    const aggOpts = {windowHours, idle, shareIdle: options.shareIdle}
    const allocations = aggregate(shown, keyFunction(options.by), aggOpts)
    const breakdowns = Object.fromEntries(
      BREAKDOWNS.map((b) => [b, aggregate(shown, keyFunction([b]), aggOpts)]),
    ) as CostReport['breakdowns']

    const allocated = result.containers.reduce((s, c) => s + c.cpuCost + c.ramCost, 0)
    const idleCost = idle.cpuCost + idle.ramCost
    const overhead = result.nodes.reduce((s, n) => s + n.overheadCost, 0)
    const nodeCost = result.nodes.reduce((s, n) => s + n.cost, 0)
    const hourly = result.nodes.reduce((s, n) => s + n.hourlyCost, 0)
    const all = aggregate(result.containers, () => 'all', {
      windowHours,
      idle: {cpuCost: 0, ramCost: 0, hourly: 0},
      shareIdle: 'none',
    })[0]

    // The wording of a floor names the autoscaler deploy renders; `auto` is what this cluster would decide.
    const decidesAuto = Object.values(options.config.services).some(
      (svc) => svc.scaling.metrics.length > 0 && svc.scaling.provider === 'auto',
    )
    const servesKeda =
      decidesAuto && promData.traffic ? await servesScaledObjects(http, ctx.signal).catch(() => undefined) : undefined
    const findings = findSavings({
      containers: result.containers,
      nodes: result.nodes,
      config: options.config,
      windowHours,
      traffic: promData.traffic,
      usageSource,
      nonProduction: nonProductionNamespaces(options.config, snapshot.namespaces),
      spotDiscount: options.config.prices.spotDiscount,
      servesScaledObjects: servesKeda,
    })
    const pools = poolSummaries(result.nodes)
    const notes = [
      'Allocations cover the pods that exist now; pods deleted during the window are not counted (OpenCost keeps that history in Prometheus).',
      ...(result.unscheduledPods ? [`${result.unscheduledPods} pending pods have no node and cost nothing yet.`] : []),
      ...(options.namespace
        ? [`Rows show namespace ${options.namespace} only; idle, overhead and totals are the whole cluster's.`]
        : []),
    ]
    task.succeed(
      `Allocated ${money(nodeCost)} ${options.config.prices.currency} over ${options.window} across ${snapshot.nodes.length} nodes and ${snapshot.pods.length} pods (usage: ${usageSource})`,
    )
    return {
      cluster: {context: k.context, server: k.server},
      window: {window: options.window, start: start.toISOString(), end: end.toISOString(), hours: windowHours},
      currency: options.config.prices.currency,
      pricing: {
        pools: pools.map((p) => ({
          pool: p.pool,
          instanceType: p.instanceTypes[0],
          spot: p.spot,
          cpuHour: p.price.cpuHour,
          memoryGiBHour: p.price.memoryGiBHour,
          source: p.price.source,
          nodes: p.nodes,
        })),
        note: "prices.pools, then prices.instanceTypes, then prices.default (OpenCost's defaults: GCP us-central1 list prices); spot nodes get prices.spotDiscount unless priced per pool.",
      },
      usage: {
        source: usageSource,
        detail: usageDetail,
        containers: result.usageCoverage.containers,
        withUsage: result.usageCoverage.withUsage,
      },
      traffic: {source: promData.traffic ? 'prometheus' : 'none', detail: promData.trafficDetail},
      aggregation: options.by.join(','),
      shareIdle: options.shareIdle,
      totals: {
        cost: nodeCost,
        allocated,
        idle: idleCost,
        overhead,
        idlePercent: nodeCost - overhead > 0 ? idleCost / (nodeCost - overhead) : null,
        hourly,
        monthly: hourly * HOURS_PER_MONTH,
        efficiency: {
          cpu: all?.cpuEfficiency ?? null,
          ram: all?.ramEfficiency ?? null,
          total: all?.totalEfficiency ?? null,
        },
      },
      allocations,
      breakdowns,
      pools,
      findings: findings.findings,
      findingsSkipped: findings.skipped,
      potentialMonthlySaving: findings.findings.reduce((s, f) => s + f.monthlySaving, 0),
      counts: {
        nodes: snapshot.nodes.length,
        pods: snapshot.pods.length,
        containers: result.containers.length,
        unscheduledPods: result.unscheduledPods,
        orphanPods: result.orphanPods,
      },
      filter: {namespace: options.namespace, nodeSelector: options.nodeSelector},
      notes,
    }
  } catch (error) {
    task.fail('Cost allocation failed')
    throw error
  } finally {
    // Idle keep-alive sockets would hold the process open.
    http.close()
  }
}

export function poolSummaries(nodes: NodeCost[]): PoolSummary[] {
  const by = new Map<string, NodeCost[]>()
  for (const n of nodes) by.set(n.pool, [...(by.get(n.pool) ?? []), n])
  return [...by]
    .map(([pool, ns]) => {
      const sum = (f: (n: NodeCost) => number) => ns.reduce((s, n) => s + f(n), 0)
      const cost = sum((n) => n.cost)
      const overhead = sum((n) => n.overheadCost)
      const idle = sum((n) => n.idle.cpuCost + n.idle.ramCost)
      const cpuAlloc = sum((n) => n.allocatable.cpu)
      const memAlloc = sum((n) => n.allocatable.memory)
      const cpuReq = sum((n) => n.requested.cpu)
      const memReq = sum((n) => n.requested.memory)
      return {
        pool,
        nodes: ns.length,
        instanceTypes: [...new Set(ns.map((n) => n.instanceType).filter((t): t is string => Boolean(t)))],
        zones: [...new Set(ns.map((n) => n.zone).filter((z): z is string => Boolean(z)))].sort(),
        spot: ns.every((n) => n.spot),
        price: ns[0].price,
        cost,
        allocatedCost: sum((n) => n.allocated.cpuCost + n.allocated.ramCost),
        idleCost: idle,
        overheadCost: overhead,
        idlePercent: cost - overhead > 0 ? idle / (cost - overhead) : null,
        hourlyCost: sum((n) => n.hourlyCost),
        monthlyCost: sum((n) => n.hourlyCost) * HOURS_PER_MONTH,
        cpu: {allocatable: cpuAlloc, requested: cpuReq, utilisation: cpuAlloc > 0 ? cpuReq / cpuAlloc : null},
        memory: {allocatable: memAlloc, requested: memReq, utilisation: memAlloc > 0 ? memReq / memAlloc : null},
      }
    })
    .sort((a, b) => b.cost - a.cost)
}

function money(n: number): string {
  return n.toFixed(2)
}
