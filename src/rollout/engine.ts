/**
 * The rollout driver's loop. Without a controller in the cluster, the CLI runs each rollout as an
 * explicit state machine: every transition is written to the state ConfigMap before the CLI
 * acts on it, and every action is idempotent (server-side apply, merge patches to absolute
 * values), so a CLI killed at any point can be resumed, or aborted, from any machine.
 *
 * This file holds what every rollout shares: the lease, persist-then-act, requests from other
 * CLIs, the release group, steps, analysis, and the order of promotion and abort. How the new
 * version gets traffic is the strategy's (rollout-strategy.ts): canary.ts (setup → weighted steps
 * → 100 % → the stable Deployment gets the new template → traffic back to it → route restored) and
 * bluegreen.ts (preview → pre-promotion analysis → [pause] → switch the active Service →
 * post-promotion analysis → scale-down delay → finalise). Abort: all traffic back to stable first,
 * then the new version's Deployment goes.
 */

import type {Deployment} from '../kubernetes/kinds.js'
import {formatDuration, parseDuration} from '../config/duration.js'
import {FIELD_MANAGER} from '../kubernetes/labels.js'
import type {KubeObject} from '../kubernetes/resources.js'
import {withIntentHash} from '../kubernetes/unchanged.js'
import {RefusedError, RetailOpsError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import type {Output} from '../ui/output.js'
import {forecastEvidence, requestRateQuery, runAnalysis, type MetricsProvider} from './analysis.js'
import {FORCED_ANNOTATION, FORCED_DETAIL_ANNOTATION} from './gates.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {PATHS} from './kube.js'
import {strategyKind, type RolloutHost, type RolloutStrategy} from './rollout-strategy.js'
import {analysisMeasurements, rolloutCommand, rolloutEvent} from './events.js'
import {formatStep, formatSteps, waitsForPerson} from './steps.js'
import {assertLeaseFree, describeLease, leaseAlive, newLease, ownsLease, RolloutHeldError, StateStore} from './store.js'
import {
  isTerminal,
  type AnalysisSpec,
  type EvidenceForecast,
  type HistoryEntry,
  type Lease,
  type Phase,
  type RolloutEvent,
  type RolloutRequest,
  type RolloutState,
} from './types.js'
import {CanaryNotReady, Workload} from './workload.js'
import {DirectReads, releaseReads, type RolloutReads} from './observer.js'

/**
 * The longest a driver waits for a change of what it waits on before it looks again on its own
 * (deadlines, the progress deadline): changes themselves wake it at once (observer.ts).
 */
const WAIT_MS = 1000
/** A state written this long ago is written again, only to renew the lease (TTL 20 s). */
const RENEW_MS = 5000
const MAX_EVENTS = 60

export interface DriveDeps {
  kube: KubeObjects
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
  /** Stop driving (without ending the rollout) once this holds: `deploy --detach` stops after setup. */
  until?: (state: RolloutState) => boolean
  /** Instead of giving the lease up at the end, hand it to this holder (a detached Job), in the same write. */
  handOver?: Lease
}

/** Why the driver stopped: a terminal phase, or a phase that waits for a person. */
export interface DriveOutcome {
  states: RolloutState[]
}

/** Runs a group of rollouts (released together) until each is terminal or waits for a person. */
export async function drive(
  states: RolloutState[],
  deps: DriveDeps,
  ctx: RunContext,
  options: DriveOptions = {},
): Promise<DriveOutcome> {
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
  // One observer for the whole release: its drivers wait on shared watches, not on GETs of their own.
  const reads = await releaseReads(
    deps.kube,
    deps.store,
    drivers.map((d) => d.state),
    ctx.out,
  )
  for (const d of drivers) d.reads = reads
  const group = new GroupBarrier(drivers, reads)
  let results: PromiseSettledResult<void>[]
  try {
    results = await Promise.allSettled(drivers.map((d) => d.run(group)))
    await Promise.all(drivers.map((d) => d.release()))
  } finally {
    // The watches end here, whatever failed: KubeHttp.close() leaves requests in flight alone.
    await reads.close()
  }
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  if (ctx.signal?.aborted && drivers.some((d) => !isTerminal(d.state.phase))) {
    const names = drivers.map((d) => d.state.service).join(' ')
    throw new RetailOpsError(
      'INTERRUPTED',
      `Interrupted: the rollout of ${names} stays where it is (${drivers.map((d) => `${d.state.service} ${d.state.phase} at step ${d.state.step + 1}`).join(', ')}).`,
      {
        nextSteps: [
          `\`retailops rollout resume ${drivers[0].state.service}\` continues it; \`retailops rollout abort ${drivers[0].state.service}\` rolls it back.`,
        ],
      },
    )
  }
  return {states: drivers.map((d) => d.state)}
}

/** Members of a release promote together, and when one aborts the others abort too. */
class GroupBarrier {
  abortReason?: string
  constructor(
    readonly drivers: Driver[],
    private readonly reads: RolloutReads,
  ) {}

  abortAll(from: Driver, reason: string): void {
    if (this.abortReason) return
    this.abortReason = `aborted together with ${from.state.service}: ${reason}`
    // Members waiting for their pods or for the others stop waiting now.
    this.reads.notify()
  }

  /** Every member has finished its steps (or is already promoted): promotion may start. */
  allReady(): boolean {
    return this.drivers.every(
      (d) =>
        d.state.phase === 'Healthy' ||
        d.state.phase === 'Promoting' ||
        (d.state.step >= d.state.spec.steps.length && !isTerminal(d.state.phase)),
    )
  }

  /** A member that waits for a person, or has ended without promotion: the others cannot promote now. */
  blocker(self: Driver): Driver | undefined {
    return this.drivers.find(
      (d) => d !== self && (d.state.phase === 'Paused' || d.state.phase === 'Inconclusive') && d.stopped,
    )
  }
}

class Interrupted extends Error {}

export class Driver implements RolloutHost {
  private readonly strategy: RolloutStrategy
  readonly workload: Workload
  private writing: Promise<void> = Promise.resolve()
  private renewTimer?: NodeJS.Timeout
  private lastWrite = 0
  private readonly startedAt = Date.now()
  stopped = false
  /** How the driver reads what it waits on: the release's shared observer once drive() has started it. */
  reads: RolloutReads

  constructor(
    public state: RolloutState,
    private readonly deps: DriveDeps,
    private readonly ctx: RunContext,
    private readonly options: DriveOptions,
  ) {
    this.strategy = strategyKind(state).create(this)
    this.workload = new Workload(this, this.strategy.workloadName, this.strategy.track)
    this.reads = new DirectReads(deps.kube, deps.store)
  }

  get kube(): KubeObjects {
    return this.deps.kube
  }

  get out(): Output {
    return this.ctx.out
  }

  async observedRps(): Promise<number | undefined> {
    return this.deps.observedRps?.(this.state).catch(() => undefined)
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
        other
          ? `The rollout of ${this.state.service} is now ${other.id} (${other.phase})${other.lease ? `, driven by ${describeLease(other.lease)}` : ''}, not ${this.state.id}.`
          : `The rollout state of ${this.state.service} has been removed.`,
        this.state.service,
        other?.lease,
      )
    }
    // The namespace is where this CLI was told to work, never what the stored state says.
    this.state = {...fresh.state, namespace: this.state.namespace}
    if (this.deps.verify)
      this.state = await this.deps.verify(this.state, {namespace: this.state.namespace, service: this.state.service})
    if (ownsLease(this.state) && this.state.lease!.job?.pending) {
      // A detached Job's pod takes the lease the CLI handed to it: from now on it is renewed like any CLI's.
      const job = this.state.lease!.job
      this.state.lease = {...newLease(), job: {...job, pending: false}}
      this.event(`Job ${job.namespace}/${job.name} drives the rollout (pod ${this.state.lease.host})`)
    } else if (!ownsLease(this.state)) {
      const previous = this.state.lease
      const live = previous && leaseAlive(previous)
      if (live && this.options.takeOver) {
        this.state.lease = {
          ...newLease(),
          takenOver: {from: previous, reason: this.options.takeOver.reason, at: new Date().toISOString()},
        }
        this.event(`taken over from ${describeLease(previous)}: ${this.options.takeOver.reason}`)
      } else {
        assertLeaseFree(this.state)
        this.state.lease = newLease()
      }
    }
    await this.persist()
    // Every write renews the lease: only a state not written for RENEW_MS is written for the lease alone.
    this.renewTimer = setInterval(() => {
      if (Date.now() - this.lastWrite >= RENEW_MS) void this.persist().catch(() => {})
    }, 1000)
    this.renewTimer.unref()
  }

  /** Another CLI wrote the state (took the rollout over): this one must not act any more. */
  lost?: RolloutHeldError

  async release(): Promise<void> {
    clearInterval(this.renewTimer)
    if (!this.lost && ownsLease(this.state)) {
      // Handed over only when driving stopped where it was meant to (not interrupted, not ended).
      const handOver =
        this.options.handOver && !isTerminal(this.state.phase) && this.options.until?.(this.state)
          ? this.options.handOver
          : undefined
      this.state.lease = handOver && {...handOver}
      if (!handOver) {
        await this.persist().catch(() => {})
        return
      }
      this.event(`handed over to Job ${handOver.job?.namespace}/${handOver.job?.name}, which drives it from here`)
      // The handover must be stored: a Job started without it would find the lease held (exit 13).
      await this.persist()
    }
  }

  /** Writes the state (serialised: the lease renewal and the main flow share one object). */
  persist(options: {history?: HistoryEntry[]} = {}): Promise<void> {
    const next = this.writing.then(async () => {
      if (this.lost) throw this.lost
      if (this.state.lease && ownsLease(this.state)) this.state.lease.renewedAt = new Date().toISOString()
      try {
        this.lastWrite = Date.now()
        await this.deps.store.write(this.state, options)
        this.reads.notify()
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

  event(message: string): void {
    const e: RolloutEvent = {at: new Date().toISOString(), phase: this.state.phase, step: this.state.step, message}
    this.state.events = [...this.state.events, e].slice(-MAX_EVENTS)
    this.state.message = message
    this.ctx.out.info(`${this.state.service}: ${message}`)
  }

  /** Records a transition, then persists it: nothing acts on a phase that is not stored. */
  async transition(phase: Phase, message: string, patch: Partial<RolloutState> = {}): Promise<void> {
    Object.assign(this.state, patch, {phase})
    this.event(message)
    await this.persist()
  }

  /** A pending request from another CLI (promote, abort) for this rollout. */
  private async pendingRequest(): Promise<RolloutRequest | undefined> {
    return (await this.pending())?.request
  }

  /** An abort asked for by a request or by another member of the release. */
  async abortRequested(): Promise<boolean> {
    return (await this.pendingRequest())?.action === 'abort' || Boolean(this.group?.abortReason)
  }

  private async pending(): Promise<{request: RolloutRequest; resourceVersion: string} | undefined> {
    if (this.lost) throw this.lost
    const pending = await this.reads.request(this.state.namespace, this.state.service)
    if (!pending) return undefined
    if (pending.request.rolloutId && pending.request.rolloutId !== this.state.id) {
      // Left over from an earlier rollout of the service: not for this one.
      await this.clearRequest(pending.resourceVersion)
      return undefined
    }
    return pending
  }

  /** Deletes a request acted on (only that version of it); this CLI never answers it again, even before the deletion is observed. */
  private async clearRequest(resourceVersion: string): Promise<void> {
    await this.deps.store.clearRequest(this.state.namespace, this.state.service, resourceVersion)
    this.reads.consumed(this.state.namespace, this.state.service, resourceVersion)
  }

  // ---------------------------------------------------------------- main loop

  private group?: GroupBarrier

  async run(group: GroupBarrier): Promise<void> {
    this.group = group
    try {
      for (;;) {
        if (isTerminal(this.state.phase)) return
        if (this.options.until?.(this.state)) return
        if (this.ctx.signal?.aborted) throw new Interrupted('interrupted')
        await this.takeRequest()
        if (group.abortReason && !this.isAborting()) await this.beginAbort(group.abortReason)
        if (this.deadlinePassed() && !this.isAborting())
          await this.beginAbort(`the rollout did not finish within ${formatDuration(this.deadline()!)}`, 'TimedOut')
        if (this.isAborting()) {
          await this.runAbort()
          continue
        }
        if (this.state.phase === 'Promoting') {
          await this.runPromotion()
          continue
        }
        if (waitsForPerson(this.state)) {
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
            this.event(
              `steps done; waits for ${blocker.state.service} (${blocker.state.phase}) before promoting together`,
            )
            await this.persist()
            this.stopped = true
            return
          }
          await this.waitForChange(WAIT_MS)
          continue
        }
        await this.transition('Promoting', 'all steps passed: promoting', {stage: 'full-weight'})
      }
    } catch (error) {
      // Another CLI took the rollout over: it decides from now on; this one changes nothing more.
      if (error instanceof RolloutHeldError || this.lost) throw this.lost ?? error
      if (error instanceof Interrupted || this.ctx.signal?.aborted) {
        this.event(
          'interrupted: the rollout stays where it is; `retailops rollout resume` continues it, `rollout abort` rolls it back',
        )
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
          this.event(
            `abort could not finish: ${(e as Error).message}; run \`retailops rollout abort ${this.state.service}\``,
          )
          await this.persist().catch(() => {})
        })
        return
      }
      throw error
    } finally {
      if (this.state.phase === 'Aborted' || this.state.phase === 'TimedOut')
        group.abortAll(this, this.state.reason ?? this.state.message)
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

  /** Acts on a request another CLI wrote, then clears it. */
  private async takeRequest(): Promise<void> {
    const pending = await this.pending()
    if (!pending) return
    const request = pending.request
    this.state.request = undefined
    if (request.forced) {
      const before = this.state.forced
      this.state.forced = {
        ...request.forced,
        reason: before
          ? `${request.forced.reason} (the release was forced before: ${before.reason})`
          : request.forced.reason,
      }
      this.event(
        `${request.action} by ${request.by} despite closed release gates (recorded): ${request.forced.overridden.join('; ') || request.forced.reason}`,
      )
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
    await this.clearRequest(pending.resourceVersion)
  }

  /** `rollout promote`: a pause, an analysis or an inconclusive verdict counts as passed. */
  skipCurrentStep(message: string): void {
    const step = this.state.spec.steps[this.state.step]
    if (this.state.phase === 'Inconclusive' || (step && ('pause' in step || 'analysis' in step))) {
      const run = this.state.analysisRuns.at(-1)
      if (run && run.phase === 'Running')
        Object.assign(run, {phase: 'Successful', finishedAt: new Date().toISOString(), message: `Skipped: ${message}`})
      this.state.step = Math.min(this.state.step + 1, this.state.spec.steps.length)
      this.state.stepStartedAt = new Date().toISOString()
      this.state.phase = 'Progressing'
      this.event(`${message}: step ${this.state.step} of ${this.state.spec.steps.length} next`)
      this.out.event(
        rolloutEvent(
          this.state,
          'rollout.step-passed',
          'info',
          `Step ${this.state.step}/${this.state.spec.steps.length}${step ? ` (${formatStep(step)})` : ''} of the rollout of ${this.state.service} ${this.state.canary.version} passed: ${message}.`,
          {actions: [rolloutCommand(this.state, 'status'), rolloutCommand(this.state, 'abort')]},
        ),
      )
    } else {
      this.event(
        `${message}: the current step (${step ? formatStep(step) : 'promotion'}) cannot be skipped; it goes on`,
      )
    }
  }

  /**
   * Waits at most ms for a change of what this rollout waits on: its Deployments, a request for
   * it, another member of the release. With direct reads only reading again shows a change:
   * they wait pollMs (DIRECT_POLL_MS unless given).
   */
  async waitForChange(ms: number, pollMs?: number): Promise<void> {
    await this.reads
      .changed(this.state.namespace, this.state.service, [this.state.service, this.workload.name], ms, {
        signal: this.ctx.signal,
        pollMs,
      })
      .catch(() => {
        throw new Interrupted('interrupted')
      })
  }

  // ---------------------------------------------------------------- setup

  private async setup(): Promise<void> {
    if (this.state.stage !== 'setup') {
      this.state.stage = 'setup'
      await this.persist()
    }
    const stable = await this.workload.stable()
    const {replicas: initial, message} = await this.strategy.setup(stable)
    await this.workload.apply(stable, initial)
    this.state.canaryReplicas = initial
    if (initial > 0) await this.workload.waitReady(initial)
    this.state.stage = 'steps'
    this.state.stepStartedAt = new Date().toISOString()
    await this.transition('Progressing', message)
    this.out.event(
      rolloutEvent(
        this.state,
        'rollout.started',
        'info',
        `${this.state.spec.strategy} rollout of ${this.state.service} started: ${this.state.canary.version} runs next to ${this.state.stable.version} (${message}); steps ${formatSteps(this.state.spec.steps)}.`,
        {actions: [rolloutCommand(this.state, 'status'), rolloutCommand(this.state, 'abort')]},
      ),
    )
  }

  /** While the new version takes traffic, its pods must stay Ready (an abort otherwise). */
  private async checkStillReady(): Promise<void> {
    if (this.strategy.takesTraffic()) await this.workload.checkStillReady()
  }

  // ---------------------------------------------------------------- steps

  private async runStep(group: GroupBarrier): Promise<void> {
    const i = this.state.step
    const step = this.state.spec.steps[i]
    if ('setWeight' in step) {
      // Stopped early by an abort (a request or the group): the main loop acts on it.
      if (!(await this.strategy.setWeight(step.setWeight))) return
    } else if ('setCanaryScale' in step || 'setHeaderRoute' in step || 'setMirrorRoute' in step) {
      // The weight stays; the canary's pods follow the step, then the router gets its matches or mirror.
      await this.strategy.rescale()
    } else if ('pause' in step) {
      const ms = step.pause.duration ? parseDuration(step.pause.duration)! : undefined
      if (this.state.phase !== 'Paused') {
        await this.transition(
          'Paused',
          ms === undefined
            ? `paused at step ${i + 1}: waiting for \`retailops rollout promote ${this.state.service}\``
            : `paused ${formatDuration(ms)} at step ${i + 1}`,
          {stepStartedAt: new Date().toISOString()},
        )
        this.out.event(
          rolloutEvent(
            this.state,
            'rollout.paused',
            ms === undefined ? 'warning' : 'info',
            ms === undefined
              ? `The rollout of ${this.state.service} ${this.state.canary.version} paused at step ${i + 1} with ${this.state.weight} % of traffic: it waits for a person to promote or abort it.`
              : `The rollout of ${this.state.service} ${this.state.canary.version} pauses ${formatDuration(ms)} at step ${i + 1} with ${this.state.weight} % of traffic.`,
            {actions: [rolloutCommand(this.state, 'promote'), rolloutCommand(this.state, 'abort')]},
          ),
        )
      }
      if (ms === undefined) return
      const until = Date.parse(this.state.stepStartedAt) + ms
      while (Date.now() < until) {
        const ms = Math.min(WAIT_MS, until - Date.now())
        await this.waitForChange(ms, ms)
        if (await this.pendingRequest()) return
        if (group.abortReason || this.deadlinePassed()) return
        await this.checkStillReady()
      }
    } else if ('analysis' in step) {
      const verdict = await this.analyse(i, step.analysis.count, group)
      if (verdict === 'stop') return
    }
    await this.advance()
  }

  private async advance(): Promise<void> {
    const passed = this.state.spec.steps[this.state.step]
    const run = this.state.analysisRuns.at(-1)
    const analysed = passed && 'analysis' in passed && run?.phase === 'Successful'
    this.out.event(
      rolloutEvent(
        this.state,
        'rollout.step-passed',
        'info',
        `Step ${this.state.step + 1}/${this.state.spec.steps.length} (${formatStep(passed)}) of the rollout of ${this.state.service} ${this.state.canary.version} passed${analysed ? `: ${run.message}` : ''}; ${this.state.weight} % of traffic on the new version.`,
        {
          measurements: analysed ? analysisMeasurements(run) : undefined,
          actions: [rolloutCommand(this.state, 'status'), rolloutCommand(this.state, 'abort')],
        },
      ),
    )
    this.state.step += 1
    this.state.stepStartedAt = new Date().toISOString()
    const next = this.state.spec.steps[this.state.step]
    await this.transition(
      'Progressing',
      next ? `step ${this.state.step + 1}/${this.state.spec.steps.length}: ${formatStep(next)}` : 'all steps done',
    )
  }

  /** Runs (or resumes) the analysis of a step; a failure aborts, an inconclusive verdict pauses. */
  private async analyse(stepIndex: number, count: number | undefined, group: GroupBarrier): Promise<'next' | 'stop'> {
    const kind = this.strategy.analysisKind(stepIndex)
    if (!this.deps.provider) {
      const policy = this.state.spec.analysis.missingData
      if (policy !== 'pass') {
        await this.transition(
          'Inconclusive',
          `no metrics provider (Prometheus URL) for the ${kind} analysis; missingData=${policy}`,
          {reason: 'no Prometheus configured'},
        )
        return 'stop'
      }
      this.event(`no metrics provider; missingData=pass lets the ${kind} analysis pass`)
      return 'next'
    }
    const spec = count ? {...this.state.spec.analysis, count} : this.state.spec.analysis
    const last = this.state.analysisRuns.at(-1)
    const resume = last && last.kind === kind && last.phase === 'Running' ? last : undefined
    // Before the first measurement: can this weight and this traffic give the minimum evidence at all?
    const forecast = resume ? undefined : await this.forecast(spec)
    if (forecast) {
      this.event(`${kind} analysis: ${forecast.message}`)
      if (forecast.enough) this.out.info(`${this.state.service}: ${kind} analysis: ${forecast.message}`)
      else this.out.warn(`${this.state.service}: ${kind} analysis: ${forecast.message}`)
    }
    if (this.state.phase !== 'Analyzing')
      await this.transition(
        'Analyzing',
        `${kind} analysis: ${spec.metrics.map((m) => m.name).join(', ')} every ${formatDuration(spec.intervalMs)} × ${spec.count}`,
      )
    const run = await runAnalysis({
      forecast,
      provider: this.deps.provider,
      target: {
        service: this.state.service,
        namespace: this.state.namespace,
        canaryVersion: this.state.canary.version,
        stableVersion: this.state.stable.version,
      },
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
        await this.checkStillReady()
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
      this.out.event(
        rolloutEvent(
          this.state,
          'rollout.analysis-failed',
          'critical',
          `The ${kind} analysis of ${this.state.service} ${this.state.canary.version} ${run.phase === 'Failed' ? 'failed' : 'errored'}: ${run.message}. The rollout aborts: traffic goes back to ${this.state.stable.version}.`,
          {
            measurements: analysisMeasurements(run),
            actions: [rolloutCommand(this.state, 'status'), rolloutCommand(this.state, 'history')],
          },
        ),
      )
      await this.beginAbort(`${kind} analysis ${run.phase.toLowerCase()}: ${run.message}`)
      return 'stop'
    }
    if (run.phase === 'Inconclusive') {
      await this.transition(
        'Inconclusive',
        `${kind} analysis inconclusive: ${run.message}; \`retailops rollout promote\` accepts it, \`rollout abort\` rolls back`,
        {reason: run.message},
      )
      this.out.event(
        rolloutEvent(
          this.state,
          'rollout.paused',
          'warning',
          `The ${kind} analysis of ${this.state.service} ${this.state.canary.version} was inconclusive (${run.message}): the rollout is paused for a person's decision.`,
          {
            measurements: analysisMeasurements(run),
            actions: [rolloutCommand(this.state, 'promote'), rolloutCommand(this.state, 'abort')],
          },
        ),
      )
      return 'stop'
    }
    this.event(`${kind} analysis passed: ${run.message}`)
    return 'next'
  }

  /** The evidence forecast of an analysis: the service's observed request rate, split by the weight the canary takes. */
  private async forecast(spec: AnalysisSpec): Promise<EvidenceForecast> {
    const rps = await this.deps
      .provider!.query(
        // Over the measurement window itself: what each measurement will see, at this weight.
        requestRateQuery(this.state.service, this.state.namespace, spec.windowMs),
        this.ctx.signal,
      )
      .catch(() => null)
    const weight = this.strategy.takesTraffic() ? this.state.weight : 0
    return forecastEvidence(spec, weight, rps ?? undefined)
  }

  // ---------------------------------------------------------------- promotion

  private async runPromotion(): Promise<void> {
    const ns = this.state.namespace
    if (this.state.stage === 'full-weight') {
      await this.strategy.carryAllTraffic()
      if ((await this.pendingRequest())?.action === 'abort') return
      this.state.stage = 'update-stable'
      this.event(`the new version carries all traffic; updating Deployment ${this.state.service} to it`)
      await this.persist()
    }
    if (this.state.stage === 'update-stable') {
      // With the intent hash a deploy computes for the same render, so the next deploy of the same
      // version finds the Deployment unchanged and leaves it alone.
      const desired = withIntentHash(
        JSON.parse(JSON.stringify(this.state.desired)) as KubeObject,
      ) as unknown as Deployment
      desired.metadata = {...desired.metadata, name: this.state.service, namespace: ns}
      desired.spec!.replicas = await this.strategy.stableReplicas(await this.workload.stable())
      if (this.state.forced)
        desired.metadata.annotations = {
          ...desired.metadata.annotations,
          [FORCED_ANNOTATION]: this.state.forced.reason,
          [FORCED_DETAIL_ANNOTATION]: JSON.stringify(this.state.forced),
        }
      const applied = await this.deps.kube.apply(PATHS.deployments(ns), desired, FIELD_MANAGER)
      await this.workload.waitStableComplete(applied.metadata.generation)
      this.state.stage = 'repin'
      await this.persist()
    }
    if (this.state.stage === 'repin') {
      await this.strategy.repin(await this.workload.stable())
      this.state.weight = 0
      this.state.stage = 'cleanup'
      await this.persist()
    }
    if (this.state.stage === 'cleanup') {
      await this.workload.remove()
      await this.strategy.cleanUpAfterPromotion()
      this.state.canaryReplicas = 0
      await this.finish('Healthy', `promoted: ${this.state.canary.version} is stable`)
      const passed = this.state.analysisRuns.at(-1)
      this.out.event(
        rolloutEvent(
          this.state,
          'rollout.promoted',
          'success',
          `${this.state.service} ${this.state.canary.version} was promoted: it is stable and carries all traffic (was ${this.state.stable.version}).`,
          {
            measurements: passed?.phase === 'Successful' ? analysisMeasurements(passed) : undefined,
            actions: [rolloutCommand(this.state, 'undo'), rolloutCommand(this.state, 'history')],
          },
        ),
      )
    }
  }

  // ---------------------------------------------------------------- abort

  async beginAbort(reason: string, final: 'Aborted' | 'TimedOut' = 'Aborted'): Promise<void> {
    if (this.isAborting()) return
    await this.transition('Aborting', `aborting: ${reason}`, {
      reason,
      stage: final === 'TimedOut' ? 'abort:timeout' : 'abort',
    })
  }

  /**
   * All traffic back to stable first, then the canary goes away, then the route is restored.
   * Traffic back is a precondition: when it cannot be done (or read back), the canary is kept,
   * the state says so, and TrafficNotReturned (exit 24) tells the caller traffic may still reach it.
   */
  private async runAbort(): Promise<void> {
    if (this.state.phase !== 'Aborting') return
    const final: Phase = this.state.stage === 'abort:timeout' ? 'TimedOut' : 'Aborted'
    const {track, workloadName} = this.strategy
    try {
      await this.strategy.returnTraffic()
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error)
      this.state.trafficNotReturned = cause
      this.event(
        `abort stopped before removing the ${track}: traffic could not be returned to stable (${cause}); the ${track} ${workloadName} is kept and may still receive traffic`,
      )
      await this.persist().catch(() => {})
      this.out.event(
        rolloutEvent(
          this.state,
          final === 'TimedOut' ? 'rollout.timed-out' : 'rollout.aborted',
          'critical',
          `The abort of ${this.state.service} ${this.state.canary.version} could not return traffic to stable (${cause}): ${workloadName} is kept and may still receive ${this.state.weight} % of traffic. Reason for the abort: ${this.state.reason}.`,
          {actions: [rolloutCommand(this.state, 'abort'), rolloutCommand(this.state, 'status')]},
        ),
      )
      throw new TrafficNotReturned(this.state, workloadName, cause)
    }
    this.state.trafficNotReturned = undefined
    this.state.weight = 0
    this.event('all traffic is back on stable; scaling the canary down')
    await this.persist()
    await this.workload.remove()
    this.state.canaryReplicas = 0
    await this.strategy.cleanUpAfterAbort()
    await this.finish(
      final,
      `${final === 'TimedOut' ? 'timed out' : 'aborted'}: ${this.state.reason}; traffic is on ${this.state.stable.version}`,
    )
    const failedRun = this.state.analysisRuns.find(
      (r) => (r.phase === 'Failed' || r.phase === 'Error') && this.state.reason?.includes(r.message ?? '\0'),
    )
    this.out.event(
      rolloutEvent(
        this.state,
        final === 'TimedOut' ? 'rollout.timed-out' : 'rollout.aborted',
        'critical',
        `The rollout of ${this.state.service} ${this.state.canary.version} ${final === 'TimedOut' ? 'timed out' : 'was aborted'}: ${this.state.reason}. All traffic is back on ${this.state.stable.version}.`,
        {
          measurements: failedRun ? analysisMeasurements(failedRun) : undefined,
          actions: [
            rolloutCommand(this.state, 'history'),
            `retailops deploy ${this.state.service} --canary -n ${this.state.namespace}  # once the cause is fixed`,
          ],
        },
      ),
    )
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
      canaryTemplate: (this.state.desired as Deployment).spec?.template,
      stableTemplate: this.state.stableTemplate,
    }
    const history = [...stored.history.filter((h) => h.id !== entry.id), entry]
    await this.persist({history})
  }
}

/** Abort could not return traffic to stable: the canary was kept (exit 24). */
export class TrafficNotReturned extends RetailOpsError {
  constructor(state: RolloutState, canaryName: string, cause: string) {
    super(
      'TRAFFIC_NOT_RETURNED',
      `${state.service}: abort could not send all traffic back to stable, so ${canaryName} was kept and traffic may still reach it (${cause}).`,
      {
        nextSteps: [
          `Fix the cause (permissions on the route or Service, an admission webhook, the stable Deployment), then run \`retailops rollout abort ${state.service}\` again: it starts with the traffic.`,
          `\`retailops rollout status ${state.service}\` shows the weight the router really has now.`,
        ],
        details: {service: state.service, namespace: state.namespace, canary: canaryName, weight: state.weight, cause},
      },
    )
  }
}

/** Refuses a new rollout while one is in progress for the service (exit 13 when a live CLI drives it). */
export function assertNoActiveRollout(state: RolloutState | undefined): void {
  if (state && !isTerminal(state.phase)) {
    if (state.lease && !ownsLease(state) && leaseAlive(state.lease)) {
      throw new RolloutHeldError(
        `A ${state.spec.strategy} rollout of ${state.service} (${state.id}, ${state.canary.version} over ${state.stable.version}) is in progress, driven by ${describeLease(state.lease)}.`,
        state.service,
        state.lease,
        [`Wait for it to end (\`retailops rollout status ${state.service} --watch\`), then deploy again.`],
      )
    }
    throw new RefusedError(
      `A ${state.spec.strategy} rollout of ${state.service} is in progress (${state.phase}, step ${state.step}/${state.spec.steps.length}).`,
      {
        nextSteps: [
          `\`retailops rollout promote ${state.service}\` or \`retailops rollout abort ${state.service}\` first; \`retailops rollout status ${state.service}\` shows where it is.`,
        ],
        details: {rolloutId: state.id, phase: state.phase},
      },
    )
  }
}
