import {loadYaml} from '../../assets/yaml.js'
import {createHash} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {KubeConfig} from '@kubernetes/client-node'

import {RetailOpsError} from '../../errors/index.js'
import {isNotFound, kubeClients, kubeError} from '../../kubernetes/client.js'
import {KubeHttp} from '../../kubernetes/http.js'
import {FIELD_MANAGER_DR} from '../../kubernetes/labels.js'
import {collectionPath, type KubeObject, MANAGED_KINDS, namedPath, objectPath} from '../../kubernetes/resources.js'
import {servesResource} from '../../kubernetes/discovery.js'
import {explainDeployments} from '../../kubernetes/rollout-status.js'
import {throwIfAborted} from '../../ui/context.js'
import {parseDuration} from '../../config/duration.js'
import {
  DRILL_DATASTORE_LABEL,
  DRILL_LABEL,
  drillNamespaceName,
  isDrillNamespace,
  MANAGED_BY_SELECTOR,
} from '../naming.js'
import {sleep} from '../../kubernetes/wait.js'
import {checkRestricted, type PodSpec} from '../pod-security.js'
import type {RestoredObject, ValidationResult} from '../types.js'
import {planFromBackup, runFromBackup} from './kubernetes-backup.js'
import {type DrillContext, type DrillProvider, type ProviderResult, RBAC_NOT_RESTORED, RESTORE_FAILED} from './types.js'

export {RBAC_NOT_RESTORED}

/** A kind a namespace snapshot holds. */
export interface SnapshotKind {
  kind: string
  apiVersion: string
  plural: string
  /** Served by a CRD a cluster may not have (KEDA, Gateway API): snapshotted only where the API is served. */
  optional?: boolean
  /** Recorded in the snapshot and the inventory, never restored (planRestore says why). */
  neverRestored?: boolean
}

/**
 * The retailops-managed kinds a namespace snapshot holds, in restore order: every kind `render`
 * produces in a namespace (its quota and limits, accounts, configuration, Services, budgets,
 * workloads and their CronJobs, autoscalers of either kind, routes), the KEDA
 * TriggerAuthentications a ScaledObject's triggers may name, and the Roles and RoleBindings
 * retailops' own jobs keep there (recorded, never restored: see planRestore).
 */
