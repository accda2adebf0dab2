import type {NodePoolsConfig, PlacementConfig} from './placement-schema.js'
import type {Tier} from './schema.js'

export type {NodePoolConfig, NodePoolsConfig, NodePoolsInput, PlacementConfig} from './placement-schema.js'

/**
 * Where a workload's pods may run: node pools, spot capacity and zone spread (docs/placement.md).
 * `tiers.<tier>.placement` gives defaults, `services.<name>.placement` (and any other workload
 * with a tier, such as a job) overrides them key by key; `nodePools` describes the clusters' pools.
 * Everything here is pure: the resolution (the schema pieces are ./placement-schema.ts), its validation and the pod-spec
 * fields (affinity, tolerations, topologySpreadConstraints) a resolved placement renders to, so
 * every pod template retailops writes (Deployments, canaries and previews copied from them,
 * jobs, pre-warm placeholders) is placed by the same rules.
 */

export const SPOT_POLICIES = ['never', 'allowed', 'preferred', 'required'] as const
export type SpotPolicy = (typeof SPOT_POLICIES)[number]
export const WHEN_UNSATISFIABLE = ['DoNotSchedule', 'ScheduleAnyway'] as const
export type WhenUnsatisfiable = (typeof WHEN_UNSATISFIABLE)[number]

export const ZONE_LABEL = 'topology.kubernetes.io/zone'
export const DEFAULT_POOL_LABEL = 'retailops.dev/pool'
export const DEFAULT_SPOT_LABEL = {key: 'retailops.dev/capacity-type', value: 'spot'} as const
/** Weight of the preferred spot term: the most a preference can weigh (1-100). */
export const SPOT_PREFERENCE_WEIGHT = 100

/** The built-in placement of each tier, under tiers.<tier>.placement and the workload's own. */
export const TIER_PLACEMENT_DEFAULTS: Record<
  Tier,
  {spot: SpotPolicy; zoneSpread: {maxSkew: number; whenUnsatisfiable: WhenUnsatisfiable}}
