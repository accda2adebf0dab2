import {createHash} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {KubeConfig} from '@kubernetes/client-node'
import {stringify} from 'yaml'

import {RetailOpsError} from '../../errors/index.js'
import {isNotFound, kubeClients, kubeError} from '../../kubernetes/client.js'
import {KubeHttp} from '../../kubernetes/http.js'
import {applyObjects} from '../../kubernetes/apply.js'
import {collectionPath, type KubeObject} from '../../kubernetes/resources.js'
import {throwIfAborted} from '../../ui/context.js'
import {parseDuration} from '../../config/duration.js'
import {DRILL_DATASTORE_LABEL, DRILL_LABEL, drillNamespaceName, isDrillNamespace, MANAGED_BY_SELECTOR} from '../naming.js'
import {sleep} from '../sleep.js'
import type {ValidationResult} from '../types.js'
import {type DrillContext, type DrillProvider, type ProviderResult, RESTORE_FAILED} from './types.js'

const FIELD_MANAGER = 'retailops-dr'

/** The retailops-managed kinds a namespace snapshot holds, in restore order. */
export const SNAPSHOT_KINDS: {kind: string; apiVersion: string; plural: string}[] = [
  {kind: 'ServiceAccount', apiVersion: 'v1', plural: 'serviceaccounts'},
  {kind: 'ConfigMap', apiVersion: 'v1', plural: 'configmaps'},
  {kind: 'Secret', apiVersion: 'v1', plural: 'secrets'},
  {kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', plural: 'networkpolicies'},
  {kind: 'Service', apiVersion: 'v1', plural: 'services'},
  {kind: 'PodDisruptionBudget', apiVersion: 'policy/v1', plural: 'poddisruptionbudgets'},
  {kind: 'Deployment', apiVersion: 'apps/v1', plural: 'deployments'},
  {kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2', plural: 'horizontalpodautoscalers'},
]

function listPath(kind: string, namespace: string): string {
  // Secrets are not among the kinds deploys manage; address them directly.
  if (kind === 'Secret') return `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`
  return collectionPath(kind, namespace)
}

function secretPath(obj: KubeObject): string {
  return `${listPath('Secret', obj.metadata.namespace!)}/${encodeURIComponent(obj.metadata.name)}`
}

const SERVER_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'ownerReferences', 'selfLink', 'finalizers']
const SERVER_ANNOTATIONS = ['kubectl.kubernetes.io/last-applied-configuration', 'deployment.kubernetes.io/revision']

/**
 * A snapshot object made fit to create elsewhere: server-set fields and status removed, moved to
 * the drill namespace and labelled with the drill. Services lose their cluster IPs and node ports
 * and never become LoadBalancers (a drill must not expose anything or allocate cloud resources).
 */
export function prepareForRestore(obj: KubeObject, namespace: string, drillId: string, datastore: string): {object: KubeObject; notes: string[]} {
  const copy = structuredClone(obj) as KubeObject & {spec?: Record<string, unknown>; status?: unknown; secrets?: unknown}
  const notes: string[] = []
  for (const key of SERVER_METADATA) delete copy.metadata[key]
  delete copy.status
  const annotations = {...copy.metadata.annotations}
  for (const key of SERVER_ANNOTATIONS) delete annotations[key]
  copy.metadata = {
    ...copy.metadata,
    namespace,
    labels: {...copy.metadata.labels, [DRILL_LABEL]: drillId, [DRILL_DATASTORE_LABEL]: datastore},
    annotations,
  }
  if (Object.keys(annotations).length === 0) delete copy.metadata.annotations
  if (copy.kind === 'Service' && copy.spec) {
    const spec = copy.spec as {clusterIP?: string; clusterIPs?: string[]; type?: string; healthCheckNodePort?: number; ports?: {nodePort?: number}[]; loadBalancerIP?: string; externalIPs?: string[]; externalTrafficPolicy?: string; allocateLoadBalancerNodePorts?: boolean}
    const headless = spec.clusterIP === 'None'
    delete spec.clusterIP
    delete spec.clusterIPs
    delete spec.healthCheckNodePort
    if (headless) spec.clusterIP = 'None'
    for (const port of spec.ports ?? []) delete port.nodePort
    if (spec.type === 'LoadBalancer' || spec.type === 'NodePort') {
      notes.push(`Service ${obj.metadata.name}: ${spec.type} restored as ClusterIP`)
      spec.type = 'ClusterIP'
      delete spec.loadBalancerIP
      delete spec.externalTrafficPolicy
      delete spec.allocateLoadBalancerNodePorts
    }
    delete spec.externalIPs
  }
  if (copy.kind === 'ServiceAccount') delete copy.secrets
  return {object: copy, notes}
}

/** What the snapshot file keeps of a Secret: a reference (name, type, keys, a hash of the data), never a value. */
export function secretReference(secret: KubeObject & {type?: string; data?: Record<string, string>}): Record<string, unknown> {
  const keys = Object.keys(secret.data ?? {}).sort()
  const hash = createHash('sha256')
  for (const k of keys) hash.update(`${k}\0${secret.data![k]}\0`)
  return {kind: 'Secret', name: secret.metadata.name, type: secret.type ?? 'Opaque', keys, dataSha256: hash.digest('hex')}
}

interface DeploymentLike extends KubeObject {
  spec?: {replicas?: number}
  status?: {replicas?: number; availableReplicas?: number; updatedReplicas?: number; observedGeneration?: number; conditions?: {type: string; status: string; reason?: string; message?: string}[]}
}

/** Available = every desired replica updated and available, for the current generation. */
export function deploymentAvailable(d: DeploymentLike): {available: boolean; detail: string} {
  const want = d.spec?.replicas ?? 1
  const s = d.status ?? {}
  const current = (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  const available = current && (s.availableReplicas ?? 0) >= want && (s.updatedReplicas ?? 0) >= want
  const failing = s.conditions?.find((c) => c.status === 'False' && c.type !== 'Available')
  return {available, detail: `${s.availableReplicas ?? 0}/${want} available${failing?.message ? ` (${failing.reason}: ${failing.message})` : ''}`}
}

function sourceNamespace(ds: {kubernetes?: {namespace?: string}}, envNamespace: string): string {
  return ds.kubernetes?.namespace ?? envNamespace
}

export const kubernetesProvider: DrillProvider = {
  name: 'kubernetes',

  plan(ds, ctx) {
    const ns = sourceNamespace(ds, ctx.environment.namespace)
    const target = drillNamespaceName(ctx.drillId, ds.name)
    const problems: string[] = []
    if (ds.validation.length > 0) problems.push(`${ds.name}: kubernetes datastores take no validation queries (the built-in checks are: every object restored, every Deployment available)`)
    if (isDrillNamespace(ns)) problems.push(`${ds.name}: the source namespace ${ns} is itself a drill namespace`)
    return {
      source: `namespace ${ns} (context ${ctx.environment.context ?? 'current'})`,
      target: `namespace ${target}`,
      steps: [
        `snapshot the ${MANAGED_BY_SELECTOR} objects of ${ns} (${SNAPSHOT_KINDS.map((k) => k.kind).join(', ')}; Secrets as references) (read-only)`,
        `create namespace ${target} labelled ${DRILL_LABEL}=${ctx.drillId}`,
        'server-side apply the snapshot there (server fields stripped, Services as ClusterIP)',
        `wait until every Deployment is available (at most ${ds.kubernetes?.waitTimeout ?? '5m'})`,
        `delete namespace ${target}`,
      ],
      problems,
      warnings: [],
    }
  },

  async run(ds, _plan, ctx): Promise<ProviderResult> {
    const sourceNs = sourceNamespace(ds, ctx.environment.namespace)
    const targetNs = drillNamespaceName(ctx.drillId, ds.name)
    if (!isDrillNamespace(targetNs) || targetNs === sourceNs) throw new RetailOpsError('INTERNAL', `Refusing to restore into ${targetNs}.`)
    const k = kubeClients({context: ctx.environment.context, kubeconfig: ctx.environment.kubeconfig})
    const api = new KubeHttp(k.kc)
    const scope = ds.name
    const evidence: Record<string, unknown> = {sourceNamespace: sourceNs, drillNamespace: targetNs, context: k.context}
    const timeoutMs = parseDuration(ds.kubernetes?.waitTimeout ?? '5m')!
    try {
      // 1. Snapshot (reads only).
      const snapshot = await ctx.steps.run(scope, 'backup', `snapshot ${sourceNs}`, async () => {
        const objects: KubeObject[] = []
        for (const kind of SNAPSHOT_KINDS) {
          const list = await api
            .request<{items: KubeObject[]}>('GET', listPath(kind.kind, sourceNs), {query: {labelSelector: MANAGED_BY_SELECTOR}, signal: ctx.signal})
            .catch((error) => {
              throw kubeError(error, `listing ${kind.plural} in ${sourceNs}`, k.server)
            })
          for (const item of list.items) objects.push({...item, apiVersion: kind.apiVersion, kind: kind.kind})
        }
        return objects
      }, (objects) => `${objects.length} objects`)
      const counts: Record<string, number> = {}
      for (const o of snapshot) counts[o.kind] = (counts[o.kind] ?? 0) + 1
      evidence.snapshotCounts = counts
      const snapshotFile = path.join(ctx.recordDir, `${ds.name}-snapshot.yaml`)
      await writeFile(snapshotFile, snapshot.map((o) => stringify(o.kind === 'Secret' ? secretReference(o) : prepareForRestore(o, sourceNs, ctx.drillId, ds.name).object)).join('---\n'))
      evidence.snapshotFile = path.basename(snapshotFile)
      if (snapshot.length === 0) {
        throw new RetailOpsError(RESTORE_FAILED, `Namespace ${sourceNs} has no objects labelled ${MANAGED_BY_SELECTOR}: nothing to restore.`, {
          nextSteps: ['Check datastores[].kubernetes.namespace, or deploy the services there first.'],
        })
      }
      throwIfAborted(ctx.signal)

      // 2. The drill namespace, registered for cleanup before it exists.
      ctx.cleanup.push({kind: 'namespace', resource: targetNs, action: 'delete', run: () => deleteNamespace(k.kc, targetNs)})
      await ctx.steps.run(scope, 'create-target', `create namespace ${targetNs}`, async () => {
        await api
          .request('POST', '/api/v1/namespaces', {body: {apiVersion: 'v1', kind: 'Namespace', metadata: {name: targetNs, labels: {[DRILL_LABEL]: ctx.drillId, [DRILL_DATASTORE_LABEL]: ds.name}}}})
          .catch((error) => {
            if ((error as {statusCode?: number}).statusCode === 409) throw new RetailOpsError('REFUSED', `Namespace ${targetNs} already exists; a drill never restores into an existing namespace.`)
            throw kubeError(error, `creating namespace ${targetNs}`, k.server)
          })
      })

      // 3. Restore by server-side apply.
      const notes: string[] = []
      await ctx.steps.run(scope, 'restore', `apply ${snapshot.length} objects to ${targetNs}`, async () => {
        const prepared = snapshot.map((obj) => prepareForRestore(obj, targetNs, ctx.drillId, ds.name))
        for (const p of prepared) notes.push(...p.notes)
        // Secrets first (deploys do not manage them, so the shared apply does not address them),
        // then everything else through the deploy engine's server-side apply, in its waves.
        for (const {object} of prepared.filter((p) => p.object.kind === 'Secret')) {
          throwIfAborted(ctx.signal)
          await api
            .request('PATCH', secretPath(object), {query: {fieldManager: FIELD_MANAGER, force: true}, body: object, contentType: 'application/apply-patch+yaml', signal: ctx.signal})
            .catch((error) => {
              throw new RetailOpsError(RESTORE_FAILED, `Restoring Secret ${object.metadata.name} failed: ${kubeError(error, 'applying').message}`)
            })
        }
        const report = await applyObjects(api, prepared.filter((p) => p.object.kind !== 'Secret').map((p) => p.object), {fieldManager: FIELD_MANAGER, force: true, signal: ctx.signal})
        if (report.failed.length > 0) {
          throw new RetailOpsError(RESTORE_FAILED, `Restoring ${report.failed.length} object(s) failed: ${report.failed.map((f) => `${f.ref}: ${f.message}`).join('; ')}`, {details: {failed: report.failed, skipped: report.skipped}})
        }
      })
      if (notes.length > 0) evidence.restoreNotes = notes

      // 4. Wait for the workloads.
      const validations: ValidationResult[] = []
      const started = ctx.clock()
      const restored = await Promise.all(
        SNAPSHOT_KINDS.map(async (kind) => (await api.request<{items: KubeObject[]}>('GET', listPath(kind.kind, targetNs), {query: {labelSelector: `${DRILL_LABEL}=${ctx.drillId}`}})).items.length),
      )
      const restoredCount = restored.reduce((a, b) => a + b, 0)
      validations.push({
        name: 'objects-restored',
        query: `every ${MANAGED_BY_SELECTOR} object of ${sourceNs} exists in ${targetNs}`,
        value: String(restoredCount),
        expect: {equals: snapshot.length},
        passed: restoredCount === snapshot.length,
        message: `${restoredCount} of ${snapshot.length} objects restored`,
        durationMs: ctx.clock() - started,
      })
      await ctx.steps.run(scope, 'validate', 'wait for the Deployments to become available', async (step) => {
        const deadline = ctx.clock() + timeoutMs
        let last: {name: string; available: boolean; detail: string}[] = []
        for (;;) {
          throwIfAborted(ctx.signal)
          const list = await api.request<{items: DeploymentLike[]}>('GET', collectionPath('Deployment', targetNs), {signal: ctx.signal})
          last = list.items.map((d) => ({name: d.metadata.name, ...deploymentAvailable(d)}))
          if (last.every((d) => d.available) || ctx.clock() >= deadline) break
          await sleep(1000, ctx.signal)
        }
        for (const d of last) {
          validations.push({name: `available-${d.name}`, query: `Deployment ${targetNs}/${d.name} available`, value: d.detail, passed: d.available, message: d.available ? d.detail : `${d.detail} after ${Math.round(timeoutMs / 1000)}s`, durationMs: ctx.clock() - started})
        }
        if (last.some((d) => !d.available)) {
          const reasons = await podProblems(api, targetNs)
          if (reasons.length > 0) evidence.podProblems = reasons
          step.fail(`${last.filter((d) => !d.available).map((d) => `${d.name} ${d.detail}`).join('; ')} after ${Math.round(timeoutMs / 1000)}s${reasons.length ? ` (${reasons.slice(0, 3).join('; ')})` : ''}`)
        }
        return last
      }, (last) => `${last.filter((d) => d.available).length}/${last.length} Deployments available`)
      return {
        target: `namespace ${targetNs}`,
        rpoNotApplicable: 'a configuration snapshot taken at drill time: there is no older recovery point',
        validations,
        evidence,
      }
    } finally {
      // Cleanup deletes through its own connection; this one only served the drill.
      api.close()
    }
  },
}

async function podProblems(api: KubeHttp, namespace: string): Promise<string[]> {
  const pods = await api.request<{items: {metadata: {name: string}; status?: {phase?: string; conditions?: {type: string; status: string; reason?: string; message?: string}[]}}[]}>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`).catch(() => ({items: []}))
  return pods.items
    .filter((p) => p.status?.phase !== 'Running' || p.status.conditions?.some((c) => c.type === 'Ready' && c.status !== 'True'))
    .map((p) => {
      const c = p.status?.conditions?.find((x) => x.status !== 'True' && x.message)
      return `${p.metadata.name}: ${p.status?.phase ?? 'Unknown'}${c ? ` (${c.reason}: ${c.message})` : ''}`
    })
    .slice(0, 10)
}

async function deleteNamespace(kc: KubeConfig, name: string): Promise<{status: 'removed' | 'absent'; detail?: string}> {
  if (!isDrillNamespace(name)) throw new Error(`refusing to delete ${name}: not a drill namespace`)
  const api = new KubeHttp(kc)
  try {
    try {
      await api.request('DELETE', `/api/v1/namespaces/${encodeURIComponent(name)}`, {body: {propagationPolicy: 'Background'}})
    } catch (error) {
      if (isNotFound(error)) return {status: 'absent'}
      throw error
    }
    const deadline = Date.now() + 120_000
    while (Date.now() < deadline) {
      try {
        await api.request('GET', `/api/v1/namespaces/${encodeURIComponent(name)}`)
      } catch (error) {
        if (isNotFound(error)) return {status: 'removed'}
        throw error
      }
      await sleep(1000)
    }
    return {status: 'removed', detail: 'deletion accepted; still terminating after 120s'}
  } finally {
    api.close()
  }
}
