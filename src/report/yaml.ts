import {loadYaml} from '../assets/yaml.js'

/**
 * YAML text of JSON-like data, exactly as `stringify(value, {lineWidth: 0, ...options})` of the yaml
 * package writes it (test/unit/report/yaml.test.ts compares the two on rendered projects, rule
 * files and generated data), without loading the package or building its document tree: about
 * 0.7 ms an object there, which was 13 of the 16 s `render` took for 18,000 objects, and a fifth
 * of `slo rules`' start (issue 18).
 *
 * Maps, sequences, numbers, booleans and null are written here; strings of printable ASCII plain,
 * or quoted as the package quotes them (double quotes, single quotes when the string has a double
 * quote and no single one), and, with `blockQuote: 'literal'`, a multi-line value as a literal block
 * with the package's chomping and indentation indicators; a collection met twice as the package's
 * anchor (`&a1`) and aliases (`*a1`). Anything else (other characters, a multi-line string the
 * package would quote or keep the final newlines of, a class instance, undefined in a list, a very
 * long key, a collection inside itself) returns undefined: the caller writes it with the package.
 */
export function emitYaml(value: unknown, options: YamlOptions = {}): string | undefined {
  try {
    literalBlocks = options.blockQuote === 'literal'
    findShared(value)
    const lines: string[] = []
    if (isEmptyCollection(value)) return `${Array.isArray(value) ? '[]' : '{}'}\n`
    if (Array.isArray(value)) emitSeq(value, '', lines)
    else if (isPlainObject(value)) emitMap(value, '', lines)
    else return undefined
    return `${lines.join('\n')}\n`
  } catch (error) {
    if (error instanceof NotFast) return undefined
    throw error
  } finally {
    anchors.clear()
    written.clear()
  }
}

/** The yaml package's options emitYaml writes like (lineWidth is always 0: no folding). */
export interface YamlOptions {
  /** Multi-line strings as literal blocks (`|`), as the package's blockQuote: 'literal'. */
  blockQuote?: 'literal'
}

/** emitYaml, or the yaml package (loaded then) for what emitYaml leaves to it. */
export async function yamlText(value: unknown, options: YamlOptions = {}): Promise<string> {
  return emitYaml(value, options) ?? (await loadYaml()).stringify(value, {lineWidth: 0, ...options})
}

let literalBlocks = false

class NotFast extends Error {}

/**
 * Collections met more than once in the document, with the anchor the package gives them: a1, a2, …
 * in the order of their second occurrence, walking the document as it is written (a repeat is an
 * alias, not walked again). The first occurrence is written with `&aN`, every later one as `*aN`.
 */
const anchors = new Map<object, string>()
const written = new Set<object>()

function findShared(root: unknown): void {
  const seen = new Set<object>()
  const open = new Set<object>()
  const walk = (value: unknown) => {
    if (value === null || typeof value !== 'object') return
    if (seen.has(value)) {
      // A collection inside itself: the package writes an alias within its own anchor; not done here.
      if (open.has(value)) throw new NotFast()
      if (!anchors.has(value)) anchors.set(value, `a${anchors.size + 1}`)
      return
    }
    seen.add(value)
    open.add(value)
    if (Array.isArray(value)) for (const item of value) walk(item)
    else for (const k in value) walk((value as Record<string, unknown>)[k])
    open.delete(value)
  }
  walk(root)
}

/**
 * How a shared collection stands after "key:" or "- ": its alias once written, else its anchor,
 * with an empty collection's `{}`/`[]` on the same line; undefined for anything not shared.
 */
