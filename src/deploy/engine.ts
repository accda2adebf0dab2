import pLimit from 'p-limit'

import type {LoadedConfig} from '../config/load.js'
import {kubeClients, kubeCredentials, kubeError} from '../kubernetes/client.js'
import {
  applyObjects,
  applyOne,
  deleteObjects,
  listManaged,
  type AppliedObject,
  type ApplyFailure,
  type PruneResult,
} from '../kubernetes/apply.js'
import {objectDiff} from '../kubernetes/diff.js'
import {KubeHttp, KubeHttpError} from '../kubernetes/http.js'
import {checkPolicy, type PolicyReport, type SignatureResult} from '../kubernetes/policy.js'
import {placementPolicy} from '../config/placement.js'
import {kindInfo, type KubeObject, objectKey, objectPath, objectRef} from '../kubernetes/resources.js'
import {type AutoscalerKind, BOUND_FIELDS, servesScaledObjects} from '../kubernetes/autoscalers.js'
import {RetailOpsError} from '../errors/index.js'
import {unchangedSince, withIntentHash} from '../kubernetes/unchanged.js'
import {waitForDeployments, type WaitResult} from '../kubernetes/rollout-status.js'
import {throwIfAborted, type RunContext} from '../ui/context.js'
import type {ResolvedImage} from './images.js'
import {objectsOf} from './format.js'
import {ANNOTATION, FIELD_MANAGER, FIELD_MANAGER_ROLLOUT, LABEL} from '../kubernetes/labels.js'
import type {RenderedTarget, RenderResult} from './render.js'
import {
  planObjects,
  renderStep,
  summarizeTargets,
  type DeployPlan,
  type DeployTargetSummary,
  type RenderStepOptions,
} from './plan.js'
import {type ImageVerifier, type SignatureVerification, verifyRenderedImages} from './signature.js'
import {admissionStep, type AdmissionStepOptions, type SupplyChainResult} from './admission.js'

/**
 * The deploy engine: render → policy → apply → wait, each step exported on its own. runDeploy()
 * composes them into a plain rolling deploy; src/rollout/release.ts composes them into every
 * release `retailops deploy` makes (rolling with release gates, canary, blue-green).
 */

export type {SignatureVerification} from './signature.js'
export {timeoutMs} from '../config/duration.js'
export {planObjects, renderStep, summarizeTargets, type DeployPlan, type DeployTargetSummary, type RenderStepOptions}

export interface PolicyStepResult {
  report: PolicyReport
  signatures: SignatureResult[]
  /** By image: what the supply-chain admission reads. */
  signaturesByImage: Record<string, SignatureResult>
  signatureVerification: SignatureVerification
}

export interface PolicyStepOptions {
  project: LoadedConfig
  skipVerify?: boolean
  verifyImages?: ImageVerifier
}

/**
 * Step 2: signature verification of every image the plan's objects would run
 * (verifyRenderedImages: lock images, overlay sidecars and init containers, Jobs alike) and policy
 * checks. Records the outcome on every workload (annotation retailops.dev/signature-verification).
 * Never throws for findings: the caller decides (runDeploy stops on errors).
 */
export async function policyStep(
  plan: DeployPlan,
  options: PolicyStepOptions,
  ctx: RunContext,
): Promise<PolicyStepResult> {
  const objects = planObjects(plan)
  const verified = await verifyRenderedImages(objects, options, ctx)
  const report = checkPolicy(objects, {
    signatures: verified.signatures,
    signingRequired: options.project.config.signing.required,
    tierLabel: LABEL.tier,
    placement: placementPolicy(options.project.config),
  })
  return {
    report,
    signatures: Object.values(verified.signatures),
    signaturesByImage: verified.signatures,
    signatureVerification: verified.verification,
  }
}

/** A cluster connection and the applyset label its objects carry. */
interface ClusterGroup {
  key: string
  context?: string
  kubeconfig?: string
  applySet: string
  legacyApplySet: string
  targets: RenderedTarget[]
}

export function clusterGroups(plan: RenderResult): ClusterGroup[] {
  const groups = new Map<string, ClusterGroup>()
  for (const t of plan.targets) {
    const key = `${t.kubeconfig ?? ''}|${t.context ?? ''}|${t.applySet}`
    if (!groups.has(key))
      groups.set(key, {
        key,
        context: t.context,
        kubeconfig: t.kubeconfig,
        applySet: t.applySet,
        legacyApplySet: t.legacyApplySet,
        targets: [],
      })
    groups.get(key)!.targets.push(t)
  }
  return [...groups.values()]
}

