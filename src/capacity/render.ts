import {renderTable} from '../ui/table.js'
import type {ApplyResult} from './apply.js'
import type {CapacityPlan} from './plan.js'
import {formatCpu, formatMemory} from '../kubernetes/quantity.js'
import type {RestoreResult} from './restore.js'
import type {ScheduleResult} from './schedule.js'
import type {WarmupResult} from './warm.js'

/** Human renderings of the results (strings; the command decides where they go). */

const money = (n: number, currency: string) => `${n.toFixed(n < 10 ? 3 : 2)} ${currency}`

export function renderCapacityPlan(plan: CapacityPlan): string {
  const out: string[] = []
  out.push(
    `Campaign ${plan.campaign}: ${plan.start} → ${plan.end}, buffer ${Math.round(plan.buffer * 100)} %, ${plan.zones} zone(s)`,
  )
  out.push('')
  out.push(
    renderTable(plan.services, [
      {header: 'SERVICE', value: (s) => s.service},
      {header: 'TIER', value: (s) => s.tier},
      {header: 'POOL', value: (s) => s.pool},
      {
        header: 'PEAK RPS',
        value: (s) => (s.peakSource === 'multiplier' ? `${s.peakRps} (${s.observedRps}×)` : s.peakRps),
        align: 'right',
      },
      {header: 'RPS/POD', value: (s) => s.rpsPerPod ?? '—', align: 'right'},
      {header: 'NEEDED', value: (s) => s.capacityReplicas, align: 'right'},
      {header: 'NOW', value: (s) => `${s.currentReplicas} (min ${s.currentMin}, max ${s.currentMax})`},
      {header: 'PLAN', value: (s) => `min ${s.newMin}${s.raisesMax ? `, max ${s.newMax}` : ''}`},
      {header: 'WHY', value: (s) => s.reason},
      {header: `COST/H`, value: (s) => s.costPerHour.toFixed(3), align: 'right'},
    ]),
  )
  if (plan.pools.length > 0) {
    out.push('')
    out.push(
      renderTable(plan.pools, [
        {header: 'POOL', value: (p) => p.pool},
        {header: 'NODES', value: (p) => p.nodes, align: 'right'},
        {header: 'FREE CPU', value: (p) => formatCpu(p.free.cpu), align: 'right'},
        {header: 'FREE MEM', value: (p) => formatMemory(p.free.memory), align: 'right'},
        {header: 'ADDS CPU', value: (p) => formatCpu(p.needed.cpu), align: 'right'},
        {header: 'ADDS MEM', value: (p) => formatMemory(p.needed.memory), align: 'right'},
        {
          header: 'SHORTFALL',
          value: (p) =>
            p.shortfall.cpu > 0 || p.shortfall.memory > 0 || p.shortfall.pods > 0
              ? `${formatCpu(p.shortfall.cpu)} CPU, ${formatMemory(p.shortfall.memory)}${p.shortfall.pods ? `, ${p.shortfall.pods} pods` : ''}`
              : 'none',
        },
        {header: 'EXTRA NODES', value: (p) => (p.extraNodes < 0 ? '?' : p.extraNodes), align: 'right'},
        {
          header: 'PLACEHOLDERS',
          value: (p) =>
            p.placeholder.replicas
              ? `${p.placeholder.replicas} × ${formatCpu(p.placeholder.requests.cpu)}/${formatMemory(p.placeholder.requests.memory)}`
              : '—',
        },
      ]),
    )
  }
  if (plan.quota.length > 0) {
    out.push('')
    out.push(
      renderTable(plan.quota, [
        {header: 'QUOTA', value: (q) => q.quota},
        {header: 'RESOURCE', value: (q) => q.resource},
        {header: 'USED', value: (q) => fmt(q.resource, q.used), align: 'right'},
        {header: 'ADDS', value: (q) => fmt(q.resource, q.added), align: 'right'},
        {header: 'HARD', value: (q) => fmt(q.resource, q.hard), align: 'right'},
        {header: 'OK', value: (q) => (q.ok ? 'yes' : 'NO')},
      ]),
    )
  }
  const c = plan.cost
  out.push('')
  out.push(
    `Cost: ${money(c.plannedPerHour, c.currency)}/h planned (now ${money(c.currentPerHour, c.currency)}/h), headroom ${money(c.headroomPerHour, c.currency)}/h; extra ${money(c.extraPerHour, c.currency)}/h, ${money(c.extraForCampaign, c.currency)} over ${c.campaignHours} h.`,
  )
  if (plan.problems.length > 0) {
    out.push('')
    out.push('Problems (nothing is applied while any remain):')
    for (const p of plan.problems) out.push(`  ✖ ${p.message}`)
  }
  return out.join('\n')
}

