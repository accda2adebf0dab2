import {parseQuantity, type Resources} from '../kubernetes/quantity.js'
import {LABEL} from '../kubernetes/labels.js'
import {RetailOpsError, UnavailableError} from '../errors/index.js'
import {KubeHttp, KubeHttpError} from '../kubernetes/http.js'
import {kubeError} from '../kubernetes/client.js'
import type {NodePoolsConfig} from '../config/placement.js'
import {firstLabel, isSpotNode, nodeInstanceType, nodePool, nodeZone} from '../kubernetes/nodes.js'
import {ListExpired, streamObjects} from '../kubernetes/objects.js'
import {collectionPath} from '../kubernetes/resources.js'

/**
 * Streams nodes and pods from the API server page by page (limit + continue) and keeps only the
 * few fields cost allocation needs, so memory stays flat with cluster size: a 5,000-pod cluster
 * is a few MB of compact records, never 5,000 full Pod objects.
 */

export const SERVICE_LABELS = [LABEL.service, LABEL.name, 'app', 'k8s-app']

export type {Resources}

export interface NodeRecord {
  name: string
  pool: string
  instanceType?: string
  zone?: string
  spot: boolean
  capacity: Resources
  allocatable: Resources
  createdMs: number
  ready: boolean
}

export interface ContainerRecord {
  name: string
  requests: Resources
}

export interface PodRecord {
  namespace: string
  name: string
  node?: string
  phase: string
  /** When it started running (status.startTime, else creation). */
  startMs: number
  /** When a finished pod's last container ended. */
  endMs?: number
  /** From retailops.dev/service, app.kubernetes.io/name, app, k8s-app, else the controller. */
  service: string
  tierLabel?: string
  tenantLabel?: string
  controllerKind?: string
  controller?: string
  containers: ContainerRecord[]
  /** Values of --by label:X aggregations, kept only for the labels asked for. */
  labels?: Record<string, string>
}

export interface NamespaceRecord {
  name: string
  /** tenant.retailops.dev/<name> labels and retailops.dev/tenant on the namespace. */
  tenants: string[]
  environment?: string
}

export interface CollectOptions {
  /** Only nodes matching this label selector (and pods bound to them). */
  nodeSelector?: string
  /** Page size for lists (default 500, what kubectl uses). */
  pageSize?: number
  /** Pod labels to keep for label:X aggregations. */
  keepLabels?: string[]
  /** retailops.yaml's nodePools: which label names a node's pool, which marks spot capacity. */
  nodePools?: NodePoolsConfig
  signal?: AbortSignal
  /** Called per page, for progress. */
  onPage?: (kind: string, count: number) => void
}

/** The fields cost reads from listed nodes, pods and namespaces, as the API serves them (any may be absent). */
interface ListedMetadata {
  name: string
  namespace?: string
  labels?: Record<string, string>
  creationTimestamp?: string
  ownerReferences?: {kind: string; name: string; controller?: boolean}[]
}

export interface ListedNode {
  metadata: ListedMetadata
  status?: {
    conditions?: {type: string; status: string}[]
    capacity?: Record<string, string>
    allocatable?: Record<string, string>
  }
}

export interface ListedPod {
  metadata: ListedMetadata
  spec?: {nodeName?: string; containers?: {name: string; resources?: {requests?: Record<string, string>}}[]}
  status?: {
    phase?: string
    startTime?: string
    containerStatuses?: {state?: {terminated?: {finishedAt?: string}}}[]
  }
}

export interface ListedNamespace {
  metadata: ListedMetadata
}

function resources(r: Record<string, string> | undefined): Resources {
  return {cpu: parseQuantity(r?.cpu), memory: parseQuantity(r?.memory)}
}

/** A listed node as cost reads it: its pool and capacity type as retailops.yaml's nodePools (if any) describe them. */
export function toNodeRecord(n: ListedNode, nodePools?: NodePoolsConfig): NodeRecord {
  const labels = n.metadata.labels ?? {}
  const conditions = n.status?.conditions ?? []
  return {
    name: n.metadata.name,
    pool: nodePool(labels, 'default', nodePools),
    instanceType: nodeInstanceType(labels),
    zone: nodeZone(labels),
    spot: isSpotNode(labels, nodePools),
    capacity: resources(n.status?.capacity),
    allocatable: resources(n.status?.allocatable ?? n.status?.capacity),
    createdMs: Date.parse(n.metadata.creationTimestamp ?? '') || Date.now(),
    ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
  }
}

