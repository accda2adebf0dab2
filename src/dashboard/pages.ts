/**
 * The dashboard's pages, rendered on the server from the providers' data: plain HTML with classes
 * from the stylesheet (client.ts), a little script for the live parts and the uPlot charts. Each
 * section shows its own error when its data could not be read, so one unreachable system never
 * blanks the page. Pure functions of their input: the routes and the tests call them alike.
 */
import {barChart} from '../report/charts.js'
import {html, raw, type Html} from '../report/html.js'
import type {CampaignView, CostRowView, CostView, DrillsView, RolloutView, SloView} from './views.js'

/** What a provider gave: its value, or why there is none. */
export type Loaded<T> = {ok: true; value: T} | {ok: false; error: string}

export const NAV = [
  {path: '/', label: 'Rollouts'},
  {path: '/slo', label: 'SLOs'},
  {path: '/cost', label: 'Cost'},
  {path: '/prewarm', label: 'Pre-warm'},
  {path: '/dr', label: 'DR drills'},
  {path: '/services', label: 'Services'},
] as const

export interface PageContext {
  project: string
  environment: string
  namespace: string
  /** Services that have a page (retailops.yaml's and any with a stored rollout): only those are linked. */
  services: ReadonlySet<string>
  /** When the data was read. */
  at: Date
}

const PHASE_TONE: Record<string, string> = {
  Healthy: 'good',
  Progressing: 'info',
  Analyzing: 'info',
  Promoting: 'info',
  Paused: 'warn',
  Inconclusive: 'warn',
  Aborting: 'bad',
  Aborted: 'bad',
  TimedOut: 'bad',
}

const STATUS_TONE: Record<string, string> = {
  ok: 'good',
  passed: 'good',
  ticket: 'warn',
  'target-missed': 'bad',
  page: 'bad',
  exhausted: 'bad',
  'validation-failed': 'bad',
  error: 'bad',
  'no-data': 'muted',
  interrupted: 'warn',
  upcoming: 'info',
  active: 'warn',
  ended: 'muted',
}

export function serviceHref(service: string): string {
  return `/services/${encodeURIComponent(service)}`
}

export function rolloutHref(service: string): string {
  return `/rollouts/${encodeURIComponent(service)}`
}

function badge(text: string, tone = 'neutral'): Html {
  return html`<span class="badge ${tone}">${text}</span>`
}

export function percent(ratio: number | null | undefined, digits = 1): string {
  return ratio === null || ratio === undefined || !Number.isFinite(ratio) ? '–' : `${(ratio * 100).toFixed(digits)}%`
}

export function money(value: number, currency: string): string {
  return `${value.toFixed(2)} ${currency}`
}

export function duration(ms: number | undefined): string {
  if (ms === undefined) return '–'
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = ms / 1000
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)}s`
  const m = s / 60
  return m < 120 ? `${m.toFixed(1)}m` : `${(m / 60).toFixed(1)}h`
}

function time(iso: string | undefined): Html {
  return iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html`–`
}

function failed(what: string, error: string): Html {
  return html`<div class="error" role="alert"><b>${what} could not be read:</b> ${error}</div>`
}

export function layout(ctx: PageContext, title: string, active: string, body: Html | Html[], live?: string): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · retailops ${ctx.environment}</title>
<link rel="stylesheet" href="/assets/uPlot.min.css">
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/uPlot.iife.min.js" defer></script>
<script src="/assets/dashboard.js" defer></script>
</head>
<body${live ? html` data-live="${live}"` : ''}>
<header>
<div class="brand"><a href="/">retailops</a> <span class="env">${ctx.project} · ${ctx.environment} · ${ctx.namespace}</span></div>
<nav>${NAV.map((n) => html`<a href="${n.path}" ${n.path === active ? html` class="active" aria-current="page"` : ''}>${n.label}</a>`)}</nav>
<div class="tools"><span class="live-state" id="live-state">${live ? 'live' : ''}</span><button type="button" id="wall-toggle" title="Large type for a wall display">Wall</button></div>
</header>
<main>
<h1>${title}</h1>
${body}
<p class="read-at">Read at ${time(ctx.at.toISOString())}. Read only: act with the retailops CLI.</p>
</main>
</body>
</html>
`.value
}

