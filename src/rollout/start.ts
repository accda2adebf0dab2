/**
 * Starting rollouts: everything is checked (stable Deployment, no rollout in progress, route,
 * analysis conditions, release gates) before the first write; then each service's state is
 * stored and the group is driven.
 */
import {formatDuration, parseDuration} from '../config/duration.js'
import type {RetailOpsConfig, ServiceConfig} from '../config/schema.js'
import {RetailOpsError, UsageError} from '../errors/index.js'
import {hasEmbeddedSecret, isSecretName} from '../ui/secrets.js'
import type {RunContext} from '../ui/context.js'
import {buildAnalysisSpec, prometheusProvider} from './analysis.js'
import {assertNoActiveRollout, drive, type DriveDeps} from './engine.js'
import {enforceGates, releaseGates, type ErrorBudgetSource} from './gates.js'
import {currentReplicaSet, deploymentProgress, PATHS, type Obj, type RolloutKube} from './kube.js'
import {DEFAULT_CANARY_STEPS, formatSteps} from './steps.js'
import {StateStore} from './store.js'
import {makeRouter} from './traffic.js'
import type {AnalysisSpec, ForcedRelease, Revision, RolloutSpec, RolloutState, RouterKind, Step, Strategy} from './types.js'

export interface RolloutOptions {
  strategy: Strategy
  steps?: Step[]
  router?: RouterKind
  analysis?: Partial<Pick<AnalysisSpec, 'intervalMs' | 'count' | 'missingData'>>
  progressDeadlineMs?: number
  /** Stop driving after this long: the rollout times out (traffic back on stable). */
  timeoutMs?: number
  force?: {reason?: string}
  errorBudget?: ErrorBudgetSource
  prometheusUrl?: string
  /** Return once the rollouts are created, without driving them. */
  noWait?: boolean
}

export interface RolloutTarget {
  service: string
  namespace: string
  /** The Deployment deploy rendered for the new version. */
  desired: Obj
}

export interface StartResult {
  /** Services without a stable Deployment yet: nothing to compare with, so applied directly. */
  initial: string[]
  states: RolloutState[]
  forced?: ForcedRelease
}

/** The version label value of a revision: app.kubernetes.io/version, else the image tag. */
export function revisionOf(deployment: Obj): Revision {
  const template = deployment.spec?.template ?? {}
  const images: string[] = (template.spec?.containers ?? []).map((c: {image: string}) => c.image)
  const digests = images.map((i) => /@(sha256:[a-f0-9]{64})/.exec(i)?.[1]).filter((d): d is string => Boolean(d))
  const first = images[0] ?? ''
  const tag = /:([^/:@]+)(@|$)/.exec(first)?.[1]
  const version = template.metadata?.labels?.['app.kubernetes.io/version'] ?? tag ?? digests[0]?.slice(7, 19) ?? 'unknown'
  return {version, images, digests, deploymentRevision: deployment.metadata.annotations?.['deployment.kubernetes.io/revision']}
}

export function rolloutSpec(service: ServiceConfig | undefined, options: RolloutOptions, envRouter: RouterKind, name: string, replicas: number): RolloutSpec {
  const r = service?.rollout
  const strategy = options.strategy
  const analysis = buildAnalysisSpec(service, options.analysis)
  const scaleDownDelayMs = parseDuration(r?.scaleDownDelay ?? '30s')!
  const autoPromotion = r?.autoPromotion ?? true
  const steps: Step[] =
    strategy === 'blue-green'
      ? [{analysis: {}}, ...(autoPromotion ? [] : [{pause: {}}]), {setWeight: 100}, {analysis: {}}, {pause: {duration: formatDuration(scaleDownDelayMs)}}]
      : (options.steps ?? r?.steps ?? DEFAULT_CANARY_STEPS)
  return {
    strategy,
    router: strategy === 'blue-green' ? 'replicas' : (options.router ?? r?.router ?? envRouter),
    steps,
    analysis,
    progressDeadlineMs: options.progressDeadlineMs ?? parseDuration(r?.progressDeadline ?? '10m')!,
    deadlineMs: r?.deadline ? parseDuration(r.deadline) : undefined,
    scaleDownDelayMs,
    autoPromotion,
    previewReplicas: r?.previewReplicas,
    routeName: r?.routeName ?? name,
    replicas,
    maxReplicas: service?.scaling.maxReplicas ?? Math.max(replicas, 10),
    rpsPerPod: service?.scaling.rpsPerPod,
    targetUtilization: service?.scaling.targetUtilization ?? 0.7,
  }
}

