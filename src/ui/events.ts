/**
 * Release events: what people outside the terminal are told about (a canary aborted at 3 a.m., a
 * release refused by a freeze, a drill that missed its RTO). Engines raise them through
 * `ctx.out.event(…)` where the thing happens; the command layer hands them to whatever delivers
 * them (src/notify), so no concept knows who listens and none imports another.
 */

/** Every event type, with what it means (the configuration reference and docs/notifications.md list them). */
export const RELEASE_EVENT_TYPES = {
  'rollout.started': 'A canary or blue-green rollout started: the new version runs next to stable.',
  'rollout.paused': 'A rollout paused: it waits for `rollout promote` (or for its pause to end).',
  'rollout.step-passed': 'A rollout step passed (a weight reached, a pause ended, an analysis passed).',
  'rollout.analysis-failed': 'An analysis run failed (or errored): the measurements against their conditions.',
  'rollout.aborted': 'A rollout was aborted: traffic is back on stable.',
  'rollout.promoted': 'A rollout was promoted: the new version is stable.',
  'rollout.timed-out': 'A rollout did not finish within its deadline: traffic is back on stable.',
  'release.refused.freeze': "A release was refused by a campaign's freeze window.",
  'release.refused.error-budget':
    'A release was refused because an error budget is exhausted or burning at page level.',
  'release.refused.supply-chain':
    'A release was refused by the supply-chain policy (signature, SBOM, provenance, vulnerabilities).',
  'prewarm.applied': "A campaign's pre-warm was applied: replicas and HPA floors raised.",
  'prewarm.warmup-failed': 'The k6 warm-up of a campaign failed a threshold or was stopped by its abort limits.',
  'prewarm.restored': "A campaign's pre-warm was restored: HPAs and replicas back to their saved values.",
  'drill.passed': 'A disaster-recovery restore drill met its RTO and RPO targets and validated.',
  'drill.missed': 'A disaster-recovery restore drill missed its RTO or RPO target, or its validation failed.',
  'slo.gate-closed': 'The SLO gate closed: an error budget is exhausted or a page-level burn rate is on.',
  'notify.test': 'A test message (`retailops notify test`), sent to each destination whatever it subscribes to.',
} as const

export type ReleaseEventType = keyof typeof RELEASE_EVENT_TYPES
export const RELEASE_EVENT_NAMES = Object.keys(RELEASE_EVENT_TYPES) as ReleaseEventType[]

/** How bad it is: what a chat message colours it with. */
export type EventSeverity = 'info' | 'success' | 'warning' | 'critical'

/** A value behind a decision: an analysis measurement against its condition, an RTO against its target. */
export interface EventMeasurement {
  name: string
  /** The measured value as people read it ("0.412", "3m 12s", "no data"). */
  value: string
  /** What it was judged against ("result > 0.05", "target 15m"). */
  condition?: string
  /** How it counted: Failed, Successful, met, missed… */
  verdict?: string
}

export interface ReleaseEvent {
  type: ReleaseEventType
  severity: EventSeverity
  /** One sentence: what happened. */
  summary: string
  /** The services it is about (none: not about one service, e.g. an SLO gate over all of them). */
  services: string[]
  /** The version it is about (the canary's, the image's tag). */
  version?: string
  /** The version that runs (or ran) before it. */
  previousVersion?: string
  namespace?: string
  /** Further details worth a line each (campaign, datastore, step, weight, reason…). */
  facts?: Record<string, string>
  measurements?: EventMeasurement[]
  /** Commands to act on it, in the order a person would try them. */
  actions?: string[]
  /** When it happened (ISO 8601); set by whoever raises it. */
  at: string
}

/** The event as raised by an engine: `at` is filled in when left out. */
export type RaisedEvent = Omit<ReleaseEvent, 'at'> & {at?: string}

export function releaseEvent(e: RaisedEvent): ReleaseEvent {
  return {...e, at: e.at ?? new Date().toISOString()}
}
