import {UsageError} from '../errors/index.js'

/** Durations as people write them in YAML and flags: 90s, 15m, 1h30m, 28d, 500ms. */
const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g

export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim()
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h|d|w))+$/.test(trimmed)) return undefined
  let total = 0
  for (const [, amount, unit] of trimmed.matchAll(PART)) total += Number(amount) * UNIT_MS[unit]
  return total
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const parts: string[] = []
  let rest = Math.round(ms / 1000)
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    }
  }
  return parts.join('') || '0s'
}

/** Prometheus range syntax for a duration (it has no 'w' in older versions and no fractions). */
export function toPromDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s % 86_400 === 0) return `${s / 86_400}d`
  if (s % 3600 === 0) return `${s / 3600}h`
  if (s % 60 === 0) return `${s / 60}m`
  return `${s}s`
}

/** A duration flag's value in ms (undefined when not given); anything else is a usage error naming the flag. */
export function durationFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = parseDuration(value)
  if (ms === undefined) throw new UsageError(`--${flag} ${value}: expected a duration such as 90s, 10m or 7d.`)
  return ms
}

/** A --timeout flag in milliseconds (undefined when not given); a value that is no duration is a usage error. */
export function timeoutMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = parseDuration(value)
  if (ms === undefined) throw new UsageError(`--timeout ${value}: not a duration (e.g. 90s, 10m)`)
  return ms
}