/**
 * What this deploy target applied before, as prune and the unchanged check see it: objects with
 * its applyset label (or the label value of earlier versions, see RenderedTarget.legacyApplySet)
 * in the namespaces this deploy renders, plus the Namespace objects carrying its own label (for
 * the orphaned-namespace report). Anything in another namespace is out of reach, whatever its label.
 */
export function applySetMembers(
  live: Map<string, KubeObject>,
  group: Pick<ClusterGroup, 'applySet' | 'targets'>,
): Map<string, KubeObject> {
  const namespaces = new Set(group.targets.map((t) => t.namespace))
  const out = new Map<string, KubeObject>()
  for (const [key, obj] of live) {
    const inScope =
      obj.kind === 'Namespace'
        ? namespaces.has(obj.metadata.name) || obj.metadata.labels?.[LABEL.applySet] === group.applySet
        : namespaces.has(obj.metadata.namespace ?? '\0')
    if (inScope) out.set(key, obj)
  }
  return out
}

async function listApplySet(
  http: KubeHttp,
  group: ClusterGroup,
  signal?: AbortSignal,
  options: {managedFields?: boolean} = {},
): Promise<Map<string, KubeObject>> {
  const values = [...new Set([group.applySet, group.legacyApplySet])]
  const selector = `${LABEL.applySet} in (${values.join(',')})`
  const live = await listManaged(http, selector, signal, options).catch((error) => {
    throw kubeError(error, `listing what retailops manages (${selector})`)
  })
  return applySetMembers(live, group)
}

export interface PruneScope {
  /** Namespaces rendered in this group. */
  namespaces: Set<string>
  /** No --tenant and no service names: everything in the applyset that is not rendered goes. */
  full: boolean
  services?: string[]
}

/**
 * What prune deletes: managed objects of the applyset that the render no longer has, within
 * scope. Never an object outside the namespaces this deploy renders, whatever the scope (a
 * namespace no longer rendered, e.g. of a removed tenant, is reported as orphaned instead). Pure.
 */
export function pruneCandidates(
  live: Map<string, KubeObject>,
  rendered: Set<string>,
  scope: PruneScope,
): {prune: KubeObject[]; orphanedNamespaces: string[]} {
  const prune: KubeObject[] = []
  const orphanedNamespaces: string[] = []
  for (const [key, obj] of live) {
    if (rendered.has(key)) continue
    if (obj.kind === 'Namespace') {
      if (scope.full && !scope.namespaces.has(obj.metadata.name)) orphanedNamespaces.push(obj.metadata.name)
      continue
    }
    if (!kindInfo(obj.kind).prunable) continue
    if (!obj.metadata.namespace || !scope.namespaces.has(obj.metadata.namespace)) continue
    if (
      !scope.full &&
      scope.services &&
      !scope.services.includes(obj.metadata.labels?.[LABEL.service] ?? obj.metadata.labels?.[LABEL.job] ?? '\0')
    )
      continue
    prune.push(obj)
  }
  return {prune, orphanedNamespaces}
}

/**
 * A Deployment an HPA scales is rendered without replicas (the HPA owns the count). retailops' own
 * apply still sends one, or server-side apply would drop the field it owned and the count would fall
 * back to 1: a new Deployment starts at the HPA's minReplicas, an existing one keeps its live count
 * (clamped to the new min/max), so a deploy never undoes the autoscaler's scaling.
 */
export function preserveReplicas(objects: KubeObject[], live: Map<string, KubeObject>): KubeObject[] {
  // The first autoscaler of each namespace/Deployment, found once (a search per Deployment is quadratic).
  const autoscalers = new Map<string, KubeObject>()
  for (const o of objects) {
    if (!isAutoscaler(o)) continue
    const key = `${o.metadata.namespace}\0${(o.spec as {scaleTargetRef?: {name?: string}}).scaleTargetRef?.name}`
    if (!autoscalers.has(key)) autoscalers.set(key, o)
  }
  return objects.map((obj) => {
    if (obj.kind !== 'Deployment') return obj
    const autoscaler = autoscalers.get(`${obj.metadata.namespace}\0${obj.metadata.name}`)
    if (!autoscaler) return obj
    const current = (live.get(objectKey(obj))?.spec as {replicas?: number} | undefined)?.replicas
    const fields = BOUND_FIELDS[autoscaler.kind as AutoscalerKind]
    const spec = autoscaler.spec as Record<string, number | undefined>
    const minReplicas = spec[fields.min] ?? 1
    const maxReplicas = spec[fields.max]
    const replicas =
      current === undefined ? minReplicas : Math.min(Math.max(current, minReplicas), maxReplicas ?? current)
    return {...obj, spec: {...(obj.spec as object), replicas}}
  })
}

