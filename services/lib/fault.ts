// Fault injection for business routes, so a bad canary can be made real: a share of requests
// answered 500, and added latency. Probes and /metrics are never affected.

import {setTimeout as sleep} from 'node:timers/promises'
import type {FaultConfig} from './config.ts'

export interface FaultInjector {
  readonly config: FaultConfig
  readonly active: boolean
  /** Waits out the injected latency, then says whether this request must fail. */
  apply(): Promise<{fail: boolean; delayMs: number}>
}

export function createFaultInjector(
  config: FaultConfig,
  random: () => number = Math.random,
  wait: (ms: number) => Promise<unknown> = sleep,
): FaultInjector {
  const active = config.errorRate > 0 || config.latencyMs > 0 || config.latencyJitterMs > 0
  return {
    config,
    active,
    async apply() {
      if (!active) return {fail: false, delayMs: 0}
      const delayMs =
        config.latencyMs + (config.latencyJitterMs > 0 ? Math.round(random() * config.latencyJitterMs) : 0)
      if (delayMs > 0) await wait(delayMs)
      const fail = config.errorRate >= 1 || (config.errorRate > 0 && random() < config.errorRate)
      return {fail, delayMs}
    },
  }
}
