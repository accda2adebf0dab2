/**
 * The release events of a campaign's capacity (src/ui/events.ts): the pre-warm applied (replicas
 * and HPA floors against the peak), the warm-up that failed (what k6 measured against the SLO
 * thresholds and abort limits), and the restore after the campaign.
 */
import type {EventMeasurement, RaisedEvent} from '../ui/events.js'
import type {ApplyResult} from './apply.js'
import type {CapacityPlan} from './plan.js'
import type {RestoreResult} from './restore.js'
import type {WarmupResult} from './warm.js'

const n = (x: number | undefined, digits = 3) => (x === undefined ? 'no data' : String(Number(x.toPrecision(digits))))

export function prewarmAppliedEvent(plan: CapacityPlan, apply: ApplyResult): RaisedEvent {
  const measurements: EventMeasurement[] = plan.services.map((s) => {
    const ready = apply.ready.find((r) => r.service === s.service)
    return {
      name: s.service,
      value: `${s.replicas} replicas${ready ? ` (${ready.ready}/${ready.desired} Ready)` : ''}`,
      condition: `peak ${n(s.peakRps)} rps${s.rpsPerPod ? ` at ${s.rpsPerPod} rps/pod × ${s.targetUtilization}` : ''}, buffer ${Math.round(plan.buffer * 100)} %`,
      verdict: s.reason,
    }
  })
  return {
    type: 'prewarm.applied',
    severity: 'success',
    summary: `Campaign ${plan.campaign} is pre-warmed in ${apply.namespace}: ${apply.changed.length} HPA/Deployment change${apply.changed.length === 1 ? '' : 's'}, ${apply.ready.reduce((a, r) => a + r.ready, 0)} pods Ready (waited ${Math.round(apply.waitedMs / 1000)} s).`,
    services: plan.services.map((s) => s.service),
    namespace: apply.namespace,
    facts: {
      Campaign: `${plan.campaign} (${plan.start} – ${plan.end})`,
      'Extra cost': `${n(plan.cost.extraPerHour)} ${plan.cost.currency}/h, ${n(plan.cost.extraForCampaign)} ${plan.cost.currency} for the campaign`,
      ...(apply.resumed ? {Resumed: 'an earlier pre-warm of this campaign was found: its saved values are kept'} : {}),
    },
    measurements,
    actions: [
      `retailops prewarm restore --campaign ${plan.campaign} -n ${apply.namespace}  # when the campaign is over`,
    ],
  }
}

export function warmupFailedEvent(campaign: string, namespace: string, warmup: WarmupResult): RaisedEvent {
  const measurements: EventMeasurement[] = [
    ...(warmup.aborted?.crossed ?? warmup.aborts.filter((a) => !a.ok)).map((a) => ({
      name: `${a.service} ${a.limit}`,
      value: n(a.observed),
      condition: `abort if not ${a.expression}`,
      verdict: 'crossed',
    })),
    ...warmup.thresholds
      .filter((t) => !t.ok)
      .map((t) => ({name: `${t.slo} (${t.metric})`, value: n(t.observed), condition: t.expression, verdict: 'failed'})),
  ]
  const services = [...new Set(warmup.behaviours.map((b) => b.service))]
  return {
    type: 'prewarm.warmup-failed',
    severity: 'critical',
    summary: warmup.aborted
      ? `The k6 warm-up of campaign ${campaign} was stopped: ${warmup.aborted.reason}.`
      : `The k6 warm-up of campaign ${campaign} failed ${measurements.length} SLO threshold${measurements.length === 1 ? '' : 's'}: the environment does not hold the planned share of the peak.`,
    services,
    namespace,
    facts: {
      Campaign: campaign,
      Ran: `${Math.round(warmup.durationMs / 1000)} s`,
      ...(warmup.droppedIterations > 0 ? {'Dropped iterations': String(warmup.droppedIterations)} : {}),
    },
    measurements,
    actions: [
      `retailops prewarm --campaign ${campaign} -n ${namespace} --dry-run  # the plan against the measured capacity`,
      `retailops prewarm --campaign ${campaign} -n ${namespace} --warm-only  # warm again once fixed`,
    ],
  }
}

export function prewarmRestoredEvent(result: RestoreResult): RaisedEvent {
  const restored = result.targets.filter((t) => t.outcome === 'restored')
  return {
    type: 'prewarm.restored',
    severity: 'info',
    summary: `Campaign ${result.campaign}'s pre-warm is restored in ${result.namespace}: ${restored.length} object${restored.length === 1 ? '' : 's'} back to the values saved${result.savedAt ? ` at ${result.savedAt}` : ''}${result.deleted.length ? `, ${result.deleted.length} removed` : ''}.`,
    services: [...new Set(result.targets.map((t) => t.service))],
    namespace: result.namespace,
    facts: {Campaign: result.campaign},
    measurements: result.targets.map((t) => ({
      name: `${t.kind} ${t.name}`,
      value: Object.entries(t.values)
        .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
        .join(', '),
      verdict: t.outcome,
    })),
    actions: [`retailops cost -n ${result.namespace}`],
  }
}
