/**
 * Where rollouts are (`rollout status`, and the status every other rollout command reports): the
 * stored state read back, the weight the route or the pods carry now, and the Job that drives a
 * detached rollout. Apart from control.ts, which drives rollouts (the engine, the release gates,
 * the checks of stored state against the deploy's policy), so that `rollout status`, run many
 * times a day and in scripts, loads only what reading needs.
 */

import type {ExitCodeName} from '../errors/index.js'
import {NotFoundError} from '../errors/index.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {sleep} from '../kubernetes/wait.js'
import type {RunContext} from '../ui/context.js'
import {describeSpec} from './analysis.js'
import {jobDriver, type JobDriver} from './detach.js'
import {strategyKind} from './rollout-strategy.js'
import {formatSteps, waitsForPerson} from './steps.js'
import {leaseAlive, StateStore} from './store.js'
import {bindToCommand} from './trust.js'
import {isTerminal, type Phase, type RolloutState, type Stage} from './types.js'

export const PHASE_EXIT: Record<Phase, ExitCodeName> = {
  Healthy: 'OK',
  Progressing: 'OK',
  Analyzing: 'OK',
  Promoting: 'OK',
  Aborting: 'ROLLOUT_ABORTED',
  Aborted: 'ROLLOUT_ABORTED',
  Paused: 'ROLLOUT_PAUSED',
  Inconclusive: 'ROLLOUT_INCONCLUSIVE',
  TimedOut: 'ROLLOUT_TIMED_OUT',
}

/** The exit of a group: the worst member decides (aborted > timed out > inconclusive > paused). */
export function groupExit(
  states: ({phase: Phase; trafficNotReturned?: string} | {exit: ExitCodeName})[],
): ExitCodeName {
  const order: ExitCodeName[] = [
    'TRAFFIC_NOT_RETURNED',
    'ROLLOUT_ABORTED',
    'ROLLOUT_TIMED_OUT',
    'ROLLOUT_INCONCLUSIVE',
    'ROLLOUT_PAUSED',
  ]
  const exits = states.map((s) =>
    'exit' in s
      ? s.exit
      : s.phase === 'Aborting' && (s as {trafficNotReturned?: string}).trafficNotReturned
        ? 'TRAFFIC_NOT_RETURNED'
        : PHASE_EXIT[s.phase],
  )
  return order.find((e) => exits.includes(e)) ?? 'OK'
}

export interface RolloutStatus {
  service: string
  namespace: string
  id: string
  strategy: string
  router: string
  phase: Phase
  exit: ExitCodeName
  /** Waits for `rollout promote` or `rollout abort`. */
  waiting: boolean
  step: number
  steps: string
  stage?: Stage
  /** The weight stored in the state and the weight read back from the route, the Ingress or the pods. */
  weight: number
  actualWeight?: number
  stable: RolloutState['stable']
  canary: RolloutState['canary']
  message: string
  reason?: string
  analysis?: {kind: string; phase: string; message?: string}
  analysisSpec: string
  driver?: {
    holder: string
    id?: string
    host: string
    pid: number
    ci?: string
    acquiredAt: string
    alive: boolean
    renewedAt: string
    takenOver?: {from: string; reason: string; at: string}
  }
  /** Non-terminal, nobody drives it, and it does not wait for a person: it needs `rollout resume`. */
  orphaned: boolean
  /** A detached rollout (`deploy --detach`): the Job that drives it, as the cluster sees it now. */
  job?: JobDriver
  group: string[]
  forced?: RolloutState['forced']
  updatedAt: string
}

export function statusOf(state: RolloutState, actualWeight?: number, job?: JobDriver): RolloutStatus {
  const run = state.analysisRuns.at(-1)
  const alive = leaseAlive(state.lease) && !job?.gone
  const waiting = waitsForPerson(state)
  return {
    service: state.service,
    namespace: state.namespace,
    id: state.id,
    strategy: state.spec.strategy,
    router: strategyKind(state).routerName(state),
    phase: state.phase,
    // A timed pause is progress, not a wait for a person; an abort that could not return traffic is not an abort yet.
    exit:
      state.phase === 'Paused' && !waiting
        ? 'OK'
        : state.phase === 'Aborting' && state.trafficNotReturned
          ? 'TRAFFIC_NOT_RETURNED'
          : PHASE_EXIT[state.phase],
    waiting,
    step: state.step,
    steps: formatSteps(state.spec.steps),
    stage: state.stage,
    weight: state.weight,
    actualWeight,
    stable: state.stable,
    canary: state.canary,
    message: state.message,
    reason: state.reason,
    analysis: run && {kind: run.kind, phase: run.phase, message: run.message},
    analysisSpec: describeSpec(state.spec.analysis),
    driver: state.lease && {
      holder: state.lease.holder,
      id: state.lease.id,
      host: state.lease.host,
      pid: state.lease.pid,
      ci: state.lease.ci,
      acquiredAt: state.lease.acquiredAt,
      alive,
      renewedAt: state.lease.renewedAt,
      takenOver: state.lease.takenOver && {
        from: state.lease.takenOver.from.holder,
        reason: state.lease.takenOver.reason,
        at: state.lease.takenOver.at,
      },
    },
    orphaned: !isTerminal(state.phase) && !waiting && !alive,
    ...(job ? {job} : {}),
    group: state.group,
    forced: state.forced,
    updatedAt: state.updatedAt,
  }
}

