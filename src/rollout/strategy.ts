/**
 * `deploy --canary` and `deploy --blue-green`: deploy strategies for the deploy engine. The plan
 * is rendered and policy-checked as for a rolling deploy; then every Deployment that already runs
 * a stable version keeps its pod template for now (everything else is applied and pruned as
 * usual), and the rollout engine releases the new template through canary steps or colours.
 * Services deployed for the first time have nothing to compare with and roll out directly.
 */
import {applyStep, defaultWaitTimeout, waitStep, type ApplyStepOptions, type ApplyStepResult, type DeployPlan, type DeployStrategy, type WaitStepOptions} from '../deploy/engine.js'
import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {UsageError} from '../errors/index.js'
import type {KubeObject} from '../kubernetes/resources.js'
import type {WaitResult} from '../kubernetes/rollout-status.js'
import type {RunContext} from '../ui/context.js'
import {prometheusProvider} from './analysis.js'
import {KubeObjects, type Obj} from '../kubernetes/objects.js'
import {PATHS} from './kube.js'
import {claimRollouts, observedRpsFrom, planRollouts, revisionOf, templateChanges, type RolloutOptions} from './start.js'
import {ownsLease, StateStore} from './store.js'
import {changeGates, enforceGates, FORCED_ANNOTATION, FORCED_DETAIL_ANNOTATION, type ErrorBudgetSource} from './gates.js'
import {isTerminal, type ForcedRelease, type RolloutState} from './types.js'
import {DetachFailed, prepareDetachedJob, type DetachedJob, type DetachSpec, type PreparedJob} from './detach.js'
import type {DriveDeps} from './engine.js'
import {toRetailOpsError} from '../errors/index.js'

export interface ReleaseResult {
  strategy: 'canary' | 'blue-green'
  /** Services released by the rollout engine, with their final (or waiting) state. */
  rollouts: {service: string; namespace: string; phase: string; message: string; reason?: string; stable: string; canary: string; weight: number; id: string}[]
  /** Services without a running version: rolled out directly. */
  initial: string[]
  /** Services whose images are the ones running: nothing released (their other objects applied as usual). */
  unchanged: string[]
  forced?: ForcedRelease
  /** --detach: the Job that drives the release in the cluster from here. */
  detached?: DetachedJob
}

export interface ReleaseStrategy extends DeployStrategy {
  /** Filled in as the deploy runs: the --json `release` field of deploy. */
  release?: ReleaseResult
  states: RolloutState[]
  /** `--no-wait`: gives up the leases the claim took, so `rollout resume` can drive at once from anywhere. */
  releaseLeases(): Promise<void>
}

