import {formatDuration} from '../config/duration.js'
import type {RecoveryTargets} from '../config/resolve.js'
import type {Expectation, ObjectiveMeasurement, RpoMeasurement} from './types.js'

/**
 * RTO and RPO as the drill measures them (AWS Well-Architected REL13-BP01):
 * - RTO: from the drill's start to the moment the restored copy passed its validation.
 * - RPO: from the restored data's newest point to the drill's start (the data a real incident at
 *   that moment would have lost).
 */
export function measureRto(
  targets: RecoveryTargets,
  drillStartMs: number,
  validatedAtMs: number | undefined,
  why = 'the restore did not finish validation',
): ObjectiveMeasurement {
  if (validatedAtMs === undefined)
    return {target: targets.rto, targetMs: targets.rtoMs, status: 'not-measured', detail: why}
  const actualMs = Math.max(0, validatedAtMs - drillStartMs)
  return {
    target: targets.rto,
    targetMs: targets.rtoMs,
    actualMs,
    status: actualMs <= targets.rtoMs ? 'pass' : 'fail',
    detail: `${formatDuration(actualMs)} from drill start to validated copy (target ${targets.rto})`,
  }
}

export function measureRpo(
  targets: RecoveryTargets,
  drillStartMs: number,
  recoveryPoint: Date | undefined,
  source: string | undefined,
  why = "no recovery point: add a validation with recoveryPoint: true (the newest row's timestamp)",
): RpoMeasurement {
  if (!recoveryPoint || Number.isNaN(recoveryPoint.getTime())) {
    return {target: targets.rpo, targetMs: targets.rpoMs, status: 'not-measured', detail: why}
  }
  const raw = drillStartMs - recoveryPoint.getTime()
  const actualMs = Math.max(0, raw)
  const skew =
    raw < 0 ? ` (the recovery point is ${formatDuration(-raw)} after the drill start: clock skew; counted as 0)` : ''
  return {
    target: targets.rpo,
    targetMs: targets.rpoMs,
    actualMs,
    recoveryPoint: recoveryPoint.toISOString(),
    source,
    status: actualMs <= targets.rpoMs ? 'pass' : 'fail',
    detail: `data up to ${recoveryPoint.toISOString()} restored: ${formatDuration(actualMs)} of data at risk (target ${targets.rpo})${skew}`,
  }
}

export function notApplicable(targets: RecoveryTargets, which: 'rto' | 'rpo', detail: string): RpoMeasurement {
  return which === 'rto'
    ? {target: targets.rto, targetMs: targets.rtoMs, status: 'not-applicable', detail}
    : {target: targets.rpo, targetMs: targets.rpoMs, status: 'not-applicable', detail}
}

/** The worst of several measurements of one kind (a service's datastores): a fail wins, then the largest actual. */
export function worst<T extends ObjectiveMeasurement>(items: T[], fallback: T): T {
  const measured = items.filter((m) => m.actualMs !== undefined)
  const failing = items.filter((m) => m.status === 'fail')
  const pool = failing.length > 0 ? failing : measured
  if (pool.length > 0) return pool.reduce((a, b) => ((b.actualMs ?? 0) > (a.actualMs ?? 0) ? b : a))
  return items.find((m) => m.status === 'not-measured') ?? items[0] ?? fallback
}

/** Parses a query result as a point in time: a Date, an ISO string, or epoch seconds/milliseconds. */
export function toRecoveryPoint(value: unknown): Date | undefined {
  if (value === null || value === undefined) return undefined
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()))) {
    const n = Number(value)
    return new Date(n < 1e11 ? n * 1000 : n)
  }
  const d = new Date(String(value))
  return Number.isNaN(d.getTime()) ? undefined : d
}

/** Text form of a query value for evidence and comparison (dates as ISO 8601). */
export function valueText(value: unknown): string | null {
  if (value === null || value === undefined) return null
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Checks a query's value against expect: min/max are numeric bounds, equals compares as text or number. */
export function checkExpectation(
  value: string | null,
  expect: Expectation | undefined,
  sourceValue?: string | null,
): {passed: boolean; message: string} {
  const problems: string[] = []
  const ok: string[] = []
  const num = value === null ? Number.NaN : Number(value)
  if (expect?.min !== undefined) {
    if (Number.isFinite(num) && num >= expect.min) ok.push(`≥ ${expect.min}`)
    else problems.push(`expected at least ${expect.min}, got ${value ?? 'NULL'}`)
  }
  if (expect?.max !== undefined) {
    if (Number.isFinite(num) && num <= expect.max) ok.push(`≤ ${expect.max}`)
    else problems.push(`expected at most ${expect.max}, got ${value ?? 'NULL'}`)
  }
  if (expect?.equals !== undefined) {
    const same =
      typeof expect.equals === 'number' ? Number.isFinite(num) && num === expect.equals : value === expect.equals
    if (same) ok.push(`= ${String(expect.equals)}`)
    else
      problems.push(`expected ${JSON.stringify(expect.equals)}, got ${value === null ? 'NULL' : JSON.stringify(value)}`)
  }
  if (expect?.matchesSource) {
    if (value === sourceValue) ok.push('matches the source')
    else
      problems.push(
        `source has ${sourceValue === null || sourceValue === undefined ? 'NULL' : JSON.stringify(sourceValue)}, restored copy has ${value === null ? 'NULL' : JSON.stringify(value)}`,
      )
  }
  if (problems.length > 0) return {passed: false, message: problems.join('; ')}
  return {
    passed: true,
    message:
      ok.length > 0
        ? `${value ?? 'NULL'} (${ok.join(', ')})`
        : `${value ?? 'NULL'} (no expectation; recorded as evidence)`,
  }
}
