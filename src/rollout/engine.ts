/**
 * The rollout driver. Without a controller in the cluster, the CLI runs each rollout as an
 * explicit state machine: every transition is written to the state ConfigMap before the CLI
 * acts on it, and every action is idempotent (server-side apply, merge patches to absolute
 * values), so a CLI killed at any point can be resumed, or aborted, from any machine.
 *
 * Canary: setup (pinned stable Service, canary Deployment at 0, route at 0 %) → steps → promote
 * (canary carries 100 %, the stable Deployment gets the new template, traffic returns to it,
 * the canary goes away, the route is restored). Blue-green compiles to steps too: pre-promotion
 * analysis → [pause] → switch the active Service → post-promotion analysis → scale-down delay
 * → finalise. Abort: all traffic back to stable first, then the canary is scaled down.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {formatDuration, parseDuration} from '../config/duration.js'
import {FIELD_MANAGER} from '../deploy/labels.js'
import type {KubeObject} from '../kubernetes/resources.js'
import {withIntentHash} from '../kubernetes/unchanged.js'
import {RefusedError, RetailOpsError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {runAnalysis, type MetricsProvider} from './analysis.js'
import {canaryReplicasFor} from './capacity.js'
import {currentReplicaSet, deploymentProgress, PATHS, podProblems, selectorString, type Obj, type RolloutKube} from './kube.js'
import {scaleAt, formatStep} from './steps.js'
import {assertLeaseFree, describeLease, leaseAlive, newLease, ownsLease, RolloutHeldError, StateStore} from './store.js'
import {ensureService, makeRouter, names, pinAutoscaler, ROLLOUT_LABEL, TRACK_LABEL, type TrafficRouter} from './traffic.js'
import {isTerminal, type HistoryEntry, type Phase, type RolloutEvent, type RolloutRequest, type RolloutState} from './types.js'

export const FORCED_ANNOTATION = 'retailops.dev/forced-release-reason'
/** The whole gate override on the Deployment: who, when, and which gates it overrode (JSON). */
export const FORCED_DETAIL_ANNOTATION = 'retailops.dev/forced-release'
const POLL_MS = 100
const MAX_EVENTS = 60

export interface DriveDeps {
  kube: RolloutKube
  store: StateStore
  /**
   * Checks a state read back from the cluster before the driver acts on it (see trust.ts); runs
   * on the state as read when the lease is taken. Throws to stop before anything is applied.
   */
  verify?: (state: RolloutState, expected: {namespace: string; service: string}) => Promise<RolloutState>
  provider?: MetricsProvider
  /** Observed requests per second of a service (for capacity-based canary scaling). */
  observedRps?: (state: RolloutState) => Promise<number | undefined>
}

export interface DriveOptions {
  /** Stop driving (and time the rollout out) after this long. */
  timeoutMs?: number
  /** Take the lease from a live holder (a hung job), recording why: `rollout resume --take-over --reason`. */
  takeOver?: {reason: string}
}

/** Why the driver stopped: a terminal phase, or a phase that waits for a person. */
export interface DriveOutcome {
  states: RolloutState[]
}

/** Runs a group of rollouts (released together) until each is terminal or waits for a person. */
export async function drive(states: RolloutState[], deps: DriveDeps, ctx: RunContext, options: DriveOptions = {}): Promise<DriveOutcome> {
  const drivers = states.map((s) => new Driver(s, deps, ctx, options))
  const acquired: Driver[] = []
  try {
    for (const d of drivers) {
      await d.acquire()
      acquired.push(d)
    }
  } catch (error) {
    await Promise.all(acquired.map((d) => d.release()))
    throw error
  }
  const group = new GroupBarrier(drivers)
  const results = await Promise.allSettled(drivers.map((d) => d.run(group)))
  await Promise.all(drivers.map((d) => d.release()))
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  if (ctx.signal?.aborted && drivers.some((d) => !isTerminal(d.state.phase))) {
    const names = drivers.map((d) => d.state.service).join(' ')
    throw new RetailOpsError('INTERRUPTED', `Interrupted: the rollout of ${names} stays where it is (${drivers.map((d) => `${d.state.service} ${d.state.phase} at step ${d.state.step + 1}`).join(', ')}).`, {
      nextSteps: [`\`retailops rollout resume ${drivers[0].state.service}\` continues it; \`retailops rollout abort ${drivers[0].state.service}\` rolls it back.`],
    })
  }
  return {states: drivers.map((d) => d.state)}
}

/** Members of a release promote together, and when one aborts the others abort too. */
class GroupBarrier {
  abortReason?: string
  constructor(readonly drivers: Driver[]) {}

  abortAll(from: Driver, reason: string): void {
    if (this.abortReason) return
    this.abortReason = `aborted together with ${from.state.service}: ${reason}`
  }

  /** Every member has finished its steps (or is already promoted): promotion may start. */
  allReady(): boolean {
    return this.drivers.every((d) => d.state.phase === 'Healthy' || d.state.phase === 'Promoting' || (d.state.step >= d.state.spec.steps.length && !isTerminal(d.state.phase)))
  }

  /** A member that waits for a person, or has ended without promotion: the others cannot promote now. */
  blocker(self: Driver): Driver | undefined {
    return this.drivers.find((d) => d !== self && (d.state.phase === 'Paused' || d.state.phase === 'Inconclusive') && d.stopped)
  }
}

class Interrupted extends Error {}

