/**
 * Every rollout of a namespace in full, as the dashboard shows it: the status `rollout status`
 * prints, plus each step with its weight and whether it is done, the analysis runs with every
 * measurement against the metric's conditions, the events and the finished rollouts (history).
 * One list call reads the states and their histories together.
 */

import {jobDriver} from './detach.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {actualWeightOf, statusOf, type RolloutStatus} from './status.js'
import {formatStep, weightAfter} from './steps.js'
import {StateStore} from './store.js'
import {
  isTerminal,
  type AnalysisRun,
  type HistoryEntry,
  type MetricSpec,
  type RolloutEvent,
  type RolloutState,
} from './types.js'

export interface StepView {
  index: number
  /** As --steps writes it: "20%", "pause:30s", "analysis". */
  label: string
  /** The weight in force once this step has run. */
  weight: number
  state: 'done' | 'current' | 'pending'
}

export interface RolloutDetail extends RolloutStatus {
  stepList: StepView[]
  /** The metrics analysis checks, with the conditions each measurement is judged by. */
  metrics: MetricSpec[]
  /** Newest last, at most the last five. */
  analysisRuns: AnalysisRun[]
  /** Newest last, at most the last forty. */
  events: RolloutEvent[]
  /** Finished rollouts of the service, oldest first (as `rollout history` numbers them). */
  history: (Omit<HistoryEntry, 'canaryTemplate' | 'stableTemplate'> & {number: number})[]
  createdAt: string
  finishedAt?: string
}

export function stepsOf(state: Pick<RolloutState, 'spec' | 'step' | 'phase'>): StepView[] {
  const steps = state.spec.steps
  return steps.map((step, index) => ({
    index,
    label: formatStep(step),
    weight: weightAfter(steps, index),
    state:
      index < state.step || (state.phase === 'Healthy' && index <= state.step)
        ? 'done'
        : index === state.step && !isTerminal(state.phase)
          ? 'current'
          : 'pending',
  }))
}

export function detailOf(
  state: RolloutState,
  history: HistoryEntry[],
  status: RolloutStatus = statusOf(state),
): RolloutDetail {
  return {
    ...status,
    stepList: stepsOf(state),
    metrics: state.spec.analysis?.metrics ?? [],
    analysisRuns: state.analysisRuns.slice(-5),
    events: state.events.slice(-40),
    history: history.map(({canaryTemplate: _c, stableTemplate: _s, ...rest}, i) => ({...rest, number: i + 1})),
    createdAt: state.createdAt,
    finishedAt: state.finishedAt,
  }
}

/** Every rollout stored in the namespace, newest change first, with the weight read back from its router. */
export async function rolloutOverview(namespace: string, deps: {kube: KubeObjects}): Promise<RolloutDetail[]> {
  const stored = await new StateStore(deps.kube).listStored(namespace)
  const details = await Promise.all(
    stored.map(async ({state, history}) => {
      const s = {...state, namespace}
      const [actual, job] = await Promise.all([
        actualWeightOf(deps.kube, s).catch(() => undefined),
        isTerminal(s.phase) ? undefined : jobDriver(deps.kube, s.lease),
      ])
      return detailOf(s, history, statusOf(s, actual, job))
    }),
  )
  return details.sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0))
}
