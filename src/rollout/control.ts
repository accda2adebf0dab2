/**
 * What the `rollout` commands do: status, promote, abort, resume, undo and history. Requests
 * (promote, abort) are written into the state ConfigMap; when a live CLI drives the rollout it
 * acts on them, otherwise the command drives the rollout itself. Either way, any machine can.
 */

import type {Deployment} from '../kubernetes/kinds.js'
import type {ExitCodeName} from '../errors/index.js'
import {NotFoundError, RefusedError, UsageError} from '../errors/index.js'
import {ANNOTATION, FIELD_MANAGER, LABEL} from '../kubernetes/labels.js'
import {sleep} from '../kubernetes/wait.js'
import type {RunContext} from '../ui/context.js'
import type {MetricsProvider} from './analysis.js'
import {drive, type DriveDeps} from './engine.js'
import {deploymentProgress, PATHS} from './kube.js'
import {describeLease, HOLDER, LEASE_TTL_SECONDS, leaseAlive, ownsLease, StateStore} from './store.js'
import {jobDriver, type JobDriver} from './detach.js'
import {groupExit, readState, statusOf, type RolloutStatus, type StatusDeps} from './status.js'
import {bindToCommand, checkDeployment, verifyStoredState, type TrustOptions} from './trust.js'
import {
  changeGates,
  enforceGates,
  FORCED_ANNOTATION,
  FORCED_DETAIL_ANNOTATION,
  recordRollback,
  type ErrorBudgetSource,
  type GateCheck,
} from './gates.js'
import {isTerminal, type ForcedRelease, type HistoryEntry, type RolloutRequest, type RolloutState} from './types.js'
import type {RetailOpsConfig} from '../config/schema.js'

export interface ControlDeps extends StatusDeps {
  provider?: MetricsProvider
  observedRps?: DriveDeps['observedRps']
  /** The release gates (freeze windows, error budgets) for promote --full, undo and abort. */
  gates?: {config: RetailOpsConfig; errorBudget?: ErrorBudgetSource}
  /** The project and --skip-verify: what is read back from the cluster is checked as a fresh deploy would be (trust.ts). */
  trust?: TrustOptions
}

/** The gates of the services (revenue-critical ones) as they stand now; none without a configuration. */
async function gateChecks(deps: ControlDeps, services: string[]): Promise<GateCheck[]> {
  return deps.gates ? changeGates(deps.gates.config, services, {errorBudget: deps.gates.errorBudget}) : []
}

/**
 * The driver's check of a stored state before it acts (DriveDeps.verify). `deployment`: the new
 * Deployment may be applied (promote, resume); an abort never applies it, so it is not required.
 */
function verifierFor(deps: ControlDeps, ctx: RunContext, deployment: boolean): DriveDeps['verify'] {
  const trust = deps.trust
  if (!trust) return undefined
  return (state, expected) => {
    const bound = bindToCommand(state, expected.namespace, expected.service, trust.project)
    const aborting = bound.phase === 'Aborting' || bound.phase === 'Aborted' || bound.phase === 'TimedOut'
    return verifyStoredState(bound, deps.kube, {...trust, deployment: deployment && !aborting}, ctx)
  }
}

/** The rollout of a service and the rollouts released with it (each bound to the namespace and the service it is stored for). */
export async function loadGroup(store: StateStore, namespace: string, service: string): Promise<RolloutState[]> {
  const state = await readState(store, namespace, service)
  const members = state.group.filter((s) => s !== service)
  const others = await Promise.all(members.map((s) => store.read(namespace, s)))
  return [
    state,
    ...others.flatMap((o, i) =>
      o.state && o.state.releaseId === state.releaseId ? [bindToCommand(o.state, namespace, members[i])] : [],
    ),
  ]
}

export interface ActionResult {
  action: string
  rollouts: RolloutStatus[]
  exit: ExitCodeName
  /** Whether this CLI drove the rollout, or a running one acted on the request. */
  drivenBy: 'this CLI' | 'the running CLI'
}

