import {toPromDuration} from '../config/duration.js'
import {type MatchOp, matchers} from '../prometheus/promql.js'

/**
 * The PromQL for a service's observed peak: the largest per-second request rate over the lookback,
 * of real traffic only (an earlier warm-up's synthetic="true" requests would inflate the next plan).
 */
export function observedPeakQuery(
  service: string,
  rateWindowMs: number,
  lookbackMs: number,
  labels: Record<string, string> = {},
): string {
  const pairs: [string, string, MatchOp?][] = [['service', service], ...Object.entries(labels)]
  if (!('synthetic' in labels)) pairs.push(['synthetic', 'true', '!='])
  const selector = `http_requests_total${matchers(pairs)}`
  // Subquery resolution: a quarter of the rate window, between 15s and 1m.
  const step = Math.min(60_000, Math.max(15_000, Math.round(rateWindowMs / 4 / 1000) * 1000))
  return `max_over_time(sum(rate(${selector}[${toPromDuration(rateWindowMs)}]))[${toPromDuration(lookbackMs)}:${toPromDuration(step)}])`
}