export const SNAPSHOT_KINDS: SnapshotKind[] = [
  {kind: 'ResourceQuota', apiVersion: 'v1', plural: 'resourcequotas'},
  {kind: 'LimitRange', apiVersion: 'v1', plural: 'limitranges'},
  {kind: 'ServiceAccount', apiVersion: 'v1', plural: 'serviceaccounts'},
  {kind: 'ConfigMap', apiVersion: 'v1', plural: 'configmaps'},
  {kind: 'Secret', apiVersion: 'v1', plural: 'secrets'},
  {kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', plural: 'networkpolicies'},
  {kind: 'Role', apiVersion: 'rbac.authorization.k8s.io/v1', plural: 'roles', neverRestored: true},
  {kind: 'RoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', plural: 'rolebindings', neverRestored: true},
  {kind: 'Service', apiVersion: 'v1', plural: 'services'},
  {kind: 'PodDisruptionBudget', apiVersion: 'policy/v1', plural: 'poddisruptionbudgets'},
  {kind: 'TriggerAuthentication', apiVersion: 'keda.sh/v1alpha1', plural: 'triggerauthentications', optional: true},
  {kind: 'Deployment', apiVersion: 'apps/v1', plural: 'deployments'},
  {kind: 'CronJob', apiVersion: 'batch/v1', plural: 'cronjobs'},
  {kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2', plural: 'horizontalpodautoscalers'},
  {kind: 'ScaledObject', apiVersion: 'keda.sh/v1alpha1', plural: 'scaledobjects', optional: true},
  {kind: 'HTTPRoute', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'httproutes', optional: true},
]

/**
 * The snapshot kinds this cluster serves: every built-in one, and each optional one (KEDA's,
 * Gateway API's) only where its API is served, so a cluster without KEDA snapshots the rest.
 */
export async function servedSnapshotKinds(
  api: KubeHttp,
  signal?: AbortSignal,
): Promise<{served: SnapshotKind[]; notServed: string[]}> {
  const optional = SNAPSHOT_KINDS.filter((k) => k.optional)
  const answers = await Promise.all(optional.map((k) => servesResource(api, k.apiVersion, k.plural, signal)))
  const missing = new Set(optional.filter((_, i) => !answers[i]).map((k) => k.kind))
  return {
    served: SNAPSHOT_KINDS.filter((k) => !missing.has(k.kind)),
    notServed: SNAPSHOT_KINDS.filter((k) => missing.has(k.kind)).map((k) => `${k.kind} (${k.apiVersion})`),
  }
}

/** KEDA's annotations that stop it scaling a ScaledObject's target (paused-replicas also sets the count). */
export const KEDA_PAUSED = 'autoscaling.keda.sh/paused'
export const KEDA_PAUSED_REPLICAS = 'autoscaling.keda.sh/paused-replicas'

const SERVER_METADATA = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'ownerReferences',
  'selfLink',
  'finalizers',
]
const POD_SECURITY_REASON = 'violates Pod Security restricted, which the drill namespace enforces'

const SERVER_ANNOTATIONS = ['kubectl.kubernetes.io/last-applied-configuration', 'deployment.kubernetes.io/revision']

/**
 * A snapshot object made fit to create elsewhere: server-set fields and status removed, moved to
 * the drill namespace and labelled with the drill. Services lose their cluster IPs and node ports
 * and never become LoadBalancers (a drill must not expose anything or allocate cloud resources);
 * CronJobs are restored suspended, ScaledObjects paused, HPAs on External metrics without scale-up and
 * HTTPRoutes detached from their Gateways.
 */
export function prepareForRestore(
  obj: KubeObject,
  namespace: string,
  drillId: string,
  datastore: string,
  options: {
    /** A ScaledObject's: the replicas its target Deployment is restored with, where the snapshot holds it. */
    targetReplicas?: number
  } = {},
): {object: KubeObject; notes: string[]} {
  const copy = structuredClone(obj) as KubeObject & {
    spec?: Record<string, unknown>
    status?: unknown
    secrets?: unknown
  }
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
    const spec = copy.spec as {
      clusterIP?: string
      clusterIPs?: string[]
      type?: string
      healthCheckNodePort?: number
      ports?: {nodePort?: number}[]
      loadBalancerIP?: string
      externalIPs?: string[]
      externalTrafficPolicy?: string
      allocateLoadBalancerNodePorts?: boolean
    }
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
  // A drill proves the objects restore; it must not run the restored schedules (a reconciliation
  // or sync job would act, from the drill namespace, on whatever it can reach).
  if (copy.kind === 'CronJob' && copy.spec && copy.spec.suspend !== true) {
    copy.spec.suspend = true
    notes.push(`CronJob ${obj.metadata.name}: restored suspended`)
  }
  // A ScaledObject's triggers read the source's signals (production's Prometheus, queues): live, KEDA
  // would scale the drill's copies to production's load. Paused, it holds them at the restored count.
  if (copy.kind === 'ScaledObject' && annotations[KEDA_PAUSED] !== 'true' && !(KEDA_PAUSED_REPLICAS in annotations)) {
    annotations[KEDA_PAUSED] = 'true'
    const replicas = options.targetReplicas
    if (replicas !== undefined) annotations[KEDA_PAUSED_REPLICAS] = String(replicas)
    copy.metadata.annotations = annotations
    notes.push(
      `ScaledObject ${obj.metadata.name}: restored paused (${KEDA_PAUSED}${replicas === undefined ? '' : `, ${KEDA_PAUSED_REPLICAS}: ${replicas}, its Deployment's restored count`})`,
    )
  }
  // An HPA's External metrics are the source's signals too (prometheus-adapter serves them cluster-wide): it may
  // scale the copies down on the drill's idle pods, never up on production's load.
  const hpaSpec = copy.spec as {metrics?: {type?: string}[]; behavior?: {scaleUp?: Record<string, unknown>}} | undefined
  if (copy.kind === 'HorizontalPodAutoscaler' && hpaSpec?.metrics?.some((m) => m.type === 'External')) {
    hpaSpec.behavior = {...hpaSpec.behavior, scaleUp: {...hpaSpec.behavior?.scaleUp, selectPolicy: 'Disabled'}}
    notes.push(
      `HorizontalPodAutoscaler ${obj.metadata.name}: restored with scale-up disabled (its External metrics read the source's signals)`,
    )
  }
  // A route restored with its parents would attach to the source's Gateway and take its traffic.
  if (copy.kind === 'HTTPRoute' && copy.spec && 'parentRefs' in copy.spec) {
    delete copy.spec.parentRefs
    notes.push(`HTTPRoute ${obj.metadata.name}: restored detached (no parentRefs: no Gateway sends it traffic)`)
  }
  return {object: copy, notes}
}

/** The Secret types whose validation accepts empty values; any other becomes an Opaque placeholder. */
const EMPTY_VALUE_TYPES = new Set(['Opaque', 'kubernetes.io/tls', 'kubernetes.io/basic-auth', 'kubernetes.io/ssh-auth'])
export const PLACEHOLDER_ANNOTATION = 'retailops.dev/drill-placeholder'
export const DEFAULT_DENY_POLICY = 'retailops-drill-default-deny'
export const SAME_NAMESPACE_POLICY = 'retailops-drill-allow-same-namespace'
export const POD_SECURITY_LABELS = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
  'pod-security.kubernetes.io/warn': 'restricted',
  'pod-security.kubernetes.io/warn-version': 'latest',
  'pod-security.kubernetes.io/audit': 'restricted',
  'pod-security.kubernetes.io/audit-version': 'latest',
}

/**
 * The drill namespace's network isolation, created before anything is restored: nothing may
 * enter or leave it (no DNS either: a name that resolves is a path out), and pods in it may only
 * talk to each other.
 */
