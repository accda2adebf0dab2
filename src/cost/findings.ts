/**
 * Savings findings, pure: the waste patterns of the production practices' cost table, each with
 * an estimated monthly saving (730 hours) at the workload's own node prices.
 *
 * | kind                     | seed area                   | waste pattern                      |
 * | excess-replicas          | Compute                     | Always-on excess capacity          |
 * | overprovisioned-requests | Compute                     | Always-on excess capacity (rightsizing) |
 * | idle-node-pool           | Compute                     | Overprovisioned node pools         |
 * | idle-non-production      | Non-production environments | Idle staging clusters              |
 * | spot-eligible-batch      | Compute                     | Premium compute for batch jobs     |
 */
import {nodePoolsOf, placementKey, resolvePlacement} from '../config/placement.js'
import type {RetailOpsConfig, ServiceConfig} from '../config/schema.js'
import {type ContainerAllocation, GIB, HOURS_PER_MONTH, type NodeCost} from './allocate.js'

export type FindingKind =
  'excess-replicas' | 'overprovisioned-requests' | 'idle-node-pool' | 'idle-non-production' | 'spot-eligible-batch'

export interface Finding {
  kind: FindingKind
  area: 'Compute' | 'Non-production environments'
  wastePattern: string
  title: string
  namespace?: string
  service?: string
  controller?: string
  pool?: string
  detail: string
  action: string
  /** The retailops command that acts on the finding, when there is one (idle non-production: \`retailops sleep\`). */
  command?: string
  /** The retailops.yaml change that acts on it, when there is one (spot-eligible: `services.search.placement.spot: preferred`). */
  change?: string
  /** Estimated saving per month (730 h), in the configured currency. */
  monthlySaving: number
  evidence: Record<string, string | number | boolean | null>
}

export interface TrafficObservation {
  service: string
  /** From the series' namespace label, when it has one. */
  namespace?: string
  avgRps: number
  peakRps: number
  /** Average rate of synthetic requests (warm-ups, synthetic="true"), left out of avgRps and peakRps. */
  syntheticRps?: number
}

export interface FindingsInput {
  containers: ContainerAllocation[]
  nodes: NodeCost[]
  config: RetailOpsConfig
  windowHours: number
  /** Observed request rates; undefined when Prometheus has no http_requests_total. */
  traffic?: TrafficObservation[]
  /** Usage came from Prometheus or the metrics API (rightsizing needs it). */
  usageSource: 'prometheus' | 'metrics-api' | 'requests'
  /** namespace → environment name, for environments with production: false. */
  nonProduction: Map<string, string>
  spotDiscount: number
  /**
   * Whether the cluster read serves KEDA's ScaledObjects (asked only when a service scales on
   * metrics with scaling.provider auto); undefined when nobody asked.
   */
  servesScaledObjects?: boolean
}

export interface FindingsResult {
  findings: Finding[]
  /** Checks that could not run, and why. */
  skipped: string[]
}

/** Rules of thumb, exported so the docs and tests name the same numbers. */
export const THRESHOLDS = {
  /** Replicas at least this many over need, and this multiple of it. */
  excessReplicasMin: 2,
  excessReplicasFactor: 1.5,
  /** A request this multiple of the recommendation is overprovisioned. */
  overprovisionFactor: 2,
  cpuHeadroom: 1.3,
  memoryHeadroom: 1.2,
  minCpu: 0.01,
  minMemory: 32 * 1024 ** 2,
  /** A pool below this utilisation of both CPU and memory requests is idle. */
  idlePoolUtilisation: 0.5,
  /** Scheduled shutdown: 10 h × 5 days a week of 168 h. */
  workingHoursPerWeek: 50,
  /** Smallest saving worth a finding, per month. */
  minMonthlySaving: 0.5,
} as const

const WORKING_SHARE = THRESHOLDS.workingHoursPerWeek / 168
/** The working hours THRESHOLDS assumes (10 h on 5 days), as `retailops sleep --at` takes them: asleep from 18:00 to 08:00 and the weekend. */
export const SLEEP_AT = 'Mon-Fri 18:00-08:00'

/** The command that acts on an idle non-production finding: sleep now, or on the working-hours schedule. */
function sleepCommand(environment: string, at?: string): string {
  return `retailops sleep --environment ${environment}${at ? ` --at "${at}"` : ''}`
}

