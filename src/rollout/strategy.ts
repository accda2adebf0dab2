/**
 * `deploy --canary` and `deploy --blue-green`: deploy strategies for the deploy engine. The plan
 * is rendered and policy-checked as for a rolling deploy; then every Deployment that already runs
 * a stable version keeps its pod template for now (everything else is applied and pruned as
 * usual), and the rollout engine releases the new template through canary steps or colours.
 * Services deployed for the first time have nothing to compare with and roll out directly.
 */
import {applyStep, waitStep, type ApplyStepOptions, type ApplyStepResult, type DeployPlan, type DeployStrategy, type WaitStepOptions} from '../deploy/engine.js'
import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {UsageError} from '../errors/index.js'
import type {KubeObject} from '../kubernetes/resources.js'
import type {WaitResult} from '../kubernetes/rollout-status.js'
import type {RunContext} from '../ui/context.js'
import {prometheusProvider} from './analysis.js'
import {FORCED_ANNOTATION} from './engine.js'
import {PATHS, RolloutKube, type Obj} from './kube.js'
import {observedRpsFrom, planRollouts, startRollouts, type RolloutOptions} from './start.js'
import type {ForcedRelease, RolloutState} from './types.js'

export interface ReleaseResult {
  strategy: 'canary' | 'blue-green'
  /** Services released by the rollout engine, with their final (or waiting) state. */
  rollouts: {service: string; namespace: string; phase: string; message: string; reason?: string; stable: string; canary: string; weight: number; id: string}[]
  /** Services without a running version: rolled out directly. */
  initial: string[]
  forced?: ForcedRelease
}

export interface ReleaseStrategy extends DeployStrategy {
  /** Filled in as the deploy runs: the --json `release` field of deploy. */
  release?: ReleaseResult
  states: RolloutState[]
}

export function releaseStrategy(options: RolloutOptions & {project: LoadedConfig; env: ResolvedEnvironment}): ReleaseStrategy {
  const kube = new RolloutKube({context: options.env.context, kubeconfig: options.env.kubeconfig})
  const prometheusUrl = options.prometheusUrl ?? options.env.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL
  let planned: RolloutState[] = []
  let initial: string[] = []
  let forced: ForcedRelease | undefined
  const strategy: ReleaseStrategy = {
    name: options.strategy,
    states: [],
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
        deployments.map((d) => ({service: d.metadata.labels?.['retailops.dev/service'] ?? d.metadata.name, namespace: d.metadata.namespace!, desired: d as unknown as Obj})),
        {...options, prometheusUrl},
        {kube, config: options.project.config, envRouter: options.env.router},
      )
      planned = result.states
      initial = result.initial
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
      const applied = await applyStep(heldPlan, applyOptions, ctx)
      if (applied.failed.length > 0 || applyOptions.dryRun) return applied
      // The rollouts are stored now (visible to `rollout status` from any machine) and driven in wait().
      strategy.states = await startRollouts(planned, {...options, noWait: true}, {kube}, ctx)
      strategy.release = summarize()
      return applied
    },
    /** Runs the canary or blue-green releases; first-time services are waited for as usual. */
    async wait(plan: DeployPlan, _applied: ApplyStepResult, waitOptions: WaitStepOptions, ctx: RunContext): Promise<WaitResult[]> {
      const direct = plan.targets.map((t) => ({...t, objects: t.objects.filter((o) => o.kind !== 'Deployment' || initial.includes(o.metadata.name))}))
      const results = initial.length > 0 ? await waitStep({...plan, targets: direct}, waitOptions, ctx) : []
      if (strategy.states.length > 0) {
        const provider = prometheusUrl ? prometheusProvider(prometheusUrl) : undefined
        const {drive} = await import('./engine.js')
        const {StateStore} = await import('./store.js')
        const outcome = await drive(strategy.states, {kube, store: new StateStore(kube), provider, observedRps: observedRpsFrom(prometheusUrl, options.project.config)}, ctx, {timeoutMs: options.timeoutMs ?? waitOptions.timeoutMs})
        strategy.states = outcome.states
      }
      strategy.release = summarize()
      return results
    },
  }
  const summarize = (): ReleaseResult => ({
    strategy: options.strategy,
    rollouts: strategy.states.map((s) => ({service: s.service, namespace: s.namespace, id: s.id, phase: s.phase, message: s.message, reason: s.reason, stable: s.stable.version, canary: s.canary.version, weight: s.weight})),
    initial,
    forced,
  })
  return strategy
}
