/**
 * Starting rollouts: everything is checked (stable Deployment, no rollout in progress, route,
 * analysis conditions, release gates) before the first write (planRollouts); then each service's
 * state is claimed (claimRollouts). release.ts drives the group (engine.ts).
 */
import type {Deployment, PodTemplate} from '../kubernetes/kinds.js'
import {formatDuration, parseDuration} from '../config/duration.js'
import type {RetailOpsConfig, ServiceConfig} from '../config/schema.js'
import {mirrorFix, mirrorRefusal, routingStepProblems} from '../config/route-match.js'
import {RetailOpsError, UsageError} from '../errors/index.js'
import type {Output} from '../ui/output.js'
import {hasEmbeddedSecret, isSecretName} from '../ui/secrets.js'
import {matchers} from '../prometheus/promql.js'
import {buildAnalysisSpec, prometheusProvider} from './analysis.js'
import {assertNoActiveRollout, type DriveDeps} from './engine.js'
import {changeGates, enforceGates, releaseGates, type ErrorBudgetSource} from './gates.js'
import {contains} from '../kubernetes/unchanged.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {currentReplicaSet, deploymentProgress, PATHS} from './kube.js'
import {DEFAULT_CANARY_STEPS, formatSteps} from './steps.js'
import {newLease, StateStore, type Stored} from './store.js'
import {makeRouter} from './traffic.js'
import {
  type AnalysisSpec,
  type ForcedRelease,
  type Revision,
  type RolloutSpec,
  type RolloutState,
  type RouterKind,
  type Step,
  type StoredAutoscaler,
  type Strategy,
} from './types.js'

export interface RolloutOptions {
  strategy: Strategy
  steps?: Step[]
  router?: RouterKind
  analysis?: Partial<Pick<AnalysisSpec, 'intervalMs' | 'count' | 'missingData'>>
  progressDeadlineMs?: number
  force?: {reason?: string}
  errorBudget?: ErrorBudgetSource
  prometheusUrl?: string
}

export interface RolloutTarget {
  service: string
  namespace: string
  /** The Deployment deploy rendered for the new version. */
  desired: Deployment
  /** The autoscaler deploy rendered for it (null: none): stored in the rollout's spec. */
  autoscaler?: StoredAutoscaler | null
}

export interface StartResult {
  /** Services without a stable Deployment yet: nothing to compare with, so applied directly. */
  initial: string[]
  /** Services whose images are the ones already running: nothing to release, not canaried. */
  unchanged: string[]
  states: RolloutState[]
  forced?: ForcedRelease
}

/**
 * The pod template a deploy renders would change what the live Deployment runs (a new one, a new
 * image, any other template change): the server-side apply would start new pods.
 */
export function templateChanges(rendered: Deployment, live: Deployment | undefined): boolean {
  return !live || !contains(live.spec?.template, rendered.spec?.template)
}

/** Every image of a pod template (containers and initContainers), in order. */
export function templateImages(
  template: {spec?: {containers?: {image?: string}[]; initContainers?: {image?: string}[]}} | undefined,
): string[] {
  return [...(template?.spec?.initContainers ?? []), ...(template?.spec?.containers ?? [])].map((c) => c.image ?? '')
}

/** The version label value of a revision: app.kubernetes.io/version, else the image tag. */
export function revisionOf(deployment: Deployment): Revision {
  const template = deployment.spec?.template ?? {}
  const images: string[] = (template.spec?.containers ?? []).map((c) => c.image ?? '')
  const digests = images.map((i) => /@(sha256:[a-f0-9]{64})/.exec(i)?.[1]).filter((d): d is string => Boolean(d))
  const first = images[0] ?? ''
  const tag = /:([^/:@]+)(@|$)/.exec(first)?.[1]
  const version =
    template.metadata?.labels?.['app.kubernetes.io/version'] ?? tag ?? digests[0]?.slice(7, 19) ?? 'unknown'
  return {
    version,
    images,
    digests,
    deploymentRevision: deployment.metadata.annotations?.['deployment.kubernetes.io/revision'],
  }
}