// ---------------------------------------------------------------- rollouts

function weightBar(r: RolloutView): Html {
  const shown = r.actualWeight ?? r.weight
  return html`<div
    class="weight"
    data-weight="${shown}"
    title="canary weight: stored ${r.weight}%, read back ${r.actualWeight ?? '–'}%"
  >
    <div class="bar"><div class="fill" style="width:${Math.max(0, Math.min(100, shown))}%"></div></div>
    <span class="weight-value">${shown}%</span>
  </div>`
}

function stepChips(r: RolloutView): Html {
  return html`<ol class="steps">
    ${r.stepList.map(
      (s) => html`<li class="step ${s.state}" title="weight after this step: ${s.weight}%">${s.label}</li>`,
    )}
  </ol>`
}

export function rolloutCard(r: RolloutView): Html {
  const tone = PHASE_TONE[r.phase] ?? 'neutral'
  return html`<article class="rollout ${tone}" data-service="${r.service}" data-phase="${r.phase}">
    <div class="rollout-head">
      <h3><a href="${rolloutHref(r.service)}">${r.service}</a></h3>
      ${badge(r.phase, tone)}${r.waiting ? badge('waits for a person', 'warn') : ''}${r.orphaned ? badge('no driver', 'bad') : ''}
      <span class="versions">${r.stable.version} → <b>${r.canary.version}</b></span>
      <span class="muted">${r.strategy} · ${r.router}</span>
    </div>
    ${weightBar(r)} ${stepChips(r)}
    <p class="message">${r.message}</p>
    ${r.reason ? html`<p class="reason" data-reason><b>Reason:</b> ${r.reason}</p>` : ''}
    ${r.analysis ? html`<p class="analysis">Analysis (${r.analysis.kind}): ${badge(r.analysis.phase, r.analysis.phase === 'Successful' ? 'good' : r.analysis.phase === 'Running' ? 'info' : 'bad')} ${r.analysis.message ?? ''}</p>` : ''}
    <p class="links"><a href="${serviceHref(r.service)}">service</a> · updated ${time(r.updatedAt)}</p>
  </article>`
}

/** The live part of the rollouts page: replaced as a whole on every change. */
export function rolloutsFragment(rollouts: Loaded<RolloutView[]>, service?: string): string {
  if (!rollouts.ok) return failed('Rollouts', rollouts.error).value
  const shown = service ? rollouts.value.filter((r) => r.service === service) : rollouts.value
  if (shown.length === 0)
    return html`<p class="empty">
      ${service ? `No rollout of ${service} is stored in this namespace.` : 'No rollout is stored in this namespace: `retailops deploy --canary` starts one.'}
    </p>`.value
  const active = shown.filter((r) => !['Healthy', 'Aborted', 'TimedOut'].includes(r.phase))
  const done = shown.filter((r) => !active.includes(r))
  return html`${
    active.length > 0
      ? html`<h2>In progress (${active.length})</h2>
          <div class="cards">${active.map(rolloutCard)}</div>`
      : html`<p class="empty">Nothing is rolling out now.</p>`
  }
  ${
    done.length > 0
      ? html`<h2>Finished (${done.length})</h2>
          <div class="cards">${done.map(rolloutCard)}</div>`
      : ''
  }`.value
}

export function rolloutsPage(ctx: PageContext, rollouts: Loaded<RolloutView[]>): string {
  return layout(
    ctx,
    'Rollouts',
    '/',
    html`<div id="live" data-src="/events/rollouts">${raw(rolloutsFragment(rollouts))}</div>`,
    'rollouts',
  )
}

