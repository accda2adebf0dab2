import pLimit from 'p-limit'

import {formatDuration, parseDuration, toPromDuration} from '../config/duration.js'
import {selectServices} from '../config/resolve.js'
import type {RetailOpsConfig, SloConfig, Tier} from '../config/schema.js'
import {UnavailableError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {
  type AlertEvaluation,
  blocksReleases,
  budgetRemaining,
  burnRate,
  errorBudget,
  evaluateAlerts,
  SLI_WINDOWS,
  sloState,
  type SloState,
  timeToExhaustionMs,
} from './maths.js'
import {PrometheusClient, PromQueryError} from '../prometheus/client.js'
import type {RaisedEvent} from '../ui/events.js'
import {sliExpressions} from './sli.js'

export interface SloWindowValue {
  window: string
  /** Error ratio 0..1 over the window; null = no data. */
  errorRatio: number | null
  burnRate: number | null
  /** Events per second over the window; null = no series, 0 = no traffic. */
  eventRate: number | null
}

export interface SloResult {
  service: string
  tier: Tier
  slo: string
  /** sloth_id: <service>-<slo>. */
  id: string
  description?: string
  sliType: SloConfig['sli']['type']
  errorDefinition: string
  /** Target in percent. */
  objective: number
  window: string
  /** Allowed error ratio: 1 − objective. */
  errorBudget: number
  /** Share of good events over the window in percent (event-weighted); null = no data. */
  sli: number | null
  errorRatio: number | null
  /** Sloth's period SLI: the time average of 5-minute error ratios (quiet hours weigh as much as busy ones). */
  timeAveragedErrorRatio: number | null
  /** Events in the window (requests, checkouts). */
  events: number | null
  /** 1 − errorRatio ÷ budget; below 0 when overspent; null = no data. */
  budgetRemaining: number | null
  burnRates: SloWindowValue[]
  alerts: AlertEvaluation[]
  status: SloState
  /** At the 1h burn rate. */
  timeToExhaustion: string | null
  /** Why a value is missing (no series, no traffic, rejected query). */
  missing: string[]
  /** The 1h burn rate over the SLO window, for charts (only when history was asked for). */
  history?: [number, number | null][]
}

export interface GateResult {
  pass: boolean
  /** SLOs that stop releases: exhausted budget or a page-level burn. */
  blocking: {service: string; slo: string; status: SloState}[]
  /** SLOs without data (not blocking unless failOnMissing). */
  missing: {service: string; slo: string}[]
}

export interface SloReport {
  prometheus: string
  at: string
  slos: SloResult[]
  counts: Record<SloState, number>
  gate: GateResult
}

export interface SloStatusOptions {
  config: RetailOpsConfig
  prometheusUrl: string
  /** Service names; none = all with SLOs. */
  services?: string[]
  /** Evaluate at this time instead of now. */
  at?: Date
  /** Parallel queries (default 8). */
  concurrency?: number
  /** Also fetch the 1h burn rate across each SLO window (for the HTML report). */
  history?: boolean
  /** Count SLOs without data as failing the gate. */
  failOnMissing?: boolean
  timeoutMs?: number
  /** The environment's namespace: SLIs count only its series (an SLI's own namespace label wins). */
  namespace?: string
  /** `slo --gate`: a closed gate is a release event (slo.gate-closed) for whoever is notified. */
  announceGate?: boolean
}

/** Resolves the Prometheus URL: the environment's, then RETAILOPS_PROMETHEUS_URL. */
export function prometheusUrlFor(environmentUrl?: string): string {
  const url = environmentUrl ?? process.env.RETAILOPS_PROMETHEUS_URL
  if (!url) {
    throw new UnavailableError('No Prometheus is configured.', {
      nextSteps: [
        'Set environments.<name>.prometheus in retailops.yaml, or RETAILOPS_PROMETHEUS_URL (the sandbox: `eval "$(bash scripts/sandbox.sh env)"`).',
      ],
    })
  }
  return url
}

interface SloTarget {
  service: string
  tier: Tier
  slo: SloConfig
}

function targets(config: RetailOpsConfig, services?: string[]): SloTarget[] {
  const names = selectServices(config, services ?? [])
  return names.flatMap((service) =>
    config.services[service].slos.map((slo) => ({service, tier: config.services[service].tier, slo})),
  )
}

/**
 * Queries every SLO's SLI over its window and the alert windows, in parallel, and rates each:
 * ok, ticket, page, exhausted, or no-data (never 100 % without events).
 */
export async function sloStatus(options: SloStatusOptions, ctx: RunContext): Promise<SloReport> {
  const list = targets(options.config, options.services)
  const prom = new PrometheusClient(options.prometheusUrl, {
    infinity: 'no-data',
    signal: ctx.signal,
    timeoutMs: options.timeoutMs,
  })
  const at = options.at ?? new Date()
  const limit = pLimit(options.concurrency ?? 8)
  const task = ctx.out.task(`Querying ${list.length} SLO${list.length === 1 ? '' : 's'} in ${options.prometheusUrl}`)
  // Fail fast (one clear UNAVAILABLE) when Prometheus is down, instead of one error per query.
  await prom.buildInfo()
  let failed = 0
  const results = await Promise.all(
    list.map((t) =>
      evaluateSlo(t, prom, at, limit, options.history ?? false, scopeOf(options.namespace)).catch((error: unknown) => {
        if (error instanceof PromQueryError) {
          failed += 1
          ctx.out.warn(`${t.service}/${t.slo.name}: ${error.message}`)
          return emptyResult(t, [`query rejected: ${error.message}`])
        }
        throw error
      }),
    ),
  ).catch((error: unknown) => {
    task.fail('SLO queries failed')
    throw error
  })
  const counts: Record<SloState, number> = {ok: 0, ticket: 0, page: 0, exhausted: 0, 'no-data': 0}
  for (const r of results) counts[r.status] += 1
  const noData = results.filter((r) => r.status === 'no-data')
  if (noData.length)
    ctx.out.warn(
      `${noData.length} SLO${noData.length === 1 ? ' has' : 's have'} no data (shown as missing, not as met): ${noData.map((r) => `${r.service}/${r.slo}`).join(', ')}.`,
    )
  task.succeed(
    `${results.length} SLOs: ${
      Object.entries(counts)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => `${n} ${s}`)
        .join(', ') || 'none'
    }${failed ? ` (${failed} rejected queries)` : ''}`,
  )
  const report: SloReport = {
    prometheus: options.prometheusUrl,
    at: at.toISOString(),
    slos: results,
    counts,
    gate: gateOf(results, options.failOnMissing ?? false),
  }
  if (options.announceGate && !report.gate.pass) ctx.out.event(gateClosedEvent(report, options.namespace))
  return report
}

const burn = (x: number | null) => (x === null ? 'no data' : `${Number(x.toPrecision(3))}×`)
const pct = (x: number | null) => (x === null ? 'no data' : `${Number((x * 100).toPrecision(4))} %`)

/** slo.gate-closed: each blocking SLO with its budget left and burn rates against the alert thresholds. */
export function gateClosedEvent(report: SloReport, namespace?: string): RaisedEvent {
  const closing = report.slos.filter(
    (r) =>
      report.gate.blocking.some((b) => b.service === r.service && b.slo === r.slo) ||
      report.gate.missing.some((m) => m.service === r.service && m.slo === r.slo),
  )
  const services = [...new Set(closing.map((r) => r.service))]
  return {
    type: 'slo.gate-closed',
    severity: 'critical',
    summary: `The SLO gate is closed: ${closing.map((r) => `${r.service}/${r.slo} ${r.status}`).join(', ')}. Releases of ${services.join(', ')} are refused until the budget recovers.`,
    services,
    namespace,
    facts: {Prometheus: report.prometheus, At: report.at},
    measurements: closing.flatMap((r) => [
      {
        name: `${r.service}/${r.slo} budget left`,
        value: pct(r.budgetRemaining),
        condition: `objective ${r.objective} % over ${r.window}; SLI ${r.sli === null ? 'no data' : `${Number(r.sli.toPrecision(6))} %`}`,
        verdict: r.status,
      },
      ...r.alerts
        .filter((a) => a.active)
        .map((a) => ({
          name: `${r.service}/${r.slo} ${a.severity} burn`,
          value: `${a.long} ${burn(a.longBurn)}, ${a.short} ${burn(a.shortBurn)}`,
          condition: `fires above ${a.factor}×`,
          verdict: 'firing',
        })),
    ]),
    actions: [`retailops slo ${services.join(' ')}${namespace ? ` -n ${namespace}` : ''} --html slo.html`],
  }
}

export function gateOf(results: SloResult[], failOnMissing: boolean): GateResult {
  const blocking = results
    .filter((r) => blocksReleases(r.status))
    .map((r) => ({service: r.service, slo: r.slo, status: r.status}))
  const missing = results.filter((r) => r.status === 'no-data').map((r) => ({service: r.service, slo: r.slo}))
  return {pass: blocking.length === 0 && (!failOnMissing || missing.length === 0), blocking, missing}
}

/** The fields that come from the configuration alone. */
function describeTarget(
  t: SloTarget,
): Pick<
  SloResult,
  | 'service'
  | 'tier'
  | 'slo'
  | 'id'
  | 'description'
  | 'sliType'
  | 'errorDefinition'
  | 'objective'
  | 'window'
  | 'errorBudget'
> {
  return {
    service: t.service,
    tier: t.tier,
    slo: t.slo.name,
    id: `${t.service}-${t.slo.name}`,
    description: t.slo.description,
    sliType: t.slo.sli.type,
    errorDefinition: sliExpressions(t.service, t.slo.sli).describe,
    objective: t.slo.objective,
    window: t.slo.window,
    errorBudget: errorBudget(t.slo.objective),
  }
}

function emptyResult(t: SloTarget, missing: string[]): SloResult {
  return {
    ...describeTarget(t),
    sli: null,
    errorRatio: null,
    timeAveragedErrorRatio: null,
    events: null,
    budgetRemaining: null,
    burnRates: SLI_WINDOWS.map((window) => ({window, errorRatio: null, burnRate: null, eventRate: null})),
    alerts: evaluateAlerts({}, parseDuration(t.slo.window)!),
    status: 'no-data',
    timeToExhaustion: null,
    missing,
  }
}

function scopeOf(namespace?: string): Record<string, string> {
  return namespace ? {namespace} : {}
}

async function evaluateSlo(
  t: SloTarget,
  prom: PrometheusClient,
  at: Date,
  limit: ReturnType<typeof pLimit>,
  history: boolean,
  scope: Record<string, string>,
): Promise<SloResult> {
  const exprs = sliExpressions(t.service, t.slo.sli, scope)
  const periodMs = parseDuration(t.slo.window)!
  const period = toPromDuration(periodMs)
  const budget = errorBudget(t.slo.objective)
  const windows = [...new Set([...SLI_WINDOWS, period])]
  const q = (expr: string) => limit(() => prom.scalar(expr, {time: at}))
  const [measured, timeAveraged, historyPoints] = await Promise.all([
    Promise.all(
      windows.map(async (w) => {
        const [errorRatio, eventRate] = await Promise.all([q(exprs.errorRatio(w)), q(exprs.eventRate(w))])
        return {window: w, errorRatio, eventRate}
      }),
    ),
    q(`avg_over_time((${exprs.errorRatio('5m')})[${period}:5m])`),
    history ? limit(() => burnHistory(prom, exprs.errorRatio('1h'), budget, at, periodMs)) : undefined,
  ])
  const byWindow = new Map(measured.map((m) => [m.window, m]))
  const missing: string[] = []
  const periodValue = byWindow.get(period)!
  const ratioOf = (m: {errorRatio: number | null; eventRate: number | null}) =>
    m.eventRate === 0 ? null : m.errorRatio
  if (periodValue.eventRate === null)
    missing.push(`no ${t.slo.sli.type === 'ratio' ? 'total-events' : 'request'} series in ${period}`)
  else if (periodValue.eventRate === 0) missing.push(`no events in ${period}`)
  else if (periodValue.errorRatio === null)
    missing.push(
      t.slo.sli.type === 'latency'
        ? `no histogram bucket le matching ${t.slo.sli.thresholdMs} ms (is it a bucket bound?)`
        : 'good-events series missing',
    )
  const errorRatio = ratioOf(periodValue)
  const burns: Record<string, number | null> = {}
  const burnRates = SLI_WINDOWS.map((w) => {
    const m = byWindow.get(w)!
    const ratio = ratioOf(m)
    burns[w] = burnRate(ratio, budget)
    return {window: w, errorRatio: ratio, burnRate: burns[w], eventRate: m.eventRate}
  })
  const remaining = budgetRemaining(errorRatio, budget)
  const alerts = evaluateAlerts(burns, periodMs)
  const status = sloState({remaining, alerts})
  const tte = timeToExhaustionMs(remaining, burns['1h'], periodMs)
  return {
    ...describeTarget(t),
    sli: errorRatio === null ? null : (1 - errorRatio) * 100,
    errorRatio,
    timeAveragedErrorRatio: errorRatio === null ? null : timeAveraged,
    events: periodValue.eventRate === null ? null : periodValue.eventRate * (periodMs / 1000),
    budgetRemaining: remaining,
    burnRates,
    alerts,
    status,
    timeToExhaustion: tte === null ? null : formatDuration(tte),
    missing,
    ...(historyPoints ? {history: historyPoints} : {}),
  }
}

/** The 1h burn rate at ~2,000 points across the window, ending exactly at `at` (null where there is no data). */
async function burnHistory(
  prom: PrometheusClient,
  errorRatio1h: string,
  budget: number,
  at: Date,
  periodMs: number,
): Promise<[number, number | null][]> {
  const stepMs = Math.max(300, Math.ceil(periodMs / 1000 / 2000)) * 1000
  const end = at.getTime()
  const steps = Math.floor(periodMs / stepMs)
  const start = end - steps * stepMs
  const series = await prom.queryRange(`(${errorRatio1h}) / ${budget}`, start, end, stepMs / 1000)
  const got = new Map((series[0]?.points ?? []).map(([t, v]) => [t, v]))
  const points: [number, number | null][] = []
  for (let i = 0; i <= steps; i++) {
    const t = start + i * stepMs
    points.push([t, got.get(t) ?? null])
  }
  return points
}

export interface ErrorBudgetStatus {
  service: string
  /** False when any SLO of the service has an exhausted budget or a page-level burn. */
  ok: boolean
  reasons: string[]
  slos: SloResult[]
}

export interface ErrorBudgetOptions {
  config: RetailOpsConfig
  /** Prometheus URL; default the environment's or RETAILOPS_PROMETHEUS_URL. */
  prometheusUrl?: string
  at?: Date
  failOnMissing?: boolean
  /** The namespace being released into: its budget, not another environment's, gates the release. */
  namespace?: string
}

/**
 * The release gate for one service (used by rollouts): ok unless a budget is exhausted or a
 * page-level burn is on. A service without SLOs passes with a reason saying so.
 */
export async function errorBudgetStatus(
  service: string,
  options: ErrorBudgetOptions,
  ctx?: RunContext,
): Promise<ErrorBudgetStatus> {
  const {silentOutput} = await import('../ui/output.js')
  const run: RunContext = ctx ?? {out: silentOutput}
  selectServices(options.config, [service])
  if (options.config.services[service].slos.length === 0)
    return {service, ok: true, reasons: [`${service} has no SLOs configured`], slos: []}
  const report = await sloStatus(
    {
      config: options.config,
      prometheusUrl: prometheusUrlFor(options.prometheusUrl),
      services: [service],
      at: options.at,
      failOnMissing: options.failOnMissing,
      namespace: options.namespace,
    },
    run,
  )
  const reasons = report.slos.flatMap((s) => {
    if (s.status === 'exhausted')
      return [`${s.slo}: error budget exhausted (${formatPercent(s.budgetRemaining)} left of ${s.window})`]
    if (s.status === 'page')
      return [
        `${s.slo}: page-level burn (${s.alerts
          .filter((a) => a.severity === 'page' && a.active)
          .map((a) => `${a.long}/${a.short} over ${a.factor}×`)
          .join(', ')})`,
      ]
    if (s.status === 'no-data' && options.failOnMissing) return [`${s.slo}: no data`]
    return []
  })
  return {service, ok: report.gate.pass, reasons, slos: report.slos}
}

/** errorBudgetStatus for one project and environment: what the release gates (src/rollout/gates.ts) ask per service. */
export function errorBudgetSource(
  config: RetailOpsConfig,
  prometheusUrl?: string,
  namespace?: string,
): (service: string) => Promise<ErrorBudgetStatus> {
  return (service) => errorBudgetStatus(service, {config, prometheusUrl, namespace})
}

export function formatPercent(ratio: number | null, digits = 1): string {
  if (ratio === null) return 'n/a'
  return `${(ratio * 100).toFixed(digits)} %`
}
