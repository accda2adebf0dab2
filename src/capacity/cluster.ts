import type * as k8s from '@kubernetes/client-node'
import {autoscalerOf, boundsOf, listScaledObjects} from '../kubernetes/autoscalers.js'
import type {HorizontalPodAutoscaler, ScaledObject} from '../kubernetes/kinds.js'

import type {RetailOpsConfig} from '../config/schema.js'
import {type KubeClients, kubeError, kubeHttpOf} from '../kubernetes/client.js'
import {isSpotNode, nodeInstanceType, nodeZone, POOL_LABELS} from '../kubernetes/nodes.js'
import {listObjects} from '../kubernetes/objects.js'
import {collectionPath} from '../kubernetes/resources.js'
import type {HpaFacts, PoolFacts, QuotaFacts, WorkloadFacts} from './plan.js'
import {poolPrice} from '../config/prices.js'
import {parseQuantity, type Resources} from '../kubernetes/quantity.js'

// Pool, zone, instance-type and spot labels are read as cost allocation reads them (src/kubernetes/nodes.ts).

export interface ClusterFacts {
  poolLabel?: string
  defaultPool: string
  zones: string[]
  pools: PoolFacts[]
}

function nodeReady(node: k8s.V1Node): boolean {
  return (
    !node.spec?.unschedulable && (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  )
}

/** The first known pool label every schedulable node carries (or most of them do). */
export function detectPoolLabel(nodes: k8s.V1Node[]): string | undefined {
  let best: {label: string; count: number} | undefined
  for (const label of POOL_LABELS) {
    const count = nodes.filter((n) => n.metadata?.labels?.[label]).length
    if (count > 0 && (!best || count > best.count)) best = {label, count}
  }
  return best?.label
}

/** Sum of container requests, or the largest init container's if bigger, plus pod overhead. */
export function podRequests(spec: k8s.V1PodSpec | undefined): Resources {
  const sum = (containers: k8s.V1Container[] | undefined, key: 'requests' | 'limits') =>
    (containers ?? []).reduce(
      (acc, c) => {
        const r = c.resources?.[key] ?? (key === 'requests' ? c.resources?.limits : undefined) ?? {}
        return {cpu: acc.cpu + parseQuantity(r.cpu), memory: acc.memory + parseQuantity(r.memory)}
      },
      {cpu: 0, memory: 0},
    )
  const main = sum(spec?.containers, 'requests')
  const init = (spec?.initContainers ?? []).map((c) => sum([c], 'requests'))
  const overhead = spec?.overhead ?? {}
  return {
    cpu: Math.max(main.cpu, ...init.map((i) => i.cpu)) + parseQuantity(overhead.cpu),
    memory: Math.max(main.memory, ...init.map((i) => i.memory)) + parseQuantity(overhead.memory),
  }
}

export function podLimits(spec: k8s.V1PodSpec | undefined): Resources {
  return (spec?.containers ?? []).reduce(
    (acc, c) => ({
      cpu: acc.cpu + parseQuantity(c.resources?.limits?.cpu),
      memory: acc.memory + parseQuantity(c.resources?.limits?.memory),
    }),
    {cpu: 0, memory: 0},
  )
}

/** The pool a pod template lands on: its nodeSelector, a required node-affinity term on the pool label, or the default. */
export function poolOf(
  spec: k8s.V1PodSpec | undefined,
  poolLabel: string | undefined,
  defaultPool: string,
): Pick<WorkloadFacts, 'pool' | 'poolSource'> {
  if (poolLabel) {
    const selected = spec?.nodeSelector?.[poolLabel]
    if (selected) return {pool: selected, poolSource: 'nodeSelector'}
    const terms = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []
    for (const term of terms) {
      const expr = (term.matchExpressions ?? []).find(
        (e) => e.key === poolLabel && e.operator === 'In' && e.values?.length,
      )
      if (expr) return {pool: expr.values![0], poolSource: 'affinity'}
    }
  }
  return {pool: defaultPool, poolSource: 'default'}
}

export interface NodeInventoryOptions {
  poolLabel?: string
  defaultPool?: string
  prices: RetailOpsConfig['prices']
  /** retailops.yaml's nodePools: its spot label and spot pools mark spot capacity too. */
  nodePools?: RetailOpsConfig['nodePools']
}

/** Nodes by pool (allocatable minus the requests of pods bound to them) and the zones they span. */
export async function nodeInventory(k: KubeClients, options: NodeInventoryOptions): Promise<ClusterFacts> {
  let nodes: k8s.V1Node[]
  let pods: k8s.V1Pod[]
  try {
    const http = kubeHttpOf(k)
    nodes = await listObjects<k8s.V1Node>(http, collectionPath('Node'))
    pods = await listObjects<k8s.V1Pod>(http, collectionPath('Pod'), {
      fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
    })
  } catch (error) {
    throw kubeError(error, 'listing nodes and pods', k.server)
  }
  return summariseNodes(nodes, pods, options)
}

export function summariseNodes(nodes: k8s.V1Node[], pods: k8s.V1Pod[], options: NodeInventoryOptions): ClusterFacts {
  const ready = nodes.filter(nodeReady)
  const poolLabel = options.poolLabel ?? detectPoolLabel(ready)
  const poolOfNode = (n: k8s.V1Node) => (poolLabel && n.metadata?.labels?.[poolLabel]) || 'default'
  const byPool = new Map<string, k8s.V1Node[]>()
  for (const n of ready) byPool.set(poolOfNode(n), [...(byPool.get(poolOfNode(n)) ?? []), n])
  const nodePool = new Map(ready.map((n) => [n.metadata!.name!, poolOfNode(n)]))
  const requested = new Map<string, Resources & {pods: number}>()
  for (const pod of pods) {
    const pool = pod.spec?.nodeName ? nodePool.get(pod.spec.nodeName) : undefined
    if (!pool) continue
    const r = podRequests(pod.spec)
    const acc = requested.get(pool) ?? {cpu: 0, memory: 0, pods: 0}
    requested.set(pool, {cpu: acc.cpu + r.cpu, memory: acc.memory + r.memory, pods: acc.pods + 1})
  }
  const pools: PoolFacts[] = [...byPool.entries()].map(([name, members]) => {
    const alloc = members.map((n) => ({
      cpu: parseQuantity(n.status?.allocatable?.cpu),
      memory: parseQuantity(n.status?.allocatable?.memory),
      pods: parseQuantity(n.status?.allocatable?.pods),
    }))
    const types = members.map((n) => nodeInstanceType(n.metadata?.labels)).filter((t): t is string => Boolean(t))
    const instanceType = mostCommon(types)
    const spot =
      /spot|preemptible/i.test(name) || members.some((n) => isSpotNode(n.metadata?.labels, options.nodePools))
    return {
      name,
      nodes: members.length,
      allocatable: alloc.reduce((a, b) => ({cpu: a.cpu + b.cpu, memory: a.memory + b.memory, pods: a.pods + b.pods}), {
        cpu: 0,
        memory: 0,
        pods: 0,
      }),
      requested: requested.get(name) ?? {cpu: 0, memory: 0, pods: 0},
      nodeSize: alloc.reduce(
        (a, b) => ({cpu: Math.max(a.cpu, b.cpu), memory: Math.max(a.memory, b.memory), pods: Math.max(a.pods, b.pods)}),
        {cpu: 0, memory: 0, pods: 0},
      ),
      price: poolPrice(options.prices, {pool: name, instanceType, spot}),
    }
  })
  pools.sort((a, b) => a.name.localeCompare(b.name))
  const zones = [
    ...new Set(ready.map((n) => nodeZone(n.metadata?.labels)).filter((z): z is string => Boolean(z))),
  ].sort()
  const defaultPool =
    options.defaultPool ??
    pools.find((p) => p.name === 'general')?.name ??
    pools.find((p) => p.name === 'default')?.name ??
    [...pools].sort((a, b) => b.nodes - a.nodes)[0]?.name ??
    'default'
  return {poolLabel, defaultPool, zones, pools}
}

function mostCommon(values: string[]): string | undefined {
  const counts = new Map<string, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
}

export interface ServiceWorkloads {
  deployment?: k8s.V1Deployment
  /** Its autoscaler: a KEDA ScaledObject when it has one (KEDA's own HPA for it is not), else its HPA. */
  autoscaler?: Autoscaler
}

export type Autoscaler = NonNullable<ReturnType<typeof autoscalerOf>>

/**
 * Each service's Deployment (label app.kubernetes.io/name=<service>, else named <service> or
 * <project>-<service>) and the HPA whose scaleTargetRef points at it.
 */
export async function findWorkloads(
  k: KubeClients,
  namespace: string,
  project: string,
  services: string[],
): Promise<Map<string, ServiceWorkloads>> {
  let deployments: k8s.V1Deployment[]
  let hpas: HorizontalPodAutoscaler[]
  let scaledObjects: ScaledObject[]
  try {
    const http = kubeHttpOf(k)
    deployments = await listObjects<k8s.V1Deployment>(http, collectionPath('Deployment', namespace))
    hpas = await listObjects<HorizontalPodAutoscaler>(http, collectionPath('HorizontalPodAutoscaler', namespace))
    scaledObjects = await listScaledObjects(http, namespace)
  } catch (error) {
    throw kubeError(error, `listing Deployments, HPAs and ScaledObjects in ${namespace}`, k.server)
  }
  const found = new Map<string, ServiceWorkloads>()
  for (const service of services) {
    const candidates = deployments.filter((d) => !d.metadata?.labels?.['retailops.io/headroom'])
    const deployment =
      candidates.find(
        (d) =>
          d.metadata?.labels?.['app.kubernetes.io/name'] === service && !d.metadata?.labels?.['retailops.io/track'],
      ) ??
      candidates.find((d) => d.metadata?.name === service) ??
      candidates.find((d) => d.metadata?.name === `${project}-${service}`)
    const autoscaler = deployment ? autoscalerOf(deployment.metadata!.name!, hpas, scaledObjects) : undefined
    found.set(service, {deployment, autoscaler})
  }
  return found
}

export function workloadFacts(d: k8s.V1Deployment, poolLabel: string | undefined, defaultPool: string): WorkloadFacts {
  const spec = d.spec?.template?.spec
  return {
    name: d.metadata!.name!,
    replicas: d.spec?.replicas ?? 1,
    readyReplicas: d.status?.readyReplicas ?? 0,
    requests: podRequests(spec),
    limits: podLimits(spec),
    tolerations: spec?.tolerations ?? [],
    ...poolOf(spec, poolLabel, defaultPool),
  }
}

export function hpaFacts(a: Autoscaler): HpaFacts {
  return boundsOf(a)
}

export async function namespaceQuotas(k: KubeClients, namespace: string): Promise<QuotaFacts[]> {
  try {
    const quotas = await listObjects<k8s.V1ResourceQuota>(kubeHttpOf(k), collectionPath('ResourceQuota', namespace))
    return quotas.map((q) => ({
      name: q.metadata!.name!,
      hard: numbers(q.status?.hard ?? q.spec?.hard ?? {}),
      used: numbers(q.status?.used ?? {}),
    }))
  } catch (error) {
    throw kubeError(error, `reading ResourceQuotas in ${namespace}`, k.server)
  }
}

function numbers(record: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, value] of Object.entries(record)) {
    try {
      out[key] = parseQuantity(value)
    } catch {
      // Extended resources with odd values are not ours to check.
    }
  }
  return out
}