function measurementsTable(r: RolloutView): Html {
  const runs = [...r.analysisRuns].reverse()
  if (runs.length === 0) return html`<p class="empty">No analysis has run yet (${r.analysisSpec}).</p>`
  return html`${runs.map(
    (run) =>
      html`<section class="analysis-run">
        <h3>
          ${run.kind}:
          ${badge(run.phase, run.phase === 'Successful' ? 'good' : run.phase === 'Running' ? 'info' : 'bad')}
          <span class="muted">${run.id}</span>
        </h3>
        ${run.message ? html`<p>${run.message}</p>` : ''}
        <table>
          <thead>
            <tr>
              <th>Metric</th>
              <th>At</th>
              <th>Canary</th>
              <th>Stable</th>
              <th>Result</th>
              <th>Against the condition</th>
            </tr>
          </thead>
          <tbody>
            ${run.metrics.flatMap((m) =>
              m.measurements.map(
                (x) =>
                  html`<tr>
                    <td>${m.name}</td>
                    <td>${time(x.at)}</td>
                    <td class="num">${x.canary ?? '–'}</td>
                    <td class="num">${x.stable ?? '–'}</td>
                    <td>${badge(x.phase, x.phase === 'Successful' ? 'good' : 'bad')}</td>
                    <td>${x.reason}</td>
                  </tr>`,
              ),
            )}
          </tbody>
        </table>
        <p class="muted">
          ${run.metrics.map((m) => `${m.name}: ${m.successful} passed, ${m.failed} failed, ${m.inconclusive} inconclusive, ${m.errors} errors`).join(' · ')}
        </p>
      </section>`,
  )}`
}