const isAutoscaler = (o: KubeObject) => o.kind === 'HorizontalPodAutoscaler' || o.kind === 'ScaledObject'

/**
 * Live autoscalers of this applyset that the rendered ones replace: the HPA of a Deployment that
 * now gets a ScaledObject, the ScaledObject of one that now gets an HPA. Never both for one
 * Deployment (KEDA's admission refuses a ScaledObject whose target an HPA scales, and two
 * autoscalers would fight): the old one goes right before its replacement is applied. Pure.
 */
export function replacedAutoscalers(rendered: KubeObject[], live: Map<string, KubeObject>): Map<string, KubeObject> {
  const target = (o: KubeObject) =>
    `${o.metadata.namespace}\0${(o.spec as {scaleTargetRef?: {name?: string}} | undefined)?.scaleTargetRef?.name}`
  const renderedKeys = new Set(rendered.filter(isAutoscaler).map(objectKey))
  const liveByTarget = new Map<string, KubeObject[]>()
  for (const o of live.values()) {
    if (!isAutoscaler(o) || renderedKeys.has(objectKey(o))) continue
    liveByTarget.set(target(o), [...(liveByTarget.get(target(o)) ?? []), o])
  }
  const out = new Map<string, KubeObject>()
  for (const o of rendered.filter(isAutoscaler))
    for (const old of liveByTarget.get(target(o)) ?? []) if (old.kind !== o.kind) out.set(objectKey(o), old)
  return out
}

export interface ApplyStepOptions {
  dryRun?: boolean
  forceConflicts?: boolean
  prune?: boolean
  concurrency?: number
}

export interface ApplyStepResult {
  applied: AppliedObject[]
  failed: ApplyFailure[]
  /** Retried requests by cause ("409", "429", "5xx", "network"). */
  retries?: Record<string, number>
  skipped: string[]
  pruned: PruneResult[]
  orphanedNamespaces: string[]
}

function scopeOf(plan: DeployPlan, group: ClusterGroup): PruneScope {
  return {
    namespaces: new Set(group.targets.map((t) => t.namespace)),
    full: !plan.selection.services && !plan.selection.tenant,
    services: plan.selection.services,
  }
}

const groupClients = new Map<string, KubeHttp>()

/** Raw requests to a group's cluster; a plain kubeconfig does not load @kubernetes/client-node (diff never needs it). */
async function groupHttp(group: ClusterGroup): Promise<KubeHttp> {
  const key = `${group.kubeconfig ?? ''}|${group.context ?? ''}`
  let http = groupClients.get(key)
  if (!http) {
    http = new KubeHttp(kubeCredentials({context: group.context, kubeconfig: group.kubeconfig}))
    groupClients.set(key, http)
  }
  return http
}

/** ScaledObjects rendered for a cluster without KEDA's CRDs: refused before anything is written (or deleted). */
async function requireScaledObjects(
  http: KubeHttp,
  group: ClusterGroup,
  objects: KubeObject[],
  signal?: AbortSignal,
): Promise<void> {
  const scaled = objects.filter((o) => o.kind === 'ScaledObject')
  if (scaled.length === 0) return
  const serves = await servesScaledObjects(http, signal).catch((error: unknown) => {
    throw kubeError(error, 'asking the cluster whether it serves KEDA ScaledObjects')
  })
  if (serves) return
  const services = scaled.map((o) => o.metadata.name).join(', ')
  throw new RetailOpsError(
    'CONFIG',
    `${services} would get a KEDA ScaledObject, and ${group.targets.map((t) => t.id).join(', ')} does not serve scaledobjects.keda.sh (KEDA is not installed there). Nothing was applied.`,
    {
      nextSteps: [
        'Install KEDA in the cluster, or deploy with --scaling-provider hpa (an HPA with External metrics, served by prometheus-adapter; docs/scaling.md), or set scaling.provider: auto.',
      ],
    },
  )
}

