/**
 * The Kubernetes objects a rollout touches, read and written over one keep-alive connection
 * pool (KubeHttp): the stable and canary Deployments, their ReplicaSets and pods, the
 * stable/canary/preview Services, the HTTPRoute or Ingress, and the state ConfigMap.
 */
import {kubeClients, kubeError, type KubeTarget} from '../kubernetes/client.js'
import {applyKeepingOwned} from '../kubernetes/apply.js'
import {KubeHttp, KubeHttpError} from '../kubernetes/http.js'
import {collectionPath} from '../kubernetes/resources.js'

export type Obj = {
  apiVersion?: string
  kind?: string
  metadata: {name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; uid?: string; generation?: number; ownerReferences?: {uid: string; kind: string; name: string}[]; creationTimestamp?: string; deletionTimestamp?: string}
  spec?: any
  status?: any
  data?: Record<string, string>
}

export {FIELD_MANAGER_ROLLOUT} from '../kubernetes/labels.js'
import {FIELD_MANAGER_ROLLOUT} from '../kubernetes/labels.js'

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
}

export class RolloutKube {
  readonly http: KubeHttp
  readonly server: string

  constructor(readonly target: KubeTarget = {}) {
    const clients = kubeClients(target)
    this.http = new KubeHttp(clients.kc)
    this.server = clients.server
  }

  private async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw kubeError(error, doing, this.server)
    }
  }

  async get(collection: string, name: string): Promise<Obj | undefined> {
    try {
      return await this.http.request<Obj>('GET', `${collection}/${name}`)
    } catch (error) {
      if (error instanceof KubeHttpError && error.statusCode === 404) return undefined
      throw kubeError(error, `reading ${collection}/${name}`, this.server)
    }
  }

  async list(collection: string, labelSelector?: string): Promise<Obj[]> {
    const body = await this.call(`listing ${collection}`, () => this.http.request<{items: Obj[]}>('GET', collection, {query: {labelSelector}}))
    return body.items ?? []
  }

  /**
   * Server-side apply of what `obj` sets, keeping every other field the manager owns (labels,
   * strategy, replicas...): see applyKeepingOwned. Idempotent, so running a step again after a
   * crash is harmless.
   */
  async apply(collection: string, obj: Obj, fieldManager = FIELD_MANAGER_ROLLOUT): Promise<Obj> {
    return this.call(`applying ${collection}/${obj.metadata.name}`, () => applyKeepingOwned<Obj>(this.http, `${collection}/${obj.metadata.name}`, obj, {fieldManager, force: true}))
  }

  async mergePatch(collection: string, name: string, patch: unknown): Promise<Obj> {
    return this.call(`patching ${collection}/${name}`, () =>
      this.http.request<Obj>('PATCH', `${collection}/${name}`, {query: {fieldManager: FIELD_MANAGER_ROLLOUT}, body: patch, contentType: 'application/merge-patch+json'}),
    )
  }

  async create(collection: string, obj: Obj): Promise<Obj> {
    return this.http.request<Obj>('POST', collection, {body: obj, query: {fieldManager: FIELD_MANAGER_ROLLOUT}})
  }

  /** PUT with the object's resourceVersion: throws KubeHttpError 409 when someone wrote in between. */
  async replace(collection: string, obj: Obj): Promise<Obj> {
    return this.http.request<Obj>('PUT', `${collection}/${obj.metadata.name}`, {body: obj, query: {fieldManager: FIELD_MANAGER_ROLLOUT}})
  }

  async delete(collection: string, name: string): Promise<void> {
    try {
      await this.http.request('DELETE', `${collection}/${name}`, {body: {propagationPolicy: 'Background'}})
    } catch (error) {
      if (error instanceof KubeHttpError && error.statusCode === 404) return
      throw kubeError(error, `deleting ${collection}/${name}`, this.server)
    }
  }

  close(): void {
    this.http.close()
  }
}

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')
}

/** The ReplicaSet a Deployment currently rolls to (its revision annotation matches). */
export async function currentReplicaSet(kube: RolloutKube, deployment: Obj): Promise<Obj | undefined> {
  const ns = deployment.metadata.namespace!
  const rev = deployment.metadata.annotations?.['deployment.kubernetes.io/revision']
  const sets = await ownedReplicaSets(kube, deployment)
  return sets.find((rs) => rs.metadata.annotations?.['deployment.kubernetes.io/revision'] === rev) ?? (ns ? sets.sort(byRevision).at(-1) : undefined)
}

export async function ownedReplicaSets(kube: RolloutKube, deployment: Obj): Promise<Obj[]> {
  const labels = deployment.spec?.selector?.matchLabels ?? {}
  const sets = await kube.list(PATHS.replicasets(deployment.metadata.namespace!), selectorString(labels))
  return sets.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.uid === deployment.metadata.uid))
}

function byRevision(a: Obj, b: Obj): number {
  return Number(a.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0) - Number(b.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0)
}

export interface DeploymentProgress {
  desired: number
  updated: number
  ready: number
  available: number
  /** The controller has seen the latest spec and every replica runs it and is available. */
  complete: boolean
}

export function deploymentProgress(d: Obj | undefined): DeploymentProgress {
  if (!d) return {desired: 0, updated: 0, ready: 0, available: 0, complete: false}
  const desired = d.spec?.replicas ?? 1
  const s = d.status ?? {}
  const updated = s.updatedReplicas ?? 0
  const ready = s.readyReplicas ?? 0
  const available = s.availableReplicas ?? 0
  const complete = (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) && updated >= desired && (s.replicas ?? 0) === desired && available >= desired
  return {desired, updated, ready, available, complete}
}

export {KubeHttpError}