/**
 * Writes a request (promote, promote --full, abort) to every member of the release. When a
 * live CLI drives it, waits for that CLI to act; otherwise drives the group here.
 */
async function request(
  action: RolloutRequest['action'],
  options: {namespace: string; service: string; reason?: string; timeoutMs?: number; force?: {reason?: string}},
  deps: ControlDeps,
  ctx: RunContext,
): Promise<ActionResult> {
  const store = deps.store ?? new StateStore(deps.kube)
  const group = await loadGroup(store, options.namespace, options.service)
  const primary = group[0]
  if (isTerminal(primary.phase)) {
    throw new RefusedError(`The rollout of ${options.service} has already ended (${primary.phase}).`, {
      nextSteps:
        action === 'abort'
          ? [`\`retailops rollout undo ${options.service}\` goes back to the previous stable version.`]
          : [`Start a new one with \`retailops deploy --canary ${options.service}\`.`],
    })
  }
  // promote (one step) concerns the named service; --full and abort concern the whole release.
  const targets = action === 'promote' ? [primary] : group.filter((s) => !isTerminal(s.phase))
  // promote --full skips the remaining analysis: gated like a release. An abort goes back to the
  // stable version: never refused, recorded as forced when a gate is closed.
  let forced: ForcedRelease | undefined
  if (action === 'promote-full')
    forced = enforceGates(
      await gateChecks(
        deps,
        targets.map((s) => s.service),
      ),
      options.force,
      {
        out: ctx.out,
        namespace: primary.namespace,
        versions: Object.fromEntries(targets.map((s) => [s.service, s.canary.version])),
      },
    )
  if (action === 'abort')
    forced = recordRollback(
      await gateChecks(
        deps,
        targets.map((s) => s.service),
      ),
      'abort (traffic back on the stable version)',
      options.reason,
    )
  if (forced)
    ctx.out.warn(
      `${action === 'abort' ? 'Aborting' : 'Promoting'} despite closed release gates (recorded): ${forced.overridden.join('; ') || forced.reason}`,
    )
  const req: RolloutRequest = {
    action,
    by: HOLDER,
    at: new Date().toISOString(),
    reason: options.reason,
    ...(forced ? {forced} : {}),
  }
  const driven = group.some((s) => s.lease && !ownsLease(s) && leaseAlive(s.lease))
  // This CLI will drive: check what it would apply before the request is even written.
  const verify = verifierFor(deps, ctx, action !== 'abort')
  if (!driven && verify)
    for (const s of group.filter((x) => !isTerminal(x.phase)))
      await verify(s, {namespace: s.namespace, service: s.service})
  for (const s of targets) await store.request(s.namespace, s.service, {...req, rolloutId: s.id})
  if (driven) {
    const driver = group.find((s) => s.lease && leaseAlive(s.lease))?.lease
    ctx.out.info(
      `A CLI drives this rollout (${driver ? describeLease(driver) : 'another CLI'}): it will ${action === 'abort' ? 'abort' : 'promote'} now.`,
    )
    const deadline = Date.now() + (options.timeoutMs ?? 120_000)
    for (;;) {
      const now = await Promise.all(targets.map((s) => store.read(s.namespace, s.service)))
      const consumed = now.every((x) => !x.request || x.request.at !== req.at)
      const done = action === 'abort' ? now.every((x) => x.state && isTerminal(x.state.phase)) : consumed
      if (done) {
        const states = await loadGroup(store, options.namespace, options.service)
        return {
          action,
          rollouts: states.map((s) => statusOf(s)),
          exit: action === 'abort' ? 'OK' : groupExit(states),
          drivenBy: 'the running CLI',
        }
      }
      // The driver died meanwhile: take over.
      if (!now.some((x) => x.state?.lease && leaseAlive(x.state.lease))) break
      if (Date.now() > deadline) {
        throw new RefusedError(
          `The CLI driving ${options.service} did not act on the ${action} request within ${Math.round((options.timeoutMs ?? 120_000) / 1000)}s.`,
          {
            nextSteps: [
              'The request stays stored; it is acted on when that CLI next checks, or by `retailops rollout resume` once its lease expires.',
            ],
          },
        )
      }
      await sleep(500, ctx.signal)
    }
  }
  const fresh = await loadGroup(store, options.namespace, options.service)
  const {states} = await drive(
    fresh.filter((s) => !isTerminal(s.phase)),
    {...deps, store, verify},
    ctx,
    {timeoutMs: options.timeoutMs},
  )
  const all = await loadGroup(store, options.namespace, options.service).catch(() => states)
  return {
    action,
    rollouts: all.map((s) => statusOf(s)),
    exit: action === 'abort' ? (all.every((s) => s.phase === 'Aborted') ? 'OK' : groupExit(all)) : groupExit(all),
    drivenBy: 'this CLI',
  }
}