export class Driver {
  private router: TrafficRouter
  private writing: Promise<void> = Promise.resolve()
  private renewTimer?: NodeJS.Timeout
  private readonly startedAt = Date.now()
  stopped = false

  constructor(
    public state: RolloutState,
    private readonly deps: DriveDeps,
    private readonly ctx: RunContext,
    private readonly options: DriveOptions,
  ) {
    this.router = makeRouter(state.spec.router, deps.kube)
  }

  private get n() {
    return names(this.state.service)
  }

  private get canaryName(): string {
    return this.state.spec.strategy === 'blue-green' ? this.n.previewDeployment : this.n.canaryDeployment
  }

  private get track(): string {
    return this.state.spec.strategy === 'blue-green' ? 'preview' : 'canary'
  }

  // ---------------------------------------------------------------- persistence and lease

  /**
   * Takes the rollout's lease by compare-and-swap on the state just read: the write fails (exit
   * 13) when another CLI wrote in between. A live lease of another CLI is refused, unless taken
   * over on purpose (recorded with its reason).
   */
  async acquire(): Promise<void> {
    const fresh = await this.deps.store.read(this.state.namespace, this.state.service, {forWrite: true})
    if (!fresh.state || fresh.state.id !== this.state.id) {
      const other = fresh.state
      throw new RolloutHeldError(
        other ? `The rollout of ${this.state.service} is now ${other.id} (${other.phase})${other.lease ? `, driven by ${describeLease(other.lease)}` : ''}, not ${this.state.id}.` : `The rollout state of ${this.state.service} has been removed.`,
        this.state.service,
        other?.lease,
      )
    }
    // The namespace is where this CLI was told to work, never what the stored state says.
    this.state = {...fresh.state, namespace: this.state.namespace}
    if (this.deps.verify) this.state = await this.deps.verify(this.state, {namespace: this.state.namespace, service: this.state.service})
    if (!ownsLease(this.state)) {
      const previous = this.state.lease
      const live = previous && leaseAlive(previous)
      if (live && this.options.takeOver) {
        this.state.lease = {...newLease(), takenOver: {from: previous, reason: this.options.takeOver.reason, at: new Date().toISOString()}}
        this.event(`taken over from ${describeLease(previous)}: ${this.options.takeOver.reason}`)
      } else {
        assertLeaseFree(this.state)
        this.state.lease = newLease()
      }
    }
    await this.persist()
    this.renewTimer = setInterval(() => void this.persist().catch(() => {}), 5000)
    this.renewTimer.unref()
  }

  /** Another CLI wrote the state (took the rollout over): this one must not act any more. */
  lost?: RolloutHeldError

  async release(): Promise<void> {
    clearInterval(this.renewTimer)
    if (!this.lost && ownsLease(this.state)) {
      this.state.lease = undefined
      await this.persist().catch(() => {})
    }
  }

  /** Writes the state (serialised: the lease renewal and the main flow share one object). */
  persist(options: {history?: HistoryEntry[]} = {}): Promise<void> {
    const next = this.writing.then(async () => {
      if (this.lost) throw this.lost
      if (this.state.lease && ownsLease(this.state)) this.state.lease.renewedAt = new Date().toISOString()
      try {
        await this.deps.store.write(this.state, options)
      } catch (error) {
        if (error instanceof RolloutHeldError) {
          this.lost = error
          clearInterval(this.renewTimer)
        }
        throw error
      }
    })
    this.writing = next.catch(() => {})
    return next
  }

  private event(message: string): void {
    const e: RolloutEvent = {at: new Date().toISOString(), phase: this.state.phase, step: this.state.step, message}
    this.state.events = [...this.state.events, e].slice(-MAX_EVENTS)
    this.state.message = message
    this.ctx.out.info(`${this.state.service}: ${message}`)
  }

  /** Records a transition, then persists it: nothing acts on a phase that is not stored. */
  private async transition(phase: Phase, message: string, patch: Partial<RolloutState> = {}): Promise<void> {
    Object.assign(this.state, patch, {phase})
    this.event(message)
    await this.persist()
  }

  /** A pending request from another CLI (promote, abort) for this rollout. */
  private async pendingRequest(): Promise<RolloutRequest | undefined> {
    return (await this.pending())?.request
  }

  private async pending(): Promise<{request: RolloutRequest; resourceVersion: string} | undefined> {
    if (this.lost) throw this.lost
    const pending = await this.deps.store.readRequest(this.state.namespace, this.state.service)
    if (!pending) return undefined
    if (pending.request.rolloutId && pending.request.rolloutId !== this.state.id) {
      // Left over from an earlier rollout of the service: not for this one.
      await this.deps.store.clearRequest(this.state.namespace, this.state.service, pending.resourceVersion)
      return undefined
    }
    return pending
  }

  // ---------------------------------------------------------------- main loop

  private group?: GroupBarrier

