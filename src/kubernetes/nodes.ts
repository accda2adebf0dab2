import type {NodePoolsConfig} from '../config/placement.js'

/**
 * What a node's labels say about its pool, instance type, zone and capacity type, across the
 * sandbox (retailops.dev/*) and the managed platforms. Shared by cost allocation and capacity
 * planning so both read the same node the same way.
 */

/** Labels that name a node's pool, tried in order. */
export const POOL_LABELS = [
  'retailops.dev/pool',
  'retailops.io/pool',
  'node.kubernetes.io/pool',
  'cloud.google.com/gke-nodepool',
  'eks.amazonaws.com/nodegroup',
  'karpenter.sh/nodepool',
  'kubernetes.azure.com/agentpool',
  'agentpool',
  'pool',
]
export const INSTANCE_TYPE_LABELS = ['node.kubernetes.io/instance-type', 'beta.kubernetes.io/instance-type']
export const ZONE_LABELS = ['topology.kubernetes.io/zone', 'failure-domain.beta.kubernetes.io/zone']
/** label → value pattern that marks spot or preemptible capacity. */
export const SPOT_LABELS: [string, RegExp][] = [
  ['retailops.dev/capacity-type', /^spot$/i],
  ['karpenter.sh/capacity-type', /^spot$/i],
  ['eks.amazonaws.com/capacityType', /^spot$/i],
  ['node.kubernetes.io/lifecycle', /^spot$/i],
  ['cloud.google.com/gke-spot', /^true$/i],
  ['cloud.google.com/gke-preemptible', /^true$/i],
  ['kubernetes.azure.com/scalesetpriority', /^spot$/i],
]

export type Labels = Record<string, string> | undefined

export function firstLabel(labels: Labels, keys: readonly string[]): string | undefined {
  if (!labels) return undefined
  for (const k of keys) if (labels[k]) return labels[k]
  return undefined
}

/**
 * The pool retailops.yaml's nodePools names a node by: a declared pool whose own labels it
 * carries, else the value of nodePools.poolLabel. Placement renders from the same description,
 * so a pool's pods, cost and headroom are counted under one name.
 */
export function declaredPool(labels: Labels, nodePools?: NodePoolsConfig): string | undefined {
  if (!labels || !nodePools) return undefined
  for (const [name, pool] of Object.entries(nodePools.pools))
    if (pool.labels && Object.entries(pool.labels).every(([k, v]) => labels[k] === v)) return name
  return labels[nodePools.poolLabel] || undefined
}

export function nodePool(labels: Labels, fallback = 'default', nodePools?: NodePoolsConfig): string {
  return declaredPool(labels, nodePools) ?? firstLabel(labels, POOL_LABELS) ?? fallback
}

export function nodeInstanceType(labels: Labels): string | undefined {
  return firstLabel(labels, INSTANCE_TYPE_LABELS)
}

export function nodeZone(labels: Labels): string | undefined {
  return firstLabel(labels, ZONE_LABELS)
}

/** Spot by nodePools.spotLabel, by a declared spot pool, or by the platforms' well-known labels. */
export function isSpotNode(labels: Labels, nodePools?: NodePoolsConfig): boolean {
  if (nodePools && labels) {
    if (labels[nodePools.spotLabel.key] === nodePools.spotLabel.value) return true
    const pool = declaredPool(labels, nodePools)
    if (pool && nodePools.pools[pool]?.spot) return true
  }
  return SPOT_LABELS.some(([k, re]) => re.test(labels?.[k] ?? ''))
}