export function promoteRollout(
  options: {namespace: string; service: string; full?: boolean; timeoutMs?: number; force?: {reason?: string}},
  deps: ControlDeps,
  ctx: RunContext,
): Promise<ActionResult> {
  return request(options.full ? 'promote-full' : 'promote', options, deps, ctx)
}

export function abortRollout(
  options: {namespace: string; service: string; reason?: string; timeoutMs?: number},
  deps: ControlDeps,
  ctx: RunContext,
): Promise<ActionResult> {
  return request('abort', options, deps, ctx)
}

/**
 * Continues rollouts whose CLI stopped (kill -9, a closed laptop, a cancelled CI job): waits for
 * its lease to expire, then takes it by compare-and-swap. `takeOver` takes a lease that is still
 * renewed (a hung job) at once, recording who, when and why; the other CLI stops at its next write.
 */
export async function resumeRollout(
  options: {namespace: string; service: string; timeoutMs?: number; takeOver?: {reason?: string}},
  deps: ControlDeps,
  ctx: RunContext,
): Promise<ActionResult> {
  if (options.takeOver && !options.takeOver.reason?.trim())
    throw new UsageError('--take-over needs --reason "why" (it is recorded in the rollout state).')
  const store = deps.store ?? new StateStore(deps.kube)
  let group = await loadGroup(store, options.namespace, options.service)
  if (group.every((s) => isTerminal(s.phase))) {
    return {action: 'resume', rollouts: group.map((s) => statusOf(s)), exit: groupExit(group), drivenBy: 'this CLI'}
  }
  // A lease held by a CLI on another machine that stopped renewing expires after its TTL; a lease
  // handed to a detached Job that failed or was deleted is taken over at once (recorded).
  const until = Date.now() + (LEASE_TTL_SECONDS + 5) * 1000
  const goneJobs = async () =>
    (
      await Promise.all(group.map((s) => (ownsLease(s) ? Promise.resolve(undefined) : jobDriver(deps.kube, s.lease))))
    ).filter((j): j is JobDriver => Boolean(j?.gone))
  let gone = await goneJobs()
  const heldByOther = (s: RolloutState) =>
    s.lease && !ownsLease(s) && leaseAlive(s.lease) && !gone.some((j) => j.name === s.lease?.job?.name)
  while (!options.takeOver && group.some(heldByOther) && Date.now() < until) {
    ctx.out.info(`waiting for the lease of ${describeLease(group.find(heldByOther)!.lease!)} to expire…`)
    await sleep(2000, ctx.signal)
    group = await loadGroup(store, options.namespace, options.service)
    gone = await goneJobs()
  }
  const jobGone =
    !options.takeOver && gone.length > 0 && !group.some(heldByOther)
      ? {
          reason: `Job ${gone[0].namespace}/${gone[0].name}, which drove it, ${gone[0].phase === 'deleted' ? 'was deleted' : `failed (${gone[0].reason ?? gone[0].phase})`}`,
        }
      : undefined
  const takeOver = options.takeOver?.reason ? {reason: options.takeOver.reason} : jobGone
  const {states} = await drive(
    group.filter((s) => !isTerminal(s.phase)),
    {...deps, store, verify: verifierFor(deps, ctx, true)},
    ctx,
    {timeoutMs: options.timeoutMs, takeOver},
  )
  const all = group.map((g) => states.find((s) => s.service === g.service) ?? g)
  return {action: 'resume', rollouts: all.map((s) => statusOf(s)), exit: groupExit(all), drivenBy: 'this CLI'}
}