  async run(group: GroupBarrier): Promise<void> {
    this.group = group
    try {
      for (;;) {
        if (isTerminal(this.state.phase)) return
        if (this.ctx.signal?.aborted) throw new Interrupted('interrupted')
        await this.takeRequest()
        if (group.abortReason && !this.isAborting()) await this.beginAbort(group.abortReason)
        if (this.deadlinePassed() && !this.isAborting()) await this.beginAbort(`the rollout did not finish within ${formatDuration(this.deadline()!)}`, 'TimedOut')
        if (this.isAborting()) {
          await this.runAbort()
          continue
        }
        if (this.state.phase === 'Promoting') {
          await this.runPromotion()
          continue
        }
        if (this.state.phase === 'Inconclusive' || (this.state.phase === 'Paused' && this.waitsForPerson())) {
          this.stopped = true
          return
        }
        if (this.state.stage === 'setup' || this.state.stage === undefined) {
          await this.setup()
          continue
        }
        if (this.state.step < this.state.spec.steps.length) {
          await this.runStep(group)
          continue
        }
        // Every step is done: wait for the other members of the release, then promote together.
        if (!group.allReady()) {
          const blocker = group.blocker(this)
          if (blocker) {
            this.event(`steps done; waits for ${blocker.state.service} (${blocker.state.phase}) before promoting together`)
            await this.persist()
            this.stopped = true
            return
          }
          await this.wait(POLL_MS)
          continue
        }
        await this.transition('Promoting', 'all steps passed: promoting', {stage: 'full-weight'})
      }
    } catch (error) {
      // Another CLI took the rollout over: it decides from now on; this one changes nothing more.
      if (error instanceof RolloutHeldError || this.lost) throw this.lost ?? error
      if (error instanceof Interrupted || this.ctx.signal?.aborted) {
        this.event('interrupted: the rollout stays where it is; `retailops rollout resume` continues it, `rollout abort` rolls it back')
        await this.persist().catch(() => {})
        return
      }
      const message = error instanceof CanaryNotReady ? error.message : `error: ${(error as Error).message}`
      // An error while acting is an abort reason, unless we are aborting already.
      if (!this.isAborting()) {
        group.abortAll(this, message)
        await this.beginAbort(message)
        await this.runAbort().catch(async (e) => {
          // Traffic that may still reach the canary is not a detail to log: the command must say so (exit 24).
          if (e instanceof TrafficNotReturned) throw e
          this.event(`abort could not finish: ${(e as Error).message}; run \`retailops rollout abort ${this.state.service}\``)
          await this.persist().catch(() => {})
        })
        return
      }
      throw error
    } finally {
      if (this.state.phase === 'Aborted' || this.state.phase === 'TimedOut') group.abortAll(this, this.state.reason ?? this.state.message)
    }
  }

  private isAborting(): boolean {
    return this.state.phase === 'Aborting' || this.state.phase === 'Aborted' || this.state.phase === 'TimedOut'
  }

  private deadline(): number | undefined {
    const d = [this.state.spec.deadlineMs, this.options.timeoutMs].filter((x): x is number => x !== undefined)
    return d.length > 0 ? Math.min(...d) : undefined
  }

  private deadlinePassed(): boolean {
    const spec = this.state.spec.deadlineMs
    if (spec !== undefined && Date.now() > Date.parse(this.state.createdAt) + spec) return true
    return this.options.timeoutMs !== undefined && Date.now() > this.startedAt + this.options.timeoutMs
  }

  private waitsForPerson(): boolean {
    const step = this.state.spec.steps[this.state.step]
    return Boolean(step && 'pause' in step && !step.pause.duration)
  }

  /** Acts on a request another CLI wrote, then clears it. */
  private async takeRequest(): Promise<void> {
    const pending = await this.pending()
    if (!pending) return
    const request = pending.request
    this.state.request = undefined
    if (request.forced) {
      const before = this.state.forced
      this.state.forced = {...request.forced, reason: before ? `${request.forced.reason} (the release was forced before: ${before.reason})` : request.forced.reason}
      this.event(`${request.action} by ${request.by} despite closed release gates (recorded): ${request.forced.overridden.join('; ') || request.forced.reason}`)
    }
    if (request.action === 'abort') {
      await this.beginAbort(`aborted by ${request.by}${request.reason ? `: ${request.reason}` : ''}`)
    } else if (request.action === 'promote-full' && !this.isAborting() && this.state.phase !== 'Promoting') {
      this.event(`promote --full by ${request.by}: skipping the remaining steps`)
      this.state.step = this.state.spec.steps.length
      // Before setup is done the main loop finishes it first, then finds every step done.
      if (this.state.stage !== undefined && this.state.stage !== 'setup') {
        this.state.phase = 'Promoting'
        this.state.stage = 'full-weight'
      } else this.state.phase = 'Progressing'
    } else if (request.action === 'promote' && !this.isAborting()) {
      this.skipCurrentStep(`promoted by ${request.by}`)
    }
    await this.persist()
    // Only the request acted on goes; one written meanwhile (another resourceVersion) stays.
    await this.deps.store.clearRequest(this.state.namespace, this.state.service, pending.resourceVersion)
  }

  /** `rollout promote`: a pause, an analysis or an inconclusive verdict counts as passed. */
  skipCurrentStep(message: string): void {
    const step = this.state.spec.steps[this.state.step]
    if (this.state.phase === 'Inconclusive' || (step && ('pause' in step || 'analysis' in step))) {
      const run = this.state.analysisRuns.at(-1)
      if (run && run.phase === 'Running') Object.assign(run, {phase: 'Successful', finishedAt: new Date().toISOString(), message: `Skipped: ${message}`})
      this.state.step = Math.min(this.state.step + 1, this.state.spec.steps.length)
      this.state.stepStartedAt = new Date().toISOString()
      this.state.phase = 'Progressing'
      this.event(`${message}: step ${this.state.step} of ${this.state.spec.steps.length} next`)
    } else {
      this.event(`${message}: the current step (${step ? formatStep(step) : 'promotion'}) cannot be skipped; it goes on`)
    }
  }