function fmt(resource: string, value: number): string {
  if (resource.endsWith('memory')) return formatMemory(value)
  if (resource.endsWith('cpu')) return formatCpu(value)
  return String(Math.round(value * 100) / 100)
}

export function renderApply(apply: ApplyResult): string {
  const out = [
    `Saved state: ConfigMap ${apply.namespace}/${apply.stateConfigMap}${apply.resumed ? ' (kept from an earlier run)' : ''}`,
  ]
  out.push(
    renderTable(apply.ready, [
      {header: 'SERVICE', value: (r) => r.service},
      {header: 'DEPLOYMENT', value: (r) => r.deployment},
      {header: 'READY', value: (r) => `${r.ready}/${r.desired}`, align: 'right'},
    ]),
  )
  for (const h of apply.headroom)
    out.push(`Headroom ${h.pool}: ${h.replicas} placeholder(s), ${h.scheduled} scheduled, ${h.pending} pending`)
  out.push(`Capacity Ready after ${(apply.waitedMs / 1000).toFixed(1)}s.`)
  return out.join('\n')
}

export function renderWarmup(w: WarmupResult): string {
  const out = [
    renderTable(w.behaviours, [
      {header: 'BEHAVIOUR', value: (b) => b.behaviour},
      {header: 'SERVICE', value: (b) => b.service},
      {header: 'TARGET RPS', value: (b) => b.targetRps, align: 'right'},
      {header: 'REQUESTS', value: (b) => b.requests, align: 'right'},
      {header: 'AVG RPS', value: (b) => b.rps, align: 'right'},
      {header: 'FAILED', value: (b) => `${(b.failedRate * 100).toFixed(2)} %`, align: 'right'},
      {header: 'P95 MS', value: (b) => b.p95Ms, align: 'right'},
      {header: 'P99 MS', value: (b) => b.p99Ms, align: 'right'},
    ]),
  ]
  if (w.thresholds.length > 0) {
    out.push('')
    out.push(
      renderTable(w.thresholds, [
        {header: 'SLO', value: (t) => t.slo},
        {header: 'K6 THRESHOLD', value: (t) => `${t.metric} ${t.expression}`},
        {header: 'OBSERVED', value: (t) => t.observed, align: 'right'},
        {header: 'RESULT', value: (t) => (t.ok ? 'pass' : 'FAIL')},
      ]),
    )
  }
  for (const s of w.skipped) out.push(`  (not checked: ${s})`)
  for (const e of w.excluded ?? []) out.push(`  (left out of the mix: ${e.behaviour}: ${e.reason})`)
  if (w.aborted) {
    out.push('')
    out.push(
      renderTable(w.aborted.crossed, [
        {header: 'SERVICE', value: (a) => a.service},
        {header: 'ABORT LIMIT', value: (a) => `${a.metric} ${a.expression}`},
        {header: 'OBSERVED', value: (a) => a.observed, align: 'right'},
      ]),
    )
    out.push(`Warm-up STOPPED: ${w.aborted.reason}.`)
  } else {
    out.push(
      w.passed
        ? 'Warm-up passed every SLO threshold.'
        : `Warm-up FAILED ${w.thresholds.filter((t) => !t.ok).length} SLO threshold(s).`,
    )
  }
  return out.join('\n')
}

export function renderSchedule(s: ScheduleResult): string {
  return [
    `CronJob ${s.namespace}/${s.prewarm.name}: "${s.prewarm.schedule}" (${s.prewarm.timeZone}) → ${s.prewarm.runsAt}: ${s.prewarm.command.join(' ')}`,
    `CronJob ${s.namespace}/${s.restore.name}: "${s.restore.schedule}" (${s.restore.timeZone}) → ${s.restore.runsAt}: ${s.restore.command.join(' ')}`,
    `Runs ${s.runnerImage} as ServiceAccount ${s.serviceAccount}, with retailops.yaml from ConfigMap ${s.configMap}${s.credentials.length ? ` and its ${s.credentials.length} inline credential(s) (${s.credentials.join(', ')}) from Secret ${s.credentialsSecret}` : ''}.`,
  ].join('\n')
}

export function renderRestore(r: RestoreResult): string {
  if (!r.restored) return r.message
  const out = [
    renderTable(r.targets, [
      {header: 'SERVICE', value: (t) => t.service},
      {header: 'OBJECT', value: (t) => `${t.kind}/${t.name}`},
      {header: 'OUTCOME', value: (t) => t.outcome},
      {
        header: 'VALUES',
        value: (t) =>
          Object.entries(t.values)
            .map(([k, v]) => `${k}=${typeof v === 'object' ? 'saved' : String(v)}`)
            .join(', '),
      },
    ]),
  ]
  out.push(r.message)
  return out.join('\n')
}
