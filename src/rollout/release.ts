/**
 * One release path: `retailops deploy` makes one call, release(). Every release uses the deploy
 * engine's own steps (render, policy, apply, wait: src/deploy/engine.ts); what differs is around them.
 *
 * Rolling: the release gates first (a revenue-critical service whose pods would change is refused
 * in a freeze or with an exhausted error budget, unless forced with a reason, recorded on its
 * Deployment and in its rollout history), then apply and wait as a plain deploy.
 *
 * Canary and blue-green: every rollout is planned before policy (stable versions, routes,
 * analysis conditions, gates: reads only), claimed before anything is applied, and every released
 * Deployment keeps its running template while everything else is applied and pruned as usual.
 * Then the rollout driver (engine.ts) releases the new templates where a rolling deploy would wait,
 * or, with --detach, sets them up and hands them to a Job in the cluster that drives them (detach.ts).
 * Services deployed for the first time, and services whose images did not change, are waited for
 * as by a rolling deploy.
 */
import type {Deployment} from '../kubernetes/kinds.js'
import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import type {ScalingProvider, ServiceConfig} from '../config/schema.js'
import {
  applyStep,
  checkStep,
  defaultWaitTimeout,
  DeployTimer,
  recordApply,
  recordRollouts,
  renderStep,
  rollingNotes,
  waitStep,
  type ApplyStepResult,
  type DeployOptions,
  type DeployPlan,
  type DeployResult,
} from '../deploy/engine.js'
import {toRetailOpsError, UsageError, type ExitCodeName} from '../errors/index.js'
import {KubeObjects} from '../kubernetes/objects.js'
import type {KubeObject} from '../kubernetes/resources.js'
import type {RunContext} from '../ui/context.js'
import {analysisVerdict, prometheusProvider, type AnalysisVerdict} from './analysis.js'
import {groupExit} from './status.js'
import {DetachFailed, prepareDetachedJob, type DetachedJob, type DetachSpec, type PreparedJob} from './detach.js'
import {drive, type DriveDeps} from './engine.js'
import {
  changeGates,
  enforceGates,
  FORCED_ANNOTATION,
  FORCED_DETAIL_ANNOTATION,
  type ErrorBudgetSource,
} from './gates.js'
import {PATHS} from './kube.js'
import {
  assertNoRolloutInProgress,
  claimRollouts,
  observedRpsFrom,
  planRollouts,
  revisionOf,
  templateChanges,
} from './start.js'
import {ownsLease, StateStore} from './store.js'
import {
  isTerminal,
  type ForcedRelease,
  type RolloutState,
  type RouterKind,
  type Step,
  type StoredAutoscaler,
  type Strategy,
} from './types.js'

export interface ReleaseOptions extends DeployOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  /** canary or blue-green; none: a rolling deploy. */
  strategy?: Strategy
  /** Canary steps (default: rollout.steps, else the default steps). */
  steps?: Step[]
  router?: RouterKind
  /** --force-release --reason: release despite closed gates (recorded). */
  force?: {reason?: string}
  /** The error budgets the gates read (the SLO engine's, wired by the command); none: the budget gate passes. */
  errorBudget?: ErrorBudgetSource
  /** Default: the environment's, else RETAILOPS_PROMETHEUS_URL. */
  prometheusUrl?: string
  /** --detach: after setup, a Job in the cluster drives the release (its runner image resolved and verified by the caller). */
  detach?: DetachSpec
}

export interface ReleaseResult {
  strategy: 'canary' | 'blue-green'
  /** Services released by the rollout engine, with their final (or waiting) state. */
  rollouts: {
    service: string
    namespace: string
    phase: string
    message: string
    reason?: string
    stable: string
    canary: string
    weight: number
    id: string
    /** Every analysis run of the rollout with the numbers behind each metric's verdict. */
    analysis: AnalysisVerdict[]
  }[]
  /** Services without a running version: rolled out directly. */
  initial: string[]
  /** Services whose images are the ones running: nothing released (their other objects applied as usual). */
  unchanged: string[]
  forced?: ForcedRelease
  /** --detach: the Job that drives the release in the cluster from here. */
  detached?: DetachedJob
}

/** What `deploy --json` returns. */
export type DeployReleaseResult = DeployResult & {
  /** Canary and blue-green: the rollouts (absent when nothing was claimed: policy errors, a dry run, a failed apply). */
  release?: ReleaseResult
  /** Rolling: the gate override, when --force-release was given. */
  forced?: ForcedRelease
}