  private async wait(ms: number): Promise<void> {
    await sleep(ms, undefined, {signal: this.ctx.signal}).catch(() => {
      throw new Interrupted('interrupted')
    })
  }

  // ---------------------------------------------------------------- setup

  private async stableDeployment(): Promise<Obj> {
    const d = await this.deps.kube.get(PATHS.deployments(this.state.namespace), this.state.service)
    if (!d) throw new Error(`Deployment ${this.state.namespace}/${this.state.service} (stable) has disappeared`)
    return d
  }

  private selector(stable: Obj): Record<string, string> {
    return {...(stable.spec?.selector?.matchLabels ?? {})}
  }

  private async setup(): Promise<void> {
    if (this.state.stage !== 'setup') {
      this.state.stage = 'setup'
      await this.persist()
    }
    const stable = await this.stableDeployment()
    await this.router.validate(this.state)
    const selector = this.selector(stable)
    if (this.state.spec.strategy === 'blue-green') {
      const active = await this.deps.kube.get(PATHS.services(this.state.namespace), this.state.service)
      if (!active) throw new Error(`Service ${this.state.namespace}/${this.state.service} (active) does not exist`)
      if (!this.state.routeBackup) {
        this.state.routeBackup = {selector: active.spec.selector}
        await this.persist()
      }
      await this.setActiveSelector({...(this.state.routeBackup.selector as Record<string, string>), 'pod-template-hash': this.state.stable.podTemplateHash!})
      await ensureService(this.deps.kube, this.state, this.n.previewService, {...selector, [TRACK_LABEL]: 'preview'})
      this.state.activeColour = 'stable'
    } else {
      if (!this.state.routeBackup && this.state.spec.router !== 'replicas') {
        await this.router.backup(this.state)
        await this.persist()
      }
      if (this.state.spec.router === 'replicas' && this.state.hpaBackup === undefined) {
        // The autoscaler's bounds are stored before the router pins them: restored even after a crash.
        await this.router.backup(this.state)
        await this.persist()
      }
      await this.router.prepare(this.state, selector)
    }
    const initial = this.state.spec.strategy === 'blue-green' ? (this.state.spec.previewReplicas ?? this.state.spec.replicas) : 0
    await this.applyCanary(stable, initial)
    this.state.canaryReplicas = initial
    if (initial > 0) await this.waitCanaryReady(initial)
    this.state.stage = 'steps'
    this.state.stepStartedAt = new Date().toISOString()
    await this.transition('Progressing', this.state.spec.strategy === 'blue-green'
      ? `preview ${this.n.previewDeployment} is up (${initial} pods, ${this.state.canary.version}); active Service still on ${this.state.stable.version}`
      : `canary ${this.n.canaryDeployment} created; ${this.state.spec.router} router sends 0 % to it`)
  }

