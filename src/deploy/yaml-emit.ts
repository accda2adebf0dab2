import {stringify} from 'yaml'

/**
 * YAML text of JSON-like data, exactly as `stringify(value, {lineWidth: 0})` of the yaml package
 * writes it (test/unit/deploy/yaml-emit.test.ts compares the two on rendered projects and on
 * generated data), at a fraction of the cost: the package builds a document tree of every object
 * first, about 0.7 ms an object, which was 13 of the 16 s `render` took for 18,000 objects.
 *
 * Maps, sequences, numbers, booleans and null are written here; a string is written plain when
 * the package would write it plain (the same test of indicator characters, and anything that could
 * read as a number, boolean or null is left to the package), otherwise the package's own
 * rendering of that one string is used (memoised: quoted images and quantities repeat). Anything
 * else (a multi-line string, a class instance, undefined in a list, a very long key, the same
 * object twice in a document, which the package writes as an anchor and an alias) makes the whole
 * document go through the package.
 */
export function toYaml(value: unknown): string {
  try {
    seen.clear()
    const lines: string[] = []
    if (isEmptyCollection(value)) return `${Array.isArray(value) ? '[]' : '{}'}\n`
    if (Array.isArray(value)) emitSeq(value, '', lines)
    else if (isPlainObject(value)) emitMap(value, '', lines)
    else return stringify(value, {lineWidth: 0})
    return `${lines.join('\n')}\n`
  } catch (error) {
    if (error instanceof NotFast) return stringify(value, {lineWidth: 0})
    throw error
  } finally {
    seen.clear()
  }
}

class NotFast extends Error {}

/** The collections of the document being written: one met twice is an alias in the package's output. */
const seen = new Set<object>()

function visit(collection: object): void {
  if (seen.has(collection)) throw new NotFast()
  seen.add(collection)
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

function isEmptyCollection(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0
  if (isPlainObject(v)) {
    for (const k in v) if (v[k] !== undefined) return false
    return true
  }
  return false
}

// The yaml package's own test for a string that cannot be plain (stringifyString.js, plainString).
const NOT_PLAIN = /^[\n\t ,[\]{}#&*!|>'"%@`]|^[?-]$|^[?-][ \t]|[\n:][ \t]|[ \t]\n|[\n\t ]#|[\n\t :]$/
// Could read as another type in the core schema (numbers, .inf/.nan, ~, null, booleans) or start a
// document marker: left to the package, which quotes what it must.
const MAYBE_TYPED = /^[-+.~0-9]|^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/
// Only printable ASCII is written plain here; the package decides about control characters and the rest.
const PRINTABLE = /^[\x20-\x7e]+$/
const MAX_KEY = 1000

const scalarCache = new Map<string, string>()

function scalarString(s: string): string {
  if (PRINTABLE.test(s) && !NOT_PLAIN.test(s) && !MAYBE_TYPED.test(s)) return s
  let out = scalarCache.get(s)
  if (out === undefined) {
    if (s.includes('\n')) throw new NotFast()
    out = stringify(s, {lineWidth: 0}).replace(/\n$/, '')
    // A block scalar or anything on several lines depends on where it stands: not done here.
    if (out.includes('\n')) throw new NotFast()
    if (scalarCache.size >= 50_000) scalarCache.clear()
    scalarCache.set(s, out)
  }
  return out
}

function scalar(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return scalarString(v)
    case 'number':
      if (!Number.isFinite(v)) return Number.isNaN(v) ? '.nan' : v < 0 ? '-.inf' : '.inf'
      return Object.is(v, -0) ? '-0' : JSON.stringify(v)
    case 'boolean':
      return v ? 'true' : 'false'
    case 'object':
      if (v === null) return 'null'
      throw new NotFast()
    default:
      throw new NotFast()
  }
}

function key(k: string): string {
  if (k.length > MAX_KEY) throw new NotFast()
  return scalarString(k)
}

/** `value` as it follows "key:" or "- " on the same line, or undefined when it is a non-empty collection. */
function inline(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.length === 0 ? '[]' : undefined
  if (value !== null && typeof value === 'object') {
    if (!isPlainObject(value)) throw new NotFast()
    return isEmptyCollection(value) ? '{}' : undefined
  }
  return scalar(value)
}

function emitMap(map: Record<string, unknown>, indent: string, lines: string[], first?: string): void {
  visit(map)
  let prefix = first
  for (const k in map) {
    const v = map[k]
    if (v === undefined) continue
    const head = `${prefix ?? indent}${key(k)}:`
    prefix = undefined
    const one = inline(v)
    if (one !== undefined) lines.push(`${head} ${one}`)
    else {
      lines.push(head)
      if (Array.isArray(v)) emitSeq(v, `${indent}  `, lines)
      else emitMap(v as Record<string, unknown>, `${indent}  `, lines)
    }
  }
}

function emitSeq(seq: unknown[], indent: string, lines: string[], first?: string): void {
  visit(seq)
  let prefix = first
  for (const v of seq) {
    if (v === undefined) throw new NotFast()
    const head = `${prefix ?? indent}- `
    prefix = undefined
    const one = inline(v)
    if (one !== undefined) lines.push(`${head}${one}`)
    else if (Array.isArray(v)) emitSeq(v, `${indent}  `, lines, head)
    else emitMap(v as Record<string, unknown>, `${indent}  `, lines, head)
  }
}