export interface ReleaseOutcome {
  result: DeployReleaseResult
  /** How the command ends: the deploy's outcome, else the worst rollout's (an abort, a pause for a person, …). */
  exit: ExitCodeName
}

export async function release(options: ReleaseOptions, ctx: RunContext): Promise<ReleaseOutcome> {
  return options.strategy ? progressiveRelease(options, options.strategy, ctx) : rollingRelease(options, ctx)
}

// ---------------------------------------------------------------- rolling

async function rollingRelease(options: ReleaseOptions, ctx: RunContext): Promise<ReleaseOutcome> {
  const {env} = options
  const kubes = clusterClients(env)
  // A rolling deploy would change a Deployment under a canary or blue-green rollout: refused before anything is read for the deploy.
  if (!options.dryRun) await assertNoRolloutInProgress(kubes.of({}), env.namespace, options.services ?? [])
  const timer = new DeployTimer()
  const rendered = await timer.time('render', () => renderStep({...options, discoverScaling: true}))
  const gated = await gateRolling(rendered, options, kubes, ctx)
  const {plan} = gated
  const checked = await checkStep(plan, options, ctx, {
    strategy: 'rolling',
    notes: rollingNotes(plan, options.project.config),
    timer,
  })
  const done = (result: DeployResult): ReleaseOutcome => {
    const final = timer.finish(result)
    return {result: gated.forced ? {...final, forced: gated.forced} : final, exit: final.outcome}
  }
  if (checked.done) return done(checked.result)
  const {result} = checked
  const applied = await timer.time('apply', async () => {
    const a = await applyStep(plan, options, ctx)
    if (gated.forced && a.failed.length === 0) await recordForcedRolling(plan, gated, kubes, ctx)
    return a
  })
  if (!recordApply(result, applied) || options.wait === false) return done(result)
  recordRollouts(result, await timer.time('wait', () => waitStep(plan, options, ctx)))
  return done(result)
}

interface GatedPlan {
  plan: DeployPlan
  /** The gate override, when --force-release was given and a gate was checked. */
  forced?: ForcedRelease
  /** Revenue-critical services whose pods this deploy changes: the ones the gates were checked for. */
  services: string[]
  /** What each changing Deployment ran before this deploy (for the history entry of a forced one). */
  before: Map<string, Deployment | undefined>
}

/**
 * The release gates of a rolling deploy: checked for the revenue-critical services whose pod
 * template would change. Refused (REFUSED, nothing applied) unless forced; a forced release marks
 * those Deployments with its reason. A dry run warns what the real deploy would be refused for.
 */
async function gateRolling(
  plan: DeployPlan,
  options: ReleaseOptions,
  kubes: ClusterClients,
  ctx: RunContext,
): Promise<GatedPlan> {
  const config = options.project.config
  const changing: {service: string; object: KubeObject}[] = []
  const before = new Map<string, Deployment | undefined>()
  for (const t of plan.targets) {
    for (const o of t.objects.filter((x) => x.kind === 'Deployment')) {
      const service = o.metadata.labels?.['retailops.dev/service'] ?? o.metadata.name
      if (config.services[service]?.tier !== 'revenue-critical') continue
      const live = await kubes.of(t).get<Deployment>(PATHS.deployments(o.metadata.namespace!), o.metadata.name)
      if (!templateChanges(o, live)) continue
      changing.push({service, object: o})
      before.set(`${o.metadata.namespace}/${o.metadata.name}`, live)
    }
  }
  const services = [...new Set(changing.map((c) => c.service))]
  const checks = await changeGates(config, services, {errorBudget: options.errorBudget})
  if (options.dryRun && !options.force) {
    // A dry run changes nothing: say what the real deploy would be refused for.
    for (const c of checks.filter((x) => !x.ok))
      ctx.out.warn(
        `${c.service}: this deploy would be refused (${c.detail}); --force-release --reason overrides it (recorded).`,
      )
    return {plan, services, before}
  }
  const forced = enforceGates(checks, options.force, {
    out: ctx.out,
    namespace: changing[0]?.object.metadata.namespace,
    versions: Object.fromEntries(
      changing.map((c) => [c.service, c.object.metadata.labels?.['app.kubernetes.io/version']]),
    ),
  })
  if (!forced) return {plan, services, before}
  const marked = new Set(changing.map((c) => c.object))
  const mark = (o: KubeObject): KubeObject =>
    marked.has(o)
      ? {
          ...o,
          metadata: {
            ...o.metadata,
            annotations: {
              ...o.metadata.annotations,
              [FORCED_ANNOTATION]: forced.reason,
              [FORCED_DETAIL_ANNOTATION]: JSON.stringify(forced),
            },
          },
        }
      : o
  return {
    plan: {...plan, targets: plan.targets.map((t) => ({...t, objects: t.objects.map(mark)}))},
    forced,
    services,
    before,
  }
}