export async function readState(store: StateStore, namespace: string, service: string): Promise<RolloutState> {
  const stored = await store.read(namespace, service)
  if (!stored.state) {
    throw new NotFoundError(`No rollout of ${service} in namespace ${namespace}.`, {
      nextSteps: [
        `Start one with \`retailops deploy --canary ${service}\`; \`retailops rollout status\` lists the rollouts of a namespace.`,
      ],
    })
  }
  return bindToCommand(stored.state, namespace, service)
}

/** What reading rollouts needs: the cluster (and, in tests, the state store over it). */
export interface StatusDeps {
  kube: KubeObjects
  store?: StateStore
}

export interface StatusOptions {
  namespace: string
  services: string[]
  /** Wait until every rollout is terminal or waits for a person. */
  watch?: boolean
  timeoutMs?: number
  onUpdate?: (statuses: RolloutStatus[]) => void
}

export async function rolloutStatus(
  options: StatusOptions,
  deps: StatusDeps,
  ctx: RunContext,
): Promise<{rollouts: RolloutStatus[]; exit: ExitCodeName; timedOut: boolean}> {
  const store = deps.store ?? new StateStore(deps.kube)
  const started = Date.now()
  let last = ''
  for (;;) {
    const states =
      options.services.length > 0
        ? await Promise.all(options.services.map((s) => readState(store, options.namespace, s)))
        : (await store.list(options.namespace)).map((s) => ({...s, namespace: options.namespace}))
    const rollouts = await Promise.all(
      states.map(async (s) =>
        statusOf(
          s,
          await actualWeightOf(deps.kube, s),
          isTerminal(s.phase) ? undefined : await jobDriver(deps.kube, s.lease),
        ),
      ),
    )
    const key = JSON.stringify(
      rollouts.map((r) => [r.phase, r.step, r.weight, r.actualWeight, r.message, r.job?.phase, r.orphaned]),
    )
    if (key !== last) options.onUpdate?.(rollouts)
    last = key
    const settled = rollouts.every((r) => isTerminal(r.phase) || r.waiting || r.orphaned)
    if (!options.watch || settled) {
      for (const r of rollouts.filter((x) => x.orphaned)) {
        const why = r.job
          ? `Job ${r.job.namespace}/${r.job.name}, which drove it, ${r.job.phase === 'deleted' ? 'was deleted' : r.job.phase === 'failed' ? `failed (${r.job.reason})` : `is ${r.job.phase} but stopped renewing its lease (last ${r.driver?.renewedAt ?? 'never'})`}`
          : `no CLI drives it (the last one stopped ${r.driver?.renewedAt ?? 'long ago'})`
        ctx.out.warn(
          `${r.service}: ${r.phase}, but ${why}; run \`retailops rollout resume ${r.service}\` to continue it or \`rollout abort ${r.service}\` to roll it back.`,
        )
      }
      // --watch waited for an outcome and there will be none without a driver: say so in the exit code.
      const orphaned = options.watch && rollouts.some((r) => r.orphaned)
      return {
        rollouts,
        exit: orphaned && groupExit(rollouts) === 'OK' ? 'ROLLOUT_ORPHANED' : groupExit(rollouts),
        timedOut: false,
      }
    }
    if (options.timeoutMs !== undefined && Date.now() - started > options.timeoutMs)
      return {rollouts, exit: 'ROLLOUT_TIMED_OUT', timedOut: true}
    await sleep(1000, ctx.signal)
  }
}

export async function actualWeightOf(kube: KubeObjects, state: RolloutState): Promise<number | undefined> {
  return strategyKind(state).actualWeight(state, kube)
}