export function isolationPolicies(namespace: string, drillId: string, datastore: string): KubeObject[] {
  const metadata = (name: string) => ({
    name,
    namespace,
    labels: {[DRILL_LABEL]: drillId, [DRILL_DATASTORE_LABEL]: datastore},
  })
  return [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: metadata(DEFAULT_DENY_POLICY),
      spec: {podSelector: {}, policyTypes: ['Ingress', 'Egress']},
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: metadata(SAME_NAMESPACE_POLICY),
      spec: {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{from: [{podSelector: {}}]}],
        egress: [{to: [{podSelector: {}}]}],
      },
    },
  ]
}

/**
 * A Secret's stand-in: same name and keys, every value empty, so pods that reference it start
 * without a single production credential. Types that cannot be empty (docker config, service
 * account tokens) become Opaque.
 */
export function placeholderSecret(
  secret: KubeObject & {type?: string; data?: Record<string, string>; stringData?: Record<string, string>},
  namespace: string,
  drillId: string,
  datastore: string,
): {object: KubeObject; reason: string} {
  const keys = [...new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})])].sort()
  const type = secret.type ?? 'Opaque'
  const keepType = EMPTY_VALUE_TYPES.has(type)
  const object = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secret.metadata.name,
      namespace,
      labels: {...secret.metadata.labels, [DRILL_LABEL]: drillId, [DRILL_DATASTORE_LABEL]: datastore},
      annotations: {
        [PLACEHOLDER_ANNOTATION]: `same keys as the source, empty values${keepType ? '' : `; the source's type is ${type}`}`,
      },
    },
    type: keepType ? type : 'Opaque',
    data: Object.fromEntries(keys.map((k) => [k, ''])),
  } as KubeObject
  return {
    object,
    reason: `placeholder: ${keys.length} key(s) (${keys.join(', ') || 'none'}) with empty values; the value was not copied${keepType ? '' : ` (type ${type} cannot be empty: Opaque instead)`}`,
  }
}

/**
 * What a drill restores of a snapshot, and how, object by object: Secrets as empty placeholders
 * (service account tokens not at all), the source's NetworkPolicies not at all (their allow rules
 * would open paths out of the drill namespace), Roles and RoleBindings not at all (the drill's pods
 * have no API tokens to use them), ServiceAccounts and pods without API tokens,
 * pod templates filled in to pass Pod Security restricted, and workloads that explicitly break it
 * left out with the reasons.
 */
export function planRestore(
  snapshot: KubeObject[],
  namespace: string,
  drillId: string,
  datastore: string,
  /** Everything restored alongside (a backup plans item by item): where a ScaledObject's Deployment is found. */
  context: KubeObject[] = snapshot,
): {objects: KubeObject[]; inventory: RestoredObject[]; notes: string[]} {
  const objects: KubeObject[] = []
  const inventory: RestoredObject[] = []
  const notes: string[] = []
  for (const source of snapshot) {
    const entry = {kind: source.kind, name: source.metadata.name}
    if (source.kind === 'Secret') {
      const type = (source as {type?: string}).type
      if (type === 'kubernetes.io/service-account-token') {
        inventory.push({
          ...entry,
          outcome: 'not-restored',
          reason:
            "a service account token the cluster minted for the source: never copied, and the drill's ServiceAccounts get none",
        })
        continue
      }
      const {object, reason} = placeholderSecret(source, namespace, drillId, datastore)
      objects.push(object)
      inventory.push({...entry, outcome: 'placeholder', reason})
      continue
    }
    if (source.kind === 'Role' || source.kind === 'RoleBinding') {
      inventory.push({...entry, outcome: 'not-restored', reason: RBAC_NOT_RESTORED})
      continue
    }
    if (source.kind === 'NetworkPolicy') {
      inventory.push({
        ...entry,
        outcome: 'not-restored',
        reason: `its allow rules could open paths out of the drill namespace, which has only ${DEFAULT_DENY_POLICY} and ${SAME_NAMESPACE_POLICY}`,
      })
      continue
    }
    const prepared = prepareForRestore(source, namespace, drillId, datastore, {
      targetReplicas: source.kind === 'ScaledObject' ? targetReplicas(source, context) : undefined,
    })
    notes.push(...prepared.notes)
    const object = prepared.object as KubeObject & {automountServiceAccountToken?: boolean}
    const changes = [...prepared.notes.map((n) => n.replace(/^[A-Za-z]+ [^:]+: /, ''))]
    if (object.kind === 'ServiceAccount' && object.automountServiceAccountToken !== false) {
      object.automountServiceAccountToken = false
      changes.push('automountServiceAccountToken: false')
    }
    const template = podTemplateOf(object)
    if (template) {
      const check = checkRestricted(template)
      if (check.violations.length > 0) {
        inventory.push({
          ...entry,
          outcome: 'not-restored',
          reason: `${POD_SECURITY_REASON}: ${check.violations.join('; ')}`,
        })
        continue
      }
      if (check.spec.automountServiceAccountToken !== false) {
        check.spec.automountServiceAccountToken = false
        check.fixes.push('automountServiceAccountToken: false')
      }
      template.spec = check.spec
      changes.push(...check.fixes.map((f) => `set ${f}`))
    }
    objects.push(object)
    inventory.push(
      changes.length > 0
        ? {...entry, outcome: 'modified', reason: changes.join('; ')}
        : {...entry, outcome: 'restored'},
    )
  }
  return {objects, inventory, notes}
}