/**
 * The rollout keeps the running pod template in its state ConfigMap to roll back to, and that
 * ConfigMap must never hold a secret (it is masked on write, so a masked template could not be
 * restored). A template with a plain-text secret (set outside retailops: render's policy refuses
 * them) is refused before anything is written.
 */
function assertNoPlainTextSecrets(namespace: string, service: string, template: Obj | undefined): void {
  const containers = [...(template?.spec?.containers ?? []), ...(template?.spec?.initContainers ?? [])] as {name: string; env?: {name: string; value?: unknown}[]}[]
  const found = containers.flatMap((c) =>
    (c.env ?? []).filter((e) => typeof e.value === 'string' && e.value !== '' && (isSecretName(e.name) || hasEmbeddedSecret(e.value))).map((e) => `${c.name}: ${e.name}`),
  )
  if (found.length === 0) return
  throw new RetailOpsError('POLICY', `Deployment ${namespace}/${service} holds secrets in plain text in its pod template (${found.join(', ')}); a rollout would have to store that template in its state ConfigMap, so nothing was started.`, {
    nextSteps: [
      `Move each value into a Secret and reference it: \`kubectl -n ${namespace} create secret generic ${service}-env --from-literal=NAME=...\`, then list the Secret in services.${service}.secrets in retailops.yaml and deploy without --canary once.`,
    ],
    details: {variables: found},
  })
}

export interface PlanContext {
  kube: RolloutKube
  config: RetailOpsConfig
  envRouter: RouterKind
}

/** Builds (does not store) the state of each rollout; throws before any write when one cannot start. */
export async function planRollouts(targets: RolloutTarget[], options: RolloutOptions, ctx: PlanContext): Promise<{states: RolloutState[]; initial: string[]; forced?: ForcedRelease}> {
  if (options.strategy === 'blue-green' && options.steps) throw new UsageError('--steps is for --canary; blue-green runs pre-promotion analysis, the switch, post-promotion analysis and the scale-down delay.')
  const store = new StateStore(ctx.kube)
  const services = targets.map((t) => t.service)
  const checks = await releaseGates(ctx.config, services, {errorBudget: options.errorBudget})
  const forced = enforceGates(checks, options.force)
  const states: RolloutState[] = []
  const initial: string[] = []
  const now = new Date().toISOString()
  const releaseId = `release-${Date.now().toString(36)}`
  for (const t of targets) {
    const stable = await ctx.kube.get(PATHS.deployments(t.namespace), t.service)
    if (!stable) {
      initial.push(t.service)
      continue
    }
    const stored = await store.read(t.namespace, t.service)
    assertNoActiveRollout(stored.state)
    const progress = deploymentProgress(stable)
    if (!progress.complete) {
      const {RefusedError} = await import('../errors/index.js')
      throw new RefusedError(`Deployment ${t.namespace}/${t.service} is not stable now (${progress.updated}/${progress.desired} updated, ${progress.available} available): a canary needs one healthy version to compare with.`, {
        nextSteps: ['Wait until it is available (`retailops rollout status`, `kubectl rollout status`), or deploy without --canary.'],
        details: {progress},
      })
    }
    assertNoPlainTextSecrets(t.namespace, t.service, stable.spec?.template)
    const rs = await currentReplicaSet(ctx.kube, stable)
    const stableRev = {...revisionOf(stable), podTemplateHash: rs?.metadata.labels?.['pod-template-hash']}
    const canaryRev = revisionOf(t.desired)
    if (canaryRev.version === stableRev.version) {
      throw new UsageError(`${t.service}: the new Deployment has the same version (${canaryRev.version}) as the running one; analysis could not tell them apart.`, {
        nextSteps: ['Deploy a new image tag or set a new app.kubernetes.io/version label.'],
      })
    }
    const replicas = stable.spec?.replicas ?? t.desired.spec?.replicas ?? 1
    const spec = rolloutSpec(ctx.config.services[t.service], options, ctx.envRouter, t.service, replicas)
    const id = `${t.service}-${Date.now().toString(36)}`
    const state: RolloutState = {
      apiVersion: 'retailops/v1',
      id,
      service: t.service,
      namespace: t.namespace,
      group: services,
      releaseId,
      spec,
      phase: 'Progressing',
      step: 0,
      stepStartedAt: now,
      message: `${spec.strategy} of ${canaryRev.version} over ${stableRev.version}: ${formatSteps(spec.steps)}`,
      stable: stableRev,
      canary: canaryRev,
      weight: 0,
      desiredWeight: 0,
      canaryReplicas: 0,
      desired: t.desired as unknown as Record<string, unknown>,
      stableTemplate: stable.spec.template,
      analysisRuns: [],
      events: [],
      forced,
      createdAt: now,
      updatedAt: now,
    }
    await makeRouter(spec.router, ctx.kube).validate(state)
    states.push(state)
  }
  return {states, initial, forced}
}

