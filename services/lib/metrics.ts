// Prometheus metrics. Each service has its own registry (no global state, so tests can run
// several services in one process); `service` and `version` are default labels on every
// series, so canary analysis can compare versions of one service with one query.

import {Counter, Gauge, Histogram, Registry, collectDefaultMetrics} from 'prom-client'

/** Request latency buckets, in seconds. 0.3 sits beside 0.25 for a 300 ms latency SLO. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10]

export type HttpLabel = 'method' | 'route' | 'code' | 'synthetic'

export interface Metrics {
  readonly registry: Registry
  readonly httpRequests: Counter<HttpLabel>
  readonly httpDuration: Histogram<HttpLabel>
  readonly inFlight: Gauge
  /** Records one finished request; synthetic ones (X-Synthetic) carry synthetic="true". */
  observeRequest(labels: {method: string; route: string; code: number; synthetic?: boolean}, seconds: number): void
  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Counter<L>
  gauge<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>
  histogram<L extends string = never>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    buckets?: readonly number[],
  ): Histogram<L>
  render(): Promise<{contentType: string; body: string}>
}

export interface MetricsOptions {
  service: string
  version: string
  /** Process metrics (CPU, memory, event-loop lag, GC). On by default. */
  processMetrics?: boolean
}

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry()
  registry.setDefaultLabels({service: options.service, version: options.version})
  if (options.processMetrics !== false) collectDefaultMetrics({register: registry})

  const registers = [registry]
  const httpRequests = new Counter<HttpLabel>({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template, status code and whether the request was synthetic (a warm-up).',
    labelNames: ['method', 'route', 'code', 'synthetic'],
    registers,
  })
  const httpDuration = new Histogram<HttpLabel>({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, from the first byte read to the last byte written.',
    labelNames: ['method', 'route', 'code', 'synthetic'],
    buckets: [...DURATION_BUCKETS],
    registers,
  })
  const inFlight = new Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests being handled now.',
    registers,
  })

  return {
    registry,
    httpRequests,
    httpDuration,
    inFlight,
    observeRequest({method, route, code, synthetic}, seconds) {
      const labels = {method, route, code: String(code), synthetic: synthetic ? 'true' : 'false'}
      httpRequests.inc(labels)
      httpDuration.observe(labels, seconds)
    },
    counter: (name, help, labelNames = []) => new Counter({name, help, labelNames: [...labelNames], registers}),
    gauge: (name, help, labelNames = []) => new Gauge({name, help, labelNames: [...labelNames], registers}),
    histogram: (name, help, labelNames = [], buckets = DURATION_BUCKETS) =>
      new Histogram({name, help, labelNames: [...labelNames], buckets: [...buckets], registers}),
    async render() {
      return {contentType: registry.contentType, body: await registry.metrics()}
    },
  }
}