> = {
  // A zone outage must leave most of a revenue-critical service running: its pods never pile into one zone.
  'revenue-critical': {spot: 'never', zoneSpread: {maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule'}},
  operational: {spot: 'never', zoneSpread: {maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway'}},
  tolerant: {spot: 'allowed', zoneSpread: {maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway'}},
}

/** What resolution reads from the configuration (a RetailOpsConfig is one). */
export interface PlacementSources {
  nodePools?: NodePoolsConfig
  tiers: Partial<Record<Tier, {placement?: PlacementConfig} | undefined>>
}

export type Source = 'workload' | 'tier' | 'default'

export interface ResolvedPlacement {
  /** The workload's key in retailops.yaml: "services.checkout", "jobs.order-sync". */
  key: string
  tier: Tier
  /** Pools the pods may use; undefined: any node. */
  pools?: string[]
  poolsSource: Source
  spot: SpotPolicy
  spotSource: Source
  zoneSpread: {maxSkew: number; whenUnsatisfiable: WhenUnsatisfiable}
}

export const EMPTY_NODE_POOLS: NodePoolsConfig = {
  poolLabel: DEFAULT_POOL_LABEL,
  spotLabel: {...DEFAULT_SPOT_LABEL},
  pools: {},
}

export function nodePoolsOf(config: {nodePools?: NodePoolsConfig}): NodePoolsConfig {
  return config.nodePools ?? EMPTY_NODE_POOLS
}

/**
 * The workload's own placement over its tier's over the built-in tier default, key by key.
 * A revenue-critical workload's spot policy comes only from its own placement (never inherited).
 */
export function resolvePlacement(
  config: PlacementSources,
  workload: {tier: Tier; placement?: PlacementConfig},
  key: string,
): ResolvedPlacement {
  const own = workload.placement
  const tier = config.tiers[workload.tier]?.placement
  const builtIn = TIER_PLACEMENT_DEFAULTS[workload.tier]
  const inheritsSpot = workload.tier !== 'revenue-critical'
  const spot: [SpotPolicy, Source] = own?.spot
    ? [own.spot, 'workload']
    : inheritsSpot && tier?.spot
      ? [tier.spot, 'tier']
      : [builtIn.spot, 'default']
  const pools: [string[] | undefined, Source] = own?.pools
    ? [own.pools, 'workload']
    : tier?.pools
      ? [tier.pools, 'tier']
      : [undefined, 'default']
  return {
    key,
    tier: workload.tier,
    pools: pools[0],
    poolsSource: pools[1],
    spot: spot[0],
    spotSource: spot[1],
    zoneSpread: {
      maxSkew: own?.zoneSpread?.maxSkew ?? tier?.zoneSpread?.maxSkew ?? builtIn.zoneSpread.maxSkew,
      whenUnsatisfiable:
        own?.zoneSpread?.whenUnsatisfiable ??
        tier?.zoneSpread?.whenUnsatisfiable ??
        builtIn.zoneSpread.whenUnsatisfiable,
    },
  }
}

/** The key a resolved value came from, as a user would write it. */
export function placementKey(p: ResolvedPlacement, field: 'pools' | 'spot' | 'zoneSpread'): string {
  const source = field === 'pools' ? p.poolsSource : field === 'spot' ? p.spotSource : 'workload'
  if (source === 'tier') return `tiers.${p.tier}.placement.${field}`
  return `${p.key}.placement.${field}`
}

/** The pools the pods can actually use: the listed ones the spot policy admits (all declared spot pools for spot work without a list). */
export function usablePools(p: ResolvedPlacement, nodePools: NodePoolsConfig): string[] | undefined {
  const isSpot = (name: string) => nodePools.pools[name]?.spot === true
  if (p.pools) {
    if (p.spot === 'never') return p.pools.filter((n) => !isSpot(n))
    if (p.spot === 'required') return p.pools.filter(isSpot)
    return p.pools
  }
  return undefined
}

/** The pools whose taints the pods tolerate. */
function toleratedPools(p: ResolvedPlacement, nodePools: NodePoolsConfig): string[] {
  const usable = usablePools(p, nodePools)
  if (usable) return usable
  if (p.spot === 'never') return []
  return Object.entries(nodePools.pools)
    .filter(([, pool]) => pool.spot)
    .map(([name]) => name)
}

/** True when the placement leaves the pods nothing but spot capacity. */
export function onlySpot(p: ResolvedPlacement, nodePools: NodePoolsConfig): boolean {
  if (p.spot === 'required') return true
  return Boolean(p.pools && p.spot !== 'never' && p.pools.every((n) => nodePools.pools[n]?.spot === true))
}

/**
 * The pool a pre-warm reserves headroom on: the spot pool for workloads that prefer or require
 * spot, else the first on-demand pool they may use; undefined when the placement does not say
 * (any node): the caller falls back to what the cluster shows.
 */
export function headroomPool(p: ResolvedPlacement, nodePools: NodePoolsConfig): string | undefined {
  const isSpot = (name: string) => nodePools.pools[name]?.spot === true
  const candidates =
    usablePools(p, nodePools) ?? (p.spot === 'never' || p.spot === 'allowed' ? [] : Object.keys(nodePools.pools))
  const wantsSpot = p.spot === 'preferred' || p.spot === 'required'
  return candidates.find((n) => isSpot(n) === wantsSpot) ?? candidates[0]
}

/** The labels that select a pool's nodes. */
export function poolSelector(name: string, nodePools: NodePoolsConfig): Record<string, string> {
  return nodePools.pools[name]?.labels ?? {[nodePools.poolLabel]: name}
}

export interface NodeSelectorRequirement {
  key: string
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'
  values?: string[]
}

export interface Toleration {
  key: string
  operator: 'Equal' | 'Exists'
  value?: string
  effect: string
}

export interface TopologySpreadConstraint {
  maxSkew: number
  topologyKey: string
  whenUnsatisfiable: WhenUnsatisfiable
  labelSelector: {matchLabels: Record<string, string>}
}

/** The toleration of a pool's taint: its value exactly, or any value when the taint has none. */
export function taintToleration(t: {key: string; value?: string; effect: string}): Toleration {
  return t.value === undefined
    ? {key: t.key, operator: 'Exists', effect: t.effect}
    : {key: t.key, operator: 'Equal', value: t.value, effect: t.effect}
}

/** The pod-spec fields a placement renders to (absent keys: nothing to say). */
export interface PodPlacement {
  affinity?: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution?: {
        nodeSelectorTerms: {matchExpressions: NodeSelectorRequirement[]}[]
      }
      preferredDuringSchedulingIgnoredDuringExecution?: {
        weight: number
        preference: {matchExpressions: NodeSelectorRequirement[]}
      }[]
    }
  }
  tolerations?: Toleration[]
  topologySpreadConstraints: TopologySpreadConstraint[]
}

/**
 * A resolved placement as pod-spec fields, for any pod template (a service's Deployment, a job's,
 * a placeholder's): required node affinity on the pools and the spot label (never: NotIn,
 * required: In), a preferred term for spot: preferred, tolerations for the taints of exactly the
 * pools the pods may use, and a zone spread over the pods `matchLabels` selects.
 */
export function placementPodSpec(
  p: ResolvedPlacement,
  nodePools: NodePoolsConfig,
  matchLabels: Record<string, string>,
): PodPlacement {
  const {key: spotKey, value: spotValue} = nodePools.spotLabel
  const common: NodeSelectorRequirement[] = []
  if (p.spot === 'never') common.push({key: spotKey, operator: 'NotIn', values: [spotValue]})
  if (p.spot === 'required') common.push({key: spotKey, operator: 'In', values: [spotValue]})
  const pools = usablePools(p, nodePools)
  const terms: NodeSelectorRequirement[][] = []
  if (pools) {
    // Pools selected by the pool label share one term; a pool with labels of its own is a term of its own.
    const byLabel = pools.filter((n) => !nodePools.pools[n]?.labels)
    if (byLabel.length > 0) terms.push([{key: nodePools.poolLabel, operator: 'In', values: byLabel}])
    for (const n of pools.filter((x) => nodePools.pools[x]?.labels))
      terms.push(
        Object.entries(nodePools.pools[n].labels!).map(([key, value]) => ({key, operator: 'In', values: [value]})),
      )
  }
  const required = (terms.length > 0 ? terms : common.length > 0 ? [[]] : []).map((t) => ({
    matchExpressions: [...t, ...common],
  }))
  const preferred =
    p.spot === 'preferred'
      ? [
          {
            weight: SPOT_PREFERENCE_WEIGHT,
            preference: {matchExpressions: [{key: spotKey, operator: 'In' as const, values: [spotValue]}]},
          },
        ]
      : []
  const tolerations: Toleration[] = []
  const seen = new Set<string>()
  for (const name of toleratedPools(p, nodePools))
    for (const t of nodePools.pools[name]?.taints ?? []) {
      const toleration = taintToleration(t)
      const id = JSON.stringify(toleration)
      if (!seen.has(id)) tolerations.push(toleration)
      seen.add(id)
    }
  const nodeAffinity = {
    ...(required.length > 0 ? {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: required}} : {}),
    ...(preferred.length > 0 ? {preferredDuringSchedulingIgnoredDuringExecution: preferred} : {}),
  }
  return {
    ...(Object.keys(nodeAffinity).length > 0 ? {affinity: {nodeAffinity}} : {}),
    ...(tolerations.length > 0 ? {tolerations} : {}),
    topologySpreadConstraints: [
      {
        maxSkew: p.zoneSpread.maxSkew,
        topologyKey: ZONE_LABEL,
        whenUnsatisfiable: p.zoneSpread.whenUnsatisfiable,
        labelSelector: {matchLabels},
      },
    ],
  }
}

/**
 * The pod-spec fields for a workload straight from the configuration: resolve, then render.
 * `workload` is `services.<name>` (or `jobs.<name>`: any entry with a tier and an optional placement).
 */
export function workloadPlacement(
  config: PlacementSources,
  workload: {tier: Tier; placement?: PlacementConfig},
  key: string,
  matchLabels: Record<string, string>,
): PodPlacement {
  return placementPodSpec(resolvePlacement(config, workload, key), nodePoolsOf(config), matchLabels)
}

export interface PlacementIssue {
  path: (string | number)[]
  message: string
}

/** Problems of tiers.<tier>.placement: unknown pools, and spot on the revenue-critical tier. */
export function tierPlacementIssues(config: PlacementSources): PlacementIssue[] {
  const issues: PlacementIssue[] = []
  const nodePools = nodePoolsOf(config)
  for (const [tier, defaults] of Object.entries(config.tiers) as [Tier, {placement?: PlacementConfig} | undefined][]) {
    const placement = defaults?.placement
    if (!placement) continue
    issues.push(...unknownPools(placement.pools, nodePools, ['tiers', tier, 'placement', 'pools']))
    if (tier === 'revenue-critical' && placement.spot && placement.spot !== 'never')
      issues.push({
        path: ['tiers', tier, 'placement', 'spot'],
        message: `is ${placement.spot}, but revenue-critical services run on spot only when their own placement says so: remove it and set services.<name>.placement.spot on each service that may use spot`,
      })
  }
  return issues
}

/**
 * Problems of one workload's placement as resolved: unknown pools it names itself, and a pool
 * list the spot policy cannot be met with. `path` is the workload's ("services", "checkout").
 * Revenue-critical on spot only is not a configuration error but a policy refusal (kubernetes/policy.ts).
 */
export function workloadPlacementIssues(
  config: PlacementSources,
  workload: {tier: Tier; placement?: PlacementConfig},
  path: (string | number)[],
): PlacementIssue[] {
  const nodePools = nodePoolsOf(config)
  const issues = unknownPools(workload.placement?.pools, nodePools, [...path, 'placement', 'pools'])
  if (issues.length > 0) return issues
  const p = resolvePlacement(config, workload, path.join('.'))
  if (p.pools?.some((n) => !nodePools.pools[n])) return issues // reported on the tier
  const isSpot = (n: string) => nodePools.pools[n]?.spot === true
  const spotPools = Object.keys(nodePools.pools).filter(isSpot)
  const spotPath = p.spotSource === 'workload' ? [...path, 'placement', 'spot'] : [...path, 'placement']
  const where = (field: 'pools' | 'spot') =>
    (field === 'pools' ? p.poolsSource : p.spotSource) === 'default'
      ? `the ${p.tier} tier's default`
      : placementKey(p, field)
  if (p.spot === 'required' || p.spot === 'preferred') {
    const usable = p.pools ? p.pools.filter(isSpot) : spotPools
    if (usable.length === 0)
      issues.push({
        path: spotPath,
        message: p.pools
          ? `spot is ${p.spot} (${where('spot')}), but none of its pools (${p.pools.join(', ')}, ${where('pools')}) is a spot pool: add a spot pool to the list (nodePools.pools.<name>.spot: true) or set spot to allowed or never`
          : `spot is ${p.spot} (${where('spot')}), but nodePools.pools declares no spot pool: declare the spot pool (nodePools.pools.<name>: {spot: true, taints: [...]}) so its taints are tolerated`,
      })
  }
  if (p.spot === 'never' && p.pools) {
    const spotListed = p.pools.filter(isSpot)
    if (spotListed.length > 0)
      issues.push({
        path: p.poolsSource === 'workload' ? [...path, 'placement', 'pools'] : spotPath,
        message:
          spotListed.length === p.pools.length
            ? `lists only spot pools (${spotListed.join(', ')}, ${where('pools')}) but spot is never (${where('spot')}): its pods could run nowhere. Add an on-demand pool, or set ${p.key}.placement.spot to allowed, preferred or required`
            : `lists spot pool${spotListed.length > 1 ? 's' : ''} ${spotListed.join(', ')} (${where('pools')}) but spot is never (${where('spot')}): remove ${spotListed.length > 1 ? 'them' : 'it'} from ${p.key}.placement.pools, or set ${p.key}.placement.spot to allowed`,
      })
  }
  return issues
}

function unknownPools(
  pools: string[] | undefined,
  nodePools: NodePoolsConfig,
  path: (string | number)[],
): PlacementIssue[] {
  const known = Object.keys(nodePools.pools)
  return (pools ?? []).flatMap((n, i) =>
    nodePools.pools[n]
      ? []
      : [
          {
            path: [...path, i],
            message: `"${n}" is not a pool of nodePools.pools (${known.length > 0 ? `known: ${known.join(', ')}` : 'none declared'}): declare it under nodePools.pools with its labels and taints, or fix the name`,
          },
        ],
  )
}

/** What policy checks need to judge rendered pod templates' placement: the pools and each service's resolved placement. */
export interface PlacementPolicy {
  nodePools: NodePoolsConfig
  /** By service name. */
  services: Record<string, ResolvedPlacement>
  /** By job name. */
  jobs?: Record<string, ResolvedPlacement>
}

type Placed = Record<string, {tier: Tier; placement?: PlacementConfig}>

export function placementPolicy(config: PlacementSources & {services: Placed; jobs?: Placed}): PlacementPolicy {
  const resolveAll = (section: 'services' | 'jobs', entries: Placed = {}) =>
    Object.fromEntries(
      Object.entries(entries).map(([name, w]) => [name, resolvePlacement(config, w, `${section}.${name}`)]),
    )
  return {
    nodePools: nodePoolsOf(config),
    services: resolveAll('services', config.services),
    jobs: resolveAll('jobs', config.jobs),
  }
}

export interface PodSpecPlacement {
  nodeSelector?: Record<string, string>
  affinity?: {
    nodeAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: {
        nodeSelectorTerms?: {matchExpressions?: {key: string; operator: string; values?: string[]}[]}[]
      }
    }
  }
}

/**
 * Why a pod spec can be scheduled on spot nodes only, or undefined when it can run elsewhere: a
 * node selector, or every required node-affinity term, that admits only the spot label's value or
 * only spot pools. Reads what was rendered, so an overlay that pins a workload to spot is caught too.
 */
export function spotOnlyReason(spec: PodSpecPlacement | undefined, nodePools: NodePoolsConfig): string | undefined {
  const {key: spotKey, value: spotValue} = nodePools.spotLabel
  const spotPools = new Set(
    Object.entries(nodePools.pools)
      .filter(([, p]) => p.spot)
      .map(([name]) => name),
  )
  const spotLabel = `${spotKey}=${spotValue}`
  const selector = spec?.nodeSelector ?? {}
  if (selector[spotKey] === spotValue) return `its nodeSelector requires ${spotLabel}`
  if (spotPools.has(selector[nodePools.poolLabel]))
    return `its nodeSelector requires spot pool ${selector[nodePools.poolLabel]}`
  const terms = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []
  const onlySpotTerm = (term: (typeof terms)[number]) =>
    (term.matchExpressions ?? []).some(
      (e) =>
        e.operator === 'In' &&
        (e.values ?? []).length > 0 &&
        ((e.key === spotKey && e.values!.every((v) => v === spotValue)) ||
          (e.key === nodePools.poolLabel && e.values!.every((v) => spotPools.has(v)))),
    )
  if (terms.length > 0 && terms.every(onlySpotTerm))
    return `its required node affinity admits only spot nodes (${spotLabel}${spotPools.size > 0 ? ` or pools ${[...spotPools].join(', ')}` : ''})`
  return undefined
}
