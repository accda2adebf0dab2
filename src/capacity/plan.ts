import type {CampaignConfig, RetailOpsConfig, Tier} from '../config/schema.js'
import {type Resources, ZERO, addResources} from '../kubernetes/quantity.js'
import {type PoolPrice, podHourlyCost} from '../config/prices.js'
import type {AutoscalerKind} from '../kubernetes/autoscalers.js'

/**
 * The capacity plan for a campaign: pure arithmetic over facts gathered from the configuration,
 * Prometheus and the cluster (see cluster.ts), so that it can be unit-tested and printed by
 * --dry-run without touching anything.
 */

export interface WorkloadFacts {
  /** Deployment name. */
  name: string
  /** spec.replicas. */
  replicas: number
  readyReplicas: number
  /** Per pod (sum over containers). */
  requests: Resources
  limits: Resources
  /** The pod template's tolerations: placeholders in the same pool need them too (tainted spot pools). */
  tolerations?: {key?: string; operator?: string; value?: string; effect?: string; tolerationSeconds?: number}[]
  /** Node pool the pods land on (nodeSelector/affinity, else the default pool). */
  pool: string
  /** How the pool was found: the service's placement in retailops.yaml, the pod template's 'nodeSelector' or 'affinity', or 'default'. */
  poolSource: 'placement' | 'nodeSelector' | 'affinity' | 'default'
}

/** How messages name an autoscaler. */
export function autoscalerWord(kind: AutoscalerKind | undefined): string {
  return kind === 'ScaledObject' ? 'ScaledObject' : 'HPA'
}

export interface HpaFacts {
  /** An HPA (absent), or a KEDA ScaledObject (minReplicaCount/maxReplicaCount). */
  kind?: AutoscalerKind
  name: string
  minReplicas: number
  maxReplicas: number
}

export interface ServiceFacts {
  service: string
  tier: Tier
  peak: {rps: number} | {multiplier: number}
  /** Max over the lookback of sum(rate(http_requests_total{service}[window])); only for multiplier peaks. */
  observedRps?: number
  rpsPerPod?: number
  targetUtilization: number
  configMinReplicas: number
  configMaxReplicas: number
  workload?: WorkloadFacts
  hpa?: HpaFacts
  /** The floor saved by an earlier (perhaps interrupted) pre-warm of this campaign: the real baseline. */
  savedFloor?: number
}

export interface PoolFacts {
  name: string
  nodes: number
  /** Sum of node allocatable over schedulable nodes. */
  allocatable: Resources & {pods: number}
  /** Sum of requests of pods bound to those nodes and not finished. */
  requested: Resources & {pods: number}
  /** Largest single node's allocatable: the size of a node the autoscaler would add. */
  nodeSize: Resources & {pods: number}
  price: PoolPrice
}

export interface QuotaFacts {
  name: string
  hard: Record<string, number>
  used: Record<string, number>
}

export interface PlanInput {
  campaign: CampaignConfig
  now: Date
  services: ServiceFacts[]
  zones: string[]
  pools: PoolFacts[]
  quotas: QuotaFacts[]
  currency: string
  /** Placeholder pods for the node shortfall (campaign.nodeHeadroom unless overridden). */
  nodeHeadroom: boolean
  /** Let the plan raise an HPA's maxReplicas instead of refusing. */
  raiseMax: boolean
  /** Keep services whose peak fits the current capacity (their floor is left alone) instead of refusing. */
  allowBelowCurrent: boolean
}

export type ProblemCode =
  | 'campaign-ended'
  | 'below-current'
  | 'missing-rps-per-pod'
  | 'beyond-max'
  | 'beyond-quota'
  | 'no-workload'
  | 'no-observed-traffic'

export interface PlanProblem {
  code: ProblemCode
  service?: string
  message: string
}