function historyTable(r: Pick<RolloutView, 'history'>): Html {
  if (r.history.length === 0) return html`<p class="empty">No finished rollout recorded.</p>`
  return html`<table class="history">
    <thead>
      <tr>
        <th>#</th>
        <th>Strategy</th>
        <th>Result</th>
        <th>From → to</th>
        <th>Started</th>
        <th>Finished</th>
        <th>Reason</th>
      </tr>
    </thead>
    <tbody>
      ${[...r.history].reverse().map(
        (h) =>
          html`<tr>
            <td>${h.number}</td>
            <td>${h.strategy}</td>
            <td>${badge(h.phase, PHASE_TONE[h.phase])}</td>
            <td>${h.stable.version} → ${h.canary.version}</td>
            <td>${time(h.startedAt)}</td>
            <td>${time(h.finishedAt)}</td>
            <td>
              ${h.reason ?? h.message}${h.forced ? html` ${badge(`forced by ${h.forced.by}: ${h.forced.reason}`, 'warn')}` : ''}
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`
}

/** One rollout in full: the live card, the conditions, every measurement, events and history. */
export function rolloutDetailFragment(rollouts: Loaded<RolloutView[]>, service: string): string {
  if (!rollouts.ok) return failed('Rollouts', rollouts.error).value
  const r = rollouts.value.find((x) => x.service === service)
  if (!r) return html`<p class="empty">No rollout of ${service} is stored in this namespace.</p>`.value
  return html`<div class="cards">${rolloutCard(r)}</div>
    <h2>Analysis conditions</h2>
    ${
      r.metrics.length === 0
        ? html`<p class="empty">${r.analysisSpec}</p>`
        : html`<table>
            <thead>
              <tr>
                <th>Metric</th>
                <th>Query</th>
                <th>Success when</th>
                <th>Failure when</th>
                <th>Against stable</th>
              </tr>
            </thead>
            <tbody>
              ${r.metrics.map(
                (m) =>
                  html`<tr>
                    <td>${m.name}</td>
                    <td><code>${m.query}</code></td>
                    <td><code>${m.successCondition ?? '–'}</code></td>
                    <td><code>${m.failureCondition ?? '–'}</code></td>
                    <td>${m.compareWithStable ? 'yes' : 'no'}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    <h2>Measurements</h2>
    ${measurementsTable(r)}
    <h2>Events</h2>
    <ul class="events">
      ${[...r.events].reverse().map((e) => html`<li>${time(e.at)} ${badge(e.phase, PHASE_TONE[e.phase])} ${e.message}</li>`)}
    </ul>
    <h2>History</h2>
    ${historyTable(r)}`.value
}

export function rolloutPage(ctx: PageContext, rollouts: Loaded<RolloutView[]>, service: string): string {
  return layout(
    ctx,
    `Rollout: ${service}`,
    '/',
    html`<div id="live" data-src="/events/rollouts?service=${encodeURIComponent(service)}&amp;detail=1">
      ${raw(rolloutDetailFragment(rollouts, service))}
    </div>`,
    'rollouts',
  )
}

// ---------------------------------------------------------------- SLOs

/** The series a burn-rate chart plots: the 1h burn rate across the SLO window, with the page and ticket thresholds. */
export function burnChartData(
  slo: SloView['slos'][number],
): {x: number[]; burn: (number | null)[]; thresholds: {label: string; value: number}[]} | undefined {
  if (!slo.history || slo.history.length === 0) return undefined
  const factors = [...new Map(slo.alerts.map((a) => [a.factor, a])).values()]
  return {
    // uPlot's time axis counts seconds; the engine's history counts milliseconds.
    x: slo.history.map(([t]) => t / 1000),
    burn: slo.history.map(([, v]) => (v === null || !Number.isFinite(v) ? null : v)),
    thresholds: factors.map((a) => ({
      label: `${a.severity} ${a.long}/${a.short} ×${Number(a.factor.toFixed(2))}`,
      value: a.factor,
    })),
  }
}

function budgetMeter(remaining: number | null): Html {
  const width = remaining === null ? 0 : Math.max(0, Math.min(1, remaining)) * 100
  const tone = remaining === null ? 'muted' : remaining <= 0 ? 'bad' : remaining < 0.25 ? 'warn' : 'good'
  return html`<div class="meter ${tone}"><div class="fill" style="width:${width.toFixed(1)}%"></div></div>`
}

function sloRows(slos: SloView['slos']): Html {
  return html`<table class="slos">
    <thead>
      <tr>
        <th>Service</th>
        <th>SLO</th>
        <th>Objective</th>
        <th>SLI</th>
        <th>Error budget left</th>
        <th>Status</th>
        <th>Burn rates</th>
        <th>Exhausted in</th>
      </tr>
    </thead>
    <tbody>
      ${slos.map(
        (s) =>
          html`<tr data-slo="${s.id}" data-budget="${s.budgetRemaining ?? ''}">
            <td><a href="${serviceHref(s.service)}">${s.service}</a> <span class="muted">${s.tier}</span></td>
            <td>${s.slo}${s.description ? html`<div class="muted">${s.description}</div>` : ''}</td>
            <td class="num">${s.objective}% / ${s.window}</td>
            <td class="num">${s.sli === null ? '–' : `${s.sli.toFixed(3)}%`}</td>
            <td class="budget">
              <span class="budget-value">${percent(s.budgetRemaining)}</span>${budgetMeter(s.budgetRemaining)}
            </td>
            <td>
              ${badge(s.status, STATUS_TONE[s.status])}${s.missing.length > 0 ? html`<div class="muted">${s.missing.join('; ')}</div>` : ''}
            </td>
            <td>
              <div class="burns">
                ${s.burnRates.map((b) => html`<span class="burn" title="error ratio ${b.errorRatio ?? '–'}"><b>${b.window}</b> ${b.burnRate === null ? '–' : b.burnRate.toFixed(2)}</span>`)}
              </div>
            </td>
            <td>${s.timeToExhaustion ?? '–'}</td>
          </tr>`,
      )}
    </tbody>
  </table>`
}

function burnCharts(slos: SloView['slos']): Html {
  const charts = slos.flatMap((s) => {
    const data = burnChartData(s)
    return data
      ? [
          html`<figure class="chart">
            <figcaption>${s.service} · ${s.slo}: 1h burn rate over ${s.window}</figcaption>
            <div class="uplot-chart" data-chart="${JSON.stringify(data)}"></div>
          </figure>`,
        ]
      : []
  })
  return charts.length > 0
    ? html`<h2>Burn rate over the SLO windows</h2>
        <div class="charts">${charts}</div>`
    : html``
}

export function sloSection(slo: Loaded<SloView>, service?: string): Html {
  if (!slo.ok) return failed('SLOs', slo.error)
  const slos = service ? slo.value.slos.filter((s) => s.service === service) : slo.value.slos
  if (slos.length === 0) return html`<p class="empty">No SLO is configured${service ? ` for ${service}` : ''}.</p>`
  return html`<p class="muted">
      Prometheus ${slo.value.prometheus}, evaluated at ${time(slo.value.at)}. Release gate:
      ${slo.value.gate.pass ? badge('open', 'good') : badge('closed', 'bad')}
    </p>
    ${sloRows(slos)}${burnCharts(slos)}`
}

export function sloPage(ctx: PageContext, slo: Loaded<SloView>): string {
  return layout(ctx, 'SLOs and error budgets', '/slo', sloSection(slo))
}

// ---------------------------------------------------------------- cost

function costRows(rows: CostRowView[], currency: string, link: ReadonlySet<string>): Html {
  return html`<table>
    <thead>
      <tr>
        <th>Name</th>
        <th>Cost in window</th>
        <th>Per month</th>
        <th>Efficiency</th>
        <th>Pods</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) =>
          html`<tr data-cost="${r.name}">
            <td>${link.has(r.name) ? html`<a href="${serviceHref(r.name)}">${r.name}</a>` : r.name}</td>
            <td class="num">${money(r.totalCost, currency)}</td>
            <td class="num">${money(r.monthlyCost, currency)}</td>
            <td class="num">${percent(r.totalEfficiency, 0)}</td>
            <td class="num">${r.pods}</td>
          </tr>`,
      )}
    </tbody>
  </table>`
}

function findingsTable(findings: CostView['findings'], currency: string, link: ReadonlySet<string>): Html {
  if (findings.length === 0) return html`<p class="empty">No findings.</p>`
  return html`<table class="findings">
    <thead>
      <tr>
        <th>Finding</th>
        <th>Where</th>
        <th>Saving / month</th>
        <th>Action</th>
      </tr>
    </thead>
    <tbody>
      ${findings.map(
        (f) =>
          html`<tr>
            <td>
              <b>${f.title}</b>
              <div class="muted">${f.detail}</div>
            </td>
            <td>
              ${f.service ? (link.has(f.service) ? html`<a href="${serviceHref(f.service)}">${f.service}</a>` : f.service) : ''}
              ${f.namespace ?? ''} ${f.pool ?? ''}
            </td>
            <td class="num">${money(f.monthlySaving, currency)}</td>
            <td>${f.action}${f.command ? html`<div><code>${f.command}</code></div>` : ''}</td>
          </tr>`,
      )}
    </tbody>
  </table>`
}

export function costSection(cost: Loaded<CostView>, services: ReadonlySet<string>, service?: string): Html {
  if (!cost.ok) return failed('Cost', cost.error)
  const c = cost.value
  if (service) {
    const row = c.breakdowns.service.find((r) => r.name === service)
    const findings = c.findings.filter((f) => f.service === service)
    return html`${row ? costRows([row], c.currency, new Set()) : html`<p class="empty">No cost allocated to ${service} in the last ${c.window.window}.</p>`}
      <h3>Findings</h3>
      ${findingsTable(findings, c.currency, new Set())}`
  }
  // Idle cost has its own figure above: the chart compares what the services cost.
  const bars = (rows: CostRowView[]) =>
    rows
      .filter((r) => !r.name.startsWith('__'))
      .map((r) => ({label: r.name, value: r.totalCost, tone: 'info' as const}))
  return html`<div class="kpis">
      <div class="kpi">
        <div class="label">Cost (${c.window.window})</div>
        <div class="value">${money(c.totals.cost, c.currency)}</div>
      </div>
      <div class="kpi">
        <div class="label">Per month</div>
        <div class="value">${money(c.totals.monthly, c.currency)}</div>
      </div>
      <div class="kpi">
        <div class="label">Idle</div>
        <div class="value">${money(c.totals.idle, c.currency)}</div>
      </div>
      <div class="kpi">
        <div class="label">Efficiency</div>
        <div class="value">${percent(c.totals.efficiency.total, 0)}</div>
      </div>
      <div class="kpi good">
        <div class="label">Potential saving / month</div>
        <div class="value">${money(c.potentialMonthlySaving, c.currency)}</div>
      </div>
    </div>
    <p class="muted">${c.usage.detail}</p>
    <h2>By service</h2>
    ${barChart({bars: bars(c.breakdowns.service), limit: 12, format: (n) => n.toFixed(2)})}${costRows(c.breakdowns.service, c.currency, services)}
    <h2>By tenant</h2>
    ${costRows(c.breakdowns.tenant, c.currency, new Set())}
    <h2>By node pool</h2>
    ${costRows(c.breakdowns.pool, c.currency, new Set())}
    <h2>Findings and savings</h2>
    ${findingsTable(c.findings, c.currency, services)}`
}

export function costPage(ctx: PageContext, cost: Loaded<CostView>): string {
  return layout(ctx, 'Cost', '/cost', costSection(cost, ctx.services))
}

// ---------------------------------------------------------------- pre-warm

export function prewarmSection(campaigns: Loaded<CampaignView[]>, service?: string): Html {
  if (!campaigns.ok) return failed('Pre-warm status', campaigns.error)
  const shown = service ? campaigns.value.filter((c) => c.services.some((s) => s.service === service)) : campaigns.value
  if (shown.length === 0)
    return html`<p class="empty">No campaign${service ? ` covers ${service}` : ' is configured'}.</p>`
  return html`${shown.map(
    (c) =>
      html`<section class="campaign" data-campaign="${c.campaign}">
        <h3>
          ${c.campaign} ${badge(c.window, STATUS_TONE[c.window])}
          ${c.applied ? badge('pre-warmed', 'good') : badge('not pre-warmed', 'muted')}
        </h3>
        <p class="muted">
          ${time(c.start)} →
          ${time(c.end)}${c.savedAt ? html` · saved ${time(c.savedAt)} in ${c.stateConfigMap}` : ''}${c.headroomDeployments.length > 0 ? ` · headroom: ${c.headroomDeployments.join(', ')}` : ''}
        </p>
        <p>
          Scheduled:
          ${c.schedule.prewarm ? html`pre-warm <code>${c.schedule.prewarm.schedule}</code> (${c.schedule.prewarm.name})` : 'no pre-warm'}
          · ${c.schedule.restore ? html`restore <code>${c.schedule.restore.schedule}</code>` : 'no restore'}
        </p>
        <table>
          <thead>
            <tr>
              <th>Service</th>
              <th>Peak</th>
              <th>Raised</th>
              <th>Floor now</th>
              <th>Before</th>
              <th>Max</th>
              <th>Ready</th>
            </tr>
          </thead>
          <tbody>
            ${c.services
              .filter((s) => !service || s.service === service)
              .map(
                (s) =>
                  html`<tr>
                    <td><a href="${serviceHref(s.service)}">${s.service}</a></td>
                    <td>${s.peak}</td>
                    <td>${s.target ? `${s.target.kind} ${s.target.name}` : 'not deployed'}</td>
                    <td class="num">${s.floor ?? '–'}</td>
                    <td class="num">${s.savedFloor ?? '–'}</td>
                    <td class="num">${s.maxReplicas ?? '–'}</td>
                    <td class="num">${s.readyReplicas ?? '–'}${s.replicas !== undefined ? ` / ${s.replicas}` : ''}</td>
                  </tr>`,
              )}
          </tbody>
        </table>
        <p class="muted">Next: <code>${c.next}</code></p>
      </section>`,
  )}`
}

export function prewarmPage(ctx: PageContext, campaigns: Loaded<CampaignView[]>): string {
  return layout(ctx, 'Pre-warm by campaign', '/prewarm', prewarmSection(campaigns))
}

// ---------------------------------------------------------------- DR drills

export function drSection(drills: Loaded<DrillsView>, service?: string): Html {
  if (!drills.ok) return failed('DR drills', drills.error)
  const d = drills.value
  const shown = service ? d.drills.filter((x) => x.services.includes(service)) : d.drills
  const targets = service ? d.targets.filter((t) => t.service === service) : d.targets
  // The targets the drill measured against, else those configured now for its services.
  const targetOf = (x: (typeof shown)[number]) => {
    const ts = d.targets.filter((t) => x.services.includes(t.service))
    const configured = (key: 'rtoMs' | 'rpoMs') => (ts.length > 0 ? Math.min(...ts.map((t) => t[key])) : undefined)
    return {rtoMs: x.rtoTargetMs ?? configured('rtoMs'), rpoMs: x.rpoTargetMs ?? configured('rpoMs')}
  }
  const vs = (actual: number | undefined, target: number | undefined) =>
    html`<span class="${actual === undefined || target === undefined ? '' : actual <= target ? 'good' : 'bad'}">${duration(actual)}</span> <span class="muted">/ ${duration(target)}</span>`
  return html`${targets.length > 0 ? html`<p class="muted">Targets: ${targets.map((t) => `${t.service} RTO ${t.rto} RPO ${t.rpo}`).join(' · ')}</p>` : ''}
  ${
    shown.length === 0
      ? html`<p class="empty">
          No drill recorded${service ? ` for ${service}` : ''}: \`retailops dr drill\` runs one.
        </p>`
      : html`<table class="drills">
          <thead>
            <tr>
              <th>Drill</th>
              <th>Started</th>
              <th>Status</th>
              <th>Services</th>
              <th>Datastores</th>
              <th>RTO / target</th>
              <th>RPO / target</th>
              <th>Record</th>
            </tr>
          </thead>
          <tbody>
            ${shown.map((x) => {
              const t = targetOf(x)
              return html`<tr data-drill="${x.id}">
                <td>${x.id}</td>
                <td>${time(x.startedAt)}</td>
                <td>${badge(x.status, STATUS_TONE[x.status])}</td>
                <td>${x.services.map((s) => html`<a href="${serviceHref(s)}">${s}</a> `)}</td>
                <td>${x.datastores.join(', ')}</td>
                <td>${vs(x.rtoMs, t?.rtoMs)}</td>
                <td>${vs(x.rpoMs, t?.rpoMs)}</td>
                <td class="muted">${x.where}</td>
              </tr>`
            })}
          </tbody>
        </table>`
  }
  ${
    !service && d.scheduled.length > 0
      ? html`<h2>Scheduled</h2>
          <ul>
            ${d.scheduled.map((s) => html`<li>${s.name} <code>${s.schedule}</code> next ${time(s.nextRun)}</li>`)}
          </ul>`
      : ''
  }`
}

export function drPage(ctx: PageContext, drills: Loaded<DrillsView>): string {
  return layout(ctx, 'Disaster-recovery drills', '/dr', drSection(drills))
}

// ---------------------------------------------------------------- services

export function servicesPage(ctx: PageContext, services: string[]): string {
  return layout(
    ctx,
    'Services',
    '/services',
    html`<ul class="services">
      ${services.map((s) => html`<li><a href="${serviceHref(s)}">${s}</a></li>`)}
    </ul>`,
  )
}

export interface ServiceData {
  rollouts: Loaded<RolloutView[]>
  slo: Loaded<SloView>
  cost: Loaded<CostView>
  prewarm: Loaded<CampaignView[]>
  drills: Loaded<DrillsView>
}

/** Everything about one service: its rollout (live) and history, its SLOs, its cost and findings, campaigns, drills. */
export function servicePage(ctx: PageContext, service: string, data: ServiceData): string {
  const history = data.rollouts.ok ? data.rollouts.value.find((r) => r.service === service) : undefined
  return layout(
    ctx,
    `Service: ${service}`,
    '/services',
    html`<h2>Rollout</h2>
      <div id="live" data-src="/events/rollouts?service=${encodeURIComponent(service)}">
        ${raw(rolloutsFragment(data.rollouts, service))}
      </div>
      ${
        history
          ? html`<h3>History</h3>
              ${historyTable(history)}`
          : ''
      }
      <h2>SLOs</h2>
      ${sloSection(data.slo, service)}
      <h2>Cost</h2>
      ${costSection(data.cost, ctx.services, service)}
      <h2>Pre-warm</h2>
      ${prewarmSection(data.prewarm, service)}
      <h2>DR drills</h2>
      ${drSection(data.drills, service)}`,
    'rollouts',
  )
}

export function notFoundPage(ctx: PageContext, what: string): string {
  return layout(
    ctx,
    'Not found',
    '',
    html`<p class="empty">${what}</p>
      <p><a href="/">Back to the rollouts</a></p>`,
  )
}