/** Step 3: server-side apply in waves, then prune what the applyset has and the render no longer does. */
export async function applyStep(
  plan: DeployPlan,
  options: ApplyStepOptions,
  ctx: RunContext,
): Promise<ApplyStepResult> {
  const out: ApplyStepResult = {applied: [], failed: [], skipped: [], retries: {}, pruned: [], orphanedNamespaces: []}
  await Promise.all(
    clusterGroups(plan).map(async (group) => {
      const http = await groupHttp(group)
      const objects = group.targets.flatMap((t) => t.objects)
      await requireScaledObjects(http, group, objects, ctx.signal)
      const live = await listApplySet(http, group, ctx.signal)
      // Objects whose intent hash and values match the live object are not sent again (force re-sends all).
      const intents = preserveReplicas(
        objects.map((o) => withIntentHash(o)),
        live,
      )
      const replaced = replacedAutoscalers(intents, live)
      const unchanged = options.forceConflicts ? [] : intents.filter((o) => unchangedSince(live.get(objectKey(o)), o))
      const skip = new Set(unchanged.map(objectKey))
      const task = ctx.out.task(
        `Applying ${objects.length} objects to ${group.targets.map((t) => t.id).join(', ')}${skip.size ? ` (${skip.size} unchanged)` : ''}`,
      )
      let done = 0
      for (const o of unchanged) {
        const l = live.get(objectKey(o))!
        out.applied.push({
          ref: objectRef(o),
          kind: o.kind,
          name: o.metadata.name,
          namespace: o.metadata.namespace,
          action: 'unchanged',
          resourceVersion: l.metadata.resourceVersion,
          generation: l.metadata.generation,
          result: l,
        })
      }
      const report = await applyObjects(
        http,
        intents.filter((o) => !skip.has(objectKey(o))),
        {
          fieldManager: FIELD_MANAGER,
          force: options.forceConflicts,
          // A deploy runs only when no rollout is in progress: what a finished one still owns comes back.
          reclaimFrom: [FIELD_MANAGER_ROLLOUT],
          dryRun: options.dryRun,
          concurrency: options.concurrency,
          signal: ctx.signal,
          live,
          beforeAttempt: async (obj, attempt) => {
            const old = replaced.get(objectKey(obj))
            if (attempt === 1 && old && !options.dryRun) {
              // The scaling provider changed: the other kind of autoscaler goes first (prune reports it).
              const [result] = await deleteObjects(http, [old], {signal: ctx.signal})
              if (!result.deleted) throw new Error(`could not delete ${result.ref} that it replaces: ${result.error}`)
              ctx.out.info(`${result.ref} deleted: ${objectRef(obj)} replaces it`)
            }
            // After a conflict on a Deployment, re-read the live replica count (the autoscaler may have moved it).
            if (attempt === 1 || obj.kind !== 'Deployment') return obj
            const fresh = await http.request<KubeObject>('GET', objectPath(obj)).catch(() => undefined)
            return fresh
              ? preserveReplicas([obj, ...intents.filter(isAutoscaler)], new Map([[objectKey(obj), fresh]]))[0]
              : obj
          },
          onApplied: (r) => {
            done += 1
            if (r.action !== 'unchanged') ctx.out.debug(`${r.ref} ${r.action}`)
            if (done % 100 === 0) task.update(`${done} of ${objects.length}`)
          },
        },
      )
      out.applied.push(...report.applied)
      out.failed.push(...report.failed)
      out.skipped.push(...report.skipped)
      for (const [cause, n] of Object.entries(report.retries)) out.retries![cause] = (out.retries![cause] ?? 0) + n
      if (report.failed.length > 0) {
        task.fail(`${report.failed.length} of ${objects.length} objects failed to apply`)
        return
      }
      const changed = report.applied.filter((a) => a.action !== 'unchanged').length
      task.succeed(
        `${objects.length} objects applied to ${group.targets.length} namespace${group.targets.length === 1 ? '' : 's'} (${changed} changed)`,
      )
      if (options.prune === false) return
      const rendered = new Set(objects.map(objectKey))
      const {prune, orphanedNamespaces} = pruneCandidates(live, rendered, scopeOf(plan, group))
      out.orphanedNamespaces.push(...orphanedNamespaces)
      if (prune.length > 0) {
        const pruneTask = ctx.out.task(
          `Pruning ${prune.length} object${prune.length === 1 ? '' : 's'} retailops applied before and no longer renders`,
        )
        const results = await deleteObjects(http, prune, {dryRun: options.dryRun, signal: ctx.signal})
        out.pruned.push(...results)
        const failed = results.filter((r) => !r.deleted)
        if (failed.length > 0) pruneTask.fail(`${failed.length} could not be deleted`)
        else pruneTask.succeed(`Pruned ${results.map((r) => r.ref).join(', ')}`)
      }
    }),
  )
  return out
}