export function rolloutSpec(
  service: ServiceConfig | undefined,
  options: RolloutOptions,
  envRouter: RouterKind,
  name: string,
  replicas: number,
): RolloutSpec {
  const r = service?.rollout
  const strategy = options.strategy
  const analysis = buildAnalysisSpec(service, options.analysis)
  const scaleDownDelayMs = parseDuration(r?.scaleDownDelay ?? '30s')!
  const autoPromotion = r?.autoPromotion ?? true
  const steps: Step[] =
    strategy === 'blue-green'
      ? [
          {analysis: {}},
          ...(autoPromotion ? [] : [{pause: {}}]),
          {setWeight: 100},
          {analysis: {}},
          {pause: {duration: formatDuration(scaleDownDelayMs)}},
        ]
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
function assertNoPlainTextSecrets(namespace: string, service: string, template: PodTemplate | undefined): void {
  const containers = [...(template?.spec?.containers ?? []), ...(template?.spec?.initContainers ?? [])] as {
    name: string
    env?: {name: string; value?: unknown}[]
  }[]
  const found = containers.flatMap((c) =>
    (c.env ?? [])
      .filter(
        (e) => typeof e.value === 'string' && e.value !== '' && (isSecretName(e.name) || hasEmbeddedSecret(e.value)),
      )
      .map((e) => `${c.name}: ${e.name}`),
  )
  if (found.length === 0) return
  throw new RetailOpsError(
    'POLICY',
    `Deployment ${namespace}/${service} holds secrets in plain text in its pod template (${found.join(', ')}); a rollout would have to store that template in its state ConfigMap, so nothing was started.`,
    {
      nextSteps: [
        `Move each value into a Secret and reference it: \`kubectl -n ${namespace} create secret generic ${service}-env --from-literal=NAME=...\`, then list the Secret in services.${service}.secrets in retailops.yaml and deploy without --canary once.`,
      ],
      details: {variables: found},
    },
  )
}

export interface PlanContext {
  kube: KubeObjects
  config: RetailOpsConfig
  envRouter: RouterKind
  /** Where a refused release is announced (a release event per closed gate). */
  out?: Output
}

/**
 * Builds (does not store) the state of each rollout; throws before any write when one cannot
 * start. A service whose rendered images are the ones its Deployment runs has nothing to release:
 * it is reported as unchanged and not canaried (any other change to its objects is applied as by
 * a plain deploy). Gates are checked for the services that do change.
 */
export async function planRollouts(
  targets: RolloutTarget[],
  options: RolloutOptions,
  ctx: PlanContext,
): Promise<{states: RolloutState[]; initial: string[]; unchanged: string[]; forced?: ForcedRelease}> {
  if (options.strategy === 'blue-green' && options.steps)
    throw new UsageError(
      '--steps is for --canary; blue-green runs pre-promotion analysis, the switch, post-promotion analysis and the scale-down delay.',
    )
  const store = new StateStore(ctx.kube)
  const states: RolloutState[] = []
  const initial: string[] = []
  const unchanged: string[] = []
  const rolled: string[] = []
  const now = new Date().toISOString()
  const releaseId = `release-${Date.now().toString(36)}`
  const planned: {t: RolloutTarget; stable: Deployment; stableRev: Revision; canaryRev: Revision}[] = []
  for (const t of targets) {
    const stable = await ctx.kube.get<Deployment>(PATHS.deployments(t.namespace), t.service)
    if (!stable) {
      initial.push(t.service)
      continue
    }
    const stored = await store.read(t.namespace, t.service)
    assertNoActiveRollout(stored.state)
    const canaryRev = revisionOf(t.desired)
    if (sameImages(templateImages(t.desired.spec?.template), templateImages(stable.spec?.template))) {
      unchanged.push(t.service)
      // Not canaried; a change to its pods other than the image is applied as by a rolling deploy, and gated as one.
      if (templateChanges(t.desired, stable)) rolled.push(t.service)
      continue
    }
    const progress = deploymentProgress(stable)
    if (!progress.complete) {
      const {RefusedError} = await import('../errors/index.js')
      throw new RefusedError(
        `Deployment ${t.namespace}/${t.service} is not stable now (${progress.updated}/${progress.desired} updated, ${progress.available} available): a canary needs one healthy version to compare with.`,
        {
          nextSteps: [
            'Wait until it is available (`retailops rollout status`, `kubectl rollout status`), or deploy without --canary.',
          ],
          details: {progress},
        },
      )
    }
    assertNoPlainTextSecrets(t.namespace, t.service, stable.spec?.template)
    const rs = await currentReplicaSet(ctx.kube, stable)
    const stableRev = {...revisionOf(stable), podTemplateHash: rs?.metadata.labels?.['pod-template-hash']}
    if (canaryRev.version === stableRev.version) {
      throw new UsageError(
        `${t.service}: the new image (${canaryRev.images.join(', ')}) has the same version (${canaryRev.version}) as the running one (${stableRev.images.join(', ')}); analysis could not tell them apart.`,
        {
          nextSteps: ['Deploy a new image tag or set a new app.kubernetes.io/version label.'],
        },
      )
    }
    planned.push({t, stable, stableRev, canaryRev})
  }
  const released = [...planned.map((p) => p.t.service), ...initial]
  const checks = [
    ...(released.length > 0 ? await releaseGates(ctx.config, released, {errorBudget: options.errorBudget}) : []),
    ...(await changeGates(ctx.config, rolled, {errorBudget: options.errorBudget})),
  ]
  const forced = enforceGates(
    checks,
    options.force,
    ctx.out && {
      out: ctx.out,
      namespace: planned[0]?.t.namespace,
      versions: Object.fromEntries(planned.map((p) => [p.t.service, p.canaryRev.version])),
    },
  )
  const services = planned.map((p) => p.t.service)
  for (const {t, stable, stableRev, canaryRev} of planned) {
    const replicas = stable.spec?.replicas ?? t.desired.spec?.replicas ?? 1
    const spec = {
      ...rolloutSpec(ctx.config.services[t.service], options, ctx.envRouter, t.service, replicas),
      ...(t.autoscaler === undefined ? {} : {autoscaler: t.autoscaler}),
    }
    assertRoutingSteps(t.service, spec, ctx.config.services[t.service], options.steps ? '--steps' : 'rollout.steps')
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
      desired: t.desired,
      stableTemplate: stable.spec?.template ?? {},
      analysisRuns: [],
      events: [],
      forced,
      createdAt: now,
      updatedAt: now,
    }
    await makeRouter(spec.router, ctx.kube).validate(state)
    states.push(state)
  }
  return {states, initial, unchanged, forced}
}