/** The replicas a ScaledObject's target Deployment is restored with, when it is among the objects restored. */
function targetReplicas(scaledObject: KubeObject, context: KubeObject[]): number | undefined {
  const ref = (scaledObject.spec as {scaleTargetRef?: {kind?: string; name?: string}} | undefined)?.scaleTargetRef
  if (!ref?.name || (ref.kind ?? 'Deployment') !== 'Deployment') return undefined
  const target = context.find((o) => o.kind === 'Deployment' && o.metadata.name === ref.name)
  const replicas = (target?.spec as {replicas?: number} | undefined)?.replicas
  return typeof replicas === 'number' ? replicas : undefined
}

type PodTemplate = {metadata?: {annotations?: Record<string, string>}; spec?: PodSpec}

/** The kinds that run pods from a template, which the drill namespace's Pod Security applies to. */
export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob']

/** A workload's pod template (a CronJob's through its job template), to check and fill in for restricted. */
export function podTemplateOf(
  object: KubeObject,
): {metadata?: {annotations?: Record<string, string>}; spec?: PodSpec} | undefined {
  const spec = object.spec as {template?: PodTemplate; jobTemplate?: {spec?: {template?: PodTemplate}}} | undefined
  if (!spec || !WORKLOAD_KINDS.includes(object.kind)) return undefined
  return object.kind === 'CronJob' ? spec.jobTemplate?.spec?.template : spec.template
}

/** Per kind, how many objects had each outcome: {Secret: {placeholder: 2}, NetworkPolicy: {'not-restored': 1}}. */
export function restoredByKind(
  inventory: RestoredObject[],
): Record<string, Partial<Record<RestoredObject['outcome'], number>>> {
  const byKind: Record<string, Partial<Record<RestoredObject['outcome'], number>>> = {}
  for (const i of inventory) {
    const kind = (byKind[i.kind] ??= {})
    kind[i.outcome] = (kind[i.outcome] ?? 0) + 1
  }
  return byKind
}

/** What the snapshot file keeps of a Secret: a reference (name, type, keys, a hash of the data), never a value. */
export function secretReference(
  secret: KubeObject & {type?: string; data?: Record<string, string>},
): Record<string, unknown> {
  const keys = Object.keys(secret.data ?? {}).sort()
  const hash = createHash('sha256')
  for (const k of keys) hash.update(`${k}\0${secret.data![k]}\0`)
  return {
    kind: 'Secret',
    name: secret.metadata.name,
    type: secret.type ?? 'Opaque',
    keys,
    dataSha256: hash.digest('hex'),
  }
}

interface DeploymentLike extends KubeObject {
  spec?: {replicas?: number}
  status?: {
    replicas?: number
    availableReplicas?: number
    updatedReplicas?: number
    observedGeneration?: number
    conditions?: {type: string; status: string; reason?: string; message?: string}[]
  }
}