export interface WaitStepOptions {
  timeoutMs?: number
}

/** The wait deadline: the longest progress deadline of the plan plus a minute, unless given. */
export function defaultWaitTimeout(plan: RenderResult): number {
  const deadlines = planObjects(plan)
    .filter((o) => o.kind === 'Deployment')
    .map((d) => ((d.spec as {progressDeadlineSeconds?: number}).progressDeadlineSeconds ?? 600) * 1000)
  return Math.max(0, ...deadlines) + 60_000
}

/** Step 4: wait for every rendered Deployment to roll out; failures come back explained. */
export async function waitStep(plan: DeployPlan, options: WaitStepOptions, ctx: RunContext): Promise<WaitResult[]> {
  const results: WaitResult[] = []
  await Promise.all(
    clusterGroups(plan).map(async (group) => {
      const targets = group.targets.flatMap((t) =>
        t.objects
          .filter((o) => o.kind === 'Deployment')
          .map((d) => ({namespace: d.metadata.namespace!, name: d.metadata.name})),
      )
      if (targets.length === 0) return
      const task = ctx.out.task(
        `Waiting for ${targets.length} Deployment${targets.length === 1 ? '' : 's'} to roll out`,
      )
      const k = kubeClients({context: group.context, kubeconfig: group.kubeconfig})
      const r = await waitForDeployments(k, targets, {
        timeoutMs: options.timeoutMs ?? defaultWaitTimeout(plan),
        labelSelector: `${LABEL.applySet}=${group.applySet}`,
        signal: ctx.signal,
        onUpdate: (ref, state) => ctx.out.debug(`${ref}: ${state.message}`),
      }).catch((error) => {
        throw kubeError(error, 'watching Deployments roll out')
      })
      const bad = r.filter((x) => x.phase !== 'complete')
      if (bad.length > 0)
        task.fail(
          `${bad
            .filter((x) => x.phase === 'failed' || x.phase === 'timeout')
            .map((x) => x.ref)
            .join(', ')} did not roll out`,
        )
      else task.succeed(`${targets.length} Deployment${targets.length === 1 ? '' : 's'} rolled out`)
      results.push(...r)
    }),
  )
  return results
}

export type DiffAction = 'create' | 'update' | 'unchanged' | 'delete'

export interface ObjectDiff {
  ref: string
  action: DiffAction
  /** Unified diff (live → after apply), empty when unchanged. */
  diff: string
  /** How the "after" side was computed: the server's dry run, or the rendered object when its namespace does not exist yet. */
  source: 'server-dry-run' | 'rendered' | 'live'
}

/**
 * What a deploy would change, per object: the live object against the server's dry-run apply
 * (dryRun=All), with server-managed fields stripped; and what prune would delete.
 */