/**
 * Header, cookie and mirror steps the resolved router cannot carry, and mirror steps for a service
 * that has not declared itself safe to mirror, are refused before anything is written: mirroring
 * is exit 3 (the fix is `rollout.mirrorSafe` in retailops.yaml), a router mismatch exit 2 from
 * --steps and 3 from retailops.yaml.
 */
export function assertRoutingSteps(
  service: string,
  spec: Pick<RolloutSpec, 'strategy' | 'router' | 'steps'>,
  config: ServiceConfig | undefined,
  source: '--steps' | 'rollout.steps',
): void {
  if (spec.strategy !== 'canary') return
  const mirror = spec.steps.find((s) => 'setMirrorRoute' in s && s.setMirrorRoute.percent > 0)
  const refusal = mirror && mirrorRefusal(service, config)
  if (refusal)
    throw new RetailOpsError('CONFIG', `${service}: ${source} asks for ${formatSteps([mirror])}, but ${refusal}.`, {
      nextSteps: [mirrorFix(service)],
      details: {service, step: formatSteps([mirror])},
    })
  const problems = routingStepProblems(spec.steps, spec.router)
  if (problems.length === 0) return
  const message = `${service}: ${source} cannot run with the ${spec.router} router: ${problems.map((p) => `step ${p.index + 1}: ${p.message}`).join('; ')}.`
  const nextSteps = [
    "Use the gateway router (rollout.router, the environment's router, or --router gateway), or drop those steps.",
  ]
  if (source === '--steps') throw new UsageError(message, {nextSteps})
  throw new RetailOpsError('CONFIG', message, {nextSteps})
}