  /** The canary (or preview) Deployment: the new pod template, its own selector and track label. */
  private canaryObject(stable: Obj, replicas: number): Obj {
    const desired = this.state.desired as Obj
    const labels = {...(desired.metadata.labels ?? {})}
    delete labels['retailops.dev/applyset']
    const selector = {...this.selector(stable), [TRACK_LABEL]: this.track}
    const template = JSON.parse(JSON.stringify(desired.spec.template))
    template.metadata = template.metadata ?? {}
    template.metadata.labels = {...template.metadata.labels, ...selector, [ROLLOUT_LABEL]: this.state.id}
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: this.canaryName,
        namespace: this.state.namespace,
        labels: {...labels, [TRACK_LABEL]: this.track, [ROLLOUT_LABEL]: this.state.id},
        annotations: {'retailops.dev/rollout-id': this.state.id, ...(this.state.forced ? {[FORCED_ANNOTATION]: this.state.forced.reason} : {})},
      },
      spec: {
        replicas,
        selector: {matchLabels: selector},
        template,
        strategy: desired.spec.strategy,
        revisionHistoryLimit: 2,
        progressDeadlineSeconds: Math.max(1, Math.round(this.state.spec.progressDeadlineMs / 1000)),
      },
    }
  }

  private async applyCanary(stable: Obj, replicas: number): Promise<void> {
    await this.deps.kube.apply(PATHS.deployments(this.state.namespace), this.canaryObject(stable, replicas))
  }

  private async scaleCanary(replicas: number): Promise<void> {
    const existing = await this.deps.kube.get(PATHS.deployments(this.state.namespace), this.canaryName)
    if (existing) await this.deps.kube.mergePatch(PATHS.deployments(this.state.namespace), this.canaryName, {spec: {replicas}})
    else await this.applyCanary(await this.stableDeployment(), replicas)
    this.state.canaryReplicas = replicas
  }

  /**
   * Waits until `replicas` canary pods are Ready. Past progressDeadline it throws with the pods'
   * own reasons (CrashLoopBackOff, ImagePullBackOff, Unschedulable), which aborts the rollout.
   */
  private async waitCanaryReady(replicas: number): Promise<void> {
    const since = Date.now()
    for (;;) {
      const d = await this.deps.kube.get(PATHS.deployments(this.state.namespace), this.canaryName)
      const p = deploymentProgress(d)
      if (d && p.ready >= replicas && p.updated >= replicas && (d.status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)) {
        if (!this.state.canary.podTemplateHash) {
          const rs = await currentReplicaSet(this.deps.kube, d)
          this.state.canary.podTemplateHash = rs?.metadata.labels?.['pod-template-hash']
        }
        return
      }
      if (Date.now() - since > this.state.spec.progressDeadlineMs) {
        const pods = await this.deps.kube.list(PATHS.pods(this.state.namespace), selectorString({[TRACK_LABEL]: this.track, [ROLLOUT_LABEL]: this.state.id}))
        const problems = podProblems(pods)
        if (problems.length === 0) {
          const conditions = (d?.status?.conditions ?? []) as {type: string; status: string; reason?: string; message?: string}[]
          problems.push(...conditions.filter((c) => c.status === 'False' || c.type === 'ReplicaFailure').map((c) => `${c.type}: ${c.message ?? c.reason}`))
          if (pods.length < replicas) problems.push(`${pods.length} of ${replicas} pods exist`)
        }
        throw new CanaryNotReady(`${this.track} pods not Ready within progressDeadline ${formatDuration(this.state.spec.progressDeadlineMs)}: ${p.ready}/${replicas} ready${problems.length ? `; ${problems.join('; ')}` : ''}`)
      }
      const request = await this.pendingRequest()
      if (request?.action === 'abort' || this.group?.abortReason) return
      await this.wait(POLL_MS)
    }
  }

  private unreadySince?: number

  /**
   * While the canary takes traffic (pauses, analysis), its pods must stay Ready: a canary whose
   * Ready pods stay below what its weight needs for longer than progressDeadline is aborted.
   */
  private async checkCanaryStillReady(): Promise<void> {
    if (this.state.weight === 0 || this.state.canaryReplicas === 0) return
    if (this.state.spec.strategy === 'blue-green' && this.state.activeColour !== 'preview') return
    const d = await this.deps.kube.get(PATHS.deployments(this.state.namespace), this.canaryName)
    const ready = d?.status?.readyReplicas ?? 0
    if (ready >= this.state.canaryReplicas) {
      this.unreadySince = undefined
      return
    }
    this.unreadySince ??= Date.now()
    if (Date.now() - this.unreadySince > this.state.spec.progressDeadlineMs) {
      const pods = await this.deps.kube.list(PATHS.pods(this.state.namespace), selectorString({[TRACK_LABEL]: this.track, [ROLLOUT_LABEL]: this.state.id}))
      const problems = podProblems(pods)
      throw new CanaryNotReady(`${this.track} pods stopped being Ready while taking ${this.state.weight} % of traffic: ${ready}/${this.state.canaryReplicas} ready for over ${formatDuration(this.state.spec.progressDeadlineMs)}${problems.length ? `; ${problems.join('; ')}` : ''}`)
    }
  }

  // ---------------------------------------------------------------- steps

  private async runStep(group: GroupBarrier): Promise<void> {
    const i = this.state.step
    const step = this.state.spec.steps[i]
    if ('setWeight' in step) {
      if (this.state.spec.strategy === 'blue-green') await this.switchActive()
      else await this.setWeight(step.setWeight)
      // Stopped early by an abort (a request or the group): the main loop acts on it.
      if (this.state.spec.strategy === 'blue-green' ? this.state.activeColour !== 'preview' : this.state.weight !== step.setWeight) return
    } else if ('setCanaryScale' in step) {
      await this.setWeight(this.state.weight)
    } else if ('pause' in step) {
      const ms = step.pause.duration ? parseDuration(step.pause.duration)! : undefined
      if (this.state.phase !== 'Paused') {
        await this.transition('Paused', ms === undefined ? `paused at step ${i + 1}: waiting for \`retailops rollout promote ${this.state.service}\`` : `paused ${formatDuration(ms)} at step ${i + 1}`, {stepStartedAt: new Date().toISOString()})
      }
      if (ms === undefined) return
      const until = Date.parse(this.state.stepStartedAt) + ms
      while (Date.now() < until) {
        await this.wait(Math.min(1000, until - Date.now()))
        if (await this.pendingRequest()) return
        if (group.abortReason || this.deadlinePassed()) return
        await this.checkCanaryStillReady()
      }
    } else if ('analysis' in step) {
      const verdict = await this.analyse(i, step.analysis.count, group)
      if (verdict === 'stop') return
    }
    await this.advance()
  }

  private async advance(): Promise<void> {
    this.state.step += 1
    this.state.stepStartedAt = new Date().toISOString()
    const next = this.state.spec.steps[this.state.step]
    await this.transition('Progressing', next ? `step ${this.state.step + 1}/${this.state.spec.steps.length}: ${formatStep(next)}` : 'all steps done')
  }

  /** Canary pods first (Ready), then the weight: traffic never points at pods that cannot take it. */
  private async setWeight(weight: number): Promise<void> {
    const rps = await this.deps.observedRps?.(this.state).catch(() => undefined)
    const scale = canaryReplicasFor(this.state.spec, weight, scaleAt(this.state.spec.steps, this.state.step), rps)
    if (scale.capped) this.ctx.out.warn(`${this.state.service}: ${weight} % needs more canary pods than maxReplicas ${this.state.spec.maxReplicas} allows; running ${scale.replicas}`)
    this.state.desiredWeight = weight
    if (scale.replicas !== this.state.canaryReplicas || this.state.phase !== 'Progressing') {
      await this.transition('Progressing', `scaling ${this.track} to ${scale.replicas} pods (${scale.reason}) before sending it ${weight} %`)
    }
    await this.scaleCanary(scale.replicas)
    await this.persist()
    if (scale.replicas > 0) await this.waitCanaryReady(scale.replicas)
    if ((await this.pendingRequest())?.action === 'abort' || this.group?.abortReason) return
    await this.router.setWeight(this.state, weight)
    this.state.weight = weight
    this.event(`${weight} % of traffic to the ${this.track} (${scale.replicas} Ready pods)`)
    await this.persist()
  }

  /** Runs (or resumes) the analysis of a step; a failure aborts, an inconclusive verdict pauses. */
  private async analyse(stepIndex: number, count: number | undefined, group: GroupBarrier): Promise<'next' | 'stop'> {
    const kind = this.state.spec.strategy === 'blue-green' ? (this.state.activeColour === 'preview' ? 'post-promotion' : 'pre-promotion') : `step ${stepIndex + 1}`
    if (!this.deps.provider) {
      const policy = this.state.spec.analysis.missingData
      if (policy !== 'pass') {
        await this.transition('Inconclusive', `no metrics provider (Prometheus URL) for the ${kind} analysis; missingData=${policy}`, {reason: 'no Prometheus configured'})
        return 'stop'
      }
      this.event(`no metrics provider; missingData=pass lets the ${kind} analysis pass`)
      return 'next'
    }
    const spec = count ? {...this.state.spec.analysis, count} : this.state.spec.analysis
    const last = this.state.analysisRuns.at(-1)
    const resume = last && last.kind === kind && last.phase === 'Running' ? last : undefined
    if (this.state.phase !== 'Analyzing') await this.transition('Analyzing', `${kind} analysis: ${spec.metrics.map((m) => m.name).join(', ')} every ${formatDuration(spec.intervalMs)} × ${spec.count}`)
    const run = await runAnalysis({
      provider: this.deps.provider,
      target: {service: this.state.service, namespace: this.state.namespace, canaryVersion: this.state.canary.version, stableVersion: this.state.stable.version},
      spec,
      kind,
      resume,
      signal: this.ctx.signal,
      onProgress: async (r) => {
        const runs = this.state.analysisRuns
        if (runs.at(-1)?.id === r.id) runs[runs.length - 1] = r
        else runs.push(r)
        this.state.analysisRuns = runs.slice(-10)
        this.state.message = `${kind} analysis: ${r.message ?? r.phase}`
        await this.persist()
      },
      interrupt: async () => {
        if (group.abortReason || this.deadlinePassed()) return 'stopping'
        await this.checkCanaryStillReady()
        const request = await this.pendingRequest()
        if (request?.action === 'promote' || request?.action === 'promote-full') return `promoted by ${request.by}`
        if (request?.action === 'abort') return 'abort requested'
        return undefined
      },
    }).catch((error) => {
      if (this.ctx.signal?.aborted) throw new Interrupted('interrupted')
      throw error
    })
    if (run.message?.startsWith('Skipped:')) {
      // A request or a group abort stopped it: the main loop acts on it.
      if ((await this.pendingRequest())?.action === 'promote') {
        await this.takeRequest()
      }
      return 'stop'
    }
    if (run.phase === 'Failed' || run.phase === 'Error') {
      await this.beginAbort(`${kind} analysis ${run.phase.toLowerCase()}: ${run.message}`)
      return 'stop'
    }
    if (run.phase === 'Inconclusive') {
      await this.transition('Inconclusive', `${kind} analysis inconclusive: ${run.message}; \`retailops rollout promote\` accepts it, \`rollout abort\` rolls back`, {reason: run.message})
      return 'stop'
    }
    this.event(`${kind} analysis passed: ${run.message}`)
    return 'next'
  }

  // ---------------------------------------------------------------- blue-green

  private async setActiveSelector(selector: Record<string, string>): Promise<void> {
    // A merge patch cannot remove keys it does not name: replace the selector whole with null first.
    const active = await this.deps.kube.get(PATHS.services(this.state.namespace), this.state.service)
    const remove = Object.fromEntries(Object.keys(active?.spec?.selector ?? {}).filter((k) => !(k in selector)).map((k) => [k, null]))
    await this.deps.kube.mergePatch(PATHS.services(this.state.namespace), this.state.service, {spec: {selector: {...remove, ...selector}}})
  }

  /** Blue-green promotion: the new colour at full scale and Ready, then the active Service switches. */
  private async switchActive(): Promise<void> {
    const n = this.state.spec.replicas
    if (this.state.canaryReplicas < n) {
      await this.transition('Progressing', `scaling preview to ${n} pods before switching the active Service`)
      await this.scaleCanary(n)
      await this.persist()
    }
    await this.waitCanaryReady(n)
    if ((await this.pendingRequest())?.action === 'abort' || this.group?.abortReason) return
    await this.setActiveSelector({...(this.state.routeBackup!.selector as Record<string, string>), 'pod-template-hash': this.state.canary.podTemplateHash!})
    this.state.activeColour = 'preview'
    this.state.weight = 100
    this.state.desiredWeight = 100
    this.state.promotedAt = new Date().toISOString()
    this.event(`active Service ${this.state.service} switched to ${this.state.canary.version} (${this.state.canary.podTemplateHash}); ${this.state.stable.version} stays up for instant rollback`)
    await this.persist()
  }

  // ---------------------------------------------------------------- promotion

  private async runPromotion(): Promise<void> {
    const ns = this.state.namespace
    const n = this.state.spec.replicas
    if (this.state.stage === 'full-weight') {
      if (this.state.spec.strategy === 'blue-green') {
        if (this.state.activeColour !== 'preview') await this.switchActive()
      } else {
        await this.setWeight(100)
        if (this.state.spec.router === 'replicas') await this.deps.kube.mergePatch(PATHS.deployments(ns), this.state.service, {spec: {replicas: 0}})
      }
      if ((await this.pendingRequest())?.action === 'abort') return
      this.state.stage = 'update-stable'
      this.event(`the new version carries all traffic; updating Deployment ${this.state.service} to it`)
      await this.persist()
    }
    if (this.state.stage === 'update-stable') {
      // With the intent hash a deploy computes for the same render, so the next deploy of the same
      // version finds the Deployment unchanged and leaves it alone.
      const desired = withIntentHash(JSON.parse(JSON.stringify(this.state.desired)) as KubeObject) as unknown as Obj
      desired.metadata = {...desired.metadata, name: this.state.service, namespace: ns}
      // The replica router scaled the stable Deployment itself: it gets the count the rollout began
      // with back. Otherwise the rollout never touched it, and the live count stands (an autoscaler
      // or a campaign's prewarm may have raised it meanwhile: 30 stays 30).
      const live = await this.stableDeployment()
      desired.spec.replicas = this.state.spec.strategy === 'canary' && this.state.spec.router === 'replicas' ? n : (live.spec?.replicas ?? n)
      // The replica router's autoscaler is held at the full count while the new template rolls out, then restored at cleanup.
      if (this.state.spec.strategy === 'canary' && this.state.spec.router === 'replicas') await pinAutoscaler(this.deps.kube, this.state, n)
      if (this.state.forced) desired.metadata.annotations = {...desired.metadata.annotations, [FORCED_ANNOTATION]: this.state.forced.reason, [FORCED_DETAIL_ANNOTATION]: JSON.stringify(this.state.forced)}
      await this.deps.kube.apply(PATHS.deployments(ns), desired, FIELD_MANAGER)
      await this.waitStableComplete()
      this.state.stage = 'repin'
      await this.persist()
    }
    if (this.state.stage === 'repin') {
      const stable = await this.stableDeployment()
      const rs = await currentReplicaSet(this.deps.kube, stable)
      const hash = rs?.metadata.labels?.['pod-template-hash']
      if (this.state.spec.strategy === 'blue-green') {
        await this.setActiveSelector(this.state.routeBackup!.selector as Record<string, string>)
      } else if (this.state.spec.router !== 'replicas' && hash) {
        await ensureService(this.deps.kube, this.state, this.n.stableService, {...this.selector(stable), 'pod-template-hash': hash})
        await this.router.setWeight(this.state, 0)
      }
      this.state.weight = 0
      this.state.stage = 'cleanup'
      await this.persist()
    }
    if (this.state.stage === 'cleanup') {
      await this.deps.kube.delete(PATHS.deployments(ns), this.canaryName)
      if (this.state.spec.strategy === 'blue-green') await this.deps.kube.delete(PATHS.services(ns), this.n.previewService)
      else await this.router.restore(this.state)
      this.state.canaryReplicas = 0
      await this.finish('Healthy', `promoted: ${this.state.canary.version} is stable`)
    }
  }

  private async waitStableComplete(): Promise<void> {
    const since = Date.now()
    for (;;) {
      const d = await this.stableDeployment()
      if (deploymentProgress(d).complete) return
      if (Date.now() - since > this.state.spec.progressDeadlineMs) {
        const pods = await this.deps.kube.list(PATHS.pods(this.state.namespace), selectorString(this.selector(d)))
        throw new Error(`Deployment ${this.state.service} did not complete within ${formatDuration(this.state.spec.progressDeadlineMs)}: ${podProblems(pods).join('; ') || 'no pod reasons'}`)
      }
      await this.wait(POLL_MS)
    }
  }

  // ---------------------------------------------------------------- abort

  async beginAbort(reason: string, final: 'Aborted' | 'TimedOut' = 'Aborted'): Promise<void> {
    if (this.isAborting()) return
    await this.transition('Aborting', `aborting: ${reason}`, {reason, stage: final === 'TimedOut' ? 'abort:timeout' : 'abort'})
  }

  /** Sends all traffic back to stable and reads it back; throws when either fails. */
  private async returnTraffic(): Promise<void> {
    const ns = this.state.namespace
    if (this.state.spec.strategy === 'blue-green') {
      const selector = this.state.routeBackup?.selector as Record<string, string> | undefined
      if (!selector || !this.state.stable.podTemplateHash) return
      const stable = await this.stableDeployment()
      const stillStable = (await currentReplicaSet(this.deps.kube, stable))?.metadata.labels?.['pod-template-hash'] === this.state.stable.podTemplateHash
      const active = await this.deps.kube.get(PATHS.services(ns), this.state.service)
      const onPreview = Boolean(this.state.canary.podTemplateHash) && active?.spec?.selector?.['pod-template-hash'] === this.state.canary.podTemplateHash
      if (!stillStable) {
        if (onPreview) throw new Error(`the active Service selects the preview and the stable Deployment no longer runs ${this.state.stable.version} (pod-template-hash ${this.state.stable.podTemplateHash}) to switch back to`)
        return
      }
      await this.setActiveSelector({...selector, 'pod-template-hash': this.state.stable.podTemplateHash})
      const now = await this.deps.kube.get(PATHS.services(ns), this.state.service)
      if (now?.spec?.selector?.['pod-template-hash'] !== this.state.stable.podTemplateHash) throw new Error(`Service ${ns}/${this.state.service} does not select the stable pods after the switch back`)
      this.state.activeColour = 'stable'
    } else if (this.state.spec.router === 'replicas') {
      await pinAutoscaler(this.deps.kube, this.state, this.state.spec.replicas)
      await this.deps.kube.mergePatch(PATHS.deployments(ns), this.state.service, {spec: {replicas: this.state.spec.replicas}})
      // The canary's pods share the Service with stable: they go only once stable carries it all again.
      await this.waitStableComplete()
    } else if (this.state.routeBackup) {
      await this.router.setWeight(this.state, 0)
      const actual = await this.router.actualWeight(this.state)
      if (actual !== 0) throw new Error(`the ${this.state.spec.router} router still gives the canary ${actual} % after setting 0 %`)
    }
  }

  /**
   * All traffic back to stable first, then the canary goes away, then the route is restored.
   * Traffic back is a precondition: when it cannot be done (or read back), the canary is kept,
   * the state says so, and TrafficNotReturned (exit 24) tells the caller traffic may still reach it.
   */
  private async runAbort(): Promise<void> {
    if (this.state.phase !== 'Aborting') return
    const ns = this.state.namespace
    const final: Phase = this.state.stage === 'abort:timeout' ? 'TimedOut' : 'Aborted'
    try {
      await this.returnTraffic()
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error)
      this.state.trafficNotReturned = cause
      this.event(`abort stopped before removing the ${this.track}: traffic could not be returned to stable (${cause}); the ${this.track} ${this.canaryName} is kept and may still receive traffic`)
      await this.persist().catch(() => {})
      throw new TrafficNotReturned(this.state, this.canaryName, cause)
    }
    this.state.trafficNotReturned = undefined
    this.state.weight = 0
    this.event('all traffic is back on stable; scaling the canary down')
    await this.persist()
    await this.deps.kube.delete(PATHS.deployments(ns), this.canaryName)
    this.state.canaryReplicas = 0
    if (this.state.spec.strategy === 'blue-green') {
      await this.deps.kube.delete(PATHS.services(ns), this.n.previewService)
      if (this.state.routeBackup?.selector) await this.setActiveSelector(this.state.routeBackup.selector as Record<string, string>)
    } else {
      await this.router.restore(this.state)
    }
    await this.finish(final, `${final === 'TimedOut' ? 'timed out' : 'aborted'}: ${this.state.reason}; traffic is on ${this.state.stable.version}`)
  }

  // ---------------------------------------------------------------- the end

  private async finish(phase: Phase, message: string): Promise<void> {
    this.state.phase = phase
    this.state.finishedAt = new Date().toISOString()
    this.state.stage = 'done'
    this.event(message)
    const stored = await this.deps.store.read(this.state.namespace, this.state.service)
    const entry: HistoryEntry = {
      id: this.state.id,
      strategy: this.state.spec.strategy,
      phase,
      startedAt: this.state.createdAt,
      finishedAt: this.state.finishedAt,
      stable: this.state.stable,
      canary: this.state.canary,
      reason: this.state.reason,
      message,
      forced: this.state.forced,
      canaryTemplate: (this.state.desired as Obj).spec?.template,
      stableTemplate: this.state.stableTemplate,
    }
    const history = [...stored.history.filter((h) => h.id !== entry.id), entry]
    await this.persist({history})
  }
}