export async function diffStep(
  plan: DeployPlan,
  options: {forceConflicts?: boolean; prune?: boolean; concurrency?: number; keepLiveAnnotations?: string[]},
  ctx: RunContext,
): Promise<ObjectDiff[]> {
  const out: ObjectDiff[] = []
  await Promise.all(
    clusterGroups(plan).map(async (group) => {
      const http = await groupHttp(group)
      const objects = group.targets.flatMap((t) => t.objects)
      // The diff compares without managedFields (objectDiff strips them): not kept for 20,000 objects.
      const live = await listApplySet(http, group, ctx.signal, {managedFields: false})
      const limit = pLimit(options.concurrency ?? 32)
      // Objects without the label may still exist (created by hand, or before retailops): read them.
      await Promise.all(
        objects
          .filter((o) => !live.has(objectKey(o)))
          .map((o) =>
            limit(async () => {
              const found = await http
                .request<KubeObject>('GET', objectPath(o), {signal: ctx.signal})
                .catch((error) => {
                  if (error instanceof KubeHttpError && error.statusCode === 404) return undefined
                  throw kubeError(error, `reading ${objectRef(o)}`)
                })
              if (found) live.set(objectKey(o), {...found, kind: o.kind, apiVersion: o.apiVersion})
            }),
          ),
      )
      const liveNamespaces = new Set(
        [...live.values()].filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name),
      )
      const prepared = preserveReplicas(
        objects.map((o) =>
          withIntentHash(keepAnnotations(o, live.get(objectKey(o)), options.keepLiveAnnotations ?? [])),
        ),
        live,
      )
      await Promise.all(
        prepared.map((obj) =>
          limit(async () => {
            throwIfAborted(ctx.signal)
            const before = live.get(objectKey(obj))
            let after: KubeObject
            let source: ObjectDiff['source'] = 'server-dry-run'
            if (obj.metadata.namespace && !liveNamespaces.has(obj.metadata.namespace)) {
              after = obj
              source = 'rendered'
            } else if (!options.forceConflicts && unchangedSince(before, obj)) {
              out.push({ref: objectRef(obj), action: 'unchanged', diff: '', source: 'live'})
              return
            } else {
              after = await applyOne(http, obj, {
                fieldManager: FIELD_MANAGER,
                force: options.forceConflicts,
                dryRun: true,
                signal: ctx.signal,
              }).catch((error) => {
                throw kubeError(error, `dry-running the apply of ${objectRef(obj)}`)
              })
            }
            const diff = objectDiff(before, after)
            out.push({ref: objectRef(obj), action: !before ? 'create' : diff ? 'update' : 'unchanged', diff, source})
          }),
        ),
      )
      if (options.prune !== false) {
        const {prune} = pruneCandidates(live, new Set(objects.map(objectKey)), scopeOf(plan, group))
        for (const obj of prune)
          out.push({ref: objectRef(obj), action: 'delete', diff: objectDiff(obj, undefined), source: 'live'})
      }
    }),
  )
  const order = new Map(planObjects(plan).map((o, i) => [objectRef(o), i]))
  return out.sort((a, b) => (order.get(a.ref) ?? 1e9) - (order.get(b.ref) ?? 1e9) || a.ref.localeCompare(b.ref))
}

/** Annotations a step does not decide (diff does not verify signatures) keep their live values. */
function keepAnnotations(obj: KubeObject, live: KubeObject | undefined, keys: string[]): KubeObject {
  const kept = keys.filter(
    (k) => live?.metadata.annotations?.[k] !== undefined && obj.metadata.annotations?.[k] === undefined,
  )
  if (kept.length === 0) return obj
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      annotations: {
        ...obj.metadata.annotations,
        ...Object.fromEntries(kept.map((k) => [k, live!.metadata.annotations![k]])),
      },
    },
  }
}

export interface DeployOptions
  extends
    RenderStepOptions,
    PolicyStepOptions,
    Omit<AdmissionStepOptions, 'project'>,
    ApplyStepOptions,
    WaitStepOptions {
  /** Wait for rollouts (default true; not under dryRun). */
  wait?: boolean
}

export type DeployOutcome = 'OK' | 'POLICY' | 'SUPPLY_CHAIN_REFUSED' | 'DEPLOY_FAILED'

export interface DeployResult {
  outcome: DeployOutcome
  environment: string
  strategy: string
  dryRun: boolean
  targets: DeployTargetSummary[]
  images: ResolvedImage[]
  policy: PolicyReport
  signatureVerification: SignatureVerification
  signatures: SignatureResult[]
  /** supplyChain.policy's decision for every image (outcome not-configured without a policy). */
  supplyChain: SupplyChainResult
  apply: {
    created: number
    configured: number
    unchanged: number
    failed: ApplyFailure[]
    skipped: string[]
    retries: Record<string, number>
    objects: {ref: string; action: string}[]
  }
  pruned: PruneResult[]
  orphanedNamespaces: string[]
  rollouts: WaitResult[]
  /** --dry-run: what would change. */
  diffs?: ObjectDiff[]
  notes: string[]
  timings: Record<string, number>
  durationMs: number
}

