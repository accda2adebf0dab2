import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {parseDuration} from '../config/duration.js'
import type {CampaignConfig, RetailOpsConfig} from '../config/schema.js'
import {ConfigError, RetailOpsError, UnavailableError, UsageError} from '../errors/index.js'
import {readTemplate, renderTemplate} from '../assets/templates.js'
import {type RunContext, throwIfAborted} from '../ui/context.js'

/**
 * The k6 warm-up: a generated script with one ramping-arrival-rate scenario per retail behaviour,
 * ramping to campaign.warmup.share of the peak, thresholds from the SLOs, run by the real k6.
 * Every request is synthetic (X-Synthetic); behaviours that write (cart, checkout) run only
 * against services that declare they honour it, and per-service error-rate and latency limits
 * stop the run early (abortOnFail) when the environment degrades under the load.
 */

export interface Behaviour {
  /** The service whose routes it calls (the entry point; checkout fans out to inventory, payments, orders). */
  service: string
  /** Requests one iteration sends (the arrival rate is iterations, the peak is requests). */
  requestsPerIteration: number
  routes: string[]
  /** It creates or changes business state: only services that honour X-Synthetic (services.<name>.synthetic) get it. */
  writes: boolean
}

export const BEHAVIOURS: Record<string, Behaviour> = {
  browse: {service: 'catalog', requestsPerIteration: 1, routes: ['/products', '/products/:id'], writes: false},
  search: {service: 'catalog', requestsPerIteration: 1, routes: ['/search'], writes: false},
  cart: {service: 'cart', requestsPerIteration: 2, routes: ['/carts', '/carts/:id/items'], writes: true},
  checkout: {service: 'checkout', requestsPerIteration: 1, routes: ['/checkout'], writes: true},
}

const SKUS = [
  'SKU-1001',
  'SKU-1002',
  'SKU-1003',
  'SKU-1004',
  'SKU-1005',
  'SKU-1006',
  'SKU-1007',
  'SKU-1008',
  'SKU-1009',
  'SKU-1010',
  'SKU-1012',
]
const SEARCH_TERMS = ['shoe', 'running', 'jacket', 'camping', 'socks', 'bottle', 'hiking pack', 'headlamp', 'gift']

export interface ScenarioPlan {
  behaviour: string
  service: string
  weight: number
  /** Requests per second at the top of the ramp. */
  targetRps: number
  /** Iterations per minute at the top of the ramp (k6's target). */
  targetPerMinute: number
}

export interface ThresholdPlan {
  /** k6 metric with tag filter, e.g. http_req_duration{service:catalog}. */
  metric: string
  expression: string
  /** The SLO it comes from: "<service>/<slo>". */
  slo: string
}

/** A limit that stops the run early: k6 abortOnFail, judged after delayAbortEval. */
export interface AbortPlan {
  service: string
  metric: string
  expression: string
  /** What it guards, in words: "error rate" or "p95 latency". */
  limit: string
}

export interface WarmupPlan {
  campaign: string
  share: number
  durationMs: number
  urls: Record<string, string>
  scenarios: ScenarioPlan[]
  thresholds: ThresholdPlan[]
  /** Per-service error-rate and latency limits that stop the run early. */
  aborts: AbortPlan[]
  /** How long the run goes before the abort limits are judged (k6 delayAbortEval). */
  abortAfterMs: number
  /** Behaviours of the mix left out, and why (writing traffic to a service without synthetic support). */
  excluded: {behaviour: string; reason: string}[]
  /** Services whose SLOs cannot be checked by k6 (ratio SLIs). */
  skipped: string[]
}

export interface WarmupInput {
  config: RetailOpsConfig
  campaign: CampaignConfig
  campaignIndex: number
  /** Peak requests per second per service (from the capacity plan). */
  peakRps: Record<string, number>
  /** environments.<env>.baseUrl or --base-url: one address routing every service's paths (a gateway). */
  baseUrl?: string
  /** --service-url name=URL: per-service addresses (services run separately, e.g. locally). */
  serviceUrls: Record<string, string>
}