/** A forced rolling deploy, applied: recorded in the rollout history of each service it forced (`rollout undo` goes back from there). */
async function recordForcedRolling(
  plan: DeployPlan,
  gated: GatedPlan,
  kubes: ClusterClients,
  ctx: RunContext,
): Promise<void> {
  const forced = gated.forced!
  const now = new Date().toISOString()
  for (const t of plan.targets) {
    const store = new StateStore(kubes.of(t))
    for (const o of t.objects.filter((x) => x.kind === 'Deployment' && x.metadata.annotations?.[FORCED_ANNOTATION])) {
      const service = o.metadata.labels?.['retailops.dev/service'] ?? o.metadata.name
      if (!gated.services.includes(service)) continue
      const rendered = o as unknown as Deployment
      const revision = revisionOf(rendered)
      const previous = gated.before.get(`${o.metadata.namespace}/${o.metadata.name}`)
      await store.appendHistory(o.metadata.namespace!, service, {
        id: `${service}-rolling-${Date.now().toString(36)}`,
        strategy: 'rolling',
        phase: 'Healthy',
        startedAt: now,
        finishedAt: now,
        stable: previous ? revisionOf(previous) : {version: 'none', images: [], digests: []},
        canary: revision,
        message: `rolling deploy of ${revision.version} despite closed release gates: ${forced.overridden.join('; ') || 'none closed'}`,
        reason: forced.reason,
        forced,
        // So `rollout undo` can go back from the hotfix to what ran before it.
        canaryTemplate: rendered.spec?.template,
        stableTemplate: previous?.spec?.template,
      })
      ctx.out.warn(
        `${service}: released despite closed gates (--force-release): ${forced.reason}; recorded on Deployment ${o.metadata.name} and in \`retailops rollout history ${service}\`.`,
      )
    }
  }
}

/** One client per cluster a plan's targets name (a tenant may live in another cluster than the environment). */
interface ClusterClients {
  of(target: {context?: string; kubeconfig?: string}): KubeObjects
}

function clusterClients(env: ResolvedEnvironment): ClusterClients {
  const kube = new KubeObjects({context: env.context, kubeconfig: env.kubeconfig})
  const clusters = new Map<string, KubeObjects>()
  return {
    of(t) {
      if ((t.context ?? env.context) === env.context && (t.kubeconfig ?? env.kubeconfig) === env.kubeconfig) return kube
      const key = `${t.kubeconfig ?? ''}|${t.context ?? ''}`
      if (!clusters.has(key)) clusters.set(key, new KubeObjects({context: t.context, kubeconfig: t.kubeconfig}))
      return clusters.get(key)!
    },
  }
}

// ---------------------------------------------------------------- canary and blue-green

async function progressiveRelease(
  options: ReleaseOptions,
  strategy: Strategy,
  ctx: RunContext,
): Promise<ReleaseOutcome> {
  const {env} = options
  const kube = new KubeObjects({context: env.context, kubeconfig: env.kubeconfig})
  // One store from the claim to the end: its resourceVersions are the preconditions of every write.
  const store = new StateStore(kube)
  const prometheusUrl = options.prometheusUrl ?? env.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL
  const timer = new DeployTimer()
  const plan = await timer.time('render', () => renderStep({...options, discoverScaling: true}))
  const planned = await planRelease(plan, {...options, strategy, prometheusUrl}, kube, ctx)
  const checked = await checkStep(plan, options, ctx, {strategy, timer})
  if (checked.done) return {result: timer.finish(checked.result), exit: checked.result.outcome}
  const {result} = checked
  // The rollouts claimed are visible to `rollout status` from any machine from here on.
  const {applied, claimed, job} = await timer.time('apply', () =>
    applyHolding(plan, planned, kube, store, options, ctx),
  )
  const done = (states: RolloutState[], detached?: DetachedJob): ReleaseOutcome => {
    const final: DeployReleaseResult = {
      ...timer.finish(result),
      release: applied.failed.length === 0 ? releaseResult(strategy, planned, states, detached) : undefined,
    }
    return {result: final, exit: final.outcome !== 'OK' ? final.outcome : states.length > 0 ? groupExit(states) : 'OK'}
  }
  if (options.wait === false) {
    // --no-wait: the claim's leases are given up, so `rollout resume` can drive at once from anywhere.
    for (const state of claimed.filter((s) => ownsLease(s))) {
      state.lease = undefined
      await store.write(state)
    }
  }
  if (!recordApply(result, applied) || options.wait === false) return done(claimed)
  const {waited, driven, detached} = await timer.time('wait', async () => {
    // Services not released (first deploy, images unchanged) roll out as in a rolling deploy; the others are driven.
    const notReleased = [...planned.initial, ...planned.unchanged]
    const direct = {
      ...plan,
      targets: plan.targets.map((t) => ({
        ...t,
        objects: t.objects.filter((o) => o.kind !== 'Deployment' || notReleased.includes(o.metadata.name)),
      })),
    }
    const waited = notReleased.length > 0 ? await waitStep(direct, options, ctx) : []
    if (claimed.length === 0) return {waited, driven: claimed}
    const provider = prometheusUrl ? prometheusProvider(prometheusUrl) : undefined
    const deps: DriveDeps = {kube, store, provider, observedRps: observedRpsFrom(prometheusUrl, options.project.config)}
    if (job) return {waited, ...(await handToJob(job, claimed, deps, store, ctx))}
    const {states} = await drive(claimed, deps, ctx, {timeoutMs: options.timeoutMs})
    return {waited, driven: states}
  })
  recordRollouts(result, waited)
  return done(driven, detached)
}