export function releaseStrategy(options: RolloutOptions & {project: LoadedConfig; env: ResolvedEnvironment; detach?: DetachSpec}): ReleaseStrategy {
  const kube = new KubeObjects({context: options.env.context, kubeconfig: options.env.kubeconfig})
  // One store from the claim to the end: its resourceVersions are the preconditions of every write.
  const store = new StateStore(kube)
  const prometheusUrl = options.prometheusUrl ?? options.env.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL
  let planned: RolloutState[] = []
  let initial: string[] = []
  let unchanged: string[] = []
  let forced: ForcedRelease | undefined
  let job: PreparedJob | undefined
  let detached: DetachedJob | undefined
  const strategy: ReleaseStrategy = {
    name: options.strategy,
    states: [],
    async releaseLeases() {
      for (const state of strategy.states.filter((s) => ownsLease(s))) {
        state.lease = undefined
        await store.write(state)
      }
    },
    /** Checks (reads only) before policy: gates, stable versions, routes, analysis conditions. */
    async transform(plan: DeployPlan): Promise<DeployPlan> {
      const foreign = plan.targets.filter((t) => t.context !== options.env.context && t.context !== undefined)
      if (foreign.length > 0) {
        throw new UsageError(`--${options.strategy} releases into the environment's cluster only; ${foreign.map((t) => t.id).join(', ')} ${foreign.length === 1 ? 'is' : 'are'} in another cluster.`, {
          nextSteps: ['Deploy those tenants with a rolling deploy (--tenant NAME), or one cluster at a time.'],
        })
      }
      const deployments = plan.targets.flatMap((t) => t.objects.filter((o) => o.kind === 'Deployment'))
      const result = await planRollouts(
        deployments.map((d) => ({service: d.metadata.labels?.['retailops.dev/service'] ?? d.metadata.name, namespace: d.metadata.namespace!, desired: d})),
        {...options, prometheusUrl},
        {kube, config: options.project.config, envRouter: options.env.router},
      )
      planned = result.states
      initial = result.initial
      unchanged = result.unchanged
      forced = result.forced
      return plan
    },
    /** Everything is applied as usual, except that released Deployments keep their running template. */
    async apply(plan: DeployPlan, applyOptions: ApplyStepOptions, ctx: RunContext): Promise<ApplyStepResult> {
      const held = new Map(planned.map((s) => [`${s.namespace}/${s.service}`, s]))
      const live = new Map<string, Obj>()
      for (const s of planned) {
        const d = await kube.get(PATHS.deployments(s.namespace), s.service)
        if (d) live.set(`${s.namespace}/${s.service}`, d)
      }
      const hold = (o: KubeObject): KubeObject => {
        const state = held.get(`${o.metadata.namespace}/${o.metadata.name}`)
        const current = live.get(`${o.metadata.namespace}/${o.metadata.name}`)
        if (o.kind !== 'Deployment' || !state || !current) return o
        const spec = {...(o.spec as Record<string, unknown>), template: current.spec.template, replicas: current.spec.replicas}
        const annotations = {...o.metadata.annotations, ...(forced ? {[FORCED_ANNOTATION]: forced.reason} : {})}
        return {...o, metadata: {...o.metadata, annotations, labels: {...o.metadata.labels, 'app.kubernetes.io/version': current.metadata.labels?.['app.kubernetes.io/version'] ?? ''}}, spec}
      }
      const heldPlan: DeployPlan = {...plan, targets: plan.targets.map((t) => ({...t, objects: t.objects.map(hold)}))}
      if (applyOptions.dryRun) return applyStep(heldPlan, applyOptions, ctx)
      // Claimed before anything is applied: of two CLIs releasing the same service, the one whose
      // compare-and-swap lost stops here (exit 13) with nothing changed. Visible to `rollout status`
      // from any machine from now on; driven in wait().
      // --detach: the Job (suspended) and its permissions first, so a refusal changes nothing.
      if (options.detach && planned.length > 0) job = await prepareDetachedJob(kube, planned, options.detach, {timeoutMs: options.timeoutMs ?? defaultWaitTimeout(plan)}, ctx)
      const claimed = await claimRollouts(planned, store).catch(async (error) => {
        await job?.remove()
        throw error
      })
      const applied = await applyStep(heldPlan, applyOptions, ctx).catch(async (error) => {
        await claimed.unclaim()
        await job?.remove()
        throw error
      })
      if (applied.failed.length > 0) {
        await claimed.unclaim()
        await job?.remove()
        return applied
      }
      strategy.states = planned
      strategy.release = summarize()
      return applied
    },
    /** Runs the canary or blue-green releases; first-time services are waited for as usual. */
    async wait(plan: DeployPlan, _applied: ApplyStepResult, waitOptions: WaitStepOptions, ctx: RunContext): Promise<WaitResult[]> {
      const notReleased = [...initial, ...unchanged]
      const direct = plan.targets.map((t) => ({...t, objects: t.objects.filter((o) => o.kind !== 'Deployment' || notReleased.includes(o.metadata.name))}))
      const results = notReleased.length > 0 ? await waitStep({...plan, targets: direct}, waitOptions, ctx) : []
      if (strategy.states.length > 0) {
        const provider = prometheusUrl ? prometheusProvider(prometheusUrl) : undefined
        const {drive} = await import('./engine.js')
        const deps = {kube, store, provider, observedRps: observedRpsFrom(prometheusUrl, options.project.config)}
        if (job) {
          strategy.states = await detach(job, deps, drive, ctx)
        } else {
          const outcome = await drive(strategy.states, deps, ctx, {timeoutMs: options.timeoutMs ?? waitOptions.timeoutMs})
          strategy.states = outcome.states
        }
      }
      strategy.release = summarize()
      return results
    },
  }
  /**
   * --detach: drives the setup here (canary created at 0 %, route backed up), hands the lease to
   * the Job in the same write, then lets the Job run. A setup that ended the rollout (aborted)
   * needs no Job; a Job that cannot be started gets the lease back and is removed.
   */
  const detach = async (prepared: PreparedJob, deps: DriveDeps, drive: typeof import('./engine.js').drive, ctx: RunContext): Promise<RolloutState[]> => {
    const handOver = prepared.lease()
    const settingUp = (s: RolloutState) => s.stage === undefined || s.stage === 'setup'
    let outcome
    try {
      outcome = await drive(strategy.states, deps, ctx, {until: (s) => !settingUp(s), handOver})
    } catch (error) {
      await prepared.remove()
      throw error
    }
    const states = outcome.states
    if (!states.every((s) => !isTerminal(s.phase) && !settingUp(s) && s.lease?.id === handOver.id)) {
      await prepared.remove()
      return states
    }
    try {
      await prepared.start()
    } catch (error) {
      for (const s of states) {
        s.lease = undefined
        await store.write(s).catch(() => undefined)
      }
      await prepared.remove()
      throw new DetachFailed(toRetailOpsError(error), `${prepared.namespace}/${prepared.name}`, states.map((s) => s.service))
    }
    const {args, lease: _l, start: _s, remove: _r, ...job} = prepared
    detached = {...job, args}
    ctx.out.info(`Detached: Job ${prepared.namespace}/${prepared.name} drives the rollout of ${states.map((s) => s.service).join(', ')} from here; follow it with \`${prepared.follow}\`.`)
    return states
  }
  const summarize = (): ReleaseResult => ({
    strategy: options.strategy,
    rollouts: strategy.states.map((s) => ({service: s.service, namespace: s.namespace, id: s.id, phase: s.phase, message: s.message, reason: s.reason, stable: s.stable.version, canary: s.canary.version, weight: s.weight})),
    initial,
    unchanged,
    forced,
    ...(detached ? {detached} : {}),
  })
  return strategy
}