const trimSlash = (u: string) => u.replace(/\/+$/, '')

/** Pure: which scenarios at which rates, against which URLs, with which thresholds. */
export function planWarmup(input: WarmupInput): WarmupPlan {
  const {campaign, config} = input
  const mix = campaign.warmup.mix
  const unknown = Object.keys(mix).filter((b) => !BEHAVIOURS[b])
  if (unknown.length > 0) {
    throw new ConfigError(
      unknown.map((b) => ({
        file: 'retailops.yaml',
        path: `campaigns[${input.campaignIndex}].warmup.mix.${b}`,
        message: `unknown behaviour "${b}"; known: ${Object.keys(BEHAVIOURS).join(', ')}`,
      })),
    )
  }
  const configured = Object.entries(mix).filter(([b, w]) => w > 0 && config.services[BEHAVIOURS[b].service])
  // Writing traffic only where every service it reaches promises to change nothing for it.
  const excluded: WarmupPlan['excluded'] = []
  const active = configured.filter(([b]) => {
    if (!BEHAVIOURS[b].writes) return true
    const unsupported = reachedServices(config, BEHAVIOURS[b].service).filter((s) => !config.services[s].synthetic)
    if (unsupported.length === 0) return true
    excluded.push({
      behaviour: b,
      reason: `${unsupported.join(', ')} ${unsupported.length === 1 ? 'does' : 'do'} not declare synthetic: true (honouring X-Synthetic), so ${b} traffic would change real state`,
    })
    return false
  })
  if (active.length === 0) {
    throw new UsageError(
      `The warm-up mix of campaign ${campaign.name} calls no configured service that can take it (browse/search → catalog, cart → cart, checkout → checkout).${excluded.map((e) => `\n  • ${e.behaviour} left out: ${e.reason}`).join('')}`,
      {
        nextSteps: [
          'Give a positive weight to a behaviour whose service is in retailops.yaml, or skip the warm-up with --no-warm.',
          ...(excluded.length > 0
            ? ['Set services.<name>.synthetic: true only for services that honour X-Synthetic (the bundled ones do).']
            : []),
        ],
      },
    )
  }
  const share = campaign.warmup.share
  // Each service with a campaign peak warms to share × its peak, split over its behaviours by weight.
  const rps = new Map<string, number>()
  const byService = new Map<string, [string, number][]>()
  for (const [b, w] of active)
    byService.set(BEHAVIOURS[b].service, [...(byService.get(BEHAVIOURS[b].service) ?? []), [b, w]])
  for (const [service, list] of byService) {
    const peak = input.peakRps[service]
    if (!peak) continue
    const total = list.reduce((sum, [, w]) => sum + w, 0)
    for (const [b, w] of list) rps.set(b, share * peak * (w / total))
  }
  // Behaviours on services without a peak follow the mix: the same rate per unit of weight.
  const known = active.filter(([b]) => rps.has(b))
  const perWeight =
    known.length > 0
      ? known.reduce((sum, [b]) => sum + rps.get(b)!, 0) / known.reduce((sum, [, w]) => sum + w, 0)
      : (share * Object.values(input.peakRps).reduce((a, b) => a + b, 0)) / active.reduce((sum, [, w]) => sum + w, 0)
  for (const [b, w] of active) if (!rps.has(b)) rps.set(b, perWeight * w)

  const urls: Record<string, string> = {}
  const missing: string[] = []
  for (const service of byService.keys()) {
    const url = input.serviceUrls[service] ?? input.baseUrl
    if (url) urls[service] = trimSlash(url)
    else missing.push(service)
  }
  if (missing.length > 0) {
    throw new UsageError(`No URL for ${missing.join(', ')}: the warm-up needs where the services answer.`, {
      nextSteps: [
        'Set environments.<env>.baseUrl in retailops.yaml, or pass --base-url URL (a gateway routing every service) or --service-url NAME=URL per service.',
      ],
    })
  }

  const scenarios: ScenarioPlan[] = active.map(([b, w]) => {
    const r = rps.get(b)!
    return {
      behaviour: b,
      service: BEHAVIOURS[b].service,
      weight: w,
      targetRps: Math.round(r * 1000) / 1000,
      targetPerMinute: Math.max(1, Math.round((r / BEHAVIOURS[b].requestsPerIteration) * 60)),
    }
  })

  const thresholds: ThresholdPlan[] = []
  const skipped: string[] = []
  for (const service of byService.keys()) {
    for (const slo of config.services[service].slos) {
      const routes = new Set(
        active.filter(([b]) => BEHAVIOURS[b].service === service).flatMap(([b]) => BEHAVIOURS[b].routes),
      )
      const sliRoute = 'route' in slo.sli ? slo.sli.route : undefined
      if (sliRoute && !routes.has(sliRoute)) {
        skipped.push(`${service}/${slo.name}: route ${sliRoute} is not in the warm-up mix`)
        continue
      }
      const tags = `service:${service}${sliRoute ? `,route:${sliRoute}` : ''}`
      if (slo.sli.type === 'latency') {
        thresholds.push({
          metric: `http_req_duration{${tags}}`,
          expression: `p(${trimNumber(slo.objective)})<${slo.sli.thresholdMs}`,
          slo: `${service}/${slo.name}`,
        })
      } else if (slo.sli.type === 'availability') {
        thresholds.push({
          metric: `http_req_failed{${tags}}`,
          expression: `rate<${trimNumber(1 - slo.objective / 100)}`,
          slo: `${service}/${slo.name}`,
        })
      } else {
        skipped.push(`${service}/${slo.name}: a ratio SLI (PromQL counters) is not measured by k6`)
      }
    }
  }
  const {abort} = campaign.warmup
  const aborts: AbortPlan[] = [...byService.keys()].flatMap((service) => [
    {
      service,
      metric: `http_req_failed{service:${service}}`,
      expression: `rate<${trimNumber(abort.errorRate)}`,
      limit: 'error rate',
    },
    {
      service,
      metric: `http_req_duration{service:${service}}`,
      expression: `p(95)<${trimNumber(abort.p95Ms)}`,
      limit: 'p95 latency',
    },
  ])
  const durationMs = parseDuration(campaign.warmup.duration)!
  return {
    campaign: campaign.name,
    share,
    durationMs,
    urls,
    scenarios,
    thresholds,
    aborts,
    abortAfterMs: parseDuration(abort.after)!,
    excluded,
    skipped,
  }
}

