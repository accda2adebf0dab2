/**
 * The Kubernetes objects a rollout touches (read and written through src/kubernetes/objects.ts):
 * the stable and canary Deployments, their ReplicaSets and pods, the stable/canary/preview
 * Services, the HTTPRoute or Ingress, and the state ConfigMap.
 */
import type {Deployment, ReplicaSet} from '../kubernetes/kinds.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {collectionPath} from '../kubernetes/resources.js'

export const PATHS = {
  deployments: (ns: string) => collectionPath('Deployment', ns),
  replicasets: (ns: string) => collectionPath('ReplicaSet', ns),
  pods: (ns: string) => collectionPath('Pod', ns),
  events: (ns: string) => collectionPath('Event', ns),
  services: (ns: string) => collectionPath('Service', ns),
  configmaps: (ns: string) => collectionPath('ConfigMap', ns),
  httproutes: (ns: string) => collectionPath('HTTPRoute', ns),
  ingresses: (ns: string) => collectionPath('Ingress', ns),
  hpas: (ns: string) => collectionPath('HorizontalPodAutoscaler', ns),
  scaledobjects: (ns: string) => collectionPath('ScaledObject', ns),
}

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
}

/** The ReplicaSet a Deployment currently rolls to (its revision annotation matches). */
export async function currentReplicaSet(kube: KubeObjects, deployment: Deployment): Promise<ReplicaSet | undefined> {
  const ns = deployment.metadata.namespace!
  const rev = deployment.metadata.annotations?.['deployment.kubernetes.io/revision']
  const sets = await ownedReplicaSets(kube, deployment)
  return (
    sets.find((rs) => rs.metadata.annotations?.['deployment.kubernetes.io/revision'] === rev) ??
    (ns ? sets.sort(byRevision).at(-1) : undefined)
  )
}

export async function ownedReplicaSets(kube: KubeObjects, deployment: Deployment): Promise<ReplicaSet[]> {
  const labels = deployment.spec?.selector?.matchLabels ?? {}
  const sets = await kube.list<ReplicaSet>(PATHS.replicasets(deployment.metadata.namespace!), selectorString(labels))
  return sets.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.uid === deployment.metadata.uid))
}

function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  return (
    Number(a.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0) -
    Number(b.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0)
  )
}

export interface DeploymentProgress {
  desired: number
  updated: number
  ready: number
  available: number
  /** The controller has seen the latest spec and every replica runs it and is available. */
  complete: boolean
}

export function deploymentProgress(d: Deployment | undefined): DeploymentProgress {
  if (!d) return {desired: 0, updated: 0, ready: 0, available: 0, complete: false}
  const desired = d.spec?.replicas ?? 1
  const s = d.status ?? {}
  const updated = s.updatedReplicas ?? 0
  const ready = s.readyReplicas ?? 0
  const available = s.availableReplicas ?? 0
  const complete =
    (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
    updated >= desired &&
    (s.replicas ?? 0) === desired &&
    available >= desired
  return {desired, updated, ready, available, complete}
}
