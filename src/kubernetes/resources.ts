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

/** What the API server needs to address objects of a kind. */
export interface ApiKind {
  kind: string
  apiVersion: string
  /** Lowercase plural used in URLs. */
  plural: string
  namespaced: boolean
}

export interface KindInfo extends ApiKind {
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
  {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    plural: 'networkpolicies',
    namespaced: true,
    wave: 2,
    prunable: true,
  },
  {kind: 'Service', apiVersion: 'v1', plural: 'services', namespaced: true, wave: 2, prunable: true},
  {
    kind: 'PodDisruptionBudget',
    apiVersion: 'policy/v1',
    plural: 'poddisruptionbudgets',
    namespaced: true,
    wave: 2,
    prunable: true,
  },
  {kind: 'Deployment', apiVersion: 'apps/v1', plural: 'deployments', namespaced: true, wave: 3, prunable: true},
  {kind: 'CronJob', apiVersion: 'batch/v1', plural: 'cronjobs', namespaced: true, wave: 3, prunable: true},
  {
    kind: 'HorizontalPodAutoscaler',
    apiVersion: 'autoscaling/v2',
    plural: 'horizontalpodautoscalers',
    namespaced: true,
    wave: 4,
    prunable: true,
  },
  {
    kind: 'ScaledObject',
    apiVersion: 'keda.sh/v1alpha1',
    plural: 'scaledobjects',
    namespaced: true,
    wave: 4,
    prunable: true,
    optional: true,
  },
  {
    kind: 'HTTPRoute',
    apiVersion: 'gateway.networking.k8s.io/v1',
    plural: 'httproutes',
    namespaced: true,
    wave: 4,
    prunable: true,
    optional: true,
  },
]

/** Kinds retailops reads or writes outside a deploy (rollouts, prewarm, drills, cost): addressed, never pruned. */
const OTHER_KINDS: ApiKind[] = [
  {kind: 'Secret', apiVersion: 'v1', plural: 'secrets', namespaced: true},
  {kind: 'Pod', apiVersion: 'v1', plural: 'pods', namespaced: true},
  {kind: 'Event', apiVersion: 'v1', plural: 'events', namespaced: true},
  {kind: 'Node', apiVersion: 'v1', plural: 'nodes', namespaced: false},
  {kind: 'ReplicaSet', apiVersion: 'apps/v1', plural: 'replicasets', namespaced: true},
  {kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', plural: 'ingresses', namespaced: true},
  {kind: 'Job', apiVersion: 'batch/v1', plural: 'jobs', namespaced: true},
  /** KEDA's credentials for a ScaledObject's triggers (a drill restores them with the ScaledObjects). */
  {kind: 'TriggerAuthentication', apiVersion: 'keda.sh/v1alpha1', plural: 'triggerauthentications', namespaced: true},
  {kind: 'Role', apiVersion: 'rbac.authorization.k8s.io/v1', plural: 'roles', namespaced: true},
  {kind: 'RoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true},
  {kind: 'ClusterRole', apiVersion: 'rbac.authorization.k8s.io/v1', plural: 'clusterroles', namespaced: false},
  {
    kind: 'ClusterRoleBinding',
    apiVersion: 'rbac.authorization.k8s.io/v1',
    plural: 'clusterrolebindings',
    namespaced: false,
  },
  {kind: 'PriorityClass', apiVersion: 'scheduling.k8s.io/v1', plural: 'priorityclasses', namespaced: false},
  {
    kind: 'ValidatingAdmissionPolicy',
    apiVersion: 'admissionregistration.k8s.io/v1',
    plural: 'validatingadmissionpolicies',
    namespaced: false,
  },
  {
    kind: 'ValidatingAdmissionPolicyBinding',
    apiVersion: 'admissionregistration.k8s.io/v1',
    plural: 'validatingadmissionpolicybindings',
    namespaced: false,
  },
  {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    plural: 'selfsubjectaccessreviews',
    namespaced: false,
  },
  /** metrics-server's resource metrics. */
  {kind: 'PodMetrics', apiVersion: 'metrics.k8s.io/v1beta1', plural: 'pods', namespaced: true},
]

const byKind = new Map(MANAGED_KINDS.map((k) => [k.kind, k]))
const addressable = new Map<string, ApiKind>([...OTHER_KINDS, ...MANAGED_KINDS].map((k) => [k.kind, k]))

export function kindInfo(kind: string): KindInfo {
  const info = byKind.get(kind)
  if (!info) throw new Error(`retailops does not manage objects of kind ${kind}`)
  return info
}

/** How to address a kind retailops manages or otherwise reads and writes. */
export function apiKind(kind: string): ApiKind {
  const info = addressable.get(kind)
  if (!info) throw new Error(`retailops does not address objects of kind ${kind}`)
  return info
}

function apiRoot(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
}

/**
 * URL path of a collection: all namespaces when namespace is undefined for a namespaced kind.
 * The one builder of API paths: every object retailops reads or writes is addressed through it.
 */
export function collectionPath(kind: string, namespace?: string): string {
  const info = apiKind(kind)
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
  return `${apiRoot(info.apiVersion)}${ns}/${info.plural}`
}

export function objectPath(obj: Pick<KubeObject, 'kind'> & {metadata: {name: string; namespace?: string}}): string {
  const info = apiKind(obj.kind)
  if (info.namespaced && !obj.metadata.namespace) throw new Error(`${obj.kind}/${obj.metadata.name} has no namespace`)
  return `${collectionPath(obj.kind, obj.metadata.namespace)}/${encodeURIComponent(obj.metadata.name)}`
}

/** objectPath by kind, name and namespace (leave it out for cluster-scoped kinds). */
export function namedPath(kind: string, name: string, namespace?: string): string {
  return objectPath({kind, metadata: {name, namespace}})
}

/** "Deployment payments/checkout": how findings, diffs and errors name an object. */
export function objectRef(obj: {kind: string; metadata: {name: string; namespace?: string}}): string {
  return obj.metadata.namespace
    ? `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`
    : `${obj.kind} ${obj.metadata.name}`
}

/** Stable identity of an object inside one cluster. */
export function objectKey(obj: {kind: string; metadata: {name: string; namespace?: string}}): string {
  return `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`
}

/**
 * The path of an object a backup holds, of any kind: its apiVersion and the plural its backup
 * files it under (Velero's `<resource>.<group>` folders), since a backup may hold kinds
 * retailops does not otherwise address. Leave the namespace out for a cluster-scoped object.
 */
export function resourceObjectPath(apiVersion: string, plural: string, name: string, namespace?: string): string {
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
  return `${apiRoot(apiVersion)}${ns}/${encodeURIComponent(plural)}/${encodeURIComponent(name)}`
}
