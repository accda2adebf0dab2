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
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) out += `${i === 0 ? '' : ','}${stableJson(value[i]) ?? 'null'}`
    return `${out}]`
  }
  // Object.keys lists array-index keys first, in numeric order: only the others need sorting.
  const keys = Object.keys(value)
  let firstNamed = 0
  while (firstNamed < keys.length && isArrayIndex(keys[firstNamed])) firstNamed++
  const ordered = firstNamed === 0 ? keys.sort() : [...keys.slice(0, firstNamed), ...keys.slice(firstNamed).sort()]
  let out = '{'
  for (const k of ordered) {
    const v = stableJson((value as Record<string, unknown>)[k])
    if (v === undefined) continue
    out += `${out.length === 1 ? '' : ','}${keyJson(k)}:${v}`
  }
  return `${out}}`
}

function isArrayIndex(key: string): boolean {
  const c = key.charCodeAt(0)
  return c >= 48 && c <= 57 && ARRAY_INDEX.test(key) && Number(key) < 2 ** 32 - 1
}

// The same few hundred keys recur in every object (metadata, spec, containers...): quoted once each.
const quotedKeys = new Map<string, string>()
function keyJson(key: string): string {
  let quoted = quotedKeys.get(key)
  if (quoted === undefined) {
    quoted = JSON.stringify(key)
    if (quotedKeys.size < 10_000) quotedKeys.set(key, quoted)
  }
  return quoted
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
  // Plain loops: Object.entries and every() allocated an array and a closure per level, 20,000 objects deep.
  if (Array.isArray(intent)) {
    if (!Array.isArray(live) || live.length !== intent.length) return false
    for (let i = 0; i < intent.length; i++) if (!contains(live[i], intent[i])) return false
    return true
  }
  if (intent && typeof intent === 'object') {
    if (!live || typeof live !== 'object' || Array.isArray(live)) return false
    for (const k in intent as Record<string, unknown>) {
      if (!Object.hasOwn(intent, k)) continue
      if (!contains((live as Record<string, unknown>)[k], (intent as Record<string, unknown>)[k])) return false
    }
    return true
  }
  return live === intent
}

/** The apply of `intent` (carrying its hash annotation) would leave `live` as it is. */
export function unchangedSince(live: KubeObject | undefined, intent: KubeObject): boolean {
  if (!live) return false
  const hash = intent.metadata.annotations?.[APPLIED_HASH]
  return Boolean(hash && live.metadata.annotations?.[APPLIED_HASH] === hash && contains(live, intent))
}