export interface HistoryResult {
  service: string
  namespace: string
  entries: (Omit<HistoryEntry, 'canaryTemplate' | 'stableTemplate'> & {number: number})[]
  current?: RolloutStatus
}

export async function rolloutHistory(
  options: {namespace: string; service: string},
  deps: ControlDeps,
): Promise<HistoryResult> {
  const store = deps.store ?? new StateStore(deps.kube)
  const stored = await store.read(options.namespace, options.service)
  if (!stored.state && stored.history.length === 0) await readState(store, options.namespace, options.service)
  return {
    service: options.service,
    namespace: options.namespace,
    entries: stored.history.map(({canaryTemplate: _c, stableTemplate: _s, ...rest}, i) => ({...rest, number: i + 1})),
    current: stored.state && !isTerminal(stored.state.phase) ? statusOf(stored.state) : undefined,
  }
}

export interface UndoResult {
  service: string
  /** abort: a rollout was in progress and was aborted; rollback: the Deployment went back to an earlier version. */
  kind: 'abort' | 'rollback'
  from?: string
  to: string
  rollouts: RolloutStatus[]
  exit: ExitCodeName
  /** Recorded when a release gate was closed (or --force-release was given). */
  forced?: ForcedRelease
}

/**
 * Goes back to the previous stable version: a rollout in progress is aborted (blue-green switches
 * the active Service back at once while the old colour is up); after a promotion the Deployment
 * gets the previous stable pod template back (or the one of history entry --to-revision).
 */
