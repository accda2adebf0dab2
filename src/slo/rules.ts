import {parseDuration} from '../config/duration.js'
import {selectServices} from '../config/resolve.js'
import type {RetailOpsConfig, SloConfig} from '../config/schema.js'
import {NotFoundError} from '../errors/index.js'
import {yamlText} from '../report/yaml.js'
import {ALERT_WINDOWS, burnFactor, errorBudget, SLI_WINDOWS, windowMs} from './maths.js'
import {sliExpressions} from './sli.js'

/**
 * Prometheus recording and alerting rules for the configured SLOs, with Sloth's names and labels
 * so dashboards and alert routes written for Sloth work unchanged:
 * - `slo:sli_error:ratio_rate<window>` per alert window, plus the period (time-averaged, as Sloth),
 * - metadata: `slo:objective:ratio`, `slo:error_budget:ratio`, `slo:time_period:days`,
 *   `slo:current_burn_rate:ratio`, `slo:period_burn_rate:ratio`,
 *   `slo:period_error_budget_remaining:ratio`, `sloth_slo_info`,
 * - one alert name per SLO with two rules, `sloth_severity: page` (1h/5m and 6h/30m pairs) and
 *   `sloth_severity: ticket` (1d/2h and 3d/6h pairs),
 * - labels `sloth_id` (<service>-<slo>), `sloth_service`, `sloth_slo`, `sloth_window`.
 */

export interface RuleGroup {
  name: string
  rules: Rule[]
}

export type Rule =
  | {record: string; expr: string; labels?: Record<string, string>}
  | {alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string>}

export interface RulesOptions {
  config: RetailOpsConfig
  services?: string[]
  /** Written into sloth_slo_info's sloth_version. */
  version?: string
  /** Extra labels on every rule (e.g. team). */
  labels?: Record<string, string>
  /** The environment's namespace: the SLIs count only its series, as `slo` does (an SLI's own labels win). */
  namespace?: string
}

export interface RulesResult {
  groups: RuleGroup[]
  slos: {service: string; slo: string; id: string; alert: string; window: string}[]
}

/** Prometheus duration text as Sloth writes it (prometheus/common model.Duration): 28d → 4w, 30d → 30d. */
export function slothDuration(ms: number): string {
  if (ms <= 0) return '0s'
  let rest = ms
  let out = ''
  const units: [string, number, boolean][] = [
    ['y', 365 * 86_400_000, true],
    ['w', 7 * 86_400_000, true],
    ['d', 86_400_000, false],
    ['h', 3_600_000, false],
    ['m', 60_000, false],
    ['s', 1000, false],
    ['ms', 1, false],
  ]
  for (const [unit, size, exact] of units) {
    if (exact && rest % size !== 0) continue
    const n = Math.floor(rest / size)
    if (n > 0) {
      out += `${n}${unit}`
      rest -= n * size
    }
  }
  return out
}

function pascal(text: string): string {
  return text
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('')
}

/** The alert name of an SLO (one name; page and ticket differ by sloth_severity, as in Sloth). */
export function alertName(service: string, slo: string): string {
  return `${pascal(service)}${pascal(slo)}SLOBurnRate`
}