/**
 * --detach: drives the setup here (canary created at 0 %, route backed up), hands the lease to
 * the Job in the same write, then lets the Job run. A setup that ended the rollout (aborted)
 * needs no Job; a Job that cannot be started gets the lease back and is removed.
 */
async function handToJob(
  prepared: PreparedJob,
  claimed: RolloutState[],
  deps: DriveDeps,
  store: StateStore,
  ctx: RunContext,
): Promise<{driven: RolloutState[]; detached?: DetachedJob}> {
  const handOver = prepared.lease()
  const settingUp = (s: RolloutState) => s.stage === undefined || s.stage === 'setup'
  let outcome
  try {
    outcome = await drive(claimed, deps, ctx, {until: (s) => !settingUp(s), handOver})
  } catch (error) {
    await prepared.remove()
    throw error
  }
  const states = outcome.states
  if (!states.every((s) => !isTerminal(s.phase) && !settingUp(s) && s.lease?.id === handOver.id)) {
    await prepared.remove()
    return {driven: states}
  }
  try {
    await prepared.start()
  } catch (error) {
    for (const s of states) {
      s.lease = undefined
      await store.write(s).catch(() => undefined)
    }
    await prepared.remove()
    throw new DetachFailed(
      toRetailOpsError(error),
      `${prepared.namespace}/${prepared.name}`,
      states.map((s) => s.service),
    )
  }
  const {args, lease: _l, start: _s, remove: _r, ...job} = prepared
  ctx.out.info(
    `Detached: Job ${prepared.namespace}/${prepared.name} drives the rollout of ${states.map((s) => s.service).join(', ')} from here; follow it with \`${prepared.follow}\`.`,
  )
  return {driven: states, detached: {...job, args}}
}

function releaseResult(
  strategy: Strategy,
  planned: PlannedRelease,
  states: RolloutState[],
  detached?: DetachedJob,
): ReleaseResult {
  return {
    strategy,
    rollouts: states.map((s) => ({
      service: s.service,
      namespace: s.namespace,
      id: s.id,
      phase: s.phase,
      message: s.message,
      reason: s.reason,
      stable: s.stable.version,
      canary: s.canary.version,
      weight: s.weight,
      analysis: s.analysisRuns.map(analysisVerdict),
    })),
    initial: planned.initial,
    unchanged: planned.unchanged,
    forced: planned.forced,
    ...(detached ? {detached} : {}),
  }
}

interface PlannedRelease {
  states: RolloutState[]
  initial: string[]
  unchanged: string[]
  forced?: ForcedRelease
}

/** Checks (reads only) before policy: one cluster, gates, stable versions, routes, analysis conditions. */
async function planRelease(
  plan: DeployPlan,
  options: ReleaseOptions & {strategy: Strategy},
  kube: KubeObjects,
  ctx: RunContext,
): Promise<PlannedRelease> {
  const foreign = plan.targets.filter((t) => t.context !== options.env.context && t.context !== undefined)
  if (foreign.length > 0) {
    throw new UsageError(
      `--${options.strategy} releases into the environment's cluster only; ${foreign.map((t) => t.id).join(', ')} ${foreign.length === 1 ? 'is' : 'are'} in another cluster.`,
      {
        nextSteps: ['Deploy those tenants with a rolling deploy (--tenant NAME), or one cluster at a time.'],
      },
    )
  }
  const deployments = plan.targets.flatMap((t) =>
    t.objects.filter((o) => o.kind === 'Deployment').map((d) => ({d, objects: t.objects})),
  )
  return planRollouts(
    deployments.map(({d, objects}) => {
      const service = d.metadata.labels?.['retailops.dev/service'] ?? d.metadata.name
      return {
        service,
        namespace: d.metadata.namespace!,
        desired: d,
        autoscaler: renderedAutoscaler(objects, d.metadata.name, options.project.config.services[service], options),
      }
    }),
    options,
    {kube, config: options.project.config, envRouter: options.env.router, out: ctx.out},
  )
}

