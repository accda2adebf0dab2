import {z} from 'zod'

import {DEFAULT_POOL_LABEL, DEFAULT_SPOT_LABEL, SPOT_POLICIES, WHEN_UNSATISFIABLE} from './placement.js'
import {isWholeAtLeastOne} from './schema-checks.js'

// The zod pieces of placement (nodePools, tiers.<tier>.placement, services.<name>.placement) for
// ./schema.ts. The resolution and the pod-spec fields are ./placement.ts, which imports only
// these types: rendering a placement does not load zod (issue 18: fast everyday commands).

/** A Kubernetes label key: an optional DNS-subdomain prefix and a name of at most 63 characters. */
const labelKey = z
  .string()
  .max(316)
  .regex(
    /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    'a Kubernetes label key such as retailops.dev/pool or karpenter.sh/capacity-type',
  )
const labelValue = z
  .string()
  .max(63, 'at most 63 characters (a Kubernetes label value)')
  .regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, 'a Kubernetes label value: letters, digits, -, _ and .')
const poolName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a pool name: lowercase letters, digits and dashes, e.g. "general"')
  .max(63)

const taint = z
  .object({
    key: labelKey,
    value: labelValue.optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
  })
  .strict()

const nodePool = z
  .object({
    spot: z
      .boolean()
      .default(false)
      .describe("The pool's nodes are spot or preemptible capacity (they carry nodePools.spotLabel)."),
    labels: z
      .record(labelKey, labelValue)
      .optional()
      .describe("Labels that select the pool's nodes; default {<nodePools.poolLabel>: <pool name>}."),
    taints: z
      .array(taint)
      .default([])
      .describe(
        "Taints the pool's nodes carry: workloads that may run on the pool get matching tolerations, no other workload does.",
      ),
  })
  .strict()

export const nodePoolsSchema = z
  .object({
    poolLabel: labelKey
      .default(DEFAULT_POOL_LABEL)
      .describe(
        "Node label naming a node's pool (retailops.dev/pool in the sandbox; e.g. karpenter.sh/nodepool, cloud.google.com/gke-nodepool, eks.amazonaws.com/nodegroup, kubernetes.azure.com/agentpool).",
      ),
    spotLabel: z
      .object({key: labelKey, value: labelValue})
      .strict()
      .default({...DEFAULT_SPOT_LABEL})
      .describe(
        'Node label marking spot capacity: retailops.dev/capacity-type=spot in the sandbox; karpenter.sh/capacity-type=spot (EKS with Karpenter), cloud.google.com/gke-spot=true (GKE), kubernetes.azure.com/scalesetpriority=spot (AKS).',
      ),
    pools: z
      .record(poolName, nodePool)
      .default({})
      .describe('The node pools placement may name, with their spot flag, selecting labels and taints.'),
  })
  .strict()
  .describe(
    "The clusters' node pools as placement uses them (one description for every cluster of the project): docs/placement.md.",
  )

export const zoneSpreadSchema = z
  .object({
    maxSkew: z
      .number()
      .refine(isWholeAtLeastOne, 'maxSkew must be a whole number of pods, 1 or more (the most two zones may differ by)')
      .optional()
      .describe('The most the number of pods in two zones may differ by (1 or more).'),
    whenUnsatisfiable: z
      .enum(WHEN_UNSATISFIABLE)
      .optional()
      .describe(
        'DoNotSchedule: a pod that would exceed maxSkew stays Pending; ScheduleAnyway: the scheduler only prefers spreading.',
      ),
  })
  .strict()

export const placementSchema = z
  .object({
    pools: z
      .array(poolName)
      .min(1, 'name at least one pool, or leave pools out to allow every pool')
      .optional()
      .describe('Node pools (keys of nodePools.pools) the pods may run on; default any node.'),
    spot: z
      .enum(SPOT_POLICIES)
      .optional()
      .describe(
        'never: off spot nodes (required affinity); allowed: tolerates spot pools; preferred: prefers spot nodes (weight 100); required: only spot nodes. Revenue-critical services are never on spot unless services.<name>.placement.spot itself says so.',
      ),
    zoneSpread: zoneSpreadSchema
      .optional()
      .describe('topologySpreadConstraints over topology.kubernetes.io/zone; default per tier.'),
  })
  .strict()

export type NodePoolsConfig = z.output<typeof nodePoolsSchema>
export type NodePoolsInput = z.input<typeof nodePoolsSchema>
export type PlacementConfig = z.output<typeof placementSchema>
export type NodePoolConfig = NodePoolsConfig['pools'][string]