function money(n: number): string {
  return n.toFixed(2)
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>()
  for (const it of items) {
    const k = key(it)
    const list = m.get(k)
    if (list) list.push(it)
    else m.set(k, [it])
  }
  return m
}

/**
 * What holds a service's floor, in the words of the autoscaler deploy renders for it: none (a
 * fixed count), an HPA (CPU only, or scaling.metrics with provider hpa), a KEDA ScaledObject
 * (metrics with provider keda, or auto where the cluster serves KEDA), or either where auto was
 * not decided (no cluster answer).
 */
export function floorKeeper(service: string, svc: ServiceConfig, floor: number, servesScaledObjects?: boolean): string {
  const keeps = 'keeps peak readiness'
  if (svc.scaling.maxReplicas <= svc.scaling.minReplicas)
    return `no autoscaler: maxReplicas is not above minReplicas, so services.${service}.scaling.minReplicas ${floor} is the count and ${keeps}`
  if (svc.scaling.metrics.length === 0) return `its HPA with minReplicas ${floor} ${keeps}`
  const provider =
    svc.scaling.provider === 'auto' && servesScaledObjects !== undefined
      ? servesScaledObjects
        ? 'keda'
        : 'hpa'
      : svc.scaling.provider
  if (provider === 'keda') return `its KEDA ScaledObject with minReplicaCount ${floor} ${keeps}`
  if (provider === 'hpa')
    return `its HPA with minReplicas ${floor} (External metrics through prometheus-adapter) ${keeps}`
  return `its autoscaler's floor of ${floor} ${keeps} (a KEDA ScaledObject's minReplicaCount where the cluster serves KEDA, else an HPA's minReplicas)`
}

const podCount = (cs: ContainerAllocation[]) => new Set(cs.map((c) => `${c.namespace}/${c.pod}`)).size
const hourlyOf = (cs: ContainerAllocation[]) => cs.reduce((s, c) => s + c.hourlyCost, 0)