/** A service and every configured service it depends on, directly or not. */
function reachedServices(config: RetailOpsConfig, service: string): string[] {
  const seen = new Set<string>()
  const visit = (s: string) => {
    if (seen.has(s) || !config.services[s]) return
    seen.add(s)
    for (const d of config.services[s].dependsOn) visit(d)
  }
  visit(service)
  return [...seen]
}

function trimNumber(n: number): string {
  return String(Number.parseFloat(n.toPrecision(10)))
}

const seconds = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`

/** The k6 options the script exports: scenarios, thresholds (SLOs plus per-behaviour reporting). */
export function k6Options(plan: WarmupPlan, paymentToken: string) {
  const d = plan.durationMs
  const scenarios: Record<string, unknown> = {}
  for (const s of plan.scenarios) {
    const perSecond = s.targetPerMinute / 60
    scenarios[s.behaviour] = {
      executor: 'ramping-arrival-rate',
      exec: s.behaviour,
      startRate: 0,
      timeUnit: '1m',
      // Ramp to half, then to the target, then hold (a quarter, a quarter, a half of the time).
      stages: [
        {target: Math.max(1, Math.round(s.targetPerMinute / 2)), duration: seconds(d * 0.25)},
        {target: s.targetPerMinute, duration: seconds(d * 0.25)},
        {target: s.targetPerMinute, duration: seconds(d * 0.5)},
      ],
      preAllocatedVUs: Math.min(500, Math.ceil(perSecond) + 2),
      maxVUs: Math.min(2000, Math.ceil(perSecond * 5) + 10),
      gracefulStop: '10s',
      tags: {behaviour: s.behaviour},
    }
  }
  const thresholds: Record<string, (string | {threshold: string; abortOnFail: boolean; delayAbortEval: string})[]> = {}
  for (const t of plan.thresholds) thresholds[t.metric] = [...(thresholds[t.metric] ?? []), t.expression]
  // k6 judges an abort limit from delayAbortEval on and stops the whole run when it is crossed.
  for (const a of plan.aborts)
    thresholds[a.metric] = [
      ...(thresholds[a.metric] ?? []),
      {threshold: a.expression, abortOnFail: true, delayAbortEval: seconds(plan.abortAfterMs)},
    ]
  // Always-true thresholds make k6 keep per-behaviour sub-metrics for the report.
  for (const s of plan.scenarios) {
    thresholds[`http_reqs{behaviour:${s.behaviour}}`] = ['count>=0']
    thresholds[`http_req_failed{behaviour:${s.behaviour}}`] = ['rate>=0']
    thresholds[`http_req_duration{behaviour:${s.behaviour}}`] = ['max>=0']
  }
  const percentiles = new Set(['p(90)', 'p(95)', 'p(99)'])
  for (const t of plan.thresholds) {
    const m = /^(p\([\d.]+\))/.exec(t.expression)
    if (m) percentiles.add(m[1])
  }
  return {
    scenarios,
    thresholds,
    summaryTrendStats: ['avg', 'min', 'med', 'max', ...percentiles],
    urls: plan.urls,
    paymentToken,
    skus: SKUS,
    searchTerms: SEARCH_TERMS,
    insecureSkipTLSVerify: false,
  }
}

export async function renderWarmupScript(plan: WarmupPlan, paymentToken: string): Promise<string> {
  const template = await readTemplate('k6/prewarm.js.tmpl')
  return renderTemplate(template, {
    campaign: plan.campaign,
    plan: JSON.stringify(k6Options(plan, paymentToken), null, 2),
  })
}

export interface ThresholdResult extends ThresholdPlan {
  ok: boolean
  /** The measured value the expression compares (ms for latency, a ratio for failures). */
  observed?: number
}

export interface BehaviourResult {
  behaviour: string
  service: string
  targetRps: number
  requests: number
  /** Requests per second over the whole run (ramp included). */
  rps: number
  failedRate: number
  p95Ms?: number
  p99Ms?: number
}

export interface AbortResult extends AbortPlan {
  ok: boolean
  observed?: number
}

export interface WarmupResult {
  /** Every SLO threshold passed and no abort limit was crossed. */
  passed: boolean
  /** Set when an abort limit was crossed: k6 stopped the run (early, unless it was crossed at the very end). */
  aborted?: {
    /** The crossed limits, with the values k6 measured. */
    crossed: AbortResult[]
    /** How long the run went, against the planned duration. */
    ranMs: number
    plannedMs: number
    /** One sentence: which limit, which value, when. */
    reason: string
  }
  k6: string
  exitCode: number
  durationMs: number
  urls: Record<string, string>
  behaviours: BehaviourResult[]
  thresholds: ThresholdResult[]
  /** The abort limits and what k6 measured for them. */
  aborts: AbortResult[]
  droppedIterations: number
  /** Behaviours of the mix left out, and why. */
  excluded: {behaviour: string; reason: string}[]
  skipped: string[]
  /** Where the generated script was kept (--k6-script-out), if asked. */
  script?: string
}

interface K6Metric {
  type: string
  values: Record<string, number>
  thresholds?: Record<string, {ok: boolean}>
}

/** Pure: k6's handleSummary data → our result. */
export function parseSummary(
  plan: WarmupPlan,
  data: {metrics?: Record<string, K6Metric>; state?: {testRunDurationMs?: number}},
): Omit<WarmupResult, 'k6' | 'exitCode' | 'urls' | 'skipped' | 'excluded' | 'passed'> & {allOk: boolean} {
  const metrics = data.metrics ?? {}
  const runMs = data.state?.testRunDurationMs ?? plan.durationMs
  const judge = <T extends {metric: string; expression: string}>(t: T): T & {ok: boolean; observed?: number} => {
    const m = metrics[t.metric]
    const ok = m?.thresholds?.[t.expression]?.ok ?? false
    const stat = /^(p\([\d.]+\)|rate|avg|max|min|med|count)/.exec(t.expression)?.[1]
    const observed = stat && m ? m.values[stat] : undefined
    return {...t, ok, observed: observed === undefined ? undefined : Math.round(observed * 1000) / 1000}
  }
  const thresholds: ThresholdResult[] = plan.thresholds.map(judge)
  // A limit on a service that got no request has no sub-metric: nothing was crossed.
  const aborts: AbortResult[] = plan.aborts.map((a) => (metrics[a.metric] ? judge(a) : {...a, ok: true}))
  const crossed = aborts.filter((a) => !a.ok)
  const aborted =
    crossed.length === 0
      ? undefined
      : {
          crossed,
          ranMs: Math.round(runMs),
          plannedMs: plan.durationMs,
          reason: `${crossed.map((a) => `${a.service} ${a.limit} ${a.limit === 'error rate' ? `${formatRatio(a.observed)}` : `${a.observed ?? '?'} ms`} crossed the limit ${a.expression}`).join('; ')}; ${runMs < plan.durationMs - 1000 ? `k6 stopped the warm-up after ${Math.round(runMs / 1000)} s of ${Math.round(plan.durationMs / 1000)} s` : 'at the end of the run'}`,
        }
  const behaviours: BehaviourResult[] = plan.scenarios.map((s) => {
    const reqs = metrics[`http_reqs{behaviour:${s.behaviour}}`]?.values
    const failed = metrics[`http_req_failed{behaviour:${s.behaviour}}`]?.values
    const dur = metrics[`http_req_duration{behaviour:${s.behaviour}}`]?.values
    const requests = reqs?.count ?? 0
    return {
      behaviour: s.behaviour,
      service: s.service,
      targetRps: s.targetRps,
      requests,
      rps: Math.round((requests / Math.max(1, runMs / 1000)) * 100) / 100,
      failedRate: Math.round((failed?.rate ?? 0) * 10_000) / 10_000,
      p95Ms: dur?.['p(95)'] === undefined ? undefined : Math.round(dur['p(95)'] * 10) / 10,
      p99Ms: dur?.['p(99)'] === undefined ? undefined : Math.round(dur['p(99)'] * 10) / 10,
    }
  })
  return {
    durationMs: Math.round(runMs),
    behaviours,
    thresholds,
    droppedIterations: metrics.dropped_iterations?.values?.count ?? 0,
    aborts,
    ...(aborted ? {aborted} : {}),
    allOk: thresholds.every((t) => t.ok) && !aborted,
  }
}

function formatRatio(r: number | undefined): string {
  return r === undefined ? '?' : `${Math.round(r * 10_000) / 100} %`
}

export interface RunWarmupOptions {
  plan: WarmupPlan
  k6?: string
  paymentToken?: string
  /** Keep the generated script here. */
  scriptOut?: string
}

/** Runs the real k6 on the generated script and reports its results; a failed SLO threshold is WARMUP_THRESHOLD. */
export async function runWarmup(options: RunWarmupOptions, ctx: RunContext): Promise<WarmupResult> {
  const {execa} = await import('execa')
  const k6 = options.k6 ?? process.env.RETAILOPS_K6 ?? 'k6'
  const {plan} = options
  const dir = await mkdtemp(path.join(os.tmpdir(), 'retailops-k6-'))
  for (const e of plan.excluded) ctx.out.warn(`Warm-up: ${e.behaviour} left out of the mix: ${e.reason}.`)
  try {
    const script = await renderWarmupScript(plan, options.paymentToken ?? 'tok_prewarm_test')
    const scriptPath = options.scriptOut ?? path.join(dir, `prewarm-${plan.campaign}.js`)
    await writeFile(scriptPath, script)
    const summaryPath = path.join(dir, 'summary.json')
    const task = ctx.out.task(
      `k6: warming ${plan.scenarios.map((s) => `${s.behaviour} ${s.targetRps} rps`).join(', ')} for ${Math.round(plan.durationMs / 1000)}s`,
    )
    const child = execa(k6, ['run', '--quiet', '--no-color', '--no-usage-report', '--address', '', scriptPath], {
      env: {RETAILOPS_SUMMARY: summaryPath, K6_NO_USAGE_REPORT: 'true'},
      cwd: dir,
      reject: false,
      all: true,
      buffer: {all: true},
      cancelSignal: ctx.signal,
      forceKillAfterDelay: 15_000,
    })
    child.all?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) ctx.out.stream('k6', line)
    })
    const r = await child
    if (
      (r as {code?: string}).code === 'ENOENT' ||
      /ENOENT/.test(String((r as {originalMessage?: string}).originalMessage ?? ''))
    ) {
      task.fail('k6 not found')
      throw new UnavailableError(`k6 was not found (${k6}).`, {
        nextSteps: [
          'Install k6 (https://grafana.com/docs/k6/latest/set-up/install-k6/, or `go install go.k6.io/k6@v1.8.1`) or set RETAILOPS_K6 to its path; or skip the warm-up with --no-warm.',
        ],
      })
    }
    throwIfAborted(ctx.signal)
    let summary: unknown
    try {
      summary = JSON.parse(await readFile(summaryPath, 'utf8'))
    } catch {
      task.fail(`k6 exited ${r.exitCode} without a summary`)
      throw new RetailOpsError('INTERNAL', `k6 exited with code ${r.exitCode} and wrote no summary.`, {
        nextSteps: [
          "Run again with --verbose to see k6's output; keep the script with --k6-script-out FILE and run it by hand.",
        ],
        details: {
          output: String(r.all ?? '')
            .split('\n')
            .slice(-20),
        },
      })
    }
    if (r.exitCode !== 0 && r.exitCode !== 99) {
      task.fail(`k6 exited ${r.exitCode}`)
      throw new RetailOpsError('INTERNAL', `k6 failed with exit code ${r.exitCode} (not a threshold failure).`, {
        nextSteps: [
          "Run again with --verbose to see k6's output; keep the script with --k6-script-out FILE and run it by hand.",
        ],
        details: {
          output: String(r.all ?? '')
            .split('\n')
            .slice(-20),
        },
      })
    }
    const parsed = parseSummary(plan, summary as Parameters<typeof parseSummary>[1])
    const passed = parsed.allOk
    if (parsed.aborted) task.fail(`k6: warm-up stopped: ${parsed.aborted.reason}`)
    else if (passed) task.succeed(`k6: all ${parsed.thresholds.length} SLO threshold(s) passed`)
    else task.fail(`k6: ${parsed.thresholds.filter((t) => !t.ok).length} SLO threshold(s) failed`)
    if (parsed.droppedIterations > 0)
      ctx.out.warn(
        `k6 dropped ${parsed.droppedIterations} iteration(s): it could not keep the arrival rate (not enough VUs for the latency seen).`,
      )
    const {allOk: _allOk, ...rest} = parsed
    return {
      passed,
      k6,
      exitCode: r.exitCode ?? -1,
      urls: plan.urls,
      excluded: plan.excluded,
      skipped: plan.skipped,
      script: options.scriptOut,
      ...rest,
    }
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}