function sameImages(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((image, i) => image === b[i])
}

/**
 * Claims each planned rollout: its state, with this CLI's lease, is stored by compare-and-swap
 * against the state read here (create-if-absent, or replace at that resourceVersion). When another
 * CLI started a rollout of the service meanwhile, its write wins and this claim is refused (exit
 * 13, naming it); the services of the release claimed before are put back as they were.
 */
export async function claimRollouts(
  planned: RolloutState[],
  store: StateStore,
): Promise<{unclaim: () => Promise<void>}> {
  const claimed: {state: RolloutState; previous: Stored}[] = []
  const unclaim = async () => {
    for (const c of claimed.reverse()) await store.restore(c.state.namespace, c.state.service, c.previous)
  }
  try {
    for (const state of planned) {
      const previous = await store.read(state.namespace, state.service, {forWrite: true})
      assertNoActiveRollout(previous.state)
      state.lease = newLease()
      state.events.push({at: state.createdAt, phase: 'Progressing', step: 0, message: state.message})
      await store.write(state, {history: previous.history})
      claimed.push({state, previous})
    }
  } catch (error) {
    await unclaim()
    throw error
  }
  return {unclaim}
}

/**
 * The request rate a canary must be able to carry at full weight: the observed rate (Prometheus,
 * over 5 minutes) or, inside a campaign, its expected peak for the service if that is higher.
 */
export function observedRpsFrom(prometheusUrl?: string, config?: RetailOpsConfig): DriveDeps['observedRps'] {
  const provider = prometheusUrl ? prometheusProvider(prometheusUrl) : undefined
  return async (state) => {
    const observed = provider
      ? ((await provider
          .query(
            `sum(rate(http_requests_total${matchers([
              ['service', state.service],
              ['namespace', state.namespace],
              ['synthetic', 'true', '!='],
            ])}[5m]))`,
          )
          .catch(() => null)) ?? undefined)
      : undefined
    const expected = config ? expectedPeakRps(config, state.service, new Date(), observed) : undefined
    return expected === undefined ? observed : Math.max(expected, observed ?? 0)
  }
}

/** The expected peak of a service in the campaigns running at `now` (rps, or multiplier × observed). */
export function expectedPeakRps(
  config: RetailOpsConfig,
  service: string,
  now: Date,
  observed?: number,
): number | undefined {
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
export async function assertNoRolloutInProgress(
  kube: KubeObjects,
  namespace: string,
  services: string[],
): Promise<void> {
  const store = new StateStore(kube)
  const states = await store.list(namespace).catch(() => [])
  const busy = states.filter(
    (s) =>
      (services.length === 0 || services.includes(s.service)) && !['Healthy', 'Aborted', 'TimedOut'].includes(s.phase),
  )
  if (busy.length === 0) return
  const {RefusedError} = await import('../errors/index.js')
  throw new RefusedError(
    `A rollout is in progress for ${busy.map((s) => `${s.service} (${s.spec.strategy}, ${s.phase})`).join(', ')}; a rolling deploy would change its Deployment underneath it.`,
    {
      nextSteps: busy.map(
        (s) => `\`retailops rollout promote ${s.service} --full\` or \`retailops rollout abort ${s.service}\` first.`,
      ),
      details: {rollouts: busy.map((s) => ({service: s.service, phase: s.phase, id: s.id}))},
    },
  )
}