/** Times the steps of one deploy (DeployResult.timings) and the whole of it (durationMs). */
export class DeployTimer {
  readonly timings: Record<string, number> = {}
  private readonly started = Date.now()

  async time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t = Date.now()
    try {
      return await fn()
    } finally {
      this.timings[name] = Date.now() - t
    }
  }

  finish(result: DeployResult): DeployResult {
    return {...result, durationMs: Date.now() - this.started}
  }
}

/** Notes for a rolling deploy of services configured for canary or blue-green releases. */
export function rollingNotes(plan: RenderResult, config: LoadedConfig['config']): string[] {
  const notes: string[] = []
  for (const s of new Set(plan.targets.flatMap((t) => t.services))) {
    const configured = config.services[s]?.rollout?.strategy
    if (configured && configured !== 'rolling')
      notes.push(`${s} is configured for ${configured} releases; this deploy rolls it out directly (rolling).`)
  }
  return notes
}

export interface CheckedPlan {
  result: DeployResult
  /** Nothing more to do: policy found errors (outcome POLICY), the supply-chain policy refused an image (SUPPLY_CHAIN_REFUSED): nothing may be applied; or it is a dry run (result.diffs). */
  done: boolean
}

/**
 * The plan's notes (warned), the policy step and, under dryRun, the diff: the deploy's result up
 * to the apply. `notes`: more notes for the result, not warned (the plan's own are).
 */
export async function checkStep(
  plan: DeployPlan,
  options: PolicyStepOptions & AdmissionStepOptions & ApplyStepOptions,
  ctx: RunContext,
  run: {strategy: string; notes?: string[]; timer: DeployTimer},
): Promise<CheckedPlan> {
  for (const note of plan.notes) ctx.out.warn(note)
  const notes = [...plan.notes, ...(run.notes ?? [])]
  const policy = await run.timer.time('policy', () => policyStep(plan, options, ctx))
  // Every image the objects run, checked against supplyChain.policy before anything is applied.
  const supplyChain = await run.timer.time('supplyChain', () =>
    admissionStep(planObjects(plan), policy.signaturesByImage, options, ctx),
  )
  const result: DeployResult = {
    outcome: 'OK',
    environment: plan.environment,
    strategy: run.strategy,
    dryRun: Boolean(options.dryRun),
    targets: summarizeTargets(plan),
    images: Object.values(plan.images),
    policy: policy.report,
    signatureVerification: policy.signatureVerification,
    signatures: policy.signatures,
    supplyChain,
    apply: {created: 0, configured: 0, unchanged: 0, failed: [], skipped: [], retries: {}, objects: []},
    pruned: [],
    orphanedNamespaces: [],
    rollouts: [],
    notes,
    timings: run.timer.timings,
    durationMs: 0,
  }
  for (const f of policy.report.findings.filter((x) => x.severity === 'warning'))
    ctx.out.warn(`policy: ${objectsOf(f)}: ${f.message}`)
  // A supply-chain refusal is the more specific answer; other policy errors are listed with it.
  if (supplyChain.outcome === 'refused') {
    result.outcome = 'SUPPLY_CHAIN_REFUSED'
    announceSupplyChainRefusal(supplyChain, plan, ctx)
    return {result, done: true}
  }
  if (!policy.report.ok) {
    result.outcome = 'POLICY'
    return {result, done: true}
  }
  throwIfAborted(ctx.signal)
  if (options.dryRun) {
    result.diffs = await run.timer.time('diff', () => diffStep(plan, options, ctx))
    return {result, done: true}
  }
  return {result, done: false}
}

/** What the apply step did, into the result. False when an object failed to apply or prune (outcome DEPLOY_FAILED). */
export function recordApply(result: DeployResult, applied: ApplyStepResult): boolean {
  result.apply = {
    created: applied.applied.filter((a) => a.action === 'created').length,
    configured: applied.applied.filter((a) => a.action === 'configured').length,
    unchanged: applied.applied.filter((a) => a.action === 'unchanged').length,
    failed: applied.failed,
    skipped: applied.skipped,
    retries: applied.retries ?? {},
    objects: applied.applied.map((a) => ({ref: a.ref, action: a.action})),
  }
  result.pruned = applied.pruned
  result.orphanedNamespaces = applied.orphanedNamespaces
  if (applied.failed.length > 0 || applied.pruned.some((p) => !p.deleted)) {
    result.outcome = 'DEPLOY_FAILED'
    return false
  }
  return true
}