/** Available = every desired replica updated and available, for the current generation. */
export function deploymentAvailable(d: DeploymentLike): {available: boolean; detail: string} {
  const want = d.spec?.replicas ?? 1
  const s = d.status ?? {}
  const current = (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  const available = current && (s.availableReplicas ?? 0) >= want && (s.updatedReplicas ?? 0) >= want
  const failing = s.conditions?.find((c) => c.status === 'False' && c.type !== 'Available')
  return {
    available,
    detail: `${s.availableReplicas ?? 0}/${want} available${failing?.message ? ` (${failing.reason}: ${failing.message})` : ''}`,
  }
}

function sourceNamespace(ds: {kubernetes?: {namespace?: string}}, envNamespace: string): string {
  return ds.kubernetes?.namespace ?? envNamespace
}

export const kubernetesProvider: DrillProvider = {
  name: 'kubernetes',

  plan(ds, ctx) {
    if (ds.kubernetes?.backup) return planFromBackup(ds, ctx)
    const ns = sourceNamespace(ds, ctx.environment.namespace)
    const target = drillNamespaceName(ctx.drillId, ds.name)
    const problems: string[] = []
    if (ds.validation.length > 0)
      problems.push(
        `${ds.name}: kubernetes datastores take no validation queries (the built-in checks are: every object restored, every Deployment available)`,
      )
    if (isDrillNamespace(ns)) problems.push(`${ds.name}: the source namespace ${ns} is itself a drill namespace`)
    return {
      source: `namespace ${ns} (context ${ctx.environment.context ?? 'current'})`,
      target: `namespace ${target}`,
      steps: [
        `snapshot the ${MANAGED_BY_SELECTOR} objects of ${ns} (${SNAPSHOT_KINDS.map((k) => (k.optional ? `${k.kind} where served` : k.kind)).join(', ')}; Secrets as references) (read-only)`,
        `create namespace ${target} labelled ${DRILL_LABEL}=${ctx.drillId}, enforcing Pod Security restricted, then NetworkPolicies ${DEFAULT_DENY_POLICY} (all ingress and egress) and ${SAME_NAMESPACE_POLICY}, before anything is restored`,
        "server-side apply the snapshot there: Secrets as placeholders with the same keys and empty values (never their values), the source's NetworkPolicies, Roles and RoleBindings left out, no service account tokens, Services as ClusterIP, CronJobs suspended, ScaledObjects paused, HTTPRoutes without parentRefs, pod templates filled in to pass restricted (a template that explicitly breaks it is left out and fails the drill)",
        `check that no Secret value was copied and the isolation stands; wait until every restored Deployment is available (at most ${ds.kubernetes?.waitTimeout ?? '5m'})`,
        `delete namespace ${target}`,
      ],
      problems,
      warnings: [],
    }
  },

  async run(ds, plan, ctx): Promise<ProviderResult> {
    if (ds.kubernetes?.backup) return runFromBackup(ds, plan, ctx)
    const sourceNs = sourceNamespace(ds, ctx.environment.namespace)
    const targetNs = drillNamespaceName(ctx.drillId, ds.name)
    if (!isDrillNamespace(targetNs) || targetNs === sourceNs)
      throw new RetailOpsError('INTERNAL', `Refusing to restore into ${targetNs}.`)
    const k = kubeClients({context: ctx.environment.context, kubeconfig: ctx.environment.kubeconfig})
    const api = new KubeHttp(k.kc)
    const scope = ds.name
    const evidence: Record<string, unknown> = {sourceNamespace: sourceNs, drillNamespace: targetNs, context: k.context}
    const timeoutMs = parseDuration(ds.kubernetes?.waitTimeout ?? '5m')!
    try {
      // The optional kinds (KEDA's, Gateway API's) where the cluster serves them; a cluster without KEDA snapshots the rest.
      const kinds = await servedSnapshotKinds(api, ctx.signal).catch((error) => {
        throw kubeError(
          error,
          'asking the cluster which optional APIs it serves (keda.sh, gateway.networking.k8s.io)',
          k.server,
        )
      })
      if (kinds.notServed.length > 0) evidence.kindsNotServed = kinds.notServed
      // 1. Snapshot (reads only).
      const snapshot = await ctx.steps.run(
        scope,
        'backup',
        `snapshot ${sourceNs}`,
        async () => {
          const objects: KubeObject[] = []
          for (const kind of kinds.served) {
            const list = await api
              .request<{items: KubeObject[]}>('GET', collectionPath(kind.kind, sourceNs), {
                query: {labelSelector: MANAGED_BY_SELECTOR},
                signal: ctx.signal,
              })
              .catch((error) => {
                throw kubeError(error, `listing ${kind.plural} in ${sourceNs}`, k.server)
              })
            for (const item of list.items) objects.push({...item, apiVersion: kind.apiVersion, kind: kind.kind})
          }
          return objects
        },
        (objects) => `${objects.length} objects`,
      )
      const counts: Record<string, number> = {}
      for (const o of snapshot) counts[o.kind] = (counts[o.kind] ?? 0) + 1
      evidence.snapshotCounts = counts
      const snapshotFile = path.join(ctx.recordDir, `${ds.name}-snapshot.yaml`)
      // Loaded by the drill that writes the snapshot: `dr plan` loads this module for its plan() alone.
      const {stringify} = await loadYaml()
      await writeFile(
        snapshotFile,
        snapshot
          .map((o) =>
            stringify(
              o.kind === 'Secret' ? secretReference(o) : prepareForRestore(o, sourceNs, ctx.drillId, ds.name).object,
            ),
          )
          .join('---\n'),
      )
      evidence.snapshotFile = path.basename(snapshotFile)
      if (snapshot.length === 0) {
        throw new RetailOpsError(
          RESTORE_FAILED,
          `Namespace ${sourceNs} has no objects labelled ${MANAGED_BY_SELECTOR}: nothing to restore.`,
          {
            nextSteps: ['Check datastores[].kubernetes.namespace, or deploy the services there first.'],
          },
        )
      }
      throwIfAborted(ctx.signal)

      // What will be restored, decided (and reported) before anything is written.
      const restore = planRestore(snapshot, targetNs, ctx.drillId, ds.name)
      const notRestored = restore.inventory.filter((i) => i.outcome === 'not-restored')
      if (restore.notes.length > 0) evidence.restoreNotes = restore.notes
      evidence.restoredByKind = restoredByKind(restore.inventory)

      await createDrillNamespace(api, k, targetNs, ds.name, ctx, evidence)
      throwIfAborted(ctx.signal)

      // 3. Restore by server-side apply: Secret placeholders and TriggerAuthentications first (deploys
      // do not manage them, so the shared apply does not address them), then everything else through
      // the deploy engine's server-side apply, in its waves (quota and limits, then accounts,
      // configuration and Services, then workloads, then autoscalers and routes).
      await ctx.steps.run(
        scope,
        'restore',
        `apply ${restore.objects.length} of ${snapshot.length} objects to ${targetNs}`,
        async () => {
          // Kinds the deploy's apply does not address (Secret placeholders, KEDA's TriggerAuthentications)
          // go one by one first: the ScaledObjects that name them come in the last wave.
          for (const object of restore.objects.filter((o) => !appliedInWaves(o))) {
            throwIfAborted(ctx.signal)
            await api
              .request('PATCH', objectPath(object), {
                query: {fieldManager: FIELD_MANAGER_DR, force: true},
                body: object,
                contentType: 'application/apply-patch+yaml',
                signal: ctx.signal,
              })
              .catch((error) => {
                throw new RetailOpsError(
                  RESTORE_FAILED,
                  `${object.kind === 'Secret' ? 'Creating the placeholder for Secret' : `Restoring ${object.kind}`} ${object.metadata.name} failed: ${kubeError(error, 'applying').message}`,
                )
              })
          }
          const {applyObjects} = await import('../../kubernetes/apply.js')
          const report = await applyObjects(
            api,
            restore.objects.filter((o) => appliedInWaves(o)),
            {fieldManager: FIELD_MANAGER_DR, force: true, signal: ctx.signal},
          )
          if (report.failed.length > 0) {
            throw new RetailOpsError(
              RESTORE_FAILED,
              `Restoring ${report.failed.length} object(s) failed: ${report.failed.map((f) => `${f.ref}: ${f.message}`).join('; ')}`,
              {details: {failed: report.failed, skipped: report.skipped}},
            )
          }
        },
        () => `${restore.objects.length} restored, ${notRestored.length} left out`,
      )

      // 4. Validate: what was meant to be restored is there, no Secret value came along, the
      // isolation still stands, no workload was left out for Pod Security, the workloads run.
      const started = ctx.clock()
      const restorable = kinds.served.filter((kind) => !kind.neverRestored)
      const present = await Promise.all(
        restorable.map(
          async (kind) =>
            (
              await api.request<{items: KubeObject[]}>('GET', collectionPath(kind.kind, targetNs), {
                query: {labelSelector: `${DRILL_LABEL}=${ctx.drillId}`},
              })
            ).items,
        ),
      )
      const byKind = new Map(restorable.map((kind, i) => [kind.kind, present[i]]))
      const missing = restore.objects.filter(
        (o) => !(byKind.get(o.kind) ?? []).some((x) => x.metadata.name === o.metadata.name),
      )
      const validations = await validateRestore(
        api,
        {
          sourceNs,
          targetNs,
          meant: restore.objects.length,
          missing: missing.map((o) => `${o.kind} ${o.metadata.name}`),
          notRestored,
          total: snapshot.length,
          secrets: byKind.get('Secret') ?? [],
          timeoutMs,
          started,
        },
        ds.name,
        ctx,
        evidence,
      )
      return {
        target: `namespace ${targetNs}`,
        rpoNotApplicable: 'a configuration snapshot taken at drill time: there is no older recovery point',
        validations,
        evidence,
        inventory: restore.inventory,
      }
    } finally {
      // Cleanup deletes through its own connection; this one only served the drill.
      api.close()
    }
  },
}

const WAVE_KINDS = new Set(MANAGED_KINDS.map((k) => k.kind))

/** Restored through the deploy's apply, in its waves (the kinds it manages). */
function appliedInWaves(object: KubeObject): boolean {
  return WAVE_KINDS.has(object.kind)
}

/**
 * The built-in validations of a restore: every object meant to be restored is there, no Secret
 * value came along, the isolation still stands, no workload was left out for Pod Security, and
 * every restored Deployment becomes available (waited for up to timeoutMs).
 */
export async function validateRestore(
  api: KubeHttp,
  r: {
    sourceNs: string
    targetNs: string
    /** How many objects the drill meant to restore. */
    meant: number
    /** Those of them not found in the drill namespace ("Kind name"). */
    missing: string[]
    notRestored: RestoredObject[]
    /** Objects in the snapshot or backup. */
    total: number
    /** The Secrets found in the drill namespace. */
    secrets: (KubeObject & {data?: Record<string, string>})[]
    timeoutMs: number
    started: number
  },
  scope: string,
  ctx: DrillContext,
  evidence: Record<string, unknown>,
): Promise<ValidationResult[]> {
  const {sourceNs, targetNs, notRestored, timeoutMs, started} = r
  const validations: ValidationResult[] = []
  validations.push({
    name: 'objects-restored',
    query: `every object of ${sourceNs} the drill restores exists in ${targetNs}`,
    value: String(r.meant - r.missing.length),
    expect: {equals: r.meant},
    passed: r.missing.length === 0,
    message: `${r.meant - r.missing.length} of ${r.meant} objects restored${r.missing.length ? ` (missing: ${r.missing.join(', ')})` : ''}; ${notRestored.length} of ${r.total} left out by design`,
    durationMs: ctx.clock() - started,
  })
  const secrets = r.secrets
  const withValues = secrets.filter((x) => Object.values(x.data ?? {}).some((v) => v !== ''))
  validations.push({
    name: 'no-secret-values',
    query: `every Secret in ${targetNs} has empty values`,
    value: String(withValues.length),
    expect: {equals: 0},
    passed: withValues.length === 0,
    message:
      withValues.length === 0
        ? `${secrets.length} placeholder Secret(s), all values empty`
        : `Secrets with values: ${withValues.map((x) => x.metadata.name).join(', ')}`,
    durationMs: ctx.clock() - started,
  })
  const isolation = await readIsolation(api, targetNs)
  validations.push({
    name: 'isolated',
    query: `namespace ${targetNs} enforces Pod Security restricted and has ${DEFAULT_DENY_POLICY}`,
    value: isolation.detail,
    passed: isolation.ok,
    message: isolation.detail,
    durationMs: ctx.clock() - started,
  })
  const blocked = notRestored.filter((i) => i.reason?.startsWith(POD_SECURITY_REASON))
  validations.push({
    name: 'pod-security-restricted',
    query: "every workload's pod template can run under Pod Security restricted",
    value: String(blocked.length),
    expect: {equals: 0},
    passed: blocked.length === 0,
    message:
      blocked.length === 0
        ? 'every pod template passes (after filling in unset fields)'
        : `not restored, so not proven recoverable: ${blocked.map((b) => `${b.kind} ${b.name} (${b.reason})`).join('; ')}`,
    durationMs: ctx.clock() - started,
  })
  await ctx.steps.run(
    scope,
    'validate',
    'wait for the Deployments to become available',
    async (step) => {
      const deadline = ctx.clock() + timeoutMs
      let last: {name: string; available: boolean; detail: string}[]
      for (;;) {
        throwIfAborted(ctx.signal)
        const list = await api.request<{items: DeploymentLike[]}>('GET', collectionPath('Deployment', targetNs), {
          signal: ctx.signal,
        })
        last = list.items.map((d) => ({name: d.metadata.name, ...deploymentAvailable(d)}))
        if (last.every((d) => d.available) || ctx.clock() >= deadline) break
        await sleep(1000, ctx.signal)
      }
      for (const d of last) {
        validations.push({
          name: `available-${d.name}`,
          query: `Deployment ${targetNs}/${d.name} available`,
          value: d.detail,
          passed: d.available,
          message: d.available ? d.detail : `${d.detail} after ${Math.round(timeoutMs / 1000)}s`,
          durationMs: ctx.clock() - started,
        })
      }
      if (last.some((d) => !d.available)) {
        const reasons = await explainDeployments(
          api,
          targetNs,
          last.filter((d) => !d.available).map((d) => d.name),
        )
        if (reasons.length > 0) evidence.podProblems = reasons
        step.fail(
          `${last
            .filter((d) => !d.available)
            .map((d) => `${d.name} ${d.detail}`)
            .join(
              '; ',
            )} after ${Math.round(timeoutMs / 1000)}s${reasons.length ? ` (${reasons.slice(0, 3).join('; ')})` : ''}`,
        )
      }
      return last
    },
    (last) => `${last.filter((d) => d.available).length}/${last.length} Deployments available`,
  )
  return validations
}

/**
 * The drill namespace, registered for cleanup (and in the drill's lease) before it exists,
 * created with Pod Security restricted enforced and, before anything is restored into it,
 * default-deny ingress and egress. Its isolation goes into the evidence.
 */
export async function createDrillNamespace(
  api: KubeHttp,
  k: {kc: KubeConfig; context: string; server?: string},
  targetNs: string,
  datastore: string,
  ctx: DrillContext,
  evidence: Record<string, unknown>,
): Promise<void> {
  const scope = datastore
  const ds = {name: datastore}
  ctx.cleanup.push({
    kind: 'namespace',
    resource: targetNs,
    action: 'delete',
    run: () => deleteNamespace(k.kc, targetNs),
  })
  await ctx.lease({kind: 'namespace', name: targetNs, where: k.context})
  await ctx.steps.run(
    scope,
    'create-target',
    `create namespace ${targetNs} (Pod Security restricted, default-deny ingress and egress)`,
    async () => {
      const namespace = await api
        .request<KubeObject>('POST', collectionPath('Namespace'), {
          body: {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: {
              name: targetNs,
              labels: {[DRILL_LABEL]: ctx.drillId, [DRILL_DATASTORE_LABEL]: ds.name, ...POD_SECURITY_LABELS},
            },
          },
        })
        .catch((error) => {
          if ((error as {statusCode?: number}).statusCode === 409)
            throw new RetailOpsError(
              'REFUSED',
              `Namespace ${targetNs} already exists; a drill never restores into an existing namespace.`,
            )
          throw kubeError(error, `creating namespace ${targetNs}`, k.server)
        })
      const bound = await bindRestoreRole(api, targetNs, ctx)
      if (bound) evidence.restoreRole = bound
      const policies: string[] = []
      for (const policy of isolationPolicies(targetNs, ctx.drillId, ds.name)) {
        const created = await createAllowingForBinding(
          () =>
            api.request<KubeObject>('POST', collectionPath('NetworkPolicy', targetNs), {
              body: policy,
              signal: ctx.signal,
            }),
          Boolean(bound),
          ctx.signal,
        ).catch((error) => {
          throw kubeError(error, `creating NetworkPolicy ${policy.metadata.name} in ${targetNs}`, k.server)
        })
        policies.push(`${created.metadata.name}@${created.metadata.resourceVersion}`)
      }
      evidence.isolation = {
        podSecurity: Object.fromEntries(
          Object.entries(namespace.metadata.labels ?? {}).filter(([key]) =>
            key.startsWith('pod-security.kubernetes.io/'),
          ),
        ),
        networkPolicies: policies,
        namespaceResourceVersion: namespace.metadata.resourceVersion,
      }
    },
  )
}

/**
 * A drill run by a scheduled job may write only inside the namespace it created: its
 * ServiceAccount binds the restore role there (RETAILOPS_DR_RESTORE_ROLE, set by `dr drill
 * --schedule`), and nowhere else (an admission policy confines the binding to drill namespaces).
 * Answers the binding, or nothing when the drill runs with its user's own permissions.
 */
async function bindRestoreRole(api: KubeHttp, namespace: string, ctx: DrillContext): Promise<string | undefined> {
  const role = ctx.env.RETAILOPS_DR_RESTORE_ROLE
  const account = ctx.env.RETAILOPS_DR_SERVICE_ACCOUNT
  if (!role || !account) return undefined
  const [saNamespace, saName] = account.split(':')
  const body = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {name: 'retailops-dr-restore', namespace, labels: {[DRILL_LABEL]: ctx.drillId}},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role},
    subjects: [{kind: 'ServiceAccount', name: saName, namespace: saNamespace}],
  }
  await api
    .request('POST', collectionPath('RoleBinding', namespace), {
      body,
      signal: ctx.signal,
    })
    .catch((error) => {
      throw kubeError(error, `binding ${role} to ServiceAccount ${account} in ${namespace}`)
    })
  return `ClusterRole ${role} bound to ServiceAccount ${account} in ${namespace}`
}