function filter(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
    .join(', ')}}`
}

/** A float the way Go's %g prints it for the values that occur here (0.999, 1e-05). */
function num(n: number): string {
  return String(Number(n.toPrecision(12)))
}

export function sloRuleGroups(
  service: string,
  slo: SloConfig,
  extraLabels: Record<string, string>,
  version: string,
  scope: Record<string, string> = {},
): RuleGroup[] {
  const id = `${service}-${slo.name}`
  const idLabels = {sloth_id: id, sloth_service: service, sloth_slo: slo.name}
  const labels = {...extraLabels, ...idLabels}
  const sel = filter(idLabels)
  const exprs = sliExpressions(service, slo.sli, scope)
  const periodMs = parseDuration(slo.window)!
  const period = slothDuration(periodMs)
  const objective = num(slo.objective / 100)
  const budget = errorBudget(slo.objective)
  const metric = (w: string) => `slo:sli_error:ratio_rate${w}`

  const sliRules: Rule[] = SLI_WINDOWS.map((w) => ({
    record: metric(w),
    expr: `${exprs.errorRatio(w)}\n`,
    labels: {...labels, sloth_window: w},
  }))
  if (!SLI_WINDOWS.includes(period)) {
    sliRules.push({
      record: metric(period),
      expr: `sum_over_time(${metric('5m')}${sel}[${period}])\n/ ignoring (sloth_window)\ncount_over_time(${metric('5m')}${sel}[${period}])\n`,
      // Sloth sets only sloth_window here (the rest come from the 5m series); the id labels too keep
      // `promtool check rules` from reporting the rules of different SLOs as duplicates.
      labels: {...idLabels, sloth_window: period},
    })
  }

  const burnExpr = (w: string) =>
    `${metric(w)}${sel}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio${sel}\n`
  const metaRules: Rule[] = [
    {record: 'slo:objective:ratio', expr: `vector(${objective})`, labels},
    {record: 'slo:error_budget:ratio', expr: `vector(1-${objective})`, labels},
    {record: 'slo:time_period:days', expr: `vector(${num(periodMs / 86_400_000)})`, labels},
    {record: 'slo:current_burn_rate:ratio', expr: burnExpr('5m'), labels},
    {record: 'slo:period_burn_rate:ratio', expr: burnExpr(period), labels},
    {record: 'slo:period_error_budget_remaining:ratio', expr: `1 - slo:period_burn_rate:ratio${sel}`, labels},
    {
      record: 'sloth_slo_info',
      expr: 'vector(1)',
      labels: {
        ...labels,
        sloth_mode: 'cli-gen-prom',
        sloth_spec: 'retailops/v1',
        sloth_version: version,
        sloth_objective: num(slo.objective),
      },
    },
  ]

  const name = alertName(service, slo.name)
  const alertRule = (severity: 'page' | 'ticket'): Rule => {
    const [quick, slow] = ALERT_WINDOWS.filter((w) => w.severity === severity)
    const cond = (w: (typeof ALERT_WINDOWS)[number]) => {
      const factor = num(burnFactor(periodMs, w.budgetPercent, windowMs(w.long)))
      return `    (${metric(w.short)}${sel} > (${factor} * ${num(budget)}))\n    and ignoring (sloth_window)\n    (${metric(w.long)}${sel} > (${factor} * ${num(budget)}))`
    }
    return {
      alert: name,
      expr: `(\n${cond(quick)}\n)\nor ignoring (sloth_window)\n(\n${cond(slow)}\n)\n`,
      labels: {...extraLabels, sloth_severity: severity, severity: severity === 'page' ? 'critical' : 'warning'},
      annotations: {
        title: `(${severity}) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast.`,
        summary: `{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.`,
        // Annotations are Go templates: no stray {{ from user PromQL.
        description: `Objective ${slo.objective} % over ${slo.window}; errors: ${exprs.describe}.`.replace(
          /\{\{|\}\}/g,
          '',
        ),
      },
    }
  }

  return [
    {name: `sloth-slo-sli-recordings-${id}`, rules: sliRules},
    {name: `sloth-slo-meta-recordings-${id}`, rules: metaRules},
    {name: `sloth-slo-alerts-${id}`, rules: [alertRule('page'), alertRule('ticket')]},
  ]
}

export function generateRules(options: RulesOptions): RulesResult {
  const names = selectServices(options.config, options.services ?? [])
  const groups: RuleGroup[] = []
  const slos: RulesResult['slos'] = []
  for (const service of names) {
    const svc = options.config.services[service]
    for (const slo of svc.slos) {
      groups.push(
        ...sloRuleGroups(
          service,
          slo,
          {...options.labels, tier: svc.tier},
          options.version ?? 'dev',
          options.namespace ? {namespace: options.namespace} : {},
        ),
      )
      slos.push({
        service,
        slo: slo.name,
        id: `${service}-${slo.name}`,
        alert: alertName(service, slo.name),
        window: slo.window,
      })
    }
  }
  if (slos.length === 0) {
    throw new NotFoundError(`No SLOs are configured${options.services?.length ? ` for ${names.join(', ')}` : ''}.`, {
      nextSteps: ['Add services.<name>.slos in retailops.yaml (availability, latency or ratio SLIs).'],
    })
  }
  return {groups, slos}
}

export type RulesFormat = 'prometheus' | 'prometheus-rule'

/** YAML for `rule_files` (format prometheus) or a prometheus-operator PrometheusRule object. */
export async function renderRulesYaml(
  result: RulesResult,
  format: RulesFormat = 'prometheus',
  meta: {name?: string; namespace?: string} = {},
): Promise<string> {
  const header =
    '# Generated by retailops slo rules (Sloth-compatible names and labels). Do not edit: regenerate from retailops.yaml.\n'
  const doc =
    format === 'prometheus'
      ? {groups: result.groups}
      : {
          apiVersion: 'monitoring.coreos.com/v1',
          kind: 'PrometheusRule',
          metadata: {
            name: meta.name ?? 'retailops-slos',
            ...(meta.namespace ? {namespace: meta.namespace} : {}),
            labels: {'app.kubernetes.io/managed-by': 'retailops'},
          },
          spec: {groups: result.groups},
        }
  return header + (await yamlText(doc, {blockQuote: 'literal'}))
}
