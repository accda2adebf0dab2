/**
 * The release events of a rollout (src/ui/events.ts), built from its state where the engine makes
 * each transition: what happened, to which service and versions, the measured values behind an
 * analysis verdict, and the commands that act on it.
 */
import type {EventMeasurement, EventSeverity, RaisedEvent, ReleaseEventType} from '../ui/events.js'
import {formatStep} from './steps.js'
import type {AnalysisRun, RolloutState} from './types.js'

/** How a measured number reads in a message (the analysis's own sentence has the full precision). */
function value(n: number | null | undefined): string {
  if (n === undefined || n === null) return 'no data'
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(4)))
}

/** The last measurement of each metric of a run, against the condition it was judged by. */
export function analysisMeasurements(run: AnalysisRun): EventMeasurement[] {
  return run.metrics.flatMap((metric) => {
    const m = metric.measurements.at(-1)
    if (!m) return []
    const spec = run.spec.metrics.find((s) => s.name === metric.name)
    const conditions = [
      spec?.failureCondition && `failure if ${spec.failureCondition}`,
      spec?.successCondition && `success if ${spec.successCondition}`,
      spec?.compareWithStable &&
        (spec.method === 'statistical'
          ? `not worse than stable at ${Math.round((spec.confidence ?? 0.95) * 100)} % confidence (minimum effect ${spec.minEffect ?? 0})`
          : `within ${Math.round(spec.tolerance * 100)} % of stable (minDifference ${spec.minDifference})`),
    ].filter(Boolean)
    return [
      {
        name: metric.name,
        value: m.stable === undefined ? value(m.canary) : `canary ${value(m.canary)}, stable ${value(m.stable)}`,
        condition: conditions.join('; ') || undefined,
        verdict: `${m.phase} (${metric.successful} passed, ${metric.failed} failed of ${run.spec.count}): ${m.reason}`,
      },
    ]
  })
}

/** Commands a person acts on a rollout with, for the namespace it runs in. */
export function rolloutCommand(state: Pick<RolloutState, 'service' | 'namespace'>, action: string): string {
  return `retailops rollout ${action} ${state.service} -n ${state.namespace}`
}

export function rolloutEvent(
  state: RolloutState,
  type: ReleaseEventType,
  severity: EventSeverity,
  summary: string,
  extra: {measurements?: EventMeasurement[]; actions?: string[]; facts?: Record<string, string>} = {},
): RaisedEvent {
  const step = state.spec.steps[state.step]
  return {
    type,
    severity,
    summary,
    services: [state.service],
    version: state.canary.version,
    previousVersion: state.stable.version,
    namespace: state.namespace,
    facts: {
      Rollout: `${state.id} (${state.spec.strategy}, ${state.spec.router} router)`,
      Step: `${Math.min(state.step + 1, state.spec.steps.length)}/${state.spec.steps.length}${step ? ` (${formatStep(step)})` : ''}`,
      'Traffic to new version': `${state.weight} %`,
      ...(state.group.length > 1 ? {Release: `${state.releaseId}: ${state.group.join(', ')}`} : {}),
      ...(state.reason && (type === 'rollout.aborted' || type === 'rollout.timed-out' || type === 'rollout.paused')
        ? {Reason: state.reason}
        : {}),
      ...(state.forced ? {'Forced release': `${state.forced.reason} (by ${state.forced.by})`} : {}),
      ...extra.facts,
    },
    ...(extra.measurements?.length ? {measurements: extra.measurements} : {}),
    actions: extra.actions ?? [rolloutCommand(state, 'status')],
  }
}