/** A fresh RoleBinding reaches the API server's authorizer within moments: a 403 right after binding is retried briefly. */
async function createAllowingForBinding<T>(
  create: () => Promise<T>,
  justBound: boolean,
  signal: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await create()
    } catch (error) {
      if (!justBound || (error as {statusCode?: number}).statusCode !== 403 || attempt >= 20) throw error
      await sleep(500, signal)
    }
  }
}

/** The drill namespace's Pod Security labels and default-deny policy, read back from the cluster. */
async function readIsolation(api: KubeHttp, namespace: string): Promise<{ok: boolean; detail: string}> {
  const ns = await api.request<KubeObject>('GET', namedPath('Namespace', namespace))
  const policies = await api.request<{
    items: (KubeObject & {
      spec?: {podSelector?: Record<string, unknown>; policyTypes?: string[]; ingress?: unknown[]; egress?: unknown[]}
    })[]
  }>('GET', collectionPath('NetworkPolicy', namespace))
  const enforce = ns.metadata.labels?.['pod-security.kubernetes.io/enforce']
  const deny = policies.items.find((p) => p.metadata.name === DEFAULT_DENY_POLICY)
  const denies = Boolean(
    deny &&
    Object.keys(deny.spec?.podSelector ?? {}).length === 0 &&
    deny.spec?.policyTypes?.includes('Ingress') &&
    deny.spec.policyTypes.includes('Egress') &&
    !deny.spec.ingress?.length &&
    !deny.spec.egress?.length,
  )
  const others = policies.items
    .map((p) => p.metadata.name)
    .filter((n) => n !== DEFAULT_DENY_POLICY && n !== SAME_NAMESPACE_POLICY)
  const ok = enforce === 'restricted' && denies && others.length === 0
  return {
    ok,
    detail: `enforce=${enforce ?? 'unset'}; ${denies ? `${DEFAULT_DENY_POLICY} denies all ingress and egress` : `no ${DEFAULT_DENY_POLICY}`}${others.length ? `; unexpected NetworkPolicies: ${others.join(', ')}` : ''}`,
  }
}

/** Deletes a drill namespace (nothing else) and, unless told not to, waits until it is gone. */
export async function deleteNamespace(
  kc: KubeConfig,
  name: string,
  options: {wait?: boolean} = {},
): Promise<{status: 'removed' | 'absent'; detail?: string}> {
  if (!isDrillNamespace(name)) throw new Error(`refusing to delete ${name}: not a drill namespace`)
  const api = new KubeHttp(kc)
  try {
    try {
      await api.request('DELETE', namedPath('Namespace', name), {body: {propagationPolicy: 'Background'}})
    } catch (error) {
      if (isNotFound(error)) return {status: 'absent'}
      throw error
    }
    if (options.wait === false) return {status: 'removed', detail: 'deletion accepted'}
    const deadline = Date.now() + 120_000
    while (Date.now() < deadline) {
      try {
        await api.request('GET', namedPath('Namespace', name))
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
