/**
 * Release gates, checked before a canary or blue-green rollout starts: no rollout of a
 * revenue-critical service inside a campaign's freeze window, and none of a service whose error
 * budget is exhausted (or burning at page level). Every other path that changes what a
 * revenue-critical service runs (a rolling deploy, undo to another revision, promote --full) is
 * gated the same way. `--force-release --reason` overrides them, and the reason is recorded in
 * the rollout state or history and on the Deployment.
 */
import os from 'node:os'

import type {RetailOpsConfig} from '../config/schema.js'
import {RefusedError, UsageError} from '../errors/index.js'
import type {Output} from '../ui/output.js'
import {redact} from '../ui/secrets.js'
import type {ForcedRelease} from './types.js'

/** A gate override on a Deployment: its reason. */
export const FORCED_ANNOTATION = 'retailops.dev/forced-release-reason'
/** The whole gate override on the Deployment: who, when, and which gates it overrode (JSON). */
export const FORCED_DETAIL_ANNOTATION = 'retailops.dev/forced-release'

export interface GateCheck {
  gate: 'freeze' | 'error-budget'
  service: string
  ok: boolean
  detail: string
}

/** The error budget of a service: the commands pass src/slo's `errorBudgetSource` (tests their own). */
export type ErrorBudgetSource = (service: string) => Promise<{ok: boolean; reasons: string[]}>

/** Campaign freezes that contain `now` and apply to the service (revenue-critical only). */
export function freezeCheck(config: RetailOpsConfig, service: string, now: Date): GateCheck {
  const tier = config.services[service]?.tier
  if (tier !== 'revenue-critical')
    return {
      gate: 'freeze',
      service,
      ok: true,
      detail: `${tier ?? 'unknown'} tier: freezes apply to revenue-critical services`,
    }
  const t = now.getTime()
  const active = config.campaigns.filter(
    (c) => c.freeze && Date.parse(c.freeze.start) <= t && t <= Date.parse(c.freeze.end),
  )
  if (active.length === 0) return {gate: 'freeze', service, ok: true, detail: 'no campaign freeze now'}
  return {
    gate: 'freeze',
    service,
    ok: false,
    detail: active
      .map((c) => `inside the freeze of campaign ${c.name} (${c.freeze!.start} – ${c.freeze!.end})`)
      .join('; '),
  }
}

export async function releaseGates(
  config: RetailOpsConfig,
  services: string[],
  options: {now?: Date; errorBudget?: ErrorBudgetSource},
): Promise<GateCheck[]> {
  const now = options.now ?? new Date()
  const checks: GateCheck[] = []
  await Promise.all(
    services.map(async (service) => {
      checks.push(freezeCheck(config, service, now))
      if (!options.errorBudget || config.services[service].slos.length === 0) {
        checks.push({gate: 'error-budget', service, ok: true, detail: 'no SLOs configured'})
        return
      }
      try {
        const budget = await options.errorBudget(service)
        checks.push({
          gate: 'error-budget',
          service,
          ok: budget.ok,
          detail: budget.ok ? 'error budget left' : budget.reasons.join('; '),
        })
      } catch (error) {
        checks.push({
          gate: 'error-budget',
          service,
          ok: false,
          detail: `error budget unknown: ${(error as Error).message}`,
        })
      }
    }),
  )
  return checks
}

/**
 * Gates for every other change to what a service runs (a rolling deploy, `rollout undo
 * --to-revision`, `rollout promote --full`): the same gates, for revenue-critical services.
 */
export async function changeGates(
  config: RetailOpsConfig,
  services: string[],
  options: {now?: Date; errorBudget?: ErrorBudgetSource},
): Promise<GateCheck[]> {
  const critical = [...new Set(services)].filter((s) => config.services[s]?.tier === 'revenue-critical')
  return critical.length > 0 ? releaseGates(config, critical, options) : []
}

export function forcedBy(): string {
  let user = process.env.USER ?? process.env.LOGNAME ?? `uid ${process.getuid?.() ?? '?'}`
  try {
    user = os.userInfo().username
  } catch {
    // no passwd entry (a Job's pod runs as any uid): keep the variable's value or the uid
  }
  return `${user}@${os.hostname()}`
}

/**
 * Going back to the previous version (undo, abort) is never refused: an incident must be
 * recoverable in a freeze too. When a gate is closed it is recorded as forced, with the reason
 * given or one saying so.
 */
export function recordRollback(checks: GateCheck[], what: string, reason?: string): ForcedRelease | undefined {
  const failed = checks.filter((c) => !c.ok)
  if (failed.length === 0) return undefined
  return {
    reason: reason?.trim() ? redact(reason) : `${what} while a release gate was closed`,
    by: forcedBy(),
    at: new Date().toISOString(),
    overridden: failed.map((c) => `${c.service}: ${c.detail}`),
  }
}

/** Who is told about a refusal (a release event per closed gate), and what the refused release was. */
export interface GateNotice {
  out: Output
  namespace?: string
  /** The version each service would have been released at. */
  versions?: Record<string, string | undefined>
}

/** One release event per closed gate: the gate, its measured reason, and how to go on. */
export function announceRefusals(failed: GateCheck[], notice: GateNotice): void {
  for (const c of failed)
    notice.out.event({
      type: c.gate === 'freeze' ? 'release.refused.freeze' : 'release.refused.error-budget',
      severity: 'warning',
      summary: `The release of ${c.service}${notice.versions?.[c.service] ? ` ${notice.versions[c.service]}` : ''} was refused by the ${c.gate === 'freeze' ? 'freeze' : 'error-budget'} gate: ${c.detail}. Nothing was changed.`,
      services: [c.service],
      version: notice.versions?.[c.service],
      namespace: notice.namespace,
      facts: {Gate: c.gate},
      measurements: [{name: c.gate, value: c.detail, verdict: 'closed'}],
      actions: [
        ...(c.gate === 'error-budget' ? [`retailops slo ${c.service}`] : []),
        `retailops deploy ${c.service} --force-release --reason "…"  # recorded; only when the release must go out now`,
      ],
    })
}

/** Throws REFUSED when a gate fails and the release is not forced; returns the override record. */
export function enforceGates(
  checks: GateCheck[],
  force?: {reason?: string},
  notice?: GateNotice,
): ForcedRelease | undefined {
  const failed = checks.filter((c) => !c.ok)
  if (force && !force.reason?.trim()) {
    throw new UsageError(
      '--force-release needs --reason "why" (it is recorded in the rollout state and on the Deployment).',
    )
  }
  // The reason is free text recorded on the Deployment and in the state ConfigMap: masked once, here.
  const reason = force?.reason ? redact(force.reason) : ''
  if (failed.length === 0)
    return force ? {reason, by: forcedBy(), at: new Date().toISOString(), overridden: []} : undefined
  const lines = failed.map((c) => `${c.service}: ${c.detail}`)
  if (!force) {
    if (notice) announceRefusals(failed, notice)
    throw new RefusedError(
      `Release refused by ${failed.length === 1 ? 'a gate' : `${failed.length} gates`}: ${lines.join('; ')}.`,
      {
        nextSteps: [
          'Wait for the freeze to end or the error budget to recover, or override with --force-release --reason "…" (recorded).',
        ],
        details: {gates: checks},
      },
    )
  }
  return {reason, by: forcedBy(), at: new Date().toISOString(), overridden: lines}
}