export interface ServicePlan {
  service: string
  tier: Tier
  /** Deployment and autoscaler it acts on (an HPA, or a KEDA ScaledObject: hpaKind). */
  deployment?: string
  hpa?: string
  hpaKind?: AutoscalerKind
  pool: string
  peakRps: number
  peakSource: 'rps' | 'multiplier'
  observedRps?: number
  rpsPerPod?: number
  targetUtilization: number
  /** ceil(peak × (1 + buffer) / (rpsPerPod × targetUtilization)). */
  capacityReplicas: number
  /** After redundancy (N+1, one per zone) and never below the current floor. */
  replicas: number
  /** Why replicas differs from capacityReplicas. */
  reason: string
  currentReplicas: number
  currentMin: number
  currentMax: number
  /** The HPA's new min/max (or the Deployment's replicas without an HPA). */
  newMin: number
  newMax: number
  raisesMax: boolean
  /** 'raise': floors go up; 'unchanged': the peak fits what runs now. */
  action: 'raise' | 'unchanged'
  podRequests: Resources
  tolerations?: WorkloadFacts['tolerations']
  /** Cost per hour of the planned replicas (requests × pool prices). */
  costPerHour: number
  currentCostPerHour: number
}

export interface PoolPlan {
  pool: string
  nodes: number
  allocatable: Resources & {pods: number}
  free: Resources & {pods: number}
  /** Requests of the pods the plan adds. */
  needed: Resources & {pods: number}
  shortfall: Resources & {pods: number}
  /** Nodes of this pool's size the autoscaler must add for the shortfall. */
  extraNodes: number
  /** Placeholder pods sized to the shortfall (0 without nodeHeadroom). */
  placeholder: {replicas: number; requests: Resources}
  headroomCostPerHour: number
}

export interface QuotaCheck {
  quota: string
  resource: string
  hard: number
  used: number
  added: number
  ok: boolean
}

export interface CapacityPlan {
  campaign: string
  /** The node label that names pools (detected, or --pool-label). */
  poolLabel?: string
  start: string
  end: string
  buffer: number
  zones: number
  services: ServicePlan[]
  pools: PoolPlan[]
  quota: QuotaCheck[]
  cost: {
    currency: string
    currentPerHour: number
    plannedPerHour: number
    headroomPerHour: number
    /** planned + headroom − current. */
    extraPerHour: number
    /** Hours from now (or the start, if later) to the end of the campaign. */
    campaignHours: number
    extraForCampaign: number
  }
  problems: PlanProblem[]
  /** Worth knowing, not blocking. */
  warnings: string[]
}

const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits

export function requiredReplicas(
  peakRps: number,
  buffer: number,
  rpsPerPod: number,
  targetUtilization: number,
): number {
  // A tiny epsilon keeps exact products (400 × 1.3 / 52 = 10) from rounding up through float noise.
  return Math.max(1, Math.ceil((peakRps * (1 + buffer)) / (rpsPerPod * targetUtilization) - 1e-9))
}

/** N+1 and at least one per zone for revenue-critical services; the plain capacity otherwise. */
export function withRedundancy(capacity: number, tier: Tier, zones: number): {replicas: number; reason: string} {
  if (tier !== 'revenue-critical') return {replicas: capacity, reason: 'capacity'}
  const nPlusOne = capacity + 1
  if (zones > nPlusOne) return {replicas: zones, reason: `one per zone (${zones} zones)`}
  return {replicas: nPlusOne, reason: 'N+1 (revenue-critical)'}
}

