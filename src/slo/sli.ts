import type {SloConfig} from '../config/schema.js'
import {matchers} from '../prometheus/promql.js'

/**
 * PromQL for an SLO's indicator at any window: the error ratio (bad ÷ all events) and the event
 * rate. The same expressions feed `slo` status queries and the rules `slo rules` generates, so
 * what the command reports and what Prometheus alerts on cannot drift apart.
 *
 * Missing data stays missing: with no requests in the window the ratio is 0/0 (NaN) or an empty
 * vector, which the client turns into null. Only the "bad" side of an availability SLI falls back
 * to 0 (no 5xx series yet is zero errors, as long as the total exists).
 */

export const REQUESTS_METRIC = 'http_requests_total'
export const DURATION_METRIC = 'http_request_duration_seconds'
/** The label the services put on synthetic requests' series ("true"); series without it are real traffic. */
export const SYNTHETIC_LABEL = 'synthetic'

export interface SliExpressions {
  /** Error ratio over the window, 0..1. */
  errorRatio(window: string): string
  /** All events per second over the window (to show volume, and no traffic as missing). */
  eventRate(window: string): string
  /** What counts as an error, in words. */
  describe: string
}

const WINDOW_PLACEHOLDER = /\{\{\s*\.?window\s*\}\}/g

/** The first metric name in a PromQL expression (for descriptions). */
function metricName(expr: string): string {
  const names = [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)/g)]
    .map((m) => m[1])
    .filter((n) => !['sum', 'rate', 'increase', 'by', 'without'].includes(n))
  return names[0] ?? expr
}

/** 300 ms → "0.3": the `le` label of the histogram bucket at the threshold. */
export function leLabel(thresholdMs: number): string {
  return String(Number((thresholdMs / 1000).toPrecision(12)))
}

/** A ratio SLI side: PromQL with {{window}} (or Sloth's {{.window}}), or a bare counter selector. */
export function expandCounter(expr: string, window: string): string {
  if (WINDOW_PLACEHOLDER.test(expr)) {
    WINDOW_PLACEHOLDER.lastIndex = 0
    return expr.replace(WINDOW_PLACEHOLDER, window)
  }
  return `sum(rate(${expr}[${window}]))`
}

/**
 * Labels every SLI series of a service is narrowed to: the service, its route, the environment's
 * scope (its namespace, so one Prometheus can serve staging and production), and the SLI's own
 * labels, which win over the scope. Synthetic requests (warm-ups, labelled synthetic="true" by the
 * services) are left out unless the SLI names the synthetic label itself (labels: {synthetic: "true"}
 * for an SLO of the synthetic traffic alone).
 */
function baseMatchers(
  service: string,
  sli: {route?: string; labels?: Record<string, string>},
  scope: Record<string, string>,
): [string, string, ('=' | '!=')?][] {
  const labels = {...scope, ...(sli.labels ?? {})}
  return [
    ['service', service],
    ...(sli.route ? [['route', sli.route] as [string, string]] : []),
    ...Object.entries(labels),
    ...('synthetic' in labels ? [] : [[SYNTHETIC_LABEL, 'true', '!='] as [string, string, '!=']]),
  ]
}

export function sliExpressions(
  service: string,
  sli: SloConfig['sli'],
  scope: Record<string, string> = {},
): SliExpressions {
  switch (sli.type) {
    case 'availability': {
      const base = baseMatchers(service, sli, scope)
      const total = (w: string) => `sum(rate(${REQUESTS_METRIC}${matchers(base)}[${w}]))`
      const bad = (w: string) => `sum(rate(${REQUESTS_METRIC}${matchers([...base, ['code', '5..', '=~']])}[${w}]))`
      return {
        errorRatio: (w) => `(${bad(w)} or on() vector(0))\n/\n${total(w)}`,
        eventRate: total,
        describe: `requests to ${service}${sli.route ? ` ${sli.route}` : ''} answered 5xx`,
      }
    }
    case 'latency': {
      const base = baseMatchers(service, sli, scope)
      const total = (w: string) => `sum(rate(${DURATION_METRIC}_count${matchers(base)}[${w}]))`
      const good = (w: string) =>
        `sum(rate(${DURATION_METRIC}_bucket${matchers([...base, ['le', leLabel(sli.thresholdMs)]])}[${w}]))`
      return {
        errorRatio: (w) => `1 - (\n${good(w)}\n/\n${total(w)}\n)`,
        eventRate: total,
        describe: `requests to ${service}${sli.route ? ` ${sli.route}` : ''} slower than ${sli.thresholdMs} ms`,
      }
    }
    case 'ratio': {
      const good = (w: string) => expandCounter(sli.good, w)
      const total = (w: string) => expandCounter(sli.total, w)
      return {
        errorRatio: (w) => `1 - (\n(${good(w)})\n/\n(${total(w)})\n)`,
        eventRate: (w) => `(${total(w)})`,
        describe: `${metricName(sli.total)} events not counted in ${metricName(sli.good)}`,
      }
    }
  }
}