export async function undoRollout(
  options: {namespace: string; service: string; toRevision?: number; timeoutMs?: number; force?: {reason?: string}},
  deps: ControlDeps,
  ctx: RunContext,
): Promise<UndoResult> {
  const store = deps.store ?? new StateStore(deps.kube)
  const stored = await store.read(options.namespace, options.service)
  const state = stored.state && bindToCommand(stored.state, options.namespace, options.service)
  if (state && !isTerminal(state.phase) && options.toRevision === undefined) {
    const result = await abortRollout(
      {
        namespace: options.namespace,
        service: options.service,
        reason: options.force?.reason ? `rollout undo: ${options.force.reason}` : 'rollout undo',
        timeoutMs: options.timeoutMs,
      },
      deps,
      ctx,
    )
    return {
      service: options.service,
      kind: 'abort',
      from: state.canary.version,
      to: state.stable.version,
      rollouts: result.rollouts,
      exit: result.exit,
    }
  }
  if (state && !isTerminal(state.phase))
    throw new RefusedError(
      `A rollout of ${options.service} is in progress (${state.phase}); abort it before undoing to another revision.`,
    )
  let target: {template?: Record<string, unknown>; version: string; from?: string}
  if (options.toRevision !== undefined) {
    const entry = stored.history[options.toRevision - 1]
    if (!entry)
      throw new NotFoundError(
        `History entry ${options.toRevision} of ${options.service} does not exist (there are ${stored.history.length}).`,
        {nextSteps: [`\`retailops rollout history ${options.service}\` lists them.`]},
      )
    target = {template: entry.canaryTemplate, version: entry.canary.version}
  } else {
    const last = [...stored.history].reverse().find((h) => h.phase === 'Healthy' && h.stableTemplate)
    if (!last)
      throw new NotFoundError(`${options.service} has no promoted rollout to undo.`, {
        nextSteps: [`\`retailops rollout history ${options.service}\` lists its rollouts.`],
      })
    target = {template: last.stableTemplate, version: last.stable.version, from: last.canary.version}
  }
  if (!target.template) throw new UsageError('That history entry has no pod template recorded.')
  // Back to the previous version is always possible (an incident in a freeze), recorded as forced
  // when a gate is closed; to any other revision it is a release like any other, and gated.
  const checks = await gateChecks(deps, [options.service])
  const forced =
    options.toRevision === undefined
      ? options.force
        ? enforceGates(checks, options.force)
        : recordRollback(checks, `rollback to the previous version ${target.version}`)
      : enforceGates(checks, options.force, {
          out: ctx.out,
          namespace: options.namespace,
          versions: {[options.service]: target.version},
        })
  if (forced)
    ctx.out.warn(
      `${options.service}: rolling back despite closed release gates (recorded): ${forced.overridden.join('; ') || forced.reason}`,
    )
  const current = await deps.kube.get<Deployment>(PATHS.deployments(options.namespace), options.service)
  if (!current) throw new NotFoundError(`Deployment ${options.namespace}/${options.service} does not exist.`)
  // The template comes from the stored history: it passes signature and policy checks as on a deploy first.
  const candidate: Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {name: options.service, namespace: options.namespace, labels: current.metadata.labels},
    spec: {...current.spec, template: target.template},
  }
  const checked = deps.trust ? await checkDeployment(candidate, options.service, deps.kube, deps.trust, ctx) : candidate
  const template = checked.spec!.template as {
    metadata?: {labels?: Record<string, string>}
    spec?: {containers?: {image?: string}[]}
  }
  const task = ctx.out.task(`Rolling ${options.service} back to ${target.version}`)
  // Only the template and what describes it change; every other field retailops owns (labels, strategy, replicas) stays as it is.
  await deps.kube.apply(
    PATHS.deployments(options.namespace),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: options.service,
        namespace: options.namespace,
        labels: template.metadata?.labels?.[LABEL.version]
          ? {[LABEL.version]: template.metadata.labels[LABEL.version]}
          : {},
        annotations: {
          ...(template.spec?.containers?.[0]?.image ? {[ANNOTATION.image]: template.spec.containers[0].image} : {}),
          ...(checked.metadata.annotations?.[ANNOTATION.signature]
            ? {[ANNOTATION.signature]: checked.metadata.annotations[ANNOTATION.signature]}
            : {}),
          // A gate override, owned like the rest: the next release that is not forced drops it (the history keeps it).
          ...(forced ? {[FORCED_ANNOTATION]: forced.reason, [FORCED_DETAIL_ANNOTATION]: JSON.stringify(forced)} : {}),
        },
      },
      spec: {selector: current.spec?.selector, template: target.template},
    },
    FIELD_MANAGER,
  )
  const deadline = Date.now() + (options.timeoutMs ?? 600_000)
  for (;;) {
    const d = await deps.kube.get<Deployment>(PATHS.deployments(options.namespace), options.service)
    if (deploymentProgress(d).complete) break
    if (Date.now() > deadline) {
      task.fail()
      throw new RefusedError(`${options.service} did not become available on ${target.version} in time.`)
    }
    await sleep(250, ctx.signal)
  }
  task.succeed(`${options.service} runs ${target.version} again`)
  const now = new Date().toISOString()
  const entry: HistoryEntry = {
    id: `${options.service}-undo-${Date.now().toString(36)}`,
    strategy: 'undo',
    phase: 'Healthy',
    startedAt: now,
    finishedAt: now,
    stable: state?.canary ?? {version: target.from ?? 'unknown', images: [], digests: []},
    canary: {version: target.version, images: [], digests: []},
    message: `undo: back to ${target.version}`,
    canaryTemplate: target.template,
    stableTemplate: current.spec?.template,
    ...(forced ? {forced, reason: forced.reason} : {}),
  }
  await store.appendHistory(options.namespace, options.service, entry)
  return {
    service: options.service,
    kind: 'rollback',
    from: target.from,
    to: target.version,
    rollouts: [],
    exit: 'OK',
    ...(forced ? {forced} : {}),
  }
}