export interface GatedRolling extends DeployStrategy {
  /** The gate override, when --force-release was given (also in the deploy's --json). */
  forced?: ForcedRelease
  /** Revenue-critical services whose pods this deploy changes: the ones the gates were checked for. */
  gated: string[]
}

/**
 * A rolling deploy with the release gates: a revenue-critical service whose pod template changes
 * is refused inside a freeze window or with an exhausted error budget (REFUSED, nothing applied),
 * unless forced with a reason, which is recorded on its Deployment and in its rollout history.
 */
export function gatedRollingStrategy(options: {project: LoadedConfig; env: ResolvedEnvironment; force?: {reason?: string}; errorBudget?: ErrorBudgetSource; dryRun?: boolean}): GatedRolling {
  const kube = new KubeObjects({context: options.env.context, kubeconfig: options.env.kubeconfig})
  const clusters = new Map<string, KubeObjects>()
  const kubeFor = (t: {context?: string; kubeconfig?: string}): KubeObjects => {
    if ((t.context ?? options.env.context) === options.env.context && (t.kubeconfig ?? options.env.kubeconfig) === options.env.kubeconfig) return kube
    const key = `${t.kubeconfig ?? ''}|${t.context ?? ''}`
    if (!clusters.has(key)) clusters.set(key, new KubeObjects({context: t.context, kubeconfig: t.kubeconfig}))
    return clusters.get(key)!
  }
  /** What each changing Deployment ran before this deploy (for the history entry of a forced one). */
  const before = new Map<string, Obj | undefined>()
  const strategy: GatedRolling = {
    name: 'rolling',
    gated: [],
    async transform(plan: DeployPlan, ctx: RunContext): Promise<DeployPlan> {
      const config = options.project.config
      const changing: {service: string; object: KubeObject}[] = []
      for (const t of plan.targets) {
        for (const o of t.objects.filter((x) => x.kind === 'Deployment')) {
          const service = o.metadata.labels?.['retailops.dev/service'] ?? o.metadata.name
          if (config.services[service]?.tier !== 'revenue-critical') continue
          const live = await kubeFor(t).get(PATHS.deployments(o.metadata.namespace!), o.metadata.name)
          if (!templateChanges(o, live)) continue
          changing.push({service, object: o})
          before.set(`${o.metadata.namespace}/${o.metadata.name}`, live)
        }
      }
      strategy.gated = [...new Set(changing.map((c) => c.service))]
      const checks = await changeGates(config, strategy.gated, {errorBudget: options.errorBudget})
      if (options.dryRun && !options.force) {
        // A dry run changes nothing: say what the real deploy would be refused for.
        for (const c of checks.filter((x) => !x.ok)) ctx.out.warn(`${c.service}: this deploy would be refused (${c.detail}); --force-release --reason overrides it (recorded).`)
        return plan
      }
      const forced = enforceGates(checks, options.force)
      strategy.forced = forced
      if (!forced) return plan
      const marked = new Set(changing.map((c) => c.object))
      const mark = (o: KubeObject): KubeObject =>
        marked.has(o) ? {...o, metadata: {...o.metadata, annotations: {...o.metadata.annotations, [FORCED_ANNOTATION]: forced.reason, [FORCED_DETAIL_ANNOTATION]: JSON.stringify(forced)}}} : o
      return {...plan, targets: plan.targets.map((t) => ({...t, objects: t.objects.map(mark)}))}
    },
    async apply(plan: DeployPlan, applyOptions: ApplyStepOptions, ctx: RunContext): Promise<ApplyStepResult> {
      const applied = await applyStep(plan, applyOptions, ctx)
      if (!strategy.forced || applyOptions.dryRun || applied.failed.length > 0) return applied
      const now = new Date().toISOString()
      for (const t of plan.targets) {
        const store = new StateStore(kubeFor(t))
        for (const o of t.objects.filter((x) => x.kind === 'Deployment' && x.metadata.annotations?.[FORCED_ANNOTATION])) {
          const service = o.metadata.labels?.['retailops.dev/service'] ?? o.metadata.name
          if (!strategy.gated.includes(service)) continue
          const rendered = o as unknown as Obj
          const revision = revisionOf(rendered)
          const previous = before.get(`${o.metadata.namespace}/${o.metadata.name}`)
          await store.appendHistory(o.metadata.namespace!, service, {
            id: `${service}-rolling-${Date.now().toString(36)}`,
            strategy: 'rolling',
            phase: 'Healthy',
            startedAt: now,
            finishedAt: now,
            stable: previous ? revisionOf(previous) : {version: 'none', images: [], digests: []},
            canary: revision,
            message: `rolling deploy of ${revision.version} despite closed release gates: ${strategy.forced.overridden.join('; ') || 'none closed'}`,
            reason: strategy.forced.reason,
            forced: strategy.forced,
            // So `rollout undo` can go back from the hotfix to what ran before it.
            canaryTemplate: rendered.spec?.template,
            stableTemplate: previous?.spec?.template,
          })
          ctx.out.warn(`${service}: released despite closed gates (--force-release): ${strategy.forced.reason}; recorded on Deployment ${o.metadata.name} and in \`retailops rollout history ${service}\`.`)
        }
      }
      return applied
    },
  }
  return strategy
}