/** ReplicaSet "checkout-7d9f8c6b5" with pod-template-hash "7d9f8c6b5" → Deployment "checkout". */
function controllerOf(pod: ListedPod): {kind?: string; name?: string} {
  const owners = pod.metadata.ownerReferences ?? []
  const owner = owners.find((o) => o.controller) ?? owners[0]
  if (!owner) return {}
  const hash = pod.metadata.labels?.['pod-template-hash']
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`))
    return {kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1)}
  // CronJob-made Jobs are named <cronjob>-<minutes since epoch>.
  if (owner.kind === 'Job' && /-\d{8,}$/.test(owner.name))
    return {kind: 'CronJob', name: owner.name.replace(/-\d{8,}$/, '')}
  return {kind: owner.kind, name: owner.name}
}

export function toPodRecord(p: ListedPod, keepLabels: string[] = []): PodRecord {
  const labels = p.metadata.labels
  const ctl = controllerOf(p)
  const statuses = p.status?.containerStatuses ?? []
  const phase = p.status?.phase ?? 'Unknown'
  let endMs: number | undefined
  if (phase === 'Succeeded' || phase === 'Failed') {
    const ends = statuses
      .map((s) => Date.parse(s.state?.terminated?.finishedAt ?? ''))
      .filter((t) => Number.isFinite(t))
    endMs = ends.length ? Math.max(...ends) : Date.parse(p.metadata.creationTimestamp ?? '') || undefined
  }
  const kept = keepLabels.length
    ? Object.fromEntries(keepLabels.filter((k) => labels?.[k] !== undefined).map((k) => [k, labels![k]]))
    : undefined
  return {
    namespace: p.metadata.namespace ?? '',
    name: p.metadata.name,
    node: p.spec?.nodeName || undefined,
    phase,
    startMs: Date.parse(p.status?.startTime ?? p.metadata.creationTimestamp ?? '') || Date.now(),
    endMs,
    service: firstLabel(labels, SERVICE_LABELS) ?? ctl.name ?? p.metadata.name,
    tierLabel: labels?.[LABEL.tier],
    tenantLabel: labels?.[LABEL.tenant],
    controllerKind: ctl.kind,
    controller: ctl.name,
    containers: (p.spec?.containers ?? []).map((c) => ({name: c.name, requests: resources(c.resources?.requests)})),
    ...(kept && Object.keys(kept).length ? {labels: kept} : {}),
  }
}

export function toNamespaceRecord(ns: ListedNamespace): NamespaceRecord {
  const labels = ns.metadata.labels ?? {}
  const tenants = Object.keys(labels)
    .filter((k) => k.startsWith('tenant.retailops.dev/'))
    .map((k) => k.slice('tenant.retailops.dev/'.length))
  if (labels[LABEL.tenant]) tenants.unshift(labels[LABEL.tenant])
  return {name: ns.metadata.name, tenants: [...new Set(tenants)], environment: labels[LABEL.environment]}
}

export interface ClusterSnapshot {
  server: string
  nodes: NodeRecord[]
  pods: PodRecord[]
  namespaces: NamespaceRecord[]
  listedAt: number
}

/** Nodes, namespaces and pods, streamed. Pods of nodes outside the selector are skipped as they arrive. */
export async function collectCluster(
  http: KubeHttp,
  server: string,
  options: CollectOptions = {},
): Promise<ClusterSnapshot> {
  const attempt = async (): Promise<ClusterSnapshot> => {
    const nodes: NodeRecord[] = []
    const namespaces: NamespaceRecord[] = []
    const pods: PodRecord[] = []
    await Promise.all([
      streamObjects<ListedNode>(http, collectionPath('Node'), (n) => nodes.push(toNodeRecord(n, options.nodePools)), {
        ...options,
        query: options.nodeSelector ? {labelSelector: options.nodeSelector} : undefined,
      }),
      streamObjects<ListedNamespace>(
        http,
        collectionPath('Namespace'),
        (n) => namespaces.push(toNamespaceRecord(n)),
        options,
      ),
    ])
    const nodeNames = new Set(nodes.map((n) => n.name))
    const onlySelected = Boolean(options.nodeSelector)
    await streamObjects<ListedPod>(
      http,
      collectionPath('Pod'),
      (p) => {
        if (onlySelected && !nodeNames.has(p.spec?.nodeName ?? '')) return
        pods.push(toPodRecord(p, options.keepLabels))
      },
      options,
    )
    return {server, nodes, pods, namespaces, listedAt: Date.now()}
  }
  try {
    try {
      return await attempt()
    } catch (error) {
      if (error instanceof ListExpired) return await attempt()
      throw error
    }
  } catch (error) {
    if (error instanceof RetailOpsError) throw error
    if ((error as {code?: string}).code === 'ABORT_ERR' || options.signal?.aborted) throw error
    throw kubeError(error, 'listing nodes and pods', server)
  }
}

export interface MetricsApiUsage {
  /** namespace/pod/container → {cpu cores, memory bytes} (instantaneous). */
  usage: Map<string, Resources>
  window?: string
}

/** The metrics API (metrics-server); undefined when the API group is not served. */
export async function metricsApiUsage(http: KubeHttp, signal?: AbortSignal): Promise<MetricsApiUsage | undefined> {
  const usage = new Map<string, Resources>()
  let window: string | undefined
  try {
    await streamObjects(
      http,
      collectionPath('PodMetrics'),
      (m: {
        metadata: {namespace: string; name: string}
        window?: string
        containers?: {name: string; usage: Record<string, string>}[]
      }) => {
        window ??= m.window
        for (const c of m.containers ?? [])
          usage.set(`${m.metadata.namespace}/${m.metadata.name}/${c.name}`, resources(c.usage))
      },
      {signal, pageSize: 2000},
    )
  } catch (error) {
    if (error instanceof KubeHttpError && (error.statusCode === 404 || error.statusCode === 503)) return undefined
    if (error instanceof KubeHttpError && error.statusCode === 403) {
      throw new UnavailableError('The metrics API refused listing pod metrics (RBAC).', {
        nextSteps: ['Grant list on pods.metrics.k8s.io, or pass --usage requests.'],
        cause: error,
      })
    }
    throw error
  }
  return {usage, window}
}
