import {toPromDuration} from '../config/duration.js'

/** The PromQL for a service's observed peak: the largest per-second request rate over the lookback. */
export function observedPeakQuery(service: string, rateWindowMs: number, lookbackMs: number): string {
  const selector = `http_requests_total{service="${service.replace(/["\\]/g, '\\$&')}"}`
  // Subquery resolution: a quarter of the rate window, between 15s and 1m.
  const step = Math.min(60_000, Math.max(15_000, Math.round(rateWindowMs / 4 / 1000) * 1000))
  return `max_over_time(sum(rate(${selector}[${toPromDuration(rateWindowMs)}]))[${toPromDuration(lookbackMs)}:${toPromDuration(step)}])`
}