export function findSavings(input: FindingsInput): FindingsResult {
  const findings: Finding[] = []
  const skipped: string[] = []
  const running = input.containers.filter((c) => c.running)

  // Always-on excess capacity: replicas far above what the observed peak needs at rpsPerPod.
  if (!input.traffic) {
    skipped.push('excess-replicas: no http_requests_total in Prometheus to compare replicas with observed traffic')
  } else {
    for (const [key, cs] of groupBy(running, (c) => `${c.namespace}\u0000${c.service}`)) {
      const [namespace, service] = key.split('\u0000')
      const svc = input.config.services[service]
      if (!svc) continue
      if (!svc.scaling.rpsPerPod) {
        skipped.push(`excess-replicas: ${service} has no scaling.rpsPerPod`)
        continue
      }
      const obs =
        input.traffic.find((t) => t.service === service && t.namespace === namespace) ??
        input.traffic.find((t) => t.service === service && !t.namespace)
      if (!obs) continue
      const replicas = podCount(cs)
      const minReplicas = Math.max(svc.scaling.minReplicas, input.config.tiers[svc.tier]?.minReplicas ?? 1)
      const byTraffic = Math.ceil(obs.peakRps / (svc.scaling.rpsPerPod * svc.scaling.targetUtilization))
      const need = Math.max(minReplicas, byTraffic)
      if (replicas - need < THRESHOLDS.excessReplicasMin || replicas < need * THRESHOLDS.excessReplicasFactor) continue
      const perPod = hourlyOf(cs) / replicas
      const saving = (replicas - need) * perPod * HOURS_PER_MONTH
      if (saving < THRESHOLDS.minMonthlySaving) continue
      findings.push({
        kind: 'excess-replicas',
        area: 'Compute',
        wastePattern: 'Always-on excess capacity',
        title: `${service} runs ${replicas} replicas; the observed peak needs ${need}`,
        namespace,
        service,
        detail: `Peak ${obs.peakRps.toFixed(1)} req/s (average ${obs.avgRps.toFixed(1)}) over the window at ${svc.scaling.rpsPerPod} req/s per pod and ${Math.round(svc.scaling.targetUtilization * 100)} % target utilisation needs ${byTraffic} pod${byTraffic === 1 ? '' : 's'}; the floor is ${minReplicas}.`,
        action: `Scale ${service} to ${need} (${floorKeeper(service, svc, minReplicas, input.servesScaledObjects)}; pre-warm before campaigns with retailops prewarm).`,
        monthlySaving: saving,
        evidence: {
          replicas,
          need,
          peakRps: obs.peakRps,
          avgRps: obs.avgRps,
          rpsPerPod: svc.scaling.rpsPerPod,
          podHourlyCost: perPod,
        },
      })
    }
  }

  // Overprovisioned requests: request far above the measured peak (rightsizing).
  if (input.usageSource === 'requests') {
    skipped.push('overprovisioned-requests: no usage data (Prometheus cAdvisor metrics or the metrics API)')
  } else {
    for (const [key, cs] of groupBy(
      running.filter((c) => c.cpuUsage !== null && c.memUsage !== null),
      (c) => `${c.namespace}\u0000${c.controller ?? c.service}\u0000${c.container}`,
    )) {
      const [namespace, controller, container] = key.split('\u0000')
      const replicas = cs.length
      const cpuReq = cs.reduce((s, c) => s + c.cpuRequest, 0) / replicas
      const memReq = cs.reduce((s, c) => s + c.memRequest, 0) / replicas
      const cpuPeak = Math.max(...cs.map((c) => c.cpuPeak ?? c.cpuUsage ?? 0))
      const memPeak = Math.max(...cs.map((c) => c.memPeak ?? c.memUsage ?? 0))
      const cpuRec = Math.max(THRESHOLDS.minCpu, cpuPeak * THRESHOLDS.cpuHeadroom)
      const memRec = Math.max(THRESHOLDS.minMemory, memPeak * THRESHOLDS.memoryHeadroom)
      const cpuOver = cpuReq >= cpuRec * THRESHOLDS.overprovisionFactor
      const memOver = memReq >= memRec * THRESHOLDS.overprovisionFactor
      if (!cpuOver && !memOver) continue
      const price = cs[0].price
      const saving =
        replicas *
        ((cpuOver ? (cpuReq - cpuRec) * price.cpuHour : 0) +
          (memOver ? ((memReq - memRec) / GIB) * price.memoryGiBHour : 0)) *
        HOURS_PER_MONTH
      if (saving < THRESHOLDS.minMonthlySaving) continue
      const parts = [
        ...(cpuOver ? [`CPU request ${cores(cpuReq)} vs peak use ${cores(cpuPeak)}`] : []),
        ...(memOver ? [`memory request ${mib(memReq)} vs peak ${mib(memPeak)}`] : []),
      ]
      findings.push({
        kind: 'overprovisioned-requests',
        area: 'Compute',
        wastePattern: 'Always-on excess capacity',
        title: `${namespace}/${controller} (${container}) requests far more than it uses`,
        namespace,
        service: cs[0].service,
        controller,
        detail: `${parts.join('; ')}, per replica, ${replicas} replica${replicas === 1 ? '' : 's'}.`,
        action: `Set requests to ${[cpuOver ? `cpu ${cores(cpuRec)}` : '', memOver ? `memory ${mib(memRec)}` : ''].filter(Boolean).join(', ')} (peak × ${THRESHOLDS.cpuHeadroom} CPU, × ${THRESHOLDS.memoryHeadroom} memory headroom).`,
        monthlySaving: saving,
        evidence: {
          replicas,
          cpuRequest: cpuReq,
          cpuPeak,
          cpuRecommended: cpuRec,
          memoryRequest: memReq,
          memoryPeak: memPeak,
          memoryRecommended: memRec,
        },
      })
    }
  }

  // Idle non-production namespaces, and namespaces of configured services without traffic.
  const trafficByNamespace = new Map<string, number>()
  const namespaced = input.traffic?.filter((t) => t.namespace) ?? []
  for (const t of namespaced)
    trafficByNamespace.set(t.namespace!, (trafficByNamespace.get(t.namespace!) ?? 0) + t.avgRps)
  if (namespaced.length === 0)
    skipped.push(
      'idle-non-production (no traffic): http_requests_total has no namespace label, so traffic per namespace is unknown',
    )
  // Only services seen serving requests somewhere count: a batch worker never has HTTP traffic.
  const serving = new Set(namespaced.map((t) => t.service))
  for (const [namespace, cs] of groupBy(running, (c) => c.namespace)) {
    const env = input.nonProduction.get(namespace)
    const servesTraffic = cs.some((c) => input.config.services[c.service] && serving.has(c.service))
    const noTraffic = servesTraffic && (trafficByNamespace.get(namespace) ?? 0) === 0
    if (!env && !noTraffic) continue
    const monthly = hourlyOf(cs) * HOURS_PER_MONTH
    const saving = noTraffic ? monthly : monthly * (1 - WORKING_SHARE)
    if (saving < THRESHOLDS.minMonthlySaving) continue
    findings.push({
      kind: 'idle-non-production',
      area: 'Non-production environments',
      wastePattern: 'Idle staging clusters',
      title: noTraffic
        ? `${namespace} served no requests in the window`
        : `${namespace} (environment ${env}, not production) runs around the clock`,
      namespace,
      detail: `${podCount(cs)} pods cost ${money(monthly)} a month${noTraffic ? '; Prometheus saw no requests to them' : ''}${env ? ` in non-production environment ${env}` : ''}.`,
      action: noTraffic
        ? `Scale it to zero${env ? ` (\`${sleepCommand(env)}\`, saving ${money(saving)} a month)` : ''} or delete it, and create it on demand (\`retailops env create\`, a preview with a TTL).`
        : `Put it to sleep outside working hours (awake ${THRESHOLDS.workingHoursPerWeek} of 168 hours a week): \`${sleepCommand(env!, SLEEP_AT)}\` saves ${money(saving)} a month; or use ephemeral environments (\`retailops env create\`).`,
      command: env ? sleepCommand(env, noTraffic ? undefined : SLEEP_AT) : undefined,
      monthlySaving: saving,
      evidence: {pods: podCount(cs), monthlyCost: monthly, environment: env ?? null, noTraffic},
    })
  }

  // Spot-eligible batch work (Jobs, CronJobs, tolerant tier) on on-demand nodes.
  const batch = input.containers.filter(
    (c) => !c.spot && (c.controllerKind === 'Job' || c.controllerKind === 'CronJob' || c.tier === 'tolerant'),
  )
  for (const [key, cs] of groupBy(batch, (c) => `${c.namespace}\u0000${c.controller ?? c.service}`)) {
    const [namespace, controller] = key.split('\u0000')
    const move = spotChange(input.config, cs[0])
    if (move === 'declined') continue
    const hourlyNow = hourlyOf(cs)
    const windowCost = cs.reduce((s, c) => s + c.cpuCost + c.ramCost, 0)
    // Running work at its hourly rate; finished runs (batch) at the window's cost extrapolated to a month.
    const finishedCost = cs.filter((c) => !c.running).reduce((s, c) => s + c.cpuCost + c.ramCost, 0)
    const monthly =
      hourlyNow * HOURS_PER_MONTH + (input.windowHours > 0 ? (finishedCost * HOURS_PER_MONTH) / input.windowHours : 0)
    const saving = monthly * input.spotDiscount
    if (saving < THRESHOLDS.minMonthlySaving) continue
    const kind =
      cs[0].controllerKind === 'Job' || cs[0].controllerKind === 'CronJob' ? cs[0].controllerKind : `${cs[0].tier} tier`
    findings.push({
      kind: 'spot-eligible-batch',
      area: 'Compute',
      wastePattern: 'Premium compute for batch jobs',
      title: `${namespace}/${controller} (${kind}) runs on on-demand nodes`,
      namespace,
      service: cs[0].service,
      controller,
      pool: [...new Set(cs.map((c) => c.pool))].join(', '),
      detail: `${podCount(cs)} pod${podCount(cs) === 1 ? '' : 's'} on pool ${[...new Set(cs.map((c) => c.pool))].join(', ')}; ${money(monthly)} a month at on-demand prices.`,
      action: move
        ? `${move.action} (saving ${money(saving)} a month at a spot discount of ${Math.round(input.spotDiscount * 100)} %); make the work retry-safe.`
        : `Tolerate the spot taint and prefer the spot pool (spot discount ${Math.round(input.spotDiscount * 100)} %); make the work retry-safe.`,
      change: move?.change,
      monthlySaving: saving,
      evidence: {pods: podCount(cs), monthlyOnDemand: monthly, windowCost, spotDiscount: input.spotDiscount},
    })
  }

  // Overprovisioned node pools: nodes the pool could lose and still fit every request.
  for (const [pool, ns] of groupBy(input.nodes, (n) => n.pool)) {
    const alloc = ns.reduce((a, n) => ({cpu: a.cpu + n.allocatable.cpu, memory: a.memory + n.allocatable.memory}), {
      cpu: 0,
      memory: 0,
    })
    const req = ns.reduce((a, n) => ({cpu: a.cpu + n.requested.cpu, memory: a.memory + n.requested.memory}), {
      cpu: 0,
      memory: 0,
    })
    const size = ns.reduce(
      (a, n) => ({cpu: Math.max(a.cpu, n.allocatable.cpu), memory: Math.max(a.memory, n.allocatable.memory)}),
      {cpu: 0, memory: 0},
    )
    const cpuUtil = alloc.cpu > 0 ? req.cpu / alloc.cpu : 0
    const memUtil = alloc.memory > 0 ? req.memory / alloc.memory : 0
    if (Math.max(cpuUtil, memUtil) >= THRESHOLDS.idlePoolUtilisation || size.cpu === 0 || size.memory === 0) continue
    const spare = Math.min(
      Math.floor((alloc.cpu - req.cpu) / size.cpu),
      Math.floor((alloc.memory - req.memory) / size.memory),
    )
    const removable = Math.max(0, Math.min(spare - 1, ns.length - 1))
    if (removable < 1) continue
    const nodeHourly = ns.reduce((s, n) => s + n.hourlyCost, 0) / ns.length
    const saving = removable * nodeHourly * HOURS_PER_MONTH
    if (saving < THRESHOLDS.minMonthlySaving) continue
    findings.push({
      kind: 'idle-node-pool',
      area: 'Compute',
      wastePattern: 'Overprovisioned node pools',
      title: `Pool ${pool} is ${Math.round(Math.max(cpuUtil, memUtil) * 100)} % requested: ${removable} of ${ns.length} nodes are spare`,
      pool,
      detail: `Requests fill ${Math.round(cpuUtil * 100)} % of the pool's CPU and ${Math.round(memUtil * 100)} % of its memory; ${removable} node${removable === 1 ? '' : 's'} could go and every pod would still fit, one node of headroom kept.`,
      action:
        "Lower the pool's minimum size and let the cluster autoscaler remove empty nodes (pre-warm before campaigns instead of keeping peak capacity).",
      monthlySaving: saving,
      evidence: {
        nodes: ns.length,
        removable,
        cpuUtilisation: cpuUtil,
        memoryUtilisation: memUtil,
        nodeHourlyCost: nodeHourly,
      },
    })
  }

  findings.sort((a, b) => b.monthlySaving - a.monthlySaving)
  return {findings, skipped}
}

/**
 * The retailops.yaml change that moves a service's pods to spot, from its resolved placement:
 * 'declined' when the service itself says spot: never (or is revenue-critical: never proposed);
 * undefined for work retailops.yaml does not describe (a Job it did not deploy).
 */
function spotChange(
  config: RetailOpsConfig,
  c: ContainerAllocation,
): {change?: string; action: string} | 'declined' | undefined {
  const svc = c.controllerKind === 'Deployment' || !c.controllerKind ? config.services[c.service] : undefined
  if (!svc) return undefined
  if (svc.tier === 'revenue-critical') return 'declined'
  const key = `services.${c.service}.placement`
  const placement = resolvePlacement(config, svc, `services.${c.service}`)
  if (placement.spot === 'never' && placement.spotSource === 'workload') return 'declined'
  const nodePools = nodePoolsOf(config)
  const spotPools = Object.keys(nodePools.pools).filter((n) => nodePools.pools[n].spot)
  if (placement.spot === 'preferred' || placement.spot === 'required')
    return {
      action: `${placementKey(placement, 'spot')} is already ${placement.spot}, but its pods found no room on spot nodes: add spot capacity to the cluster`,
    }
  if (spotPools.length === 0) {
    const change = `nodePools.pools.spot: {spot: true, taints: [<the spot nodes' taints>]} and ${key}.spot: preferred`
    return {change, action: `Declare the spot pool and prefer it in retailops.yaml: ${change}`}
  }
  const listed = placement.pools
  const change =
    listed && !listed.some((n) => spotPools.includes(n))
      ? `${key}: {pools: [${[...listed, spotPools[0]].join(', ')}], spot: preferred}`
      : `${key}.spot: preferred`
  return {change, action: `Set ${change} in retailops.yaml, then deploy`}
}

function cores(n: number): string {
  return n >= 1 ? `${Number(n.toFixed(2))} cores` : `${Math.round(n * 1000)}m`
}

function mib(bytes: number): string {
  return bytes >= GIB ? `${Number((bytes / GIB).toFixed(2))}Gi` : `${Math.round(bytes / 1024 ** 2)}Mi`
}