/**
 * The autoscaler the render made for a Deployment (an HPA or a KEDA ScaledObject targeting it; null:
 * none), and what decided its kind: --scaling-provider, the service's scaling.provider (a CPU-only
 * service always gets an HPA), or `auto` as the cluster answered when this release began. Stored in
 * the rollout's spec, so whoever drives it later acts on the same one.
 */
export function renderedAutoscaler(
  objects: KubeObject[],
  deployment: string,
  service: ServiceConfig | undefined,
  options: {scalingProvider?: ScalingProvider},
): StoredAutoscaler | null {
  const found = objects.find(
    (o) =>
      (o.kind === 'HorizontalPodAutoscaler' || o.kind === 'ScaledObject') &&
      (o.spec as {scaleTargetRef?: {name?: string}} | undefined)?.scaleTargetRef?.name === deployment,
  )
  if (!found) return null
  const decidedBy =
    options.scalingProvider && options.scalingProvider !== 'auto'
      ? 'flag'
      : !service || service.scaling.metrics.length === 0 || service.scaling.provider !== 'auto'
        ? 'config'
        : 'cluster'
  return {kind: found.kind as StoredAutoscaler['kind'], name: found.metadata.name, decidedBy}
}

/**
 * Everything is applied as usual, except that released Deployments keep their running template.
 * Claimed before anything is applied: of two CLIs releasing the same service, the one whose
 * compare-and-swap lost stops here (exit 13) with nothing changed. A failed apply gives the claims
 * back. --detach: the Job (suspended) and its permissions come first, so a refusal changes nothing.
 */
async function applyHolding(
  plan: DeployPlan,
  {states: planned, forced}: PlannedRelease,
  kube: KubeObjects,
  store: StateStore,
  options: ReleaseOptions,
  ctx: RunContext,
): Promise<{applied: ApplyStepResult; claimed: RolloutState[]; job?: PreparedJob}> {
  const held = new Map(planned.map((s) => [`${s.namespace}/${s.service}`, s]))
  const live = new Map<string, Deployment>()
  for (const s of planned) {
    const d = await kube.get<Deployment>(PATHS.deployments(s.namespace), s.service)
    if (d) live.set(`${s.namespace}/${s.service}`, d)
  }
  const hold = (o: KubeObject): KubeObject => {
    const state = held.get(`${o.metadata.namespace}/${o.metadata.name}`)
    const current = live.get(`${o.metadata.namespace}/${o.metadata.name}`)
    if (o.kind !== 'Deployment' || !state || !current) return o
    const spec = {
      ...(o.spec as Record<string, unknown>),
      template: current.spec?.template,
      replicas: current.spec?.replicas,
    }
    const annotations = {...o.metadata.annotations, ...(forced ? {[FORCED_ANNOTATION]: forced.reason} : {})}
    return {
      ...o,
      metadata: {
        ...o.metadata,
        annotations,
        labels: {
          ...o.metadata.labels,
          'app.kubernetes.io/version': current.metadata.labels?.['app.kubernetes.io/version'] ?? '',
        },
      },
      spec,
    }
  }
  const heldPlan: DeployPlan = {...plan, targets: plan.targets.map((t) => ({...t, objects: t.objects.map(hold)}))}
  const job =
    options.detach && planned.length > 0
      ? await prepareDetachedJob(
          kube,
          planned,
          options.detach,
          {timeoutMs: options.timeoutMs ?? defaultWaitTimeout(plan)},
          ctx,
        )
      : undefined
  const {unclaim} = await claimRollouts(planned, store).catch(async (error) => {
    await job?.remove()
    throw error
  })
  const applied = await applyStep(heldPlan, options, ctx).catch(async (error) => {
    await unclaim()
    await job?.remove()
    throw error
  })
  if (applied.failed.length > 0) {
    await unclaim()
    await job?.remove()
    return {applied, claimed: []}
  }
  return {applied, claimed: planned, job}
}
