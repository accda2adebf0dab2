/**
 * The configuration's fixed vocabulary, without zod: name patterns, tiers, severities, event
 * patterns and where a tenant deploys. Commands and engines that only need these import them from
 * here, so that loading them does not build the schema (src/config/schema.ts re-exports them).
 */

/**
 * A service name becomes a Kubernetes Service name, so it must be a DNS-1035 label (a letter
 * first: "1checkout" is refused by the apiserver), and stay short enough for the `-canary`,
 * `-stable` and `-preview` objects rollouts add to it.
 */
export const SERVICE_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/

/** The objects a rollout adds next to a service's own: a service may not be named like one of them. */
export const ROLLOUT_SUFFIXES = ['-canary', '-stable', '-preview'] as const

/** Namespaces are DNS-1123 labels: at most 63 characters. */
export const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
export const MAX_NAMESPACE = 63

export const TIERS = ['revenue-critical', 'operational', 'tolerant'] as const

/** The ways a service's autoscaler is rendered: auto discovers KEDA's CRDs in the cluster at deploy time. */
export const SCALING_PROVIDERS = ['auto', 'keda', 'hpa'] as const
export type ScalingProvider = (typeof SCALING_PROVIDERS)[number]

export const EPHEMERAL_STORAGE_DEFAULTS = {
  'revenue-critical': {request: '512Mi', limit: '2Gi'},
  operational: {request: '256Mi', limit: '1Gi'},
  tolerant: {request: '128Mi', limit: '512Mi'},
} as const

/** Vulnerability severities from lowest to highest (CVSS v3/v4 qualitative ranges). */
export const SEVERITY_THRESHOLDS = ['low', 'medium', 'high', 'critical'] as const
export type VulnerabilitySeverity = (typeof SEVERITY_THRESHOLDS)[number]

/**
 * An event name, or a wildcard over them: `*` (every event), `rollout.*`, `release.refused.*`
 * (every event whose name starts with the part before `*`).
 */
export function eventPatternMatches(pattern: string, event: string): boolean {
  if (pattern === '*') return true
  if (pattern.endsWith('.*')) return event.startsWith(pattern.slice(0, -1))
  return pattern === event
}

/** The namespace a dedicated tenant deploys into, as deploy renders it. */
export function tenantNamespace(
  config: {project: string},
  tenant: {name: string; model: string; namespace?: string},
  environmentNamespace: string,
): string | undefined {
  if (tenant.model === 'dedicated-namespace') return tenant.namespace ?? `${config.project}-${tenant.name}`
  if (tenant.model === 'dedicated-cluster') return tenant.namespace ?? environmentNamespace
  return undefined
}

/** The variable naming the JSON file of credentials that loadConfig puts back into retailops.yaml. */
export const CREDENTIALS_ENV = 'RETAILOPS_CONFIG_CREDENTIALS'