/** What the wait step saw, into the result: DEPLOY_FAILED when a Deployment did not roll out. */
export function recordRollouts(result: DeployResult, rollouts: WaitResult[]): void {
  result.rollouts = rollouts
  if (rollouts.some((r) => r.phase !== 'complete')) result.outcome = 'DEPLOY_FAILED'
}

/** A plain rolling deploy: render → policy → apply (+prune) → wait. Stops after policy when it has errors: nothing is applied. */
export async function runDeploy(options: DeployOptions, ctx: RunContext): Promise<DeployResult> {
  const timer = new DeployTimer()
  const plan = await timer.time('render', () => renderStep({...options, discoverScaling: true}))
  const {result, done} = await checkStep(plan, options, ctx, {
    strategy: 'rolling',
    notes: rollingNotes(plan, options.project.config),
    timer,
  })
  if (done) return timer.finish(result)
  const applied = await timer.time('apply', () => applyStep(plan, options, ctx))
  if (!recordApply(result, applied) || options.wait === false) return timer.finish(result)
  recordRollouts(result, await timer.time('wait', () => waitStep(plan, options, ctx)))
  return timer.finish(result)
}

/** `retailops diff`: render, policy (reported, not blocking) and the server-side dry-run diff. */
export async function runDiff(
  options: RenderStepOptions & PolicyStepOptions & {forceConflicts?: boolean; prune?: boolean; concurrency?: number},
  ctx: RunContext,
): Promise<{
  environment: string
  targets: DeployTargetSummary[]
  policy: PolicyReport
  diffs: ObjectDiff[]
  changed: number
}> {
  const plan = await renderStep({...options, discoverScaling: true})
  for (const note of plan.notes) ctx.out.warn(note)
  const policy = checkPolicy(planObjects(plan), {
    signingRequired: options.project.config.signing.required,
    tierLabel: LABEL.tier,
    placement: placementPolicy(options.project.config),
  })
  const diffs = await diffStep(
    plan,
    {...options, keepLiveAnnotations: [ANNOTATION.signature, ANNOTATION.supplyChain, ANNOTATION.supplyChainOverride]},
    ctx,
  )
  return {
    environment: plan.environment,
    targets: summarizeTargets(plan),
    policy,
    diffs,
    changed: diffs.filter((d) => d.action !== 'unchanged').length,
  }
}

/** A release event per refused image (and one for a refusal about no image, e.g. --skip-verify): the rules and the fixes. */
function announceSupplyChainRefusal(supplyChain: SupplyChainResult, plan: DeployPlan, ctx: RunContext): void {
  const namespace = plan.targets[0]?.namespace
  for (const d of supplyChain.decisions.filter((x) => !x.admitted)) {
    const version = /:([^:/@]+)(@|$)/.exec(d.image)?.[1]
    ctx.out.event({
      type: 'release.refused.supply-chain',
      severity: 'warning',
      summary: `The supply-chain policy refused ${d.image} (${d.services.join(', ') || 'no service'}): ${d.refusals.map((r) => r.message).join('; ')}. Nothing was applied.`,
      services: d.services,
      version,
      namespace,
      facts: {Image: d.image},
      measurements: [
        ...d.refusals.map((r) => ({name: r.rule, value: r.message, verdict: 'refused'})),
        ...d.vulnerabilities
          .filter((v) => v.refused)
          .slice(0, 10)
          .map((v) => ({
            name: v.id,
            value: `${v.package}@${v.version}`,
            condition: `severity ${v.severity}`,
            verdict: 'refused',
          })),
      ],
      actions: [...new Set(d.refusals.map((r) => r.fix))],
    })
  }
  for (const r of supplyChain.refusals)
    ctx.out.event({
      type: 'release.refused.supply-chain',
      severity: 'warning',
      summary: `The supply-chain policy refused the deploy: ${r.message}. Nothing was applied.`,
      services: [
        ...new Set(
          plan.targets.flatMap((t) => t.objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name)),
        ),
      ],
      namespace,
      measurements: [{name: r.rule, value: r.message, verdict: 'refused'}],
      actions: [r.fix],
    })
}
