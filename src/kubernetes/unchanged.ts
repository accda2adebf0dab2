import {createHash} from 'node:crypto'

import type {KubeObject} from './resources.js'

/**
 * Skipping objects whose apply would change nothing, so a deploy with nothing changed costs one
 * LIST per kind instead of one PATCH per object. An object is skipped only when both hold:
 * - its applied-intent hash (an annotation written with every apply) equals the live one, so the
 *   intent, including fields it no longer sets (which an apply would remove), is what was applied;
 * - every value the intent sets equals the live value, so nobody changed a field since.
 * Anything else (a normalised quantity, a reordered list) is simply applied: the server decides.
 */
export const APPLIED_HASH = 'retailops.dev/applied-hash'

export function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable)
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, stable((value as Record<string, unknown>)[k])]),
    )
  return value
}

const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/

/**
 * JSON.stringify(stable(value)) written directly, without the sorted copy (a third of a 20,000-object
 * diff went to the copies). Key order as that object had: array-index keys first in numeric order
 * (as every JavaScript object orders them), then the others sorted. The hashes stay what they were.
 */
export function stableJson(value: unknown): string | undefined {
  if (Array.isArray(value)) return `[${value.map((v) => stableJson(v) ?? 'null').join(',')}]`
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort()
    const index = keys.filter((k) => ARRAY_INDEX.test(k) && Number(k) < 2 ** 32 - 1)
    const ordered = index.length
      ? [...index.sort((a, b) => Number(a) - Number(b)), ...keys.filter((k) => !index.includes(k))]
      : keys
    const parts: string[] = []
    for (const k of ordered) {
      const v = stableJson((value as Record<string, unknown>)[k])
      if (v !== undefined) parts.push(`${JSON.stringify(k)}:${v}`)
    }
    return `{${parts.join(',')}}`
  }
  return JSON.stringify(value)
}

export function intentHash(obj: KubeObject): string {
  const {metadata, ...rest} = obj
  const annotations = {...metadata.annotations}
  delete annotations[APPLIED_HASH]
  const body = {...rest, metadata: {...metadata, annotations}}
  return createHash('sha256').update(stableJson(body)!).digest('hex').slice(0, 32)
}

export function withIntentHash(obj: KubeObject, hash = intentHash(obj)): KubeObject {
  return {...obj, metadata: {...obj.metadata, annotations: {...obj.metadata.annotations, [APPLIED_HASH]: hash}}}
}

/** Every value `intent` sets is the same in `live` (lists item by item, of equal length). */
export function contains(live: unknown, intent: unknown): boolean {
  if (Array.isArray(intent)) {
    return Array.isArray(live) && live.length === intent.length && intent.every((v, i) => contains(live[i], v))
  }
  if (intent && typeof intent === 'object') {
    if (!live || typeof live !== 'object' || Array.isArray(live)) return false
    return Object.entries(intent as Record<string, unknown>).every(([k, v]) =>
      contains((live as Record<string, unknown>)[k], v),
    )
  }
  return live === intent
}

/** The apply of `intent` (carrying its hash annotation) would leave `live` as it is. */
export function unchangedSince(live: KubeObject | undefined, intent: KubeObject): boolean {
  if (!live) return false
  const hash = intent.metadata.annotations?.[APPLIED_HASH]
  return Boolean(hash && live.metadata.annotations?.[APPLIED_HASH] === hash && contains(live, intent))
}