/** Stores the planned states and drives the group until it ends or waits for a person. */
export async function startRollouts(planned: RolloutState[], options: RolloutOptions, deps: Omit<DriveDeps, 'store'> & {store?: StateStore}, ctx: RunContext): Promise<RolloutState[]> {
  const store = deps.store ?? new StateStore(deps.kube)
  for (const state of planned) {
    const stored = await store.read(state.namespace, state.service)
    state.events.push({at: state.createdAt, phase: 'Progressing', step: 0, message: state.message})
    await store.write(state, {history: stored.history, clearRequest: true})
  }
  if (options.noWait) return planned
  const {states} = await drive(planned, {...deps, store}, ctx, {timeoutMs: options.timeoutMs})
  return states
}

/**
 * The request rate a canary must be able to carry at full weight: the observed rate (Prometheus,
 * over 5 minutes) or, inside a campaign, its expected peak for the service if that is higher.
 */
export function observedRpsFrom(prometheusUrl?: string, config?: RetailOpsConfig): DriveDeps['observedRps'] {
  const provider = prometheusUrl ? prometheusProvider(prometheusUrl) : undefined
  return async (state) => {
    const observed = provider ? ((await provider.query(`sum(rate(http_requests_total{service="${state.service}",namespace="${state.namespace}",synthetic!="true"}[5m]))`).catch(() => null)) ?? undefined) : undefined
    const expected = config ? expectedPeakRps(config, state.service, new Date(), observed) : undefined
    return expected === undefined ? observed : Math.max(expected, observed ?? 0)
  }
}

/** The expected peak of a service in the campaigns running at `now` (rps, or multiplier × observed). */
export function expectedPeakRps(config: RetailOpsConfig, service: string, now: Date, observed?: number): number | undefined {
  const t = now.getTime()
  const peaks = config.campaigns
    .filter((c) => Date.parse(c.start) <= t && t <= Date.parse(c.end) && c.peak[service])
    .map((c) => {
      const peak = c.peak[service]
      return 'rps' in peak ? peak.rps : observed === undefined ? undefined : observed * peak.multiplier
    })
    .filter((v): v is number => v !== undefined)
  return peaks.length > 0 ? Math.max(...peaks) : undefined
}

/**
 * A plain (rolling) deploy would change a Deployment under a canary or blue-green rollout that is
 * still running: refuse it, naming the rollouts (read-only; runs before anything is applied).
 */
export async function assertNoRolloutInProgress(kube: RolloutKube, namespace: string, services: string[]): Promise<void> {
  const store = new StateStore(kube)
  const states = await store.list(namespace).catch(() => [])
  const busy = states.filter((s) => (services.length === 0 || services.includes(s.service)) && !['Healthy', 'Aborted', 'TimedOut'].includes(s.phase))
  if (busy.length === 0) return
  const {RefusedError} = await import('../errors/index.js')
  throw new RefusedError(`A rollout is in progress for ${busy.map((s) => `${s.service} (${s.spec.strategy}, ${s.phase})`).join(', ')}; a rolling deploy would change its Deployment underneath it.`, {
    nextSteps: busy.map((s) => `\`retailops rollout promote ${s.service} --full\` or \`retailops rollout abort ${s.service}\` first.`),
    details: {rollouts: busy.map((s) => ({service: s.service, phase: s.phase, id: s.id}))},
  })
}