export class CanaryNotReady extends Error {}

/** Abort could not return traffic to stable: the canary was kept (exit 24). */
export class TrafficNotReturned extends RetailOpsError {
  constructor(state: RolloutState, canaryName: string, cause: string) {
    super('TRAFFIC_NOT_RETURNED', `${state.service}: abort could not send all traffic back to stable, so ${canaryName} was kept and traffic may still reach it (${cause}).`, {
      nextSteps: [
        `Fix the cause (permissions on the route or Service, an admission webhook, the stable Deployment), then run \`retailops rollout abort ${state.service}\` again: it starts with the traffic.`,
        `\`retailops rollout status ${state.service}\` shows the weight the router really has now.`,
      ],
      details: {service: state.service, namespace: state.namespace, canary: canaryName, weight: state.weight, cause},
    })
  }
}

/** Refuses a new rollout while one is in progress for the service (exit 13 when a live CLI drives it). */
export function assertNoActiveRollout(state: RolloutState | undefined): void {
  if (state && !isTerminal(state.phase)) {
    if (state.lease && !ownsLease(state) && leaseAlive(state.lease)) {
      throw new RolloutHeldError(`A ${state.spec.strategy} rollout of ${state.service} (${state.id}, ${state.canary.version} over ${state.stable.version}) is in progress, driven by ${describeLease(state.lease)}.`, state.service, state.lease, [
        `Wait for it to end (\`retailops rollout status ${state.service} --watch\`), then deploy again.`,
      ])
    }
    throw new RefusedError(`A ${state.spec.strategy} rollout of ${state.service} is in progress (${state.phase}, step ${state.step}/${state.spec.steps.length}).`, {
      nextSteps: [`\`retailops rollout promote ${state.service}\` or \`retailops rollout abort ${state.service}\` first; \`retailops rollout status ${state.service}\` shows where it is.`],
      details: {rolloutId: state.id, phase: state.phase},
    })
  }
}
