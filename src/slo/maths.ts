/**
 * Error-budget arithmetic (pure): budgets, burn rates, the SRE workbook's multi-window
 * multi-burn-rate alert pairs, and the status an SLO is in.
 *
 * The alert pairs are defined the way the workbook and Sloth define them: by the share of the
 * whole period's budget a burn would consume in the long window (2 % in 1h, 5 % in 6h, 10 % in 1d,
 * 10 % in 3d). The factor is share × period ÷ long window, which is exactly 14.4×, 6×, 3× and 1×
 * for a 30-day SLO, and 13.44×, 5.6×, 2.8× and 0.93× for 28 days (what Sloth generates).
 */

export type Severity = 'page' | 'ticket'
export type SloState = 'ok' | 'ticket' | 'page' | 'exhausted' | 'no-data'

export interface AlertWindow {
  id: 'page-quick' | 'page-slow' | 'ticket-quick' | 'ticket-slow'
  severity: Severity
  /** Share of the period's error budget the burn consumes within the long window, in percent. */
  budgetPercent: number
  long: string
  short: string
}

export const ALERT_WINDOWS: readonly AlertWindow[] = [
  {id: 'page-quick', severity: 'page', budgetPercent: 2, long: '1h', short: '5m'},
  {id: 'page-slow', severity: 'page', budgetPercent: 5, long: '6h', short: '30m'},
  {id: 'ticket-quick', severity: 'ticket', budgetPercent: 10, long: '1d', short: '2h'},
  {id: 'ticket-slow', severity: 'ticket', budgetPercent: 10, long: '3d', short: '6h'},
]

/** Every window an SLI is measured on for alerting, shortest first (Sloth's recording-rule windows). */
export const SLI_WINDOWS: readonly string[] = ['5m', '30m', '1h', '2h', '6h', '1d', '3d']

const UNIT_MS: Record<string, number> = {s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}

export function windowMs(window: string): number {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(window)
  if (!m) throw new Error(`not a window: ${window}`)
  return Number(m[1]) * UNIT_MS[m[2]]
}

/** The burn-rate factor of an alert window for an SLO period (Sloth's getBurnRateFactor). */
export function burnFactor(periodMs: number, budgetPercent: number, longWindowMs: number): number {
  return Number((((budgetPercent / 100) * periodMs) / longWindowMs).toPrecision(12))
}

/** 99.9 → 0.001 (computed from 100 − objective so 99.9 does not give 0.0009999999999999432). */
export function errorBudget(objectivePercent: number): number {
  return Number(((100 - objectivePercent) / 100).toPrecision(12))
}

export function burnRate(errorRatio: number | null, budget: number): number | null {
  if (errorRatio === null || !Number.isFinite(errorRatio) || budget <= 0) return null
  return errorRatio / budget
}

/** Share of the budget left: 1 − error ratio ÷ budget (negative when overspent). */
export function budgetRemaining(errorRatio: number | null, budget: number): number | null {
  const burn = burnRate(errorRatio, budget)
  return burn === null ? null : 1 - burn
}

/** How long the remaining budget lasts at a burn rate; null when not burning or unknown. */
export function timeToExhaustionMs(remaining: number | null, burn: number | null, periodMs: number): number | null {
  if (remaining === null || burn === null || burn <= 0) return null
  if (remaining <= 0) return 0
  return (remaining * periodMs) / burn
}

export interface AlertEvaluation extends AlertWindow {
  factor: number
  longBurn: number | null
  shortBurn: number | null
  /** null when a window has no data: the pair can neither fire nor be called quiet. */
  active: boolean | null
}

/** Both windows of a pair over the factor fires it (the short window stops it once the problem is gone). */
export function evaluateAlerts(burns: Record<string, number | null>, periodMs: number): AlertEvaluation[] {
  return ALERT_WINDOWS.map((w) => {
    const factor = burnFactor(periodMs, w.budgetPercent, windowMs(w.long))
    const longBurn = burns[w.long] ?? null
    const shortBurn = burns[w.short] ?? null
    let active: boolean | null
    if (longBurn !== null && shortBurn !== null) active = longBurn > factor && shortBurn > factor
    else if ((longBurn !== null && longBurn <= factor) || (shortBurn !== null && shortBurn <= factor)) active = false
    else active = null
    return {...w, factor, longBurn, shortBurn, active}
  })
}

export interface StateInput {
  remaining: number | null
  alerts: AlertEvaluation[]
}

/** exhausted > page > ticket > ok; no-data when neither the period nor any alert window has data. */
export function sloState({remaining, alerts}: StateInput): SloState {
  if (remaining !== null && remaining <= 0) return 'exhausted'
  if (alerts.some((a) => a.severity === 'page' && a.active)) return 'page'
  if (alerts.some((a) => a.severity === 'ticket' && a.active)) return 'ticket'
  if (remaining === null && alerts.every((a) => a.active === null)) return 'no-data'
  return 'ok'
}

/** The release gate: an exhausted budget or a page-level burn stops releases. */
export function blocksReleases(state: SloState): boolean {
  return state === 'exhausted' || state === 'page'
}
