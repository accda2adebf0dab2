/**
 * The kinds retailops renders and manages, with what the API server needs to address them.
 * A fixed table instead of discovery: deploys touch only these kinds, and skipping discovery
 * saves a round trip per API group on every run.
 */
export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    resourceVersion?: string
    generation?: number
    uid?: string
    managedFields?: unknown[]
    [key: string]: unknown
  }
  [key: string]: unknown
}

export interface KindInfo {
  kind: string
  apiVersion: string
  /** Lowercase plural used in URLs. */
  plural: string
  namespaced: boolean
  /** Apply order: lower waves are applied (and finish) before higher ones start. */
  wave: number
  /** Objects of this kind are deleted when no longer rendered (never namespaces: that would delete their contents). */
  prunable: boolean
  /** Served by a CRD that a cluster may not have: listing it there finds nothing rather than failing. */
  optional?: boolean
}

export const MANAGED_KINDS: KindInfo[] = [
  {kind: 'Namespace', apiVersion: 'v1', plural: 'namespaces', namespaced: false, wave: 0, prunable: false},
  {kind: 'ResourceQuota', apiVersion: 'v1', plural: 'resourcequotas', namespaced: true, wave: 1, prunable: true},
  {kind: 'LimitRange', apiVersion: 'v1', plural: 'limitranges', namespaced: true, wave: 1, prunable: true},
  {kind: 'ServiceAccount', apiVersion: 'v1', plural: 'serviceaccounts', namespaced: true, wave: 2, prunable: true},
  {kind: 'ConfigMap', apiVersion: 'v1', plural: 'configmaps', namespaced: true, wave: 2, prunable: true},
  {kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true, wave: 2, prunable: true},
  {kind: 'Service', apiVersion: 'v1', plural: 'services', namespaced: true, wave: 2, prunable: true},
  {kind: 'PodDisruptionBudget', apiVersion: 'policy/v1', plural: 'poddisruptionbudgets', namespaced: true, wave: 2, prunable: true},
  {kind: 'Deployment', apiVersion: 'apps/v1', plural: 'deployments', namespaced: true, wave: 3, prunable: true},
  {kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2', plural: 'horizontalpodautoscalers', namespaced: true, wave: 4, prunable: true},
  {kind: 'HTTPRoute', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'httproutes', namespaced: true, wave: 4, prunable: true, optional: true},
]

const byKind = new Map(MANAGED_KINDS.map((k) => [k.kind, k]))

export function kindInfo(kind: string): KindInfo {
  const info = byKind.get(kind)
  if (!info) throw new Error(`retailops does not manage objects of kind ${kind}`)
  return info
}

function apiRoot(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
}

/** URL path of a collection: all namespaces when namespace is undefined for a namespaced kind. */
export function collectionPath(kind: string, namespace?: string): string {
  const info = kindInfo(kind)
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
  return `${apiRoot(info.apiVersion)}${ns}/${info.plural}`
}

export function objectPath(obj: Pick<KubeObject, 'kind'> & {metadata: {name: string; namespace?: string}}): string {
  const info = kindInfo(obj.kind)
  if (info.namespaced && !obj.metadata.namespace) throw new Error(`${obj.kind}/${obj.metadata.name} has no namespace`)
  return `${collectionPath(obj.kind, obj.metadata.namespace)}/${encodeURIComponent(obj.metadata.name)}`
}

/** "Deployment payments/checkout": how findings, diffs and errors name an object. */
export function objectRef(obj: {kind: string; metadata: {name: string; namespace?: string}}): string {
  return obj.metadata.namespace ? `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}` : `${obj.kind} ${obj.metadata.name}`
}

/** Stable identity of an object inside one cluster. */
export function objectKey(obj: {kind: string; metadata: {name: string; namespace?: string}}): string {
  return `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`
}