function anchored(value: unknown): {text: string; block: boolean} | undefined {
  const anchor = value !== null && typeof value === 'object' ? anchors.get(value) : undefined
  if (anchor === undefined) return undefined
  if (written.has(value as object)) return {text: `*${anchor}`, block: false}
  written.add(value as object)
  if (isEmptyCollection(value)) return {text: `&${anchor} ${Array.isArray(value) ? '[]' : '{}'}`, block: false}
  if (!Array.isArray(value) && !isPlainObject(value)) throw new NotFast()
  return {text: `&${anchor}`, block: true}
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
// The core schema's tags other than str (yaml's schema/core and schema/common null): a plain
// string one of them matches would read back as a number, boolean or null, so it is quoted.
const TYPED = [
  /^(?:~|[Nn]ull|NULL)?$/,
  /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/,
  /^0o[0-7]+$/,
  /^[-+]?[0-9]+$/,
  /^0x[0-9a-fA-F]+$/,
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/,
]
// Only printable ASCII is written here; control characters and the rest are the package's.
const PRINTABLE = /^[\x20-\x7e]*$/
// A line starting a directive or a document marker: quoted or indented by rules of their own.
const DOCUMENT_MARKER = /^(%|---|\.\.\.)/m
const MAX_KEY = 1000

/** One line of printable ASCII as the package writes it, or NotFast. */
function scalarString(s: string): string {
  if (!PRINTABLE.test(s) || DOCUMENT_MARKER.test(s)) throw new NotFast()
  if (!NOT_PLAIN.test(s) && !TYPED.some((tag) => tag.test(s))) return s
  // quotedString with singleQuote unset: single quotes only for a double quote without a single one.
  // Printable ASCII on one line needs no escape but \\ and \" (JSON's), and lineWidth 0 folds nothing.
  if (s.includes('"') && !s.includes("'")) return `'${s}'`
  return JSON.stringify(s)
}

/**
 * A multi-line string as the package writes a literal block scalar (blockString) at `indent`, the
 * indentation of its content; NotFast where it would quote it or keep its final newlines (`|+`).
 */
function literalBlock(value: string, indent: string): string {
  if (!/^[\x20-\x7e\n]*$/.test(value) || /\n[\t ]+$/.test(value) || DOCUMENT_MARKER.test(value)) throw new NotFast()
  let endStart = value.length
  while (endStart > 0 && '\n\t '.includes(value[endStart - 1])) endStart--
  let end = value.substring(endStart)
  const endNewline = end.indexOf('\n')
  if (endNewline !== -1 && (value === end || endNewline !== end.length - 1)) throw new NotFast()
  const chomp = endNewline === -1 ? '-' : ''
  if (end) {
    value = value.slice(0, -end.length)
    if (end.endsWith('\n')) end = end.slice(0, -1)
    end = end.replace(/(^|(?<!\n))\n+(?!\n|$)/g, `$&${indent}`)
  }
  let startWithSpace = false
  let startEnd = 0
  let startNewline = -1
  for (; startEnd < value.length; ++startEnd) {
    const ch = value[startEnd]
    if (ch === ' ') startWithSpace = true
    else if (ch === '\n') startNewline = startEnd
    else break
  }
  let start = value.substring(0, startNewline < startEnd ? startNewline + 1 : startEnd)
  if (start) {
    value = value.substring(start.length)
    start = start.replace(/\n+/g, `$&${indent}`)
  }
  const header = `${startWithSpace ? '2' : ''}${chomp}`
  return `|${header}\n${indent}${start}${value.replace(/\n+/g, `$&${indent}`)}${end}`
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

/**
 * `value` as it follows "key:" or "- " on the same line (a literal block's lines after it, at
 * `indent`), or undefined when it is a non-empty collection.
 */
function inline(value: unknown, indent: string): string | undefined {
  if (typeof value === 'string' && value.includes('\n')) {
    if (!literalBlocks) throw new NotFast()
    return literalBlock(value, indent)
  }
  if (Array.isArray(value)) return value.length === 0 ? '[]' : undefined
  if (value !== null && typeof value === 'object') {
    if (!isPlainObject(value)) throw new NotFast()
    return isEmptyCollection(value) ? '{}' : undefined
  }
  return scalar(value)
}

function emitMap(map: Record<string, unknown>, indent: string, lines: string[], first?: string): void {
  let prefix = first
  for (const k in map) {
    const v = map[k]
    if (v === undefined) continue
    const head = `${prefix ?? indent}${key(k)}:`
    prefix = undefined
    const shared = anchored(v)
    if (shared) {
      lines.push(`${head} ${shared.text}`)
      if (shared.block) emitBlock(v, `${indent}  `, lines)
      continue
    }
    const one = inline(v, `${indent}  `)
    if (one !== undefined) lines.push(`${head} ${one}`)
    else {
      lines.push(head)
      emitBlock(v, `${indent}  `, lines)
    }
  }
}

function emitSeq(seq: unknown[], indent: string, lines: string[], first?: string): void {
  let prefix = first
  for (const v of seq) {
    if (v === undefined) throw new NotFast()
    const head = `${prefix ?? indent}- `
    prefix = undefined
    const shared = anchored(v)
    if (shared) {
      lines.push(`${head}${shared.text}`)
      if (shared.block) emitBlock(v, `${indent}  `, lines)
      continue
    }
    const one = inline(v, `${indent}  `)
    if (one !== undefined) lines.push(`${head}${one}`)
    else if (Array.isArray(v)) emitSeq(v, `${indent}  `, lines, head)
    else emitMap(v as Record<string, unknown>, `${indent}  `, lines, head)
  }
}

/** A collection on the lines after its anchor, at `indent`. */
function emitBlock(value: unknown, indent: string, lines: string[]): void {
  if (Array.isArray(value)) emitSeq(value, indent, lines)
  else emitMap(value as Record<string, unknown>, indent, lines)
}