export function computePlan(input: PlanInput): CapacityPlan {
  const {campaign} = input
  const problems: PlanProblem[] = []
  const warnings: string[] = []
  const end = Date.parse(campaign.end)
  if (end <= input.now.getTime()) {
    problems.push({
      code: 'campaign-ended',
      message: `Campaign "${campaign.name}" ended at ${campaign.end}; there is nothing to pre-warm.`,
    })
  }
  if (end > input.now.getTime() && Date.parse(campaign.start) <= input.now.getTime()) {
    warnings.push(
      `Campaign "${campaign.name}" started at ${campaign.start}: the pre-warm is late, and new pods meet live traffic while they warm up.`,
    )
  }
  const zones = Math.max(1, input.zones.length)
  const poolPrices = new Map(input.pools.map((p) => [p.name, p.price]))
  const defaultPrice = input.pools[0]?.price ?? {cpuHour: 0, memoryGiBHour: 0, source: 'none'}

  const services: ServicePlan[] = []
  for (const s of input.services) {
    const peakSource = 'rps' in s.peak ? 'rps' : 'multiplier'
    let peakRps = 'rps' in s.peak ? s.peak.rps : (s.observedRps ?? 0) * s.peak.multiplier
    if (peakSource === 'multiplier' && !(s.observedRps && s.observedRps > 0)) {
      problems.push({
        code: 'no-observed-traffic',
        service: s.service,
        message: `${s.service}: the peak is ${(s.peak as {multiplier: number}).multiplier}× observed traffic, but Prometheus shows no http_requests_total for it in the lookback.`,
      })
      peakRps = 0
    }
    if (!s.rpsPerPod) {
      problems.push({
        code: 'missing-rps-per-pod',
        service: s.service,
        message: `${s.service}: services.${s.service}.scaling.rpsPerPod is not set, so the replicas for its peak cannot be computed.`,
      })
    }
    if (!s.workload) {
      problems.push({
        code: 'no-workload',
        service: s.service,
        message: `${s.service}: no Deployment for it in the namespace.`,
      })
    }
    const w = s.workload
    const currentReplicas = w?.replicas ?? 0
    const currentMin = s.hpa?.minReplicas ?? currentReplicas
    const currentMax = s.hpa?.maxReplicas ?? s.configMaxReplicas
    const capacityReplicas =
      s.rpsPerPod && peakRps > 0 ? requiredReplicas(peakRps, campaign.buffer, s.rpsPerPod, s.targetUtilization) : 0
    const red = withRedundancy(capacityReplicas, s.tier, zones)
    let replicas = red.replicas
    let reason = red.reason
    let action: ServicePlan['action'] = 'raise'
    // The capacity guaranteed now is the floor (HPA minReplicas, or the replicas without an HPA):
    // a plan that does not raise it has nothing to do, which usually means a wrong peak.
    const baseline = s.savedFloor ?? currentMin
    if (capacityReplicas > 0 && replicas <= baseline) {
      if (!input.allowBelowCurrent) {
        problems.push({
          code: 'below-current',
          service: s.service,
          message: `${s.service}: the peak of ${round(peakRps, 1)} rps needs ${replicas} replicas, no more than the ${baseline} ${s.hpa ? `its ${autoscalerWord(s.hpa.kind)} keeps at least` : 'it runs'} now; check the peak (or pass --allow-below-current to leave it as it is).`,
        })
      }
      action = 'unchanged'
      replicas = currentMin
      reason = 'peak fits current capacity'
    } else if (capacityReplicas > 0 && replicas < currentReplicas) {
      warnings.push(
        `${s.service} runs ${currentReplicas} replicas now, more than the ${replicas} its campaign peak needs: the floor is raised to ${replicas}; check the peak if traffic is already above it.`,
      )
    }
    // The floor never goes down: a plan only adds capacity.
    const newMin = Math.max(replicas, currentMin)
    const limit = s.hpa ? s.hpa.maxReplicas : s.configMaxReplicas
    let newMax = currentMax
    let raisesMax = false
    if (newMin > limit) {
      if (input.raiseMax) {
        newMax = newMin
        raisesMax = true
      } else {
        problems.push({
          code: 'beyond-max',
          service: s.service,
          message: `${s.service}: the plan needs ${newMin} replicas, more than ${s.hpa ? `the ${autoscalerWord(s.hpa.kind)} ${s.hpa.name}'s ${s.hpa.kind === 'ScaledObject' ? 'maxReplicaCount' : 'maxReplicas'}` : `services.${s.service}.scaling.maxReplicas`} (${limit}); raise it, or pass --raise-max to let the pre-warm raise it for the campaign.`,
        })
      }
    } else if (newMax < newMin) newMax = newMin
    if (w && w.requests.cpu === 0 && w.requests.memory === 0) {
      warnings.push(
        `${s.service}: its pods request no CPU or memory, so the node headroom and cost leave it out; set services.${s.service}.resources.requests.`,
      )
    }
    const pool = w?.pool ?? '(unknown)'
    const price = poolPrices.get(pool) ?? defaultPrice
    const podRequests = w?.requests ?? ZERO
    services.push({
      service: s.service,
      tier: s.tier,
      deployment: w?.name,
      hpa: s.hpa?.name,
      hpaKind: s.hpa?.kind,
      pool,
      peakRps: round(peakRps, 3),
      peakSource,
      observedRps: s.observedRps === undefined ? undefined : round(s.observedRps, 3),
      rpsPerPod: s.rpsPerPod,
      targetUtilization: s.targetUtilization,
      capacityReplicas,
      replicas: newMin,
      reason: newMin > replicas ? 'current floor is higher' : reason,
      currentReplicas,
      currentMin,
      currentMax,
      newMin,
      newMax,
      raisesMax,
      action,
      podRequests,
      tolerations: w?.tolerations,
      costPerHour: round(newMin * podHourlyCost(podRequests, price)),
      currentCostPerHour: round(currentReplicas * podHourlyCost(podRequests, price)),
    })
  }

  // Node headroom per pool: what the added pods request against what the pool has free.
  const pools: PoolPlan[] = []
  const poolNames = new Set([
    ...input.pools.map((p) => p.name),
    ...services.filter((s) => s.deployment).map((s) => s.pool),
  ])
  for (const name of poolNames) {
    const facts = input.pools.find((p) => p.name === name)
    const mine = services.filter((s) => s.pool === name && s.deployment)
    if (!facts && mine.length === 0) continue
    let needed: Resources & {pods: number} = {...ZERO, pods: 0}
    let biggest: Resources = {...ZERO}
    for (const s of mine) {
      const add = Math.max(0, s.newMin - s.currentReplicas)
      needed = {...addResources(needed, s.podRequests, add), pods: needed.pods + add}
      biggest = {cpu: Math.max(biggest.cpu, s.podRequests.cpu), memory: Math.max(biggest.memory, s.podRequests.memory)}
    }
    const allocatable = facts?.allocatable ?? {...ZERO, pods: 0}
    const requested = facts?.requested ?? {...ZERO, pods: 0}
    const free = {
      cpu: Math.max(0, allocatable.cpu - requested.cpu),
      memory: Math.max(0, allocatable.memory - requested.memory),
      pods: Math.max(0, allocatable.pods - requested.pods),
    }
    const shortfall = {
      cpu: Math.max(0, needed.cpu - free.cpu),
      memory: Math.max(0, needed.memory - free.memory),
      pods: Math.max(0, needed.pods - free.pods),
    }
    const size = facts?.nodeSize
    const extraNodes =
      size && (size.cpu > 0 || size.memory > 0)
        ? Math.max(
            size.cpu > 0 ? Math.ceil(shortfall.cpu / size.cpu - 1e-9) : 0,
            size.memory > 0 ? Math.ceil(shortfall.memory / size.memory - 1e-9) : 0,
            size.pods > 0 ? Math.ceil(shortfall.pods / size.pods - 1e-9) : 0,
          )
        : shortfall.cpu > 0 || shortfall.memory > 0
          ? Number.NaN
          : 0
    // Placeholders the size of the largest planned pod, as many as cover the shortfall: each
    // one a real pod can later take over by preemption.
    let placeholder = {replicas: 0, requests: {...ZERO}}
    if (input.nodeHeadroom && (shortfall.cpu > 0 || shortfall.memory > 0) && (biggest.cpu > 0 || biggest.memory > 0)) {
      const replicas = Math.max(
        biggest.cpu > 0 ? Math.ceil(shortfall.cpu / biggest.cpu - 1e-9) : 0,
        biggest.memory > 0 ? Math.ceil(shortfall.memory / biggest.memory - 1e-9) : 0,
      )
      placeholder = {replicas, requests: biggest}
    }
    const price = facts?.price ?? defaultPrice
    pools.push({
      pool: name,
      nodes: facts?.nodes ?? 0,
      allocatable,
      free,
      needed,
      shortfall,
      extraNodes: Number.isNaN(extraNodes) ? -1 : extraNodes,
      placeholder,
      headroomCostPerHour: round(placeholder.replicas * podHourlyCost(placeholder.requests, price)),
    })
  }

  // Quota: what the plan adds (pods, requests, limits, placeholders included) against hard - used.
  const added: Record<string, number> = {
    pods: 0,
    'requests.cpu': 0,
    'requests.memory': 0,
    'limits.cpu': 0,
    'limits.memory': 0,
  }
  for (const s of services) {
    const w = input.services.find((f) => f.service === s.service)?.workload
    if (!w) continue
    const n = Math.max(0, s.newMin - s.currentReplicas)
    added.pods += n
    added['requests.cpu'] += n * w.requests.cpu
    added['requests.memory'] += n * w.requests.memory
    added['limits.cpu'] += n * w.limits.cpu
    added['limits.memory'] += n * w.limits.memory
  }
  for (const p of pools) {
    added.pods += p.placeholder.replicas
    added['requests.cpu'] += p.placeholder.replicas * p.placeholder.requests.cpu
    added['requests.memory'] += p.placeholder.replicas * p.placeholder.requests.memory
    added['limits.cpu'] += p.placeholder.replicas * p.placeholder.requests.cpu
    added['limits.memory'] += p.placeholder.replicas * p.placeholder.requests.memory
  }
  added.cpu = added['requests.cpu']
  added.memory = added['requests.memory']
  const quota: QuotaCheck[] = []
  for (const q of input.quotas) {
    for (const [resource, hard] of Object.entries(q.hard)) {
      const add = added[resource]
      if (add === undefined) continue
      const used = q.used[resource] ?? 0
      const ok = used + add <= hard + 1e-9
      quota.push({quota: q.name, resource, hard, used, added: round(add, 6), ok})
      if (!ok) {
        problems.push({
          code: 'beyond-quota',
          message: `ResourceQuota ${q.name}: ${resource} would be ${fmtQuota(resource, used + add)} of a hard limit of ${fmtQuota(resource, hard)} (${fmtQuota(resource, used)} used, the plan adds ${fmtQuota(resource, add)}).`,
        })
      }
    }
  }

  const currentPerHour = services.reduce((sum, s) => sum + s.currentCostPerHour, 0)
  const plannedPerHour = services.reduce((sum, s) => sum + s.costPerHour, 0)
  const headroomPerHour = pools.reduce((sum, p) => sum + p.headroomCostPerHour, 0)
  const from = Math.max(input.now.getTime(), Date.parse(campaign.start))
  const campaignHours = Math.max(0, (end - from) / 3_600_000)
  const extraPerHour = Math.max(0, plannedPerHour + headroomPerHour - currentPerHour)
  return {
    campaign: campaign.name,
    start: campaign.start,
    end: campaign.end,
    buffer: campaign.buffer,
    zones,
    services,
    pools,
    quota,
    cost: {
      currency: input.currency,
      currentPerHour: round(currentPerHour),
      plannedPerHour: round(plannedPerHour),
      headroomPerHour: round(headroomPerHour),
      extraPerHour: round(extraPerHour),
      campaignHours: round(campaignHours, 2),
      extraForCampaign: round(extraPerHour * campaignHours, 2),
    },
    problems,
    warnings,
  }
}

function fmtQuota(resource: string, value: number): string {
  if (resource.endsWith('memory')) return `${round(value / 1024 ** 3, 2)}Gi`
  if (resource.endsWith('cpu')) return `${round(value, 3)} CPU`
  return String(round(value, 2))
}

/** The services a campaign names, in configuration order, with the config facts the plan needs. */
export function campaignServiceConfig(config: RetailOpsConfig, campaign: CampaignConfig) {
  return Object.keys(campaign.peak).map((service) => {
    const s = config.services[service]
    return {
      service,
      tier: s.tier,
      peak: campaign.peak[service],
      rpsPerPod: s.scaling.rpsPerPod,
      targetUtilization: s.scaling.targetUtilization,
      configMinReplicas: s.scaling.minReplicas,
      configMaxReplicas: s.scaling.maxReplicas,
    }
  })
}
