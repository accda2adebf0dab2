import {restrictedPodSecurity} from '../kubernetes/runner-job.js'
import type {PoolPlan} from './plan.js'
import {formatCpu, formatMemory} from '../kubernetes/quantity.js'
import {CAMPAIGN_LABEL, MANAGED_BY} from './state.js'

/**
 * Node headroom as low-priority placeholder pods (the cluster-autoscaler "overprovisioning"
 * pattern): pause containers that request the pool's shortfall, in a PriorityClass of -10.
 * -10 is the lowest priority that still makes cluster-autoscaler add nodes for them (its
 * --expendable-pods-priority-cutoff defaults to -10; lower pods are ignored). Real pods
 * (priority 0) preempt them when they need the room; preemptionPolicy Never keeps the
 * placeholders themselves from ever evicting anything.
 */

export const HEADROOM_PRIORITY = -10
export const HEADROOM_LABEL = 'retailops.io/headroom'
export const DEFAULT_PLACEHOLDER_IMAGE = 'registry.k8s.io/pause:3.10'
/** pause runs as any user: the conventional nobody. */
const PLACEHOLDER_UID = 65_535

export function priorityClassName(namespace: string, campaign: string): string {
  return `retailops-headroom-${namespace}-${campaign}`.slice(0, 253).replace(/-+$/, '')
}

export function headroomDeploymentName(campaign: string, pool: string): string {
  return `retailops-headroom-${campaign}-${pool}`.slice(0, 63).replace(/-+$/, '')
}

export function priorityClassBody(name: string, namespace: string, campaign: string) {
  return {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: {
      name,
      labels: {...MANAGED_BY, [CAMPAIGN_LABEL]: campaign, 'retailops.io/namespace': namespace.slice(0, 63)},
    },
    value: HEADROOM_PRIORITY,
    globalDefault: false,
    preemptionPolicy: 'Never',
    description: `Placeholder pods holding node headroom for campaign ${campaign} in ${namespace}; real pods preempt them. Deleted by \`retailops prewarm restore\`.`,
  }
}

export interface PlaceholderSpec {
  namespace: string
  campaign: string
  pool: PoolPlan
  poolLabel?: string
  priorityClass: string
  image: string
  tolerations: {key?: string; operator?: string; value?: string; effect?: string}[]
}

export function placeholderDeployment(spec: PlaceholderSpec) {
  const name = headroomDeploymentName(spec.campaign, spec.pool.pool)
  const labels = {
    ...MANAGED_BY,
    [CAMPAIGN_LABEL]: spec.campaign,
    [HEADROOM_LABEL]: spec.pool.pool,
    'app.kubernetes.io/name': name,
  }
  const resources = {
    cpu: formatCpu(spec.pool.placeholder.requests.cpu),
    memory: formatMemory(spec.pool.placeholder.requests.memory),
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {name, namespace: spec.namespace, labels},
    spec: {
      replicas: spec.pool.placeholder.replicas,
      selector: {matchLabels: {[HEADROOM_LABEL]: spec.pool.pool, [CAMPAIGN_LABEL]: spec.campaign}},
      template: {
        metadata: {labels},
        spec: {
          priorityClassName: spec.priorityClass,
          terminationGracePeriodSeconds: 0,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: restrictedPodSecurity(PLACEHOLDER_UID).pod,
          ...(spec.poolLabel ? {nodeSelector: {[spec.poolLabel]: spec.pool.pool}} : {}),
          ...(spec.tolerations.length > 0 ? {tolerations: spec.tolerations} : {}),
          containers: [
            {
              name: 'pause',
              image: spec.image,
              resources: {requests: resources, limits: resources},
              securityContext: restrictedPodSecurity(PLACEHOLDER_UID).container,
            },
          ],
        },
      },
    },
  }
}
